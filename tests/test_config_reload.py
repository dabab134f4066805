"""A running engine re-reads config files when they change (#12.2): the user's `config.toml`,
each repository's `.cockpit.toml`, and the trust list; it says so with a `config` event, and a
broken file is one line while the last good config stays in force. Real files, the real
watchfiles watcher, the real server process."""

from __future__ import annotations

import asyncio

import pytest
from server_kit import acockpit, attached

from cockpit.core import events as ev
from cockpit.core.engine import Engine
from cockpit.server.paths import ServerPaths
from cockpit.trust import TrustStore


async def next_config_event(subscription, timeout: float = 30.0):
    async with asyncio.timeout(timeout):
        while True:
            event = await subscription.get()
            if event.kind == ev.CONFIG:
                return event


@pytest.fixture
async def live_engine(cockpit_env):
    cockpit_env.write_user_config('[review]\nverify = "true"\n')
    engine = await Engine.open(cockpit_env.home)  # no config given: the user's file, re-read on change
    engine.watch_config()
    yield engine
    await engine.close()


async def test_user_file_reloads_and_a_broken_one_keeps_the_last_good(cockpit_env, live_engine, repo):
    (session,) = await live_engine.create_sessions(repo, name="s")
    seen = live_engine.subscribe()
    cockpit_env.write_user_config('[review]\nverify = "test -d ."\n[budgets]\nsession_usd = 3\n')
    event = await next_config_event(seen)
    assert (event.session, event.data) == ("", {"status": "reloaded",
                                                "text": f"config reloaded: {cockpit_env.user_config}"})
    assert live_engine.config_for(session).review.verify == "test -d ."
    assert live_engine.config.budgets.session_usd == 3.0

    cockpit_env.write_user_config('[review]\nverify = "x"\n[budgets\n')
    event = await next_config_event(seen)
    assert event.data["status"] == "error"
    assert event.data["text"] == (f"{cockpit_env.user_config}: line 3: invalid TOML: Expected ']' at the end of a "
                                  "table declaration (the last good config stays in force)")
    assert live_engine.config_for(session).review.verify == "test -d ."
    assert (await live_engine.landing.verify(session.id))["state"] == "passed"


async def test_repo_file_and_trust_changes_apply_to_that_repo_only(cockpit_env, live_engine, repo, make_repo, tmp_path):
    other = make_repo(tmp_path / "other")
    (here,) = await live_engine.create_sessions(repo, name="here")
    (there,) = await live_engine.create_sessions(other, name="there")
    seen = live_engine.subscribe()
    (repo / ".cockpit.toml").write_text('[review]\nverify = "false"\nstrategy = "merge"\n')
    event = await next_config_event(seen)
    assert event.data == {"status": "reloaded", "text": f"config reloaded: {repo / '.cockpit.toml'}"}
    assert live_engine.config_for(here).review.strategy == "merge"  # harmless: applies untrusted
    assert live_engine.config_for(here).review.verify == "true"  # a command: not until trusted
    TrustStore().trust(repo)
    await next_config_event(seen)
    assert live_engine.config_for(here).review.verify == "false"
    assert live_engine.config_for(there).review.verify == "true" and live_engine.config_for(there).review.strategy == "squash"

    (repo / ".cockpit.toml").write_text("[review]\nverify = 3\n")
    event = await next_config_event(seen)
    assert event.data["text"] == (f"{repo / '.cockpit.toml'}: line 2: key 'review.verify' must be a string, got an integer (3) "
                                  "(the last good config stays in force)")
    assert live_engine.config_for(here).review.strategy == "merge"


async def test_the_running_server_picks_up_a_new_verify_command(cockpit_env, repo):
    """#12.2 as reported: a new `[review] verify` was ignored until `cockpit server stop`."""
    done = await acockpit("new", "s", "--json", cwd=repo)
    assert done.returncode == 0, done.stderr
    client = await attached(ServerPaths(cockpit_env.home))
    try:
        with pytest.raises(Exception, match="no verify command configured"):
            await client.execute({"cmd": "verify", "session": "s"})
        cockpit_env.write_user_config('[review]\nverify = "true"\n')
        assert (await client.execute({"cmd": "verify", "session": "s"}))["state"] == "passed"
    finally:
        await client.close()
