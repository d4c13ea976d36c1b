"""String ops: StringConcat, StringNormalizer, StringSplit, RegexFullMatch.

String tensors are NumPy object arrays of Python `str`.
"""

import operator
import re

import numpy as np

from ... import dtypes
from .. import infer
from ..infer import InferError
from ..registry import defop


def _check_string(v, op: str, what: str = "input") -> None:
    if v is not None and v.dtype is not None and v.dtype != dtypes.string:
        raise InferError(f"{op} {what} must be a string tensor, got {v.dtype}")


def _strings(x) -> np.ndarray:
    x = np.asarray(x)
    return x if x.dtype == object else x.astype(str).astype(object)


_concat = np.frompyfunc(operator.add, 2, 1)


def _concat_infer(x, y):
    _check_string(x, "StringConcat", "X")
    _check_string(y, "StringConcat", "Y")
    return infer.tensor(dtypes.string, infer.broadcast_shapes(x.shape, y.shape))


@defop("StringConcat", inputs=["X", "Y"], outputs=["Z"], since=20, infer=_concat_infer)
def string_concat(x, y):
    """Elementwise X + Y with NumPy broadcasting."""
    return np.asarray(_concat(_strings(x), _strings(y)), dtype=object)


# --- StringNormalizer ----------------------------------------------------------------------------


def _simple_case(fn):
    """Character-by-character case mapping (as C's towlower/towupper): a character whose full
    mapping has several characters ("ß".upper() == "SS") stays as it is."""

    def convert(word: str) -> str:
        if word.isascii():
            return fn(word)
        return "".join(m if len(m := fn(c)) == 1 else c for c in word)

    return convert


_lower = _simple_case(str.lower)
_upper = _simple_case(str.upper)


def _normalizer_infer(x, *, case_change_action, **attrs):
    _check_string(x, "StringNormalizer", "X")
    if case_change_action not in ("LOWER", "UPPER", "NONE"):
        raise InferError(f"StringNormalizer case_change_action must be LOWER, UPPER or NONE, "
                         f"got {case_change_action!r}")
    s = x.shape
    if s is not None and not (len(s) == 1 or (len(s) == 2 and (not infer.known_int(s[0]) or s[0] == 1))):
        raise InferError(f"StringNormalizer takes a [C] or [1, C] tensor, got {list(s)}")
    if s is None:
        return infer.tensor(dtypes.string, None)
    return infer.tensor(dtypes.string, (None,) if len(s) == 1 else (1, None))


@defop("StringNormalizer", inputs=["X"], outputs=["Y"],
       attrs={"case_change_action": "NONE", "is_case_sensitive": 0, "locale": "", "stopwords": None},
       since=10, infer=_normalizer_infer)
def string_normalizer(x, *, case_change_action, is_case_sensitive, locale, stopwords):
    """Drop stop words (compared case-insensitively unless is_case_sensitive), then lower- or
    upper-case what remains. When every word is dropped the result holds one empty string."""
    x = _strings(x)
    if not (x.ndim == 1 or (x.ndim == 2 and x.shape[0] == 1)):
        raise ValueError(f"StringNormalizer takes a [C] or [1, C] tensor, got {list(x.shape)}")
    words = list(x.reshape(-1))
    if stopwords:
        if is_case_sensitive:
            stop = set(stopwords)
            words = [w for w in words if w not in stop]
        else:
            stop = {_lower(s) for s in stopwords}
            words = [w for w in words if _lower(w) not in stop]
    if case_change_action == "LOWER":
        words = [_lower(w) for w in words]
    elif case_change_action == "UPPER":
        words = [_upper(w) for w in words]
    elif case_change_action != "NONE":
        raise ValueError(f"StringNormalizer case_change_action must be LOWER, UPPER or NONE, "
                         f"got {case_change_action!r}")
    if not words:
        words = [""]
    out = np.empty(len(words), dtype=object)
    out[:] = words
    return out if x.ndim == 1 else out.reshape(1, -1)


# --- StringSplit ---------------------------------------------------------------------------------


def _split_infer(x, *, delimiter, maxsplit):
    _check_string(x, "StringSplit", "X")
    s = x.shape
    width = None
    if maxsplit is not None and int(maxsplit) < 0:
        raise InferError(f"StringSplit maxsplit must be >= 0, got {maxsplit}")
    return (infer.tensor(dtypes.string, None if s is None else (*s, width)),
            infer.tensor(dtypes.int64, s))


@defop("StringSplit", inputs=["X"], outputs=["Y", "Z"], attrs={"delimiter": None, "maxsplit": None},
       since=20, infer=_split_infer)
def string_split(x, *, delimiter, maxsplit):
    """Split each string on `delimiter` (runs of whitespace when unset or empty), at most
    `maxsplit` times. Y pads each row of substrings with empty strings; Z counts them. An empty
    string has no substrings (as in ONNX Runtime)."""
    x = _strings(x)
    sep = delimiter or None
    limit = -1 if maxsplit is None else int(maxsplit)
    parts = [s.split(sep, limit) if s else [] for s in x.reshape(-1)]
    counts = np.array([len(p) for p in parts], dtype=np.int64).reshape(x.shape)
    width = max((len(p) for p in parts), default=0)
    y = np.full((len(parts), width), "", dtype=object)
    for i, p in enumerate(parts):
        y[i, : len(p)] = p
    return y.reshape(*x.shape, width), counts


# --- RegexFullMatch ------------------------------------------------------------------------------


def _regex_infer(x, *, pattern):
    _check_string(x, "RegexFullMatch", "X")
    if pattern is None:
        raise InferError("RegexFullMatch needs the 'pattern' attribute")
    try:
        re.compile(pattern, re.ASCII)
    except re.error as e:
        raise InferError(f"RegexFullMatch pattern {pattern!r} is not a valid regular expression: {e}") from None
    return infer.tensor(dtypes.bool_, x.shape)


@defop("RegexFullMatch", inputs=["X"], outputs=["Y"], attrs={"pattern": None}, since=20,
       infer=_regex_infer)
def regex_full_match(x, *, pattern):
    """True where the whole string matches `pattern` (RE2 syntax; classes such as \\w, \\d, \\b are
    ASCII, as in RE2)."""
    if pattern is None:
        raise ValueError("RegexFullMatch needs the 'pattern' attribute")
    rx = re.compile(pattern, re.ASCII)
    x = _strings(x)
    out = np.fromiter((rx.fullmatch(s) is not None for s in x.reshape(-1)), dtype=bool, count=x.size)
    return out.reshape(x.shape)
