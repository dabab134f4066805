"""Two small fixes to Textual 8.2 that the 48-pane benchmark (`bench/ui.py`) found.

Each one is applied only when Textual still has the code it fixes, so a Textual release that
fixes it upstream (or changes it) simply leaves it alone. Imported for its effect by the app.

1. `Strip.divide` caches `[self]` inside `self` when a strip needs no cut, which is the case
   for nearly every line the compositor paints. That is a reference cycle, so every painted
   line became garbage that only a full collection frees: at 48 streaming panes ~3,000 strips
   (~45,000 objects) a second, and 50-100 ms collections that stalled key presses.

2. `Timer._run`, after a late tick, skips one slot too many (`int(elapsed / interval + 1)` is
   the index of the slot *ahead*, and the loop adds one more). The screen's 60 Hz update timer
   is late after every pause, i.e. after every idle moment, so the frame that answers a key
   press came 17-33 ms after the press instead of at most 17 ms: p99 key latency 45-55 ms at
   48 panes, 26 ms with one. With the fix: ~23 ms and ~20 ms.
"""

from __future__ import annotations

import inspect
from typing import Any

from textual import timer as _timer_module
from textual.strip import Strip
from textual.timer import EventTargetGone, Timer

_MARK = "_cockpit_patched"


def _divide_without_self_reference() -> None:
    original = Strip.divide
    if getattr(original, _MARK, False):
        return

    def divide(self: Strip, cuts: Any) -> Any:
        cuts = list(cuts)
        length = self.cell_length
        if [cut for cut in cuts if cut <= length] == [length]:
            return [self]  # what the cache would hold, without the cycle
        return original(self, cuts)

    setattr(divide, _MARK, True)
    Strip.divide = divide  # type: ignore[method-assign]


_TIMER_BUG = "count = int((now - start) / _interval + 1)"


async def _run(self: Timer) -> None:
    """Textual 8.2.8's `Timer._run` with the skip computed from the next slot still ahead."""
    time, sleep = _timer_module._time, _timer_module.sleep
    count = 0
    _repeat = self._repeat
    _interval = self._interval
    self._active  # Force instantiation in same thread
    await self._active.wait()
    start = time.get_time()

    while _repeat is None or count <= _repeat:
        next_timer = start + ((count + 1) * _interval)
        now = time.get_time()
        if self._skip and next_timer < now:
            count = max(count + 1, int((now - start) / _interval))
            continue
        now = time.get_time()
        wait_time = max(0, next_timer - now)
        await sleep(wait_time)
        count += 1
        await self._active.wait()
        if self._reset:
            start = time.get_time()
            count = 0
            self._reset = False
            continue
        try:
            await self._tick(next_timer=next_timer, count=count)
        except EventTargetGone:
            break


def _timer_skips_to_the_next_slot() -> None:
    original = Timer._run
    if getattr(original, _MARK, False):
        return
    try:
        source = inspect.getsource(original)
    except (OSError, TypeError):
        return
    if _TIMER_BUG not in source or source.count("\n") > 45:  # not the 8.2 loop we replace
        return
    setattr(_run, _MARK, True)
    Timer._run = _run  # type: ignore[method-assign]


_divide_without_self_reference()
_timer_skips_to_the_next_slot()
