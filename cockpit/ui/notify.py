"""Telling the person that a session needs them: bell, toast, desktop notification, hook.

Two halves:

* pure logic, unit-tested with a fake clock: `AttentionFolder` (core's `AttentionBatcher`,
  which the phone's notifications share) drops repeats (the same session, kind and text within
  `repeat_s`) and gathers what arrives within `burst_s` into one batch; `digest` turns a batch into the words of one notification ("5 sessions need you:
  @3 @4 …"); `desktop_sequence` builds the OSC 9 / OSC 777 bytes (wrapped for tmux);
  `hook_environment` builds the hook's environment.
* `Notifier`, the side effects on a running app: the bell and the hook fire at once for a new
  item; the toast and the desktop notification fire once per batch when its window closes.

The desktop notification is a few bytes written to the terminal, so it reaches the person's
desktop over SSH with nothing installed on either side. It goes through the Textual driver's
own `write` from the event loop, i.e. between two frames (a frame is written in one call), and
it does not move the cursor, so it cannot tear the screen. Headless (tests) and web drivers
get nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from cockpit.core.attention import BURST_S, REPEAT_S, Attention, AttentionBatcher, Kind

HOOK_TIMEOUT_S = 30.0
HOOK_CONCURRENCY = 4
HOOK_FAILURE_QUIET_S = 60.0  # at most one toast about a failing hook per minute
MAX_LISTED = 8  # session numbers named in a burst toast before "…"
MAX_TEXT = 200  # characters of text in a desktop notification


# ---------------------------------------------------------------------------------------------
# Pure logic


@dataclass(frozen=True)
class Digest:
    """What one toast / desktop notification says about a batch."""

    title: str
    message: str
    severity: Literal["information", "warning", "error"]
    items: tuple[Attention, ...]


class AttentionFolder(AttentionBatcher):
    """The screen's batches: `poll(now)` / `take()` hand one over as the words of one toast."""

    def poll(self, now: float) -> Digest | None:
        due = self.due_at
        if due is None or now < due:
            return None
        return self.take()

    def take(self) -> Digest | None:
        """Hand over the open batch now, whatever the time."""
        items = self.take_items()
        return digest(items) if items else None


def digest(items: Sequence[Attention]) -> Digest:
    """The words of one notification for a batch of items (oldest first)."""
    items = tuple(items)
    kinds = {i.kind for i in items}
    severity: Literal["information", "warning", "error"] = (
        "error" if "error" in kinds else "warning" if "approval" in kinds else "information"
    )
    sessions: dict[str, Attention] = {}
    for item in items:
        sessions.setdefault(item.session, item)
    if len(sessions) == 1:
        last = items[-1]
        title = {"approval": "approval needed", "error": "error", "finished": "finished"}[last.kind]
        more = f" (+{len(items) - 1} more)" if len(items) > 1 else ""
        return Digest(title, f"{last.label}: {last.text}{more}", severity, items)
    numbers = sorted({i.number for i in items})
    listed = " ".join(f"@{n}" for n in numbers[:MAX_LISTED])
    if len(numbers) > MAX_LISTED:
        listed += " …"
    verb = "finished" if kinds == {"finished"} else "need you"
    return Digest("cockpit", f"{len(sessions)} sessions {verb}: {listed}", severity, items)


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]+")


def clean(text: str, limit: int = MAX_TEXT) -> str:
    """Text that cannot end or escape a terminal control sequence."""
    text = _CONTROL.sub(" ", text).strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


Protocol = Literal["osc9", "osc777"]
BOTH: tuple[Protocol, ...] = ("osc9", "osc777")


