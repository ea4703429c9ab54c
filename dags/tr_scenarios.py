"""
### tr_scenarios: one night decided under several policies, compared side by side

Triggered by hand, never scheduled. The same work as `trp scenarios` (one code path:
`pipeline.scenarios.runner`): every trust's extract is validated once, then each scenario's staff split and
case alignment run for every trust on Dask, starting from what the nights before the run date decided.

* **check**: reads the scenarios file and checks every variant as a policy is checked; a bad key or value
  fails here, naming the scenario and the key, before any work.
* **compare**: the ingest and the scenarios x trusts decisions on Dask (`DASK_SCHEDULER_ADDRESS`, else a
  local cluster for this task), then `TRP_OUT/scenarios/<run date>/<set id>/`: `index.html`, the
  `comparison` dataset (the catalog's `scenario_comparison` view) and each trust's differing cases and people.

Nothing is published and no trust's operational lists change. Settings (Airflow Variable of the same name,
else the environment): `TRP_LANDING`, `TRP_OUT`, `DASK_SCHEDULER_ADDRESS`. Params: `scenarios_file` (a path
the workers can read), `run_date`.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import Param, dag, get_current_context, task

from pipeline import settings


@dag(
    dag_id="tr_scenarios",
    schedule=None,
    start_date=pendulum.datetime(2014, 4, 1, tz="Europe/London"),
    catchup=False,
    max_active_runs=1,
    default_args={"owner": "transition-programme-data", "retries": 1, "retry_delay": timedelta(minutes=1)},
    tags=["transition", "scenarios", "policy"],
    doc_md=__doc__,
    params={
        "scenarios_file": Param(type="string", minLength=1, description="Scenarios file (YAML; docs/scenarios.md)"),
        "run_date": Param(type="string", format="date", description="The night to decide, YYYY-MM-DD"),
    },
)
def tr_scenarios():
    @task(doc_md="Check the scenarios file: every variant as a policy is checked.")
    def check() -> dict:
        from airflow.sdk.exceptions import AirflowFailException

        from pipeline.scenarios.scenario_set import ScenarioError, load_scenario_set

        params = get_current_context()["params"]
        try:
            scenario_set = load_scenario_set(params["scenarios_file"])
        except ScenarioError as exc:  # the file's fault: a retry would say the same
            raise AirflowFailException(str(exc)) from None
        print(f"scenario set {scenario_set.set_id}: {', '.join(s.name for s in scenario_set.scenarios)}")
        return {"set_id": scenario_set.set_id, "scenarios": [s.name for s in scenario_set.scenarios]}

    @task(doc_md="Validate once, decide every scenario for every trust on Dask, compare.")
    def compare(checked: dict) -> dict:
        from pipeline.scenarios.runner import run_scenarios

        params = get_current_context()["params"]
        env = settings.from_airflow()
        result = run_scenarios(env.landing, env.out, params["run_date"], params["scenarios_file"], env.scheduler)
        print(f"scenario set {checked['set_id']} written to {result.folder}")
        return {"folder": result.folder, "totals": result.manifest["totals"]}

    compare(check())


tr_scenarios()
