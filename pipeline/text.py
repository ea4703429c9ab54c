"""Regex tests over text columns: Arrow's RE2 where it answers as Python's re would, Python's re elsewhere."""
from __future__ import annotations

import re
from functools import lru_cache

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

_END_ANCHOR = re.compile(r"(?<!\\)((?:\\\\)*)\\Z")
# What RE2 and Python's re read differently for some values; a pattern with none of it (literals, classes of
# literal characters, ^, \A and \Z, which is RE2's \z) gets the same answer from both for every value.
_NOT_PORTABLE = re.compile(r"\\[dDwWsSbB0-9]|\$|\(\?")


def arrow_text(s: pd.Series | pa.Array | pa.ChunkedArray) -> pa.Array | None:
    """The Series' values as one Arrow text array (pandas' text is held as Arrow already: no copy); None
    when they are not all text. Arrow arrays are taken as they are (`pa.array` would walk a chunked one value
    by value)."""
    if isinstance(s, (pa.Array, pa.ChunkedArray)):
        values = s
    else:
        held = getattr(s.array, "__arrow_array__", None) if isinstance(s, pd.Series) else None
        try:  # an Arrow-backed column hands over its array directly, 50 times faster than pa.array asks for it
            values = held() if held is not None else pa.array(s, from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            return None
    if isinstance(values, pa.ChunkedArray):
        values = values.chunk(0) if values.num_chunks == 1 else values.combine_chunks()
    if pa.types.is_null(values.type):  # nothing but missing values
        return values.cast(pa.large_string())
    return values if pa.types.is_string(values.type) or pa.types.is_large_string(values.type) else None


def filled(values: pa.Array, fill) -> pa.Array:
    """`pc.fill_null`, skipped (its call costs more than a small file's check) when nothing is missing."""
    return pc.fill_null(values, fill) if values.null_count else values


@lru_cache(maxsize=256)
def _re2(pattern: str) -> str:
    """Python's pattern as RE2 reads it: \\Z (the very end) is RE2's \\z."""
    return _END_ANCHOR.sub(r"\1\\z", pattern)


def matches(s: pd.Series, pattern: str) -> np.ndarray:
    """`re.search(pattern, value)` for each value, exactly as Python's re answers; missing values do not match.

    RE2 and Python's re can only disagree on values that are not ASCII (\\d \\w \\s are ASCII-only in RE2),
    hold a vertical tab or a separator \\x1c-\\x1f (spaces to Python, not to RE2's \\s) or a newline (Python's
    $ also matches before a final one): those go through Python's re, every other value through Arrow's RE2,
    which is many times faster. A column with none of those bytes anywhere is not screened value by value.
    """
    values = arrow_text(s)
    if values is None:
        return np.array([isinstance(v, str) and re.search(pattern, v) is not None for v in s], dtype=bool)
    if values.null_count:  # Arrow's RE2 runs over null slots too: a column most of whose values are missing
        result = np.zeros(len(values), dtype=bool)  # (case registers) matches five times faster without them
        result[pc.is_valid(values).to_numpy(zero_copy_only=False)] = _matches(pc.drop_null(values), pattern)
        return result
    return _matches(values, pattern)


def _matches(values: pa.Array, pattern: str) -> np.ndarray:
    """`matches` over text with no missing value."""
    result = pc.match_substring_regex(values, _re2(pattern)).to_numpy(zero_copy_only=False).copy()
    if not _NOT_PORTABLE.search(pattern) or not _may_differ(values):
        return result
    may_differ = pc.or_(pc.invert(pc.string_is_ascii(values)),
                        pc.match_substring_regex(values, f"[{_RE2_DIFFERS}]"))
    differ = np.flatnonzero(may_differ.to_numpy(zero_copy_only=False))
    if len(differ):
        rx = re.compile(pattern)
        result[differ] = [rx.search(v) is not None for v in values.take(differ).to_pylist()]
    return result


# The ASCII characters on which RE2 and Python's re may answer differently: the newline, and the spaces RE2's
# \s leaves out (vertical tab, the four separators \x1c-\x1f); any character beyond ASCII may differ too.
_RE2_DIFFERS = "\n\x0b\x1c\x1d\x1e\x1f"
_RE2_DIFFERS_BYTES = np.zeros(256, dtype=bool)
_RE2_DIFFERS_BYTES[[ord(c) for c in _RE2_DIFFERS]] = True
_RE2_DIFFERS_BYTES[0x80:] = True


def _may_differ(values: pa.Array) -> bool:
    """Whether any byte of the text is one on which RE2 and re may differ: one pass over the bytes, so a
    column of plain ASCII skips the per-value screening."""
    return bool(_RE2_DIFFERS_BYTES[_data_bytes(values)].any())


def _data_bytes(values: pa.Array) -> np.ndarray:
    """The bytes of a text array's data buffer (beyond a slice's values too: they can only say yes wrongly)."""
    data = values.buffers()[2]
    return np.frombuffer(data, dtype=np.uint8) if data is not None else np.zeros(0, dtype=np.uint8)


def starts_with(s: pd.Series, first: bytes) -> np.ndarray:
    """Whether each value begins with one of the ASCII characters in `first` (a missing value does not), read
    from the first byte of each value in Arrow's buffers: no work per value."""
    values = arrow_text(s)
    if values is None:
        return np.array([isinstance(v, str) and v[:1] != "" and v[0] in first.decode("ascii") for v in s], dtype=bool)
    table = np.zeros(256, dtype=bool)
    table[list(first)] = True
    off = _offsets(values)
    given = off[1:] > off[:-1]
    head = np.zeros(len(values), dtype=np.uint8)
    head[given] = _data_bytes(values)[off[:-1][given]]
    hit = table[head] & given
    return hit & pc.is_valid(values).to_numpy(zero_copy_only=False) if values.null_count else hit


def ascending(s: pd.Series) -> bool:
    """`s.is_monotonic_increasing`, by Arrow for text (UTF-8 byte order is code point order; pandas compares
    Python strings one pair at a time, 30 times slower)."""
    values = arrow_text(s)
    if values is None or values.null_count:
        return s.is_monotonic_increasing
    return _in_order(values, pc.less_equal)


def sorted_by(frame: pd.DataFrame, column: str) -> pd.DataFrame:
    """`frame` stably sorted by its text `column`; as it is when already in order (an extract sorted by CRN:
    checking takes about 1 ms, sorting London's cases 100 ms)."""
    return frame if ascending(frame[column]) else frame.sort_values(column, kind="stable")


def strictly_ascending(s: pd.Series) -> bool:
    """Whether `s` is text in strict order, so that its values are distinct (an alignment sorted by CRN)."""
    values = arrow_text(s)
    return values is not None and not values.null_count and _in_order(values, pc.less)


def _in_order(values: pa.Array, compare) -> bool:
    """Whether `compare` (pc.less_equal: ascending; pc.less: strictly) holds for every pair of neighbours."""
    return len(values) < 2 or pc.all(compare(values[:-1], values[1:])).as_py()


def repeated(s: pd.Series) -> np.ndarray:
    """`s.duplicated(keep=False)` as a NumPy mask. Text in strict order (an extract sorted by CRN) has no
    repeats; other text of up to 7 bytes (a CRN, a staff code) is compared as one integer per value, sorted
    (Arrow hashes 480,000 distinct CRNs 3-4 times slower); longer text by Arrow's hashing; anything else, or
    text with missing values (pandas counts them as one value), by pandas."""
    values = arrow_text(s)
    if values is None or values.null_count:
        return s.duplicated(keep=False).to_numpy(dtype=bool)
    out = np.zeros(len(values), dtype=bool)
    if _in_order(values, pc.less):  # in strict order: no repeats
        return out
    keys, short = _short_keys(values)
    rows = np.flatnonzero(short)
    order = rows[np.argsort(keys[rows], kind="stable")]
    same = keys[order[1:]] == keys[order[:-1]]
    out[order[1:][same]] = out[order[:-1][same]] = True
    if len(rows) < len(values):
        rest = np.flatnonzero(~short)
        found = pc.dictionary_encode(values.take(rest))
        codes = found.indices.to_numpy(zero_copy_only=False)
        out[rest] = np.bincount(codes, minlength=len(found.dictionary))[codes] > 1
    return out


_LOW_BYTES = np.array([(1 << (8 * n)) - 1 for n in range(8)], dtype=np.uint64)


def _short_keys(values: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """Each value of up to 7 bytes as one integer (its bytes, then its length: equal integers, equal texts),
    read as an 8-byte word at the value's offset; and which values are that short (the rest: no key)."""
    off = _offsets(values)
    lengths = np.diff(off)
    short = lengths <= 7
    data = np.zeros(int(off[-1] - off[0]) + 8, dtype=np.uint8)
    data[:len(data) - 8] = _data_bytes(values)[off[0]:off[-1]]
    words = np.ndarray((len(data) - 7,), dtype="<u8", buffer=data, strides=(1,))
    keys = words[off[:-1] - off[0]] & _LOW_BYTES[np.where(short, lengths, 0)]
    return (keys << np.uint64(8)) | lengths.astype(np.uint64), short


def concatenated(values: pa.Array, start: int = 0, stop: int | None = None) -> bytes:
    """Values `start` to `stop` of a text array without missing values, one after another, as UTF-8: a slice
    of its data buffer."""
    stop = len(values) if stop is None else stop
    if stop <= start:
        return b""
    off = _offsets(values)
    return values.buffers()[2][int(off[start]):int(off[stop])].to_pybytes()


def _offsets(values: pa.Array) -> np.ndarray:
    """Where each value of a text array starts in its data buffer, and where the last one ends."""
    width = np.int64 if pa.types.is_large_string(values.type) else np.int32
    return np.frombuffer(values.buffers()[1], dtype=width)[values.offset:values.offset + len(values) + 1]


def equals(s: pd.Series, value: str) -> np.ndarray:
    """`s == value` as a NumPy mask (missing: False), compared by Arrow for text without making Python strings."""
    values = arrow_text(s)
    if values is None:
        return (s == value).to_numpy(dtype=bool, na_value=False)
    return filled(pc.equal(values, value), False).to_numpy(zero_copy_only=False)


def _alike(a: pa.Array, b: pa.Array) -> tuple[pa.Array, pa.Array]:
    """The two sides of a lookup as one Arrow text type: the shorter cast to the longer's (string and
    large_string differ in their offsets' width; casting a column of 480,000 to match a set of 3 would copy it)."""
    if a.type == b.type:
        return a, b
    return (a.cast(b.type), b) if len(a) < len(b) else (a, b.cast(a.type))


_SHORT_SIDE = 4  # `within` this many times longer than `values`: hash `values` instead of `within`


def positions(values: pd.Series, within) -> np.ndarray:
    """Where each of `values` is in `within` (a Series, or an Arrow array, of distinct values), -1 where it
    is not: pandas' `Index(within).get_indexer(values)`, by Arrow for text, hashing the shorter side (a
    trust's 200 retention requests are found among its 48,000 cases without hashing the cases). Values held
    as Python objects are looked up by pandas: making them Arrow text first would cost more than the lookup."""
    a = None if values.dtype == object else arrow_text(values)
    b = arrow_text(within) if a is not None else None
    if a is None or b is None or b.null_count:
        return pd.Index(within, dtype=object).get_indexer(pd.Index(values, dtype=object))
    a, b = _alike(a, b)
    if len(b) <= _SHORT_SIDE * len(a):
        return filled(pc.index_in(a, value_set=b), -1).to_numpy(zero_copy_only=False).astype(np.int64)
    wanted = pc.unique(pc.drop_null(a))
    slot = pc.index_in(b, value_set=wanted)
    rows = np.flatnonzero(pc.is_valid(slot).to_numpy(zero_copy_only=False))
    at = np.full(len(wanted) + 1, -1, dtype=np.int64)
    at[pc.take(slot, rows).to_numpy(zero_copy_only=False)] = rows
    return at[filled(pc.index_in(a, value_set=wanted), len(wanted)).to_numpy(zero_copy_only=False)]


def isin(values: pd.Series, within) -> np.ndarray:
    """`values.isin(within)` as a NumPy mask, `within` a Series, list or Arrow array of text. By Arrow for text,
    hashing the shorter side as `positions` does (a set of codes is hashed; a trust's CRNs are not hashed for
    its 200 retention requests); by pandas for anything else."""
    a = None if values.dtype == object else arrow_text(values)
    b = arrow_text(within) if a is not None else None
    if a is None or b is None or b.null_count:
        listed = within.to_pylist() if isinstance(within, (pa.Array, pa.ChunkedArray)) else within
        return values.isin(listed).to_numpy(dtype=bool)
    if len(b) > _SHORT_SIDE * len(a):
        return positions(values, b) >= 0
    if len(b) == 1:  # a trust's own code: one comparison per value, twice as fast as a lookup
        return equals(a, b[0].as_py())
    a, b = _alike(a, b)
    return pc.is_in(a, value_set=b).to_numpy(zero_copy_only=False)


def labels(codes: np.ndarray, names: list[str] | pa.Array, index: pd.Index | None = None) -> pd.Series:
    """A text column from integer codes into `names` (-1: missing), built by Arrow: pandas converts a NumPy
    array of strings to its text type one value at a time, ten times slower."""
    names = names.cast(pa.large_string()) if isinstance(names, pa.Array) else pa.array(names, pa.large_string())
    return text_series(names.take(pa.array(codes, mask=codes < 0)), index)


def text_series(values: pa.Array, index: pd.Index | None = None) -> pd.Series:
    """An Arrow text array as pandas' text Series, by position whatever the index."""
    return pd.Series(values.to_pandas().array, index=index)
