"""The nightly run: fan the trusts out on Dask, then publish the run whole, manifest last.

Shared by `trp run`, `trp demo` and the Airflow DAG: one code path.
"""

from __future__ import annotations

import datetime as dt
import logging
import platform
import threading
from collections.abc import Callable
from importlib.metadata import version

import numpy as np
import pandas as pd
import pyarrow as pa

from pipeline import layout, settings
from pipeline.extracts.reading import LINE
from pipeline.extracts.validation import CROSS_TRUST_MESSAGE, CROSS_TRUST_RULE
from pipeline.layout import DATASETS
from pipeline.policy import Policy
from pipeline.publishing.commit import current_manifest, publish
from pipeline.publishing.data_docs import build_site
from pipeline.publishing.pseudonyms import key_fingerprint
from pipeline.runs.cluster import dask_client
from pipeline.runs.planning import (
    EXIT_OK,
    EXIT_PARTIAL,
    USABLE,
    RunPlan,
    RunRefused,
    RunResult,
    TrustJob,
    plan_run,
    release_run_lock,
)
from pipeline.runs.trust_tasks import decide_and_stage, ingest_trust, report_trust, staged_crns
from pipeline.storage import Store

log = logging.getLogger("trp")


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
                decided[summary["trust"]] = _submit_decide(
                    client, plan, job_of[summary["trust"]], summary, len(jobs) - len(decided)
                )

            ingested = _gather(
                client,
                {
                    j.trust: client.submit(
                        ingest_trust,
                        j,
                        key=_task_key("ingest", j),
                        priority=1000 + len(jobs) - i,
                        retries=2,
                        pure=False,
                    )
                    for i, j in enumerate(jobs)
                },
                on_ingested,
            )
            summaries = finish_all(client, plan, ingested, on_trust_done, crns, decided)
        warming.join()
        return commit_run(plan, list(summaries.values()))
    except BaseException:
        abandon(plan)
        raise


def _warm_report() -> None:
    """Import what the commit's run report and catalog use (pygal; DuckDB, 0.1 s) while the workers work."""
    from importlib import import_module

    from pipeline.publishing.run_report import warm_up

    try:
        import_module("pipeline.publishing.catalog")
        warm_up()
    except Exception:  # only a head start: the report itself will say what is wrong
        log.debug("warming the run report failed", exc_info=True)


def finish_all(
    client,
    plan: RunPlan,
    ingested: dict[str, dict],
    on_trust_done: Callable[[dict], None] | None = None,
    crns: dict[str, pd.DataFrame] | None = None,
    decided: dict | None = None,
) -> dict[str, dict]:
    """Phase 2 on Dask, once every trust is ingested: each trust's decisions (`decided`: futures already
    submitted, else submitted here, largest trust first), the run-wide CRN check (on `crns`, the staged CRNs
    already read, where given), then each trust's report as its decisions finish."""
    decided = dict(decided or {})
    order = sorted(
        (j for j in plan.jobs if j.trust in ingested),
        key=lambda j: (-ingested[j.trust].get("accepted_rows", {}).get("cases", 0), j.trust),
    )
    for i, j in enumerate(order):
        if j.trust not in decided:
            decided[j.trust] = _submit_decide(client, plan, j, ingested[j.trust], len(order) - i)
    # Every trust's GX results are staged now: their Data Docs are built on a worker beside the decisions
    docs = client.submit(
        build_site,
        plan.out.url,
        plan.run_id,
        plan.started_at,
        key=f"data-docs-{plan.run_id}",
        priority=len(order) // 2,
        retries=2,
        pure=False,
    )
    conflicts = crn_conflicts(plan, ingested, crns)
    summaries = _gather(
        client,
        {
            j.trust: client.submit(
                report_trust,
                j,
                ingested[j.trust],
                decided[j.trust],
                conflicts.get(j.trust),
                key=_task_key("report", j),
                priority=len(order) - i,
                retries=2,
                pure=False,
            )
            for i, j in enumerate(order)
        },
        on_trust_done,
    )
    _data_docs_built(docs)
    return summaries


def _data_docs_built(docs) -> None:
    """Wait for the run's Data Docs. Their failure does not stop the night (the run report says they are
    missing); TRP_RAISE_FAULTS=1 lets it through, as for a trust's file."""
    try:
        built = docs.result()
    except Exception:
        if settings.load().raise_faults:
            raise
        log.exception("building the run's Data Docs failed; the run goes on without them")
        return
    log.info("Data Docs: %(validation_pages)s validation pages and %(suites)s suites", built)


def _submit_decide(client, plan: RunPlan, job: TrustJob, ingested: dict, rank: int):
    """A trust's decisions, after any waiting ingest (so every trust is ingested early and the run-wide CRN
    check is made while the workers decide, not at the end with the workers idle), biggest first."""
    return client.submit(
        decide_and_stage, job, plan.policy, ingested, key=_task_key("decide", job), priority=rank, retries=2, pure=False
    )


def _task_key(step: str, job: TrustJob) -> str:
    """Unique per run and trust, and named so that Dask sees one task group per step (ingest, decide, report):
    a large group is queued on the scheduler and handed out as workers free up, in priority order (largest
    trust first), rather than split between the workers up front, which left one idle at the end."""
    return f"{step}-{job.run_id}-{job.trust}"


