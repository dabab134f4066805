"""Modal dialogs that return a value: the app awaits them with `push_screen_wait` from @work actions.

- `TextPrompt(title, value="")` → the text (enter) or None (escape)
- `Confirm(question)` → True (y / enter) or False (n / escape)
- `NewSessionDialog(config)` → keyword arguments for the engine's `create` command, or None

All are keyboard-first: tab moves between fields, escape cancels, and the usual "submit"
key (enter, or ctrl+s in the form) answers.
"""

from __future__ import annotations

from typing import Any

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Select, Static, TextArea

from cockpit.config import Config

MAX_FANOUT = 100

_DIALOG_CSS = """
{cls} {{ align: center middle; }}
{cls} > Vertical {{
    width: 72; max-width: 95%; height: auto; max-height: 90%;
    border: round $accent; background: $panel; padding: 0 1;
}}
{cls} .title {{ text-style: bold; padding: 0 0 1 0; width: 1fr; }}
{cls} .hint {{ color: $text-muted; width: 1fr; }}
"""


class TextPrompt(ModalScreen[str | None]):
    """One line of text. Enter answers with the text (possibly empty), escape with None."""

    DEFAULT_CSS = _DIALOG_CSS.format(cls="TextPrompt") + """
    TextPrompt Input { width: 1fr; }
    """
    BINDINGS = [Binding("escape", "cancel", "cancel", show=False)]

    def __init__(self, title: str, value: str = "", *, placeholder: str = ""):
        super().__init__()
        self.prompt_title = title
        self.initial = value
        self.placeholder = placeholder

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(self.prompt_title, classes="title", markup=False)  # names, paths
            yield Input(self.initial, placeholder=self.placeholder, id="prompt-input", select_on_focus=False)
            yield Label("enter: ok   escape: cancel", classes="hint")

    def on_mount(self) -> None:
        field = self.query_one(Input)
        field.focus()
        field.cursor_position = len(field.value)

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.dismiss(event.value)

    def action_cancel(self) -> None:
        self.dismiss(None)


class Confirm(ModalScreen[bool]):
    """A yes/no question: y or enter says yes, n or escape says no."""

    DEFAULT_CSS = _DIALOG_CSS.format(cls="Confirm")
    BINDINGS = [
        Binding("y,enter", "answer(True)", "yes", show=False),
        Binding("n,escape", "answer(False)", "no", show=False),
    ]

    def __init__(self, question: str):
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(self.question, classes="title", markup=False)  # names, paths
            yield Label("[y / enter] yes    [n / escape] no", classes="hint", markup=False)

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


#: Where a new session works (see `cockpit.core.placement`); the Base ref field names the branch
#: or the worktree's path for the two that reuse something.
WHERE = [
    ("new branch from the base ref", "new"),
    ("existing branch (named in Base ref)", "branch"),
    ("reuse a worktree (its path in Base ref)", "worktree"),
    ("none: read-only in the main checkout", "read-only"),
]


