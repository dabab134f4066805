"""How fast a terminal pane takes a flood of output, and how the screen answers keys meanwhile.

Figures (one process; the cockpit app runs throughout at 200×50 with a driver that encodes every
frame to ANSI and writes it to /dev/null, as bench/ui.py does):
- `bare_s`: `seq 1 300000` in a pseudo-terminal read by a bare loop that discards the bytes
  (spawned the same way, same size), until end of output and exit. Median of several runs.
- `pane_s`: the same `seq` as a terminal session: read, emulated (pyte), published as
  `term.screen` events, shown by its pane on the app's 15 Hz pump, until the engine reports the
  exit. Runs alternate with the bare ones; median of several.
- `throughput_ratio` = pane_s / bare_s. Target ≤ 2.
- `key_p50_ms` / `key_p99_ms`: key press → screen while a pane floods without pause
  (`while :; do seq 1 300000; done`): space toggles the focused pane's mark; the clock starts
  when the key is handed to the driver and stops at the first frame showing the new header.
  Target p99 ≤ 50 ms.
- `emulate_s`: the emulator alone on the same bytes in 4 KiB chunks (no pty, no events, no UI).

Usage: python bench/pty.py [--quick] [--json]
"""

from __future__ import annotations

import sys
from pathlib import Path

# This file is named like the standard `pty` module: keep its folder from shadowing it.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
import pty  # noqa: E402,F401  (the standard module, cached before our folder goes back on the path)

sys.path.append(str(_HERE))

import asyncio  # noqa: E402
import os  # noqa: E402
import random  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

from _common import Report, median, parse_args  # noqa: E402
from ui import Probe, pct, sink_driver_class  # noqa: E402

SIZE = (200, 50)
LINES = 300_000
FLOOD = ["seq", "1", str(LINES)]
PRESS_EVERY = (0.1, 0.3)


def _repo(tmp: Path) -> Path:
    repo = tmp / "repo"
    repo.mkdir()
    env = dict(os.environ, GIT_CONFIG_GLOBAL=str(tmp / "no-gitconfig"), GIT_CONFIG_NOSYSTEM="1")
    for args in (["init", "-q", "-b", "main"],
                 ["-c", "user.name=bench", "-c", "user.email=bench@cockpit.invalid", "commit", "-q",
                  "--allow-empty", "-m", "initial"]):
        subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True)
    return repo


async def bare_run(columns: int, lines: int) -> float:
    """`seq` in a pty spawned as the terminal backend spawns it, output read and dropped."""
    from cockpit.agents.terminal import _set_size, _take_terminal

    loop = asyncio.get_running_loop()
    master, slave = pty.openpty()
    _set_size(slave, columns, lines)
    os.set_blocking(master, False)
    started = time.perf_counter()
    proc = await asyncio.create_subprocess_exec(
        *FLOOD, stdin=slave, stdout=slave, stderr=slave, start_new_session=True, preexec_fn=_take_terminal)
    os.close(slave)
    ended = loop.create_future()

    def readable() -> None:
        try:
            while os.read(master, 65_536):
                pass
        except BlockingIOError:
            return
        except OSError:
            pass
        loop.remove_reader(master)
        ended.set_result(None)

    loop.add_reader(master, readable)
    await ended
    await proc.wait()
    elapsed = time.perf_counter() - started
    os.close(master)
    return elapsed


def emulate_only(columns: int, lines: int) -> float:
    from cockpit.agents.pty_screen import TermScreen

    data = "".join(f"{i}\r\n" for i in range(1, LINES + 1)).encode()
    screen = TermScreen(columns, lines)
    started = time.perf_counter()
    for at in range(0, len(data), 4096):
        screen.feed(data[at:at + 4096])
    return time.perf_counter() - started


async def _lag_probe(lags: list[float]) -> None:
    """How late a 10 ms sleep wakes up: the longest the event loop was busy at a stretch."""
    loop = asyncio.get_running_loop()
    while True:
        start = loop.time()
        await asyncio.sleep(0.01)
        lags.append(loop.time() - start - 0.01)


