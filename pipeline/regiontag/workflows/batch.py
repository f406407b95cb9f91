"""Batch processing on Dask: one task per session, resumable, with progress and batch tables.

``run_batch`` discovers the sessions of INPUT_DIR, runs each one as a Dask
task (a local cluster of single-threaded worker processes by default, or an
existing cluster given by its scheduler address) and gathers results as they
complete.  After every session ``sessions.csv`` is rewritten (atomically) from
the per-session ``status.json`` files, and ``regions.csv`` / ``scores.csv``
are rebuilt from the per-session tables; so a run killed at any moment (kill
-9 included) and restarted lists each session exactly once, and sessions
whose outputs are complete and current are skipped, not recomputed.

Running on a cluster::

    dask scheduler --host 0.0.0.0                     # on the head node
    dask worker tcp://head:8786 --nworkers 8 --nthreads 1 --memory-limit 6GB
    regiontag run INPUT OUTPUT --scheduler tcp://head:8786

OUTPUT (and INPUT) must be on a file system all workers see.
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from concurrent.futures import CancelledError
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from rich.markup import escape

from regiontag.config import Config
from regiontag.inputs.bids import is_bids_dataset
from regiontag.inputs.discovery import bids_subject_label, discover_sessions
from regiontag.outputs.batch_tables import BatchTables, FINISHED_STATUSES
from regiontag.outputs.bids import WORK_DIR, write_bids_derivatives, write_derivatives_description, write_group_tables
from regiontag.outputs.provenance import pattern_library_dir
from regiontag.outputs.session_folder import SessionFolder, status_record
from regiontag.patterns.library import load_library
from regiontag.types import Session, SessionResult
from regiontag.workflows.cluster import (
    ClusterInfo, memory_restarted_workers, open_client, parse_memory_limit, runs_in_process,
)
from regiontag.workflows.output_guard import (
    BatchError,
    WriteProblems,
    check_batch_files,
    check_output_location,
    output_lock,
    refusal_reason,
    remove_stale_temporaries,
    unsafe_entry,
)
from regiontag.workflows.progress import STAGE_TOPIC, BatchProgress
from regiontag.workflows.group import write_batch_report_safely
from regiontag.workflows.task import execute_session, one_line_error
from regiontag.workflows.worker_exits import WorkerExits, worker_death_reason

if TYPE_CHECKING:
    from distributed import Client, Future

logger = logging.getLogger(__name__)


@dataclass
class BatchSummary:
    """Outcome of a batch run.

    Attributes
    ----------
    output_dir : Path
    counts : dict
        Sessions per final status (``ok``, ``warning``, ``failed``), resumed ones included.
    resumed : int
        Sessions skipped because their outputs were complete and current.
    not_run : int
        Sessions never attempted because the cluster went away.
    seconds : float
        Wall time of the whole batch.
    line : str
        The one-line summary printed at the end.
    cluster : str
        Where the sessions ran.
    results : dict
        Session id -> SessionResult as returned by the workers.
    report_error : str
        Why the batch report could not be written ("" when it was, or was not asked for).
    write_problems : WriteProblems
        Batch files that could not be written (a full disk); the run then exits with 1.
    retried : dict
        Session id -> why it was run more than once (an attempt lost with its worker).
    """

    output_dir: Path
    counts: dict[str, int] = field(default_factory=lambda: {"ok": 0, "warning": 0, "failed": 0})
    resumed: int = 0
    not_run: int = 0
    seconds: float = 0.0
    line: str = ""
    cluster: str = ""
    results: dict[str, SessionResult] = field(default_factory=dict)
    report_error: str = ""
    write_problems: WriteProblems = field(default_factory=WriteProblems)
    retried: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> int:
        """Sessions finished without warnings."""
        return self.counts["ok"]

    @property
    def warning(self) -> int:
        """Sessions finished with a sanity-check warning."""
        return self.counts["warning"]

    @property
    def failed(self) -> int:
        """Sessions that failed."""
        return self.counts["failed"]

    @property
    def n_sessions(self) -> int:
        """Sessions in the batch."""
        return sum(self.counts.values()) + self.not_run

    @property
    def exit_code(self) -> int:
        """0 when every session finished (ok or warning) and every batch file was written, else 1."""
        return 1 if self.counts["failed"] or self.not_run or self.write_problems else 0


def _discover(
    input_dir: Path, config: Config, participant_labels: list[str] | None, session_labels: list[str] | None = None
) -> list[Session]:
    bids_input = is_bids_dataset(input_dir) or bids_subject_label(input_dir) is not None
    for option, labels in (("--participant-label", participant_labels), ("--session-label", session_labels)):
        if labels and not bids_input:
            raise BatchError(f"{input_dir}: {option} needs a BIDS dataset (no dataset_description.json)")
    return discover_sessions(input_dir, config, participant_labels, session_labels)


def _without_outputs(sessions: list[Session], output_dir: Path) -> list[Session]:
    """Drop "sessions" found inside OUTPUT_DIR (an output folder placed inside the input folder)."""
    resolved = output_dir.resolve()
    kept = []
    for session in sessions:
        # os.path.realpath never raises on a symlink loop (Path.resolve does on Python 3.11)
        if any(resolved in Path(os.path.realpath(scan.path)).parents for scan in session.scans):
            logger.warning("%s: inside the output folder, not an input session", session.session_id)
            continue
        kept.append(session)
    return kept


def _check_unique(sessions: list[Session]) -> None:
    seen: set[str] = set()
    for session in sessions:
        if session.session_id in seen:
            raise BatchError(f"two sessions share the output folder name {session.session_id!r}")
        seen.add(session.session_id)


def _append_log(output_dir: Path, session_id: str, text: str) -> None:
    """Append to a session's log; a full disk or a refused log never stops the batch."""
    try:
        SessionFolder(output_dir / session_id).append_log(text)
    except OSError as error:
        logger.warning("%s: log not written: %s", session_id, error)


