"""``regiontag atlas list [--atlas brain|cord]`` and ``regiontag atlas build [--rebuild]``."""

from __future__ import annotations

import argparse
import sys
import textwrap
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


def alternative_splits(atlas: Atlas) -> dict[str, list[list[str]]]:
    """Parents whose children form more than one partition of the parent's voxels.

    Children are grouped greedily, in atlas order, into groups of children that share
    no leaf label; a child that shares leaves with a member of every group starts a
    new one.  The brain white matter, for example, is split once by depth (periventricular,
    deep, juxtacortical) and once by lobe: the two splits overlap (each voxel is in one
    region of each), so their volumes add up to the parent's twice.

    Returns
    -------
    dict
        Parent path -> groups of child paths, only for parents with two or more groups.
    """
    def leaves(region) -> set[int]:
        return {value for values in region.labels.values() for value in values}

    children: dict[str, list] = {}
    for region in atlas.regions:
        if region.parent is not None:
            children.setdefault(region.parent, []).append(region)
    splits = {}
    for parent, kids in children.items():
        groups: list[tuple[set[int], list[str]]] = []
        for kid in kids:
            own = leaves(kid)
            for used, members in groups:
                if not used & own:
                    used |= own
                    members.append(kid.path)
                    break
            else:
                groups.append((set(own), [kid.path]))
        if len(groups) > 1:
            splits[parent] = [members for _, members in groups]
    return splits


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
    splits = alternative_splits(atlas)
    split_of = {path: chr(ord("A") + index) for groups in splits.values()
                for index, members in enumerate(groups) for path in members}
    for region in atlas.regions:
        sides = volumes[region.path]
        tag = f" [split {split_of[region.path]}]" if region.path in split_of else ""
        name = "  " * region.depth + region.name + (" (paired)" if region.paired else "") + tag
        left = f"{sides.get('left', 0.0):9.2f}" if region.paired else f"{'':9}"
        right = f"{sides.get('right', 0.0):9.2f}" if region.paired else f"{'':9}"
        lines.append(f"{name:<52} {left} {right} {sides['both']:9.2f}")
    for parent, groups in splits.items():
        names = "; ".join(
            f"split {chr(ord('A') + index)}: " + ", ".join(path.split(" > ")[-1] for path in members)
            for index, members in enumerate(groups)
        )
        note = (f"note: {parent.split(' > ')[-1]} is divided {len(groups)} ways that overlap ({names}). "
                "Each split covers the same voxels, so a lesion is tagged in one region of each and the "
                "volumes of its children add up to more than the parent's.")
        lines += textwrap.wrap(note, width=100, subsequent_indent="      ")
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
