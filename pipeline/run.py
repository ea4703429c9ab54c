"""The nightly run: fan the trusts out on Dask, then publish the run whole, manifest last.

Shared by `trp run`, `trp demo` and the Airflow DAG: one code path.
"""
from __future__ import annotations

import datetime as dt
import json
import logging
import os
import platform
import uuid
from dataclasses import dataclass
from importlib.metadata import version
from typing import Callable

from pipeline.policy import Policy, load_policy
from pipeline.reference import load_reference
from pipeline.storage import Store
from pipeline.trust_task import TrustJob, process_trust

log = logging.getLogger("trp")
DATASETS = ("staff_assignment", "case_alignment", "caseload", "workforce_balance", "validation")
EXIT_OK, EXIT_PARTIAL, EXIT_FAILED = 0, 3, 2


class RunRefused(Exception):
    """Nothing was published; the message says why."""


@dataclass
class RunResult:
    exit_code: int
    manifest: dict
    manifest_path: str


def new_run_id(run_date: str) -> str:
    return f"{run_date}_{dt.datetime.now(dt.timezone.utc):%Y%m%dT%H%M%SZ}_{uuid.uuid4().hex[:8]}"


def run_nightly(
    landing: str,
    out: str,
    run_date: str | None = None,
    policy_file: str | None = None,
    scheduler: str | None = None,
    pseudonym_key: bytes | None = None,
    on_trust_done: Callable[[dict], None] | None = None,
    n_workers: int = 2,
) -> RunResult:
    """One nightly run. Raises RunRefused (nothing published) or returns the manifest and the exit code."""
    run_date = run_date or dt.date.today().isoformat()
    dt.date.fromisoformat(run_date)
    key = pseudonym_key if pseudonym_key is not None else os.environ.get("TRP_PSEUDONYM_KEY", "").encode()
    if not key:
        raise RunRefused("TRP_PSEUDONYM_KEY is not set: refusing to publish pseudonymised datasets without a key")
    policy = load_policy(policy_file)
    reference = load_reference()
    landing_store, out_store = Store(landing), Store(out)
    if not landing_store.exists():
        raise RunRefused(f"landing zone {landing} does not exist")
    for finished in recover(out_store):
        log.warning("finished publishing run %s, interrupted after its manifest was written", finished)
    run_id = new_run_id(run_date)
    known = set(reference.trust_codes)
    unknown = [n for n in landing_store.listdir() if n not in known]
    jobs = [TrustJob(code, *reference.units_of(code), landing, out, run_id, run_date, key, policy.units_per_point)
            for code in reference.trust_codes]
    started = dt.datetime.now(dt.timezone.utc)
    try:
        summaries = _fan_out(jobs, policy, scheduler, on_trust_done, n_workers)
        published = [s for s in summaries if s["status"] in ("FRESH", "CARRIED_OVER")]
        if not published:
            raise RunRefused("no trust had a usable extract: nothing published")
        manifest = {
            "run_id": run_id, "run_date": run_date, "started_at": started.isoformat(),
            "finished_at": dt.datetime.now(dt.timezone.utc).isoformat(),
            "policy": policy.manifest_entry(), "code_version": version("transition-pipeline"),
            "python": platform.python_version(), "datasets": list(DATASETS),
            "unknown_landing_folders": unknown,
            "trusts": {s["trust"]: s for s in sorted(summaries, key=lambda s: s["trust"])},
        }
        path = publish(out_store, run_id, run_date, manifest, [s["trust"] for s in published])
    except BaseException:
        committed = current_manifest(out_store, run_date)
        if not committed or committed["run_id"] != run_id:
            out_store.rm("_runs", run_id)  # never committed: nothing of it may remain
        raise
    fresh = all(s["status"] == "FRESH" for s in summaries)
    return RunResult(EXIT_OK if fresh else EXIT_PARTIAL, manifest, path)


