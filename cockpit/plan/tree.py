"""The plan as a tree of lines: plan → sub-tasks → their sessions' state, diffstat and verify.

Pure text from a `plan_status` result, shared by `cockpit plan show` and the screen's plan view,
so both say the same thing.
"""

from __future__ import annotations

from typing import Any

from cockpit.plan import model as pm


def tree_lines(status: dict[str, Any]) -> list[str]:
    """The plan's header, its summary, one line per sub-task, then the notes."""
    lines = [f"plan {status['id']} · {status['status']} · {status['task'].splitlines()[0]}"]
    if status.get("summary"):
        lines.append(f"  {status['summary']}")
    rows = status.get("rows") or status.get("subtasks", [])  # a bare plan: no session details
    width = max((len(r["id"]) + 1 + len(r["title"]) for r in rows), default=0)
    for n, row in enumerate(rows):
        branch = "└─" if n == len(rows) - 1 else "├─"
        lines.append(f"{branch} {(row['id'] + ' ' + row['title']).ljust(width)}  {row_state(row)}")
    lines += [f"  note: {note}" for note in status.get("notes", [])]
    return lines


def row_state(row: dict[str, Any]) -> str:
    """A sub-task's progress: its session and state, or why it has not started; then its files."""
    files = f"[{', '.join(row.get('files') or []) or 'any file'}]"
    if row["status"] == pm.DROPPED:
        return f"dropped  {files}"
    if "number" not in row:
        after = f" (after {', '.join(row['after'])})" if row.get("after") else ""
        return f"{row['status']}{after}  {files}"
    parts = [f"@{row['number']} {row['status'] if row['status'] == pm.MERGED else row['state']}"]
    stat = row.get("diffstat")
    if stat and stat.get("files"):
        parts.append(f"+{stat['added']} -{stat['removed']} in {stat['files']} file{'s' if stat['files'] != 1 else ''}")
    if row.get("verify"):
        parts.append(f"verify {row['verify']}")
    return "  ".join([*parts, files])
