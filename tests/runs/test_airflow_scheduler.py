"""Both DAGs under Airflow's own services: scheduler (LocalExecutor), dag-processor and api-server, started on
127.0.0.1 for this module, driven only through the REST API as a platform team would, and stopped after."""

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from pipeline.layout import DATASETS
from pipeline.runs.nightly import run_nightly
from pipeline.synthetic.landing import generate_landing
from tests.net import free_port
from tests.readback import published_rows
from tests.runs.airflow_home import airflow_environment

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
KEY = "test-key-not-secret"
pytestmark = pytest.mark.slow


class Airflow:
    """A running Airflow: REST calls with a token from the simple auth manager."""

    def __init__(self, base: str):
        self.base = base
        self.http = httpx.Client(base_url=base, timeout=30)

    def authenticate(self) -> None:
        token = self.http.get("/auth/token").json()["access_token"]
        self.http.headers["Authorization"] = f"Bearer {token}"

    def call(self, method: str, path: str, **kw) -> dict:
        r = self.http.request(method, f"/api/v2{path}", **kw)
        assert r.status_code < 300, (method, path, r.status_code, r.text[:2000])
        return r.json()

    def trigger(self, dag_id: str, conf: dict | None = None) -> str:
        self.call("PATCH", f"/dags/{dag_id}", json={"is_paused": False})
        return self.call("POST", f"/dags/{dag_id}/dagRuns", json={"logical_date": None, "conf": conf or {}})[
            "dag_run_id"
        ]

    def wait(self, dag_id: str, run_id: str, timeout: float = 420) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = self.call("GET", f"/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}")["state"]
            if state in ("success", "failed"):
                return state
            time.sleep(3)
        raise AssertionError(f"{dag_id} {run_id} still not finished after {timeout} s")

    def task_states(self, dag_id: str, run_id: str) -> dict[str, str]:
        tis = self.call("GET", f"/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}/taskInstances", params={"limit": 200})[
            "task_instances"
        ]
        return {
            ti["task_id"] + (f"[{ti['rendered_map_index']}]" if ti["map_index"] >= 0 else ""): ti["state"] for ti in tis
        }


