"""Calling the person: repeats and bursts folded, OSC bytes, the hook's environment."""

from __future__ import annotations

import shlex
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from cockpit.config import NotifyConfig, load_config
from cockpit.core import events as ev
from cockpit.core.engine import Engine
from cockpit.ui.notify import (
    Attention,
    AttentionFolder,
    Notifier,
    desktop_protocols,
    desktop_sequence,
    digest,
    tmux_passthrough,
)


def item(number: int, kind: str = "approval", text: str = "approve shell: ls") -> Attention:
    return Attention(f"s{number}", number, f"task-{number}", kind, text)  # type: ignore[arg-type]


# -- folding (pure, fake clock) ---------------------------------------------------------------


def test_same_session_kind_and_text_is_not_renotified_within_the_window() -> None:
    folder = AttentionFolder(repeat_s=30, burst_s=1)
    assert folder.offer(item(3), now=0.0) == "opened"
    assert folder.offer(item(3), now=5.0) == "repeat"
    assert folder.offer(item(3, text="approve shell: rm"), now=5.0) == "joined"  # other text
    assert folder.offer(item(3, kind="error"), now=5.0) == "joined"  # other kind
    assert folder.offer(item(3), now=29.9) == "repeat"
    folder.take()
    assert folder.offer(item(3), now=30.0) == "opened"  # the window has passed


def test_a_burst_across_sessions_becomes_one_digest() -> None:
    folder = AttentionFolder(repeat_s=30, burst_s=1)
    for n, t in zip((3, 4, 5, 6, 7), (0.0, 0.1, 0.4, 0.7, 0.9)):
        folder.offer(item(n), now=t)
    assert folder.due_at == 1.0
    assert folder.poll(0.99) is None
    found = folder.poll(1.0)
    assert found is not None
    assert found.message == "5 sessions need you: @3 @4 @5 @6 @7"
    assert found.severity == "warning" and len(found.items) == 5
    assert folder.poll(5.0) is None and folder.due_at is None  # handed over once
    assert folder.offer(item(8), now=1.5) == "opened"  # the next burst starts a new batch


def test_digest_words() -> None:
    one = digest([item(3)])
    assert (one.title, one.message, one.severity) == ("approval needed", "@3 task-3: approve shell: ls", "warning")
    twice = digest([item(3), item(3, kind="error", text="boom")])
    assert twice.message == "@3 task-3: boom (+1 more)" and twice.severity == "error"
    done = digest([item(1, "finished", "finished"), item(2, "finished", "finished")])
    assert (done.message, done.severity) == ("2 sessions finished: @1 @2", "information")
    many = digest([item(n) for n in range(12, 0, -1)])
    assert many.message == "12 sessions need you: @1 @2 @3 @4 @5 @6 @7 @8 …"


# -- desktop notification bytes ---------------------------------------------------------------


def test_osc_sequences_are_built_right() -> None:
    assert desktop_sequence("cockpit", "@3 fix: approve", protocols=["osc9"]) == "\x1b]9;cockpit: @3 fix: approve\x07"
    assert desktop_sequence("t;x", "a;b", protocols=["osc777"]) == "\x1b]777;notify;t,x;a;b\x07"
    both = desktop_sequence("cockpit", "hi")
    assert both == "\x1b]9;cockpit: hi\x07\x1b]777;notify;cockpit;hi\x07"
    # Text from agents cannot end the sequence early or smuggle in another one.
    evil = desktop_sequence("cockpit", "a\x07b\x1b]52;c;eA==\x07\nc", protocols=["osc9"])
    assert evil == "\x1b]9;cockpit: a b ]52;c;eA== c\x07"


def test_tmux_passthrough_doubles_escapes() -> None:
    assert tmux_passthrough("\x1b]9;hi\x07") == "\x1bPtmux;\x1b\x1b]9;hi\x07\x1b\\"
    wrapped = desktop_sequence("cockpit", "hi", tmux=True)
    assert wrapped == (
        "\x1bPtmux;\x1b\x1b]9;cockpit: hi\x07\x1b\\" "\x1bPtmux;\x1b\x1b]777;notify;cockpit;hi\x07\x1b\\"
    )


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, ("osc9", "osc777")),
        ({"TERM_PROGRAM": "iTerm.app"}, ("osc9",)),
        ({"LC_TERMINAL": "iTerm2", "TERM": "xterm-256color"}, ("osc9",)),  # iTerm2 over ssh
        ({"TERM": "xterm-ghostty"}, ("osc777",)),
        ({"TERM_PROGRAM": "WezTerm"}, ("osc777",)),
        ({"TERM": "foot"}, ("osc777",)),
        ({"TMUX": "/tmp/tmux-0/default,1,0", "TERM_PROGRAM": "WezTerm"}, ("osc9", "osc777")),
    ],
)
def test_protocols_for_terminal(env: dict[str, str], expected: tuple[str, ...]) -> None:
    assert desktop_protocols(env) == expected


# -- the notifier's side effects, on a fake app --------------------------------------------------


class FakeDriver:
    is_headless = False
    is_web = False

    def __init__(self) -> None:
        self.written: list[str] = []

    def write(self, data: str) -> None:
        self.written.append(data)

    def flush(self) -> None:
        pass


