"""`cockpit --serve`: the same cockpit in a browser tab, through textual-serve.

textual-serve runs a web server; each browser tab that connects starts one process of the
command it was given, with the server's environment, and relays the terminal through a
websocket. The command is this cockpit again (same interpreter, same `--repo`), so a tab shows
exactly what the terminal would.

Whoever can open the page can drive the agents, and on a shared machine every local user can
reach 127.0.0.1. So, as notebook servers do, every start makes a random token and prints the URL
that carries it; opening that URL sets an HttpOnly, SameSite=Strict cookie, and any request or
websocket without the token or the cookie gets 403 (`serve_token.py`). It binds to 127.0.0.1
unless told otherwise; from a laptop, forward the port over SSH
(`ssh -L 8000:127.0.0.1:8000 devbox`) rather than binding a public address.
"""

from __future__ import annotations

import ipaddress
import shlex
import sys
from pathlib import Path

from cockpit.errors import CockpitError

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000


def serve_command(repo: Path) -> str:
    """The shell command textual-serve runs for each browser tab."""
    return shlex.join([sys.executable, "-m", "cockpit", "--repo", str(Path(repo).resolve())])


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve(repo: Path, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> int:
    """Serve the cockpit until Ctrl+C; config mistakes are reported before anything starts."""
    from cockpit.config import load_config

    load_config(Path(repo))  # fail here, once, rather than in every browser tab
    if not 0 < port < 65536:
        raise CockpitError(f"--port must be between 1 and 65535, got {port}")
    if not is_loopback(host):
        print(
            f"cockpit: warning: serving on {host}, not loopback: the token travels in clear (plain "
            f"HTTP); anyone who sees the traffic to port {port} can drive your agents",
            file=sys.stderr,
        )
    from cockpit.ui.serve_token import TokenServer

    server = TokenServer(serve_command(repo), host=host, port=port, title="cockpit")
    try:
        server.serve()
    except OSError as exc:
        raise CockpitError(f"cannot serve on {host}:{port}: {exc.strerror or exc}") from None
    return 0
