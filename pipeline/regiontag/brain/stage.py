"""The brain stage: preprocess, register to MNI152, detect hyperintensities, tag regions.

``process_brain`` is the only function here that chains stages; each step is
a function of the modules it calls. Inside, images are canonical (RAS+) on
the reference scan's own voxel grid; outputs go back to the input's space.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

import nibabel as nib
import numpy as np
from scipy import ndimage

from regiontag import outputs
from regiontag.atlas.brain import load_brain_atlas
from regiontag.atlas.involvement import region_table
from regiontag.atlas.tree import Atlas
from regiontag.brain import sanity
from regiontag.brain.detection_qc import bright_tail_volume_ml
from regiontag.brain.lesions import detect_lesions, HYPERINTENSE_SEQUENCES, robust_zmap, tissue_neighbourhood
from regiontag.brain.preprocess import bias_correct, initial_brain_mask, is_skull_stripped
from regiontag.brain.registration import (
    coregister,
    register_to_template,
    Registration,
    set_itk_threads,
    warp_to_template,
    working_grid,
)
from regiontag.brain.sanity import left_right_evidence
from regiontag.brain.warps import template_box_of_mask, template_point_mapper, warp_to_subject
from regiontag.brain.templates import load_template, TEMPLATE_SPACE, tissue_maps
from regiontag.stage import stage_reached
from regiontag.config import Config
from regiontag.niimg import check_niimg, new_image_like, to_canonical, to_input_space, voxel_volume_ml
from regiontag.stage import StageOutput

LOGGER = logging.getLogger("regiontag.brain")
#: Sequences whose intensities the stage reads (z-maps): hyperintensity and enhancement.
INTENSITY_SEQUENCES = (*HYPERINTENSE_SEQUENCES, "T1w_ce")

#: Sequences on which the white-matter / grey-matter ratio test of ``robust_zmap`` applies. Only FLAIR:
#: on real T2w scans the measured WM/GM peak ratio is 0.95-1.07 in mostly normal brains (partial volume
#: of the registered grey-matter prior with CSF), too close to a diffuse abnormality to tell.
GREY_BRIGHTER_THAN_WHITE = ("FLAIR",)

#: Regions where hyperintensities are not searched (cortex, except its border with white matter, and CSF spaces).
CEREBRAL_CORTEX = "Cerebrum > Cerebral cortex"
EXCLUDED_FROM_SEARCH = (CEREBRAL_CORTEX, "Cerebellum > Cerebellar cortex", "Ventricles")


@lru_cache(maxsize=1)
def brain_atlas() -> Atlas:
    """The composite brain atlas (built once, cached on disk and in memory)."""
    return load_brain_atlas()


def choose_reference(sequences: list[str], config: Config) -> str:
    """The sequence registered to the template: first of ``discovery.reference_order`` present."""
    for sequence in config.discovery.reference_order:
        if sequence in sequences:
            return sequence
    raise ValueError(f"no usable sequence among {sorted(sequences)}")


def _skull_stripped(image: nib.Nifti1Image, config: Config) -> bool:
    setting = config.preprocessing.skull_stripped
    return is_skull_stripped(image) if setting == "auto" else setting == "yes"


def prepare_reference(image: nib.Nifti1Image, config: Config) -> tuple[nib.Nifti1Image, np.ndarray, dict]:
    """Canonical, brain-masked, bias-corrected reference image and its initial mask."""
    set_itk_threads(config.registration)  # before the first ITK call (N4): results depend on it
    canonical = to_canonical(image)
    canonical = nib.Nifti1Image(np.asarray(canonical.dataobj, dtype=np.float32), canonical.affine)
    stripped = _skull_stripped(canonical, config)
    mask_img = initial_brain_mask(canonical, stripped)
    corrected = bias_correct(canonical, mask_img, config.preprocessing)
    mask = np.asarray(mask_img.dataobj) > 0
    masked = new_image_like(np.where(mask, np.asarray(corrected.dataobj, dtype=np.float32), 0), corrected)
    return masked, mask, {"skull_stripped": stripped}


def atlas_labels_for_image(
    image: nib.Nifti1Image | str | Path, config: Config, workdir: Path, sequence: str = "FLAIR"
) -> tuple[nib.Nifti1Image, dict[str, Any]]:
    """Atlas leaf labels in the space of ``image`` (registers it to MNI152); for external masks."""
    original = check_niimg(image)
    reference, mask, qc = prepare_reference(original, config)
    registration = _register(reference, sequence, config, Path(workdir) / outputs.TRANSFORMS_DIR)
    labels = warp_to_subject(brain_atlas().labels_img, reference, registration, "genericLabel")
    labels = new_image_like(np.asarray(labels.dataobj).astype(np.int16), reference)
    qc["registration_quality"] = registration.quality
    return to_input_space(labels, original, order=0), qc


def _register(reference: nib.Nifti1Image, sequence: str, config: Config, transforms_dir: Path, *,
              reference_working=None) -> Registration:
    template = load_template(sequence, config.registration.resolution_mm)
    template_mask = load_template("T1w", config.registration.resolution_mm)
    template_mask = nib.Nifti1Image((np.asarray(template_mask.dataobj) > 0).astype(np.float32), template.affine)
    return register_to_template(reference, template, template_mask, config.registration, transforms_dir,
                                image_working=reference_working)


def _tissue_in_subject(reference: nib.Nifti1Image, registration: Registration) -> dict[str, np.ndarray]:
    maps = tissue_maps()
    return {
        name: np.clip(np.asarray(warp_to_subject(image, reference, registration, "linear").dataobj), 0, 1)
        for name, image in (("csf", maps.csf), ("gm", maps.gm), ("wm", maps.wm))
    }


def _search_mask(labels: np.ndarray, brain: np.ndarray, tissue: dict[str, np.ndarray], config: Config,
                 *, zooms: tuple[float, ...]) -> np.ndarray:
    atlas = brain_atlas()
    excluded = [value for path in EXCLUDED_FROM_SEARCH for value in atlas.region(path).label_values()]
    search = brain & ~np.isin(labels, excluded) & (labels > 0)
    if config.detection.juxtacortical_search_mm > 0:  # cortex labels that border white matter (juxtacortical)
        cortex = np.isin(labels, atlas.region(CEREBRAL_CORTEX).label_values())
        search |= brain & cortex & tissue_neighbourhood(tissue["wm"], zooms, config.detection.juxtacortical_search_mm,
                                                         threshold=0.5)
    return search & (tissue["csf"] < config.detection.csf_exclusion_probability)


def _features(zmaps: dict, lesion: np.ndarray, table, largest_cluster_ml: float, config: Config) -> dict:
    def mean_z(sequence: str) -> float | None:
        if sequence not in zmaps or not lesion.any():
            return None
        return float(np.asarray(zmaps[sequence].dataobj)[lesion].mean())

    dwi_z, ce_z = mean_z("DWI"), mean_z("T1w_ce")
    cerebral = table[(table["region"] == "Cerebrum > Cerebral white matter") & (table["side"] == "both")]
    laterality = float(cerebral["laterality_index"].iloc[0]) if len(cerebral) else float("nan")
    return {
        "restricted_diffusion": None if "DWI" not in zmaps else bool(dwi_z is not None and dwi_z > config.detection.z_threshold["DWI"]),
        "enhancement": None if "T1w_ce" not in zmaps else bool(ce_z is not None and ce_z > config.detection.z_threshold["T1w_ce"]),
        "confluent": bool(largest_cluster_ml >= config.involvement.confluent_min_ml),
        "symmetric_white_matter": None if not np.isfinite(laterality) else bool(
            abs(laterality) <= config.involvement.symmetric_max_laterality),
    }


def _sanity_warnings(qc: dict, config: Config, flip_evidence: list | None = None) -> list[str]:
    """One-line warnings of ``regiontag.brain.sanity`` (quality, volume, burden, left/right)."""
    return sanity.brain_warnings(qc, config) + sanity.flip_warnings(flip_evidence or [], config.registration)


@dataclass
class BrainSpace:
    """A brain session brought onto its reference grid: what lesion detection needs.

    Attributes
    ----------
    reference_sequence : str
    original : Nifti1Image
        The reference scan as given (input space; outputs go back to it).
    reference : Nifti1Image
        Canonical, brain-masked, bias-corrected reference scan.
    aligned : dict
        Sequence -> image on the reference grid (the reference itself included).
    coregistered : dict
        Other sequence -> its canonical image as stored, before co-registration (for the left/right check).
    registration : Registration
    labels : ndarray of int16
        Atlas leaf labels on the reference grid.
    brain : ndarray of bool
    tissue : dict
        ``{"csf", "gm", "wm"}`` registered template probabilities on the reference grid.
    qc, timings : dict
    """

    reference_sequence: str
    original: nib.Nifti1Image
    reference: nib.Nifti1Image
    aligned: dict[str, nib.Nifti1Image]
    coregistered: dict[str, nib.Nifti1Image]
    registration: Registration
    labels: np.ndarray
    brain: np.ndarray
    tissue: dict[str, np.ndarray]
    qc: dict = field(default_factory=dict)
    timings: dict = field(default_factory=dict)


def register_session(images: dict[str, nib.Nifti1Image], config: Config, session_dir: Path) -> BrainSpace:
    """Preprocess, register the reference scan to MNI152 and co-register the other sequences.

    Parameters
    ----------
    images : dict
        Sequence -> validated image (input space).
    config : Config
    session_dir : Path
        Session output folder (transforms are stored in ``transforms/``).

    Returns
    -------
    BrainSpace
    """
    timings: dict[str, float] = {}
    clock = time.perf_counter()
    reference_sequence = choose_reference(list(images), config)
    original = images[reference_sequence]
    reference, initial_mask, qc = prepare_reference(original, config)
    timings["preprocess"] = time.perf_counter() - clock

    clock = time.perf_counter()
    stage_reached("register")
    reference_working = working_grid(reference, config.registration)  # shared with the co-registrations
    registration = _register(reference, reference_sequence, config, Path(session_dir) / outputs.TRANSFORMS_DIR,
                             reference_working=reference_working)
    atlas = brain_atlas()
    labels = np.asarray(warp_to_subject(atlas.labels_img, reference, registration, "genericLabel").dataobj)
    labels = labels.round().astype(np.int16)
    template_mask = warp_to_subject(tissue_maps().brain_mask, reference, registration, "linear")
    brain = (np.asarray(template_mask.dataobj) > 0.5) & initial_mask
    tissue = _tissue_in_subject(reference, registration)
    timings["registration"] = time.perf_counter() - clock

    clock = time.perf_counter()
    aligned, coregistered = {}, {}
    brain_img = new_image_like(brain.astype(np.uint8), reference)
    for sequence, image in images.items():
        if sequence == reference_sequence:
            aligned[sequence] = reference
            continue
        canonical = to_canonical(image)
        moving = nib.Nifti1Image(np.asarray(canonical.dataobj, np.float32), canonical.affine)
        # rigid, mutual information: indifferent to a smooth bias, so N4 comes after, on the reference grid
        aligned[sequence] = coregister(moving, reference, config.registration, fixed_working=reference_working)
        if sequence in INTENSITY_SEQUENCES:
            # only sequences whose intensities are read need N4 (a plain T1w serves the left/right check
            # and the outputs); the field is fitted inside the registered brain mask, as the reference's is
            aligned[sequence] = bias_correct(aligned[sequence], brain_img, config.preprocessing)
        coregistered[sequence] = moving
    timings["coregistration"] = time.perf_counter() - clock
    return BrainSpace(reference_sequence, original, reference, aligned, coregistered, registration, labels, brain,
                      tissue, qc, timings)


def _lesions_in_template(lesion_img: nib.Nifti1Image, template: nib.Nifti1Image, registration: Registration,
                         to_template: Callable[[np.ndarray], np.ndarray]) -> nib.Nifti1Image:
    """The lesion mask on the template grid (ANTs linear warp > 0.5), computed only around the lesions."""
    lesion = np.asarray(lesion_img.dataobj) > 0
    if not lesion.any():
        return nib.Nifti1Image(np.zeros(template.shape[:3], np.uint8), template.affine)
    zooms = np.asarray(lesion_img.header.get_zooms()[:3], dtype=float)
    # a template voxel takes lesion only within one subject voxel of a lesion voxel (linear interpolation)
    box = template_box_of_mask(lesion, lesion_img.affine, to_template, template,
                               pad_mm=4.0 * float(zooms.max()) + 4.0)
    warped = warp_to_template(lesion_img, template, registration, "linear", box=box)
    return nib.Nifti1Image((np.asarray(warped.dataobj) > 0.5).astype(np.uint8), template.affine)


def process_brain(images: dict[str, nib.Nifti1Image], config: Config, session_dir: Path) -> StageOutput:
    """Run the brain stage on one session's brain scans.

    Parameters
    ----------
    images : dict
        Sequence -> validated image (input space).
    config : Config
    session_dir : Path
        Session output folder (transforms are stored in ``transforms/``).

    Returns
    -------
    StageOutput
    """
    return detect_in_space(register_session(images, config, session_dir), config)


def detect_in_space(space: BrainSpace, config: Config) -> StageOutput:
    """Lesion detection, region tagging and sanity checks of a registered session (:func:`register_session`)."""
    timings, qc = dict(space.timings), dict(space.qc)
    reference, reference_sequence, original = space.reference, space.reference_sequence, space.original
    registration, labels, brain, tissue = space.registration, space.labels, space.brain, space.tissue
    stage_reached("detect")
    atlas = brain_atlas()
    clock = time.perf_counter()
    zmaps, zstats = {}, {}
    zooms = tuple(float(z) for z in reference.header.get_zooms()[:3])
    for sequence, aligned in space.aligned.items():
        if sequence in INTENSITY_SEQUENCES:
            zmaps[sequence], zstats[sequence] = robust_zmap(
                aligned, tissue, brain, nawm_erosion_mm=config.detection.nawm_erosion_mm,
                grey_matter_margin_mm=config.detection.grey_matter_margin_mm,
                max_wm_gm_ratio=config.detection.max_wm_gm_ratio,
                normal_wm_gm_ratio=config.detection.normal_wm_gm_ratio,
                white_darker_than_grey=sequence in GREY_BRIGHTER_THAN_WHITE)
    search = _search_mask(labels, brain, tissue, config, zooms=zooms)
    detection_maps = {seq: z for seq, z in zmaps.items() if seq in HYPERINTENSE_SEQUENCES}
    diffuse = {seq for seq in detection_maps if zstats[seq].get("wm_reference_from_gm")}
    lesion_img, combined_z, n_lesions = detect_lesions(detection_maps, search, config.detection, diffuse=diffuse)
    lesion = np.asarray(lesion_img.dataobj) > 0
    timings["detection"] = time.perf_counter() - clock

    labels_img = new_image_like(labels, reference)
    stage_reached("tag")
    table = region_table(lesion_img, labels_img, atlas, combined_z, config.involvement)
    voxel_ml = voxel_volume_ml(reference)
    clusters, count = ndimage.label(lesion, structure=np.ones((3, 3, 3), bool))
    largest_ml = float(np.bincount(clusters.ravel())[1:].max() * voxel_ml) if count else 0.0
    white_matter_search = search & (tissue["wm"] >= 0.5)
    qc.update({
        "reference_sequence": reference_sequence,
        "template": f"{TEMPLATE_SPACE} ({reference_sequence}-contrast, {config.registration.resolution_mm:g} mm)",
        "registration_quality": registration.quality,
        "brain_volume_ml": float(brain.sum() * voxel_ml),
        "lesion_burden_fraction": float(lesion.sum() / max(brain.sum(), 1)),
        "lesion_volume_ml": float(lesion.sum() * voxel_ml),
        "intensity_stats": zstats,
        "bright_white_matter_tail_ml": {
            seq: bright_tail_volume_ml(z, white_matter_search, config.detection) for seq, z in detection_maps.items()},
        "timings": timings,
        "atlas": {"name": atlas.name, "space": atlas.space, "sha256": atlas.sha256},
    })
    flip_evidence = []
    if config.registration.flip_check:
        clock = time.perf_counter()
        flip_evidence = left_right_evidence(
            reference, reference_sequence, registration.forward, space.coregistered, config.registration,
            aligned=space.aligned)
        qc["left_right"] = [item.to_dict() for item in flip_evidence]
        timings["left_right_check"] = time.perf_counter() - clock
    to_template = template_point_mapper(registration, reference, atlas.labels_img)
    lesion_template = _lesions_in_template(lesion_img, atlas.labels_img, registration, to_template)
    back = lambda image, order=0: to_input_space(image, original, order=order)  # noqa: E731
    return StageOutput(
        region_table=table,
        images={
            outputs.LESIONS_NII: back(lesion_img),
            outputs.ZMAP_NII: back(combined_z, order=1),
            outputs.ATLAS_LABELS_NII: back(labels_img),
            outputs.BRAIN_MASK_NII: back(new_image_like(brain.astype(np.uint8), reference)),
            outputs.LESIONS_MNI_NII: lesion_template,
        },
        files=dict(registration.files),
        tables={outputs.ATLAS_LABELS_TSV: outputs.label_table(atlas.leaf_names)},
        findings={
            "lesion_volume_ml": float(lesion.sum() * voxel_ml),
            "n_lesions": n_lesions,
            "features": _features(zmaps, lesion, table, largest_ml, config),
        },
        warnings=_sanity_warnings(qc, config, flip_evidence),
        qc=qc,
        to_template=to_template,
    )
