"""The environment a throw-away Airflow home needs to run this repository's DAGs (sqlite, no examples)."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def airflow_environment(home: Path, key: str, **more: str) -> dict[str, str]:
    """This process's environment with an Airflow home at `home`, the DAGs read from `dags/`, and `more`."""
    return {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
        "TRP_PSEUDONYM_KEY": key,
        "PYTHONPATH": str(ROOT),
        **more,
    }
