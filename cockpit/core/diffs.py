"""A session's change as reviewable data: files, hunks and lines against its base commit.

The change is the branch head + uncommitted + untracked files, i.e. the diff from the base
commit to a snapshot tree of the worktree. It is plain data that round-trips through JSON, so
the merge view shows the same thing in-process and over the socket.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

FileStatus = Literal["added", "modified", "deleted", "renamed", "copied", "type-changed"]
LineKind = Literal[" ", "+", "-", "\\"]  # context, added, removed, "\ No newline at end of file"


@dataclass
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

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Change:
        files = []
        for f in raw.get("files", []):
            hunks = [
                Hunk(**{**h, "lines": [DiffLine(**line) for line in h.get("lines", [])]})
                for h in f.get("hunks", [])
            ]
            files.append(FileDiff(**{**f, "hunks": hunks}))
        return cls(base_commit=raw["base_commit"], tree=raw["tree"], files=files)
