"""Terminal sessions at the engine level: real programs in real pseudo-terminals, emulated by pyte.

Each test makes a real repository, opens a real Engine with the real agent factory and drives
terminal sessions through the engine's JSON commands (`term_input`, `term_resize`,
`term_screen`), checking the emulated screen, the session states, the stored transcript and
that no process outlives its session. The screen emulation itself (the fast path for floods,
the alternate screen, the style encoding) is checked against plain pyte.
"""

from __future__ import annotations

import asyncio
import os
import random
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyte
import pytest

from cockpit.agents import pty_screen
from cockpit.agents.factory import make_agent
from cockpit.agents.pty_screen import TermScreen
from cockpit.config import AgentConfig, Config
from cockpit.core import events as ev
from cockpit.core.engine import Engine
from cockpit.core.states import State
from cockpit.errors import CockpitError

BASH = ["bash", "--norc", "--noprofile"]
PROMPT_ENV = {"PS1": "$ ", "LC_ALL": "C.UTF-8"}

CURSES = textwrap.dedent("""
    import curses

    def main(screen):
        curses.curs_set(0)
        screen.addstr(0, 0, "top-left")
        screen.refresh()
        box = curses.newwin(5, 20, 2, 4)
        box.box()
        box.addstr(2, 3, "hello curses")
        box.refresh()
        screen.getch()

    curses.wrapper(main)
""")

ASK_TWICE = textwrap.dedent("""
    import time
    for n in (1, 2):
        answer = input(f"Allow step {n}? [y/n] ")
        print(f"got {answer} for {n}", flush=True)
        time.sleep(1.0)
""")


def terminal_config(**agents: AgentConfig) -> Config:
    config = Config()
    config.agents.update(agents)
    return config


def term(command: list[str], **kwargs: Any) -> AgentConfig:
    return AgentConfig(kind="terminal", command=command, env=dict(PROMPT_ENV), **kwargs)


async def until(condition: Callable[[], Any], what: str, timeout: float = 10.0) -> Any:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = condition()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for: {what}")
        await asyncio.sleep(0.05)


async def screen_text(engine: Engine, session_id: str) -> list[str]:
    frame = await engine.execute({"cmd": "term_screen", "session": session_id})
    assert frame is not None
    lines = [""] * frame["size"][1]
    for y, runs in frame["rows"]:
        lines[y] = "".join(text for text, _ in runs)
    return lines


async def shows(engine: Engine, session_id: str, text: str) -> bool:
    return any(text in line for line in await screen_text(engine, session_id))


async def start_session(open_engine, repo: Path, agent: str, **agents: AgentConfig):
    engine = await open_engine(config=terminal_config(**agents), agent_factory=make_agent)
    [session] = await engine.create_sessions(repo, agent=agent, name=agent)
    return engine, session


