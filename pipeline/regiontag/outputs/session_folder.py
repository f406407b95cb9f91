"""One session's output folder: the single owner of its status, log and completeness.

Every piece of code that asks "did this session finish, how, and is it
current?" -- the session runner, the Dask task wrapper, the batch tables and
the reports -- asks a :class:`SessionFolder`.  File *names* stay with
:mod:`regiontag.outputs.contract`; this class owns what the files mean:

* ``status.json``: written for every finished attempt (ok, warning or failed),
  keys of :func:`status_record`;
* ``provenance.json``: written last by a successful attempt, it marks the
  session complete (and carries the resume fingerprint);
* ``log.txt``: the ``regiontag`` logger's records during an attempt, plus
  blocks appended by the batch (refusals, worker deaths, native output);
* ``attempt.json``: the attempt counter (a retry after a lost worker is counted
  and said in the log, ``status.json`` and provenance).
"""

from __future__ import annotations

import json
import logging
import math
import os
import socket
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from regiontag.inputs.files import confine_to
from regiontag.outputs import contract
from regiontag.outputs.provenance import utc_now
from regiontag.types import SessionResult

if TYPE_CHECKING:
    import pandas as pd

#: The package logger; every module logs under ``regiontag.*``, so its records reach this logger.
PACKAGE_LOGGER = "regiontag"
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

#: Files whose presence (with a current ``provenance.json``) makes a session complete.
REQUIRED_FILES = (contract.REGIONS_CSV, contract.FINDINGS_JSON, contract.SCORES_CSV, contract.PROVENANCE_JSON)
#: Statuses an attempt can leave in ``status.json``.
FINISHED_ATTEMPT_STATUSES = ("ok", "warning", "failed")
#: Names in OUTPUT_DIR that belong to the batch, never to a session folder (compared case-insensitively,
#: for case-insensitive file systems): the batch tables and report, the lock, the BIDS description.
RESERVED_NAMES = frozenset(
    name.lower() for name in (
        contract.REGIONS_CSV, contract.SCORES_CSV, contract.SESSIONS_CSV, contract.INDEX_HTML,
        ".regiontag.lock", "dataset_description.json",
    )
)


def reserved_name_reason(session_id: str) -> str:
    """Why ``session_id`` cannot be a session folder of OUTPUT_DIR ("" when it can).

    Examples
    --------
    >>> reserved_name_reason("sub-01")
    ''
    >>> reserved_name_reason("Regions.CSV")
    "session id 'Regions.CSV' is reserved for a batch file of the output folder; rename the input folder or file"
    """
    if session_id.lower() in RESERVED_NAMES:
        return (f"session id {session_id!r} is reserved for a batch file of the output folder; "
                "rename the input folder or file")
    if not session_id or session_id.startswith(".") or Path(session_id).name != session_id:
        return f"session id {session_id!r} is not a plain folder name; rename the input folder or file"
    return ""


def _symlink_target(path: Path) -> str:
    try:
        return os.readlink(path)
    except OSError:
        return "?"


