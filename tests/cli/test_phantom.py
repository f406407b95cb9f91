"""`regiontag phantom OUT`: the parser, session names, body parts and one-line errors."""

from __future__ import annotations

import argparse

import pytest

from regiontag.cli import phantom as phantom_cli
from regiontag.patterns.library import load_library

from tests.cli.helpers import command_parser, usage_error


def _parser() -> argparse.ArgumentParser:
    return command_parser(phantom_cli)


def test_parser_defaults():
    args = _parser().parse_args(["phantom", "out"])
    assert args.func is phantom_cli.run_phantom
    assert (args.output_dir, args.pattern, args.regions, args.seed, args.count) == ("out", None, None, 0, 1)
    assert (args.body_part, args.snr, args.slice_thickness, args.in_plane) == (None, None, None, 0.9)
    assert (args.sequences, args.plane, args.lesion_size) == ("FLAIR,T2w", "axial", None)
    assert (args.atrophy, args.motion, args.skull, args.cord_contrast) == (0.0, 0.0, False, "T2w")


def test_parser_options():
    args = _parser().parse_args(["phantom", "o", "--pattern", "ms-brain", "--seed", "5", "--count", "3",
                                 "--body-part", "brain", "--snr", "12.5", "--slice-thickness", "5",
                                 "--plane", "oblique", "--lesion-size", "confluent", "--skull"])
    assert (args.pattern, args.seed, args.count, args.body_part) == ("ms-brain", 5, 3, "brain")
    assert (args.snr, args.slice_thickness, args.plane, args.lesion_size, args.skull) == (
        12.5, 5.0, "oblique", "confluent", True)


@pytest.mark.parametrize(
    ("argv", "start"),
    [
        (["phantom"], "regiontag phantom: error: the following arguments are required: OUT"),
        (["phantom", "o", "--seed", "x"], "regiontag phantom: error: argument --seed: invalid int value: 'x'"),
        (["phantom", "o", "--snr", "high"], "regiontag phantom: error: argument --snr: invalid float value: 'high'"),
        (["phantom", "o", "--plane", "diagonal"], "regiontag phantom: error: argument --plane: invalid choice: 'diagonal'"),
        (["phantom", "o", "--body-part", "spine"], "regiontag phantom: error: argument --body-part: invalid choice: 'spine'"),
    ],
)
def test_bad_arguments_exit_2(argv, start, capsys):
    assert usage_error(_parser().parse_args, argv, capsys).startswith(start)


def test_cord_contrast_reaches_the_cord_phantom(tmp_path, monkeypatch):
    import functools

    import regiontag.phantoms.cord as cord

    seen = {}
    real = cord.make_cord_phantom

    @functools.wraps(real)  # the CLI passes only the options the phantom's signature accepts
    def recording(lesion_type, seed, **options):
        seen.update(options)
        return real(lesion_type, seed, length_mm=30, supersample_mm=1.0, **options)

    monkeypatch.setattr(cord, "make_cord_phantom", recording)
    args = _parser().parse_args(["phantom", str(tmp_path), "--pattern", "healthy", "--body-part", "cord",
                                 "--cord-contrast", "STIR", "--quiet"])
    assert phantom_cli.run_phantom(args) == 0
    assert seen["contrast"] == "STIR"
    assert list((tmp_path / "inputs").glob("*/*_T2w.nii.gz"))  # read as T2-weighted


def test_session_name():
    assert phantom_cli.session_name("ms-brain", 3) == "phantom-ms-brain-s0003"
    assert phantom_cli.session_name(None, 12) == "phantom-regions-s0012"
    assert phantom_cli.session_name("healthy", 12345) == "phantom-healthy-s12345"


def test_pattern_body_part_comes_from_the_library():
    library = load_library()
    for pattern in library.patterns:
        assert phantom_cli._pattern_body_part(pattern.id) == pattern.body_part
    assert phantom_cli._pattern_body_part("healthy") is None
    assert phantom_cli._pattern_body_part("no-such-pattern") is None


