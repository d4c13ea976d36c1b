"""TfIdfVectorizer: counts (possibly skipping) n-grams of a token sequence against a fixed pool."""

import numpy as np

from ... import dtypes
from .. import infer
from ..infer import InferError
from ..registry import REQUIRED, defop


def _pool(ngram_counts, pool_int64s, pool_strings) -> dict[tuple, int]:
    """Map each pooled n-gram (a tuple of tokens) to its position in the pool's n-gram order."""
    if (pool_int64s is None) == (pool_strings is None):
        raise ValueError("TfIdfVectorizer needs exactly one of pool_int64s and pool_strings")
    pool = list(pool_int64s if pool_int64s is not None else pool_strings)
    starts = [int(s) for s in ngram_counts]
    table: dict[tuple, int] = {}
    k = 0
    for level, start in enumerate(starts):
        n = level + 1
        end = starts[level + 1] if level + 1 < len(starts) else len(pool)
        if (end - start) % n:
            raise ValueError(f"TfIdfVectorizer pool holds {end - start} tokens of {n}-grams, "
                             f"not a multiple of {n}")
        for i in range(start, end, n):
            table[tuple(pool[i:i + n])] = k
            k += 1
    return table


def _tfidf_infer(x, *, ngram_indexes, pool_int64s, pool_strings, **attrs):
    if (pool_int64s is None) == (pool_strings is None):
        raise InferError("TfIdfVectorizer needs exactly one of pool_int64s and pool_strings")
    if pool_strings is not None and x.dtype != dtypes.string:
        raise InferError(f"TfIdfVectorizer with pool_strings takes a string tensor, got {x.dtype}")
    if pool_int64s is not None and x.dtype not in (dtypes.int32, dtypes.int64):
        raise InferError(f"TfIdfVectorizer with pool_int64s takes int32 or int64, got {x.dtype}")
    width = max((int(i) for i in ngram_indexes), default=-1) + 1
    s = x.shape
    if s is None:
        return infer.tensor(dtypes.float32, None)
    if len(s) == 1:
        return infer.tensor(dtypes.float32, (width,))
    if len(s) == 2:
        return infer.tensor(dtypes.float32, (s[0], width))
    raise InferError(f"TfIdfVectorizer takes a [C] or [N, C] tensor, got rank {len(s)}")


@defop("TfIdfVectorizer", inputs=["X"], outputs=["Y"],
       attrs={"max_gram_length": REQUIRED, "max_skip_count": REQUIRED, "min_gram_length": REQUIRED,
              "mode": REQUIRED, "ngram_counts": REQUIRED, "ngram_indexes": REQUIRED,
              "pool_int64s": None, "pool_strings": None, "weights": None},
       since=9, infer=_tfidf_infer)
def tfidf_vectorizer(x, *, max_gram_length, max_skip_count, min_gram_length, mode, ngram_counts,
                     ngram_indexes, pool_int64s, pool_strings, weights):
    """Per row, count each pooled n-gram (min..max_gram_length tokens, up to max_skip_count tokens
    skipped between consecutive ones) and weight the counts: TF (counts), IDF (weights where
    present), TFIDF (counts times weights). Y[ngram_indexes[i]] is the i-th pooled n-gram's value."""
    if mode not in ("TF", "IDF", "TFIDF"):
        raise ValueError(f"TfIdfVectorizer mode must be TF, IDF or TFIDF, got {mode!r}")
    x = np.asarray(x)
    if x.ndim not in (1, 2):
        raise ValueError(f"TfIdfVectorizer takes a [C] or [N, C] tensor, got rank {x.ndim}")
    table = _pool(ngram_counts, pool_int64s, pool_strings)
    idx = np.asarray(ngram_indexes, dtype=np.int64)
    if len(idx) != len(table):
        raise ValueError(f"TfIdfVectorizer has {len(table)} pooled n-grams but {len(idx)} ngram_indexes")
    width = int(idx.max()) + 1 if idx.size else 0
    rows = x.reshape(1, -1) if x.ndim == 1 else x
    counts = np.zeros((rows.shape[0], len(table)), np.float64)
    lo, hi = max(int(min_gram_length), 1), int(max_gram_length)
    for r, row in enumerate(rows):
        tokens = row.tolist()
        c = len(tokens)
        for n in range(lo, hi + 1):
            for skip in range(0, int(max_skip_count) + 1 if n > 1 else 1):
                step = skip + 1
                for start in range(0, c - (n - 1) * step):
                    k = table.get(tuple(tokens[start:start + (n - 1) * step + 1:step]))
                    if k is not None:
                        counts[r, k] += 1
    w = np.ones(len(table)) if weights is None else np.asarray(weights, np.float64)
    if mode == "IDF":
        counts = np.minimum(counts, 1) * w
    elif mode == "TFIDF":
        counts = counts * w
    y = np.zeros((rows.shape[0], width), np.float32)
    y[:, idx] = counts
    return y[0] if x.ndim == 1 else y