def desktop_protocols(env: Mapping[str, str]) -> tuple[Protocol, ...]:
    """Which notification sequences to send to the terminal described by `env`.

    Terminals ignore the sequences they do not know, so by default both are sent. Terminals
    known to read both get only one, else they would show the notification twice. Inside tmux
    the outer terminal is unknown: both.
    """
    if env.get("TMUX"):
        return BOTH
    program = env.get("TERM_PROGRAM", "").lower()
    term = env.get("TERM", "").lower()
    if program == "iterm.app" or env.get("LC_TERMINAL") == "iTerm2" or env.get("WT_SESSION"):
        return ("osc9",)
    if program in ("wezterm", "ghostty") or term == "xterm-ghostty" or term.startswith(("foot", "rxvt")):
        return ("osc777",)
    return BOTH


def desktop_sequence(
    title: str, body: str, *, protocols: Sequence[Protocol] = BOTH, tmux: bool = False
) -> str:
    """The escape sequence(s) that make the terminal show a desktop notification.

    OSC 9 (iTerm2, WezTerm, Windows Terminal …) carries only text, so the title leads it;
    OSC 777 (rxvt, foot, Ghostty, WezTerm …) has a title field, which must not hold `;`.
    Under tmux each sequence is wrapped in tmux's DCS passthrough with every ESC doubled
    (tmux ≥ 3.3 also needs `set -g allow-passthrough on`).
    """
    title, body = clean(title, 60), clean(body)
    parts = []
    for protocol in protocols:
        if protocol == "osc9":
            # OSC 9 text must not begin with a digit and ';' (ConEmu/Windows Terminal read
            # "9;4;…" as a progress report): it begins with the title, which is never numeric.
            parts.append(f"\x1b]9;{title}: {body}\x07" if title else f"\x1b]9;{body}\x07")
        elif protocol == "osc777":
            parts.append(f"\x1b]777;notify;{title.replace(';', ',')};{body}\x07")
        else:
            raise ValueError(f"unknown desktop notification protocol {protocol!r}")
    if tmux:
        parts = [tmux_passthrough(p) for p in parts]
    return "".join(parts)


def tmux_passthrough(sequence: str) -> str:
    return "\x1bPtmux;" + sequence.replace("\x1b", "\x1b\x1b") + "\x1b\\"


def hook_environment(item: Attention, base: Mapping[str, str]) -> dict[str, str]:
    """The environment of the notify hook: the caller's plus what happened."""
    return {
        **base,
        "COCKPIT_SESSION": item.session,
        "COCKPIT_SESSION_NUMBER": str(item.number),
        "COCKPIT_SESSION_NAME": item.name,
        "COCKPIT_EVENT": item.kind,
        "COCKPIT_MESSAGE": item.text,
    }


# ---------------------------------------------------------------------------------------------
# Side effects


