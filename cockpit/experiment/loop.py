"""One agent's loop: instruct → wait for the turn → commit → run → measure → keep or reset.

The cockpit drives every step, so the loop never depends on the agent remembering to go on.
Between iterations the branch head is always the branch's best commit and the worktree holds
exactly that commit: a kept change stays committed, anything else (a worse result, a crash, a
change outside the allowed files, a run's leftovers, a half-done iteration cut off by a stop
or a kill) is reset away. That invariant is what makes stop, kill -9 and resume safe.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from cockpit.core import events as ev
from cockpit.core.bus import Subscription
from cockpit.core.events import Event
from cockpit.core.model import Session
from cockpit.core.states import LIVE
from cockpit.errors import CockpitError
from cockpit.experiment import gitops
from cockpit.experiment.prompt import LastResult, summary_of
from cockpit.experiment.results import CRASH, DISCARD, KEEP, Row
from cockpit.experiment.state import Best

if TYPE_CHECKING:
    from cockpit.core.engine import Engine
    from cockpit.core.process import ShellResult
    from cockpit.experiment.definition import Definition
    from cockpit.experiment.results import ResultsFile
    from cockpit.experiment.state import ExperimentState

# Phases, as the leaderboard shows them.
STARTING, TURN, RUN, BETWEEN, DONE = "starting", "agent", "running", "between", "done"
_ACCEPTED = frozenset({ev.TEXT_DELTA, ev.MESSAGE_END, ev.TURN_END, ev.SESSION_STATE, ev.RESYNC})
_MAX_ERROR_BACKOFF_S = 60.0


class CockpitClosed(CockpitError):
    """The engine shut down under a waiting loop."""


@dataclass(frozen=True)
class Turn:
    text: str  # everything the agent wrote this turn
    error: str  # why the turn failed, "" when it ended normally


@dataclass(frozen=True)
class Timing:
    """Where one iteration's time went; `overhead_s` is the cockpit's own share."""

    agent_s: float
    run_s: float
    overhead_s: float


class Shared(Protocol):
    """What a loop asks of its experiment (`runner.Experiment`): what every agent's loop shares."""

    engine: Engine
    definition: Definition
    state: ExperimentState
    results: ResultsFile
    protected: list[str]
    identity: tuple[str, ...]

    @property
    def name(self) -> str: ...

    def stop_reason(self, loop: AgentLoop) -> str: ...

    def prompt_for(self, loop: AgentLoop) -> str: ...

    async def run_command(self, session: Session) -> ShellResult: ...

    def measure(self, result: ShellResult) -> tuple[float | None, str]: ...

    def write_log(self, agent: str, output: str) -> None: ...

    def log_tail(self, output: str) -> str: ...

    def record(self, loop: AgentLoop, row: Row, timing: Timing) -> None: ...

    def global_best(self) -> Row | None: ...

    def best_moved(self, loop: AgentLoop) -> None: ...

    def agent_label(self, agent: str) -> str: ...


