"""The published zone's pseudonyms: the keyed HMAC whatever the column, and safe in forked Dask workers."""

from __future__ import annotations

import hashlib
import hmac
import os
import signal

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.publishing.pseudonyms import Pseudonyms
from tests.extracts.test_corpora import NAUGHTY


def _mac(key: bytes, kind: str, value: str) -> str:
    return hmac.new(key, f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()[:32]


@settings(max_examples=60, deadline=None)
@given(key=st.binary(min_size=1, max_size=150), kind=st.text(max_size=12), values=st.lists(st.text(), max_size=40))
def test_digests_are_the_hmac_of_kind_and_value(key, kind, values):
    assert Pseudonyms(key, kind).digests(values) == [_mac(key, kind, v) for v in values]


@pytest.mark.parametrize(
    "key", [b"k", b"x" * 64, b"a longer key than the hash's block of sixty-four bytes..." * 2, "clé-ключ-🔑".encode()]
)
def test_pseudonyms_are_the_keyed_hmac_and_keep_nulls(key):
    values = pd.Series(NAUGHTY + [None])
    case_id = Pseudonyms(key, "crn")
    got = case_id(values)
    again = case_id(values.iloc[::-1])  # another column: the same values give the same pseudonyms
    assert again.iloc[::-1].tolist() == got.tolist()
    for v, p in zip(values, got):
        if pd.isna(v):
            assert pd.isna(p)
        else:
            assert p == _mac(key, "crn", v)
    assert got.iloc[:-1].nunique() == len(set(NAUGHTY))
    together = case_id.many(values, values.iloc[::-1])  # several columns, each value hashed once
    assert [c.tolist() for c in together] == [got.tolist(), again.tolist()]
    assert together[1].index.tolist() == values.index[::-1].tolist()
    distinct = pd.Series(sorted(set(NAUGHTY)), index=range(100, 100 + len(set(NAUGHTY))))
    assert case_id(distinct).to_dict() == {  # by position, whatever the index
        i: _mac(key, "crn", v) for i, v in distinct.items()
    }


def test_columns_with_nothing_or_only_missing_values():
    ids = Pseudonyms(b"k", "crn")
    assert ids(pd.Series([], dtype="string")).tolist() == []
    assert ids(pd.Series([None, None], dtype="string")).isna().all()
    empty, missing = ids.many(pd.Series([], dtype="string"), pd.Series([None], dtype=object))
    assert len(empty) == 0 and missing.isna().all()


def test_a_forked_process_hashes_after_its_parent_did():
    """LocalCluster forks its workers from the run's process, which may have hashed already (an in-process
    run after another): the child must still hash, and not hang on runtime threads the fork left behind."""
    values = [f"X{i:07d}" for i in range(100_000)]
    ids = Pseudonyms(b"key", "crn")
    expected = ids.digests(values)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: hash again, report whether it matched (a hang ends in a minute, unanswered)
        signal.alarm(60)
        os.close(read)
        try:
            ok = ids.digests(values) == expected
        except BaseException:
            ok = False
        os.write(write, b"1" if ok else b"0")
        os._exit(0)
    os.close(write)
    try:
        answer = os.read(read, 1)
    finally:
        os.waitpid(pid, 0)
        os.close(read)
    assert answer == b"1"


def test_a_column_that_is_not_text_is_refused():
    with pytest.raises(TypeError, match="text"):
        Pseudonyms(b"k", "crn").many(pd.Series([1, 2, 1]))
