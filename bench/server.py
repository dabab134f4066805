"""The cockpit server: event delivery over its socket against in-process, and attach time.

Delivery: one process hosts the engine and the socket server, as `cockpit server` does, with
64 built-in agents streaming at 30 tokens/s from the scripted model (its own process) through
agent worker processes. In the
same run an in-process subscriber and a client in another process attached over the socket
each note, for every `text.delta`, the time from the engine emitting it to them holding it.
- `delivery_p99_ratio`: p99 delay over the socket ÷ p99 delay in-process. Target ≤ 2.
- `server_cpu_pct`: CPU of the server process while streaming with the client attached, in % of
  one core (store and socket included; the agents run in worker processes); `server_cpu_pct_no_client`
  is the same run with nobody attached, so the difference is what serving the socket costs.
- `command_rtt_p99_ms`: meanwhile a third client (`bench/fleet.py`) sends `ls`, `send` and
  `approve` (of a session that always asks) over the socket 20 times a second; the p99 of
  their round trips. Target ≤ 50 ms. Per verb: `ls_rtt_p99_ms`, `send_rtt_p99_ms`, `approve_rtt_p99_ms`.

Attach: a store of 50 sessions × 2,000 events served by an idle engine; a client in another
process connects, says hello and attaches (snapshot + each session's last 400 events, what the
screen loads) and takes every pane's scrollback.
- `attach_s`: from connect to having all of it. Target ≤ 1 s. `attach_full_s`: the same with
  all 2,000 events per session.

Hostile clients (bench/hostile.py, the attacks of issue #13.4) against the real server
process, on a store whose one session holds a 60 MB transcript and one 60 MB event stored
before events were capped: 8 clients send 200 MB request lines at once, a client asks for that
transcript 20 times without reading, and 20 attaches take that session's scrollback.
- `max_rss_mb`: the server's peak resident memory (VmHWM) over all of it. Target ≤ 300 MB.
  `idle_rss_mb`: the same before the attacks.

Each figure is the median of several rounds.
Usage: python bench/server.py [--quick] [--json] [--dir D] [--hostile (only the hostile clients)]
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from _common import Report, median, parse_args, percentile

from cockpit.core import events as ev

import hostile  # noqa: E402  (after _common, which makes `cockpit` importable)
from fleet import finish_command_client, git_repo, serving, start_command_client

_HERE = Path(__file__).resolve().parent
ATTACH_SESSIONS = 50
ATTACH_EVENTS = 2_000
SCREEN_TAIL = 400  # what the screen asks each pane for (ui/app.py TRANSCRIPT_TAIL_EVENTS)


def child(*args: str) -> subprocess.Popen[str]:
    """This script again, as a client in its own process."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(_HERE.parent), os.environ.get("PYTHONPATH", "")])}
    return subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "client", *args],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)


# -- delivery ---------------------------------------------------------------------------------------


async def delivery_rounds(folder: Path, agents: int, rate: float, seconds: float,
                          rounds: int) -> list[dict[str, float]]:
    from cockpit.server.paths import ServerPaths

    paths = ServerPaths(folder / "home")
    repo = git_repo(folder / "repo")
    async with serving(paths.home, repo, rate, seconds) as (engine, _, asker):
        sessions = await engine.create_sessions(repo, name="agent", count=agents)
        await stream_round(engine, sessions[:4], None)  # the workers import litellm: not measured
        results = []
        for index in range(rounds):
            with_client = await stream_round(engine, sessions, paths, asker.id)
            alone = await stream_round(engine, sessions, None)
            results.append({**with_client, "cpu_pct_no_client": alone["cpu_pct"]})
            print(f"  round {index + 1}: p99 in-process {with_client['inproc_p99_ms']:.1f} ms, socket "
                  f"{with_client['socket_p99_ms']:.1f} ms; CPU {with_client['cpu_pct']:.0f} % "
                  f"(no client {alone['cpu_pct']:.0f} %); command p99 {with_client['command_rtt_p99_ms']:.1f} ms "
                  f"({with_client['approve_count']} approvals)", flush=True)
        return results


async def stream_round(engine: Any, sessions: list[Any], paths: Any, asker: str = "") -> dict[str, float]:
    """Every agent streams one answer; delays as seen in-process and (with `paths`) over the socket,
    where a third client meanwhile times commands (ls, send, approve of `asker`)."""
    client = commands = None
    if paths is not None:
        commands = await start_command_client(paths.home, asker)
        client = child("deliver", str(paths.home))
        assert client.stdout is not None
        ready = await asyncio.to_thread(client.stdout.readline)  # it says hello to this very loop
        assert ready.strip() == "ready", ready
    subscription = engine.subscribe(maxsize=1_000_000)
    delays: list[float] = []

    async def note() -> None:
        while True:
            event = await subscription.get()
            if event.kind == ev.TEXT_DELTA:
                delays.append(time.time() - event.ts)

    noting = asyncio.create_task(note())
    cpu, wall = time.process_time(), time.perf_counter()
    for session in sessions:
        await engine.send(session.id, "stream please")
    while not delays or any(s.state.value not in ("idle", "error") for s in sessions):
        await asyncio.sleep(0.05)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    noting.cancel()
    subscription.close()
    result = {"inproc_p99_ms": percentile(delays, 99) * 1000, "cpu_pct": 100 * cpu / wall, "tokens": len(delays)}
    if commands is not None:
        result.update(await finish_command_client(commands))
    if client is not None:
        await asyncio.sleep(0.5)  # the last events on their way
        out, _ = await asyncio.to_thread(client.communicate, "stop\n")
        far = json.loads(out.strip().splitlines()[-1])["delays"]
        result.update(socket_p99_ms=percentile(far, 99) * 1000, socket_tokens=len(far))
    return result


