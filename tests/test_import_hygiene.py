"""Core (and the agent backends) must be usable without the UI: importing them must not load
Textual, and core must not load litellm (3 s to import, and it may touch the network).

The layering is read from the source too (`_import_graph`): core imports nothing above it, the
experiment loops import no screen and no entry point, and no cockpit modules import each other
in a circle. Every import statement counts, wherever it is: at the top, inside a function
(which only defers it), and under `if TYPE_CHECKING:`. The last never runs, but the module still
names the other's types, so reading or type-checking it needs the other module; a lower module
names what it needs from a higher one with a Protocol (`cockpit/core/ports.py`) instead.
"""

from __future__ import annotations

import ast
import json
import os
import pkgutil
import subprocess
import sys
from pathlib import Path

import cockpit
import cockpit.core

PACKAGE = Path(cockpit.__file__).resolve().parent
CORE = sorted(f"cockpit.core.{m.name}" for m in pkgutil.iter_modules(cockpit.core.__path__))
ALWAYS = ["cockpit", "cockpit.config", "cockpit.errors", "cockpit.cli", *CORE]


def _agent_modules() -> list[str]:
    folder = PACKAGE / "agents"
    if not (folder / "__init__.py").exists():
        return []
    return ["cockpit.agents", *sorted(f"cockpit.agents.{m.name}" for m in pkgutil.iter_modules([str(folder)]))]