def processes_with(marker: str) -> list[int]:
    """Pids whose command line contains `marker`."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if marker in cmdline:
                found.append(int(entry))
    return found


# -- a shell in a pane -----------------------------------------------------------------------------


async def test_typed_command_shows_its_output(open_engine, repo):
    engine, session = await start_session(open_engine, repo, "sh", sh=term(BASH))
    assert session.kind == "terminal"
    await until(lambda: shows(engine, session.id, "$"), "the prompt")
    await engine.execute({"cmd": "term_input", "session": session.id, "data": "echo hello-$((6*7))\r"})
    await until(lambda: shows(engine, session.id, "hello-42"), "hello-42 on the screen")
    lines = await screen_text(engine, session.id)
    assert "hello-42" in lines  # a line of its own, below the command that printed it
    assert lines.index("hello-42") == next(i for i, line in enumerate(lines) if "echo hello" in line) + 1


async def test_screen_events_carry_changed_rows_only(open_engine, repo):
    engine, session = await start_session(open_engine, repo, "sh", sh=term(BASH))
    await until(lambda: shows(engine, session.id, "$"), "the prompt")
    subscription = engine.subscribe()
    await engine.execute({"cmd": "term_input", "session": session.id, "data": "echo one\r"})
    await until(lambda: shows(engine, session.id, "one"), "the output")
    await asyncio.sleep(0.2)
    frames = [e for e in subscription.get_nowait() if e.kind == ev.TERM_SCREEN]
    assert frames, "the screen was published"
    assert all(len(f.data["rows"]) < 24 for f in frames), "only changed rows travel"
    assert [f.data["n"] for f in frames] == sorted({f.data["n"] for f in frames})
    stored = {e.kind for e in await engine.transcript(session.id)}
    assert ev.TERM_SCREEN not in stored  # frames are live only


async def test_routed_instruction_is_typed_with_enter(open_engine, repo):
    engine, session = await start_session(open_engine, repo, "sh", sh=term(BASH))
    await until(lambda: shows(engine, session.id, "$"), "the prompt")
    await engine.send_line(f"@{session.number} echo routed-$((2+3))")
    await until(lambda: shows(engine, session.id, "routed-5"), "the routed command's output")


async def test_resize_reaches_the_program(open_engine, repo):
    engine, session = await start_session(open_engine, repo, "sh", sh=term(BASH))
    await until(lambda: shows(engine, session.id, "$"), "the prompt")
    assert await engine.execute({"cmd": "term_resize", "session": session.id, "cols": 100, "rows": 30}) is True
    await engine.execute({"cmd": "term_input", "session": session.id, "data": "stty size\r"})
    await until(lambda: shows(engine, session.id, "30 100"), "the new size as the program sees it")
    frame = await engine.execute({"cmd": "term_screen", "session": session.id})
    assert frame["size"] == [100, 30]


async def test_interrupt_stops_the_foreground_job_only(open_engine, repo):
    engine, session = await start_session(open_engine, repo, "sh", sh=term(BASH))
    await until(lambda: shows(engine, session.id, "$"), "the prompt")
    await engine.execute({"cmd": "term_input", "session": session.id, "data": "sleep 313\r"})
    await until(lambda: processes_with("sleep 313"), "sleep to start")
    await engine.interrupt(session.id)
    await until(lambda: not processes_with("sleep 313"), "sleep to end on SIGINT")
    await engine.execute({"cmd": "term_input", "session": session.id, "data": "echo still-$((1+1))\r"})
    await until(lambda: shows(engine, session.id, "still-2"), "the shell to go on")


async def test_close_ends_every_process_of_the_terminal(open_engine, repo):
    engine, session = await start_session(open_engine, repo, "sh", sh=term(BASH))
    await until(lambda: shows(engine, session.id, "$"), "the prompt")
    # A background job lives in its own process group; it must end with the session too.
    await engine.execute({"cmd": "term_input", "session": session.id, "data": "sleep 317 & sleep 319\r"})
    await until(lambda: processes_with("sleep 317") and processes_with("sleep 319"), "both sleeps")
    await engine.close()
    assert not processes_with("sleep 317") and not processes_with("sleep 319")


# -- full-screen programs ----------------------------------------------------------------------------


async def test_curses_program_draws_at_the_right_cells(open_engine, repo):
    engine, session = await start_session(open_engine, repo, "tui", tui=term([sys.executable, "-c", CURSES]))
    await until(lambda: shows(engine, session.id, "hello curses"), "the curses text")
    lines = await screen_text(engine, session.id)
    assert lines[0].startswith("top-left")
    assert lines[2][4] == "┌" and lines[2][23] == "┐" and set(lines[2][5:23]) == {"─"}
    assert lines[3][4] == "│" and lines[3][23] == "│"
    assert lines[4][7:19] == "hello curses"
    assert lines[6][4] == "└" and lines[6][23] == "┘"
    await engine.execute({"cmd": "term_input", "session": session.id, "data": "q"})
    await until(lambda: session.state == State.IDLE and "exited" in session.state_detail, "the program to end")
    # Leaving the alternate screen brings back what was there before (nothing).
    assert not any("hello curses" in line for line in await screen_text(engine, session.id))


# -- exits, transcript, restart ----------------------------------------------------------------------


@pytest.mark.parametrize(("command", "state", "detail"), [
    (["sh", "-c", "exit 7"], State.ERROR, "exited with code 7"),
    (["sh", "-c", "echo bye"], State.IDLE, "exited with code 0"),
    (["sh", "-c", "kill -TERM $$"], State.ERROR, "killed by SIGTERM"),
])
async def test_exit_codes_are_reported(open_engine, repo, command, state, detail):
    engine, session = await start_session(open_engine, repo, "job", job=term(command))
    await until(lambda: session.state == state and session.state_detail == detail, f"{state.value}: {detail}")
    notices = [e.data for e in await engine.transcript(session.id) if e.kind == ev.NOTICE and "exit_code" in e.data]
    assert notices and notices[-1]["text"].endswith(detail)
    with pytest.raises(CockpitError, match=r"is not running \(" + detail + r"\); resume it \(r\)"):
        await engine.execute({"cmd": "term_input", "session": session.id, "data": "x"})


async def test_transcript_keeps_scrolled_lines_and_the_last_screen(open_engine, repo):
    engine, session = await start_session(open_engine, repo, "job", job=term(["seq", "1", "200"]))
    await until(lambda: "exited" in session.state_detail, "seq to end")
    stored = "".join(e.data["text"] for e in await engine.transcript(session.id) if e.kind == ev.TEXT)
    assert stored.split() == [str(i) for i in range(1, 201)]


async def test_a_flood_is_stored_bounded_and_the_screen_is_exact(open_engine, repo):
    engine, session = await start_session(open_engine, repo, "job", job=term(["seq", "1", "300000"]))
    await until(lambda: "exited" in session.state_detail, "seq to end", timeout=60)
    lines = [line for line in await screen_text(engine, session.id) if line]
    assert lines == [str(i) for i in range(300000 - 22, 300001)]  # 23 rows, then the cursor's empty line
    texts = [e.data["text"] for e in await engine.transcript(session.id) if e.kind == ev.TEXT]
    assert any("lines scrolled by]" in text for text in texts)
    assert texts[-1].split()[-1] == "300000"


async def test_resume_starts_an_ended_program_again(open_engine, repo):
    engine, session = await start_session(open_engine, repo, "sh", sh=term(BASH))
    await until(lambda: shows(engine, session.id, "$"), "the prompt")
    await engine.execute({"cmd": "term_input", "session": session.id, "data": "exit 4\r"})
    await until(lambda: session.state == State.ERROR, "the shell to exit")
    await engine.resume(session.id)
    await engine.execute({"cmd": "term_input", "session": session.id, "data": "echo again-$((3*3))\r"})
    await until(lambda: shows(engine, session.id, "again-9"), "the new shell to answer")


async def test_typing_into_a_restored_session_starts_its_program(open_engine, repo, cockpit_env):
    config = terminal_config(sh=term(BASH))
    engine = await open_engine(config=config, agent_factory=make_agent)
    [session] = await engine.create_sessions(repo, agent="sh", name="sh")
    await engine.close()
    engine = await open_engine(config=config, agent_factory=make_agent)
    # Sizing a pane does not start anything; asking for the screen without `start` neither.
    assert await engine.execute({"cmd": "term_resize", "session": session.id, "cols": 90, "rows": 20}) is False
    assert await engine.execute({"cmd": "term_screen", "session": session.id}) is None
    await engine.execute({"cmd": "term_input", "session": session.id, "data": "echo back-$((5+5))\r"})
    await until(lambda: shows(engine, session.id, "back-10"), "the restarted shell")


# -- waiting detection -------------------------------------------------------------------------------


async def test_waiting_pattern_raises_attention_and_input_answers_it(open_engine, repo):
    agent = term([sys.executable, "-c", ASK_TWICE], waiting_patterns=[r"Allow step \d\? \[y/n\]"])
    engine, session = await start_session(open_engine, repo, "ask", ask=agent)
    states = engine.subscribe(accept=lambda e: e.kind == ev.SESSION_STATE and e.session == session.id)
    await until(lambda: session.state == State.WAITING, "waiting for the first answer")
    assert session.state_detail == "Allow step 1? [y/n]"
    await engine.execute({"cmd": "term_input", "session": session.id, "data": "y\r"})
    await until(lambda: shows(engine, session.id, "got y for 1"), "the program to go on")
    await until(lambda: session.state == State.WAITING and "step 2" in session.state_detail, "the second prompt")
    await engine.execute({"cmd": "term_input", "session": session.id, "data": "n\r"})
    await until(lambda: "exited with code 0" in session.state_detail, "the program to end")
    changes = [(e.data["state"], e.data["detail"]) for e in states.get_nowait()]
    seen = [state for state, _ in changes]
    # Each prompt raised attention once: the answered prompt, still on screen, did not again.
    assert seen.count("waiting") == 2, changes


@pytest.mark.slow
async def test_output_after_a_quiet_start_is_running_then_idle(open_engine, repo):
    script = "import time; time.sleep(0.8); [print(i, flush=True) or time.sleep(0.05) for i in range(20)]; time.sleep(60)"
    engine, session = await start_session(open_engine, repo, "job", job=term([sys.executable, "-c", script]))
    states = engine.subscribe(accept=lambda e: e.kind == ev.SESSION_STATE and e.session == session.id)
    await until(lambda: session.state == State.RUNNING, "running while it prints")
    await until(lambda: session.state == State.IDLE, "idle once quiet")
    assert [e.data["state"] for e in states.get_nowait()] == ["running", "idle"]


# -- bad input ---------------------------------------------------------------------------------------


async def test_terminal_commands_refuse_bad_input(open_engine, repo):
    engine = await open_engine(config=terminal_config(sh=term(BASH)), agent_factory=None)
    [chat] = await engine.create_sessions(repo, agent="builtin", name="chat")
    with pytest.raises(CockpitError, match=r"session @1 is not a terminal session \(agent 'builtin'\)"):
        await engine.execute({"cmd": "term_input", "session": chat.id, "data": "x"})
    [shell] = await engine.create_sessions(repo, agent="sh", name="sh")
    with pytest.raises(CockpitError, match=r"command 'term_resize': cols must be a whole number from 1 to 1000, got 0"):
        await engine.execute({"cmd": "term_resize", "session": shell.id, "cols": 0, "rows": 10})
    with pytest.raises(CockpitError, match="command 'term_input': data must be text, got int"):
        await engine.execute({"cmd": "term_input", "session": shell.id, "data": 5})
    with pytest.raises(CockpitError, match="has no agent running in this process"):
        await engine.execute({"cmd": "term_input", "session": shell.id, "data": "x"})


async def test_bad_waiting_pattern_names_the_key(open_engine, repo):
    engine, session = await start_session(open_engine, repo, "bad", bad=term(BASH, waiting_patterns=["ok", "(unclosed"]))
    assert session.state == State.ERROR
    assert session.state_detail.startswith("config: key 'agents.bad.waiting_patterns[1]': invalid regex '(unclosed'")


async def test_a_missing_program_is_an_error_line(open_engine, repo):
    engine, session = await start_session(open_engine, repo, "nope", nope=term(["no-such-program-xyz"]))
    assert session.state == State.ERROR
    assert session.state_detail == "agent 'nope': cannot start no-such-program-xyz: No such file or directory"


# -- the screen emulation ----------------------------------------------------------------------------


def _reference(chunks: list[str], columns: int, lines: int) -> pty_screen._Screen:
    screen = pty_screen._Screen(columns, lines, None)
    stream = pyte.Stream(screen)
    for chunk in chunks:
        stream.feed(chunk)
    return screen


@pytest.mark.parametrize("seed", range(6))
def test_flood_fast_path_leaves_the_same_screen_as_pyte(seed):
    rng = random.Random(seed)
    for _ in range(40):
        columns, lines = rng.choice([(80, 24), (200, 50), (30, 3)])
        parts = []
        for _ in range(rng.randint(1, 6)):
            roll = rng.random()
            if roll < 0.5:
                parts.append("".join(f"{'x' * rng.randint(0, 40)}{i}\r\n" for i in range(rng.randint(0, 400))))
            elif roll < 0.7:
                parts.append("\x1b[31mred\x1b[0m\r\n" * rng.randint(0, 30))
            elif roll < 0.85:
                parts.append("\x1b[2A\x1b[Kup" + "".join(f"l{i}\r\n" for i in range(rng.randint(0, 100))))
            else:
                parts.append("progress\t" + "10%\r20%" * rng.randint(0, 3))
        data = "".join(parts)
        cuts = sorted(rng.sample(range(len(data) + 1), min(len(data) + 1, rng.randint(0, 5))))
        chunks = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)])]
        expected = _reference(chunks, columns, lines)
        screen = TermScreen(columns, lines)
        for chunk in chunks:
            screen.feed(chunk.encode())
        assert screen.lines() == [expected.row_text(y) for y in range(lines)]
        assert [screen.runs(y) for y in range(lines)] == [_runs_of(expected, y) for y in range(lines)]
        assert (screen._screen.cursor.x, screen._screen.cursor.y) == (expected.cursor.x, expected.cursor.y)
        if columns > 50:  # no line wraps: the scrollback holds the very same lines
            assert screen.take_scrolled(10**7) == expected.scrollback.take(10**7)


def _runs_of(screen: pty_screen._Screen, y: int) -> list[list[str]]:
    probe = TermScreen(screen.columns, screen.lines)
    probe._screen.buffer[y] = screen.buffer[y]
    return probe.runs(y)


def test_alternate_screen_restores_the_shell_screen():
    screen = TermScreen(20, 4)
    screen.feed(b"$ vim\r\n")
    screen.feed(b"\x1b[?1049h\x1b[H\x1b[2Jfull screen\x1b[3;1Hrow three")
    assert screen.lines()[0] == "full screen" and screen.lines()[2] == "row three"
    screen.feed(b"\x1b[?1049l")
    assert screen.lines() == ["$ vim", "", "", ""]
    assert screen.take_scrolled(100) == ([], 0)  # nothing of the full-screen program was kept


def test_rows_are_runs_of_styles_and_modes_are_reported():
    screen = TermScreen(30, 2)
    screen.feed(b"\x1b[1;31mred\x1b[0m \x1b[38;5;208morange\x1b[0m \x1b[7mrev\x1b[0m   ")
    assert screen.runs(0) == [["red", "1,,1"], [" ", ""], ["orange", "ff8700,,0"], [" ", ""], ["rev", ",,16"]]
    assert screen.runs(1) == []
    assert screen.modes == {"app_cursor": False, "bracketed_paste": False}
    screen.feed(b"\x1b[?1h\x1b[?2004h")
    assert screen.modes == {"app_cursor": True, "bracketed_paste": True}
    frame = screen.frame()
    assert frame["n"] == 1 and frame["size"] == [30, 2] and frame["cursor"] == [17, 0]
    assert screen.frame()["rows"] == []  # nothing changed since


def test_a_shorter_screen_keeps_the_lines_above_the_cursor():
    screen = TermScreen(20, 10)
    screen.feed(b"one\r\ntwo\r\n$ ")
    screen.resize(20, 5)  # room below the cursor: only empty lines go
    assert screen.lines() == ["one", "two", "$", "", ""]
    screen.resize(20, 2)  # the cursor needs the room: the top line scrolls off, into the scrollback
    assert screen.lines() == ["two", "$"]
    assert screen.take_scrolled(10) == (["one"], 0)
    assert screen.frame()["cursor"] == [2, 1]


def test_program_queries_are_answered():
    replies: list[bytes] = []
    screen = TermScreen(10, 5, reply=replies.append)
    screen.feed(b"ab\x1b[6n")
    assert replies == [b"\x1b[1;3R"]