# -- attach -----------------------------------------------------------------------------------------


async def attach_rounds(folder: Path, rounds: int) -> dict[str, Any]:
    from store import make_events  # the store bench's transcript mix

    from cockpit.config import Config
    from cockpit.core.engine import Engine
    from cockpit.core.model import Session
    from cockpit.core.states import State
    from cockpit.core.store import Store
    from cockpit.server.listener import CockpitServer
    from cockpit.server.paths import ServerPaths

    paths = ServerPaths(folder / "attach-home")
    repo = git_repo(folder / "attach-repo")
    store = await Store.open(paths.home / "cockpit.db")
    added = await store.add_repo(str(repo), "repo")
    for i in range(ATTACH_SESSIONS):
        await store.save_session(Session(
            id=f"s{i:04d}", number=i + 1, name=f"agent-{i + 1}", slug=f"agent-{i + 1}", repo_id=added.id,
            branch=f"cockpit/agent-{i + 1}", base_ref="main", base_commit="0" * 40,
            worktree=str(folder / "wt" / f"agent-{i + 1}"), state=State.IDLE))
    await store.append_many(make_events(ATTACH_SESSIONS * ATTACH_EVENTS, ATTACH_SESSIONS))
    await store.close()
    engine = await Engine.open(paths.home, Config(), agent_factory=None)
    server = CockpitServer(engine, paths)
    await server.start()
    try:
        figures = {}
        for name, tail in (("attach", SCREEN_TAIL), ("attach_full", ATTACH_EVENTS)):
            measuring = child("attach", str(paths.home), str(tail), str(rounds))
            out, _ = await asyncio.to_thread(measuring.communicate)
            figures[name] = json.loads(out.strip().splitlines()[-1])
        return figures
    finally:
        await server.close()
        await engine.close()


# -- hostile clients --------------------------------------------------------------------------------


def hostile_round(folder: Path, line_mb: int) -> dict[str, float]:
    """The attacks against a real `cockpit server` process; its memory before and at peak."""
    print(f"hostile clients: 8 × {line_mb} MB lines, 20 unread transcripts of 60 MB, 20 attaches past a "
          "60 MB event", flush=True)
    from cockpit.server.daemon import ensure_server, stop_server
    from cockpit.server.lock import lock_holder
    from cockpit.server.paths import ServerPaths

    os.environ["XDG_CONFIG_HOME"] = str(folder / "xdg")  # the bench's server reads no user config
    paths = ServerPaths(folder / "hostile-home")
    repo = git_repo(folder / "hostile-repo")
    hostile.seed_store(paths.home, repo, transcript_mb=60, huge_row_mb=60)
    ensure_server(paths, repo)
    try:
        holder = lock_holder(paths)
        assert holder is not None
        idle = hostile.rss_mb(holder.pid, "VmRSS")
        answers = hostile.huge_lines(paths, clients=8, size_mb=line_mb)
        assert all("error" in a[0] and "result" in a[1] for a in answers), answers
        hog, ids = hostile.never_reads(paths, asks=20)
        pages = [hog.answer(i)["result"] for i in ids]
        hog.close()
        sizes = hostile.reattach(paths, times=20)
        peak = hostile.rss_mb(holder.pid)
        print(f"  idle {idle:.0f} MB; peak {peak:.0f} MB after 8 × {line_mb} MB lines, {len(pages)} unread "
              f"transcripts, {len(sizes)} attaches of up to {max(sizes) / hostile.MB:.1f} MB", flush=True)
        return {"idle_rss_mb": idle, "max_rss_mb": peak, "attach_answer_mb": max(sizes) / hostile.MB}
    finally:
        stop_server(paths)


# -- the client side, in its own process ------------------------------------------------------------


async def client_deliver(home: str) -> None:
    from cockpit.client.remote import RemoteClient, socket_opener
    from cockpit.server.paths import ServerPaths

    client = RemoteClient(socket_opener(ServerPaths(Path(home))), tail=0, max_queued=1_000_000)
    await client.connect()
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    threading.Thread(target=lambda: (sys.stdin.readline(), loop.call_soon_threadsafe(stop.set)), daemon=True).start()
    print("ready", flush=True)
    feed = client.subscribe()
    delays: list[float] = []
    waiting_stop = asyncio.ensure_future(stop.wait())
    while not stop.is_set():
        getting = asyncio.ensure_future(feed.get())
        done, _ = await asyncio.wait({getting, waiting_stop}, return_when=asyncio.FIRST_COMPLETED)
        if getting in done:
            event = getting.result()
            if event.kind == ev.TEXT_DELTA:
                delays.append(time.time() - event.ts)
        else:
            getting.cancel()
    await client.close()
    print(json.dumps({"delays": delays}), flush=True)


