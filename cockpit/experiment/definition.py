"""An experiment's definition: what to run, how to read the number, what agents may change.

It is read from a TOML file in the repository (usually `experiment.toml` next to `program.md`),
overlaid by command-line flags, and checked the way config is (the same schema walker): every
mistake is one `ConfigError` line naming the file (or the command line) and the key.

    name = "tiny-fit"                  # default: the folder holding the file
    program = "program.md"             # the instructions, relative to this file
    run = "python fit.py"              # runs in the worktree, in this file's folder
    timeout = 60                       # seconds per run; the process group is killed after
    metric = '^metric:\\s*(\\S+)'       # regex; group "metric", else group 1; the last match wins
    direction = "min"                  # or "max"
    files = ["params.py"]              # globs (relative to this file) agents may change
    agents = 4
    sharing = "reset-to-best"          # or "none"
    [budget]                           # 0 = no cap; set at least one
    runs = 20                          # per agent
    minutes = 60                       # wall time, summed over starts and resumes
    tokens = 0                         # all agents together
    cost_usd = 5.0

Paths are relative to the TOML file's folder (the experiment's folder) so an example works the
same inside a bigger repository and copied to its own. The instructions are read from the main
checkout at every iteration, so the person steers by editing them.
"""

from __future__ import annotations

import fnmatch
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Literal

from cockpit.config import _build, _deep_merge, _read_toml
from cockpit.core.worktrees import slugify
from cockpit.errors import ConfigError

Direction = Literal["min", "max"]
#: "reset-to-best": when one agent finds a new global best, every other agent's branch is reset
#: to that commit at its next iteration (see `loop.AgentLoop._follow_best` for why not rebase).
Sharing = Literal["none", "reset-to-best"]

DEFAULT_FILE = "experiment.toml"
COMMAND_LINE = "command line"


@dataclass
class ExperimentBudget:
    """When the experiment stops; 0 means no cap, and at least one cap must be set."""

    runs: int = 0  # per agent: iterations (rows in results.tsv) each agent may use
    minutes: float = 0.0  # wall time, summed over starts and resumes
    tokens: int = 0  # all agents together
    cost_usd: float = 0.0  # all agents together


@dataclass
class ExperimentSpec:
    """The experiment TOML as written (see the module docstring)."""

    run: str = ""
    files: list[str] = field(default_factory=list)
    name: str = ""
    program: str = "program.md"
    timeout: float = 600.0
    metric: str = r"^metric:\s*(\S+)"
    direction: Direction = "min"
    agents: int = 1
    agent: str = ""  # a key of [agents] in config; empty = the default agent
    model: str = ""  # a key of [models]; empty = the agent's model
    base: str = ""  # the ref agents start from; empty = the current branch
    sharing: Sharing = "none"
    log_tail: int = 30  # lines of a crashed run's log shown to its agent
    concurrent_runs: int = 0  # runs at once across agents (one GPU: 1); 0 = no limit
    budget: ExperimentBudget = field(default_factory=ExperimentBudget)


@dataclass(frozen=True)
class Metric:
    """A run's outcome as read from its output: a value, or why there is none."""

    value: float | None
    problem: str = ""


@dataclass(frozen=True)
class Definition:
    """A checked spec with what it means in this repository."""

    spec: ExperimentSpec
    repo: Path  # the main checkout's root
    folder: str  # the experiment's folder relative to the repository root, "." for the top
    source: str  # the TOML file, or COMMAND_LINE when there is none
    pattern: re.Pattern[str]

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def program_path(self) -> Path:
        """The instructions in the main checkout (where the person edits them)."""
        return self.repo / self.folder / self.spec.program

    def run_dir(self, worktree: Path) -> Path:
        return worktree / self.folder

    def repo_path(self, pattern: str) -> str:
        """A path or glob relative to the experiment's folder, made relative to the repository."""
        return pattern if self.folder == "." else f"{self.folder}/{pattern}"

    def allows(self, path: str) -> bool:
        """Whether an agent may change `path` (relative to the repository root)."""
        return any(fnmatch.fnmatchcase(path, self.repo_path(p)) for p in self.spec.files)

    def better(self, value: float, than: float | None) -> bool:
        return is_better(self.spec.direction, value, than)

    def read_metric(self, output: str) -> Metric:
        """The last match of the metric regex in `output`, as a finite number."""
        found = None
        for found in self.pattern.finditer(output):
            pass
        if found is None:
            return Metric(None, "no metric in the output")
        if "metric" in self.pattern.groupindex:
            text = found.group("metric")
        else:
            text = found.group(1) if self.pattern.groups else found.group(0)
        try:
            value = float(text)
        except (TypeError, ValueError):
            return Metric(None, f"metric {text!r} is not a number")
        if not math.isfinite(value):
            return Metric(None, f"metric is {text}")
        return Metric(value)


