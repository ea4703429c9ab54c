"""The Dask cluster a run works on: an existing one (DASK_SCHEDULER_ADDRESS), or a local one of worker
processes, and what its workers are set up with (worker plugins, importable by the workers)."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from distributed import WorkerPlugin

from pipeline import settings


class ArrowThreads(WorkerPlugin):
    """Arrow's CPU thread pool cut to the worker's share of the machine's cores.

    Each worker runs one task at a time and the local cluster has a worker per core; at Arrow's default (a
    thread per core in every worker) the workers' CSV reads and conversions oversubscribe the cores. A
    plugin, so a restarted worker gets it too.
    """

    def __init__(self, threads: int) -> None:
        self.threads = threads

    def setup(self, worker) -> None:
        import pyarrow as pa

        pa.set_cpu_count(self.threads)


@contextmanager
def dask_client(scheduler: str | None = None, n_workers: int = 2) -> Iterator:
    """A client of the cluster at `scheduler` (or DASK_SCHEDULER_ADDRESS), else of a local cluster of worker
    processes (one thread each: GX contexts and the solvers are not thread-safe) that is closed after."""
    import dask
    from dask.distributed import Client, LocalCluster

    env = settings.load()
    address = scheduler or env.scheduler
    if address:
        with Client(address) as client:
            yield client
        return
    # Forked workers start at once with this process's imports; spawned ones import pandas, pyarrow and
    # OR-Tools again. But forking a process that runs other threads (an Airflow task, a
    # caller polling, an in-process server) can copy a lock some thread holds, and the worker hangs at start:
    # fork only when this is the process's one thread. DASK_DISTRIBUTED__WORKER__MULTIPROCESSING_METHOD overrides.
    method = env.worker_start or ("fork" if threading.active_count() == 1 else "spawn")
    if method == "fork":  # Great Expectations is slow to import: once here, not in every worker of every run
        from pipeline.extracts.validation import import_gx

        import_gx()
    # A local run's dashboard is not watched: its statistical profiler is off, and the event loops' ticks,
    # memory checks and system monitor wake less often, leaving the cores to the tasks (docs/performance.md).
    with dask.config.set(
        {
            "distributed.worker.multiprocessing-method": method,
            "distributed.worker.profile.enabled": False,
            "distributed.admin.tick.interval": "1s",
            "distributed.worker.memory.monitor-interval": "500ms",
            "distributed.admin.system-monitor.interval": "2s",
        }
    ):
        cluster = LocalCluster(
            n_workers=n_workers,
            threads_per_worker=1,
            processes=True,
            memory_limit="4GiB",
            dashboard_address="127.0.0.1:0",
        )
    try:
        with Client(cluster) as client:
            client.register_plugin(ArrowThreads(max(1, (os.cpu_count() or 1) // n_workers)), name="arrow-threads")
            yield client
    finally:
        cluster.close()