def _fan_out(jobs: list[TrustJob], policy: Policy, scheduler: str | None,
             on_trust_done: Callable[[dict], None] | None, n_workers: int) -> list[dict]:
    """Submit one task per trust (retried, keyed by run and trust) and gather their small summaries."""
    import dask
    from dask.distributed import Client, LocalCluster, as_completed

    address = scheduler or os.environ.get("DASK_SCHEDULER_ADDRESS")
    cluster = None
    if address:
        client = Client(address)
    else:
        # Forked workers start in 0.1 s with this process's imports; spawned ones take 2.5 s each to import
        # pandas, pyarrow and OR-Tools again. DASK_DISTRIBUTED__WORKER__MULTIPROCESSING_METHOD overrides.
        method = os.environ.get("DASK_DISTRIBUTED__WORKER__MULTIPROCESSING_METHOD", "fork")
        with dask.config.set({"distributed.worker.multiprocessing-method": method}):
            cluster = LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                                   memory_limit="4GiB", dashboard_address=":0")
        client = Client(cluster)
    try:
        # Largest extracts first, so the biggest trust (London, a fifth of the work) never starts last.
        ordered = sorted(jobs, key=lambda j: (-Store(j.landing).size(j.trust), j.trust))
        futures = [client.submit(process_trust, job, policy, key=f"trust-{job.trust}-{job.run_id}",
                                 retries=2, pure=False) for job in ordered]
        summaries = []
        for fut in as_completed(futures):
            s = fut.result()
            summaries.append(s)
            if on_trust_done:
                on_trust_done(s)
        return summaries
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def publish(out: Store, run_id: str, run_date: str, manifest: dict, trusts: list[str]) -> str:
    """Commit a fully staged run: the manifest first (the commit), then the swap into the analysts' tree.

    Until the manifest is written nothing visible has changed, so a crash leaves the previous run in place.
    After it, the swap moves each dataset's partition for the date into place (the superseded one goes to
    `superseded/<old run id>/`, outside the analysts' glob); if the swap is interrupted, the next run's
    `recover` finishes it. The staged run is deleted last.
    """
    previous = current_manifest(out, run_date)
    manifest = {**manifest, "supersedes": previous["run_id"] if previous else None, "trusts_published": trusts}
    body = json.dumps(manifest, indent=2, sort_keys=True, default=str).encode()
    out.write_bytes(body, "_runs", run_id, "manifest.json")
    path = out.write_bytes(body, "published", "_manifests", f"run_date={run_date}.json")
    _swap_in(out, manifest)
    return path


def _swap_in(out: Store, manifest: dict) -> None:
    """Move a committed run's staged partitions into place; idempotent, so an interrupted swap can resume."""
    run_id, run_date = manifest["run_id"], manifest["run_date"]
    stage, old = ("_runs", run_id), manifest.get("supersedes") or "unknown"
    part = f"run_date={run_date}"
    for ds in DATASETS:
        if out.exists(*stage, "published", ds, part):
            if out.exists("published", ds, part):
                out.move(("published", ds, part), ("superseded", old, ds, part))
            out.move((*stage, "published", ds, part), ("published", ds, part))
    for trust in out.listdir(*stage, "operational"):
        if out.exists(*stage, "operational", trust, run_date):
            if out.exists("operational", trust, run_date):
                out.move(("operational", trust, run_date), ("superseded", old, "operational", trust, run_date))
            out.move((*stage, "operational", trust, run_date), ("operational", trust, run_date))
    out.write_bytes(json.dumps(manifest, indent=2, sort_keys=True, default=str).encode(),
                    "runs", run_id, "manifest.json")
    out.rm(*stage)


def recover(out: Store) -> list[str]:
    """Finish the swap of any committed run that was interrupted after its manifest; returns their ids.

    A staged run the pointer does not name was never committed; it is left alone (its run may still be
    going).
    """
    finished = []
    for run_id in out.listdir("_runs"):
        if out.exists("_runs", run_id, "manifest.json"):
            manifest = json.loads(out.read_bytes("_runs", run_id, "manifest.json"))
            current = current_manifest(out, manifest["run_date"])
            if current and current["run_id"] == run_id:
                _swap_in(out, manifest)
                finished.append(run_id)
    return finished


def current_manifest(out: Store, run_date: str) -> dict | None:
    if not out.exists("published", "_manifests", f"run_date={run_date}.json"):
        return None
    return json.loads(out.read_bytes("published", "_manifests", f"run_date={run_date}.json"))
