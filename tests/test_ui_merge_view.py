"""The merge desk driven with Pilot on a real Engine, real git repositories and worktrees.

Merge view: files and hunks, side by side, review marks, folded files, reverting a hunk in the
worktree, commenting to the agent, checkpoints and rollback, verify, merging and the conflict
path (rebase and hand to the agent). Compare view: keep the best, archive the rest. Queue
view: plan, land in order, stop at the first red. Keys: listed in help, remappable.
"""

from __future__ import annotations

import contextlib
import re
from pathlib import Path
from typing import Any

import pytest
from conftest import run_git
from landing_helpers import review_config
from review_helpers import CACHE_NEW, conflict_on_main, review_repo, review_session, until
from turn_backend import TurnBackend, settled, turn

from cockpit.config import parse_config_text
from cockpit.core import events as ev
from cockpit.core.engine import Engine
from cockpit.core.model import Session
from cockpit.errors import ConfigError
from cockpit.ui.app import CockpitApp
from cockpit.ui.compare_view import CompareScreen
from cockpit.ui.dialogs import Confirm, TextPrompt
from cockpit.ui.help import HelpScreen
from cockpit.ui.keymap import known_bindings, validate_keymap
from cockpit.ui.merge_view import MergeScreen
from cockpit.ui.queue_view import QueueScreen
from cockpit.ui.review_dialogs import CheckpointPicker, MergeDialog

BIG = (160, 48)


# -- helpers ----------------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def cockpit(engine: Engine, size: tuple[int, int] = BIG):
    app = CockpitApp(engine, engine.config)
    async with app.run_test(size=size) as pilot:
        await until(pilot, lambda: len(app.grid.panes) == len(engine.sessions) and app.focused_pane is not None,
                    "a pane per session")
        yield app, pilot


async def open_view(pilot: Any) -> MergeScreen:
    await pilot.press("M")
    await until(pilot, lambda: isinstance(pilot.app.screen, MergeScreen) and pilot.app.screen.change is not None,
                "the merge view with its change")
    return pilot.app.screen


async def go_to_file(pilot: Any, screen: MergeScreen, path: str) -> None:
    while screen.current.path != path:
        await pilot.press("]")


def rows_text(widget: Any) -> list[str]:
    """What a line-API widget shows, row by row."""
    return ["".join(segment.text for segment in widget.render_line(y)) for y in range(widget.size.height)]


def header(screen: Any, selector: str) -> str:
    return str(screen.query_one(selector).render())


async def user_messages(engine: Engine, session: Session) -> list[str]:
    return [e.data["text"] for e in await engine.transcript(session.id) if e.kind == ev.USER_MESSAGE]


@pytest.fixture
async def reviewed(open_engine, tmp_path) -> tuple[Engine, Session, Path]:
    engine = await open_engine()
    repo = review_repo(tmp_path / "repo")
    return engine, await review_session(engine, repo), repo


# -- the merge view -----------------------------------------------------------------------------------


