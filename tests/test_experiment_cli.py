"""`cockpit experiment …` as a real subprocess, its agents talking to a scripted server over HTTP.

`--local` runs the experiment in the command's own process; without it the command talks to the
home's background cockpit server, where the experiment outlives the command. The scripted model
is served from a thread of the test process, named in the user's config as any
OpenAI-compatible endpoint would be.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from experiment_helpers import experiment_repo, idea, script

from cockpit.experiment.state import ExperimentState, experiment_dir
from cockpit.sim import ScriptedLLMServer


def cockpit(*args: str, cwd: Path | None = None, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cockpit", *args], cwd=cwd, env=dict(os.environ),
                          capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)


@pytest.fixture
def sim(cockpit_env) -> Iterator[ScriptedLLMServer]:
    server = ScriptedLLMServer(script(idea("VALUE = 3\n", "three"), idea("VALUE = 'x'\n", "broken")))
    url, stop = server.run_in_thread()
    cockpit_env.write_user_config(
        f'[models.default]\nmodel = "openai/cockpit-sim"\napi_base = "{url}"\nretry_base_s = 0.05\n')
    yield server
    stop()


def wait_for(condition, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for: {what}"
        time.sleep(0.1)


def rows_of(folder: Path) -> int:
    results = folder / "results.tsv"
    return len(results.read_text().splitlines()) - 1 if results.exists() else 0


def test_a_bad_definition_is_one_line_and_exit_2(tmp_path):
    repo = experiment_repo(tmp_path / "exp")
    (repo / "bad.toml").write_text('run = "python run.py"\nfiles = ["knob.py"]\nagents = "many"\n[budget]\nruns = 1\n')
    done = cockpit("experiment", "start", "bad.toml", "--local", "--follow", cwd=repo)
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == f"cockpit: {repo / 'bad.toml'}: key 'agents' must be an integer, got a string ('many')\n"
    done = cockpit("experiment", "start", "--local", "--follow", "--direction", "sideways", cwd=repo)
    assert (done.returncode, done.stderr) == (
        2, "cockpit: command line: key 'direction' must be one of 'min', 'max', got 'sideways'\n")
    done = cockpit("experiment", "resume", "nothing-here", "--local", "--follow")
    assert done.stderr == "cockpit: no experiment 'nothing-here' (see `cockpit experiment status`)\n"


def test_local_follow_runs_to_the_budget_then_status_reports_it(tmp_path, sim, cockpit_env):
    repo = experiment_repo(tmp_path / "exp", name="cli", agents=2, budget_runs=2)
    done = cockpit("experiment", "start", "--local", "--follow", cwd=repo)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "experiment cli running"
    assert "[baseline] keep               3  baseline" in lines
    assert sum(" keep " in line and line.endswith("  three") for line in lines) == 2
    assert sum(" crash " in line and line.endswith("broken [exit 1]") for line in lines) == 2
    assert lines[-2:-1] == ["experiment cli finished: budget spent: 2 runs each"]
    assert lines[-1].startswith("cli finished (budget spent: 2 runs each); best 1 by @")
    assert "Traceback" not in done.stderr

    status = json.loads(cockpit("experiment", "status", "cli", "--json", "--local").stdout)
    assert (status["status"], status["rows"], status["best"]["metric"]) == ("finished", 5, 1.0)
    assert [(a["number"], a["runs"], a["crashes"]) for a in status["agents"]] == [(1, 2, 1), (2, 2, 1)]
    text = cockpit("experiment", "status", "--local").stdout
    assert text.startswith("cli finished (budget spent: 2 runs each); best 1 by @")
    done = cockpit("experiment", "start", "--local", "--follow", cwd=repo)  # the name is taken now
    assert done.returncode == 2 and "experiment 'cli' exists" in done.stderr


def test_sigterm_stops_a_local_experiment_cleanly(tmp_path, sim, cockpit_env):
    repo = experiment_repo(tmp_path / "exp", name="term", budget_runs=0, budget_minutes=10)
    folder = experiment_dir(cockpit_env.home, "term")
    running = subprocess.Popen([sys.executable, "-m", "cockpit", "experiment", "start", "--local", "--follow"],
                               cwd=repo, env=dict(os.environ), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, stdin=subprocess.DEVNULL)
    try:
        wait_for(lambda: rows_of(folder) >= 3 or running.poll() is not None, "a few iterations")
        running.send_signal(signal.SIGTERM)
        out, err = running.communicate(timeout=30)
    finally:
        running.kill()
    assert running.returncode == 0, err
    assert "experiment term stopped: stopped by a signal" in out.splitlines()
    state = ExperimentState.load(folder)
    assert (state.status, state.detail, state.pid) == ("stopped", "stopped by a signal", 0)


@pytest.mark.slow
def test_in_the_server_an_experiment_outlives_the_command(tmp_path, sim, cockpit_env):
    repo = experiment_repo(tmp_path / "exp", name="long", budget_runs=0, budget_minutes=10)
    folder = experiment_dir(cockpit_env.home, "long")
    done = cockpit("experiment", "start", cwd=repo)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("experiment long started: 1 agents; follow it with")
    wait_for(lambda: rows_of(folder) >= 3, "iterations in the server")
    assert ExperimentState.load(folder).pid not in (0, os.getpid())  # the server's

    done = cockpit("experiment", "note", "long", "try a negative VALUE")
    assert (done.returncode, done.stdout) == (0, "note for 1 agent of long\n")
    wait_for(lambda: any("try a negative VALUE" in json.dumps(r["messages"]) for r in list(sim.requests)),
             "the note to reach the agent")
    done = cockpit("experiment", "stop", "long")
    assert done.stdout.startswith("long stopped (stopped by the person); best 1 by @1 long")
    status = json.loads(cockpit("experiment", "status", "long", "--json").stdout)
    assert (status["status"], status["agents"][0]["phase"]) == ("stopped", "stopped")

    done = cockpit("experiment", "resume", "long", "--follow", "--runs", "2")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1].startswith("long finished (budget spent: 2 runs each)")


@pytest.mark.slow
def test_the_demo_runs_the_example_with_scripted_agents(cockpit_env):
    done = cockpit("experiment", "demo", "--follow", "--json", "--agents", "2", "--runs", "3", timeout=120)
    assert done.returncode == 0, done.stderr
    status = json.loads(done.stdout)
    assert (status["name"], status["status"], status["rows"]) == ("tiny-fit", "finished", 7)
    assert status["baseline"] == 0.183993 and status["best"]["metric"] < status["baseline"]
    assert [a["crashes"] for a in status["agents"]] == [1, 1]  # idea 3 crashes whoever runs it
    demo = cockpit_env.home / "experiment-demo"
    assert "LEARNING_RATE = 0.05" in (demo / "tiny-fit" / "params.py").read_text()  # the main checkout untouched
