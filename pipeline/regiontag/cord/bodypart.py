"""Is a scan of the brain or of the spinal cord, when its file name does not say? From the image.

File names are read by :func:`regiontag.inputs.discovery.body_part_from_name`.

The evidence is the body's physical shape in millimetres, not the field of view's
share of slices (which depends on how much empty space the scan holds):

* **Head sections.** Each axial slice of the canonical (RAS+) volume is reduced to
  its body section (intensity above 10% of the volume's bright level, holes filled,
  largest connected part) and summarised by its principal axes. A head or a brain,
  with or without skull, has sections elongated front to back: long axis
  >= ``HEAD_MIN_LONG_MM``, short axis >= ``HEAD_MIN_SHORT_MM``, long / short
  >= ``HEAD_MIN_ELONGATION`` and the long axis within ``HEAD_MAX_ANGLE_DEG`` of
  anterior-posterior. A neck is as wide as it is deep or wider, shoulders and trunk
  are much wider than deep, a spine slab is a few centimetres wide. The length
  along the head-foot axis over which sections are head-shaped (``head_mm``) is the
  main brain evidence.
* **Closed top.** A brain or head ends inside the field of view (the vertex), a
  neck or spine is cut by it: the top slice's section is small compared with the
  largest one (``dome``).
* **CSF column.** A thin bright CSF column with a dark cord inside (ring detector
  tracked along z, :mod:`regiontag.cord.csf_column`; also tried on the inverted
  contrast for T1w, where CSF is dark) over most slices.

Decision (:func:`assess_body_part`): a field of view narrower than a head
left-right is a spine slab -> cord. Head sections over >= ``BRAIN_HEAD_MM``
(or >= ``BRAIN_HEAD_MM_WITH_DOME`` with a closed top) -> brain. A closed top with
fewer head-shaped sections -> brain, with a warning (a spine never closes at the
top). Otherwise a CSF column over >= ``MIN_RING_FRACTION`` of the slices -> cord,
with a warning when the field of view also holds head-shaped sections (a "cord"
inside a head-sized field of view). Otherwise the evidence is weak: brain (a brain
is never run as a cord), with a warning. Every decision carries its measurements.

Known limit: a small, round brain pitched by >= 20 degrees and cut at the vertex
keeps few head-shaped axial sections; it then ends as a warned decision.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy import ndimage

from regiontag.cord.csf_column import normalise_slices, track_column
from regiontag.niimg import check_niimg, to_canonical

MAX_CORD_FOV_LR_MM = 110.0
#: A head-shaped axial section (principal axes of the body section, mm).
HEAD_MIN_LONG_MM = 120.0
HEAD_MIN_SHORT_MM = 95.0
HEAD_MIN_ELONGATION = 1.08
HEAD_MAX_ANGLE_DEG = 30.0
#: Head-foot length of head-shaped sections that makes a brain (alone / with a closed top).
BRAIN_HEAD_MM = 30.0
BRAIN_HEAD_MM_WITH_DOME = 10.0
#: Closed top: top slice's section <= this share of the largest section, which is >= DOME_MIN_AREA_MM2.
DOME_MAX_TOP_SHARE = 0.35
DOME_MIN_AREA_MM2 = 9000.0
MIN_SECTION_AREA_MM2 = 500.0
MIN_RING_FRACTION = 0.5
#: The cord's centre lies at least this far inside the body section (the skin edge is no CSF ring).
MIN_CORD_DEPTH_MM = 10.0
RING_SCORE = 0.15
#: In-plane grid of the shape analysis (mm).
SHAPE_GRID_MM = 2.0


@dataclass(frozen=True)
class BodyPartDecision:
    """Body part decided from the image, how sure, and the measurements behind it.

    Attributes
    ----------
    body_part : str
        ``"brain"`` or ``"cord"``.
    reason : str
        One sentence with the measurements (for ``provenance.json``).
    confident : bool
        False when the evidence is weak or contradictory; :attr:`warning` then says why.
    evidence : dict
        Numbers behind the decision (field of view, ``head_mm``, ``dome``, ring fraction).
    """

    body_part: str
    reason: str
    confident: bool = True
    evidence: dict[str, float] = field(default_factory=dict)

    @property
    def warning(self) -> str:
        """The warning a session gets for this decision ("" when confident)."""
        if self.confident:
            return ""
        return (f"body part from the image uncertain, run as {self.body_part}: {self.reason} "
                "(name the file e.g. *_bp-brain_* / *_bp-spine_* or set discovery.body_part_overrides)")


@dataclass(frozen=True)
class BodySections:
    """Per axial slice of the canonical volume: the body section's area and principal axes."""

    area_mm2: np.ndarray
    long_mm: np.ndarray
    short_mm: np.ndarray
    angle_to_ap_deg: np.ndarray  # angle of the long axis to anterior-posterior (0..90)
    slice_mm: float

    def head_shaped(self) -> np.ndarray:
        """Slices whose section is head-shaped (long front to back, head-sized)."""
        long_mm, short_mm = self.long_mm, np.maximum(self.short_mm, 1e-6)
        return ((long_mm >= HEAD_MIN_LONG_MM) & (short_mm >= HEAD_MIN_SHORT_MM)
                & (long_mm >= HEAD_MIN_ELONGATION * short_mm) & (self.angle_to_ap_deg <= HEAD_MAX_ANGLE_DEG))

    @property
    def head_mm(self) -> float:
        """Head-foot length (mm) over which the sections are head-shaped."""
        return float(self.head_shaped().sum() * self.slice_mm)

    @property
    def top_share(self) -> float:
        """Section area of the top slice over the largest section area (1 when the body is cut at the top)."""
        largest = float(self.area_mm2.max()) if self.area_mm2.size else 0.0
        return float(self.area_mm2[-1] / largest) if largest > 0 else 1.0

    @property
    def dome(self) -> bool:
        """True when a large body ends inside the field of view at the top (a vertex)."""
        return bool(self.area_mm2.size and self.area_mm2.max() >= DOME_MIN_AREA_MM2
                    and self.top_share <= DOME_MAX_TOP_SHARE)


