"""String ops: StringConcat, StringNormalizer, StringSplit, RegexFullMatch."""

import numpy as np
import pytest

from opencann.ops.infer import InferError


def _s(*items):
    return np.array(items, dtype=object)


def test_concat_broadcasts(run_op, infer_op, tt):
    got = run_op("StringConcat", [_s("a", "bc").reshape(2, 1), _s("x", "", "zé")], opset=20)
    assert got.dtype == object and got.shape == (2, 3)
    assert got.tolist() == [["ax", "a", "azé"], ["bcx", "bc", "bczé"]]
    assert infer_op("StringConcat", [tt("string", "n", 1), tt("string", 3)]).shape == ("n", 3)


def test_normalizer_stopwords_and_case(run_op):
    x = _s("The", "quick", "THE", "fox")
    got = run_op("StringNormalizer", [x], {"stopwords": ["the"], "case_change_action": "UPPER"}, opset=10)
    assert got.tolist() == ["QUICK", "FOX"]
    got = run_op("StringNormalizer", [x], {"stopwords": ["the"], "is_case_sensitive": 1}, opset=10)
    assert got.tolist() == ["The", "quick", "THE", "fox"]
    got = run_op("StringNormalizer", [_s("a", "A").reshape(1, 2)], {"stopwords": ["a"]}, opset=10)
    assert got.shape == (1, 1) and got.tolist() == [[""]]  # everything dropped


def test_normalizer_maps_case_character_by_character(run_op):
    got = run_op("StringNormalizer", [_s("Straße", "STRASSE")],
                 {"stopwords": ["strasse"], "case_change_action": "UPPER"}, opset=10)
    assert got.tolist() == ["STRAßE"]  # ß has no one-character upper case; it is not "ss" either


def test_split_maxsplit_and_padding(run_op, infer_op, tt):
    y, z = run_op("StringSplit", [_s("a,b,,c", "", "d")], {"delimiter": ",", "maxsplit": 2}, opset=20, outputs=2)
    assert y.tolist() == [["a", "b", ",c"], ["", "", ""], ["d", "", ""]]
    assert z.dtype == np.int64 and z.tolist() == [3, 0, 1]  # an empty string has no substrings
    y_t, z_t = infer_op("StringSplit", [tt("string", "n", 2)])
    assert y_t.shape == ("n", 2, None) and z_t.shape == ("n", 2) and z_t.dtype.name == "int64"


def test_regex_is_full_match_with_ascii_classes(run_op):
    got = run_op("RegexFullMatch", [_s("abc_1", "abc 1", "é", "abc").reshape(2, 2)], {"pattern": r"\w+"}, opset=20)
    assert got.dtype == np.bool_
    assert got.tolist() == [[True, False], [False, True]]  # RE2's \w is ASCII; a full match is needed


def test_regex_invalid_pattern(infer_op, tt):
    with pytest.raises(InferError, match="not a valid regular expression"):
        infer_op("RegexFullMatch", [tt("string", 3)], {"pattern": "(ab"})
