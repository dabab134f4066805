"""The wire protocol between a cockpit server and its clients (documented in docs/protocol.md).

UTF-8 JSON, one message per line, JSON-RPC 2.0: requests and responses, and events pushed as
`events` notifications. Both ends import this module, so the framing, the version rule and the
mapping between errors and `CockpitError`s are written once. It imports nothing heavier than
the core event type, so a client pulls in neither the engine nor Textual.
"""

from __future__ import annotations

import json
from typing import Any

from cockpit import errors
from cockpit.core.events import Event

#: major.minor: a different major is refused at `hello`; a newer minor only adds things.
PROTOCOL_VERSION = "1.1"
#: The longest line a client accepts: an attach response holds every pane's scrollback.
MAX_LINE = 256 * 1024 * 1024
#: The longest request line a server accepts: requests carry commands and text, not files.
MAX_REQUEST_LINE = 1024 * 1024

# JSON-RPC 2.0 error codes, and ours in the range it leaves to applications.
PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
COCKPIT_ERROR = -32000  # a CockpitError: `message` is one line meant for the person
VERSION_MISMATCH = -32001
HELLO_FIRST = -32002

_encoder = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


def encode(message: dict[str, Any]) -> bytes:
    return (_encoder.encode(message) + "\n").encode()


def request(request_id: int, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params or {}}


def result(request_id: Any, value: Any) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "result": value}


def error(request_id: Any, code: int, message: str, data: dict[str, Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"code": code, "message": message}
    if data:
        body["data"] = data
    return {"jsonrpc": "2.0", "id": request_id, "error": body}


def notification(method: str, params: dict[str, Any]) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "method": method, "params": params}


def event_dict(event: Event) -> dict[str, Any]:
    """An event as sent on the wire (built by hand: `dataclasses.asdict` deep-copies the data,
    which costs more than the rest of the encoding on a busy stream)."""
    return {"kind": event.kind, "session": event.session, "data": event.data, "seq": event.seq, "ts": event.ts}


def nesting(value: Any) -> int:
    """How deeply lists and objects nest in a decoded message (without recursion)."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            depth += 1
            deepest = max(deepest, depth)
            stack.extend((child, depth) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


def version_refusal(client_version: object) -> str | None:
    """Why a client speaking `client_version` is refused, or None when its major matches."""
    if isinstance(client_version, str) and _major(client_version) == _major(PROTOCOL_VERSION):
        return None
    return (f"protocol version mismatch: the client speaks {client_version!r}, this server speaks "
            f"{PROTOCOL_VERSION!r} (run the same major version of cockpit on both ends)")


def _major(version: str) -> str:
    return version.split(".", 1)[0]


def error_from_exception(exc: BaseException) -> tuple[int, str, dict[str, Any]]:
    """(code, message, data) for an exception raised while serving a request."""
    if isinstance(exc, errors.CockpitError):
        return COCKPIT_ERROR, str(exc), {"type": type(exc).__name__, "exit_code": exc.exit_code}
    return INTERNAL_ERROR, f"internal error in the cockpit server: {exc!r} (see its log)", {}


def exception_from_error(body: dict[str, Any], where: str) -> errors.CockpitError:
    """The CockpitError a client raises for an error response (same class when it is one of ours)."""
    message = str(body.get("message") or "unknown error")
    data = body.get("data") or {}
    cls = getattr(errors, str(data.get("type", "")), None)
    if isinstance(cls, type) and issubclass(cls, errors.CockpitError):
        return cls(message)
    if body.get("code") == COCKPIT_ERROR:
        return errors.CockpitError(message)
    return errors.CockpitError(f"{where}: {message}")
