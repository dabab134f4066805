"""A session's change as reviewable data: files, hunks and lines against its base commit.

The change is the branch head + uncommitted + untracked files, i.e. the diff from the base
commit to a snapshot tree of the worktree. It is plain data that round-trips through JSON, so
the merge view shows the same thing in-process and over the socket.

Speed matters here: the merge view of a big change must open in about the time of one
`git diff`. So the whole change is ONE `git diff` (rename and copy detection on) written to a
file and parsed by a single pass in Python; files whose patch is longer than
`review.large_file_lines` keep their stats but not their hunks (`folded`) until asked for.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import hashlib
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

from cockpit.core.git import git
from cockpit.core.worktrees import snapshot_tree

FileStatus = Literal["added", "modified", "deleted", "renamed", "copied", "type-changed"]
LineKind = Literal[" ", "+", "-", "\\"]  # context, added, removed, "\ No newline at end of file"

#: Options that make `git diff` output the one format the parser reads, whatever the user's
#: git config says (no colour, no external or textconv drivers, standard a/ b/ prefixes).
DIFF_OPTIONS = (
    "-c", "core.quotepath=false", "diff", "--no-color", "--no-ext-diff", "--no-textconv",
    "--no-relative", "--src-prefix=a/", "--dst-prefix=b/", "--submodule=short",
)


@dataclass(slots=True)
class DiffLine:
    kind: str  # one of LineKind
    text: str  # without the leading kind character and without the newline
    old_no: int | None = None  # line number in the base version (None for added lines)
    new_no: int | None = None  # line number in the session's version (None for removed lines)


@dataclass
class Hunk:
    old_start: int
    old_count: int
    new_start: int
    new_count: int
    section: str = ""  # the text after the second @@ (usually the enclosing function)
    lines: list[DiffLine] = field(default_factory=list)

    @property
    def added(self) -> int:
        return sum(1 for line in self.lines if line.kind == "+")

    @property
    def removed(self) -> int:
        return sum(1 for line in self.lines if line.kind == "-")

    @property
    def header(self) -> str:
        tail = f" {self.section}" if self.section else ""
        return f"@@ -{self.old_start},{self.old_count} +{self.new_start},{self.new_count} @@{tail}"

    @property
    def digest(self) -> str:
        """A fingerprint of the hunk as the person sees it, sent back with "revert this hunk"
        so that a hunk that changed since (the agent kept working) is never reverted blind."""
        digest = hashlib.sha1(visible(self.header).encode())
        for line in self.lines:
            digest.update(b"\n" + visible(line.kind + line.text).encode())
        return digest.hexdigest()[:16]

    def patch_lines(self) -> list[str]:
        """The hunk's body as lines of a unified diff (kind character + text)."""
        return [line.kind + line.text for line in self.lines]


@dataclass
class FileDiff:
    path: str  # path in the session's version (the old path for a deleted file)
    status: str  # one of FileStatus
    old_path: str = ""  # set for renamed and copied files
    old_mode: str = ""  # e.g. "100644"; set when the mode changed, or for added/deleted files
    new_mode: str = ""
    binary: bool = False
    added: int = 0
    removed: int = 0
    similarity: int = 0  # percent, for renames and copies
    #: Hunks are left out (and `folded` set) for a file whose diff is longer than
    #: `review.large_file_lines`; the view asks for that file alone when the person opens it.
    folded: bool = False
    hunks: list[Hunk] = field(default_factory=list)
    patch_lines: int = 0  # lines of the file's diff body, hunk headers included (what folding counts)

    @property
    def mode_changed(self) -> bool:
        return bool(self.old_mode and self.new_mode and self.old_mode != self.new_mode)


