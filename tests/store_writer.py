"""Helper process for the store kill test (not a test module).

Usage: python store_writer.py DB WRITERS

Opens the store and runs WRITERS tasks, each appending events to its own session with
`await store.append(...)`; after each append returns it prints "<session> <seq>" and flushes
stdout. The parent kills it with SIGKILL at some point and checks every printed event is in the
database. When the store becomes unable to write (a full disk) it prints "blocked <reason>".
"""

from __future__ import annotations

import asyncio
import sys

from cockpit.core.events import Event
from cockpit.core.store import Store


async def main(path: str, writers: int) -> None:
    store = await Store.open(path)
    store.on_blocked = lambda reason: print(f"blocked {reason}" if reason else "unblocked", flush=True)

    async def writer(n: int) -> None:
        session = f"w{n}"
        seq = 0
        while True:
            seq += 1
            await store.append(Event("text", session, {"text": f"line {seq} " + "x" * (seq % 300)}, seq))
            sys.stdout.write(f"{session} {seq}\n")
            sys.stdout.flush()

    await asyncio.gather(*(writer(n) for n in range(writers)))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
