"""Cord phantom signal tables (``regiontag.phantoms.cord_contrast``): every contrast describes every tissue."""

from __future__ import annotations

from regiontag.phantoms.cord import LESION_TYPES
from regiontag.phantoms.cord_contrast import CONTRASTS


def test_every_contrast_has_every_tissue_and_lesion_type():
    tissues = set(CONTRASTS["T2w"][0])
    for name, (signal, lesion_signal) in CONTRASTS.items():
        assert set(signal) == tissues, name
        assert set(lesion_signal) == set(LESION_TYPES) - {"healthy"}, name
        assert signal["csf"] == max(signal.values()), name  # CSF brightest: T2-like polarity
        assert all(signal["wm"] < value < signal["csf"] for value in lesion_signal.values()), name


def test_stir_nulls_fat_and_marrow():
    t2, stir = CONTRASTS["T2w"][0], CONTRASTS["STIR"][0]
    for tissue in ("fat", "body", "bone"):
        assert stir[tissue] / stir["wm"] < t2[tissue] / t2["wm"], tissue
