"""`regiontag atlas list|build`: the parser, the region-tree text and one-line errors."""

from __future__ import annotations

import argparse
import sys

import nibabel as nib
import numpy as np

from regiontag.atlas.tree import Atlas, Region
from regiontag.cli import atlas as atlas_cli
from regiontag.config import ConfigError

from tests.cli.helpers import command_parser, usage_error


def _parser() -> argparse.ArgumentParser:
    return command_parser(atlas_cli)


def test_parser_actions_and_defaults():
    listing = _parser().parse_args(["atlas", "list"])
    assert (listing.atlas_command, listing.atlas, listing.func) == ("list", "brain", atlas_cli.run_list)
    assert _parser().parse_args(["atlas", "list", "--atlas", "cord"]).atlas == "cord"
    build = _parser().parse_args(["atlas", "build"])
    assert (build.rebuild, build.func) == (False, atlas_cli.run_build)
    assert _parser().parse_args(["atlas", "build", "--rebuild"]).rebuild is True


def test_bad_arguments_exit_2(capsys):
    error = usage_error(_parser().parse_args, ["atlas", "list", "--atlas", "spine"], capsys)
    assert error.startswith("regiontag atlas list: error: argument --atlas: invalid choice: 'spine'")
    assert "brain" in error and "cord" in error
    assert usage_error(_parser().parse_args, ["atlas", "show"], capsys).startswith(
        "regiontag atlas: error: argument ACTION: invalid choice: 'show'")
    assert usage_error(_parser().parse_args, ["atlas", "build", "--fast"], capsys) == "regiontag: error: unrecognized arguments: --fast"


def test_atlas_without_action_prints_help_and_returns_2(capsys):
    args = _parser().parse_args(["atlas"])
    assert args.func(args) == 2
    assert capsys.readouterr().out.startswith("usage: regiontag atlas [-h] ACTION ...")


def _atlas(space: str = "MNI152NLin2009aSym") -> Atlas:
    data = np.zeros((10, 10, 10), np.int16)
    data[:2, :, :] = 1  # 200 voxels, right
    data[2:5, :, :] = 2  # 300 voxels, left
    data[5:6, :5, :] = 3  # 50 voxels, midline
    regions = (
        Region("Cerebrum", {"right": (1,), "left": (2,)}, True),
        Region("Cerebrum > Putamen", {"right": (1,), "left": (2,)}, True),
        Region("Brainstem", {"midline": (3,)}, False),
    )
    return Atlas("brain" if space != "cord" else "cord", space, nib.Nifti1Image(data, np.diag([2, 2, 2, 1.0])),
                 regions)


def test_format_tree_indents_by_depth_with_volumes_per_side():
    atlas = _atlas()
    lines = atlas_cli.format_tree(atlas).splitlines()
    assert lines[0] == f"atlas brain (MNI152NLin2009aSym), sha256 {atlas.sha256[:16]}"
    assert lines[1].split() == ["region", "left", "right", "both", "(ml)"]
    # 8 mm^3 voxels: 300 left = 2.4 ml, 200 right = 1.6 ml
    assert lines[2].split() == ["Cerebrum", "(paired)", "2.40", "1.60", "4.00"]
    assert lines[3].startswith("  Putamen (paired) ")
    assert lines[4].startswith("Brainstem ") and lines[4].split() == ["Brainstem", "0.40"]  # no sides: both only
    assert len(lines) == 5


def _white_matter_atlas() -> Atlas:
    """White matter (labels 1-4) split by depth (inner 1+2 / outer 3+4) and by lobe (front 1+3 / back 2+4)."""
    data = np.repeat(np.arange(1, 5, dtype=np.int16), 25).reshape(10, 10, 1)
    wm = "Cerebral white matter"
    regions = (
        Region(wm, {"midline": (1, 2, 3, 4)}, False),
        Region(f"{wm} > Inner", {"midline": (1, 2)}, False),
        Region(f"{wm} > Outer", {"midline": (3, 4)}, False),
        Region(f"{wm} > Frontal", {"midline": (1, 3)}, False),
        Region(f"{wm} > Occipital", {"midline": (2, 4)}, False),
        Region("Brainstem", {"midline": (5,)}, False),
    )
    return Atlas("brain", "MNI", nib.Nifti1Image(data, np.eye(4)), regions)


