"""Planning a run before any work: the checks (key, landing zone, policy), the run's id and its date's lock,
and one job per trust. Light on imports: the Airflow DAG's first task runs only this."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import socket
import uuid
from dataclasses import dataclass

from pipeline import layout, settings
from pipeline.layout import is_date_folder
from pipeline.policy import ExtractsPolicy, Policy, load_policy
from pipeline.publishing.commit import recover
from pipeline.reference import load_reference
from pipeline.storage import Store

log = logging.getLogger("trp")


@dataclass(frozen=True)
class TrustJob:
    trust: str
    nps_unit: str
    crc_unit: str
    landing: str
    out: str
    run_id: str
    run_date: str
    pseudonym_key: bytes
    units_per_point: int
    extract_limits: ExtractsPolicy = ExtractsPolicy()


EXIT_OK, EXIT_PARTIAL = 0, 3  # a refused or failed run exits as the CLI says: pipeline.cli.USAGE, FAULT


USABLE = ("FRESH", "CARRIED_OVER")


class RunRefused(Exception):
    """Nothing was published; the message says why."""


@dataclass
class RunResult:
    exit_code: int
    manifest: dict
    manifest_path: str


def checked_run_date(text: str) -> str:
    """A run date as given, if it is a real date written YYYY-MM-DD; RunRefused, saying so, otherwise."""
    if not is_date_folder(text):
        raise RunRefused(f"the run date must be a real date written YYYY-MM-DD (such as 2014-06-01), not {text!r}")
    return text


def new_run_id(run_date: str) -> str:
    return f"{run_date}_{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%SZ}_{uuid.uuid4().hex[:8]}"


@dataclass
class RunPlan:
    """Everything a run's steps share: who, where, which policy; built once by `plan_run`."""

    run_id: str
    run_date: str
    policy: Policy
    jobs: list[TrustJob]
    unknown_landing_folders: list[str]
    started_at: str

    @property
    def out(self) -> Store:
        return Store(self.jobs[0].out)


def plan_run(
    landing: str,
    out: str,
    run_date: str | None = None,
    policy_file: str | None = None,
    pseudonym_key: bytes | None = None,
    run_id: str | None = None,
    one_process: bool = True,
) -> RunPlan:
    """Check what a run needs before any work (key, landing zone, policy), finish any interrupted publish,
    and name the run, taking the run date's lock (`one_process`: the whole run lives in this process, so
    its death frees the lock). Raises RunRefused when the run cannot go ahead."""
    run_date = dt.date.today().isoformat() if run_date is None else checked_run_date(run_date)
    policy = load_policy(policy_file)
    key = pseudonym_key if pseudonym_key is not None else settings.load().pseudonym_key.encode()
    if not key:
        raise RunRefused("TRP_PSEUDONYM_KEY is not set: refusing to publish pseudonymised datasets without a key")
    reference = load_reference()
    landing_store, out_store = Store(landing), Store(out)
    if not landing_store.exists():
        raise RunRefused(f"landing zone {landing} does not exist")
    for finished in recover(out_store):
        log.warning("finished publishing run %s, interrupted after its manifest was written", finished)
    if run_id is None:  # a new run, not a later step of one (the Airflow tasks re-plan with the run's id)
        run_id = new_run_id(run_date)
        acquire_run_lock(out_store, run_date, run_id, os.getpid() if one_process else None)
        for debris in (r for r in out_store.listdir(*layout.staging()) if r.startswith(f"{run_date}_") and r != run_id):
            log.warning("removing the staging of run %s, which died before its commit", debris)
            out_store.rm(*layout.staging(debris))
    known = set(reference.trust_codes)
    jobs = trust_jobs(landing, out, run_id, run_date, key, policy)
    return RunPlan(
        run_id,
        run_date,
        policy,
        jobs,
        [n for n in landing_store.listdir() if n not in known],
        dt.datetime.now(dt.UTC).isoformat(),
    )


def trust_jobs(landing: str, out: str, run_id: str, run_date: str, key: bytes, policy: Policy) -> list[TrustJob]:
    """One job per trust of the reference data, in its order."""
    reference = load_reference()
    return [
        TrustJob(
            code,
            *reference.units_of(code),
            landing,
            out,
            run_id,
            run_date,
            key,
            policy.units_per_point,
            extract_limits=policy.extracts,
        )
        for code in reference.trust_codes
    ]


def acquire_run_lock(out: Store, run_date: str, run_id: str, pid: int | None) -> None:
    """One run per run date at a time: an exclusive create (a conditional PUT on S3), so of two runs started
    together exactly one goes ahead. A lock is taken over when it was left by a run that died: its process
    (`pid`, for runs that live in one process) is gone from this host, or it is older than
    TRP_LOCK_MAX_AGE_HOURS (12)."""
    now = dt.datetime.now(dt.UTC)
    body = json.dumps(
        {"run_id": run_id, "host": socket.gethostname(), "pid": pid, "started_at": now.isoformat()}
    ).encode()
    if out.create_exclusive(body, *layout.run_lock(run_date)):
        return
    try:
        held = json.loads(out.read_bytes(*layout.run_lock(run_date)))
    except FileNotFoundError:  # released in between: try once more
        if out.create_exclusive(body, *layout.run_lock(run_date)):
            return
        raise RunRefused(f"run date {run_date} is being run by another run: nothing done") from None
    max_age = settings.load().lock_max_age
    if now - dt.datetime.fromisoformat(held["started_at"]) > max_age or _died(held):
        log.warning("taking over the lock of run %s (started %s): its run is gone", held["run_id"], held["started_at"])
        out.rm(*layout.run_lock(run_date))
        if out.create_exclusive(body, *layout.run_lock(run_date)):
            return
    raise RunRefused(
        f"run date {run_date} is already being run by {held['run_id']} (host {held['host']}, pid {held['pid']}, "
        f"since {held['started_at']}): nothing done. If that run died, remove {out.url_of(*layout.run_lock(run_date))} "
        f"or wait until it is older than {max_age}"
    )


def _died(held: dict) -> bool:
    if held.get("pid") is None or held.get("host") != socket.gethostname():
        return False
    try:
        os.kill(held["pid"], 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def release_run_lock(out: Store, run_date: str, run_id: str) -> None:
    """Release the run date's lock if this run holds it."""
    try:
        held = json.loads(out.read_bytes(*layout.run_lock(run_date)))
    except FileNotFoundError:
        return
    if held["run_id"] == run_id:
        out.rm(*layout.run_lock(run_date))
