"""`cockpit rpc --stdio`: the protocol on stdin/stdout, relayed to the local server's socket.

This is what `cockpit --remote user@host` runs through `ssh user@host cockpit rpc --stdio`:
OpenSSH carries the bytes and does the authentication, this relays them unchanged. When either
side closes (the ssh connection drops, the server stops) the bridge ends; the server and its
agents go on.
"""

from __future__ import annotations

import os
import socket
import threading

from cockpit.errors import CockpitError
from cockpit.server.paths import ServerPaths, socket_address

_CHUNK = 1 << 16


def relay_stdio(paths: ServerPaths, stdin_fd: int = 0, stdout_fd: int = 1) -> int:
    """Relay until one side closes; the server must be listening (see `ensure_server`)."""
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        with socket_address(paths.socket) as address:
            conn.connect(address)
    except OSError as exc:
        conn.close()
        raise CockpitError(f"cannot reach the cockpit server at {paths.socket}: {exc.strerror or exc}") from None
    upstream = threading.Thread(target=_stdin_to_socket, args=(stdin_fd, conn), daemon=True, name="cockpit-rpc-in")
    upstream.start()
    try:
        while data := conn.recv(_CHUNK):
            _write_all(stdout_fd, data)
    except (BrokenPipeError, ConnectionResetError):
        pass  # the client went away
    finally:
        conn.close()
    return 0


def _stdin_to_socket(stdin_fd: int, conn: socket.socket) -> None:
    try:
        while data := os.read(stdin_fd, _CHUNK):
            conn.sendall(data)
        conn.shutdown(socket.SHUT_WR)  # the client is done: the server closes its side in turn
    except OSError:
        pass  # the socket closed first: the main loop ends on its own


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