class AgentLoop:
    def __init__(self, experiment: Shared, session_id: str):
        self.x = experiment
        self.session_id = session_id
        self.phase = STARTING
        self.best = Best("", None)  # set by reconcile(); the branch head between iterations
        self.last: LastResult | None = None
        self.notes: list[str] = []  # delivered with the next instructions
        self.moved_to = ""  # what sharing did to the branch, told with the next instructions
        self.done_reason = ""
        self._error_streak = 0

    @property
    def session(self) -> Session:
        return self.x.engine.get(self.session_id)

    @property
    def runs(self) -> int:
        return self.x.results.runs_of(self.session_id)

    # -- the loop --------------------------------------------------------------------------------

    async def reconcile(self, fallback: Best) -> None:
        """Find the branch's best after a start or a restart and put the worktree there.

        The head is the best when results.tsv kept it (own keep, baseline, or another agent's
        best that sharing moved it to); otherwise an iteration was cut off after its commit, and
        the best recorded in state.json (else `fallback`, the baseline) is restored.
        """
        worktree = self.session.path
        current = await gitops.head(worktree)
        kept = self.x.results.kept(current)
        self.best = Best(current, kept.metric) if kept else self.x.state.bests.get(self.session_id, fallback)
        await gitops.restore(worktree, self.best.commit, self.x.protected)

    async def run(self) -> None:
        """Iterate until the budget is spent or the experiment stops; tidy up when cancelled."""
        subscription = self.x.engine.subscribe(accept=self._accepts)
        try:
            while not (reason := self.x.stop_reason(self)):
                await self.iterate(subscription)
            self.done_reason = reason
        except CockpitClosed:
            raise
        except CockpitError as exc:  # its session was archived or removed, its worktree broke
            self.done_reason = f"stopped: {exc}"
        except asyncio.CancelledError:
            await self._tidy()
            raise
        finally:
            self.phase = DONE
            subscription.close()

    def _accepts(self, event: Event) -> bool:
        return event.session == self.session_id and event.kind in _ACCEPTED

    async def _tidy(self) -> None:
        """After a stop: interrupt a running turn, put the worktree back at the best commit."""
        with contextlib.suppress(CockpitError):
            if self.phase == TURN:
                await self.x.engine.interrupt(self.session_id)
            if self.best.commit:
                await gitops.restore(self.session.path, self.best.commit, self.x.protected)

    async def iterate(self, subscription: Subscription) -> None:
        clock = asyncio.get_running_loop().time
        begun, started = clock(), time.time()
        await self._follow_best()
        prompt = self.x.prompt_for(self)
        self.notes.clear()
        self.moved_to = ""
        self.phase = TURN
        sent = clock()
        turn = await self._turn(subscription, prompt)
        agent_s = clock() - sent
        self.phase = BETWEEN
        summary = summary_of(turn.text)
        worktree = self.session.path
        changed = await gitops.changed_paths(worktree, self.x.protected)
        reason = self._unmeasurable(turn, changed)
        if reason:
            if changed:
                await gitops.restore(worktree, self.best.commit, self.x.protected)
            row = Row("", None, DISCARD, _described(summary, reason), self.session_id, started, time.time())
            self._record(row, LastResult(DISCARD, None, reason), agent_s, 0.0, begun)
            await self._back_off(bool(turn.error))
            return
        self._error_streak = 0
        message = (f"{summary or 'experiment change'}\n\n"
                   f"experiment {self.x.name}, agent {self.x.agent_label(self.session_id)}, iteration {self.runs + 1}")
        sha = await gitops.commit(worktree, changed, message, self.x.identity)
        self.phase = RUN
        ran = clock()
        result = await self.x.run_command(self.session)
        run_s = clock() - ran
        self.phase = BETWEEN
        self.x.write_log(self.session_id, result.output)
        metric, reason = self.x.measure(result)
        if metric is None:
            status = CRASH
        elif self.x.definition.better(metric, self.best.metric):
            status, self.best = KEEP, Best(sha, metric)
        else:
            status = DISCARD
        await gitops.restore(worktree, self.best.commit, self.x.protected)
        tail = self.x.log_tail(result.output) if status == CRASH else ""
        row = Row(sha, metric, status, _described(summary, reason), self.session_id, started, time.time())
        self._record(row, LastResult(status, metric, reason, tail), agent_s, run_s, begun)

    def _unmeasurable(self, turn: Turn, changed: list[str]) -> str:
        """Why this turn's change cannot be run, or "" when it can."""
        if turn.error:
            return f"agent error: {turn.error}"
        if not changed:
            return "no change was made"
        forbidden = [p for p in changed if not self.x.definition.allows(p)]
        if forbidden:
            return f"changed files outside {', '.join(self.x.definition.spec.files)}: {', '.join(forbidden[:5])}"
        return ""

    def _record(self, row: Row, last: LastResult, agent_s: float, run_s: float, begun: float) -> None:
        """Hand the row to the experiment; the cockpit's overhead is what agent and run did not use."""
        overhead = asyncio.get_running_loop().time() - begun - agent_s - run_s
        self.last = last
        self.x.record(self, row, Timing(agent_s, run_s, overhead))

    async def _turn(self, subscription: Subscription, prompt: str) -> Turn:
        """Send the instructions and wait for the agent's turn to end; collect what it wrote."""
        subscription.get_nowait()  # what happened before this turn is not its outcome
        await self.x.engine.send(self.session_id, prompt)
        messages: list[str] = []  # the turn's finished messages
        message: list[str] = []  # the one streaming now
        while True:
            try:
                event = await subscription.get()
            except StopAsyncIteration:
                raise CockpitClosed("the cockpit closed") from None
            kind, data = event.kind, event.data
            if kind == ev.TEXT_DELTA:
                message.append(data.get("text", ""))
            elif kind == ev.MESSAGE_END:
                if not data.get("discarded"):
                    messages.append("".join(message))
                message.clear()
            elif kind == ev.TURN_END:
                return Turn("\n".join([*messages, "".join(message)]), data.get("error") or "")
            elif kind == ev.SESSION_STATE and data.get("state") in ("idle", "error"):
                # Some turns end without TURN_END (a budget refusal): the state says it.
                error = data.get("detail", "") if data.get("state") == "error" else ""
                return Turn("\n".join([*messages, "".join(message)]), error)
            elif kind == ev.RESYNC and self.session.state not in LIVE:
                return Turn("\n".join([*messages, "".join(message)]), "")

    async def _follow_best(self) -> None:
        """Sharing "reset-to-best": move this branch to a strictly better result of another agent.

        Reset rather than rebase: this branch's kept commits were measured on another base, so
        replayed onto the new best they would be untested combinations (and a conflict would
        stall the agent). The reset lands on a measured state; the agent's own ideas stay in
        results.tsv and its conversation, and it can re-apply the ones that still make sense.
        """
        if self.x.definition.spec.sharing != "reset-to-best":
            return
        best = self.x.global_best()
        if best is None or best.metric is None or best.is_commit(self.best.commit):
            return
        if not self.x.definition.better(best.metric, self.best.metric):
            return
        worktree = self.session.path
        await gitops.restore(worktree, best.commit, self.x.protected)
        self.best = Best(await gitops.head(worktree), best.metric)
        self.moved_to = (
            f"Your branch was reset to the best result so far: metric {best.metric:.6g} by "
            f"{self.x.agent_label(best.agent)} (commit {best.commit}: {best.description}). Build on it."
        )
        self.x.best_moved(self)

    async def _back_off(self, failed: bool) -> None:
        """After agent errors (a provider outage), wait longer each time instead of spinning."""
        if not failed:
            self._error_streak = 0
            return
        self._error_streak += 1
        await asyncio.sleep(min(_MAX_ERROR_BACKOFF_S, 2.0 ** self._error_streak))


def _described(summary: str, reason: str) -> str:
    if not reason:
        return summary or "(no summary)"
    return f"{summary} [{reason}]" if summary else f"[{reason}]"