async def test_files_hunks_and_side_by_side(reviewed):
    engine, session, _ = reviewed
    async with cockpit(engine) as (app, pilot):
        screen = await open_view(pilot)
        files = {f.path: f for f in screen.change.files}
        assert list(files) == ["assets/logo.png", "docs/usage.md", "old_notes.txt", "scripts/run.sh",
                               "src/cache.py", "src/helpers.py"]
        assert [f.status for f in files.values()] == ["modified", "added", "deleted", "modified", "modified", "renamed"]
        list_rows = rows_text(screen.file_list)
        assert list_rows[0].startswith("• M assets/logo.png") and list_rows[0].rstrip().endswith("binary")
        assert list_rows[3].rstrip().endswith("mode") and list_rows[5].rstrip().endswith("+1 −1")
        assert "binary file changed" in "\n".join(rows_text(screen.diff_view))

        await pilot.press("]", "]")
        assert screen.current.path == "old_notes.txt"
        assert "deleted file" in "\n".join(rows_text(screen.diff_view))
        await pilot.press("]")
        assert "mode 100644 → 100755" in "\n".join(rows_text(screen.diff_view))
        await pilot.press("[")
        assert screen.current.path == "old_notes.txt"

        await go_to_file(pilot, screen, "src/cache.py")
        view = screen.diff_view
        await pilot.press("n")
        assert view.hunk_at() == 0 and rows_text(view)[view.cursor].startswith("▶@@ -1,4 +1,5 @@")
        await pilot.press("n")
        assert view.hunk_at() == 1
        await pilot.press("n")  # past the last hunk: the next file's first
        assert screen.current.path == "src/helpers.py" and view.hunk_at() == 0
        assert "renamed from src/util.py" in "\n".join(rows_text(view))
        await pilot.press("p")  # before the first hunk: the previous file's last
        assert screen.current.path == "src/cache.py" and view.hunk_at() == 1

        await pilot.press("j", "j", "j", "j")  # onto "- return page.number"
        assert view.line_at_cursor().text == "        return page.number"
        await pilot.press("s")
        assert view.split and "side by side" in header(screen, "#merge-header")
        shown = rows_text(view)[view.cursor - view.scroll_offset.y]
        left, right = shown.split("│")
        assert "return page.number" in left and "return (page.number, page.size)" in right
        await pilot.press("s")
        assert not view.split and view.line_at_cursor().text == "        return page.number"


async def test_revert_a_hunk_in_the_worktree(reviewed):
    engine, session, _ = reviewed
    async with cockpit(engine) as (app, pilot):
        screen = await open_view(pilot)
        await go_to_file(pilot, screen, "src/cache.py")
        await pilot.press("n", "n", "R")
        await until(pilot, lambda: isinstance(app.screen, Confirm), "the confirmation")
        await pilot.press("y")
        await until(pilot, lambda: len(screen.current.hunks) == 1, "the reloaded file with one hunk left")
        assert (session.path / "src/cache.py").read_text() == CACHE_NEW.replace(
            "return (page.number, page.size)", "return page.number")
        assert screen.current.added == 1 and screen.current.removed == 0
        told = await user_messages(engine, session)
        assert "The reviewer reverted this change of yours in src/cache.py" in told[-1]


async def test_revert_is_refused_when_the_file_changed_since(reviewed):
    engine, session, _ = reviewed
    async with cockpit(engine) as (app, pilot):
        screen = await open_view(pilot)
        await go_to_file(pilot, screen, "src/cache.py")
        (session.path / "src/cache.py").write_text(CACHE_NEW.replace("page.size", "page.limit"))
        await pilot.press("n", "n", "R")
        await until(pilot, lambda: isinstance(app.screen, Confirm), "the confirmation")
        await pilot.press("y")
        await until(pilot, lambda: any("changed since you looked" in n.message for n in app._notifications),
                    "the refusal")
        assert "page.limit" in (session.path / "src/cache.py").read_text()


async def test_comment_on_a_line_goes_to_the_agent(reviewed):
    engine, session, _ = reviewed
    async with cockpit(engine) as (app, pilot):
        screen = await open_view(pilot)
        await go_to_file(pilot, screen, "src/cache.py")
        await pilot.press("n", "j", "j")  # "+ from dataclasses import dataclass", new line 2
        await pilot.press("c")
        await until(pilot, lambda: isinstance(app.screen, TextPrompt), "the comment prompt")
        await pilot.press(*"use attrs", "enter")
        await until(pilot, lambda: isinstance(app.screen, MergeScreen), "the prompt to close")
        await until(pilot, lambda: engine.sessions[session.id] and any(
            "line 2" in n.message or "comment sent" in n.message for n in app._notifications), "the comment")
    told = await user_messages(engine, session)
    assert told[-1] == "Review comment on src/cache.py, line 2:\n> from dataclasses import dataclass\n\nuse attrs"


