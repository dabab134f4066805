"""The status bar: agents by state, tokens/s now, total cost, budget left, page and layout."""

from __future__ import annotations

from collections import Counter
from typing import Any

from rich.cells import cell_len, set_cell_size
from textual.content import Content
from textual.widget import Widget

from cockpit.config import BudgetConfig
from cockpit.ui.text import STATE_ICONS, compact_number

SEPARATOR = "  │  "
HELP_HINT = "? help"
PAUSED_MARK = "⏸ "
PAUSED_STYLE = "bold white on red"


def status_text(
    sessions: list[dict[str, Any]], *, tokens_per_s: float, budgets: BudgetConfig,
    page: int, pages: int, layout: str, marked: int, label: str = "", paused: str = "",
) -> str:
    """The bar's line; while `paused` (why the agents are held) it leads, in red."""
    counts = Counter(s.get("state", "idle") for s in sessions)
    states = "  ".join(f"{STATE_ICONS[state]} {counts[state]} {state}" for state in
                       ("running", "waiting", "error", "idle") if counts[state])
    cost = sum((s.get("usage") or {}).get("cost_usd", 0.0) for s in sessions)
    parts = [PAUSED_MARK + paused] if paused else []
    parts += [label] if label else []
    parts += [states or "no agents", f"{compact_number(tokens_per_s)} tok/s", f"${cost:.2f}"]
    if budgets.total_usd:
        parts.append(f"budget left ${max(0.0, budgets.total_usd - cost):.2f}")
    if marked:
        parts.append(f"◆ {marked} marked")
    if pages > 1:
        parts.append(f"page {page + 1}/{pages}")
    parts.append(layout)
    parts.append(HELP_HINT)
    return SEPARATOR.join(parts)


class StatusBar(Widget):
    """One plain-text line (a demo's label or a layout name is never markup), cut to fit with
    `? help` kept at its end: at 80 columns the help hint fell off first."""

    DEFAULT_CSS = """
    StatusBar { height: 1; background: $panel; color: $text; padding: 0 1; }
    """

    def __init__(self) -> None:
        super().__init__()
        self.text = ""

    def show(self, text: str) -> None:
        # the bar's size never changes: a repaint, no relayout (see `CockpitApp._refresh_status`)
        self.text = text
        self.refresh()

    def render(self) -> Content:
        line = fit_status(self.text, self.content_size.width)
        if not line.startswith(PAUSED_MARK):
            return Content(line)
        alert, separator, rest = line.partition(SEPARATOR)
        return Content.assemble((alert, PAUSED_STYLE), separator, rest)


def fit_status(text: str, width: int) -> str:
    """`text` fitted to `width` cells, always ending with the help hint: whole parts are left
    out from the right (layout, page, marks go before cost and states), then the first is cut."""
    if cell_len(text) <= width:
        return text
    parts = text.removesuffix(SEPARATOR + HELP_HINT).split(SEPARATOR)
    while len(parts) > 1:
        parts.pop()
        fitted = SEPARATOR.join([*parts, "…", HELP_HINT])
        if cell_len(fitted) <= width:
            return fitted
    room = width - cell_len(SEPARATOR + HELP_HINT) - 1  # one cell for the ellipsis
    if room <= 0:
        return HELP_HINT
    return set_cell_size(parts[0], room).rstrip() + "…" + SEPARATOR + HELP_HINT
