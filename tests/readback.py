"""Reading published outputs back as an analyst would (DuckDB over the Hive-partitioned Parquet)."""
from pathlib import Path

import duckdb


def published_rows(out: Path, name: str) -> list[tuple]:
    """Every row of a published dataset, run date left out, in a stable order for comparing two outputs."""
    return duckdb.sql(f"select * exclude (run_date) from read_parquet('{out}/published/{name}/**/*.parquet', "
                      "hive_partitioning=true) order by all").fetchall()