async def test_marks_viewed_and_kept_survive_leaving_the_view(reviewed):
    engine, session, _ = reviewed
    async with cockpit(engine) as (app, pilot):
        screen = await open_view(pilot)
        await pilot.press("space")
        assert rows_text(screen.file_list)[0].startswith("✓ M assets/logo.png")
        await go_to_file(pilot, screen, "src/cache.py")
        await pilot.press("n", "y")
        assert screen.marks.state(screen.current) == "viewed" and 0 in screen.diff_view.kept
        assert "★ kept" in rows_text(screen.diff_view)[1]
        await pilot.press("y")  # the cursor moved on to the second hunk
        assert screen.marks.state(screen.current) == "kept"
        assert "2/6 viewed" in header(screen, "#merge-header")
        await pilot.press("escape")
        screen = await open_view(pilot)
        assert rows_text(screen.file_list)[4].startswith("★ M src/cache.py")
        (session.path / "src/cache.py").write_text(CACHE_NEW + "# more\n")  # the agent changed it again
        await pilot.press("r")
        await until(pilot, lambda: screen.change.file("src/cache.py").added == 3, "the reloaded change")
        assert rows_text(screen.file_list)[4].startswith("• M src/cache.py")


async def test_large_file_is_folded_until_enter(open_engine, tmp_path):
    engine = await open_engine(parse_config_text("[review]\nlarge_file_lines = 20\n"))
    session = await review_session(engine, review_repo(tmp_path / "repo"))
    (session.path / "big.py").write_text("".join(f"x{n} = {n}\n" for n in range(100)))
    async with cockpit(engine) as (app, pilot):
        screen = await open_view(pilot)
        await go_to_file(pilot, screen, "big.py")
        assert screen.current.folded and not screen.current.hunks
        assert "large diff folded: 101 lines (+100 −0); press enter to load it" in "\n".join(rows_text(screen.diff_view))
        await pilot.press("enter")
        await until(pilot, lambda: screen.current.hunks, "the file loaded")
        assert screen.current.path == "big.py" and not screen.current.folded
        assert len(screen.diff_view.rows) == 1 + 1 + 1 + 100  # title, "new file", hunk header, lines


async def test_checkpoints_show_a_turn_and_roll_back(open_engine, tmp_path):
    engine = await open_engine(agent_factory=TurnBackend)
    repo = review_repo(tmp_path / "repo")
    session = (await engine.create_sessions(repo, name="turns"))[0]
    await settled(engine, session)
    await turn(engine, session, lambda root: (root / "src/cache.py").write_text(CACHE_NEW))
    await turn(engine, session, lambda root: (root / "notes.md").write_text("turn two\n"))
    async with cockpit(engine) as (app, pilot):
        screen = await open_view(pilot)
        assert [f.path for f in screen.change.files] == ["notes.md", "src/cache.py"]
        await pilot.press("h")
        await until(pilot, lambda: isinstance(app.screen, CheckpointPicker), "the checkpoint list")
        assert [p["n"] for p in app.screen.points] == [2, 1, 0]
        await pilot.press("enter")  # the newest: turn 2
        await until(pilot, lambda: screen.checkpoint is not None and screen.change is not None
                    and [f.path for f in screen.change.files] == ["notes.md"], "turn 2's diff")
        assert "turn 2 (checkpoint #2)" in header(screen, "#merge-header")
        await pilot.press("escape")  # back to the whole change
        await until(pilot, lambda: screen.checkpoint is None and len(screen.change.files) == 2, "the whole change")

        await pilot.press("h")
        await until(pilot, lambda: isinstance(app.screen, CheckpointPicker), "the checkpoint list")
        await pilot.press("down", "r")  # #1: after turn 1
        await until(pilot, lambda: isinstance(app.screen, Confirm), "the rollback confirmation")
        await pilot.press("y")
        await until(pilot, lambda: [f.path for f in screen.change.files] == ["src/cache.py"], "the rolled-back change")
    assert not (session.path / "notes.md").exists()
    assert (session.path / "src/cache.py").read_text() == CACHE_NEW


