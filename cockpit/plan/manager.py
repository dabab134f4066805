"""`PlanManager`: the engine's plans, from the conductor's proposal to the last merge.

A plan starts with a conductor session (`new`), which proposes sub-tasks (`propose`); the
proposal waits for the person, who may edit or drop sub-tasks first (`edit`, `drop`), then
approves (`approve`) or rejects it. Approval starts one session per ready sub-task, tagged
`#plan-<id>`; a sub-task that comes `after` others starts once they have merged. `wait`,
`merge` and `status` are what the conductor watches and lands them with. Every change is saved
(`PlanStore`) and announced as a `plan` event, which is what the screens draw the tree from.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import string
from typing import TYPE_CHECKING, Any

from cockpit.core import events as ev
from cockpit.core.diffstat import diffstat
from cockpit.core.merge import changed_files, read_tip
from cockpit.core.model import Session
from cockpit.core.states import LIVE, State
from cockpit.errors import CockpitError
from cockpit.plan import model as pm
from cockpit.plan.model import Plan, PlanError, SubTask
from cockpit.plan.permits import conductor_permit
from cockpit.plan.store import PlanStore

if TYPE_CHECKING:
    from cockpit.core.engine import Engine

CONDUCTOR_AGENT = "conductor"
_ID_ALPHABET = string.ascii_lowercase + string.digits
TURN_START_S = 30.0  # how long `send` waits for the instructed session's turn to begin
#: States in which a sub-task's session has stopped and waits for someone (the conductor or the person).
SETTLED = frozenset({State.IDLE, State.ERROR, State.WAITING, State.MERGED, State.ARCHIVED})

CONDUCTOR_TASK = """Plan this task as parallel sub-tasks, one coding session each:

{task}

Read the repository as you need, then call propose_plan once. When the person approves, the
sessions start; wait for them, check their diffs, verify and merge them, and start the sub-tasks
that come after the merged ones (new). Finish with a short summary of what landed."""

SUBTASK_TASK = """{task}