def _gather(client, futures: dict, on_done: Callable[[dict], None] | None = None) -> dict[str, dict]:
    """Each trust's summary as its task finishes; a task that failed all its retries stops the run, named."""
    from dask.distributed import as_completed

    trust_of = {f.key: t for t, f in futures.items()}
    done = {}
    for fut in as_completed(list(futures.values())):
        try:
            s = fut.result()
        except Exception as exc:
            raise RunRefused(
                f"trust {trust_of[fut.key]} failed after retries ({type(exc).__name__}: {exc}): "
                "nothing published; earlier runs are unchanged"
            ) from exc
        done[s["trust"]] = s
        if on_done:
            on_done(s)
    return done


def crn_conflicts(
    plan: RunPlan, ingested: dict[str, dict], crns: dict[str, pa.Table] | None = None
) -> dict[str, list[dict]]:
    """CRNs in more than one trust's accepted extract: a finding for each trust that holds one
    (docs/extract-contract.md).

    Found by pandas' `duplicated` over every trust's staged CRNs at once; only the few shared ones go on to
    be grouped by trust.
    """
    jobs, read = {j.trust: j for j in plan.jobs}, crns or {}
    held = [
        (t, read[t] if t in read else staged_crns(jobs[t]))
        for t, s in sorted(ingested.items())
        if s["status"] in USABLE
    ]
    if not held:
        return {}
    twice = pa.concat_tables([table for _, table in held]).column("crn").to_pandas().duplicated(keep=False).to_numpy()
    ends = np.cumsum([table.num_rows for _, table in held])
    shared = pd.concat(
        [
            table.filter(twice[end - table.num_rows : end]).to_pandas().assign(trust=t)
            for (t, table), end in zip(held, ends.tolist())
        ],
        ignore_index=True,
    )
    trusts_of = shared.groupby("crn")["trust"].agg(lambda t: sorted(set(t)))
    findings: dict[str, list[dict]] = {}
    shared = shared.sort_values(["trust", LINE])
    for trust, crn, line in zip(shared["trust"], shared["crn"], shared[LINE]):
        others = ", ".join(t for t in trusts_of[crn] if t != trust)
        findings.setdefault(trust, []).append(
            {
                "file": "cases.csv",
                "line": int(line),
                "column": "crn",
                "rule": CROSS_TRUST_RULE,
                "message": f"{CROSS_TRUST_MESSAGE} (also in {others})",
                "value": crn,
            }
        )
    return findings


def commit_run(plan: RunPlan, summaries: list[dict]) -> RunResult:
    """Write the manifest (the commit) and swap the staged run in; the exit code says how fresh it was."""
    published = [s["trust"] for s in summaries if s["status"] in USABLE]
    if not published:
        raise RunRefused("no trust had a usable extract: nothing published")
    manifest = {
        "run_id": plan.run_id,
        "run_date": plan.run_date,
        "started_at": plan.started_at,
        "finished_at": dt.datetime.now(dt.UTC).isoformat(),
        "policy": plan.policy.manifest_entry(),
        "code_version": version("transition-pipeline"),
        "python": platform.python_version(),
        "datasets": list(DATASETS),
        "key_id": key_fingerprint(plan.jobs[0].pseudonym_key),
        "unknown_landing_folders": plan.unknown_landing_folders,
        "trusts": {s["trust"]: _manifest_entry(s) for s in sorted(summaries, key=lambda s: s["trust"])},
    }
    try:
        path, committed = publish(plan.out, plan.run_id, plan.run_date, manifest, sorted(published))
    except OSError as exc:
        current = current_manifest(plan.out, plan.run_date)
        if current and current["run_id"] == plan.run_id:
            raise RunRefused(
                f"run {plan.run_id} was committed, but putting it in place failed "
                f"({type(exc).__name__}: {exc}); the next run finishes it"
            ) from exc
        raise RunRefused(
            f"could not commit the run ({type(exc).__name__}: {exc}): nothing published; earlier runs are unchanged"
        ) from exc
    after_publish(plan.out, committed, plan.policy)
    release_run_lock(plan.out, plan.run_date, plan.run_id)
    fresh = all(s["status"] == "FRESH" for s in summaries)
    return RunResult(EXIT_OK if fresh else EXIT_PARTIAL, manifest, path)


def after_publish(out: Store, manifest: dict, policy: Policy) -> None:
    """What a publish refreshes for readers once the run is in place: the catalog and the run report."""
    from pipeline.publishing.catalog import refresh_catalog
    from pipeline.publishing.run_report import write_run_report

    write_run_report(out, manifest, policy.publishing.suppression_threshold, policy.alignment.capacity_limit_pct / 100)
    refresh_catalog(out)


def _manifest_entry(summary: dict) -> dict:
    """A trust's summary for the manifest: its validation results are published as a dataset, counted here."""
    results = summary.get("validation", [])
    return {
        **{k: v for k, v in summary.items() if k != "validation"},
        "checks": len(results),
        "checks_failed": sum(not r["success"] for r in results),
    }


def abandon(plan: RunPlan) -> None:
    """Remove a run's staging unless it was committed (then `recover` finishes it): nothing of it may remain."""
    committed = current_manifest(plan.out, plan.run_date)
    if not committed or committed["run_id"] != plan.run_id:
        plan.out.rm(*layout.staging(plan.run_id))
    release_run_lock(plan.out, plan.run_date, plan.run_id)
