"""Key bindings from config: validation before the app starts, and the keys in effect now.

Every cockpit binding has an id (`approval.approve`, `pane.zoom`, …). The config's `[keys]`
table maps ids to Textual key strings (`"y"`, `"ctrl+a,f2"`); the app hands it to
`App.set_keymap`. Textual silently ignores ids it does not know and silently drops a binding
whose key another one took, so `validate_keymap` checks both first and fails with one line.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from textual.binding import Binding, BindingsMap, BindingType
from textual.keys import _character_to_key

from cockpit.errors import ConfigError

Scopes = Mapping[str, Iterable[BindingType]]


def normalize_keys(keys: str) -> list[str]:
    """`"?, ctrl+s"` → `["question_mark", "ctrl+s"]` (Textual's long key names)."""
    out = []
    for key in keys.split(","):
        key = key.strip()
        out.append(_character_to_key(key) if len(key) == 1 else key)
    return out


def _bindings(bindings: Iterable[BindingType]) -> list[Binding]:
    return [b if isinstance(b, Binding) else Binding(*b) for b in bindings]


def binding_ids(bindings: Iterable[BindingType]) -> list[str]:
    """The ids of the bindings, in declaration order, without repeats."""
    seen: dict[str, None] = {}
    for binding in _bindings(bindings):
        if binding.id:
            seen.setdefault(binding.id)
    return list(seen)


def validate_keymap(keys: Mapping[str, Any], bindings: Iterable[BindingType] | Scopes) -> None:
    """Raise ConfigError for the first `[keys]` entry that cannot work.

    `bindings` is either every binding of the app, or a mapping of scope name → bindings
    (scopes are screens: a key may mean one thing on the grid and another in the zoom view;
    only bindings in the same scope can clash).
    """
    scopes: dict[str, list[Binding]]
    if isinstance(bindings, Mapping):
        scopes = {name: _bindings(group) for name, group in bindings.items()}
    else:
        scopes = {"app": _bindings(bindings)}
    known = binding_ids(b for group in scopes.values() for b in group)
    for binding_id, value in keys.items():
        where = f"config: key 'keys.{binding_id}'"
        if binding_id not in known:
            raise ConfigError(f"{where}: no such action; known: {', '.join(sorted(known))}")
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(f"{where}: must be a key such as \"y\" or \"ctrl+a,f2\", got {value!r}")
        if any(not k.strip() or " " in k.strip() for k in value.split(",")):
            raise ConfigError(f"{where}: {value!r} is not a comma-separated list of keys (e.g. \"ctrl+a,f2\")")
    for group in scopes.values():
        _check_clashes(keys, group)


def _check_clashes(keys: Mapping[str, str], bindings: list[Binding]) -> None:
    owners: dict[str, str] = {}  # key → binding id, after the keymap
    for binding_id, key_list in _effective_keys(bindings, keys).items():
        for key in key_list:
            other = owners.setdefault(key, binding_id)
            if other != binding_id and (binding_id in keys or other in keys):  # defaults are not config's fault
                # Name the remapped one: that is the entry the person has to change.
                culprit, victim = (binding_id, other) if binding_id in keys else (other, binding_id)
                raise ConfigError(
                    f"config: key 'keys.{culprit}': {key!r} is already bound to {victim}; "
                    f"pick another key or remap {victim} too"
                )


def _effective_keys(bindings: list[Binding], keys: Mapping[str, str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for binding in bindings:
        if not binding.id or binding.id in out:
            continue
        override = keys.get(binding.id)
        out[binding.id] = normalize_keys(override if override else binding.key)
    return out


def effective_bindings(bindings: BindingsMap | Iterable[BindingType], keymap: Mapping[str, str]) -> dict[str, tuple[Binding, list[str]]]:
    """binding id → (binding, keys in effect) with the keymap applied, as Textual applies it."""
    bindings_map = bindings.copy() if isinstance(bindings, BindingsMap) else BindingsMap(bindings)
    order = {b.id: i for i, b in enumerate(b for bs in bindings_map.key_to_bindings.values() for b in bs) if b.id}
    if keymap:
        bindings_map.apply_keymap({k: ",".join(normalize_keys(v)) for k, v in keymap.items()})
    out: dict[str, tuple[Binding, list[str]]] = {}
    for key, group in bindings_map.key_to_bindings.items():
        for binding in group:
            if binding.id:
                out.setdefault(binding.id, (binding, []))[1].append(key)
    return dict(sorted(out.items(), key=lambda item: order.get(item[0], len(order))))


def current_keymap(app: Any) -> Mapping[str, str]:
    """The `[keys]` remapping the app runs with now (`App.set_keymap` replaces the dict)."""
    return getattr(app, "_keymap", {}) or {}


def app_keys(app: Any) -> dict[str, tuple[Binding, list[str]]]:
    """The app-level bindings in effect right now (the user's keymap applied)."""
    return effective_bindings(app._bindings, current_keymap(app))


def key_display(app: Any, binding: Binding, keys: list[str]) -> str:
    """`"z, enter"`, formatted the way Textual shows keys."""
    return ", ".join(app.get_key_display(binding.with_key(key, key_display=None)) for key in keys)


def known_bindings() -> dict[str, list[BindingType]]:
    """Every cockpit binding by scope (screen), for validating `[keys]` before start."""
    from cockpit.ui.app import CockpitApp
    from cockpit.ui.compare_view import CompareScreen
    from cockpit.ui.diff_view import DiffView
    from cockpit.ui.inbox import InboxScreen
    from cockpit.ui.leaderboard import LeaderboardScreen
    from cockpit.ui.merge_view import MergeScreen
    from cockpit.ui.plan_view import PlanScreen
    from cockpit.ui.queue_view import QueueScreen
    from cockpit.ui.terminal_zoom import TerminalZoom
    from cockpit.ui.zoom import ZoomScreen

    return {"grid": list(CockpitApp.BINDINGS), "zoom": list(ZoomScreen.BINDINGS),
            "leaderboard": list(LeaderboardScreen.BINDINGS), "terminal": list(TerminalZoom.BINDINGS),
            "merge": [*MergeScreen.BINDINGS, *DiffView.BINDINGS], "compare": list(CompareScreen.BINDINGS),
            "queue": list(QueueScreen.BINDINGS), "plan": list(PlanScreen.BINDINGS),
            "inbox": list(InboxScreen.BINDINGS)}