def _zooms(image: nib.Nifti1Image) -> np.ndarray:
    return np.sqrt((image.affine[:3, :3] ** 2).sum(axis=0))


def body_sections(volume: np.ndarray, zooms: tuple[float, float, float]) -> BodySections:
    """Body section of every axial slice of a canonical volume.

    Parameters
    ----------
    volume : ndarray
        Canonical (x = left-right, y = posterior-anterior, z = inferior-superior) intensities.
    zooms : tuple of float
        Voxel sizes (mm).

    Returns
    -------
    BodySections

    Examples
    --------
    >>> x, y, z = np.meshgrid(np.arange(70), np.arange(90), np.arange(30), indexing="ij")
    >>> head = (((x - 35) / 30) ** 2 + ((y - 45) / 40) ** 2 < 1).astype(float)
    >>> sections = body_sections(head, (2.0, 2.0, 2.0))
    >>> round(float(sections.long_mm[10])), round(float(sections.short_mm[10])), sections.head_mm
    (160, 120, 60.0)
    """
    volume = np.nan_to_num(np.asarray(volume, dtype=np.float32))
    zooms = np.asarray(zooms, dtype=float)
    step = np.maximum(1, np.floor(SHAPE_GRID_MM / zooms[:2])).astype(int)
    volume = volume[:: step[0], :: step[1], :]
    spacing = zooms[:2] * step
    bright = float(np.percentile(volume, 99)) if volume.size else 0.0
    structure = np.zeros((3, 3, 3), dtype=bool)
    structure[:, :, 1] = ndimage.generate_binary_structure(2, 1)  # in-plane only: thick slices stay whole
    foreground = ndimage.binary_opening(volume > 0.1 * bright, structure=structure) if bright > 0 else volume > 0
    n_slices = volume.shape[2]
    area, long_axis, short_axis, angle = (np.zeros(n_slices) for _ in range(4))
    for index in range(n_slices):
        section = ndimage.binary_fill_holes(foreground[:, :, index])
        labels, count = ndimage.label(section)
        if count == 0:
            continue
        largest = labels == (int(np.argmax(np.bincount(labels.ravel())[1:])) + 1)
        xs, ys = np.nonzero(largest)
        area[index] = xs.size * spacing[0] * spacing[1]
        if area[index] < MIN_SECTION_AREA_MM2:
            continue
        points = np.stack([xs * spacing[0], ys * spacing[1]])
        eigenvalues, eigenvectors = np.linalg.eigh(np.cov(points))
        # a filled ellipse with axes a, b has variances (a/4)^2, (b/4)^2 along them
        short_axis[index], long_axis[index] = 4 * np.sqrt(np.maximum(eigenvalues, 0))
        angle[index] = np.degrees(np.arccos(min(1.0, abs(float(eigenvectors[1, 1])))))
    return BodySections(area, long_axis, short_axis, angle, float(zooms[2]))


