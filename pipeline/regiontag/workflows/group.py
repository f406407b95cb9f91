"""Batch tables and the batch report rebuilt from the session folders, without computing anything.

``regiontag score`` (after rescoring) and the BIDS-Apps ``group`` level call these; ``run_batch`` uses
:func:`write_batch_report_safely` at the end of a run.
"""

from __future__ import annotations

import logging
from pathlib import Path

from regiontag.config import Config
from regiontag.inputs.bids import is_bids_dataset
from regiontag.outputs.batch_tables import BatchTables
from regiontag.outputs.bids import WORK_DIR, write_group_tables
from regiontag.workflows.output_guard import BatchError, output_lock, unsafe_entry
from regiontag.workflows.task import one_line_error

logger = logging.getLogger(__name__)


def write_batch_report_safely(output_dir: Path) -> str:
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


def refresh_batch_tables(output_dir: str | Path, config: Config, *, report: bool = True) -> str:
    """Rebuild ``sessions.csv`` from the session folders and rewrite ``index.html`` (after ``regiontag score``).

    Call it under :func:`output_lock`.  Returns why the report was not written ("" when it was).
    """
    output_dir = Path(output_dir)
    tables = BatchTables(output_dir)
    tables.load()
    for name in [name for name in tables.records if unsafe_entry(output_dir, name)]:
        del tables.records[name]
    if tables.records:
        tables.write_sessions_csv()
    if report and config.report.enabled:
        return write_batch_report_safely(output_dir)
    return ""


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
            error = write_batch_report_safely(work_dir)
            if error:
                logger.warning("batch report not written: %s", error)
    return work_dir


__all__ = ["rebuild_group", "refresh_batch_tables", "write_batch_report_safely"]
