"""The package layout rules of ARCHITECTURE.md, checked on the source tree.

* tests mirror the package: ``regiontag/<sub>/<mod>.py`` has ``tests/<sub>/test_<mod>.py``,
  and that file imports the module it is named after;
* no import cycles between regiontag modules (module-level and function-level imports alike);
* library code never imports the command line or the phantom generator;
* the old import name ``pipeline`` is gone;
* the wheel's package list in pyproject.toml is the packages on disk.
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    tomllib = pytest.importorskip("tomli")

REPO_ROOT = Path(__file__).resolve().parents[1]
SOURCE_ROOT = REPO_ROOT / "pipeline"
PACKAGE_DIR = SOURCE_ROOT / "regiontag"

#: The layers of ARCHITECTURE.md: a module imports only from lower layers (layer 1 modules also from each other).
LAYERS = {
    "regiontag.resources": 1, "regiontag.config": 1, "regiontag.config_checks": 1, "regiontag.types": 1,
    "regiontag.stage": 1,
    "regiontag.inputs": 2,
    "regiontag.niimg": 3, "regiontag.outputs": 3,
    "regiontag.atlas": 4,
    "regiontag.brain": 5, "regiontag.cord": 5, "regiontag.patterns": 5, "regiontag.report": 5,
    "regiontag.workflows": 6,
    "regiontag.phantoms": 7,
    "regiontag.accuracy": 8,
    "regiontag.cli": 9,
    "regiontag.__main__": 10,
}

#: The command line: its sub-package and ``python -m regiontag``.
COMMAND_LINE = ("regiontag.cli", "regiontag.__main__")

#: Sub-packages that may import the phantom generator (they generate phantoms on purpose).
PHANTOM_USERS = ("regiontag.cli", "regiontag.accuracy", "regiontag.phantoms")


def module_name(path: Path) -> str:
    parts = path.relative_to(SOURCE_ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in sorted(PACKAGE_DIR.rglob("*.py"))}


def imported_modules(path: Path) -> set[str]:
    """regiontag modules imported anywhere in a file (``from a import b`` counts ``a.b`` when it is a module)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    is_package = path.name == "__init__.py"
    own = module_name(path) if path.is_relative_to(SOURCE_ROOT) else ""
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = own.split(".") if is_package else own.split(".")[:-1]
                base = base[: len(base) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            names = [module] + [f"{module}.{alias.name}" for alias in node.names]
        else:
            continue
        found.update(name for name in names if name in MODULES)
    return found


def test_every_module_has_a_mirrored_test_that_imports_it():
    missing, not_imported = [], []
    for name, path in MODULES.items():
        if path.name == "__init__.py":
            continue
        relative = path.relative_to(PACKAGE_DIR)
        test_file = REPO_ROOT / "tests" / relative.parent / f"test_{relative.name}"
        if not test_file.is_file():
            missing.append(str(test_file.relative_to(REPO_ROOT)))
            continue
        parent, _, leaf = name.rpartition(".")
        text = test_file.read_text(encoding="utf-8")
        if name not in imported_modules(test_file) and not re.search(
            rf"from {re.escape(parent)} import [^\n]*\b{leaf}\b", text
        ):
            not_imported.append(f"{test_file.relative_to(REPO_ROOT)} does not import {name}")
    assert not missing, f"modules without a mirrored test file: {missing}"
    assert not not_imported, not_imported


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in sorted(graph.get(node, ())):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return components


def test_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycles():
    graph = {name: imported_modules(path) - {name} for name, path in MODULES.items()}
    # The top-level package exposes its API lazily (PEP 562 ``__getattr__``): importing it loads
    # nothing else, so its edges only exist on attribute access and are not part of the graph
    # (tests/test_api.py checks that ``import regiontag`` stays light).
    graph["regiontag"] = set()
    assert _cycles(graph) == []


def _package_of(module: str) -> str:
    """``regiontag.brain.stage`` -> ``regiontag.brain``; top-level modules are their own node."""
    parts = module.split(".")
    return ".".join(parts[:2])


def test_no_cycles_between_sub_packages():
    graph: dict[str, set[str]] = {}
    for name, path in MODULES.items():
        if name == "regiontag":
            continue  # lazy API, see test_no_import_cycles
        package = _package_of(name)
        graph.setdefault(package, set()).update(
            _package_of(imported) for imported in imported_modules(path) if _package_of(imported) != package
        )
    assert _cycles(graph) == []


def test_sub_packages_import_only_from_lower_layers():
    assert set(LAYERS) == {_package_of(name) for name in MODULES if name != "regiontag"}
    upward = []
    for name, path in MODULES.items():
        if name == "regiontag":
            continue
        layer = LAYERS[_package_of(name)]
        for imported in imported_modules(path):
            target = _package_of(imported)
            if target in ("regiontag", _package_of(name)):
                continue  # the version, or a sibling module of the same sub-package
            if LAYERS[target] > layer or (LAYERS[target] == layer and layer != 1):
                upward.append(f"{name} (layer {layer}) imports {imported} (layer {LAYERS[target]})")
    assert upward == []


def test_library_code_imports_neither_the_cli_nor_the_phantom_generator():
    offenders = []
    for name, path in MODULES.items():
        for imported in imported_modules(path):
            if imported.startswith("regiontag.cli") and not name.startswith(COMMAND_LINE):
                offenders.append(f"{name} imports {imported}")
            if imported.startswith("regiontag.phantoms") and not name.startswith(PHANTOM_USERS):
                offenders.append(f"{name} imports {imported}")
    assert offenders == []


def test_the_old_import_name_is_gone():
    pattern = re.compile(r"^\s*(from|import) pipeline\b", re.M)
    files = [*SOURCE_ROOT.rglob("*.py"), *(REPO_ROOT / "tests").rglob("*.py"), *(REPO_ROOT / "benchmarks").rglob("*.py")]
    files += [REPO_ROOT / "README.md", REPO_ROOT / "ARCHITECTURE.md"]
    offenders = [str(path.relative_to(REPO_ROOT)) for path in files if pattern.search(path.read_text(encoding="utf-8"))]
    assert offenders == []
    assert not (SOURCE_ROOT / "__init__.py").exists(), "pipeline/ is the source root, not a package"


def test_wheel_package_list_is_the_packages_on_disk():
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    listed = set(project["tool"]["setuptools"]["packages"])
    on_disk = {module_name(path) for path in PACKAGE_DIR.rglob("__init__.py")}
    data = {name for name in listed if name.startswith("regiontag.data.")}
    assert listed - data == on_disk
    mapped = project["tool"]["setuptools"]["package-dir"]
    for name in data:
        assert (REPO_ROOT / mapped[name]).is_dir(), f"{name} maps to a missing folder {mapped[name]}"
