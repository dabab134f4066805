"""Dialogs of the merge desk: landing a session, and picking one of its checkpoints.

- `MergeDialog(...)` → `{"action": "merge", "strategy", "message"}`, `{"action": "rebase"}` or None
- `CheckpointPicker(label, points)` → `("show" | "rollback", checkpoint dict)` or None

Both only show what the merge view fetched (preview, drafted message, checkpoints) and return
the person's choice; the merge view sends the commands.
"""

from __future__ import annotations

import time
from typing import Any

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Button, Label, OptionList, Select, Static, TextArea
from textual.widgets.option_list import Option

from cockpit.ui.dialogs import _DIALOG_CSS
from cockpit.ui.review_text import merge_outcome, verify_text

STRATEGY_CHOICES = (
    ("squash: one commit", "squash"),
    ("merge commit", "merge"),
    ("rebase + fast-forward", "rebase"),
)
LISTED_CONFLICTS = 6


class MergeDialog(ModalScreen[dict[str, Any] | None]):
    """Strategy, editable drafted message, and the conflict preview; on conflicts, the offer
    to rebase the session onto its target and hand the conflicts to its agent."""

    DEFAULT_CSS = _DIALOG_CSS.format(cls="MergeDialog") + """
    MergeDialog > Vertical { width: 90; }
    MergeDialog .ok { color: $success; text-style: bold; width: 1fr; }
    MergeDialog .conflict { color: $error; text-style: bold; width: 1fr; }
    MergeDialog .files { color: $text; width: 1fr; padding: 0 0 0 2; }
    MergeDialog .refusal { color: $warning; width: 1fr; }
    MergeDialog .row { height: auto; margin: 1 0 0 0; }
    MergeDialog .row > Label { width: 10; color: $text-muted; }
    MergeDialog .row > Select { width: 1fr; }
    MergeDialog TextArea { width: 1fr; height: 8; }
    MergeDialog #merge-buttons { height: auto; align-horizontal: right; }
    MergeDialog Button { margin: 0 0 0 1; }
    """
    BINDINGS = [
        Binding("escape", "cancel", "cancel", show=False),
        Binding("ctrl+s", "merge", "merge", show=False),
        Binding("ctrl+r", "rebase", "rebase onto the target", show=False),
    ]

    def __init__(self, label: str, name: str, preview: dict[str, Any], message: str, *, strategy: str,
                 verify: dict[str, Any]):
        super().__init__()
        self.label = label
        self.session_name = name
        self.preview = preview
        self.message = message
        self.strategy = strategy
        self.verify = verify

    @property
    def conflicts(self) -> list[str]:
        return list(self.preview.get("conflicts") or [])

    def compose(self) -> ComposeResult:
        target = self.preview["target"]
        conflicts = self.conflicts
        with Vertical():
            yield Label(f"Merge {self.label} {self.session_name} into {target}", classes="title", markup=False)
            yield Static(merge_outcome(self.preview), classes="conflict" if conflicts else "ok", markup=False)
            if conflicts:
                shown = conflicts[:LISTED_CONFLICTS]
                more = len(conflicts) - len(shown)
                yield Static("\n".join(shown) + (f"\n… and {more} more" if more else ""), classes="files", markup=False)
            if self.preview.get("refusal"):
                yield Static(f"cannot merge now: {self.preview['refusal']}", classes="refusal", markup=False)
            yield Static(verify_text(self.verify, self.preview), classes="hint", markup=False)
            with Horizontal(classes="row"):
                yield Label("Strategy")
                yield Select(STRATEGY_CHOICES, value=self.strategy, allow_blank=False, id="merge-strategy",
                             compact=True)
            yield TextArea(self.message, id="merge-message", soft_wrap=True, tab_behavior="focus",
                           show_line_numbers=False)
            keys = "ctrl+s: merge · escape: cancel"
            if conflicts:
                keys = "ctrl+r: rebase, the agent resolves the conflicts · escape: cancel"
            yield Label(keys, classes="hint", markup=False)
            with Horizontal(id="merge-buttons"):
                yield Button("Cancel", id="merge-cancel", compact=True)
                if conflicts:
                    yield Button(Content(f"Rebase onto {target} → agent"), id="merge-rebase", variant="warning", compact=True)
                yield Button("Merge", id="merge-go", variant="primary", compact=True, disabled=bool(conflicts))

    def on_mount(self) -> None:
        if self.conflicts:
            self.query_one("#merge-rebase", Button).focus()
        else:
            self.query_one("#merge-message", TextArea).focus()

    @on(Button.Pressed, "#merge-go")
    def _merge_pressed(self) -> None:
        self.action_merge()

    @on(Button.Pressed, "#merge-rebase")
    def _rebase_pressed(self) -> None:
        self.action_rebase()

    @on(Button.Pressed, "#merge-cancel")
    def _cancel_pressed(self) -> None:
        self.action_cancel()

    def action_merge(self) -> None:
        if self.conflicts:
            self.notify("the change conflicts with its target: rebase it first (ctrl+r)", severity="warning")
            return
        strategy = self.query_one("#merge-strategy", Select).value
        self.dismiss({"action": "merge", "strategy": str(strategy),
                      "message": self.query_one("#merge-message", TextArea).text})

    def action_rebase(self) -> None:
        if self.conflicts:
            self.dismiss({"action": "rebase"})

    def action_cancel(self) -> None:
        self.dismiss(None)


class CheckpointPicker(ModalScreen[tuple[str, dict[str, Any]] | None]):
    """The session's checkpoints, newest first, with #0 (the base commit) last: enter shows
    what that turn changed, r rolls the worktree back to it."""

    DEFAULT_CSS = _DIALOG_CSS.format(cls="CheckpointPicker") + """
    CheckpointPicker > Vertical { width: 84; }
    CheckpointPicker OptionList { height: auto; max-height: 16; }
    """
    BINDINGS = [
        Binding("escape", "cancel", "cancel", show=False),
        Binding("r", "rollback", "roll back", show=False),
    ]

    def __init__(self, label: str, points: list[dict[str, Any]]):
        super().__init__()
        self.label = label
        base = {"n": 0, "reason": "the base commit", "files": 0, "added": 0, "removed": 0, "created_at": 0.0}
        self.points = [*sorted(points, key=lambda p: -p["n"]), base]

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(f"Checkpoints of {self.label}", classes="title", markup=False)
            yield OptionList(*(Option(_point_text(p), id=str(p["n"])) for p in self.points), id="points", markup=False)
            yield Label("enter: what that turn changed · r: roll back to it · escape: close", classes="hint")

    def on_mount(self) -> None:
        points = self.query_one(OptionList)
        points.highlighted = 0
        points.focus()

    def _chosen(self) -> dict[str, Any] | None:
        index = self.query_one(OptionList).highlighted
        return self.points[index] if index is not None else None

    @on(OptionList.OptionSelected)
    def _selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.dismiss(("show", self.points[event.option_index]))

    def action_rollback(self) -> None:
        point = self._chosen()
        if point is not None:
            self.dismiss(("rollback", point))

    def action_cancel(self) -> None:
        self.dismiss(None)


def _point_text(point: dict[str, Any]) -> str:
    if point["n"] == 0:
        return "#0   the base commit (undo every turn)"
    when = time.strftime("%H:%M", time.localtime(point["created_at"])) if point.get("created_at") else ""
    stat = f"{point['files']} files +{point['added']} −{point['removed']}"
    return f"#{point['n']:<3} {point['reason']:<26} {stat:<24} {when}"
