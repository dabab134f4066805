"""Live collisions: two sessions of one repository changing the same file, seen while they work.

Real worktrees, the real file watcher and the real engine: a write in one worktree and then in
the other gives both sessions a `collision` event naming the other session and the file; a
revert clears it on both. With `[review] collision_notes` each agent is told once, a working
agent only when its turn ends.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from conftest import run_git
from turn_backend import TurnBackend, events_of, wait_for

from cockpit.config import Config, load_config
from cockpit.core import events as ev
from cockpit.ui.pane import AgentPane
from cockpit.ui.text import header_text


def _collect(feed, seen: dict[str, list]) -> bool:
    """Record the last collision list of each session from `feed`; true once two sessions have one."""
    for event in feed.get_nowait():
        seen[event.session] = event.data["with"]
    return len(seen) == 2


async def _pair(engine, repo: Path):
    one, two = await engine.create_sessions(repo, name="fix", count=2)
    await wait_for(lambda: set(engine.review.watching) >= {one.id, two.id})
    return one, two


def _named(collisions: list[dict]) -> list[tuple[int, list[str]]]:
    return [(c["number"], c["files"]) for c in collisions]


async def test_both_sessions_see_a_shared_file_until_one_reverts_it(engine, repo: Path):
    one, two = await _pair(engine, repo)
    feed = engine.subscribe(accept=lambda e: e.kind == ev.COLLISION)
    seen: dict[str, list] = {}
    (one.path / "src" / "app.py").write_text("print('one')\n")
    (one.path / "only-one.txt").write_text("mine\n")
    (two.path / "README.md").write_text("two's readme\n")
    await wait_for(lambda: engine.review._stats.get(one.id) and engine.review._stats.get(two.id))
    await asyncio.sleep(0.3)
    assert feed.get_nowait() == []  # different files: no collision

    (two.path / "src" / "app.py").write_text("print('two')\n")
    await wait_for(lambda: _collect(feed, seen))
    assert _named(seen[one.id]) == [(two.number, ["src/app.py"])]
    assert _named(seen[two.id]) == [(one.number, ["src/app.py"])]
    assert seen[one.id][0]["name"] == two.name
    current = await engine.execute({"cmd": "collisions"})
    assert {sid: _named(c) for sid, c in current.items()} == {
        one.id: [(two.number, ["src/app.py"])], two.id: [(one.number, ["src/app.py"])]}

    run_git(two.path, "checkout", "--", "src/app.py")  # two reverts its change to the file
    seen.clear()
    await wait_for(lambda: _collect(feed, seen))
    assert seen == {one.id: [], two.id: []}
    assert await engine.execute({"cmd": "collisions"}) == {}
    # stored: a screen attached later reads the last state from the transcript
    assert [_named(c["with"]) for c in await events_of(engine, one, ev.COLLISION)] == [
        [(two.number, ["src/app.py"])], []]
    assert await events_of(engine, one, ev.USER_MESSAGE) == []  # notes are off by default


async def test_a_collision_gone_while_the_cockpit_was_down_clears_at_start(open_engine, repo: Path):
    engine = await open_engine()
    one, two = await _pair(engine, repo)
    for session in (one, two):
        (session.path / "src" / "app.py").write_text(f"print('{session.name}')\n")
    await wait_for(lambda: len(engine.collisions.current()) == 2)
    await engine.close()
    run_git(one.path, "checkout", "--", "src/app.py")

    engine = await open_engine()
    for _ in range(2000):  # the first look after the start emits it; poll the stored transcript
        await engine.readable()
        shown = [c["with"] for c in await events_of(engine, two, ev.COLLISION)]
        if shown[-1] == []:
            break
        await asyncio.sleep(0.01)
    assert _named(shown[0]) == [(one.number, ["src/app.py"])] and shown[-1] == []
    assert engine.collisions.current() == {}


async def test_agents_are_told_once_and_a_working_agent_when_its_turn_ends(open_engine, repo: Path):
    config = load_config()
    config.review.collision_notes = True
    engine = await open_engine(config=config, agent_factory=lambda host: TurnBackend(host))  # a factory, not a runtime
    one, two = await _pair(engine, repo)
    first, second = TurnBackend.by_session[one.id], TurnBackend.by_session[two.id]  # started on first use
    await engine.send(one.id, "edit app")  # one turn: ends at once
    (one.path / "src" / "app.py").write_text("print('one')\n")
    await wait_for(lambda: engine.review._stats.get(one.id))
    second.hold = asyncio.Event()
    await engine.send(two.id, "edit app too")  # two is working (held) while it writes the file
    await wait_for(lambda: two.state.value == "running")
    (two.path / "src" / "app.py").write_text("print('two')\n")

    await wait_for(lambda: len(first.received) == 2)  # idle: told at once
    assert f"@{two.number} {two.name}: src/app.py" in first.received[1]
    notices = [n["text"] for n in await events_of(engine, two, ev.NOTICE) if n.get("queued")]
    assert len(notices) == 1 and f"@{one.number} {one.name}: src/app.py" in notices[0]
    assert second.received == ["edit app too"]  # not in the middle of its turn
    second.hold.set()
    await wait_for(lambda: len(second.received) == 2)
    assert f"@{one.number} {one.name}: src/app.py" in second.received[1]

    (two.path / "src" / "app.py").write_text("print('two, again')\n")  # the same collision: no new note
    (two.path / "extra.txt").write_text("x\n")
    await wait_for(lambda: engine.review._stats[two.id].files == 2)
    await asyncio.sleep(0.3)
    assert (len(first.received), len(second.received)) == (2, 2)


def test_the_pane_header_names_the_other_session_and_file():
    pane = AgentPane({"id": "s1", "number": 3, "name": "fix", "state": "running"})
    pane.feed(ev.Event(ev.COLLISION, "s1", {"with": [{"session": "s2", "number": 4, "name": "other",
                                                       "files": ["src/a.py"], "more": 0}]}))
    header = header_text(pane.session, marked=False, spinner="", stats={}, collisions=pane.collisions)
    assert "⚠ also changed by @4: src/a.py" in header
    pane.feed(ev.Event(ev.COLLISION, "s1", {"with": [{"number": 4, "files": ["a", "b"], "more": 0},
                                                     {"number": 7, "files": ["b"], "more": 3}]}))
    assert "⚠ also changed by @4 @7: a +4" in header_text(pane.session, marked=False, spinner="", stats={},
                                                         collisions=pane.collisions)
    pane.feed(ev.Event(ev.COLLISION, "s1", {"with": []}))
    assert "⚠" not in header_text(pane.session, marked=False, spinner="", stats={}, collisions=pane.collisions)


def test_collision_notes_come_only_from_a_trusted_file(cockpit_env, tmp_path: Path):
    from cockpit.config import load_config_report

    cockpit_env.write_user_config("[review]\ncollision_notes = true\n")
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / ".cockpit.toml").write_text("[review]\ncollision_notes = false\n")
    config, report = load_config_report(repo)
    assert config.review.collision_notes is False and report.ignored == []  # turning it off is fine

    cockpit_env.write_user_config("")
    (repo / ".cockpit.toml").write_text("[review]\ncollision_notes = true\n")
    config, report = load_config_report(repo)
    assert config.review.collision_notes is False
    assert report.ignored == ["review.collision_notes (turns it on)"]
    assert Config().review.collision_notes is False


async def test_both_panes_show_the_collision_until_it_clears(engine, repo: Path):
    from cockpit.ui.app import CockpitApp

    one, two = await _pair(engine, repo)
    app = CockpitApp(engine, engine.config)
    async with app.run_test(size=(160, 40)) as pilot:

        async def headers_say(expected: dict[str, str | None]) -> None:
            for _ in range(1000):
                await pilot.pause(0.02)
                lines = {sid: app.grid.panes[sid].render_line(0).text for sid in expected if sid in app.grid.panes}
                if len(lines) == len(expected) and all(
                        (want in lines[sid]) if want else ("⚠" not in lines[sid]) for sid, want in expected.items()):
                    return
            raise AssertionError(f"pane headers never showed {expected}: {lines}")

        for session in (one, two):
            (session.path / "src" / "app.py").write_text(f"print('{session.name}')\n")
        await headers_say({one.id: f"⚠ also changed by @{two.number}: src/app.py",
                           two.id: f"⚠ also changed by @{one.number}: src/app.py"})
        run_git(one.path, "checkout", "--", "src/app.py")
        await headers_say({one.id: None, two.id: None})
