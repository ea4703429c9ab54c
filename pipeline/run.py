"""The nightly run: fan the trusts out on Dask, then publish the run whole, manifest last.

Shared by `trp run`, `trp demo` and the Airflow DAG: one code path.
"""
from __future__ import annotations

import datetime as dt
import json
import logging
import os
import platform
import socket
import threading
import uuid
from dataclasses import dataclass
from importlib.metadata import version
from contextlib import contextmanager
from typing import Callable, Iterator

import numpy as np
import pandas as pd
import pyarrow as pa

from pipeline.data_docs import RESULTS, SITE, build_site
from pipeline.orchestration import DATASETS
from pipeline.pseudonyms import key_fingerprint
from pipeline.policy import Policy, load_policy
from pipeline.reference import load_reference
from pipeline.storage import Store
from pipeline.trust_task import (LINE, TrustJob, decide_and_stage, ingest_trust, is_date_folder, report_trust,
                                 staged_crns)
from pipeline.validation import CROSS_TRUST_MESSAGE, CROSS_TRUST_RULE

log = logging.getLogger("trp")
EXIT_OK, EXIT_PARTIAL, EXIT_FAILED = 0, 3, 2
USABLE = ("FRESH", "CARRIED_OVER")


class RunRefused(Exception):
    """Nothing was published; the message says why."""


@dataclass
class RunResult:
    exit_code: int
    manifest: dict
    manifest_path: str


def checked_run_date(text: str) -> str:
    """A run date as given, if it is a real date written YYYY-MM-DD; RunRefused, saying so, otherwise."""
    if not is_date_folder(text):
        raise RunRefused(f"the run date must be a real date written YYYY-MM-DD (such as 2014-06-01), not {text!r}")
    return text


def new_run_id(run_date: str) -> str:
    return f"{run_date}_{dt.datetime.now(dt.timezone.utc):%Y%m%dT%H%M%SZ}_{uuid.uuid4().hex[:8]}"


@dataclass
class RunPlan:
    """Everything a run's steps share: who, where, which policy; built once by `plan_run`."""
    run_id: str
    run_date: str
    policy: Policy
    jobs: list[TrustJob]
    unknown_landing_folders: list[str]
    started_at: str

    @property
    def out(self) -> Store:
        return Store(self.jobs[0].out)


def plan_run(landing: str, out: str, run_date: str | None = None, policy_file: str | None = None,
             pseudonym_key: bytes | None = None, run_id: str | None = None,
             one_process: bool = True) -> RunPlan:
    """Check what a run needs before any work (key, landing zone, policy), finish any interrupted publish,
    and name the run, taking the run date's lock (`one_process`: the whole run lives in this process, so
    its death frees the lock). Raises RunRefused when the run cannot go ahead."""
    run_date = dt.date.today().isoformat() if run_date is None else checked_run_date(run_date)
    policy = load_policy(policy_file)
    key = pseudonym_key if pseudonym_key is not None else os.environ.get("TRP_PSEUDONYM_KEY", "").encode()
    if not key:
        raise RunRefused("TRP_PSEUDONYM_KEY is not set: refusing to publish pseudonymised datasets without a key")
    reference = load_reference()
    landing_store, out_store = Store(landing), Store(out)
    if not landing_store.exists():
        raise RunRefused(f"landing zone {landing} does not exist")
    for finished in recover(out_store):
        log.warning("finished publishing run %s, interrupted after its manifest was written", finished)
    if run_id is None:  # a new run, not a later step of one (the Airflow tasks re-plan with the run's id)
        run_id = new_run_id(run_date)
        acquire_run_lock(out_store, run_date, run_id, os.getpid() if one_process else None)
        for debris in (r for r in out_store.listdir("_runs") if r.startswith(f"{run_date}_") and r != run_id):
            log.warning("removing the staging of run %s, which died before its commit", debris)
            out_store.rm("_runs", debris)
    known = set(reference.trust_codes)
    jobs = [TrustJob(code, *reference.units_of(code), landing, out, run_id, run_date, key, policy.units_per_point,
                     extract_limits=policy.extracts)
            for code in reference.trust_codes]
    return RunPlan(run_id, run_date, policy, jobs, [n for n in landing_store.listdir() if n not in known],
                   dt.datetime.now(dt.timezone.utc).isoformat())


def _lock(run_date: str) -> tuple[str, str]:
    return ("_locks", f"run_date={run_date}.json")


