"""``regiontag atlas list [--atlas brain|cord]`` and ``regiontag atlas build [--rebuild]``."""

from __future__ import annotations

import argparse
import sys
import time
from typing import TYPE_CHECKING

from regiontag.config import ConfigError

if TYPE_CHECKING:
    from regiontag.atlas.tree import Atlas


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``atlas`` command group."""
    parser = subparsers.add_parser(
        "atlas",
        help="list or build the region atlases",
        description="Show the region tree of the brain or cord atlas with volumes, or (re)build "
        "the brain atlas cache from atlases/brain.yaml.",
    )
    parser.set_defaults(func=lambda args: (parser.print_help(), 2)[1])
    actions = parser.add_subparsers(dest="atlas_command", metavar="ACTION")

    listing = actions.add_parser("list", help="print the region tree with volumes (ml) per side")
    listing.add_argument("--atlas", choices=("brain", "cord"), default="brain")
    listing.set_defaults(func=run_list)

    build = actions.add_parser("build", help="build the brain atlas (cached; --rebuild forces it)")
    build.add_argument("--rebuild", action="store_true", help="ignore the cached copy")
    build.set_defaults(func=run_build)
    return parser


def format_tree(atlas: Atlas) -> str:
    """The region tree, indented by depth, with volumes per side in ml.

    The cord atlas lives on a normalised (u, v, level) grid, so its regions are
    given as percent of the cord cross-section (averaged over levels) instead.
    """
    from regiontag.atlas.brain import region_volumes_ml

    volumes = region_volumes_ml(atlas)
    unit = "(ml)"
    if atlas.space == "cord":
        whole = max(volumes[atlas.regions[0].path]["both"], 1e-12)
        volumes = {path: {side: 100.0 * value / whole for side, value in sides.items()}
                   for path, sides in volumes.items()}
        unit = "(% of the cord cross-section)"
    lines = [f"atlas {atlas.name} ({atlas.space}), sha256 {atlas.sha256[:16]}",
             f"{'region':<52} {'left':>9} {'right':>9} {'both':>9}  {unit}"]
    for region in atlas.regions:
        sides = volumes[region.path]
        name = "  " * region.depth + region.name + (" (paired)" if region.paired else "")
        left = f"{sides.get('left', 0.0):9.2f}" if region.paired else f"{'':9}"
        right = f"{sides.get('right', 0.0):9.2f}" if region.paired else f"{'':9}"
        lines.append(f"{name:<52} {left} {right} {sides['both']:9.2f}")
    return "\n".join(lines)


def _load(name: str) -> Atlas:
    if name == "brain":
        from regiontag.atlas.brain import load_brain_atlas

        return load_brain_atlas()
    try:
        from regiontag.atlas.cord import load_cord_atlas
    except ImportError as error:
        raise RuntimeError(f"the cord atlas is not available in this installation ({error})") from None
    return load_cord_atlas()


def run_list(args: argparse.Namespace) -> int:
    """Print the region tree of one atlas."""
    try:
        atlas = _load(args.atlas)
    except (ConfigError, FileNotFoundError, RuntimeError, KeyError, ValueError) as error:
        print(f"regiontag atlas list: {error}", file=sys.stderr)
        return 1
    print(format_tree(atlas))
    return 0


def run_build(args: argparse.Namespace) -> int:
    """Build (or load) the brain atlas and report where it is cached."""
    from regiontag.atlas.brain import cached_atlas_path, load_brain_atlas

    started = time.perf_counter()
    try:
        atlas = load_brain_atlas(rebuild=args.rebuild)
        path = cached_atlas_path()
    except (ConfigError, FileNotFoundError, KeyError, ValueError) as error:
        print(f"regiontag atlas build: {error}", file=sys.stderr)
        return 1
    print(f"brain atlas: {len(atlas.regions)} regions, {len(atlas.leaf_names)} leaf labels, "
          f"sha256 {atlas.sha256[:16]}, {time.perf_counter() - started:.1f} s")
    print(f"cached at {path}")
    return 0