This is sub-task {sub_id} of plan {plan_id} ({plan_task}). Touch only these files: {files}.
Other sessions work on the other parts in parallel; finish with a short summary."""


class PlanManager:
    """The plans of one engine (its `engine.plans`)."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self.store = PlanStore(engine.home)
        self._decisions: dict[str, asyncio.Future[dict[str, Any]]] = {}  # plan id → the person's answer
        self._reported: set[str] = set()  # approval requests a `wait` has told the conductor about

    # -- the engine's Service ------------------------------------------------------------------

    def owns(self, session_id: str) -> bool:
        return False  # plan sessions are ordinary sessions: checkpoints, review and merge as usual

    async def close(self) -> None:
        for future in self._decisions.values():
            future.cancel()
        self._decisions.clear()

    # -- the plan's life -------------------------------------------------------------------------

    async def new(self, repo: str, task: str, agent: str = "") -> dict[str, Any]:
        """Make a plan for `task` and start its conductor session."""
        if not task.strip():
            raise PlanError("a plan needs a task: what should be done, in a sentence or more")
        root = (await self.engine.add_repo(repo)).path
        if agent:
            self.engine.configs.for_repo(root).agent(agent)  # an unknown agent: refused now, not at approval
        plan = Plan(id=self._new_id(), repo=str(root), task=task.strip(), agent=agent)
        (conductor,) = await self.engine.create_sessions(
            root, name=plan.tag, agent=CONDUCTOR_AGENT, tags=[plan.tag, "conductor"])
        plan.conductor = conductor.id
        self._changed(plan)
        await self.engine.send(conductor.id, CONDUCTOR_TASK.format(task=plan.task))
        return plan.to_dict()

    async def propose(self, plan: str, subtasks: Any, summary: str = "") -> dict[str, Any]:
        """The conductor's proposal; returns once the person approved or rejected it."""
        current = self.store.load(plan)
        if current.status not in (pm.DRAFTING, pm.PROPOSED, pm.REJECTED):
            raise PlanError(f"plan {plan} is {current.status}; it cannot be proposed again")
        current.subtasks = pm.parse_subtasks(subtasks)
        current.summary = summary.strip()
        current.status = pm.PROPOSED
        self._changed(current)
        future = asyncio.get_running_loop().create_future()
        self._decisions[plan] = future
        conductor = self.engine.sessions.get(current.conductor)
        waiting = conductor is not None and conductor.state == State.RUNNING
        if waiting:
            self.engine.set_state(conductor, State.WAITING, f"plan {plan} awaits your approval (P, or a here)")
        try:
            return await future
        finally:
            self._decisions.pop(plan, None)
            if waiting and conductor.state == State.WAITING:
                self.engine.set_state(conductor, State.RUNNING)

    async def approve(self, plan: str) -> dict[str, Any]:
        """The person's yes: start every ready sub-task."""
        current = self._proposed(plan)
        if not current.live():
            raise PlanError(f"plan {plan} has no sub-task left to run; reject it instead")
        current.status = pm.APPROVED
        self._changed(current)
        started = await self._start_ready(current)
        answer = {"approved": True, "plan": current.to_dict(), "started": started}
        await self._answer(current, answer, f"The person approved plan {plan}. {describe_started(current, started)}")
        return answer

    async def reject(self, plan: str, reason: str = "") -> dict[str, Any]:
        current = self._proposed(plan)
        current.status = pm.REJECTED
        if reason:
            current.notes.append(f"rejected: {reason}")
        self._changed(current)
        answer = {"approved": False, "reason": reason, "plan": current.to_dict()}
        await self._answer(current, answer, f"The person rejected plan {plan}" + (f": {reason}" if reason else ""))
        return answer

    async def edit(self, plan: str, subtask: str, title: str | None = None, task: str | None = None,
                   files: list[str] | None = None) -> dict[str, Any]:
        current = self.store.load(plan)
        pm.edit_subtask(current, subtask, title=title, task=task, files=files)
        self._changed(current)
        return current.to_dict()

    async def drop(self, plan: str, subtask: str) -> dict[str, Any]:
        current = self.store.load(plan)
        pm.drop_subtask(current, subtask)
        self._changed(current)
        if current.status == pm.APPROVED:
            await self._start_ready(current)
        return current.to_dict()

    async def start(self, plan: str, subtask: str) -> dict[str, Any]:
        """Start a sub-task's session now (the conductor's `new`); its `after`s must have merged."""
        current = self._approved(plan)
        sub = current.subtask(subtask)
        if sub.status != pm.PENDING:
            raise PlanError(f"sub-task {sub.id!r} is {sub.status} already")
        if sub not in current.ready():
            waiting = [a for a in sub.after if current.subtask(a).status not in (pm.MERGED, pm.DROPPED)]
            raise PlanError(f"sub-task {sub.id!r} starts after {', '.join(waiting)}, which has not merged yet")
        session = await self._start(current, sub)
        return {"subtask": sub.id, "session": session.id, "number": session.number}

    async def note(self, plan: str, text: str) -> dict[str, Any]:
        current = self.store.load(plan)
        if not text.strip():
            raise PlanError("a note needs text")
        current.notes.append(text.strip())
        self._changed(current)
        return current.to_dict()

    async def send(self, plan: str, subtask: str, text: str) -> dict[str, Any]:
        """Instruct a sub-task's session and return once its turn has started, so that a `wait`
        right after cannot mistake the idle before the turn (a worker's agent starts it a moment
        after the send) for the end of it."""
        session = self._session_of(self.store.load(plan), subtask)
        started = self.engine.subscribe(accept=lambda e: e.session == session.id and e.kind == ev.TURN_START)
        try:
            await self.engine.send(session.id, text)
            async with asyncio.timeout(TURN_START_S):
                await started.get()
        except TimeoutError:
            pass  # not started yet (held, or its agent is slow to start): a wait still sees it through
        finally:
            started.close()
        return {"subtask": subtask, "session": session.id}

    async def wait(self, plan: str, subtasks: list[str] | None = None, timeout: float = 600) -> dict[str, Any]:
        """Wait until the named started sub-tasks (default: all started) have stopped working:
        done, failed, or waiting on a request not reported by an earlier wait (one the conductor
        left to the person keeps the wait going until the person answers). Returns their rows."""
        current = self.store.load(plan)
        refs = subtasks or [s.id for s in current.subtasks if s.status == pm.STARTED]
        sessions = [self._session_of(current, ref) for ref in refs]
        ids = {s.id for s in sessions}
        subscription = self.engine.subscribe(
            accept=lambda e: e.session in ids and e.kind in (ev.SESSION_STATE, ev.APPROVAL_REQUEST))
        try:
            async with asyncio.timeout(timeout):
                while not all(self._settled(s) for s in sessions):
                    await subscription.get()
            timed_out = False
        except TimeoutError:
            timed_out = True
        finally:
            subscription.close()
        for session in sessions:
            self._reported.update(self.engine.hosts[session.id].pending)
        rows = await self._rows(current)
        return {"timed_out": timed_out, "subtasks": [r for r in rows if r["id"] in refs]}

    def _settled(self, session: Session) -> bool:
        if session.state == State.WAITING:
            pending = self.engine.hosts[session.id].pending
            return not pending or any(request not in self._reported for request in pending)
        return session.state in SETTLED

    async def answer(self, plan: str, subtask: str, approve: bool, reason: str = "") -> dict[str, Any]:
        """The conductor's answer to a sub-task's oldest pending request: a no always goes
        through; a yes only where `[approval] conductor` allows it (`conductor_permit`)."""
        session = self._session_of(self._approved(plan), subtask)
        request = next(iter(self.engine.hosts[session.id].pending.values()), None)
        if request is None:
            raise PlanError(f"sub-task {subtask!r} (@{session.number}) has no request waiting for an answer")
        if not approve:
            await self.engine.deny(session.id, request.id, reason=reason or "denied by the plan's conductor")
            return {"denied": request.title}
        permit = conductor_permit(self.engine.config_for(session).approval, request.tool, request.title)
        if not permit:
            raise PlanError(f"{request.tool} {request.title!r} is left to the person ([approval] conductor does not "
                            "allow it); wait for their answer")
        await self.engine.approve(session.id, request.id, reason=f"approved by the plan's conductor: {permit}")
        return {"approved": request.title}

    async def merge(self, plan: str, subtasks: list[str] | None = None) -> dict[str, Any]:
        """Land the named sub-tasks (default: every started one) through the merge queue, in the
        plan's order; a sub-task whose change touches files it was not given is refused."""
        current = self._approved(plan)
        order = pm.landing_order(current.subtasks)
        wanted = subtasks or [s.id for s in current.subtasks if s.status == pm.STARTED]
        refs = [ref for ref in order if ref in wanted]
        for ref in refs:
            session = self._session_of(current, ref)
            if session.state in LIVE:
                raise PlanError(f"sub-task {ref!r} (@{session.number}) is still {session.state.value}; wait for it")
            outside = current.subtask(ref).outside(await self._changed_files(session))
            if outside:
                raise PlanError(f"sub-task {ref!r} changed files it was not given: {', '.join(outside)} "
                                f"(allowed: {', '.join(current.subtask(ref).files)})")
        if not refs:
            raise PlanError(f"plan {plan} has no started sub-task to merge")
        result = await self.engine.landing.queue_run([current.subtask(ref).session for ref in refs])
        by_session = {current.subtask(ref).session: ref for ref in refs}
        landed = [by_session[sid] for sid in result["landed"]]
        current = self.store.load(plan)  # reloaded: edits made while the queue ran stay
        for ref in landed:
            current.subtask(ref).status = pm.MERGED
        if all(s.status in (pm.MERGED, pm.DROPPED) for s in current.subtasks):
            current.status = pm.DONE
        self._changed(current)
        return {"landed": landed, "stopped": result["stopped"], "ready": [s.id for s in current.ready()]}

    # -- what the screens and the CLI show -------------------------------------------------------

    async def status(self, plan: str) -> dict[str, Any]:
        """The plan with each sub-task's session: state, diffstat and last verify."""
        current = self.store.load(plan)
        return {**current.to_dict(), "tag": current.tag, "rows": await self._rows(current)}

    def list(self) -> list[dict[str, Any]]:
        return [{**p.to_dict(), "tag": p.tag} for p in self.store.all()]

    async def _rows(self, plan: Plan) -> list[dict[str, Any]]:
        return list(await asyncio.gather(*(self._row(plan, sub) for sub in plan.subtasks)))

    async def _row(self, plan: Plan, sub: SubTask) -> dict[str, Any]:
        row: dict[str, Any] = {"id": sub.id, "title": sub.title, "status": sub.status, "files": sub.files,
                               "after": sub.after}
        session = self.engine.sessions.get(sub.session) if sub.session else None
        if session is None:
            return row
        row.update(session=session.id, number=session.number, state=session.state.value,
                   detail=session.state_detail, verify=session.verify.get("state", ""))
        pending = self.engine.hosts[session.id].pending.values()
        if pending:
            row["pending"] = [{"id": p.id, "tool": p.tool, "title": p.title} for p in pending]
        if session.path.is_dir():
            with contextlib.suppress(CockpitError):
                row["diffstat"] = (await diffstat(session.path, session.base_commit)).to_dict()
        return row

    # -- helpers ---------------------------------------------------------------------------------

    async def _start_ready(self, plan: Plan) -> list[dict[str, Any]]:
        started = []
        for sub in plan.ready():
            session = await self._start(plan, sub)
            started.append({"subtask": sub.id, "session": session.id, "number": session.number})
        return started

    async def _start(self, plan: Plan, sub: SubTask) -> Session:
        files = ", ".join(sub.files) if sub.files else "any"
        task = SUBTASK_TASK.format(task=sub.task, sub_id=sub.id, plan_id=plan.id, plan_task=plan.task, files=files)
        (session,) = await self.engine.create_sessions(
            plan.repo, name=f"{plan.id}-{sub.id}", agent=plan.agent or None, task=task, tags=[plan.tag])
        current = self.store.load(plan.id)  # the session's start may have taken a while
        current.subtask(sub.id).status, current.subtask(sub.id).session = pm.STARTED, session.id
        sub.status, sub.session = pm.STARTED, session.id
        self._changed(current)
        return session

    async def _answer(self, plan: Plan, answer: dict[str, Any], text: str) -> None:
        """Hand the person's answer to the waiting proposal, or (after a restart, when nothing
        waits) tell the conductor session in words."""
        future = self._decisions.get(plan.id)
        if future is not None and not future.done():
            future.set_result(answer)
        elif plan.conductor in self.engine.sessions:
            await self.engine.send(plan.conductor, text)

    def _proposed(self, plan: str) -> Plan:
        current = self.store.load(plan)
        if current.status != pm.PROPOSED:
            raise PlanError(f"plan {plan} is {current.status}, not awaiting approval")
        return current

    def _approved(self, plan: str) -> Plan:
        current = self.store.load(plan)
        if current.status not in (pm.APPROVED, pm.DONE):
            raise PlanError(f"plan {plan} is {current.status}; the person has not approved it")
        return current

    def _session_of(self, plan: Plan, ref: str) -> Session:
        sub = plan.subtask(ref)
        session = self.engine.sessions.get(sub.session) if sub.session else None
        if session is None:
            raise PlanError(f"sub-task {sub.id!r} has no session ({sub.status})")
        return session

    async def _changed_files(self, session: Session) -> list[str]:
        info = await self.engine.repo_info(session.repo_id)
        return await changed_files(info.root, session.base_commit, await read_tip(session.path))

    def _changed(self, plan: Plan) -> None:
        self.store.save(plan)
        self.engine.emit("", ev.PLAN, {"plan": plan.to_dict()})

    def _new_id(self) -> str:
        taken = {p.id for p in self.store.all()}
        while True:
            candidate = "".join(secrets.choice(_ID_ALPHABET) for _ in range(4))
            if candidate not in taken and not candidate.isdigit():
                return candidate


def describe_started(plan: Plan, started: list[dict[str, Any]]) -> str:
    """One line for the conductor: which sessions started, which sub-tasks still wait."""
    parts = [f"{s['subtask']} → @{s['number']}" for s in started]
    waiting = [f"{s.id} (after {', '.join(s.after)})" for s in plan.subtasks if s.status == pm.PENDING]
    line = f"Started: {', '.join(parts) or 'none'}."
    return line + (f" Waiting: {', '.join(waiting)}." if waiting else "")
