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
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from distributed import Client, Future, as_completed
from distributed.scheduler import KilledWorker

from regiontag.config import Config
from regiontag.inputs.bids import is_bids_dataset
from regiontag.inputs.discovery import bids_subject_label, discover_sessions
from regiontag.outputs.batch_tables import BatchTables, FINISHED_STATUSES
from regiontag.outputs.bids import WORK_DIR, write_bids_derivatives, write_derivatives_description, write_group_tables
from regiontag.outputs.session_folder import SessionFolder
from regiontag.types import Session, SessionResult
from regiontag.workflows.cluster import ClusterInfo, memory_restarted_workers, open_client, parse_memory_limit
from regiontag.workflows.progress import STAGE_TOPIC, BatchProgress
from regiontag.workflows.task import execute_session, one_line_error

logger = logging.getLogger(__name__)

LOCK_FILE = ".regiontag.lock"


class BatchError(RuntimeError):
    """The batch cannot start (output folder in use, duplicate session ids, bad options)."""


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
        """0 when every session finished (ok or warning), else 1."""
        return 1 if self.counts["failed"] or self.not_run else 0


@contextmanager
def output_lock(output_dir: Path) -> Iterator[None]:
    """Hold an exclusive lock on OUTPUT_DIR so two runs never write the same tables.

    The lock is an ``flock`` on ``OUTPUT_DIR/.regiontag.lock``; the kernel drops
    it when the process dies, so a killed run never leaves a stale lock.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield
        return
    handle = open(output_dir / LOCK_FILE, "a+")
    try:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise BatchError(f"{output_dir}: another regiontag run is writing to this folder") from None
        yield
    finally:
        handle.close()


def remove_stale_temporaries(output_dir: Path) -> int:
    """Delete temporary files a killed run left behind (``.name.XXXX.tmp.ext``, see ``outputs.atomic_path``).

    Called under the output lock, so no other run is writing them.  Returns how many were removed.
    """
    removed = 0
    for path in output_dir.rglob(".*.tmp*"):
        if path.is_file() and ".tmp" in path.name:
            path.unlink(missing_ok=True)
            removed += 1
    return removed


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


def _result_of(
    future: Future, session: Session, client: Client, cluster: ClusterInfo, output_dir: Path
) -> SessionResult | None:
    """The SessionResult of a finished future; worker deaths become failed results, None = not run."""
    try:
        return future.result()
    except KilledWorker as error:
        time.sleep(0.2)  # let the nanny's memory event reach the scheduler
        address = getattr(error.last_worker, "address", "")
        if address in memory_restarted_workers(client):
            reason = f"worker ran out of memory (limit {cluster.memory_limit_text}) while running this session"
        else:
            reason = (
                "worker process died while running this session (most likely out of memory; "
                f"limit {cluster.memory_limit_text} per worker)"
            )
        SessionFolder(output_dir / session.session_id).append_log(f"ERROR {reason}\n{error}")
        return SessionResult(session.session_id, "failed", reason)
    except CancelledError:
        return None
    except Exception as error:  # noqa: BLE001 - e.g. regiontag not importable on a remote worker
        reason = one_line_error(error)
        SessionFolder(output_dir / session.session_id).append_log(f"ERROR task failed on the cluster: {reason}")
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


def _write_batch_report(output_dir: Path) -> str:
    """Call ``regiontag.report.batch.write_batch_report`` when that module exists; returns an error or ""."""
    try:
        from regiontag.report.batch import write_batch_report
    except ImportError as error:
        if getattr(error, "name", "") in ("regiontag.report.batch", "regiontag.report"):
            return ""
        return one_line_error(error)
    try:
        write_batch_report(output_dir)
    except Exception as error:  # noqa: BLE001 - a report problem never fails the batch
        logger.warning("batch report not written: %s", error, exc_info=True)
        return one_line_error(error)
    return ""


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
    limit_bytes = parse_memory_limit(memory_limit)
    if sessions is None:
        sessions = _without_outputs(_discover(input_dir, config, participant_labels, session_labels), output_dir)
        sessions = sorted(sessions, key=lambda session: session.session_id)
    sessions = list(sessions)
    _check_unique(sessions)
    if session_runner is None:
        session_runner = os.environ.get("REGIONTAG_SESSION_RUNNER") or None
    output_dir.mkdir(parents=True, exist_ok=True)
    work_dir = work_dir_of(input_dir, output_dir)
    summary = BatchSummary(output_dir=output_dir)
    with output_lock(output_dir):
        remove_stale_temporaries(output_dir)
        if work_dir != output_dir:
            work_dir.mkdir(exist_ok=True)
            write_derivatives_description(output_dir, input_dir)
        tables = BatchTables(work_dir)
        tables.load()
        progress = BatchProgress(len(sessions), workers or 1, quiet=quiet, verbose=verbose)
        progress.set_sessions({session.session_id: [scan.body_part for scan in session.scans] for session in sessions})
        if sessions:
            with open_client(
                workers=workers, scheduler=scheduler, memory_limit=limit_bytes,
                n_sessions=len(sessions), threads=config.registration.threads, verbose=verbose,
            ) as (client, cluster):
                summary.cluster = cluster.description
                progress.workers = max(1, cluster.n_workers)
                client.subscribe_topic(STAGE_TOPIC, progress.on_stage_event)  # stages reported by the workers
                if verbose and not quiet:
                    progress.console.print(f"{len(sessions)} sessions on {cluster.description}", highlight=False)
                batch_token = uuid.uuid4().hex[:8]
                futures = {
                    client.submit(
                        execute_session, session, work_dir, config,
                        force=force,
                        cord_atlas_path=Path(cord_atlas_path) if cord_atlas_path else None,
                        patterns_dir=Path(patterns_dir) if patterns_dir else None,
                        memory_limit_bytes=limit_bytes,
                        runner=session_runner,
                        verbose=verbose,
                        # one task group for the whole batch, so the scheduler queues the sessions
                        key=(f"regiontag-session-{batch_token}", index),
                        pure=False,
                    ): session
                    for index, session in enumerate(sessions)
                }
                with progress:
                    for future in as_completed(futures):
                        session = futures[future]
                        result = _result_of(future, session, client, cluster, work_dir)
                        future.release()
                        if result is None:
                            summary.not_run += 1
                            continue
                        summary.results[session.session_id] = result
                        record = tables.record(result)
                        resumed = result.status == "skipped"
                        progress.update(
                            session.session_id, record["status"], record.get("error", ""),
                            float(record.get("seconds") or 0.0), resumed,
                        )
                        if work_dir != output_dir and record["status"] in FINISHED_STATUSES:
                            _bids_view(output_dir, work_dir, session, input_dir, config)
                        tables.write_sessions_csv()
                        tables.maybe_write_result_tables()
        tables.write_all()
        if work_dir != output_dir:
            write_group_tables(output_dir, work_dir)
        summary.counts = dict(progress.counts)
        summary.resumed = progress.resumed
        if report and config.report.enabled:
            summary.report_error = _write_batch_report(work_dir)
    summary.seconds = time.monotonic() - started
    summary.line = progress.summary_line(output_dir)
    if work_dir != output_dir:
        summary.line += f" (BIDS derivatives; regiontag tables and index.html in {work_dir})"
    if summary.not_run:
        summary.line += f"; {summary.not_run} not run (cluster connection lost)"
    return summary


def rebuild_group(output_dir: str | Path, *, report: bool = True) -> Path:
    """BIDS-Apps ``group`` level: rebuild the batch tables (and the batch report) from the session folders.

    Nothing is computed: ``sessions.csv``, ``regions.csv``, ``scores.csv`` (and
    ``index.html``) are rewritten from what the participant-level runs left in
    OUTPUT_DIR (``OUTPUT_DIR/regiontag`` when OUTPUT_DIR is a BIDS-derivatives
    dataset, which also gets its ``group_*.tsv`` tables).

    Returns
    -------
    Path
        The folder holding the batch tables.

    Raises
    ------
    BatchError
        OUTPUT_DIR holds no session folders, or another run is writing to it.

    Examples
    --------
    >>> rebuild_group("out/")                          # doctest: +SKIP
    PosixPath('out/regiontag')
    """
    output_dir = Path(output_dir)
    bids_view = (output_dir / WORK_DIR).is_dir() and is_bids_dataset(output_dir)
    work_dir = output_dir / WORK_DIR if bids_view else output_dir
    if not work_dir.is_dir():
        raise BatchError(f"{output_dir}: not found (run the participant level first)")
    with output_lock(output_dir):
        tables = BatchTables(work_dir)
        tables.load()
        if not tables.records:
            raise BatchError(f"{work_dir}: no session folders (run the participant level first)")
        tables.write_all()
        if bids_view:
            write_group_tables(output_dir, work_dir)
        if report:
            error = _write_batch_report(work_dir)
            if error:
                logger.warning("batch report not written: %s", error)
    return work_dir


__all__ = ["BatchError", "BatchSummary", "output_lock", "rebuild_group", "run_batch"]
