"""The merge view: review one session's change file by file and hunk by hunk, then land it.

Left, the changed files (review state, status letter, path, counts); right, the current
file's diff. Everything it shows comes from engine commands sent through `app.run_command`
(`diff`, `checkpoints`, `checkpoint_diff`, `merge_preview`, `merge_message`), and everything it
does is one too (`revert_hunk`, `comment`, `rollback`, `verify`, `merge`, `rebase_onto_target`,
`pr`), so the view works the same on a remote engine.

Review state (unseen / viewed / kept) lives in the app, per session, so leaving the view and
coming back keeps it. It is tied to each file's counts: a file the agent changed again since
it was marked shows as unseen again.

It is a modal screen so the grid's keys (q quits, c creates …) do not act underneath it.
Dialogs are imported when opened (like the app's): this module is imported at start for its
key bindings.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import ModalScreen
from textual.widgets import Static

from cockpit.core import events as ev
from cockpit.core.diffs import Change, FileDiff, Hunk
from cockpit.core.events import Event
from cockpit.errors import CockpitError
from cockpit.ui.diff_view import DiffView
from cockpit.ui.file_list import FileList
from cockpit.ui.review_text import preview_badge, verify_text

if TYPE_CHECKING:
    from cockpit.ui.app import CockpitApp

FOOTER = ("]/[ file  n/p hunk  s side by side  space viewed  y keep  R revert  c comment  m merge  "
          "h turns  v verify  P PR  r reload  ? keys  esc back")


# -- review state -----------------------------------------------------------------------------------


def fingerprint(diff: FileDiff) -> tuple[Any, ...]:
    """What a review mark is tied to: a file whose counts change is unseen again.
    (`patch_lines` is the same folded or loaded, so opening a large file keeps its mark.)"""
    return diff.status, diff.old_path, diff.added, diff.removed, diff.patch_lines


@dataclass
class ReviewMarks:
    """One session's review state: files viewed, hunks kept (by index, while the file is unchanged)."""

    viewed: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    #: path → (fingerprint, hunks kept, how many hunks the file had when they were kept)
    kept: dict[str, tuple[tuple[Any, ...], set[int], int]] = field(default_factory=dict)

    def state(self, diff: FileDiff) -> str:
        found = self.kept.get(diff.path)
        if found is not None and found[0] == fingerprint(diff):
            return "kept" if len(found[1]) >= found[2] else "viewed"
        return "viewed" if self.viewed.get(diff.path) == fingerprint(diff) else "unseen"

    def kept_hunks(self, diff: FileDiff) -> set[int]:
        found = self.kept.get(diff.path)
        return found[1] if found is not None and found[0] == fingerprint(diff) else set()

    def toggle_viewed(self, diff: FileDiff) -> None:
        if self.state(diff) == "unseen":
            self.viewed[diff.path] = fingerprint(diff)
        else:
            self.viewed.pop(diff.path, None)
            self.kept.pop(diff.path, None)

    def keep(self, diff: FileDiff, hunk: int | None) -> None:
        """Keep hunk `hunk` (None: the whole file, for files without hunks)."""
        hunks = self.kept_hunks(diff) | {hunk if hunk is not None else -1}
        self.kept[diff.path] = (fingerprint(diff), hunks, max(1, len(diff.hunks)))


def outline(raw: dict[str, Any]) -> tuple[Change, dict[str, dict[str, Any]]]:
    """The change from its dict with every file's stats but no hunks yet, and each file's dict
    by its path: building 20,000 line objects up front would delay the view; a file's hunks
    are built when it is shown (`MergeScreen.materialize`)."""
    change = Change.from_dict({**raw, "files": [{**f, "hunks": []} for f in raw["files"]]})
    return change, {diff.path: f for diff, f in zip(change.files, raw["files"]) if f.get("hunks")}


def comment_line(hunk: Hunk, index: int) -> int:
    """The line of the session's version a comment on line `index` of the hunk refers to
    (for a removed line: the line that now stands where it was)."""
    for line in hunk.lines[index:]:
        if line.new_no is not None:
            return line.new_no
    return max(1, hunk.new_start + hunk.new_count - 1)


