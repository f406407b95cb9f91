"""Fit the parametric cord cross-section (``cord_geometry``) to PAM50, level by level.

For each vertebral level, the PAM50 cord voxels of that level get cord
coordinates ``(u, v)`` exactly as a subject's cord would
(``regiontag.atlas.cord_frames``), and PAM50's combined labels (dorsal columns,
lateral funiculi, ventral funiculi, grey matter: argmax of summed tract
probabilities).  The geometry is fitted in three steps:

1. the four-class outline parameters maximise the mean soft Dice (Powell,
   sigmoid edges sharpened from 20 to 60 per unit) minus a small quadratic pull
   toward the starting geometry;
2. the gracilis/cuneatus line maximises the Dice of PAM50 tracts 0-1 vs 2-3
   inside the dorsal columns;
3. ``horn_split_v`` maximises the Dice of PAM50's dorsal horn (34-35) inside
   the grey matter.

The default level is fitted first from a hand-drawn start; the others start
from the nearest level already fitted.  Reported Dice values are hard-label
Dice on the PAM50 voxels, the same measure as ``tests/test_atlas_cord.py``.
"""

from __future__ import annotations

import argparse

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml
from scipy import optimize

from regiontag.atlas.cord_spec import level_name, level_number, load_cord_spec
from regiontag.atlas.cord_geometry import GEOMETRY_BOUNDS, KIND_TO_COMBINED, leaf_kinds, soft_combined, soft_gracilis
from regiontag.atlas.pam50.files import COMBINED_CLASSES, Pam50, combined_labels, pam50_frames, read_pam50, tract_labels
from regiontag.atlas.cord_frames import CordFrames

#: Hand-drawn starting geometry (mid-cervical cord).
START_GEOMETRY = {
    "body_v": 0.1, "body_ru": 0.45, "body_rv": 0.3,
    "vh_u": 0.35, "vh_v": 0.45, "vh_ru": 0.15, "vh_rv": 0.15, "vh_rot": 0.0,
    "dh_u0": 0.25, "dh_v0": -0.05, "dh_u1": 0.45, "dh_v1": -0.8, "dh_w0": 0.12, "dh_w1": 0.06,
    "pc_top_v": -0.05, "pc_u_top": 0.05, "pc_u_bottom": 0.45,
    "gc_u_top": 0.02, "gc_u_bottom": 0.15, "ac_v0": 0.5, "ac_slope": 0.0, "horn_split_v": 0.1,
}  # fmt: skip
_OUTLINE = [name for name in GEOMETRY_BOUNDS if not name.startswith("gc_") and name != "horn_split_v"]
CLASS_NAMES = list(COMBINED_CLASSES)
#: Weight of the pull toward the starting geometry (see ``fit_level``).
PENALTY = 0.05


@dataclass
class LevelSamples:
    """PAM50 cord voxels of one level in cord coordinates with their reference labels."""

    u: np.ndarray
    v: np.ndarray
    combined: np.ndarray  # 1..4 in COMBINED_CLASSES order
    tract: np.ndarray  # PAM50 tract id (0..35)


@dataclass
class Calibration:
    """Fitted geometry per level and its Dice against PAM50."""

    geometry: dict[str, dict[str, float]] = field(default_factory=dict)
    dice: dict[str, dict[str, float]] = field(default_factory=dict)
    source_commit: str = ""
    source: str = ""


def level_samples(pam: Pam50, frames: CordFrames, level: int) -> LevelSamples:
    """Cord voxels of the slices of ``level`` with u, v and PAM50 labels."""
    combined = combined_labels(pam)
    tracts = tract_labels(pam) - 1
    us, vs, cs, ts = [], [], [], []
    affine = pam.affine
    for k in pam.level_slices(level):
        if k not in frames.slices:
            continue
        ii, jj = np.nonzero(pam.cord[:, :, k])
        x_mm = affine[0, 0] * ii + affine[0, 1] * jj + affine[0, 2] * k + affine[0, 3]
        y_mm = affine[1, 0] * ii + affine[1, 1] * jj + affine[1, 2] * k + affine[1, 3]
        u, v = frames.to_cord(frames.row_of(int(k)), x_mm, y_mm)
        us.append(u)
        vs.append(v)
        cs.append(combined[ii, jj, k])
        ts.append(tracts[ii, jj, k])
    if not us:
        raise ValueError(f"PAM50 has no cord slices at level {level_name(level)}")
    return LevelSamples(np.concatenate(us), np.concatenate(vs), np.concatenate(cs), np.concatenate(ts))


