"""One running experiment (`Experiment`) and the engine's experiments (`ExperimentManager`).

The experiment owns what the agents' loops share: the definition, results.tsv, state.json, the
global best, the run slots and the budget. Its task is one of the engine's background tasks, so
closing the engine stops it the same way a stop does: every loop's turn is interrupted, its
run's process group killed and its worktree put back at its best commit. Other processes reach
it through the engine's commands (the cockpit server), never through its files.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import statistics
import time
from collections import deque
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cockpit.core import events as ev
from cockpit.core.model import Session
from cockpit.core.process import ShellResult, run_process
from cockpit.core.setup import include_patterns
from cockpit.core.states import LIVE
from cockpit.errors import CockpitError
from cockpit.experiment import gitops
from cockpit.experiment.definition import DEFAULT_FILE, Definition, is_better, load_definition
from cockpit.experiment.loop import TURN, AgentLoop, CockpitClosed, Timing
from cockpit.experiment.prompt import PromptInputs, iteration_prompt
from cockpit.experiment.results import BASELINE, CRASH, KEEP, ResultsFile, Row, global_best, read_rows, standings
from cockpit.experiment.state import (
    FAILED, FINISHED, LOGS_DIR, RESULTS_FILE, RUNNING, STOPPED, Best, ExperimentState,
    experiment_dir, experiment_names,
)

if TYPE_CHECKING:
    from cockpit.core.engine import Engine

NOTE_PREFIX = "Note from the person running the experiment: "
_TIMINGS_KEPT = 1000


class Experiment:
    """One experiment running in this process: its loops and everything they share."""

    def __init__(self, engine: Engine, definition: Definition, state: ExperimentState, folder: Path):
        self.engine = engine
        self.definition = definition
        self.state = state
        self.folder = folder
        self.results = ResultsFile(folder / RESULTS_FILE)
        self.loops = {sid: AgentLoop(self, sid) for sid in state.sessions}
        copy, link = include_patterns(definition.repo, engine.config.worktrees)
        self.protected = [*copy, *link]  # brought into worktrees by the cockpit, never the agent's work
        self.identity: tuple[str, ...] = ()
        self.timings: deque[Timing] = deque(maxlen=_TIMINGS_KEPT)
        self.task: asyncio.Task[None] | None = None
        self._slots = asyncio.Semaphore(definition.spec.concurrent_runs) if definition.spec.concurrent_runs else None
        self._best = global_best(self.results.rows, definition.better)
        self._program = definition.program_path.read_text(encoding="utf-8", errors="replace")
        self._elapsed_before = state.elapsed_s
        self._started = 0.0
        self._stop_detail = ""

    @property
    def name(self) -> str:
        return self.state.name

    # -- life cycle ------------------------------------------------------------------------------

    async def run(self) -> None:
        """Baseline (once), then every agent's loop until all are done or the experiment stops."""
        self._started = time.monotonic()
        self._set_status(RUNNING, "", pid=os.getpid())
        status, detail = FAILED, ""
        try:
            self.identity = await gitops.commit_identity(self.definition.repo)
            baseline = self.results.baseline() or await self._run_baseline()
            fallback = Best(baseline.commit, baseline.metric)
            loops = list(self.loops.values())
            await asyncio.gather(*(loop.reconcile(fallback) for loop in loops))
            tasks = [asyncio.create_task(loop.run(), name=f"experiment-{self.name}-{loop.session_id}") for loop in loops]
            try:
                await asyncio.gather(*tasks)
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
            status, detail = FINISHED, "; ".join(dict.fromkeys(loop.done_reason for loop in loops))
        except CockpitClosed as exc:
            status, detail = STOPPED, str(exc)
        except asyncio.CancelledError:
            status, detail = STOPPED, self._stop_detail or "the cockpit closed"
            raise
        except CockpitError as exc:
            detail = str(exc)
        except Exception as exc:  # a bug: say so in the state, keep the traceback for the log
            detail = f"internal error: {exc!r}"
            raise
        finally:
            self._set_status(status, detail, pid=0)

    async def stop(self, detail: str = "stopped by the person") -> None:
        """Stop now: turns interrupted, runs killed, worktrees back at their best commits."""
        if self.task is None or self.task.done():
            return
        self._stop_detail = detail
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task

    def _set_status(self, status: str, detail: str, *, pid: int) -> None:
        self.state.status, self.state.detail, self.state.pid = status, detail, pid
        self._save_state()
        self.engine.emit("", ev.EXPERIMENT_STATE, {"experiment": self.name, "status": status, "detail": detail})

    def _save_state(self) -> None:
        self.state.elapsed_s = self.elapsed()
        self.state.save(self.folder)

    def elapsed(self) -> float:
        running = time.monotonic() - self._started if self._started else 0.0
        return self._elapsed_before + running

    async def _run_baseline(self) -> Row:
        """Measure the base commit once, in the first agent's worktree, before any agent works."""
        session = self.engine.get(self.state.sessions[0])
        await gitops.restore(session.path, session.base_commit, self.protected)
        started = time.time()
        result = await self.run_command(session)
        self.write_log(BASELINE, result.output)
        metric, reason = self.measure(result)
        description = f"baseline [{reason}]" if reason else "baseline"
        row = Row(session.base_commit, metric, KEEP if metric is not None else CRASH, description, BASELINE,
                  started, time.time())
        self._append(row)
        await gitops.restore(session.path, session.base_commit, self.protected)
        if metric is None:
            raise CockpitError(
                f"experiment {self.name!r}: the run command failed on the base commit ({reason}); see "
                f"{self.folder / LOGS_DIR / (BASELINE + '.log')}, fix `run` in {self.definition.source}, "
                f"then `cockpit experiment resume {self.name}`"
            )
        return row

    # -- what the loops share --------------------------------------------------------------------

    def stop_reason(self, loop: AgentLoop) -> str:
        """Why `loop` must not start another iteration, or "" while its budget has room."""
        budget = self.definition.spec.budget
        tokens, cost = self.usage()
        if budget.runs and loop.runs >= budget.runs:
            return f"budget spent: {budget.runs} runs each"
        if budget.minutes and self.elapsed() >= budget.minutes * 60:
            return f"budget spent: {budget.minutes:g} minutes"
        if budget.tokens and tokens >= budget.tokens:
            return f"budget spent: {budget.tokens} tokens"
        if budget.cost_usd and cost >= budget.cost_usd:
            return f"budget spent: ${budget.cost_usd:.2f}"
        return self.engine.budget_exceeded(loop.session)

    def usage(self) -> tuple[int, float]:
        """Tokens and cost of every agent of the experiment (their sessions exist for it alone)."""
        sessions = [self.engine.sessions[s] for s in self.state.sessions if s in self.engine.sessions]
        return sum(s.usage.total_tokens for s in sessions), sum(s.usage.cost_usd for s in sessions)

    def global_best(self) -> Row | None:
        return self._best

    def run_slot(self) -> contextlib.AbstractAsyncContextManager[Any]:
        return self._slots if self._slots is not None else contextlib.nullcontext()

    async def run_command(self, session: Session) -> ShellResult:
        """The run command in the session's worktree, under the time limit and a run slot."""
        spec = self.definition.spec
        env = {**os.environ, **self.engine.hosts[session.id].env, "COCKPIT_EXPERIMENT": self.name}
        async with self.run_slot():
            return await run_process(["bash", "-c", spec.run], self.definition.run_dir(session.path), env, spec.timeout)

    def measure(self, result: ShellResult) -> tuple[float | None, str]:
        """(metric, "") for a good run, else (None, why it is a crash)."""
        if result.timed_out:
            return None, f"timed out after {self.definition.spec.timeout:g}s"
        if result.exit_code != 0:
            code = result.exit_code or 0
            return None, f"killed by signal {-code}" if code < 0 else f"exit {code}"
        metric = self.definition.read_metric(result.output)
        return metric.value, metric.problem

    def write_log(self, agent: str, output: str) -> None:
        logs = self.folder / LOGS_DIR
        logs.mkdir(exist_ok=True)
        (logs / f"{agent}.log").write_text(output, encoding="utf-8")

    def log_tail(self, output: str) -> str:
        count = self.definition.spec.log_tail
        return "\n".join(output.rstrip().splitlines()[-count:]) if count else ""

    def prompt_for(self, loop: AgentLoop) -> str:
        spec, best = self.definition.spec, self._best
        return iteration_prompt(PromptInputs(
            experiment=self.name, program=self._read_program(), run_number=loop.runs + 1,
            runs_budget=spec.budget.runs, direction=spec.direction, run_command=spec.run, files=spec.files,
            best=loop.best.metric, best_commit=loop.best.commit,
            global_best=best.metric if best else None, global_best_by=self.agent_label(best.agent) if best else "-",
            last=loop.last, notes=list(loop.notes), moved_to=loop.moved_to,
        ))

    def _read_program(self) -> str:
        """The instructions as the person left them; the last good read if the file is gone."""
        with contextlib.suppress(OSError):
            self._program = self.definition.program_path.read_text(encoding="utf-8", errors="replace")
        return self._program

    def agent_label(self, agent: str) -> str:
        session = self.engine.sessions.get(agent)
        return f"@{session.number} {session.name}" if session else agent

    def record(self, loop: AgentLoop, row: Row, timing: Timing) -> None:
        """One iteration ended: its row, the global best, the branch's best, an event."""
        self._append(row, timing)
        self.state.bests[loop.session_id] = loop.best
        self._save_state()

    def best_moved(self, loop: AgentLoop) -> None:
        self.state.bests[loop.session_id] = loop.best
        self._save_state()

    def _append(self, row: Row, timing: Timing | None = None) -> None:
        row = self.results.append(row)
        if row.status == KEEP and row.metric is not None and self.definition.better(
                row.metric, self._best.metric if self._best else None):
            self._best = row
        data: dict[str, Any] = {"experiment": self.name, "row": row.to_dict(),
                                "global_best": self._best.metric if self._best else None}
        if timing is not None:
            self.timings.append(timing)
            data.update(agent_s=timing.agent_s, run_s=timing.run_s, overhead_ms=timing.overhead_s * 1000)
        session = row.agent if row.agent in self.engine.sessions else ""
        self.engine.emit(session, ev.EXPERIMENT_RUN, data)

    # -- steering --------------------------------------------------------------------------------

    async def note(self, text: str, agents: Iterable[str] = ()) -> list[str]:
        """Route a note to some agents (all when none named): now if it is mid-turn, else with
        its next instructions (never between its commit and its run, which the note could spoil)."""
        if not text.strip():
            raise CockpitError("a note needs some text")
        targets = [self._loop_of(ref) for ref in agents] or list(self.loops.values())
        for loop in targets:
            if loop.phase == TURN and loop.session.state in LIVE:
                await self.engine.send(loop.session_id, NOTE_PREFIX + text)
            else:
                loop.notes.append(text)
        return [loop.session_id for loop in targets]

    def _loop_of(self, ref: str) -> AgentLoop:
        session = self.engine.get(ref)
        loop = self.loops.get(session.id)
        if loop is None:
            raise CockpitError(f"@{session.number} is not an agent of experiment {self.name!r}")
        return loop

    def status(self) -> dict[str, Any]:
        return describe(self.state, self.results.rows, self.engine.sessions, self.loops, self.timings,
                        self.usage(), self.elapsed())


