"""
### tr_nightly: the transition pipeline's nightly run

Every night at 02:00 (Europe/London): take each trust's newest extract from the landing zone, validate it,
split the staff, align every case to an offender manager, and publish the pseudonymised datasets and each
trust's operational lists. The same run as `trp run` (one code path: `pipeline.runs.airflow_steps`).

* **plan**: checks the run can go ahead (pseudonym key, landing zone, policy) and names it.
* **ingest** (one mapped task per trust, labelled by trust code): validation against the suites in
  `expectations/`. A trust with no usable extract is *skipped*, and the others go on.
* **decide**: the cross-trust CRN check, then the staff split and case alignment of every trust on Dask
  (`DASK_SCHEDULER_ADDRESS`, else one local cluster for this task).
* **publish**: writes the manifest last, then swaps the run in; a re-run of a date replaces it whole.
* **report**: what was published, which trusts were rejected or carried over.
* **cleanup**: after a failure, removes the run's staging; earlier runs stay as they were.

Settings (Airflow Variable of the same name, else the environment): `TRP_LANDING`, `TRP_OUT`, `TRP_POLICY`,
`TRP_PSEUDONYM_KEY`, `DASK_SCHEDULER_ADDRESS`. Params: `run_date` (default: the run's date in London),
`policy_file`.
"""

from __future__ import annotations

import os
from datetime import timedelta

import pendulum
from airflow.sdk import Asset, Param, dag, get_current_context, task

from pipeline import settings
from pipeline.layout import DATASETS

LONDON = pendulum.timezone("Europe/London")
# Each night starts from what the night before decided: a date's tasks wait for the same tasks of the date
# before to have succeeded (or been skipped), so dates run strictly in order and a backfill oldest first.
DEFAULTS = {
    "owner": "transition-programme-data",
    "retries": 2,
    "retry_delay": timedelta(minutes=1),
    "retry_exponential_backoff": True,
    "max_retry_delay": timedelta(minutes=10),
    "depends_on_past": True,
}


def _settings() -> settings.Settings:
    """The settings (Airflow Variables, else the environment); the key is handed on to the run's steps through
    the task's environment, where every run reads it."""
    env = settings.from_airflow()
    if env.pseudonym_key:
        os.environ["TRP_PSEUDONYM_KEY"] = env.pseudonym_key
    return env


@dag(
    dag_id="tr_nightly",
    schedule="0 2 * * *",
    start_date=pendulum.datetime(2014, 4, 1, tz=LONDON),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULTS,
    tags=["transition", "nightly", "nps-crc"],
    doc_md=__doc__,
    params={
        "run_date": Param(
            None,
            type=["null", "string"],
            format="date",
            description="Run date YYYY-MM-DD (default: the run's date in London)",
        ),
        "policy_file": Param(None, type=["null", "string"], description="Policy file (default: TRP_POLICY)"),
    },
)
def tr_nightly():
    @task(doc_md="Check the run can go ahead and name it.")
    def plan() -> dict:
        from pipeline.runs.airflow_steps import start

        ctx = get_current_context()
        when = ctx.get("logical_date") or ctx["dag_run"].run_after
        run_date = ctx["params"].get("run_date") or pendulum.instance(when).in_timezone(LONDON).date().isoformat()
        env = _settings()
        return start(env.landing, env.out, run_date, ctx["params"].get("policy_file") or env.policy)

    @task(doc_md="The trusts of this run, one mapped ingest task each.")
    def trusts(run: dict) -> list[str]:
        return run["trusts"]

    @task(
        doc_md="Validate one trust's newest extract; skipped when the trust has no usable extract.",
        map_index_template="{{ trust }}",
    )
    def ingest(trust: str, run: dict) -> dict:
        from airflow.sdk.exceptions import AirflowSkipException

        from pipeline.runs.airflow_steps import UNUSABLE
        from pipeline.runs.airflow_steps import ingest as ingest_one

        get_current_context()["trust"] = trust
        _settings()
        outcome = ingest_one(run, trust)
        if outcome["status"] in UNUSABLE:
            why = (
                "; ".join(
                    f"{r['file']} line {r['line']}: {r['rule']}: {r['message']}" for r in outcome["rejected_files"]
                )
                or "no extract"
            )
            raise AirflowSkipException(f"{trust} {outcome['status']}: {why}")
        return outcome

    @task(doc_md="Staff split and case alignment of every trust, fanned out on Dask.", trigger_rule="none_failed")
    def decide(run: dict) -> dict:
        from pipeline.runs.airflow_steps import decide as decide_all

        return decide_all(run, _settings().scheduler)

    @task(
        doc_md="Commit the run: manifest last, then swap in.", outlets=[Asset(f"trp://published/{d}") for d in DATASETS]
    )
    def publish(run: dict, decided: dict) -> dict:
        from pipeline.runs.airflow_steps import publish as commit

        _settings()
        return commit(run)

    @task(doc_md="Say what was published and which trusts were not fresh.")
    def report(result: dict) -> dict:
        stale = {t: s for t, s in result["statuses"].items() if s != "FRESH"}
        print(f"published {result['manifest']} (exit code {result['exit_code']}); not fresh: {stale or 'none'}")
        return {"exit_code": result["exit_code"], "not_fresh": stale}

    @task(doc_md="After a failure, remove the run's staging; earlier runs are untouched.", trigger_rule="all_done")
    def cleanup(run: dict) -> None:
        from pipeline.runs.airflow_steps import cleanup as clean

        _settings()
        clean(run)

    run = plan()
    ingested = ingest.partial(run=run).expand(trust=trusts(run))
    decided = decide(run)
    ingested >> decided
    published = publish(run, decided)
    report(published)
    published >> cleanup(run)


tr_nightly()
