"""Running the demo: a sample repository, the scripted model server, and a few agents.

The agents are real built-in agents going through litellm's real HTTP path; only the model is
simulated, by `cockpit.sim` on 127.0.0.1, so the demo needs no API key and no network. Demo
state lives in its own folder (`$COCKPIT_HOME/demo`) so it never mixes with real sessions.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from cockpit.config import Config, ModelConfig, cockpit_home
from cockpit.core import events as ev
from cockpit.core.engine import Engine
from cockpit.core.events import Event
from cockpit.demo.sample import SAMPLE_VERIFY, make_sample_repo
from cockpit.features import install

DEMO_LABEL = "DEMO: simulated agents, no API key"
#: What `ctrl+d` says in the demo: its agents live in this screen, the real cockpit is `cockpit`.
DEMO_NO_DETACH = ("the demo's agents live only in this screen, so there is nothing to detach from: "
                  "q quits; run `cockpit` in your repository for the real thing (agents keep running there)")


@dataclass(frozen=True)
class DemoAgent:
    name: str
    scenario: str
    task: str


DEMO_AGENTS = (
    DemoAgent("fix-add", "demo", "The tests fail. Find the bug in calc.py and fix it."),
    DemoAgent("docs", "docs", "Write a short usage guide for calc in docs/usage.md."),
    DemoAgent("flaky-provider", "flaky", "Look around the repository and tell me what it is."),
    DemoAgent("explain", "explore", "Explain how this project is organised."),
)


def demo_config(api_base: str) -> Config:
    config = Config()
    config.models["default"] = ModelConfig(model="openai/cockpit-sim", api_base=api_base, retry_base_s=0.5)
    return config


async def start_demo(repo: Path | None = None, home: Path | None = None):  # noqa: ANN201
    """Start the server, the engine and the demo sessions; return (engine, server, config, repo),
    `repo` being the sample repository (where `c` makes new sessions and `v` runs its tests).

    The demo folder is wiped first; with `--repo`, stale worktree entries of an earlier demo
    are pruned by the worktree manager when sessions are created.
    """
    from cockpit.sim import ScriptedLLMServer
    from cockpit.workers.pool import WorkerPool

    home = home or cockpit_home() / "demo"
    shutil.rmtree(home, ignore_errors=True)  # every demo starts from the same clean state
    repo = make_sample_repo(repo or home / "calc")
    server = ScriptedLLMServer()
    url = await server.start()
    config = demo_config(url)
    install()
    config.review.verify = SAMPLE_VERIFY
    engine = await Engine.open(home, config, agent_factory=WorkerPool())
    for agent in DEMO_AGENTS:
        (session,) = await engine.create_sessions(repo, name=agent.name, tags=["demo"])
        server.set_scenario(agent.scenario, session=session.id)
    return engine, server, config, repo


async def send_tasks(engine: Engine) -> None:
    """Give each demo agent its task (sessions were made in DEMO_AGENTS order)."""
    for session, agent in zip(sorted(engine.sessions.values(), key=lambda s: s.number), DEMO_AGENTS):
        await engine.send(session.id, agent.task)


def demo_app(engine: Engine, config: Config, repo: Path):  # noqa: ANN201 - a CockpitApp (Textual)
    """The cockpit screen on the demo's engine, new sessions branching from the sample repo."""
    from cockpit.ui.app import CockpitApp

    return CockpitApp(engine, config, label=DEMO_LABEL, repo=str(repo), no_detach=DEMO_NO_DETACH)


async def run_demo_tui(repo: Path | None = None) -> None:
    engine, server, config, sample = await start_demo(repo)
    await send_tasks(engine)
    try:
        await demo_app(engine, config, sample).run_async()
    finally:
        await engine.close()
        await server.stop()


def describe(event: Event, name: str) -> str | None:
    """One printed line per event worth reading (streamed text is printed whole, at its end)."""
    data = event.data
    text = {
        ev.USER_MESSAGE: lambda: f"› {data.get('text')}",
        ev.TOOL_CALL: lambda: f"⚙ {data.get('name')} {data.get('arguments', {})}",
        ev.TOOL_RESULT: lambda: f"{'✓' if data.get('ok') else '✗'} {(data.get('output') or '').splitlines()[0:1]}",
        ev.APPROVAL_REQUEST: lambda: f"⚠ approval asked: {data.get('tool')} {data.get('title')}",
        ev.NOTICE: lambda: f"· {data.get('text')}",
        ev.ERROR: lambda: f"✗ {data.get('text')}",
        ev.SESSION_STATE: lambda: f"→ {data.get('state')} {data.get('detail', '')}".rstrip(),
    }.get(event.kind)
    return f"[{name}] {text()}" if text else None


async def run_demo_print(out: TextIO, repo: Path | None = None, home: Path | None = None, timeout: float = 120) -> int:
    """Print the demo's events as lines, approve what the agents ask, stop when all are idle."""
    engine, server, _, _ = await start_demo(repo, home)
    subscription = engine.subscribe()
    await send_tasks(engine)
    names = {s.id: f"@{s.number} {s.name}" for s in engine.sessions.values()}
    texts: dict[str, list[str]] = {}
    print(f"{DEMO_LABEL}: {len(names)} agents in {next(iter(engine.sessions.values())).path.parent}", file=out)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            try:
                event = await asyncio.wait_for(subscription.get(), 0.5)
            except TimeoutError:
                if all(s.state.value in ("idle", "error") for s in engine.sessions.values()):
                    return 0
                continue
            name = names.get(event.session, event.session)
            if event.kind == ev.TEXT_DELTA:
                texts.setdefault(event.session, []).append(event.data.get("text", ""))
            elif event.kind == ev.MESSAGE_END and texts.get(event.session):
                print(f"[{name}] {''.join(texts.pop(event.session)).strip()}", file=out)
            line = describe(event, name)
            if line:
                print(line, file=out, flush=True)
            if event.kind == ev.APPROVAL_REQUEST:
                await engine.approve(event.session, event.data["id"], reason="approved by demo --print")
        return 1
    finally:
        subscription.close()
        await engine.close()
        await server.stop()
