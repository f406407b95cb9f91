"""The resume fingerprint covers exactly what changes a session's results.

Both directions, through ``run_session`` with the fast fake brain stage of
``tests/workflows/test_session.py``: editing the pattern library actually used
(shipped default via ``REGIONTAG_PATTERNS``, an explicit ``patterns_dir``,
``config.scoring.patterns_dir``, a ``.yml`` file) recomputes the session;
changing a report setting or an accuracy threshold does not.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from regiontag.config import Config, config_to_dict
from regiontag.outputs.provenance import (
    ANALYSIS_SECTIONS,
    definitions_hash,
    fingerprint_of,
    pattern_library_dir,
    session_fingerprint,
)
from regiontag.patterns.library import load_library
from regiontag.resources import pattern_files
from regiontag.resources import configs_dir
from regiontag.types import ScanInput, Session
from regiontag.workflows.session import is_complete, run_session

from tests.workflows import test_session as session_tests
from tests.workflows.test_session import make_session, write_scan

fake_brain_stage = session_tests.fake_brain_stage  # the fast stand-in for the brain stage (a fixture)

CHECKSUMS = {"s1_FLAIR.nii.gz": "ab12"}


def _accuracy_section() -> str:
    """``accuracy`` (``validation`` before the rename)."""
    return "accuracy" if "accuracy" in Config.model_fields else "validation"


def _with(section: str, **values) -> Config:
    return Config.model_validate({section: values})


def _library_copy(tmp_path: Path, name: str = "library") -> Path:
    target = tmp_path / name
    shutil.copytree(configs_dir() / "patterns", target)
    return target


def _edit(path: Path) -> None:
    """Change a pattern file's bytes (a comment: still the same, valid library)."""
    path.write_text(path.read_text(encoding="utf-8") + "\n# edited\n", encoding="utf-8")


# --- the fingerprint itself ---------------------------------------------------------------------
def test_only_analysis_sections_change_the_fingerprint() -> None:
    base = session_fingerprint(CHECKSUMS, Config())
    accuracy = _accuracy_section()
    threshold = next(name for name, value in config_to_dict(Config())[accuracy].items() if isinstance(value, float))
    unchanged = [
        _with("report", enabled=False),
        _with(accuracy, **{threshold: 0.5}),
        _with("limits", max_voxels=10**7),
        _with("discovery", sequence_overrides={"x.nii.gz": "T2w"}),
    ]
    for config in unchanged:
        assert session_fingerprint(CHECKSUMS, config) == base
    changed = [
        _with("preprocessing", n4=False),
        _with("registration", random_seed=7),
        _with("detection", min_cluster_mm3=20.0),
        _with("involvement", min_fraction=0.5),
        _with("cord", lesion_z_threshold=5.0),
        _with("scoring", match_threshold=3.0),
        _with("cord", atlas_path=str(configs_dir())),  # the cord atlas used, by path
    ]
    prints = {session_fingerprint(CHECKSUMS, config) for config in changed}
    assert base not in prints and len(prints) == len(changed)
    assert set(ANALYSIS_SECTIONS) <= set(config_to_dict(Config()))


def test_inputs_classification_and_version_change_the_fingerprint(monkeypatch) -> None:
    base = session_fingerprint(CHECKSUMS, Config())
    assert session_fingerprint({"s1_FLAIR.nii.gz": "cd34"}, Config()) != base
    flair = ScanInput(Path("s1_FLAIR.nii.gz"), "FLAIR", "filename", "brain", "filename")
    as_t2 = ScanInput(Path("s1_FLAIR.nii.gz"), "T2w", "config override", "brain", "config")
    as_cord = ScanInput(Path("s1_FLAIR.nii.gz"), "FLAIR", "filename", "cord", "config")
    prints = {session_fingerprint(CHECKSUMS, Config(), scans=[scan]) for scan in (flair, as_t2, as_cord)}
    assert len(prints) == 3
    relabelled = ScanInput(Path("s1_FLAIR.nii.gz"), "FLAIR", "other rule", "brain", "other source")
    assert session_fingerprint(CHECKSUMS, Config(), scans=[relabelled]) == session_fingerprint(
        CHECKSUMS, Config(), scans=[flair])  # how a decision was explained does not change results
    from regiontag.outputs import provenance

    monkeypatch.setattr(provenance, "__version__", "0.0.0-test")
    assert session_fingerprint(CHECKSUMS, Config()) != base


