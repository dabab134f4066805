"""How the cockpit screen copes with 48 agents streaming at once, against the same app with one.

Figures (each scenario runs in its own child process, so CPU and RSS are not mixed up):
- `cpu_pct`: CPU of the UI process (% of one core) over the streaming window with 48 simulated
  agents emitting `text.delta` at 30 tokens/s each through the real Engine (event bus, text
  coalescer, store), with occasional newlines and tool calls. Target ≤ 60 %.
- `key_p50_ms` / `key_p99_ms`: key press → screen latency: the key is timestamped when it is
  handed to the driver and the clock stops at the first frame whose output shows the change
  (space toggles the mark glyph on the focused pane; presses alternate so every press changes
  the screen). Target p99 ≤ 50 ms.
- `rss_mb`: peak resident memory of that process.
- `first_frame_s`: `cockpit --repo R` started in a fresh interpreter with 50 restored sessions
  (with the transcripts the streaming run left behind) until the first frame showing panes.
  Target ≤ 1 s. `litellm_at_first_frame` must be false.
- The same streaming figures with one agent are reported as `base_*`.

The driver is headless for input but says `is_headless = False`, so Textual encodes every frame
to ANSI (the cost a real terminal pays) and writes it to /dev/null; screen 200×50.

Usage: python bench/ui.py [--quick] [--json]
"""

from __future__ import annotations

import asyncio
import inspect
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

_HERE = Path(__file__).resolve().parent
if str(_HERE) not in sys.path:
    sys.path.insert(0, str(_HERE))

from _common import Report, parse_args  # noqa: E402

SIZE = (200, 50)
RATE = 30.0  # tokens per second per agent
PRESS_EVERY = (0.1, 0.3)  # seconds between key presses, uniformly random: 0.2 s on average
WARM_UP = 1.5
AGENTS = 48
RESTORED = 50

_rng = random.Random(1)
WORDS = ["".join(_rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(_rng.choice((1, 2, 3, 3, 4, 5, 7))))
         for _ in range(2000)]


# ---------------------------------------------------------------------------------------------
# The driver: full output encoding, written to /dev/null, with a latency probe


def sink_driver_class():
    from textual.drivers.headless_driver import HeadlessDriver

    class SinkDriver(HeadlessDriver):
        """Headless input, but `is_headless` is False so `App._display` encodes every frame."""

        _fd = os.open(os.devnull, os.O_WRONLY)
        probe: Probe | None = None

        @property
        def is_headless(self) -> bool:
            return False

        def write(self, data: str) -> None:
            os.write(self._fd, data.encode("utf-8"))
            probe = SinkDriver.probe
            if probe is not None:
                probe.saw(data)

        def flush(self) -> None:
            pass

    return SinkDriver


class Probe:
    """Counts frames and bytes; times the first frame containing an awaited string."""

    def __init__(self) -> None:
        self.frames = 0
        self.bytes = 0
        self.pending: tuple[float, str] | None = None
        self.latencies: list[float] = []
        self.first_frame: float | None = None
        self.first_frame_needle: str | None = None
        self.on_first_frame = None

    def saw(self, data: str) -> None:
        self.frames += 1
        self.bytes += len(data)
        pending = self.pending
        if pending is not None and pending[1] in data:
            self.latencies.append(time.perf_counter() - pending[0])
            self.pending = None
        if self.first_frame is None and self.first_frame_needle and self.first_frame_needle in data:
            self.first_frame = time.time()
            if self.on_first_frame is not None:
                self.on_first_frame()


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


# ---------------------------------------------------------------------------------------------
# Child: stream N agents into the app and press keys