def acquire_run_lock(out: Store, run_date: str, run_id: str, pid: int | None) -> None:
    """One run per run date at a time: an exclusive create (a conditional PUT on S3), so of two runs started
    together exactly one goes ahead. A lock is taken over when it was left by a run that died: its process
    (`pid`, for runs that live in one process) is gone from this host, or it is older than
    TRP_LOCK_MAX_AGE_HOURS (12)."""
    now = dt.datetime.now(dt.timezone.utc)
    body = json.dumps({"run_id": run_id, "host": socket.gethostname(), "pid": pid,
                       "started_at": now.isoformat()}).encode()
    if out.create_exclusive(body, *_lock(run_date)):
        return
    try:
        held = json.loads(out.read_bytes(*_lock(run_date)))
    except FileNotFoundError:  # released in between: try once more
        if out.create_exclusive(body, *_lock(run_date)):
            return
        raise RunRefused(f"run date {run_date} is being run by another run: nothing done") from None
    max_age = dt.timedelta(hours=float(os.environ.get("TRP_LOCK_MAX_AGE_HOURS", "12")))
    if now - dt.datetime.fromisoformat(held["started_at"]) > max_age or _died(held):
        log.warning("taking over the lock of run %s (started %s): its run is gone", held["run_id"],
                    held["started_at"])
        out.rm(*_lock(run_date))
        if out.create_exclusive(body, *_lock(run_date)):
            return
    raise RunRefused(
        f"run date {run_date} is already being run by {held['run_id']} (host {held['host']}, pid {held['pid']}, "
        f"since {held['started_at']}): nothing done. If that run died, remove {out.url_of(*_lock(run_date))} "
        f"or wait until it is older than {max_age}")


