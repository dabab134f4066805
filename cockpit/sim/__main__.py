"""`python -m cockpit.sim --port N --scenario demo|file.toml`: serve a scenario until Ctrl-C."""

from __future__ import annotations

import argparse
import asyncio
import contextlib

from cockpit.errors import CockpitError
from cockpit.sim.scenario import builtin_names
from cockpit.sim.server import ScriptedLLMServer


async def _serve(args: argparse.Namespace) -> None:
    async with ScriptedLLMServer(args.scenario, host=args.host, port=args.port) as server:
        print(f"serving scenario {server.scenario.name!r} at {server.url}", flush=True)
        await asyncio.Event().wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cockpit.sim", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (printed)")
    parser.add_argument("--scenario", default="demo",
                        help=f"a .toml/.json file or a built-in name ({', '.join(builtin_names())})")
    args = parser.parse_args(argv)
    try:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(_serve(args))
    except CockpitError as exc:
        parser.exit(exc.exit_code, f"error: {exc}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
