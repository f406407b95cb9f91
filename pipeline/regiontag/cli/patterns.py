"""``regiontag patterns list | show NAME | validate [PATH] | add FILE | remove NAME``: the pattern library."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from regiontag.config import ConfigError


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``patterns`` command group."""
    parser = subparsers.add_parser(
        "patterns",
        help="list, show, validate, add and remove lesion patterns",
        description="Manage the lesion-pattern library (one YAML file per disease; default "
        "configs/patterns, or $REGIONTAG_PATTERNS, or --library DIR).",
    )
    library_help = "pattern library folder (default: configs/patterns or $REGIONTAG_PATTERNS)"
    parser.add_argument("--library", type=Path, metavar="DIR", help=library_help)
    parser.set_defaults(func=lambda args: (parser.print_help(), 2)[1])
    # --library is also accepted after the action (``patterns remove X --library DIR``)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--library", type=Path, metavar="DIR", default=argparse.SUPPRESS, help=library_help)
    actions = parser.add_subparsers(dest="patterns_command", metavar="ACTION")

    listing = actions.add_parser("list", parents=[common], help="one line per lesion pattern")
    listing.set_defaults(func=run_list)

    show = actions.add_parser("show", parents=[common], help="details of a pattern (id or name) or of a disease (id)")
    show.add_argument("name", metavar="NAME")
    show.set_defaults(func=run_show)

    validate = actions.add_parser("validate", parents=[common], help="check a pattern file or folder (default: the library)")
    validate.add_argument("path", nargs="?", type=Path, metavar="PATH")
    validate.add_argument(
        "--simulate", type=int, default=0, metavar="N",
        help="also draw N sessions per pattern (regions, features, lesion conditions) from its own "
        "probabilities and report how often it ranks first (library self-consistency)",
    )
    validate.set_defaults(func=run_validate)

    add = actions.add_parser("add", parents=[common], help="validate a disease YAML file and add it to the library")
    add.add_argument("file", type=Path, metavar="FILE")
    add.add_argument("--replace", action="store_true", help="replace a disease with the same id")
    add.set_defaults(func=run_add)

    remove = actions.add_parser("remove", parents=[common], help="delete a lesion pattern (or a whole disease) from the library")
    remove.add_argument("name", metavar="NAME", help="pattern id or name, or disease id")
    remove.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")
    remove.set_defaults(func=run_remove)
    return parser


def _library_dir(args: argparse.Namespace) -> Path:
    if getattr(args, "library", None):
        return Path(args.library)
    from regiontag.resources import patterns_dir

    return patterns_dir()


def _fail(message: str) -> int:
    print(f"regiontag patterns: {message}", file=sys.stderr)
    return 1


def run_list(args: argparse.Namespace) -> int:
    """Print one line per pattern: id, body part, disease, pattern name."""
    from regiontag.patterns.library import load_library

    try:
        library = load_library(_library_dir(args))
    except ConfigError as error:
        return _fail(str(error))
    width = max(len(p.id) for p in library.patterns)
    for pattern in library.patterns:
        print(f"{pattern.id:<{width}}  {pattern.body_part:<5}  {pattern.disease_name}: {pattern.name}")
    print(f"{len(library.patterns)} lesion patterns of {len(library.diseases)} diseases in {library.directory}")
    return 0


def _format_pattern(pattern, config) -> list[str]:
    from regiontag.patterns.scoring import feature_background, region_background

    lines = [
        f"{pattern.id}: {pattern.name}",
        f"  disease: {pattern.disease_name} ({pattern.disease_id})",
        f"  body part: {pattern.body_part}; sequences: {', '.join(pattern.sequences)}; "
        f"symmetry: {pattern.symmetry.expected}",
    ]
    if pattern.description:
        lines.append(f"  {pattern.description}")
    lines.append("  regions (P involved | pattern, | background):")
    for item in pattern.regions:
        note = f"  [{item.note}]" if item.note else ""
        lines.append(
            f"    {item.role:<10} {item.laterality:<10} {item.p_involved:5.2f} {region_background(item, config):5.2f}"
            f"  {item.region}{note}"
        )
    features = {**pattern.extent, **pattern.features}
    if features:
        lines.append("  features (P present | pattern, | background):")
        for name, item in features.items():
            lines.append(f"    {item.p_present:5.2f} {feature_background(name, item, config):5.2f}  {name}")
    if pattern.mimics:
        lines.append(f"  mimics: {', '.join(pattern.mimics)}")
    if pattern.prior is not None:
        lines.append(f"  prior: {pattern.prior}")
    return lines


def _citations(references) -> list[str]:
    return [f"    - {ref if isinstance(ref, str) else ref.citation()}" for ref in references]


def suggestions(name: str, library) -> list[str]:
    """Pattern and disease ids a mistyped NAME may mean: ids containing it, else close spellings."""
    import difflib

    ids = [pattern.id for pattern in library.patterns] + [
        disease.id for disease in library.diseases if disease.id not in {p.id for p in library.patterns}]
    needle = name.casefold()
    containing = [identifier for identifier in ids if needle and needle in identifier.casefold()]
    return containing or difflib.get_close_matches(name, ids, n=3, cutoff=0.5)


