"""The steps an orchestrator schedules (`pipeline.runs.airflow_steps`), called as Airflow's tasks call them: a later
step re-plans the run, and refuses to go on under another policy or pseudonym key than the run started with."""

from __future__ import annotations

from importlib import resources

import pytest

from pipeline.runs import airflow_steps
from pipeline.runs.planning import RunRefused
from pipeline.synthetic.landing import generate_landing


@pytest.fixture()
def run(tmp_path, monkeypatch):
    monkeypatch.setenv("TRP_PSEUDONYM_KEY", "first-key")
    landing = tmp_path / "landing"
    generate_landing(str(landing), 0.005, seed=2)
    policy = tmp_path / "policy.yaml"
    policy.write_bytes(resources.files("pipeline.data").joinpath("policy-v1.yaml").read_bytes())
    return airflow_steps.start(str(landing), str(tmp_path / "out"), "2014-06-01", str(policy))


def test_a_later_step_runs_under_the_policy_and_key_the_run_started_with(run):
    assert airflow_steps.ingest(run, "DOR")["status"] == "FRESH"
    assert "first-key" not in str(run)  # the key's fingerprint travels through XCom, never the key


def test_a_policy_changed_mid_run_stops_the_next_step(run):
    with open(run["policy_file"], "a", encoding="utf-8") as f:
        f.write("\n# edited while the run was going\n")
    with pytest.raises(RunRefused, match="the policy changed during run"):
        airflow_steps.ingest(run, "DOR")


def test_a_key_changed_mid_run_stops_the_next_step(run, monkeypatch):
    monkeypatch.setenv("TRP_PSEUDONYM_KEY", "second-key")
    with pytest.raises(RunRefused, match="TRP_PSEUDONYM_KEY changed during run"):
        airflow_steps.ingest(run, "DOR")


def test_cleanup_still_removes_the_staging_of_a_run_refused_for_a_changed_policy(run, tmp_path):
    airflow_steps.ingest(run, "DOR")
    staging = tmp_path / "out" / "_runs" / run["run_id"]
    assert staging.exists()
    with open(run["policy_file"], "a", encoding="utf-8") as f:
        f.write("\n# edited while the run was going\n")
    with pytest.raises(RunRefused):
        airflow_steps.decide(run)
    airflow_steps.cleanup(run)
    assert not staging.exists()
