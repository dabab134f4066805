"""The diff widget, the file list and the highlighter on Change data built by hand.

What a file says besides its lines (binary, rename, mode, deleted, folded, type change),
side-by-side alignment, lazy highlighting (a 20,000-line file lexes only what is drawn),
cursor and hunk movement, review marks, and lexer lookup without pygments' plugin scan.
"""

from __future__ import annotations

import asyncio

import pytest
from textual.app import App, ComposeResult

from cockpit.core.diffs import DiffLine, FileDiff, Hunk, parse_patch
from cockpit.ui.diff_view import HUNK, LINE, PAIR, DiffStyles, DiffView, _paired, file_notes
from cockpit.ui.file_list import FileList, counts_text
from cockpit.ui.highlight import CHUNK, lexer_for, printable
from cockpit.ui.merge_view import ReviewMarks, comment_line

PATCH = """\
diff --git a/src/app.py b/src/app.py
index 1111111..2222222 100644
--- a/src/app.py
+++ b/src/app.py
@@ -1,5 +1,6 @@ def main():
 import os
-print("hi")
-x = 1
+print("hello")
+x = 2
+y = 3
 def f():
     return os.name
@@ -20,3 +21,3 @@ def g():
 a = 1
-b = 2
+b = 20
 c = 3
"""


def app_py() -> FileDiff:
    return parse_patch(PATCH)[0]


def big_file(lines: int) -> FileDiff:
    hunk = Hunk(0, 0, 1, lines, lines=[DiffLine("+", f"value_{n} = {n}  # a line", None, n + 1) for n in range(lines)])
    return FileDiff("big.py", "added", new_mode="100644", added=lines, hunks=[hunk], patch_lines=lines + 1)


class ViewApp(App[None]):
    def compose(self) -> ComposeResult:
        yield DiffView(id="diff")

    @property
    def view(self) -> DiffView:
        return self.query_one(DiffView)


async def until_coloured(pilot, view: DiffView) -> None:
    await pilot.pause()
    while view.highlighting:
        await pilot.pause(0.01)


def text(view: DiffView) -> list[str]:
    return ["".join(s.text for s in view.render_line(y)).rstrip() for y in range(view.size.height)]


# -- notes --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("diff", "expected"), [
    (FileDiff("logo.png", "modified", binary=True), [("binary file changed: no text diff", "warn")]),
    (FileDiff("logo.png", "added", new_mode="100644", binary=True),
     [("new file", "note"), ("binary file added: no text diff", "warn")]),
    (FileDiff("b.py", "renamed", old_path="a.py", similarity=95, hunks=[Hunk(1, 1, 1, 1)]),
     [("renamed from a.py (95% similar)", "note")]),
    (FileDiff("run.sh", "modified", old_mode="100644", new_mode="100755"), [("mode 100644 → 100755", "warn")]),
    (FileDiff("tool", "added", new_mode="100755", hunks=[Hunk(0, 0, 1, 1)]),
     [("new file, mode 100755 (executable)", "note")]),
    (FileDiff("gone.txt", "deleted", old_mode="100644", hunks=[Hunk(1, 2, 0, 0)]),
     [("deleted file: every line removed", "note")]),
    (FileDiff("link", "type-changed", old_mode="100644", new_mode="120000", hunks=[Hunk(1, 1, 0, 0)]),
     [("type changed: file → symbolic link", "warn")]),
    (FileDiff("huge.sql", "modified", added=9000, removed=12, folded=True, patch_lines=9020),
     [("large diff folded: 9,020 lines (+9,000 −12); press enter to load it", "warn")]),
    (FileDiff("empty.txt", "added", new_mode="100644"), [("new file", "note"), ("empty file", "note")]),
])
def test_file_notes_say_how_a_file_changed(diff, expected):
    assert file_notes(diff) == expected