def _result_of(
    future: Future, session: Session, client: Client, cluster: ClusterInfo, output_dir: Path,
    exits: WorkerExits | None = None,
) -> SessionResult | None:
    """The SessionResult of a finished future; worker deaths become failed results, None = not run."""
    from distributed.scheduler import KilledWorker

    try:
        return future.result()
    except KilledWorker as error:
        time.sleep(0.2)  # let the nanny's memory event reach the scheduler
        worker = error.last_worker
        out_of_memory = getattr(worker, "address", "") in memory_restarted_workers(client)
        end = exits.end_of(getattr(worker, "pid", None)) if exits is not None and not out_of_memory else ""
        reason = worker_death_reason(end, out_of_memory, cluster.memory_limit_text)
        _append_log(output_dir, session.session_id, f"ERROR {reason}\n{error}")
        return SessionResult(session.session_id, "failed", reason)
    except CancelledError:
        return None
    except Exception as error:  # noqa: BLE001 - e.g. regiontag not importable on a remote worker
        reason = one_line_error(error)
        _append_log(output_dir, session.session_id, f"ERROR task failed on the cluster: {reason}")
        return SessionResult(session.session_id, "failed", reason)


def work_dir_of(input_dir: Path, output_dir: Path) -> Path:
    """Where the session folders and batch tables go: OUTPUT_DIR, or ``OUTPUT_DIR/regiontag`` for BIDS input.

    For BIDS input OUTPUT_DIR itself is a BIDS-derivatives dataset (``regiontag.outputs.bids``).
    """
    return output_dir / WORK_DIR if is_bids_dataset(input_dir) else output_dir


def _bids_view(output_dir: Path, work_dir: Path, session: Session, input_dir: Path, config: Config) -> None:
    """BIDS-derivatives names for a finished BIDS session; a problem there is logged, never fatal."""
    try:
        write_bids_derivatives(output_dir, session, session_dir=work_dir / session.session_id,
                               input_dir=input_dir, template=config.registration.template)
    except (OSError, ValueError) as error:
        folder = SessionFolder(work_dir / session.session_id)
        folder.append_log(f"WARNING BIDS-derivatives view not written: {error}")


