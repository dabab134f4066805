"""A fleet of built-in agents streaming from worker processes: what the agent benches share.

- `start_model`: the scripted model in its own process, answering every request with text
  whose every word is `{sent_at}`, i.e. the time the server sent that chunk. Delay is measured
  end to end off the text itself: model server → the agent's client (openai_wire) in a worker →
  the worker's batch → the engine → a subscriber, with no hook in any process in between.
- `start_asker`: a second scripted model whose every answer asks to run a shell command, so a
  session on it is nearly always waiting for an approval (for `approve` round trips).
- `stream`: every fleet session streams one answer while the engine's loop lag, the engine's
  CPU and (optionally) a command client in another process are measured.
- `command_client`: that client: over the server's socket it times `ls`, `send` and
  `approve` (of the asking session) in a loop until told to stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from _common import percentile, start_sim

from cockpit.core import events as ev

_HERE = Path(__file__).resolve().parent
COMMAND_PERIOD_S = 0.05  # the client's pace: 20 command rounds a second


def start_model(folder: Path, rate: float, seconds: float) -> tuple[subprocess.Popen[str], str]:
    words = " ".join(["{sent_at}"] * int(rate * seconds))
    return start_sim(folder, {"name": "stream", "tokens_per_s": rate, "final": words, "steps": []})


def start_asker(folder: Path) -> tuple[subprocess.Popen[str], str]:
    ask = {"text": "checking", "tool_calls": [{"name": "run_shell", "arguments": {"command": "true"}}],
           "times": 1_000_000}
    return start_sim(folder, {"name": "asker", "tokens_per_s": 0, "steps": [ask]})


def fleet_config(model_url: str, asker_url: str = "", workers: int = 0) -> Any:
    from cockpit.config import AgentConfig, Config, ModelConfig, WorkersConfig

    config = Config()
    config.models["default"] = ModelConfig(model="openai/bench", api_base=model_url, max_output_tokens=1_000_000)
    if asker_url:
        config.models["asker"] = ModelConfig(model="openai/asker", api_base=asker_url)
        config.agents["asker"] = AgentConfig(model="asker")
    config.approval.preset = "ask-shell"
    config.sandbox.enabled = False  # the shell command is `true`: time the approval, not a sandbox start
    config.workers = WorkersConfig(count=workers)
    return config


@contextlib.asynccontextmanager
async def serving(home: Path, repo: Path, rate: float, seconds: float) -> AsyncIterator[tuple[Any, Any, Any]]:
    """(engine, pool, asker): an engine with agents in worker processes and its socket server on
    `home`, the scripted models in their own processes, and a session of `repo` that always asks
    (waiting for an approval from the start); everything is stopped on the way out."""
    from cockpit.core.engine import Engine
    from cockpit.server.listener import CockpitServer
    from cockpit.server.paths import ServerPaths
    from cockpit.workers.pool import WorkerPool

    model, url = start_model(home.parent, rate, seconds)
    asking, asker_url = start_asker(home.parent)
    pool = WorkerPool()
    try:
        engine = await Engine.open(home, fleet_config(url, asker_url), agent_factory=pool)
        server = CockpitServer(engine, ServerPaths(home))
        await server.start()
        try:
            (asker,) = await engine.create_sessions(repo, name="asker", agent="asker")
            await engine.send(asker.id, "ask away")
            yield engine, pool, asker
        finally:
            await server.close()
            await engine.close()
    finally:
        for proc in (model, asking):
            proc.terminate()
            proc.wait()


def git_repo(folder: Path) -> Path:
    folder.mkdir(parents=True)
    for args in (["init", "-q", "-b", "main"],
                 ["-c", "user.name=b", "-c", "user.email=b@x", "commit", "-q", "--allow-empty", "-m", "i"]):
        subprocess.run(["git", *args], cwd=folder, check=True)
    return folder


def peak_rss_mb(pids: list[int]) -> float:
    """The sum of each process's peak resident memory (VmHWM)."""
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


