"""TfIdfVectorizer: skip-grams over an int or string pool, TF / IDF / TFIDF weighting."""

import numpy as np


def test_string_pool_with_skips_and_tfidf(run_op, infer_op, tt):
    x = np.array([["a", "b", "a", "b", "c"], ["c", "x", "a", "y", "b"]], dtype=object)
    attrs = {"mode": "TFIDF", "min_gram_length": 1, "max_gram_length": 2, "max_skip_count": 1,
             "ngram_counts": [0, 2], "ngram_indexes": [2, 0, 1], "pool_strings": ["a", "c", "a", "b"],
             "weights": [1.0, 10.0, 0.5]}
    got = run_op("TfIdfVectorizer", [x], attrs)
    assert got.dtype == np.float32 and got.shape == (2, 3)
    # row 0: "a" x2, "c" x1; (a, b) twice adjacent, never one apart ((a,a), (b,b), (a,c))
    # row 1: "a" x1, "c" x1; (a, b) once, one apart ("a y b")
    # output slots: "c" -> 0, (a, b) -> 1, "a" -> 2; TFIDF multiplies counts by the weights
    np.testing.assert_allclose(got, [[10.0, 2 * 0.5, 2 * 1.0], [10.0, 0.5, 1.0]])
    out = infer_op("TfIdfVectorizer", [tt("string", "n", 5)], attrs)
    assert out.shape == ("n", 3) and out.dtype.name == "float32"


def test_int_pool_idf_caps_counts(run_op):
    x = np.array([7, 7, 7, 8], np.int32)
    attrs = {"mode": "IDF", "min_gram_length": 1, "max_gram_length": 1, "max_skip_count": 3,
             "ngram_counts": [0], "ngram_indexes": [0, 3], "pool_int64s": [7, 9], "weights": [2.0, 5.0]}
    np.testing.assert_allclose(run_op("TfIdfVectorizer", [x], attrs), [2.0, 0.0, 0.0, 0.0])
