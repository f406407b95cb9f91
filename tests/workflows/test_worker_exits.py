"""Worker deaths: the nanny's log read for the signal, and the one-line reason built from it."""

from __future__ import annotations

import logging

from regiontag.workflows.worker_exits import NANNY_LOGGER, WorkerExits, signal_name, worker_death_reason


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_nanny_records_are_read_by_pid_and_stay_silent():
    caplog = _Collect()
    logging.getLogger().addHandler(caplog)
    nanny = logging.getLogger(NANNY_LOGGER)
    nanny.setLevel(logging.CRITICAL)  # as open_client leaves it without --verbose
    try:
        with WorkerExits() as exits:
            nanny.info("Worker process %d was killed by signal %d", 4242, 11)
            nanny.info("Worker process %d exited with status %d", 4343, 3)
            assert exits.end_of(4242, wait_seconds=0) == "killed by signal SIGSEGV"
            assert exits.end_of(4343, wait_seconds=0) == "exited with status 3"
            assert exits.end_of(1, wait_seconds=0) == "" and exits.end_of(None) == ""
        assert not [record for record in caplog.records if record.name == NANNY_LOGGER]  # nothing new printed
        assert nanny.level == logging.CRITICAL and not nanny.filters
    finally:
        nanny.setLevel(logging.NOTSET)
        logging.getLogger().removeHandler(caplog)


def test_reasons():
    assert signal_name(9) == "SIGKILL" and signal_name(200) == "signal 200"
    assert worker_death_reason("killed by signal SIGKILL", False, "2 GiB").startswith(
        "worker process killed by signal SIGKILL while running this session")
    assert "out of memory" in worker_death_reason("killed by signal SIGKILL", True, "2 GiB")
    assert "did not report why" in worker_death_reason("", False, "unlimited")