def describe(
    state: ExperimentState,
    rows: list[Row],
    sessions: Mapping[str, Session],
    loops: Mapping[str, AgentLoop] | None = None,
    timings: Iterable[Timing] = (),
    usage: tuple[int, float] | None = None,
    elapsed: float | None = None,
) -> dict[str, Any]:
    """The experiment as JSON: status, budget, global best and every agent's standing."""
    spec = state.spec
    direction = spec.get("direction", "min")

    def better(value: float, than: float | None) -> bool:
        return is_better(direction, value, than)

    table = standings(rows, state.sessions, better)
    best = global_best(rows, better)
    baseline = next((r for r in reversed(rows) if r.agent == BASELINE and r.status == KEEP), None)
    known = [sessions[s] for s in state.sessions if s in sessions]
    tokens, cost = usage if usage is not None else (
        sum(s.usage.total_tokens for s in known), sum(s.usage.cost_usd for s in known))
    agents = []
    for sid in state.sessions:
        session, loop = sessions.get(sid), (loops or {}).get(sid)
        agents.append({
            **table[sid].to_dict(), "session": sid,
            "number": session.number if session else 0, "name": session.name if session else sid,
            "phase": loop.phase if loop is not None else state.status, "done": loop.done_reason if loop else "",
        })
    overheads = [t.overhead_s * 1000 for t in timings]
    return {
        "name": state.name, "status": state.status, "detail": state.detail, "repo": state.repo,
        "definition": state.definition, "direction": direction, "run": spec.get("run", ""),
        "files": spec.get("files", []), "sharing": spec.get("sharing", "none"), "budget": spec.get("budget", {}),
        "elapsed_s": elapsed if elapsed is not None else state.elapsed_s, "tokens": tokens, "cost_usd": cost,
        "baseline": baseline.metric if baseline else None,
        "best": best.to_dict() if best else None,
        "best_session": best.agent if best and best.agent in sessions else "",
        "rows": len(rows), "agents": agents,
        "overhead_ms": statistics.median(overheads) if overheads else None,
    }


