"""The records the engine keeps: repositories and sessions.

Both are plain dataclasses that round-trip through JSON, so the same objects describe a session
in the store, in events, over the socket and in `cockpit ls --json`.
"""

from __future__ import annotations

import copy
import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cockpit.core.states import State
from cockpit.errors import CockpitError


@dataclass
class Repo:
    id: int
    path: str  # the main checkout (the directory holding .git)
    slug: str  # unique, used for the worktree folder


@dataclass
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    cost_known: bool = True  # False once any turn used a model litellm has no price for

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def add(self, other: Usage) -> None:
        self.prompt_tokens += other.prompt_tokens
        self.completion_tokens += other.completion_tokens
        self.cost_usd += other.cost_usd
        self.cost_known = self.cost_known and other.cost_known


@dataclass
class Session:
    """One agent + one worktree + one branch made from a base ref."""

    id: str  # short, stable, unique (e.g. "k3f9a")
    number: int  # what a person types: @3
    name: str
    slug: str
    repo_id: int
    branch: str
    base_ref: str
    base_commit: str
    worktree: str
    agent: str = "builtin"
    kind: str = ""  # the agent's kind when the session was made ("llm", "acp", "terminal"): picks its pane
    model: str = ""  # overrides the agent's model when set
    task: str = ""
    tags: list[str] = field(default_factory=list)
    state: State = State.STARTING
    state_detail: str = ""  # why: the error, what it waits for
    port: int = 0  # first port of the session's private block
    forked_from: str = ""
    #: False: the worktree was there before the session (reused, or the main checkout of a
    #: read-only session), so removing the session leaves it; likewise a branch it did not make.
    owns_worktree: bool = True
    owns_branch: bool = True
    #: Runs in the repository's main checkout and must never write there: no write tools, a
    #: read-only sandbox for commands, no merge, verify or revert (see `refuse_read_only`).
    read_only: bool = False
    created_at: float = field(default_factory=time.time)
    usage: Usage = field(default_factory=Usage)
    group: str = ""  # shared by the sessions one fan-out (count > 1) created, for comparing them
    #: The last verify result (cockpit.core.verify.VerifyResult as a dict); {} when never verified.
    verify: dict[str, Any] = field(default_factory=dict)
    repo: str = ""  # the repository's slug (`Repo.slug`): its label on screen and in `@repo:` targets

    @property
    def path(self) -> Path:
        return Path(self.worktree)

    def refuse_read_only(self, action: str) -> None:
        """One line refusing `action` ("merge", "verify" …) when the session is read-only."""
        if self.read_only:
            raise CockpitError(f"session @{self.number} is read-only (it runs in the main checkout {self.worktree}): "
                               f"it cannot {action}")

    def to_dict(self) -> dict[str, Any]:
        """Built field by field: `dataclasses.asdict` deep-copies every value, which made `ls` of
        100 sessions cost the engine 20 ms while agents streamed."""
        data = {name: getattr(self, name) for name in _SESSION_FIELDS}
        data.update(state=self.state.value, usage=dict(vars(self.usage)), tags=list(self.tags),
                    verify=copy.deepcopy(self.verify))
        return data

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Session:
        data = dict(raw)
        data["state"] = State(data.get("state", State.IDLE))
        data["usage"] = Usage(**(data.get("usage") or {}))
        data["tags"] = list(data.get("tags") or [])
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


_SESSION_FIELDS = tuple(f.name for f in dataclasses.fields(Session))
