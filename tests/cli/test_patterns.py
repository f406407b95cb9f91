"""`regiontag patterns`, `regiontag score` and `regiontag tag` on temporary libraries and output folders."""

from __future__ import annotations

import argparse
import json
import os
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
import yaml

from regiontag import outputs
from regiontag.cli import patterns as patterns_cli
from regiontag.cli.main import main
from regiontag.patterns import load_library
from regiontag.patterns.simulate import synthetic_region_table
from regiontag.resources import patterns_dir

POSTERIOR = "Spinal cord > Spinal white matter > Posterior column"


@pytest.fixture()
def library_dir(tmp_path) -> Path:
    """A copy of the shipped library that tests may change."""
    target = tmp_path / "patterns"
    shutil.copytree(patterns_dir(), target)
    return target


def new_disease_file(tmp_path: Path, disease_id: str = "test-myelopathy", pattern_id: str = "test-dorsal") -> Path:
    content = {
        "id": disease_id, "disease": "Test myelopathy", "references": ["Doe J (2020). Test. J Test 1:1."],
        "patterns": [{
            "id": pattern_id, "name": "Test dorsal myelopathy", "body_part": "cord", "sequences": ["T2w"],
            "regions": [{"region": POSTERIOR, "role": "core", "laterality": "bilateral", "p_involved": 0.9}],
        }],
    }
    path = tmp_path / f"{disease_id}-source.yaml"
    path.write_text("# a comment kept on copy\n" + yaml.safe_dump(content, sort_keys=False), encoding="utf-8")
    return path


def test_parser_actions_and_the_library_option_on_both_levels(tmp_path, capsys):
    root = argparse.ArgumentParser(prog="regiontag")
    patterns_cli.add_parser(root.add_subparsers(dest="command"))
    assert root.parse_args(["patterns", "--library", str(tmp_path), "list"]).library == tmp_path
    assert root.parse_args(["patterns", "list", "--library", str(tmp_path)]).library == tmp_path
    remove = root.parse_args(["patterns", "remove", "ms-brain", "-y"])
    assert (remove.name, remove.yes, remove.func) == ("ms-brain", True, patterns_cli.run_remove)
    with pytest.raises(SystemExit) as exit_info:
        root.parse_args(["patterns", "show"])
    assert exit_info.value.code == 2
    assert "the following arguments are required: NAME" in capsys.readouterr().err


def test_confirm_accepts_only_yes(monkeypatch):
    answers = iter(["y", "yes", "", "no", "Y "])
    monkeypatch.setattr("builtins.input", lambda prompt: next(answers))
    assert [patterns_cli.confirm("remove?") for _ in range(5)] == [True, True, False, False, True]


def test_list_and_show(library_dir, capsys):
    assert main(["patterns", "--library", str(library_dir), "list"]) == 0
    listing = capsys.readouterr().out
    assert "b12-subacute-combined-degeneration  cord   Vitamin B12 deficiency" in listing
    assert "11 lesion patterns of 9 diseases" in listing
    assert main(["patterns", "--library", str(library_dir), "show", "b12-leukoencephalopathy"]) == 0
    shown = capsys.readouterr().out
    assert "Middle cerebellar peduncle" in shown and "doi:10.3390/nu5114521" in shown
    assert main(["patterns", "--library", str(library_dir), "show", "vitamin-b12-deficiency"]) == 0
    assert "Subacute combined degeneration" in capsys.readouterr().out


def test_show_unknown_names_closest(library_dir, capsys):
    assert main(["patterns", "--library", str(library_dir), "show", "ms-cort"]) == 1
    assert "ms-cord" in capsys.readouterr().err


def test_show_a_partial_name_suggests_the_ids_that_contain_it(library_dir, capsys):
    """Issue 19.7: `patterns show b12` names the b12 patterns and disease, never "closest: []"."""
    assert main(["patterns", "--library", str(library_dir), "show", "b12"]) == 1
    error = capsys.readouterr().err
    from regiontag.patterns.library import load_library

    library = load_library(library_dir)
    expected = [p.id for p in library.patterns if "b12" in p.id] + [
        d.id for d in library.diseases if "b12" in d.id and d.id not in {p.id for p in library.patterns}]
    assert {"b12-leukoencephalopathy", "vitamin-b12-deficiency"} <= set(expected)
    assert error == (f"regiontag patterns: no lesion pattern or disease 'b12'; did you mean {', '.join(expected)}? "
                     f"(`regiontag patterns list` shows all {len(library.patterns)} patterns)\n")
    assert main(["patterns", "--library", str(library_dir), "show", "qqqq"]) == 1
    error = capsys.readouterr().err
    assert "[]" not in error and "no similar id" in error


