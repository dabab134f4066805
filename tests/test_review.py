"""Review actions on real worktrees: revert one hunk (byte-exact, refused when stale), comment on a
line, and notes for an agent that is mid-turn waiting until the turn ends."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest
from conftest import make_repo, run_git
from turn_backend import TurnBackend, events_of, settled, turn

from cockpit.core import events as ev
from cockpit.core.diffs import Change
from cockpit.errors import CockpitError, NotFound

ORIGINAL = "".join(f"line {i}\n" for i in range(1, 61))


@pytest.fixture
def base_repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "repo", {
        "text.txt": ORIGINAL, "tool.sh": "#!/bin/sh\necho hi\n", "raw.txt": "caf\xe9\r\nend",
    })


@pytest.fixture
async def engine(open_engine):
    return await open_engine(agent_factory=TurnBackend)


@pytest.fixture
async def session(engine, base_repo: Path):
    (made,) = await engine.create_sessions(base_repo, name="rv")
    return made


async def hunks_of(engine, session, path: str):
    change = Change.from_dict(await engine.execute({"cmd": "diff", "session": session.id}))
    found = change.file(path)
    assert found is not None, f"{path} is not in the change"
    return found.hunks


async def revert(engine, session, path: str, index: int, digest: str) -> None:
    await engine.execute({"cmd": "revert_hunk", "session": session.id, "path": path, "hunk": index, "digest": digest})


async def test_reverting_the_second_of_three_hunks_keeps_the_others(engine, session):
    target = session.path / "text.txt"
    edited = ORIGINAL.replace("line 5\n", "five\n").replace("line 30\n", "thirty\nmore\n").replace("line 55\n", "")
    target.write_text(edited)
    hunks = await hunks_of(engine, session, "text.txt")
    assert len(hunks) == 3

    await revert(engine, session, "text.txt", 1, hunks[1].digest)
    assert target.read_text() == ORIGINAL.replace("line 5\n", "five\n").replace("line 55\n", "")
    left = await hunks_of(engine, session, "text.txt")
    assert left[0] == hunks[0]
    assert [(line.kind, line.text) for line in left[1].lines] == [(line.kind, line.text) for line in hunks[2].lines]
    told = TurnBackend.by_session[session.id].received[-1]
    assert "reverted this change of yours in text.txt" in told and "+thirty" in told
    assert run_git(session.path, "status", "--porcelain").strip() == "M text.txt"  # index untouched


async def test_a_stale_digest_is_refused_and_nothing_is_written(engine, session):
    target = session.path / "text.txt"
    target.write_text(ORIGINAL.replace("line 5\n", "five\n"))
    (hunk,) = await hunks_of(engine, session, "text.txt")
    target.write_text(ORIGINAL.replace("line 5\n", "FIVE\n"))  # the agent kept working
    with pytest.raises(CockpitError, match=r"^text.txt changed since you looked at it; reload the diff$"):
        await revert(engine, session, "text.txt", 0, hunk.digest)
    assert target.read_text() == ORIGINAL.replace("line 5\n", "FIVE\n")
    with pytest.raises(CockpitError, match="changed since you looked"):
        await revert(engine, session, "text.txt", 3, hunk.digest)  # no such hunk any more
    with pytest.raises(CockpitError, match="no change in session @1 any more"):
        await revert(engine, session, "nothing-here.txt", 0, hunk.digest)


async def test_reverting_an_untracked_file_deletes_it(engine, session):
    (session.path / "new dir").mkdir()
    (session.path / "new dir" / "fresh.py").write_text("x = 1\ny = 2\n")
    (hunk,) = await hunks_of(engine, session, "new dir/fresh.py")
    await revert(engine, session, "new dir/fresh.py", 0, hunk.digest)
    assert not (session.path / "new dir").exists()
    assert (await engine.review.diff(session.id)).files == []


async def test_reverting_a_deleted_file_brings_back_its_bytes_and_mode(engine, session, base_repo: Path):
    run_git(base_repo, "update-index", "--chmod=+x", "tool.sh")
    run_git(base_repo, "commit", "-q", "-m", "executable")
    (fresh,) = await engine.create_sessions(base_repo, name="del")
    (fresh.path / "tool.sh").unlink()
    (hunk,) = await hunks_of(engine, fresh, "tool.sh")
    await revert(engine, fresh, "tool.sh", 0, hunk.digest)
    assert (fresh.path / "tool.sh").read_bytes() == b"#!/bin/sh\necho hi\n"
    assert os.access(fresh.path / "tool.sh", os.X_OK)


async def test_revert_is_byte_exact_with_odd_encodings_and_no_final_newline(engine, session):
    target = session.path / "raw.txt"
    original = target.read_bytes()
    assert original == b"caf\xc3\xa9\r\nend"  # UTF-8, CRLF, no final newline
    target.write_bytes(b"caf\xe9\r\nend, edited")  # Latin-1 now, which git shows as undecodable bytes
    (hunk,) = (await hunks_of(engine, session, "raw.txt"))
    await revert(engine, session, "raw.txt", 0, hunk.digest)
    assert target.read_bytes() == original
    assert "caf\ufffd" in TurnBackend.by_session[session.id].received[-1]  # the agent gets valid text


async def test_binary_files_have_no_hunks_to_revert(engine, session):
    (session.path / "text.txt").write_bytes(b"\x00binary now")
    with pytest.raises(CockpitError, match="text.txt is a binary file: there is no hunk to revert"):
        await revert(engine, session, "text.txt", 0, "0" * 16)


async def test_a_comment_becomes_an_instruction_quoting_the_line(engine, session):
    (session.path / "text.txt").write_text(ORIGINAL.replace("line 7\n", "    total = a + b\n"))
    await engine.execute({"cmd": "comment", "session": session.id, "path": "text.txt", "line": 7,
                          "text": "handle None here"})
    told = TurnBackend.by_session[session.id].received[-1]
    assert told == "Review comment on text.txt, line 7:\n>     total = a + b\n\nhandle None here"
    with pytest.raises(CockpitError, match="text.txt has 60 lines; there is no line 61"):
        await engine.review.comment(session.id, "text.txt", 61, "x")
    with pytest.raises(NotFound, match="gone.txt: no such file"):
        await engine.review.comment(session.id, "gone.txt", 1, "x")
    with pytest.raises(CockpitError, match="not a file of session @1's worktree"):
        await engine.review.comment(session.id, "../../etc/passwd", 1, "x")
    with pytest.raises(CockpitError, match="the comment is empty"):
        await engine.review.comment(session.id, "text.txt", 1, "  ")


async def test_notes_wait_for_the_turn_to_end_and_go_out_in_order(engine, session):
    await turn(engine, session, lambda root: (root / "text.txt").write_text(ORIGINAL.replace("line 9\n", "nine\n")))
    backend = TurnBackend.by_session[session.id]
    gate = backend.hold = asyncio.Event()
    await engine.send(session.id, "keep going")
    await asyncio.sleep(0)
    (hunk,) = await hunks_of(engine, session, "text.txt")
    await revert(engine, session, "text.txt", 0, hunk.digest)  # allowed while it runs
    await engine.review.comment(session.id, "text.txt", 2, "rename this")
    assert backend.received[-1] == "keep going"
    queued = [e for e in await events_of(engine, session, ev.NOTICE) if e.get("queued")]
    assert len(queued) == 2 and "reverted" in queued[0]["text"] and "rename this" in queued[1]["text"]

    gate.set()  # the turn ends: the queued notes go out as one message
    await backend.turns[1]
    await settled(engine, session)
    await backend.turns[-1]
    await settled(engine, session)
    assert len(backend.received) == 3  # the first turn, "keep going", the notes
    note = backend.received[-1]
    assert note.index("reverted this change") < note.index("rename this")