@dataclass
class Change:
    base_commit: str
    tree: str  # the snapshot tree the diff was taken against (worktree state at that moment)
    files: list[FileDiff] = field(default_factory=list)

    @property
    def added(self) -> int:
        return sum(f.added for f in self.files)

    @property
    def removed(self) -> int:
        return sum(f.removed for f in self.files)

    def file(self, path: str) -> FileDiff | None:
        """The file shown under `path` (its new path, or the old one of a rename or deletion)."""
        for diff in self.files:
            if path in (diff.path, diff.old_path):
                return diff
        return None

    def to_dict(self) -> dict[str, Any]:
        """The change as JSON-able dicts (what `Change.from_dict` reads).

        Built by hand: `dataclasses.asdict` deep-copies field by field and took 0.5 s for a
        change of 70,000 diff lines, longer than computing the change.
        """
        with _collector_paused():
            return {"base_commit": self.base_commit, "tree": self.tree, "files": [_file_dict(f) for f in self.files]}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Change:
        files = []
        with _collector_paused():
            for f in raw.get("files", []):
                hunks = [
                    Hunk(**{**h, "lines": [DiffLine(**line) for line in h.get("lines", [])]})
                    for h in f.get("hunks", [])
                ]
                files.append(FileDiff(**{**f, "hunks": hunks}))
        return cls(base_commit=raw["base_commit"], tree=raw["tree"], files=files)


_FILE_FIELDS = tuple(f.name for f in fields(FileDiff) if f.name != "hunks")
_HUNK_FIELDS = tuple(f.name for f in fields(Hunk) if f.name != "lines")


def _file_dict(diff: FileDiff) -> dict[str, Any]:
    out = {name: getattr(diff, name) for name in _FILE_FIELDS}
    out["hunks"] = [_hunk_dict(hunk) for hunk in diff.hunks]
    return out


def _hunk_dict(hunk: Hunk) -> dict[str, Any]:
    out = {name: getattr(hunk, name) for name in _HUNK_FIELDS}
    out["lines"] = [
        {"kind": line.kind, "text": line.text, "old_no": line.old_no, "new_no": line.new_no} for line in hunk.lines
    ]
    return out


# -- computing a change ----------------------------------------------------------------------


async def session_change(
    worktree: Path | str, base_commit: str, *, large_file_lines: int, path: str | None = None
) -> Change:
    """The worktree's change against `base_commit`: commits, uncommitted and untracked files.

    With `path`, only that file, never folded (what the view asks for when a person opens a
    folded file); rename detection still sees the whole change, so a renamed file keeps its
    old path.
    """
    tree = await snapshot_tree(Path(worktree))
    return await tree_change(worktree, base_commit, tree, large_file_lines=large_file_lines, path=path)


async def tree_change(
    cwd: Path | str, old: str, new: str, *, large_file_lines: int, path: str | None = None, exact: bool = False
) -> Change:
    """The change between two tree-ish objects (a commit or a tree) of the repository at `cwd`.

    Texts are shown with undecodable bytes replaced, unless `exact`: then they carry them as
    surrogate escapes, so `encoded()` gives back the file's bytes (what a revert writes).
    """
    text = await diff_text(cwd, old, new)
    # Parsing a big change takes tens of milliseconds: not on the event loop the UI runs on.
    files = await asyncio.to_thread(_parsed, text, None if path else large_file_lines, path, exact)
    return Change(base_commit=old, tree=new, files=files)


def _parsed(text: str, fold_over: int | None, only: str | None, exact: bool) -> list[FileDiff]:
    files = parse_patch(text, fold_over=fold_over, only=only)
    if not exact and visible(text) is not text:  # some bytes were not UTF-8
        _make_visible(files)
    return files


async def diff_text(cwd: Path | str, old: str, new: str) -> str:
    """The patch from `old` to `new`, exact: undecodable bytes become surrogate escapes.

    git writes it to a file (`--output`), because our `git()` helper decodes stdout lossily
    and a revert needs the bytes that are really in the files.
    """
    handle, out = tempfile.mkstemp(prefix="cockpit-diff-", suffix=".patch")
    os.close(handle)
    try:
        await git(cwd, *DIFF_OPTIONS, "-C", f"--output={out}", old, new, "--")
        return (await asyncio.to_thread(Path(out).read_bytes)).decode("utf-8", "surrogateescape")
    finally:
        os.unlink(out)