class Notifier:
    """Calls the person for an app that has `config.notify`, `bell`, `notify` and `set_timer`.

    Reads `app.config.notify` on every call, so a reloaded config takes effect at once.
    """

    def __init__(
        self,
        app: Any,
        *,
        clock: Callable[[], float] = time.monotonic,
        environ: Mapping[str, str] | None = None,
        repeat_s: float = REPEAT_S,
        burst_s: float = BURST_S,
    ) -> None:
        self.app = app
        self.clock = clock
        self.environ = environ if environ is not None else os.environ
        self.folder = AttentionFolder(repeat_s=repeat_s, burst_s=burst_s)
        self.sent: list[str] = []  # desktop sequences written (tests and debugging)
        self._hooks: set[asyncio.Task[None]] = set()
        self._hook_slots: asyncio.Semaphore | None = None
        self._hook_failed_at: float | None = None
        self._timer: Any = None

    @property
    def settings(self) -> Any:
        return self.app.config.notify

    # -- entry point ---------------------------------------------------------------------------

    def attention(self, session: Mapping[str, Any], kind: Kind, text: str) -> bool:
        """Call the person about `session`; False if it was a repeat and nothing happened."""
        item = Attention.of(session, kind, text)
        result = self.folder.offer(item, self.clock())
        if result == "repeat":
            return False
        settings = self.settings
        if result == "opened":
            if settings.bell:
                self.app.bell()  # once per batch, at once
            self._timer = self.app.set_timer(self.folder.burst_s, self.flush, name="notify-burst")
        if settings.hook:
            self._start_hook(settings.hook, item)
        return True

    def flush(self) -> Digest | None:
        """Close the open batch: one toast, one desktop notification."""
        self._timer = None
        found = self.folder.take()
        if found is None:
            return None
        self.app.notify(found.message, title=found.title, severity=found.severity, timeout=6, markup=False)
        if self.settings.desktop:
            self.write_desktop(found.title, found.message)
        return found

    # -- desktop notification ------------------------------------------------------------------

    def write_desktop(self, title: str, body: str) -> bool:
        """Write the notification sequence to the real terminal; False when there is none."""
        app = self.app
        driver = getattr(app, "_driver", None)
        if driver is None or getattr(app, "is_headless", True) or driver.is_headless or driver.is_web:
            return False
        sequence = desktop_sequence(
            f"cockpit: {title}" if title != "cockpit" else title, body,
            protocols=desktop_protocols(self.environ), tmux=bool(self.environ.get("TMUX")),
        )
        try:
            driver.write(sequence)
            driver.flush()
        except Exception:  # a closing driver must not take the app down with it
            return False
        self.sent.append(sequence)
        return True

    # -- hook ----------------------------------------------------------------------------------

    def _start_hook(self, command: str, item: Attention) -> None:
        task = asyncio.get_running_loop().create_task(self._run_hook(command, item))
        self._hooks.add(task)
        task.add_done_callback(self._hooks.discard)

    async def _run_hook(self, command: str, item: Attention) -> None:
        if self._hook_slots is None:
            self._hook_slots = asyncio.Semaphore(HOOK_CONCURRENCY)
        async with self._hook_slots:
            failure = await run_hook(command, hook_environment(item, self.environ))
        if failure:
            self._hook_failed(failure)

    def _hook_failed(self, failure: str) -> None:
        now = self.clock()
        if self._hook_failed_at is not None and now - self._hook_failed_at < HOOK_FAILURE_QUIET_S:
            return
        self._hook_failed_at = now
        self.app.notify(f"notify hook failed: {failure}", title="notify hook", severity="error",
                        timeout=8, markup=False)

    async def wait_hooks(self) -> None:
        """Wait for the hooks started so far (tests, and a tidy exit)."""
        while self._hooks:
            await asyncio.gather(*list(self._hooks), return_exceptions=True)

    def close(self) -> None:
        if self._timer is not None:
            self._timer.stop()
            self._timer = None
        for task in list(self._hooks):
            task.cancel()


async def run_hook(command: str, env: Mapping[str, str], *, timeout: float = HOOK_TIMEOUT_S) -> str:
    """Run the hook shell command; return "" on success, else one line saying why not.

    Its stdin and stdout are /dev/null and it runs in its own session, so it can neither read
    keys meant for the cockpit nor draw on the screen; stderr is kept for the error line.
    """
    try:
        process = await asyncio.create_subprocess_shell(
            command, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE, env=dict(env), start_new_session=True,
        )
    except OSError as exc:
        return f"cannot start {command!r}: {exc}"
    try:
        _, stderr = await asyncio.wait_for(process.communicate(), timeout)
    except asyncio.TimeoutError:
        _kill_group(process)
        await process.wait()
        return f"{command!r} took longer than {timeout:g} s and was stopped"
    except asyncio.CancelledError:
        _kill_group(process)
        raise
    if process.returncode:
        lines = [ln for ln in stderr.decode("utf-8", "replace").splitlines() if ln.strip()]
        why = f": {clean(lines[-1], 120)}" if lines else ""
        return f"{command!r} exited with {process.returncode}{why}"
    return ""


def _kill_group(process: asyncio.subprocess.Process) -> None:
    """Kill the hook's shell and whatever it started (it leads its own process group)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
