"""The `cockpit` command line.

Every subcommand runs the engine in-process for now (the socket server comes later). A
mistake the person can fix is printed as one line on stderr with exit code 2; a traceback
means a bug in cockpit.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from cockpit import __version__
from cockpit.config import load_config
from cockpit.errors import CockpitError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cockpit", description="Supervise many coding agents, each in its own git worktree."
    )
    parser.add_argument("--version", action="version", version=f"cockpit {__version__}")
    parser.add_argument("--repo", default=".", help="the git repository to work in (default: .)")
    parser.add_argument("--serve", action="store_true", help="serve the cockpit in a browser tab (textual-serve)")
    parser.add_argument("--host", default="127.0.0.1", help="address for --serve (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port for --serve (default: 8000)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    # `--repo` also after the subcommand (`cockpit new --repo R`); SUPPRESS keeps the top-level value
    # when it is not given there.
    repo_option = argparse.ArgumentParser(add_help=False)
    repo_option.add_argument("--repo", default=argparse.SUPPRESS, help="the git repository to work in")

    new = sub.add_parser("new", parents=[repo_option], help="create sessions: a worktree and branch each")
    new.add_argument("name", nargs="?", default="", help="session name (default: from the task)")
    new.add_argument("--base", default=None, help="base ref (default: the current branch)")
    new.add_argument("--agent", default=None, help="agent from config (default: builtin)")
    new.add_argument("--model", default="", help="model name from config")
    new.add_argument("--task", default="", help="the first instruction")
    new.add_argument("--count", type=int, default=1, help="fan the task out to N sessions")
    new.add_argument("--tag", action="append", default=[], help="tag (repeatable)")
    new.add_argument("--fork", default=None, metavar="SESSION", help="start from another session's state")
    new.add_argument("--json", action="store_true", help="print the sessions as JSON")

    ls = sub.add_parser("ls", parents=[repo_option], help="list sessions")
    ls.add_argument("--json", action="store_true", help="print JSON")
    ls.add_argument("--all", action="store_true", help="include archived and merged sessions")

    rm = sub.add_parser("rm", parents=[repo_option], help="remove sessions and their worktrees")
    rm.add_argument("sessions", nargs="+", help="session ids, numbers or names")
    rm.add_argument("--delete-branch", action="store_true", help="also delete the branch")
    rm.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")

    demo = sub.add_parser("demo", parents=[repo_option], help="simulated agents at work in a sample repository (no API key)")
    demo.add_argument("--print", action="store_true", help="print events instead of opening the screen")
    demo.add_argument("--timeout", type=float, default=120, help="with --print: stop after this many seconds")
    return parser


async def _with_engine(args: argparse.Namespace, work: Callable[[Any], Awaitable[int]]) -> int:
    from cockpit.core.engine import Engine

    config = load_config(Path(args.repo))
    engine = await Engine.open(config=config)
    try:
        return await work(engine)
    finally:
        await engine.close()


def _cmd_new(args: argparse.Namespace) -> int:
    async def work(engine: Any) -> int:
        created = await engine.create_sessions(
            args.repo, name=args.name, base_ref=args.base, agent=args.agent, model=args.model,
            task=args.task, tags=args.tag, count=args.count, fork_of=args.fork,
        )
        if args.json:
            print(json.dumps([s.to_dict() for s in created], indent=2))
        else:
            for s in created:
                print(f"@{s.number} {s.id} {s.name} on {s.branch} at {s.worktree}")
        return 0

    return asyncio.run(_with_engine(args, work))


def _cmd_ls(args: argparse.Namespace) -> int:
    async def work(engine: Any) -> int:
        rows = [s for s in engine.snapshot() if args.all or s["state"] not in ("archived", "merged")]
        if args.json:
            print(json.dumps(rows, indent=2))
            return 0
        if not rows:
            print("no sessions (create one with `cockpit new --task ...`)")
        for s in rows:
            tags = " ".join("#" + t for t in s["tags"])
            print(f"@{s['number']:<3} {s['id']}  {s['state']:<8} {s['name']:<24} {s['branch']:<32} {tags}")
        return 0

    return asyncio.run(_with_engine(args, work))


def _cmd_rm(args: argparse.Namespace) -> int:
    if not args.yes:
        if not sys.stdin.isatty():
            raise CockpitError("refusing to remove without confirmation: pass --yes")
        answer = input(f"remove {' '.join(args.sessions)} and their worktrees? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            return 1

    async def work(engine: Any) -> int:
        for ref in args.sessions:
            session = engine.get(ref)
            await engine.remove(session.id, delete_branch=args.delete_branch)
            print(f"removed @{session.number} {session.name}")
        return 0

    return asyncio.run(_with_engine(args, work))


def _cmd_tui(args: argparse.Namespace) -> int:
    from cockpit.ui.run import run_cockpit

    asyncio.run(run_cockpit(load_config(Path(args.repo)), repo=args.repo))
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    """The demo makes its own sample repository unless --repo names one."""
    from cockpit.demo import run

    repo = Path(args.repo) if args.repo != "." else None
    if args.print:
        return asyncio.run(run.run_demo_print(sys.stdout, repo, timeout=args.timeout))
    asyncio.run(run.run_demo_tui(repo))
    return 0


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "new": _cmd_new,
    "ls": _cmd_ls,
    "rm": _cmd_rm,
    "demo": _cmd_demo,
}


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        if args.serve:
            if args.command is not None:
                raise CockpitError(f"--serve runs the cockpit screen; it cannot be combined with {args.command!r}")
            from cockpit.ui.serve import serve

            return serve(Path(args.repo), host=args.host, port=args.port)
        if args.command is None:
            return _cmd_tui(args)
        return COMMANDS[args.command](args)
    except CockpitError as exc:
        print(f"cockpit: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