async def stream_child(home: Path, agents: int, seconds: float) -> dict:
    from textual import events

    from cockpit.config import load_config
    from cockpit.core import events as ev
    from cockpit.core.engine import Engine
    from cockpit.core.states import State
    from cockpit.ui.app import CockpitApp
    from cockpit.ui.text import header_text

    focus_arg = "focused" in inspect.signature(header_text).parameters

    SinkDriver = sink_driver_class()
    probe = SinkDriver.probe = Probe()
    config = load_config()
    engine = await Engine.open(home, config, agent_factory=None)
    app = CockpitApp(engine, config)
    app.driver_class = SinkDriver
    loop = asyncio.get_running_loop()
    out: dict = {"agents": agents}
    try:
        async with app.run_test(headless=False, size=SIZE) as pilot:
            while len(app.grid.panes) < agents:
                await pilot.pause(0.05)
            await pilot.pause(0.3)
            sessions = sorted(engine.sessions.values(), key=lambda s: s.number)[:agents]
            for session in sessions:
                engine.set_state(session, State.RUNNING)
            first = sessions[0]
            app.focus_session(first.id)
            await pilot.pause(0.2)
            pane = app.grid.panes[first.id]
            assert app.focused_pane is pane, "the first pane should have focus"
            out["visible_panes"] = len(app.grid.visible_ids())
            out["pane_size"] = list(pane.size)
            label = f"@{first.number} {first.name}  "

            def header_after_press() -> str:
                """The start of the focused pane's header once the press has toggled its mark."""
                text = header_text(pane.session, marked=not pane.marked, spinner=pane.spinner,
                                   stats=pane.stats, **({"focused": True} if focus_arg else {}))
                return text[: text.index(label) + len(label)]

            running = True
            tokens = [0]
            rng = random.Random(7)

            async def agent(session_id: str) -> None:
                period = 1 / RATE
                next_at = loop.time() + rng.random() * period
                calls = 0
                while running:
                    delay = next_at - loop.time()
                    await asyncio.sleep(delay if delay > 0 else 0)
                    next_at += period
                    roll = rng.random()
                    if roll < 0.004:  # a tool call every ~8 s per agent
                        calls += 1
                        call_id = f"c{calls}"
                        engine.emit(session_id, ev.TOOL_CALL, {
                            "id": call_id, "name": "run_shell", "arguments": {"command": "pytest -q tests/"}})
                        engine.emit(session_id, ev.TOOL_RESULT, {
                            "id": call_id, "ok": True, "output": "....\n4 passed in 0.12s"})
                        continue
                    text = "\n" if roll < 0.03 else " " + rng.choice(WORDS)
                    engine.emit(session_id, ev.TEXT_DELTA, {"text": text})
                    tokens[0] += 1

            lags: list[float] = []

            async def lag_probe() -> None:
                while running:
                    start = loop.time()
                    await asyncio.sleep(0.01)
                    lags.append(loop.time() - start - 0.01)

            tasks = [asyncio.create_task(agent(s.id)) for s in sessions]
            tasks.append(asyncio.create_task(lag_probe()))
            await asyncio.sleep(WARM_UP)
            lags.clear()
            probe.latencies.clear()
            tok0, frames0, bytes0 = tokens[0], probe.frames, probe.bytes
            cpu0, wall0 = time.process_time(), time.perf_counter()
            presses = skipped = 0
            end = loop.time() + seconds
            next_press = loop.time()
            press_rng = random.Random(11)
            while loop.time() < end:
                # Random gaps: a fixed 0.2 s is exactly 3 flush periods (1/15 s), so every press
                # would land at the same phase of the flush and the run would measure one phase.
                next_press += press_rng.uniform(*PRESS_EVERY)
                delay = next_press - loop.time()
                await asyncio.sleep(delay if delay > 0 else 0)
                if probe.pending is not None:
                    skipped += 1  # the last press has not reached the screen yet
                    continue
                needle = header_after_press()
                probe.pending = (time.perf_counter(), needle)
                key = events.Key("space", " ")
                key.set_sender(app)
                app._driver.send_message(key)  # the path pilot.press uses, without waiting for idle
                presses += 1
            cpu1, wall1 = time.process_time(), time.perf_counter()
            tok1 = tokens[0]
            running = False
            await asyncio.sleep(0.2)
            for task in tasks:
                task.cancel()
            wall = wall1 - wall0
            lat = [x * 1000 for x in probe.latencies]
            subscription = app._subscription
            out.update(
                cpu_pct=round(100 * (cpu1 - cpu0) / wall, 1),
                key_p50_ms=round(pct(lat, 50) or -1, 1),
                key_p99_ms=round(pct(lat, 99) or -1, 1),
                key_max_ms=round(max(lat), 1) if lat else -1,
                presses=presses,
                measured=len(lat),
                skipped=skipped,
                tok_per_agent_s=round((tok1 - tok0) / wall / max(1, agents), 1),
                frames_s=round((probe.frames - frames0) / wall, 1),
                kb_out_s=round((probe.bytes - bytes0) / wall / 1024, 1),
                loop_lag_p99_ms=round((pct(lags, 99) or 0) * 1000, 1),
                resyncs=getattr(subscription, "resyncs", 0),
                rss_mb=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
                wall_s=round(wall, 1),
                rows_in_focused_pane=len(pane.tail.rows),
            )
    finally:
        await engine.close()
    return out


