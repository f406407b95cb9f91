"""Where a lesion lies: location classes as LST-AI and the MAGNIMS / McDonald criteria define them.

The classes come from the atlas leaf labels on the lesion mask's grid (subject or template
space), so no image beyond the atlas is needed:

* ``infratentorial``: most of the lesion in the brainstem, cerebellum or middle cerebellar
  peduncle (McDonald 2017: infratentorial area);
* ``periventricular``: touching or within ``periventricular_max_mm`` (default 3 mm) of a
  lateral ventricle, callosal lesions included (MAGNIMS 2016: "lesion abutting the lateral
  ventricles ... without white matter in between"; Filippi et al. 2016, Lancet Neurol 15:292);
* ``cortical``: most of the lesion in the cerebral cortex; ``juxtacortical``: touching the
  cortex (within ``juxtacortical_max_mm``, default 1 mm = adjacent voxel) without being mostly
  in it (McDonald 2017 counts both as one "cortical / juxtacortical" area; Thompson et al. 2018,
  Lancet Neurol 17:162);
* ``deep grey matter``: most of the lesion in the caudate, putamen, pallidum or thalamus;
* ``deep white matter``: every other cerebral lesion (LST-AI's "subcortical" class);
* ``cord``: a lesion of the spinal cord atlas.

The first class that applies wins, in the order above (LST-AI's priority: a lesion touching
both the ventricles and the cortex is periventricular).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree

from regiontag.atlas.tree import Atlas

#: Location classes, in the order they are tried.
LOCATION_CLASSES = (
    "infratentorial",
    "periventricular",
    "cortical",
    "juxtacortical",
    "deep grey matter",
    "deep white matter",
    "cord",
)
#: The four dissemination-in-space areas of the McDonald 2017 criteria and the classes that count.
DIS_AREAS = {
    "periventricular": ("periventricular",),
    "cortical/juxtacortical": ("cortical", "juxtacortical"),
    "infratentorial": ("infratentorial",),
    "spinal cord": ("cord",),
}
#: Atlas regions (paths of atlases/brain.yaml) behind each class; missing ones are skipped.
LATERAL_VENTRICLE = ("Ventricles > Lateral ventricle",)
CORTEX = ("Cerebrum > Cerebral cortex",)
INFRATENTORIAL = ("Brainstem", "Cerebellum", "Middle cerebellar peduncle", "Ventricles > Fourth ventricle")
DEEP_GREY = ("Caudate nucleus", "Putamen", "Globus pallidus", "Thalamus")
CALLOSAL = ("Corpus callosum",)
#: A lesion is "in" a structure when at least this share of its voxels is.
MAJORITY_SHARE = 0.5


def _leaves(atlas: Atlas, paths: tuple[str, ...]) -> np.ndarray:
    values: set[int] = set()
    for path in paths:
        try:
            values |= set(atlas.region(path).label_values())
        except KeyError:
            continue
    return np.asarray(sorted(values), dtype=np.int64)


class _Surface:
    """Exact distance (mm) to a mask: a k-d tree of its boundary voxels (0 inside the mask)."""

    def __init__(self, mask: np.ndarray, affine: np.ndarray) -> None:
        self.mask = mask
        self.affine = affine
        boundary = mask & ~ndimage.binary_erosion(mask)
        points = np.argwhere(boundary).astype(np.float64)
        self.points_mm = points @ affine[:3, :3].T + affine[:3, 3]
        self.tree = cKDTree(self.points_mm) if len(points) else None

    def distance(self, voxels: tuple[np.ndarray, ...]) -> np.ndarray:
        """Distance (mm) of each voxel to the mask (inf without a mask)."""
        if self.tree is None:
            return np.full(voxels[0].size, np.inf)
        points = np.stack(voxels, axis=1).astype(np.float64) @ self.affine[:3, :3].T + self.affine[:3, 3]
        distance, _ = self.tree.query(points)
        return np.where(self.mask[voxels], 0.0, distance)

    def nearest_mm(self, point_mm: np.ndarray) -> np.ndarray | None:
        """The mask's boundary point nearest to a point (mm)."""
        if self.tree is None:
            return None
        return self.points_mm[int(self.tree.query(point_mm)[1])]


@dataclass
class LocationMaps:
    """What :func:`classify` reads for each lesion, on one grid.

    Attributes
    ----------
    ventricle, cortex : _Surface
        Exact distances (mm) to the lateral ventricles and to the cerebral cortex.
    membership : dict of str to numpy.ndarray
        ``infratentorial``, ``deep grey``, ``cortex``, ``callosal``: boolean maps.
    affine : numpy.ndarray
        Voxel -> mm of the grid.
    """

    ventricle: _Surface
    cortex: _Surface
    membership: dict[str, np.ndarray]
    affine: np.ndarray


def location_maps(labels: np.ndarray, atlas: Atlas, affine: np.ndarray) -> LocationMaps:
    """The maps :func:`classify` reads, from atlas leaf labels on the lesion grid.

    Parameters
    ----------
    labels : numpy.ndarray
        Integer leaf labels (brain atlas) on the lesion mask's grid.
    atlas : Atlas
        The atlas the labels belong to.
    affine : numpy.ndarray
        Voxel -> mm affine of the grid.

    Returns
    -------
    LocationMaps

    Examples
    --------
    >>> maps = location_maps(labels, brain_atlas(), np.eye(4))  # doctest: +SKIP
    """
    cortex = np.isin(labels, _leaves(atlas, CORTEX))
    membership = {
        "infratentorial": np.isin(labels, _leaves(atlas, INFRATENTORIAL)),
        "deep grey": np.isin(labels, _leaves(atlas, DEEP_GREY)),
        "cortex": cortex,
        "callosal": np.isin(labels, _leaves(atlas, CALLOSAL)),
    }
    ventricle = _Surface(np.isin(labels, _leaves(atlas, LATERAL_VENTRICLE)), affine)
    return LocationMaps(ventricle, _Surface(cortex, affine), membership, np.asarray(affine, dtype=float))


