"""Acquisition simulation: head pose, clinical voxel grids, smooth anatomical deformation, partial volume.

Coordinates chain (all in mm): acquisition voxel -> scanner (``grid.affine``)
-> subject head (inverse pose) -> anatomy/template (subject point plus a
smooth random displacement) -> anatomy voxel.  Each acquisition voxel is the
average of the anatomy sampled on a regular sub-grid covering the voxel
(box slice profile), which gives partial volume at tissue borders and across
thick slices.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from scipy.spatial.transform import Rotation

#: Slice planes and the scanner axes (x=R, y=A, z=S) of voxel axes i, j, k (k = slice direction).
PLANES = {"axial": (0, 1, 2), "coronal": (0, 2, 1), "sagittal": (1, 2, 0), "oblique": (0, 1, 2)}

#: Storage orientations: which voxel axes run against the scanner axis (e.g. LPS: x and y flipped).
STORAGE_FLIPS = {"RAS": (False, False, False), "LAS": (True, False, False), "LPS": (True, True, False)}


@dataclass(frozen=True)
class Pose:
    """Rigid head pose in the scanner: ``scanner = rotation @ subject + shift``."""

    rotation: np.ndarray
    shift: np.ndarray

    @property
    def matrix(self) -> np.ndarray:
        """4 x 4 homogeneous scanner-from-subject matrix."""
        matrix = np.eye(4)
        matrix[:3, :3] = self.rotation
        matrix[:3, 3] = self.shift
        return matrix

    @property
    def rotation_deg(self) -> float:
        """Total rotation angle (degrees)."""
        return float(np.degrees(Rotation.from_matrix(self.rotation).magnitude()))

    @property
    def euler_deg(self) -> list[float]:
        """Rotation about x, y, z (degrees, extrinsic xyz)."""
        return [float(a) for a in Rotation.from_matrix(self.rotation).as_euler("xyz", degrees=True)]

    def compose(self, other: "Pose") -> "Pose":
        """``self`` applied after ``other``."""
        matrix = self.matrix @ other.matrix
        return Pose(matrix[:3, :3], matrix[:3, 3])


def random_pose(rng: np.random.Generator, max_rotation_deg: float, max_shift_mm: float) -> Pose:
    """Rotation with a random axis and an angle uniform in [0, max], shift uniform in a ball of ``max_shift_mm``."""
    axis = rng.normal(size=3)
    axis /= np.linalg.norm(axis)
    angle = np.radians(rng.uniform(0, max_rotation_deg)) if max_rotation_deg > 0 else 0.0
    rotation = Rotation.from_rotvec(axis * angle).as_matrix()
    direction = rng.normal(size=3)
    direction /= np.linalg.norm(direction)
    shift = direction * max_shift_mm * rng.uniform(0, 1) ** (1 / 3) if max_shift_mm > 0 else np.zeros(3)
    return Pose(rotation, shift)


@dataclass(frozen=True)
class AcquisitionGrid:
    """A voxel grid in scanner space (what one NIfTI file holds)."""

    shape: tuple[int, int, int]
    affine: np.ndarray
    plane: str
    voxel_size: tuple[float, float, float]
    storage: str


def acquisition_grid(
    points_scanner: np.ndarray,
    voxel_size: tuple[float, float, float],
    plane: str,
    storage: str,
    rng: np.random.Generator,
    margin_mm: float | tuple[float, float, float] = 10.0,
    oblique_tilt_deg: float = 20.0,
) -> AcquisitionGrid:
    """A clinical grid covering ``points_scanner`` (3 x N, mm) with a margin.

    Parameters
    ----------
    points_scanner : numpy.ndarray
        Points (head outline) the field of view must contain.
    voxel_size : tuple of float
        In-plane (i, j) and slice (k) spacing in mm.
    plane : {"axial", "coronal", "sagittal", "oblique"}
        Slice orientation; ``oblique`` is axial tilted about the left-right axis.
    storage : {"RAS", "LAS", "LPS"}
        Direction of the voxel axes in the file.
    rng : numpy.random.Generator
        For the small random off-centre of the field of view.
    margin_mm : float or tuple of float
        Margin around the points on both sides of each voxel axis (i, j, slice).
    oblique_tilt_deg : float
        Tilt of the ``oblique`` plane.
    """
    if plane not in PLANES:
        raise ValueError(f"plane {plane!r} unknown; choose one of {sorted(PLANES)}")
    if storage not in STORAGE_FLIPS:
        raise ValueError(f"storage {storage!r} unknown; choose one of {sorted(STORAGE_FLIPS)}")
    axes = np.eye(3)[:, list(PLANES[plane])]
    for index, flip in enumerate(STORAGE_FLIPS[storage]):
        if flip:
            scanner_axis = PLANES[plane][index]
            if scanner_axis in (0, 1):
                axes[:, index] *= -1
    if plane == "oblique":
        axes = Rotation.from_euler("x", oblique_tilt_deg, degrees=True).as_matrix() @ axes
    projected = axes.T @ points_scanner
    margin = np.broadcast_to(np.asarray(margin_mm, dtype=float), (3,))
    low = projected.min(axis=1) - margin
    high = projected.max(axis=1) + margin
    spacing = np.asarray(voxel_size, dtype=float)
    shape = tuple(int(np.ceil((h - lo) / s)) + 1 for lo, h, s in zip(low, high, spacing))
    centre = 0.5 * (low + high) + rng.uniform(-3, 3, size=3)
    origin_projected = centre - 0.5 * (np.asarray(shape) - 1) * spacing
    affine = np.eye(4)
    affine[:3, :3] = axes * spacing
    affine[:3, 3] = axes @ origin_projected
    return AcquisitionGrid(shape, affine, plane, tuple(float(v) for v in voxel_size), storage)


class SmoothDeformation:
    """A smooth random displacement field (subject mm -> anatomy mm), zero when amplitude is 0.

    Gaussian noise on a coarse grid (``spacing_mm``), smoothed and scaled so
    that the largest displacement is ``amplitude_mm``; evaluated by trilinear
    interpolation.
    """

    def __init__(
        self,
        rng: np.random.Generator,
        amplitude_mm: float,
        bounds_mm: np.ndarray,
        spacing_mm: float = 8.0,
        smoothness_mm: float = 16.0,
    ) -> None:
        self.amplitude_mm = float(amplitude_mm)
        self.origin = np.asarray(bounds_mm[0], dtype=float) - 2 * spacing_mm
        self.spacing = float(spacing_mm)
        extent = np.asarray(bounds_mm[1], dtype=float) + 2 * spacing_mm - self.origin
        shape = tuple(int(np.ceil(e / spacing_mm)) + 1 for e in extent)
        field = rng.standard_normal((3, *shape)).astype(np.float32)
        sigma = smoothness_mm / spacing_mm
        field = np.stack([ndimage.gaussian_filter(component, sigma, mode="nearest") for component in field])
        peak = float(np.sqrt((field**2).sum(axis=0)).max())
        self.field = field * (self.amplitude_mm / peak if peak > 0 else 0.0)

    def __call__(self, points: np.ndarray) -> np.ndarray:
        """Displaced points (3 x ...) in mm."""
        if self.amplitude_mm == 0:
            return points
        index = (points - self.origin.reshape(3, *([1] * (points.ndim - 1)))) / self.spacing
        displacement = np.stack(
            [ndimage.map_coordinates(c, index, order=1, mode="nearest") for c in self.field]
        )
        return points + displacement


def subvoxel_offsets(voxel_size: tuple[float, float, float], step_mm: float) -> np.ndarray:
    """Offsets (voxel units, 3 x n) of a regular sub-grid with spacing about ``step_mm`` inside one voxel."""
    counts = [max(1, int(np.round(size / step_mm + 1e-6))) for size in voxel_size]
    axes = [(np.arange(n) + 0.5) / n - 0.5 for n in counts]
    return np.stack([a.ravel() for a in np.meshgrid(*axes, indexing="ij")])


def sample_volumes(
    volumes: list[np.ndarray],
    volume_affine: np.ndarray,
    grid: AcquisitionGrid,
    pose: Pose,
    deformation: SmoothDeformation,
    orders: list[int],
    step_mm: float = 1.5,
    max_points: int = 2_000_000,
) -> list[np.ndarray]:
    """Sample anatomy-grid volumes onto an acquisition grid.

    Parameters
    ----------
    volumes : list of numpy.ndarray
        Arrays on the anatomy grid.
    volume_affine : numpy.ndarray
        Anatomy voxel -> anatomy mm.
    grid : AcquisitionGrid
    pose : Pose
        Scanner-from-subject pose.
    deformation : SmoothDeformation
        Subject mm -> anatomy mm.
    orders : list of int
        Per volume: 1 = partial-volume average of trilinear samples over the voxel
        (float32 result); 0 = nearest neighbour at the voxel centre (labels).
    step_mm : float
        Sub-grid spacing of the partial-volume average (1.5 mm: 2 samples across a 3 mm slice,
        3 across 5 mm, one in-plane up to 2.2 mm; each trilinear sample itself spans +-1 mm of
        the 1 mm anatomy).
    max_points : int
        Points per chunk (bounds memory).

    Returns
    -------
    list of numpy.ndarray
        One array of shape ``grid.shape`` per volume.
    """
    offsets = subvoxel_offsets(grid.voxel_size, step_mm)
    # Within one voxel the smooth deformation is constant to well below a millimetre, so the
    # sub-voxel offsets map through the rigid part only: anatomy voxel = centre + linear @ offset.
    linear = np.linalg.inv(volume_affine[:3, :3]) @ pose.rotation.T @ grid.affine[:3, :3]
    shifts = linear @ offsets
    outputs = [
        np.zeros(grid.shape, dtype=np.float32 if order else volume.dtype) for volume, order in zip(volumes, orders)
    ]
    slice_points = grid.shape[0] * grid.shape[1]
    chunk = max(1, max_points // slice_points)
    i, j = np.meshgrid(np.arange(grid.shape[0]), np.arange(grid.shape[1]), indexing="ij")
    for start in range(0, grid.shape[2], chunk):
        stop = min(start + chunk, grid.shape[2])
        k = np.arange(start, stop)
        voxel = np.stack(np.broadcast_arrays(i[..., None], j[..., None], k[None, None, :])).astype(np.float32)
        centres = _apply(deformation, volume_affine, grid.affine, pose, voxel).astype(np.float32)
        for volume, order, output in zip(volumes, orders, outputs):
            if order == 0:
                output[:, :, start:stop] = ndimage.map_coordinates(volume, centres, order=0, mode="constant", cval=0)
                continue
            for shift in shifts.T:
                output[:, :, start:stop] += ndimage.map_coordinates(
                    volume, centres + shift.reshape(3, 1, 1, 1).astype(np.float32), order=1,
                    mode="constant", cval=0.0, output=np.float32,
                )
    for output, order in zip(outputs, orders):
        if order:
            output /= offsets.shape[1]
    return outputs


def _apply(
    deformation: SmoothDeformation,
    volume_affine: np.ndarray,
    grid_affine: np.ndarray,
    pose: Pose,
    voxel: np.ndarray,
) -> np.ndarray:
    """Anatomy voxel coordinates of acquisition voxel coordinates (3 x ...)."""
    flat = voxel.reshape(3, -1)
    scanner = grid_affine[:3, :3] @ flat + grid_affine[:3, 3:4]
    subject = np.linalg.inv(pose.rotation) @ (scanner - pose.shift.reshape(3, 1))
    anatomy_mm = deformation(subject)
    inverse = np.linalg.inv(volume_affine)
    anatomy_voxel = inverse[:3, :3] @ anatomy_mm + inverse[:3, 3:4]
    return anatomy_voxel.reshape(voxel.shape)
