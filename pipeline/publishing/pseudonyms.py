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

_HEX_DIGITS = 32


class Pseudonyms:
    """The pseudonyms of one kind of identifier (a CRN; a trust's staff code) under one key."""

    def __init__(self, key: bytes, kind: str):
        self._keyed = hmac.new(key, f"{kind}:".encode(), hashlib.sha256)

    def _digest(self, value: str) -> str:
        mac = self._keyed.copy()
        mac.update(value.encode())
        return mac.hexdigest()[:_HEX_DIGITS]

    def digests(self, values) -> list[str]:
        """The pseudonym of each of `values` (text without missing values), in order."""
        return [self._digest(v) for v in values]

    def __call__(self, values: pd.Series) -> pd.Series:
        """The column's pseudonyms; nulls stay null."""
        return self.many(values)[0]

    def many(self, *columns: pd.Series) -> list[pd.Series]:
        """Several columns' pseudonyms, each value hashed once, however many columns hold it (an officer as
        holder, as current OM, in the caseload)."""
        if any(pd.api.types.infer_dtype(c, skipna=True) not in ("string", "empty") for c in columns):
            raise TypeError("pseudonyms are made of text columns (codes, CRNs)")
        together = pd.concat([pd.Series(c, dtype="str").reset_index(drop=True) for c in columns], ignore_index=True)
        codes, distinct = pd.factorize(together)
        digests = pd.array(self.digests(distinct), dtype="str")
        ends = np.cumsum([len(c) for c in columns]).tolist()
        return [
            pd.Series(digests.take(codes[end - len(c) : end], allow_fill=True), index=c.index)
            for c, end in zip(columns, ends)
        ]


def key_fingerprint(key: bytes) -> str:
    """A fingerprint of the pseudonym key: the same key gives the same one, and it tells nothing of the key.
    Recorded in each manifest so that runs made under different keys, whose pseudonyms do not join, are
    never compared."""
    return hmac.new(key, b"trp key id", hashlib.sha256).hexdigest()[:16]
