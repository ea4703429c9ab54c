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
    thread per core in every worker) two workers' CSV reads and conversions ran four threads on two cores,
    and a scale-10 run was 0.2-1.8 s slower in five of six alternating pairs. A plugin, so a restarted
    worker gets it too.
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
    # Forked workers start in 0.1 s with this process's imports; spawned ones take 2.5 s each to import
    # pandas, pyarrow and OR-Tools again. But forking a process that runs other threads (an Airflow task, a
    # caller polling, an in-process server) can copy a lock some thread holds, and the worker hangs at start:
    # fork only when this is the process's one thread. DASK_DISTRIBUTED__WORKER__MULTIPROCESSING_METHOD overrides.
    method = env.worker_start or ("fork" if threading.active_count() == 1 else "spawn")
    if method == "fork":  # Great Expectations takes 3-6 s to import: once here, not in every worker of every run
        from pipeline.extracts.validation import import_gx

        import_gx()
    # The workers' statistical profiler (a thread sampling the task's stack every 10 ms, for the dashboard)
    # is off: a local run's dashboard is not watched, and six alternating scale-10 runs averaged 4% faster.
    # The event loops wake less often: a tick (which only detects a blocked loop) every second, not 20 ms, in
    # the scheduler, each nanny and each worker; memory checked every 0.5 s, not 0.1 s (a worker peaks at
    # a sixth of its limit); the dashboard's system monitor every 2 s. The driver's CPU fell by 0.3-0.45 s in
    # each of six scale-10 runs, and the run was faster in five of six alternating pairs.
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
