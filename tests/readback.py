"""Reading published outputs back as an analyst would (DuckDB over the Hive-partitioned Parquet)."""

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb


def published_rows(out: Path, name: str) -> list[tuple]:
    """Every row of a published dataset, run date left out, in a stable order for comparing two outputs."""
    return duckdb.sql(
        f"select * exclude (run_date) from read_parquet('{out}/published/{name}/**/*.parquet', "
        "hive_partitioning=true) order by all"
    ).fetchall()


def catalog_cases_by_trust(out: str, run_date: str = "2014-06-01") -> dict[str, int]:
    """Cases per trust for a run date, read through the catalog as an analyst's `trp query` would."""
    from pipeline.publishing.catalog import open_catalog
    from pipeline.storage import Store

    with open_catalog(Store(out)) as con:
        return dict(
            con.sql(
                f"select trust_code, count(*) from case_alignment where run_date = '{run_date}' group by 1"
            ).fetchall()
        )


@contextmanager
def polling(read: Callable[[], object], every: float) -> Iterator[list]:
    """Call `read` in a thread until the block ends; the list of what it saw, in order."""
    seen: list = []
    stop = threading.Event()

    def poll() -> None:
        while not stop.is_set():
            seen.append(read())
            time.sleep(every)

    reader = threading.Thread(target=poll)
    reader.start()
    try:
        yield seen
    finally:
        stop.set()
        reader.join()
