"""Events carry text, not files: the cap on how much text one event keeps.

A tool that prints 60 MB would otherwise put 60 MB into the store, into every attach answer
whose scrollback reaches it and into every client. An event keeps at most `EVENT_TEXT_MAX`
characters of text in all its strings together; past that each string is cut, ending with a
marker that says how much was cut, and the event's data gains `cut_chars`.
"""

from __future__ import annotations

from typing import Any

#: Characters of text one event keeps, all its strings together.
EVENT_TEXT_MAX = 256 * 1024
#: Deeper than this, data is left as it is (an agent's data is shallow; this bounds the walk).
_MAX_DEPTH = 64


def text_size(data: Any) -> int:
    """Characters in every string of `data` (without recursion: data may be deeply nested)."""
    total, stack = 0, [data]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            total += len(item)
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
    return total


def cap_text(data: dict[str, Any]) -> dict[str, Any]:
    """`data` itself when its text fits (or was cut already: markers take a little more), else
    a copy whose strings are cut to fit together."""
    total = text_size(data)
    if total <= EVENT_TEXT_MAX or "cut_chars" in data:
        return data
    budget = [EVENT_TEXT_MAX]
    capped = _cut(data, budget, 0)
    capped["cut_chars"] = total - (EVENT_TEXT_MAX - budget[0])
    return capped


def _cut(item: Any, budget: list[int], depth: int) -> Any:
    if isinstance(item, str):
        keep = min(len(item), budget[0])
        budget[0] -= keep
        if keep == len(item):
            return item
        return f"{item[:keep]}\n[… {len(item) - keep:,} of {len(item):,} characters cut: an event keeps " \
               f"{EVENT_TEXT_MAX:,}]"
    if depth >= _MAX_DEPTH:
        return item
    if isinstance(item, dict):
        return {key: _cut(value, budget, depth + 1) for key, value in item.items()}
    if isinstance(item, list | tuple):
        return [_cut(value, budget, depth + 1) for value in item]
    return item