def _soft_dice(membership: np.ndarray, onehot: np.ndarray) -> np.ndarray:
    return 2 * (membership * onehot).sum(axis=-1) / (membership.sum(axis=-1) + onehot.sum(axis=-1) + 1e-9)


def hard_dice(geometry: dict[str, float], samples: LevelSamples) -> dict[str, float]:
    """Dice per combined class between the hard model labels and PAM50 at the samples."""
    ours = KIND_TO_COMBINED[leaf_kinds(samples.u, samples.v, geometry)] + 1
    out = {}
    for index, name in enumerate(CLASS_NAMES, start=1):
        a, b = ours == index, samples.combined == index
        out[name] = float(2 * (a & b).sum() / max(a.sum() + b.sum(), 1))
    return out


def fit_level(
    samples: LevelSamples,
    start: dict[str, float],
    fixed: dict[str, float],
    penalty: float = PENALTY,
    max_evaluations: int = 6000,
) -> dict[str, float]:
    """Fit the geometry of one level (three steps, see the module docstring).

    ``penalty`` weighs a quadratic pull of the outline parameters (relative to their
    bound ranges) toward ``start``: it settles parameters the Dice does not determine
    (overlapping shapes) and keeps neighbouring levels alike.
    """
    geometry = {**start, **fixed}
    onehot = np.stack([samples.combined == c for c in range(1, 5)]).astype(float)

    x = np.array([geometry[name] for name in _OUTLINE])
    bounds = [GEOMETRY_BOUNDS[name] for name in _OUTLINE]
    start_x, spans = x.copy(), np.array([high - low for low, high in bounds])

    def outline_loss(x: np.ndarray, sharpness: float) -> float:
        trial = {**geometry, **dict(zip(_OUTLINE, x))}
        dice = _soft_dice(soft_combined(samples.u, samples.v, trial, sharpness), onehot).mean()
        return 1.0 - float(dice) + penalty * float(np.sum(((x - start_x) / spans) ** 2))

    for sharpness in (20.0, 60.0):
        result = optimize.minimize(
            outline_loss, x, args=(sharpness,), method="Powell", bounds=bounds,
            options={"maxfev": max_evaluations, "xtol": 1e-3, "ftol": 1e-5},
        )  # fmt: skip
        x = result.x
    geometry.update(dict(zip(_OUTLINE, map(float, x))))

    dorsal = samples.combined == 1
    if dorsal.any():
        u, v = samples.u[dorsal], samples.v[dorsal]
        target = np.isin(samples.tract[dorsal], (0, 1)).astype(float)

        def gracilis_loss(x: np.ndarray) -> float:
            member = soft_gracilis(u, v, {**geometry, "gc_u_top": x[0], "gc_u_bottom": x[1]}, 60.0)
            return 1.0 - 0.5 * float(_soft_dice(member, target) + _soft_dice(1 - member, 1 - target))

        names = ("gc_u_top", "gc_u_bottom")
        result = optimize.minimize(
            gracilis_loss, [geometry[n] for n in names], method="Powell",
            bounds=[GEOMETRY_BOUNDS[n] for n in names], options={"xtol": 1e-3},
        )  # fmt: skip
        geometry.update(dict(zip(names, map(float, result.x))))

    grey = samples.combined == 4
    if grey.any():
        v = samples.v[grey]
        target = np.isin(samples.tract[grey], (34, 35))
        candidates = np.linspace(*GEOMETRY_BOUNDS["horn_split_v"], 121)
        scores = [2 * ((v < c) & target).sum() / max((v < c).sum() + target.sum(), 1) for c in candidates]
        geometry["horn_split_v"] = float(candidates[int(np.argmax(scores))])
    return geometry


