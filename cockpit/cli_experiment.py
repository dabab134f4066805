"""`cockpit experiment start|resume|status|stop|note|demo`.

Like every verb, these talk to this home's cockpit server (started in the background when none
runs), to `--remote HOST`, or with `--local` to an engine in this process. In the server an
experiment outlives the command that started it: `start` launches it and returns, `--follow`
prints a line per iteration until it ends (Ctrl-C stops following, not the experiment), and the
screen shows it on the leaderboard (`X`). With `--local` the experiment lives as long as this
process: `start` opens the screen on its leaderboard, `--follow` prints lines instead, and
Ctrl-C or SIGTERM stops it cleanly. Nobody can answer an approval request in a `--local
--follow` run, so those are denied with a reason the agent reads.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TextIO

from cockpit.config import load_config
from cockpit.core import events as ev
from cockpit.errors import CockpitError

#: (flag, spec key, type, help) — the definition's keys as flags; they override the file.
DEFINITION_FLAGS: tuple[tuple[str, str, type, str], ...] = (
    ("--name", "name", str, "experiment name (default: the file's folder)"),
    ("--program", "program", str, "the instructions file (default: program.md)"),
    ("--run", "run", str, "the command that runs one experiment"),
    ("--timeout", "timeout", float, "seconds per run before its process group is killed"),
    ("--metric", "metric", str, "regex reading the metric from the run's output (group 1 or 'metric')"),
    ("--direction", "direction", str, "min or max"),
    ("--files", "files", str, "a file or glob agents may change (repeatable)"),
    ("--agents", "agents", int, "how many agents"),
    ("--agent", "agent", str, "agent from config (default: the default agent)"),
    ("--model", "model", str, "model from config"),
    ("--base", "base", str, "base ref (default: the current branch)"),
    ("--sharing", "sharing", str, "none or reset-to-best"),
    ("--log-tail", "log_tail", int, "lines of a crashed run's log shown to its agent"),
    ("--concurrent-runs", "concurrent_runs", int, "runs at once across agents (0 = no limit)"),
    ("--runs", "budget.runs", int, "budget: runs per agent"),
    ("--minutes", "budget.minutes", float, "budget: wall-time minutes"),
    ("--tokens", "budget.tokens", int, "budget: tokens, all agents"),
    ("--cost-usd", "budget.cost_usd", float, "budget: dollars, all agents"),
)
HEADLESS_DENIAL = "this experiment runs without a screen and nobody can approve; the cockpit runs the experiment itself"
ENDED = ("finished", "stopped", "failed")
_POLL_S = 0.2
_STATUS_EVERY_S = 2.0  # also ask for the status, in case an event was lost


def add_parser(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    experiment = sub.add_parser("experiment", parents=parents, help="experiment loops: agents improve a metric unattended")
    verbs = experiment.add_subparsers(dest="verb", metavar="VERB", required=True)

    start = verbs.add_parser("start", parents=parents, help="start an experiment (experiment.toml, or flags)")
    start.add_argument("file", nargs="?", default=None, help="the experiment TOML (default: ./experiment.toml)")
    _definition_flags(start)
    _follow_flags(start)

    resume = verbs.add_parser("resume", parents=parents, help="continue a stopped experiment (the count carries on)")
    resume.add_argument("name")
    _definition_flags(resume)
    _follow_flags(resume)

    status = verbs.add_parser("status", parents=parents, help="where an experiment (or every one) stands")
    status.add_argument("name", nargs="?", default=None)
    status.add_argument("--json", action="store_true", help="print JSON")

    stop = verbs.add_parser("stop", parents=parents, help="stop a running experiment")
    stop.add_argument("name")
    stop.add_argument("--json", action="store_true", help="print the status as JSON")

    note = verbs.add_parser("note", parents=parents, help="a note for the agents (at once if mid-turn, else next turn)")
    note.add_argument("name")
    note.add_argument("text")
    note.add_argument("--agent", action="append", default=[], help="only this agent: @3, a name or an id (repeatable)")

    demo = verbs.add_parser("demo", parents=parents, help="the tiny-fit example with scripted agents (no API key)")
    demo.add_argument("--agents", type=int, default=3, help="how many agents (default: 3)")
    demo.add_argument("--runs", type=int, default=8, help="runs per agent (default: 8)")
    _follow_flags(demo)


def _definition_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("definition (overrides the file)")
    for flag, key, kind, text in DEFINITION_FLAGS:
        extra = {"action": "append"} if key == "files" else {}
        group.add_argument(flag, dest="def:" + key, metavar=key.rpartition(".")[2].upper(), type=kind,
                           default=argparse.SUPPRESS, help=text, **extra)


def _follow_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--follow", action="store_true", help="print a line per iteration until the experiment ends")
    parser.add_argument("--json", action="store_true", help="print the (final) status as JSON")


def overrides_of(args: argparse.Namespace) -> dict[str, Any]:
    return {key.removeprefix("def:"): value for key, value in vars(args).items() if key.startswith("def:")}


def run(args: argparse.Namespace) -> int:
    verb: Callable[[argparse.Namespace], int] = {
        "start": _start, "resume": _resume, "status": _status, "stop": _stop, "note": _note, "demo": _demo,
    }[args.verb]
    return verb(args)


# -- start / resume ------------------------------------------------------------------------------


def _start(args: argparse.Namespace) -> int:
    from cockpit.client.cli import repo_argument

    file = str(Path(args.file).absolute()) if args.file and not args.remote else args.file
    return _launch(args, {"cmd": "experiment_start", "repo": repo_argument(args), "file": file,
                          "overrides": overrides_of(args)})


def _resume(args: argparse.Namespace) -> int:
    return _launch(args, {"cmd": "experiment_resume", "name": args.name, "overrides": overrides_of(args)})


def _launch(args: argparse.Namespace, command: dict[str, Any]) -> int:
    if not args.local:
        return asyncio.run(_in_server(args, command))
    config = load_config(Path(args.repo))
    if args.follow:
        return asyncio.run(_local_follow(config, command, args.json))
    from cockpit.ui.run import check_terminal, run_cockpit

    check_terminal()

    async def prepare(engine: Any) -> dict[str, Any]:
        name = (await engine.execute(command))["name"]
        return {"experiment": name, "label": f"experiment {name}"}

    asyncio.run(run_cockpit(config, repo=args.repo, prepare=prepare))
    return 0


async def _in_server(args: argparse.Namespace, command: dict[str, Any]) -> int:
    from cockpit.client.cli import connected

    async with connected(args, attach=args.follow, tail=0) as client:
        feed = client.subscribe()  # before the start: the baseline's row is among the events
        status = await client.execute(command)
        if args.follow:
            if not args.json:
                print(f"following experiment {status['name']} (Ctrl-C stops following; it keeps running "
                      f"in the cockpit server)", flush=True)
            return await follow(client, feed, status["name"], as_json=args.json)
    if args.json:
        print(json.dumps(status, indent=2))
    else:
        print(f"experiment {status['name']} started: {len(status['agents'])} agents; follow it with "
              f"`cockpit experiment status {status['name']}` or on the screen (X)")
    return 0


async def _local_follow(config: Any, command: dict[str, Any], as_json: bool) -> int:
    from cockpit.client.local import local_engine
    from cockpit.workers.pool import WorkerPool

    async with local_engine(config, agent_factory=WorkerPool()) as engine:
        async def begin() -> str:
            return (await engine.execute(command))["name"]

        return await follow_here(engine, begin, as_json)


async def follow_here(engine: Any, begin: Callable[[], Awaitable[str]], as_json: bool,
                      out: TextIO | None = None) -> int:
    """Start an experiment on an engine of this process (`begin` returns its name) and follow it
    to its end; Ctrl-C and SIGTERM stop it cleanly, approvals are denied (nobody can answer)."""
    feed = engine.subscribe()  # before the start: the baseline's row is among the events
    name = await begin()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, lambda: asyncio.ensure_future(engine.experiments.stop(name, "stopped by a signal")))
    try:
        return await follow(engine, feed, name, as_json=as_json, deny_approvals=True, out=out)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


async def follow(client: Any, feed: Any, name: str, *, as_json: bool, deny_approvals: bool = False,
                 out: TextIO | None = None) -> int:
    """Print the experiment's iterations (from `feed`) until it ends; then its status."""
    out = out or sys.stdout
    status = await client.execute({"cmd": "experiment_status", "name": name})
    labels = {a["session"]: f"@{a['number']} {a['name']}" for a in status["agents"]}
    asked = time.monotonic()
    while status["status"] not in ENDED:
        for event in feed.get_nowait():
            if event.kind == ev.APPROVAL_REQUEST and deny_approvals and event.session in labels:
                await client.execute({"cmd": "deny", "session": event.session, "id": event.data["id"],
                                      "reason": HEADLESS_DENIAL})
                line = f"[{labels[event.session]}] denied {event.data.get('tool')}: {event.data.get('title')}"
            elif event.data.get("experiment") != name:
                continue
            elif event.kind == ev.EXPERIMENT_RUN:
                line = row_line(event.data["row"], labels)
            else:
                status["status"] = event.data["status"]
                line = f"experiment {name} {event.data['status']}" + (
                    f": {event.data['detail']}" if event.data.get("detail") else "")
            if not as_json:
                print(line, file=out, flush=True)
        if time.monotonic() - asked > _STATUS_EVERY_S:
            status, asked = await client.execute({"cmd": "experiment_status", "name": name}), time.monotonic()
        await asyncio.sleep(_POLL_S)
    status = await client.execute({"cmd": "experiment_status", "name": name})
    print(json.dumps(status, indent=2) if as_json else summary_line(status), file=out, flush=True)
    if status["status"] == "failed":
        raise CockpitError(status["detail"])
    return 0