async def client_attach(home: str, tail: int, rounds: int) -> None:
    from cockpit.client.remote import RemoteClient, socket_opener
    from cockpit.server.paths import ServerPaths

    times, events = [], 0
    for _ in range(rounds):
        started = time.perf_counter()
        client = RemoteClient(socket_opener(ServerPaths(Path(home))), tail=tail)
        await client.connect()
        events = sum([len(await client.transcript(s["id"], tail=tail)) for s in client.snapshot()])
        times.append(time.perf_counter() - started)
        await client.close()
    print(json.dumps({"seconds": median(times), "events": events, "sessions": ATTACH_SESSIONS}), flush=True)


# -- report -----------------------------------------------------------------------------------------


async def main() -> None:
    args = parse_args(__doc__.splitlines()[0], lambda parser: parser.add_argument(
        "--hostile", action="store_true", help="only the hostile-client load (max_rss_mb)"))
    agents, rate = 64, 30.0
    seconds, rounds = (6.0, 1) if args.quick else (12.0, 3)
    report = Report("server", args.quick)
    if args.hostile:
        with tempfile.TemporaryDirectory(dir=args.dir) as scratch:
            report_hostile(report, await asyncio.to_thread(hostile_round, Path(scratch), 200))
        report.finish(args.json)
        return
    with tempfile.TemporaryDirectory(dir=args.dir) as scratch:
        print(f"delivery: {agents} agents × {rate:.0f} tokens/s × {seconds:.0f} s, {rounds} round(s)", flush=True)
        delivery = await delivery_rounds(Path(scratch), agents, rate, seconds, rounds)
        print(f"attach: {ATTACH_SESSIONS} sessions × {ATTACH_EVENTS} events", flush=True)
        attach = await attach_rounds(Path(scratch), 3 if args.quick else 7)
        hostile_load = await asyncio.to_thread(hostile_round, Path(scratch), 200)
    report.add("agents", agents)
    report.add("tokens_per_round", int(median([d["tokens"] for d in delivery])), "tokens streamed per round")
    report.add("socket_tokens_per_round", int(median([d["socket_tokens"] for d in delivery])),
               "of which the socket client received")
    report.add("inproc_p99_ms", median([d["inproc_p99_ms"] for d in delivery]), "in-process p99 delay", "ms")
    report.add("socket_p99_ms", median([d["socket_p99_ms"] for d in delivery]), "socket p99 delay", "ms")
    report.add("delivery_p99_ratio", median([d["socket_p99_ms"] / d["inproc_p99_ms"] for d in delivery]),
               "socket p99 / in-process p99", "×")
    report.add("server_cpu_pct", median([d["cpu_pct"] for d in delivery]), "server CPU, one client attached",
               "% of one core")
    report.add("server_cpu_pct_no_client", median([d["cpu_pct_no_client"] for d in delivery]),
               "server CPU, nobody attached", "% of one core")
    report.add("attach_s", attach["attach"]["seconds"], f"attach, last {SCREEN_TAIL} events per session", "s")
    report.add("attach_events", attach["attach"]["events"], "events in that attach")
    report.add("attach_full_s", attach["attach_full"]["seconds"],
               f"attach, all {ATTACH_EVENTS} events per session", "s")
    report_hostile(report, hostile_load)
    for verb in ("command", "ls", "send", "approve"):
        report.add(f"{verb}_rtt_p99_ms", median([d[f"{verb}_rtt_p99_ms"] for d in delivery]),
                   f"{verb} round trip p99 over the socket while streaming", "ms")
    report.add("approvals", int(median([d["approve_count"] for d in delivery])), "approvals answered per round")
    report.target("delivery_p99_ratio", lambda v: v <= 2, "≤ 2")
    report.target("command_rtt_p99_ms", lambda v: v <= 50, "≤ 50 ms")
    report.target("attach_s", lambda v: v <= 1, "≤ 1 s")
    report.finish(args.json)


def report_hostile(report: Report, figures: dict[str, float]) -> None:
    report.add("idle_rss_mb", figures["idle_rss_mb"], "server memory before the hostile clients", "MB")
    report.add("max_rss_mb", figures["max_rss_mb"], "server peak memory under the hostile clients", "MB")
    report.add("attach_answer_mb", figures["attach_answer_mb"], "largest attach answer past a 60 MB event", "MB")
    report.target("max_rss_mb", lambda v: v <= 300, "≤ 300 MB")


if __name__ == "__main__":
    if sys.argv[1:2] == ["client"]:
        mode, rest = sys.argv[2], sys.argv[3:]
        work = client_deliver(rest[0]) if mode == "deliver" else client_attach(rest[0], int(rest[1]), int(rest[2]))
        asyncio.run(work)
    else:
        asyncio.run(main())