def visible(text: str) -> str:
    """`text` with the surrogate escapes of undecodable bytes shown as U+FFFD."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return encoded(text).decode("utf-8", "replace")
    return text


def encoded(text: str) -> bytes:
    """The bytes an exact text (see `diff_text`) came from."""
    return text.encode("utf-8", "surrogateescape")


def _make_visible(files: list[FileDiff]) -> None:
    for diff in files:
        diff.path, diff.old_path = visible(diff.path), visible(diff.old_path)
        for hunk in diff.hunks:
            hunk.section = visible(hunk.section)
            for line in hunk.lines:
                line.text = visible(line.text)


# -- parsing `git diff` output ---------------------------------------------------------------


def parse_patch(text: str, *, fold_over: int | None = None, only: str | None = None) -> list[FileDiff]:
    """The files of a `git diff` patch (as produced with `DIFF_OPTIONS`).

    `fold_over`: files with more diff lines than this keep their stats but not their hunks.
    `only`: return just the file shown under that path (others are skipped, not parsed).
    A type change (file ↔ symlink) comes from git as a deletion and an addition of the same
    path; it is returned as one "type-changed" file with both hunks.
    """
    files: list[FileDiff] = []
    with _collector_paused():
        for section in _file_sections(text):
            lines = section.split("\n")
            diff, body = _parse_header(lines)
            if only is None or only in (diff.path, diff.old_path):
                _parse_body(diff, lines[body:], fold_over)
                _add_file(files, diff)
    return files


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while a big change is built or converted.

    Tens of thousands of new line objects (none in a cycle) trigger collection after
    collection, each walking everything allocated so far: about a third of the parse time.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _file_sections(text: str) -> list[str]:
    """The patch cut at each "diff --git" line (found by str.find, far faster than per line:
    content lines always start with a kind character, so they never match)."""
    marker = "\ndiff --git "
    starts = [0] if text.startswith(marker[1:]) else []
    found = text.find(marker)
    while found != -1:
        starts.append(found + 1)
        found = text.find(marker, found + 1)
    ends = [*(s - 1 for s in starts[1:]), len(text.removesuffix("\n"))]
    return [text[s:e] for s, e in zip(starts, ends)]


def _add_file(files: list[FileDiff], diff: FileDiff) -> None:
    previous = files[-1] if files else None
    if previous and previous.status == "deleted" and diff.status == "added" and previous.path == diff.path:
        previous.status, previous.new_mode = "type-changed", diff.new_mode
        previous.binary = previous.binary or diff.binary
        previous.added, previous.hunks = diff.added, previous.hunks + diff.hunks
        previous.patch_lines += diff.patch_lines
        previous.folded = previous.folded or diff.folded
        return
    files.append(diff)


def _parse_header(lines: list[str]) -> tuple[FileDiff, int]:
    """Read a file's extended header; return it and the index of its first hunk line."""
    fields: dict[str, str] = {}
    minus = plus = None
    binary = False
    i = 1
    while i < len(lines):
        line = lines[i]
        if line.startswith("@@ "):
            break
        i += 1
        if line.startswith("--- "):
            minus = _patch_path(line[4:])
        elif line.startswith("+++ "):
            plus = _patch_path(line[4:])
        elif line.startswith(("Binary files ", "GIT binary patch")):
            binary = True
        else:
            for key in _HEADER_KEYS:
                if line.startswith(key):
                    fields[key] = line[len(key):]
                    break
    old_name, new_name = _header_names(lines[0][len("diff --git "):], fields, minus, plus)
    diff = FileDiff(path=new_name, status="modified", binary=binary)
    if "new file mode " in fields:
        diff.status, diff.new_mode = "added", fields["new file mode "]
    elif "deleted file mode " in fields:
        diff.status, diff.old_mode, diff.path = "deleted", fields["deleted file mode "], old_name
    elif "rename from " in fields or "copy from " in fields:
        diff.status = "renamed" if "rename from " in fields else "copied"
        diff.old_path = old_name
        diff.similarity = int(fields.get("similarity index ", "0%").rstrip("%") or 0)
    diff.old_mode = fields.get("old mode ", diff.old_mode)
    diff.new_mode = fields.get("new mode ", diff.new_mode)
    return diff, i


