"""Every import is declared: a package that happens to be installed on the developer's machine
must never be what makes the code work (pyte once was, and a fresh venv failed to collect).

Imports are read with `ast` (function-level lazy ones included, since `litellm` and friends are
imported lazily), mapped to the distributions that provide them, and checked against
`pyproject.toml`: `cockpit/` may use only the standard library and `[project] dependencies`;
`tests/` and `bench/` may also use the `test` extra. The reverse holds too: a declared runtime
dependency that nothing imports is dead weight (gitpython once was).
"""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))

#: Declared distributions that are used without being imported by name.
USED_WITHOUT_IMPORT = {
    "pytest-asyncio",  # a pytest plugin: asyncio_mode = "auto" in pyproject
    "pytest-timeout",  # a pytest plugin: timeout = ... in pyproject
    "pytest-xdist",  # a pytest plugin: -n in pyproject
    "pytest-textual-snapshot",  # a pytest plugin: the snap_compare fixture
}


def _dist_name(requirement: str) -> str:
    name = re.match(r"[A-Za-z0-9._-]+", requirement).group(0)
    return re.sub(r"[-_.]+", "-", name).lower()


def _declared(*extras: str) -> set[str]:
    names = {_dist_name(r) for r in PYPROJECT["project"]["dependencies"]}
    for extra in extras:
        names |= {_dist_name(r) for r in PYPROJECT["project"]["optional-dependencies"][extra]}
    return names


def _imported_names(folder: Path) -> dict[str, str]:
    """Top-level module name -> the first file:line that imports it (relative imports skipped)."""
    found: dict[str, str] = {}
    for path in sorted(folder.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules = [node.module]
            else:
                continue
            for module in modules:
                found.setdefault(module.split(".")[0], f"{path.relative_to(ROOT)}:{node.lineno}")
    return found


def _providers() -> dict[str, set[str]]:
    return {
        module: {_dist_name(d) for d in dists}
        for module, dists in importlib.metadata.packages_distributions().items()
    }


def _undeclared(folder: str, allowed: set[str], local: set[str]) -> list[str]:
    providers = _providers()
    problems = []
    for module, where in _imported_names(ROOT / folder).items():
        if module in sys.stdlib_module_names or module in local or module == "__future__":
            continue
        dists = providers.get(module)
        if not dists:
            problems.append(f"{where}: imports {module!r}, which no installed distribution provides")
        elif not dists & allowed:
            problems.append(f"{where}: imports {module!r} from {sorted(dists)}, not declared in pyproject.toml")
    return problems


def test_the_package_imports_only_the_standard_library_and_declared_dependencies():
    assert _undeclared("cockpit", _declared(), {"cockpit"}) == []


def test_tests_and_benches_import_only_declared_dependencies():
    allowed = _declared("test")
    for folder in ("tests", "bench"):  # each folder's own modules import each other by name
        local = {"cockpit"} | {p.stem for p in (ROOT / folder).glob("*.py")}
        if folder == "tests":  # attack replays share the bench's hostile clients
            local.add("hostile")
        assert _undeclared(folder, allowed, local) == []


def test_every_declared_runtime_dependency_is_imported_somewhere():
    providers = _providers()
    imported = set(_imported_names(ROOT / "cockpit"))
    used = {dist for module in imported for dist in providers.get(module, ())}
    assert sorted(_declared() - used - USED_WITHOUT_IMPORT) == []


def test_every_declared_test_dependency_is_used():
    providers = _providers()
    imported = set(_imported_names(ROOT / "tests")) | set(_imported_names(ROOT / "bench"))
    used = {dist for module in imported for dist in providers.get(module, ())}
    assert sorted(_declared("test") - _declared() - used - USED_WITHOUT_IMPORT) == []