def _share(mask: np.ndarray, voxels: tuple[np.ndarray, ...]) -> float:
    return float(mask[voxels].mean()) if voxels[0].size else 0.0


def classify(voxels: tuple[np.ndarray, ...], maps: LocationMaps, *, periventricular_max_mm: float = 3.0,
             juxtacortical_max_mm: float = 1.0) -> dict[str, object]:
    """Location class and distances of one lesion (its voxel indices on the maps' grid).

    Parameters
    ----------
    voxels : tuple of numpy.ndarray
        ``np.nonzero``-style indices of the lesion's voxels.
    maps : LocationMaps
    periventricular_max_mm, juxtacortical_max_mm : float
        Largest gap (mm) between lesion and ventricle / cortex for the class.

    Returns
    -------
    dict
        ``location``, ``ventricle_distance_mm``, ``cortex_distance_mm`` (NaN when the atlas has no
        such region).

    Examples
    --------
    >>> classify(np.nonzero(mask), maps)["location"]  # doctest: +SKIP
    'periventricular'
    """
    ventricle_mm = float(maps.ventricle.distance(voxels).min())
    cortex_mm = float(maps.cortex.distance(voxels).min())
    if _share(maps.membership["infratentorial"], voxels) >= MAJORITY_SHARE:
        location = "infratentorial"
    elif ventricle_mm <= periventricular_max_mm or _share(maps.membership["callosal"], voxels) >= MAJORITY_SHARE:
        location = "periventricular"
    elif _share(maps.membership["cortex"], voxels) >= MAJORITY_SHARE:
        location = "cortical"
    elif cortex_mm <= juxtacortical_max_mm:
        location = "juxtacortical"
    elif _share(maps.membership["deep grey"], voxels) >= MAJORITY_SHARE:
        location = "deep grey matter"
    else:
        location = "deep white matter"
    finite = lambda value: value if np.isfinite(value) else np.nan  # noqa: E731
    return {"location": location, "ventricle_distance_mm": finite(ventricle_mm),
            "cortex_distance_mm": finite(cortex_mm)}


def principal_axes(points_mm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues (descending) and eigenvectors (columns) of the points' covariance."""
    centred = points_mm - points_mm.mean(axis=0)
    values, vectors = np.linalg.eigh(np.cov(centred.T) if len(points_mm) > 1 else np.eye(3))
    order = np.argsort(values)[::-1]
    return np.clip(values[order], 0, None), vectors[:, order]


def shape_and_orientation(voxels: tuple[np.ndarray, ...], affine: np.ndarray, maps: LocationMaps | None, *,
                          min_voxels: int = 5, min_elongation: float = 1.5, max_wall_mm: float = 10.0,
                          perpendicular_max_deg: float = 30.0) -> dict[str, object]:
    """Elongation of a lesion and the orientation of its long axis to the nearest ventricle wall.

    The wall normal is the direction from the lesion's nearest lateral-ventricle voxel to its
    centroid.  An elongated lesion (long / middle axis >= ``min_elongation``) within
    ``max_wall_mm`` of the ventricles is ``perpendicular`` (to the wall: Dawson-finger-like)
    when its long axis is within ``perpendicular_max_deg`` of the normal, ``parallel`` when
    within that of the wall plane, else ``oblique``; other lesions get an empty orientation.

    Returns
    -------
    dict
        ``elongation`` (NaN under ``min_voxels``), ``orientation``, ``orientation_angle_deg``
        (angle between long axis and wall normal).

    Examples
    --------
    >>> shape_and_orientation(np.nonzero(mask), affine, maps)["orientation"]  # doctest: +SKIP
    'perpendicular'
    """
    empty = {"elongation": np.nan, "orientation": "", "orientation_angle_deg": np.nan}
    if voxels[0].size < min_voxels:
        return empty
    index = np.stack(voxels, axis=1).astype(np.float64)
    points = index @ affine[:3, :3].T + affine[:3, 3]
    values, vectors = principal_axes(points)
    elongation = float(np.sqrt(values[0] / max(values[1], 1e-6)))
    result = {**empty, "elongation": elongation}
    if maps is None or maps.ventricle.tree is None or elongation < min_elongation:
        return result
    if float(maps.ventricle.distance(voxels).min()) > max_wall_mm:
        return result
    centroid = points.mean(axis=0)
    normal = centroid - maps.ventricle.nearest_mm(centroid)
    if np.linalg.norm(normal) < 1e-6:
        return result
    cosine = abs(float(vectors[:, 0] @ normal / np.linalg.norm(normal)))
    angle = float(np.degrees(np.arccos(min(cosine, 1.0))))
    if angle <= perpendicular_max_deg:
        orientation = "perpendicular"
    elif angle >= 90.0 - perpendicular_max_deg:
        orientation = "parallel"
    else:
        orientation = "oblique"
    return {**result, "orientation": orientation, "orientation_angle_deg": angle}
