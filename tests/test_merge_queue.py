"""The merge queue on real repositories: who touches what, who conflicts with whom and with the
target, the suggested order, and landing one by one with a stop at the first red or conflict."""

from __future__ import annotations

import pytest
from conftest import make_repo, run_git
from landing_helpers import commit, content, review_config, rev, session_with

from cockpit.core import events as ev
from cockpit.core.states import State
from cockpit.errors import CockpitError

SHARED = "".join(f"line {n}\n" for n in range(1, 8))


def edit_line(number: int, text: str) -> str:
    return SHARED.replace(f"line {number}\n", f"{text}\n")


@pytest.fixture
def queue_repo(tmp_path):
    return make_repo(tmp_path / "queue-repo", {"README.md": "hello\n", "shared.txt": SHARED})


async def test_plan_reports_overlaps_conflicts_blocked_and_an_order(open_engine, queue_repo):
    engine = await open_engine(config=review_config(verify="true"))
    a = await session_with(engine, queue_repo, "a", uncommitted={"shared.txt": edit_line(1, "A")})
    b = await session_with(engine, queue_repo, "b", committed={"shared.txt": edit_line(1, "B")}, uncommitted={"b.txt": "b\n"})
    c = await session_with(engine, queue_repo, "c", uncommitted={"c.txt": "c\n"})
    d = await session_with(engine, queue_repo, "d", uncommitted={"README.md": "from d\n"})
    e = await session_with(engine, queue_repo, "e", uncommitted={"shared.txt": edit_line(7, "E")})
    await session_with(engine, queue_repo, "idle")  # no changes: not a candidate
    commit(queue_repo, {"README.md": "from main\n"}, "main edits the readme")

    plan = await engine.execute({"cmd": "queue_plan"})

    rows = {row["session"]: row for row in plan["sessions"]}
    assert list(rows) == [a.id, b.id, c.id, d.id, e.id]
    assert rows[b.id]["files"] == ["b.txt", "shared.txt"] and rows[c.id]["files"] == ["c.txt"]
    assert rows[d.id]["target_conflicts"] == ["README.md"] and rows[a.id]["target_conflicts"] == []
    overlapping = {frozenset(o["sessions"]) for o in plan["overlaps"]}
    assert overlapping == {frozenset((a.id, b.id)), frozenset((a.id, e.id)), frozenset((b.id, e.id))}
    assert plan["conflicts"] == [{"sessions": sorted((a.id, b.id)), "files": ["shared.txt"]}]
    assert plan["blocked"] == [d.id]
    # No conflicts first (c before e by number), then a; b clashes with a so it comes last.
    assert plan["order"] == [c.id, e.id, a.id, b.id]

    await engine.landing.verify(e.id)  # a green verify of the current change breaks the tie
    assert (await engine.landing.queue_plan())["order"] == [e.id, c.id, a.id, b.id]


async def test_run_verifies_each_merge_result_and_stops_at_the_first_red(open_engine, queue_repo, cockpit_env):
    engine = await open_engine(config=review_config(verify="test ! -f red.txt"))
    a = await session_with(engine, queue_repo, "a", uncommitted={"a.txt": "a\n"})
    red = await session_with(engine, queue_repo, "red", uncommitted={"red.txt": "r\n"})
    c = await session_with(engine, queue_repo, "c", uncommitted={"c.txt": "c\n"})
    events = engine.subscribe(accept=lambda event: event.kind in (ev.VERIFY, ev.MERGED))

    result = await engine.execute({"cmd": "queue_run", "order": [a.id, red.id, c.id]})

    landed_commit = rev(queue_repo, "main")
    assert result["landed"] == [a.id] and result["remaining"] == [red.id, c.id] and result["verified"] is True
    assert result["stopped"]["session"] == red.id and result["stopped"]["verify"]["state"] == "failed"
    assert "main was not moved" in result["stopped"]["reason"]
    # The red merge result never reached main: main holds a's landing only.
    assert content(queue_repo, "main") == {"README.md": "hello\n", "shared.txt": SHARED, "a.txt": "a\n"}
    assert a.state == State.MERGED and red.state == State.IDLE and c.state == State.IDLE
    seen = [(event.session, event.kind, event.data.get("state")) for event in events.get_nowait()]
    assert seen == [(a.id, ev.VERIFY, "running"), (a.id, ev.VERIFY, "passed"), (a.id, ev.MERGED, None),
                    (red.id, ev.VERIFY, "running"), (red.id, ev.VERIFY, "failed")]
    verified_a = [event for event in await engine.transcript(a.id) if event.kind == ev.VERIFY][-1].data
    assert verified_a["commit"] == landed_commit and verified_a["queue"] == {"position": 1, "total": 3}
    # The scratch worktrees are gone.
    listed = run_git(queue_repo, "worktree", "list", "--porcelain")
    assert "detached" not in listed and not any((cockpit_env.home / "scratch").iterdir())


async def test_run_stops_at_a_conflict_and_lands_without_verify_when_none_is_configured(open_engine, queue_repo):
    engine = await open_engine(config=review_config(after_merge="keep"))
    a = await session_with(engine, queue_repo, "a", uncommitted={"shared.txt": edit_line(1, "A")})
    b = await session_with(engine, queue_repo, "b", uncommitted={"shared.txt": edit_line(1, "B")})

    result = await engine.landing.queue_run([a.id, b.id])

    assert result["landed"] == [a.id] and result["verified"] is False
    assert result["stopped"]["session"] == b.id and result["stopped"]["conflicts"] == ["shared.txt"]
    assert content(queue_repo, "main")["shared.txt"] == edit_line(1, "A")
    notice = [e.data["text"] for e in await engine.transcript(b.id) if e.kind == ev.NOTICE][-1]
    assert notice.startswith(f"merge queue stopped at @{b.number}: ")
    with pytest.raises(CockpitError, match="needs an order"):
        await engine.execute({"cmd": "queue_run", "order": []})
