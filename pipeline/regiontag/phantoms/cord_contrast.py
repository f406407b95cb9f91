"""Tissue and lesion signal of the cord phantoms per contrast (T2w, STIR), relative to CSF."""

from __future__ import annotations

#: Relative T2 signal of each tissue (CSF = 1).
SIGNAL = {
    "csf": 1.0, "wm": 0.30, "gm": 0.37, "soft": 0.22, "bone": 0.14, "body": 0.30,
    "disc": 0.55, "fat": 0.62,
}
#: Lesion signal per type (SCD lesions are mildly, NMOSD lesions strongly hyperintense).
LESION_SIGNAL = {"dorsal": 0.56, "dorsal_lateral": 0.56, "lateral": 0.56, "central": 0.66, "eccentric": 0.60}
#: Relative STIR signal (CSF = 1): fat nulled (epidural fat, the marrow of vertebral bodies and arches dark),
#: cord a little brighter relative to CSF than on T2w, lesions brighter: STIR finds more cord MS lesions than
#: FSE T2 (cervical sensitivity 89.6 % against 50.9 %, Alcaide-Leon et al. 2016, AJNR 37:970,
#: doi:10.3174/ajnr.A4656). The signal values themselves are estimates, not measurements.
STIR_SIGNAL = {
    "csf": 1.0, "wm": 0.34, "gm": 0.41, "soft": 0.24, "bone": 0.07, "body": 0.12,
    "disc": 0.50, "fat": 0.05,
}
STIR_LESION_SIGNAL = {"dorsal": 0.66, "dorsal_lateral": 0.66, "lateral": 0.66, "central": 0.76, "eccentric": 0.70}
#: Tissue and lesion signal tables per phantom contrast.
CONTRASTS = {"T2w": (SIGNAL, LESION_SIGNAL), "STIR": (STIR_SIGNAL, STIR_LESION_SIGNAL)}
