"""The ``regiontag`` command line.

Each command group lives in its own module under ``regiontag.cli`` and
exposes ``add_parser(subparsers)``; the parser it adds sets ``func`` to a
callable taking the parsed arguments and returning an exit status.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from regiontag import __version__

#: Command modules, in the order ``regiontag --help`` lists them.
COMMAND_MODULES = (
    "regiontag.cli.run",
    "regiontag.cli.demo",
    "regiontag.cli.phantom",
    "regiontag.cli.atlas",
    "regiontag.cli.patterns",
    "regiontag.cli.score",
    "regiontag.cli.tag",
    "regiontag.cli.evaluate",
    "regiontag.cli.validate",
    "regiontag.cli.report",
)


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser (commands whose module is missing are left out)."""
    parser = argparse.ArgumentParser(
        prog="regiontag",
        description="Tag brain and spinal-cord MRI hyperintensities by atlas region and score "
        "them against lesion patterns. Research software, not a medical device.",
    )
    parser.add_argument("--version", action="version", version=f"regiontag {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in COMMAND_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as error:
            if error.name == module_name:
                continue
            raise
        module.add_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``regiontag`` console script.

    ``regiontag --version`` answers before any command module is imported (some import
    pandas or nibabel at the top), so it takes well under a second.
    """
    if (sys.argv[1:] if argv is None else list(argv)) == ["--version"]:
        print(f"regiontag {__version__}")
        return 0
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `regiontag atlas list | head`: the reader left, nothing is wrong
        sys.stdout = None  # Python would otherwise report the pipe again when it flushes at exit
        return 0


if __name__ == "__main__":
    sys.exit(main())
