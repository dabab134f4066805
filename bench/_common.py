"""Shared plumbing for the benchmark scripts: arguments, timing, and the report format.

Every script prints human-readable lines as it goes; with `--json` the last line is one JSON
object holding every figure (so CI can `tail -n 1 | jq`).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

# Run from a checkout without installing: make `import cockpit` find the sources next door.
_ROOT = Path(__file__).resolve().parent.parent
if str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))


def parse_args(description: str, extend: Callable[[argparse.ArgumentParser], None] | None = None) -> argparse.Namespace:
    """The common flags; `extend` adds a script's own."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="smaller sizes, fewer rounds (< 1 minute)")
    parser.add_argument("--json", action="store_true", help="end with one line of JSON holding every figure")
    parser.add_argument("--dir", default=None, help="where to put the scratch files (default: the system temp dir)")
    if extend is not None:
        extend(parser)
    return parser.parse_args()


def start_sim(folder: Path, scenario: dict[str, Any]) -> tuple[subprocess.Popen[str], str]:
    """The scripted model server (`cockpit.sim`) playing `scenario` in its own process, so its CPU
    is not counted; returns the process and its base URL. Terminate the process when done."""
    path = folder / "scenario.json"
    path.write_text(json.dumps(scenario))
    proc = subprocess.Popen([sys.executable, "-m", "cockpit.sim", "--scenario", str(path)],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=_ROOT)
    line = proc.stdout.readline() if proc.stdout else ""
    return proc, line.strip().rsplit(" ", 1)[-1]


def median(values: list[float]) -> float:
    return statistics.median(values)


def percentile(values: list[float], q: float) -> float:
    """The nearest-rank `q`th percentile (NaN for no values)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))] if ordered else float("nan")


class Timer:
    """`with Timer() as t: ...` then `t.seconds`."""

    def __enter__(self) -> Timer:
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self._start


class Report:
    def __init__(self, name: str, quick: bool):
        self.figures: dict[str, Any] = {"bench": name, "quick": quick}

    def add(self, key: str, value: Any, label: str = "", unit: str = "") -> None:
        self.figures[key] = round(value, 4) if isinstance(value, float) else value
        if label:
            shown = f"{value:,.3f}" if isinstance(value, float) else f"{value:,}"
            print(f"  {label:<58} {shown} {unit}".rstrip(), flush=True)

    def target(self, key: str, ok: Callable[[float], bool], text: str) -> None:
        met = ok(self.figures[key])
        self.figures[f"{key}_target_met"] = met
        print(f"  {key} = {self.figures[key]} (target {text}: {'met' if met else 'MISSED'})", flush=True)

    def finish(self, as_json: bool) -> None:
        if as_json:
            print(json.dumps(self.figures, sort_keys=True), flush=True)
