"""Dask clusters for sweeps: a local one, or an existing one reached by its scheduler.

``dask.distributed`` is optional (``pip install "neurosim[dask]"``); without it
:func:`require_distributed` raises a :class:`ConfigError` saying how to install it, and
``neurosim sweep --serial`` still runs every cell in this process.

Threads. A cell is a serial simulation (``Simulator(threads=1)``), so each task runs
with numba's and the BLAS's thread pools pinned to one thread (:func:`pinned`); a worker
of a local cluster also gets ``NUMBA_NUM_THREADS=1``, ``OMP_NUM_THREADS=1``... in its
environment before it imports anything (:data:`PIN_ENV`). Several one-threaded workers,
not several threads per task, use the cores.

Compilation. Numba compiles the engine's kernels on first use and caches them on disk;
several processes compiling at once race on that cache (numba issues 4807 and 10128).
So the kernels are compiled before any cell fans out, on one worker alone (which writes
the cache), then on the remaining workers together, which by then find them in the cache.
(Workers of different CPU types sharing one installation would each compile for their
own CPU; warm such a cluster one worker type at a time.)
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from typing import Any

from neurosim.errors import ConfigError

INSTALL_HINT = 'pip install "neurosim[dask]"   (or: pip install "dask[distributed]")'
#: Environment of a local cluster's workers: one thread for numba and every BLAS.
PIN_ENV = {name: "1" for name in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                  "MKL_NUM_THREADS", "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")}


def require_distributed() -> Any:
    """The ``distributed`` module; :class:`ConfigError` with the install command if missing."""
    try:
        import distributed
    except ImportError:
        raise ConfigError("running a sweep on a cluster needs dask.distributed, which is not installed; "
                          f"install it with: {INSTALL_HINT}; or run the cells here, one after another, "
                          "with --serial") from None
    return distributed


@contextlib.contextmanager
def pinned() -> Iterator[None]:
    """Run the block with numba and the BLAS libraries on one thread each."""
    import numba
    from threadpoolctl import threadpool_limits

    numba.set_num_threads(1)
    with threadpool_limits(limits=1):
        yield


@contextlib.contextmanager
def connect(scheduler: str | None = None, workers: int | None = None) -> Iterator[Any]:
    """A ``distributed.Client``: of the cluster at ``scheduler`` (``tcp://HOST:PORT`` or a
    scheduler file written by ``dask scheduler --scheduler-file``), or of a new
    ``LocalCluster`` of ``workers`` one-threaded processes (default: the cores)."""
    distributed = require_distributed()
    if scheduler is not None:
        if workers is not None:
            raise ConfigError("--workers sizes a local cluster; with --scheduler the cluster has its own workers")
        try:
            if os.path.isfile(scheduler):
                client = distributed.Client(scheduler_file=scheduler, timeout="30s")
            else:
                client = distributed.Client(scheduler, timeout="30s")
        except (OSError, TimeoutError, ValueError) as exc:
            raise ConfigError(f"cannot reach the dask scheduler at {scheduler}: {exc}; start one with "
                              "`dask scheduler` and give its address tcp://HOST:PORT") from None
        with client:
            yield client
        return
    n = workers if workers is not None else (os.cpu_count() or 1)
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ConfigError(f"--workers must be an int >= 1, got {workers!r}")
    cluster = distributed.LocalCluster(n_workers=n, threads_per_worker=1, processes=True, env=dict(PIN_ENV),
                                       dashboard_address=None, host="127.0.0.1")
    with cluster, distributed.Client(cluster) as client:
        yield client


def warm_workers(client: Any, warm: Callable[[], None], log: Callable[[str], None]) -> None:
    """Run ``warm`` (which compiles the kernels) on one worker, then on all the others at once."""
    try:
        client.wait_for_workers(1, timeout=120)
    except TimeoutError:
        raise ConfigError("no dask worker joined the scheduler within 120 s; start workers with "
                          "`dask worker tcp://HOST:PORT --nthreads 1`") from None
    names = sorted(client.scheduler_info()["workers"])
    first, rest = names[:1], names[1:]
    for group in (first, rest):
        futures = [client.submit(warm, key=f"neurosim-warm-{w}", workers=[w], allow_other_workers=False, pure=False)
                   for w in group]
        try:
            client.gather(futures)
        except Exception as exc:  # every cell would fail the same way: stop before fanning out
            raise ConfigError(f"compiling the kernels on the workers failed: {type(exc).__name__}: {exc}") from None
    log(f"kernels compiled on {len(names)} worker(s)")
