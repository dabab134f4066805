"""Many built-in agents streaming at once, against the same streams read raw.

The scripted model server runs in its own process (so its CPU is not counted) and streams a
long answer at a fixed rate to every conversation. Two phases in the same run:
- raw: `agents` concurrent streams read by a bare aiohttp SSE client (the floor);
- engine: `agents` real sessions (Engine + LLMAgent, whose `openai/` model with an api_base
  streams through `cockpit.agents.openai_wire`), events delivered to a subscriber, with text
  coalesced into the SQLite store as in normal use.
Each chunk carries the server's send time (`x_sent_at`); delay = delivery time − send time.
For the engine the send times are read off the chunks by a thin wrapper around
`openai_wire.stream_chat`, and matched to the delivered `text.delta` events in order.
(bench/llm_routes.py compares that route with litellm's.)

Figures: `agents`, `p99_delay_ms` (engine), `cpu_ms_per_1k_tokens` (engine process CPU per
1,000 streamed tokens), `ratio_vs_raw` (engine CPU per token ÷ raw client CPU per token),
`cores_needed` (CPU per token × offered tokens/s), plus the raw floor's figures. Targets: all
agents sustained on one core (`cores_needed` ≤ 1) with p99 delay ≤ 100 ms.

Usage: python bench/agents.py [--quick] [--json] [--dir SCRATCH]
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import tempfile
import time
from collections import defaultdict, deque
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
from _common import Report, parse_args, start_sim

from cockpit.agents import openai_wire
from cockpit.agents.factory import make_agent
from cockpit.agents.llm_client import litellm, stream_completion
from cockpit.config import Config, ModelConfig
from cockpit.core import events as ev
from cockpit.core.engine import Engine
from cockpit.sim import SESSION_HEADER, TIMESTAMP_FIELD


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))] if ordered else float("nan")


def start_server(folder: Path, rate: float, seconds: float) -> tuple[subprocess.Popen[str], str]:
    words = [f"tok{i}" for i in range(int(rate * seconds))]
    return start_sim(folder, {"name": "bench", "tokens_per_s": rate, "steps": [{"text": " ".join(words)}]})


async def raw_phase(url: str, agents: int) -> tuple[list[float], int, float, float]:
    """Bare SSE clients: (delays, tokens, cpu seconds, wall seconds)."""
    delays: list[float] = []
    tokens = 0

    async def one(http: aiohttp.ClientSession, index: int) -> None:
        nonlocal tokens
        body = {"model": "sim", "stream": True, "messages": [{"role": "user", "content": f"raw {index}"}]}
        async with http.post(f"{url}/chat/completions", json=body, headers={SESSION_HEADER: f"raw-{index}"}) as resp:
            async for raw in resp.content:
                line = raw.strip()
                if not line.startswith(b"data: {"):
                    continue
                chunk = json.loads(line[6:])
                choices = chunk.get("choices") or ()
                if choices and choices[0].get("delta", {}).get("content"):
                    delays.append(time.time() - chunk[TIMESTAMP_FIELD])
                    tokens += 1

    cpu, wall = time.process_time(), time.perf_counter()
    async with aiohttp.ClientSession() as http:
        await asyncio.gather(*(one(http, i) for i in range(agents)))
    return delays, tokens, time.process_time() - cpu, time.perf_counter() - wall


def trace_send_times() -> dict[str, deque[float]]:
    """Wrap openai_wire.stream_chat to note each content chunk's server send time, per session."""
    sent: dict[str, deque[float]] = defaultdict(deque)
    original = openai_wire.stream_chat

    async def traced(url: str, body: dict[str, Any], headers: dict[str, str]) -> AsyncIterator[dict[str, Any]]:
        queue = sent[headers[SESSION_HEADER]]
        async for chunk in original(url, body, headers):
            choices = chunk.get("choices")
            if choices and (choices[0].get("delta") or {}).get("content"):
                queue.append(chunk[TIMESTAMP_FIELD])
            yield chunk

    openai_wire.stream_chat = traced
    return sent


