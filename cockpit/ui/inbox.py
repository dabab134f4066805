"""The approval inbox (`I`): every pending approval of every session and host, grouped by what
is asked, answered a group at a time.

One row per group (`pytest …` from 14 sessions, a file two agents want to edit); `a` approves
the whole group, `d` denies it with one reason, `w` writes "always allow this shape" into the
repository's `.cockpit.toml` after showing the diff (and approves the group). Below the groups,
shapes the person approved often in the past are offered as rules. Answering a group removes it
at once and the cursor stays put, so the next group is under it: 120 requests of 6 shapes take
`I` and six `a`.

Grouping is `cockpit.inbox.groups` (pure); the engine serves the requests and the rules
(`cockpit.inbox.service`), so this works the same over a socket and across hosts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from cockpit.core import events as ev
from cockpit.core.events import Event
from cockpit.errors import CockpitError
from cockpit.inbox.groups import Group, group_pending

HINT = "a: approve group · d: deny group · w: always allow in repo · esc: back"
#: Events after which the pending list is read again (on the next tick, once however many came).
_STALE_ON = frozenset({ev.APPROVAL_REQUEST, ev.APPROVAL_RESOLVED, ev.SESSION_REMOVED})
RELOAD_S = 0.3


def request_key(request: dict[str, Any]) -> tuple[str, str, str]:
    return (request.get("host", ""), request["session"], request["id"])


def session_label(request: dict[str, Any]) -> str:
    host = f"{request['host']}:" if request.get("host") else ""
    return f"{host}@{request['number']} {request['name']}"


def group_row(group: Group) -> Text:
    count = len(group.requests)
    sessions = len(group.sessions)
    repos = ", ".join(sorted({Path(repo).name for _, repo in group.by_repo()}))
    row = Text(f"{count:>4}× ", style="bold")
    row.append(group.label)
    row.append(f"  {sessions} session{'s' if sessions != 1 else ''} · {repos}", style="dim")
    return row


def suggestion_row(suggestion: dict[str, Any]) -> Text:
    host = f"{suggestion['host']}:" if suggestion.get("host") else ""
    row = Text("  ✓ ")
    row.append(f"you approved `{suggestion['label']}` {suggestion['approved']} times in "
               f"{host}{Path(suggestion['repo']).name}: allow? (w)")
    return row


class InboxScreen(ModalScreen[None]):
    AUTO_FOCUS = "#inbox-list"
    DEFAULT_CSS = """
    InboxScreen { background: $background; layout: vertical; }
    InboxScreen #inbox-header { height: 1; width: 1fr; background: $panel; color: $text; text-style: bold; padding: 0 1; }
    InboxScreen OptionList, InboxScreen OptionList:focus { height: auto; max-height: 60%; border: none; padding: 0; }
    InboxScreen #inbox-details { height: 1fr; padding: 0 1; border-top: solid $panel; }
    InboxScreen #inbox-footer { height: 1; width: 1fr; background: $panel; color: $text-muted; padding: 0 1; }
    """
    BINDINGS = [
        Binding("escape,I", "close", "back", id="inbox.close"),
        Binding("a", "approve", "approve group", id="inbox.approve"),
        Binding("d", "deny", "deny group", id="inbox.deny"),
        Binding("w", "allow", "always allow in repo", id="inbox.allow"),
        Binding("j", "move(1)", "down", show=False, id="inbox.down"),
        Binding("k", "move(-1)", "up", show=False, id="inbox.up"),
    ]

    def __init__(self, app: Any):
        super().__init__()
        self.cockpit = app  # the CockpitApp: run_command, client, notify
        self.requests: list[dict[str, Any]] = []
        self.groups: list[Group] = []
        self.suggestions: list[dict[str, Any]] = []
        self.answered: set[tuple[str, str, str]] = set()  # sent, but maybe still listed by the engine
        self.loaded = False
        self._stale = False

    def compose(self) -> ComposeResult:
        yield Static("Approval inbox: reading…", id="inbox-header", markup=False)
        with Vertical():
            yield OptionList(id="inbox-list")
            with VerticalScroll(id="inbox-details"):
                yield Static("", id="inbox-detail", markup=False)
        yield Static(HINT, id="inbox-footer", markup=False)

    def on_mount(self) -> None:
        self.reload(suggestions=True)
        self.set_interval(RELOAD_S, self._reload_if_stale)

    # -- reading ---------------------------------------------------------------------------------

    def feed(self, event: Event) -> None:
        """Called by the app's event pump for every event."""
        if event.kind in _STALE_ON:
            self._stale = True

    def _reload_if_stale(self) -> None:
        if self._stale and self.loaded:
            self._stale = False
            self.reload()

    @work(exclusive=True, group="inbox-reload")
    async def reload(self, suggestions: bool = False) -> None:
        pending = await self.cockpit.run_command({"cmd": "inbox_pending"})
        if pending is None:
            return
        listed = {request_key(r) for r in pending}
        self.answered &= listed  # answered and gone: nothing to hide any more
        self.requests = [r for r in pending if request_key(r) not in self.answered]
        if suggestions:
            self.suggestions = await self.cockpit.run_command({"cmd": "inbox_suggestions"}) or []
        self.loaded = True
        self._show()

    def _show(self) -> None:
        """Rebuild the rows from the requests, keeping the cursor on its group (or its place)."""
        option_list = self.query_one(OptionList)
        current = option_list.highlighted_option.id if option_list.highlighted_option is not None else None
        index = option_list.highlighted or 0
        self.groups = group_pending(self.requests)
        options: list[Option | None] = [Option(group_row(g), id=f"g:{g.key}") for g in self.groups]
        if self.suggestions:
            if options:
                options.append(None)
            options.append(Option(Text("Suggested rules, from your past answers", style="bold"), disabled=True))
            options += [Option(suggestion_row(s), id=f"s:{i}") for i, s in enumerate(self.suggestions)]
        option_list.set_options(options)
        ids = [o.id for o in option_list.options]
        if current is not None and current in ids:
            option_list.highlighted = ids.index(current)
        elif option_list.option_count:
            selectable = [i for i, o in enumerate(option_list.options) if not o.disabled]
            option_list.highlighted = min(selectable, key=lambda i: (i < index, abs(i - index))) if selectable else None
        self._header()
        self._details()

    def _header(self) -> None:
        sessions = len({(r.get("host", ""), r["session"]) for r in self.requests})
        hosts = {r.get("host", "") for r in self.requests} - {""}
        where = f" on {len(hosts)} hosts" if len(hosts) > 1 else ""
        text = (f"Approval inbox: {len(self.requests)} pending in {len(self.groups)} groups from "
                f"{sessions} sessions{where}") if self.requests else "Approval inbox: nothing is waiting for you"
        self.query_one("#inbox-header", Static).update(text)

    def on_option_list_option_highlighted(self, _: OptionList.OptionHighlighted) -> None:
        self._details()

    def _details(self) -> None:
        detail = self.query_one("#inbox-detail", Static)
        group, suggestion = self.selected()
        if group is not None:
            lines = [Text(f"{group.label}: {len(group.requests)} requests", style="bold")]
            lines += [Text(f"{session_label(r)}  {r['title']}") for r in group.requests]
            detail.update(Text("\n").join(lines))
        elif suggestion is not None:
            lines = [Text(f"allow `{suggestion['label']}` in {suggestion['repo']}", style="bold"),
                     Text("adds to [approval] shell_allow: " + ", ".join(suggestion["patterns"])),
                     Text("approved before: " + " · ".join(suggestion["commands"]), style="dim")]
            detail.update(Text("\n").join(lines))
        else:
            detail.update("")

    def selected(self) -> tuple[Group | None, dict[str, Any] | None]:
        option = self.query_one(OptionList).highlighted_option
        if option is None or option.id is None:
            return None, None
        kind, _, rest = option.id.partition(":")
        if kind == "g":
            return next((g for g in self.groups if g.key == rest), None), None
        return None, self.suggestions[int(rest)]

    # -- answering -------------------------------------------------------------------------------

    def action_close(self) -> None:
        self.dismiss()

    def action_move(self, step: int) -> None:
        option_list = self.query_one(OptionList)
        (option_list.action_cursor_down if step > 0 else option_list.action_cursor_up)()

    async def action_approve(self) -> None:
        group, _ = self.selected()
        if group is None:
            self.cockpit.notify("pick a group of requests to approve", severity="warning")
            return
        await self._answer(group, "approve")

    @work
    async def action_deny(self) -> None:
        from cockpit.ui.dialogs import TextPrompt

        group, _ = self.selected()
        if group is None:
            self.cockpit.notify("pick a group of requests to deny", severity="warning")
            return
        count = len(group.requests)
        reason = await self.app.push_screen_wait(TextPrompt(
            f"Deny {count} request{'s' if count != 1 else ''} ({group.label}): one reason for all (optional)"))
        if reason is not None:
            await self._answer(group, "deny", reason=reason)

    async def _answer(self, group: Group, cmd: str, **args: Any) -> None:
        """Answer every request of the group; it leaves the list at once, before the engine says so."""
        keys = {request_key(r) for r in group.requests}
        self.answered |= keys
        self.requests = [r for r in self.requests if request_key(r) not in keys]
        self._show()
        gone = 0
        for request in group.requests:
            try:
                await self.cockpit.client.execute({"cmd": cmd, "session": request["session"], "id": request["id"], **args})
            except CockpitError:
                gone += 1  # answered meanwhile (in its pane, by another screen) or its session went
        if gone:
            self.cockpit.notify(f"{gone} of {len(group.requests)} were answered already or their session is gone",
                                timeout=4)

    @work(exclusive=True, group="inbox-rule")
    async def action_allow(self) -> None:
        group, suggestion = self.selected()
        if group is not None:
            if not group.shape.patterns:
                self.cockpit.notify(f"{group.label}: only a shell command's shape can become a rule",
                                    severity="warning", timeout=6)
                return
            label = group.label
            targets = [(session, group.shape.patterns, _commands_in(group, host, repo))
                       for (host, repo), session in group.by_repo().items()]
        elif suggestion is not None:
            label = suggestion["label"]
            targets = [(suggestion["session"], suggestion["patterns"], suggestion["commands"])]
        else:
            return
        if await self._write_rules(label, targets):
            if group is not None:
                await self._answer(group, "approve")
            self.reload(suggestions=True)  # the rule may cover what was suggested

    async def _write_rules(self, label: str, targets: list[tuple[str, Any, list[str]]]) -> bool:
        """Show every repository's diff, then write them all (the person said yes to all of them)."""
        plans = []
        for session, patterns, commands in targets:
            plan = await self.cockpit.run_command({"cmd": "inbox_rule_preview", "session": session,
                                                   "patterns": list(patterns), "commands": commands})
            if plan is None:
                return False  # the refusal was shown
            plans.append((session, list(patterns), plan))
        if not await self.app.push_screen_wait(RuleDiff(label, [plan for _, _, plan in plans])):
            return False
        for session, patterns, plan in plans:
            done = await self.cockpit.run_command({"cmd": "inbox_rule_write", "session": session,
                                                   "patterns": patterns, "digest": plan["digest"]})
            if done is None:
                return False
            self.cockpit.notify(f"rule written to {done['file']} (trusted as you saw it)", timeout=5)
        return True


