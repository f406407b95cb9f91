"""Where a batch may write: the output folder checked against the input, its batch files and its symlinks.

``run_batch`` calls these before it writes anything:

* :func:`check_output_location` refuses an OUTPUT_DIR that is the input folder or contains it
  (``regiontag run IN IN`` overwrote IN's own ``sessions.csv`` and ``index.html``); an OUTPUT_DIR
  *inside* the input folder is fine, its contents are never taken for inputs.
* :func:`check_batch_files` refuses an OUTPUT_DIR where a batch file's name is taken by a folder.
* :func:`refusal_reason` says why one session may not be written (a reserved name, a symlinked
  session folder or log); that session fails alone, the others run.
* :class:`WriteProblems` collects failed writes of the batch itself (a full disk): the batch goes
  on, tries every session and the report, and ends with one line saying what was not written.
"""

from __future__ import annotations

import errno
import logging
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from regiontag.outputs import contract
from regiontag.outputs.session_folder import SessionFolder, reserved_name_reason

logger = logging.getLogger(__name__)

#: The lock file of a run (``flock``), at the top of OUTPUT_DIR.
LOCK_FILE = ".regiontag.lock"
#: Files the batch writes at the top of OUTPUT_DIR.
BATCH_FILES = (contract.SESSIONS_CSV, contract.REGIONS_CSV, contract.SCORES_CSV, contract.INDEX_HTML)


class BatchError(RuntimeError):
    """The batch cannot start (output folder in use or misplaced, duplicate session ids, bad options)."""


@contextmanager
def output_lock(output_dir: Path) -> Iterator[None]:
    """Hold an exclusive lock on OUTPUT_DIR so two runs never write the same tables.

    The lock is an ``flock`` on ``OUTPUT_DIR/.regiontag.lock``; the kernel drops
    it when the process dies, so a killed run never leaves a stale lock.  The file
    is removed when the run ends (a killed run leaves it unlocked, and harmless).
    A run that locked a file another run removed meanwhile locks the new file again,
    so two runs never hold locks on different files.  The file is opened with
    ``O_NOFOLLOW``: a symlinked lock file never creates or touches its target.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield
        return
    path = output_dir / LOCK_FILE
    flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    while True:
        try:
            handle = os.fdopen(os.open(path, flags, 0o666), "a+")
        except OSError as error:
            raise BatchError(f"{path}: cannot open the lock file ({error.strerror or error})") from None
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            raise BatchError(f"{output_dir}: another regiontag run is writing to this folder") from None
        try:
            current = os.stat(path, follow_symlinks=False)
        except FileNotFoundError:
            current = None
        if current is not None and os.path.samestat(current, os.fstat(handle.fileno())):
            break  # locked the file that is at the path now
        handle.close()  # the run before us removed it after we opened it: lock the new one
    try:
        yield
    finally:
        path.unlink(missing_ok=True)  # while still holding the lock, so no run holds the removed file
        handle.close()


def _real(path: Path) -> Path:
    return Path(os.path.realpath(path))


def check_output_location(input_dir: str | Path, output_dir: str | Path) -> None:
    """Refuse an output folder that is the input folder or one of its parents (symlinks resolved).

    Raises
    ------
    BatchError
        ``OUTPUT_DIR ... is the input folder`` / ``... contains the input folder``.

    Examples
    --------
    >>> check_output_location("/data/scans", "/data/results")
    >>> check_output_location("/data/scans", "/data/scans/results")  # inside IN: its files are not inputs
    >>> check_output_location("/data/scans", "/data")
    Traceback (most recent call last):
    ...
    regiontag.workflows.output_guard.BatchError: output folder /data contains the input folder /data/scans: \
the batch would write among the inputs; choose an output folder outside it
    """
    real_input, real_output = _real(Path(input_dir)), _real(Path(output_dir))
    if real_output == real_input:
        raise BatchError(
            f"output folder {output_dir} is the input folder {input_dir}: the batch tables and report "
            "would overwrite the input's own files; choose another output folder"
        )
    if real_output in real_input.parents:
        raise BatchError(
            f"output folder {output_dir} contains the input folder {input_dir}: the batch would write among "
            "the inputs; choose an output folder outside it"
        )


def check_batch_files(output_dir: Path) -> None:
    """Refuse an OUTPUT_DIR where a folder (or a symlink to one) holds the name of a batch file."""
    for name in BATCH_FILES:
        path = output_dir / name
        if path.is_dir():
            raise BatchError(
                f"{path} is a folder where the batch writes a file; move it out of the output folder"
            )


def refusal_reason(output_dir: Path, session_id: str) -> str:
    """Why session ``session_id`` may not be written in ``output_dir`` ("" when it may)."""
    return reserved_name_reason(session_id) or SessionFolder(output_dir / session_id).unsafe_reason(output_dir)


def unsafe_entry(output_dir: Path, name: str) -> bool:
    """True for an entry of OUTPUT_DIR the batch tables must not read as a session (reserved, symlinked)."""
    return bool(reserved_name_reason(name)) or (output_dir / name).is_symlink()


def remove_stale_temporaries(output_dir: Path) -> int:
    """Delete temporary files a killed run left behind (``.name.XXXX.tmp.ext``, see ``outputs.atomic_path``).

    Called under the output lock, so no other run is writing them.  Symlinked folders are not
    entered: a link inside OUTPUT_DIR never leads to deleting anything outside it.  Returns how many
    were removed.
    """
    removed = 0
    for folder, folders, files in os.walk(output_dir, followlinks=False):
        folders[:] = [name for name in folders if not os.path.islink(os.path.join(folder, name))]
        for name in files:
            path = Path(folder) / name
            if name.startswith(".") and ".tmp" in name and path.is_file() and not path.is_symlink():
                path.unlink(missing_ok=True)
                removed += 1
    return removed


def describe_os_error(error: OSError) -> str:
    """A failed write on one line: ``disk full: No space left on device`` for ENOSPC and EDQUOT."""
    reason = error.strerror or str(error)
    if error.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", -1)):
        return f"disk full: {reason}"
    return reason


class WriteProblems:
    """Failed writes of the batch's own files, reported in one line at the end."""

    def __init__(self) -> None:
        self.failures: list[tuple[str, OSError]] = []

    def __bool__(self) -> bool:
        return bool(self.failures)

    def note(self, what: str, error: OSError) -> None:
        """Remember that ``what`` could not be written (logged once per kind of error)."""
        if not self.failures or self.failures[-1][1].errno != error.errno:
            logger.warning("%s not written: %s", what, error)
        self.failures.append((what, error))

    def line(self) -> str:
        """``outputs not written (disk full: No space left on device, first: sessions.csv; 3 writes failed)``."""
        if not self.failures:
            return ""
        what, error = self.failures[0]
        count = len(self.failures)
        return (f"outputs not written ({describe_os_error(error)}, first: {what}; "
                f"{count} write{'s' if count > 1 else ''} failed)")


__all__ = [
    "BATCH_FILES",
    "LOCK_FILE",
    "output_lock",
    "BatchError",
    "WriteProblems",
    "check_batch_files",
    "check_output_location",
    "describe_os_error",
    "refusal_reason",
    "remove_stale_temporaries",
    "unsafe_entry",
]