def is_better(direction: str, value: float, than: float | None) -> bool:
    """Strictly better in `direction` ("min" or "max"); any value beats none."""
    if than is None:
        return True
    return value < than if direction == "min" else value > than


def load_definition(repo: Path, file: Path | None, overrides: Mapping[str, Any] | None = None) -> Definition:
    """Read `file` (may be None: flags only), overlay `overrides` (flag values) and check it all.

    `repo` is the main checkout's root; `file` must be inside it. Override keys are spec keys,
    `budget.runs` style for the budget.
    """
    overrides = dict(overrides or {})
    raw: dict[str, Any] = {}
    folder = "."
    source = COMMAND_LINE
    if file is not None:
        file = Path(file).absolute()
        if not file.is_file():
            raise ConfigError(f"{file}: no such experiment file")
        try:
            folder = file.parent.resolve().relative_to(repo).as_posix()
        except ValueError:
            raise ConfigError(f"{file}: the experiment file must be inside the repository {repo}") from None
        source = str(file)
        raw = _read_toml(file)
        _build(ExperimentSpec, raw, source, "")  # its own mistakes name the file
    flags = _nested(overrides)
    _build(ExperimentSpec, flags, COMMAND_LINE, "")
    _deep_merge(raw, flags)
    spec: ExperimentSpec = _build(ExperimentSpec, raw, source, "")

    def where(key: str) -> str:
        return f"{COMMAND_LINE}: --{key.replace('budget.', '').replace('_', '-')}" if key in overrides else f"{source}: key '{key}'"

    if not spec.name:
        spec.name = Path(repo / folder).resolve().name
    spec.name = slugify(spec.name)
    _check(spec, repo, folder, where)
    try:
        pattern = re.compile(spec.metric, re.MULTILINE)
    except re.error as exc:
        raise ConfigError(f"{where('metric')}: not a valid regular expression: {exc}") from None
    return Definition(spec, repo, folder, source, pattern)


def _nested(flat: Mapping[str, Any]) -> dict[str, Any]:
    """{"budget.runs": 3, "run": "x"} → {"budget": {"runs": 3}, "run": "x"}."""
    out: dict[str, Any] = {}
    for key, value in flat.items():
        head, _, tail = key.partition(".")
        if tail:
            out.setdefault(head, {})[tail] = value
        else:
            out[key] = value
    return out


def _check(spec: ExperimentSpec, repo: Path, folder: str, where: Callable[[str], str]) -> None:
    """Rules the schema cannot say: required keys, ranges, files that must exist."""
    if not spec.run.strip():
        raise ConfigError(f"{where('run')}: is required: the command that runs one experiment, e.g. \"python train.py\"")
    if not spec.files:
        raise ConfigError(f"{where('files')}: is required: the files agents may change, e.g. [\"train.py\"]")
    for pattern in spec.files:
        parts = PurePosixPath(pattern).parts
        if not pattern.strip() or pattern.startswith("/") or ".." in parts or ".git" in parts:
            raise ConfigError(f"{where('files')}: {pattern!r} must be a path or glob inside the experiment's folder")
    positive = (("timeout", spec.timeout), ("agents", spec.agents))
    for key, value in positive:
        if value <= 0:
            raise ConfigError(f"{where(key)}: must be more than 0, got {value}")
    not_negative = (("log_tail", spec.log_tail), ("concurrent_runs", spec.concurrent_runs),
                    *((f"budget.{k}", v) for k, v in vars(spec.budget).items()))
    for key, value in not_negative:
        if value < 0:
            raise ConfigError(f"{where(key)}: must be 0 or more, got {value}")
    if not any(vars(spec.budget).values()):
        raise ConfigError(
            f"{where('budget')}: set at least one of budget.runs, budget.minutes, budget.tokens, "
            "budget.cost_usd (an experiment runs until its budget is spent)"
        )
    program = repo / folder / spec.program
    if not program.is_file():
        raise ConfigError(f"{where('program')}: {program} does not exist (write the agents' instructions there)")
