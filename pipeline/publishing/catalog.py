"""The analysts' catalog: `published/catalog.duckdb`, refreshed at every publish.

One view per dataset over the current run of every run date, a `<dataset>_history` view over the
superseded runs kept for audit (with `superseded_run_id`), `scenario_comparison` over every finished policy
scenario set (docs/scenarios.md), and two small tables from the manifests: `runs`
(one row per current run date) and `run_trusts` (each trust's status in it). The views read each run's
immutable copy (`runs/<run id>/published/`) named by the manifests, so a reader of the catalog sees whole
runs at every instant, even on object stores where nothing renames atomically. The file is built in a
temporary file and put in place whole (one PUT on S3), so a reader never opens half a catalog.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

import duckdb

from pipeline import layout
from pipeline.layout import DATASETS
from pipeline.storage import Store

CATALOG = layout.CATALOG


def connect(out: Store, database: str = ":memory:", read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection that reads `out` whatever its filesystem (local, or S3 through fsspec)."""
    con = duckdb.connect(database, read_only=read_only)
    if not out.is_local:
        con.register_filesystem(out.fs)
    return con


def scan(globs: list[str], extra: str = "") -> str:
    """Every file of a dataset has one schema. Not `union_by_name`: with it, DuckDB 2.0.0 sums wrongly
    when a partition column is filtered by a subquery (tests/publishing/test_analyst_outputs.py keeps the check)."""
    quoted = ", ".join("'" + g.replace("'", "''") + "'" for g in globs)
    return f"read_parquet([{quoted}], hive_partitioning = true{extra})"


def refresh_catalog(out: Store) -> str:
    """Rebuild the catalog from the manifests; returns where it was written."""
    manifests = _manifests(out)
    current = {m["run_date"]: m["run_id"] for m in manifests}
    superseded = sorted(set(out.listdir(*layout.kept_runs())) - set(current.values()))
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, CATALOG)
        con = connect(out, path)
        for ds in DATASETS:
            globs = _globs(out, current.values(), ds)
            if not globs:
                continue
            con.execute(f"create view {ds} as select * from {scan(globs)}")
            old = _globs(out, superseded, ds)
            if old:
                con.execute(
                    f"create view {ds}_history as select regexp_extract(filename, "
                    f"'/runs/([^/]+)/published/{ds}/', 1) as superseded_run_id, * exclude (filename) "
                    f"from {scan(old, ', filename = true')}"
                )
            else:
                con.execute(
                    f"create view {ds}_history as select null::varchar as superseded_run_id, * from {ds} where false"
                )
        scenario_sets = _scenario_globs(out)
        if scenario_sets:
            con.execute(f"create view scenario_comparison as select * from {scan(scenario_sets)}")
        runs, trusts = _manifest_tables(manifests)
        con.register("runs_df", runs)
        con.register("trusts_df", trusts)
        con.execute("create table runs as select * from runs_df order by run_date")
        con.execute("create table run_trusts as select * from trusts_df order by run_date, trust_code")
        con.close()
        with open(path, "rb") as f:
            return out.write_bytes(f.read(), *layout.catalog())


def current_runs(out: Store) -> dict[str, str]:
    """The current run id of every run date, from the manifests."""
    return {m["run_date"]: m["run_id"] for m in _manifests(out)}


def _manifests(out: Store) -> list[dict]:
    """The manifest of the committed run of every run date (the commit points)."""
    return [
        json.loads(out.read_bytes(*layout.manifests(), name))
        for name in out.listdir(*layout.manifests())
        if name.endswith(".json")
    ]


def _globs(out: Store, run_ids, ds: str) -> list[str]:
    return [
        out.url_of(*layout.kept_partition(r, ds), "**", "*.parquet")
        for r in sorted(run_ids)
        if out.exists(*layout.kept_partition(r, ds))
    ]


def _scenario_globs(out: Store) -> list[str]:
    """The comparison of every finished scenario set (its manifest written)."""
    return [
        out.url_of(*layout.scenario_comparison(d, set_id))
        for d in sorted(out.listdir(*layout.scenarios()))
        for set_id in sorted(out.listdir(*layout.scenarios(), d))
        if out.exists(*layout.scenario_manifest(d, set_id))
    ]


def _manifest_tables(manifests: list[dict]) -> tuple:
    import pandas as pd  # here, not above: `trp query` reads the catalog without pandas

    runs, trusts = [], []
    for m in manifests:
        runs.append(
            {
                "run_date": pd.Timestamp(m["run_date"]).date(),
                "run_id": m["run_id"],
                "started_at": m["started_at"],
                "finished_at": m["finished_at"],
                "policy_version": m["policy"]["version"],
                "policy_sha256": m["policy"]["sha256"],
                "code_version": m["code_version"],
                "key_id": m.get("key_id"),
                "supersedes": m.get("supersedes"),
                "trusts_published": len(m.get("trusts_published", [])),
            }
        )
        for code, t in sorted(m["trusts"].items()):
            trusts.append(
                {
                    "run_date": pd.Timestamp(m["run_date"]).date(),
                    "run_id": m["run_id"],
                    "trust_code": code,
                    "status": t["status"],
                    "extract_date": t.get("extract_date"),
                    "cases": t.get("cases"),
                    "moved": t.get("moved"),
                    "quarantined_rows": t.get("quarantined_rows", 0),
                    "checks_failed": t.get("checks_failed"),
                }
            )
    run_cols = [
        "run_date",
        "run_id",
        "started_at",
        "finished_at",
        "policy_version",
        "policy_sha256",
        "code_version",
        "key_id",
        "supersedes",
        "trusts_published",
    ]
    trust_cols = [
        "run_date",
        "run_id",
        "trust_code",
        "status",
        "extract_date",
        "cases",
        "moved",
        "quarantined_rows",
        "checks_failed",
    ]
    return pd.DataFrame(runs, columns=run_cols), pd.DataFrame(trusts, columns=trust_cols).astype(
        {"cases": "Int64", "moved": "Int64", "quarantined_rows": "Int64", "checks_failed": "Int64"}
    )


@contextmanager
def open_catalog(out: Store) -> Iterator[duckdb.DuckDBPyConnection]:
    """The catalog, read-only (a copy in a temporary file when the outputs are not on a local disk)."""
    if not out.exists(*layout.catalog()):
        raise FileNotFoundError(f"no catalog at {out.path(*layout.catalog())}: nothing published yet")
    if out.is_local:
        con = connect(out, out.path(*layout.catalog()), read_only=True)
        try:
            yield con
        finally:
            con.close()
        return
    with tempfile.TemporaryDirectory() as tmp:
        local = os.path.join(tmp, CATALOG)
        with open(local, "wb") as f:
            f.write(out.read_bytes(*layout.catalog()))
        con = connect(out, local, read_only=True)
        try:
            yield con
        finally:
            con.close()
