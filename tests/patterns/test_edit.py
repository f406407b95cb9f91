"""Adding and removing lesion patterns in a library folder (``regiontag.patterns.edit``)."""

from __future__ import annotations

import pytest
import yaml

from regiontag.patterns.edit import (
    add_to_library,
    find_removal_target,
    remove_from_library,
    text_without_pattern,
)
from regiontag.patterns.library import PatternError, load_library
from tests.patterns.helpers import LATERAL, minimal_disease, write

TWO_PATTERNS = """\
# top comment
id: two
disease: Two patterns
references: ["x"]
patterns:
  - id: first
    name: First
    body_part: cord
    sequences: [T2w]
    regions:
      - {region: "Spinal cord > Spinal white matter > Posterior column", role: core, p_involved: 0.9}
  # comment between the patterns
  - id: second
    name: Second
    body_part: cord
    sequences: [T2w]
    regions:
      - {region: "Spinal cord > Spinal white matter > Lateral column", role: core, p_involved: 0.9}
"""


def names(directory):
    return sorted(path.name for path in directory.iterdir())


def test_add_copies_the_file_under_the_disease_id(library_dir, tmp_path):
    before = len(load_library(library_dir).patterns)
    source = write(tmp_path, minimal_disease(), "source.yaml")
    source.write_text("# kept\n" + source.read_text(), encoding="utf-8")
    destination = add_to_library(source, library_dir)
    assert destination == library_dir / "test-disease.yaml"
    assert destination.read_text(encoding="utf-8") == source.read_text(encoding="utf-8")
    library = load_library(library_dir)
    assert len(library.patterns) == before + 1
    assert library.get("test-pattern").disease_name == "Test disease"


def test_add_into_a_new_folder(tmp_path):
    destination = add_to_library(write(tmp_path, minimal_disease(), "source.yaml"), tmp_path / "new" / "lib")
    assert names(tmp_path / "new" / "lib") == ["test-disease.yaml"]
    assert [p.id for p in load_library(destination.parent).patterns] == ["test-pattern"]


def test_add_duplicate_disease_needs_replace(library_dir, tmp_path):
    add_to_library(write(tmp_path, minimal_disease(), "source.yaml"), library_dir)
    listing = names(library_dir)
    changed = minimal_disease(name="Changed name")
    source = write(tmp_path, changed, "again.yaml")
    with pytest.raises(PatternError) as error:
        add_to_library(source, library_dir)
    message = str(error.value)
    assert message.startswith(f"{source}: id: disease 'test-disease' would replace {library_dir / 'test-disease.yaml'}")
    assert "use --replace" in message
    assert names(library_dir) == listing
    assert load_library(library_dir).get("test-pattern").name == "Test pattern"  # unchanged
    assert add_to_library(source, library_dir, replace=True) == library_dir / "test-disease.yaml"
    assert load_library(library_dir).get("test-pattern").name == "Changed name"
    assert names(library_dir) == listing


def test_add_duplicate_pattern_id_names_file_and_field(library_dir, tmp_path):
    content = minimal_disease(id="ms-cord")  # a pattern id of the shipped library
    source = write(tmp_path, content, "clash.yaml")
    listing = names(library_dir)
    with pytest.raises(PatternError) as error:
        add_to_library(source, library_dir)
    assert str(error.value) == (
        f"{library_dir / 'test-disease.yaml'}: pattern 'ms-cord': id: already used in "
        f"{library_dir / 'multiple-sclerosis.yaml'}"
    )
    assert names(library_dir) == listing


def test_add_invalid_file_names_file_and_field(library_dir, tmp_path):
    source = write(tmp_path, minimal_disease(body_part="spine"), "bad.yaml")
    listing = names(library_dir)
    with pytest.raises(PatternError) as error:
        add_to_library(source, library_dir)
    assert str(error.value).startswith(f"{source}: pattern 'test-pattern': body_part:")
    assert names(library_dir) == listing


def test_remove_one_pattern_keeps_the_rest_and_the_comments(tmp_path):
    (tmp_path / "two.yaml").write_text(TWO_PATTERNS, encoding="utf-8")
    library = load_library(tmp_path)
    target = find_removal_target(library, "first")
    assert (target.pattern_ids, target.whole_disease, target.label) == (("first",), False, "First (first)")
    assert remove_from_library(target) == [tmp_path / "two.yaml"]
    text = (tmp_path / "two.yaml").read_text(encoding="utf-8")
    # the first item's block (up to the next item, its trailing comment included) is cut, the rest is kept
    assert text == TWO_PATTERNS[: TWO_PATTERNS.index("  - id: first")] + TWO_PATTERNS[TWO_PATTERNS.index("  - id: second"):]
    assert [p.id for p in load_library(tmp_path).patterns] == ["second"]
    assert load_library(tmp_path).patterns[0].regions[0].region == LATERAL


def test_remove_last_pattern_or_disease_deletes_the_file(tmp_path):
    (tmp_path / "two.yaml").write_text(TWO_PATTERNS, encoding="utf-8")
    write(tmp_path, minimal_disease())
    library = load_library(tmp_path)
    whole = find_removal_target(library, "two")
    assert whole.whole_disease and whole.pattern_ids == ("first", "second")
    assert whole.label == "disease 'Two patterns' (2 lesion pattern(s): first, second)"
    single = find_removal_target(library, "Test pattern")  # by name
    assert single.whole_disease and single.file == tmp_path / "test-disease.yaml"
    assert remove_from_library(whole) == [tmp_path / "two.yaml"]
    assert names(tmp_path) == ["test-disease.yaml"]
    with pytest.raises(KeyError, match="no lesion pattern 'nothing'"):
        find_removal_target(library, "nothing")


def test_text_without_pattern():
    without_second = text_without_pattern(TWO_PATTERNS, "second")
    assert without_second == TWO_PATTERNS[: TWO_PATTERNS.index("  - id: second")].rstrip(" ")
    assert [p["id"] for p in yaml.safe_load(without_second)["patterns"]] == ["first"]
    assert text_without_pattern(TWO_PATTERNS, "absent") is None
    assert text_without_pattern("patterns: [{id: a}, {id: b}]", "a") is None  # flow style
    assert text_without_pattern("- a list", "a") is None
    assert text_without_pattern("a: [unclosed", "a") is None


def test_remove_rewrites_flow_style_files(tmp_path):
    content = yaml.safe_load(TWO_PATTERNS)
    (tmp_path / "two.yaml").write_text(yaml.safe_dump(content, default_flow_style=True), encoding="utf-8")
    target = find_removal_target(load_library(tmp_path), "second")
    remove_from_library(target)
    assert [p.id for p in load_library(tmp_path).patterns] == ["first"]
