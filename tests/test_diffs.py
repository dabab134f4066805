"""A session's Change from real git repositories: every kind of file change git can report,
folded large files, exact bytes kept for reverts, and the `diff` command."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import pytest
from conftest import make_repo, run_git

from cockpit.core.diffs import Change, encoded, parse_patch, session_change, tree_change


def head(repo: Path) -> str:
    return run_git(repo, "rev-parse", "HEAD").strip()


async def change_of(repo: Path, base: str, large_file_lines: int = 3000, path: str | None = None) -> Change:
    return await session_change(repo, base, large_file_lines=large_file_lines, path=path)


@pytest.fixture
def work(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "work", {
        "keep.txt": "same\n",
        "edit.py": "".join(f"line {i}\n" for i in range(1, 41)),
        "gone.txt": "bye\n",
        "move_me.txt": "".join(f"stable {i}\n" for i in range(20)),
        "run.sh": "echo hi\n",
        "tail.txt": "no newline at the end",
        "image.bin": "",
    })


async def test_every_kind_of_change_is_reported(work: Path):
    base = head(work)
    (work / "image.bin").write_bytes(b"\x89PNG\0\x01\x02")
    (work / "gone.txt").unlink()
    lines = (work / "move_me.txt").read_text().replace("stable 5\n", "edited 5\n")
    (work / "move_me.txt").unlink()
    (work / "moved.txt").write_text(lines)
    os.chmod(work / "run.sh", 0o755)
    (work / "tail.txt").write_text("no newline at the end, changed")
    (work / "untracked dir").mkdir()
    (work / "untracked dir" / "new file.txt").write_text("fresh\nlines\n")
    run_git(work, "add", "moved.txt")
    run_git(work, "commit", "-q", "-m", "a commit on the branch")  # commits count too
    (work / "edit.py").write_text((work / "edit.py").read_text().replace("line 3\n", "line three\n"))

    change = await change_of(work, base)
    by_path = {f.path: f for f in change.files}
    assert set(by_path) == {"image.bin", "gone.txt", "moved.txt", "run.sh", "tail.txt",
                            "untracked dir/new file.txt", "edit.py"}

    binary = by_path["image.bin"]
    assert (binary.status, binary.binary, binary.hunks, binary.added) == ("modified", True, [], 0)

    gone = by_path["gone.txt"]
    assert (gone.status, gone.old_mode, gone.removed) == ("deleted", "100644", 1)
    assert [line.text for line in gone.hunks[0].lines] == ["bye"]

    moved = by_path["moved.txt"]
    assert (moved.status, moved.old_path, moved.added, moved.removed) == ("renamed", "move_me.txt", 1, 1)
    assert 80 <= moved.similarity < 100

    mode = by_path["run.sh"]
    assert (mode.status, mode.old_mode, mode.new_mode, mode.mode_changed, mode.hunks) == (
        "modified", "100644", "100755", True, [])

    tail = by_path["tail.txt"]
    assert [(line.kind, line.text) for line in tail.hunks[0].lines] == [
        ("-", "no newline at the end"), ("\\", "No newline at end of file"),
        ("+", "no newline at the end, changed"), ("\\", "No newline at end of file"),
    ]

    new = by_path["untracked dir/new file.txt"]
    assert (new.status, new.new_mode, new.added, new.removed) == ("added", "100644", 2, 0)
    assert [(line.new_no, line.text) for line in new.hunks[0].lines] == [(1, "fresh"), (2, "lines")]

    (hunk,) = by_path["edit.py"].hunks
    assert (hunk.old_start, hunk.new_start) == (1, 1)
    changed = [(line.kind, line.text, line.old_no, line.new_no) for line in hunk.lines if line.kind != " "]
    assert changed == [("-", "line 3", 3, None), ("+", "line three", None, 3)]
    assert (change.added, change.removed) == (sum(f.added for f in change.files), sum(f.removed for f in change.files))
    assert change.base_commit == base and len(change.tree) == 40


async def test_a_change_round_trips_through_json(work: Path):
    base = head(work)
    (work / "edit.py").write_text("rewritten\n")
    (work / "extra.txt").write_text("x\n")
    change = await change_of(work, base)
    assert change.to_dict() == dataclasses.asdict(change)  # the hand-built dicts miss no field
    again = Change.from_dict(json.loads(json.dumps(change.to_dict())))
    assert again == change
    assert [h.digest for f in again.files for h in f.hunks] == [h.digest for f in change.files for h in f.hunks]


async def test_a_large_file_is_folded_with_stats_and_opened_alone_in_full(work: Path):
    base = head(work)
    (work / "big.txt").write_text("".join(f"row {i}\n" for i in range(500)))
    (work / "edit.py").write_text((work / "edit.py").read_text() + "one more\n")
    change = await change_of(work, base, large_file_lines=100)
    big = change.file("big.txt")
    assert big is not None and big.folded and big.hunks == []
    assert (big.added, big.removed, big.patch_lines) == (500, 0, 501)  # + the hunk header
    assert not change.file("edit.py").folded  # type: ignore[union-attr]

    alone = await change_of(work, base, large_file_lines=100, path="big.txt")
    (full,) = alone.files
    assert not full.folded and full.added == 500 and len(full.hunks[0].lines) == 500


async def test_opening_one_renamed_file_keeps_its_old_path(work: Path):
    base = head(work)
    text = (work / "move_me.txt").read_text()
    (work / "move_me.txt").unlink()
    (work / "moved.txt").write_text(text + "appended\n")
    (only,) = (await change_of(work, base, path="moved.txt")).files
    assert (only.status, only.old_path, only.added) == ("renamed", "move_me.txt", 1)


async def test_a_copy_of_a_changed_file_is_reported_as_a_copy(work: Path):
    base = head(work)
    original = (work / "move_me.txt").read_text()
    (work / "move_me.txt").write_text(original + "the source changed too\n")
    (work / "copy.txt").write_text(original)
    copy = (await change_of(work, base)).file("copy.txt")
    assert copy is not None
    assert (copy.status, copy.old_path, copy.similarity, copy.added) == ("copied", "move_me.txt", 100, 0)


async def test_a_file_turned_into_a_symlink_is_one_type_change(work: Path):
    base = head(work)
    (work / "keep.txt").unlink()
    os.symlink("edit.py", work / "keep.txt")
    (typed,) = (await change_of(work, base)).files
    assert (typed.status, typed.old_mode, typed.new_mode) == ("type-changed", "100644", "120000")
    assert (typed.added, typed.removed, len(typed.hunks)) == (1, 1, 2)


async def test_odd_names_and_undecodable_bytes(work: Path):
    base = head(work)
    (work / "tab\there.txt").write_text("t\n")
    (work / 'quote"d ü.txt').write_text("q\n")
    (work / "latin1.txt").write_bytes(b"caf\xe9\n")
    change = await change_of(work, base)
    assert {f.path for f in change.files} == {"tab\there.txt", 'quote"d ü.txt', "latin1.txt"}
    (shown,) = change.file("latin1.txt").hunks  # type: ignore[union-attr]
    assert shown.lines[0].text == "caf\ufffd"
    json.dumps(change.to_dict(), ensure_ascii=False).encode("utf-8")  # no surrogate escapes left

    exact = await tree_change(work, base, change.tree, large_file_lines=3000, exact=True)
    (raw,) = exact.file("latin1.txt").hunks  # type: ignore[union-attr]
    assert encoded(raw.lines[0].text) == b"caf\xe9"
    assert raw.digest == shown.digest  # the digest the person saw matches the exact parse's


async def test_ignored_files_are_not_part_of_the_change(work: Path):
    base = head(work)
    (work / ".gitignore").write_text("build/\n")
    (work / "build").mkdir()
    (work / "build" / "out.o").write_text("junk\n")
    assert [f.path for f in (await change_of(work, base)).files] == [".gitignore"]


def test_the_parser_reads_hunk_headers_without_counts():
    patch = (
        "diff --git a/x b/x\nindex 1..2 100644\n--- a/x\n+++ b/x\n"
        "@@ -3 +3,2 @@ def f():\n-a\n+b\n+c\n"
    )
    (diff,) = parse_patch(patch)
    (hunk,) = diff.hunks
    assert (hunk.old_start, hunk.old_count, hunk.new_start, hunk.new_count, hunk.section) == (3, 1, 3, 2, "def f():")
    assert [(line.old_no, line.new_no) for line in hunk.lines] == [(3, None), (None, 3), (None, 4)]


async def test_the_diff_command_returns_the_change(engine, repo: Path):
    (session,) = await engine.create_sessions(repo, name="d")
    Path(session.worktree, "README.md").write_text("hello\nworld\n")
    raw = await engine.execute({"cmd": "diff", "session": session.id})
    (readme,) = Change.from_dict(raw).files
    assert (readme.path, readme.added, readme.removed) == ("README.md", 1, 0)
    one = await engine.execute({"cmd": "diff", "session": f"@{session.number}", "path": "README.md"})
    assert Change.from_dict(one).files == [readme]