def calibrate(folder: str | Path, levels: list[str] | None = None, verbose: bool = True) -> Calibration:
    """Fit the geometry of every level (default: the YAML's levels that PAM50 covers).

    Parameters
    ----------
    folder : str or Path
        PAM50 folder.
    levels : list of str, optional
        Level names to fit, e.g. ``["C2", "C4"]``.
    verbose : bool
        Print progress and Dice per level.

    Returns
    -------
    Calibration
    """
    spec = load_cord_spec()
    pam = read_pam50(folder)
    frames = pam50_frames(pam)
    present = set(pam.present_levels())
    names = [name for name in (levels or spec.levels) if level_number(name) in present]
    order = sorted(names, key=lambda name: abs(level_number(name) - level_number(spec.default_level)))
    result = Calibration(source_commit=pam.source_commit, source=str(Path(folder)))
    fixed = dict(spec.fixed)
    for name in order:
        fitted = {n: level_number(n) for n in result.geometry}
        start = START_GEOMETRY
        if fitted:
            nearest = min(fitted, key=lambda n: abs(fitted[n] - level_number(name)))
            start = result.geometry[nearest]
        samples = level_samples(pam, frames, level_number(name))
        geometry = fit_level(samples, start, fixed)
        result.geometry[name] = {key: round(geometry[key], 4) for key in GEOMETRY_BOUNDS}
        dice = hard_dice({**result.geometry[name], **fixed}, samples)
        result.dice[name] = {key: round(value, 4) for key, value in dice.items()}
        if verbose:
            print(name, len(samples.u), "voxels, Dice", result.dice[name], flush=True)
    result.geometry = {name: result.geometry[name] for name in spec.levels if name in result.geometry}
    result.dice = {name: result.dice[name] for name in spec.levels if name in result.dice}
    return result


#: Line in ``atlases/cord.yaml`` after which the calibration writes its output.
MARKER = "# --- calibrated geometry: written by `python -m regiontag.atlas.pam50.calibrate` ---"


def calibration_yaml(result: Calibration) -> str:
    """The ``geometry`` and ``calibration`` sections as YAML text (one flow mapping per level)."""
    lines = [MARKER, "geometry:"]
    for name, params in result.geometry.items():
        body = ", ".join(f"{key}: {value:.4f}" for key, value in params.items())
        lines.append(f"  {name}: {{{body}}}")
    calibration = {
        "date": dt.date.today().isoformat(),
        "source": "PAM50 (Spinal Cord Toolbox, github.com/spinalcordtoolbox/PAM50), atlas/PAM50_atlas_00-35",
        "source_commit": result.source_commit,
        "method": "per-level fit of the parametric cross-section to PAM50 combined labels in cord coordinates "
        "(regiontag/atlas/pam50/calibrate.py); dice = hard-label Dice on the same PAM50 cord voxels (in-sample)",
    }
    lines.append(yaml.safe_dump({"calibration": calibration}, sort_keys=False, width=200).rstrip())
    lines.append("  dice:")
    for name, dice in result.dice.items():
        body = ", ".join(f"{key}: {value:.3f}" for key, value in dice.items())
        lines.append(f"    {name}: {{{body}}}")
    return "\n".join(lines) + "\n"


def write_calibration(yaml_path: str | Path, result: Calibration) -> None:
    """Replace everything after ``MARKER`` in the atlas YAML with the new calibration."""
    path = Path(yaml_path)
    text = path.read_text()
    head = text.split(MARKER)[0].rstrip("\n") + "\n\n"
    path.write_text(head + calibration_yaml(result))


def main(argv: list[str] | None = None) -> int:
    """``python -m regiontag.atlas.pam50.calibrate calibrate PAM50_DIR [--levels C2 C4] [--write atlases/cord.yaml]``."""
    parser = argparse.ArgumentParser(prog="python -m regiontag.atlas.pam50.calibrate", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    fit = commands.add_parser("calibrate", help="fit the cord atlas geometry to PAM50 and print it")
    fit.add_argument("pam50_dir", type=Path)
    fit.add_argument("--levels", nargs="+", default=None, help="level names to fit (default: all in cord.yaml)")
    fit.add_argument(
        "--write",
        type=Path,
        default=None,
        help="replace the geometry and calibration sections of this atlas YAML (unfitted levels are interpolated)",
    )
    args = parser.parse_args(argv)
    result = calibrate(args.pam50_dir, levels=args.levels)
    print(calibration_yaml(result))
    if args.write is not None:
        write_calibration(args.write, result)
        print(f"wrote {args.write}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