async def engine_phase(url: str, agents: int, folder: Path) -> tuple[list[float], int, float, float]:
    repo = folder / "repo"
    repo.mkdir()
    for args in (["init", "-q", "-b", "main"], ["-c", "user.name=b", "-c", "user.email=b@x", "commit", "-q", "--allow-empty", "-m", "i"]):
        subprocess.run(["git", *args], cwd=repo, check=True)
    config = Config()
    config.models["default"] = ModelConfig(model="openai/bench", api_base=url, max_output_tokens=100_000)
    engine = await Engine.open(folder / "home", config, agent_factory=make_agent)
    sessions = await engine.create_sessions(repo, name="agent", count=agents)
    # a first call loads what it needs once (the cost map for the usage): keep that out of the window
    await stream_completion(config.models["default"], [{"role": "user", "content": "warm up"}], [],
                            on_text=lambda _: None, on_thought=lambda _: None, headers={SESSION_HEADER: "warm-up"})
    sent = trace_send_times()
    subscription = engine.subscribe(maxsize=1_000_000)
    delays: list[float] = []
    tokens = 0
    cpu, wall = time.process_time(), time.perf_counter()
    for session in sessions:
        await engine.send(session.id, "stream please")
    idle_since = None
    while True:
        for event in subscription.get_nowait():
            if event.kind == ev.TEXT_DELTA:
                delays.append(time.time() - sent[event.session].popleft())
                tokens += 1
        busy = any(s.state.value not in ("idle", "error") for s in engine.sessions.values())
        if not busy and tokens:
            idle_since = idle_since or time.perf_counter()
            if time.perf_counter() - idle_since > 0.3:
                break
        await asyncio.sleep(0.005)
    spent = time.process_time() - cpu, time.perf_counter() - wall
    await engine.close()
    return delays, tokens, *spent


async def main() -> None:
    args = parse_args(__doc__.splitlines()[0])
    agents, rate, seconds = (16, 40, 5) if args.quick else (64, 40, 20)
    report = Report("agents", args.quick)
    litellm()  # import outside the measured windows (it takes seconds)
    with tempfile.TemporaryDirectory(dir=args.dir) as scratch:
        proc, url = start_server(Path(scratch), rate, seconds)
        try:
            print(f"{agents} agents × {rate:.0f} tokens/s × {seconds} s against {url}", flush=True)
            raw = raw_phase(url, agents)
            raw_delays, raw_tokens, raw_cpu, raw_wall = await raw
            engine_delays, tokens, cpu, wall = await engine_phase(url, agents, Path(scratch))
        finally:
            proc.terminate()
            proc.wait()
    report.add("agents", agents)
    report.add("raw_tokens", raw_tokens, "raw client: tokens read")
    report.add("raw_p99_delay_ms", percentile(raw_delays, 99) * 1000, "raw client: p99 chunk delay", "ms")
    report.add("raw_cpu_ms_per_1k_tokens", raw_cpu * 1000 / (raw_tokens / 1000), "raw client: CPU per 1k tokens", "ms")
    report.add("tokens", tokens, "engine: tokens delivered")
    report.add("p50_delay_ms", percentile(engine_delays, 50) * 1000, "engine: p50 chunk→event delay", "ms")
    report.add("p99_delay_ms", percentile(engine_delays, 99) * 1000, "engine: p99 chunk→event delay", "ms")
    report.add("cpu_ms_per_1k_tokens", cpu * 1000 / (tokens / 1000), "engine: CPU per 1k tokens", "ms")
    report.add("cpu_pct_of_core", 100 * cpu / wall, "engine: CPU while streaming", "% of one core")
    report.add("ratio_vs_raw", (cpu / tokens) / (raw_cpu / raw_tokens), "engine CPU per token / raw client's", "×")
    # What the offered load needs, from CPU per token: above 1.0 one core falls behind (and the
    # measured CPU share then only says the core was saturated).
    report.add("cores_needed", cpu / tokens * agents * rate, "engine: cores needed for the offered load")
    report.target("p99_delay_ms", lambda v: v <= 100, "≤ 100 ms")
    report.target("cores_needed", lambda v: v <= 1, "≤ 1 (sustained on one core)")
    report.finish(args.json)


if __name__ == "__main__":
    asyncio.run(main())
