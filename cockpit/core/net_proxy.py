"""The sandbox's one door to the network: a proxy that lets through only the allowed hosts.

A sandboxed command has no network of its own (`--unshare-net`). When `allow_hosts` names
hosts, the cockpit serves this proxy on a unix socket per session and allow-list, bound into the
sandbox, where `net_bridge` offers it on loopback as `HTTP(S)_PROXY`. It answers `CONNECT
host:port` (HTTPS, anything tunnelled) and plain `http://` requests in absolute form, only for
allowed hosts, and `403` for the rest, saying so once per host as a session notice. It filters by
the name the client asks for; TLS is never opened.

Why our own: mitmproxy intercepts TLS (far more than a host filter, with dozens of dependencies),
pproxy routes by regex but has not been released since early 2024; neither listens per session
on a unix socket we hand to a sandbox. This is one small asyncio server.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from cockpit.errors import ConfigError

HEAD_LIMIT = 64 * 1024  # a request head longer than this is refused
HEAD_TIMEOUT_S = 30.0
CONNECT_TIMEOUT_S = 30.0
_BUFFER = 64 * 1024
_LABEL = r"[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?"
_HOST = re.compile(rf"^(\*\.)?{_LABEL}(\.{_LABEL})*$")
_HOP_BY_HOP = {b"proxy-connection", b"proxy-authorization", b"connection", b"keep-alive"}


@dataclass(frozen=True)
class HostRule:
    """One `allow_hosts` entry: an exact name, or `*.domain` (any name under it), on a port
    (None: the web's ports, 443 and 80)."""

    host: str
    wildcard: bool = False
    port: int | None = None

    def allows(self, host: str, port: int) -> bool:
        if port not in ((80, 443) if self.port is None else (self.port,)):
            return False
        return host.endswith("." + self.host) if self.wildcard else host == self.host


def parse_rules(entries: Sequence[tuple[str, str]]) -> tuple[HostRule, ...]:
    """The rules of `(config key, entry)` pairs; a bad entry is one line naming its key."""
    rules = []
    for key, entry in entries:
        name, port = entry.strip().lower().rstrip("."), None
        head, colon, tail = name.rpartition(":")
        if colon and tail.isdigit() and ":" not in head:
            name, port = head, int(tail)
        if not _HOST.match(name) or (port is not None and not 0 < port < 65536):
            raise ConfigError(f"config: key '{key}': {entry!r} is not a host (name, name:port or *.domain)")
        rules.append(HostRule(name.removeprefix("*."), name.startswith("*."), port))
    return tuple(dict.fromkeys(rules))


def allowed(rules: Sequence[HostRule], host: str, port: int) -> bool:
    host = host.lower().rstrip(".")
    return any(rule.allows(host, port) for rule in rules)


@dataclass
class NetProxy:
    """The proxy of one session and allow-list, listening on `path`."""

    path: Path
    rules: tuple[HostRule, ...]
    notify: Callable[[str], None] | None = None
    listener: socket.socket | None = None
    server: asyncio.AbstractServer | None = None
    loop: asyncio.AbstractEventLoop | None = None
    denied: set[tuple[str, int]] = field(default_factory=set)

    def start(self) -> None:
        """Listen now (connections wait in the backlog until the server task runs): the
        sandboxed command may connect as soon as it starts."""
        self.loop = asyncio.get_running_loop()
        self.listener = _bind_unix(self.path)
        self.loop.create_task(self._serve(self.listener), name=f"net-proxy-{self.path.name}")

    async def _serve(self, listener: socket.socket) -> None:
        if listener.fileno() == -1:  # closed before it got to serve
            return
        self.server = await asyncio.start_unix_server(self._handle, sock=listener, limit=HEAD_LIMIT)

    def close(self) -> None:
        if self.server is not None:
            self.server.close()
        elif self.listener is not None:
            self.listener.close()
        with contextlib.suppress(OSError):
            self.path.unlink()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await self._answer(reader, writer)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, ValueError):
            pass
        finally:
            writer.close()

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), HEAD_TIMEOUT_S)
        line, _, headers = head.partition(b"\r\n")
        method, target, version = line.decode("latin-1").split(" ", 2)
        if method == "CONNECT":
            host, port = _host_port(target, 443)
        else:
            url = urlsplit(target)
            if url.scheme != "http" or not url.hostname:
                await _reply(writer, 400, "the cockpit's proxy takes CONNECT or absolute http:// requests\n")
                return
            host, port = url.hostname, url.port or 80
        if not allowed(self.rules, host, port):
            self._deny(host, port)
            await _reply(writer, 403, f"cockpit sandbox: {host}:{port} is not in allow_hosts\n")
            return
        try:
            up_reader, up_writer = await asyncio.wait_for(asyncio.open_connection(host, port), CONNECT_TIMEOUT_S)
        except (OSError, TimeoutError) as exc:
            await _reply(writer, 502, f"cockpit sandbox: cannot reach {host}:{port}: {exc}\n")
            return
        try:
            if method == "CONNECT":
                writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            else:
                path = (url.path or "/") + (f"?{url.query}" if url.query else "")
                up_writer.write(f"{method} {path} {version}\r\n".encode("latin-1") + _forwarded(headers))
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        finally:
            up_writer.close()

    def _deny(self, host: str, port: int) -> None:
        if (host, port) in self.denied or self.notify is None:
            return
        self.denied.add((host, port))
        self.notify(f"sandbox: blocked a connection to {host}:{port} (not in allow_hosts)")


