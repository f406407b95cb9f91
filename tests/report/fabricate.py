"""Fabricated session and batch output folders for the report tests.

Writes session folders that follow the output contract
(``regiontag.outputs.contract``): synthetic brain and cord NIfTIs in a non-canonical
scanner orientation, region/score tables computed from those images,
findings and provenance, plus a failed session with only a log.  Used by the
report tests (``tests/report``), the browser tests (``tests/report/test_browser.py``)
and the validation-report tests (``tests/accuracy/test_report.py``).
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import re
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
from PIL import Image
from scipy import ndimage

from regiontag import outputs

BRAIN_FOV_MM = (150.0, 180.0, 135.0)
CORD_FOV_MM = (28.0, 56.0, 130.0)

BRAIN_REGIONS = [  # path, {side: labels}, paired
    ("Cerebrum", {"left": (1, 3), "right": (2, 4)}, True),
    ("Cerebrum > Cerebral white matter", {"left": (1,), "right": (2,)}, True),
    ("Cerebrum > Cerebral cortex", {"left": (3,), "right": (4,)}, True),
    ("Corpus callosum", {"midline": (5,)}, False),
    ("Basal ganglia", {"left": (6,), "right": (7,)}, True),
    ("Basal ganglia > Caudate nucleus", {"left": (6,), "right": (7,)}, True),
    ("Cerebellum", {"left": (8,), "right": (9,)}, True),
    ("Cerebellum > Cerebellar white matter", {"left": (8,), "right": (9,)}, True),
]
CORD_REGIONS = [
    ("Spinal cord", {"left": (1, 3), "right": (2, 4), "midline": (5, 6, 7)}, True),
    ("Spinal cord > Spinal white matter", {"left": (1, 3), "right": (2, 4), "midline": (5,)}, True),
    ("Spinal cord > Spinal white matter > Posterior column", {"left": (1,), "right": (2,)}, True),
    ("Spinal cord > Spinal white matter > Lateral column", {"left": (3,), "right": (4,)}, True),
    ("Spinal cord > Spinal white matter > Anterior column", {"midline": (5,)}, False),
    ("Spinal cord > Spinal grey matter", {"midline": (6,)}, False),
    ("Spinal cord > Central canal", {"midline": (7,)}, False),
]
CORD_LABEL_NAMES = {
    1: "Posterior column left",
    2: "Posterior column right",
    3: "Lateral column left",
    4: "Lateral column right",
    5: "Anterior column",
    6: "Grey matter",
    7: "Central canal",
}


def _grid(fov_mm, zooms, axcodes_perm, flips):
    """Storage grid: canonical world extent ``fov_mm`` stored with permuted/flipped axes."""
    shape_ras = [int(round(f / z)) for f, z in zip(fov_mm, zooms)]
    affine_ras = np.diag([*zooms, 1.0])
    affine_ras[:3, 3] = [-f / 2 for f in fov_mm]
    ras = nib.Nifti1Image(np.zeros(shape_ras, np.uint8), affine_ras)
    ornt = np.array([[axis, -1 if flip else 1] for axis, flip in zip(axcodes_perm, flips)])
    stored = ras.as_reoriented(nib.orientations.ornt_transform(np.array([[0, 1], [1, 1], [2, 1]]), ornt))
    return stored.shape, stored.affine


def _world(shape, affine):
    index = np.indices(shape, dtype=np.float32).reshape(3, -1)
    return (affine[:3, :3] @ index + affine[:3, 3:4]).reshape((3, *shape))


def _save(data, affine, path, dtype=np.float32):
    image = nib.Nifti1Image(np.asarray(data, dtype=dtype), affine)
    image.header.set_xyzt_units("mm")
    outputs.write_nifti(image, path)
    return path


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _region_rows(atlas, regions, labels, lesion, zmap, voxel_ml, cord_extras=None):
    rows = []
    for path, sides, paired in regions:
        wanted = {"both": tuple(v for values in sides.values() for v in values)}
        if paired:
            wanted.update({"left": sides.get("left", ()), "right": sides.get("right", ())})
        volumes = {}
        for side, values in wanted.items():
            region = np.isin(labels, values)
            hit = region & lesion
            _, n_clusters = ndimage.label(hit)
            volumes[side] = hit.sum() * voxel_ml
            fraction = hit.sum() / max(region.sum(), 1)
            rows.append(
                {
                    "atlas": atlas,
                    "region": path,
                    "name": path.split(" > ")[-1],
                    "parent": " > ".join(path.split(" > ")[:-1]),
                    "depth": path.count(" > "),
                    "side": side,
                    "region_volume_ml": region.sum() * voxel_ml,
                    "lesion_voxels": int(hit.sum()),
                    "lesion_volume_ml": hit.sum() * voxel_ml,
                    "fraction_involved": fraction,
                    "n_clusters": n_clusters,
                    "mean_z": float(zmap[hit].mean()) if hit.any() else np.nan,
                    "max_z": float(zmap[hit].max()) if hit.any() else np.nan,
                    "involved": bool(fraction >= 0.02 and hit.sum() * voxel_ml >= 0.005),
                }
            )
        total = volumes.get("left", 0) + volumes.get("right", 0)
        for row in rows[-len(wanted) :]:
            row["laterality_index"] = (volumes["right"] - volumes["left"]) / total if paired and total else np.nan
            row.update(cord_extras or {})
    return rows


def _brain(session_dir, input_dir, zooms, rng):
    shape, affine = _grid(BRAIN_FOV_MM, zooms, (0, 1, 2), (True, True, False))  # LPS storage, like the scanner
    x, y, z = _world(shape, affine)
    brain = (x / 66) ** 2 + (y / 82) ** 2 + (z / 60) ** 2 <= 1
    white = (x / 56) ** 2 + (y / 72) ** 2 + (z / 50) ** 2 <= 1
    ventricles = ((np.abs(x) - 9) / 6) ** 2 + (y / 26) ** 2 + ((z - 8) / 11) ** 2 <= 1
    callosum = (np.abs(x) < 16) & ((y / 38) ** 2 + ((z - 24) / 5) ** 2 <= 1)
    caudate = ((np.abs(x) - 14) / 5) ** 2 + ((y - 10) / 10) ** 2 + ((z - 6) / 8) ** 2 <= 1
    cerebellum = (x / 44) ** 2 + ((y + 58) / 20) ** 2 + ((z + 36) / 14) ** 2 <= 1
    right = x > 0
    labels = np.zeros(shape, np.int16)
    labels[brain] = np.where(right, 4, 3)[brain]
    labels[white] = np.where(right, 2, 1)[white]
    labels[cerebellum & brain] = np.where(right, 9, 8)[cerebellum & brain]
    labels[caudate] = np.where(right, 7, 6)[caudate]
    labels[callosum] = 5
    labels[ventricles] = 0
    lesion = np.zeros(shape, bool)
    for centre, radius in [
        ((-17, 12, 16), 6),
        ((18, 10, 14), 6),
        ((-22, -22, 20), 5),
        ((20, -24, 22), 5),
        ((0, 8, 24), 4.5),
        ((-10, -58, -34), 4),
    ]:
        lesion |= sum(((c - v) / radius) ** 2 for c, v in zip((x, y, z), centre)) <= 1
    lesion &= white | callosum | cerebellum
    voxel_ml = float(np.prod(zooms)) / 1000
    zmap = ndimage.gaussian_filter(lesion * 5.5, 1.0) + rng.normal(0, 0.6, shape) * brain
    outputs_images = {
        outputs.LESIONS_NII: (lesion, np.uint8),
        outputs.ZMAP_NII: (zmap, np.float32),
        outputs.ATLAS_LABELS_NII: (labels, np.int16),
        outputs.BRAIN_MASK_NII: (brain, np.uint8),
    }
    for name, (data, dtype) in outputs_images.items():
        _save(data, affine, session_dir / name, dtype)
    scans = []
    for sequence, values, seq_zooms in [
        ("FLAIR", (0.08, 0.62, 0.5, 0.12, 1.0), zooms),
        ("T2w", (0.15, 0.55, 0.4, 1.0, 0.85), (zooms[0] * 0.8, zooms[1] * 0.8, zooms[2] * 1.2)),
    ]:
        scan_shape, scan_affine = _grid(BRAIN_FOV_MM, seq_zooms, (0, 1, 2), (True, True, False))
        sx, sy, sz = _world(scan_shape, scan_affine)
        head = (sx / 74) ** 2 + (sy / 92) ** 2 + (sz / 68) ** 2 <= 1
        s_brain = (sx / 66) ** 2 + (sy / 82) ** 2 + (sz / 60) ** 2 <= 1
        s_white = (sx / 56) ** 2 + (sy / 72) ** 2 + (sz / 50) ** 2 <= 1
        s_csf = ((np.abs(sx) - 9) / 6) ** 2 + (sy / 26) ** 2 + ((sz - 8) / 11) ** 2 <= 1
        image = np.where(head, values[0], 0.0) + s_brain * (values[1] - values[0])
        image = image + s_white * (values[2] - values[1]) + s_csf * (values[3] - values[2])
        s_lesion = ndimage.map_coordinates(
            lesion.astype(np.float32),
            np.linalg.solve(affine, np.vstack([sx.ravel(), sy.ravel(), sz.ravel(), np.ones(sx.size)]))[:3],
            order=1,
        ).reshape(scan_shape)
        image = image + s_lesion * (values[4] - values[2]) * s_white
        image = (image + rng.normal(0, 0.025, scan_shape)) * 1000
        path = _save(
            np.clip(image, 0, None), scan_affine, input_dir / f"{session_dir.name}_{sequence}.nii.gz", np.int16
        )
        scans.append(
            {
                "path": str(path),
                "sequence": sequence,
                "body_part": "brain",
                "sha256": _sha256(path),
                "body_part_source": "filename: brain",
            }
        )
    rows = _region_rows("brain", BRAIN_REGIONS, labels, lesion, zmap, voxel_ml)
    _, n_lesions = ndimage.label(lesion)
    return rows, scans, float(lesion.sum() * voxel_ml), int(n_lesions)


def _cord(session_dir, input_dir, zooms, rng):
    shape, affine = _grid(CORD_FOV_MM, zooms, (1, 2, 0), (True, False, False))  # PSR storage, like the real cord
    x, y, z = _world(shape, affine)
    centre_x, centre_y = 0.8 * np.sin(z / 30), 3.5 * np.sin(z / 45) - 2
    u, v = (x - centre_x) / 6.5, (y - centre_y) / 4.5
    radius = u**2 + v**2
    cord = radius <= 1
    csf = ((x - centre_x) / 10.5) ** 2 + ((y - centre_y + 0.5) / 8.0) ** 2 <= 1
    canal = ((x - centre_x) / 13.0) ** 2 + ((y - centre_y) / 11.0) ** 2 <= 1
    grey = cord & (
        ((np.abs(u) < 0.48) & (np.abs(v) < 0.22)) | ((np.abs(np.abs(u) - 0.3 - 0.25 * v) < 0.12) & (np.abs(v) < 0.7))
    )
    labels = np.zeros(shape, np.int16)
    labels[cord & (v >= 0.25)] = 5
    labels[cord & (np.abs(u) >= 0.32) & (v < 0.25)] = np.where(u >= 0, 4, 3)[cord & (np.abs(u) >= 0.32) & (v < 0.25)]
    labels[cord & (np.abs(u) < 0.32) & (v < -0.2)] = np.where(u >= 0, 2, 1)[cord & (np.abs(u) < 0.32) & (v < -0.2)]
    labels[grey] = 6
    labels[cord & (radius < 0.015)] = 7
    lesion = np.isin(labels, (1, 2)) & (z > -25) & (z < 20)
    vertebra = (
        (np.cos(z / 18 * 2 * np.pi) > -0.3) & ~canal & (np.abs(x) < 14) & (y < centre_y - 11) & (y > centre_y - 26)
    )
    image = np.where(canal, 0.3, 0.22) + csf * 0.75 - cord * 0.72 + cord * 0.34 + grey * 0.08 + lesion * 0.45
    image = image + vertebra * 0.2 + (y > centre_y + 11) * 0.15
    image = (image + rng.normal(0, 0.03, shape)) * 800
    scan = _save(np.clip(image, 0, None), affine, input_dir / f"{session_dir.name}_cspine_T2w.nii.gz", np.int16)
    zmap = ndimage.gaussian_filter(lesion * 6.0, 0.8) + rng.normal(0, 0.5, shape) * cord
    images = {
        outputs.CORD_LESIONS_NII: (lesion, np.uint8),
        outputs.CORD_ZMAP_NII: (zmap, np.float32),
        outputs.CORD_MASK_NII: (cord, np.uint8),
        outputs.CORD_LABELS_NII: (labels, np.int16),
    }
    if not (session_dir / outputs.LESIONS_NII).exists():  # cord-only session: the session-level maps are the cord's
        images.update({outputs.LESIONS_NII: (lesion, np.uint8), outputs.ZMAP_NII: (zmap, np.float32)})
    for name, (data, dtype) in images.items():
        _save(data, affine, session_dir / name, dtype)
    pd.DataFrame({"index": list(CORD_LABEL_NAMES), "name": list(CORD_LABEL_NAMES.values())}).to_csv(
        session_dir / "cord_labels.tsv", sep="\t", index=False
    )
    slices = np.unique(np.round(z[cord], 1))
    pd.DataFrame(
        {"slice": np.arange(slices.size), "z_mm": slices, "csa_mm2": np.full(slices.size, np.pi * 6.5 * 4.5)}
    ).to_csv(session_dir / outputs.CENTERLINE_CSV, index=False)
    voxel_ml = float(np.prod(zooms)) / 1000
    extras = {
        "lesion_length_mm": 45.0,
        "longitudinally_extensive": True,
        "vertebral_levels": "C3-C5",
        "csa_ratio": 1.06,
    }
    rows = _region_rows("cord", CORD_REGIONS, labels, lesion, zmap, voxel_ml, extras)
    scans = [
        {
            "path": str(scan),
            "sequence": "T2w",
            "body_part": "cord",
            "sha256": _sha256(scan),
            "body_part_source": "filename: cspine",
        }
    ]
    return rows, scans, float(lesion.sum() * voxel_ml), 1


PATTERNS = [  # pattern, disease, body part
    ("Subacute combined degeneration of spinal cord", "Vitamin B12 deficiency", "cord"),
    ("Leukoencephalopathy associated with cobalamin deficiency", "Vitamin B12 deficiency", "brain"),
    ("Copper deficiency myelopathy", "Copper deficiency", "cord"),
    ("Multiple sclerosis", "Multiple sclerosis", "brain"),
    ("Small vessel disease", "Cerebral small vessel disease", "brain"),
]


def _scores(session, body_parts, region_rows):
    involved = [r["region"] for r in region_rows if r["side"] == "both" and r["involved"]]
    rows = []
    for index, (pattern, disease, part) in enumerate(PATTERNS):
        assessable = part in body_parts
        score = (4.2 - 1.3 * index) if assessable else np.nan
        rows.append(
            {
                "session": session,
                "pattern": pattern,
                "disease": disease,
                "score": score,
                "assessable": assessable,
                "match": bool(assessable and score > 2.0),
                "matched_core_regions": ";".join(involved[:3]) if assessable else "",
                "missing_core_regions": "Internal capsule" if assessable and part == "brain" else "",
                "atypical_findings": "asymmetric" if assessable and index > 2 else "",
                "explanation": (
                    f"{'; '.join(involved[:2]) or 'no region'} involved (log-LR {score:+.1f}); bilateral, symmetric"
                    if assessable
                    else f"{part} not imaged: not assessable"
                ),
            }
        )
    table = pd.DataFrame(rows)
    table["rank"] = table["score"].rank(ascending=False, method="min")
    return table


def fabricate_session(
    output_dir: Path,
    session: str,
    body_parts=("brain",),
    status: str = "ok",
    brain_zooms=(3.0, 3.0, 3.0),
    cord_zooms=(1.4, 0.8, 0.8),
    seed: int = 0,
) -> Path:
    """Write ``output_dir/session`` following the output contract; inputs go to ``output_dir/../inputs``."""
    rng = np.random.default_rng(seed)
    session_dir = output_dir / session
    input_dir = output_dir.parent / "inputs"
    session_dir.mkdir(parents=True, exist_ok=True)
    input_dir.mkdir(parents=True, exist_ok=True)
    rows, scans, volumes, counts = [], [], {}, {}
    for part in body_parts:
        make = _brain if part == "brain" else _cord
        part_rows, part_scans, volumes[part], counts[part] = make(
            session_dir, input_dir, brain_zooms if part == "brain" else cord_zooms, rng
        )
        rows += part_rows
        scans += part_scans
    regions = pd.DataFrame(rows)
    regions.insert(0, "session", session)
    outputs.write_csv(regions, session_dir / outputs.REGIONS_CSV, outputs.REGION_COLUMNS)
    outputs.write_csv(_scores(session, body_parts, rows), session_dir / outputs.SCORES_CSV, outputs.SCORE_COLUMNS)
    outputs.write_json(
        {
            "body_parts_imaged": list(body_parts),
            "sequences": {p: [s["sequence"] for s in scans if s["body_part"] == p] for p in body_parts},
            "lesion_volume_ml": volumes,
            "n_lesions": counts,
            "features": {
                "restricted_diffusion": None,
                "enhancement": None,
                "cord_swelling": False,
                "longitudinally_extensive": "cord" in body_parts,
                "confluent": False,
            },
        },
        session_dir / outputs.FINDINGS_JSON,
    )
    warnings = ["cord: lesion touches the field-of-view edge"] if status == "warning" else []
    outputs.write_json(
        {
            "regiontag_version": "0.1.0",
            "session": session,
            "status": status,
            "inputs": scans,
            "reference": {p: next(s["path"] for s in scans if s["body_part"] == p) for p in body_parts},
            "parameters": {
                "detection": {"z_threshold": {"FLAIR": 3.0}, "min_cluster_mm3": 10.0},
                "registration": {"type_of_transform": "SyN", "random_seed": 42},
                "involvement": {"min_fraction": 0.02, "min_volume_ml": 0.005},
                "scoring": {"match_threshold": 2.0},
            },
            "atlases": {
                p: {"space": "MNI152NLin2009aSym" if p == "brain" else "cord", "sha256": "ab" * 32} for p in body_parts
            },
            "software": {"regiontag": "0.1.0", "nibabel": nib.__version__, "antspyx": "0.5.4", "numpy": np.__version__},
            "timings": {
                "load": 0.8,
                **({"registration": 41.0, "lesions": 6.5} if "brain" in body_parts else {}),
                **({"cord_segmentation": 7.5} if "cord" in body_parts else {}),
                "scoring": 0.2,
            },
            "warnings": warnings,
            "qc": {p: {"registration_correlation": 0.82, "mask_volume_ml": 1234.5} for p in body_parts},
        },
        session_dir / outputs.PROVENANCE_JSON,
    )
    (session_dir / outputs.LOG_FILE).write_text(f"session {session}: done\n", encoding="utf-8")
    return session_dir


def fabricate_failed_session(output_dir: Path, session: str, error: str) -> Path:
    """A failed session: only ``log.txt`` with a traceback."""
    session_dir = output_dir / session
    session_dir.mkdir(parents=True, exist_ok=True)
    (session_dir / outputs.LOG_FILE).write_text(
        'Traceback (most recent call last):\n  File "pipeline/session.py", line 80, in run_session\n'
        f"regiontag.inputs.scan.InputError: {error}\n",
        encoding="utf-8",
    )
    return session_dir


FAILED_ERROR = "sub-03_FLAIR.nii.gz: not a NIfTI file (bad header <script>alert(1)</script>)"


def fabricate_batch(output_dir: Path, brain_zooms=(3.0, 3.0, 3.0), cord_zooms=(1.4, 0.8, 0.8)) -> dict[str, str]:
    """A batch: brain session (ok), cord session (warning), failed session; sessions.csv and batch tables."""
    spec = {"sub-01_ses-1": ("brain",), "sub-02_ses-1": ("cord",)}
    status = {"sub-01_ses-1": "ok", "sub-02_ses-1": "warning", "sub-03_ses-1": "failed"}
    for seed, (session, parts) in enumerate(spec.items()):
        fabricate_session(output_dir, session, parts, status[session], brain_zooms, cord_zooms, seed=seed)
    fabricate_failed_session(output_dir, "sub-03_ses-1", FAILED_ERROR)
    rows = []
    for session in status:
        findings_path = output_dir / session / outputs.FINDINGS_JSON
        findings = json.loads(findings_path.read_text()) if findings_path.exists() else {}
        scores_path = output_dir / session / outputs.SCORES_CSV
        scores = pd.read_csv(scores_path) if scores_path.exists() else pd.DataFrame(columns=["match", "rank"])
        matched = scores[scores["match"].astype(str).str.lower() == "true"].sort_values("rank")
        top = matched.iloc[0]["pattern"] if len(matched) else ""  # as run_session: the best *matching* pattern
        rows.append(
            {
                "session": session,
                "status": status[session],
                "error": FAILED_ERROR if status[session] == "failed" else "",
                "seconds": 55.0 if session in spec else 0.4,
                "body_parts": ";".join(spec.get(session, ())),
                "lesion_volume_ml": sum((findings.get("lesion_volume_ml") or {}).values()) if findings else np.nan,
                "top_pattern": top,
            }
        )
    outputs.write_csv(pd.DataFrame(rows), output_dir / outputs.SESSIONS_CSV, outputs.SESSION_COLUMNS)
    for name in (outputs.REGIONS_CSV, outputs.SCORES_CSV):
        tables = [pd.read_csv(output_dir / s / name) for s in spec]
        outputs.write_csv(pd.concat(tables), output_dir / name)
    return status


def images_of(document: str) -> list[bytes]:
    """The PNG bytes embedded as data URIs in an HTML document."""
    return [base64.b64decode(data) for data in re.findall(r'src="data:image/png;base64,([^"]+)"', document)]


def png_image(uri: str) -> Image.Image:
    """The image of a ``data:image/png;base64,...`` URI (fails when it is not one)."""
    assert uri.startswith("data:image/png;base64,"), uri[:40]
    data = base64.b64decode(uri.split(",", 1)[1])
    assert data.startswith(b"\x89PNG")
    return Image.open(io.BytesIO(data))


def png_pixels(uri: str) -> np.ndarray:
    """The RGB pixels (rows, columns, 3) of a PNG data URI."""
    return np.asarray(png_image(uri).convert("RGB"))
