"""`trp run --scheduler`: a real `dask scheduler` and `dask worker` processes on 127.0.0.1, same outputs."""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipeline.layout import DATASETS
from pipeline.runs.nightly import run_nightly
from pipeline.synthetic.landing import generate_landing
from tests.readback import published_rows

BIN = Path(sys.executable).parent
KEY = "test-key-not-secret"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def cluster():
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    procs = [
        subprocess.Popen(
            [BIN / "dask", "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    ]
    procs.append(
        subprocess.Popen(
            [
                BIN / "dask",
                "worker",
                address,
                "--nworkers",
                "2",
                "--nthreads",
                "1",
                "--memory-limit",
                "2GiB",
                "--no-dashboard",
                "--host",
                "127.0.0.1",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    )
    from dask.distributed import Client

    deadline = time.monotonic() + 60
    while True:
        try:
            with Client(address, timeout=5) as c:
                if len(c.scheduler_info()["workers"]) == 2:
                    break
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError("the external Dask cluster did not come up")
        time.sleep(0.5)
    yield address
    for p in reversed(procs):
        p.terminate()
    for p in procs:
        p.wait(timeout=30)


def test_an_external_cluster_gives_the_same_outputs_as_a_local_one(tmp_path, cluster):
    landing = tmp_path / "landing"
    generate_landing(str(landing), 0.01, seed=5, dirty=True)
    local = run_nightly(str(landing), str(tmp_path / "local"), "2014-06-01", pseudonym_key=KEY.encode())
    env = {**os.environ, "TRP_PSEUDONYM_KEY": KEY}
    done = subprocess.run(
        [
            BIN / "trp",
            "run",
            "--landing",
            str(landing),
            "--out",
            str(tmp_path / "remote"),
            "--run-date",
            "2014-06-01",
            "--scheduler",
            cluster,
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == local.exit_code == 3, done.stderr
    assert "DOR  CARRIED_OVER" in done.stderr  # plain per-trust lines when not on a terminal
    for name in DATASETS:
        assert published_rows(tmp_path / "remote", name) == published_rows(tmp_path / "local", name), name
    for trust in ("LDN", "WIL"):
        for f in ("case_alignment.csv", "transfer_list.csv", "staff_assignment.csv", "quarantine.csv"):
            a = (tmp_path / "remote" / "operational" / trust / "2014-06-01" / f).read_bytes()
            assert a == (tmp_path / "local" / "operational" / trust / "2014-06-01" / f).read_bytes(), (trust, f)


def test_the_local_cluster_is_set_up_for_one_task_per_core_and_quiet_event_loops():
    """The workers' 10 ms stack sampler (for the dashboard) is off in a local run; tasks run one at a time;
    Arrow's threads are the worker's share of the cores (two workers on this 2-core machine: one each); the
    event loops tick every second and the nannies check memory every half second."""
    import os

    import dask

    from pipeline.runs.cluster import dask_client

    def probe(dask_worker):
        import pyarrow as pa

        return (
            dask.config.get("distributed.worker.profile.enabled"),
            "profile" in dask_worker.periodic_callbacks,
            dask_worker.state.nthreads,
            pa.cpu_count(),
            dask_worker._tick_interval,
        )

    with dask_client() as client:
        seen = client.run(probe)
        nannies = client.run(
            lambda dask_worker: (dask_worker._tick_interval, dask_worker.memory_manager.memory_monitor_interval),
            nanny=True,
        )
        scheduler = client.run_on_scheduler(lambda dask_scheduler: dask_scheduler._tick_interval)
    assert len(seen) == 2 and set(seen.values()) == {(False, False, 1, max(1, os.cpu_count() // 2), 1.0)}
    assert set(nannies.values()) == {(1.0, 0.5)} and scheduler == 1.0
