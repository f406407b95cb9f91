"""Data folders (atlases/, configs/) and the cache, with their environment overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from regiontag import resources

REPO_ROOT = Path(__file__).resolve().parent.parent


def test_checkout_data_root_holds_atlases_and_configs(monkeypatch) -> None:
    monkeypatch.delenv("REGIONTAG_HOME", raising=False)
    monkeypatch.delenv("REGIONTAG_PATTERNS", raising=False)
    assert resources.data_root() == REPO_ROOT
    assert resources.atlases_dir() == REPO_ROOT / "atlases"
    assert (resources.atlases_dir() / "cord.yaml").is_file()
    assert resources.configs_dir() == REPO_ROOT / "configs"
    assert resources.patterns_dir() == REPO_ROOT / "configs" / "patterns"


def test_regiontag_home_overrides(tmp_path, monkeypatch) -> None:
    (tmp_path / "atlases").mkdir()
    (tmp_path / "configs").mkdir()
    monkeypatch.setenv("REGIONTAG_HOME", str(tmp_path))
    assert resources.data_root() == tmp_path
    assert resources.configs_dir() == tmp_path / "configs"


def test_missing_data_folders_are_named(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("REGIONTAG_HOME", str(tmp_path))
    monkeypatch.setattr(resources, "_PACKAGE_DIR", tmp_path / "a" / "b" / "regiontag")
    with pytest.raises(FileNotFoundError, match="REGIONTAG_HOME") as info:
        resources.data_root()
    assert str(tmp_path) in str(info.value)


def test_patterns_override(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("REGIONTAG_PATTERNS", str(tmp_path / "mine"))
    assert resources.patterns_dir() == tmp_path / "mine"


def test_cache_dir_override_and_xdg(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("REGIONTAG_CACHE", str(tmp_path / "cache"))
    assert resources.cache_dir() == tmp_path / "cache" and (tmp_path / "cache").is_dir()
    monkeypatch.delenv("REGIONTAG_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert resources.cache_dir() == tmp_path / "xdg" / "regiontag"
    assert (tmp_path / "xdg" / "regiontag").is_dir()