async def test_verify_shows_in_the_view_and_the_pane(open_engine, tmp_path):
    engine = await open_engine(review_config(verify="test -f docs/usage.md"))
    await review_session(engine, review_repo(tmp_path / "repo"))
    async with cockpit(engine) as (app, pilot):
        screen = await open_view(pilot)
        assert "not verified" in header(screen, "#merge-header")
        await pilot.press("v")
        await until(pilot, lambda: "verify ✓" in header(screen, "#merge-header"), "a green verify in the header")
        await pilot.press("escape")
        pane = app.focused_pane
        await until(pilot, lambda: "verify ✓" in rows_text(pane)[0], "the pane header's verify mark")
        # the files-changed count arrives live from the worktree watcher (or the end of a turn)
        await until(pilot, lambda: re.search(r"  \d+f \+\d+ −\d+  verify ✓", rows_text(pane)[0]),
                    "the pane header's diffstat")


async def test_failed_verify_is_red(open_engine, tmp_path):
    engine = await open_engine(review_config(verify="exit 3"))
    await review_session(engine, review_repo(tmp_path / "repo"))
    async with cockpit(engine) as (app, pilot):
        await pilot.press("v")  # from the grid
        pane = app.focused_pane
        await until(pilot, lambda: "verify ✗" in rows_text(pane)[0], "a red verify in the pane header")
        screen = await open_view(pilot)
        assert "verify ✗ failed" in header(screen, "#merge-header")


async def test_merge_from_the_view_lands_on_main(reviewed):
    engine, session, repo = reviewed
    async with cockpit(engine) as (app, pilot):
        await open_view(pilot)
        await pilot.press("m")
        await until(pilot, lambda: isinstance(app.screen, MergeDialog), "the merge dialog")
        dialog = app.screen
        assert "merges cleanly" in "\n".join(str(w.render()) for w in dialog.query("Static"))
        await pilot.press("ctrl+s")
        await until(pilot, lambda: not isinstance(app.screen, (MergeDialog, MergeScreen)), "the view to close")
    assert run_git(repo, "show", "main:src/cache.py") == CACHE_NEW
    assert run_git(repo, "log", "-1", "--format=%s", "main").strip().startswith("Make the page cache key")
    assert engine.sessions[session.id].state.value == "merged"


async def test_conflict_offers_rebase_and_hands_it_to_the_agent(reviewed):
    engine, session, repo = reviewed
    conflict_on_main(repo)
    main_before = run_git(repo, "rev-parse", "main")
    async with cockpit(engine) as (app, pilot):
        screen = await open_view(pilot)
        await until(pilot, lambda: "✗ conflicts in 1 file" in header(screen, "#merge-header"), "the conflict preview")
        await pilot.press("m")
        await until(pilot, lambda: isinstance(app.screen, MergeDialog), "the merge dialog")
        assert app.screen.query_one("#merge-go").disabled
        assert "src/cache.py" in "\n".join(str(w.render()) for w in app.screen.query("Static"))
        await pilot.press("ctrl+s")  # merging is refused while it conflicts
        assert isinstance(app.screen, MergeDialog)
        await pilot.press("ctrl+r")
        await until(pilot, lambda: any("conflicting files to resolve" in n.message for n in app._notifications),
                    "the rebase")
    told = await user_messages(engine, session)
    assert "stopped with conflicts in these files:\n- src/cache.py" in told[-1]
    assert run_git(repo, "rev-parse", "main") == main_before


# -- compare and queue ---------------------------------------------------------------------------------


async def test_compare_fan_out_keep_the_best(open_engine, tmp_path):
    engine = await open_engine(review_config(verify="test -f docs/usage.md"))
    repo = review_repo(tmp_path / "repo")
    first, second = await engine.create_sessions(repo, name="try", task="add usage docs", count=2)
    (first.path / "docs").mkdir()
    (first.path / "docs/usage.md").write_text("usage\n")
    (second.path / "notes.md").write_text("no docs\n")
    async with cockpit(engine) as (app, pilot):
        await pilot.press("C")
        await until(pilot, lambda: isinstance(app.screen, CompareScreen) and app.screen.rows, "the comparison")
        screen = app.screen
        assert [r["number"] for r in screen.rows] == [1, 2]
        await pilot.press("down", "enter")  # the selected row's merge view
        await until(pilot, lambda: isinstance(app.screen, MergeScreen), "the merge view of @2")
        assert app.screen.session_id == second.id
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is screen, "back to the comparison")
        await pilot.press("up")
        await pilot.press("v")  # verify both
        await until(pilot, lambda: "★ suggested: @1" in header(screen, "#compare-header"), "a suggestion")
        await pilot.press("k")
        await until(pilot, lambda: isinstance(app.screen, Confirm), "the confirmation")
        await pilot.press("y")
        await until(pilot, lambda: engine.sessions[second.id].state.value == "archived", "the other archived")
    assert engine.sessions[first.id].state.value != "archived"