def test_library_resolution_and_hashed_files(tmp_path, monkeypatch) -> None:
    explicit, configured, env = (_library_copy(tmp_path, name) for name in ("explicit", "configured", "env"))
    monkeypatch.setenv("REGIONTAG_PATTERNS", str(env))
    config = _with("scoring", patterns_dir=str(configured))
    assert pattern_library_dir(explicit, config) == explicit
    assert pattern_library_dir(None, config) == configured
    assert pattern_library_dir(None, Config()) == env
    (env / "nmosd.yaml").rename(env / "nmosd.yml")
    (env / ".hidden.yaml").write_text("not: a pattern\n")
    files = pattern_files(env)
    assert env / "nmosd.yml" in files and env / ".hidden.yaml" not in files
    assert set(load_library(env).files.values()) == set(files)  # hashed files == loaded files
    before = definitions_hash(env)
    _edit(env / "nmosd.yml")
    assert definitions_hash(env) != before
    before = definitions_hash(env)
    (env / "README.md").write_text("notes change nothing\n")
    assert definitions_hash(env) == before


def test_changed_input_is_not_complete(tmp_path: Path, fake_brain_stage) -> None:
    session = make_session(tmp_path)
    run_session(session, tmp_path / "out", Config(), report=False)
    write_scan(session.scans[0].path, value=120.0)
    assert not is_complete(session, tmp_path / "out", Config())


def test_fingerprint_in_provenance_is_the_session_fingerprint(tmp_path: Path, fake_brain_stage) -> None:
    import json

    session = make_session(tmp_path)
    run_session(session, tmp_path / "out", Config(), report=False)
    provenance = json.loads((tmp_path / "out" / "s1" / "provenance.json").read_text())
    assert provenance["fingerprint"] == fingerprint_of(session, Config())


# --- through run_session: what recomputes and what does not -------------------------------------
def _run(session: Session, tmp_path: Path, config: Config | None = None, **options) -> str:
    return run_session(session, tmp_path / "out", config or Config(), report=False, **options).status


def test_editing_the_default_library_recomputes(tmp_path, monkeypatch, fake_brain_stage) -> None:
    library = _library_copy(tmp_path)
    monkeypatch.setenv("REGIONTAG_PATTERNS", str(library))
    session = make_session(tmp_path)
    assert _run(session, tmp_path) == "ok"
    assert _run(session, tmp_path) == "skipped"
    _edit(library / "multiple-sclerosis.yaml")
    assert _run(session, tmp_path) == "ok"
    assert _run(session, tmp_path) == "skipped"
    assert len(fake_brain_stage) == 2


def test_editing_an_explicit_or_configured_library_recomputes(tmp_path, fake_brain_stage) -> None:
    library = _library_copy(tmp_path)
    session = make_session(tmp_path)
    assert _run(session, tmp_path, patterns_dir=library) == "ok"
    assert _run(session, tmp_path, patterns_dir=library) == "skipped"
    _edit(library / "nmosd.yaml")
    assert _run(session, tmp_path, patterns_dir=library) == "ok"
    configured = _with("scoring", patterns_dir=str(library))
    assert _run(session, tmp_path, configured) == "skipped"  # the same library, named in the config
    _edit(library / "nmosd.yaml")
    assert _run(session, tmp_path, configured) == "ok"
    assert len(fake_brain_stage) == 3


def test_editing_a_yml_pattern_file_recomputes(tmp_path, fake_brain_stage) -> None:
    library = _library_copy(tmp_path)
    (library / "nmosd.yaml").rename(library / "nmosd.yml")
    session = make_session(tmp_path)
    assert _run(session, tmp_path, patterns_dir=library) == "ok"
    assert _run(session, tmp_path, patterns_dir=library) == "skipped"
    _edit(library / "nmosd.yml")
    assert _run(session, tmp_path, patterns_dir=library) == "ok"
    assert len(fake_brain_stage) == 2


@pytest.mark.parametrize("setting", ["report", "accuracy"])
def test_report_and_accuracy_settings_do_not_recompute(tmp_path, fake_brain_stage, setting) -> None:
    session = make_session(tmp_path)
    assert _run(session, tmp_path) == "ok"
    if setting == "report":
        changed = _with("report", enabled=False)
    else:
        changed = _with(_accuracy_section(), min_pattern_top1=0.5)
    assert _run(session, tmp_path, changed) == "skipped"
    assert len(fake_brain_stage) == 1
