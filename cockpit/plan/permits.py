"""What a plan's conductor may approve for its sessions on the person's behalf.

Only shell commands that `[approval] conductor` names (globs read exactly like `shell_allow`:
every command of a chained line must match, and `shell_deny` still wins), and only when the
person's own config says so: an untrusted repository file cannot set it
(`cockpit.config_gate`). Everything else waits for the person.
"""

from __future__ import annotations

from cockpit.agents.policy import SHELL_TOOL, ApprovalPolicy
from cockpit.config import ApprovalConfig


def conductor_permit(approval: ApprovalConfig, tool: str, command: str) -> str:
    """Why the conductor may approve `tool` running `command`, or "" when it is the person's to answer."""
    if tool != SHELL_TOOL or not approval.conductor:
        return ""
    policy = ApprovalPolicy("ask-shell", shell_allow=approval.conductor, shell_deny=approval.shell_deny)
    verdict = policy.decide(SHELL_TOOL, {"command": command})
    return "every command in the line matches approval.conductor" if verdict.decision == "auto" else ""