async def stream(engine: Any, sessions: list[Any], *, command_home: Path | None = None,
                 asker: str = "") -> dict[str, Any]:
    """Every session streams one answer. Delays come off the text; with `command_home` a client
    in another process times commands over that home's socket meanwhile."""
    client = await start_command_client(command_home, asker) if command_home is not None else None
    subscription = engine.subscribe(maxsize=1_000_000)
    delays: list[float] = []
    lags: list[float] = []
    fleet = {s.id for s in sessions}

    def take(event: Any) -> None:
        if event.kind == ev.TEXT_DELTA and event.session in fleet:
            now = time.time()
            delays.extend(now - float(word) for word in event.data["text"].split())

    async def note() -> None:
        while True:
            take(await subscription.get())

    async def probe_lag() -> None:
        loop = asyncio.get_running_loop()
        while True:
            before = loop.time()
            await asyncio.sleep(0.01)
            lags.append(loop.time() - before - 0.01)

    tasks = [asyncio.create_task(note()), asyncio.create_task(probe_lag())]
    cpu, wall = time.process_time(), time.perf_counter()
    for session in sessions:
        await engine.send(session.id, "stream please")
    while not delays or any(engine.sessions[s].state.value not in ("idle", "error") for s in fleet):
        await asyncio.sleep(0.05)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    for task in tasks:
        task.cancel()
    for event in subscription.get_nowait():  # what arrived with the last state change
        take(event)
    subscription.close()
    result: dict[str, Any] = {
        "tokens": len(delays), "p50_delay_ms": percentile(delays, 50) * 1000,
        "p99_delay_ms": percentile(delays, 99) * 1000, "engine_loop_lag_p99_ms": percentile(lags, 99) * 1000,
        "engine_cpu_pct": 100 * cpu / wall, "wall_s": wall,
    }
    if client is not None:
        result.update(await finish_command_client(client))
    return result


async def start_command_client(home: Path, asker: str) -> subprocess.Popen[str]:
    """`command_client` in its own process, connected and timing commands once this returns."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(_HERE.parent), os.environ.get("PYTHONPATH", "")])}
    client = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), str(home), asker],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
    assert client.stdout is not None
    ready = await asyncio.to_thread(client.stdout.readline)
    assert ready.strip() == "ready", ready
    return client


async def finish_command_client(client: subprocess.Popen[str]) -> dict[str, float]:
    """Stop the client; its round trips: `command_rtt_p99_ms` over all, and per verb."""
    out, _ = await asyncio.to_thread(client.communicate, "stop\n")
    rtts = json.loads(out.strip().splitlines()[-1])
    every = [t for times in rtts.values() for t in times]
    figures = {"command_rtt_p99_ms": percentile(every, 99) * 1000, "commands": len(every)}
    for verb, times in rtts.items():
        figures[f"{verb}_rtt_p99_ms"] = percentile(times, 99) * 1000
        figures[f"{verb}_count"] = len(times)
    return figures


async def command_client(home: str, asker: str) -> None:
    """Time `ls`, `send` and `approve` over the socket until a line arrives on stdin."""
    import threading

    from cockpit.client.remote import RemoteClient, socket_opener
    from cockpit.server.paths import ServerPaths

    client = RemoteClient(socket_opener(ServerPaths(Path(home))), tail=0)
    await client.connect()
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    threading.Thread(target=lambda: (sys.stdin.readline(), loop.call_soon_threadsafe(stop.set)), daemon=True).start()
    print("ready", flush=True)
    rtts: dict[str, list[float]] = {"ls": [], "send": [], "approve": []}

    async def timed(verb: str, command: dict[str, Any]) -> Any:
        started = time.perf_counter()
        result = await client.execute(command)
        rtts[verb].append(time.perf_counter() - started)
        return result

    while not stop.is_set():
        rows = await timed("ls", {"cmd": "ls"})
        if asker:
            await timed("send", {"cmd": "send", "session": asker, "text": "keep going"})
            if any(row["id"] == asker and row["state"] == "waiting" for row in rows):
                await timed("approve", {"cmd": "approve", "session": asker})
        with_timeout = asyncio.ensure_future(stop.wait())
        await asyncio.wait({with_timeout}, timeout=COMMAND_PERIOD_S)
        with_timeout.cancel()
    await client.close()
    print(json.dumps(rtts), flush=True)


if __name__ == "__main__":
    asyncio.run(command_client(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else ""))
