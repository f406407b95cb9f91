"""Config safety: unknown keys, wrong types, ranges, unsafe YAML and path fields, each named with file and field."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel, ValidationError

from regiontag.config import (
    Config,
    ConfigError,
    InputPath,
    LimitsConfig,
    RelativePath,
    config_to_dict,
    load_config,
)
from regiontag.config_checks import read_yaml
from regiontag.resources import configs_dir


def _write(tmp_path: Path, text: str, name: str = "user config.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _error(path: Path) -> str:
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    message = str(caught.value)
    assert str(path) in message, message
    return message


def test_default_yaml_matches_model_defaults():
    """configs/default.yaml and the pydantic defaults must not drift apart."""
    assert config_to_dict(load_config()) == config_to_dict(Config())
    assert set(read_yaml(configs_dir() / "default.yaml")) == set(Config.model_fields)


def test_user_config_overrides_only_its_keys(tmp_path):
    config = load_config(_write(tmp_path, "limits:\n  min_slices: 5\n"))
    assert config.limits.min_slices == 5
    assert config.limits.max_voxels == LimitsConfig().max_voxels


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("limits:\n  max_voxelz: 10\n", "limits.max_voxelz"),
        ("limitz:\n  max_voxels: 10\n", "limitz"),
        ("registration:\n  random_seed: 1\n  colour: blue\n", "registration.colour"),
    ],
)
def test_unknown_keys_rejected(tmp_path, text, field):
    message = _error(_write(tmp_path, text))
    assert f": {field}: Extra inputs are not permitted" in message


@pytest.mark.parametrize("text", ["validation:\n  min_lesion_dice: 0.8\n", "validation: {}\n"])
def test_old_validation_section_named_in_one_line(tmp_path, text):
    """The accuracy thresholds were renamed ``validation:`` -> ``accuracy:``; the old name says so."""
    path = _write(tmp_path, text, name="my.yaml")
    message = _error(path)
    assert message == (
        f"{path}: validation: this section is now called 'accuracy' (accuracy thresholds of regiontag validate)"
    )


def test_accuracy_section_overrides_thresholds(tmp_path):
    config = load_config(_write(tmp_path, "accuracy:\n  min_lesion_dice: 0.8\n"))
    assert config.accuracy.min_lesion_dice == 0.8
    assert config.accuracy.min_pattern_top1 == Config().accuracy.min_pattern_top1
    assert "validation" not in Config.model_fields


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("limits:\n  max_voxels: lots\n", "limits.max_voxels"),
        ("limits:\n  min_slices: 2.5\n", "limits.min_slices"),
        ("limits:\n  max_voxel_size_mm: [1, 2]\n", "limits.max_voxel_size_mm"),
        ("limits: 12\n", "limits"),
        ("preprocessing:\n  skull_stripped: maybe\n", "preprocessing.skull_stripped"),
        ("discovery:\n  extensions: 5\n", "discovery.extensions"),
    ],
)
def test_wrong_types_rejected(tmp_path, text, field):
    message = _error(_write(tmp_path, text))
    assert f": {field}: " in message


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("limits:\n  min_slices: 0\n", "limits.min_slices"),
        ("limits:\n  max_voxels: -5\n", "limits.max_voxels"),
        ("limits:\n  max_voxel_size_mm: .nan\n", "limits.max_voxel_size_mm"),
        ("limits:\n  max_nonfinite_fraction: 1.5\n", "limits.max_nonfinite_fraction"),
        ("detection:\n  csf_exclusion_probability: 1.5\n", "detection.csf_exclusion_probability"),
        ("detection:\n  min_cluster_mm3: -1\n", "detection.min_cluster_mm3"),
        ("cord:\n  max_csa_mm2: .inf\n", "cord.max_csa_mm2"),
        ("involvement:\n  min_fraction: -0.1\n", "involvement.min_fraction"),
    ],
)
def test_out_of_range_values_rejected(tmp_path, text, field):
    message = _error(_write(tmp_path, text))
    assert f": {field}: " in message


def test_voxel_size_limits_must_be_ordered(tmp_path):
    message = _error(_write(tmp_path, "limits:\n  min_voxel_size_mm: 5\n  max_voxel_size_mm: 2\n"))
    assert "limits" in message and "min_voxel_size_mm must be smaller" in message


@pytest.mark.parametrize(
    "text",
    [
        "limits: !!python/object/apply:os.system ['touch PWNED']\n",
        "!!python/object:builtins.dict {}\n",
        "limits:\n  max_voxels: !!python/name:os.system\n",
    ],
)
def test_python_tags_rejected_and_never_executed(tmp_path, monkeypatch, text):
    monkeypatch.chdir(tmp_path)
    message = _error(_write(tmp_path, text))
    assert "invalid YAML" in message
    assert not (tmp_path / "PWNED").exists()


@pytest.mark.parametrize("text", ["- a\n- b\n", "just a string\n", "limits: {max_voxels: 1\n"])
def test_non_mapping_or_broken_yaml_rejected(tmp_path, text):
    _error(_write(tmp_path, text))


def test_missing_config_file_named(tmp_path):
    _error(tmp_path / "absent.yaml")


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("cord:\n  atlas_path: ../../etc/passwd\n", "cord.atlas_path"),
        ("cord:\n  atlas_path: atlases/../../secret.yaml\n", "cord.atlas_path"),
        ("scoring:\n  patterns_dir: '..\\\\..\\\\windows'\n", "scoring.patterns_dir"),
    ],
)
def test_path_traversal_rejected(tmp_path, text, field):
    message = _error(_write(tmp_path, text))
    assert f": {field}: " in message and "path traversal" in message


def test_missing_or_empty_path_rejected(tmp_path):
    message = _error(_write(tmp_path, "cord:\n  atlas_path: no_such_atlas.yaml\n"))
    assert ": cord.atlas_path: " in message and "does not exist" in message
    message = _error(_write(tmp_path, "scoring:\n  patterns_dir: ''\n"))
    assert ": scoring.patterns_dir: " in message and "must not be empty" in message


def test_relative_paths_resolve_against_the_config_folder(tmp_path, monkeypatch):
    folder = tmp_path / "study é"
    (folder / "patterns").mkdir(parents=True)
    shipped = configs_dir() / "patterns" / "nmosd.yaml"  # a library needs at least one disease file
    (folder / "patterns" / shipped.name).write_text(shipped.read_text(encoding="utf-8"), encoding="utf-8")
    (folder / "my cord atlas.yaml").write_text("regions: []\n")
    config_path = _write(folder, "cord:\n  atlas_path: my cord atlas.yaml\nscoring:\n  patterns_dir: patterns\n")
    monkeypatch.chdir(tmp_path)  # not the config folder
    config = load_config(config_path)
    assert Path(config.cord.atlas_path) == folder / "my cord atlas.yaml"
    assert Path(config.scoring.patterns_dir) == folder / "patterns"
    absolute = load_config(_write(tmp_path, f"cord:\n  atlas_path: '{folder / 'my cord atlas.yaml'}'\n"))
    assert Path(absolute.cord.atlas_path) == folder / "my cord atlas.yaml"


class _Paths(BaseModel):
    output_name: RelativePath
    source: InputPath


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("/etc/cron.d/job", "absolute path not allowed"),
        ("C:\\Windows\\evil.csv", "absolute path not allowed"),
        ("~/outside.csv", "absolute path not allowed"),
        ("reports/../../outside.csv", "path traversal"),
        ("ok\nname.csv", "control characters"),
    ],
)
def test_relative_path_type_confined(tmp_path, value, problem):
    with pytest.raises(ValidationError, match=problem):
        _Paths(output_name=value, source=str(tmp_path))
    assert _Paths(output_name="reports/regions.csv", source=str(tmp_path)).output_name == "reports/regions.csv"


@pytest.mark.parametrize(
    "command",
    [
        ["run", "{tmp}", "{tmp}/out"],
        ["tag", "{tmp}/mask.nii.gz", "--space", "MNI152", "--output", "{tmp}/out"],
        ["validate", "{tmp}/out"],
    ],
)
def test_cli_commands_reject_a_bad_config_in_one_line(tmp_path, capsys, command):
    from regiontag.cli.main import main

    bad = _write(tmp_path, "detection:\n  min_cluster_mm3: -1\n")
    argv = [part.format(tmp=tmp_path) for part in command] + ["--config", str(bad)]
    assert main(argv) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith(f"regiontag {command[0]}: ") and bad.name in error
    assert "detection.min_cluster_mm3" in error and "\n" not in error
    assert not (tmp_path / "out").exists()  # nothing started


# --- issue 17, item 7: configs that validated and failed later --------------------------------------
@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("discovery:\n  sequence_patterns:\n    FLAIR: ['fl[air']\n", "invalid regular expression"),
        ("discovery:\n  sequence_patterns:\n    FLAIR: ['(a+)+$']\n", "nested quantifier"),
        ("discovery:\n  sequence_patterns:\n    FLAIR: ['(a*)*b']\n", "nested quantifier"),
        ("discovery:\n  sequence_patterns:\n    FLAIR: ['(x|xx)+y']\n", "alternation inside a repeat"),
        ("discovery:\n  sequence_patterns:\n    FLAIR: ['(t1)\\1']\n", "backreference"),
        ("discovery:\n  sequence_patterns:\n    FLAIR: ['a.*b.*c.*d']\n", "3 repeats"),
        ("discovery:\n  sequence_patterns:\n    FLAIR: ['" + "a" * 300 + "']\n", "longer than"),
    ],
)
def test_unsafe_or_invalid_sequence_regex_rejected_at_load(tmp_path, text, problem):
    message = _error(_write(tmp_path, text))
    assert ": discovery.sequence_patterns.FLAIR.0: " in message and problem in message, message
    assert len(message.splitlines()) == 1


def test_safe_sequence_regexes_still_accepted(tmp_path):
    config = load_config(_write(tmp_path, "discovery:\n  sequence_patterns:\n    FLAIR: ['t2[-_]?flair', '(^|_)dark.*fluid']\n"))
    assert config.discovery.sequence_patterns["FLAIR"] == ["t2[-_]?flair", "(^|_)dark.*fluid"]


@pytest.mark.parametrize(
    ("setup", "problem"),
    [
        ("root", "no pattern files"),
        ("empty", "no pattern files"),
        ("file", "not a folder"),
        ("not_patterns", "not a pattern library"),
    ],
)
def test_patterns_dir_checked_for_content_at_load(tmp_path, setup, problem):
    if setup == "root":
        value = "/"
    elif setup == "empty":
        (tmp_path / "empty").mkdir()
        value = str(tmp_path / "empty")
    elif setup == "file":
        value = str(_write(tmp_path, "a: 1\n", "single.yaml"))
    else:
        (tmp_path / "lib").mkdir()
        (tmp_path / "lib" / "notes.yml").write_text("shopping: [milk, eggs]\n")
        value = str(tmp_path / "lib")
    message = _error(_write(tmp_path, f"scoring:\n  patterns_dir: '{value}'\n"))
    assert ": scoring.patterns_dir: " in message and problem in message, message


def test_duplicate_yaml_keys_rejected_with_file_and_field(tmp_path):
    message = _error(_write(tmp_path, "limits:\n  max_voxels: 1000\n  min_slices: 2\n  max_voxels: 5\n"))
    assert "duplicate key 'max_voxels'" in message and "limits" in message and "line 4" in message, message
    message = _error(_write(tmp_path, "report:\n  enabled: false\nreport:\n  enabled: true\n"))
    assert "duplicate key 'report'" in message


def test_yaml_syntax_error_names_the_file_not_a_unicode_string(tmp_path):
    for text in ("limits: {max_voxels: 1\n", "a: b: c\n", "limits:\n\t- tab\n", "key: 'unterminated\n"):
        message = _error(_write(tmp_path, text))
        assert "<unicode string>" not in message and "invalid YAML" in message, message
        assert len(message.splitlines()) == 1
