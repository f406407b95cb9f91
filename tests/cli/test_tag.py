"""`regiontag tag MASK`: the parser and the command's exit status and one-line errors.

Tagging itself (brain and PAM50 masks) is tested in tests/cli/test_patterns.py and
tests/cord/test_template_space.py; here only the command line, through ``main``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from regiontag import outputs
from regiontag.cli import tag as tag_cli
from regiontag.cli.main import main

from tests.cli.helpers import command_parser, usage_error


def _parser() -> argparse.ArgumentParser:
    return command_parser(tag_cli)


def test_parser_defaults():
    args = _parser().parse_args(["tag", "mask.nii.gz", "--space", "MNI152", "--output", "out"])
    assert (args.mask, args.space, args.image, args.output) == (Path("mask.nii.gz"), "MNI152", None, Path("out"))
    assert (args.sequence, args.threshold, args.session, args.patterns, args.pam50, args.config) == (
        "FLAIR", 0.5, None, None, None, None)
    assert callable(args.func)
    args = _parser().parse_args(["tag", "m", "--image", "flair.nii.gz", "--output", "o", "--sequence", "T2w",
                                 "--threshold", "0.2", "--session", "sub-01"])
    assert (args.image, args.space, args.sequence, args.threshold, args.session) == (
        Path("flair.nii.gz"), None, "T2w", 0.2, "sub-01")


def test_every_template_space_and_pam50_are_accepted():
    for space in (*tag_cli.TEMPLATE_SPACES, tag_cli.PAM50_SPACE):
        assert _parser().parse_args(["tag", "m", "--space", space, "--output", "o"]).space == space


@pytest.mark.parametrize(
    ("argv", "start"),
    [
        (["tag", "m", "--space", "MNI152"], "regiontag tag: error: the following arguments are required: --output"),
        (["tag", "m", "--output", "o"], "regiontag tag: error: one of the arguments --image --space is required"),
        (["tag", "m", "--space", "MNI152", "--image", "i", "--output", "o"],
         "regiontag tag: error: argument --image: not allowed with argument --space"),
        (["tag", "m", "--space", "Talairach", "--output", "o"],
         "regiontag tag: error: argument --space: invalid choice: 'Talairach'"),
        (["tag", "m", "--space", "MNI152", "--output", "o", "--threshold", "half"],
         "regiontag tag: error: argument --threshold: invalid float value: 'half'"),
        (["tag", "m", "--image", "i", "--output", "o", "--sequence", "SWI"],
         "regiontag tag: error: argument --sequence: invalid choice: 'SWI'"),
    ],
)
def test_bad_arguments_exit_2(argv, start, capsys):
    assert usage_error(main, argv, capsys).startswith(start)


def _one_line_error(capsys) -> str:
    error = capsys.readouterr().err
    assert "Traceback" not in error and len(error.strip().splitlines()) == 1
    return error.strip()


def test_missing_mask_is_one_line_and_exit_1(tmp_path, capsys):
    mask = tmp_path / "missing.nii.gz"
    assert main(["tag", str(mask), "--space", "MNI152", "--output", str(tmp_path / "out")]) == 1
    error = _one_line_error(capsys)
    assert error.startswith(f"regiontag tag: {mask}: ") and "not found" in error
    assert error.count(mask.name) == 1  # the file is named once
    assert not (tmp_path / "out" / outputs.REGIONS_CSV).exists()


def test_a_2d_mask_is_one_line_and_exit_1(tmp_path, capsys):
    mask = tmp_path / "slice.nii.gz"
    nib.save(nib.Nifti1Image(np.ones((8, 8), np.uint8), np.eye(4)), str(mask))
    assert main(["tag", str(mask), "--space", "MNI152", "--output", str(tmp_path / "out")]) == 1
    error = _one_line_error(capsys)
    assert error.startswith(f"regiontag tag: {mask}: ") and "3D" in error
    assert not (tmp_path / "out" / outputs.REGIONS_CSV).exists()


def _broken_library_run(tmp_path) -> int:
    mask = tmp_path / "mask.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((4, 4, 4), np.uint8), np.eye(4)), str(mask))
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "broken.yaml").write_text("id: [\n")
    return main(["tag", str(mask), "--space", "MNI152", "--output", str(tmp_path / "out"),
                 "--patterns", str(tmp_path / "lib")])


def test_a_broken_pattern_library_is_exit_2(tmp_path, capsys):
    assert _broken_library_run(tmp_path) == 2
    error = capsys.readouterr().err
    assert error.startswith(f"regiontag tag: {tmp_path / 'lib' / 'broken.yaml'}: invalid YAML")
    assert "Traceback" not in error
    assert not (tmp_path / "out" / outputs.REGIONS_CSV).exists()


def test_a_broken_pattern_library_error_is_one_line(tmp_path, capsys):
    assert _broken_library_run(tmp_path) == 2
    _one_line_error(capsys)