def _host_port(target: str, default: int) -> tuple[str, int]:
    if target.startswith("["):  # [v6]:port
        host, _, rest = target[1:].partition("]")
        return host, int(rest[1:]) if rest.startswith(":") else default
    host, colon, port = target.rpartition(":")
    return (host, int(port)) if colon else (target, default)


def _forwarded(headers: bytes) -> bytes:
    """The request's headers for the origin server: no proxy headers, one request per connection."""
    kept = [line for line in headers.split(b"\r\n")
            if line and line.partition(b":")[0].strip().lower() not in _HOP_BY_HOP]
    return b"".join(line + b"\r\n" for line in kept) + b"Connection: close\r\n\r\n"


async def _reply(writer: asyncio.StreamWriter, status: int, text: str) -> None:
    reason = {400: "Bad Request", 403: "Forbidden", 502: "Bad Gateway"}[status]
    body = text.encode()
    writer.write(f"HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain\r\nContent-Length: {len(body)}\r\n"
                 "Connection: close\r\n\r\n".encode() + body)
    await writer.drain()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(_BUFFER):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except OSError:
        writer.close()


def _bind_unix(path: Path) -> socket.socket:
    """A listening unix socket at `path`, however long (through the folder's /proc/self/fd entry:
    a socket address holds only 108 bytes, a cockpit home can be deeper)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    folder = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        listener.bind(f"/proc/self/fd/{folder}/{path.name}")
        listener.listen(128)
    except OSError:
        listener.close()
        raise
    finally:
        os.close(folder)
    listener.setblocking(False)
    return listener


_RUNNING: dict[Path, NetProxy] = {}


def serve(path: Path, rules: tuple[HostRule, ...], notify: Callable[[str], None] | None) -> None:
    """Make sure the proxy for `path` runs in this event loop (started once, then reused; the
    latest `notify` is the one told of denials)."""
    proxy = _RUNNING.get(path)
    if proxy is not None and proxy.loop is asyncio.get_running_loop() and not proxy.loop.is_closed():
        proxy.notify = notify or proxy.notify
        return
    proxy = _RUNNING[path] = NetProxy(path, rules, notify)
    proxy.start()


def close_under(folder: Path, session_id: str = "") -> None:
    """Stop the proxies whose sockets are under `folder` (a cockpit home whose engine closes), or
    only those of `session_id` there (a session removed: its proxy would otherwise live on)."""
    for path in [path for path in _RUNNING if path.is_relative_to(folder)
                 and path.name.startswith(f"{session_id}-" if session_id else "")]:
        _RUNNING.pop(path).close()
