"""`trp scenarios` and the tr_scenarios DAG: one ingest, then every scenario's decisions for every trust on
Dask, compared under `OUT/scenarios/<D>/<set id>/` (manifest last). Never touches the published runs or
the trusts' operational lists: it only reads the nights before, as a run of that date would."""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import version
from typing import NamedTuple

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline import layout
from pipeline.outputs.operational import write_csv
from pipeline.publishing.datasets import write_table
from pipeline.runs.cluster import dask_client
from pipeline.runs.planning import USABLE, RunRefused, TrustJob, checked_run_date, trust_jobs
from pipeline.runs.trust_tasks import decide_staged, ingest_trust
from pipeline.scenarios.comparison import COLUMN_TYPES, COMPARISON_COLUMNS, differences, outcomes, side_figures
from pipeline.scenarios.scenario_set import Scenario, ScenarioSet, load_scenario_set
from pipeline.storage import Store

log = logging.getLogger("trp")


@dataclass(frozen=True)
class ScenarioResult:
    manifest: dict
    folder: str  # where the set's outputs are


def run_scenarios(
    landing: str,
    out: str,
    run_date: str,
    scenarios_file: str,
    scheduler: str | None = None,
    n_workers: int = 2,
    on_done: Callable[[str, dict], None] | None = None,
) -> ScenarioResult:
    """Ingest and validate every trust's extract once, decide each scenario for each trust, compare them.
    The scenarios file is checked whole before any work (ScenarioError); RunRefused when nothing could be
    compared."""
    scenario_set = load_scenario_set(scenarios_file)
    run_date = checked_run_date(run_date)
    if not Store(landing).exists():
        raise RunRefused(f"landing zone {landing} does not exist")
    started = dt.datetime.now(dt.UTC).isoformat()
    # Its own staging folder, named so that no nightly run takes it for the debris of one of its own
    work_id = f"{layout.SCENARIOS}_{run_date}_{scenario_set.set_id}_{uuid.uuid4().hex[:8]}"
    jobs = trust_jobs(landing, out, work_id, run_date, b"", scenario_set.base.policy)
    store = Store(out)
    try:
        with dask_client(scheduler, n_workers) as client:
            ingested, figures = _decide_all(client, scenario_set, jobs, on_done)
        return _compare(store, scenario_set, run_date, jobs, ingested, figures, started)
    finally:
        store.rm(*layout.staging(work_id))


class _Task(NamedTuple):
    """What a future computes: one trust's ingest, or one scenario's decisions for it."""

    step: str
    trust: str
    scenario: str = ""


def _decide_all(client, scenario_set: ScenarioSet, jobs: list[TrustJob], on_done) -> tuple[dict, dict]:
    """Every trust ingested (largest first); as each is, its scenarios' decisions (variants x trusts tasks)."""
    from dask.distributed import as_completed

    order = sorted(jobs, key=lambda j: (-Store(j.landing).size(j.trust), j.trust))
    job_of = {j.trust: j for j in order}
    position = {j.trust: i for i, j in enumerate(order)}
    n = len(scenario_set.scenarios)
    futures = as_completed()
    what: dict[str, _Task] = {}
    for i, j in enumerate(order):
        f = client.submit(
            ingest_trust, j, key=f"ingest-{j.run_id}-{j.trust}", priority=1000 + len(order) - i, retries=2, pure=False
        )
        what[f.key] = _Task("ingest", j.trust)
        futures.add(f)
    ingested: dict[str, dict] = {}
    figures: dict[tuple[str, str], list[dict]] = {}
    for fut in futures:
        step, trust, scenario = what[fut.key]
        try:
            result = fut.result()
        except Exception as exc:
            raise RunRefused(
                f"trust {trust} failed after retries in {step} ({type(exc).__name__}: {exc}): nothing compared"
            ) from exc
        if step == "ingest":
            ingested[trust] = result
            if result["status"] not in USABLE:
                continue
            rank = len(order) - position[trust]  # largest trust first, its base first
            for k, s in enumerate(scenario_set.scenarios):
                f = client.submit(
                    decide_scenario,
                    job_of[trust],
                    s,
                    result,
                    key=f"decide-{s.name}-{job_of[trust].run_id}-{trust}",
                    priority=rank * n + n - k,
                    retries=2,
                    pure=False,
                )
                what[f.key] = _Task("decide", trust, s.name)
                futures.add(f)
        else:
            figures[(scenario, trust)] = result
            if on_done is not None:
                on_done(scenario, {"trust": trust, **_totals(result)})
    return ingested, figures


