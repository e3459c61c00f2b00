"""The executors a sweep runs on: in-process, a local process pool, or dask.distributed.

Every backend offers ``submit(fn, *args) -> concurrent.futures.Future``, ``slots`` (how many
runs can execute at once), ``abort()`` (cancel pending runs and stop running ones; used on
SIGINT) and ``close()``.

- ``workers == 1`` and no scheduler: runs execute in this process, one at a time (a Ctrl-C
  interrupts the running run, whose temporary directory the run function removes).
- ``workers > 1``: :class:`concurrent.futures.ProcessPoolExecutor` with the ``spawn`` start
  method. Workers ignore SIGINT (the sweep decides) and die with the sweep process
  (``PR_SET_PDEATHSIG`` on Linux), so a killed sweep leaves no orphan finishing a run behind
  the back of ``--resume``.
- ``scheduler="local"``: a :class:`dask.distributed.LocalCluster` of ``workers`` processes
  with one thread each; ``scheduler="tcp://HOST:PORT"``: an existing dask scheduler. Both go
  through ``Client.get_executor()``. The output directory must be visible at the same path on
  every dask worker (a shared filesystem).
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import ctypes
import logging
import multiprocessing
import os
import signal
import sys

from sim.errors import InputError

__all__ = ["open_backend", "Backend", "DASK_MISSING", "describe_exception"]

#: Message given when dask.distributed is needed but not installed.
DASK_MISSING = "--scheduler needs dask.distributed, an optional extra: pip install 'daxsim[dask]'"


class Backend:
    """Common interface (see the module docstring)."""

    name = "backend"
    slots = 1
    in_process = False

    def submit(self, fn, /, *args) -> cf.Future:  # pragma: no cover - interface
        """Run ``fn(*args)`` on the backend; return its future."""
        raise NotImplementedError

    def abort(self) -> None:
        """Cancel pending runs and stop running ones; return when none of ours still runs."""

    def close(self) -> None:
        """Release the executor after every submitted run has finished."""


class InProcessBackend(Backend):
    """Runs each submitted call immediately, in this process."""

    name = "in-process"
    in_process = True

    def submit(self, fn, /, *args) -> cf.Future:
        fut: cf.Future = cf.Future()
        try:
            fut.set_result(fn(*args))
        except Exception as exc:  # noqa: BLE001 - the sweep records it as a failed run
            fut.set_exception(exc)
        return fut


def _worker_init() -> None:  # runs in each pool worker
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if sys.platform.startswith("linux"):
        with contextlib.suppress(Exception):
            libc = ctypes.CDLL("libc.so.6", use_errno=True)
            libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG: die with the parent
            if os.getppid() == 1:  # the parent already died before prctl
                os._exit(1)


class ProcessPoolBackend(Backend):
    """A local :class:`concurrent.futures.ProcessPoolExecutor`."""

    name = "process pool"

    def __init__(self, workers: int):
        self.slots = workers
        self._closed = False
        self._pool = cf.ProcessPoolExecutor(
            max_workers=workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_worker_init,
        )

    def submit(self, fn, /, *args) -> cf.Future:
        return self._pool.submit(fn, *args)

    def abort(self) -> None:
        if self._closed:
            return
        self._closed = True
        procs = list((getattr(self._pool, "_processes", None) or {}).values())
        self._pool.shutdown(wait=False, cancel_futures=True)
        for p in procs:
            with contextlib.suppress(Exception):
                p.terminate()
        for p in procs:
            p.join(timeout=5)
            if p.is_alive():
                p.kill()
                p.join()
        # The pool's manager thread notices the dead workers and ends; wait for it, but never
        # forever (a worker killed while writing a result can leave a queue lock held).
        manager = getattr(self._pool, "_executor_manager_thread", None)
        if manager is not None:
            manager.join(timeout=10)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._pool.shutdown(wait=True)


class DaskBackend(Backend):
    """``dask.distributed.Client(...).get_executor()`` on a new LocalCluster or a scheduler."""

    def __init__(self, scheduler: str, workers: int):
        try:
            from dask.distributed import Client, LocalCluster
        except ImportError:
            raise InputError(DASK_MISSING, where="--scheduler") from None
        self._cluster = None
        self._closed = False
        if scheduler == "local":
            self.name = f"dask LocalCluster ({workers} workers)"
            self._cluster = LocalCluster(
                n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0"
            )
            self._client = Client(self._cluster)
        else:
            self.name = f"dask scheduler {scheduler}"
            try:
                self._client = Client(scheduler, timeout="15s")
            except (OSError, TimeoutError, ValueError) as exc:
                raise InputError(
                    f"cannot connect to the dask scheduler: {exc}", where="--scheduler"
                ) from None
        nthreads = self._client.nthreads()
        self.slots = max(1, sum(nthreads.values())) if nthreads else max(1, workers)
        self._executor = self._client.get_executor(pure=False)

    def submit(self, fn, /, *args) -> cf.Future:
        return self._executor.submit(fn, *args)

    def abort(self) -> None:
        if self._closed:
            return
        # Silence the expected complaints about cancelled tasks and workers going away.
        for name in ("distributed", "tornado"):
            logging.getLogger(name).setLevel(logging.CRITICAL)
        with contextlib.suppress(Exception):
            self._executor.shutdown(wait=False)  # cancels every future
        self._shutdown_client()

    def close(self) -> None:
        if self._closed:
            return
        with contextlib.suppress(Exception):
            self._executor.shutdown(wait=True)
        self._shutdown_client()

    def _shutdown_client(self) -> None:
        self._closed = True
        with contextlib.suppress(Exception):
            self._client.close()
        if self._cluster is not None:
            with contextlib.suppress(Exception):
                self._cluster.close()  # stops the worker processes


def open_backend(*, workers: int | None, scheduler: str | None) -> Backend:
    """Make the backend for ``--workers`` and ``--scheduler``.

    Raises
    ------
    InputError
        A bad ``--workers`` or ``--scheduler``, or dask.distributed missing.
    """
    if workers is None:
        workers = os.cpu_count() or 1
    if workers < 1:
        raise InputError(f"must be at least 1, got {workers}", where="--workers")
    if scheduler is not None:
        if scheduler != "local" and "://" not in scheduler:
            raise InputError(
                f"expected 'local' or a scheduler address like tcp://HOST:8786, got {scheduler!r}",
                where="--scheduler",
            )
        return DaskBackend(scheduler, workers)
    if workers == 1:
        return InProcessBackend()
    return ProcessPoolBackend(workers)


def describe_exception(exc: BaseException) -> str:
    """One-line description of a run's exception, as recorded in the failed row."""
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