async def measure(repo: Path, rounds: int, seconds: float) -> dict:
    from textual import events

    from cockpit.agents.factory import make_agent
    from cockpit.config import AgentConfig, load_config
    from cockpit.core import events as ev
    from cockpit.core.engine import Engine
    from cockpit.ui.app import CockpitApp
    from cockpit.ui.terminal_pane import TerminalPane

    config = load_config()
    config.agents["flood"] = AgentConfig(kind="terminal", command=FLOOD)
    config.agents["loop"] = AgentConfig(
        kind="terminal", command=["sh", "-c", f"while :; do seq 1 {LINES}; done"])
    SinkDriver = sink_driver_class()
    probe = SinkDriver.probe = Probe()
    engine = await Engine.open(None, config, make_agent)
    app = CockpitApp(engine, config)
    app.driver_class = SinkDriver
    out: dict = {}
    try:
        async with app.run_test(headless=False, size=SIZE) as pilot:
            exits = engine.subscribe(accept=lambda e: e.kind == ev.NOTICE and "exit_code" in e.data)
            [flood] = await engine.create_sessions(repo, agent="flood", name="flood")
            await exits.get()  # the first run only warms up
            while flood.id not in app.grid.panes:
                await pilot.pause(0.05)
            pane = app.grid.panes[flood.id]
            assert isinstance(pane, TerminalPane)
            while pane.view.size != pane.wanted_size():
                await pilot.pause(0.05)
            columns, lines = pane.view.size
            bare, shown = [], []
            for _ in range(rounds):
                bare.append(await bare_run(columns, lines))
                started = time.perf_counter()
                await engine.resume(flood.id)
                await exits.get()
                shown.append(time.perf_counter() - started)
                await pilot.pause(0.2)
            screen = [line for line in pane.view.text() if line]
            assert screen[-1] == str(LINES), f"the pane shows {screen[-1:]!r}, not the last line"
            out.update(bare=bare, shown=shown, columns=columns, lines=lines)

            # Key latency while a pane floods without pause.
            [looping] = await engine.create_sessions(repo, agent="loop", name="loop")
            while looping.id not in app.grid.panes:
                await pilot.pause(0.05)
            app.focus_session(looping.id)
            target = app.grid.panes[looping.id]
            await pilot.pause(1.0)
            label = f"@{looping.number} {looping.name}  "
            loop = asyncio.get_running_loop()
            rng = random.Random(11)
            presses = skipped = 0
            lags: list[float] = []
            lag_task = asyncio.create_task(_lag_probe(lags))
            probe.latencies.clear()
            frames0, cpu0, wall0 = probe.frames, time.process_time(), time.perf_counter()
            end = loop.time() + seconds
            next_press = loop.time()
            while loop.time() < end:
                next_press += rng.uniform(*PRESS_EVERY)
                await asyncio.sleep(max(0.0, next_press - loop.time()))
                if probe.pending is not None:
                    skipped += 1
                    continue
                probe.pending = (time.perf_counter(), ("▶◆" if not target.marked else "▶") + label)
                key = events.Key("space", " ")
                key.set_sender(app)
                app._driver.send_message(key)
                presses += 1
            wall = time.perf_counter() - wall0
            lag_task.cancel()
            out.update(
                loop_lag_p99_ms=(pct(lags, 99) or 0) * 1000, loop_lag_max_ms=max(lags, default=0) * 1000,
                latencies=[x * 1000 for x in probe.latencies], presses=presses, skipped=skipped,
                cpu_pct=100 * (time.process_time() - cpu0) / wall, frames_s=(probe.frames - frames0) / wall,
                resyncs=getattr(app._subscription, "resyncs", 0),
            )
            await engine.interrupt(looping.id)
    finally:
        await engine.close()
    return out


def main() -> None:
    args = parse_args("PTY pane: seq 1 300000 through the pane vs a bare pty loop; key latency meanwhile")
    rounds, seconds = (3, 5.0) if args.quick else (7, 15.0)
    report = Report("pty", args.quick)
    print(f"pty: `{' '.join(FLOOD)}`, {rounds} runs each way, key presses for {seconds:.0f} s, "
          f"screen {SIZE[0]}×{SIZE[1]}", flush=True)
    with tempfile.TemporaryDirectory(prefix="cockpit-bench-pty-", dir=args.dir) as raw:
        tmp = Path(raw)
        os.environ.update(COCKPIT_HOME=str(tmp / "home"), XDG_CONFIG_HOME=str(tmp / "xdg-config"),
                          XDG_DATA_HOME=str(tmp / "xdg-data"))
        os.environ.pop("TEXTUAL_DRIVER", None)
        found = asyncio.run(measure(_repo(tmp), rounds, seconds))
    emulate = median([emulate_only(found["columns"], found["lines"]) for _ in range(rounds)])
    bare, shown = median(found["bare"]), median(found["shown"])
    lat = found["latencies"]
    report.add("terminal_size", f"{found['columns']}x{found['lines']}")
    report.add("bare_s", bare, "bare pty read loop (median)", "s")
    report.add("pane_s", shown, "through backend, events and the running app (median)", "s")
    report.add("throughput_ratio", shown / bare, "pane / bare")
    report.add("emulate_s", emulate, "emulator alone, same bytes in 4 KiB chunks (median)", "s")
    report.add("key_p50_ms", pct(lat, 50) or -1.0, "key → screen p50 while a pane floods", "ms")
    report.add("key_p99_ms", pct(lat, 99) or -1.0, "key → screen p99 while a pane floods", "ms")
    report.add("key_presses", len(lat), "key presses measured")
    report.add("key_skipped", found["skipped"], "presses skipped: previous not yet on screen")
    report.add("cpu_pct", found["cpu_pct"], "process CPU while flooding", "% of one core")
    report.add("frames_s", found["frames_s"], "frames written per second while flooding")
    report.add("loop_lag_p99_ms", found["loop_lag_p99_ms"], "event-loop lag p99 while flooding", "ms")
    report.add("loop_lag_max_ms", found["loop_lag_max_ms"], "event-loop lag max while flooding", "ms")
    report.add("resyncs", found["resyncs"], "subscriber overflows")
    report.add("bare_runs_s", [round(x, 3) for x in found["bare"]])
    report.add("pane_runs_s", [round(x, 3) for x in found["shown"]])
    report.target("throughput_ratio", lambda v: v <= 2, "≤ 2")
    report.target("key_p99_ms", lambda v: 0 <= v <= 50, "≤ 50 ms")
    report.finish(args.json)


if __name__ == "__main__":
    main()
