"""What a restart needs besides results.tsv: the experiment's folder and its `state.json`.

`state.json` names the repository, the definition (file and flag overrides, so a resume reads the
file again and picks up edits), the agents' sessions, each branch's best commit and the wall time
spent. It is replaced whole at every change (write + rename), so a kill never leaves half of it.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cockpit.core.process import process_alive
from cockpit.errors import CockpitError, NotFound

STATE_FILE = "state.json"
RESULTS_FILE = "results.tsv"
LOGS_DIR = "logs"

STARTING, RUNNING, STOPPED, FINISHED, FAILED = "starting", "running", "stopped", "finished", "failed"


def experiments_dir(home: Path) -> Path:
    return Path(home) / "experiments"


def experiment_dir(home: Path, name: str) -> Path:
    return experiments_dir(home) / name


def experiment_names(home: Path) -> list[str]:
    root = experiments_dir(home)
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / STATE_FILE).is_file())


@dataclass
class Best:
    commit: str
    metric: float | None


@dataclass
class ExperimentState:
    name: str
    repo: str
    definition: str  # the TOML file; "" when the experiment is defined by flags only
    overrides: dict[str, Any] = field(default_factory=dict)  # flag values, spec keys
    spec: dict[str, Any] = field(default_factory=dict)  # the checked spec of the latest start
    sessions: list[str] = field(default_factory=list)
    status: str = STARTING
    detail: str = ""  # why it stopped, finished or failed
    pid: int = 0  # the process running it while status is running
    elapsed_s: float = 0.0  # wall time spent before the current start
    bests: dict[str, Best] = field(default_factory=dict)  # session id → its branch's best
    created_at: float = field(default_factory=time.time)

    def save(self, folder: Path) -> None:
        data = dataclasses.asdict(self)
        tmp = folder / (STATE_FILE + ".tmp")
        tmp.write_text(json.dumps(data, indent=1), encoding="utf-8")
        os.replace(tmp, folder / STATE_FILE)

    @classmethod
    def load(cls, folder: Path) -> ExperimentState:
        path = folder / STATE_FILE
        if not path.is_file():
            raise NotFound(f"no experiment {folder.name!r} (see `cockpit experiment status`)")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            data["bests"] = {k: Best(**v) for k, v in (data.get("bests") or {}).items()}
            known = {f.name for f in dataclasses.fields(cls)}
            return cls(**{k: v for k, v in data.items() if k in known})
        except (ValueError, TypeError) as exc:
            raise CockpitError(f"{path}: unreadable experiment state: {exc}") from None

    @property
    def live(self) -> bool:
        """Running in some process right now (a crash leaves `running` with a dead pid)."""
        return self.status in (STARTING, RUNNING) and process_alive(self.pid)
