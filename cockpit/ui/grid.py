"""The pane grid: places agent panes with a tmux-style layout and pages what does not fit.

Panes are absolutely positioned children; only the current page's panes are displayed, so
hidden panes cost nothing to render. Geometry comes from the pure functions in `layout`.
"""

from __future__ import annotations

from collections.abc import Iterable

from textual.widget import Widget

from cockpit.config import LayoutConfig
from cockpit.ui.layout import LAYOUTS, Rect, arrange, capacity, paginate
from cockpit.ui.pane import AgentPane


class PaneGrid(Widget):
    DEFAULT_CSS = """
    PaneGrid { height: 1fr; width: 1fr; color: $text-muted; }
    """

    def __init__(self, layout: LayoutConfig, **kwargs):
        super().__init__(**kwargs)
        self.settings = layout
        self.layout_name = layout.layout
        self.page = 0
        self.order: list[str] = []  # session ids in display order
        self.repo_filter = ""  # a repository's slug: only its sessions are paged; "" = all
        self.panes: dict[str, AgentPane] = {}
        self.rects: dict[str, Rect] = {}

    # -- membership ----------------------------------------------------------------------------

    async def add_panes(self, panes: Iterable[AgentPane]) -> None:
        new = [p for p in panes if p.session_id not in self.panes]
        for pane in new:
            self.panes[pane.session_id] = pane
            self.order.append(pane.session_id)
            pane.display = False
        if new:
            await self.mount_all(new)
        self._name_repos()
        self.relayout()
        self.refresh()  # the empty-cockpit text underneath

    async def remove_pane(self, session_id: str) -> None:
        pane = self.panes.pop(session_id, None)
        if pane is None:
            return
        self.order.remove(session_id)
        self.rects.pop(session_id, None)
        await pane.remove()
        if self.repo_filter not in self.repos():
            self.repo_filter = ""  # its last session went: show everyone again
        self._name_repos()
        self.relayout()
        self.refresh()

    def render(self) -> str:
        """What shows under the panes: only visible when there are none."""
        if self.order:
            return ""
        return (
            "\n  No sessions yet.\n\n"
            "  c        create one (or a fan-out of N agents on one task)\n"
            "  ctrl+p   every action\n"
            "  ?        keys\n\n"
            "  From a shell: cockpit new --task \"…\" --count 3"
        )

    # -- the repository filter -------------------------------------------------------------------

    @property
    def shown(self) -> list[str]:
        """The sessions the pages hold, in display order: all, or the filtered repository's."""
        if not self.repo_filter:
            return self.order
        return [i for i in self.order if self.panes[i].session.get("repo") == self.repo_filter]

    def repos(self) -> list[str]:
        """The repositories of the panes, sorted."""
        return sorted({str(p.session.get("repo") or "") for p in self.panes.values()} - {""})

    def _name_repos(self) -> None:
        """Headers name each session's repository while panes of several repositories are here."""
        several = len(self.repos()) > 1
        for pane in self.panes.values():
            if pane.show_repo != several:
                pane.show_repo, pane.header_dirty = several, True

    def filter_repo(self, repo: str) -> None:
        self.repo_filter = repo
        self.page = 0
        self.relayout()

    # -- geometry ------------------------------------------------------------------------------

    @property
    def per_page(self) -> int:
        width, height = self.size
        if not width or not height:
            return max(1, len(self.shown))
        return self.capacity_within(width, height)

    def capacity_within(self, width: int, height: int) -> int:
        """How many panes a page of this layout holds in an area of that size (the whole screen
        before the grid is laid out: an upper bound)."""
        s = self.settings
        return capacity(width, height, self.layout_name, s.min_pane_width, s.min_pane_height, s.main_size)

    @property
    def pages(self) -> list[range]:
        return paginate(len(self.shown), self.per_page)

    def visible_ids(self) -> list[str]:
        shown, pages = self.shown, self.pages
        self.page = min(self.page, len(pages) - 1)
        return [shown[i] for i in pages[self.page]]

    def relayout(self) -> None:
        width, height = self.size
        visible = self.visible_ids()
        s = self.settings
        rects = (
            arrange(width, height, len(visible), self.layout_name, s.main_size, s.min_pane_width, s.min_pane_height)
            if width else []
        )
        self.rects = dict(zip(visible, rects))
        shown = set(self.rects)
        for session_id, pane in self.panes.items():
            rect = self.rects.get(session_id)
            if rect is None:
                pane.display = False
                continue
            pane.styles.offset = (rect.x, rect.y)
            pane.styles.width = rect.width
            pane.styles.height = rect.height
            pane.display = session_id in shown

    def on_resize(self) -> None:
        self.relayout()

    def set_layout(self, name: str) -> None:
        if name not in LAYOUTS:
            raise ValueError(f"unknown layout {name!r}")
        self.layout_name = name
        self.relayout()

    def cycle_layout(self) -> str:
        self.set_layout(LAYOUTS[(LAYOUTS.index(self.layout_name) + 1) % len(LAYOUTS)])
        return self.layout_name

    def show_page(self, page: int) -> None:
        self.page = max(0, min(page, len(self.pages) - 1))
        self.relayout()

    def page_of(self, session_id: str) -> int:
        index = self.shown.index(session_id)
        return index // max(1, self.per_page)

    def reveal(self, session_id: str) -> AgentPane:
        """Switch to the page showing this session (all repositories when the filter hides it) and
        return its pane."""
        if session_id not in self.shown:
            self.filter_repo("")
        page = self.page_of(session_id)
        if page != self.page:
            self.show_page(page)
        return self.panes[session_id]

    def neighbour(self, session_id: str, direction: str) -> str | None:
        """The visible pane nearest to `session_id` in a direction (left/right/up/down)."""
        here = self.rects.get(session_id)
        if here is None:
            return None
        cx, cy = here.x + here.width / 2, here.y + here.height / 2
        best: tuple[float, str] | None = None
        for other, rect in self.rects.items():
            if other == session_id:
                continue
            ox, oy = rect.x + rect.width / 2, rect.y + rect.height / 2
            dx, dy = ox - cx, oy - cy
            ahead = {"left": -dx, "right": dx, "up": -dy, "down": dy}[direction]
            if ahead <= 0:
                continue
            side = abs(dy) if direction in ("left", "right") else abs(dx)
            score = ahead + 2 * side
            if best is None or score < best[0]:
                best = (score, other)
        return best[1] if best else None
