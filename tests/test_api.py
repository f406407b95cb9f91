"""The public API of ``import regiontag``: lazily imported names, version, no CLI imports in library code."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

import regiontag

PACKAGE_DIR = Path(regiontag.__file__).resolve().parent

PUBLIC = {
    "load_config": "regiontag.config",
    "discover_sessions": "regiontag.inputs.discovery",
    "run_session": "regiontag.workflows.session",
    "run_batch": "regiontag.workflows.batch",
    "tag_mask": "regiontag.workflows.tag",
}


def test_version_is_defined_in_the_package():
    assert regiontag.__version__ == "0.1.0"
    assert re.search(r'^__version__ = "0\.1\.0"$', (PACKAGE_DIR / "__init__.py").read_text(), re.MULTILINE)


@pytest.mark.parametrize(("name", "module_name"), sorted(PUBLIC.items()))
def test_each_public_name_resolves_to_its_function(name, module_name):
    import importlib

    function = getattr(regiontag, name)
    assert function is getattr(importlib.import_module(module_name), name)
    assert callable(function) and function.__module__ == module_name


def test_all_and_dir_list_the_public_names():
    assert set(regiontag.__all__) == set(PUBLIC) | {"__version__"}
    assert set(PUBLIC) <= set(dir(regiontag))
    namespace: dict = {}
    exec("from regiontag import *", namespace)  # noqa: S102 - checks __all__ resolves
    assert set(PUBLIC) <= set(namespace)


def test_unknown_attribute_raises_attribute_error_with_the_name():
    with pytest.raises(AttributeError, match="no_such_function"):
        regiontag.no_such_function  # noqa: B018
    assert not hasattr(regiontag, "run_validation")


def _fresh_python(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    return done.stdout.strip()


def test_import_regiontag_loads_no_heavy_module():
    code = ("import regiontag, sys; print('regiontag.workflows' in sys.modules); "
            "print(sorted(m for m in ('numpy', 'pandas', 'nibabel', 'pydantic', 'regiontag.config') if m in sys.modules))")
    assert _fresh_python(code).splitlines() == ["False", "[]"]


def test_first_access_imports_only_what_it_needs():
    code = ("import regiontag, sys; regiontag.load_config; print('regiontag.config' in sys.modules, "
            "'regiontag.workflows' in sys.modules)")
    assert _fresh_python(code) == "True False"
