"""Failures injected into real runs, each with an exact outcome: a worker process killed mid-run, a poison
extract, the run process killed before its commit, two runs of one date at once, and storage that fails."""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import dask
import psutil
import pytest

import tests.failing_fs  # noqa: F401  (registers failingmanifests://)
from pipeline.layout import DATASETS
from pipeline.runs.nightly import run_nightly
from pipeline.runs.planning import RunRefused
from pipeline.synthetic.landing import generate_landing
from tests.readback import catalog_cases_by_trust, polling, published_rows

KEY = b"test-key-not-secret"
BIN = Path(sys.executable).parent
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def landings(tmp_path_factory):
    root = tmp_path_factory.mktemp("failures")
    made = {}
    for name, seed in (("a", 21), ("b", 22), ("c", 23)):
        generate_landing(str(root / name), 0.01, seed=seed, dirty=True)
        made[name] = root / name
    return made


def _operational(out: Path) -> dict[str, bytes]:
    root = out / "operational"
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _staged_trusts(out: Path) -> int:
    return sum(1 for _ in out.glob("_runs/*/operational/*/*/case_alignment.csv"))


def test_a_worker_killed_mid_run_changes_nothing_in_what_is_published(landings, tmp_path):
    clean, hurt = tmp_path / "clean", tmp_path / "hurt"
    run_nightly(str(landings["a"]), str(clean), "2014-06-01", pseudonym_key=KEY)
    killed = []

    def kill_a_worker() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and _staged_trusts(hurt) < 12:
            time.sleep(0.05)
        workers = [
            p
            for p in psutil.Process().children(recursive=True)  # forked Dask workers
            if not any("resource_tracker" in a or "forkserver" in a for a in p.cmdline())
        ]
        if workers:
            workers[0].send_signal(signal.SIGKILL)
            killed.append((workers[0].pid, _staged_trusts(hurt)))

    killer = threading.Thread(target=kill_a_worker)
    killer.start()
    result = run_nightly(str(landings["a"]), str(hurt), "2014-06-01", pseudonym_key=KEY)
    killer.join()
    assert killed and 0 < killed[0][1] < 35, killed  # killed while half the trusts were done
    assert result.exit_code == 3
    for name in DATASETS:
        assert published_rows(hurt, name) == published_rows(clean, name), name
    assert _operational(hurt).keys() == _operational(clean).keys()
    for f, body in _operational(clean).items():
        if not f.endswith(".html"):  # reports carry the run id and time
            assert _operational(hurt)[f] == body, f
    assert not list((hurt / "_runs").iterdir()) and not list((hurt / "_locks").iterdir())


def test_what_a_worker_killed_mid_write_left_in_the_staging_is_never_published(landings, tmp_path, monkeypatch):
    """A worker killed between writing a file's temporary copy and renaming it leaves the copy behind (the
    retry writes the file whole): the commit removes such leftovers, so neither zone ever shows one."""
    import pipeline.runs.nightly as run_module
    from pipeline.storage import temporary_name

    out, original = tmp_path / "out", run_module.publish

    def publish_after_a_killed_write(store, run_id, *args):
        staged = out / "_runs" / run_id
        trust = sorted(p.name for p in (staged / "operational").iterdir())[0]
        plan = staged / "operational" / trust / "2014-06-01" / "case_alignment.csv"
        Path(temporary_name(str(plan))).write_bytes(b"half")
        part = next((staged / "published" / "case_alignment").rglob("part-0.parquet")).parent
        Path(temporary_name(str(part / ".part-0.parquet"))).write_bytes(b"half")
        return original(store, run_id, *args)

    monkeypatch.setattr(run_module, "publish", publish_after_a_killed_write)
    run_nightly(str(landings["a"]), str(out), "2014-06-01", pseudonym_key=KEY)
    assert (out / "operational").is_dir()
    assert [p for p in out.rglob("*") if ".tmp-" in p.name] == []


def test_a_poison_extract_stops_the_run_naming_the_trust_and_publishes_nothing(landings, tmp_path):
    out = tmp_path / "out"
    first = run_nightly(str(landings["a"]), str(out), "2014-06-01", pseudonym_key=KEY)
    poisoned = tmp_path / "poisoned"
    subprocess.run(["cp", "-r", str(landings["a"]), str(poisoned)], check=True)
    newest = sorted((poisoned / "KNT").iterdir())[-1]
    (newest / "cases.csv").unlink()
    (newest / "cases.csv").mkdir()  # unreadable as a file, every time
    before = published_rows(out, "case_alignment")
    with pytest.raises(RunRefused, match=r"trust KNT failed after retries .*nothing published"):
        run_nightly(str(poisoned), str(out), "2014-06-01", pseudonym_key=KEY)
    assert published_rows(out, "case_alignment") == before
    pointer = json.loads((out / "published/_manifests/run_date=2014-06-01.json").read_text())
    assert pointer["run_id"] == first.manifest["run_id"]
    assert not list((out / "_runs").iterdir()) and not list((out / "_locks").iterdir())