def test_validate_library_file_and_errors(library_dir, tmp_path, capsys):
    assert main(["patterns", "validate", str(library_dir)]) == 0
    assert "OK (9 disease(s), 11 lesion pattern(s))" in capsys.readouterr().out
    good = new_disease_file(tmp_path)
    assert main(["patterns", "validate", str(good)]) == 0
    bad = tmp_path / "bad.yaml"
    bad.write_text(good.read_text().replace(POSTERIOR, "Spinal cord > Posterior colum"))
    assert main(["patterns", "validate", str(bad)]) == 1
    error = capsys.readouterr().err
    assert f"{bad}: pattern 'test-dorsal': regions: regions[0].region: unknown cord region" in error
    assert f"closest valid region: '{POSTERIOR}'" in error


def test_validate_simulate_reports_self_consistency(library_dir, capsys):
    assert main(["patterns", "--library", str(library_dir), "validate", "--simulate", "2"]) == 0
    out = capsys.readouterr().out
    assert "top1" in out and "wernicke-encephalopathy" in out


def test_add_then_refuse_duplicate_then_replace(library_dir, tmp_path, capsys):
    source = new_disease_file(tmp_path)
    assert main(["patterns", "--library", str(library_dir), "add", str(source)]) == 0
    added = library_dir / "test-myelopathy.yaml"
    assert added.read_text() == source.read_text()  # copied verbatim, comments included
    assert "test-dorsal" in {p.id for p in load_library(library_dir).patterns}
    assert main(["patterns", "--library", str(library_dir), "add", str(source)]) == 1
    assert "use --replace" in capsys.readouterr().err
    assert main(["patterns", "--library", str(library_dir), "add", "--replace", str(source)]) == 0


def test_add_refuses_pattern_id_clash_and_invalid_file(library_dir, tmp_path, capsys):
    before = sorted(p.name for p in library_dir.iterdir())
    clash = new_disease_file(tmp_path, "other-disease", "ms-cord")
    assert main(["patterns", "--library", str(library_dir), "add", str(clash)]) == 1
    assert "pattern 'ms-cord': id: already used in" in capsys.readouterr().err
    invalid = tmp_path / "invalid.yaml"
    invalid.write_text("id: x\ndisease: X\n")
    assert main(["patterns", "--library", str(library_dir), "add", str(invalid)]) == 1
    assert sorted(p.name for p in library_dir.iterdir()) == before


def test_remove_asks_and_respects_no(library_dir, monkeypatch, capsys):
    file = library_dir / "vitamin-b12-deficiency.yaml"
    before = file.read_text()
    questions = []
    monkeypatch.setattr("builtins.input", lambda prompt: questions.append(prompt) or "n")
    assert main(["patterns", "--library", str(library_dir), "remove", "b12-leukoencephalopathy"]) == 1
    assert questions == ["Do you really want to delete lesion pattern b12-leukoencephalopathy? [y/N] "]
    assert file.read_text() == before
    assert "Not deleted." in capsys.readouterr().out


def test_remove_end_of_input_means_no(library_dir, monkeypatch):
    def no_input(prompt):
        raise EOFError

    monkeypatch.setattr("builtins.input", no_input)
    assert main(["patterns", "--library", str(library_dir), "remove", "ms-cord"]) == 1
    assert "ms-cord" in {p.id for p in load_library(library_dir).patterns}


def test_remove_confirmed_rewrites_file_keeping_other_pattern_and_comments(library_dir, monkeypatch):
    file = library_dir / "vitamin-b12-deficiency.yaml"
    monkeypatch.setattr("builtins.input", lambda prompt: "yes")
    assert main(["patterns", "--library", str(library_dir), "remove", "b12-leukoencephalopathy"]) == 0
    text = file.read_text()
    assert text.startswith("# Vitamin B12 (cobalamin) deficiency")
    assert "# the seed's two regions" in text
    library = load_library(library_dir)
    ids = {p.id for p in library.patterns}
    assert "b12-leukoencephalopathy" not in ids and "b12-subacute-combined-degeneration" in ids
    assert not [p for p in library_dir.iterdir() if p.name.startswith(".")]  # no temporary files left


def test_remove_first_pattern_of_file(library_dir):
    assert main(["patterns", "--library", str(library_dir), "remove", "ms-brain", "--yes"]) == 0
    ids = {p.id for p in load_library(library_dir).patterns}
    assert "ms-brain" not in ids and "ms-cord" in ids


def test_remove_yes_skips_prompt_and_last_pattern_deletes_file(library_dir, monkeypatch):
    def no_prompt(prompt):
        raise AssertionError("asked despite --yes")

    monkeypatch.setattr("builtins.input", no_prompt)
    assert main(["patterns", "--library", str(library_dir), "remove", "wernicke-encephalopathy", "--yes"]) == 0
    assert not (library_dir / "wernicke-encephalopathy.yaml").exists()
    # by name, as in the seed's "Delete lesion" dialogue
    assert main(["patterns", "--library", str(library_dir), "remove", "--yes",
                 "Subacute combined degeneration of spinal cord"]) == 0
    library = load_library(library_dir)
    assert "b12-subacute-combined-degeneration" not in {p.id for p in library.patterns}
    assert library.warnings()  # copper's mimic now dangles: reported, not fatal