def test_atlas_list_says_that_alternative_splits_overlap():
    """Issue 19.7: the depth split and the lobe split are not siblings that add up."""
    atlas = _white_matter_atlas()
    assert atlas_cli.alternative_splits(atlas) == {"Cerebral white matter": [
        ["Cerebral white matter > Inner", "Cerebral white matter > Outer"],
        ["Cerebral white matter > Frontal", "Cerebral white matter > Occipital"]]}
    text = atlas_cli.format_tree(atlas)
    lines = text.splitlines()
    assert lines[3].startswith("  Inner [split A] ") and lines[5].startswith("  Frontal [split B] ")
    assert "Brainstem [split" not in text
    note = " ".join(line.strip() for line in lines[lines.index(next(l for l in lines if l.startswith("note:"))):])
    assert note == ("note: Cerebral white matter is divided 2 ways that overlap (split A: Inner, Outer; split B: "
                    "Frontal, Occipital). Each split covers the same voxels, so a lesion is tagged in one region "
                    "of each and the volumes of its children add up to more than the parent's.")
    assert all(len(line) <= 100 for line in lines)
    assert "note:" not in atlas_cli.format_tree(_atlas())  # a tree without overlapping children


def test_format_tree_of_the_cord_atlas_is_in_percent_of_the_cross_section():
    lines = atlas_cli.format_tree(_atlas("cord")).splitlines()
    assert lines[1].endswith("(% of the cord cross-section)")
    assert lines[2].split()[-3:] == ["60.00", "40.00", "100.00"]
    assert lines[4].split() == ["Brainstem", "10.00"]


def test_list_prints_the_tree(monkeypatch, capsys):
    atlas = _atlas()
    monkeypatch.setattr(atlas_cli, "_load", lambda name: atlas)
    assert atlas_cli.run_list(argparse.Namespace(atlas="brain")) == 0
    assert capsys.readouterr().out == atlas_cli.format_tree(atlas) + "\n"


def test_list_without_a_cord_atlas_is_one_line_and_exit_1(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "regiontag.atlas.cord", None)  # import fails as if not installed
    assert atlas_cli.run_list(argparse.Namespace(atlas="cord")) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("regiontag atlas list: the cord atlas is not available in this installation (")
    assert len(captured.err.strip().splitlines()) == 1


def test_build_reports_a_broken_atlas_definition_in_one_line(monkeypatch, capsys):
    import regiontag.atlas.brain as brain

    def broken(rebuild=False):
        assert rebuild is True
        raise ConfigError("atlases/brain.yaml: masks.caudate: no such label")

    monkeypatch.setattr(brain, "load_brain_atlas", broken)
    assert atlas_cli.run_build(argparse.Namespace(rebuild=True)) == 1
    assert capsys.readouterr().err == "regiontag atlas build: atlases/brain.yaml: masks.caudate: no such label\n"


def test_build_prints_the_region_count_and_cache_path(monkeypatch, capsys, tmp_path):
    import regiontag.atlas.brain as brain

    atlas = _atlas()
    monkeypatch.setattr(brain, "load_brain_atlas", lambda rebuild=False: atlas)
    monkeypatch.setattr(brain, "cached_atlas_path", lambda: tmp_path / "brain.nii.gz")
    assert atlas_cli.run_build(argparse.Namespace(rebuild=False)) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"brain atlas: 3 regions, {len(atlas.leaf_names)} leaf labels, sha256 {atlas.sha256[:16]}, ")
    assert out[1] == f"cached at {tmp_path / 'brain.nii.gz'}"
