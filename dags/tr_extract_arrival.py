"""
### tr_extract_arrival: a trust's validation report as soon as its extract lands

Every 10 minutes a sensor looks in the landing zone for trusts whose newest extract has landed (`staff.csv` and
`cases.csv` both there) and has no report for those exact files yet. Each such trust gets one mapped task
(labelled by trust code) that runs the nightly run's validation on that extract only (`trp validate`, one
code path: `pipeline.runs.arrival`) and writes, under `TRP_OUT/arrivals/<TRUST>/<extract date>/`:
`validation_report.html`, `quarantine.csv`, `warnings.csv` and `arrival.json` (the files checked, by size).
A file added or re-uploaded later makes the extract new again, so it is checked again.

A rejected file is the trust's finding, not the DAG's failure: the task succeeds and the report says why.
When nothing new has landed within the sensor's window, the run ends *skipped*.

Settings (Airflow Variable of the same name, else the environment): `TRP_LANDING`, `TRP_OUT`.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import dag, get_current_context, task

from pipeline import settings

DEFAULTS = {
    "owner": "transition-programme-data",
    "retries": 2,
    "retry_delay": timedelta(seconds=30),
    "retry_exponential_backoff": True,
    "max_retry_delay": timedelta(minutes=5),
}


@dag(
    dag_id="tr_extract_arrival",
    schedule="*/10 * * * *",
    start_date=pendulum.datetime(2014, 4, 1, tz="Europe/London"),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULTS,
    tags=["transition", "arrival", "validation"],
    doc_md=__doc__,
)
def tr_extract_arrival():
    @task.sensor(
        poke_interval=60,
        timeout=9 * 60,
        mode="reschedule",
        soft_fail=True,
        doc_md="Wait for extracts with no report yet; the trusts and dates found go to XCom.",
    )
    def arrivals():
        from airflow.sdk.bases.sensor import PokeReturnValue

        from pipeline.runs.arrival import pending_arrivals

        env = settings.from_airflow()
        found = pending_arrivals(env.landing, env.out)
        return PokeReturnValue(is_done=bool(found), xcom_value=found)

    @task(doc_md="Validate one trust's newest extract and write its report.", map_index_template="{{ trust }}")
    def validate(arrival: dict) -> dict:
        from pipeline.policy import load_policy
        from pipeline.runs.arrival import check_arrival

        get_current_context()["trust"] = arrival["trust"]
        env = settings.from_airflow()
        s = check_arrival(env.landing, arrival["trust"], env.out, limits=load_policy(env.policy).extracts)
        print(
            f"{s['trust']} {s['extract_date']}: {s['status']}, {s['quarantined_rows']} row(s) held back, "
            f"{s['warnings']} warning(s); report {s.get('report')}"
        )
        return {k: s.get(k) for k in ("trust", "extract_date", "status", "quarantined_rows", "warnings", "report")}

    validate.expand(arrival=arrivals())


tr_extract_arrival()
