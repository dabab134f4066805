"""Shared pieces of the experiment tests: a tiny experiment repository and scripted agents.

The experiment: `run.py` prints `metric: |VALUE - 2|` with VALUE from `knob.py`, so the base
(VALUE = 5) scores 3 and a scripted agent's idea is just a new `knob.py`. Each idea is two
scenario steps: write the file, then end the turn with a SUMMARY line.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path
from typing import Any

from conftest import make_repo, run_git

from cockpit.config import Config, ModelConfig

RUN_PY = "from knob import VALUE\nprint('working')\nprint(f'metric: {abs(VALUE - 2)}')\n"
BASE_KNOB = "VALUE = 5\n"
PROGRAM = "Make the metric as small as you can by changing VALUE in knob.py.\n"


def experiment_toml(**keys: Any) -> str:
    """An experiment.toml: `budget_runs=3` becomes `[budget] runs = 3`; values as TOML literals."""
    top = {"run": "python run.py", "files": ["knob.py"], "timeout": 20, "agents": 1}
    budget = {"runs": 3}
    for key, value in keys.items():
        if key.startswith("budget_"):
            budget[key.removeprefix("budget_")] = value
        else:
            top[key] = value
    lines = [f"{k} = {json.dumps(v)}" for k, v in top.items()]
    lines += ["[budget]", *(f"{k} = {json.dumps(v)}" for k, v in budget.items())]
    return "\n".join(lines) + "\n"


def experiment_repo(path: Path, **keys: Any) -> Path:
    return make_repo(path, {
        "run.py": RUN_PY, "knob.py": BASE_KNOB, "program.md": PROGRAM, "experiment.toml": experiment_toml(**keys),
        ".gitignore": "__pycache__/\n",
    })


def idea(knob: str, summary: str, *, path: str = "knob.py", stall: float = 0.0) -> list[dict[str, Any]]:
    """Two scenario steps: write `knob` to `path`, then end the turn with `SUMMARY: summary`."""
    edit: dict[str, Any] = {"when": {"last_role": "user"}, "text": f"Trying: {summary}.",
                            "tool_calls": [{"name": "write_file", "arguments": {"path": path, "content": knob}}]}
    if stall:
        edit["stall"] = stall
    return [edit, {"when": {"last_role": "tool"}, "text": f"Done.\nSUMMARY: {summary}"}]


def script(*ideas: list[dict[str, Any]]) -> dict[str, Any]:
    return {"name": "ideas", "final": "Out of ideas.\nSUMMARY: nothing", "steps": [s for i in ideas for s in i]}


def sim_config(url: str) -> Config:
    config = Config()
    config.models["default"] = ModelConfig(model="openai/cockpit-sim", api_base=url, retry_base_s=0.05,
                                           stall_timeout_s=15)
    return config


async def finished(engine: Any, name: str, timeout: float = 60) -> dict[str, Any]:
    """The experiment's status once it has ended."""
    return await asyncio.wait_for(engine.experiments.wait(name), timeout)


async def until(condition: Any, what: str, timeout: float = 30) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        assert loop.time() < deadline, f"timed out waiting for: {what}"
        await asyncio.sleep(0.02)


def tsv(path: Path) -> list[list[str]]:
    """results.tsv rows as cells, without the two timestamp columns (header included)."""
    return [line.split("\t")[:5] for line in path.read_text(encoding="utf-8").splitlines()]


def head(worktree: Path) -> str:
    return run_git(worktree, "rev-parse", "HEAD").strip()


def is_ancestor(worktree: Path, commit: str, of: str = "HEAD") -> bool:
    done = subprocess.run(["git", "merge-base", "--is-ancestor", commit, of], cwd=worktree, capture_output=True)
    return done.returncode == 0
