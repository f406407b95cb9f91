"""The parametric spinal cord cross-section in normalised cord coordinates.

Coordinates: ``u`` in [-1, 1] left -> right (subject right = +1), ``v`` in
[-1, 1] posterior -> anterior; the cord outline is the unit circle (see
``regiontag.atlas.cord_frames``).  The model is drawn for the right half
(``|u|``) and mirrored:

* **grey matter** = union of a central body (ellipse centred ``(0, body_v)``),
  a ventral horn per side (rotated ellipse centred ``(vh_u, vh_v)``) and a
  dorsal horn per side (tapered capsule from ``(dh_u0, dh_v0)`` to
  ``(dh_u1, dh_v1)``, half-widths ``dh_w0`` -> ``dh_w1``); inside it a
  **central canal region** (disk at ``(0, body_v)``, radius ``canal_r``); the
  rest of the grey matter is dorsal horn posterior to ``horn_split_v`` and
  ventral horn anterior to it.
* **white matter** = the rest of the disk, split into columns by lines:
  **posterior column** = medial to the line from ``(pc_u_top, pc_top_v)`` to
  ``(pc_u_bottom, -1)`` and posterior to ``pc_top_v``; within it the
  **fasciculus gracilis** is medial to the line ``(gc_u_top, pc_top_v)`` ->
  ``(gc_u_bottom, -1)`` and the **fasciculus cuneatus** lateral to it (only at
  levels that have a cuneatus); **anterior column** = anterior to the line
  ``v = ac_v0 + ac_slope * |u|``; **lateral column** = the rest.

The same function gives hard labels (atlas generation) and soft memberships
(sigmoid of signed distances, for fitting against PAM50).
"""

from __future__ import annotations

import numpy as np

#: Geometry parameters, in the order used by the calibration optimiser, with (low, high) bounds.
GEOMETRY_BOUNDS: dict[str, tuple[float, float]] = {
    "body_v": (-0.5, 0.5),
    "body_ru": (0.05, 0.8),
    "body_rv": (0.05, 0.8),
    "vh_u": (0.05, 0.8),
    "vh_v": (-0.3, 0.9),
    "vh_ru": (0.03, 0.6),
    "vh_rv": (0.03, 0.6),
    "vh_rot": (-1.2, 1.2),
    "dh_u0": (0.0, 0.8),
    "dh_v0": (-0.6, 0.5),
    "dh_u1": (0.05, 0.95),
    "dh_v1": (-1.0, -0.2),
    "dh_w0": (0.02, 0.4),
    "dh_w1": (0.01, 0.3),
    "pc_top_v": (-0.6, 0.5),
    "pc_u_top": (0.0, 0.6),
    "pc_u_bottom": (0.05, 0.95),
    "gc_u_top": (0.0, 0.5),
    "gc_u_bottom": (0.0, 0.8),
    "ac_v0": (-0.2, 0.9),
    "ac_slope": (-1.0, 1.0),
    "horn_split_v": (-0.6, 0.6),
}
#: Parameters shared by all levels and not fitted (PAM50 has no central canal label), with bounds.
FIXED_BOUNDS: dict[str, tuple[float, float]] = {
    "canal_r": (0.0, 0.3),
}

# leaf kinds, in the order of the class index returned by ``leaf_kinds``
GRACILIS, CUNEATUS, LATERAL, ANTERIOR, DORSAL_HORN, VENTRAL_HORN, CENTRAL_CANAL = range(7)
LEAF_KINDS = (
    "Fasciculus gracilis",
    "Fasciculus cuneatus",
    "Lateral column",
    "Anterior column",
    "Dorsal horn",
    "Ventral horn",
    "Central canal region",
)
#: Combined classes (as PAM50's): dorsal columns, lateral funiculi, ventral funiculi, grey matter.
KIND_TO_COMBINED = np.array([0, 0, 1, 2, 3, 3, 3])


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def _ellipse_distance(u, v, cu, cv, ru, rv, rot=0.0):
    """Approximate signed distance to an ellipse boundary (positive inside)."""
    cos_r, sin_r = np.cos(rot), np.sin(rot)
    du, dv = u - cu, v - cv
    a = (cos_r * du + sin_r * dv) / ru
    b = (-sin_r * du + cos_r * dv) / rv
    return (1.0 - np.hypot(a, b)) * min(ru, rv)