def test_remove_whole_disease(library_dir, monkeypatch):
    questions = []
    monkeypatch.setattr("builtins.input", lambda prompt: questions.append(prompt) or "y")
    assert main(["patterns", "--library", str(library_dir), "remove", "multiple-sclerosis"]) == 0
    assert "ms-brain, ms-cord" in questions[0]
    assert not (library_dir / "multiple-sclerosis.yaml").exists()


def test_failed_write_leaves_library_untouched(library_dir, monkeypatch):
    file = library_dir / "multiple-sclerosis.yaml"
    before = file.read_text()

    def failing_replace(source, destination):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", failing_replace)
    assert main(["patterns", "--library", str(library_dir), "remove", "ms-cord", "--yes"]) == 1
    assert file.read_text() == before
    assert not [p for p in library_dir.iterdir() if p.name.startswith(".")]


def write_session(output_dir: Path, name: str, lesioned: dict, body_parts: tuple, features: dict) -> None:
    folder = output_dir / name
    folder.mkdir(parents=True)
    table = synthetic_region_table(lesioned, body_parts)
    table.insert(0, "session", name)
    outputs.write_csv(table, folder / outputs.REGIONS_CSV, outputs.REGION_COLUMNS)
    outputs.write_json({"body_parts_imaged": list(body_parts), "features": features}, folder / outputs.FINDINGS_JSON)


def test_score_rescores_sessions_from_files(library_dir, tmp_path, capsys):
    out = tmp_path / "out"
    write_session(out, "scd", {POSTERIOR: "both", "Spinal cord > Spinal white matter > Lateral column": "both"},
                  ("cord",), {"longitudinally_extensive": True})
    write_session(out, "healthy", {}, ("brain", "cord"), {})
    (out / "failed-session").mkdir()  # no regions.csv: not a finished session
    assert main(["score", str(out), "--patterns", str(library_dir)]) == 0
    printed = capsys.readouterr().out
    assert "scd: b12-subacute-combined-degeneration, copper-deficiency-myelopathy" in printed
    assert "healthy: no pattern matched" in printed
    session_scores = pd.read_csv(out / "scd" / outputs.SCORES_CSV)
    assert list(session_scores.columns) == outputs.SCORE_COLUMNS
    assert set(session_scores.loc[session_scores["rank"] == 1, "pattern"]) == {
        "b12-subacute-combined-degeneration", "copper-deficiency-myelopathy"}
    batch = pd.read_csv(out / outputs.SCORES_CSV)
    assert sorted(batch["session"].unique()) == ["healthy", "scd"]
    assert len(batch) == 2 * 11
    assert not batch.loc[batch["session"] == "healthy", "match"].any()

    # edit the library, re-score: the batch table follows, nothing else is needed
    assert main(["patterns", "--library", str(library_dir), "remove", "copper-deficiency-myelopathy", "--yes"]) == 0
    assert main(["score", str(out), "--patterns", str(library_dir)]) == 0
    batch = pd.read_csv(out / outputs.SCORES_CSV)
    assert len(batch) == 2 * 10
    scd = batch[batch["session"] == "scd"]
    assert scd.loc[scd["rank"] == 1, "pattern"].tolist() == ["b12-subacute-combined-degeneration"]


def test_score_missing_folder_and_bad_library(tmp_path, capsys):
    assert main(["score", str(tmp_path / "absent")]) == 2
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "broken.yaml").write_text("id: [\n")
    assert main(["score", str(tmp_path), "--patterns", str(tmp_path / "lib")]) == 2
    assert "broken.yaml: invalid YAML" in capsys.readouterr().err


def small_atlas():
    """A 24 mm cube 'MNI' atlas at 1 mm: periventricular WM left/right and central pons."""
    from regiontag.atlas.tree import Atlas, Region

    data = np.zeros((24, 24, 24), np.int16)
    data[4:10, 4:20, 8:16] = 1   # periventricular, right (x < midline in RAS)
    data[14:20, 4:20, 8:16] = 2  # periventricular, left
    data[10:14, 8:14, 0:6] = 3   # central pons (midline)
    affine = np.diag([1.0, 1.0, 1.0, 1.0])
    affine[:3, 3] = -12
    pv = "Cerebrum > Cerebral white matter > Periventricular white matter"
    regions = (
        Region("Cerebrum", {"right": (1,), "left": (2,)}, True),
        Region("Cerebrum > Cerebral white matter", {"right": (1,), "left": (2,)}, True),
        Region(pv, {"right": (1,), "left": (2,)}, True),
        Region("Brainstem", {"midline": (3,)}, False),
        Region("Brainstem > Pons", {"midline": (3,)}, False),
        Region("Brainstem > Pons > Central pons", {"midline": (3,)}, False),
    )
    return Atlas("brain", "MNI152NLin2009aSym", nib.Nifti1Image(data, affine), regions)