def csf_column_fraction(volume: np.ndarray, zooms: tuple[float, float, float]) -> tuple[float, str]:
    """Share of axial slices on the best CSF-column track, T2 contrast or inverted (T1w).

    Returns
    -------
    fraction : float
        Share of slices whose ring score is >= ``RING_SCORE`` (the better contrast).
    contrast : str
        ``"bright CSF"`` or ``"dark CSF"``.
    """
    zooms = np.asarray(zooms, dtype=float)
    step = np.maximum(1, np.floor(1.5 / zooms[:2])).astype(int)  # ~1.5 mm in-plane is enough here
    data = np.nan_to_num(np.asarray(volume, dtype=np.float32))[:: step[0], :: step[1], :]
    coarse = tuple(zooms * np.array([step[0], step[1], 1]))
    normalised = normalise_slices(data)
    inside = _deep_inside_body(data, coarse)
    best = (0.0, "bright CSF")
    for contrast, candidate in (("bright CSF", normalised), ("dark CSF", _inverted(normalised, data))):
        track = track_column(candidate, coarse, step_mm=max(2.0, coarse[2]))
        x, y = (np.clip(np.round(track.centres[:, axis]).astype(int), 0, data.shape[axis] - 1) for axis in (0, 1))
        # a cord lies inside the body, never at the skin: ring hits at the body's edge do not count
        fraction = float(np.mean((track.scores >= RING_SCORE) & inside[x, y, np.arange(data.shape[2])]))
        if fraction > best[0]:
            best = (fraction, contrast)
        if fraction >= MIN_RING_FRACTION:
            break
    return best


def _deep_inside_body(data: np.ndarray, zooms: tuple[float, float, float]) -> np.ndarray:
    """Voxels at least ``MIN_CORD_DEPTH_MM`` inside the body section of their slice (holes filled)."""
    body = data > 0.1 * float(np.percentile(data, 99))
    inside = np.zeros(body.shape, dtype=bool)
    for index in range(body.shape[2]):
        section = ndimage.binary_fill_holes(body[:, :, index])
        inside[:, :, index] = ndimage.distance_transform_edt(section, sampling=zooms[:2]) >= MIN_CORD_DEPTH_MM
    return inside


def _inverted(normalised: np.ndarray, data: np.ndarray) -> np.ndarray:
    """Inverted contrast inside the body (air stays dark), bright level ~1: dark CSF becomes bright."""
    body = data > 0.1 * float(np.percentile(data, 99))
    return np.where(body, np.clip(1.0 - normalised, 0.0, 1.0), 0.0).astype(np.float32)


