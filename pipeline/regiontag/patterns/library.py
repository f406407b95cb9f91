"""The lesion-pattern library: a folder of disease YAML files, loaded and validated.

Errors are :class:`PatternError` (a :class:`regiontag.config.ConfigError`) naming the
file, the pattern and the field, e.g.::

    configs/patterns/multiple-sclerosis.yaml: pattern 'ms-brain': regions[3].region:
    unknown brain region 'Corpus calosum'; closest valid region: 'Corpus callosum'
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from regiontag.config_checks import ConfigError, read_yaml
from regiontag.patterns.schema import Disease, Pattern
from regiontag.resources import pattern_files, patterns_dir



class PatternError(ConfigError):
    """A pattern file or library failed validation (message names file, pattern and field)."""


def _describe_location(raw: dict[str, Any], loc: tuple[Any, ...]) -> str:
    """``pattern 'id': field.sub`` for errors inside ``patterns[i]``, else the dotted field."""
    if len(loc) >= 2 and loc[0] == "patterns" and isinstance(loc[1], int):
        patterns = raw.get("patterns")
        pattern_id = None
        if isinstance(patterns, list) and loc[1] < len(patterns) and isinstance(patterns[loc[1]], dict):
            pattern_id = patterns[loc[1]].get("id")
        label = f"pattern {pattern_id!r}" if pattern_id else f"patterns[{loc[1]}]"
        rest = ".".join(str(part) for part in loc[2:])
        return f"{label}: {rest}" if rest else label
    return ".".join(str(part) for part in loc) or "(top level)"


def format_pattern_errors(path: Path | str, raw: dict[str, Any], error: ValidationError) -> str:
    """One line per problem: ``file: pattern 'id': field: message``."""
    lines = []
    for item in error.errors():
        message = item["msg"].removeprefix("Value error, ")
        lines.append(f"{path}: {_describe_location(raw, tuple(item['loc']))}: {message}")
    return "\n".join(lines)


def parse_disease(raw: dict[str, Any], source: Path | str) -> Disease:
    """Validate the content of one pattern file (``source`` is used in messages only)."""
    try:
        return Disease.model_validate(raw)
    except ValidationError as error:
        raise PatternError(format_pattern_errors(source, raw, error)) from None


def load_disease_file(path: str | Path) -> Disease:
    """Read and validate one disease YAML file.

    Raises
    ------
    PatternError
        Naming the file, the pattern and the field of every problem.
    """
    path = Path(path)
    try:
        raw = read_yaml(path)
    except ConfigError as error:
        raise PatternError(str(error)) from None
    return parse_disease(raw, path)


@dataclass
class Library:
    """All diseases and lesion patterns of a library folder.

    Attributes
    ----------
    directory : Path or None
        Folder the library was read from.
    diseases : list of Disease
        In file-name order.
    files : dict of str to Path
        Disease id -> its YAML file.
    """

    directory: Path | None
    diseases: list[Disease] = field(default_factory=list)
    files: dict[str, Path] = field(default_factory=dict)

    @property
    def patterns(self) -> list[Pattern]:
        """Every lesion pattern, in file order."""
        return [pattern for disease in self.diseases for pattern in disease.patterns]

    def get(self, name: str) -> Pattern:
        """The pattern with this id (or, failing that, this name, case-insensitive).

        Raises
        ------
        KeyError
            With the closest pattern ids.
        """
        for pattern in self.patterns:
            if pattern.id == name:
                return pattern
        for pattern in self.patterns:
            if pattern.name.casefold() == name.casefold():
                return pattern
        import difflib

        close = difflib.get_close_matches(name, [p.id for p in self.patterns], n=3, cutoff=0.3)
        raise KeyError(f"no lesion pattern {name!r}; closest: {close}")

    def disease(self, disease_id: str) -> Disease:
        """The disease with this id (``KeyError`` if absent)."""
        for disease in self.diseases:
            if disease.id == disease_id:
                return disease
        raise KeyError(f"no disease {disease_id!r}")

    def file_of(self, pattern: Pattern) -> Path:
        """The YAML file holding ``pattern``."""
        return self.files[pattern.disease_id]

    def mimics_of(self, pattern_id: str) -> set[str]:
        """Patterns declared indistinguishable from ``pattern_id`` (either direction, present ones)."""
        ids = {pattern.id for pattern in self.patterns}
        found = set()
        for pattern in self.patterns:
            if pattern.id == pattern_id:
                found.update(mimic for mimic in pattern.mimics if mimic in ids)
            elif pattern_id in pattern.mimics:
                found.add(pattern.id)
        return found

    def warnings(self) -> list[str]:
        """Non-fatal problems: mimics naming absent patterns."""
        ids = {pattern.id for pattern in self.patterns}
        messages = []
        for pattern in self.patterns:
            for mimic in pattern.mimics:
                if mimic not in ids:
                    messages.append(
                        f"{self.files.get(pattern.disease_id, '?')}: pattern {pattern.id!r}: mimics: "
                        f"{mimic!r} is not in the library (ignored)"
                    )
        return messages


def build_library(diseases: dict[Path, Disease], directory: Path | None = None) -> Library:
    """Assemble a library, checking ids are unique across files.

    Raises
    ------
    PatternError
        When two files share a disease id or a pattern id (both files named).
    """
    library = Library(directory=directory)
    pattern_sources: dict[str, Path] = {}
    for path, disease in diseases.items():
        if disease.id in library.files:
            raise PatternError(
                f"{path}: id: disease id {disease.id!r} is already used by {library.files[disease.id]}"
            )
        for pattern in disease.patterns:
            if pattern.id in pattern_sources:
                raise PatternError(
                    f"{path}: pattern {pattern.id!r}: id: already used in {pattern_sources[pattern.id]}"
                )
            pattern_sources[pattern.id] = path
        library.files[disease.id] = path
        library.diseases.append(disease)
    return library


def load_library(directory: str | Path | None = None) -> Library:
    """Load and validate every disease file of a library folder.

    Parameters
    ----------
    directory : str or Path, optional
        Library folder; default :func:`regiontag.resources.patterns_dir`
        (``configs/patterns``, or ``$REGIONTAG_PATTERNS``).

    Returns
    -------
    Library

    Raises
    ------
    PatternError
        Naming the file, pattern and field of the first invalid file, or when the folder
        is missing or holds no pattern.
    """
    if directory is None:
        directory = patterns_dir()
    directory = Path(directory)
    if not directory.is_dir():
        raise PatternError(f"{directory}: lesion-pattern library folder not found")
    diseases = {path: load_disease_file(path) for path in pattern_files(directory)}
    library = build_library(diseases, directory)
    if not library.patterns:
        raise PatternError(f"{directory}: no lesion pattern files (*.yaml) found")
    return library
