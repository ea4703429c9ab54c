"""Every path the product reads or writes, named once.

Each function returns the parts of a path inside a zone; `storage.Store` joins them under the zone's root
(a folder or an fsspec URL). docs/operations.md shows the same tree for operators.

LANDING, the trusts' uploads::

    <TRUST>/<YYYY-MM-DD>/<file>.csv                     extract_file(trust, date, name)

OUT, what the runs write::

    _locks/run_date=<D>.json                            run_lock(D)
    _runs/<run id>/                                     staging(run_id): one run, until its commit
        manifest.json                                   staged_manifest(run_id)
        trusts/<TRUST>/<kind>.parquet                   staged_extract(run_id, trust, kind)
        trusts/<TRUST>/<step>.json                      step_summary(run_id, trust, step)
        operational/<TRUST>/<D>/                        staged_operational(run_id, trust, D)
        published/<dataset>/run_date=<D>/trust_code=<TRUST>/part-0.parquet
                                                        staged_partition(run_id, dataset, D, trust)
        validation/<TRUST>/<extract date>/<kind>.json   staged_gx_result(run_id, trust, date, kind)
        data-docs/                                      staged_data_docs(run_id)
        scenarios/<scenario>/<TRUST>/<cases|staff>.parquet
                                                        staged_outcome(run_id, scenario, trust, what)
    published/<dataset>/run_date=<D>/                   published(dataset, D): the analysts' tree
    published/_manifests/run_date=<D>.json              manifest(D): the commit of the date's current run
    published/catalog.duckdb                            catalog()
    runs/<run id>/                                      kept_run(run_id): each committed run, immutable
        manifest.json, published/<dataset>/run_date=<D>/, validation/
    operational/<TRUST>/<D>/<file>                      operational(trust, D, file): the trust's lists
    superseded/<run id>/operational/<TRUST>/<D>/        superseded_operational(run_id, trust, D)
    reports/<D>/index.html, reports/<D>/data-docs/      run_report(D), data_docs(D)
    arrivals/<TRUST>/<extract date>/                    arrival(trust, date): checks on arrival
    uploads/<TRUST>/<extract date>/<upload id>/         upload(trust, date, upload_id): each upload kept
    scenarios/<D>/<set id>/                             scenario_set(D, set_id): one policy scenario set
        manifest.json                                   scenario_manifest(D, set_id): written last
        scenarios.yaml, index.html                      scenario_file(D, set_id, name)
        comparison/part-0.parquet                       scenario_comparison(D, set_id)
        trusts/<TRUST>/<scenario>_cases.csv, ..._staff.csv
                                                        scenario_differences(D, set_id, trust, scenario, what)
"""

from __future__ import annotations

import datetime as dt
import re

Parts = tuple[str, ...]

DATE_DIR = re.compile(r"\d{4}-\d{2}-\d{2}")
STAGING, KEPT_RUNS, PUBLISHED, OPERATIONAL = "_runs", "runs", "published", "operational"
SUPERSEDED, REPORTS, ARRIVALS, UPLOADS, LOCKS = "superseded", "reports", "arrivals", "uploads", "_locks"
SCENARIOS = "scenarios"
MANIFESTS, MANIFEST, CATALOG = "_manifests", "manifest.json", "catalog.duckdb"
GX_RESULTS, DATA_DOCS, RUN_REPORT = "validation", "data-docs", "index.html"
PART = "part-0.parquet"
# The published datasets, each a folder of published/ (docs/datasets.md says what each holds).
DATASETS = (
    "staff_assignment",
    "case_alignment",
    "caseload",
    "workforce_balance",
    "retention_requests",
    "progress",
    "validation",
)


def is_date_folder(name: str) -> bool:
    """A folder named by a real date, YYYY-MM-DD and nothing else (no trailing newline, no 2014-02-30)."""
    if not DATE_DIR.fullmatch(name):
        return False
    try:
        dt.date.fromisoformat(name)
    except ValueError:
        return False
    return True


def date_partition(run_date: str) -> str:
    return f"run_date={run_date}"


# LANDING
def extract_folder(trust: str, date: str) -> Parts:
    return (trust, date)


def extract_file(trust: str, date: str, name: str) -> Parts:
    return (trust, date, name)


# OUT: a run while it runs
def run_lock(run_date: str) -> Parts:
    return (LOCKS, f"{date_partition(run_date)}.json")


def staging(run_id: str | None = None) -> Parts:
    """The staging zone, or one run's staging folder."""
    return (STAGING,) if run_id is None else (STAGING, run_id)


def staged_manifest(run_id: str) -> Parts:
    return (*staging(run_id), MANIFEST)


def staged_extract(run_id: str, trust: str, kind: str) -> Parts:
    """A trust's accepted rows of one file, typed, for its decisions and the run-wide CRN check."""
    return (*staging(run_id), "trusts", trust, f"{kind}.parquet")


def step_summary(run_id: str, trust: str, step: str) -> Parts:
    """A trust's summary of one step, as the Airflow tasks hand it on."""
    return (*staging(run_id), "trusts", trust, f"{step}.json")


