"""Keeping every process a session starts within reach, so that ending the session ends them all.

A process group is not enough: a command (or an agent) can `setsid`, double-fork and be
reparented to init, and then nothing ties it to the session any more; a `setsid sleep 300` run
by an agent outlived the removal of its session. Two mechanisms, strongest first:

1. **A cgroup v2 per session**, when the cgroup2 hierarchy is writable here (root, or a delegated
   subtree such as systemd's user@ service). Every command started with the session's variables
   is wrapped so that its first act is to join `cockpit-<key>` under our own cgroup, before the
   real program is exec'd: nothing it forks can leave, whatever it does with sessions or parents.
   Ending the session writes `cgroup.kill` (Linux 5.14+; older kernels get every member killed
   until none is left) and removes the cgroup. Unlike a PID namespace, this changes nothing the
   command can see: it is not PID 1, so signals, exit codes and `kill $$` behave as usual (a
   `unshare --pid --fork` wrapper made the agent PID 1, which ignores SIGTERM and reports no
   signal deaths).
2. **A /proc sweep**, always, after the cgroup (and alone where cgroups are not writable):
   every process whose environment carries the session's marker variables, plus every
   descendant of one by its parent chain, is SIGKILLed, over a few rounds so that a process
   forking while it is swept is caught too. The marker survives `setsid` and reparenting; only a
   process that also wiped its environment (`env -i`) after escaping its parent escapes the
   sweep, which the cgroup closes.

The session's key is derived from `COCKPIT_SESSION` and `COCKPIT_WORKTREE` (both set for every
process of a session, see `core/setup.session_env`): a session id alone repeats across cockpit
homes, a worktree path does not. Our own process and its ancestors are never killed (a server
started from inside a session carries that session's variables).

The blocking work (cgroupfs and /proc reads, which can stall on a process stuck in the kernel)
runs on one thread of our own, never on the event loop's shared default pool.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import signal
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from pathlib import Path

SESSION_VAR = "COCKPIT_SESSION"
WORKTREE_VAR = "COCKPIT_WORKTREE"
#: The variables that tie a process to its session; whoever adds variables must not replace them.
SESSION_MARKERS = (SESSION_VAR, WORKTREE_VAR)
#: Rounds of the /proc sweep: a process forking while swept is caught by the next round.
SWEEP_ROUNDS = 5
#: How long ending a session may take before the server gives up waiting (it goes on serving).
END_TIMEOUT_S = 10.0
_EMPTY_WAIT_S = 2.0
_POLL_S = 0.02
#: Joins the cgroup whose `cgroup.procs` is $0, then becomes the command.
_JOIN = 'echo $$ > "$0" 2>/dev/null; exec "$@"'

_worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cockpit-reaper")


def session_key(env: Mapping[str, str]) -> str | None:
    """The machine-wide key of the session these variables belong to; None for none."""
    session, worktree = env.get(SESSION_VAR), env.get(WORKTREE_VAR)
    if not session or not worktree:
        return None
    return hashlib.sha256(f"{session}\0{worktree}".encode()).hexdigest()[:16]


# -- the cgroup ------------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def cgroup_base() -> Path | None:
    """Our own cgroup v2 folder if we may create cgroups in it, else None."""
    try:
        own = next((line[3:].strip() for line in Path("/proc/self/cgroup").read_text().splitlines()
                    if line.startswith("0::")), None)
        mounts = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return None
    mount = next((line.split()[4] for line in mounts if " - cgroup2 " in line), None)
    if own is None or mount is None:
        return None
    base = Path(mount) / own.lstrip("/")
    probe = base / f"cockpit-probe-{os.getpid()}"
    try:
        probe.mkdir(exist_ok=True)
        probe.rmdir()
    except OSError:
        return None
    return base


def session_cgroup(key: str) -> Path | None:
    """The cgroup folder of the session with `key` (it may not exist yet); None without cgroups."""
    base = cgroup_base()
    return None if base is None else base / f"cockpit-{key}"


def contained(argv: Sequence[str], env: Mapping[str, str] | None) -> list[str]:
    """`argv`, wrapped to join its session's cgroup first when `env` names a session and cgroups
    are writable here; else `argv` as it is (the /proc sweep still finds it by its variables)."""
    key = session_key(env) if env is not None else None
    folder = session_cgroup(key) if key else None
    if folder is None:
        return list(argv)
    try:
        folder.mkdir(exist_ok=True)
    except OSError:
        return list(argv)
    return ["/bin/sh", "-c", _JOIN, str(folder / "cgroup.procs"), *argv]


def _kill_cgroup(folder: Path) -> int:
    """Kill every member of the cgroup, wait until it is empty, remove it; how many were in it."""
    procs = folder / "cgroup.procs"
    try:
        members = len(procs.read_text().split())
    except OSError:
        return 0
    kill = folder / "cgroup.kill"
    deadline = time.monotonic() + _EMPTY_WAIT_S
    while time.monotonic() < deadline:
        try:
            if kill.exists():
                kill.write_text("1")
            else:  # before Linux 5.14: kill the members one by one until none is left
                for pid in procs.read_text().split():
                    with contextlib.suppress(OSError):
                        os.kill(int(pid), signal.SIGKILL)
            if not procs.read_text().split():
                break
        except OSError:
            break
        time.sleep(_POLL_S)
    while time.monotonic() < deadline:  # the killed are gone from procs before the cgroup empties
        try:
            folder.rmdir()
            break
        except FileNotFoundError:
            break
        except OSError:
            time.sleep(_POLL_S)
    return members


# -- the /proc sweep -------------------------------------------------------------------------------


def _parent(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    return int(stat[stat.rindex(b")") + 2:].split()[1])  # after "pid (comm) state"


def _marked(pid: int, key: str) -> bool:
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return False
    wanted = (SESSION_VAR.encode() + b"=", WORKTREE_VAR.encode() + b"=")
    found = {item.partition(b"=")[0].decode(): item.partition(b"=")[2].decode(errors="replace")
             for item in raw.split(b"\0") if item.startswith(wanted)}
    return session_key(found) == key


def _ourselves() -> set[int]:
    """Our pid and our ancestors' (never to be killed, whatever their variables say)."""
    chain, pid = set(), os.getpid()
    while pid and pid not in chain:
        chain.add(pid)
        pid = _parent(pid) or 0
    return chain


