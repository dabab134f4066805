"""Issue #13.2 attack replays for ACP agents: the agent's own process runs in the session's sandbox.

The agent is `tests/fake_acp_agent.py`, a real ACP agent process, driven by the real Engine on a
real repository, with a fake home holding a fake ssh key. Its `selfwrite`/`selfread` scripts use
the agent process's own hands (no ACP client call the cockpit could refuse), so what they reach
is what the sandbox lets through. Each attack also runs once unconfined, proving it could work.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the helpers of tests/test_acp_agent.py

from test_acp_agent import agent_ready, said, turn  # noqa: E402
from web_helpers import answering  # noqa: E402

from cockpit.agents.factory import make_agent  # noqa: E402
from cockpit.config import AgentConfig, Config  # noqa: E402
from cockpit.core import events as ev  # noqa: E402
from cockpit.core.sandbox import availability  # noqa: E402

pytestmark = pytest.mark.skipif(not availability().ok, reason=availability().reason or "sandbox available")

FAKE_AGENT = Path(__file__).resolve().parents[1] / "fake_acp_agent.py"
KEY = "-----BEGIN OPENSSH PRIVATE KEY----- fake-key-for-tests"


@pytest.fixture
def places(off_tmp: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """A fake HOME with an ssh key, a folder outside every worktree, and the agent's state folder."""
    home = off_tmp / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "id_x").write_text(KEY)
    monkeypatch.setenv("HOME", str(home))
    outside = off_tmp / "outside"
    outside.mkdir()
    return {"home": home, "outside": outside, "state": home / ".fake-agent"}


async def fake_session(open_engine: Any, repo: Path, places: dict[str, Path], *, sandbox: bool = True,
                       allow_hosts: tuple[str, ...] = ()) -> Any:
    config = Config()
    config.sandbox.enabled = sandbox
    config.agents["fake"] = AgentConfig(kind="acp", command=[sys.executable, str(FAKE_AGENT)],
                                        writable=["~/.fake-agent"], allow_hosts=list(allow_hosts))
    engine = await open_engine(config=config, agent_factory=make_agent)
    (session,) = await engine.create_sessions(repo, agent="fake", name="acp")
    await agent_ready(engine, session)

    async def ask(text: str) -> str:
        return said(await turn(engine, session, text))

    return engine, session, ask


async def test_an_acp_agent_cannot_write_outside_its_worktree_or_read_secrets(open_engine, repo, places):
    """Attack row 13.2 (ACP agent process): the agent itself (not through fs/* requests, which the
    cockpit confines) wrote outside its worktree and read ~/.ssh."""
    outside, home = places["outside"], places["home"]
    _, session, ask = await fake_session(open_engine, repo, places)
    assert await ask("hello") == "Hello, world"  # it still speaks ACP over its pipes
    assert await ask(f"selfwrite {outside}/pwned x") == "selfwrite failed: Read-only file system"
    assert await ask(f"selfwrite {home}/planted x") == "selfwrite failed: Read-only file system"
    await ask(f"selfwrite {repo}/planted x")  # the main checkout (here under /tmp, so private)
    assert not (outside / "pwned").exists() and not (home / "planted").exists() and not (repo / "planted").exists()
    read = await ask(f"selfread {home}/.ssh/id_x")
    assert read == "selfread failed: No such file or directory" and KEY not in read
    assert await ask("selfwrite inside.txt ok") == "selfwrite ok"
    assert (session.path / "inside.txt").read_text() == "ok"
    assert await ask(f"selfwrite {places['state']}/state.json {{}}") == "selfwrite ok"  # [agents.fake] writable
    assert (places["state"] / "state.json").read_text() == "{}"


async def test_an_acp_agent_reaches_its_own_allowed_host_only(open_engine, repo, places):
    """Attack row 13.2 (ACP agent network): an agent needs its API host, and `allow_hosts` used
    to open the whole network. Its `[agents.<name>] allow_hosts` let it through the session's
    proxy to that host alone (here a loopback server as `localhost`); anything else is 403."""
    with answering(b"api answer") as port:
        engine, session, ask = await fake_session(open_engine, repo, places, allow_hosts=(f"localhost:{port}",))
        assert await ask(f"fetch http://localhost:{port}/v1") == "fetched: api answer"
        refused = await ask(f"fetch http://127.0.0.1:{port}/v1")
    assert refused.startswith("fetch failed: HTTP Error 403"), refused
    notes = [e.data["text"] for e in await engine.transcript(session.id) if e.kind == ev.NOTICE]
    assert f"sandbox: blocked a connection to 127.0.0.1:{port} (not in allow_hosts)" in notes




async def test_without_a_sandbox_the_acp_agent_runs_and_the_session_says_so(open_engine, repo, places):
    """Attack row 13.2 (no sandbox): the same agent unconfined reads the key, and the session says
    its commands run unconfined."""
    engine, session, ask = await fake_session(open_engine, repo, places, sandbox=False)
    assert await ask(f"selfread {places['home']}/.ssh/id_x") == f"selfread: {KEY}"  # the attack is real
    notes = [e.data["text"] for e in await engine.transcript(session.id) if e.kind == ev.NOTICE]
    assert any("no sandbox" in note and "unconfined" in note for note in notes)
