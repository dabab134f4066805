"""How fast the merge view opens on a big change, against plain `git diff` of the same change.

A real repository and a session worktree made by the engine hold a change of 300 files and
about 20,000 changed lines (half committed on the session branch, half uncommitted, all
tracked so that `git diff <base>` shows the whole change too). Figures:

- `git_diff_ms`: `git diff <base>` in the worktree, output read to the end (median).
- `open_ms`: `M` pressed on the grid until the first frame that shows the first file's diff:
  the engine's `diff` command computes the Change (snapshot tree, one `git diff`, parse),
  it travels as a dict like over a socket, and the merge view paints its first file (median).
- `open_ratio` = open_ms / git_diff_ms. Target ≤ 3.
- `next_file_ms`: `]` pressed until the first frame showing the next file (median; p90 too).
  Target ≤ 50 ms. (That frame has the file's lines; their syntax colours are lexed right after
  it and painted in the next frame, so a key press never waits for pygments.)
- `engine_diff_ms`: the `diff` command alone, for the break-down.

Keys are timestamped when handed to the driver and the clock stops at the first frame whose
output shows the change; the driver is headless for input but says `is_headless = False`, so
Textual encodes every frame to ANSI (the cost a real terminal pays) and writes it to /dev/null
(the same set-up as bench/ui.py). Screen 200×50.

Usage: python bench/diff.py [--quick] [--json]
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

_HERE = Path(__file__).resolve().parent
if str(_HERE) not in sys.path:
    sys.path.insert(0, str(_HERE))

from _common import Report, Timer, median, parse_args  # noqa: E402
from ui import Probe, _env, pct, sink_driver_class  # noqa: E402

SIZE = (200, 50)
FILES = 300
LINES_PER_FILE = 200
CHANGE_EVERY = 6  # every 6th line of each file is rewritten: ~33 removed + ~33 added per file


# ---------------------------------------------------------------------------------------------
# The change


def source_line(file: int, line: int, version: str) -> str:
    if line % 20 == 0:
        return f"def function_{file}_{line}(value{version}):\n"
    return f"    result_{line} = compute(value, {file} * {line}, label='{version}')  # step {line}\n"


def file_text(file: int, version: str) -> str:
    return "".join(
        source_line(file, n, version if n % CHANGE_EVERY == 0 else "") for n in range(LINES_PER_FILE)
    )


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


def make_repo(root: Path) -> Path:
    repo = root / "repo"
    (repo / "src").mkdir(parents=True)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "config", "user.name", "bench")  # merge preview and merges commit as the user
    git(repo, "config", "user.email", "bench@cockpit.invalid")
    for n in range(FILES):
        (repo / "src" / f"module_{n:03d}.py").write_text(file_text(n, ""))
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "base")
    return repo


def change_worktree(worktree: Path) -> None:
    """Rewrite every file: the first half committed on the branch, the second half left uncommitted."""
    for n in range(FILES):
        (worktree / "src" / f"module_{n:03d}.py").write_text(file_text(n, "new"))
        if n == FILES // 2 - 1:
            git(worktree, "add", "-A")
            git(worktree, "-c", "user.name=agent", "-c", "user.email=agent@cockpit.invalid",
                "commit", "-q", "-m", "half of the work")


# ---------------------------------------------------------------------------------------------
# Measuring


def plain_git_diff(worktree: Path, base: str) -> tuple[float, int]:
    """Seconds for `git diff <base>` with its output read to the end, and the lines it printed."""
    with Timer() as timer:
        out = subprocess.run(["git", "diff", base], cwd=worktree, check=True, capture_output=True).stdout
    return timer.seconds, out.count(b"\n")


async def measure(home: Path, repo: Path, opens: int, presses: int) -> dict:
    from textual import events

    from cockpit.config import load_config
    from cockpit.core.diffs import Change
    from cockpit.core.engine import Engine
    from cockpit.ui.app import CockpitApp
    from cockpit.ui.diff_view import STATUS_LETTERS
    from cockpit.ui.merge_view import MergeScreen

    SinkDriver = sink_driver_class()
    probe = SinkDriver.probe = Probe()
    config = load_config()
    engine = await Engine.open(home, config, agent_factory=None)
    out: dict = {}
    try:
        session = (await engine.create_sessions(repo, name="big-change"))[0]
        await asyncio.to_thread(change_worktree, session.path)

        out["git_diff_lines"] = plain_git_diff(session.path, session.base_commit)[1]  # and git's caches warm
        engine_runs = []
        for _ in range(max(3, opens)):
            with Timer() as timer:
                raw = await engine.execute({"cmd": "diff", "session": session.id})
            engine_runs.append(timer.seconds)
        change = Change.from_dict(raw)
        out.update(engine_diff_s=engine_runs, files=len(change.files), added=change.added, removed=change.removed)

        def title(index: int) -> str:
            diff = change.files[index]
            # the diff's title row: its own segment, followed by the styled "+n" (an escape code)
            return f"{STATUS_LETTERS[diff.status]} {diff.path}  \x1b["

        app = CockpitApp(engine, config)
        app.driver_class = SinkDriver
        async with app.run_test(headless=False, size=SIZE) as pilot:
            while not app.grid.panes or app.focused_pane is None:
                await pilot.pause(0.05)
            await pilot.pause(0.3)

            async def press(key: str, character: str | None, needle: str) -> float:
                probe.pending = (time.perf_counter(), needle)
                event = events.Key(key, character)
                event.set_sender(app)
                app._driver.send_message(event)  # the path pilot.press uses, without waiting for idle
                deadline = time.perf_counter() + 60
                while probe.pending is not None:
                    if time.perf_counter() > deadline:
                        raise SystemExit(f"no frame showed {needle!r} within 60 s")
                    await asyncio.sleep(0.001)
                return probe.latencies[-1]

            opened, nexts, git_runs = [], [], []
            for round_ in range(opens):
                # each open right after a plain git diff: both see the same load on the machine
                git_runs.append(plain_git_diff(session.path, session.base_commit)[0])
                opened.append(await press("M", "M", title(0)))
                screen = app.screen
                assert isinstance(screen, MergeScreen), "M should open the merge view"
                settle_by = time.perf_counter() + 60
                while screen.preview is None:  # the conflict preview runs after the view is usable
                    if time.perf_counter() > settle_by:
                        raise SystemExit(f"the merge preview did not finish: {screen.preview_note}")
                    await pilot.pause(0.05)
                await pilot.pause(0.2)
                if round_ == opens - 1:
                    for n in range(1, presses + 1):
                        nexts.append(await press("right_square_bracket", "]", title(n)))
                        await asyncio.sleep(0.05)  # a person reads; the frame after the press settles
                await press("escape", None, "@1 big-change")
                await pilot.pause(0.3)
        out.update(open_s=opened, next_file_s=nexts, git_diff_s=git_runs)
    finally:
        await engine.close()
    return out


def main() -> None:
    args = parse_args("Merge view on 300 files / ~20,000 changed lines vs plain git diff")
    opens, presses = (5, 20) if args.quick else (11, 60)
    report = Report("diff", args.quick)
    with tempfile.TemporaryDirectory(prefix="cockpit-bench-diff-", dir=args.dir) as raw:
        tmp = Path(raw)
        os.environ.update(_env(tmp))
        print(f"diff: {FILES} files, ~{FILES * 2 * LINES_PER_FILE // CHANGE_EVERY:,} changed lines; "
              f"{opens} opens, {presses} next-file presses; screen {SIZE[0]}×{SIZE[1]}", flush=True)
        repo = make_repo(tmp)
        figures = asyncio.run(measure(tmp / "home", repo, opens, presses))

    git_ms = median(figures["git_diff_s"]) * 1000
    open_ms = median(figures["open_s"]) * 1000
    next_ms = [s * 1000 for s in figures["next_file_s"]]
    report.add("files", figures["files"], "files in the change")
    report.add("changed_lines", figures["added"] + figures["removed"], "changed lines (+ and −)")
    report.add("git_diff_lines", figures["git_diff_lines"], "lines printed by git diff")
    report.add("git_diff_ms", git_ms, "git diff <base>, median", "ms")
    report.add("engine_diff_ms", median(figures["engine_diff_s"]) * 1000, "engine `diff` command alone, median", "ms")
    report.add("open_ms", open_ms, "M → first file on screen, median", "ms")
    report.add("open_ms_max", max(figures["open_s"]) * 1000, "M → first file on screen, slowest", "ms")
    report.add("open_ratio", open_ms / git_ms, "open / git diff")
    report.add("next_file_ms", statistics.median(next_ms), "] → next file on screen, median", "ms")
    report.add("next_file_p90_ms", pct(next_ms, 90), "] → next file on screen, p90", "ms")
    report.target("open_ratio", lambda v: v <= 3, "≤ 3")
    report.target("next_file_ms", lambda v: v <= 50, "≤ 50 ms")
    report.finish(args.json)


if __name__ == "__main__":
    main()
