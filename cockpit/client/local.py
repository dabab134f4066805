"""The in-process transport: the engine opened right here, under the home's engine lock.

`cockpit --local` (and its CLI verbs) run the engine in their own process, as before there was
a server. The lock makes sure that never happens while a server, or another in-process
cockpit, has the same home open: two engines on one database would number events twice.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from cockpit.config import Config
from cockpit.core.agent_api import AgentFactory
from cockpit.core.engine import Engine
from cockpit.features import install
from cockpit.server.lock import LOCAL, SERVER, EngineLock, HomeInUse
from cockpit.server.paths import ServerPaths


@contextlib.asynccontextmanager
async def local_engine(config: Config | None, *, home: Path | None = None,
                       agent_factory: AgentFactory | None = None) -> AsyncIterator[Engine]:
    paths = ServerPaths.for_home(home)
    lock = EngineLock(paths)
    try:
        lock.acquire(LOCAL)
    except HomeInUse as exc:
        hint = ("use it instead (leave out --local), or stop it first: `cockpit server stop`"
                if exc.holder is not None and exc.holder.role == SERVER else "quit it first")
        raise HomeInUse(f"{exc}: {hint}", exc.holder) from None
    try:
        install()
        engine = await Engine.open(paths.home, config, agent_factory)
        if config is None:
            engine.watch_config()
        try:
            yield engine
        finally:
            await engine.close()
    finally:
        lock.release()
