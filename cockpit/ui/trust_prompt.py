"""What the screen does with `config` events: a note in the status bar, and the trust question.

A repository's `.cockpit.toml` that is not trusted yet and wanted more than its harmless keys
(commands, models, keys, wider approvals) makes the engine emit `config` with status
`untrusted`. The screen asks the person once per file version, in a dialog whose default is
*no*: trusting runs that file's commands and sends your keys where it says. `y` trusts it (the
engine records that, and re-reads the file); `n`, escape or enter leave it untrusted, and the
status bar keeps the `cockpit trust` hint.
"""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label

from cockpit.ui.dialogs import _DIALOG_CSS

NOTE_SECONDS = 8.0  # how long "config reloaded" stays in the status bar


class TrustPrompt(ModalScreen[bool]):
    """Trust a repository's config file? `y` yes; `n`, escape or enter no."""

    DEFAULT_CSS = _DIALOG_CSS.format(cls="TrustPrompt") + """
    TrustPrompt > Vertical { width: 84; }
    TrustPrompt .keys { color: $warning; width: 1fr; padding: 0 0 1 0; }
    """
    BINDINGS = [
        Binding("y", "answer(True)", "trust", show=False),
        Binding("n,escape,enter", "answer(False)", "not now", show=False),
    ]

    def __init__(self, file: str, ignored: list[str]):
        super().__init__()
        self.file = file
        self.ignored = ignored

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(f"Trust {self.file}?", classes="title", markup=False)
            yield Label("It is not trusted yet, so these keys were ignored:", markup=False)
            yield Label(", ".join(self.ignored), classes="keys", markup=False)
            yield Label("Trusting runs its commands and sends your API keys where it says. "
                        "Only trust a repository you know. A changed file asks again.", markup=False)
            yield Label("[y] trust it    [n / escape] not now", classes="hint", markup=False)

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


def on_config_event(app: Any, data: dict[str, Any]) -> None:
    """React to one `config` event (the app provides `status_note`, `trust_asked`, `run_command`,
    `notify` and `push_screen`)."""
    status = data.get("status")
    if status == "reloaded":
        app.status_note("config reloaded", NOTE_SECONDS)
    elif status == "error":
        app.status_note("config error: the last good config stays", NOTE_SECONDS)
        app.notify(data.get("text", ""), title="config", severity="error", timeout=12, markup=False)
    elif status == "untrusted":
        _ask(app, data)


def _ask(app: Any, data: dict[str, Any]) -> None:
    repo, digest = data.get("repo", ""), data.get("digest", "")
    app.status_note(f"config of {repo} not trusted: `cockpit trust {repo}`")
    if (repo, digest) in app.trust_asked:
        return
    app.trust_asked.add((repo, digest))

    async def answered(yes: bool | None) -> None:
        if yes and await app.run_command({"cmd": "trust", "repo": repo, "digest": digest}) is not None:
            app.status_note("")
            app.notify(f"trusted {data.get('file', repo)}: its settings apply to sessions created from now on",
                       timeout=6, markup=False)

    app.push_screen(TrustPrompt(data.get("file", repo), list(data.get("ignored", []))), answered)
