"""Experiment loops: the cockpit's own cost per iteration, and many agents for minutes without a stall.

Scripted agents (the `cockpit.sim` server in its own process, so its CPU is not counted) rewrite
params.py of the tiny-fit example with one idea per iteration (some better, some worse, one in
ten crashing); everything else is the real loop: real worktrees, commits, runs of `python fit.py`,
resets, results.tsv and state.json.

- overhead: `--agents` agents × `--runs` iterations, `--rounds` times. An iteration's overhead is
  its wall time minus the agent's turn and minus the run (waiting for a run slot included in the
  run): the commit, the status check, the metric parse, the reset and clean, the row, the state
  file and the next instructions. `overhead_ms` is the median of the rounds' medians.
- soak: `--soak-agents` agents for `--minutes` minutes. A stall is an iteration whose overhead
  exceeded `--stall-s`, or an agent seen in the cockpit's hands (neither its agent's turn nor its
  run) for longer than that at any sample.

Figures: overhead_ms, overhead_p90_ms, overhead_iterations, soak_agents, soak_minutes,
soak_iterations, soak_overhead_ms, soak_max_overhead_ms, stalls. Targets: overhead_ms ≤ 100,
stalls = 0.

Usage: python bench/experiment.py [--quick] [--json] [--dir SCRATCH] [--agents N] [--runs N]
       [--rounds N] [--soak-agents N] [--minutes M] [--stall-s S]
"""

from __future__ import annotations

import asyncio
import random
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import Report, parse_args, start_sim

from cockpit.agents.factory import make_agent
from cockpit.agents.llm_client import litellm
from cockpit.config import Config, ModelConfig
from cockpit.core import events as ev
from cockpit.core.engine import Engine
from cockpit.demo.experiment import make_example_repo
from cockpit.experiment.loop import BETWEEN
from cockpit.features import install

PARAMS = '"""The knobs of the fit."""\n\nLEARNING_RATE = {lr}\nSTEPS = {steps}\nMOMENTUM = {momentum}\nDEGREE = {degree}\nWEIGHT_DECAY = 0.0\n'


def extend(parser: Any) -> None:
    parser.add_argument("--agents", type=int, default=None, help="agents in the overhead phase (default 2)")
    parser.add_argument("--runs", type=int, default=None, help="iterations per agent per round (default 20; quick 8)")
    parser.add_argument("--rounds", type=int, default=None, help="overhead rounds (default 3)")
    parser.add_argument("--soak-agents", type=int, default=None, help="agents in the soak (default 16; quick 4)")
    parser.add_argument("--minutes", type=float, default=None, help="soak length (default 5; quick 0.3)")
    parser.add_argument("--stall-s", type=float, default=5.0, help="longer in the cockpit's hands is a stall")


def ideas(count: int, seed: int = 1) -> dict[str, Any]:
    """A scenario of `count` ideas: write params.py, then end the turn with a summary."""
    rng = random.Random(seed)
    steps = []
    for number in range(count):
        values = {"lr": rng.choice([0.01, 0.05, 0.1, 0.2, 0.3]), "steps": rng.choice([100, 150, 200]),
                  "momentum": rng.choice([0.0, 0.5, 0.8, 0.9]), "degree": rng.choice([3, 4, 5])}
        if number % 10 == 9:
            values["steps"] = '"many"'  # a crash
        summary = ", ".join(f"{k} {v}" for k, v in values.items())
        steps += [
            {"when": {"last_role": "user"}, "text": "Trying another setting.",
             "tool_calls": [{"name": "write_file", "arguments": {"path": "params.py", "content": PARAMS.format(**values)}}]},
            {"when": {"last_role": "tool"}, "text": f"SUMMARY: {summary}"},
        ]
    return {"name": "bench-ideas", "final": "SUMMARY: nothing", "steps": steps}


def start_server(folder: Path, count: int) -> tuple[subprocess.Popen[str], str]:
    return start_sim(folder, ideas(count))


