"""results.tsv: one row per iteration of every agent, the experiment's durable record.

Columns: `commit metric status description agent started finished`. `status` is keep, discard
or crash; `metric` is empty when there is none (a crash, or an iteration that ran nothing);
`commit` is the first 12 hex digits of the measured commit, empty when nothing was committed;
`agent` is the session id (`baseline` for the run on the base commit); times are UTC ISO 8601.

Rows are appended whole and flushed one by one, so a killed cockpit leaves at most a cut-off
last line, which reading drops. A restart reads the file back to continue each agent's count.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cockpit.errors import CockpitError

COLUMNS = ("commit", "metric", "status", "description", "agent", "started", "finished")
HEADER = "\t".join(COLUMNS) + "\n"
KEEP, DISCARD, CRASH = "keep", "discard", "crash"
BASELINE = "baseline"
SHORT_SHA = 12
_DESCRIPTION_CAP = 300


def short(commit: str) -> str:
    return commit[:SHORT_SHA]


def format_time(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def one_line(text: str, cap: int = _DESCRIPTION_CAP) -> str:
    """Text safe for one TSV cell: whitespace runs (tabs, newlines) become one space."""
    flat = " ".join(text.split())
    return flat if len(flat) <= cap else flat[: cap - 1] + "…"


@dataclass(frozen=True)
class Row:
    commit: str
    metric: float | None
    status: str
    description: str
    agent: str
    started: float
    finished: float

    def line(self) -> str:
        cells = (short(self.commit), "" if self.metric is None else repr(self.metric), self.status,
                 one_line(self.description), self.agent, format_time(self.started), format_time(self.finished))
        return "\t".join(cells) + "\n"

    @classmethod
    def parse(cls, line: str) -> Row:
        commit, metric, status, description, agent, started, finished = line.rstrip("\n").split("\t")
        return cls(commit, float(metric) if metric else None, status, description, agent,
                   datetime.fromisoformat(started).timestamp(), datetime.fromisoformat(finished).timestamp())

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def is_commit(self, sha: str) -> bool:
        return bool(self.commit) and sha.startswith(self.commit)


class ResultsFile:
    """The rows in memory plus the file they are appended to."""

    def __init__(self, path: Path):
        self.path = path
        self.rows: list[Row] = read_rows(path) if path.exists() else []
        self._repair()

    def _repair(self) -> None:
        """Write the header into a new file; cut a partial last line a kill left behind."""
        if not self.path.exists() or self.path.stat().st_size == 0:
            self.path.write_text(HEADER, encoding="utf-8")
            return
        data = self.path.read_bytes()
        if not data.endswith(b"\n"):
            with open(self.path, "r+b") as handle:
                handle.truncate(data.rfind(b"\n") + 1)

    def append(self, row: Row) -> Row:
        """Append and flush (it survives a kill of the cockpit; fsync would only add power loss).

        Returns the row as the file holds it (short commit, one-line description, whole
        seconds), which is what a restart will read back.
        """
        line = row.line()
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(line)
        stored = Row.parse(line)
        self.rows.append(stored)
        return stored

    def runs_of(self, agent: str) -> int:
        return sum(1 for row in self.rows if row.agent == agent)

    def kept(self, sha: str) -> Row | None:
        """The keep row that measured commit `sha`, if any (the latest)."""
        for row in reversed(self.rows):
            if row.status == KEEP and row.is_commit(sha):
                return row
        return None

    def baseline(self) -> Row | None:
        return next((r for r in reversed(self.rows) if r.agent == BASELINE and r.status == KEEP), None)


def read_rows(path: Path) -> list[Row]:
    """Every complete row of a results.tsv; a bad header is a one-line error naming the file."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CockpitError(f"{path}: cannot read results: {exc.strerror}") from None
    lines = text.splitlines(keepends=True)
    if not lines:
        return []
    if lines[0] != HEADER:
        raise CockpitError(f"{path}: line 1: expected the header {' '.join(COLUMNS)!r}")
    rows = []
    for number, line in enumerate(lines[1:], start=2):
        if not line.endswith("\n"):
            break  # cut off by a kill: _repair drops it
        try:
            rows.append(Row.parse(line))
        except ValueError:
            raise CockpitError(f"{path}: line {number}: not a results row ({len(COLUMNS)} tab-separated cells)") from None
    return rows


@dataclass
class Standing:
    """One agent's score: its own best so far and how its runs went."""

    agent: str
    runs: int = 0
    keeps: int = 0
    crashes: int = 0
    best: float | None = None
    best_commit: str = ""
    last_status: str = ""
    series: list[float | None] = field(default_factory=list)  # best so far after each run (for the plot)

    @property
    def keep_rate(self) -> float:
        return self.keeps / self.runs if self.runs else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "keep_rate": self.keep_rate}


Better = Callable[[float, float | None], bool]


def standings(rows: Iterable[Row], agents: Iterable[str], better: Better) -> dict[str, Standing]:
    """Each agent's standing from the rows; everyone starts from the baseline's metric."""
    rows = list(rows)
    base = next((r for r in reversed(rows) if r.agent == BASELINE and r.status == KEEP), None)
    out = {a: Standing(a, best=base.metric if base else None, best_commit=base.commit if base else "") for a in agents}
    for row in rows:
        standing = out.get(row.agent)
        if standing is None:
            continue
        standing.runs += 1
        standing.last_status = row.status
        standing.keeps += row.status == KEEP
        standing.crashes += row.status == CRASH
        if row.status == KEEP and row.metric is not None and better(row.metric, standing.best):
            standing.best, standing.best_commit = row.metric, row.commit
        standing.series.append(standing.best)
    return out


def global_best(rows: Iterable[Row], better: Better) -> Row | None:
    """The kept row with the best metric (the baseline included); the earliest wins a tie."""
    best: Row | None = None
    for row in rows:
        if row.status == KEEP and row.metric is not None and (best is None or better(row.metric, best.metric)):
            best = row
    return best