def run_batch(
    input_dir: str | Path,
    output_dir: str | Path,
    config: Config,
    *,
    workers: int | None = None,
    scheduler: str | Client | None = None,
    force: bool = False,
    participant_labels: list[str] | None = None,
    session_labels: list[str] | None = None,
    memory_limit: str | int | None = None,
    quiet: bool = False,
    verbose: bool = False,
    cord_atlas_path: str | Path | None = None,
    patterns_dir: str | Path | None = None,
    report: bool = True,
    sessions: list[Session] | None = None,
    session_runner: str | Callable[..., SessionResult] | None = None,
) -> BatchSummary:
    """Process every session of ``input_dir`` into ``output_dir`` on a Dask cluster.

    Parameters
    ----------
    input_dir, output_dir : str or Path
        Input folder (plain folder or BIDS dataset) and output folder.
    config : Config
        Validated run configuration.
    workers : int, optional
        Worker processes of the local cluster (default: one per core).
    scheduler : str or distributed.Client, optional
        Address of an existing Dask scheduler (or a connected client).
    force : bool
        Redo sessions whose outputs are complete and current.
    participant_labels, session_labels : list of str, optional
        BIDS only: keep these subjects / sessions.
    memory_limit : str or int, optional
        Per-worker memory limit (``"4GB"``); sessions estimated to need more
        fail alone with the reason, as do sessions whose worker is killed for
        exceeding it.
    quiet, verbose : bool
        Console output: none / one line per session (and debug session logs).
    cord_atlas_path, patterns_dir : str or Path, optional
        Passed to ``run_session``.
    report : bool
        Write the batch report (``index.html``) when ``regiontag.report.batch`` exists.
    sessions : list of Session, optional
        Use these sessions, submitted in this order, instead of discovering them in
        ``input_dir`` (discovered sessions are submitted sorted by id).
    session_runner : str or callable, optional
        Alternative to ``regiontag.workflows.session.run_session`` (``"module:function"``;
        default from ``REGIONTAG_SESSION_RUNNER``), for tests and benchmarks.

    Returns
    -------
    BatchSummary

    Raises
    ------
    BatchError, FileNotFoundError, ValueError
        When the batch cannot start (nothing has been written then, except the lock file).
    """
    started = time.monotonic()
    input_dir, output_dir = Path(input_dir), Path(output_dir)
    check_output_location(input_dir, output_dir)
    limit_bytes = parse_memory_limit(memory_limit)
    if sessions is None:
        sessions = _without_outputs(_discover(input_dir, config, participant_labels, session_labels), output_dir)
        sessions = sorted(sessions, key=lambda session: session.session_id)
    sessions = list(sessions)
    _check_unique(sessions)
    if sessions:  # a library that cannot load fails the run now, not every session after hours of work
        load_library(pattern_library_dir(patterns_dir, config))
    if session_runner is None:
        session_runner = os.environ.get("REGIONTAG_SESSION_RUNNER") or None
    output_dir.mkdir(parents=True, exist_ok=True)
    work_dir = work_dir_of(input_dir, output_dir)
    summary = BatchSummary(output_dir=output_dir)
    problems = summary.write_problems
    with output_lock(output_dir):
        check_batch_files(output_dir)
        remove_stale_temporaries(output_dir)
        if work_dir != output_dir:
            try:
                work_dir.mkdir(exist_ok=True)
                write_derivatives_description(output_dir, input_dir)
            except OSError as error:
                raise BatchError(f"{output_dir}: cannot write to the output folder ({error})") from None
            check_batch_files(work_dir)
        tables = BatchTables(work_dir)
        tables.load()
        for name in [name for name in tables.records if unsafe_entry(work_dir, name)]:
            del tables.records[name]  # a symlinked or reserved entry is no session of this folder
        progress = BatchProgress(len(sessions), workers or 1, quiet=quiet, verbose=verbose)
        progress.set_sessions({session.session_id: [scan.body_part for scan in session.scans] for session in sessions})
        task_options = dict(
            force=force,
            cord_atlas_path=Path(cord_atlas_path) if cord_atlas_path else None,
            patterns_dir=Path(patterns_dir) if patterns_dir else None,
            memory_limit_bytes=limit_bytes,
            runner=session_runner,
            verbose=verbose,
        )
        refused = {session.session_id: refusal_reason(work_dir, session.session_id) for session in sessions}
        runnable = [session for session in sessions if not refused[session.session_id]]

        def take(session: Session, result: SessionResult) -> None:
            summary.results[session.session_id] = result
            try:
                record = tables.record(result) if not refused[session.session_id] else status_record(result)
            except OSError as error:  # e.g. a full disk: listed from memory, the batch goes on
                problems.note(f"{session.session_id}/status.json", error)
                record = status_record(result if result.status != "skipped" else SessionResult(
                    session.session_id, "ok", seconds=result.seconds))
            tables.records[session.session_id] = record
            if int(record.get("attempts") or 1) > 1 and result.status != "skipped":
                summary.retried[session.session_id] = str(record.get("retry") or "")
                if not quiet:
                    progress.console.print(
                        f"[yellow]retried[/] {escape(session.session_id)}: "
                        f"{escape(str(record.get('retry') or 'attempt lost'))}", highlight=False)
            progress.update(
                session.session_id, record["status"], record.get("error", ""),
                float(record.get("seconds") or 0.0), result.status == "skipped",
            )
            if work_dir != output_dir and record["status"] in FINISHED_STATUSES:
                _bids_view(output_dir, work_dir, session, input_dir, config)
            _write_guarded(problems, outputs_name="sessions.csv", write=tables.write_sessions_csv)
            _write_guarded(problems, outputs_name="regions.csv / scores.csv", write=tables.maybe_write_result_tables)

        with progress:
            for session in sessions:
                if refused[session.session_id]:
                    logger.warning("%s: refused: %s", session.session_id, refused[session.session_id])
                    take(session, SessionResult(session.session_id, "failed", refused[session.session_id]))
            if runnable and runs_in_process(len(runnable), scheduler=scheduler, memory_limit=limit_bytes):
                # one session: no cluster to start, no worker process to import the pipeline again
                summary.cluster = "this process (one session, no Dask cluster)"
                take(runnable[0], execute_session(runnable[0], work_dir, config, **task_options))
            elif runnable:
                _run_on_cluster(
                    runnable, work_dir, config, take, summary, progress,
                    options=task_options,
                    cluster_options=dict(
                        workers=workers, scheduler=scheduler, memory_limit=limit_bytes,
                        n_sessions=len(runnable), threads=config.registration.threads, verbose=verbose,
                    ),
                    quiet=quiet,
                )
        if sessions or tables.records:
            _write_guarded(problems, outputs_name="batch tables", write=tables.write_all)
            if work_dir != output_dir:
                _write_guarded(problems, outputs_name="group tables",
                               write=lambda: write_group_tables(output_dir, work_dir))
        summary.counts = dict(progress.counts)
        summary.resumed = progress.resumed
        if report and config.report.enabled and (sessions or tables.records):
            summary.report_error = write_batch_report_safely(work_dir)
    summary.seconds = time.monotonic() - started
    summary.line = progress.summary_line(output_dir)
    if work_dir != output_dir:
        summary.line += f" (BIDS derivatives; regiontag tables and index.html in {work_dir})"
    if summary.retried:
        noun = "session was" if len(summary.retried) == 1 else "sessions were"
        summary.line += f"; {len(summary.retried)} {noun} retried after losing a worker (see their log.txt)"
    if summary.not_run:
        summary.line += f"; {summary.not_run} not run (cluster connection lost)"
    if problems:
        summary.line += f"; {problems.line()}"
    return summary