class FakeApp:
    def __init__(self, notify: NotifyConfig, *, headless: bool = False) -> None:
        self.config = SimpleNamespace(notify=notify)
        self.is_headless = headless
        self._driver = FakeDriver()
        self.bells = 0
        self.toasts: list[dict[str, Any]] = []
        self.timers: list[float] = []

    def bell(self) -> None:
        self.bells += 1

    def notify(self, message: str, **kwargs: Any) -> None:
        self.toasts.append({"message": message, **kwargs})

    def set_timer(self, delay: float, callback: Any, name: str = "") -> Any:
        self.timers.append(delay)
        return SimpleNamespace(stop=lambda: None)


def session(number: int) -> dict[str, Any]:
    return {"id": f"s{number}", "number": number, "name": f"task-{number}", "state": "waiting"}


async def test_notifier_rings_once_toasts_once_and_writes_desktop_once() -> None:
    clock = [100.0]
    app = FakeApp(NotifyConfig(bell=True, desktop=True))
    notifier = Notifier(app, clock=lambda: clock[0], environ={"TERM": "foot"})
    for n in (3, 4, 5):
        assert notifier.attention(session(n), "approval", "approve shell: ls")
    assert not notifier.attention(session(3), "approval", "approve shell: ls")  # a repeat
    assert app.bells == 1 and app.timers == [1.0] and app.toasts == []
    notifier.flush()
    assert [t["message"] for t in app.toasts] == ["3 sessions need you: @3 @4 @5"]
    assert app.toasts[0]["markup"] is False  # names and commands are not Rich markup
    assert app._driver.written == ["\x1b]777;notify;cockpit;3 sessions need you: @3 @4 @5\x07"]


async def test_notifier_respects_config_and_headless() -> None:
    app = FakeApp(NotifyConfig(bell=False, desktop=True), headless=True)
    notifier = Notifier(app, environ={})
    notifier.attention(session(1), "error", "boom")
    notifier.flush()
    assert app.bells == 0 and app._driver.written == []  # headless: no escape bytes
    assert app.toasts[0]["message"] == "@1 task-1: boom" and app.toasts[0]["severity"] == "error"

    quiet = FakeApp(NotifyConfig(bell=True, desktop=False))
    notifier = Notifier(quiet, environ={"TMUX": "x"})
    notifier.attention(session(2), "finished", "finished")
    notifier.flush()
    assert quiet.bells == 1 and quiet._driver.written == []


async def test_hook_runs_with_the_session_in_its_environment(tmp_path: Path) -> None:
    out = tmp_path / "hook.out"
    fields = ("COCKPIT_SESSION", "COCKPIT_SESSION_NUMBER", "COCKPIT_SESSION_NAME", "COCKPIT_EVENT", "COCKPIT_MESSAGE")
    hook = "printf '%s\\n' " + " ".join(f'"${name}"' for name in fields) + f" >> {shlex.quote(str(out))}"
    app = FakeApp(NotifyConfig(bell=False, desktop=False, hook=hook))
    notifier = Notifier(app, environ={"PATH": "/usr/bin:/bin"})
    notifier.attention(session(7), "approval", "approve shell: rm -rf 'build'")
    notifier.attention(session(8), "finished", "finished")
    await notifier.wait_hooks()
    lines = out.read_text().splitlines()
    records = sorted(zip(*[iter(lines)] * 5))
    assert records == [
        ("s7", "7", "task-7", "approval", "approve shell: rm -rf 'build'"),
        ("s8", "8", "task-8", "finished", "finished"),
    ]
    assert app.toasts == []  # the hook succeeded: nothing to say


async def test_failing_hooks_become_one_toast() -> None:
    app = FakeApp(NotifyConfig(bell=False, desktop=False, hook="echo 'no webhook url' >&2; exit 3"))
    notifier = Notifier(app, environ={"PATH": "/usr/bin:/bin"})
    for n in (1, 2, 3):
        notifier.attention(session(n), "error", "boom")
    await notifier.wait_hooks()
    failures = [t for t in app.toasts if t.get("title") == "notify hook"]
    assert len(failures) == 1
    assert failures[0]["message"] == (
        "notify hook failed: \"echo 'no webhook url' >&2; exit 3\" exited with 3: no webhook url"
    )


# -- wired into the app -----------------------------------------------------------------------


async def test_app_notifies_approval_and_finished_through_the_notifier(cockpit_env, repo: Path) -> None:
    from cockpit.ui.app import CockpitApp

    config = load_config()
    engine = await Engine.open(cockpit_env.home, config, None)
    try:
        first, second = await engine.create_sessions(str(repo), name="job", count=2)
        app = CockpitApp(engine, config)
        async with app.run_test() as pilot:
            await pilot.pause()
            app.set_focus(None)  # nobody is looking at either pane
            engine.emit(first.id, ev.SESSION_STATE, {"state": "running"})
            engine.emit(second.id, ev.APPROVAL_REQUEST, {"tool": "shell", "title": "ls"})
            engine.emit(second.id, ev.APPROVAL_REQUEST, {"tool": "shell", "title": "ls"})  # repeat
            engine.emit(first.id, ev.SESSION_STATE, {"state": "idle"})
            await pilot.pause(0.2)
            found = app.notifier.flush()
            assert found is not None
            kinds = sorted((i.number, i.kind) for i in found.items)
            assert kinds == [(first.number, "finished"), (second.number, "approval")]
            assert found.message == f"2 sessions need you: @{first.number} @{second.number}"
            await pilot.pause()
            assert [n.message for n in app._notifications] == [found.message]  # one toast
    finally:
        await engine.close()
