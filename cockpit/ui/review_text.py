"""How the merge desk's results read in one line: verify state, merge preview (pure).

Kept apart from the views and dialogs so that the merge view's module, which the cockpit
imports at start for its key bindings, needs no dialog widgets until one is opened.
"""

from __future__ import annotations

from typing import Any


def verify_text(verify: dict[str, Any], preview: dict[str, Any] | None = None) -> str:
    """`verify ✓`, `verify ✗ failed`, `verify …`, `not verified`; a pass on an older version of
    the change (the preview says it is not for this tree) is said to be stale."""
    state = verify.get("state", "")
    if state == "passed":
        stale = preview is not None and not preview.get("verified", True)
        return "verify ✓ (older change)" if stale else "verify ✓"
    if state == "running":
        return "verify …"
    if state in ("failed", "timed-out"):
        return f"verify ✗ {state.replace('-', ' ')}"
    return "not verified"


def merge_outcome(preview: dict[str, Any]) -> str:
    """One line: does the change merge into its target, and how many files."""
    conflicts = preview.get("conflicts") or []
    if conflicts:
        return f"✗ conflicts with {preview['target']} in {_files(len(conflicts))}"
    return f"merges cleanly ({_files(len(preview.get('files') or []))})"


def preview_badge(preview: dict[str, Any]) -> str:
    """The preview in a header's few characters."""
    conflicts = len(preview.get("conflicts") or [])
    return f"✗ conflicts in {_files(conflicts)}" if conflicts else "merges cleanly"


def _files(count: int) -> str:
    return f"{count} file{'s' if count != 1 else ''}"