def row_line(row: dict[str, Any], labels: dict[str, str]) -> str:
    metric = "-" if row["metric"] is None else f"{row['metric']:.6g}"
    return f"[{labels.get(row['agent'], row['agent'])}] {row['status']:<7} {metric:>12}  {row['description']}"


# -- status / stop / note ------------------------------------------------------------------------


def summary_line(status: dict[str, Any]) -> str:
    best = status["best"]
    where = ""
    if best:
        who = next((f"@{a['number']} {a['name']}" for a in status["agents"] if a["session"] == best["agent"]),
                   best["agent"])
        where = f"; best {best['metric']:.6g} by {who} ({best['commit']})"
    detail = f" ({status['detail']})" if status["detail"] else ""
    return f"{status['name']} {status['status']}{detail}{where}; {status['rows']} rows"


def agent_lines(status: dict[str, Any]) -> list[str]:
    lines = []
    for agent in status["agents"]:
        best = "-" if agent["best"] is None else f"{agent['best']:.6g}"
        label = f"@{agent['number']} {agent['name']}"
        lines.append(f"  {label:<24} best {best:>12}  runs {agent['runs']:>4}  keep {agent['keep_rate']:>4.0%}  "
                     f"crashes {agent['crashes']:>3}  {agent['done'] or agent['phase']}")
    return lines


