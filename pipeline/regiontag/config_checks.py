"""Checks behind :mod:`regiontag.config`: YAML files read with named errors, user regexes that cannot hang.

* :func:`read_yaml` reads the run configuration, the pattern files and the brain atlas definition: a
  :class:`ConfigError` names the file and the problem (:func:`yaml_problem`, line and column), and
  :func:`format_validation_error` names the file and the dotted field of a pydantic error. (The cord
  atlas definition is still read by its own loader in :mod:`regiontag.atlas.cord_spec`.)
* :func:`safe_load_unique` is ``yaml.safe_load`` that refuses a mapping key given twice (PyYAML
  silently keeps the last one), naming the key, its line and the mapping it is in.
* :func:`check_safe_regex` compiles a user regular expression and refuses the constructs that
  make Python's backtracking matcher take exponential (or high polynomial) time.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

__all__ = ["ConfigError", "DuplicateKeyError", "MAX_REGEX_LENGTH", "MAX_REGEX_REPEATS", "check_safe_regex",
           "format_validation_error", "read_yaml", "safe_load_unique", "yaml_problem"]


class DuplicateKeyError(ValueError):
    """A YAML mapping gives the same key twice (the message says which, where and in which mapping)."""


#: libyaml's parser when PyYAML was built with it (several times faster), else the pure-Python one: same results.
SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _UniqueKeyLoader(SAFE_LOADER):  # type: ignore[misc, valid-type]
    """``yaml.SafeLoader`` (libyaml's when available) whose mappings refuse duplicate keys."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        where = self.mapping_names.get(id(node), "")
        seen: dict[Any, int] = {}
        for key_node, value_node in node.value:
            key = self.construct_object(key_node, deep=deep)
            try:
                first = seen.get(key)
            except TypeError:  # an unhashable key: PyYAML reports it
                continue
            line = key_node.start_mark.line + 1
            if first is not None:
                raise DuplicateKeyError(
                    f"{where or '(top level)'}: duplicate key {key!r} at line {line} "
                    f"(first given at line {first}); a key may appear once"
                )
            seen[key] = line
            if isinstance(value_node, yaml.MappingNode):
                self.mapping_names[id(value_node)] = f"{where}.{key}" if where else str(key)
        return super().construct_mapping(node, deep=deep)


def safe_load_unique(text: str) -> Any:
    r"""``yaml.safe_load(text)``, refusing duplicate mapping keys.

    Raises
    ------
    DuplicateKeyError
        ``"limits: duplicate key 'max_voxels' at line 4 (first given at line 2); ..."``.
    yaml.YAMLError
        Any other YAML problem.

    Examples
    --------
    >>> safe_load_unique("a: 1\nb: {c: 2}\n")
    {'a': 1, 'b': {'c': 2}}
    >>> safe_load_unique("a: 1\na: 2\n")
    Traceback (most recent call last):
    ...
    regiontag.config_checks.DuplicateKeyError: (top level): duplicate key 'a' at line 2 (first given at line 1); a key may appear once
    """
    loader = _UniqueKeyLoader(text)
    loader.mapping_names = {}
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


#: Longest accepted user regular expression (file names are at most 255 bytes).
MAX_REGEX_LENGTH = 200
#: Most repeats (``*``, ``+``, ``{m,n}``) in one user regular expression: with three, a failing search over
#: a 255-character name already backtracks for seconds (measured 1.5 s; four: 80 s).
MAX_REGEX_REPEATS = 2


def _regex_structure_problem(items: Any, inside_repeat: bool = False) -> tuple[str, int]:
    """First unsafe construct of a parsed pattern ("" when none) and the number of repeats in it."""
    from re import _constants as sre  # noqa: PLC0415 - the parser's opcodes (Python >= 3.11)

    repeats = 0
    for op, argument in items:
        if op in (sre.MAX_REPEAT, sre.MIN_REPEAT, getattr(sre, "POSSESSIVE_REPEAT", None)):
            low, high, body = argument
            if high > 1:
                if inside_repeat:
                    return "nested quantifier (a repeat inside a repeat, e.g. (a+)+) backtracks catastrophically", 0
                repeats += 1
            problem, inner = _regex_structure_problem(body, inside_repeat or high > 1)
        elif op == sre.SUBPATTERN:
            problem, inner = _regex_structure_problem(argument[-1], inside_repeat)
        elif op == sre.BRANCH:
            if inside_repeat:
                return "alternation inside a repeat (e.g. (x|xx)+) backtracks catastrophically", 0
            problem, inner = "", 0
            for branch in argument[1]:
                problem, count = _regex_structure_problem(branch, inside_repeat)
                inner = max(inner, count)
                if problem:
                    break
        elif op in (sre.ASSERT, sre.ASSERT_NOT):
            problem, inner = _regex_structure_problem(argument[1], inside_repeat)
        elif op == getattr(sre, "ATOMIC_GROUP", None):
            problem, inner = _regex_structure_problem(argument, inside_repeat)
        elif op in (sre.GROUPREF, sre.GROUPREF_EXISTS):
            return "backreference (\\1, (?P=name)) not allowed in a file-name rule", 0
        else:
            continue
        if problem:
            return problem, 0
        repeats += inner
    return "", repeats


def check_safe_regex(pattern: str) -> str:
    r"""Compile a user regular expression, refusing ones that are invalid or can backtrack catastrophically.

    Refused: patterns longer than :data:`MAX_REGEX_LENGTH`, syntax errors, nested quantifiers
    (``(a+)+``), alternation under a repeat (``(x|xx)+``), backreferences and more than
    :data:`MAX_REGEX_REPEATS` repeats, so every accepted rule searches a file name in milliseconds.

    Examples
    --------
    >>> check_safe_regex(r"t2[-_]?flair")
    't2[-_]?flair'
    >>> check_safe_regex("(a+)+$")
    Traceback (most recent call last):
    ...
    ValueError: '(a+)+$': nested quantifier (a repeat inside a repeat, e.g. (a+)+) backtracks catastrophically
    """
    if not isinstance(pattern, str):
        raise ValueError(f"expected a regular expression (text), got {type(pattern).__name__}")
    if len(pattern) > MAX_REGEX_LENGTH:
        raise ValueError(f"regular expression longer than {MAX_REGEX_LENGTH} characters ({len(pattern)})")
    try:
        re.compile(pattern, re.IGNORECASE)
        from re import _parser  # noqa: PLC0415 - the standard library's own parser (Python >= 3.11)

        parsed = _parser.parse(pattern, re.IGNORECASE)
    except re.error as error:
        raise ValueError(f"invalid regular expression {pattern!r}: {error}") from None
    problem, repeats = _regex_structure_problem(list(parsed))
    if problem:
        raise ValueError(f"{pattern!r}: {problem}")
    if repeats > MAX_REGEX_REPEATS:
        raise ValueError(
            f"{pattern!r}: {repeats} repeats (*, +, {{m,n}}); at most {MAX_REGEX_REPEATS} are allowed, "
            "more backtrack for seconds to minutes on a long file name"
        )
    return pattern


class ConfigError(ValueError):
    """A configuration or data file failed validation; the message names file and field."""


def yaml_problem(error: yaml.YAMLError) -> str:
    """PyYAML's error on one line: ``line L, column C: problem``.

    Examples
    --------
    >>> try:
    ...     yaml.safe_load("a: [1, 2")
    ... except yaml.YAMLError as error:
    ...     print(yaml_problem(error))
    line 1, column 9: expected ',' or ']', but got '<stream end>'
    """
    mark = getattr(error, "problem_mark", None)
    problem = getattr(error, "problem", None) or str(error)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    return where + " ".join(str(problem).split())


def read_yaml(path: Path) -> dict[str, Any]:
    """Read a YAML mapping safely; a ``ConfigError`` names the file on any problem."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(f"{path}: cannot read ({error.strerror or error})") from error
    try:
        content = safe_load_unique(text)
    except DuplicateKeyError as error:
        raise ConfigError(f"{path}: {error}") from None
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: invalid YAML: {yaml_problem(error)}") from None
    if content is None:
        return {}
    if not isinstance(content, dict):
        raise ConfigError(f"{path}: top level must be a mapping, got {type(content).__name__}")
    return content


def format_validation_error(path: Path | str, error: ValidationError) -> str:
    """One message per failing field: ``file: field.sub: problem``."""
    lines = []
    for item in error.errors():
        field = ".".join(str(part) for part in item["loc"]) or "(top level)"
        lines.append(f"{path}: {field}: {item['msg']}")
    return "; ".join(lines)