def _died(held: dict) -> bool:
    if held.get("pid") is None or held.get("host") != socket.gethostname():
        return False
    try:
        os.kill(held["pid"], 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def release_run_lock(out: Store, run_date: str, run_id: str) -> None:
    """Release the run date's lock if this run holds it."""
    try:
        held = json.loads(out.read_bytes(*_lock(run_date)))
    except FileNotFoundError:
        return
    if held["run_id"] == run_id:
        out.rm(*_lock(run_date))


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
    """One nightly run. Raises RunRefused (nothing published) or returns the manifest and the exit code.

    Per-trust Dask tasks: ingest and validate; decide and stage (as soon as that trust is ingested); and,
    once the run-wide CRN check has seen every extract, the trust's report; then the commit.
    """
    plan = plan_run(landing, out, run_date, policy_file, pseudonym_key)
    try:
        with dask_client(scheduler, n_workers) as client:
            # This process waits on the workers from here: meanwhile, load what the run report's charts need
            # (only now: a thread started before the cluster forks its workers would make them spawn instead)
            warming = threading.Thread(target=_warm_report, name="warm-report", daemon=True)
            warming.start()
            # Largest extracts first, so the biggest trust (London, a fifth of the work) never starts last.
            jobs = sorted(plan.jobs, key=lambda j: (-Store(j.landing).size(j.trust), j.trust))
            crns: dict[str, pd.DataFrame] = {}  # read while the other trusts are still being ingested
            decided: dict = {}  # each trust's decisions start as soon as it is ingested: no wait for the others
            job_of = {j.trust: j for j in jobs}

            def on_ingested(summary: dict) -> None:
                if summary["status"] in USABLE:
                    crns[summary["trust"]] = staged_crns(job_of[summary["trust"]])
                decided[summary["trust"]] = _submit_decide(client, plan, job_of[summary["trust"]], summary,
                                                           len(jobs) - len(decided))

            ingested = _gather(client, {j.trust: client.submit(
                ingest_trust, j, key=_task_key("ingest", j), priority=1000 + len(jobs) - i, retries=2, pure=False)
                for i, j in enumerate(jobs)}, on_ingested)
            summaries = finish_all(client, plan, ingested, on_trust_done, crns, decided)
        warming.join()
        return commit_run(plan, list(summaries.values()))
    except BaseException:
        abandon(plan)
        raise


def _warm_report() -> None:
    """Import what the commit's run report and catalog use (pygal; DuckDB, 0.1 s) while the workers work."""
    from importlib import import_module

    from pipeline.run_report import warm_up

    try:
        import_module("pipeline.catalog")
        warm_up()
    except Exception:  # only a head start: the report itself will say what is wrong
        log.debug("warming the run report failed", exc_info=True)


def finish_all(client, plan: RunPlan, ingested: dict[str, dict],
               on_trust_done: Callable[[dict], None] | None = None,
               crns: dict[str, pd.DataFrame] | None = None, decided: dict | None = None) -> dict[str, dict]:
    """Phase 2 on Dask, once every trust is ingested: each trust's decisions (`decided`: futures already
    submitted, else submitted here, largest trust first), the run-wide CRN check (on `crns`, the staged CRNs
    already read, where given), then each trust's report as its decisions finish."""
    decided = dict(decided or {})
    order = sorted((j for j in plan.jobs if j.trust in ingested),
                   key=lambda j: (-ingested[j.trust].get("accepted_rows", {}).get("cases", 0), j.trust))
    for i, j in enumerate(order):
        if j.trust not in decided:
            decided[j.trust] = _submit_decide(client, plan, j, ingested[j.trust], len(order) - i)
    # Every trust's GX results are staged now: their Data Docs are built on a worker beside the decisions
    docs = client.submit(build_site, plan.out.url, plan.run_id, plan.started_at, key=f"data-docs-{plan.run_id}",
                         priority=len(order) // 2, retries=2, pure=False)
    conflicts = crn_conflicts(plan, ingested, crns)
    summaries = _gather(client, {j.trust: client.submit(
        report_trust, j, ingested[j.trust], decided[j.trust], conflicts.get(j.trust),
        key=_task_key("report", j), priority=len(order) - i, retries=2, pure=False)
        for i, j in enumerate(order)}, on_trust_done)
    _data_docs_built(docs)
    return summaries


def _data_docs_built(docs) -> None:
    """Wait for the run's Data Docs. Their failure does not stop the night (the run report says they are
    missing); TRP_RAISE_FAULTS=1 lets it through, as for a trust's file."""
    try:
        built = docs.result()
    except Exception:
        if os.environ.get("TRP_RAISE_FAULTS") == "1":
            raise
        log.exception("building the run's Data Docs failed; the run goes on without them")
        return
    log.info("Data Docs: %(validation_pages)s validation pages and %(suites)s suites", built)


def _submit_decide(client, plan: RunPlan, job: TrustJob, ingested: dict, rank: int):
    """A trust's decisions, after any waiting ingest (so every trust is ingested early and the run-wide CRN
    check is made while the workers decide, not at the end with the workers idle), biggest first."""
    return client.submit(decide_and_stage, job, plan.policy, ingested, key=_task_key("decide", job),
                         priority=rank, retries=2, pure=False)


def _task_key(step: str, job: TrustJob) -> str:
    """Unique per run and trust, and named so that Dask sees one task group per step (ingest, decide, report):
    a large group is queued on the scheduler and handed out as workers free up, in priority order (largest
    trust first), rather than split between the workers up front, which left one idle at the end."""
    return f"{step}-{job.run_id}-{job.trust}"


@contextmanager
def dask_client(scheduler: str | None = None, n_workers: int = 2) -> Iterator:
    """A client of the cluster at `scheduler` (or DASK_SCHEDULER_ADDRESS), else of a local cluster of worker
    processes (one thread each: GX contexts and the solvers are not thread-safe) that is closed after."""
    import dask
    from dask.distributed import Client, LocalCluster

    address = scheduler or os.environ.get("DASK_SCHEDULER_ADDRESS")
    if address:
        with Client(address) as client:
            yield client
        return
    # Forked workers start in 0.1 s with this process's imports; spawned ones take 2.5 s each to import
    # pandas, pyarrow and OR-Tools again. But forking a process that runs other threads (an Airflow task, a
    # caller polling, an in-process server) can copy a lock some thread holds, and the worker hangs at start:
    # fork only when this is the process's one thread. DASK_DISTRIBUTED__WORKER__MULTIPROCESSING_METHOD overrides.
    from pipeline.worker_setup import ArrowThreads

    method = os.environ.get("DASK_DISTRIBUTED__WORKER__MULTIPROCESSING_METHOD") or (
        "fork" if threading.active_count() == 1 else "spawn")
    if method == "fork":  # Great Expectations takes 3-6 s to import: once here, not in every worker of every run
        from pipeline.validation import import_gx

        import_gx()
    # The workers' statistical profiler (a thread sampling the task's stack every 10 ms, for the dashboard)
    # is off: a local run's dashboard is not watched, and six alternating scale-10 runs averaged 4% faster.
    # The event loops wake less often: a tick (which only detects a blocked loop) every second, not 20 ms, in
    # the scheduler, each nanny and each worker; memory checked every 0.5 s, not 0.1 s (a worker peaks at
    # a sixth of its limit); the dashboard's system monitor every 2 s. The driver's CPU fell by 0.3-0.45 s in
    # each of six scale-10 runs, and the run was faster in five of six alternating pairs.
    with dask.config.set({"distributed.worker.multiprocessing-method": method,
                          "distributed.worker.profile.enabled": False,
                          "distributed.admin.tick.interval": "1s",
                          "distributed.worker.memory.monitor-interval": "500ms",
                          "distributed.admin.system-monitor.interval": "2s"}):
        cluster = LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                               memory_limit="4GiB", dashboard_address="127.0.0.1:0")
    try:
        with Client(cluster) as client:
            client.register_plugin(ArrowThreads(max(1, (os.cpu_count() or 1) // n_workers)), name="arrow-threads")
            yield client
    finally:
        cluster.close()


def _gather(client, futures: dict, on_done: Callable[[dict], None] | None = None) -> dict[str, dict]:
    """Each trust's summary as its task finishes; a task that failed all its retries stops the run, named."""
    from dask.distributed import as_completed

    trust_of = {f.key: t for t, f in futures.items()}
    done = {}
    for fut in as_completed(list(futures.values())):
        try:
            s = fut.result()
        except Exception as exc:
            raise RunRefused(f"trust {trust_of[fut.key]} failed after retries ({type(exc).__name__}: {exc}): "
                             "nothing published; earlier runs are unchanged") from exc
        done[s["trust"]] = s
        if on_done:
            on_done(s)
    return done


def crn_conflicts(plan: RunPlan, ingested: dict[str, dict],
                  crns: dict[str, pa.Table] | None = None) -> dict[str, list[dict]]:
    """CRNs in more than one trust's accepted extract: a finding for each trust that holds one (spec §3).

    Found by `text.repeated` over the run's 2.4 million CRNs at national volume (0.1-0.3 s; Arrow's value_counts
    took 0.6-1.1 s, in this process, while the workers need both cores); only the few shared ones reach pandas.
    """
    jobs, read = {j.trust: j for j in plan.jobs}, crns or {}
    held = [(t, read[t] if t in read else staged_crns(jobs[t]))
            for t, s in sorted(ingested.items()) if s["status"] in USABLE]
    if not held:
        return {}
    twice = pa.concat_tables([table for _, table in held]).column("crn").to_pandas().duplicated(keep=False).to_numpy()
    ends = np.cumsum([table.num_rows for _, table in held])
    shared = pd.concat([table.filter(twice[end - table.num_rows:end]).to_pandas().assign(trust=t)
                        for (t, table), end in zip(held, ends.tolist())], ignore_index=True)
    trusts_of = shared.groupby("crn")["trust"].agg(lambda t: sorted(set(t)))
    findings: dict[str, list[dict]] = {}
    shared = shared.sort_values(["trust", LINE])
    for trust, crn, line in zip(shared["trust"], shared["crn"], shared[LINE]):
        others = ", ".join(t for t in trusts_of[crn] if t != trust)
        findings.setdefault(trust, []).append({
            "file": "cases.csv", "line": int(line), "column": "crn", "rule": CROSS_TRUST_RULE,
            "message": f"{CROSS_TRUST_MESSAGE} (also in {others})", "value": crn})
    return findings


def commit_run(plan: RunPlan, summaries: list[dict]) -> RunResult:
    """Write the manifest (the commit) and swap the staged run in; the exit code says how fresh it was."""
    published = [s["trust"] for s in summaries if s["status"] in USABLE]
    if not published:
        raise RunRefused("no trust had a usable extract: nothing published")
    manifest = {
        "run_id": plan.run_id, "run_date": plan.run_date, "started_at": plan.started_at,
        "finished_at": dt.datetime.now(dt.timezone.utc).isoformat(),
        "policy": plan.policy.manifest_entry(), "code_version": version("transition-pipeline"),
        "python": platform.python_version(), "datasets": list(DATASETS),
        "key_id": key_fingerprint(plan.jobs[0].pseudonym_key),
        "unknown_landing_folders": plan.unknown_landing_folders,
        "trusts": {s["trust"]: _manifest_entry(s) for s in sorted(summaries, key=lambda s: s["trust"])},
    }
    try:
        path, committed = publish(plan.out, plan.run_id, plan.run_date, manifest, sorted(published))
    except OSError as exc:
        current = current_manifest(plan.out, plan.run_date)
        if current and current["run_id"] == plan.run_id:
            raise RunRefused(f"run {plan.run_id} was committed, but putting it in place failed "
                             f"({type(exc).__name__}: {exc}); the next run finishes it") from exc
        raise RunRefused(f"could not commit the run ({type(exc).__name__}: {exc}): nothing published; earlier "
                         "runs are unchanged") from exc
    after_publish(plan.out, committed, plan.policy)
    release_run_lock(plan.out, plan.run_date, plan.run_id)
    fresh = all(s["status"] == "FRESH" for s in summaries)
    return RunResult(EXIT_OK if fresh else EXIT_PARTIAL, manifest, path)


def after_publish(out: Store, manifest: dict, policy: Policy) -> None:
    """What a publish refreshes for readers once the run is in place: the catalog and the run report."""
    from pipeline.catalog import refresh_catalog
    from pipeline.run_report import write_run_report

    write_run_report(out, manifest, policy.publishing.suppression_threshold,
                     policy.alignment.capacity_limit_pct / 100)
    refresh_catalog(out)


def _manifest_entry(summary: dict) -> dict:
    """A trust's summary for the manifest: its validation results are published as a dataset, counted here."""
    results = summary.get("validation", [])
    return {**{k: v for k, v in summary.items() if k != "validation"},
            "checks": len(results), "checks_failed": sum(not r["success"] for r in results)}


def abandon(plan: RunPlan) -> None:
    """Remove a run's staging unless it was committed (then `recover` finishes it): nothing of it may remain."""
    committed = current_manifest(plan.out, plan.run_date)
    if not committed or committed["run_id"] != plan.run_id:
        plan.out.rm("_runs", plan.run_id)
    release_run_lock(plan.out, plan.run_date, plan.run_id)


def publish(out: Store, run_id: str, run_date: str, manifest: dict, trusts: list[str]) -> tuple[str, dict]:
    """Commit a fully staged run: the manifest first (the commit), then put it in place for readers.

    Until the manifest is written nothing visible has changed, so a crash leaves the previous run in place.
    After it, `_swap_in` keeps the run's datasets under `runs/<run id>/published/` (immutable: what the
    catalog reads, and the audit copy once superseded) and replaces the date's partitions in the analysts'
    `published/` tree with them; if that is interrupted, the next run's `recover` finishes it. First, the
    temporary files of writes a killed worker never finished are removed from the staging (its retry
    wrote the file whole), so that none is published.
    """
    for left in out.remove_partial("_runs", run_id):
        log.warning("removed %s, left by a worker stopped mid-write", left)
    previous = current_manifest(out, run_date)
    manifest = {**manifest, "supersedes": previous["run_id"] if previous else None, "trusts_published": trusts}
    body = json.dumps(manifest, indent=2, sort_keys=True, default=str).encode()
    out.write_bytes(body, "_runs", run_id, "manifest.json")
    path = out.write_bytes(body, "published", "_manifests", f"run_date={run_date}.json")
    _swap_in(out, manifest)
    return path, manifest


def _swap_in(out: Store, manifest: dict) -> None:
    """Put a committed run in place; idempotent, so an interrupted swap can resume.

    Per dataset: the staged partition becomes the run's kept copy, then the date's partition in
    `published/` is removed and the kept one copied in (local: hard links). The glob never shows two
    versions of a date; during the swap it may briefly show none, so readers who need a whole run at every
    instant (object stores, where nothing renames atomically) read through the catalog, which follows the
    manifests. Trusts' operational folders are swapped the same way; the replaced ones go to
    `superseded/<old run id>/operational/`.
    """
    run_id, run_date = manifest["run_id"], manifest["run_date"]
    stage, old = ("_runs", run_id), manifest.get("supersedes") or "unknown"
    part = f"run_date={run_date}"
    for ds in DATASETS:
        kept = ("runs", run_id, "published", ds, part)
        if out.exists(*stage, "published", ds, part):
            out.rm(*kept)
            out.move((*stage, "published", ds, part), kept)
        if out.exists(*kept):
            out.rm("published", ds, part)
            out.copy(kept, ("published", ds, part))
    for trust in out.listdir(*stage, "operational"):
        if out.exists(*stage, "operational", trust, run_date):
            if out.exists("operational", trust, run_date):
                out.move(("operational", trust, run_date), ("superseded", old, "operational", trust, run_date))
            out.move((*stage, "operational", trust, run_date), ("operational", trust, run_date))
    if out.exists(*stage, RESULTS):  # each file's GX result, kept with the run
        out.rm("runs", run_id, RESULTS)
        out.move((*stage, RESULTS), ("runs", run_id, RESULTS))
    if out.exists(*stage, SITE):  # the run's Data Docs, beside its report
        out.rm("reports", run_date, SITE)
        out.move((*stage, SITE), ("reports", run_date, SITE))
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
    if finished:
        from pipeline.catalog import refresh_catalog

        refresh_catalog(out)
    return finished


def current_manifest(out: Store, run_date: str) -> dict | None:
    if not out.exists("published", "_manifests", f"run_date={run_date}.json"):
        return None
    return json.loads(out.read_bytes("published", "_manifests", f"run_date={run_date}.json"))