def decide_scenario(job: TrustJob, scenario: Scenario, ingested: dict) -> list[dict]:
    """One scenario's decisions for one trust (as a run with its policy would make them), its outcomes staged
    for the comparison; its figures by side."""
    d, _, _ = decide_staged(job, scenario.policy, ingested)
    out = Store(job.out)
    for what, table in zip(("cases", "staff"), outcomes(d)):
        write_table(out, pa.Table.from_pandas(table, preserve_index=False), *_outcome(job, scenario.name, what))
    limit = scenario.policy.alignment.capacity_limit_pct / 100
    return side_figures(scenario.name, job.trust, d, limit).to_dict("records")


def _outcome(job: TrustJob, scenario: str, what: str) -> tuple[str, ...]:
    return layout.staged_outcome(job.run_id, scenario, job.trust, what)


_TOTALS = ("cases", "moves", "over_capacity_policy", "over_capacity_110")


def _totals(rows: list[dict]) -> dict:
    return {k: sum(r[k] for r in rows) for k in _TOTALS}


def _read(out: Store, parts: tuple[str, ...]) -> pd.DataFrame:
    return pq.read_table(io.BytesIO(out.read_bytes(*parts))).to_pandas()


def _compare(
    out: Store,
    scenario_set: ScenarioSet,
    run_date: str,
    jobs: list[TrustJob],
    ingested: dict[str, dict],
    figures: dict[tuple[str, str], list[dict]],
    started: str,
) -> ScenarioResult:
    """The comparison dataset, each trust's differences, the page, then the manifest (the set's commit)."""
    from pipeline.publishing.catalog import refresh_catalog
    from pipeline.scenarios.page import render_page

    if not figures:
        raise RunRefused("no trust had a usable extract: nothing compared")
    set_id, names = scenario_set.set_id, [s.name for s in scenario_set.scenarios]
    if out.exists(*layout.scenario_manifest(run_date, set_id)):  # the set again: unreadable until rewritten
        out.rm(*layout.scenario_manifest(run_date, set_id))
    out.rm(*layout.scenario_set(run_date, set_id))
    trusts = sorted({t for _, t in figures})
    comparison = pd.DataFrame(
        [row for s in names for t in trusts for row in figures.get((s, t), [])], columns=COMPARISON_COLUMNS
    ).astype(COLUMN_TYPES)
    comparison.insert(0, "scenario_set", set_id)
    comparison.insert(0, "run_date", dt.date.fromisoformat(run_date))
    write_table(
        out, pa.Table.from_pandas(comparison, preserve_index=False), *layout.scenario_comparison(run_date, set_id)
    )
    changed: dict[str, dict[str, dict[str, int]]] = {}
    job_of = {j.trust: j for j in jobs}
    for t in trusts:
        base = {w: _read(out, _outcome(job_of[t], names[0], w)) for w in ("cases", "staff")}
        for s in names[1:]:
            cases = differences(base["cases"], _read(out, _outcome(job_of[t], s, "cases")), "crn")
            staff = differences(
                base["staff"], _read(out, _outcome(job_of[t], s, "staff")), "staff_code", ["grade", "role"]
            )
            write_csv(out, cases, *layout.scenario_differences(run_date, set_id, t, s, "cases"))
            write_csv(out, staff, *layout.scenario_differences(run_date, set_id, t, s, "staff"))
            changed.setdefault(s, {})[t] = {"cases": len(cases), "staff": len(staff)}
    manifest = {
        "scenario_set": set_id,
        "run_date": run_date,
        "started_at": started,
        "finished_at": dt.datetime.now(dt.UTC).isoformat(),
        "code_version": version("transition-pipeline"),
        "base_policy_file": scenario_set.base_file,
        "scenarios": scenario_set.manifest_entry(),
        "trusts": {
            t: {k: s.get(k) for k in ("status", "extract_date", "quarantined_rows")}
            for t, s in sorted(ingested.items())
        },
        "outcomes_changed": changed,
        "totals": {
            s: {k: int(v) for k, v in comparison[comparison["scenario"] == s][list(_TOTALS)].sum().items()}
            for s in names
        },
    }
    threshold = scenario_set.base.policy.publishing.suppression_threshold
    page = render_page(manifest, comparison, threshold)
    out.write_bytes(scenario_set.source, *layout.scenario_file(run_date, set_id, "scenarios.yaml"))
    out.write_bytes(page.encode("utf-8"), *layout.scenario_file(run_date, set_id, "index.html"))
    out.write_bytes(
        json.dumps(manifest, indent=2, sort_keys=True).encode(), *layout.scenario_manifest(run_date, set_id)
    )
    refresh_catalog(out)
    return ScenarioResult(manifest, out.url_of(*layout.scenario_set(run_date, set_id)))