def _command(args: argparse.Namespace, command: dict[str, Any]) -> Any:
    from cockpit.client.cli import connected

    async def call() -> Any:
        async with connected(args) as client:
            return await client.execute(command)

    return asyncio.run(call())


def _status(args: argparse.Namespace) -> int:
    if args.name:
        statuses = [_command(args, {"cmd": "experiment_status", "name": args.name})]
    else:
        statuses = _command(args, {"cmd": "experiment_list"})
    if args.json:
        print(json.dumps(statuses[0] if args.name else statuses, indent=2))
        return 0
    if not statuses:
        print("no experiments (start one with `cockpit experiment start`)")
    for status in statuses:
        print(summary_line(status))
        if args.name:
            print("\n".join(agent_lines(status)))
    return 0


def _stop(args: argparse.Namespace) -> int:
    status = _command(args, {"cmd": "experiment_stop", "name": args.name})
    print(json.dumps(status, indent=2) if args.json else summary_line(status))
    return 0


def _note(args: argparse.Namespace) -> int:
    sent = _command(args, {"cmd": "experiment_note", "name": args.name, "text": args.text, "agents": args.agent})
    print(f"note for {len(sent)} agent{'s' if len(sent) != 1 else ''} of {args.name}")
    return 0


# -- demo ----------------------------------------------------------------------------------------


def _demo(args: argparse.Namespace) -> int:
    if args.follow:
        return asyncio.run(_demo_following(args.agents, args.runs, args.json))
    asyncio.run(_demo_screen(args.agents, args.runs))
    return 0


async def _demo_following(agents: int, runs: int, as_json: bool) -> int:
    """The demo without a screen: a line per iteration until the budget is spent."""
    from cockpit.demo.experiment import begin_demo, open_demo

    engine, server, repo = await open_demo()
    try:
        return await follow_here(engine, lambda: begin_demo(engine, server, repo, agents, runs), as_json)
    finally:
        await engine.close()
        await server.stop()


async def _demo_screen(agents: int, runs: int) -> None:
    from cockpit.demo.experiment import DEMO_LABEL, begin_demo, open_demo
    from cockpit.ui.app import CockpitApp

    engine, server, repo = await open_demo()
    try:
        name = await begin_demo(engine, server, repo, agents, runs)
        await CockpitApp(engine, engine.config, label=DEMO_LABEL, repo=str(repo), experiment=name).run_async()
    finally:
        await engine.close()
        await server.stop()
