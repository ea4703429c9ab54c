"""The product's settings: every environment variable (and, under Airflow, every Variable) it reads, named,
typed and documented here and nowhere else. docs/operations.md prints the same table.

`load()` reads them all at once into a frozen `Settings`; a run reads them when it starts, so a setting
changed mid-run never splits a run in two.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields


@dataclass(frozen=True)
class Settings:
    landing: str | None = None  # TRP_LANDING: the landing zone (path or fsspec URL), for the DAGs and `trp serve`
    out: str | None = None  # TRP_OUT: the output root (path or fsspec URL)
    policy: str | None = None  # TRP_POLICY: the policy file (default: the packaged policy)
    pseudonym_key: str = ""  # TRP_PSEUDONYM_KEY: the secret the pseudonyms are keyed by; no key, no run
    tokens: str | None = None  # TRP_TOKENS: the upload service's token file (default: trp-tokens.json)
    expectations: str | None = None  # TRP_EXPECTATIONS: a folder of suites to use instead of the packaged ones
    lock_max_age_hours: float = 12.0  # TRP_LOCK_MAX_AGE_HOURS: a run date's lock older than this is taken over
    raise_faults: bool = False  # TRP_RAISE_FAULTS=1: a fault checking a file fails loudly (the tests set it)
    debug: bool = False  # TRP_DEBUG=1: the CLI shows full tracebacks
    scheduler: str | None = None  # DASK_SCHEDULER_ADDRESS: an existing Dask cluster (default: a local one)
    worker_start: str | None = None  # DASK_DISTRIBUTED__WORKER__MULTIPROCESSING_METHOD: fork or spawn

    @property
    def lock_max_age(self) -> dt.timedelta:
        return dt.timedelta(hours=self.lock_max_age_hours)


# Each setting's variable, and what it means (the table in docs/operations.md is this one).
VARIABLES = {
    "landing": ("TRP_LANDING", "landing zone: a path or fsspec URL (s3://...)"),
    "out": ("TRP_OUT", "output root: a path or fsspec URL"),
    "policy": ("TRP_POLICY", "policy file (default: the packaged policy v1)"),
    "pseudonym_key": ("TRP_PSEUDONYM_KEY", "secret key of the pseudonyms; a run refuses to start without one"),
    "tokens": ("TRP_TOKENS", "the upload service's token file (default: trp-tokens.json)"),
    "expectations": ("TRP_EXPECTATIONS", "folder of GX suites to use instead of the packaged ones"),
    "lock_max_age_hours": ("TRP_LOCK_MAX_AGE_HOURS", "hours after which a run date's lock is taken over (12)"),
    "raise_faults": ("TRP_RAISE_FAULTS", "1: an error checking a file fails the run instead of rejecting the file"),
    "debug": ("TRP_DEBUG", "1: the CLI prints full tracebacks"),
    "scheduler": ("DASK_SCHEDULER_ADDRESS", "address of an existing Dask scheduler (default: a local cluster)"),
    "worker_start": (
        "DASK_DISTRIBUTED__WORKER__MULTIPROCESSING_METHOD",
        "fork or spawn for a local cluster's workers (default: fork when the process has one thread)",
    ),
}


def _typed(field: str, text: str):
    kind = {f.name: f.type for f in fields(Settings)}[field]
    if kind == "bool":
        return text == "1"
    if kind == "float":
        try:
            return float(text)
        except ValueError:
            raise ValueError(f"{VARIABLES[field][0]} must be a number, not {text!r}") from None
    return text


def load(lookup: Callable[[str], str | None] | Mapping[str, str] | None = None) -> Settings:
    """Every setting from `lookup` (a mapping or a function of a variable's name; default: the environment);
    a variable unset or empty takes its default."""
    source = os.environ if lookup is None else lookup
    get = source if callable(source) else source.get
    values = {}
    for field, (name, _) in VARIABLES.items():
        text = get(name)
        if text:
            values[field] = _typed(field, text)
    return Settings(**values)


def from_airflow() -> Settings:
    """Under Airflow: each setting from the Airflow Variable of the same name, else the environment."""
    from airflow.sdk import Variable

    return load(lambda name: Variable.get(name, default=os.environ.get(name)) or None)


def table() -> list[tuple[str, str]]:
    """(variable, meaning) for every setting, for the docs and `trp --help`."""
    return list(VARIABLES.values())
