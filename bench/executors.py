"""Executors beyond one machine: the same (model, seed) tasks on a Dask distributed cluster.

An executor is a context manager whose ``run(fn, tasks)`` yields ``(task, result or
exception)`` as tasks complete (see :class:`bench.runner.LocalExecutor`). Workers only
compute; the main process writes every MLflow record, so a cluster needs no access to
the tracking store.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

from bench.adapter import THREADS_ENV, task_threads

T = TypeVar("T")


class DaskExecutor:
    """Tasks on the Dask scheduler at ``scheduler`` (``tcp://host:8786``), or, without one, on a
    ``LocalCluster`` of ``n_workers`` processes started here and closed on exit.

    Local workers get ``CREDIT_SEQ_BENCH_THREADS`` = :func:`~bench.adapter.task_threads` (1
    unless preset), as the local executor's; workers of a remote cluster take it from their own
    environment (default 1 there too), so the numbers are the same whichever executor ran.
    """

    def __init__(self, scheduler: str | None = None, n_workers: int = 2, threads_per_worker: int = 1) -> None:
        self.scheduler = scheduler
        self.n_workers = max(1, n_workers)
        self.threads_per_worker = max(1, threads_per_worker)
        self._cluster: Any = None
        self._client: Any = None

    def __enter__(self) -> DaskExecutor:
        from distributed import Client, LocalCluster

        if self.scheduler is None:
            threads = str(task_threads())
            self._cluster = LocalCluster(processes=True, n_workers=self.n_workers,
                                         threads_per_worker=self.threads_per_worker, dashboard_address=None,
                                         env={THREADS_ENV: threads, "OMP_NUM_THREADS": threads})
        try:
            self._client = Client(self._cluster if self._cluster is not None else self.scheduler)
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        if self._client is not None:
            self._client.close()
        if self._cluster is not None:
            self._cluster.close()
        self._client = self._cluster = None

    def run(self, fn: Callable[[T], Any], tasks: Iterable[T]) -> Iterator[tuple[T, Any]]:
        """Submit every task at once; yield each as it completes. A failed task yields its exception."""
        from distributed import as_completed

        if self._client is None:
            raise RuntimeError("DaskExecutor.run needs `with DaskExecutor(...) as executor:`")
        futures = {self._client.submit(fn, t, pure=False): t for t in tasks}
        for fut in as_completed(futures):
            try:
                out = fut.result()
            except Exception as exc:  # recorded as a failed run by the caller, never stops the others
                out = exc
            yield futures.pop(fut), out  # dropping the future frees its result on the worker
