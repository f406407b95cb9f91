"""A session whose Dask worker dies is retried, and the retry is visible (issue 19.3).

A real local Dask cluster runs ``dying_run_session``: its first attempt starts like
``run_session`` (``SessionFolder.start_attempt``), logs a stage message and kills its
own worker process with SIGKILL; Dask starts the session again on a fresh worker
(``distributed.scheduler.allowed-failures`` 1), where it finishes.  The log, status,
``sessions.csv``, the batch summary line and the pages must all say so.
"""

from __future__ import annotations

import logging
import os
import re
import signal
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from regiontag import outputs
from regiontag.config import Config
from regiontag.outputs.session_folder import SessionFolder
from regiontag.report.batch import write_batch_report
from regiontag.report.session import write_session_report
from regiontag.types import ScanInput, Session, SessionResult
from regiontag.workflows.batch import run_batch

RUNNER = "tests.workflows.test_retry_e2e:dying_run_session"


def dying_run_session(session, output_dir, config, *, force=False, cord_atlas_path=None, patterns_dir=None):
    """First attempt: start, log, SIGKILL the worker. Later attempts: finish with provenance (as run_session)."""
    folder = SessionFolder(Path(output_dir) / session.session_id)
    with folder.start_attempt() as attempt:
        logging.getLogger("regiontag.brain.stage").info("registration of attempt %d", attempt.attempt["attempt"])
        if attempt.attempt["attempt"] == 1:
            os.kill(os.getpid(), signal.SIGKILL)
        outputs.write_json({"session": session.session_id, "status": "ok", "warnings": [],
                            "attempt": folder.read_attempt()}, folder.provenance_path)
    result = SessionResult(session.session_id, "ok", seconds=0.5, body_parts=("brain",), lesion_volume_ml=0.0)
    folder.write_status(result)
    return result


@pytest.mark.slow  # a real cluster whose worker is killed and restarted: 15-60 s on a shared 2-core machine
def test_a_session_whose_worker_dies_is_retried_visibly(tmp_path):
    scan = tmp_path / "in" / "s1_FLAIR.nii.gz"
    scan.parent.mkdir()
    nib.save(nib.Nifti1Image(np.zeros((4, 4, 4), np.float32), np.eye(4)), scan)
    sessions = [Session("s1", (ScanInput(scan, "FLAIR", body_part="brain"),))]
    output_dir = tmp_path / "out"
    # a memory limit puts even one session on a Dask worker (one session alone runs in this process)
    summary = run_batch(tmp_path / "in", output_dir, Config(), workers=1, quiet=True, report=False,
                        sessions=sessions, session_runner=RUNNER, memory_limit="4GB")
    assert summary.counts["ok"] == 1 and summary.failed == 0
    assert list(summary.retried) == ["s1"]
    assert summary.line.endswith("; 1 session was retried after losing a worker (see their log.txt)")
    folder = SessionFolder(output_dir / "s1")
    status = folder.read_status(from_provenance=False)
    assert status["attempts"] == 2 and status["retry"].startswith("attempt 2: attempt 1 (started ")
    assert "never finished" in status["retry"]
    log = folder.log_path.read_text()
    assert log.index("registration of attempt 1") < log.index("WARNING") < log.index("registration of attempt 2")
    provenance = folder.read_provenance()
    assert provenance["attempt"]["attempt"] == 2 and provenance["attempt"]["previous"]["attempt"] == 1
    sessions_csv = pd.read_csv(output_dir / outputs.SESSIONS_CSV)
    assert sessions_csv.loc[0, "attempts"] == 2
    page = write_session_report(output_dir / "s1").read_text(encoding="utf-8")
    assert '<div class="alert"><b>Retried</b>: attempt 2: attempt 1 (started' in page
    index = write_batch_report(output_dir).read_text(encoding="utf-8")
    assert re.search(r'<span class="badge warning" title="attempt 2: [^"]*">retried \(2 attempts\)</span>', index)