@pytest.mark.parametrize(("diff", "expected"), [
    (FileDiff("a", "modified", added=3, removed=1), "+3 −1"),
    (FileDiff("a", "modified", binary=True), "binary"),
    (FileDiff("a", "modified", old_mode="100644", new_mode="100755"), "mode"),
    (FileDiff("b", "renamed", old_path="a", similarity=100), "moved"),
    (FileDiff("a", "added", new_mode="100644"), "empty"),
])
def test_file_list_counts(diff, expected):
    assert counts_text(diff) == expected


# -- rows ---------------------------------------------------------------------------------------------


def test_side_by_side_pairs_each_removed_run_with_the_added_run_after_it():
    lines = [DiffLine(k, t) for k, t in [(" ", "a"), ("-", "b"), ("-", "c"), ("+", "B"), ("+", "C"), ("+", "D"),
                                         (" ", "e"), ("+", "f"), ("-", "g"), ("\\", "No newline at end of file")]]
    assert _paired(0, lines) == [
        (PAIR, 0, 0, 0),
        (PAIR, 0, 1, 3), (PAIR, 0, 2, 4), (PAIR, 0, -1, 5),
        (PAIR, 0, 6, 6),
        (PAIR, 0, -1, 7),  # an added run with no removed run before it
        (PAIR, 0, 8, -1),  # a removed run after an added run starts a new pair
        (LINE, 0, 9),  # "\ No newline" under the run it belongs to
    ]


async def test_unified_and_side_by_side_rendering():
    app = ViewApp()
    async with app.run_test(size=(90, 20)) as pilot:
        view = app.view
        view.show(app_py())
        await pilot.pause()
        rows = text(view)
        assert rows[0] == "▶M src/app.py  +4 −3"
        assert rows[1] == " @@ -1,5 +1,6 @@ def main():   hunk 1/2"
        assert rows[2] == "  1   1   import os"
        assert rows[3] == "  2     - print(\"hi\")"
        assert rows[5] == "      2 + print(\"hello\")"
        view.set_split(True)
        await pilot.pause()
        rows = text(view)
        left, right = rows[3].split("│")
        assert left.strip() == '2 - print("hi")' and right.strip() == '2 + print("hello")'
        assert rows[5].split("│")[0].strip() == "" and rows[5].split("│")[1].strip() == "4 + y = 3"


async def test_kept_hunks_say_so_in_their_header():
    app = ViewApp()
    async with app.run_test(size=(90, 20)) as pilot:
        app.view.show(app_py(), kept={1})
        await pilot.pause()
        headers = [row for row in text(app.view) if "@@" in row]
        assert "★ kept" not in headers[0] and headers[1].endswith("hunk 2/2   ★ kept")


async def test_control_characters_and_tabs_never_reach_the_terminal():
    diff = FileDiff("x.txt", "modified", added=1,
                    hunks=[Hunk(1, 0, 1, 1, lines=[DiffLine("+", "a\tb\x1b[31mred\rz", None, 1)])])
    app = ViewApp()
    async with app.run_test(size=(60, 8)) as pilot:
        app.view.show(diff)
        await pilot.pause()
        row = text(app.view)[2]
        assert "\x1b" not in row and "\r" not in row and "\t" not in row
        assert row.endswith("a   b␛[31mred␍z")


# -- speed: lazy highlighting ---------------------------------------------------------------------------


async def test_a_twenty_thousand_line_file_lexes_only_what_is_drawn():
    diff = big_file(20_000)
    app = ViewApp()
    async with app.run_test(size=(100, 30)) as pilot:
        view = app.view
        view.show(diff)
        highlight = view._highlight(DiffStyles.for_app(app))
        assert len(view.rows) == 20_000 + 3  # title, "new file", hunk header
        assert highlight.chunks_lexed == 0  # nothing is lexed before the first frame
        await until_coloured(pilot, view)
        assert highlight.chunks_lexed == 1  # one screen of rows lies inside the first chunk
        view.action_edge(1)
        await until_coloured(pilot, view)
        assert highlight.chunks_lexed == 2 and text(view)[-1].endswith("value_19999 = 19999  # a line")
        assert highlight.spans("new", 19_999)[0][1].color is not None  # highlighted (a name token)


