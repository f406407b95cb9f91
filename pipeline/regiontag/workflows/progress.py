"""Batch progress on the console: a rich progress bar, per-session lines and the summary line."""

from __future__ import annotations

import math
import time
from typing import Any

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


class _EtaColumn(ProgressColumn):
    """Estimated time left from the sessions computed so far (resumed ones excluded)."""

    def render(self, task: Task) -> Text:  # noqa: D102 - rich hook
        eta = task.fields.get("eta")
        return Text(f"ETA {format_duration(eta)}" if eta is not None else "ETA -", style="progress.remaining")


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

    def __enter__(self) -> "BatchProgress":
        if not self.quiet:
            self._progress = Progress(
                TextColumn("[bold]regiontag"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[status_text]}"),
                TimeElapsedColumn(),
                _EtaColumn(),
                console=self.console,
                transient=False,
            )
            self._progress.__enter__()
            self._task_id = self._progress.add_task(
                "sessions", total=self.total, status_text=self.status_text(), eta=None
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

    def eta_seconds(self) -> float | None:
        """Time left: remaining sessions at the rate computed sessions finished so far."""
        if self.computed == 0 or self.remaining == 0:
            return None if self.remaining else 0.0
        elapsed = time.monotonic() - self.started
        return elapsed / self.computed * self.remaining

    def update(self, session_id: str, status: str, error: str, seconds: float, resumed: bool) -> None:
        """Count a finished session and print its line when asked to."""
        final = status if status in self.counts else "failed"
        self.counts[final] += 1
        if resumed:
            self.resumed += 1
        else:
            self.computed += 1
        if self._progress is not None:
            self._progress.update(
                self._task_id, advance=1, status_text=self.status_text(), eta=self.eta_seconds()
            )
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
