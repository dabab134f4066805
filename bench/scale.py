"""Supervision at scale: 100 sessions, 100 agents streaming, commands still instant.

One process hosts the engine and the socket server (as `cockpit server` does) over a home of
100 sessions; their agents run in worker processes and stream 20 tokens/s each for 30 s from
the scripted model (its own process), every word the time it was sent (`bench/fleet.py`). A
client in another process meanwhile times `ls`, `send` and `approve` over the socket, 20 rounds
a second (the approvals are of an extra session whose agent always asks). Afterwards the screen
is started on that home (`cockpit --local`) and timed to its first frame.

Figures: `p99_delay_ms` (model send → subscriber in the engine), `command_rtt_p99_ms` (≤ 50),
`engine_loop_lag_p99_ms`, `engine_cpu_pct`, `total_rss_mb` (peak resident memory of the engine
and every worker, summed; ≤ 1,200), `first_frame_s` with the 100 sessions restored (≤ 1).

Usage: python bench/scale.py [--quick] [--json] [--dir SCRATCH]
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from pathlib import Path

from _common import Report, parse_args
from fleet import peak_rss_mb, serving, stream

import ui  # noqa: E402  (the UI bench's home maker and start-up probe)

SESSIONS = 100
RATE = 20.0


async def streaming_round(home: Path, repo: Path, seconds: float) -> dict[str, float]:
    async with serving(home, repo, RATE, seconds) as (engine, pool, asker):
        sessions = sorted((s for s in engine.sessions.values() if s.id != asker.id), key=lambda s: s.number)
        await stream(engine, sessions[:4])  # the workers import litellm: not measured
        figures = await stream(engine, sessions, command_home=home, asker=asker.id)
        figures["total_rss_mb"] = peak_rss_mb([os.getpid(), *(w.pid for w in pool.workers if w.pid)])
        figures["workers"] = len(pool.workers)
        await engine.remove(asker.id)  # the screen's config has no `asker` agent
        return figures


async def main() -> None:
    args = parse_args(__doc__.splitlines()[0])
    seconds = 8.0 if args.quick else 30.0
    report = Report("scale", args.quick)
    with tempfile.TemporaryDirectory(prefix="cockpit-bench-scale-", dir=args.dir) as scratch:
        print(f"scale: {SESSIONS} sessions × {RATE:.0f} tokens/s × {seconds:.0f} s", flush=True)
        home, repo, env = await asyncio.to_thread(ui.make_home, Path(scratch), SESSIONS)
        figures = await streaming_round(home, repo, seconds)
        startup = await asyncio.to_thread(ui._child, ["startup", str(repo)], env)
    report.add("sessions", SESSIONS)
    report.add("workers", figures["workers"], "agent worker processes")
    report.add("tokens", figures["tokens"], "tokens delivered")
    report.add("p50_delay_ms", figures["p50_delay_ms"], "p50 send→subscriber delay", "ms")
    report.add("p99_delay_ms", figures["p99_delay_ms"], "p99 send→subscriber delay", "ms")
    report.add("engine_loop_lag_p99_ms", figures["engine_loop_lag_p99_ms"], "engine event-loop lag p99", "ms")
    report.add("engine_cpu_pct", figures["engine_cpu_pct"], "engine process CPU", "% of one core")
    for verb in ("command", "ls", "send", "approve"):
        report.add(f"{verb}_rtt_p99_ms", figures[f"{verb}_rtt_p99_ms"], f"{verb} round trip p99 over the socket", "ms")
    report.add("commands", figures["commands"], "commands timed")
    report.add("total_rss_mb", figures["total_rss_mb"], "peak memory, engine + workers", "MB")
    if startup.get("first_frame_s") is None:
        raise SystemExit(f"the screen never showed its first frame: {startup}")
    report.add("first_frame_s", startup["first_frame_s"], f"screen start-up to first frame, {SESSIONS} sessions", "s")
    report.target("command_rtt_p99_ms", lambda v: v <= 50, "≤ 50 ms")
    report.target("total_rss_mb", lambda v: v <= 1200, "≤ 1,200 MB")
    report.target("first_frame_s", lambda v: v is not None and v <= 1.0, "≤ 1 s")
    report.finish(args.json)


if __name__ == "__main__":
    asyncio.run(main())