_HEADER_KEYS = (
    "old mode ", "new mode ", "deleted file mode ", "new file mode ", "rename from ", "rename to ",
    "copy from ", "copy to ", "similarity index ",
)


def _header_names(rest: str, fields: dict[str, str], minus: str | None, plus: str | None) -> tuple[str, str]:
    """(old path, new path) from the most reliable header lines present.

    "rename/copy from/to" and "---/+++" name one path each; without them (binary files, mode
    changes, empty files) the "diff --git a/X b/X" line names the same path twice.
    """
    for source, target in (("rename from ", "rename to "), ("copy from ", "copy to ")):
        if source in fields:
            return _unquote(fields[source]), _unquote(fields[target])
    old = minus[2:] if minus and minus != "/dev/null" else None
    new = plus[2:] if plus and plus != "/dev/null" else None
    if old or new:
        return old or new or "", new or old or ""
    if rest.startswith('"'):
        name = _unquote(rest[: _quoted_end(rest) + 1])[2:]
    else:
        name = rest[2 : 2 + (len(rest) - 5) // 2]  # "a/X b/X": both halves are the same X
    return name, name


def _patch_path(raw: str) -> str:
    # git ends a ---/+++ name that contains a space with a tab.
    return _unquote(raw.removesuffix("\t"))


def _quoted_end(text: str) -> int:
    i = 1
    while text[i] != '"':
        i += 2 if text[i] == "\\" else 1
    return i


_ESCAPES = {"a": 7, "b": 8, "t": 9, "n": 10, "v": 11, "f": 12, "r": 13, '"': 34, "\\": 92}


def _unquote(name: str) -> str:
    """A path as git prints it (C-quoted when it holds special characters) → the path."""
    if not name.startswith('"'):
        return name
    body, out, i = name[1:-1], bytearray(), 0
    while i < len(body):
        char = body[i]
        if char != "\\":
            out += encoded(char)
            i += 1
        elif body[i + 1] in _ESCAPES:
            out.append(_ESCAPES[body[i + 1]])
            i += 2
        else:
            out.append(int(body[i + 1 : i + 4], 8))
            i += 4
    return out.decode("utf-8", "surrogateescape")


def _parse_body(diff: FileDiff, body: list[str], fold_over: int | None) -> None:
    """Hunks and counts of one file; the hot loop of opening a big change, so it is flat."""
    diff.patch_lines = len(body)
    if fold_over is not None and len(body) > fold_over:
        diff.folded = True
        diff.added = sum(1 for line in body if line[:1] == "+")
        diff.removed = sum(1 for line in body if line[:1] == "-")
        return
    added = removed = old_no = new_no = 0
    append = diff.hunks.append  # rebound to the current hunk's lines at each "@@"
    for line in body:
        kind = line[:1]
        if kind == " ":
            append(DiffLine(" ", line[1:], old_no, new_no))
            old_no += 1
            new_no += 1
        elif kind == "+":
            append(DiffLine("+", line[1:], None, new_no))
            new_no += 1
            added += 1
        elif kind == "-":
            append(DiffLine("-", line[1:], old_no, None))
            old_no += 1
            removed += 1
        elif kind == "@":
            hunk = _hunk_header(line)
            diff.hunks.append(hunk)
            append = hunk.lines.append
            old_no, new_no = hunk.old_start, hunk.new_start
        else:  # "\\ No newline at end of file"
            append(DiffLine("\\", line[1:].lstrip()))
    diff.added, diff.removed = added, removed


def _hunk_header(line: str) -> Hunk:
    """`@@ -a,b +c,d @@ section` (a count of 1 may be left out)."""
    ranges, _, section = line[3:].partition(" @@")
    old, new = ranges.split(" ")
    old_start, old_count = _range(old[1:])
    new_start, new_count = _range(new[1:])
    return Hunk(old_start, old_count, new_start, new_count, section.removeprefix(" "))


def _range(text: str) -> tuple[int, int]:
    start, _, count = text.partition(",")
    return int(start), int(count) if count else 1