class ExperimentManager:
    """The experiments of one engine: start, resume, stop, steer and report them."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self.running: dict[str, Experiment] = {}

    @property
    def home(self) -> Path:
        return self.engine.home

    def owns(self, session_id: str) -> bool:
        """Whether a running experiment drives this session (its loop commits every iteration,
        so the merge desk's per-turn checkpoints would only double the git work)."""
        return any(session_id in experiment.state.sessions for experiment in self.running.values())

    async def start(self, repo: str | Path, file: str | Path | None = None,
                    overrides: Mapping[str, Any] | None = None) -> Experiment:
        """Check the definition, create one session per agent and launch the loops.

        `file` is relative to `repo` unless absolute; without it `repo/experiment.toml` is used
        when it exists, else the flags in `overrides` must define the whole experiment.
        """
        self._need_agents()
        overrides = dict(overrides or {})
        info = await self.engine.worktrees.inspect_repo(repo)
        path = _definition_file(Path(repo), file)
        definition = load_definition(info.root, path, overrides)
        spec = definition.spec
        folder = experiment_dir(self.home, spec.name)
        if folder.exists():
            raise CockpitError(
                f"experiment {spec.name!r} exists ({folder}); resume it (`cockpit experiment resume {spec.name}`) "
                "or choose another name (name = … in the file, or --name)"
            )
        self.engine.config.agent(spec.agent or self.engine.config.defaults.agent)  # an unknown agent fails first
        sessions = await self.engine.create_sessions(
            info.root, name=spec.name, count=spec.agents, tags=["experiment", spec.name],
            agent=spec.agent or None, model=spec.model, base_ref=spec.base or None,
        )
        folder.mkdir(parents=True)
        state = ExperimentState(name=spec.name, repo=str(info.root), definition=str(path) if path else "",
                                overrides=overrides, spec=dataclasses.asdict(spec), sessions=[s.id for s in sessions])
        return self._launch(definition, state, folder)

    async def resume(self, name: str, overrides: Mapping[str, Any] | None = None) -> Experiment:
        """Continue a stopped (or killed) experiment: the count, bests and branches carry on.

        The definition file is read again (an edit, a bigger budget take effect); `overrides`
        add to the flags it was started with.
        """
        self._need_agents()
        if name in self.running:
            raise CockpitError(f"experiment {name!r} is already running")
        folder = experiment_dir(self.home, name)
        state = ExperimentState.load(folder)
        if state.live and state.pid != os.getpid():
            raise CockpitError(
                f"experiment {name!r} is running in process {state.pid}; stop it first (`cockpit experiment stop {name}`)"
            )
        merged = {**state.overrides, **(overrides or {})}
        definition = load_definition(Path(state.repo), Path(state.definition) if state.definition else None, merged)
        definition.spec.name = name  # the folder's name, whatever the file says now
        for sid in state.sessions:
            if sid not in self.engine.sessions:
                raise CockpitError(f"experiment {name!r}: its agent session {sid} no longer exists; start a new experiment")
        state.overrides, state.spec = merged, dataclasses.asdict(definition.spec)
        return self._launch(definition, state, folder)

    def _need_agents(self) -> None:
        if self.engine.agent_factory is None:
            raise CockpitError("experiments need agents, and this cockpit runs without them")

    def _launch(self, definition: Definition, state: ExperimentState, folder: Path) -> Experiment:
        experiment = Experiment(self.engine, definition, state, folder)
        self.running[state.name] = experiment
        experiment.task = self.engine._background(experiment.run())
        experiment.task.add_done_callback(lambda _: self.running.pop(state.name, None))
        return experiment

    async def close(self) -> None:
        """Stop every running experiment (the engine is closing)."""
        for experiment in list(self.running.values()):
            await experiment.stop("the cockpit closed")

    async def wait(self, name: str) -> dict[str, Any]:
        """Until the experiment ends (budget spent, stopped or failed); its final status."""
        experiment = self.running.get(name)
        if experiment is not None and experiment.task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(experiment.task)
        return self.status(name)

    async def stop(self, name: str, detail: str = "stopped by the person") -> dict[str, Any]:
        """Stop it now; one whose process died (a kill, a crash) is marked stopped instead."""
        experiment = self.running.get(name)
        if experiment is not None:
            await experiment.stop(detail)
            return self.status(name)
        folder = experiment_dir(self.home, name)
        state = ExperimentState.load(folder)
        if state.live:
            raise CockpitError(f"experiment {name!r} runs in process {state.pid}, not in this cockpit; stop it there")
        if state.status not in (STOPPED, FINISHED, FAILED):
            state.status, state.detail, state.pid = STOPPED, "its process ended without stopping it", 0
            state.save(folder)
        return self.status(name)

    async def note(self, name: str, text: str, agents: Iterable[str] = ()) -> list[str]:
        experiment = self.running.get(name)
        if experiment is None:
            raise CockpitError(f"experiment {name!r} is not running in this cockpit")
        return await experiment.note(text, agents)

    def status(self, name: str) -> dict[str, Any]:
        experiment = self.running.get(name)
        if experiment is not None:
            return experiment.status()
        folder = experiment_dir(self.home, name)
        state = ExperimentState.load(folder)
        results = folder / RESULTS_FILE
        return describe(state, read_rows(results) if results.exists() else [], self.engine.sessions)

    def list(self) -> list[dict[str, Any]]:
        names = set(experiment_names(self.home)) | set(self.running)
        return [self.status(name) for name in sorted(names)]


def _definition_file(repo: Path, file: str | Path | None) -> Path | None:
    if file is not None:
        path = Path(file)
        return path if path.is_absolute() else repo / path
    default = repo / DEFAULT_FILE
    return default if default.is_file() else None
