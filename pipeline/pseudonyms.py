"""Keyed pseudonyms for the published zone: HMAC-SHA256 of "kind:value", first 128 bits in hex.

Stable across runs for one key and unlinkable without it. Python's `hmac`, keyed once per kind: each value
costs one copy of the keyed state and one update (a national run at scale 10 makes 2.6 million of them, one
per distinct CRN and staff code).
"""
from __future__ import annotations

import hashlib
import hmac

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.text import arrow_text, filled, labels, strictly_ascending, text_series

_HEX_DIGITS = 32


class Pseudonyms:
    """The pseudonyms of one kind of identifier (a CRN; a trust's staff code) under one key."""

    def __init__(self, key: bytes, kind: str):
        self._keyed = hmac.new(key, f"{kind}:".encode(), hashlib.sha256)

    def _digest(self, value: str) -> str:
        mac = self._keyed.copy()
        mac.update(value.encode())
        return mac.hexdigest()[:_HEX_DIGITS]

    def digests(self, values: pa.Array) -> pa.Array:
        """The pseudonym of each of `values` (text without missing values), in order."""
        return pa.array([self._digest(v) for v in values.to_pylist()], pa.large_string())

    def __call__(self, values: pd.Series) -> pd.Series:
        """The column's pseudonyms; nulls stay null. A column in strict order (the case alignment's CRNs)
        holds distinct values: hashed without factorising."""
        if not strictly_ascending(values):
            return self.many(values)[0]
        return text_series(self.digests(arrow_text(values)), values.index)

    def many(self, *columns: pd.Series) -> list[pd.Series]:
        """Several columns' pseudonyms, each value hashed once, however many columns hold it (an officer as
        holder, as current OM, in the caseload)."""
        codes, distinct = _factorised(columns)
        digests = self.digests(distinct)
        ends = np.cumsum([len(c) for c in columns]).tolist()
        return [labels(codes[end - len(c):end], digests, c.index) for c, end in zip(columns, ends)]


def _factorised(columns: tuple[pd.Series, ...]) -> tuple[np.ndarray, pa.Array]:
    """Codes into the distinct values of the columns one after another (-1: missing), by Arrow's dictionary
    encoding (pandas hashes an object column's Python strings three times slower)."""
    texts = [arrow_text(c) for c in columns]
    if any(t is None for t in texts):
        raise TypeError("pseudonyms are made of text columns (codes, CRNs)")
    encoded = pc.dictionary_encode(pa.concat_arrays([t.cast(pa.large_string()) for t in texts]))
    return filled(encoded.indices, -1).to_numpy(), encoded.dictionary


def key_fingerprint(key: bytes) -> str:
    """A fingerprint of the pseudonym key: the same key gives the same one, and it tells nothing of the key.
    Recorded in each manifest so that runs made under different keys, whose pseudonyms do not join, are
    never compared."""
    return hmac.new(key, b"trp key id", hashlib.sha256).hexdigest()[:16]
