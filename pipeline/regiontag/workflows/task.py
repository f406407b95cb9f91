"""What runs on a Dask worker for one session.

``execute_session`` wraps the session runner (``regiontag.workflows.session.run_session``):
it routes the ``regiontag`` package's log records into the session's
``log.txt``, refuses a session whose estimated memory exceeds the worker's
limit (estimated from the NIfTI headers, before any voxel is loaded), and
turns anything the runner raises into a failed ``SessionResult`` with a
one-line reason and the traceback in the log.  It never raises.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
import time
import traceback
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator


from regiontag.config import Config
from regiontag.inputs.nifti_io import header_shape
from regiontag.outputs.provenance import fingerprint_of
from regiontag.outputs.session_folder import PACKAGE_LOGGER, SessionFolder
from regiontag.types import Session, SessionResult
from regiontag.workflows.cluster import lost_worker_cause

#: Environment variable naming an alternative session runner, ``"module:function"``
#: with the signature of ``regiontag.workflows.session.run_session`` (used by tests and benchmarks).
RUNNER_VARIABLE = "REGIONTAG_SESSION_RUNNER"
DEFAULT_RUNNER = "regiontag.workflows.session:run_session"

#: Peak working memory per input voxel: float32/float64 copies (z-maps, resampled and
#: bias-corrected images, labels) at the input grid.  With the baseline below this
#: matches measured worker peaks (1.04 GB for a 3.3 M-voxel phantom FLAIR, 1.22 GB for
#: a 14 M-voxel FLAIR+T2+T1 session; ``benchmarks/bench_batch.py``) with a little margin.
MEMORY_BYTES_PER_VOXEL = 24
#: Fixed working memory of a session (Python stack, atlases, templates, ANTs at 1-2 mm).
MEMORY_BASELINE_BYTES = 2**30

SESSION_LOGGER = PACKAGE_LOGGER


def resolve_runner(runner: str | Callable[..., SessionResult] | None) -> Callable[..., SessionResult]:
    """The session runner: a callable, a ``"module:function"`` path, or the default."""
    if callable(runner):
        return runner
    path = runner or os.environ.get(RUNNER_VARIABLE) or DEFAULT_RUNNER
    module_name, _, function_name = path.partition(":")
    if not function_name:
        raise ValueError(f"session runner {path!r}: expected 'module:function'")
    return getattr(importlib.import_module(module_name), function_name)


def one_line_error(error: BaseException) -> str:
    """``Type: message`` on one line (at most 300 characters)."""
    message = " ".join(str(error).split())
    text = f"{type(error).__name__}: {message}" if message else type(error).__name__
    return text if len(text) <= 300 else text[:297] + "..."


@contextmanager
def session_logging(verbose: bool) -> Iterator[None]:
    """Set the package logger's level for the duration of one task.

    Every module logs under ``regiontag.*``, so its records propagate to the
    ``regiontag`` logger, whose handler ``run_session`` points at
    ``<session>/log.txt``.  Workers run one task per process thread
    (``threads_per_worker=1`` by default), so the logger configuration is
    the session's own while it runs.
    """
    package_logger = logging.getLogger(SESSION_LOGGER)
    previous_level = package_logger.level
    package_logger.setLevel(logging.DEBUG if verbose else logging.INFO)
    logging.captureWarnings(True)
    try:
        yield
    finally:
        package_logger.setLevel(previous_level)


#: At most this much captured native output (the end of it) goes into log.txt.
NATIVE_OUTPUT_MAX_BYTES = 64 * 1024


def _dask_worker():
    """The Dask worker running this code, or None.

    A process that never imported ``distributed`` is not a Dask worker: the
    single-session path answers without importing it (about a second).
    """
    if "distributed" not in sys.modules:
        return None
    try:
        from distributed import get_worker

        return get_worker()
    except (ImportError, ValueError):
        return None


def _single_task_worker() -> bool:
    """True inside a Dask worker that runs one task at a time (so its file descriptors are the task's)."""
    try:
        return _dask_worker().state.nthreads == 1
    except AttributeError:  # None outside a worker
        return False


def collapse_repeated_lines(text: str) -> str:
    """Each distinct line once, in order of first appearance, with ``(xN)`` when repeated."""
    counts: dict[str, int] = {}
    for line in text.splitlines():
        if line.strip():
            counts[line] = counts.get(line, 0) + 1
    return "\n".join(f"{line} (x{count})" if count > 1 else line for line, count in counts.items())


@contextmanager
def capture_native_output(session_dir: Path, enabled: bool) -> Iterator[None]:
    """Send stdout/stderr at the file-descriptor level (ITK/ANTs C++ messages) to the session log.

    Output is collected in a temporary file while the session runs and appended
    to ``log.txt`` afterwards (``run_session`` owns the log while it runs).
    Only when ``enabled`` (a single-task worker), else a no-op.
    """
    if not enabled:
        yield
        return
    import sys
    import tempfile

    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    saved = [os.dup(1), os.dup(2)]
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 1)
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            for stream in (sys.stdout, sys.stderr):
                stream.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for descriptor in saved:
                os.close(descriptor)
            size = captured.seek(0, os.SEEK_END)
            if size:
                captured.seek(max(0, size - NATIVE_OUTPUT_MAX_BYTES))
                text = collapse_repeated_lines(captured.read().decode("utf-8", errors="replace"))
                cut = " (last 64 kB)" if size > NATIVE_OUTPUT_MAX_BYTES else ""
                _log(SessionFolder(session_dir), f"INFO output of native libraries{cut}:\n{text}")


