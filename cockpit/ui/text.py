"""How sessions and events read in one line: pane headers, tool calls, results (pure)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

STATE_ICONS = {
    "starting": "◌", "running": "●", "waiting": "⚠", "idle": "○", "error": "✗",
    "merged": "✓", "archived": "▪",
}
SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"


def compact_number(value: float) -> str:
    if value < 1000:
        return f"{value:.0f}"
    if value < 1_000_000:
        return f"{value / 1000:.1f}k"
    return f"{value / 1_000_000:.1f}M"


def cost_text(usage: dict[str, Any]) -> str:
    cost = usage.get("cost_usd", 0.0)
    if not usage.get("cost_known", True) and not cost:
        return "$?"
    return f"${cost:.2f}"


VERIFY_MARKS = {"running": "verify …", "passed": "verify ✓", "failed": "verify ✗", "timed-out": "verify ✗ timeout"}


def header_text(
    session: dict[str, Any], *, marked: bool, spinner: str, stats: dict[str, Any], focused: bool = False,
    collisions: Sequence[dict[str, Any]] = (),
    repo: bool = False,
) -> str:
    """`▶◆@3 fix-tests  ⠋ running  ⚠ also changed by @4: a.py  12.3k tok $0.04  3f +40 −2  verify ✓  …`

    Most important first, so a narrow pane still shows who it is and what it is doing. With
    `repo` (the screen shows several repositories) the name is `api:fix-tests`, as `@api:` targets
    it; a read-only session says so next to its state.
    """
    state = session.get("state", "idle")
    icon = spinner if state == "running" and spinner else STATE_ICONS.get(state, "?")
    usage = session.get("usage") or {}
    tokens = usage.get("prompt_tokens", 0) + usage.get("completion_tokens", 0)
    parts = [
        ("▶" if focused else " ") + ("◆" if marked else "") + f"@{session['number']} "
        + (f"{session['repo']}:" if repo and session.get("repo") else "") + session["name"],
        f"{icon} {state}" + (" read-only" if session.get("read_only") else ""),
        collision_text(collisions),
        f"{compact_number(tokens)} tok {cost_text(usage)}",
    ]
    if stats.get("files"):
        parts.append(f"{stats['files']}f +{stats.get('added', 0)} −{stats.get('removed', 0)}")
    verify = (session.get("verify") or {}).get("state", "")
    if verify in VERIFY_MARKS:
        parts.append(VERIFY_MARKS[verify])
    if session.get("host"):
        parts.append(session["host"])
    parts.append(session.get("branch", ""))
    if session.get("tags"):
        parts.append(" ".join("#" + t for t in session["tags"]))
    return "  ".join(p for p in parts if p)


def collision_text(collisions: Sequence[dict[str, Any]]) -> str:
    """`⚠ also changed by @4 @7: src/a.py +1`: other live sessions changing this one's files
    (a `collision` event's list; "" when there are none)."""
    if not collisions:
        return ""
    files = sorted({path for other in collisions for path in other.get("files", [])})
    more = len(files) - 1 + max(other.get("more", 0) for other in collisions)
    who = " ".join(f"@{other['number']}" for other in collisions)
    return f"⚠ also changed by {who}: {files[0] if files else '?'}" + (f" +{more}" if more > 0 else "")


def summarize_tool(data: dict[str, Any]) -> str:
    """`⚙ edit_file calc.py` — the one argument a person wants to see."""
    args = data.get("arguments") or {}
    name = data.get("name", "?")
    main = args.get("command") or args.get("path") or args.get("pattern") or ""
    if not args and data.get("raw_arguments"):
        main = "(malformed arguments)"
    return f"⚙ {name} {str(main).splitlines()[0] if main else ''}".rstrip()


def tool_result_line(data: dict[str, Any]) -> tuple[str, str]:
    output = (data.get("output") or "").strip()
    first = output.splitlines()[0] if output else ""
    lines = output.count("\n") + 1 if output else 0
    more = f"  (+{lines - 1} lines)" if lines > 1 else ""
    if data.get("ok"):
        return "ok", f"  ✓ {first}{more}"
    return "fail", f"  ✗ {first}{more}"
