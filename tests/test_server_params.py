"""Every protocol method answers a parameter of the wrong type with `-32000` naming it.

Before, a list where text belongs reached the engine and failed inside it as a bug (`-32603`),
or was even taken (a session renamed to an object). The server here is the real process; each
method gets each of its parameters wrong in turn, the others right.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import Any

import pytest

from cockpit.core.commands import COMMANDS
from cockpit.server import params as typed
from cockpit.server import protocol as wire
from cockpit.server.daemon import ensure_server
from cockpit.server.listener import Connection
from cockpit.server.paths import ServerPaths

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
import hostile  # noqa: E402  (bench/hostile.py: a raw protocol client)

PROTOCOL_METHODS = {"hello": Connection._hello, "attach": Connection._attach, "detach": Connection._detach,
                    "transcript": Connection._transcript, "server.status": Connection._status}
#: Each method's handler with its first argument (the engine, or the connection) bound.
METHODS = {method: functools.partial(handler, None) for method, handler in {**COMMANDS, **PROTOCOL_METHODS}.items()}
RIGHT = {typed.TEXT: "x", typed.WHOLE: 1, typed.FLAG: True, typed.LIST: [], typed.OBJECT: {}, typed.OBJECTS: [{}]}
WRONG = {typed.TEXT: {"x": 1}, typed.WHOLE: "1", typed.FLAG: "yes", typed.LIST: [1], typed.OBJECT: ["x"],
         typed.OBJECTS: ["x"]}


def _kind(method: str, name: str) -> str:
    return typed.METHOD_TYPES.get((method, name)) or typed.TYPES[name]


def test_every_parameter_of_every_method_has_a_declared_type():
    missing = sorted(f"{method}({name})" for method, handler in METHODS.items()
                     for name in typed.parameters(method, handler)
                     if (method, name) not in typed.METHOD_TYPES and name not in typed.TYPES)
    assert missing == [], "add these to cockpit/server/params.py TYPES"


@pytest.mark.slow
def test_a_wrong_type_for_any_parameter_is_a_cockpit_error(repo, cockpit_env):
    paths = ServerPaths(cockpit_env.home)
    ensure_server(paths, repo)
    conn = hostile.Wire(paths)
    made = conn.call("create", repo=str(repo.resolve()), name="one")
    session = made["result"][0]["id"]
    tried, wrong_answers = 0, []
    for method, handler in sorted(METHODS.items()):
        declared = typed.parameters(method, handler)
        right: dict[str, Any] = {name: RIGHT[_kind(method, name)] for name, p in declared.items()
                                 if p.default is p.empty}
        right.update({name: session for name in ("session",) if name in declared})
        for name in declared:
            params = {**right, name: WRONG[_kind(method, name)]}
            answer = conn.call(method, **params)
            error = answer.get("error") or {}
            expected = f"method {method!r}: parameter {name!r} must be {_kind(method, name)}, got "
            if error.get("code") != wire.COCKPIT_ERROR or not error.get("message", "").startswith(expected):
                wrong_answers.append((method, name, answer))
            tried += 1
    conn.close()
    assert tried > 60
    assert wrong_answers == []
