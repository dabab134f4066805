"""Plans on disk: one JSON file per plan under `<cockpit home>/plans/`.

Each file is replaced whole at every change (write + rename), so a kill never leaves half a
plan; a restarted cockpit shows every plan as it was.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from cockpit.errors import CockpitError, NotFound
from cockpit.plan.model import Plan


class PlanStore:
    def __init__(self, home: Path):
        self.folder = Path(home) / "plans"

    def save(self, plan: Plan) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = self.folder / f"{plan.id}.json.tmp"
        tmp.write_text(json.dumps(plan.to_dict(), indent=1), encoding="utf-8")
        os.replace(tmp, self.folder / f"{plan.id}.json")

    def load(self, plan_id: str) -> Plan:
        path = self.folder / f"{plan_id}.json"
        if not path.is_file():
            raise NotFound(f"no plan {plan_id!r} (see `cockpit plan --ls`)")
        try:
            return Plan.from_dict(json.loads(path.read_text(encoding="utf-8")))
        except (ValueError, TypeError) as exc:
            raise CockpitError(f"{path}: unreadable plan: {exc}") from None

    def all(self) -> list[Plan]:
        if not self.folder.is_dir():
            return []
        return [self.load(p.stem) for p in sorted(self.folder.glob("*.json"), key=lambda p: p.stat().st_mtime)]