def _trp_run(landing: Path, out: Path, log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [BIN / "trp", "run", "--landing", str(landing), "--out", str(out), "--run-date", "2014-06-01"],
        stdout=open(log, "wb"),
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env={**os.environ, "TRP_PSEUDONYM_KEY": KEY.decode()},
        start_new_session=True,
    )


def test_a_run_killed_before_its_commit_leaves_the_last_run_and_the_next_run_cleans_up(landings, tmp_path):
    out = tmp_path / "out"
    first = run_nightly(str(landings["a"]), str(out), "2014-06-01", pseudonym_key=KEY)
    before = published_rows(out, "case_alignment")
    proc = _trp_run(landings["b"], out, tmp_path / "killed.log")
    deadline = time.monotonic() + 120
    while _staged_trusts(out) < 5 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert list((out / "_runs").iterdir()) and list((out / "_locks").iterdir())  # debris of the dead run
    assert published_rows(out, "case_alignment") == before
    assert (
        json.loads((out / "published/_manifests/run_date=2014-06-01.json").read_text())["run_id"]
        == first.manifest["run_id"]
    )

    again = run_nightly(str(landings["b"]), str(out), "2014-06-01", pseudonym_key=KEY)
    assert again.exit_code == 3
    assert not list((out / "_runs").iterdir()) and not list((out / "_locks").iterdir())
    assert {p.name for p in (out / "runs").iterdir()} == {first.manifest["run_id"], again.manifest["run_id"]}
    assert published_rows(out, "case_alignment") != before


def test_two_runs_of_one_date_at_once_exactly_one_publishes_and_readers_never_see_a_mix(landings, tmp_path):
    out = tmp_path / "out"
    run_nightly(str(landings["a"]), str(out), "2014-06-01", pseudonym_key=KEY)
    baseline = catalog_cases_by_trust(str(out))
    with polling(lambda: catalog_cases_by_trust(str(out)), every=0.05) as seen:
        first = _trp_run(landings["b"], out, tmp_path / "b.log")
        deadline = time.monotonic() + 60
        while not list((out / "_locks").glob("*.json")) and time.monotonic() < deadline:
            time.sleep(0.02)
        second = _trp_run(landings["c"], out, tmp_path / "c.log")
        assert second.wait(timeout=120) == 2
        assert first.wait(timeout=300) == 3, (tmp_path / "b.log").read_text()[-2000:]
    refused = (tmp_path / "c.log").read_text()
    assert "run date 2014-06-01 is already being run by 2014-06-01_" in " ".join(refused.split()), refused
    after = catalog_cases_by_trust(str(out))
    assert after != baseline
    assert all(s in (baseline, after) for s in seen) and seen[0] == baseline
    assert len(list((out / "runs").iterdir())) == 2  # the first night and b; never c
    assert not list((out / "_locks").iterdir()) and not list((out / "_runs").iterdir())


def test_storage_that_fails_at_the_commit_gives_a_clear_error_and_publishes_nothing(landings, tmp_path):
    out = tmp_path / "out"
    first = run_nightly(str(landings["a"]), str(out), "2014-06-01", pseudonym_key=KEY)
    before = published_rows(out, "case_alignment")
    with (
        pytest.raises(
            RunRefused,
            match=r"could not commit the run \(OSError: .*No space left on device.*"
            r"nothing published",
        ),
        dask.config.set({"distributed.worker.preload": ["tests.failing_fs"]}),
    ):
        run_nightly(str(landings["b"]), f"failingmanifests://{out}", "2014-06-01", pseudonym_key=KEY)
    assert published_rows(out, "case_alignment") == before
    assert (
        json.loads((out / "published/_manifests/run_date=2014-06-01.json").read_text())["run_id"]
        == first.manifest["run_id"]
    )
    assert not list((out / "_runs").iterdir()) and not list((out / "_locks").iterdir())


def test_a_trust_task_collects_garbage_less_often_and_restores_the_collector_even_when_it_fails(tmp_path, monkeypatch):
    import gc

    from pipeline.runs import trust_tasks
    from pipeline.runs.planning import TrustJob

    seen = []

    def extract_dates(landing, trust, run_date):  # the task's first step: see the collector, then no extract
        seen.append(gc.get_threshold())
        if len(seen) == 2:
            raise OSError("landing zone unreadable")
        return [], []

    monkeypatch.setattr(trust_tasks, "extract_dates", extract_dates)
    job = TrustJob(
        "WIL", "NPS-SW", "CRC-WIL", str(tmp_path / "landing"), str(tmp_path / "out"), "r1", "2014-06-01", b"k", 100
    )
    before = gc.get_threshold()
    assert trust_tasks.ingest_trust(job)["status"] == "NO_EXTRACT"
    with pytest.raises(OSError):
        trust_tasks.ingest_trust(job)
    assert seen == [(50_000, 20, 100)] * 2
    assert gc.get_threshold() == before != (50_000, 20, 100)
    assert all(hasattr(task, "__wrapped__") for task in (trust_tasks.decide_and_stage, trust_tasks.report_trust))