def staged_operational(run_id: str, trust: str, run_date: str) -> Parts:
    return (*staging(run_id), OPERATIONAL, trust, run_date)


def staged_published(run_id: str) -> Parts:
    return (*staging(run_id), PUBLISHED)


def staged_partition(run_id: str, dataset: str, run_date: str, trust: str) -> Parts:
    return (*staged_published(run_id), dataset, date_partition(run_date), f"trust_code={trust}", PART)


def staged_gx_results(run_id: str) -> Parts:
    return (*staging(run_id), GX_RESULTS)


def staged_gx_result(run_id: str, trust: str, extract_date: str, kind: str) -> Parts:
    """One file's validation result, as the JSON Great Expectations produces."""
    return (*staged_gx_results(run_id), trust, extract_date, f"{kind}.json")


def staged_data_docs(run_id: str) -> Parts:
    return (*staging(run_id), DATA_DOCS)


def staged_outcome(run_id: str, scenario: str, trust: str, what: str) -> Parts:
    """A policy scenario's outcome for a trust's cases or staff, until the scenario set compares them."""
    return (*staging(run_id), SCENARIOS, scenario, trust, f"{what}.parquet")


# OUT: what readers see
def published(dataset: str | None = None, run_date: str | None = None) -> Parts:
    """The analysts' tree, a dataset in it, or a date's partition of one."""
    parts = (PUBLISHED,) if dataset is None else (PUBLISHED, dataset)
    return parts if run_date is None else (*parts, date_partition(run_date))


def manifests() -> Parts:
    return (PUBLISHED, MANIFESTS)


def manifest(run_date: str) -> Parts:
    """The date's current run: writing it is the commit."""
    return (*manifests(), f"{date_partition(run_date)}.json")


def catalog() -> Parts:
    return (PUBLISHED, CATALOG)


def kept_runs() -> Parts:
    return (KEPT_RUNS,)


def kept_run(run_id: str) -> Parts:
    return (KEPT_RUNS, run_id)


def kept_manifest(run_id: str) -> Parts:
    return (*kept_run(run_id), MANIFEST)


def kept_partition(run_id: str, dataset: str, run_date: str | None = None) -> Parts:
    parts = (*kept_run(run_id), PUBLISHED, dataset)
    return parts if run_date is None else (*parts, date_partition(run_date))


def kept_gx_results(run_id: str) -> Parts:
    return (*kept_run(run_id), GX_RESULTS)


def operational(trust: str | None = None, run_date: str | None = None, name: str | None = None) -> Parts:
    """The trusts' operational zone, a trust's folders, one night's folder or a file in it."""
    return (OPERATIONAL, *(p for p in (trust, run_date, name) if p is not None))


def superseded() -> Parts:
    return (SUPERSEDED,)


def superseded_operational(run_id: str, trust: str, run_date: str) -> Parts:
    """A trust's folder that a re-run of its date replaced, kept under the replaced run's id."""
    return (SUPERSEDED, run_id, OPERATIONAL, trust, run_date)


def report_folder(run_date: str) -> Parts:
    return (REPORTS, run_date)


def run_report(run_date: str) -> Parts:
    return (*report_folder(run_date), RUN_REPORT)


def data_docs(run_date: str) -> Parts:
    return (*report_folder(run_date), DATA_DOCS)


def arrival(trust: str, extract_date: str) -> Parts:
    return (ARRIVALS, trust, extract_date)


def uploads(trust: str, extract_date: str | None = None) -> Parts:
    return (UPLOADS, trust) if extract_date is None else (UPLOADS, trust, extract_date)


def upload(trust: str, extract_date: str, upload_id: str) -> Parts:
    return (*uploads(trust, extract_date), upload_id)


TRUST_ZONES = (OPERATIONAL, ARRIVALS)  # what a trust may fetch through the upload service


def trust_zone(zone: str, trust: str, date: str | None = None, name: str | None = None) -> Parts:
    """A trust's folders in one of TRUST_ZONES (both are <zone>/<TRUST>/<date>/<file>)."""
    if zone not in TRUST_ZONES:
        raise ValueError(f"{zone!r} is not a trust's zone")
    return (zone, trust, *(p for p in (date, name) if p is not None))


def scenarios() -> Parts:
    return (SCENARIOS,)


def scenario_set(run_date: str, set_id: str) -> Parts:
    return (SCENARIOS, run_date, set_id)


def scenario_manifest(run_date: str, set_id: str) -> Parts:
    """Written last: a scenario set without it is unfinished and read by nobody."""
    return (*scenario_set(run_date, set_id), MANIFEST)


def scenario_file(run_date: str, set_id: str, name: str) -> Parts:
    return (*scenario_set(run_date, set_id), name)


def scenario_comparison(run_date: str, set_id: str) -> Parts:
    return (*scenario_set(run_date, set_id), "comparison", PART)


def scenario_differences(run_date: str, set_id: str, trust: str, scenario: str, what: str) -> Parts:
    """The cases (`what` = "cases") or people ("staff") of a trust whose outcome differs from the base."""
    return (*scenario_set(run_date, set_id), "trusts", trust, f"{scenario}_{what}.csv")