class NewSessionDialog(ModalScreen[dict[str, Any] | None]):
    """The fields of a new session (or a fan-out of N sessions doing the same task).

    The result is the keyword arguments of the engine's `create` command:
    `{"repo", "name", "agent", "model", "task", "count", "tags"}` plus `"base_ref"` when one
    was typed (blank = the engine's default: `defaults.base_ref`, else the current branch), or
    `"branch"` / `"worktree"` / `"read_only"` when the Worktree choice says so.
    """

    DEFAULT_CSS = _DIALOG_CSS.format(cls="NewSessionDialog") + """
    NewSessionDialog > Vertical { width: 84; }
    NewSessionDialog .row { height: auto; margin: 0 0 1 0; }
    NewSessionDialog .row > Label { width: 12; color: $text-muted; }
    NewSessionDialog .row > Input, NewSessionDialog .row > Select { width: 1fr; }
    NewSessionDialog TextArea { width: 1fr; height: 5; }
    NewSessionDialog #new-error { color: $error; text-style: bold; width: 1fr; height: auto; }
    NewSessionDialog #new-buttons { height: auto; align-horizontal: right; }
    NewSessionDialog Button { margin: 0 0 0 1; }
    """
    BINDINGS = [
        Binding("escape", "cancel", "cancel", show=False),
        Binding("ctrl+s", "submit", "create", show=False),
    ]

    def __init__(self, config: Config, *, repo: str | None = None):
        super().__init__()
        self.config = config
        self.repo = repo

    def compose(self) -> ComposeResult:
        # a conductor belongs to a plan (`P`), never to a session made by hand
        agents = sorted(n for n, a in self.config.agents.items() if a.kind != "conductor") or [self.config.defaults.agent]
        default_agent = self.config.defaults.agent if self.config.defaults.agent in agents else agents[0]
        models = [(f"{name}  ({m.model})", name) for name, m in sorted(self.config.models.items())]
        with Vertical():
            yield Label("New session", classes="title")
            with Horizontal(classes="row"):
                yield Label("Name")
                yield Input(placeholder="blank: from the task", id="new-name", compact=True)
            with Horizontal(classes="row"):
                yield Label("Repository")
                yield Input(self._repo(), placeholder="the repository's folder", id="new-repo", compact=True)
            with Horizontal(classes="row"):
                yield Label("Worktree")
                yield Select(WHERE, value="new", allow_blank=False, id="new-where", compact=True)
            with Horizontal(classes="row"):
                yield Label("Base ref")
                yield Input(self.config.defaults.base_ref, placeholder="blank: the current branch", id="new-base",
                            compact=True)
            with Horizontal(classes="row"):
                yield Label("Agent")
                yield Select([(name, name) for name in agents], value=default_agent, allow_blank=False,
                             id="new-agent", compact=True)
            with Horizontal(classes="row"):
                yield Label("Model")
                yield Select(models, prompt="the agent's own model", allow_blank=True, id="new-model", compact=True)
            with Horizontal(classes="row"):
                yield Label("Task")
                yield TextArea(id="new-task", soft_wrap=True, tab_behavior="focus", show_line_numbers=False)
            with Horizontal(classes="row"):
                yield Label("Count")
                yield Input("1", type="integer", id="new-count", compact=True,
                            tooltip=f"N > 1 fans the same task out to N sessions (at most {MAX_FANOUT})")
            with Horizontal(classes="row"):
                yield Label("Tags")
                yield Input(placeholder="space or comma separated, e.g. api backend", id="new-tags", compact=True)
            yield Static("", id="new-error", markup=False)
            yield Label("tab: next field · enter in the task: new line · count > 1: fan-out\n"
                        "ctrl+s or enter on tags: create · escape: cancel", classes="hint")
            with Horizontal(id="new-buttons"):
                yield Button("Cancel", id="new-cancel", compact=True)
                yield Button("Create", variant="primary", id="new-create", compact=True)

    def on_mount(self) -> None:
        self.query_one("#new-name", Input).focus()

    # -- reading the form ------------------------------------------------------------------------

    def result(self) -> dict[str, Any]:
        """The create command's arguments; ValueError with a person-readable reason if invalid."""
        raw_count = self.query_one("#new-count", Input).value.strip()
        try:
            count = int(raw_count)
        except ValueError:
            raise ValueError(f"Count must be a whole number from 1 to {MAX_FANOUT}, got {raw_count!r}") from None
        if not 1 <= count <= MAX_FANOUT:
            raise ValueError(f"Count must be a whole number from 1 to {MAX_FANOUT}, got {count}")
        model = self.query_one("#new-model", Select).value
        tags_text = self.query_one("#new-tags", Input).value.replace(",", " ")
        tags: list[str] = []
        for word in tags_text.split():
            tag = word.lstrip("#")
            if tag and tag not in tags:
                tags.append(tag)
        repo = self.query_one("#new-repo", Input).value.strip()
        if not repo:
            raise ValueError("Repository: name the folder of a git repository")
        spec: dict[str, Any] = {
            "repo": repo,
            "name": self.query_one("#new-name", Input).value.strip(),
            "agent": str(self.query_one("#new-agent", Select).value),
            "model": model if isinstance(model, str) else "",
            "task": self.query_one("#new-task", TextArea).text.strip(),
            "count": count,
            "tags": tags,
        }
        base = self.query_one("#new-base", Input).value.strip()
        where = self.query_one("#new-where", Select).value
        if where == "read-only":
            spec["read_only"] = True
        elif where in ("branch", "worktree"):
            if not base:
                raise ValueError(f"Base ref: type the existing {'branch' if where == 'branch' else 'worktree path'}")
            spec[where] = base
        elif base:
            spec["base_ref"] = base
        return spec

    def _repo(self) -> str:
        """The repository offered: the one given, else the app's (where the cockpit started)."""
        return self.repo if self.repo is not None else str(getattr(self.app, "repo", "."))

    # -- keys ------------------------------------------------------------------------------------

    @on(Input.Submitted)
    def _enter(self, event: Input.Submitted) -> None:
        event.stop()
        if event.input.id == "new-tags":
            self.action_submit()
        else:
            self.focus_next()

    @on(Button.Pressed, "#new-create")
    def _create_pressed(self) -> None:
        self.action_submit()

    @on(Button.Pressed, "#new-cancel")
    def _cancel_pressed(self) -> None:
        self.action_cancel()

    def action_submit(self) -> None:
        try:
            spec = self.result()
        except ValueError as exc:
            self.query_one("#new-error", Static).update(str(exc))
            self.query_one("#new-count", Input).focus()
            return
        self.dismiss(spec)

    def action_cancel(self) -> None:
        self.dismiss(None)
