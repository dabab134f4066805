"""The server process: the one owner of a cockpit home's engine, outliving every screen.

`run_server` serves in the foreground until SIGTERM or SIGINT; SIGHUP (a closed terminal) is
ignored, because a lost terminal must never stop an agent. `ensure_server` starts one in the
background when none answers: a detached process in its own session, its output going to
`$COCKPIT_HOME/logs/server.log`, never to the terminal. The engine lock (`lock.py`) makes two
servers on one home impossible, and a server killed with -9 leaves only a stale socket that the
next one replaces.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import cockpit
from cockpit.config import Config
from cockpit.core.agent_api import AgentFactory
from cockpit.core.process import process_alive
from cockpit.errors import CockpitError
from cockpit.logfile import logging_to, open_private
from cockpit.server.lock import LOCAL, SERVER, EngineLock, Holder, HomeInUse, lock_holder
from cockpit.server.paths import ServerPaths, check_private, prepare_run_dir, socket_address

log = logging.getLogger("cockpit.server")

START_TIMEOUT_S = 30.0  # imports and the store's restore, on a busy machine
STOP_TIMEOUT_S = 15.0  # agents are interrupted and the store is flushed before exit
_POLL_S = 0.05


async def run_server(
    paths: ServerPaths, config: Config | None, agent_factory: AgentFactory | None,
    *, on_ready: Callable[[str], None] | None = None,
) -> None:
    """Open the engine and serve it on the socket until SIGTERM or SIGINT.

    `config` None: the user's file, re-read when it changes; never the config of the folder the
    server happened to be started from (each repository's file applies to its sessions only).
    """
    from cockpit.core.engine import Engine
    from cockpit.features import install
    from cockpit.server.listener import CockpitServer

    lock = EngineLock(paths)
    lock.acquire(SERVER)
    try:
        with logging_to(paths.log):
            install()
            engine = await Engine.open(paths.home, config, agent_factory)
            server = CockpitServer(engine, paths)
            try:
                await server.start()
                if config is None:
                    engine.watch_config()
                if on_ready is not None:
                    on_ready(f"cockpit server: listening on {paths.socket} (pid {os.getpid()}); "
                             f"log: {paths.log}; stop it with `cockpit server stop`")
                await _until_stopped()
                log.info("stopping")
            finally:
                await server.close()
                await engine.close()
    finally:
        lock.release()


async def _until_stopped() -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    loop.add_signal_handler(signal.SIGHUP, log.info, "SIGHUP ignored: the server outlives terminals")
    try:
        await stop.wait()
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.remove_signal_handler(signum)


# -- from other processes ---------------------------------------------------------------------------


def is_listening(paths: ServerPaths) -> bool:
    """Whether a server answers on the socket (checking the folder and socket are private first)."""
    prepare_run_dir(paths)
    try:
        check_private(paths.socket, "socket")
    except FileNotFoundError:  # none yet, or a stopping server just removed it
        return False
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(2.0)
    try:
        with socket_address(paths.socket) as address:
            probe.connect(address)
        return True
    except OSError:  # refused: a stale socket from a server that died
        return False
    finally:
        probe.close()


def ensure_server(paths: ServerPaths, repo: Path | str, timeout: float = START_TIMEOUT_S) -> None:
    """Return once a server answers on the socket, starting one in the background if needed."""
    if is_listening(paths):
        return
    holder = lock_holder(paths)
    if holder is not None and holder.role == LOCAL:
        raise HomeInUse(f"{paths.home} is in use by {holder}: quit it first, or pass --local here too", holder)
    process = spawn_server(paths, repo) if holder is None else None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if is_listening(paths):
            return
        if process is not None and process.poll() is not None:
            if _server_holder(paths) is not None:  # lost a start race to another client's server
                process = None
                continue
            raise CockpitError(f"the cockpit server did not start (exit {process.returncode}): "
                               f"{_last_log_line(paths)} (log: {paths.log})")
        time.sleep(_POLL_S)
    raise CockpitError(f"the cockpit server did not answer within {timeout:.0f} s (log: {paths.log})")


def spawn_server(paths: ServerPaths, repo: Path | str) -> subprocess.Popen[bytes]:
    """Start `cockpit server` detached: new session, no terminal, output to the log."""
    env = {**os.environ, "COCKPIT_HOME": str(paths.home)}
    package_root = str(Path(cockpit.__file__).resolve().parent.parent)  # also from a bare checkout
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH", "")) if p)
    with open_private(paths.log) as out:
        return subprocess.Popen(
            [sys.executable, "-m", "cockpit", "--repo", str(Path(repo).resolve()), "server", "run"],
            stdin=subprocess.DEVNULL, stdout=out, stderr=out, start_new_session=True, close_fds=True,
            cwd=str(paths.home), env=env,
        )


def stop_server(paths: ServerPaths, timeout: float = STOP_TIMEOUT_S) -> Holder | None:
    """Stop the server of this home (SIGTERM, then SIGKILL after `timeout`); None if none ran.

    Returns once the process is gone, not when it lets go of the lock: a server can release the
    lock and then hang on its way out (a thread stuck in a read keeps the interpreter from
    exiting), and "stopped" must not be said of a process that still runs.
    """
    holder = _server_holder(paths)
    if holder is None:
        return None
    for signum, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError):
            os.kill(holder.pid, signum)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if not process_alive(holder.pid):
                return holder
            time.sleep(_POLL_S)
    raise CockpitError(f"the cockpit server (pid {holder.pid}) did not stop")


def _server_holder(paths: ServerPaths) -> Holder | None:
    holder = lock_holder(paths)
    return holder if holder is not None and holder.role == SERVER else None


def _last_log_line(paths: ServerPaths) -> str:
    try:
        with open(paths.log, "rb") as f:
            f.seek(max(0, os.fstat(f.fileno()).st_size - 4096))
            lines = [line.strip() for line in f.read().decode(errors="replace").splitlines() if line.strip()]
    except OSError:
        return "no log"
    return lines[-1] if lines else "nothing in the log"
