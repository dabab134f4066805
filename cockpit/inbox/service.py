"""The inbox as engine commands (a feature: core never imports it, `cockpit.features` installs it).

    {"cmd": "inbox_pending"}  → every pending approval of this engine's sessions
    {"cmd": "inbox_suggestions"}  → shapes approved often enough to become a rule, per repository
    {"cmd": "inbox_rule_preview", "session": "k3f9a", "patterns": [...], "commands": [...]}
    {"cmd": "inbox_rule_write", "session": "k3f9a", "patterns": [...], "digest": "sha256:…"}

A rule is about a repository but named through one of its sessions, so that with several hosts
attached the command reaches the host whose repository it is (`client.multi`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cockpit.core import events as ev
from cockpit.errors import CockpitError, ConfigError
from cockpit.inbox.groups import Tally, merge_tallies, tally_answers, worth_suggesting
from cockpit.inbox.rules import plan_rule, write_rule
from cockpit.inbox.shapes import policy_refusal, rule_refusal

if TYPE_CHECKING:
    from cockpit.core.engine import Engine

#: Commands of a suggestion sent along, to show what was approved (the rest are counted).
_EXAMPLES = 3


class InboxService:
    def __init__(self, engine: Engine):
        self.engine = engine

    def owns(self, session_id: str) -> bool:
        return False

    async def close(self) -> None:
        return None

    def pending(self) -> list[dict[str, Any]]:
        out = []
        for session in sorted(self.engine.sessions.values(), key=lambda s: s.number):
            host = self.engine.hosts.get(session.id)
            for request in list(host.pending.values()) if host is not None else []:
                out.append({"session": session.id, "number": session.number, "name": session.name,
                            "repo": self._repo(session.id), "id": request.id, "tool": request.tool,
                            "title": request.title, "detail": request.detail})
        return out

    async def suggestions(self) -> list[dict[str, Any]]:
        """Shapes approved at least `SUGGEST_AFTER` times and never denied in a repository,
        which its policy does not allow yet and a rule could."""
        by_session: dict[str, list[ev.Event]] = {}
        for event in await self.engine.store.events_of_kinds((ev.APPROVAL_REQUEST, ev.APPROVAL_RESOLVED)):
            by_session.setdefault(event.session, []).append(event)
        per_repo: dict[str, tuple[str, dict[str, Tally]]] = {}  # repo → (a session there, tallies)
        for session_id, events in by_session.items():
            if session_id not in self.engine.sessions:
                continue
            _, tallies = per_repo.setdefault(self._repo(session_id), (session_id, {}))
            merge_tallies(tallies, tally_answers(events))
        out = []
        for repo, (session_id, tallies) in per_repo.items():
            try:
                approval = self.engine.configs.for_repo(repo).approval
            except ConfigError:
                continue  # its file never loaded: no rule can be weighed (the screen says why elsewhere)
            for tally in sorted(tallies.values(), key=lambda t: (-t.approved, t.shape.label)):
                if (not worth_suggesting(tally) or not policy_refusal(approval, tally.commands)
                        or rule_refusal(approval, tally.shape.patterns, tally.commands)):
                    continue
                out.append({"repo": repo, "session": session_id, "label": tally.shape.label,
                            "patterns": list(tally.shape.patterns), "approved": tally.approved,
                            "commands": tally.commands[:_EXAMPLES]})
        return out

    async def rule_preview(self, session: str, patterns: list[str], commands: list[str] = ()) -> dict[str, Any]:
        """The diff of the repository's file with the rule added; refused (one line) when the rule
        would not let `commands` run unasked or the file cannot take it."""
        repo = self._repo(self.engine.get(session).id)
        patterns = _checked(patterns)
        refusal = rule_refusal(self.engine.configs.for_repo(repo).approval, patterns, _strings(commands, "commands"))
        if refusal:
            raise CockpitError(refusal)
        plan = await asyncio.to_thread(plan_rule, repo, patterns, self.engine.configs.trust)
        return plan.to_dict()

    async def rule_write(self, session: str, patterns: list[str], digest: str) -> dict[str, Any]:
        repo = self._repo(self.engine.get(session).id)
        if not isinstance(digest, str):
            raise CockpitError("inbox_rule_write: digest must be the file's digest from inbox_rule_preview")
        new = await asyncio.to_thread(write_rule, repo, _checked(patterns), digest, self.engine.configs.trust)
        return {"repo": repo, "file": str(Path(repo) / ".cockpit.toml"), "digest": new}

    def _repo(self, session_id: str) -> str:
        return self.engine.repos[self.engine.sessions[session_id].repo_id].path


def _strings(value: Any, name: str) -> list[str]:
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise CockpitError(f"inbox: {name} must be a list of strings, got {value!r}")
    return list(value)


def _checked(patterns: Any) -> list[str]:
    """Shell patterns as a rule holds them: non-empty, one line each."""
    patterns = _strings(patterns, "patterns")
    bad = next((p for p in patterns if not p.strip() or any(c in p for c in "\n\r\0")), None)
    if bad is not None or not patterns:
        raise CockpitError(f"inbox: a rule needs one-line, non-empty shell patterns, got {bad!r}")
    return patterns


async def _pending(engine: Engine) -> list[dict[str, Any]]:
    return engine.inbox.pending()


INBOX_COMMANDS: dict[str, Callable[..., Awaitable[Any]]] = {
    "inbox_pending": _pending,
    "inbox_suggestions": lambda e: e.inbox.suggestions(),
    "inbox_rule_preview": lambda e, session, patterns, commands=(): e.inbox.rule_preview(session, patterns, commands),
    "inbox_rule_write": lambda e, session, patterns, digest: e.inbox.rule_write(session, patterns, digest),
}
