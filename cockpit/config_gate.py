"""What an untrusted repository's `.cockpit.toml` may change: only what cannot hurt the person.

Like an editor's restricted mode. A file committed by someone else must not run commands
(set-up, tear-down, verify, notify hooks, agent programs), change where a key or a notification
is sent (models, agents, pass_env, env, `[notify]` webhook/ntfy), nor widen approvals, budgets
or the sandbox (`[sandbox]` writable/allow_hosts, an agent's own `writable`/`allow_hosts`: all of
`[agents]` waits for trust). What it may do: look (theme, layouts), say how the merge desk works,
copy files from inside the repository, and make things *stricter* (a narrower approval preset, a
per-tool `ask`/`deny`, more `shell_deny` patterns, lower budgets, `collision_notes` off).
Everything else is left out and named, so the person can be told.
"""

from __future__ import annotations

from typing import Any

from cockpit.agents.policy import PRESETS

#: Dotted keys an untrusted file may set as it likes (a table name allows all its keys).
SAFE = frozenset({
    "theme", "layouts", "ui", "defaults.base_ref", "notify.bell", "notify.desktop",
    "worktrees.copy", "worktrees.symlink", "worktrees.sparse", "worktrees.setup_timeout", "worktrees.port_base",
    "worktrees.port_block",
    "review.verify_after_turn", "review.verify_timeout", "review.gate_on_verify", "review.strategy",
    "review.target", "review.after_merge", "review.checkpoints", "review.watch", "review.large_file_lines",
})
#: Switches an untrusted file may turn off, never on (on costs the person: agent turns, tokens).
OFF_ONLY = frozenset({"review.collision_notes"})
_PRESET_RANK = {"read-only": 0, "ask-shell": 1, "auto": 2}
_DECISION_RANK = {"deny": 0, "ask": 1, "auto": 2}


def gate(raw: dict[str, Any], base: Any) -> tuple[dict[str, Any], list[str]]:
    """(the part of `raw` an untrusted file may apply over `base`, the dotted keys left out).

    `raw` is an already validated repository file; `base` the `Config` it would overlay.
    """
    kept: dict[str, Any] = {}
    ignored: list[str] = []
    for table, value in raw.items():
        if table == "approval":
            _narrow_approval(value, base.approval, kept, ignored)
        elif table == "budgets":
            _narrow_budgets(value, base.budgets, kept, ignored)
        elif table == "sandbox":
            _narrow_sandbox(value, base.sandbox, kept, ignored)
        elif table in SAFE:
            kept[table] = value
        elif isinstance(value, dict):
            for key, item in value.items():
                dotted = f"{table}.{key}"
                if dotted in SAFE or (dotted in OFF_ONLY and item is False):
                    kept.setdefault(table, {})[key] = item
                elif dotted in OFF_ONLY:
                    ignored.append(f"{dotted} (turns it on)")
                else:
                    ignored.append(dotted)
        else:
            ignored.append(table)
    return kept, ignored


def _narrow_approval(raw: dict[str, Any], base: Any, kept: dict[str, Any], ignored: list[str]) -> None:
    out: dict[str, Any] = {}
    preset = base.preset
    if "preset" in raw:
        if _PRESET_RANK[raw["preset"]] <= _PRESET_RANK[base.preset]:
            out["preset"] = preset = raw["preset"]
        else:
            ignored.append(f"approval.preset (widens {base.preset!r} to {raw['preset']!r})")
    tools: dict[str, str] = {}
    for tool, decision in (raw.get("tools") or {}).items():
        current = base.tools.get(tool) or PRESETS[preset].get(tool, "deny")
        if _DECISION_RANK[decision] <= _DECISION_RANK[current]:
            tools[tool] = decision
        else:
            ignored.append(f"approval.tools.{tool} (widens {current!r} to {decision!r})")
    if tools:
        out["tools"] = {**base.tools, **tools}
    if raw.get("shell_deny"):  # added to the person's patterns, never replacing them
        out["shell_deny"] = [*base.shell_deny, *[p for p in raw["shell_deny"] if p not in base.shell_deny]]
    if "shell_allow" in raw:
        ignored.append("approval.shell_allow")
    if "conductor" in raw:  # whatever it names, it lets an agent approve more
        ignored.append("approval.conductor")
    if out:
        kept["approval"] = out


def _narrow_sandbox(raw: dict[str, Any], base: Any, kept: dict[str, Any], ignored: list[str]) -> None:
    out: dict[str, Any] = {}
    if "enabled" in raw:
        if raw["enabled"] or not base.enabled:
            out["enabled"] = raw["enabled"] or base.enabled
        else:
            ignored.append("sandbox.enabled (turns the sandbox off)")
    if raw.get("hidden"):  # hides more: added to the person's paths
        out["hidden"] = [*base.hidden, *[p for p in raw["hidden"] if p not in base.hidden]]
    ignored.extend(f"sandbox.{key}" for key in ("writable", "allow_hosts") if raw.get(key))
    if out:
        kept["sandbox"] = out


def _narrow_budgets(raw: dict[str, Any], base: Any, kept: dict[str, Any], ignored: list[str]) -> None:
    out: dict[str, Any] = {}
    for key, cap in raw.items():
        current = getattr(base, key)
        if cap > 0 and (current == 0 or cap <= current):  # 0 means no cap: lifting one widens
            out[key] = cap
        elif cap != current:
            ignored.append(f"budgets.{key} (raises the cap)")
    if out:
        kept["budgets"] = out