def _sweep(key: str) -> int:
    """SIGKILL the processes marked with `key` and their descendants; how many were killed."""
    spared = _ourselves()
    killed: set[int] = set()
    for _ in range(SWEEP_ROUNDS):
        pids = [int(name) for name in os.listdir("/proc") if name.isdigit()]
        parents = {pid: _parent(pid) for pid in pids}
        doomed = {pid for pid in pids if pid not in spared and _marked(pid, key)}
        grown = True
        while grown:  # add descendants by the parent chain (a child may have wiped its variables)
            more = {pid for pid, parent in parents.items() if parent in doomed and pid not in spared} - doomed
            doomed |= more
            grown = bool(more)
        doomed -= killed | spared
        if not doomed:
            break
        for pid in doomed:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        killed |= doomed
    return len(killed)


def _end(key: str) -> int:
    folder = session_cgroup(key)
    members = _kill_cgroup(folder) if folder is not None and folder.is_dir() else 0
    return members + _sweep(key)


async def end_session_processes(env: Mapping[str, str]) -> int:
    """Kill every process of the session `env` belongs to (cgroup, then /proc sweep).

    Returns how many were found (a cgroup's members and the sweep's kills, so one process may be
    counted twice); 0 when `env` names no session, or when it took longer than `END_TIMEOUT_S`.
    """
    key = session_key(env)
    if key is None:
        return 0
    loop = asyncio.get_running_loop()
    try:
        return await asyncio.wait_for(loop.run_in_executor(_worker, _end, key), END_TIMEOUT_S)
    except TimeoutError:
        return 0