async def run_experiment(engine: Engine, repo: Path, name: str, agents: int, budget: dict[str, Any],
                         stall_s: float) -> tuple[list[float], float, int]:
    """(overheads in ms, the longest time an agent sat in the cockpit's hands, stalls seen)."""
    subscription = engine.subscribe(accept=lambda e: e.kind == ev.EXPERIMENT_RUN and e.data.get("experiment") == name)
    experiment = await engine.experiments.start(repo, overrides={"name": name, "agents": agents, **budget})
    since: dict[str, float] = {}
    longest = 0.0
    while not experiment.task.done():
        now = time.monotonic()
        for session_id, loop in experiment.loops.items():
            if loop.phase == BETWEEN:
                longest = max(longest, now - since.setdefault(session_id, now))
            else:
                since.pop(session_id, None)
        await asyncio.sleep(0.25)
    status = engine.experiments.status(name)
    if status["status"] != "finished":
        raise SystemExit(f"experiment {name} {status['status']}: {status['detail']}")
    overheads = [e.data["overhead_ms"] for e in subscription.get_nowait() if "overhead_ms" in e.data]
    subscription.close()
    stalls = sum(o > stall_s * 1000 for o in overheads) + (longest > stall_s)
    return overheads, longest, stalls


async def main() -> None:
    args = parse_args(__doc__.splitlines()[0], extend)
    quick = args.quick
    agents = args.agents or 2
    runs = args.runs or (8 if quick else 20)
    rounds = args.rounds or 3
    soak_agents = args.soak_agents or (4 if quick else 16)
    minutes = args.minutes if args.minutes is not None else (0.3 if quick else 5.0)
    report = Report("experiment", quick)
    litellm()  # its import takes seconds: keep it out of every measured window
    with tempfile.TemporaryDirectory(dir=args.dir) as scratch:
        folder = Path(scratch)
        proc, url = start_server(folder, 2000)
        try:
            config = Config()
            config.models["default"] = ModelConfig(model="openai/bench", api_base=url, retry_base_s=0.2)
            install()
            engine = await Engine.open(folder / "home", config, agent_factory=make_agent)
            repo = make_example_repo(folder / "tiny-fit")
            try:
                medians, everything = [], []
                for number in range(rounds):
                    overheads, _, _ = await run_experiment(engine, repo, f"overhead-{number}", agents,
                                                           {"budget.runs": runs, "budget.minutes": 0}, args.stall_s)
                    medians.append(statistics.median(overheads))
                    everything += overheads
                    print(f"  round {number + 1}: {len(overheads)} iterations, median overhead {medians[-1]:.1f} ms",
                          flush=True)
                report.add("overhead_ms", statistics.median(medians), "overhead per iteration (median of rounds)", "ms")
                report.add("overhead_p90_ms", statistics.quantiles(everything, n=10)[-1], "overhead p90", "ms")
                report.add("overhead_iterations", len(everything), "iterations measured")
                print(f"soak: {soak_agents} agents for {minutes:g} minutes", flush=True)
                overheads, longest, stalls = await run_experiment(
                    engine, repo, "soak", soak_agents, {"budget.minutes": minutes, "budget.runs": 0}, args.stall_s)
            finally:
                await engine.close()
        finally:
            proc.terminate()
            proc.wait()
    report.add("soak_agents", soak_agents)
    report.add("soak_minutes", minutes)
    report.add("soak_iterations", len(overheads), "soak: iterations")
    report.add("soak_overhead_ms", statistics.median(overheads), "soak: median overhead", "ms")
    report.add("soak_max_overhead_ms", max(overheads), "soak: longest overhead", "ms")
    report.add("soak_longest_between_s", longest, "soak: longest sampled stay in the cockpit's hands", "s")
    report.add("stalls", stalls, f"soak: stalls (over {args.stall_s:g} s)")
    report.target("overhead_ms", lambda v: v <= 100, "≤ 100 ms")
    report.target("stalls", lambda v: v == 0, "0")
    report.finish(args.json)


if __name__ == "__main__":
    asyncio.run(main())
