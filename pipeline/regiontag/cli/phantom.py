"""``regiontag phantom OUT``: synthetic sessions with known lesions (brain or spinal cord).

Writes ``OUT/inputs/<session>/<session>_<SEQUENCE>.nii.gz`` (the folder to give
``regiontag run``) and ``OUT/truth/<session>/`` (lesion mask, atlas labels,
involved regions, parameters) for ``regiontag evaluate``.  ``--pattern`` is a
lesion pattern id of the library or ``healthy``; brain patterns place lesions
in the pattern's core regions, cord patterns (or ``--body-part cord``) use the
cord phantom.
"""

from __future__ import annotations

import argparse
import inspect
import sys
from pathlib import Path

from regiontag.cli import plain_help


def _pattern_body_part(pattern: str) -> str | None:
    """Body part of a library pattern (None for ``healthy`` or an unknown id)."""
    # imported here, not at module level: it pulls in nilearn, and `regiontag --help` should stay light
    from regiontag.phantoms.brain import HEALTHY

    if pattern == HEALTHY:
        return None
    try:
        from regiontag.patterns.library import load_library

        return load_library().get(pattern).body_part
    except (ImportError, KeyError):
        return None


def session_name(pattern: str | None, seed: int) -> str:
    """``phantom-<pattern>-s<seed>`` (``phantom-regions-s<seed>`` for explicit regions)."""
    return f"phantom-{pattern or 'regions'}-s{seed:04d}"


def _write_cord(args: argparse.Namespace, seed: int, session_id: str) -> Path:
    try:
        from regiontag.phantoms.cord import CORD_LESION_TYPES, make_cord_phantom, write_cord_phantom
    except ImportError as error:
        raise RuntimeError(f"the cord phantom is not available ({error})") from error
    lesion_type = CORD_LESION_TYPES.get(args.pattern, args.pattern)
    accepted = inspect.signature(make_cord_phantom).parameters
    options = {"snr": args.snr, "contrast": args.cord_contrast}
    if args.slice_thickness is not None:
        options["voxel_size"] = (0.8, 0.8, args.slice_thickness)
    options = {name: value for name, value in options.items() if name in accepted and value is not None}
    phantom = make_cord_phantom(lesion_type, seed, **options)
    written = write_cord_phantom(phantom, args.output_dir, session_id)
    from regiontag.accuracy.suite import update_truth_json

    truth = Path(args.output_dir) / "truth" / session_id / "truth.json"
    update_truth_json(truth, {"pattern": args.pattern, "seed": seed})
    return written


def _write_brain(args: argparse.Namespace, seed: int, session_id: str) -> None:
    from regiontag.phantoms.brain import make_brain_phantom, write_phantom

    options = {
        "sequences": [s.strip() for s in args.sequences.split(",") if s.strip()],
        "plane": args.plane,
        "lesion_size": args.lesion_size,
        "atrophy": args.atrophy,
        "motion": args.motion,
        "skull": args.skull,
    }
    if args.snr is not None:
        options["snr"] = args.snr
    if args.slice_thickness is not None:
        options["voxel_size"] = (args.in_plane, args.in_plane, args.slice_thickness)
    else:
        options["voxel_size"] = (args.in_plane, args.in_plane, 3.0)
    phantom = make_brain_phantom(args.pattern, seed, regions=args.regions, **options)
    write_phantom(phantom, args.output_dir, session_id)


def run_phantom(args: argparse.Namespace) -> int:
    """Write ``--count`` phantoms with seeds ``--seed``, ``--seed + 1``, ... (a progress bar on stderr)."""
    from regiontag.workflows.progress import PhaseProgress

    if args.pattern is None and args.regions is None:
        print("regiontag phantom: give --pattern NAME (or 'healthy') or --regions", file=sys.stderr)
        return 2
    body_part = args.body_part or _pattern_body_part(args.pattern or "") or "brain"
    phases = PhaseProgress(quiet=args.quiet)
    try:
        with phases.phase(f"{body_part} phantoms", args.count) as phase:
            for index in range(args.count):
                seed = args.seed + index
                session_id = session_name(args.pattern, seed)
                phase.start(session_id)
                if body_part == "cord":
                    _write_cord(args, seed, session_id)
                else:
                    _write_brain(args, seed, session_id)
                phase.done(session_id)
                print(f"{session_id}: {Path(args.output_dir) / 'inputs' / session_id}")
    except (ValueError, KeyError, RuntimeError) as error:  # the bar is gone (transient on error): one line
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        print(f"regiontag phantom: {message}", file=sys.stderr)
        return 2
    print(f"truth: {Path(args.output_dir) / 'truth'}")
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``regiontag phantom``."""
    parser = subparsers.add_parser(
        "phantom", help="write synthetic sessions with known lesions (and their truth)",
        description=plain_help(__doc__), formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("output_dir", metavar="OUT", help="folder for inputs/ and truth/")
    parser.add_argument("--pattern", help="lesion pattern id from the library, or 'healthy'")
    parser.add_argument("--regions", help='explicit brain targets: "Region path:side,..." (side left/right/both/'
                        "bilateral; default bilateral)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the first phantom (default 0)")
    parser.add_argument("--count", type=int, default=1, help="number of phantoms (seeds seed..seed+count-1)")
    parser.add_argument("--body-part", choices=["brain", "cord"], help="default: from the pattern, else brain")
    parser.add_argument("--snr", type=float, help="white-matter signal / noise sigma (brain default 20)")
    parser.add_argument("--slice-thickness", type=float, help="slice thickness in mm (brain default 3)")
    parser.add_argument("--in-plane", type=float, default=0.9, help="brain in-plane voxel size in mm (default 0.9)")
    parser.add_argument("--sequences", default="FLAIR,T2w", help="brain sequences (FLAIR, T2w, T1w, DWI)")
    parser.add_argument("--plane", default="axial", choices=["axial", "coronal", "sagittal", "oblique"])
    parser.add_argument("--lesion-size", choices=["small", "medium", "confluent"],
                        help="default: from the pattern")
    parser.add_argument("--atrophy", type=float, default=0.0, help="0 (none) to 1 (severe)")
    parser.add_argument("--motion", type=float, default=0.0, help="ghosting severity, 0 to 1")
    parser.add_argument("--skull", action="store_true", help="add skull and scalp (default skull-stripped)")
    parser.add_argument("--cord-contrast", default="T2w", choices=["T2w", "STIR"],
                        help="cord phantom contrast (STIR: fat nulled, brighter lesions; written as _T2w)")
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    parser.set_defaults(func=run_phantom)