async def test_queue_lands_in_order_and_stops_at_red(open_engine, tmp_path):
    engine = await open_engine(review_config(verify="test ! -f red.txt", after_merge="keep"))
    repo = review_repo(tmp_path / "repo")
    one = (await engine.create_sessions(repo, name="one"))[0]
    two = (await engine.create_sessions(repo, name="two"))[0]
    three = (await engine.create_sessions(repo, name="three"))[0]
    (one.path / "a.txt").write_text("a\n")
    (two.path / "red.txt").write_text("breaks verify\n")
    (three.path / "c.txt").write_text("c\n")
    async with cockpit(engine) as (app, pilot):
        await pilot.press("Q")
        await until(pilot, lambda: isinstance(app.screen, QueueScreen) and app.screen.order, "the plan")
        screen = app.screen
        assert screen.order == [one.id, two.id, three.id]
        await pilot.press("L")
        await until(pilot, lambda: isinstance(app.screen, Confirm), "the confirmation")
        await pilot.press("y")
        await until(pilot, lambda: screen.query_one("#queue-stop").has_class("shown"), "the queue to stop")
        stop = str(screen.query_one("#queue-stop").render())
        assert stop.startswith("✗ STOPPED at @2 two: verify failed")
        assert "landed: @1 · not run: @3" in stop
        assert screen.status == {one.id: "landed ✓", two.id: "✗ STOPPED", three.id: "not run"}
    assert run_git(repo, "show", "main:a.txt") == "a\n"
    assert "red.txt" not in run_git(repo, "ls-tree", "--name-only", "main")


async def test_queue_order_can_be_changed(open_engine, tmp_path):
    engine = await open_engine()
    repo = review_repo(tmp_path / "repo")
    one = (await engine.create_sessions(repo, name="one"))[0]
    two = (await engine.create_sessions(repo, name="two"))[0]
    (one.path / "a.txt").write_text("a\n")
    (two.path / "b.txt").write_text("b\n")
    async with cockpit(engine) as (app, pilot):
        await pilot.press("Q")
        await until(pilot, lambda: isinstance(app.screen, QueueScreen) and app.screen.order, "the plan")
        await pilot.press("J")
        assert app.screen.order == [two.id, one.id]
        await pilot.press("J")  # already last: nothing moves
        assert app.screen.order == [two.id, one.id]
        await pilot.press("K")
        assert app.screen.order == [one.id, two.id]


# -- keys -----------------------------------------------------------------------------------------------


async def test_help_lists_the_merge_desk_keys(reviewed):
    engine, _, _ = reviewed
    async with cockpit(engine) as (app, pilot):
        await open_view(pilot)
        await pilot.press("question_mark")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen), "help")
        text = app.screen.text()
    assert "Review and merge: M  merge view" in text
    assert "Merge view: R  revert the hunk under the cursor" in text
    assert "Merge queue view: L  land the sessions in the order shown" in text


def test_merge_view_keys_are_checked_like_the_others():
    scopes = known_bindings()
    validate_keymap({"review.merge": "ctrl+g"}, scopes)
    with pytest.raises(ConfigError, match=r"keys.review.merge.*'n' is already bound to review.next_hunk"):
        validate_keymap({"review.merge": "n"}, scopes)


async def test_remapped_key_works_in_the_merge_view(open_engine, tmp_path):
    engine = await open_engine(parse_config_text('[keys]\n"review.next_file" = "f"\n'))
    await review_session(engine, review_repo(tmp_path / "repo"))
    async with cockpit(engine) as (app, pilot):
        screen = await open_view(pilot)
        await pilot.press("f")
        assert screen.index == 1
        await pilot.press("]")  # the default key no longer moves
        assert screen.index == 1