# ---------------------------------------------------------------------------------------------
# Child: start-up of the real `cockpit --repo R` path until the first frame with panes


def startup_child(repo: Path, spawned_at: float) -> dict:
    started = time.time()
    import textual.app

    SinkDriver = sink_driver_class()
    probe = SinkDriver.probe = Probe()
    probe.first_frame_needle = "@1 "
    found: dict = {}
    size = SIZE

    class SizedSink(SinkDriver):
        def _get_terminal_size(self) -> tuple[int, int]:
            return size

    textual.app.App.get_driver_class = lambda self: SizedSink  # type: ignore[method-assign]

    def at_first_frame() -> None:
        found["litellm_at_first_frame"] = "litellm" in sys.modules
        found["modules_at_first_frame"] = len(sys.modules)
        app = textual.app.active_app.get()
        app.call_later(app.exit)

    probe.on_first_frame = at_first_frame
    from cockpit.cli import main

    code = main(["--local", "--repo", str(repo)])  # the in-process start-up, as it measured before the server
    return {
        "exit_code": code,
        "first_frame_s": round(probe.first_frame - spawned_at, 3) if probe.first_frame else None,
        "in_process_s": round(probe.first_frame - started, 3) if probe.first_frame else None,
        **found,
    }


# ---------------------------------------------------------------------------------------------
# Parent: make the sessions, run the children, report


def _env(tmp: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        COCKPIT_HOME=str(tmp / "home"), XDG_CONFIG_HOME=str(tmp / "xdg-config"),
        XDG_DATA_HOME=str(tmp / "xdg-data"), GIT_CONFIG_GLOBAL=str(tmp / "no-gitconfig"),
        GIT_CONFIG_NOSYSTEM="1", PYTHONPATH=str(_HERE.parent) + os.pathsep + env.get("PYTHONPATH", ""),
    )
    env.pop("COCKPIT_MODEL", None)
    env.pop("TEXTUAL_DRIVER", None)
    return env


def _git(cwd: Path, *args: str, env: dict[str, str]) -> None:
    subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True)


def make_home(tmp: Path, count: int) -> tuple[Path, Path, dict[str, str]]:
    """A repository and a cockpit home holding `count` sessions made by the real engine."""
    env = _env(tmp)
    repo = tmp / "repo"
    repo.mkdir(parents=True)
    _git(repo, "init", "-q", "-b", "main", env=env)
    (repo / "README.md").write_text("hello\n")
    _git(repo, "add", "-A", env=env)
    _git(repo, "-c", "user.name=bench", "-c", "user.email=bench@cockpit.invalid", "commit", "-q", "-m", "initial",
         env=env)
    _child(["create", str(repo), str(count)], env)
    return Path(env["COCKPIT_HOME"]), repo, env


async def create_child(repo: Path, count: int) -> dict:
    from cockpit.config import load_config
    from cockpit.core.engine import Engine

    engine = await Engine.open(None, load_config(), agent_factory=None)
    try:
        start = time.perf_counter()
        made = await engine.create_sessions(repo, name="a", count=count)
        return {"created": len(made), "seconds": round(time.perf_counter() - start, 2)}
    finally:
        await engine.close()


def _child(args: list[str], env: dict[str, str]) -> dict:
    """This script as a child; its stdin is a terminal (the screen refuses to start without one)."""
    env = dict(env, BENCH_SPAWNED_AT=repr(time.time()))
    keys, terminal = os.openpty()  # (bench/pty.py hides the pty module here)
    try:
        done = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--child", *args],
                              env=env, stdin=terminal, capture_output=True, text=True, timeout=300)
    finally:
        os.close(keys)
        os.close(terminal)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        raise SystemExit(f"child {args} failed ({done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")
    return json.loads(lines[-1])


