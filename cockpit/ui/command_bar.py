"""The instruction bar: where the person types to agents, with target completion and history."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.binding import Binding
from textual.containers import Horizontal
from textual.suggester import Suggester
from textual.widgets import Input, Label

from cockpit.core.router import GROUPS

if TYPE_CHECKING:
    from cockpit.ui.app import CockpitApp


class TargetSuggester(Suggester):
    """Completes the last `@…` or `#…` word from session numbers, names, ids, tags and groups."""

    def __init__(self, app: CockpitApp):
        super().__init__(use_cache=False, case_sensitive=False)
        self._app = app

    def candidates(self) -> list[str]:
        words = [f"@{g}" for g in GROUPS]
        for session in self._app.sessions.values():
            words += [f"@{session['number']}", f"@{session['name']}", f"@{session['id']}"]
            words += [f"#{t}" for t in session.get("tags", ())]
        return words

    async def get_suggestion(self, value: str) -> str | None:
        head, _, word = value.rpartition(" ")
        if not word.startswith(("@", "#")) or any(not w.startswith(("@", "#")) for w in head.split()):
            return None
        for candidate in self.candidates():
            if candidate.lower().startswith(word.lower()) and candidate.lower() != word.lower():
                return (head + " " if head else "") + candidate
        return None


class InstructionInput(Input):
    BINDINGS = [
        Binding("up", "history(-1)", "previous", show=False),
        Binding("down", "history(1)", "next", show=False),
        Binding("escape", "leave", "back to panes", show=False),
    ]

    def __init__(self, bar: CommandBar, **kwargs):
        super().__init__(**kwargs)
        self.bar = bar

    def action_history(self, step: int) -> None:
        self.value = self.bar.step_history(step, self.value)
        self.cursor_position = len(self.value)

    def action_leave(self) -> None:
        self.bar.cockpit.leave_bar()


class CommandBar(Horizontal):
    DEFAULT_CSS = """
    CommandBar { height: 3; border-top: solid $panel; padding: 0 1; }
    CommandBar Label { width: auto; padding: 1 1 0 0; color: $accent; }
    CommandBar Input { width: 1fr; border: none; height: 1; margin-top: 1; padding: 0; }
    """

    def __init__(self, app: CockpitApp):
        super().__init__()
        self.cockpit = app
        self.history: list[str] = []
        self._cursor = 0

    def compose(self):
        yield Label("›")
        self.input = InstructionInput(
            self, placeholder="instruction for the focused / marked panes, or @3 @name #tag @all …",
            suggester=TargetSuggester(self.cockpit), id="instruction",
        )
        yield self.input

    def remember(self, line: str) -> None:
        if not self.history or self.history[-1] != line:
            self.history.append(line)
        self._cursor = len(self.history)

    def step_history(self, step: int, current: str) -> str:
        if not self.history:
            return current
        self._cursor = max(0, min(len(self.history), self._cursor + step))
        return self.history[self._cursor] if self._cursor < len(self.history) else ""