def _log(folder: SessionFolder, text: str) -> None:
    """Append to the session log; a full disk or a refused (symlinked) log never makes the task raise."""
    try:
        folder.append_log(text)
    except OSError:
        logging.getLogger(__name__).warning("%s: log not written: %s", folder.session_id, text.splitlines()[0])


def header_voxels(path: Path) -> int:
    """Voxels of a NIfTI volume from its header (all dimensions, so 4-D counts fully).

    The header is read by :func:`regiontag.inputs.nifti_io.header_shape`, so a bad ``dim[0]``
    raises an ``InputError`` instead of giving nibabel's byte-swapped guess (once 125829120 PiB).
    """
    shape = header_shape(path)
    count = 1
    for size in shape:
        count *= max(1, int(size))
    return count


def estimate_session_memory(session: Session) -> tuple[int, str]:
    """Estimated peak memory of a session (bytes) and the largest scan's name, from headers only.

    Unreadable headers count as zero: the session then fails in validation
    with its own clear reason.
    """
    largest_voxels, largest_name, total = 0, "", MEMORY_BASELINE_BYTES
    for scan in session.scans:
        try:
            voxels = header_voxels(scan.path)
        except Exception:  # noqa: BLE001 - reported by validation in run_session
            continue
        total += voxels * MEMORY_BYTES_PER_VOXEL
        if voxels > largest_voxels:
            largest_voxels, largest_name = voxels, f"{scan.path.name} ({voxels:,} voxels)"
    return total, largest_name


def worker_memory_limit() -> int | None:
    """Memory limit of the Dask worker running this code (None outside a worker or unlimited)."""
    try:
        limit = _dask_worker().memory_manager.memory_limit
    except AttributeError:  # None outside a worker
        return None
    return int(limit) if limit else None


def execute_session(
    session: Session,
    output_dir: Path,
    config: Config,
    *,
    force: bool = False,
    cord_atlas_path: Path | None = None,
    patterns_dir: Path | None = None,
    memory_limit_bytes: int | None = None,
    runner: str | Callable[..., SessionResult] | None = None,
    verbose: bool = False,
) -> SessionResult:
    """Run one session on a worker; never raises.

    Parameters
    ----------
    session, output_dir, config, force, cord_atlas_path, patterns_dir
        As for ``regiontag.workflows.session.run_session``.
    memory_limit_bytes : int, optional
        Refuse the session when its estimated memory exceeds this (or the
        worker's own limit, whichever is smaller).
    runner : str or callable, optional
        Session runner (default ``regiontag.workflows.session.run_session``, or the
        ``REGIONTAG_SESSION_RUNNER`` variable).
    verbose : bool
        Debug-level session logs.

    Returns
    -------
    SessionResult
    """
    started = time.perf_counter()
    output_dir = Path(output_dir)
    folder = SessionFolder(output_dir / session.session_id)
    paths = {"cord_atlas_path": cord_atlas_path, "patterns_dir": patterns_dir}
    try:
        limits = [limit for limit in (memory_limit_bytes, worker_memory_limit()) if limit]
        if limits:
            needed, largest = estimate_session_memory(session)
            too_big = needed > min(limits)  # a complete session is skipped without loading: let it through
            from dask.utils import format_bytes

            if too_big and (force or not folder.is_complete(lambda: fingerprint_of(session, config, **paths))):
                reason = (
                    f"needs about {format_bytes(needed)} of memory, more than the worker limit of "
                    f"{format_bytes(min(limits))} (largest input {largest}); raise --memory-limit"
                )
                _log(folder, f"ERROR session refused before loading: {reason}")
                return SessionResult(session.session_id, "failed", reason, time.perf_counter() - started)
        lost = folder.unfinished_attempt()  # Dask runs a session again when its worker was lost
        if lost is not None:
            folder.note_lost_cause(lost_worker_cause(lost.get("pid")))
        run = resolve_runner(runner)
        with session_logging(verbose), capture_native_output(folder.path, _single_task_worker()):
            result = run(session, output_dir, config, force=force, **paths)
        if not isinstance(result, SessionResult):
            raise TypeError(f"session runner returned {type(result).__name__}, not SessionResult")
    except MemoryError as error:
        reason = f"ran out of memory ({one_line_error(error)})"
        _log(folder, f"ERROR {reason}\n{traceback.format_exc()}")
        return SessionResult(session.session_id, "failed", reason, time.perf_counter() - started)
    except Exception as error:  # noqa: BLE001 - one session never takes the batch down
        _log(folder, f"ERROR session failed: {one_line_error(error)}\n{traceback.format_exc()}")
        return SessionResult(session.session_id, "failed", one_line_error(error), time.perf_counter() - started)
    if result.status != "skipped" and not result.seconds:
        result.seconds = time.perf_counter() - started
    return result
