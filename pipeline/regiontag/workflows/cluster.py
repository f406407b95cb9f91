"""Dask clusters for a batch: a local one by default, or an existing one by address.

Default: ``LocalCluster`` on loopback with one single-threaded worker process
per core, each worker's ITK/OpenMP/BLAS thread pools sized so that workers do
not oversubscribe the cores.  ``scheduler="tcp://host:8786"`` connects to a
cluster started elsewhere (``dask scheduler`` + ``dask worker``, or
dask-jobqueue on SLURM); a worker plugin then sets the same thread variables
on every worker.
"""

from __future__ import annotations

import logging
import os
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Iterator

if TYPE_CHECKING:
    from distributed import Client

# dask and distributed are imported where a cluster is used: a single session runs in-process
# (``runs_in_process``) and never pays for them (about a second of CPU at start-up).

#: Environment variables that size the native thread pools (ANTs/ITK, OpenMP, BLAS).
THREAD_VARIABLES = (
    "ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
)
#: Scheduler event topic the nanny logs when it restarts a worker for exceeding its memory.
MEMORY_RESTART_TOPIC = "worker-restart-memory"


class ClusterError(RuntimeError):
    """The Dask cluster cannot be reached or started."""


def available_cores() -> int:
    """Cores this process may use (CPU affinity aware)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def runs_in_process(n_sessions: int, *, scheduler: object = None, memory_limit: object = None) -> bool:
    """True when a batch should run its sessions in this process, without a Dask cluster.

    A batch of one session with no scheduler address and no memory limit gains
    nothing from a cluster (no parallelism, nothing to enforce) and would pay for
    starting it: importing Dask, spawning a worker process and importing the
    whole pipeline again there (several seconds of a single session's run).
    With a memory limit the session still runs on a local worker, whose nanny
    enforces it.

    Examples
    --------
    >>> runs_in_process(1), runs_in_process(2), runs_in_process(1, memory_limit="4GB")
    (True, False, False)
    """
    return n_sessions == 1 and scheduler is None and memory_limit in (None, "")


def parse_memory_limit(memory_limit: str | int | None) -> int | None:
    """Bytes from ``"4GB"``, ``"512MiB"`` or an integer; None stays None.

    Raises
    ------
    ValueError
        With the offending text, e.g. ``invalid memory limit '4 lightyears'``.
    """
    if memory_limit is None or memory_limit == "":
        return None
    from dask.utils import parse_bytes

    if isinstance(memory_limit, int):
        value = memory_limit
    else:
        try:
            value = int(parse_bytes(str(memory_limit)))
        except (ValueError, TypeError) as error:
            raise ValueError(
                f"invalid memory limit {memory_limit!r} (use e.g. 4GB, 1500MB, 2GiB)"
            ) from error
    if value <= 0:
        raise ValueError(f"invalid memory limit {memory_limit!r}: must be positive")
    return value


def thread_environment(threads: int) -> dict[str, str]:
    """The thread-pool variables set to ``threads``; values already in the environment win (user's choice)."""
    return {name: os.environ.get(name) or str(max(1, int(threads))) for name in THREAD_VARIABLES}


def threads_per_task(cores: int, slots: int, wanted: int | None) -> int:
    """Native threads for each running session: ``wanted`` (config), at most the host's cores / task slots.

    ``wanted=None`` means all the cores a slot can have.  Results of ANTs are
    reproducible only at a fixed thread count, so the configured count (1 by
    default) is used whenever the cores allow it.
    """
    fair_share = max(1, cores // max(1, slots))
    return fair_share if wanted is None else max(1, min(int(wanted), fair_share))


@lru_cache(maxsize=1)
def _thread_limit_plugin_class() -> type:
    """``ThreadLimitPlugin``, defined on first use (its base class is Dask's ``WorkerPlugin``)."""
    from distributed.diagnostics.plugin import WorkerPlugin

    class ThreadLimitPlugin(WorkerPlugin):
        """Set the native thread-pool sizes on a worker of an existing cluster.

        The number of threads per task is the configured count, at most the
        worker host's cores divided by the task slots (worker threads) on that host.
        """

        idempotent = False
        name = "regiontag-thread-limits"

        def __init__(self, slots_per_host: dict[str, int], wanted_threads: int | None = None):
            self.slots_per_host = dict(slots_per_host)
            self.wanted_threads = wanted_threads

        def setup(self, worker: Any) -> None:  # noqa: D102 - WorkerPlugin hook
            slots = self.slots_per_host.get(worker.address.rsplit(":", 1)[0], 0) or worker.state.nthreads
            threads = threads_per_task(available_cores(), slots, self.wanted_threads)
            os.environ.update({name: str(threads) for name in THREAD_VARIABLES})

    ThreadLimitPlugin.__qualname__ = "ThreadLimitPlugin"  # pickled by reference, through __getattr__
    return ThreadLimitPlugin


def __getattr__(name: str) -> Any:
    """``ThreadLimitPlugin`` is built lazily (PEP 562), so importing this module does not import Dask."""
    if name == "ThreadLimitPlugin":
        return _thread_limit_plugin_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@dataclass
class ClusterInfo:
    """What the batch needs to know about the cluster it runs on."""

    description: str
    n_workers: int
    memory_limit_bytes: int | None
    local: bool

    @property
    def memory_limit_text(self) -> str:
        """Human-readable per-worker memory limit (``"unlimited"`` when none)."""
        from dask.utils import format_bytes

        return format_bytes(self.memory_limit_bytes) if self.memory_limit_bytes else "unlimited"


def _slots_per_host(client: Client) -> dict[str, int]:
    slots: dict[str, int] = {}
    for address, worker in client.scheduler_info(n_workers=-1).get("workers", {}).items():
        host = address.rsplit(":", 1)[0]
        slots[host] = slots.get(host, 0) + int(worker.get("nthreads", 1))
    return slots


def _smallest_worker_memory(client: Client) -> int | None:
    limits = [
        int(worker.get("memory_limit") or 0)
        for worker in client.scheduler_info(n_workers=-1).get("workers", {}).values()
    ]
    limits = [limit for limit in limits if limit > 0]
    return min(limits) if limits else None


@contextmanager
def _restored_environment(saved: dict[str, str | None]) -> Iterator[None]:
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextmanager
def open_client(
    *,
    workers: int | None = None,
    scheduler: str | Client | None = None,
    memory_limit: str | int | None = None,
    n_sessions: int | None = None,
    threads: int | None = None,
    verbose: bool = False,
) -> Iterator[tuple[Client, ClusterInfo]]:
    """Yield a connected ``distributed.Client`` and a description of its cluster.

    Parameters
    ----------
    workers : int, optional
        Worker processes of the local cluster (default: one per core, at most
        one per session).  Ignored with ``scheduler``.
    scheduler : str or Client, optional
        Address of a running scheduler (``tcp://10.0.0.5:8786``), or a client
        already connected; then no local cluster is started.
    memory_limit : str or int, optional
        Per-worker memory limit of the local cluster (``"4GB"``).  With an
        existing cluster the workers keep their own limits; the smaller one is
        reported and used for the pre-flight memory check.
    n_sessions : int, optional
        Number of sessions, to avoid starting idle workers.
    threads : int, optional
        Native (ITK/ANTs, OpenMP, BLAS) threads per session, capped at the
        cores per task slot (default: the whole fair share).  Variables already
        set in the environment win on the local cluster.
    verbose : bool
        Keep Dask's warnings on the console (otherwise silenced).

    Raises
    ------
    ClusterError
        When the scheduler cannot be reached.
    """
    dask_logger = logging.getLogger("distributed")
    previous_level = dask_logger.level
    # Session failures are reported by the batch itself; Dask's own messages only when verbose.
    dask_logger.setLevel(logging.WARNING if verbose else logging.CRITICAL)
    try:
        with _open_client(
            workers=workers, scheduler=scheduler, memory_limit=memory_limit,
            n_sessions=n_sessions, threads=threads, verbose=verbose,
        ) as connected:
            yield connected
    finally:
        dask_logger.setLevel(previous_level)


@contextmanager
def _open_client(
    *,
    workers: int | None = None,
    scheduler: str | Client | None = None,
    memory_limit: str | int | None = None,
    n_sessions: int | None = None,
    threads: int | None = None,
    verbose: bool = False,
) -> Iterator[tuple[Client, ClusterInfo]]:
    """See ``open_client``."""
    import dask
    from distributed import Client, LocalCluster

    limit_bytes = parse_memory_limit(memory_limit)
    log_level = logging.WARNING if verbose else logging.CRITICAL
    if scheduler is not None:
        own_client = not isinstance(scheduler, Client)
        try:
            # waits up to ``distributed.comm.timeouts.connect`` (30 s by default)
            client = Client(scheduler) if own_client else scheduler
        except (OSError, TimeoutError, ValueError) as error:
            raise ClusterError(f"cannot connect to the Dask scheduler at {scheduler}: {error}") from None
        try:
            client.register_plugin(_thread_limit_plugin_class()(_slots_per_host(client), threads))
            worker_memory = _smallest_worker_memory(client)
            limits = [limit for limit in (worker_memory, limit_bytes) if limit]
            info = ClusterInfo(
                description=f"Dask cluster at {client.scheduler.address}",
                n_workers=len(client.scheduler_info(n_workers=-1).get("workers", {})),
                memory_limit_bytes=min(limits) if limits else None,
                local=False,
            )
            yield client, info
        finally:
            if own_client:
                client.close()
        return

    cores = available_cores()
    n_workers = int(workers) if workers else cores
    if n_sessions:
        n_workers = min(n_workers, max(1, n_sessions))
    n_workers = max(1, n_workers)
    environment = thread_environment(threads_per_task(cores, n_workers, threads))
    # Sessions wait in the scheduler, one task per worker thread at a time (saturation 1.0), so
    # a worker killed for exceeding its memory holds only the session that caused it.  A
    # session whose worker died is retried once (allowed-failures 1: an innocent session that
    # was merely assigned to that worker then finishes elsewhere), then fails.
    settings = {
        "distributed.scheduler.allowed-failures": 1,
        "distributed.scheduler.worker-saturation": 1.0,
        "distributed.nanny.pre-spawn-environ": {
            "MALLOC_TRIM_THRESHOLD_": 65536,
            **{name: value for name, value in environment.items() if name != "ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS"},
        },
    }
    # the nanny copies pre-spawn variables into this process' environment: undo that afterwards
    saved_environment = {name: os.environ.get(name) for name in (*THREAD_VARIABLES, "MALLOC_TRIM_THRESHOLD_")}
    with dask.config.set(settings), _restored_environment(saved_environment):
        cluster = LocalCluster(
            n_workers=n_workers,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            scheduler_port=0,
            dashboard_address=":0",
            memory_limit=limit_bytes if limit_bytes else "auto",
            silence_logs=log_level,
            env=environment,
        )
        try:
            client = Client(cluster)
            try:
                info = ClusterInfo(
                    description=f"local Dask cluster, {n_workers} worker process(es)",
                    n_workers=n_workers,
                    memory_limit_bytes=_smallest_worker_memory(client),
                    local=True,
                )
                yield client, info
            finally:
                client.close()
        finally:
            cluster.close()


def memory_restarted_workers(client: Client) -> set[str]:
    """Addresses of workers the nannies restarted for exceeding their memory budget."""
    try:
        events = client.get_events(MEMORY_RESTART_TOPIC)
    except Exception:  # noqa: BLE001 - events are a diagnostic nicety
        return set()
    return {str(event.get("worker")) for _, event in events if isinstance(event, dict)}


def lost_worker_cause(pid: int | None) -> str:
    """Inside a Dask task: why worker process ``pid`` went away, when a nanny restarted it for its memory.

    Reads the scheduler's ``worker-restart-memory`` events (they carry the process id
    and its memory use); "" when none matches (the process was killed or crashed
    otherwise, or this is not a Dask worker).
    """
    if not pid:
        return ""
    try:
        from dask.utils import format_bytes
        from distributed import get_client

        events = get_client().get_events(MEMORY_RESTART_TOPIC)
    except Exception:  # noqa: BLE001 - the cause is a diagnostic nicety
        return ""
    for _, event in events:
        if isinstance(event, dict) and event.get("pid") == pid:
            used = format_bytes(int(event.get("rss") or 0))
            return f"its worker process was restarted by the Dask nanny for exceeding its memory limit ({used} in use)"
    return ""
