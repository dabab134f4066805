""""Always allow this shape in this repo": a shell rule added to the repository's `.cockpit.toml`.

The rule is the shape's globs added to `[approval] shell_allow`. The file is edited as text, so
the person's comments and layout stay, and the result is read back: unless it parses to exactly
the old settings plus the new patterns, nothing is written and one line says to add it by hand.

Trust: a repository's file only widens approvals once trusted, and trust is pinned to the file's
bytes (`cockpit/trust.py`). The person saw the diff and said yes, so the new version is trusted
in turn, but only where the old one was trusted (or there was no file): writing into a file
nobody trusted would make its other, unseen keys trusted too, so that is refused instead.
"""

from __future__ import annotations

import copy
import difflib
import hashlib
import json
import os
import re
import tempfile
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cockpit.errors import ConfigError
from cockpit.trust import REPO_FILE, TrustStore, file_digest, read_config_bytes

_APPROVAL_HEADER = re.compile(r"^[ \t]*\[[ \t]*approval[ \t]*\][ \t]*(#.*)?$", re.MULTILINE)
_SHELL_ALLOW = re.compile(r"^[ \t]*(approval[ \t]*\.[ \t]*)?shell_allow[ \t]*=[ \t]*\[", re.MULTILINE)


@dataclass(frozen=True)
class RulePlan:
    """What adding a rule would change, as shown to the person before it is written."""

    repo: str
    file: str
    digest: str  # of the file as it is now ("" when there is none): the write checks it is unchanged
    before: str
    after: str
    added: list[str]

    @property
    def diff(self) -> str:
        name = f"{Path(self.repo).name}/{REPO_FILE}"
        return "".join(difflib.unified_diff(self.before.splitlines(keepends=True), self.after.splitlines(keepends=True),
                                            f"a/{name}", f"b/{name}"))

    def to_dict(self) -> dict[str, Any]:
        return {"repo": self.repo, "file": self.file, "digest": self.digest, "diff": self.diff, "added": self.added,
                "new_file": not self.digest}


def plan_rule(repo: Path | str, patterns: list[str], trust: TrustStore) -> RulePlan:
    """The change that allows `patterns` in `repo` (ConfigError, one line, when it cannot be made)."""
    root = Path(repo)
    path = root / REPO_FILE
    data = read_config_bytes(path)
    digest = file_digest(path)
    if data is not None and not trust.is_trusted(root, digest):
        raise ConfigError(f"{path} is not trusted, so a rule written there would not apply: look at it and "
                          f"trust it first (`cockpit trust {root}`)")
    try:
        before = "" if data is None else data.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text; add the rule by hand") from None
    after, added = with_shell_allow(before, patterns, str(path))
    if not added:
        raise ConfigError(f"{path} allows {', '.join(repr(p) for p in patterns)} already")
    return RulePlan(str(root), str(path), digest, before, after, added)


def write_rule(repo: Path | str, patterns: list[str], digest: str, trust: TrustStore) -> str:
    """Write the rule planned for the file version `digest` (the one whose diff the person saw);
    returns the new file's digest, which is trusted."""
    plan = plan_rule(repo, patterns, trust)
    if plan.digest != digest:
        raise ConfigError(f"{plan.file} changed since its diff was shown; nothing written (look again)")
    data = plan.after.encode("utf-8")
    _replace(Path(plan.file), data)
    return trust.trust(plan.repo, expect="sha256:" + hashlib.sha256(data).hexdigest())


def _replace(path: Path, data: bytes) -> None:
    """Write the whole file at once (a reader never sees half of it), keeping its mode."""
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o644
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".cockpit-", suffix=".toml")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def with_shell_allow(text: str, patterns: list[str], where: str = REPO_FILE) -> tuple[str, list[str]]:
    """(`text` with `patterns` added to `[approval] shell_allow`, the patterns that were new)."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{where}: not valid TOML ({exc}); fix it first") from None
    approval = raw.get("approval", {})
    existing = approval.get("shell_allow", []) if isinstance(approval, dict) else None
    if not isinstance(existing, list):
        raise ConfigError(f"{where}: [approval] is not a table of settings; add the rule by hand")
    added = [p for p in dict.fromkeys(patterns) if p not in existing]
    if not added:
        return text, []
    expected = copy.deepcopy(raw)
    expected.setdefault("approval", {})["shell_allow"] = [*existing, *added]
    values = ", ".join(json.dumps(p, ensure_ascii=False) for p in added)  # a JSON string is a TOML basic string
    edited = _edited(text, values, "shell_allow" in approval)
    try:
        ok = edited is not None and tomllib.loads(edited) == expected
    except tomllib.TOMLDecodeError:
        ok = False
    if not ok or edited is None:
        raise ConfigError(f"{where}: cannot add the rule without rewriting the file; add "
                          f"{values} to [approval] shell_allow by hand")
    return edited, added


def _edited(text: str, values: str, has_list: bool) -> str | None:
    if has_list:
        found = list(_SHELL_ALLOW.finditer(text))
        if len(found) != 1:
            return None
        end = _last_value_end(text, found[0].end())
        if end is None:
            return None
        last = text[end - 1]
        insert = values if last == "[" else f" {values}," if last == "," else f", {values}"
        return text[:end] + insert + text[end:]
    line = f"shell_allow = [{values}]\n"
    header = list(_APPROVAL_HEADER.finditer(text))
    if len(header) == 1:
        at = text.find("\n", header[0].end())
        at = len(text) if at < 0 else at + 1
        prefix = text[:at] if text[:at].endswith("\n") else text[:at] + "\n"
        return prefix + line + text[at:]
    if header:
        return None
    if not text.strip():
        return f"[approval]\n{line}"
    return text + ("\n" if text.endswith("\n") else "\n\n") + f"[approval]\n{line}"


def _last_value_end(text: str, start: int) -> int | None:
    """In the array opened just before `start`: the index after its last significant character
    (the `[` itself when empty), skipping strings and comments; None if it never closes."""
    i = start
    last = start  # just after the `[`
    while i < len(text):
        char = text[i]
        if char == "#":
            newline = text.find("\n", i)
            i = len(text) if newline < 0 else newline
            continue
        if char in "\"'":
            quote = text[i:i + 3] if text[i:i + 3] in ('"""', "'''") else char
            i += len(quote)
            while i < len(text) and not text.startswith(quote, i):
                i += 2 if char == '"' and text[i] == "\\" else 1
            i += len(quote)
            last = i
            continue
        if char == "]":
            return last
        if char == "[":
            return None  # a nested array: not a list of patterns
        if not char.isspace():
            last = i + 1
        i += 1
    return None
