"""The status bar: agents by state, tokens/s now, total cost, budget left, page and layout."""

from __future__ import annotations

from collections import Counter
from typing import Any

from textual.widgets import Static

from cockpit.config import BudgetConfig
from cockpit.ui.text import STATE_ICONS, compact_number


def status_text(
    sessions: list[dict[str, Any]], *, tokens_per_s: float, budgets: BudgetConfig,
    page: int, pages: int, layout: str, marked: int, label: str = "",
) -> str:
    counts = Counter(s.get("state", "idle") for s in sessions)
    states = "  ".join(f"{STATE_ICONS[state]} {counts[state]} {state}" for state in
                       ("running", "waiting", "error", "idle") if counts[state])
    cost = sum((s.get("usage") or {}).get("cost_usd", 0.0) for s in sessions)
    parts = [label] if label else []
    parts += [states or "no agents", f"{compact_number(tokens_per_s)} tok/s", f"${cost:.2f}"]
    if budgets.total_usd:
        parts.append(f"budget left ${max(0.0, budgets.total_usd - cost):.2f}")
    if marked:
        parts.append(f"◆ {marked} marked")
    if pages > 1:
        parts.append(f"page {page + 1}/{pages}")
    parts.append(layout)
    parts.append("? help")
    return "  │  ".join(parts)


class StatusBar(Static):
    """Plain text (the demo's label or a layout name is never markup)."""

    DEFAULT_CSS = """
    StatusBar { height: 1; background: $panel; color: $text; padding: 0 1; }
    """

    def __init__(self) -> None:
        super().__init__(markup=False)
