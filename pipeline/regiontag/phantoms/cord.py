"""Synthetic spinal cord T2 phantoms with known cord, column lesions and involvement.

A curved cord (elliptic cross-section with a grey-matter butterfly) lies in
CSF inside a vertebral canal, surrounded by vertebral bodies, discs, posterior
elements, epidural fat and textured soft tissue.  Lesions are confined to chosen
columns over chosen lengths.  The volume is sampled on an oblique (random pose)
sagittal or axial acquisition grid with anisotropic voxels by supersampling
(partial volume), then a smooth bias field and Rician noise are applied.

Model coordinates (mm): x = subject right, y = anterior, z = superior.  Inside
the cord, normalised coordinates are ``u = (x - xc) / a`` (+1 right edge) and
``v = (y - yc) / b`` (+1 anterior edge), as in :mod:`regiontag.atlas.cord_frames`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
from scipy import ndimage
from scipy.spatial.transform import Rotation

from regiontag import outputs
from regiontag.phantoms.cord_contrast import CONTRASTS

#: Cord lesion type used for each cord pattern id (the cord phantom's vocabulary).
CORD_LESION_TYPES = {
    "b12-subacute-combined-degeneration": "dorsal",
    "copper-deficiency-myelopathy": "dorsal",
    "nmosd-myelitis": "central",
    "ms-cord": "eccentric",
}

LESION_TYPES = ("healthy", "dorsal", "dorsal_lateral", "lateral", "central", "eccentric")

CORD = "Spinal cord"
WHITE = "Spinal cord > Spinal white matter"
POSTERIOR = "Spinal cord > Spinal white matter > Posterior column"
LATERAL = "Spinal cord > Spinal white matter > Lateral column"
ANTERIOR = "Spinal cord > Spinal white matter > Anterior column"
GREY = "Spinal cord > Spinal grey matter"
#: Column-level regions for which the phantom states involvement.
TRUTH_REGIONS = (CORD, WHITE, POSTERIOR, LATERAL, ANTERIOR, GREY)
#: Phantom column codes 0..3 (see ``_tissue_classes``) -> region.
_LEAF_REGIONS = (GREY, POSTERIOR, LATERAL, ANTERIOR)

#: Lesion length in vertebral segments per type.
LESION_SEGMENTS = {"dorsal": 3.5, "dorsal_lateral": 3.5, "lateral": 3.2, "central": 3.6, "eccentric": 0.6}


@dataclass
class CordPhantom:
    """A cord phantom and its ground truth (images in the acquisition's own space)."""

    images: dict[str, nib.Nifti1Image]
    truth_lesions: nib.Nifti1Image
    truth_cord: nib.Nifti1Image
    truth_regions: pd.DataFrame
    lesion_type: str
    info: dict = field(default_factory=dict)


def _dorsal_horn_u(v: np.ndarray) -> np.ndarray:
    """|u| of the dorsal horn axis at height v (horn runs from (0.15, -0.05) to (0.48, -0.88))."""
    t = np.clip((-v - 0.05) / 0.83, 0.0, 1.0)
    return 0.15 + 0.33 * t


def _tissue_classes(u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Grey-matter flag and column code (0 GM, 1 posterior, 2 lateral, 3 anterior) inside the cord."""
    au = np.abs(u)
    horn_u = _dorsal_horn_u(v)
    dorsal_horn = (v < -0.02) & (v > -0.90) & (np.abs(au - horn_u) < 0.075)
    ventral_horn = ((au - 0.36) / 0.22) ** 2 + ((v - 0.33) / 0.30) ** 2 < 1.0
    bar = (np.abs(v - 0.02) < 0.12) & (au < 0.38)
    grey = dorsal_horn | ventral_horn | bar
    column = np.full(u.shape, 2, dtype=np.int8)
    column[(v < -0.05) & (au < horn_u)] = 1
    column[(v > 0.12) & (au < 0.22)] = 3
    column[grey] = 0
    return grey, column


def _lesion_shape(lesion_type: str, u: np.ndarray, v: np.ndarray, side: int) -> np.ndarray:
    """Cross-sectional lesion membership for one lesion type (normalised cord coordinates)."""
    au = np.abs(u)
    inside = u**2 + v**2 < 0.93**2
    grey, column = _tissue_classes(u, v)
    if lesion_type == "dorsal":
        return inside & (v < -0.2) & (au < _dorsal_horn_u(v) - 0.1)
    if lesion_type == "lateral":
        return inside & (column == 2) & (au > 0.55) & (v > -0.55) & (v < 0.15)
    if lesion_type == "dorsal_lateral":
        return _lesion_shape("dorsal", u, v, side) | _lesion_shape("lateral", u, v, side)
    if lesion_type == "central":
        return (u / 0.55) ** 2 + (v / 0.6) ** 2 < 1.0
    if lesion_type == "eccentric":
        return ((u - side * 0.68) / 0.26) ** 2 + ((v + 0.1) / 0.34) ** 2 < 1.0
    return np.zeros(u.shape, dtype=bool)


class _Anatomy:
    """Random anatomy of one phantom (centreline, cord size, canal, vertebrae, lesion extent)."""

    def __init__(self, lesion_type: str, rng: np.random.Generator, length_mm: float, segment_mm: float,
                 contrast: str = "T2w"):
        self.signal, self.lesion_signal = CONTRASTS[contrast]
        self.length = length_mm
        self.segment = segment_mm
        self.curve = rng.uniform(3.0, 7.0) * rng.choice([-1, 1])
        self.lateral_amp = rng.uniform(0.0, 1.5)
        self.lateral_phase = rng.uniform(0, 2 * np.pi)
        self.semi_lr = rng.uniform(5.8, 6.8)
        self.semi_ap = rng.uniform(3.7, 4.3)
        self.disc_phase = rng.uniform(0, segment_mm)
        self.side = int(rng.choice([-1, 1]))
        self.lesion_type = lesion_type
        self.swelling = 1.15 if lesion_type == "central" else 1.0
        if lesion_type == "healthy":
            self.lesion_range = (np.nan, np.nan)
        else:
            extent = min(LESION_SEGMENTS[lesion_type] * segment_mm, 0.7 * length_mm)
            top = rng.uniform(0.12 * length_mm, length_mm - extent - 0.12 * length_mm)
            self.lesion_range = (top, top + extent)  # mm below the top of the model

    def centre(self, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        t = z / (self.length / 2)
        xc = self.lateral_amp * np.sin(np.pi * t + self.lateral_phase)
        yc = self.curve * (t**2 - 1 / 3)
        return xc, yc

    def depth(self, z: np.ndarray) -> np.ndarray:
        """mm below the top of the model (arc length is close to this for gentle curves)."""
        return self.length / 2 - z

    def lesion_weight(self, z: np.ndarray) -> np.ndarray:
        """1 inside the lesion's longitudinal range, tapering to 0 over 4 mm at both ends."""
        if self.lesion_type == "healthy":
            return np.zeros(z.shape)
        d = self.depth(z)
        top, bottom = self.lesion_range
        return np.clip(np.minimum(d - top, bottom - d) / 4.0 + 0.5, 0.0, 1.0)

    def semi_axes(self, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        d = self.depth(z)
        enlargement = 1.0 + 0.08 * np.exp(-(((d - 0.6 * self.length) / (0.25 * self.length)) ** 2))
        swell = 1.0
        if self.swelling > 1:
            top, bottom = self.lesion_range
            swell = 1.0 + (self.swelling - 1) * np.clip(np.minimum(d - top, bottom - d) / 8.0, 0, 1)
        return self.semi_lr * enlargement * swell, self.semi_ap * enlargement * swell


def _evaluate(anatomy: _Anatomy, points: np.ndarray, texture) -> dict[str, np.ndarray]:
    """Signal, cord/lesion membership and column code at model points (N x 3, mm)."""
    x, y, z = points.T
    xc, yc = anatomy.centre(z)
    a, b = anatomy.semi_axes(z)
    u, v = (x - xc) / a, (y - yc) / b
    in_cord = u**2 + v**2 < 1.0
    grey, column = _tissue_classes(u, v)
    canal_a, canal_b = a + 3.6, b + 2.6
    cx, cy = x - xc, y - (yc - 0.6)
    in_canal = (cx / canal_a) ** 2 + (cy / canal_b) ** 2 < 1.0
    body_front = canal_b + 1.2
    in_body = (cy > body_front) & (cy < body_front + 17.0) & (np.abs(cx) < 9.5)
    disc = np.mod(anatomy.depth(z) + anatomy.disc_phase, anatomy.segment) < 4.5
    arch = ~in_canal & ((cx / (canal_a + 3.5)) ** 2 + (cy / (canal_b + 5.0)) ** 2 < 1.0) & (cy < 0)
    fat = arch & (cy > -(canal_b + 1.6)) & (np.abs(cx) < 4.0)
    table = anatomy.signal
    signal = table["soft"] * (1.0 + 0.35 * texture(points))
    signal = np.where(in_body, np.where(disc, table["disc"], table["body"]), signal)
    signal = np.where(arch, table["bone"], signal)
    signal = np.where(fat, table["fat"], signal)
    signal = np.where(in_canal, table["csf"], signal)
    cord_signal = np.where(grey, table["gm"], table["wm"])
    lesion = np.zeros(x.shape, dtype=bool)
    if anatomy.lesion_type != "healthy":
        lesion = in_cord & _lesion_shape(anatomy.lesion_type, u, v, anatomy.side)
        lesion &= anatomy.lesion_weight(z) >= 0.5
        cord_signal = np.where(lesion, anatomy.lesion_signal[anatomy.lesion_type], cord_signal)
    signal = np.where(in_cord, cord_signal, signal)
    side = np.where(u >= 0, 1, 0).astype(np.int8)  # 1 = right
    return {"signal": signal, "cord": in_cord, "lesion": lesion, "column": np.where(in_cord, column, -1), "side": side}


def _texture_function(rng: np.random.Generator, extent_mm: float):
    """Smooth random soft-tissue texture (values roughly in [-1, 1]) at any model point."""
    size = 24
    field_values = ndimage.gaussian_filter(rng.standard_normal((size, size, size)), 1.5)
    field_values /= np.abs(field_values).max() + 1e-9
    spacing = extent_mm / (size - 1)

    def texture(points: np.ndarray) -> np.ndarray:
        coords = (points.T + extent_mm / 2) / spacing
        return ndimage.map_coordinates(field_values, coords, order=1, mode="nearest")

    return texture


def _acquisition_affine(orientation: str, voxel_size, fov_mm, rotation: np.ndarray, offset: np.ndarray):
    """Voxel -> model affine and grid shape; sagittal axes (P, S, R), axial axes (L, A, S)."""
    if orientation == "sagittal":
        directions = np.array([[0, -1, 0], [0, 0, 1], [1, 0, 0]], dtype=float)
        extents = (fov_mm[1], fov_mm[2], fov_mm[0])
    elif orientation == "axial":
        directions = np.array([[-1, 0, 0], [0, 1, 0], [0, 0, 1]], dtype=float)
        extents = (fov_mm[0], fov_mm[1], fov_mm[2])
    else:
        raise ValueError(f"orientation must be 'sagittal' or 'axial', got {orientation!r}")
    voxel = np.asarray(voxel_size, dtype=float)
    shape = tuple(int(round(e / s)) for e, s in zip(extents, voxel))
    linear = rotation @ (directions.T * voxel)
    centre_index = (np.asarray(shape) - 1) / 2
    affine = np.eye(4)
    affine[:3, :3] = linear
    affine[:3, 3] = offset - linear @ centre_index
    return affine, shape


def _render(anatomy, affine, shape, voxel_size, texture, pose_shift, supersample_mm=0.45):
    """Supersample every voxel; return voxel means of signal/cord/lesion and leaf counts."""
    factors = [int(min(5, max(1, np.ceil(s / supersample_mm)))) for s in voxel_size]
    offsets = np.stack(
        np.meshgrid(*[(np.arange(f) + 0.5) / f - 0.5 for f in factors], indexing="ij"), -1
    ).reshape(-1, 3)
    grid = np.stack(np.meshgrid(*[np.arange(n) for n in shape], indexing="ij"), -1).reshape(-1, 3)
    n_sub = len(offsets)
    sums = {key: np.zeros(len(grid)) for key in ("signal", "cord", "lesion")}
    counts = np.zeros((len(_LEAF_REGIONS), 2, 2))  # region x side x (all, lesion)
    chunk = max(1, 1_500_000 // n_sub)
    for start in range(0, len(grid), chunk):
        block = grid[start : start + chunk]
        subs = (block[:, None, :] + offsets[None]).reshape(-1, 3)
        points = subs @ affine[:3, :3].T + affine[:3, 3] - pose_shift
        values = _evaluate(anatomy, points, texture)
        for key in sums:
            sums[key][start : start + chunk] = values[key].reshape(len(block), n_sub).mean(1)
        for code in range(4):
            for side in (0, 1):
                sel = (values["column"] == code) & (values["side"] == side)
                counts[code, side, 0] += sel.sum()
                counts[code, side, 1] += (sel & values["lesion"]).sum()
    volumes = {key: value.reshape(shape) for key, value in sums.items()}
    return volumes, counts


def _truth_regions(counts: np.ndarray) -> pd.DataFrame:
    """Involvement per region and side from lesion coverage of the phantom's own columns.

    ``involved`` is True when the lesion covers >= 5 % of the region (in the lesion's
    longitudinal range this is far higher), False below 0.2 %, and missing (not
    scored) in between; parents are involved when any child is.
    """
    leaf = {}
    for index, path in enumerate(_LEAF_REGIONS):
        for side_index, side in enumerate(("left", "right")):
            total, lesion = counts[index, side_index]
            fraction = lesion / total if total else 0.0
            leaf[(path, side)] = True if fraction >= 0.05 else (False if fraction < 0.002 else None)
    rows = []
    for path in TRUTH_REGIONS:
        children = [p for p in _LEAF_REGIONS if p == path or p.startswith(path + " > ")]
        for side in ("left", "right", "both"):
            sides = ("left", "right") if side == "both" else (side,)
            flags = [leaf[(child, s)] for child in children for s in sides]
            if any(flag is True for flag in flags):
                involved = True
            elif all(flag is False for flag in flags):
                involved = False
            else:
                involved = None
            rows.append({"region": path, "side": side, "involved": involved})
    return pd.DataFrame(rows, columns=["region", "side", "involved"])


def make_cord_phantom(
    lesion_type: str,
    seed: int,
    orientation: str = "sagittal",
    voxel_size: tuple[float, float, float] | None = None,
    snr: float = 12.0,
    length_mm: float = 100.0,
    segment_length_mm: float = 18.0,
    bias_strength: float = 0.25,
    max_rotation_deg: float = 12.0,
    fov_mm: tuple[float, float] | None = None,
    supersample_mm: float = 0.45,
    contrast: str = "T2w",
) -> CordPhantom:
    """Make a cord T2 (or STIR) phantom with ground truth.

    Parameters
    ----------
    lesion_type : str
        One of ``LESION_TYPES``: ``healthy``, ``dorsal`` (symmetric inverted V over several
        segments), ``dorsal_lateral``, ``lateral``, ``central`` (NMOSD-like longitudinally
        extensive, with swelling), ``eccentric`` (single short MS-like lateral plaque).
    seed : int
        Seed of every random choice (anatomy, pose, bias, noise).
    orientation : {"sagittal", "axial"}
        Acquisition: sagittal axes (P, S, R), axial axes (L, A, S).
    voxel_size : tuple of float, optional
        Voxel size along the array axes (mm); default (0.8, 0.8, 2.5) sagittal,
        (0.7, 0.7, 3.0) axial (the last axis is the slice direction).
    snr : float
        Cord white-matter signal / noise standard deviation (Rician noise).
    length_mm : float
        Superior-inferior field of view (mm).
    segment_length_mm : float
        Vertebral segment height (disc spacing) of the model.
    bias_strength : float
        Maximum relative amplitude of the smooth multiplicative bias field.
    max_rotation_deg : float
        Maximum random rotation of the acquisition grid about each axis.
    fov_mm : tuple of float, optional
        Left-right and anterior-posterior field of view (mm); default (44, 56) sagittal,
        (56, 56) axial.  Larger fields of view show more neck tissue (benchmarks).
    supersample_mm : float
        Spacing of the sub-voxel samples used for partial volume (coarser is faster).
    contrast : {"T2w", "STIR"}
        Tissue signal model (``CONTRASTS``); a STIR phantom is still stored as ``images["T2w"]``,
        the sequence regiontag reads STIR as.

    Returns
    -------
    CordPhantom
        ``images`` = ``{"T2w": image}``, truth masks on the same grid, ``truth_regions``
        (region, side, involved: True/False/None = ambiguous, not scored) and ``info``
        (lesion range in mm from the top of the field of view, segment length, seed).
    """
    if lesion_type not in LESION_TYPES:
        raise ValueError(f"lesion_type must be one of {LESION_TYPES}, got {lesion_type!r}")
    if contrast not in CONTRASTS:
        raise ValueError(f"contrast must be one of {sorted(CONTRASTS)}, got {contrast!r}")
    rng = np.random.default_rng(seed)
    if voxel_size is None:
        voxel_size = (0.8, 0.8, 2.5) if orientation == "sagittal" else (0.7, 0.7, 3.0)
    anatomy = _Anatomy(lesion_type, rng, length_mm, segment_length_mm, contrast)
    # pitch (sagittal plane) and yaw (axial plane) up to the maximum, roll (coronal) a third of it,
    # so that the cord stays inside a narrow sagittal field of view
    angles = rng.uniform(-1, 1, 3) * max_rotation_deg * np.array([1.0, 1.0 / 3.0, 1.0])
    rotation = Rotation.from_euler("xyz", angles, degrees=True)
    pose_shift = rng.uniform(-20, 20, 3)
    if fov_mm is None:
        fov_mm = (44.0, 56.0) if orientation == "sagittal" else (56.0, 56.0)
    fov = (float(fov_mm[0]), float(fov_mm[1]), length_mm)
    affine, shape = _acquisition_affine(
        orientation, voxel_size, fov, rotation.as_matrix(), pose_shift + np.array([0, 6.0, 0])
    )
    texture = _texture_function(rng, 2.5 * max(length_mm, 60.0))
    volumes, counts = _render(anatomy, affine, shape, voxel_size, texture, pose_shift, supersample_mm)
    coords = np.stack(np.meshgrid(*[np.linspace(-1, 1, n) for n in shape], indexing="ij"), -1)
    coefficients = rng.uniform(-1, 1, (3,)) * bias_strength
    bias = np.exp(coords @ coefficients + 0.5 * bias_strength * rng.uniform(-1, 1) * coords[..., 1] ** 2)
    sigma = anatomy.signal["wm"] / snr
    clean = volumes["signal"] * bias
    noisy = np.sqrt((clean + rng.normal(0, sigma, shape)) ** 2 + rng.normal(0, sigma, shape) ** 2)
    data = (noisy * 1000.0).astype(np.float32)

    def image(array, dtype):
        header = nib.Nifti1Header()
        header.set_xyzt_units("mm", "sec")
        result = nib.Nifti1Image(array.astype(dtype), affine, header)
        result.set_qform(affine, 1)
        result.set_sform(affine, 1)
        return result

    top, bottom = anatomy.lesion_range
    info = {
        "lesion_type": lesion_type,
        "seed": seed,
        "orientation": orientation,
        "contrast": contrast,
        "voxel_size": list(map(float, voxel_size)),
        "snr": snr,
        "segment_length_mm": segment_length_mm,
        "lesion_top_mm": float(top) if np.isfinite(top) else None,
        "lesion_bottom_mm": float(bottom) if np.isfinite(bottom) else None,
        "lesion_length_mm": float(bottom - top) if np.isfinite(top) else 0.0,
        "longitudinally_extensive": bool(np.isfinite(top) and bottom - top >= 3 * segment_length_mm),
        "cord_swelling": bool(anatomy.swelling > 1),
        "lesion_side": "right" if anatomy.side > 0 else "left",
    }
    return CordPhantom(
        images={"T2w": image(data, np.float32)},
        truth_lesions=image(volumes["lesion"] >= 0.5, np.uint8),
        truth_cord=image(volumes["cord"] >= 0.5, np.uint8),
        truth_regions=_truth_regions(counts),
        lesion_type=lesion_type,
        info=info,
    )


def write_cord_phantom(phantom: CordPhantom, out_dir: str | Path, session_id: str) -> Path:
    """Write a phantom as ``inputs/<id>/<id>_acq-cspine_T2w.nii.gz`` and ``truth/<id>/...``.

    Returns
    -------
    Path
        The session's input folder.
    """
    out_dir = Path(out_dir)
    input_dir = out_dir / "inputs" / session_id
    truth_dir = out_dir / "truth" / session_id
    for sequence, img in phantom.images.items():
        outputs.write_nifti(img, input_dir / f"{session_id}_acq-cspine_{sequence}.nii.gz")
    outputs.write_nifti(phantom.truth_lesions, truth_dir / "lesions.nii.gz")
    outputs.write_nifti(phantom.truth_cord, truth_dir / "cord_mask.nii.gz")
    outputs.write_csv(phantom.truth_regions, truth_dir / "regions.csv")
    outputs.write_json({"body_part": "cord", **phantom.info}, truth_dir / "truth.json")
    return input_dir