def assess_body_part(image: nib.Nifti1Image | str | Path) -> BodyPartDecision:
    """Decide ``brain`` or ``cord`` from the image alone, with the evidence and whether it is sure.

    Parameters
    ----------
    image : Nifti1Image or path
        Any brain or spine scan (T2w, FLAIR, T1w, T2*w), any orientation and slice thickness,
        skull-stripped or not, native or template space.

    Returns
    -------
    BodyPartDecision
        ``confident`` is False (and :attr:`BodyPartDecision.warning` says why) when the
        evidence is weak, or when a cord is found inside a field of view with a head.

    Examples
    --------
    >>> decision = assess_body_part("sub-01_FLAIR.nii.gz")  # doctest: +SKIP
    >>> decision.body_part, decision.confident  # doctest: +SKIP
    ('brain', True)
    """
    canonical = to_canonical(check_niimg(image))
    zooms = _zooms(canonical)
    extent = np.asarray(canonical.shape[:3]) * zooms
    fov = f"field of view {extent[0]:.0f} x {extent[1]:.0f} x {extent[2]:.0f} mm (LR x AP x SI)"
    evidence: dict[str, float] = {"fov_lr_mm": float(extent[0]), "fov_ap_mm": float(extent[1]),
                                  "fov_si_mm": float(extent[2])}
    if extent[0] < MAX_CORD_FOV_LR_MM:
        return BodyPartDecision("cord", f"{fov}: narrower than a head ({MAX_CORD_FOV_LR_MM:.0f} mm) left-right",
                                True, evidence)
    data = np.nan_to_num(np.asarray(canonical.dataobj, dtype=np.float32).reshape(canonical.shape[:3]))
    sections = body_sections(data, tuple(zooms))
    head_mm, dome = sections.head_mm, sections.dome
    largest = int(np.argmax(sections.area_mm2)) if sections.area_mm2.size else 0
    evidence.update(head_mm=head_mm, dome=float(dome), top_share=sections.top_share,
                    largest_section_mm2=float(sections.area_mm2.max(initial=0.0)))
    body = (f"largest body section {sections.long_mm[largest]:.0f} x {sections.short_mm[largest]:.0f} mm; "
            f"head-shaped sections over {head_mm:.0f} mm; top {'closed' if dome else 'open'} "
            f"(top section {sections.top_share:.0%} of the largest)")
    if head_mm >= BRAIN_HEAD_MM or (dome and head_mm >= BRAIN_HEAD_MM_WITH_DOME):
        return BodyPartDecision("brain", f"{fov}; {body}: a head", True, evidence)
    if dome:  # a large body ending inside the field of view at the top: a vertex, never a spine
        return BodyPartDecision("brain", f"{fov}; {body}: closed like a head at the top, but few head-shaped "
                                "sections", False, evidence)
    ring_fraction, contrast = csf_column_fraction(data, tuple(zooms))
    evidence["ring_fraction"] = ring_fraction
    ring = f"{contrast} column around a cord in {ring_fraction:.0%} of axial slices"
    if ring_fraction >= MIN_RING_FRACTION:
        if head_mm > 0:
            return BodyPartDecision("cord", f"{fov}; {ring}, but {body}: a cord inside a head-sized field of view",
                                    False, evidence)
        return BodyPartDecision("cord", f"{fov}; {ring}; {body}", True, evidence)
    return BodyPartDecision("brain", f"{fov}; no head-shaped body and no CSF column ({ring}); {body}",
                            False, evidence)


def detect_body_part(image: nib.Nifti1Image | str | Path) -> tuple[str, str]:
    """Decide ``brain`` or ``cord`` from the image alone (:func:`assess_body_part` without the confidence).

    Parameters
    ----------
    image : Nifti1Image or path
        Any brain or spine scan.

    Returns
    -------
    body_part : str
        ``"brain"`` or ``"cord"``.
    reason : str
        How it was decided (for ``provenance.json``).

    Examples
    --------
    >>> detect_body_part("scan.nii.gz")  # doctest: +SKIP
    ('brain', 'field of view 182 x 218 x 182 mm (LR x AP x SI); ... a head')
    """
    decision = assess_body_part(image)
    return decision.body_part, decision.reason
