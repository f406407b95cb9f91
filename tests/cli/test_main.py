"""`regiontag` itself: the command list, --version, no command, dispatch and Ctrl-C."""

from __future__ import annotations

import argparse
import sys
from importlib import metadata

import pytest

import regiontag
from regiontag.cli import main as cli_main
from regiontag.cli.main import COMMAND_MODULES, build_parser, main

COMMANDS = [name.rsplit(".", 1)[1] for name in COMMAND_MODULES]


def test_every_command_module_is_listed_in_help_in_order(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    assert text.startswith("usage: regiontag [-h] [--version] COMMAND ...")
    assert "Research software, not a medical device." in " ".join(text.split())
    listed = [line.split()[0] for line in text.splitlines() if line.startswith("    ") and line.split()[0] in COMMANDS]
    assert listed == COMMANDS
    assert COMMANDS == ["run", "demo", "phantom", "atlas", "patterns", "score", "tag", "evaluate", "validate",
                        "report"]


def test_build_parser_has_one_subparser_per_command():
    parser = build_parser()
    (subparsers,) = [action for action in parser._actions if isinstance(action, argparse._SubParsersAction)]
    assert list(subparsers.choices) == COMMANDS
    for name, sub in subparsers.choices.items():
        assert sub.prog == f"regiontag {name}"
        assert callable(sub.get_default("func")), name


def test_version(capsys):
    assert main(["--version"]) == 0  # answered before the parser is built
    assert capsys.readouterr().out == "regiontag 0.1.0\n"
    with pytest.raises(SystemExit) as exit_info:  # the parser's --version, e.g. after other options
        build_parser().parse_args(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out == "regiontag 0.1.0\n"
    assert regiontag.__version__ == metadata.version("regiontag") == "0.1.0"


def test_no_command_prints_help_and_exits_2(capsys):
    assert main([]) == 2
    assert capsys.readouterr().out.startswith("usage: regiontag ")


def test_unknown_command_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["frobnicate"])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith("regiontag: error: argument COMMAND: invalid choice: 'frobnicate' (choose from ")


@pytest.fixture()
def fake_commands(tmp_path, monkeypatch):
    """Command modules written to a temporary folder, importable for the duration of a test."""
    monkeypatch.syspath_prepend(str(tmp_path))

    def write(name: str, source: str) -> str:
        (tmp_path / f"{name}.py").write_text(source)
        monkeypatch.delitem(sys.modules, name, raising=False)
        return name

    return write


COMMAND_SOURCE = '''
def add_parser(subparsers):
    parser = subparsers.add_parser("{name}")
    parser.add_argument("--value", type=int, default=0)
    parser.set_defaults(func={func})
'''


def test_main_returns_the_commands_status_and_turns_none_into_0(fake_commands, monkeypatch):
    returns = fake_commands("regiontag_fake_returns", COMMAND_SOURCE.format(name="echo", func="lambda a: a.value"))
    silent = fake_commands("regiontag_fake_silent", COMMAND_SOURCE.format(name="silent", func="lambda a: None"))
    monkeypatch.setattr(cli_main, "COMMAND_MODULES", (returns, silent))
    assert main(["echo", "--value", "7"]) == 7
    assert main(["silent"]) == 0


def test_ctrl_c_is_exit_130_with_one_line(fake_commands, monkeypatch, capsys):
    source = "def _stop(args):\n    raise KeyboardInterrupt\n" + COMMAND_SOURCE.format(name="stop", func="_stop")
    monkeypatch.setattr(cli_main, "COMMAND_MODULES", (fake_commands("regiontag_fake_stop", source),))
    assert main(["stop"]) == 130
    assert capsys.readouterr().err == "interrupted\n"


def test_a_reader_closing_the_pipe_is_not_an_error(fake_commands, monkeypatch, capsys):
    source = "def _pipe(args):\n    raise BrokenPipeError\n" + COMMAND_SOURCE.format(name="pipe", func="_pipe")
    monkeypatch.setattr(cli_main, "COMMAND_MODULES", (fake_commands("regiontag_fake_pipe", source),))
    monkeypatch.setattr(sys, "stdout", sys.stdout)  # main drops stdout after a broken pipe; restored here
    assert main(["pipe"]) == 0
    assert sys.stdout is None
    assert capsys.readouterr().err == ""


def test_missing_command_module_is_left_out_but_a_missing_dependency_is_not_hidden(fake_commands, monkeypatch):
    present = fake_commands("regiontag_fake_present", COMMAND_SOURCE.format(name="present", func="lambda a: 0"))
    monkeypatch.setattr(cli_main, "COMMAND_MODULES", ("regiontag.cli.no_such_command", present))
    assert main(["present"]) == 0
    with pytest.raises(SystemExit):
        build_parser().parse_args(["no_such_command"])
    broken = fake_commands("regiontag_fake_broken", "import regiontag_no_such_dependency\n")
    monkeypatch.setattr(cli_main, "COMMAND_MODULES", (present, broken))
    with pytest.raises(ModuleNotFoundError) as error:
        build_parser()
    assert error.value.name == "regiontag_no_such_dependency"


@pytest.mark.parametrize("command", ["phantom", "validate", "evaluate"])
def test_help_shows_no_rst_markup(command, capsys):
    from regiontag.cli.main import main

    with pytest.raises(SystemExit):
        main([command, "--help"])
    text = capsys.readouterr().out
    assert f"regiontag {command}" in text
    assert "``" not in text and ":func:" not in text and ":class:" not in text


def test_version_is_answered_without_heavy_imports():
    """`regiontag --version` imports neither pandas, nibabel nor the config (it took 3.7 s when it did)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root / "pipeline"), os.environ.get("PYTHONPATH", "")])}
    completed = subprocess.run([sys.executable, "-X", "importtime", "-m", "regiontag", "--version"],
                               capture_output=True, text=True, env=env, timeout=60)
    assert completed.returncode == 0 and completed.stdout.startswith("regiontag ")
    imported = {line.split("|")[-1].strip() for line in completed.stderr.splitlines() if "|" in line}
    assert "regiontag" in imported
    assert not imported & {"pandas", "nibabel", "numpy", "regiontag.config", "regiontag.cli.run"}
