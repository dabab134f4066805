"""`cockpit demo --print`: the no-key demo does real work through litellm in a sample repo."""

import asyncio
import os
import subprocess
import sys

import pytest

from cockpit.core import events as ev
from cockpit.demo.run import DEMO_AGENTS, demo_app, start_demo


@pytest.mark.slow
def test_demo_agents_fix_the_bug_write_docs_and_survive_a_flaky_provider(tmp_path, cockpit_env):
    done = subprocess.run(
        [sys.executable, "-m", "cockpit", "demo", "--print", "--timeout", "90"],
        capture_output=True, text=True, timeout=150, env={**os.environ}, stdin=subprocess.DEVNULL,
    )
    out = done.stdout
    assert done.returncode == 0, out + done.stderr
    assert "DEMO: simulated agents" in out.splitlines()[0]
    assert "All tests pass now" in out  # the fix-add agent fixed calc.add and re-ran the tests
    assert out.count("⚠ approval asked: run_shell python -m unittest -q") == 2
    assert "retry 1/4" in out and "retry 2/4" in out  # the flaky provider was retried
    demo = cockpit_env.home / "demo"
    fixed = (demo / "worktrees" / "calc" / "fix-add" / "calc.py").read_text()
    assert "return a + b" in fixed
    assert (demo / "worktrees" / "calc" / "docs" / "docs" / "usage.md").is_file()
    assert "return a - b" in (demo / "calc" / "calc.py").read_text()  # the main checkout is untouched
    assert "Traceback" not in done.stderr


# -- the demo's screen and its scripted agent -----------------------------------------------------------


async def _settle(engine, session_id: str, timeout: float = 60.0) -> None:
    """Wait until the session's turn is over (idle or error)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while engine.sessions[session_id].state.value not in ("idle", "error"):
        assert loop.time() < deadline, f"session still {engine.sessions[session_id].state.value}"
        await asyncio.sleep(0.05)


async def test_the_demo_agent_says_it_was_denied_not_that_the_tests_fail(tmp_path) -> None:
    """Issue #12.11: after a deny the scripted agent said "the tests still fail after my change"."""
    engine, server, _, _ = await start_demo(home=tmp_path / "demo")
    subscription = engine.subscribe()
    try:
        fix = next(s for s in engine.sessions.values() if s.name == "fix-add")
        await engine.send(fix.id, DEMO_AGENTS[0].task)
        denied = 0
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 60
        while denied < 2:
            assert loop.time() < deadline, "the agent asked to run the tests twice"
            for event in subscription.get_nowait():
                if event.kind == ev.APPROVAL_REQUEST and event.session == fix.id:
                    await engine.deny(fix.id, event.data["id"], reason="not now")
                    denied += 1
            await asyncio.sleep(0.02)
        await _settle(engine, fix.id)
        said = "".join(e.data.get("text", "") for e in await engine.transcript(fix.id)
                       if e.kind in (ev.TEXT, ev.TEXT_DELTA))
        assert "I could not run the tests (denied by the person: not now)" in said
        assert "I could not run the tests again (denied by the person: not now), so the fix is untested" in said
        assert "still fail" not in said
    finally:
        subscription.close()
        await engine.close()
        await server.stop()


async def test_the_demo_screen_creates_verifies_and_explains_ctrl_d_in_the_sample(tmp_path, monkeypatch) -> None:
    """Issue #12.4: `c` made worktrees where the demo was started, `v` had no verify command, and
    ctrl+d said it could not detach without saying what to run instead."""
    monkeypatch.chdir(tmp_path)  # started from a folder that is not the sample (nor a repository)
    engine, server, config, sample = await start_demo(home=tmp_path / "demo")
    app = demo_app(engine, config, sample)
    try:
        async with app.run_test(size=(160, 48)) as pilot:
            while len(app.grid.panes) < len(DEMO_AGENTS) or app.focused_pane is None:
                await pilot.pause(0.05)
            await pilot.press("c")
            await pilot.pause(0.1)
            await pilot.press(*"extra", "ctrl+s")
            for _ in range(100):
                extra = [s for s in engine.sessions.values() if s.name == "extra"]
                if extra:
                    break
                await pilot.pause(0.05)
            assert extra, [str(n.message) for n in app._notifications]
            (made,) = extra
            assert made.path.parent == next(iter(engine.sessions.values())).path.parent  # the sample's worktrees
            while app.focused_id != made.id:  # the dialog focuses the new pane once it shows
                await pilot.pause(0.05)
            await pilot.press("v")  # the sample's tests run (and fail: `add` subtracts)
            for _ in range(200):
                if (app.sessions[made.id].get("verify") or {}).get("state") in ("passed", "failed"):
                    break
                await pilot.pause(0.05)
            assert (app.sessions[made.id].get("verify") or {}).get("state") == "failed", [
                str(n.message) for n in app._notifications]
            await pilot.press("ctrl+d")
            await pilot.pause(0.05)
            assert any("run `cockpit`" in str(n.message) for n in app._notifications)
    finally:
        await engine.close()
        await server.stop()
