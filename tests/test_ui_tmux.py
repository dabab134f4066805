"""The real `cockpit` in a real terminal (tmux), driven the way a new user would drive it.

Sessions are made with the CLI, the app is started in a detached tmux session at 100×30, keys
are sent with `tmux send-keys` and the screen is read with `tmux capture-pane`. Textual draws
through stderr, so nothing is redirected. A private tmux socket keeps the test away from any
tmux server the developer runs, and the session is killed whatever happens.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from cockpit.core import events as ev
from cockpit.core.store import Store

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed: cannot drive a real terminal"),
]

MESSAGE = "hello from tmux"


def cockpit(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cockpit", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120)


class Tmux:
    def __init__(self, socket: Path):
        self.socket = socket
        self.name = "cockpit-test"

    def run(self, *args: str, check: bool = True) -> str:
        done = subprocess.run(["tmux", "-S", str(self.socket), "-f", os.devnull, *args],
                              capture_output=True, text=True, timeout=30)
        if check and done.returncode != 0:
            raise AssertionError(f"tmux {' '.join(args)} failed: {done.stderr.strip()}")
        return done.stdout

    def start(self, command: str, width: int, height: int) -> None:
        self.run("new-session", "-d", "-s", self.name, "-x", str(width), "-y", str(height), command)

    def keys(self, *keys: str, literal: bool = False) -> None:
        self.run("send-keys", "-t", self.name, *(["-l"] if literal else []), *keys)

    def screen(self) -> str:
        return self.run("capture-pane", "-p", "-t", self.name)

    def wait(self, ready: Callable[[str], bool], what: str, timeout: float = 20.0) -> str:
        deadline = time.monotonic() + timeout
        screen = ""
        while time.monotonic() < deadline:
            screen = self.screen()
            if ready(screen):
                return screen
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {what}; the screen was:\n{screen}")

    def kill(self) -> None:
        self.run("kill-server", check=False)


@pytest.fixture
def tmux(tmp_path: Path) -> Iterator[Tmux]:
    # A short path: Unix socket paths are limited to ~100 bytes.
    socket_dir = Path("/tmp") / f"cockpit-tmux-{os.getpid()}-{time.monotonic_ns()}"
    socket_dir.mkdir()
    session = Tmux(socket_dir / "sock")
    try:
        yield session
    finally:
        session.kill()
        shutil.rmtree(socket_dir, ignore_errors=True)


def header_line(screen: str, number: int) -> str:
    """The screen line holding pane @number's header."""
    for line in screen.splitlines():
        if f"@{number} " in line and "session-" in line:
            return line
    raise AssertionError(f"no header for @{number} on screen:\n{screen}")


def marked_in(screen: str, number: int) -> bool:
    line = header_line(screen, number)
    start = line.index(f"@{number} ")
    return "◆" in line[max(0, start - 2):start]


async def test_a_new_user_marks_a_pane_and_sends_an_instruction(tmux: Tmux, repo: Path, tmp_path: Path) -> None:
    made = cockpit("--repo", str(repo), "new", "--count", "3", "--json")
    assert made.returncode == 0, made.stderr
    sessions = {s["number"]: s for s in json.loads(made.stdout)}
    assert sorted(sessions) == [1, 2, 3]

    # The app sees the test's COCKPIT_HOME / XDG_* / GIT_* through the environment tmux is given.
    passed = {k: v for k, v in os.environ.items() if k.startswith(("COCKPIT_", "XDG_", "GIT_"))}
    env = " ".join(f"{k}={shlex.quote(v)}" for k, v in sorted(passed.items()))
    app = f"{shlex.quote(sys.executable)} -m cockpit --repo {shlex.quote(str(repo))}"
    # Report how the app ended, then keep the pane so the screen can still be read.
    tmux.start(f"env {env} {app}; echo cockpit-exited-$?; sleep 60", 100, 30)

    screen = tmux.wait(lambda s: "@1" in s and "@3" in s, "the first frame with three panes")
    assert not marked_in(screen, 1)

    tmux.keys("Space")  # mark the focused pane (@1)
    screen = tmux.wait(lambda s: marked_in(s, 1), "@1 marked")
    assert not marked_in(screen, 2)

    # One key at a time, as a person types: Textual routes a key to whatever has focus when
    # the key is read, so letters sent in the same burst as `i` could still reach the grid.
    tmux.keys("l")  # focus moves right; the mark stays on @1
    time.sleep(0.4)
    tmux.keys("i")
    time.sleep(0.4)
    tmux.keys(MESSAGE, literal=True)
    tmux.wait(lambda s: MESSAGE in s, "the typed instruction in the bar")
    tmux.keys("Enter")
    screen = tmux.wait(lambda s: "sent to @1" in s, "the 'sent to' toast")
    screen = tmux.wait(lambda s: f"› {MESSAGE}" in s, "the user line in pane @1")
    assert marked_in(screen, 1)

    tmux.keys("Escape")  # back to the panes, then quit
    time.sleep(0.3)
    tmux.keys("q")
    screen = tmux.wait(lambda s: "cockpit-exited-" in s, "cockpit to exit")
    assert "cockpit-exited-0" in screen, screen

    listed = cockpit("--repo", str(repo), "ls", "--json")
    assert listed.returncode == 0, listed.stderr
    assert sorted(s["number"] for s in json.loads(listed.stdout)) == [1, 2, 3]

    store = await Store.open(Path(os.environ["COCKPIT_HOME"]) / "cockpit.db")
    try:
        got = {
            number: [e.data.get("text") for e in await store.events(s["id"]) if e.kind == ev.USER_MESSAGE]
            for number, s in sessions.items()
        }
    finally:
        await store.close()
    assert got == {1: [MESSAGE], 2: [], 3: []}