def test_neither_pattern_nor_regions_is_one_line_and_exit_2(tmp_path, capsys):
    args = _parser().parse_args(["phantom", str(tmp_path / "out")])
    assert phantom_cli.run_phantom(args) == 2
    captured = capsys.readouterr()
    assert captured.err == "regiontag phantom: give --pattern NAME (or 'healthy') or --regions\n"
    assert captured.out == "" and not (tmp_path / "out").exists()


@pytest.mark.slow  # builds the brain anatomy before the region is looked up (about 9 s)
def test_unknown_region_is_one_line_naming_it(tmp_path, capsys):
    args = _parser().parse_args(["phantom", str(tmp_path / "out"), "--regions", "Cerebrum > Nowhere:left"])
    assert phantom_cli.run_phantom(args) == 2
    error = capsys.readouterr().err
    assert error.startswith("regiontag phantom: ") and "'Cerebrum > Nowhere'" in error
    assert len(error.strip().splitlines()) == 1
    assert not (tmp_path / "out" / "inputs").exists()


def test_count_writes_consecutive_seeds_and_body_part_picks_the_writer(tmp_path, monkeypatch, capsys):
    calls = []
    monkeypatch.setattr(phantom_cli, "_write_brain", lambda args, seed, sid: calls.append(("brain", seed, sid)))
    monkeypatch.setattr(phantom_cli, "_write_cord", lambda args, seed, sid: calls.append(("cord", seed, sid)))
    cord_pattern = next(p.id for p in load_library().patterns if p.body_part == "cord")
    out = tmp_path / "out"
    assert phantom_cli.run_phantom(_parser().parse_args(["phantom", str(out), "--pattern", cord_pattern,
                                                         "--seed", "4", "--count", "2"])) == 0
    assert calls == [("cord", 4, f"phantom-{cord_pattern}-s0004"), ("cord", 5, f"phantom-{cord_pattern}-s0005")]
    assert capsys.readouterr().out.splitlines() == [
        f"phantom-{cord_pattern}-s0004: {out / 'inputs' / f'phantom-{cord_pattern}-s0004'}",
        f"phantom-{cord_pattern}-s0005: {out / 'inputs' / f'phantom-{cord_pattern}-s0005'}",
        f"truth: {out / 'truth'}",
    ]
    calls.clear()
    assert phantom_cli.run_phantom(_parser().parse_args(["phantom", str(out), "--pattern", "healthy"])) == 0
    assert phantom_cli.run_phantom(_parser().parse_args(["phantom", str(out), "--pattern", "healthy",
                                                         "--body-part", "cord"])) == 0
    assert [body_part for body_part, *_ in calls] == ["brain", "cord"]


def test_phantom_generation_shows_progress(tmp_path, monkeypatch, capsys):
    """The bar (on stderr) counts the phantoms as they are written, the current one named."""
    import io

    from rich.console import Console

    from regiontag.cli import phantom as phantom_cli
    from regiontag.workflows import progress as progress_module

    written = []
    monkeypatch.setattr(phantom_cli, "_write_brain", lambda args, seed, session_id: written.append(session_id))
    buffer = io.StringIO()
    original = progress_module.PhaseProgress.__init__
    monkeypatch.setattr(progress_module.PhaseProgress, "__init__",
                        lambda self, *, quiet=False, console=None: original(
                            self, quiet=quiet, console=Console(file=buffer, width=160)))
    from regiontag.cli.main import main

    assert main(["phantom", str(tmp_path), "--pattern", "healthy", "--count", "2", "--body-part", "brain"]) == 0
    assert written == ["phantom-healthy-s0000", "phantom-healthy-s0001"]
    bar = buffer.getvalue()
    assert "brain phantoms" in bar and "2/2" in bar and "phantom-healthy-s0001" in bar
    assert capsys.readouterr().out.splitlines()[-1] == f"truth: {tmp_path / 'truth'}"