def _wait_until_up(airflow: Airflow, procs: list, logs: Path, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for p in procs:
            assert p.poll() is None, f"{p.args} exited {p.returncode}: " + _tails(logs)
        try:
            airflow.authenticate()
            dags = {d["dag_id"] for d in airflow.call("GET", "/dags")["dags"]}
            if {"tr_nightly", "tr_extract_arrival"} <= dags:
                return
        except (httpx.HTTPError, KeyError, ValueError, AssertionError):
            pass
        time.sleep(2)
    raise AssertionError("Airflow did not come up: " + _tails(logs))


def _backfill_runs(api: Airflow, count: int, timeout: float = 60) -> list[dict]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = api.call("GET", "/dags/tr_nightly/dagRuns", params={"run_type": "backfill"})["dag_runs"]
        if len(runs) >= count:
            assert len(runs) == count, runs
            return sorted(runs, key=lambda r: r["logical_date"])
        time.sleep(2)
    raise AssertionError("the backfill made too few runs")


def _tails(logs: Path) -> str:
    return "\n".join(f"== {f.name}\n{f.read_text(errors='replace')[-2000:]}" for f in sorted(logs.glob("*.log")))


@pytest.fixture(scope="module")
def airflow(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("airflow_services")
    home, logs = tmp / "home", tmp / "logs"
    home.mkdir(), logs.mkdir()
    port = free_port()
    env = airflow_environment(
        home,
        KEY,
        **{
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": "4",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
            "AIRFLOW__API_AUTH__JWT_SECRET": os.urandom(32).hex(),
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(port),
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
            "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",  # only the runs this test triggers
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "TRP_LANDING": str(tmp / "landing"),
            "TRP_OUT": str(tmp / "out"),
            "PATH": f"{BIN}:{os.environ['PATH']}",
        },
    )
    done = subprocess.run([BIN / "airflow", "db", "migrate"], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    procs = []
    for name, args in (
        ("scheduler", ["scheduler", "--skip-serve-logs"]),
        ("dag-processor", ["dag-processor"]),
        ("api-server", ["api-server"]),
    ):
        log = open(logs / f"{name}.log", "wb")
        procs.append(
            subprocess.Popen(
                [BIN / "airflow", *args],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        )
    try:
        api = Airflow(f"http://127.0.0.1:{port}")
        _wait_until_up(api, procs, logs)
        yield api, tmp, logs
    finally:
        _stop(procs)


def _stop(procs: list) -> None:
    for p in procs:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGTERM)
    deadline = time.monotonic() + 30
    for p in procs:
        try:
            p.wait(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
        try:
            os.killpg(p.pid, signal.SIGKILL)  # whatever the group still holds (executor workers, api workers)
        except ProcessLookupError:
            pass
        p.wait(timeout=30)


def test_scheduler_runs_the_nightly_and_the_arrival_dag_triggered_through_the_rest_api(airflow):
    api, tmp, logs = airflow
    landing, out = tmp / "landing", tmp / "out"
    generate_landing(str(landing), 0.01, seed=7, dirty=True)
    for f in (landing / "WIL").glob("*/cases.csv"):
        f.write_bytes(b"PK\x03\x04\x00\x00binary")

    run_id = api.trigger("tr_nightly", {"run_date": "2014-06-01"})
    assert api.wait("tr_nightly", run_id) == "success", _tails(logs)
    states = api.task_states("tr_nightly", run_id)
    assert states["ingest[WIL]"] == "skipped"
    assert len([t for t in states if t.startswith("ingest[")]) == 35
    assert all(s == "success" for t, s in states.items() if t != "ingest[WIL]"), states
    local = run_nightly(str(landing), str(tmp / "cli-out"), "2014-06-01", pseudonym_key=KEY.encode())
    for name in DATASETS:
        assert published_rows(out, name) == published_rows(tmp / "cli-out", name), name

    # a backfill of three past nights: each run date comes from its logical date, in London; they run oldest
    # first, each after the one before succeeded, and publish what three `trp run`s in that order publish
    api.call(
        "POST",
        "/backfills",
        json={
            "dag_id": "tr_nightly",
            "from_date": "2014-06-02T00:00:00Z",
            "to_date": "2014-06-04T12:00:00Z",
            "max_active_runs": 1,
            "reprocess_behavior": "completed",
        },
    )
    backfilled = _backfill_runs(api, 3)
    for r in backfilled:
        assert api.wait("tr_nightly", r["dag_run_id"]) == "success", _tails(logs)
    runs = [api.call("GET", f"/dags/tr_nightly/dagRuns/{quote(r['dag_run_id'], safe='')}") for r in backfilled]
    assert all(a["end_date"] <= b["start_date"] for a, b in zip(runs, runs[1:])), runs
    dates = ["2014-06-02", "2014-06-03", "2014-06-04"]
    for date in dates:
        run_nightly(str(landing), str(tmp / "cli-out"), date, pseudonym_key=KEY.encode())
    for name in DATASETS:
        assert published_rows(out, name) == published_rows(tmp / "cli-out", name), name
    for date in dates:
        for trust in ("LDN", "KNT"):
            for f in ("case_alignment.csv", "staff_assignment.csv", "transfer_list.csv"):
                a, b = (d / "operational" / trust / date / f for d in (out, tmp / "cli-out"))
                assert a.read_bytes() == b.read_bytes(), (date, trust, f)

    run_id = api.trigger("tr_extract_arrival")
    assert api.wait("tr_extract_arrival", run_id) == "success", _tails(logs)
    states = api.task_states("tr_extract_arrival", run_id)
    assert states["arrivals"] == "success"
    assert {t for t in states if t.startswith("validate[")} == {f"validate[{t}]" for t in local.manifest["trusts"]}
    newest = sorted(p.name for p in (landing / "WIL").iterdir())[-1]
    assert "cases.csv" in (out / "arrivals" / "WIL" / newest / "quarantine.csv").read_text()
    assert (out / "arrivals" / "WIL" / newest / "validation_report.html").exists()

    # a new extract for one trust: the next run validates that trust only
    dor = sorted((landing / "DOR").iterdir())[-1]
    shutil.copytree(dor, landing / "DOR" / "2014-06-20")
    run_id = api.trigger("tr_extract_arrival")
    assert api.wait("tr_extract_arrival", run_id) == "success", _tails(logs)
    assert [t for t in api.task_states("tr_extract_arrival", run_id) if t.startswith("validate[")] == ["validate[DOR]"]
    assert (out / "arrivals" / "DOR" / "2014-06-20" / "validation_report.html").exists()
