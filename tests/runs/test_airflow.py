"""The DAGs under real Airflow 3: a temporary AIRFLOW_HOME with sqlite after `airflow db migrate`, each DAG
loaded by DagBag and run with `dag.test()` in its own process (Airflow reads its config at import)."""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import duckdb
import pytest

from pipeline.layout import DATASETS
from pipeline.runs.nightly import run_nightly
from pipeline.synthetic.landing import generate_landing
from tests.readback import published_rows
from tests.runs.airflow_home import airflow_environment

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
KEY = "test-key-not-secret"


@pytest.fixture(scope="module")
def airflow_env(tmp_path_factory):
    home = tmp_path_factory.mktemp("airflow_home")
    env = airflow_environment(home, KEY)
    done = subprocess.run([BIN / "airflow", "db", "migrate"], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return env


def _python(env: dict, code: str, timeout: int = 400) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], env=env, capture_output=True, text=True, timeout=timeout
    )
    assert done.returncode == 0, (done.stdout[-3000:], done.stderr[-5000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_every_dag_imports_fast_with_tags_retries_and_owner(airflow_env):
    info = _python(
        airflow_env,
        f"""
        import json, time
        t0 = time.perf_counter()
        from airflow.dag_processing.dagbag import DagBag
        imported = time.perf_counter()
        bag = DagBag(dag_folder={str(ROOT / "dags")!r})
        parsed = time.perf_counter() - imported
        print(json.dumps({{"errors": {{k: str(v) for k, v in bag.import_errors.items()}}, "parse_s": parsed,
            "dags": {{d.dag_id: {{"tags": sorted(d.tags), "owners": sorted({{t.owner for t in d.tasks}}),
                                 "retries": sorted({{t.retries for t in d.tasks}}), "doc": bool(d.doc_md)}}
                     for d in bag.dags.values()}}}}))
    """,
    )
    assert info["errors"] == {}
    assert set(info["dags"]) == {"tr_nightly", "tr_extract_arrival", "tr_scenarios"}
    for dag_id, d in info["dags"].items():
        assert d["tags"] and d["doc"], dag_id
        assert d["owners"] == ["transition-programme-data"], dag_id
        assert min(d["retries"]) >= 1, dag_id
    assert info["parse_s"] < 1.0, info["parse_s"]


def _dag_test(env: dict, landing: Path, out: Path, run_date: str, dag_id: str = "tr_nightly", **conf: str) -> dict:
    """`dag.test()` of a DAG on this landing zone and output root; the run's state and each task's."""
    env = {**env, "TRP_LANDING": str(landing), "TRP_OUT": str(out)}
    return _python(
        env,
        f"""
        import json, pendulum
        from airflow.dag_processing.dagbag import DagBag
        dag = DagBag(dag_folder={str(ROOT / "dags")!r}).get_dag({dag_id!r})
        run = dag.test(logical_date=pendulum.datetime(2014, 6, 2, 2, tz="Europe/London"),
                       run_conf={{"run_date": {run_date!r}, **{conf!r}}})
        states = {{}}
        for ti in run.get_task_instances():
            label = ti.task_id + (f"[{{ti.rendered_map_index}}]" if ti.map_index >= 0 else "")
            states[label] = str(ti.state)
        print(json.dumps({{"state": str(run.state), "tasks": states}}))
    """,
    )


def test_dag_test_publishes_what_trp_run_publishes_and_skips_only_the_broken_trust(airflow_env, tmp_path):
    landing = tmp_path / "landing"
    generate_landing(str(landing), 0.01, seed=4, dirty=True)
    for f in (landing / "WIL").glob("*/cases.csv"):  # WIL's only extract: a zip, nothing to fall back to
        f.write_bytes(b"PK\x03\x04\x00\x00binary")
    got = _dag_test(airflow_env, landing, tmp_path / "airflow-out", "2014-06-01")
    assert got["state"] == "success", got
    tasks = got["tasks"]
    assert tasks["ingest[WIL]"] == "skipped"
    assert all(s == "success" for t, s in tasks.items() if t != "ingest[WIL]"), tasks
    assert len([t for t in tasks if t.startswith("ingest[")]) == 35

    local = run_nightly(str(landing), str(tmp_path / "cli-out"), "2014-06-01", pseudonym_key=KEY.encode())
    assert local.exit_code == 3 and local.manifest["trusts"]["WIL"]["status"] == "REJECTED"
    for name in DATASETS:
        assert published_rows(tmp_path / "airflow-out", name) == published_rows(tmp_path / "cli-out", name), name
    for trust in ("LDN", "DOR", "WIL"):
        for f in ("case_alignment.csv", "transfer_list.csv", "quarantine.csv", "warnings.csv"):
            a, b = (tmp_path / o / "operational" / trust / "2014-06-01" / f for o in ("airflow-out", "cli-out"))
            assert a.exists() == b.exists(), (trust, f)
            if a.exists():
                assert a.read_bytes() == b.read_bytes(), (trust, f)
    manifest = json.loads((tmp_path / "airflow-out/published/_manifests/run_date=2014-06-01.json").read_text())
    assert manifest["trusts"]["WIL"]["status"] == "REJECTED"
    assert manifest["trusts"]["DOR"]["status"] == "CARRIED_OVER"

    # a re-run of the date replaces it whole: one version of the date for analysts, the old one kept aside
    again = _dag_test(airflow_env, landing, tmp_path / "airflow-out", "2014-06-01")
    assert again["state"] == "success"
    rows = duckdb.sql(
        f"select count(*) from read_parquet('{tmp_path}/airflow-out/published/case_alignment/"
        "**/*.parquet', hive_partitioning=true)"
    ).fetchall()[0][0]
    assert rows == len(published_rows(tmp_path / "cli-out", "case_alignment"))
    assert (tmp_path / "airflow-out" / "runs" / manifest["run_id"] / "published" / "case_alignment").is_dir()
    assert not any((tmp_path / "airflow-out" / "_runs").iterdir())


def test_the_arrival_dag_rejects_files_missing_columns_and_checks_the_others(airflow_env, tmp_path):
    """Three trusts' newest files miss required columns (one, two, and every one of a file): their arrival
    reports say MISSING_COLUMN with the columns; every other trust is validated; no task fails."""
    import pandas as pd

    from pipeline.extracts.contract import FILES

    landing, out = tmp_path / "landing", tmp_path / "out"
    generate_landing(str(landing), 0.005, seed=8)
    broken = {
        "CUM": ("staff", ["fte"]),
        "WIL": ("cases", ["mappa_level", "sentence_date"]),
        "LDN": ("staff", list(FILES["staff"].required)),
    }
    for trust, (kind, columns) in broken.items():
        f = next((landing / trust).glob(f"*/{FILES[kind].name}"))
        f.write_bytes(
            pd.read_csv(f, dtype=str, keep_default_na=False).drop(columns=columns).to_csv(index=False).encode()
        )
    env = {**airflow_env, "TRP_LANDING": str(landing), "TRP_OUT": str(out)}
    got = _python(
        env,
        f"""
        import json, pendulum
        from airflow.dag_processing.dagbag import DagBag
        dag = DagBag(dag_folder={str(ROOT / "dags")!r}).get_dag("tr_extract_arrival")
        run = dag.test(logical_date=pendulum.datetime(2014, 6, 2, 2, tz="Europe/London"))
        states = sorted({{str(t.state) for t in run.get_task_instances()}})
        print(json.dumps({{"state": str(run.state), "tasks": states}}))
    """,
    )
    assert got == {"state": "success", "tasks": ["success"]}, got
    for trust in sorted(p.name for p in landing.iterdir()):
        date = next((landing / trust).iterdir()).name
        q = pd.read_csv(out / "arrivals" / trust / date / "quarantine.csv", dtype=str, keep_default_na=False)
        marker = json.loads((out / "arrivals" / trust / date / "arrival.json").read_text())
        if trust in broken:
            kind, columns = broken[trust]
            assert marker["status"] == "REJECTED", trust
            assert q[["file", "rule", "column"]].values.tolist() == [
                [FILES[kind].name, "MISSING_COLUMN", ", ".join(sorted(columns))]
            ], trust
        else:
            assert marker["status"] == "VALIDATED", trust


def test_the_scenarios_dag_compares_what_trp_scenarios_compares_and_refuses_a_bad_file_first(airflow_env, tmp_path):
    from pipeline.scenarios.runner import run_scenarios

    landing = tmp_path / "landing"
    generate_landing(str(landing), 0.01, seed=4)
    good = tmp_path / "good.yaml"
    good.write_text("scenarios:\n  custody_to_nps:\n    set: {case_split.enabled.CUSTODY: true}\n")
    got = _dag_test(
        airflow_env, landing, tmp_path / "airflow-out", "2014-06-01", "tr_scenarios", scenarios_file=str(good)
    )
    assert got == {"state": "success", "tasks": {"check": "success", "compare": "success"}}, got
    local = run_scenarios(str(landing), str(tmp_path / "cli-out"), "2014-06-01", str(good))
    folders = [
        tmp_path / o / "scenarios" / "2014-06-01" / local.manifest["scenario_set"] for o in ("airflow-out", "cli-out")
    ]
    for name in ("comparison/part-0.parquet", "index.html", "trusts/LDN/custody_to_nps_cases.csv"):
        assert (folders[0] / name).read_bytes() == (folders[1] / name).read_bytes(), name
    assert not (tmp_path / "airflow-out" / "published" / "_manifests").exists()  # nothing published

    bad = tmp_path / "bad.yaml"
    bad.write_text("scenarios:\n  typo:\n    set: {alignment.capacity_limt_pct: 110}\n")
    refused = _dag_test(
        airflow_env, landing, tmp_path / "bad-out", "2014-06-01", "tr_scenarios", scenarios_file=str(bad)
    )
    assert refused["state"] == "failed" and refused["tasks"]["check"] == "failed", refused
    assert refused["tasks"]["compare"] in ("upstream_failed", "None"), refused
    assert not (tmp_path / "bad-out").exists()