def run_child(argv: list[str]) -> None:
    kind, rest = argv[0], argv[1:]
    if kind == "stream":
        result = asyncio.run(stream_child(Path(os.environ["COCKPIT_HOME"]), int(rest[0]), float(rest[1])))
    elif kind == "startup":
        spawned = float(os.environ["BENCH_SPAWNED_AT"])
        # Only the JSON line goes to stdout; Textual renders to the driver (here /dev/null).
        result = startup_child(Path(rest[0]), spawned)
    elif kind == "create":
        result = asyncio.run(create_child(Path(rest[0]), int(rest[1])))
    else:
        raise SystemExit(f"unknown child {kind!r}")
    print(json.dumps(result), flush=True)


def main() -> None:
    args = parse_args("UI: 48 streaming agents against one; key latency, CPU, RSS, start-up")
    seconds = 6.0 if args.quick else 20.0
    report = Report("ui", args.quick)
    with tempfile.TemporaryDirectory(prefix="cockpit-bench-ui-") as raw:
        tmp = Path(raw)
        print(f"ui: {AGENTS} agents vs 1, {RATE:.0f} tokens/s each, {seconds:.0f} s windows, screen {SIZE[0]}×{SIZE[1]}",
              flush=True)
        home, repo, env = make_home(tmp / "many", AGENTS)
        many = _child(["stream", str(AGENTS), str(seconds)], env)
        home1, _, env1 = make_home(tmp / "one", 1)
        one = _child(["stream", "1", str(seconds)], env1)
        # Two more sessions make 50 to restore, with the transcripts the stream left behind.
        _child(["create", str(repo), str(RESTORED - AGENTS)], env)
        startup = _child(["startup", str(repo)], env)

    report.add("agents", AGENTS)
    report.add("stream_seconds", seconds)
    report.add("visible_panes", many["visible_panes"], "panes on the first page (48 agents)")
    report.add("tok_per_agent_s", many["tok_per_agent_s"], "tokens/s delivered per agent (48 agents)")
    report.add("cpu_pct", many["cpu_pct"], "UI process CPU, 48 agents", "% of one core")
    report.add("key_p50_ms", many["key_p50_ms"], "key → screen p50, 48 agents", "ms")
    report.add("key_p99_ms", many["key_p99_ms"], "key → screen p99, 48 agents", "ms")
    report.add("key_max_ms", many["key_max_ms"], "key → screen max, 48 agents", "ms")
    report.add("key_presses", many["measured"], "key presses measured (48 agents)")
    report.add("key_skipped", many["skipped"], "presses skipped: previous not yet on screen")
    report.add("frames_s", many["frames_s"], "frames written per second (48 agents)")
    report.add("kb_out_s", many["kb_out_s"], "terminal output (48 agents)", "kB/s")
    report.add("loop_lag_p99_ms", many["loop_lag_p99_ms"], "event-loop lag p99 (48 agents)", "ms")
    report.add("resyncs", many["resyncs"], "subscriber overflows (48 agents)")
    report.add("rss_mb", many["rss_mb"], "peak RSS, 48 agents", "MB")
    report.add("base_cpu_pct", one["cpu_pct"], "UI process CPU, 1 agent", "% of one core")
    report.add("base_key_p50_ms", one["key_p50_ms"], "key → screen p50, 1 agent", "ms")
    report.add("base_key_p99_ms", one["key_p99_ms"], "key → screen p99, 1 agent", "ms")
    report.add("base_frames_s", one["frames_s"], "frames written per second (1 agent)")
    report.add("base_rss_mb", one["rss_mb"], "peak RSS, 1 agent", "MB")
    report.add("first_frame_s", startup["first_frame_s"], f"start-up to first frame, {RESTORED} restored sessions", "s")
    report.add("first_frame_in_process_s", startup["in_process_s"], "  of which after the interpreter started", "s")
    report.add("litellm_at_first_frame", startup.get("litellm_at_first_frame"))
    print(f"  {'litellm imported before the first frame':<58} {startup.get('litellm_at_first_frame')}", flush=True)
    report.target("key_p99_ms", lambda v: 0 <= v <= 50, "≤ 50 ms")
    report.target("cpu_pct", lambda v: v <= 60, "≤ 60 % of one core")
    report.target("first_frame_s", lambda v: v is not None and v <= 1.0, "≤ 1 s")
    report.target("litellm_at_first_frame", lambda v: v is False, "not imported")
    report.finish(args.json)


if __name__ == "__main__":
    if "--child" in sys.argv:
        run_child(sys.argv[sys.argv.index("--child") + 1:])
    else:
        main()
