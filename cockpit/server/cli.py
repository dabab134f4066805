"""`cockpit server [run|start|stop|status]` and `cockpit rpc --stdio`."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cockpit.config import load_config
from cockpit.errors import CockpitError
from cockpit.server.paths import ServerPaths

Handler = Callable[[argparse.Namespace], int]


def _server(args: argparse.Namespace) -> int:
    paths = ServerPaths.for_home()
    return {"run": _run, "start": _start, "stop": _stop, "status": _status}[args.action](args, paths)


def _run(args: argparse.Namespace, paths: ServerPaths) -> int:
    from cockpit.server.daemon import run_server
    from cockpit.workers.pool import WorkerPool

    load_config()  # only the user's file: each repository's own applies to its sessions alone
    asyncio.run(run_server(paths, None, WorkerPool(), on_ready=lambda line: print(line, file=sys.stderr, flush=True)))
    return 0


def _start(args: argparse.Namespace, paths: ServerPaths) -> int:
    from cockpit.server.daemon import ensure_server
    from cockpit.server.lock import lock_holder

    load_config(Path(args.repo))  # the server would fail on it in the background: say so here
    ensure_server(paths, args.repo)
    print(f"{lock_holder(paths) or 'the cockpit server'} listens on {paths.socket}")
    return 0


def _stop(args: argparse.Namespace, paths: ServerPaths) -> int:
    from cockpit.server.daemon import stop_server

    holder = stop_server(paths)
    print(f"stopped {holder}" if holder else f"no cockpit server was running for {paths.home}")
    return 0


def _status(args: argparse.Namespace, paths: ServerPaths) -> int:
    from cockpit.server.daemon import is_listening

    if not is_listening(paths):
        if args.json:
            print(json.dumps({"running": False, "home": str(paths.home)}))
        else:
            print(f"no cockpit server runs for {paths.home}")
        return 1
    status = asyncio.run(_ask_status(paths))
    if args.json:
        print(json.dumps({"running": True, **status}, indent=2))
    else:
        print(f"cockpit server pid {status['pid']} ({status['server_version']}, protocol {status['protocol']}) "
              f"on {status['socket']}\n  up {status['uptime_s']:.0f} s; {status['sessions']} sessions "
              f"({status['live']} working); {status['clients']} clients ({status['attached']} attached)")
        running = [w for w in status.get("workers", []) if w["pid"]]
        if running:
            print("  agent workers: " + ", ".join(f"pid {w['pid']} ({w['sessions']} sessions)" for w in running))
    return 0


async def _ask_status(paths: ServerPaths) -> dict[str, Any]:
    from cockpit.client.remote import RemoteClient, socket_opener

    client = RemoteClient(socket_opener(paths))
    try:
        await client.connect(attach=False)
        status = await client.request("server.status")
    finally:
        await client.close()
    return {**status, "server_version": status.pop("version")}


def _rpc(args: argparse.Namespace) -> int:
    if not args.stdio:
        raise CockpitError("rpc: only --stdio is supported (the protocol on stdin/stdout)")
    from cockpit.server.bridge import relay_stdio
    from cockpit.server.daemon import ensure_server

    paths = ServerPaths.for_home()
    load_config(Path(args.repo))
    ensure_server(paths, args.repo)
    return relay_stdio(paths)


def add_parsers(sub: Any, common: list[argparse.ArgumentParser]) -> dict[str, Handler]:
    server = sub.add_parser("server", parents=common, help="the background server that owns the agents")
    server.add_argument("action", nargs="?", default="run", choices=("run", "start", "stop", "status"),
                        help="run: in the foreground (default); start: in the background; stop; status")
    server.add_argument("--json", action="store_true", help="status as JSON")
    rpc = sub.add_parser("rpc", parents=common, help="speak the server protocol on stdin/stdout (for ssh)")
    rpc.add_argument("--stdio", action="store_true", help="relay stdin/stdout to the local server")
    return {"server": _server, "rpc": _rpc}
