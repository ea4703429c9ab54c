"""Trusts' API tokens for the upload service: issued once, stored only as salted hashes, revocable.

A token reads `trp.<token id>.<secret>`. The id finds the record; the secret is checked against its
scrypt hash in constant time. The file holds no secret, so a copy of it lets nobody upload. Writes replace
the file whole under a lock, so concurrent `trp tokens` commands and a running service never corrupt it.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import hashlib
import hmac
import json
import os
import re
import secrets
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

SCRYPT = {"n": 2**14, "r": 8, "p": 1}
TOKEN = re.compile(r"trp\.([0-9a-f]{16})\.([A-Za-z0-9_-]{43})")  # what `issue` makes, and nothing else
VERIFIED_KEPT = 1024


@dataclass(frozen=True)
class Issued:
    token_id: str
    trust: str
    token: str  # shown once, never stored


def _hash(secret: str, salt: bytes) -> str:
    return hashlib.scrypt(secret.encode(), salt=salt, dklen=32, **SCRYPT).hex()


class TokenStore:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._verified: dict[tuple[str, str], str] = {}

    @contextmanager
    def _locked(self) -> Iterator[dict]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_suffix(self.path.suffix + ".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            records = self._read()
            yield records
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".tokens-")
            with os.fdopen(fd, "w") as f:
                json.dump(records, f, indent=2, sort_keys=True)
            os.chmod(tmp, 0o600)
            os.replace(tmp, self.path)

    def _read(self) -> dict:
        return json.loads(self.path.read_text()) if self.path.exists() else {}

    def issue(self, trust: str) -> Issued:
        token_id, secret, salt = secrets.token_hex(8), secrets.token_urlsafe(32), secrets.token_bytes(16)
        with self._locked() as records:
            records[token_id] = {
                "trust": trust,
                "salt": salt.hex(),
                "hash": _hash(secret, salt),
                "issued_at": dt.datetime.now(dt.UTC).isoformat(),
                "revoked_at": None,
            }
        return Issued(token_id, trust, f"trp.{token_id}.{secret}")

    def revoke(self, token_id: str) -> bool:
        with self._locked() as records:
            if token_id not in records or records[token_id]["revoked_at"]:
                return False
            records[token_id]["revoked_at"] = dt.datetime.now(dt.UTC).isoformat()
            return True

    def list(self) -> list[dict]:
        return [
            {"token_id": k, **{f: v[f] for f in ("trust", "issued_at", "revoked_at")}}
            for k, v in sorted(self._read().items())
        ]

    def record_of(self, token: str) -> tuple[str, dict] | None:
        """The token's id and live record, found without any hashing; None for a malformed token or an id that
        is unknown or revoked. The id is not secret (`trp tokens list` shows it): refusing an unknown one at
        once gives nothing away, and costs a flood of bogus tokens no scrypt work at all."""
        found = TOKEN.fullmatch(token)
        if not found:
            return None
        record = self._read().get(found.group(1))
        if record is None or record["revoked_at"]:
            return None
        return found.group(1), record

    def trust_of(self, token: str) -> str | None:
        """The trust a live token belongs to; None for anything else (malformed, unknown, wrong, revoked)."""
        known = self.record_of(token)
        return None if known is None else (self.remembered(token, known) or self.verify(token, known))

    @staticmethod
    def _key(token: str, known: tuple[str, dict]) -> tuple[str, str]:
        return known[0], hashlib.sha256(token.encode()).hexdigest()

    def remembered(self, token: str, known: tuple[str, dict]) -> str | None:
        """The trust of a token verified before against the hash its record holds now (`record_of`'s answer):
        a trust's later requests cost no scrypt. None when it has to be verified."""
        token_id, record = known
        return record["trust"] if self._verified.get(self._key(token, known)) == record["hash"] else None

    def verify(self, token: str, known: tuple[str, dict]) -> str | None:
        """The trust, if the token's secret matches its record's scrypt hash (compared in constant time); a
        match is remembered (as a SHA-256, with the hash it matched)."""
        token_id, record = known
        secret = token.rsplit(".", 1)[1]
        if not hmac.compare_digest(_hash(secret, bytes.fromhex(record["salt"])), record["hash"]):
            return None
        if len(self._verified) >= VERIFIED_KEPT:
            self._verified.clear()
        self._verified[self._key(token, known)] = record["hash"]
        return record["trust"]