def _write_guarded(problems: WriteProblems, *, outputs_name: str, write: Callable[[], object]) -> None:
    """Run one batch-file writer; an ``OSError`` (a full disk) is noted and the batch goes on."""
    try:
        write()
    except OSError as error:
        problems.note(outputs_name, error)


def _run_on_cluster(
    sessions: list[Session], output_dir: Path, config: Config, take: Callable[[Session, SessionResult], None],
    summary: BatchSummary, progress: BatchProgress, *, options: dict, cluster_options: dict, quiet: bool,
) -> None:
    """Submit every session as one Dask task and hand each result to ``take`` as it completes."""
    from distributed import as_completed

    with WorkerExits() as exits, open_client(**cluster_options) as (client, cluster):
        summary.cluster = cluster.description
        progress.workers = max(1, cluster.n_workers)
        client.subscribe_topic(STAGE_TOPIC, progress.on_stage_event)  # stages reported by the workers
        if cluster_options.get("verbose") and not quiet:
            progress.console.print(f"{len(sessions)} sessions on {cluster.description}", highlight=False)
        batch_token = uuid.uuid4().hex[:8]
        futures = {
            client.submit(
                execute_session, session, output_dir, config, **options,
                # one task group for the whole batch, so the scheduler queues the sessions
                key=(f"regiontag-session-{batch_token}", index),
                pure=False,
            ): session
            for index, session in enumerate(sessions)
        }
        for future in as_completed(futures):
            session = futures[future]
            result = _result_of(future, session, client, cluster, output_dir, exits)
            future.release()
            if result is None:
                summary.not_run += 1
                continue
            take(session, result)


__all__ = ["BatchError", "BatchSummary", "output_lock", "run_batch"]
