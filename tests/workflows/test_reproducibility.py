"""Reproducibility (issue 8, item 4): the same inputs and parameters give byte-identical CSVs.

Two batches over the same inputs, one with 1 worker and one with 2, must give
byte-identical ``regions.csv`` and ``scores.csv`` (batch and per session) and
the same ``sessions.csv`` except its ``seconds`` column, which is wall time and
never reproducible.  What makes this hold:

* ANTs' random metric sampling is seeded (``registration.random_seed`` ->
  ``antsRegistration --random-seed``);
* ITK runs with ``registration.threads`` threads (default 1), forced before the
  first N4 / registration call of a process (``registration.set_itk_threads``):
  N4 results depend on the thread count and ANTs registration with more than
  one thread is not even repeatable, while the Dask workers' environment
  depends on how many workers there are;
* CSV floats are written with a fixed format (``outputs.write_csv``) and no
  timestamps go into CSVs.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from regiontag.workflows.batch import run_batch
from regiontag.config import Config

SESSIONS = ("brain", "cord")


def _write_inputs(input_dir: Path) -> None:
    from regiontag.outputs.contract import write_nifti
    from regiontag.phantoms.brain import make_brain_phantom
    from regiontag.phantoms.cord import make_cord_phantom

    brain = make_brain_phantom("b12-leukoencephalopathy", 4, sequences=("FLAIR", "T2w"), voxel_size=(1.2, 1.2, 3.0))
    for sequence, image in brain.images.items():
        write_nifti(image, input_dir / "brain" / f"brain_{sequence}.nii.gz")
    cord = make_cord_phantom("central", 2)
    write_nifti(cord.images["T2w"], input_dir / "cord" / "cord_acq-cspine_T2w.nii.gz")


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("repro")
    _write_inputs(root / "inputs")
    outputs = []
    for workers in (1, 2):
        output_dir = root / f"out_{workers}_workers"
        summary = run_batch(root / "inputs", output_dir, Config(), workers=workers, quiet=True, report=False)
        assert summary.counts["failed"] == 0, summary.results
        outputs.append(output_dir)
    return outputs[0], outputs[1]


def _without_column(path: Path, column: str) -> list[list[str]]:
    rows = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"))))
    index = rows[0].index(column)
    return [row[:index] + row[index + 1:] for row in rows]


@pytest.mark.slow
@pytest.mark.parametrize("name", ["regions.csv", "scores.csv"])
def test_batch_tables_byte_identical_with_1_and_2_workers(two_runs, name: str) -> None:
    first, second = two_runs
    content = (first / name).read_bytes()
    assert content == (second / name).read_bytes()
    assert all(session.encode() in content for session in SESSIONS)  # not trivially empty


@pytest.mark.slow
def test_session_tables_and_findings_identical(two_runs) -> None:
    first, second = two_runs
    for session in SESSIONS:
        for name in ("regions.csv", "scores.csv", "findings.json"):
            assert (first / session / name).read_bytes() == (second / session / name).read_bytes(), (session, name)
    assert (first / "cord" / "centerline.csv").read_bytes() == (second / "cord" / "centerline.csv").read_bytes()


@pytest.mark.slow
def test_sessions_csv_identical_except_wall_time(two_runs) -> None:
    first, second = two_runs
    assert _without_column(first / "sessions.csv", "seconds") == _without_column(second / "sessions.csv", "seconds")
    assert [row[0] for row in _without_column(first / "sessions.csv", "seconds")[1:]] == list(SESSIONS)


@pytest.mark.slow
def test_provenance_records_what_reproduction_needs(two_runs) -> None:
    first, second = two_runs
    provenance = json.loads((first / "brain" / "provenance.json").read_text())
    registration = provenance["parameters"]["registration"]
    assert registration["random_seed"] == Config().registration.random_seed
    assert registration["threads"] == Config().registration.threads
    assert provenance["fingerprint"] == json.loads((second / "brain" / "provenance.json").read_text())["fingerprint"]
    assert {"antspyx", "nibabel", "numpy"} <= set(provenance["software"])