def _capsule_distance(u, v, u0, v0, u1, v1, w0, w1):
    """Signed distance to a tapered capsule (segment with linearly varying half-width), positive inside."""
    du, dv = u1 - u0, v1 - v0
    length2 = max(du * du + dv * dv, 1e-12)
    t = np.clip(((u - u0) * du + (v - v0) * dv) / length2, 0.0, 1.0)
    distance = np.hypot(u - (u0 + t * du), v - (v0 + t * dv))
    return w0 + t * (w1 - w0) - distance


def _line_u(v, top_v, u_top, u_bottom):
    """u of the line through ``(u_top, top_v)`` and ``(u_bottom, -1)`` at height ``v``."""
    span = max(top_v + 1.0, 1e-6)
    return u_top + (top_v - v) / span * (u_bottom - u_top)


def signed_distances(u: np.ndarray, v: np.ndarray, g: dict[str, float]) -> dict[str, np.ndarray]:
    """Signed distances (positive = inside / medial / anterior) of the model's parts at ``(u, v)``."""
    au = np.abs(u)
    grey = np.maximum.reduce(
        [
            _ellipse_distance(au, v, 0.0, g["body_v"], g["body_ru"], g["body_rv"]),
            _ellipse_distance(au, v, g["vh_u"], g["vh_v"], g["vh_ru"], g["vh_rv"], g["vh_rot"]),
            _capsule_distance(au, v, g["dh_u0"], g["dh_v0"], g["dh_u1"], g["dh_v1"], g["dh_w0"], g["dh_w1"]),
        ]
    )
    return {
        "grey": grey,
        "posterior": np.minimum(_line_u(v, g["pc_top_v"], g["pc_u_top"], g["pc_u_bottom"]) - au, g["pc_top_v"] - v),
        "gracilis": _line_u(v, g["pc_top_v"], g["gc_u_top"], g["gc_u_bottom"]) - au,
        "anterior": v - (g["ac_v0"] + g["ac_slope"] * au),
        "canal": g.get("canal_r", 0.0) - np.hypot(u, v - g["body_v"]),
        "dorsal": g["horn_split_v"] - v,
    }


def leaf_kinds(u: np.ndarray, v: np.ndarray, geometry: dict[str, float], with_cuneatus: bool = True) -> np.ndarray:
    """Hard leaf kind (index into ``LEAF_KINDS``) at each ``(u, v)``; the side is ``sign(u)``.

    Parameters
    ----------
    u, v : numpy.ndarray
        Normalised cord coordinates (same shape).
    geometry : dict
        Parameters named in ``GEOMETRY_BOUNDS`` and ``FIXED_BOUNDS``.
    with_cuneatus : bool
        False below the cuneatus (the whole posterior column is gracilis).

    Returns
    -------
    numpy.ndarray
        int8 array of kinds.
    """
    d = signed_distances(np.asarray(u, float), np.asarray(v, float), geometry)
    kinds = np.full(np.shape(u), LATERAL, dtype=np.int8)
    kinds[d["anterior"] > 0] = ANTERIOR
    posterior = d["posterior"] > 0
    gracilis = (d["gracilis"] > 0) | (not with_cuneatus)
    kinds[posterior & gracilis] = GRACILIS
    kinds[posterior & ~gracilis] = CUNEATUS
    grey = d["grey"] > 0
    kinds[grey & (d["dorsal"] > 0)] = DORSAL_HORN
    kinds[grey & (d["dorsal"] <= 0)] = VENTRAL_HORN
    kinds[grey & (d["canal"] > 0)] = CENTRAL_CANAL
    return kinds


def soft_combined(u: np.ndarray, v: np.ndarray, geometry: dict[str, float], sharpness: float) -> np.ndarray:
    """Soft memberships ``(4, ...)`` of the combined classes (dorsal, lateral, ventral, grey); they sum to 1."""
    d = signed_distances(u, v, geometry)
    grey = _sigmoid(sharpness * d["grey"])
    white = 1.0 - grey
    posterior = _sigmoid(sharpness * d["posterior"])
    anterior = _sigmoid(sharpness * d["anterior"]) * (1.0 - posterior)
    lateral = 1.0 - posterior - anterior
    return np.stack([white * posterior, white * lateral, white * anterior, grey])


def soft_gracilis(u: np.ndarray, v: np.ndarray, geometry: dict[str, float], sharpness: float) -> np.ndarray:
    """Soft membership of the gracilis side of the gracilis/cuneatus line."""
    return _sigmoid(sharpness * signed_distances(u, v, geometry)["gracilis"])
