"""The scriptable CLI verbs: what a person or an agent drives the cockpit with from a shell.

Every verb talks to the server of this cockpit home over its socket (starting the server in
the background when none runs, so scripts never have to), to `--remote HOST` over ssh, or,
with `--local`, to an engine opened in this process (agents do not run then: a task is recorded
and waits for `resume`). With `--json` a verb prints only JSON: one document, or one event per
line for `logs`. Exit codes: 0 done, 1 `wait` timed out, 2 a mistake to fix (one line on
stderr), 3 a session failed (error state, removed) while `wait` watched it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from rich.cells import cell_len

from cockpit.client.display import pad, visible
from cockpit.config import load_config
from cockpit.core import events as ev
from cockpit.core.events import Event
from cockpit.errors import CockpitError, NotFound

Handler = Callable[[argparse.Namespace], int]

EXIT_TIMED_OUT = 1
WAIT_STATES = ("idle", "waiting", "done")
LOGS_TAIL = 200


class SessionFailed(CockpitError):
    """A session `wait` watched went to error or disappeared."""

    exit_code = 3


# -- connecting -------------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def connected(args: argparse.Namespace, *, attach: bool = False, sessions: list[str] | None = None,
                    tail: int = 0) -> AsyncIterator[Any]:
    """The client this command line asks for: local server (default), `--remote`, or `--local`."""
    from cockpit.client.repo_config import load_and_tell

    load_and_tell(args.repo)  # a bad config is one line, before anything starts
    if args.local:
        from cockpit.client.local import local_engine

        async with local_engine(None) as engine:  # each repository's sessions get its own config
            yield engine
        return
    from cockpit.client.remote import RemoteClient, socket_opener, ssh_opener

    if args.remote:
        if len(args.remote) > 1:
            raise CockpitError("a command talks to one cockpit: give --remote once (the screen takes several)")
        client = RemoteClient(ssh_opener(args.remote[0]), host=args.remote[0], tail=tail, sessions=sessions)
    else:
        from cockpit.server.daemon import ensure_server
        from cockpit.server.paths import ServerPaths

        paths = ServerPaths.for_home()
        await asyncio.to_thread(ensure_server, paths, args.repo)
        client = RemoteClient(socket_opener(paths), tail=tail, sessions=sessions)
    try:
        await client.connect(attach=attach)
        yield client
    finally:
        await client.close()


def repo_argument(args: argparse.Namespace) -> str:
    """The repository as the server sees it: absolute here, as given for a remote host."""
    return args.repo if args.remote else str(Path(args.repo).resolve())


def worktree_argument(args: argparse.Namespace) -> str | None:
    """`--worktree` as the server sees it (absolute here, as given for a remote host)."""
    if args.worktree is None or args.remote:
        return args.worktree
    return str(Path(args.worktree).expanduser().resolve())


async def session_rows(client: Any) -> list[dict[str, Any]]:
    return await client.execute({"cmd": "ls"})


def find_session(rows: list[dict[str, Any]], ref: str) -> dict[str, Any]:
    """A session by id, number (`3` or `@3`), name or slug: the rule of `Engine.get`."""
    key = ref.removeprefix("@")
    for row in rows:
        if row["id"] == key:
            return row
    found = ([row for row in rows if row["number"] == int(key)] if key.isdigit()  # numbers win, always
             else [row for row in rows if key in (row["name"], row["slug"])])
    if found:
        return found[0]
    raise NotFound(f"no session {ref!r} (see `cockpit ls`)")


def print_json(value: Any) -> None:
    print(json.dumps(value, indent=2))


def label(session: dict[str, Any]) -> str:
    return f"@{session['number']} {visible(session['name'])}"


# -- the verbs --------------------------------------------------------------------------------------


def _key_warning(args: argparse.Namespace) -> str:
    """What `cockpit new` warns about: the built-in agent's model has no API key in this
    environment (the server started from it has none either), so the first turn would fail."""
    from cockpit.agents.model_keys import missing_key, model_name
    from cockpit.client.repo_config import repo_root

    if args.remote or args.fork:  # another machine's environment; a fork runs its source's agent
        return ""
    config = load_config(repo_root(args.repo))  # what the engine runs the repository's sessions with
    agent = config.agents.get(args.agent or config.defaults.agent)
    if agent is None or agent.kind != "llm":  # an unknown agent is refused by the server itself
        return ""
    name = model_name(config, args.model or agent.model)
    return missing_key(config.model(name), name)


async def _new(args: argparse.Namespace) -> int:
    async with connected(args) as client:
        created = await client.execute({
            "cmd": "create", "repo": repo_argument(args), "name": args.name, "base_ref": args.base,
            "agent": args.agent, "model": args.model, "task": args.task, "tags": args.tag,
            "count": args.count, "fork_of": args.fork, "branch": args.branch,
            "worktree": worktree_argument(args), "read_only": args.no_worktree,
        })
    if args.json:
        print_json(created)
    else:
        for s in created:
            print(f"@{s['number']} {s['id']} {visible(s['name'])} on {visible(s['branch'])} "
                  f"at {visible(s['worktree'])}" + (" (read-only)" if s.get("read_only") else ""))
    warning = _key_warning(args)  # after the sessions exist: a refusal stays the one line on stderr
    if warning:
        print(f"warning: {warning}", file=sys.stderr)
    return 0


async def _ls(args: argparse.Namespace) -> int:
    async with connected(args) as client:
        rows = [s for s in await session_rows(client) if args.all or s["state"] not in ("archived", "merged")]
    if args.json:
        print_json(rows)
        return 0
    for line in ls_lines(rows):
        print(line)
    return 0


def ls_lines(rows: list[dict[str, Any]]) -> list[str]:
    """`ls` for a person: a PAUSED line first while the engine holds its agents, then a row each
    (naming its repository when the sessions are of several)."""
    if not rows:
        return ["no sessions (create one with `cockpit new --task ...`)"]
    paused = next((s["paused"] for s in rows if s.get("paused")), "")
    lines = [f"PAUSED  {visible(paused)}"] if paused else []
    several = len({s.get("repo", "") for s in rows}) > 1  # then names read `repo:name`, as `@repo:` targets them
    shown = [(s, visible(f"{s['repo']}:{s['name']}" if several and s.get("repo") else s["name"]), visible(s["branch"]))
             for s in rows]
    name_width = max(cell_len(name) for _, name, _ in shown)  # columns line up in terminal cells
    branch_width = max(cell_len(branch) for _, _, branch in shown)
    for s, name, branch in shown:
        tags = visible(" ".join("#" + t for t in s["tags"]))
        lines.append(f"@{s['number']:<3} {s['id']}  {s['state']:<8} {pad(name, name_width)}  "
                     f"{pad(branch, branch_width)}  {tags}".rstrip())
    return lines


async def _inbox(args: argparse.Namespace) -> int:
    from cockpit.inbox.groups import group_pending

    async with connected(args) as client:
        groups = group_pending(await client.execute({"cmd": "inbox_pending"}))
        suggestions = await client.execute({"cmd": "inbox_suggestions"})
    if args.json:
        print_json({"groups": [{"label": g.label, "count": len(g.requests), "patterns": list(g.shape.patterns),
                                "requests": g.requests} for g in groups], "suggestions": suggestions})
        return 0
    for line in inbox_lines(groups, suggestions):
        print(line)
    return 0


def inbox_lines(groups: list[Any], suggestions: list[dict[str, Any]]) -> list[str]:
    """`inbox` for a person: a line per group of pending requests, its sessions under it, then
    the rules past answers suggest."""
    lines = [] if groups else ["nothing is waiting for approval"]
    for group in groups:
        lines.append(f"{len(group.requests):>4}× {visible(group.label)}")
        names = dict.fromkeys(f"@{r['number']}" for r in group.requests)
        lines.append(f"      {' '.join(names)}")
    for suggestion in suggestions:
        lines.append(f"suggested: you approved `{visible(suggestion['label'])}` {suggestion['approved']} times in "
                     f"{visible(suggestion['repo'])}: allow it from the screen's inbox (I, then w)")
    return lines


async def _rm(args: argparse.Namespace) -> int:
    if not args.yes:
        if not sys.stdin.isatty():
            raise CockpitError("refusing to remove without confirmation: pass --yes")
        answer = input(f"remove {' '.join(args.sessions)} and their worktrees? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            return 1
    removed = []
    async with connected(args) as client:
        for ref in args.sessions:
            session = find_session(await session_rows(client), ref)
            await client.execute({"cmd": "remove", "session": session["id"], "delete_branch": args.delete_branch})
            removed.append(session["id"])
            if not args.json:
                print(f"removed {label(session)}")
    if args.json:
        print_json({"removed": removed})
    return 0


async def _send(args: argparse.Namespace) -> int:
    target = args.target if args.target.startswith(("@", "#")) else "@" + args.target
    async with connected(args) as client:
        sent = await client.execute({"cmd": "send_line", "line": f"{target} {' '.join(args.text)}"})
        rows = {r["id"]: r for r in await session_rows(client)}
    if args.json:
        print_json({"sent": sent})
    else:
        print("sent to " + ", ".join(label(rows[i]) if i in rows else i for i in sent))
    return 0


def _one_session_verb(cmd: str, done: str, *options: str) -> Handler:
    """approve / deny / interrupt / resume: one command per session named, then one line each."""

    async def verb(args: argparse.Namespace) -> int:
        refs = args.sessions if hasattr(args, "sessions") else [args.session]
        extra = {name: getattr(args, name) for name in options if getattr(args, name) is not None}
        async with connected(args) as client:
            rows = await session_rows(client)
            sessions = [find_session(rows, ref) for ref in refs]
            for session in sessions:
                await client.execute({"cmd": cmd, "session": session["id"], **extra})
        if args.json:
            print_json({"ok": True, cmd: [s["id"] for s in sessions]})
        else:
            for session in sessions:
                print(f"{done} {label(session)}")
        return 0

    return _sync(verb)


async def _diff(args: argparse.Namespace) -> int:
    async with connected(args) as client:
        change = await client.execute({"cmd": "diff", "session": args.session})
    if args.json:
        print_json(change)
        return 0
    for f in change.get("files", []):
        print(f"{f['status']} {f['path']} +{f.get('added', 0)} -{f.get('removed', 0)}")
        if args.stat:
            continue
        for hunk in f.get("hunks", []):
            section = f" {hunk['section']}" if hunk.get("section") else ""
            print(f"@@ -{hunk['old_start']},{hunk['old_count']} +{hunk['new_start']},{hunk['new_count']} @@{section}")
            for line in hunk.get("lines", []):
                print(line["kind"] + line["text"])
    return 0


async def _merge(args: argparse.Namespace) -> int:
    command = {"cmd": "merge", "session": args.session, "strategy": args.strategy, "message": args.message}
    if args.target:
        command["target"] = args.target
    async with connected(args) as client:
        merged = await client.execute(command)
    if args.json:
        print_json(merged)
    else:
        print(f"merged {args.session} into {merged.get('target')} ({merged.get('strategy')}): "
              f"{merged.get('commit', '')[:12]}")
    return 0


async def _logs(args: argparse.Namespace) -> int:
    if not args.follow:
        async with connected(args) as client:
            session = find_session(await session_rows(client), args.session)
            out = _LogPrinter(args.json)
            for event in await client.transcript(session["id"], tail=args.tail or 0):
                out.show(event)
            out.end()
        return 0
    tail = LOGS_TAIL if args.tail is None else args.tail
    out = _LogPrinter(args.json)
    async with connected(args, attach=True, sessions=[args.session], tail=tail) as client:
        session = find_session(await session_rows(client), args.session)
        if tail:  # the attach's scrollback: exactly what precedes the live events
            for event in await client.transcript(session["id"], tail=tail):
                out.show(event)
        feed = client.subscribe()
        while True:
            event = await feed.get()
            if event.kind == ev.RESYNC:
                # Some events were lost on the way: what the store has since the last one shown.
                for stored in await client.transcript(session["id"]):
                    if stored.seq > out.last_seq:
                        out.show(stored)
                continue
            if event.session != session["id"]:
                continue
            out.show(event)
            if event.kind == ev.SESSION_REMOVED:
                out.end()
                return 0


class _LogPrinter:
    """Events as a person reads them (streamed text inline), or one JSON object per line."""

    def __init__(self, as_json: bool):
        self.as_json = as_json
        self.last_seq = 0
        self._mid_line = False

    def show(self, event: Event) -> None:
        self.last_seq = max(self.last_seq, event.seq)
        if self.as_json:
            print(json.dumps(event.to_dict()), flush=True)
            return
        if event.kind in (ev.TEXT, ev.TEXT_DELTA):
            text = event.data.get("text", "")
            sys.stdout.write(text)
            self._mid_line = not text.endswith("\n") if text else self._mid_line
        elif event.kind not in (ev.THOUGHT_DELTA, ev.TERM_SCREEN):
            self.end()
            print(_event_line(event))
        sys.stdout.flush()

    def end(self) -> None:
        if self._mid_line:
            sys.stdout.write("\n")
            self._mid_line = False


def _event_line(event: Event) -> str:
    data = event.data
    if event.kind == ev.USER_MESSAGE:
        return "› " + data.get("text", "")
    summary = data.get("text") or data.get("title") or data.get("state") or data.get("name") or ""
    if not summary and data:
        summary = json.dumps(data, separators=(",", ":"))[:200]
    return f"· {event.kind}: {summary}".rstrip()


async def _wait(args: argparse.Namespace) -> int:
    loop = asyncio.get_running_loop()
    deadline = None if args.timeout is None else loop.time() + args.timeout
    async with connected(args, attach=True, sessions=args.sessions) as client:
        rows = client.snapshot()
        wanted = [find_session(rows, ref)["id"] for ref in args.sessions]
        feed = client.subscribe()
        while True:
            current = {s["id"]: s for s in client.snapshot()}
            verdict = _verdict(wanted, current, args.until)
            if verdict is not None:
                return _report_wait(args, wanted, current, verdict)
            remaining = None if deadline is None else deadline - loop.time()
            if remaining is not None and remaining <= 0:
                return _report_wait(args, wanted, current, "timed out")
            try:
                await asyncio.wait_for(feed.get(), remaining)  # any event: look again
            except TimeoutError:
                continue


def _verdict(wanted: list[str], current: dict[str, dict[str, Any]], until: str) -> str | None:
    """"reached", "failed", or None while some session is still on its way."""
    states = [current[s]["state"] if s in current else "removed" for s in wanted]
    if any(state in ("error", "removed") or (until != "done" and state in ("merged", "archived"))
           for state in states):
        return "failed"
    if all(_reached(state, until) for state in states):
        return "reached"
    return None


def _reached(state: str, until: str) -> bool:
    if until == "done":
        return state not in ("starting", "running")
    return state == until


def _report_wait(args: argparse.Namespace, wanted: list[str], current: dict[str, dict[str, Any]], verdict: str) -> int:
    sessions = [
        {k: current[s].get(k) for k in ("id", "number", "name", "state", "state_detail")}
        if s in current else {"id": s, "state": "removed"}
        for s in wanted
    ]
    if args.json:
        print_json({"until": args.until, "result": verdict, "sessions": sessions})
    else:
        for s in sessions:
            detail = f" ({s['state_detail']})" if s.get("state_detail") else ""
            who = f"@{s['number']} {s['name']}" if "number" in s else s["id"]
            print(f"{who}: {s['state']}{detail}")
    if verdict == "failed":
        raise SessionFailed(f"wait --until {args.until}: " + "; ".join(
            _failure(s) for s in sessions if s["state"] in ("error", "removed", "merged", "archived")))
    return 0 if verdict == "reached" else EXIT_TIMED_OUT


def _failure(session: dict[str, Any]) -> str:
    if session["state"] == "removed":
        return f"{session['id']} was removed"
    detail = f" ({session['state_detail']})" if session.get("state_detail") else ""
    return f"@{session['number']} {session['name']} is {session['state']}{detail}"


# -- argparse ---------------------------------------------------------------------------------------


def _sync(verb: Callable[[argparse.Namespace], Any]) -> Handler:
    return lambda args: asyncio.run(verb(args))


def add_parsers(sub: Any, common: list[argparse.ArgumentParser]) -> dict[str, Handler]:
    """Add the verbs to the `cockpit` parser; return their handlers by name."""

    def verb(name: str, help_text: str) -> argparse.ArgumentParser:
        parser = sub.add_parser(name, parents=common, help=help_text)
        parser.add_argument("--json", action="store_true", help="print JSON only")
        return parser

    new = verb("new", "create sessions: a worktree and branch each")
    new.add_argument("name", nargs="?", default="", help="session name (default: from the task)")
    new.add_argument("--base", default=None, help="base ref (default: the current branch)")
    new.add_argument("--agent", default=None, help="agent from config (default: builtin)")
    new.add_argument("--model", default="", help="model name from config")
    new.add_argument("--task", default="", help="the first instruction")
    new.add_argument("--count", type=int, default=1, help="fan the task out to N sessions")
    new.add_argument("--tag", action="append", default=[], help="tag (repeatable)")
    new.add_argument("--fork", default=None, metavar="SESSION", help="start from another session's state")
    new.add_argument("--branch", default=None, metavar="EXISTING",
                     help="work on an existing branch (in a new worktree) instead of a new one")
    new.add_argument("--worktree", default=None, metavar="PATH",
                     help="reuse an existing worktree of the repository (git worktree list); it is kept on rm")
    new.add_argument("--no-worktree", action="store_true",
                     help="read-only: the built-in agent reads the main checkout and never writes")

    verb("inbox", "pending approvals of every session, grouped by what they ask")

    ls = verb("ls", "list sessions")
    ls.add_argument("--all", action="store_true", help="include archived and merged sessions")

    rm = verb("rm", "remove sessions and their worktrees")
    rm.add_argument("sessions", nargs="+", help="session ids, numbers or names")
    rm.add_argument("--delete-branch", action="store_true", help="also delete the branch")
    rm.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")

    send = verb("send", "send an instruction: to a session, @group or #tag")
    send.add_argument("target", help="session id, number or name, or @all @waiting #tag …")
    send.add_argument("text", nargs="+", help="the instruction")

    approve = verb("approve", "approve a session's pending request (the oldest unless --id)")
    approve.add_argument("session")
    approve.add_argument("--id", default=None, help="the request id (approval.request event)")
    approve.add_argument("--always", action="store_true", default=None, help="and the same request from now on")
    approve.add_argument("--reason", default=None)

    deny = verb("deny", "deny a session's pending request")
    deny.add_argument("session")
    deny.add_argument("--id", default=None, help="the request id (approval.request event)")
    deny.add_argument("--reason", default=None, help="told to the agent")

    for name, text in (("interrupt", "stop what the agents are doing"),
                       ("resume", "run the agents again on their conversation")):
        parser = verb(name, text)
        parser.add_argument("sessions", nargs="+")

    diff = verb("diff", "a session's change against its base (branch, uncommitted and untracked)")
    diff.add_argument("session")
    diff.add_argument("--stat", action="store_true", help="files and line counts only")

    merge = verb("merge", "land a session's change on its target branch")
    merge.add_argument("session")
    merge.add_argument("--strategy", default=None, choices=("squash", "merge", "rebase"))
    merge.add_argument("--message", default=None, help="the commit message (default: drafted from the session)")
    merge.add_argument("--target", default=None, help="branch to land on (default: the session's base)")

    logs = verb("logs", "a session's transcript (--follow: and what comes next)")
    logs.add_argument("session")
    logs.add_argument("--follow", "-f", action="store_true", help="keep printing new events")
    logs.add_argument("--tail", type=int, default=None,
                      help=f"only the last N events (default: all; with --follow {LOGS_TAIL})")

    wait = verb("wait", "wait until sessions are idle / waiting / done (exit 0; 1 timed out; 3 failed)")
    wait.add_argument("sessions", nargs="+")
    wait.add_argument("--until", choices=WAIT_STATES, default="done",
                      help="idle: turn finished; waiting: needs you; done: not working any more (default)")
    wait.add_argument("--timeout", type=float, default=None, help="give up after this many seconds (exit 1)")

    return {
        "new": _sync(_new), "ls": _sync(_ls), "inbox": _sync(_inbox), "rm": _sync(_rm), "send": _sync(_send),
        "approve": _one_session_verb("approve", "approved", "id", "always", "reason"),
        "deny": _one_session_verb("deny", "denied", "id", "reason"),
        "interrupt": _one_session_verb("interrupt", "interrupted"),
        "resume": _one_session_verb("resume", "resumed"),
        "diff": _sync(_diff), "merge": _sync(_merge), "logs": _sync(_logs), "wait": _sync(_wait),
    }
