"""What a local cluster's workers are set up with, as Dask worker plugins (importable by the workers)."""
from __future__ import annotations

from distributed import WorkerPlugin


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