def _float_or_nan(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def status_record(result: SessionResult) -> dict[str, Any]:
    """The ``status.json`` content for a result.

    Examples
    --------
    >>> record = status_record(SessionResult("s1", "failed", "InputError: bad header", 1.23456))
    >>> record["status"], record["seconds"], record["body_parts"]
    ('failed', 1.235, [])
    """
    return {
        "status": result.status,
        "error": result.error,
        "seconds": round(float(result.seconds), 3),
        "body_parts": list(result.body_parts),
        "lesion_volume_ml": _float_or_nan(result.lesion_volume_ml),
        "top_pattern": result.top_pattern,
        "finished": utc_now(),
    }


def _read_json_object(path: Path) -> dict[str, Any] | None:
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return content if isinstance(content, dict) else None


def retry_note(record: Mapping[str, Any]) -> str:
    """One line saying why an attempt is a retry ("" for a first attempt), from its ``attempt.json`` record.

    Examples
    --------
    >>> retry_note({"attempt": 2, "previous": {"attempt": 1, "started": "2026-01-01T10:00:00Z",
    ...                                        "pid": 41, "host": "node1"}})
    'attempt 2: attempt 1 (started 2026-01-01T10:00:00Z, process 41 on node1) never finished -- its worker process was lost (killed, crashed or out of memory) -- so the session was started again from scratch'
    """
    previous = record.get("previous")
    if not isinstance(previous, Mapping):
        return ""
    cause = record.get("lost_cause") or "its worker process was lost (killed, crashed or out of memory)"
    return (
        f"attempt {record.get('attempt')}: attempt {previous.get('attempt')} (started {previous.get('started')}, "
        f"process {previous.get('pid')} on {previous.get('host')}) never finished -- {cause} -- "
        "so the session was started again from scratch"
    )


class LogAttachment:
    """The ``log.txt`` handler of one attempt, attached to the ``regiontag`` logger until closed.

    Use it as a context manager, or call :meth:`close`.  ``attempt`` is the attempt's
    ``attempt.json`` record (``attempt`` number, ``started``, ``pid``, ``host`` and, for a
    retry, ``previous``); ``note`` says why it is a retry ("" for a first attempt).
    """

    def __init__(
        self, handler: logging.Handler, logger: logging.Logger, attempt: Mapping[str, Any] | None = None
    ) -> None:
        self.handler = handler
        self.logger = logger
        self.attempt = dict(attempt or {})
        self.note = retry_note(self.attempt)

    def close(self) -> None:
        """Detach the handler from the logger and close the file (idempotent)."""
        self.logger.removeHandler(self.handler)
        self.handler.close()

    def __enter__(self) -> LogAttachment:  # noqa: PYI034 - Self needs Python 3.11
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()


class SessionFolder:
    """``OUTPUT_DIR/<session>``: reads and writes the session's status, log and completeness.

    Parameters
    ----------
    path : str or Path
        The session's output folder (it need not exist yet).

    Examples
    --------
    >>> import tempfile
    >>> folder = SessionFolder(Path(tempfile.mkdtemp()) / "sub-01")
    >>> folder.status, folder.read_status()
    ('incomplete', None)
    >>> _ = folder.write_status(SessionResult("sub-01", "failed", "InputError: not a NIfTI file"))
    >>> folder.status, folder.error
    ('failed', 'InputError: not a NIfTI file')
    >>> folder.is_complete("any fingerprint")
    False
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"SessionFolder({str(self.path)!r})"

    # --- paths ------------------------------------------------------------------------------
    @property
    def session_id(self) -> str:
        """The folder name, which is the session id."""
        return self.path.name

    def file(self, name: str) -> Path:
        """Path of a file of the output contract in this folder (it may not exist)."""
        return self.path / name

    @property
    def status_path(self) -> Path:
        """``status.json``."""
        return self.path / contract.STATUS_JSON

    @property
    def log_path(self) -> Path:
        """``log.txt``."""
        return self.path / contract.LOG_FILE

    @property
    def provenance_path(self) -> Path:
        """``provenance.json``."""
        return self.path / contract.PROVENANCE_JSON

    def unsafe_reason(self, output_dir: str | Path) -> str:
        """Why writing this folder could write outside ``output_dir`` ("" when it cannot).

        Refused: a folder that is a symlink or resolves outside ``output_dir``, a ``log.txt``
        that is a symlink (opening it would truncate or append to its target) and symlinked
        sub-folders (``transforms/``...).  Symlinked *files* of the contract are harmless: the
        atomic writers rename over the link, never through it.
        """
        if self.path.is_symlink():
            return (f"output folder {self.path} is a symlink (to {_symlink_target(self.path)}); "
                    "refusing to write outside the output folder")
        try:
            confine_to(output_dir, self.path.relative_to(output_dir))
        except ValueError as error:
            return f"output folder {self.path}: {error}; refusing to write outside the output folder"
        if not self.path.is_dir():
            return ""
        if self.log_path.is_symlink():
            return f"{self.log_path} is a symlink (to {_symlink_target(self.log_path)}); refusing to write through it"
        try:
            entries = list(os.scandir(self.path))
        except OSError as error:
            return f"output folder {self.path} cannot be listed ({error.strerror or error})"
        for entry in entries:
            if entry.is_symlink() and entry.is_dir(follow_symlinks=True):
                return (f"{entry.path} is a symlinked folder (to {_symlink_target(Path(entry.path))}); "
                        "refusing to write through it")
        return ""

    # --- status -----------------------------------------------------------------------------
    def read_provenance(self) -> dict[str, Any] | None:
        """``provenance.json`` content, or None when absent or unreadable."""
        return _read_json_object(self.provenance_path)

    def read_status(self, *, from_provenance: bool = True) -> dict[str, Any] | None:
        """The record of the last finished attempt.

        Parameters
        ----------
        from_provenance : bool
            When ``status.json`` is absent or unreadable, rebuild the record from
            ``provenance.json`` (a run killed after writing it, before status.json).

        Returns
        -------
        dict or None
            ``status.json`` keys (see :func:`status_record`); None when neither file gives one.
        """
        content = _read_json_object(self.status_path)
        if content is not None and content.get("status"):
            return content
        return self._status_from_provenance() if from_provenance else None

    def _status_from_provenance(self) -> dict[str, Any] | None:
        provenance = self.read_provenance()
        if provenance is None:
            return None
        timings = provenance.get("timings") or {}
        warnings = provenance.get("warnings") or []
        status = provenance.get("status") or ("warning" if warnings else "ok")
        return {
            "status": status,
            "error": "; ".join(warnings[:3]) if status == "warning" else "",
            "seconds": round(sum(float(v) for v in timings.values() if isinstance(v, (int, float))), 3),
            "body_parts": sorted((provenance.get("reference") or {}).keys()),
            "lesion_volume_ml": math.nan,
            "top_pattern": "",
            "finished": provenance.get("finished", ""),
        }

    def write_status(self, result_or_record: SessionResult | Mapping[str, Any]) -> dict[str, Any]:
        """Write ``status.json`` (atomically) from a result or a ready record; returns the record.

        The attempt count (``attempts``) and, after a retry, its reason (``retry``) come
        from ``attempt.json`` when the record does not carry them.
        """
        if isinstance(result_or_record, SessionResult):
            record = status_record(result_or_record)
        else:
            record = dict(result_or_record)
        attempt = self.read_attempt()
        if attempt is not None and "attempts" not in record:
            record["attempts"] = int(attempt.get("attempt") or 1)
            note = retry_note(attempt)
            if note:
                record["retry"] = note
        contract.write_json(record, self.status_path)
        return record

    # --- attempt counter --------------------------------------------------------------------
    @property
    def attempt_path(self) -> Path:
        """``attempt.json``."""
        return self.path / contract.ATTEMPT_JSON

    def read_attempt(self) -> dict[str, Any] | None:
        """The ``attempt.json`` record of the last attempt started, or None."""
        return _read_json_object(self.attempt_path)

    def unfinished_attempt(self) -> dict[str, Any] | None:
        """The last attempt's record when it started and never finished (no ``status.json``), else None.

        That is a session whose worker was lost mid-way (Dask then runs it again) or
        whose batch was killed.
        """
        record = self.read_attempt()
        return record if record is not None and not self.status_path.exists() else None

    def note_lost_cause(self, cause: str) -> None:
        """Record why the unfinished attempt was lost (e.g. the nanny's memory restart), for the retry's note."""
        record = self.unfinished_attempt()
        if record is not None and cause:
            contract.write_json({**record, "lost_cause": cause}, self.attempt_path)

    @property
    def status(self) -> str:
        """``ok``, ``warning`` or ``failed`` from the last finished attempt, else ``incomplete``."""
        record = self.read_status()
        status = record.get("status") if record else None
        return status if status in FINISHED_ATTEMPT_STATUSES else "incomplete"

    @property
    def error(self) -> str:
        """The one-line reason of a failed attempt ("" unless :attr:`status` is ``failed``)."""
        record = self.read_status()
        if not record or record.get("status") != "failed":
            return ""
        error = record.get("error")
        return error if isinstance(error, str) else ""

    # --- attempts and log -------------------------------------------------------------------
    def start_attempt(self) -> LogAttachment:
        """Begin an attempt: count it, feed ``log.txt`` from the ``regiontag`` logger, remove stale markers.

        ``attempt.json`` records the attempt (number, start time, process and host).
        When the previous attempt started and never finished -- its worker was lost and
        Dask runs the session again, or the batch was killed -- this attempt is number
        ``n + 1``: the lost attempt's log is kept (the new one is appended after a
        warning saying why), and ``status.json`` then carries ``attempts`` and ``retry``.
        Otherwise ``log.txt`` starts afresh.

        ``status.json`` and ``provenance.json`` of an earlier attempt are deleted,
        so a killed attempt never looks finished or complete.

        Returns
        -------
        LogAttachment
            Close it (or leave its ``with`` block) to detach the log.
        """
        self.path.mkdir(parents=True, exist_ok=True)
        if self.log_path.is_symlink():
            raise OSError(f"{self.log_path} is a symlink (to {_symlink_target(self.log_path)}); "
                          "refusing to write through it")
        lost = self.unfinished_attempt()  # a retry: keep the lost attempt's log and count it
        attempt = {
            "attempt": int(lost.get("attempt") or 1) + 1 if lost else 1,
            "started": utc_now(),
            "pid": os.getpid(),
            "host": socket.gethostname(),
        }
        if lost:
            attempt["previous"] = {key: lost.get(key) for key in ("attempt", "started", "pid", "host")}
            if lost.get("lost_cause"):
                attempt["lost_cause"] = lost["lost_cause"]
        contract.write_json(attempt, self.attempt_path)
        handler = logging.FileHandler(self.log_path, mode="a" if lost else "w", encoding="utf-8")
        handler.setFormatter(logging.Formatter(LOG_FORMAT))
        logger = logging.getLogger(PACKAGE_LOGGER)
        logger.addHandler(handler)
        if logger.level == logging.NOTSET or logger.level > logging.INFO:
            logger.setLevel(logging.INFO)  # at least INFO; a DEBUG level set for --verbose stays
        for stale in (self.status_path, self.provenance_path):
            stale.unlink(missing_ok=True)
        attachment = LogAttachment(handler, logger, attempt)
        if attachment.note:
            logger.warning("session %s: %s", self.session_id, attachment.note)
        return attachment

    def append_log(self, text: str) -> None:
        """Append a timestamped block to ``log.txt`` (creates the folder)."""
        self.path.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
        try:
            descriptor = os.open(self.log_path, flags, 0o666)
        except OSError as error:
            if self.log_path.is_symlink():  # O_NOFOLLOW: ELOOP
                raise OSError(f"{self.log_path} is a symlink (to {_symlink_target(self.log_path)}); "
                              "refusing to write through it") from None
            raise error
        with os.fdopen(descriptor, "a", encoding="utf-8") as handle:
            handle.write(f"{stamp} {text.rstrip()}\n")

    # --- completeness -----------------------------------------------------------------------
    def has_outputs(self) -> bool:
        """True when every file of :data:`REQUIRED_FILES` is present."""
        return all(self.file(name).is_file() for name in REQUIRED_FILES)

    def is_complete(self, fingerprint: str | Callable[[], str]) -> bool:
        """True when the outputs are present and ``provenance.json`` carries this fingerprint.

        Parameters
        ----------
        fingerprint : str or callable
            The current fingerprint, or a function computing it; the function is
            called only when the files are present (hashing the inputs is the
            costly part), and an ``OSError`` / ``ValueError`` from it means "not complete".
        """
        if not self.has_outputs():
            return False
        provenance = self.read_provenance()
        if provenance is None:
            return False
        try:
            expected = fingerprint() if callable(fingerprint) else fingerprint
        except (OSError, ValueError):
            return False
        return provenance.get("fingerprint") == expected

    def read_table(self, name: str, columns: list[str] | None = None) -> pd.DataFrame | None:
        """A CSV of the folder (``regions.csv``, ``scores.csv``...), reindexed to ``columns``; None if unreadable."""
        import pandas as pd

        try:
            table = pd.read_csv(self.file(name), keep_default_na=True)
        except (OSError, ValueError, pd.errors.EmptyDataError):
            return None
        return table.reindex(columns=columns) if columns is not None else table


__all__ = [
    "RESERVED_NAMES",
    "REQUIRED_FILES",
    "LogAttachment",
    "SessionFolder",
    "reserved_name_reason",
    "retry_note",
    "status_record",
]
