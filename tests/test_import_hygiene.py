"""Core (and the agent backends) must be usable without the UI: importing them must not load
Textual, and core must not load litellm (3 s to import, and it may touch the network)."""

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
