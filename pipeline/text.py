"""Regex tests over text columns: Arrow's RE2 where it answers as Python's re would, Python's re elsewhere."""
from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

_END_ANCHOR = re.compile(r"(?<!\\)((?:\\\\)*)\\Z")
# What RE2 and Python's re read differently for some values; a pattern with none of it (literals, classes of
# literal characters, ^ and \A) gets the same answer from both for every value.
_NOT_PORTABLE = re.compile(r"\\[dDwWsSbBZ0-9]|\$|\(\?")


def contains(s: pd.Series, pattern: str) -> pd.Series:
    """`re.search(pattern, value)` for each value, as a boolean Series (`matches`)."""
    return pd.Series(matches(s, pattern), index=s.index, dtype=bool)


def matches(s: pd.Series, pattern: str) -> np.ndarray:
    """`re.search(pattern, value)` for each value, exactly as Python's re answers; missing values do not match.

    RE2 and Python's re can only disagree on values that are not ASCII (\\d \\w \\s are ASCII-only in RE2),
    hold a vertical tab or a separator \\x1c-\\x1f (spaces to Python, not to RE2's \\s) or a newline (Python's
    $ also matches before a final one): those go through Python's re, every other value through Arrow's RE2,
    which is many times faster. A column with none of those bytes anywhere is not screened value by value.
    """
    try:
        values = pa.array(s, from_pandas=True)  # pandas' text stays as it is held (large_string), no copy
        if pa.types.is_null(values.type):
            values = values.cast(pa.string())
        elif not (pa.types.is_string(values.type) or pa.types.is_large_string(values.type)):
            raise pa.ArrowTypeError(f"{values.type} is not text")
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # not all text
        return np.array([isinstance(v, str) and re.search(pattern, v) is not None for v in s], dtype=bool)
    found = pc.fill_null(pc.match_substring_regex(values, _END_ANCHOR.sub(r"\1\\z", pattern)), False)
    result = found.to_numpy(zero_copy_only=False).copy()
    if not _NOT_PORTABLE.search(pattern) or not _may_hold(values, _RE2_DIFFERS):
        return result
    may_differ = pc.or_(pc.invert(pc.string_is_ascii(values)), pc.match_substring_regex(values, _RE2_DIFFERS_RX))
    differ = np.flatnonzero(pc.fill_null(may_differ, False).to_numpy(zero_copy_only=False))
    if len(differ):
        rx = re.compile(pattern)
        result[differ] = [rx.search(v) is not None for v in values.take(differ).to_pylist()]
    return result


# Bytes of a value on which RE2 and Python's re may answer differently: any byte of a character beyond ASCII,
# the newline, and the ASCII spaces RE2's \s leaves out (vertical tab, the four separators \x1c-\x1f).
_RE2_DIFFERS_RX = "[\n\x0b\x1c-\x1f]"
_RE2_DIFFERS = np.zeros(256, dtype=bool)
_RE2_DIFFERS[[0x0a, 0x0b, 0x1c, 0x1d, 0x1e, 0x1f]] = True
_RE2_DIFFERS[0x80:] = True


def _may_hold(values: pa.Array | pa.ChunkedArray, table: np.ndarray) -> bool:
    """Whether any byte the text's data buffers hold is one `table` marks: one pass over the bytes, so a
    column of plain ASCII skips the per-value screening (bytes beyond a slice can only say yes wrongly)."""
    for chunk in getattr(values, "chunks", [values]):
        data = chunk.buffers()[2]
        if data is not None and table[np.frombuffer(data, dtype=np.uint8)].any():
            return True
    return False


def starts_with(s: pd.Series, first: bytes) -> np.ndarray:
    """Whether each value begins with one of the ASCII characters in `first` (a missing value does not), read
    from the first byte of each value in Arrow's buffers: no work per value."""
    table = np.zeros(256, dtype=bool)
    table[list(first)] = True
    try:
        values = pa.array(s, from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        values = None
    chunks = getattr(values, "chunks", [values])
    if values is None or not all(pa.types.is_string(c.type) or pa.types.is_large_string(c.type) for c in chunks):
        return np.array([isinstance(v, str) and v[:1] != "" and v[0] in first.decode("ascii") for v in s], dtype=bool)
    parts = [np.zeros(0, dtype=bool)]
    for c in chunks:
        _, offsets, data = c.buffers()
        width = np.int64 if pa.types.is_large_string(c.type) else np.int32
        off = np.frombuffer(offsets, dtype=width)[c.offset:c.offset + len(c) + 1].astype(np.int64)
        given = off[1:] > off[:-1]
        head = np.zeros(len(c), dtype=np.uint8)
        if given.any():
            head[given] = np.frombuffer(data, dtype=np.uint8)[off[:-1][given]]
        hit = table[head] & given
        if c.null_count:
            hit &= c.is_valid().to_numpy(zero_copy_only=False)
        parts.append(hit)
    return np.concatenate(parts)


def ascending(s: pd.Series) -> bool:
    """`s.is_monotonic_increasing`, by Arrow for text (UTF-8 byte order is code point order; pandas compares
    Python strings one pair at a time, 30 times slower)."""
    try:
        values = pa.array(s, from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return s.is_monotonic_increasing
    if not (pa.types.is_string(values.type) or pa.types.is_large_string(values.type)) or values.null_count:
        return s.is_monotonic_increasing
    return len(values) < 2 or pc.all(pc.less_equal(values[:-1], values[1:])).as_py()


def positions(values: pd.Series, within: pd.Series) -> np.ndarray:
    """Where each of `values` is in `within` (whose values are distinct), -1 where it is not: pandas'
    `Index(within).get_indexer(values)`, by Arrow for text, hashing the shorter side (a trust's 200
    retention requests are found among its 48,000 cases without hashing the cases)."""
    try:
        a, b = (pa.array(x, from_pandas=True) for x in (values, within))
        a, b = (x.combine_chunks() if isinstance(x, pa.ChunkedArray) else x for x in (a, b))
        text = all(pa.types.is_string(x.type) or pa.types.is_large_string(x.type) or pa.types.is_null(x.type)
                   for x in (a, b))
        a, b = a.cast(pa.large_string()), b.cast(pa.large_string())
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        text = False
    if not text or b.null_count:
        return pd.Index(within, dtype=object).get_indexer(pd.Index(values, dtype=object))
    if len(b) <= 4 * len(a):
        return pc.fill_null(pc.index_in(a, value_set=b), -1).to_numpy(zero_copy_only=False).astype(np.int64)
    wanted = pc.unique(pc.drop_null(a))
    slot = pc.index_in(b, value_set=wanted)
    rows = np.flatnonzero(pc.is_valid(slot).to_numpy(zero_copy_only=False))
    at = np.full(len(wanted) + 1, -1, dtype=np.int64)
    at[pc.take(slot, rows).to_numpy(zero_copy_only=False)] = rows
    return at[pc.fill_null(pc.index_in(a, value_set=wanted), len(wanted)).to_numpy(zero_copy_only=False)]


def labels(codes: np.ndarray, names: list[str], index: pd.Index | None = None) -> pd.Series:
    """A text column from integer codes into `names` (-1: missing), built by Arrow: pandas converts a NumPy
    array of strings to its text type one value at a time, ten times slower."""
    values = pa.array(names, type=pa.large_string()).take(pa.array(codes, mask=codes < 0))
    return pd.Series(values.to_pandas().array, index=index)  # by position, whatever the index