def test_lexers_come_from_the_builtin_table():
    assert type(lexer_for("src/app.py")).__name__ == "PythonLexer"
    assert type(lexer_for("Makefile")).__name__ == "MakefileLexer"
    assert type(lexer_for("README.MD")).__name__ == "MarkdownLexer"
    assert lexer_for("data.unknown-extension") is None
    assert printable("\tx\x00") == "    x␀"
    assert CHUNK >= 24  # a chunk covers most of a screen of rows


# -- cursor and hunks ---------------------------------------------------------------------------------


async def test_cursor_moves_and_hunk_jumps():
    app = ViewApp()
    async with app.run_test(size=(90, 6)) as pilot:
        view = app.view
        view.show(app_py())
        view.focus()
        await pilot.pause()
        assert view.hunk_at() is None
        assert view.next_hunk(1) and view.rows[view.cursor] == (HUNK, 0)
        assert view.next_hunk(1) and view.rows[view.cursor] == (HUNK, 1)
        assert view.scroll_offset.y > 0  # the hunk header is brought into view
        assert not view.next_hunk(1)
        await pilot.press("k")
        assert view.hunk_at() == 0 and view.line_at_cursor().text == "    return os.name"
        assert view.next_hunk(-1) and view.rows[view.cursor] == (HUNK, 0)
        assert not view.next_hunk(-1)
        await pilot.press("end")
        assert view.cursor == len(view.rows) - 1
        await pilot.press("home")
        assert view.cursor == 0 and view.scroll_offset.y == 0


def test_comment_line_of_a_removed_line_is_where_it_was():
    hunk = app_py().hunks[0]
    assert comment_line(hunk, 1) == 2  # "- print('hi')" stood where "+ print('hello')" (new line 2) is
    assert comment_line(hunk, 6) == 5


# -- review marks and the file list -----------------------------------------------------------------------


def test_review_marks_follow_the_file():
    marks = ReviewMarks()
    diff = app_py()
    assert marks.state(diff) == "unseen"
    marks.toggle_viewed(diff)
    assert marks.state(diff) == "viewed"
    marks.keep(diff, 0)
    assert marks.state(diff) == "viewed" and marks.kept_hunks(diff) == {0}
    marks.keep(diff, 1)
    assert marks.state(diff) == "kept"
    changed = app_py()
    changed.added += 1  # the agent changed the file again
    assert marks.state(changed) == "unseen" and marks.kept_hunks(changed) == set()
    marks.toggle_viewed(diff)
    assert marks.state(diff) == "unseen"


async def test_file_list_rows_and_clicks():
    files = [FileDiff(f"src/module_{n}/a_rather_long_file_name_{n}.py", "modified", added=n, removed=1)
             for n in range(300)]
    states = {files[1].path: "viewed", files[2].path: "kept"}
    picked: list[int] = []

    class ListApp(App[None]):
        CSS = "FileList { width: 40; }"

        def compose(self) -> ComposeResult:
            yield FileList(lambda diff: states.get(diff.path, "unseen"))

        def on_file_list_selected(self, message: FileList.Selected) -> None:
            picked.append(message.index)

    app = ListApp()
    async with app.run_test(size=(40, 10)) as pilot:
        file_list = app.query_one(FileList)
        file_list.set_files(files)
        await pilot.pause()
        rows = ["".join(s.text for s in file_list.render_line(y)) for y in range(3)]
        assert rows[0].startswith("• M …") and rows[0].rstrip().endswith("+0 −1")
        assert "…_rather_long_file_name_0.py +0 −1" in rows[0]  # the end of the path, with its name, stays
        assert rows[1].startswith("✓ M") and rows[2].startswith("★ M")
        file_list.select(250)
        await pilot.pause()
        assert file_list.scroll_offset.y > 200
        await pilot.click(FileList, offset=(5, 1))
        await asyncio.sleep(0)
        await pilot.pause()
        assert picked == [file_list.scroll_offset.y + 1]
