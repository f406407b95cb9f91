"""Batch progress on the console: a rich progress bar, per-session lines and the summary line.

The ETA is an estimate of the work left, not a rate of finished sessions:
each session costs its body parts' weight (a brain session several times a
cord session, ``BODY_PART_WEIGHTS``) times the seconds per unit of weight
measured on the sessions computed so far; before any has finished, the
running sessions' own elapsed time bounds it from below (so the ETA moves
while the first session runs).  Running sessions report their stage (load,
register, detect, tag, score, report) from the workers as Dask events
(``publish_stage``); the bar shows them.
"""

from __future__ import annotations

import math
import threading
import time
from contextlib import contextmanager
from typing import Any, Iterable, Iterator

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text


def format_duration(seconds: float) -> str:
    """``3m12s``, ``1h02m``, ``45s``, ``0.8s``."""
    if not math.isfinite(seconds) or seconds < 0:
        return "?"
    if seconds < 10:
        return f"{seconds:.1f}s"
    whole = int(round(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


#: Relative cost of a session per body part imaged (measured: a brain session ~1 min, a cord session seconds
#: to ~20 s on a 2-core machine); an undecided body part costs as a brain one (the pessimistic guess).
BODY_PART_WEIGHTS = {"brain": 1.0, "cord": 0.25}
#: Seconds per unit of weight assumed until a session has finished (a brain session at the measured speed).
PRIOR_UNIT_SECONDS = 60.0
#: Dask event topic of the per-session stage reports.
STAGE_TOPIC = "regiontag-stage"


def session_weight(body_parts: Iterable[str | None]) -> float:
    """Relative cost of a session from its body parts (``None`` = not decided yet: counted as brain).

    Examples
    --------
    >>> session_weight(["brain", "cord"]), session_weight(["cord"]), session_weight([None])
    (1.25, 0.25, 1.0)
    """
    parts = set(body_parts) or {None}
    return sum(BODY_PART_WEIGHTS.get(part or "brain", 1.0) for part in parts)


def publish_stage(session_id: str, stage: str) -> None:
    """Tell the batch's client that ``session_id`` reached ``stage`` (a no-op outside a Dask worker)."""
    try:
        from distributed import get_worker

        worker = get_worker()
    except (ImportError, ValueError):
        return
    worker.log_event(STAGE_TOPIC, {"session": session_id, "stage": stage})


class _EtaColumn(ProgressColumn):
    """Estimated time left, recomputed at every refresh (it moves while sessions run)."""

    def render(self, task: Task) -> Text:  # noqa: D102 - rich hook
        owner = task.fields.get("owner")
        eta = owner.eta_seconds() if owner is not None else None
        return Text(f"ETA {format_duration(eta)}" if eta is not None else "ETA -", style="progress.remaining")


class _StageColumn(ProgressColumn):
    """What the running sessions are doing (``sub-01 register 1m02s``), recomputed at every refresh."""

    def render(self, task: Task) -> Text:  # noqa: D102 - rich hook
        owner = task.fields.get("owner")
        return Text(owner.stage_text() if owner is not None else "", style="progress.description")


class BatchProgress:
    """Progress of a batch: counts, ETA, and what to print (quiet / normal / verbose).

    Parameters
    ----------
    total : int
        Sessions in the batch.
    workers : int
        Sessions running at once (for the ETA).
    quiet : bool
        No bar, no per-session lines (the summary line is still returned).
    verbose : bool
        One line per finished session (normal mode prints only failed ones).
    console : rich.console.Console, optional
        Defaults to stderr.
    """

    def __init__(
        self,
        total: int,
        workers: int,
        *,
        quiet: bool = False,
        verbose: bool = False,
        console: Console | None = None,
    ):
        self.total = total
        self.workers = max(1, workers)
        self.quiet = quiet
        self.verbose = verbose
        self.console = console or Console(stderr=True, soft_wrap=True)
        self.counts = {"ok": 0, "warning": 0, "failed": 0}
        self.resumed = 0
        self.computed = 0
        self.started = time.monotonic()
        self._progress: Progress | None = None
        self._task_id: Any = None
        self._lock = threading.Lock()
        self._weights: dict[str, float] = {}
        self._running: dict[str, tuple[float, str, float]] = {}  # session -> (started, stage, stage since)
        self._finished: set[str] = set()
        self._measured: list[tuple[float, float]] = []  # (seconds, weight) of computed sessions

    def __enter__(self) -> "BatchProgress":
        if not self.quiet:
            self._progress = Progress(
                TextColumn("[bold]regiontag"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[status_text]}"),
                TimeElapsedColumn(),
                _EtaColumn(),
                _StageColumn(),
                console=self.console,
                transient=False,
                refresh_per_second=2,
            )
            self._progress.__enter__()
            self._task_id = self._progress.add_task(
                "sessions", total=self.total, status_text=self.status_text(), owner=self
            )
        return self

    def __exit__(self, *exc_info: Any) -> None:
        if self._progress is not None:
            self._progress.__exit__(*exc_info)
            self._progress = None

    @property
    def done(self) -> int:
        """Sessions finished (ok, warning or failed; resumed ones included)."""
        return sum(self.counts.values())

    @property
    def remaining(self) -> int:
        """Sessions not finished yet."""
        return max(0, self.total - self.done)

    def status_text(self) -> str:
        """``8 ok, 1 warning, 1 failed, 2 left`` for the bar."""
        return (
            f"[green]{self.counts['ok']} ok[/], [yellow]{self.counts['warning']} warning[/], "
            f"[red]{self.counts['failed']} failed[/], {self.remaining} left"
        )

    def set_sessions(self, body_parts: dict[str, Iterable[str | None]]) -> None:
        """The batch's sessions and their body parts as far as known (for the weights of the ETA)."""
        with self._lock:
            self._weights = {session_id: session_weight(parts) for session_id, parts in body_parts.items()}

    def on_stage(self, session_id: str, stage: str) -> None:
        """A running session reached ``stage`` (its first report marks its start)."""
        now = time.monotonic()
        with self._lock:
            if session_id in self._finished:
                return
            started = self._running.get(session_id, (now, "", now))[0]
            self._running[session_id] = (started, stage, now)

    def on_stage_event(self, event: tuple[float, dict[str, Any]]) -> None:
        """Handler for ``Client.subscribe_topic(STAGE_TOPIC, ...)``: events are ``(timestamp, message)``."""
        message = event[1] if isinstance(event, tuple) and len(event) == 2 else event
        if isinstance(message, dict) and "session" in message:
            self.on_stage(str(message["session"]), str(message.get("stage", "")))

    def _weight(self, session_id: str) -> float:
        return self._weights.get(session_id, 1.0)

    def eta_seconds(self) -> float | None:
        """Time left: the weighted work of the sessions not finished, at the measured seconds per weight.

        Before any session has been computed the rate is the prior, raised by what the running
        sessions have already taken; None when nothing has been computed and nothing runs.
        """
        if self.remaining == 0:
            return 0.0
        now = time.monotonic()
        with self._lock:
            running = {sid: now - started for sid, (started, _, _) in self._running.items()}
            if self._measured:
                unit = sum(seconds for seconds, _ in self._measured) / sum(weight for _, weight in self._measured)
            elif running:
                unit = max([PRIOR_UNIT_SECONDS] + [elapsed / self._weight(sid) for sid, elapsed in running.items()])
            else:
                return None
            pending = [sid for sid in self._weights if sid not in self._finished and sid not in running]
            unknown = max(0, self.remaining - len(running) - len(pending))  # sessions the batch did not name
            left_running = [max(self._weight(sid) * unit - elapsed, 0.0) for sid, elapsed in running.items()]
            work = sum(left_running) + unit * (sum(self._weight(sid) for sid in pending) + unknown)
        return max(work / self.workers, max(left_running, default=0.0))

    def stage_text(self) -> str:
        """The running sessions and their stages: ``sub-01 register 1m02s`` (counts per stage when many)."""
        now = time.monotonic()
        with self._lock:
            running = sorted(self._running.items(), key=lambda item: item[1][0])
        if len(running) > 3:
            stages: dict[str, int] = {}
            for _, (_, stage, _) in running:
                stages[stage] = stages.get(stage, 0) + 1
            return ", ".join(f"{stage} {count}" for stage, count in sorted(stages.items()))
        return " | ".join(f"{sid} {stage} {format_duration(now - since)}" for sid, (_, stage, since) in running)

    def update(self, session_id: str, status: str, error: str, seconds: float, resumed: bool) -> None:
        """Count a finished session and print its line when asked to."""
        final = status if status in self.counts else "failed"
        self.counts[final] += 1
        with self._lock:
            self._finished.add(session_id)
            running = self._running.pop(session_id, None)
            if running is not None:  # what the batch saw: from the session's first stage report to its end
                seconds = max(seconds, time.monotonic() - running[0])
            if resumed:
                self.resumed += 1
            else:
                self.computed += 1
                if final != "failed" and seconds > 0:  # a failure says little about the cost of a session
                    self._measured.append((seconds, self._weight(session_id)))
        if self._progress is not None:
            self._progress.update(self._task_id, advance=1, status_text=self.status_text())
        if self.quiet:
            return
        # no live bar on a non-terminal (a log file, CI, a pipe): a line per session instead of silence
        if final == "failed" or self.verbose or not self.console.is_terminal:
            how = "already complete" if resumed else format_duration(seconds)
            style = {"ok": "green", "warning": "yellow", "failed": "red"}[final]
            detail = f": {error}" if error and final != "ok" else ""
            self.console.print(
                f"[{style}]{final:7}[/] {escape(session_id)} ({how}){escape(detail)}", highlight=False
            )

    def summary_line(self, output_dir: Any) -> str:
        """``12 sessions: 10 ok, 1 warning, 1 failed in 3m12s; results in OUT``."""
        elapsed = time.monotonic() - self.started
        parts = [f"{self.counts['ok']} ok", f"{self.counts['warning']} warning", f"{self.counts['failed']} failed"]
        resumed = f" ({self.resumed} already complete)" if self.resumed else ""
        noun = "session" if self.total == 1 else "sessions"
        took = format_duration(elapsed)
        return f"{self.total} {noun}: {', '.join(parts)}{resumed} in {took}; results in {output_dir}"


class Phase:
    """One counted phase on the console (see ``PhaseProgress.phase``): ``start(item)`` / ``done(item)``."""

    def __init__(self, progress: Progress | None, task_id: Any, *, lines: tuple[Console, str, int] | None = None):
        self._progress, self._task_id = progress, task_id
        self._lines = lines  # on a non-terminal: (console, phase name, total), a plain line per finished item
        self.completed = 0

    def start(self, item: str) -> None:
        """Show what is being worked on now."""
        if self._progress is not None:
            self._progress.update(self._task_id, item=escape(item))

    def done(self, item: str = "") -> None:
        """Count one finished item."""
        self.completed += 1
        if self._progress is not None:
            self._progress.update(self._task_id, advance=1, item=escape(item))
        elif self._lines is not None:
            console, name, total = self._lines
            console.print(f"{name} {self.completed}/{total} {item}".rstrip(), markup=False, highlight=False)


class PhaseProgress:
    """Progress of long phases that are not a batch: phantom generation, the phases of ``validate``.

    Each phase gets a bar with its count, the current item, the elapsed time and
    an ETA from the mean time per finished item (rich's estimate).

    Parameters
    ----------
    quiet : bool
        Print nothing.
    console : rich.console.Console, optional
        Defaults to stderr.

    Examples
    --------
    >>> phases = PhaseProgress(quiet=True)
    >>> with phases.phase("generate phantoms", 2) as phase:
    ...     for name in ("a", "b"):
    ...         phase.start(name)
    ...         phase.done(name)
    >>> phase.completed
    2
    """

    def __init__(self, *, quiet: bool = False, console: Console | None = None):
        self.quiet = quiet
        self.console = console or Console(stderr=True, soft_wrap=True)

    @contextmanager
    def phase(self, name: str, total: int) -> Iterator[Phase]:
        """A bar for ``total`` items of phase ``name`` (nothing when quiet or empty)."""
        if self.quiet or total <= 0:
            yield Phase(None, None)
            return
        progress = Progress(
            TextColumn(f"[bold]{escape(name)}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[item]}"),
            TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(), console=self.console, transient=False,
            refresh_per_second=2,
        )
        if not self.console.is_terminal:  # a log file gets no bar (its last state would follow an error): lines
            yield Phase(None, None, lines=(self.console, name, total))
            return
        with progress:
            try:
                yield Phase(progress, progress.add_task(name, total=total, item=""))
            except BaseException:
                progress.live.transient = True  # a failed phase leaves only its one-line error, no bar
                raise