def not_found_message(name: str, library) -> str:
    """``no lesion pattern or disease 'b12'; did you mean: ...`` (never an empty list)."""
    close = suggestions(name, library)
    hint = f"did you mean {', '.join(close)}?" if close else "no similar id"
    return (f"no lesion pattern or disease {name!r}; {hint} "
            f"(`regiontag patterns list` shows all {len(library.patterns)} patterns)")


def run_show(args: argparse.Namespace) -> int:
    """Print a pattern (or every pattern of a disease) with its probabilities and references."""
    from regiontag.config import load_config
    from regiontag.patterns.library import load_library

    try:
        library = load_library(_library_dir(args))
        config = load_config().scoring
    except ConfigError as error:
        return _fail(str(error))
    try:
        patterns = [library.get(args.name)]
    except KeyError:
        try:
            patterns = library.disease(args.name).patterns
        except KeyError:
            return _fail(not_found_message(args.name, library))
    disease = library.disease(patterns[0].disease_id)
    lines = [f"file: {library.files[disease.id]}"]
    for pattern in patterns:
        lines += _format_pattern(pattern, config)
        if pattern.references:
            lines += ["  pattern references:", *_citations(pattern.references)]
    lines += ["  disease references:", *_citations(disease.references)]
    print("\n".join(lines))
    return 0


def _config_warnings() -> list[str]:
    """Scoring-config background rates that name unknown regions or features."""
    from regiontag.config import load_config
    from regiontag.patterns.regions import closest_region, known_region_paths
    from regiontag.patterns.schema import KNOWN_FEATURES

    try:
        config = load_config().scoring
    except ConfigError as error:
        return [str(error)]
    known = known_region_paths()
    messages = [
        f"scoring.region_background: unknown region {path!r}; closest: {closest_region(path, known)!r}"
        for path in config.region_background if path not in known
    ]
    messages += [
        f"scoring.feature_background: unknown feature {name!r}"
        for name in config.feature_background if name not in KNOWN_FEATURES
    ]
    return messages


def run_validate(args: argparse.Namespace) -> int:
    """Validate a file, a folder, or the library; exit 1 on any error."""
    from regiontag.patterns.library import build_library, load_disease_file, load_library

    path = Path(args.path) if args.path else _library_dir(args)
    try:
        if path.is_dir():
            library = load_library(path)
        elif path.is_file():
            library = build_library({path: load_disease_file(path)}, path.parent)
        else:
            return _fail(f"{path}: no such file or folder")
    except ConfigError as error:
        print(str(error), file=sys.stderr)
        return 1
    for warning in (library.warnings() if path.is_dir() else []) + _config_warnings():
        print(f"warning: {warning}", file=sys.stderr)
    print(f"{path}: OK ({len(library.diseases)} disease(s), {len(library.patterns)} lesion pattern(s))")
    if args.simulate > 0:
        from regiontag.patterns.simulate import self_consistency

        table = self_consistency(library, n_per_pattern=args.simulate)
        print(table.to_string(index=False, float_format=lambda v: f"{v:.2f}"))
    return 0


def run_add(args: argparse.Namespace) -> int:
    """Validate FILE and copy it into the library."""
    from regiontag.patterns.edit import add_to_library

    try:
        destination = add_to_library(args.file, _library_dir(args), replace=args.replace)
    except ConfigError as error:
        print(str(error), file=sys.stderr)
        return 1
    print(f"added {args.file} as {destination}")
    return 0


def confirm(question: str) -> bool:
    """Ask a yes/no question on the terminal; anything but y/yes (or end of input) is no."""
    try:
        answer = input(f"{question} [y/N] ")
    except EOFError:
        return False
    return answer.strip().lower() in ("y", "yes")


def run_remove(args: argparse.Namespace) -> int:
    """Delete a pattern (or a disease file) after confirmation."""
    from regiontag.patterns.edit import find_removal_target, remove_from_library
    from regiontag.patterns.library import load_library

    try:
        library = load_library(_library_dir(args))
        target = find_removal_target(library, args.name)
    except ConfigError as error:
        return _fail(str(error))
    except KeyError as error:
        return _fail(str(error.args[0]))
    if target.whole_disease and len(target.pattern_ids) > 1:
        question = f"Do you really want to delete {target.label}?"
    else:
        question = f"Do you really want to delete lesion pattern {args.name}?"
    if not args.yes and not confirm(question):
        print("Not deleted.")
        return 1
    try:
        changed = remove_from_library(target)
    except (ConfigError, OSError) as error:
        return _fail(str(error))
    action = "deleted" if not changed[0].exists() else "rewrote"
    print(f"Deleted lesion pattern(s) {', '.join(target.pattern_ids)} ({action} {changed[0]})")
    return 0
