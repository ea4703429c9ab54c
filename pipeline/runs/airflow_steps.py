"""The nightly run cut into the steps an orchestrator schedules: plan, ingest one trust, decide all, publish.

The same functions `trp run` is made of (`pipeline.runs.nightly`), with what passes between steps kept small: each
step gets the run as a small dict and leaves its summaries in the run's staging folder, so only paths and
counts travel through XCom. Importing this module is cheap (no pandas, pyarrow or Dask at the top), so
DAG files that import it parse fast.
"""

from __future__ import annotations

import json
from typing import Any

from pipeline import layout

UNUSABLE = ("REJECTED", "NO_EXTRACT")


def _plan(run: dict, checked: bool = True):
    """The run as a later step sees it: planned again, and (`checked`) refused if the policy or the key
    changed since `start` (one run under two policies, or pseudonyms under two keys, published as one)."""
    from pipeline.runs.planning import RunRefused, plan_run

    plan = plan_run(run["landing"], run["out"], run["run_date"], run.get("policy_file"), run_id=run["run_id"])
    plan.started_at = run["started_at"]
    if not checked:
        return plan
    if run.get("policy_sha256", plan.policy.sha256) != plan.policy.sha256:
        raise RunRefused(
            f"the policy changed during run {run['run_id']} (SHA-256 {run['policy_sha256'][:12]}… at "
            f"the start, {plan.policy.sha256[:12]}… now): start a new run"
        )
    if run.get("key_id", _key_id(plan)) != _key_id(plan):
        raise RunRefused(
            f"TRP_PSEUDONYM_KEY changed during run {run['run_id']}: its pseudonyms would not join; start a new run"
        )
    return plan


def _key_id(plan) -> str:
    """A fingerprint of the pseudonym key that says whether two steps used the same key, and nothing of it."""
    from pipeline.publishing.pseudonyms import key_fingerprint

    return key_fingerprint(plan.jobs[0].pseudonym_key)


def _summary_path(run: dict, step: str, trust: str) -> tuple[str, ...]:
    return layout.step_summary(run["run_id"], trust, step)


def _write_summary(run: dict, step: str, summary: dict) -> None:
    from pipeline.storage import Store

    Store(run["out"]).write_bytes(
        json.dumps(summary, sort_keys=True, default=str).encode(), *_summary_path(run, step, summary["trust"])
    )


def _read_summaries(run: dict, step: str) -> dict[str, dict]:
    from pipeline.storage import Store

    out = Store(run["out"])
    found = {}
    for trust in run["trusts"]:
        if out.exists(*_summary_path(run, step, trust)):
            found[trust] = json.loads(out.read_bytes(*_summary_path(run, step, trust)))
    return found


def start(landing: str, out: str, run_date: str, policy_file: str | None = None) -> dict[str, Any]:
    """Check the run can go ahead and name it; the dict every later step takes."""
    from pipeline.runs.planning import plan_run

    plan = plan_run(landing, out, run_date, policy_file, one_process=False)  # tasks run in many processes
    return {
        "run_id": plan.run_id,
        "run_date": plan.run_date,
        "landing": landing,
        "out": out,
        "policy_file": policy_file,
        "started_at": plan.started_at,
        "trusts": [j.trust for j in plan.jobs],
        "policy_sha256": plan.policy.sha256,
        "key_id": _key_id(plan),
    }


def ingest(run: dict, trust: str) -> dict:
    """Ingest and validate one trust (phase 1); its summary goes to staging, its outcome comes back."""
    from pipeline.runs.trust_tasks import ingest_trust

    job = next(j for j in _plan(run).jobs if j.trust == trust)
    summary = ingest_trust(job)
    _write_summary(run, "ingest", summary)
    return {
        "trust": trust,
        "status": summary["status"],
        "extract_date": summary["extract_date"],
        "quarantined_rows": summary.get("quarantined_rows", 0),
        "rejected_files": summary["rejected_files"],
    }


def decide(run: dict, scheduler: str | None = None) -> dict[str, str]:
    """Phase 2 for every ingested trust on Dask (one cluster for the whole step); each trust's status."""
    from pipeline.runs.cluster import dask_client
    from pipeline.runs.nightly import finish_all

    plan = _plan(run)
    ingested = _read_summaries(run, "ingest")
    missing = sorted(set(run["trusts"]) - set(ingested))
    if missing:
        raise RuntimeError(f"no ingest summary for {', '.join(missing)}: their ingest tasks did not finish")
    with dask_client(scheduler) as client:
        done = finish_all(client, plan, ingested)
    for summary in done.values():
        _write_summary(run, "finish", summary)
    return {t: s["status"] for t, s in sorted(done.items())}


def publish(run: dict) -> dict:
    """Commit the run (manifest last). Exit code as `trp run` gives it, and where the manifest is."""
    from pipeline.runs.nightly import commit_run

    result = commit_run(_plan(run), list(_read_summaries(run, "finish").values()))
    return {
        "exit_code": result.exit_code,
        "manifest": result.manifest_path,
        "statuses": {t: s["status"] for t, s in result.manifest["trusts"].items()},
    }


def cleanup(run: dict) -> None:
    """After a failed run: remove its staging unless it was committed (`abandon` checks)."""
    from pipeline.runs.nightly import abandon

    abandon(_plan(run, checked=False))  # cleaning up after a refused step too
