"""`cockpit trust [PATH] [--revoke] [--list]` (the one line that says a repository's file was not
trusted is `repo_config.load_and_tell`).

Trust is the person's decision about a file someone else wrote, so it is kept on this machine,
in their config folder (`cockpit/trust.py`), and names the exact file version trusted. The
server re-reads it on its next question; nothing needs restarting. With `--remote` it is the
remote machine's trust list that changes (that is where the repository and the server are).
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cockpit.client.repo_config import repo_root
from cockpit.config import load_config_report
from cockpit.trust import REPO_FILE, TrustStore, file_digest

Handler = Callable[[argparse.Namespace], int]


def _trust(args: argparse.Namespace) -> int:
    if args.remote:
        return asyncio.run(_remote(args))
    store = TrustStore()
    if args.list:
        for repo, digest in sorted(store.trusted().items()):
            now = file_digest(Path(repo) / REPO_FILE)
            note = "" if now == digest else ("  (changed since: not trusted)" if now else "  (file gone)")
            print(f"{repo}  {digest[:19]}{note}")
        return 0
    root = repo_root(args.path or args.repo)
    if args.revoke:
        gone = store.revoke(root)
        print(f"{root}: no longer trusted" if gone else f"{root} was not trusted")
        return 0
    _, before = load_config_report(root)
    store.trust(root)
    wanted = f"; these keys now apply: {', '.join(before.ignored)}" if before is not None and before.ignored else ""
    print(f"trusted {root / REPO_FILE} as it is now{wanted}")
    return 0


async def _remote(args: argparse.Namespace) -> int:
    from cockpit.client.cli import connected

    if args.list:
        from cockpit.errors import CockpitError

        raise CockpitError("trust --list shows this machine's list; run it on the remote host")
    async with connected(args) as client:
        done: dict[str, Any] = await client.execute({"cmd": "trust", "repo": args.path or args.repo,
                                                     "revoke": bool(args.revoke)})
    print(f"{args.remote[0]}: {done['repo']}: " + ("no longer trusted" if args.revoke else "trusted"))
    return 0


def add_parsers(sub: Any, common: list[argparse.ArgumentParser]) -> dict[str, Handler]:
    trust = sub.add_parser("trust", parents=common,
                           help=f"let a repository's {REPO_FILE} run commands and choose models (asked again when it changes)")
    trust.add_argument("path", nargs="?", default=None, help="the repository (default: --repo, i.e. .)")
    what = trust.add_mutually_exclusive_group()
    what.add_argument("--revoke", action="store_true", help="stop trusting it")
    what.add_argument("--list", action="store_true", help="list the trusted repositories")
    return {"trust": _trust}
