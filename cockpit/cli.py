"""The `cockpit` command line.

The screen and the verbs talk to the cockpit server of this home (started in the background
when none runs, so agents outlive the screen), to `--remote` hosts over ssh, or with `--local`
to an engine in this process. A mistake the person can fix is printed as one line on stderr
with exit code 2; a traceback means a bug in cockpit.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Callable
from pathlib import Path

from cockpit import __version__
from cockpit.client import cli as agent_cli
from cockpit.client import repo_config, trust_cli
from cockpit.errors import CockpitError
from cockpit import cli_experiment as experiment_cli
from cockpit.plan import cli as plan_cli
from cockpit.server import cli as server_cli


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cockpit", description="Supervise many coding agents, each in its own git worktree."
    )
    parser.add_argument("--version", action="version", version=f"cockpit {__version__}")
    parser.add_argument("--repo", default=".", help="the git repository to work in (default: .)")
    parser.add_argument("--serve", action="store_true", help="the cockpit in a browser tab: open the URL it prints (it carries a token)")
    parser.add_argument("--host", default="127.0.0.1", help="address for --serve (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port for --serve (default: 8000)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    # `--repo` also after the subcommand (`cockpit new --repo R`); SUPPRESS keeps the top-level value
    # when it is not given there.
    repo_option = argparse.ArgumentParser(add_help=False)
    repo_option.add_argument("--repo", default=argparse.SUPPRESS, help="the git repository to work in")
    _where_options(parser, argparse.SUPPRESS)
    _where_options(repo_option, argparse.SUPPRESS)
    parser.set_defaults(local=False, remote=[])

    attach = sub.add_parser("attach", parents=[repo_option], help="open the screen on the running server")
    attach.set_defaults(attach=True)
    for module in (agent_cli, server_cli, trust_cli):
        for name, handler in module.add_parsers(sub, [repo_option]).items():
            sub.choices[name].set_defaults(handler=handler)

    demo = sub.add_parser("demo", parents=[repo_option], help="simulated agents at work in a sample repository (no API key)")
    demo.add_argument("--print", action="store_true", help="print events instead of opening the screen")
    demo.add_argument("--timeout", type=float, default=120, help="with --print: stop after this many seconds")

    experiment_cli.add_parser(sub, [repo_option])
    plan_cli.add_parser(sub, [repo_option])
    return parser


def _where_options(parser: argparse.ArgumentParser, default: object) -> None:
    """Where the engine runs: `--local` / `--remote`, before or after the subcommand."""
    parser.add_argument("--local", action="store_true", default=default,
                        help="run the engine in this process, not in the background server")
    parser.add_argument("--remote", action="append", default=default, metavar="USER@HOST",
                        help="the cockpit on another machine, over ssh (repeatable for the screen)")


def _cmd_tui(args: argparse.Namespace) -> int:
    """The screen: attached to this home's server (started if needed), to --remote hosts, or --local."""
    from cockpit.ui import run

    config = repo_config.load_and_tell(args.repo)  # the screen's look; the engine resolves per repository
    run.check_terminal()
    if args.local:
        asyncio.run(run.run_cockpit(config, repo=args.repo, engine_config=None))
        return 0
    if args.remote:
        from cockpit.client.multi import MultiClient
        from cockpit.client.remote import RemoteClient, ssh_opener

        client = MultiClient({host: RemoteClient(ssh_opener(host), host=host, reconnect=True) for host in args.remote})
        label = "on " + ", ".join(args.remote)
        asyncio.run(run.run_attached(config, client, repo=args.repo, label=label))
        print(f"detached: the agents keep running on {', '.join(args.remote)}")
        return 0
    from cockpit.client.remote import RemoteClient, socket_opener
    from cockpit.server.daemon import ensure_server, is_listening
    from cockpit.server.paths import ServerPaths

    paths = ServerPaths.for_home()
    if getattr(args, "attach", False) and not is_listening(paths):
        raise CockpitError(f"no cockpit server runs for {paths.home} (start one: `cockpit` or `cockpit server start`)")
    run.check_screen_config(config)  # before a server is started for nothing
    ensure_server(paths, args.repo)
    client = RemoteClient(socket_opener(paths), reconnect=True)
    asyncio.run(run.run_attached(config, client, repo=str(Path(args.repo).resolve())))
    print("detached: the agents keep running in the cockpit server "
          "(`cockpit attach` comes back, `cockpit server stop` stops them)")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    """The demo makes its own sample repository unless --repo names one."""
    from cockpit.demo import run

    repo = Path(args.repo) if args.repo != "." else None
    if args.print:
        return asyncio.run(run.run_demo_print(sys.stdout, repo, timeout=args.timeout))
    from cockpit.ui.run import check_terminal

    check_terminal()
    asyncio.run(run.run_demo_tui(repo))
    return 0


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "attach": _cmd_tui,
    "demo": _cmd_demo,
    "experiment": experiment_cli.run,
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
        if args.local and args.remote:
            raise CockpitError("--local and --remote exclude each other: the engine runs here or there")
        if args.command is None:
            return _cmd_tui(args)
        handler = getattr(args, "handler", None) or COMMANDS[args.command]
        return handler(args)
    except CockpitError as exc:
        print(f"cockpit: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `cockpit ls | head -1`: the reader has all it wanted
        # Point stdout at /dev/null so the interpreter's last flush does not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # what a shell reports for a process ended by SIGPIPE