def test_tag_mni_mask_on_other_grid(library_dir, tmp_path):
    from regiontag.workflows.tag import tag_mask
    from regiontag.config import load_config

    atlas = small_atlas()
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    affine[:3, 3] = -12
    mask = np.zeros((12, 12, 12), np.float32)
    mask[5:6, 4:7, 0:3] = 0.9  # inside the central pons (x 10..12 mm -> voxel 5), probability map
    mask[2:4, 3:8, 4:7] = 0.2  # below --threshold: ignored
    mask_path = tmp_path / "lesion_space-MNI152.nii.gz"
    nib.save(nib.Nifti1Image(mask, affine), mask_path)
    result = tag_mask(mask_path, tmp_path / "tagged", load_config(), space="MNI152",
                      patterns_dir=library_dir, atlas=atlas, session="ext-1")
    written = pd.read_csv(tmp_path / "tagged" / outputs.REGIONS_CSV)
    assert list(written.columns) == outputs.REGION_COLUMNS and set(written["session"]) == {"ext-1"}
    involved = set(written.loc[written["involved"] & (written["side"] == "both"), "region"])
    assert involved == {"Brainstem", "Brainstem > Pons", "Brainstem > Pons > Central pons"}
    assert set(result.involved_regions) == involved and result.warnings == []
    findings = json.loads((tmp_path / "tagged" / outputs.FINDINGS_JSON).read_text())
    assert findings["body_parts_imaged"] == ["brain"] and findings["n_lesions"]["brain"] == 1
    score_table = pd.read_csv(tmp_path / "tagged" / outputs.SCORES_CSV)
    assert score_table.iloc[0]["pattern"] == "osmotic-demyelination"
    assert not score_table.loc[score_table["pattern"] == "ms-cord", "assessable"].iloc[0]


def test_library_option_after_the_action(library_dir, capsys):
    assert main(["patterns", "list", "--library", str(library_dir)]) == 0
    assert str(library_dir) in capsys.readouterr().out
    assert main(["patterns", "remove", "ms-cord", "--yes", "--library", str(library_dir)]) == 0
    assert "ms-cord" not in {p.id for p in load_library(library_dir).patterns}
    assert (patterns_dir() / "multiple-sclerosis.yaml").read_text().count("id: ms-cord") == 1  # shipped one untouched


def test_tag_subject_space_mask_uses_image_labels(library_dir, tmp_path):
    """Subject-space path with the registration replaced by labels already on IMAGE's grid."""
    from regiontag.workflows.tag import tag_mask
    from regiontag.config import load_config

    atlas = small_atlas()
    image_affine = np.diag([1.0, 1.0, 1.0, 1.0])
    image_affine[:3, 3] = -12
    image_path = tmp_path / "flair.nii.gz"
    nib.save(nib.Nifti1Image(np.ones((24, 24, 24), np.float32), image_affine), image_path)
    calls = []

    def fake_labeller(image, config, workdir, sequence="FLAIR"):
        calls.append((image.shape, sequence))
        return atlas.labels_img, {"registration_quality": 1.0}

    # mask drawn on a 2 mm grid covering both periventricular regions (x -8..-2 and 2..8 mm)
    mask_affine = np.diag([2.0, 2.0, 2.0, 1.0])
    mask_affine[:3, 3] = -12
    mask = np.zeros((12, 12, 12), np.uint8)
    mask[2:5, 3:9, 4:7] = 1
    mask[7:10, 3:9, 4:7] = 1
    mask_path = tmp_path / "lst_ai_mask.nii.gz"
    nib.save(nib.Nifti1Image(mask, mask_affine), mask_path)
    scores = tag_mask(mask_path, tmp_path / "subject", load_config(), image=image_path, sequence="T2w",
                      patterns_dir=library_dir, atlas=atlas, labeller=fake_labeller).scores
    assert calls == [((24, 24, 24), "T2w")]
    regions = pd.read_csv(tmp_path / "subject" / outputs.REGIONS_CSV)
    pv = regions[regions["region"] == "Cerebrum > Cerebral white matter > Periventricular white matter"]
    assert pv.set_index("side")["involved"].to_dict() == {"left": True, "right": True, "both": True}
    assert abs(pv.set_index("side").at["both", "laterality_index"]) < 0.2
    assert "ms-brain" in set(scores["pattern"])