# -- the screen -------------------------------------------------------------------------------------


class MergeScreen(ModalScreen[None]):
    AUTO_FOCUS = "#merge-diff"
    DEFAULT_CSS = """
    MergeScreen { background: $background; layout: vertical; }
    MergeScreen #merge-header { height: 1; width: 1fr; background: $panel; color: $text; text-style: bold; padding: 0 1; }
    MergeScreen #merge-body { height: 1fr; }
    MergeScreen #merge-footer { height: 1; width: 1fr; background: $panel; color: $text-muted; padding: 0 1; }
    """
    BINDINGS = [
        Binding("escape", "back", "back", id="review.close"),
        Binding("]", "file(1)", "next file", id="review.next_file"),
        Binding("[", "file(-1)", "previous file", id="review.previous_file"),
        Binding("n", "hunk(1)", "next hunk", id="review.next_hunk"),
        Binding("p", "hunk(-1)", "previous hunk", id="review.previous_hunk"),
        Binding("s", "toggle_split", "side by side", id="review.split"),
        Binding("enter", "load_file", "load a folded file", id="review.load"),
        Binding("space", "toggle_viewed", "viewed", id="review.viewed"),
        Binding("y", "keep_hunk", "keep hunk", id="review.keep"),
        Binding("R", "revert_hunk", "revert hunk", id="review.revert"),
        Binding("c", "comment", "comment", id="review.comment"),
        Binding("h", "checkpoints", "turns", id="review.checkpoints"),
        Binding("r", "reload", "reload", id="review.reload"),
        Binding("v", "verify", "verify", id="verify.run"),
        Binding("m", "merge", "merge", id="review.merge"),
        Binding("P", "pull_request", "pull request", id="review.pr"),
        Binding("question_mark", "help", "help", show=False, id="help"),
    ]

    def __init__(self, app: CockpitApp, session_id: str):
        super().__init__(id=f"merge-{session_id}")
        self.cockpit = app
        self.session_id = session_id
        self.change: Change | None = None
        self._unbuilt: dict[str, dict[str, Any]] = {}  # see `outline`
        self.index = 0
        self.checkpoint: dict[str, Any] | None = None  # the turn shown instead of the whole change
        self.marks: ReviewMarks = app.review_marks.setdefault(session_id, ReviewMarks())
        self.verify: dict[str, Any] = dict(self.session.get("verify") or {})
        self.preview: dict[str, Any] | None = None
        self.preview_note = "checking merge…"
        self.merged = ""
        self.diff_view = DiffView(id="merge-diff")
        self.file_list = FileList(self.marks.state, id="merge-files")

    @property
    def session(self) -> dict[str, Any]:
        return self.cockpit.sessions.get(self.session_id) or {"id": self.session_id, "number": "?", "name": ""}

    @property
    def label(self) -> str:
        return f"@{self.session['number']}"

    @property
    def current(self) -> FileDiff | None:
        files = self.change.files if self.change else []
        return files[self.index] if 0 <= self.index < len(files) else None

    # -- building and loading --------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Static(f"{self.label} {self.session['name']}: loading the change…", id="merge-header", markup=False)
        with Horizontal(id="merge-body"):
            yield self.file_list
            yield self.diff_view
        yield Static(FOOTER, id="merge-footer", markup=False)

    def on_mount(self) -> None:
        self.load()

    @work(exclusive=True, group="merge-load")
    async def load(self, checkpoint: dict[str, Any] | None = None) -> None:
        """Fetch the whole change (or one checkpoint's) and show its first file."""
        command: dict[str, Any] = {"cmd": "diff", "session": self.session_id}
        if checkpoint is not None:
            command = {"cmd": "checkpoint_diff", "session": self.session_id, "n": checkpoint["n"]}
        raw = await self.cockpit.run_command(command)
        if raw is None:
            if self.change is None:
                self.dismiss()
            return
        self.checkpoint = checkpoint
        self.change, self._unbuilt = outline(raw)
        self.file_list.set_files(self.change.files, 0)
        self.show_file(0)
        if checkpoint is None and self.preview is None:
            self.call_after_refresh(self.fetch_preview)  # after the first file is on screen

    def materialize(self, diff: FileDiff) -> FileDiff:
        """Build the file's hunks from the change's dict if not done yet."""
        raw = self._unbuilt.pop(diff.path, None)
        if raw is not None:
            diff.hunks = Change.from_dict({"base_commit": "", "tree": "", "files": [raw]}).files[0].hunks
        return diff

    @work(exclusive=True, group="merge-preview")
    async def fetch_preview(self) -> None:
        """Target and conflict preview for the header; shown when ready, never in the way."""
        try:
            self.preview = await self.cockpit.client.execute({"cmd": "merge_preview", "session": self.session_id})
            self.preview_note = preview_badge(self.preview)
        except CockpitError as exc:
            self.preview_note = f"no merge preview: {exc}"
        self.refresh_header()

    def refresh_header(self) -> None:
        """`@3 fix-tests → main  merges cleanly  verify ✓  12 files +340 −25  4/12 viewed  unified`"""
        session = self.session
        parts = [f"{self.label} {session['name']} → {self.preview['target'] if self.preview else '…'}"]
        if self.merged:
            parts.append(self.merged)
        elif self.checkpoint is not None:
            parts.append(f"{self.checkpoint['reason']} (checkpoint #{self.checkpoint['n']})")
        else:
            parts.append(self.preview_note)
        parts.append(verify_text(self.verify, self.preview))
        if self.change is not None:
            files = self.change.files
            seen = sum(1 for f in files if self.marks.state(f) != "unseen")
            parts.append(f"{len(files)} files +{self.change.added} −{self.change.removed}")
            parts.append(f"{seen}/{len(files)} viewed")
        parts.append("side by side" if self.diff_view.split else "unified")
        for header in self.query("#merge-header").results(Static):  # none once the view is closing
            header.update("   ".join(parts))

    # -- files and hunks -------------------------------------------------------------------------

    def show_file(self, index: int, *, last_hunk: bool = False) -> None:
        self.index = index
        diff = self.materialize(self.current) if self.current is not None else None
        self.file_list.select(index)
        self.diff_view.show(diff, kept=self._kept(diff))
        if last_hunk:
            self.diff_view.first_hunk(last=True)
        self.refresh_header()

    def _kept(self, diff: FileDiff | None) -> set[int]:
        return self.marks.kept_hunks(diff) if diff is not None and self.checkpoint is None else set()

    def action_file(self, step: int) -> None:
        if self.change and 0 <= self.index + step < len(self.change.files):
            self.show_file(self.index + step)

    def action_hunk(self, step: int) -> None:
        """Next/previous hunk; past the last one of a file, the first of the next file."""
        if self.diff_view.next_hunk(step) or self.change is None:
            return
        target = self.index + step
        if 0 <= target < len(self.change.files):
            self.show_file(target, last_hunk=step < 0)
            if step > 0:
                self.diff_view.first_hunk()

    @on(FileList.Selected)
    def _picked(self, message: FileList.Selected) -> None:
        self.show_file(message.index)
        self.diff_view.focus()

    def action_toggle_split(self) -> None:
        self.diff_view.set_split(not self.diff_view.split)
        self.refresh_header()

    def action_toggle_viewed(self) -> None:
        diff = self.current
        if diff is not None:
            self.marks.toggle_viewed(diff)
            self._marks_changed(diff)

    def _marks_changed(self, diff: FileDiff) -> None:
        self.diff_view.kept = self._kept(diff)
        self.diff_view.refresh()
        self.file_list.refresh_line(self.index)
        self.refresh_header()

    def _refuse_in_checkpoint(self, what: str) -> bool:
        if self.checkpoint is not None:
            self.notify(f"this is one turn's diff: escape back to the whole change to {what}", severity="warning")
            return True
        return False

    def action_keep_hunk(self) -> None:
        diff = self.current
        if diff is None or self._refuse_in_checkpoint("keep hunks"):
            return
        if diff.folded:
            self.notify("load the file first (enter), then keep its hunks", severity="warning")
            return
        hunk = self.diff_view.hunk_at()
        if diff.hunks and hunk is None:
            self.diff_view.first_hunk()
            return
        self.marks.keep(diff, hunk)
        self._marks_changed(diff)
        self.diff_view.next_hunk(1)

    # -- reloading -------------------------------------------------------------------------------

    @work(exclusive=True, group="merge-file")
    async def action_load_file(self) -> None:
        diff = self.current
        if diff is not None and diff.folded:
            await self.reload_file(diff)

    async def reload_file(self, diff: FileDiff) -> None:
        """Fetch one file again (whole, never folded) and show it in place; a file with no
        change left drops out of the list."""
        path = diff.path
        command: dict[str, Any] = {"cmd": "diff", "session": self.session_id, "path": path}
        if self.checkpoint is not None:
            command = {"cmd": "checkpoint_diff", "session": self.session_id, "n": self.checkpoint["n"], "path": path}
        raw = await self.cockpit.run_command(command)
        files = self.change.files if self.change is not None else []
        at = next((i for i, f in enumerate(files) if f is diff), None)
        if raw is None or at is None:  # refused, or another load replaced the change meanwhile
            return
        fresh = Change.from_dict(raw).file(path)
        self.diff_view.forget(diff)
        self._unbuilt.pop(path, None)  # what came now replaces it
        if fresh is None:
            files.pop(at)
            self.file_list.set_files(files, min(at, len(files) - 1))
            self.show_file(min(at, len(files) - 1))
            return
        files[at] = fresh
        self.file_list.set_files(files, at)
        self.index = at
        self.diff_view.show(fresh, kept=self._kept(fresh), keep_cursor=True)
        self.refresh_header()

    def action_reload(self) -> None:
        self.preview = None
        self.load(self.checkpoint)

    # -- acting on the change --------------------------------------------------------------------

    @work(group="merge-act")
    async def action_revert_hunk(self) -> None:
        from cockpit.ui.dialogs import Confirm

        diff, h = self.current, self.diff_view.hunk_at()
        if diff is None or self._refuse_in_checkpoint("revert hunks"):
            return
        if h is None:
            self.notify("put the cursor in a hunk (n / p) to revert it", severity="warning")
            return
        hunk = diff.hunks[h]
        question = (f"Revert hunk {h + 1}/{len(diff.hunks)} of {diff.path} ({hunk.header.strip()}) "
                    f"in {self.label}'s worktree? The agent is told.")
        if not await self.app.push_screen_wait(Confirm(question)):
            return
        reverted, _ = await self.attempt(
            {"cmd": "revert_hunk", "session": self.session_id, "path": diff.path, "hunk": h, "digest": hunk.digest})
        if reverted:
            self.notify(f"reverted hunk {h + 1} of {diff.path}", timeout=3)
            await self.reload_file(diff)

    async def attempt(self, command: dict[str, Any]) -> tuple[bool, Any]:
        """(done, result) of a command whose result may be None; a refusal shows as a toast."""
        try:
            return True, await self.cockpit.client.execute(command)
        except CockpitError as exc:
            self.notify(str(exc), severity="error", timeout=6)
            return False, None

    @work(group="merge-act")
    async def action_comment(self) -> None:
        from cockpit.ui.dialogs import TextPrompt

        diff = self.current
        if diff is None or self._refuse_in_checkpoint("comment"):
            return
        line = self.diff_view.line_at_cursor()
        h = self.diff_view.hunk_at()
        if line is None or h is None or line.kind == "\\":
            self.notify("put the cursor on a line of the diff (j / k) to comment on it", severity="warning")
            return
        hunk = diff.hunks[h]
        number = line.new_no if line.new_no is not None else comment_line(hunk, hunk.lines.index(line))
        text = await self.app.push_screen_wait(TextPrompt(f"Comment for {self.label} on {diff.path}, line {number}"))
        if not text or not text.strip():
            return
        if line.kind == "-":
            text = f"About the removed line `{line.text.strip()}`: {text.strip()}"
        sent, _ = await self.attempt(
            {"cmd": "comment", "session": self.session_id, "path": diff.path, "line": number, "text": text})
        if sent:
            self.notify(f"comment sent to {self.label}", timeout=3)

    @work(group="merge-act")
    async def action_checkpoints(self) -> None:
        from cockpit.ui.dialogs import Confirm
        from cockpit.ui.review_dialogs import CheckpointPicker

        points = await self.cockpit.run_command({"cmd": "checkpoints", "session": self.session_id})
        if points is None:
            return
        if not points:
            self.notify(f"{self.label} has no checkpoints yet: one is taken at the end of each turn")
            return
        choice = await self.app.push_screen_wait(CheckpointPicker(self.label, points))
        if choice is None:
            return
        action, point = choice
        if action == "show":
            self.load(point)
            return
        question = (f"Roll {self.label} back to checkpoint #{point['n']} ({point['reason']})? Its files and "
                    "branch go back to that moment; the current state is saved as a checkpoint first.")
        if await self.app.push_screen_wait(Confirm(question)):
            if await self.cockpit.run_command({"cmd": "rollback", "session": self.session_id, "n": point["n"]}):
                self.notify(f"{self.label} rolled back to checkpoint #{point['n']}", timeout=4)
                self.load()

    @work(group="merge-verify")
    async def action_verify(self) -> None:
        result = await self.cockpit.run_command({"cmd": "verify", "session": self.session_id})
        if result is not None:
            self.verify = result
            self.preview = None
            self.fetch_preview()  # "verified" in the preview is tied to this exact change

    @work(group="merge-act")
    async def action_merge(self) -> None:
        from cockpit.ui.review_dialogs import MergeDialog

        if self._refuse_in_checkpoint("merge"):
            return
        preview, message = await asyncio.gather(
            self.cockpit.run_command({"cmd": "merge_preview", "session": self.session_id}),
            self.cockpit.run_command({"cmd": "merge_message", "session": self.session_id}),
        )
        if preview is None or message is None:
            return
        self.preview = preview
        self.preview_note = preview_badge(preview)
        self.refresh_header()
        dialog = MergeDialog(self.label, self.session.get("name", ""), preview, message,
                             strategy=self.cockpit.config.review.strategy, verify=self.verify)
        choice = await self.app.push_screen_wait(dialog)
        if choice is None:
            return
        if choice["action"] == "rebase":
            done = await self.cockpit.run_command({"cmd": "rebase_onto_target", "session": self.session_id})
            if done is not None:
                if done["conflicts"]:
                    self.notify(f"{self.label} rebased onto {done['target']}; its agent got the "
                                f"{len(done['conflicts'])} conflicting files to resolve", timeout=6)
                else:
                    self.notify(f"{self.label} rebased onto {done['target']} cleanly", timeout=4)
                self.action_reload()
            return
        landed = await self.cockpit.run_command({
            "cmd": "merge", "session": self.session_id, "strategy": choice["strategy"], "message": choice["message"]})
        if landed is not None:
            self.notify(f"{self.label} merged into {landed['target']} ({landed['strategy']}, {landed['commit'][:10]})")
            self.dismiss()

    @work(group="merge-act")
    async def action_pull_request(self) -> None:
        from cockpit.ui.dialogs import Confirm

        if self._refuse_in_checkpoint("open a pull request"):
            return
        if not await self.app.push_screen_wait(Confirm(
                f"Push {self.label}'s branch and open a pull request (needs gh)?")):
            return
        opened = await self.cockpit.run_command({"cmd": "pr", "session": self.session_id})
        if opened is not None:
            self.notify(f"pull request opened: {opened.get('pr_url', '')}", timeout=10)
            self.dismiss()

    def action_back(self) -> None:
        if self.checkpoint is not None:
            self.load()  # from one turn's diff back to the whole change
        else:
            self.dismiss()

    def action_help(self) -> None:
        self.cockpit.action_help()

    # -- live events -----------------------------------------------------------------------------

    def feed(self, event: Event) -> None:
        """Events of every session from the app's pump; this view follows its own."""
        if event.session != self.session_id:
            return
        if event.kind == ev.VERIFY and "commit" not in event.data:
            self.verify = dict(event.data)
            self.refresh_header()
        elif event.kind == ev.MERGED:
            self.merged = f"merged into {event.data.get('target', '?')}"
            self.refresh_header()
