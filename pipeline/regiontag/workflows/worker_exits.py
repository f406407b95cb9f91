"""How a Dask worker process ended, for the one-line reason of the session it was running.

A local cluster's nannies live in the batch's own process and log each worker's end
(``Worker process 123 was killed by signal 9`` / ``... exited with status 1``) on the
``distributed.nanny`` logger.  :class:`WorkerExits` listens there for the duration of a batch
(without printing anything that was silent before) and keeps the end of each worker by pid, so a
session whose worker died is reported with the signal's name; only the nanny's memory restart
(``worker-restart-memory`` events) makes it an out-of-memory failure.  On an existing cluster the
nannies log elsewhere and the reason says the cause was not reported.
"""

from __future__ import annotations

import logging
import re
import signal
import time
from types import TracebackType

NANNY_LOGGER = "distributed.nanny"
_KILLED = re.compile(r"Worker process (\d+) was killed by signal (\d+)")
_EXITED = re.compile(r"Worker process (\d+) exited with status (\d+)")


def signal_name(number: int) -> str:
    """``SIGKILL`` for 9 (``signal 64`` when the number has no name).

    Examples
    --------
    >>> signal_name(9), signal_name(11)
    ('SIGKILL', 'SIGSEGV')
    """
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


class WorkerExits(logging.Filter):
    """Collect worker ends from the nanny logger while active (a context manager).

    The nanny logger is set to INFO meanwhile; records below its previous effective level are
    dropped after being read, so the console shows exactly what it showed before.
    """

    def __init__(self) -> None:
        super().__init__()
        self.ends: dict[int, str] = {}
        self._logger = logging.getLogger(NANNY_LOGGER)
        self._previous_level = self._logger.level
        self._threshold = self._logger.getEffectiveLevel()

    def filter(self, record: logging.LogRecord) -> bool:  # noqa: D102 - logging.Filter hook
        message = record.getMessage()
        killed, exited = _KILLED.search(message), _EXITED.search(message)
        if killed:
            self.ends[int(killed.group(1))] = f"killed by signal {signal_name(int(killed.group(2)))}"
        elif exited:
            self.ends[int(exited.group(1))] = f"exited with status {exited.group(2)}"
        return record.levelno >= self._threshold

    def __enter__(self) -> WorkerExits:  # noqa: PYI034 - Self needs Python 3.11
        self._threshold = self._logger.getEffectiveLevel()
        self._previous_level = self._logger.level
        self._logger.addFilter(self)
        self._logger.setLevel(min(logging.INFO, self._threshold))
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self._logger.removeFilter(self)
        self._logger.setLevel(self._previous_level)

    def end_of(self, pid: int | None, wait_seconds: float = 2.0) -> str:
        """How worker ``pid`` ended (``killed by signal SIGKILL``), waiting briefly for the nanny; "" if unknown."""
        if not pid:
            return ""
        deadline = time.monotonic() + wait_seconds
        while pid not in self.ends and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.ends.get(pid, "")


def worker_death_reason(end: str, out_of_memory: bool, memory_limit_text: str) -> str:
    """The one-line reason of a session whose worker process died.

    Examples
    --------
    >>> worker_death_reason("killed by signal SIGSEGV", False, "4.00 GiB")
    'worker process killed by signal SIGSEGV while running this session (not a memory restart by Dask; limit 4.00 GiB per worker)'
    >>> worker_death_reason("", True, "4.00 GiB")
    'worker ran out of memory (limit 4.00 GiB) while running this session'
    """
    if out_of_memory:
        return f"worker ran out of memory (limit {memory_limit_text}) while running this session"
    if end:
        return (f"worker process {end} while running this session "
                f"(not a memory restart by Dask; limit {memory_limit_text} per worker)")
    return ("worker process died while running this session (the cluster did not report why, and recorded "
            f"no memory restart; limit {memory_limit_text} per worker)")


__all__ = ["NANNY_LOGGER", "WorkerExits", "signal_name", "worker_death_reason"]