def _import_in_fresh_interpreter(modules: list[str]) -> dict[str, object]:
    script = (
        "import importlib, json, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "print(json.dumps({'textual': sorted(m for m in sys.modules if m == 'textual' or m.startswith('textual.')),"
        " 'litellm': 'litellm' in sys.modules, 'rich': 'rich' in sys.modules}))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"})
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_core_modules_are_all_listed():
    expected = {"engine", "store", "worktrees", "git", "setup", "bus", "router", "states", "model", "events",
                "coalesce", "host", "commands", "agent_api"}
    assert expected <= {name.rsplit(".", 1)[1] for name in CORE}


def test_core_config_and_cli_do_not_import_textual_or_litellm():
    loaded = _import_in_fresh_interpreter(ALWAYS)
    assert loaded["textual"] == []
    assert loaded["litellm"] is False


def test_agent_backends_do_not_import_textual():
    modules = _agent_modules()
    if not modules:
        return
    loaded = _import_in_fresh_interpreter(ALWAYS + modules)
    assert loaded["textual"] == []


def test_core_source_never_names_textual():
    """A static check too, so an import hidden in a function body is caught before it runs."""
    offenders = []
    for path in sorted((PACKAGE / "core").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [f"{path.name}:{node.lineno} {n}" for n in names
                          if n.split(".")[0] in ("textual", "cockpit") and n.startswith(("textual", "cockpit.ui"))]
    assert offenders == []


# -- the layering, read from the imports -----------------------------------------------------------

#: What core may import: itself and the configuration below everything (the settings, the trust
#: that gates a repository's file, the errors); nothing that runs features, screens, transports or
#: entry points: those register with core at start-up instead.
CORE_MAY_IMPORT = ("cockpit.core", "cockpit.config", "cockpit.trust", "cockpit.dirs", "cockpit.errors")
#: What the experiment loops (a headless package the server runs) must not import.
EXPERIMENT_MUST_NOT_IMPORT = ("cockpit.ui", "cockpit.client", "cockpit.server", "cockpit.cli", "cockpit.cli_experiment",
                              "cockpit.demo", "cockpit.features")
#: Import cycles that are accepted, each a set of modules a cycle may stay within (it may shrink,
#: never grow). The Textual app and its screens: the app opens every screen, each screen is given
#: the app (typed `CockpitApp`), and the keymap and the help list every screen's bindings. All of
#: it is one layer (the UI); untangling it is a UI change of its own, not a layering one.
ALLOWED_CYCLES: tuple[frozenset[str], ...] = (
    frozenset({"cockpit.ui.app", "cockpit.ui.command_bar", "cockpit.ui.compare_view", "cockpit.ui.help",
               "cockpit.ui.keymap", "cockpit.ui.leaderboard", "cockpit.ui.merge_view", "cockpit.ui.palette",
               "cockpit.ui.plan_view", "cockpit.ui.queue_view", "cockpit.ui.terminal_zoom", "cockpit.ui.zoom"}),
)


def _modules() -> dict[str, Path]:
    """Every cockpit module by dotted name (a package by its own name, for its __init__.py)."""
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _import_graph() -> dict[str, dict[str, int]]:
    """module → {cockpit module it imports: the line of the first such import}."""
    modules = _modules()

    def known(name: str) -> str | None:  # `from a.b import c`: the module a.b.c, else a.b
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, dict[str, int]] = {}
    for module, path in modules.items():
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        edges: dict[str, int] = {}
        for target, line in _imported(ast.parse(path.read_text(encoding="utf-8"), str(path)), package):
            resolved = known(target) if target.split(".")[0] == "cockpit" else None
            if resolved and resolved != module:
                edges.setdefault(resolved, line)
        graph[module] = edges
    return graph


def _imported(tree: ast.AST, package: str) -> list[tuple[str, int]]:
    """(dotted name, line) of every import anywhere in `tree`, a module of `package`; for
    `from a import b` the name is a.b (b may be a module or a name in a)."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # `from ..x import y` in package a.b: a.x.y
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found += [(f"{base}.{alias.name}", node.lineno) for alias in node.names]
    return sorted(found, key=lambda item: item[1])


def _cycles(graph: dict[str, dict[str, int]]) -> list[frozenset[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[frozenset[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for other in graph.get(module, {}):
            if other not in index:
                visit(other)
                low[module] = min(low[module], low[other])
            elif other in on_stack:
                low[module] = min(low[module], index[other])
        if low[module] == index[module]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == module:
                    break
            if len(component) > 1:
                found.append(frozenset(component))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return found


def _within(module: str, packages: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in packages)


def _where(graph: dict[str, dict[str, int]], module: str, other: str) -> str:
    path = _modules()[module].relative_to(PACKAGE.parent)
    return f"{path}:{graph[module][other]} imports {other}"


def test_the_import_graph_sees_every_kind_of_import():
    """The reader itself: top-level, relative, in-function and TYPE_CHECKING imports all count."""
    source = ("import cockpit.errors\nfrom ..core import engine\n"
              "if TYPE_CHECKING:\n    from cockpit.ui.app import App\n"
              "def f():\n    from . import gitops\n")
    assert _imported(ast.parse(source), "cockpit.experiment") == [
        ("cockpit.errors", 1), ("cockpit.core.engine", 2), ("cockpit.ui.app.App", 4), ("cockpit.experiment.gitops", 6)]
    assert _import_graph()["cockpit.core.engine"].keys() >= {"cockpit.core.commands", "cockpit.core.registry"}
    assert "cockpit.core.ports" in _import_graph()["cockpit.core.host"]  # only under TYPE_CHECKING
    assert _cycles({"a": {"b": 1}, "b": {"c": 1}, "c": {"a": 1}, "d": {"a": 1}}) == [frozenset("abc")]


def test_core_imports_nothing_above_it():
    graph = _import_graph()
    offenders = [_where(graph, module, other) for module in sorted(graph) if _within(module, ("cockpit.core",))
                 for other in sorted(graph[module]) if not _within(other, CORE_MAY_IMPORT)]
    assert offenders == [], "core must not know the features, screens or entry points above it: " + "; ".join(
        offenders)


def test_the_experiment_loops_import_no_screen_or_entry_point():
    graph = _import_graph()
    offenders = [_where(graph, module, other) for module in sorted(graph) if _within(module, ("cockpit.experiment",))
                 for other in sorted(graph[module]) if _within(other, EXPERIMENT_MUST_NOT_IMPORT)]
    assert offenders == [], "the experiment package runs headless: " + "; ".join(offenders)


def test_the_plans_import_no_screen_or_entry_point_but_their_cli():
    graph = _import_graph()
    offenders = [_where(graph, module, other) for module in sorted(graph)
                 if _within(module, ("cockpit.plan",)) and module != "cockpit.plan.cli"
                 for other in sorted(graph[module]) if _within(other, EXPERIMENT_MUST_NOT_IMPORT)]
    assert offenders == [], "the plans run in the engine, headless: " + "; ".join(offenders)


def test_no_import_cycles_among_cockpit_modules():
    graph = _import_graph()
    cycles = [sorted(c) for c in _cycles(graph) if not any(c <= allowed for allowed in ALLOWED_CYCLES)]
    details = ["; ".join(_where(graph, m, o) for m in cycle for o in sorted(graph[m]) if o in cycle)
               for cycle in cycles]
    assert cycles == [], "modules that import each other in a circle:\n" + "\n".join(details)