def _commands_in(group: Group, host: str, repo: str) -> list[str]:
    mine = Group(group.shape, [r for r in group.requests if (r.get("host", ""), r.get("repo", "")) == (host, repo)])
    return mine.commands


class RuleDiff(ModalScreen[bool]):
    """The change to each repository's `.cockpit.toml`, shown before it is written: y writes."""

    DEFAULT_CSS = """
    RuleDiff { align: center middle; }
    RuleDiff > Vertical { width: 90%; height: auto; max-height: 90%; border: round $accent; background: $panel;
                          padding: 0 1; }
    RuleDiff .title { text-style: bold; padding: 0 0 1 0; }
    RuleDiff VerticalScroll { height: auto; max-height: 30; }
    RuleDiff .hint { color: $text-muted; }
    """
    BINDINGS = [
        Binding("y,enter", "answer(True)", "write", show=False),
        Binding("n,escape", "answer(False)", "cancel", show=False),
    ]

    def __init__(self, label: str, plans: list[dict[str, Any]]):
        super().__init__()
        self.label = label
        self.plans = plans

    def compose(self) -> ComposeResult:
        if len(self.plans) == 1:
            title = f"Always allow `{self.label}` in {Path(self.plans[0]['repo']).name}? The change to its policy:"
        else:
            title = f"Always allow `{self.label}` in {len(self.plans)} repositories? The changes to their policies:"
        with Vertical():
            yield Static(title, classes="title", markup=False)
            with VerticalScroll():
                yield Static(diff_text(self.plans), markup=False)
            yield Static("y / enter: write it and trust the new file · n / escape: cancel", classes="hint",
                         markup=False)

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


def diff_text(plans: list[dict[str, Any]]) -> Text:
    out = Text()
    for plan in plans:
        if plan.get("new_file"):
            out.append(f"new file {Path(plan['repo']).name}/{Path(plan['file']).name}\n", style="italic")
        for line in plan["diff"].splitlines():
            style = ("bold" if line.startswith(("+++", "---")) else "green" if line.startswith("+")
                     else "red" if line.startswith("-") else "cyan" if line.startswith("@@") else "")
            out.append(line + "\n", style=style)
    out.rstrip()
    return out
