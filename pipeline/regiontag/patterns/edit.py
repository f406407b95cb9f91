"""Adding and removing lesion patterns in a library folder, never leaving it half-written.

Every change is written to a temporary file in the library folder and renamed into
place (:func:`regiontag.outputs.contract.write_text`), after the new content has been validated;
removing a pattern rewrites its disease file without that pattern's YAML block (comments
elsewhere in the file survive), or deletes the file when it was the last pattern.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from regiontag.outputs.contract import write_text
from regiontag.patterns.library import build_library, Library, load_disease_file, parse_disease, PatternError
from regiontag.patterns.schema import Disease
from regiontag.resources import pattern_files


@dataclass(frozen=True)
class RemovalTarget:
    """What ``patterns remove NAME`` would delete."""

    disease: Disease
    file: Path
    pattern_ids: tuple[str, ...]
    whole_disease: bool

    @property
    def label(self) -> str:
        """Human description used in the confirmation question."""
        if self.whole_disease:
            return f"disease {self.disease.disease!r} ({len(self.pattern_ids)} lesion pattern(s): {', '.join(self.pattern_ids)})"
        pattern = next(p for p in self.disease.patterns if p.id == self.pattern_ids[0])
        return f"{pattern.name} ({pattern.id})"


def find_removal_target(library: Library, name: str) -> RemovalTarget:
    """Resolve NAME: a pattern id or name, else a disease id.

    Raises
    ------
    KeyError
        When nothing matches (message lists the closest pattern ids).
    """
    try:
        pattern = library.get(name)
    except KeyError:
        for disease in library.diseases:
            if disease.id == name:
                ids = tuple(p.id for p in disease.patterns)
                return RemovalTarget(disease, library.files[disease.id], ids, True)
        raise
    disease = library.disease(pattern.disease_id)
    whole = len(disease.patterns) == 1
    return RemovalTarget(disease, library.files[disease.id], (pattern.id,), whole)


def _line_start(text: str, index: int) -> int:
    return text.rfind("\n", 0, index) + 1


def text_without_pattern(text: str, pattern_id: str) -> str | None:
    """The YAML text with one item of ``patterns:`` cut out (block style), else None."""
    try:
        root = yaml.compose(text)
    except yaml.YAMLError:
        return None
    if not isinstance(root, yaml.MappingNode):
        return None
    sequence = next((v for k, v in root.value if getattr(k, "value", None) == "patterns"), None)
    if not isinstance(sequence, yaml.SequenceNode) or sequence.flow_style:
        return None
    items = sequence.value
    for index, item in enumerate(items):
        if not isinstance(item, yaml.MappingNode):
            continue
        ids = [v.value for k, v in item.value if getattr(k, "value", None) == "id" and isinstance(v, yaml.ScalarNode)]
        if ids != [pattern_id]:
            continue
        start = _line_start(text, item.start_mark.index)
        if index + 1 < len(items):
            end = _line_start(text, items[index + 1].start_mark.index)
        else:
            end = item.end_mark.index
        return text[:start] + text[end:]
    return None


def _dump_without(disease_raw: dict, pattern_id: str) -> str:
    remaining = dict(disease_raw)
    remaining["patterns"] = [p for p in disease_raw.get("patterns", []) if p.get("id") != pattern_id]
    return yaml.safe_dump(remaining, sort_keys=False, allow_unicode=True, width=110)


def remove_from_library(target: RemovalTarget) -> list[Path]:
    """Delete the target's patterns (atomic per file). Returns the files changed or deleted."""
    if target.whole_disease:
        target.file.unlink()
        return [target.file]
    pattern_id = target.pattern_ids[0]
    text = target.file.read_text(encoding="utf-8")
    new_text = text_without_pattern(text, pattern_id)
    expected = [p.id for p in target.disease.patterns if p.id != pattern_id]
    candidate_texts = [t for t in (new_text,) if t is not None]
    candidate_texts.append(_dump_without(yaml.safe_load(text), pattern_id))
    for candidate in candidate_texts:
        try:
            raw = yaml.safe_load(candidate)
            disease = parse_disease(raw if isinstance(raw, dict) else {}, target.file)
        except (yaml.YAMLError, PatternError):
            continue
        if [p.id for p in disease.patterns] == expected:
            write_text(candidate, target.file)
            return [target.file]
    raise PatternError(f"{target.file}: could not rewrite the file without pattern {pattern_id!r}; nothing changed")


def add_to_library(source: str | Path, directory: str | Path, replace: bool = False) -> Path:
    """Validate a disease file and copy it into the library as ``<disease id>.yaml``.

    Parameters
    ----------
    source : str or Path
        The new disease YAML file.
    directory : str or Path
        Library folder.
    replace : bool
        Replace a disease with the same id (otherwise that is an error).

    Returns
    -------
    Path
        The file written in the library.

    Raises
    ------
    PatternError
        Invalid file, or ids already used by another file of the library.
    """
    source, directory = Path(source), Path(directory)
    disease = load_disease_file(source)
    directory.mkdir(parents=True, exist_ok=True)
    existing = {path: load_disease_file(path) for path in pattern_files(directory)}
    destination = directory / f"{disease.id}.yaml"
    for path, other in list(existing.items()):
        clash = other.id == disease.id or path == destination
        if clash and not replace:
            raise PatternError(
                f"{source}: id: disease {disease.id!r} would replace {path} in the library; "
                "use --replace to replace it"
            )
        if other.id == disease.id:
            destination = path
        if clash:
            del existing[path]
    build_library({**existing, destination: disease}, directory)  # raises on pattern id clashes
    write_text(source.read_text(encoding="utf-8"), destination)
    return destination
