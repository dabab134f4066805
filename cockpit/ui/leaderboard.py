"""The leaderboard: where each agent of an experiment stands, and the best-so-far race.

It shows one experiment at a time (tab for the next): a header with the status, the global best
and the budget spent; a table of agents (best, runs, keep rate, crashes, what it does now); and
a braille plot of every agent's best-so-far against its run number. It polls the experiment
commands once a second, which is plenty for iterations that take seconds to hours and works the
same on a remote client. From here the person steers: a note to every agent or to the selected
one, stop, resume, start another, and one key takes the global best to the merge desk.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import ModalScreen
from textual.widgets import DataTable, Static

from cockpit.experiment.loop import BETWEEN, RUN, TURN
from cockpit.ui.plot import AXIS, plot_lines

if TYPE_CHECKING:
    from cockpit.ui.app import CockpitApp

REFRESH_S = 1.0
PALETTE = ("cyan", "magenta", "green", "yellow", "bright_blue", "red", "bright_cyan", "bright_magenta",
           "bright_green", "orange1", "purple", "turquoise2")
COLUMNS = ("agent", "best", "vs baseline", "runs", "keep", "crashes", "last", "now")
MERGE_BINDING = "review.open"  # the merge desk's binding on the grid
BUSY = (TURN, RUN, BETWEEN)  # loop phases in which the worktree may hold more than the best


def series_colour(index: int) -> str:
    return PALETTE[index % len(PALETTE)]


def best_so_far(status: dict[str, Any]) -> list[list[float | None]]:
    """Per agent: the baseline (run 0), then its best after each of its runs."""
    return [[status["baseline"], *(agent["series"] or [])] for agent in status["agents"]]


def _metric(value: float | None) -> str:
    return "-" if value is None else f"{value:.6g}"


def _change(value: float | None, baseline: float | None) -> str:
    if value is None or not baseline:
        return "-"
    return f"{(value - baseline) / abs(baseline):+.1%}"


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


def header_text(status: dict[str, Any], count: int) -> str:
    best = status["best"]
    who = next((f"@{a['number']} {a['name']}" for a in status["agents"] if best and a["session"] == best["agent"]),
               best["agent"] if best else "")
    budget = status["budget"] or {}
    caps = ", ".join(f"{k.replace('_', ' ')} {v:g}" for k, v in budget.items() if v) or "none"
    detail = f" ({status['detail']})" if status["detail"] else ""
    overhead = f" · overhead {status['overhead_ms']:.0f} ms" if status.get("overhead_ms") is not None else ""
    lines = [
        f"Experiment {status['name']} · {status['status']}{detail} · {status['direction']} metric · "
        f"sharing {status['sharing']}" + (f" · {count} experiments (tab)" if count > 1 else ""),
        f"best {_metric(best['metric'] if best else None)}" + (f" by {who} ({best['commit']})" if best else "")
        + f" · baseline {_metric(status['baseline'])} · {status['rows']} rows · {_duration(status['elapsed_s'])}"
        f" · {status['tokens']:,} tokens · ${status['cost_usd']:.2f} · budget {caps}{overhead}",
    ]
    return "\n".join(lines)


class LeaderboardScreen(ModalScreen[None]):
    AUTO_FOCUS = "#lb-table"
    DEFAULT_CSS = """
    LeaderboardScreen { background: $background; layout: vertical; }
    LeaderboardScreen #lb-header { height: 2; background: $panel; color: $text; padding: 0 1; }
    LeaderboardScreen #lb-table { height: auto; max-height: 50%; }
    LeaderboardScreen #lb-plot { height: 1fr; padding: 0 1; }
    LeaderboardScreen #lb-keys { height: 1; color: $text-muted; padding: 0 1; }
    """
    BINDINGS = [
        Binding("escape,X", "close", "back to the grid", id="leaderboard.close"),
        Binding("m", "merge_best", "merge desk: global best", id="leaderboard.merge_best"),
        Binding("n", "note(False)", "note to every agent", id="leaderboard.note_all"),
        Binding("N", "note(True)", "note to the selected agent", id="leaderboard.note_one"),
        Binding("s", "stop", "stop", id="leaderboard.stop"),
        Binding("r", "resume", "resume", id="leaderboard.resume"),
        Binding("S", "start", "start an experiment", id="leaderboard.start"),
        Binding("tab", "next_experiment", "next experiment", id="leaderboard.next"),
    ]

    def __init__(self, app: CockpitApp, name: str | None = None):
        super().__init__(id="leaderboard")
        self.cockpit = app
        self.experiment = name
        self.statuses: list[dict[str, Any]] = []

    @property
    def status(self) -> dict[str, Any] | None:
        return next((s for s in self.statuses if s["name"] == self.experiment), None)

    def compose(self) -> ComposeResult:
        yield Static("", id="lb-header", markup=False)
        table: DataTable[Any] = DataTable(id="lb-table", cursor_type="row", zebra_stripes=True)
        table.add_columns(*COLUMNS)
        yield table
        yield Static("", id="lb-plot", markup=False)
        yield Static(self.keys_hint(), id="lb-keys", markup=False)

    def keys_hint(self) -> str:
        """This screen's keys as they are now (the person's keymap applied)."""
        from cockpit.ui.keymap import current_keymap, effective_bindings, key_display

        bindings = effective_bindings(self.BINDINGS, current_keymap(self.cockpit))
        return " · ".join(f"{key_display(self.cockpit, b, keys)} {b.description}" for b, keys in bindings.values())

    async def on_mount(self) -> None:
        await self.refresh_board()
        self.set_interval(REFRESH_S, self.refresh_board)

    def on_resize(self) -> None:
        self._draw_plot()

    async def refresh_board(self) -> None:
        statuses = await self.cockpit.run_command({"cmd": "experiment_list"})
        if statuses is None:
            return
        self.statuses = statuses
        if self.status is None and statuses:
            running = [s for s in statuses if s["status"] == "running"]
            self.experiment = (running or statuses)[-1]["name"]
        self._draw()

    def _draw(self) -> None:
        status = self.status
        header = self.query_one("#lb-header", Static)
        table = self.query_one("#lb-table", DataTable)
        if status is None:
            header.update("No experiments yet. Press S to start one (or run `cockpit experiment start`).")
            table.clear()
            self._draw_plot()
            return
        header.update(header_text(status, len(self.statuses)))
        cursor = table.cursor_row
        table.clear()
        best = status["best"]
        for index, agent in enumerate(status["agents"]):
            star = "★" if best and agent["session"] == best["agent"] else " "
            label = Text(f"{star}@{agent['number']} {agent['name']}", style=series_colour(index))
            table.add_row(
                label, _metric(agent["best"]), _change(agent["best"], status["baseline"]), str(agent["runs"]),
                f"{agent['keep_rate']:.0%}", str(agent["crashes"]), Text(agent["last_status"] or "-"),
                Text(agent["done"] or agent["phase"]), key=agent["session"],
            )
        if status["agents"]:
            table.move_cursor(row=min(cursor, len(status["agents"]) - 1))
        self._draw_plot()

    def _draw_plot(self) -> None:
        plot = self.query_one("#lb-plot", Static)
        status = self.status
        if status is None or not plot.size.width:
            plot.update("")
            return
        text = Text()
        for number, row in enumerate(plot_lines(best_so_far(status), plot.size.width - 2, plot.size.height)):
            if number:
                text.append("\n")
            for chunk, series in row:
                text.append(chunk, style="dim" if series == AXIS else series_colour(series))
        plot.update(text)

    def selected_session(self) -> str | None:
        status = self.status
        table = self.query_one("#lb-table", DataTable)
        if status is None or not status["agents"]:
            return None
        return status["agents"][min(table.cursor_row, len(status["agents"]) - 1)]["session"]

    # -- actions -----------------------------------------------------------------------------

    def action_close(self) -> None:
        self.dismiss()

    def action_next_experiment(self) -> None:
        names = [s["name"] for s in self.statuses]
        if names:
            at = names.index(self.experiment) if self.experiment in names else -1
            self.experiment = names[(at + 1) % len(names)]
            self._draw()

    async def action_merge_best(self) -> None:
        """Back to the grid with the global best's session focused, and its merge desk open."""
        from cockpit.ui.keymap import app_keys

        status = self.status
        best = status["best_session"] if status else ""
        if not best:
            self.notify("no agent has beaten the baseline yet", severity="warning")
            return
        binding = app_keys(self.cockpit).get(MERGE_BINDING)
        if binding is None:
            self.notify("the merge desk is not available in this cockpit", severity="error")
            return
        agent = next(a for a in status["agents"] if a["session"] == best)
        if agent["phase"] in BUSY:
            self.notify("that agent is mid-iteration: the merge desk shows its best commit plus the change it is "
                        "trying now; stop the experiment (s) to merge exactly the best", severity="warning", timeout=8)
        self.dismiss()
        self.cockpit.focus_session(best)
        await self.cockpit.run_action(binding[0].action)

    @work
    async def action_note(self, selected: bool) -> None:
        from cockpit.ui.dialogs import TextPrompt

        status = self.status
        if status is None:
            return
        agents = [self.selected_session()] if selected else []
        if selected and agents == [None]:
            return
        who = f"@{next(a['number'] for a in status['agents'] if a['session'] == agents[0])}" if agents else "every agent"
        text = await self.app.push_screen_wait(TextPrompt(f"Note to {who} of {status['name']} (read at its next turn)"))
        if text:
            sent = await self.cockpit.run_command(
                {"cmd": "experiment_note", "name": status["name"], "text": text, "agents": agents})
            if sent is not None:
                self.notify(f"note for {who}", timeout=2)

    async def action_stop(self) -> None:
        if self.status is not None:
            await self.cockpit.run_command({"cmd": "experiment_stop", "name": self.status["name"]})
            await self.refresh_board()

    async def action_resume(self) -> None:
        if self.status is not None:
            await self.cockpit.run_command({"cmd": "experiment_resume", "name": self.status["name"]})
            await self.refresh_board()

    @work
    async def action_start(self) -> None:
        from cockpit.ui.dialogs import TextPrompt

        path = await self.app.push_screen_wait(
            TextPrompt(f"Experiment file, relative to {self.cockpit.repo}", "experiment.toml"))
        if not path:
            return
        started = await self.cockpit.run_command({"cmd": "experiment_start", "repo": self.cockpit.repo, "file": path})
        if started is not None:
            self.experiment = started["name"]
            await self.refresh_board()
