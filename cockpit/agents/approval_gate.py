"""The one approval flow every command an agent runs goes through, whichever backend asks.

The built-in agent's tools and an ACP agent's `terminal/create` both ask here: the policy's
verdict first (`auto` runs, `deny` refuses), then the person when it says `ask`; an approval
"for the session" is remembered per (tool, command). A command the person has just approved in
an ACP permission request (which shows the agent's own words for it) is granted once, so the
agent's `terminal/create` for exactly that command does not ask a second time.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Mapping
from typing import Any

from cockpit.agents.policy import PRESETS, SHELL_TOOL, ApprovalPolicy
from cockpit.config import ApprovalConfig
from cockpit.core.agent_api import AgentHost

_DETAIL_CHARS = 4_000
#: Approvals granted ahead that are still unused; an agent that never runs them cannot pile them up.
_GRANTS_KEPT = 16


class ApprovalGate:
    """Decides one session's tool calls: the policy, then the person when it says `ask`."""

    def __init__(self, host: AgentHost, approval: ApprovalConfig, sandboxed: bool):
        self.host = host
        self.sandboxed = sandboxed
        self._approval = approval
        self.policy = _policy(approval, sandboxed)
        self._always: set[tuple[str, str]] = set()
        self._granted_once: deque[tuple[str, str]] = deque(maxlen=_GRANTS_KEPT)

    def _read_only_refuses(self, tool: str) -> bool:
        """A read-only session never writes: what the read-only preset denies is denied whatever the
        policy says, except commands, which a read-only sandbox confines (`Sandbox.read_only`)."""
        if not self.host.session.read_only or PRESETS["read-only"].get(tool) != "deny":
            return False
        return tool != SHELL_TOOL or not self.sandboxed

    def grant_once(self, tool: str, command: str) -> None:
        """The person approved `command` already (asked in another form): let it run once unasked."""
        self._granted_once.append((tool, command))

    async def refusal(self, tool: str, args: Mapping[str, Any]) -> str:
        """"" when the call may run, else the refusal (one line) the agent reads."""
        await self._follow_config()
        if self._read_only_refuses(tool):
            return (f"denied: this session is read-only (it runs in the repository's main checkout), so {tool} "
                    "is not available" + ("" if tool != SHELL_TOOL else " without a sandbox here"))
        verdict = self.policy.decide(tool, args)
        if verdict.decision == "auto":
            return ""
        if verdict.decision == "deny":
            return f"denied by policy: {verdict.reason}"
        key = (tool, str(args.get("command", "")))
        if key in self._always:
            return ""
        if key in self._granted_once:
            self._granted_once.remove(key)
            return ""
        title = str(args.get("command") or args.get("path") or tool)
        decision = await self.host.request_approval(
            tool, title, json.dumps(dict(args), indent=1, default=str)[:_DETAIL_CHARS])
        if decision.approved:
            if decision.always:
                self._always.add(key)
            return ""
        return "denied by the person" + (f": {decision.reason}" if decision.reason else "")

    async def _follow_config(self) -> None:
        """Decide under the repository's approval settings as they are now: a rule the person
        adds while agents run (the inbox's "always allow") applies to their next command."""
        approval = await self.host.current_approval()
        if approval != self._approval:
            self._approval = approval
            self.policy = _policy(approval, self.sandboxed)


def _policy(approval: ApprovalConfig, sandboxed: bool) -> ApprovalPolicy:
    return ApprovalPolicy(approval.preset, approval.tools, approval.shell_allow, approval.shell_deny,
                          sandboxed=sandboxed)
