"""Checks that catch a silent lesion-detection failure (part of the brain stage's sanity checks).

* nothing (or almost nothing) found although the white matter has a clearly
  bright tail: the detection reference or threshold failed;
* a white-matter reference as bright as grey matter on FLAIR / T2w: the
  "normal-appearing" white matter is diffusely abnormal (leukoencephalopathy)
  or the registered tissue priors do not fit the scan.

:func:`regiontag.brain.sanity.brain_warnings` adds these warnings to the
others; the stage puts the numbers behind them in its ``qc``.
"""

from __future__ import annotations

from typing import Any

import nibabel as nib
import numpy as np

from regiontag.config import DetectionConfig



def bright_tail_volume_ml(zmap: nib.Nifti1Image, search_mask: np.ndarray, config: DetectionConfig) -> float:
    """Volume (ml) of the search region whose z exceeds the sequence's detection threshold.

    Parameters
    ----------
    zmap : Nifti1Image
        A hyperintense sequence's z-map (:func:`regiontag.brain.lesions.robust_zmap`); its
        threshold is looked up by the sequence named in ``zmap.header['descrip']``
        or, by default, the FLAIR threshold.
    search_mask : ndarray of bool
    config : DetectionConfig

    Returns
    -------
    float

    Examples
    --------
    >>> z = np.zeros((10, 10, 10), np.float32); z[:5] = 9.0
    >>> bright_tail_volume_ml(nib.Nifti1Image(z, np.eye(4)), np.ones(z.shape, bool), DetectionConfig())
    0.5
    """
    z = np.asarray(zmap.dataobj, dtype=np.float32)
    threshold = config.z_threshold.get("FLAIR", 3.0)
    voxel_ml = float(abs(np.linalg.det(zmap.affine[:3, :3]))) / 1000.0
    return float(np.count_nonzero((z > threshold) & search_mask) * voxel_ml)


def detection_warnings(qc: dict[str, Any], config: DetectionConfig) -> list[str]:
    """Checks that catch a silent lesion-detection failure.

    * almost nothing found (``lesion_volume_ml`` below a tenth of the bright
      tail) where the white matter has a bright tail of at least
      ``config.bright_tail_min_ml`` (``qc["bright_white_matter_tail_ml"]``, per sequence);
    * a white-matter reference as bright as grey matter (``wm_reference_from_gm``
      in ``qc["intensity_stats"]``).

    Parameters
    ----------
    qc : dict
        The brain stage's ``qc``; missing keys skip their check.
    config : DetectionConfig

    Returns
    -------
    list of str

    Examples
    --------
    >>> qc = {"lesion_volume_ml": 0.0, "bright_white_matter_tail_ml": {"FLAIR": 12.0}}
    >>> detection_warnings(qc, DetectionConfig())[0][:40]
    '0.0 ml of lesion found although 12.0 ml '
    """
    warnings = []
    found = float(qc.get("lesion_volume_ml", float("nan")))
    for sequence, tail_ml in sorted((qc.get("bright_white_matter_tail_ml") or {}).items()):
        if tail_ml >= config.bright_tail_min_ml and found < 0.1 * tail_ml:
            warnings.append(
                f"{found:.1f} ml of lesion found although {tail_ml:.1f} ml of white matter is brighter than the "
                f"{sequence} detection threshold (silent detection failure? check lesion_zmap.nii.gz)")
            break
    for sequence, stats in sorted((qc.get("intensity_stats") or {}).items()):
        if stats.get("wm_reference_from_gm"):
            warnings.append(
                f"{sequence}: the white-matter reference is as bright as grey matter (WM/GM "
                f"{stats.get('wm_gm_ratio', float('nan')):.2f}); normal white matter was taken as "
                f"{config.normal_wm_gm_ratio:g} x grey matter (diffuse white-matter disease, or tissue priors "
                "that do not fit this scan)")
    return warnings
