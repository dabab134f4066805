"""The attention queue: which pane needs a human next (pure).

Approvals first (an agent is blocked), then errors (an agent stopped), then finished work
(idle after a turn). Within a class, the order of the grid; the search starts after the
focused pane so repeated presses walk through everyone.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

_PRIORITY = {"waiting": 0, "error": 1, "idle": 2}


def needs_attention(session: dict[str, Any]) -> bool:
    state = session.get("state")
    if state == "idle":
        return bool(session.get("unseen"))
    return state in ("waiting", "error")


def attention_order(sessions: Sequence[dict[str, Any]], order: Sequence[str], after: str | None = None) -> list[str]:
    by_id = {s["id"]: s for s in sessions}
    ids = list(order)
    if after in ids:
        start = ids.index(after) + 1
        ids = ids[start:] + ids[:start]
    wanting = [i for i in ids if i in by_id and needs_attention(by_id[i])]
    return sorted(wanting, key=lambda i: _PRIORITY[by_id[i]["state"]])
