"""What an agent is told at every iteration: the last result first, then the instructions.

The first line is the outcome of the agent's previous iteration, so a pane (which shows a user
message's first lines) reads like a scoreboard. The instructions file is read again every time,
so an edit by the person reaches every agent at its next iteration.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cockpit.experiment.results import CRASH, KEEP

SUMMARY_PREFIX = "SUMMARY:"


@dataclass
class LastResult:
    """How the agent's previous iteration ended, as it should hear it."""

    status: str
    metric: float | None
    reason: str = ""  # why it was a crash or was discarded without a run
    log_tail: str = ""  # the end of a crashed run's output


@dataclass
class PromptInputs:
    experiment: str
    program: str
    run_number: int  # the iteration about to start, from 1
    runs_budget: int  # 0 = no cap
    direction: str
    run_command: str
    files: list[str]
    best: float | None  # this branch's best
    best_commit: str
    global_best: float | None
    global_best_by: str  # "@3 name" or "baseline"
    last: LastResult | None = None
    notes: list[str] = field(default_factory=list)
    moved_to: str = ""  # said when sharing reset the branch to another agent's best


def _value(metric: float | None) -> str:
    return "none yet" if metric is None else f"{metric:.6g}"


def _headline(inputs: PromptInputs) -> str:
    last = inputs.last
    if last is None and inputs.run_number > 1:
        return f"Experiment {inputs.experiment} resumed at iteration {inputs.run_number}. Current best {_value(inputs.best)}."
    if last is None:
        return f"Experiment {inputs.experiment}: your first iteration. Current best {_value(inputs.best)}."
    if last.status == KEEP:
        return f"Last change kept: metric {_value(last.metric)} is your new best."
    if last.status == CRASH:
        return f"Last change crashed ({last.reason}) and was reverted. Best stays {_value(inputs.best)}."
    if last.metric is not None:
        return f"Last change discarded: metric {_value(last.metric)} is not better than {_value(inputs.best)}; reverted."
    return f"Last change discarded: {last.reason}. Best stays {_value(inputs.best)}."


def iteration_prompt(inputs: PromptInputs) -> str:
    goal = "lower" if inputs.direction == "min" else "higher"
    budget = f" of {inputs.runs_budget}" if inputs.runs_budget else ""
    lines = [_headline(inputs), ""]
    if inputs.moved_to:
        lines += [inputs.moved_to, ""]
    for note in inputs.notes:
        lines += [f"Note from the person running the experiment: {note}", ""]
    if inputs.last is not None and inputs.last.log_tail:
        lines += ["End of the crashed run's log:", "```", inputs.last.log_tail, "```", ""]
    lines += [
        f"## Experiment {inputs.experiment} — iteration {inputs.run_number}{budget}",
        f"- Goal: a {goal} metric. Your branch's best: {_value(inputs.best)} (commit {inputs.best_commit[:12] or '-'}); "
        f"best of all agents: {_value(inputs.global_best)} ({inputs.global_best_by}).",
        f"- You may change only: {', '.join(inputs.files)} (other changes discard the iteration).",
        f"- When your turn ends the cockpit commits your change, runs `{inputs.run_command}`, keeps the commit if "
        "the metric is strictly better and reverts it otherwise. Do not run the experiment yourself.",
        f"- Make one focused change, then end your turn with one line: `{SUMMARY_PREFIX} <what you changed>`.",
        "",
        "## Instructions",
        "",
        inputs.program.strip(),
    ]
    return "\n".join(lines)


def summary_of(text: str) -> str:
    """The agent's one-line summary: its `SUMMARY:` line, else the last line it wrote."""
    lines = [line.strip().strip("`*").strip() for line in text.splitlines()]
    lines = [line for line in lines if line]
    for line in reversed(lines):
        if line.upper().startswith(SUMMARY_PREFIX):
            return line[len(SUMMARY_PREFIX):].strip().strip("`*").strip()
    return lines[-1] if lines else ""
