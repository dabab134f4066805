"""Inside a sandbox: offer the cockpit's proxy (`net_proxy`, a unix socket) on loopback, then run
the command with `HTTP(S)_PROXY` pointing there.

`python -I -S net_bridge.py SOCKET PORT -- COMMAND…` is the sandbox's entry command when hosts are
allowed. The sandbox has no network but its own loopback; programs expect a proxy at a TCP
address, so a relay listens on 127.0.0.1:PORT and hands each connection to SOCKET. The listener
is made first, a detached relay process serves it, and this process then *becomes* the command
(exec), so the command's exit code, signals and terminal are exactly its own; the relay ends
with the sandbox. Standard library only, run by file with `-I -S`: it starts in milliseconds and
cannot import anything from the worktree.
"""

from __future__ import annotations

import os
import socket
import sys
import threading

PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")
NO_PROXY = "localhost,127.0.0.1,::1"


def main(argv: list[str]) -> None:
    if len(argv) < 4 or argv[2] != "--":
        sys.exit("usage: net_bridge.py SOCKET PORT -- COMMAND [ARG…]")
    path, port, command = argv[0], int(argv[1]), argv[3:]
    listener = socket.create_server(("127.0.0.1", port))
    child = os.fork()
    if child == 0:  # a child that forks the relay and ends: the relay is the sandbox init's
        if os.fork() == 0:
            _relay(listener, path)
        os._exit(0)
    os.waitpid(child, 0)
    listener.close()
    proxy = f"http://127.0.0.1:{port}"
    os.environ.update(dict.fromkeys(PROXY_VARS, proxy))
    os.environ.update({"NO_PROXY": NO_PROXY, "no_proxy": NO_PROXY, "NODE_USE_ENV_PROXY": "1"})
    try:
        os.execvp(command[0], command)
    except OSError as exc:
        sys.exit(f"{command[0]}: {exc.strerror}")


def _relay(listener: socket.socket, path: str) -> None:
    """Serve forever, out of the command's session (a ^C to its terminal is not for us) and with
    no hold on its stdio (a reader waiting for end-of-file must not wait for us)."""
    os.setsid()
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    while True:
        client, _ = listener.accept()
        threading.Thread(target=_join, args=(client, path), daemon=True).start()


def _join(client: socket.socket, path: str) -> None:
    upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        upstream.connect(path)
    except OSError:
        client.close()
        upstream.close()
        return
    back = threading.Thread(target=_copy, args=(upstream, client), daemon=True)
    back.start()
    _copy(client, upstream)
    back.join()
    client.close()
    upstream.close()


def _copy(source: socket.socket, target: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            target.sendall(data)
        target.shutdown(socket.SHUT_WR)
    except OSError:  # one side is gone: end both directions
        for sock in (source, target):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


if __name__ == "__main__":
    main(sys.argv[1:])
