"""Attack replays against the server's memory and socket (issue #13.4, #12.7 / #13.6).

Every test runs the real `cockpit server` process and talks to its real socket the way a
hostile script on the same machine would (`bench/hostile.py`, shared with the server bench).
Memory bounds are the server's peak resident set read from /proc, with generous thresholds:
without the fixes each attack takes it past a gigabyte.
"""

from __future__ import annotations

import os
import stat
import sys
import threading
from pathlib import Path

import pytest

from cockpit.errors import CockpitError
from cockpit.server import protocol as wire
from cockpit.server.daemon import ensure_server, is_listening, stop_server
from cockpit.server.lock import lock_holder
from cockpit.server.paths import ServerPaths

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import hostile  # noqa: E402  (bench/hostile.py)

pytestmark = pytest.mark.slow

#: The server's peak resident set allowed under an attack (it idles at well under 100 MiB).
PEAK_MB = 300


def _server(home: Path, repo: Path) -> tuple[ServerPaths, int]:
    paths = ServerPaths(home)
    ensure_server(paths, repo)
    holder = lock_holder(paths)
    assert holder is not None
    return paths, holder.pid


def test_eight_clients_sending_200_mb_lines_at_once(repo, cockpit_env):
    """#13.4 row "8 clients × 200 MB request lines": each gets an error for its line, which is
    dropped as it arrives, then its next request served; the server stays small."""
    paths, pid = _server(cockpit_env.home, repo)
    answers = hostile.huge_lines(paths, clients=8, size_mb=200)
    for too_long, status in answers:
        assert too_long["error"]["code"] == wire.INVALID_REQUEST
        assert too_long["error"]["message"] == f"request line longer than {wire.MAX_REQUEST_LINE} bytes: dropped"
        assert status["result"]["pid"] == pid  # the same connection goes on
    assert hostile.rss_mb(pid) < PEAK_MB


def test_a_client_that_never_reads_its_transcripts(repo, cockpit_env):
    """#13.4 row "non-reading client asks `transcript` of a 60 MB session 20 times" (here 400
    times: 400 pages of ~1 MiB): the server stops reading that client while its answers are
    unsent instead of piling them up; the client gets them once it reads, and others are served
    meanwhile."""
    hostile.seed_store(cockpit_env.home, repo, transcript_mb=60, huge_row_mb=0)
    paths, pid = _server(cockpit_env.home, repo)
    hog, ids = hostile.never_reads(paths, asks=400)
    try:
        other = hostile.Wire(paths)
        assert other.call("server.status")["result"]["clients"] == 2
        other.close()
        assert hostile.rss_mb(pid) < PEAK_MB
        for request_id in ids[:20]:
            page = hog.answer(request_id)["result"]
            assert 1 <= len(page) <= 8 and page[0]["seq"] == 1  # the first page, not 60 MB
    finally:
        hog.close()
    assert hostile.rss_mb(pid) < PEAK_MB


def test_a_huge_event_in_the_attach_scrollback(repo, cockpit_env):
    """#13.4 row "one 60 MB event in an attach tail, 20 attaches": a row that big (stored
    before events were capped) comes as a stub saying so, every attach answer stays about a
    megabyte, and the server stays small."""
    hostile.seed_store(cockpit_env.home, repo, transcript_mb=8, huge_row_mb=60)
    paths, pid = _server(cockpit_env.home, repo)
    sizes = hostile.reattach(paths, times=20)
    assert max(sizes) < 2 * hostile.MB
    conn = hostile.Wire(paths)
    last = conn.call("transcript", session=hostile.SESSION, tail=1)["result"]
    conn.close()
    assert last[0]["data"]["text"].startswith("[event data of 62,914,")
    assert last[0]["data"]["text"].endswith(" bytes not kept: an event keeps 1,638,400]")
    assert hostile.rss_mb(pid) < PEAK_MB


def test_json_nested_100k_levels_is_answered_not_fatal(repo, cockpit_env):
    """#13.4 row "100,000 nested arrays": a JSON-RPC error answers it (no RecursionError in
    the log) and the connection goes on."""
    paths, pid = _server(cockpit_env.home, repo)
    conn = hostile.Wire(paths)
    conn.sock.sendall(b"[" * 100_000 + b"]" * 100_000 + b"\n")
    refused = conn.answer(None)["error"]
    assert (refused["code"], refused["message"]) == (wire.INVALID_REQUEST, "request nested deeper than 32 levels")
    conn.sock.sendall(b'{"jsonrpc":"2.0","id":7,"method":"x","params":' + b'{"a":' * 40 + b"1" + b"}" * 41 + b"\n")
    assert conn.answer(7)["error"]["code"] == wire.INVALID_REQUEST
    assert conn.call("server.status")["result"]["pid"] == pid
    conn.close()
    assert "RecursionError" not in paths.log.read_text()


def test_clients_racing_a_restart_never_see_an_open_socket(repo, cockpit_env):
    """#12.7 / #13.6 row "80 clients racing `cockpit server stop` and a restart": the socket
    only ever appears already private (bound in a private folder, renamed into place), so no
    client is refused with "socket is mode 755"."""
    paths, _pid = _server(cockpit_env.home, repo)
    refused: list[str] = []
    modes: set[int] = set()
    stop = threading.Event()

    def client() -> None:
        while not stop.is_set():
            try:
                is_listening(paths)
            except CockpitError as exc:
                refused.append(str(exc))
            try:
                modes.add(stat.S_IMODE(os.lstat(paths.socket).st_mode))
            except FileNotFoundError:
                pass

    racers = [threading.Thread(target=client) for _ in range(16)]
    for racer in racers:
        racer.start()
    try:
        for _ in range(5):
            stop_server(paths)
            ensure_server(paths, repo)
    finally:
        stop.set()
        for racer in racers:
            racer.join()
    assert refused == []
    assert modes == {0o600}
    assert [p.name for p in paths.run_dir.iterdir() if p.name.startswith(".bind-")] == []
