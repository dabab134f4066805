"""Plain HTTP servers on loopback, outside any sandbox: what a sandboxed command may or may not
reach, and a receiver that records what the cockpit POSTs (phone notifications)."""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass


@contextmanager
def answering(body: bytes) -> Iterator[int]:
    """Serve every GET with `body` on 127.0.0.1 while the block runs; yields the port."""

    class Answer(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the http.server API
            self.send_response(200)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Answer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@contextmanager
def receiving(status: int = 200, answer_after: float = 0.0) -> Iterator[tuple[str, list[Received]]]:
    """Record every POST on 127.0.0.1 (answered `status`, after `answer_after` seconds) while the
    block runs; yields the server's base URL and the list the requests are appended to."""
    received: list[Received] = []

    class Record(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - the http.server API
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            received.append(Received(self.path, dict(self.headers.items()), body))
            time.sleep(answer_after)
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Record)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", received
    finally:
        server.shutdown()
        server.server_close()
