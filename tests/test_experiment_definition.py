"""The experiment's definition, results.tsv and the leaderboard's plot, without agents.

Every mistake in a definition is one line naming the file (or the flag) and the key; results.tsv
round-trips exactly and survives a row cut off by a kill; the plot draws steps in braille.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from experiment_helpers import experiment_repo, experiment_toml

from cockpit.errors import CockpitError, ConfigError
from cockpit.experiment.definition import load_definition
from cockpit.experiment.prompt import summary_of
from cockpit.experiment.results import HEADER, ResultsFile, Row, global_best, read_rows, standings
from cockpit.ui.plot import AXIS, BRAILLE_BASE, plot_lines


def definition_error(repo: Path, text: str, overrides: dict | None = None) -> str:
    (repo / "x.toml").write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_definition(repo, repo / "x.toml", overrides)
    return str(caught.value)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return experiment_repo(tmp_path / "exp")


def test_a_good_file_with_flags_on_top(repo):
    definition = load_definition(repo, repo / "experiment.toml", {"agents": 4, "budget.runs": 9, "files": ["k*.py"]})
    spec = definition.spec
    assert (spec.name, spec.agents, spec.budget.runs, spec.files, definition.folder) == ("exp", 4, 9, ["k*.py"], ".")
    assert definition.allows("knob.py") and not definition.allows("run.py")
    assert definition.better(1.0, 2.0) and not definition.better(2.0, 2.0) and definition.better(5.0, None)


def test_paths_are_relative_to_the_experiment_folder(repo):
    folder = repo / "research" / "fit"
    folder.mkdir(parents=True)
    (folder / "program.md").write_text("go\n")
    (folder / "experiment.toml").write_text(experiment_toml(files=["params/*.py"]))
    definition = load_definition(repo, folder / "experiment.toml")
    assert (definition.folder, definition.name, definition.program_path) == ("research/fit", "fit", folder / "program.md")
    assert definition.allows("research/fit/params/lr.py") and not definition.allows("params/lr.py")
    assert definition.run_dir(Path("/wt")) == Path("/wt/research/fit")


@pytest.mark.parametrize(("text", "message"), [
    ('run = "x"\nfiles = ["a"]\n[budget]\nruns = 1\nbogus = 2\n',
     "key 'budget.bogus' (expected one of: cost_usd, minutes, runs, tokens)"),
    ('run = "x"\nfiles = "a"\n[budget]\nruns = 1\n', "key 'files' must be a list, got a string ('a')"),
    ('run = "x"\nfiles = ["a"]\n', "key 'budget': set at least one of budget.runs, budget.minutes"),
    ('files = ["a"]\n[budget]\nruns = 1\n', "key 'run': is required"),
    ('run = "x"\nfiles = ["../a"]\n[budget]\nruns = 1\n', "key 'files': '../a' must be a path or glob inside"),
    ('run = "x"\nfiles = ["a"]\ntimeout = 0\n[budget]\nruns = 1\n', "key 'timeout': must be more than 0, got 0.0"),
    ('run = "x"\nfiles = ["a"]\nmetric = "(unclosed"\n[budget]\nruns = 1\n',
     "key 'metric': not a valid regular expression: missing ), unterminated subpattern at position 0"),
    ('run = "x"\nfiles = ["a"]\nprogram = "nope.md"\n[budget]\nruns = 1\n', "key 'program': "),
    ('run = "x"\nagents = = 2\n', "line 2: invalid TOML"),
])
def test_every_mistake_is_one_line_naming_file_and_key(repo, text, message):
    error = definition_error(repo, text)
    assert error.startswith(f"{repo / 'x.toml'}: ") and message in error and "\n" not in error


def test_a_bad_flag_is_named_as_the_flag(repo):
    error = definition_error(repo, experiment_toml(), {"budget.runs": -1})
    assert error == "command line: --runs: must be 0 or more, got -1"


def test_a_file_outside_the_repository_is_refused(repo, tmp_path):
    outside = tmp_path / "elsewhere.toml"
    outside.write_text(experiment_toml())
    with pytest.raises(ConfigError, match="must be inside the repository"):
        load_definition(repo, outside)


@pytest.mark.parametrize(("output", "value", "problem"), [
    ("metric: 1.5\n", 1.5, ""),
    ("metric: 3\nnoise\nmetric: 2.25\n", 2.25, ""),  # the last match wins
    ("loss went down\n", None, "no metric in the output"),
    ("metric: abc\n", None, "metric 'abc' is not a number"),
    ("metric: nan\n", None, "metric is nan"),
])
def test_the_metric_is_the_last_match_as_a_finite_number(repo, output, value, problem):
    metric = load_definition(repo, repo / "experiment.toml").read_metric(output)
    assert (metric.value, metric.problem) == (value, problem)


def test_a_named_group_picks_the_number(repo):
    definition = load_definition(repo, repo / "experiment.toml", {"metric": r"val=(?P<x>\d+) score=(?P<metric>[\d.]+)"})
    assert definition.read_metric("val=3 score=0.75").value == 0.75


def test_results_round_trip_and_a_cut_off_row_is_dropped(tmp_path):
    path = tmp_path / "results.tsv"
    results = ResultsFile(path)
    rows = [
        Row("a" * 40, 0.5, "keep", "baseline", "baseline", 1_700_000_000.0, 1_700_000_001.0),
        Row("b" * 40, None, "crash", "tab\there, newline\nthere", "k3f9a", 1_700_000_002.0, 1_700_000_003.0),
    ]
    for row in rows:
        results.append(row)
    assert path.read_text().splitlines()[1:] == [
        "aaaaaaaaaaaa\t0.5\tkeep\tbaseline\tbaseline\t2023-11-14T22:13:20Z\t2023-11-14T22:13:21Z",
        "bbbbbbbbbbbb\t\tcrash\ttab here, newline there\tk3f9a\t2023-11-14T22:13:22Z\t2023-11-14T22:13:23Z",
    ]
    with open(path, "a") as handle:
        handle.write("cccccccccccc\t0.1\tke")  # a kill in the middle of a row
    reopened = ResultsFile(path)
    assert [r.commit for r in reopened.rows] == ["aaaaaaaaaaaa", "bbbbbbbbbbbb"]
    assert reopened.rows[1].started == 1_700_000_002.0 and reopened.runs_of("k3f9a") == 1
    reopened.append(rows[0])
    assert len(read_rows(path)) == 3 and path.read_text().startswith(HEADER)


def test_a_foreign_file_is_an_error_naming_it(tmp_path):
    path = tmp_path / "results.tsv"
    path.write_text("something else\n")
    with pytest.raises(CockpitError, match="results.tsv: line 1: expected the header"):
        read_rows(path)


def test_standings_count_runs_and_track_the_best_so_far():
    def row(agent, status, metric):
        return Row("c", metric, status, "", agent, 0.0, 0.0)

    rows = [row("baseline", "keep", 3.0), row("a", "keep", 2.0), row("b", "discard", 4.0),
            row("a", "crash", None), row("b", "keep", 1.0), row("a", "discard", 2.5)]
    better = lambda value, than: than is None or value < than  # noqa: E731
    table = standings(rows, ["a", "b"], better)
    assert (table["a"].runs, table["a"].keeps, table["a"].crashes, table["a"].best) == (3, 1, 1, 2.0)
    assert table["a"].series == [2.0, 2.0, 2.0] and table["b"].series == [3.0, 1.0]
    assert round(table["a"].keep_rate, 3) == 0.333
    assert global_best(rows, better).agent == "b"


@pytest.mark.parametrize(("text", "summary"), [
    ("Looking.\nSUMMARY: raise lr", "raise lr"),
    ("`SUMMARY: momentum 0.9`\nthanks", "momentum 0.9"),
    ("I changed the learning rate.\n\n", "I changed the learning rate."),
    ("", ""),
])
def test_the_summary_is_the_summary_line_else_the_last_line(text, summary):
    assert summary_of(text) == summary


def test_the_plot_draws_each_series_as_steps_in_its_colour():
    rows = plot_lines([[3.0, 2.0, 2.0, 1.0], [3.0, 3.0, 0.5]], width=30, height=6)
    assert len(rows) == 6  # five plot rows and the axis
    text = ["".join(chunk for chunk, _ in row) for row in rows]
    assert all(len(line) == 30 for line in text)
    assert text[0].strip().startswith("3") and text[4].strip().startswith("0.5")
    assert text[-1].endswith("run 3")
    series = {s for row in rows for _, s in row}
    assert series == {AXIS, 0, 1}
    dots = [chunk for row in rows for chunk, s in row if s != AXIS]
    assert all(BRAILLE_BASE <= ord(c) < BRAILLE_BASE + 256 for chunk in dots for c in chunk if c != " ")


def test_a_wide_spread_is_drawn_on_a_log_scale_and_nothing_is_said_plainly():
    assert "log" in "".join(c for c, _ in plot_lines([[0.2, 0.002]], 30, 5)[-1])
    assert "no results yet" in "".join(c for c, _ in plot_lines([[None]], 30, 5)[0])
