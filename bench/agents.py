"""Many built-in agents streaming at once, in worker processes, against the same streams read raw.

The scripted model server runs in its own process and streams a long answer at a fixed rate to
every conversation; every word of it is the time the server sent it (`bench/fleet.py`). Two
phases in the same run:
- raw: `agents` concurrent streams read by a bare aiohttp SSE client in this process (the floor);
- engine: `agents` real sessions (Engine + worker processes running LLMAgent on openai_wire), every
  `text.delta` delivered to a subscriber in the engine's process, text coalesced into SQLite.
Delay = delivery time − the send time written in the word, end to end across the processes.

Figures: `agents`, `p99_delay_ms` (target ≤ 250), `engine_loop_lag_p99_ms` (how late a 10 ms
timer of the engine's loop fires; ≤ 20), `engine_cpu_pct` (the engine process only, % of one
core; ≤ 35), `workers_cpu_pct` (all workers), `cpu_ms_per_1k_tokens` (engine + workers) and
`ratio_vs_raw` (that ÷ the raw client's CPU per token), `batching` (messages per pipe line).

Usage: python bench/agents.py [--quick] [--json] [--dir SCRATCH] [--rounds N]
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
from pathlib import Path

import aiohttp
from _common import Report, median, parse_args, percentile
from fleet import git_repo, start_model, stream

from cockpit.config import Config, ModelConfig, WorkersConfig
from cockpit.core.engine import Engine
from cockpit.sim import SESSION_HEADER
from cockpit.workers.pool import WorkerPool


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
                choices = json.loads(line[6:]).get("choices") or ()
                text = choices[0].get("delta", {}).get("content") if choices else None
                if text:
                    delays.append(time.time() - float(text))
                    tokens += 1

    cpu, wall = time.process_time(), time.perf_counter()
    async with aiohttp.ClientSession() as http:
        await asyncio.gather(*(one(http, i) for i in range(agents)))
    return delays, tokens, time.process_time() - cpu, time.perf_counter() - wall


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process so far, from /proc (its own children not included)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100  # utime, stime in clock ticks (USER_HZ = 100)


async def engine_rounds(url: str, agents: int, folder: Path, rounds: int) -> list[dict[str, float]]:
    config = Config()
    config.models["default"] = ModelConfig(model="openai/bench", api_base=url, max_output_tokens=1_000_000)
    config.workers = WorkersConfig()
    pool = WorkerPool()
    engine = await Engine.open(folder / "home", config, agent_factory=pool)
    try:
        sessions = await engine.create_sessions(git_repo(folder / "repo"), name="agent", count=agents)
        await stream(engine, sessions[:len(pool.workers) * 2])  # the workers import litellm: not measured
        results = []
        for index in range(rounds):
            pids = [w.pid for w in pool.workers if w.pid]
            before = sum(cpu_seconds(pid) for pid in pids)
            lines = sum(w.channel.lines_in for w in pool.workers if w.channel)
            messages = sum(w.channel.messages_in for w in pool.workers if w.channel)
            figures = await stream(engine, sessions)
            figures["workers_cpu_pct"] = 100 * (sum(cpu_seconds(pid) for pid in pids) - before) / figures["wall_s"]
            lines = sum(w.channel.lines_in for w in pool.workers if w.channel) - lines
            figures["batching"] = (sum(w.channel.messages_in for w in pool.workers if w.channel) - messages) / max(lines, 1)
            results.append(figures)
            print(f"  round {index + 1}: p99 {figures['p99_delay_ms']:.0f} ms, loop lag p99 "
                  f"{figures['engine_loop_lag_p99_ms']:.1f} ms, engine CPU {figures['engine_cpu_pct']:.0f} %, "
                  f"workers {figures['workers_cpu_pct']:.0f} %", flush=True)
        return results
    finally:
        await engine.close()


async def main() -> None:
    args = parse_args(__doc__.splitlines()[0], lambda parser: parser.add_argument(
        "--rounds", type=int, default=0, help="engine rounds (default: 1 quick, 3 full)"))
    agents, rate, seconds = (16, 40, 5) if args.quick else (64, 40, 20)
    rounds = args.rounds or (1 if args.quick else 3)
    report = Report("agents", args.quick)
    with tempfile.TemporaryDirectory(dir=args.dir) as scratch:
        proc, url = start_model(Path(scratch), rate, seconds)
        try:
            print(f"{agents} agents × {rate:.0f} tokens/s × {seconds} s against {url}", flush=True)
            raw_delays, raw_tokens, raw_cpu, raw_wall = await raw_phase(url, agents)
            results = await engine_rounds(url, agents, Path(scratch), rounds)
        finally:
            proc.terminate()
            proc.wait()
    cpu_per_token = median([(r["engine_cpu_pct"] + r["workers_cpu_pct"]) / 100 * r["wall_s"] / r["tokens"]
                            for r in results])
    report.add("agents", agents)
    report.add("raw_tokens", raw_tokens, "raw client: tokens read")
    report.add("raw_p99_delay_ms", percentile(raw_delays, 99) * 1000, "raw client: p99 chunk delay", "ms")
    report.add("raw_cpu_ms_per_1k_tokens", raw_cpu * 1000 / (raw_tokens / 1000), "raw client: CPU per 1k tokens", "ms")
    for key, label, unit in (
        ("tokens", "engine: tokens delivered per round", ""),
        ("p50_delay_ms", "engine: p50 send→subscriber delay", "ms"),
        ("p99_delay_ms", "engine: p99 send→subscriber delay", "ms"),
        ("engine_loop_lag_p99_ms", "engine: event-loop lag p99 (10 ms timer)", "ms"),
        ("engine_cpu_pct", "engine process CPU while streaming", "% of one core"),
        ("workers_cpu_pct", "worker processes CPU while streaming", "% of one core"),
        ("batching", "messages per line from the workers", ""),
    ):
        report.add(key, median([r[key] for r in results]), label, unit)
    report.add("cpu_ms_per_1k_tokens", cpu_per_token * 1e6, "engine + workers: CPU per 1k tokens", "ms")
    report.add("ratio_vs_raw", cpu_per_token / (raw_cpu / raw_tokens), "engine + workers CPU per token / raw client's", "×")
    report.target("p99_delay_ms", lambda v: v <= 250, "≤ 250 ms")
    report.target("engine_loop_lag_p99_ms", lambda v: v <= 20, "≤ 20 ms")
    report.target("engine_cpu_pct", lambda v: v <= 35, "≤ 35 % of one core")
    report.finish(args.json)


if __name__ == "__main__":
    asyncio.run(main())
