"""Experiment loops end to end: real repositories, real runs, scripted agents over real HTTP.

The agents are the built-in LLM agent talking to `cockpit.sim` through litellm; each idea of a
script rewrites knob.py (see experiment_helpers). Nothing is mocked: commits, resets and runs
happen in real worktrees, and results.tsv / state.json are read back from disk.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from conftest import run_git
from experiment_helpers import (
    BASE_KNOB,
    experiment_repo,
    finished,
    head,
    idea,
    is_ancestor,
    script,
    sim_config,
    tsv,
    until,
)

from cockpit.agents.factory import make_agent
from cockpit.core import events as ev
from cockpit.core.process import process_alive
from cockpit.errors import ConfigError
from cockpit.experiment.loop import RUN, TURN
from cockpit.experiment.state import ExperimentState, experiment_dir
from cockpit.sim import ScriptedLLMServer

pytestmark = pytest.mark.asyncio

SLEEPER = (  # a knob.py whose import starts a grandchild, names it (atomically), then hangs past any limit
    "import os, subprocess, time\n"
    "path = os.environ['CHILD_PID_FILE']\n"
    "open(path + '.tmp', 'w').write(str(subprocess.Popen(['sleep', '60']).pid))\n"
    "os.replace(path + '.tmp', path)\n"
    "time.sleep(60)\n"
    "VALUE = 2\n"
)


@pytest.fixture
async def server() -> AsyncIterator[ScriptedLLMServer]:
    async with ScriptedLLMServer() as srv:
        yield srv


async def engine_for(open_engine, server):
    return await open_engine(sim_config(server.url), make_agent)


def results_path(cockpit_env, name: str) -> Path:
    return experiment_dir(cockpit_env.home, name) / "results.tsv"


async def user_texts(engine, session_id: str) -> list[str]:
    return [e.data["text"] for e in await engine.transcript(session_id) if e.kind == ev.USER_MESSAGE]




async def test_better_is_kept_worse_reset_crash_recorded_rows_exact(open_engine, server, tmp_path, cockpit_env):
    repo = experiment_repo(tmp_path / "exp", name="knob", budget_runs=5)
    server.set_scenario(script(
        idea("VALUE = 3\n", "three"),  # metric 1: better than 3, kept
        idea("VALUE = 9\n", "nine"),  # metric 7: worse, reset
        idea("VALUE = 'x'\n", "a string"),  # TypeError: crash
        idea("VALUE = 2\n", "two"),  # metric 0: kept
        idea("VALUE = 2\n# note\n", "same value"),  # metric 0: not strictly better, reset
    ))
    engine = await engine_for(open_engine, server)
    experiment = await engine.experiments.start(repo)
    (agent,) = experiment.state.sessions
    status = await finished(engine, "knob")
    assert (status["status"], status["detail"]) == ("finished", "budget spent: 5 runs each")

    rows = tsv(results_path(cockpit_env, "knob"))
    commits = [r[0] for r in rows[2:]]
    base = run_git(repo, "rev-parse", "HEAD").strip()
    assert rows == [
        ["commit", "metric", "status", "description", "agent"],
        [base[:12], "3.0", "keep", "baseline", "baseline"],
        [commits[0], "1.0", "keep", "three", agent],
        [commits[1], "7.0", "discard", "nine", agent],
        [commits[2], "", "crash", "a string [exit 1]", agent],
        [commits[3], "0.0", "keep", "two", agent],
        [commits[4], "0.0", "discard", "same value", agent],
    ]
    worktree = engine.get(agent).path
    assert head(worktree).startswith(commits[3])  # the branch ends on its best commit
    assert is_ancestor(worktree, commits[0]) and not is_ancestor(worktree, commits[1])
    assert not is_ancestor(worktree, commits[2]) and not is_ancestor(worktree, commits[4])
    assert (worktree / "knob.py").read_text() == "VALUE = 2\n"
    assert run_git(worktree, "status", "--porcelain") == ""  # no leftovers: reset and cleaned
    assert (repo / "knob.py").read_text() == BASE_KNOB  # the main checkout is untouched

    prompts = await user_texts(engine, agent)
    assert len(prompts) == 5
    assert prompts[0].startswith("Experiment knob: your first iteration. Current best 3.")
    assert prompts[1].startswith("Last change kept: metric 1 is your new best.")
    assert prompts[2].startswith("Last change discarded: metric 7 is not better than 1; reverted.")
    assert prompts[3].startswith("Last change crashed (exit 1) and was reverted. Best stays 1.")
    assert "TypeError" in prompts[3] and "End of the crashed run's log:" in prompts[3]
    assert PROGRAM_LINE in prompts[0] and "iteration 4 of 5" in prompts[3]
    run_events = [e for e in await engine.transcript(agent) if e.kind == ev.EXPERIMENT_RUN]
    assert [e.data["row"]["status"] for e in run_events] == ["keep", "discard", "crash", "keep", "discard"]
    assert all(e.data["overhead_ms"] >= 0 for e in run_events)


PROGRAM_LINE = "Make the metric as small as you can"


async def test_the_time_limit_kills_the_run_and_everything_it_started(open_engine, server, tmp_path, cockpit_env,
                                                                   monkeypatch):
    pid_file = tmp_path / "child.pid"
    monkeypatch.setenv("CHILD_PID_FILE", str(pid_file))
    repo = experiment_repo(tmp_path / "exp", name="slow", timeout=4, budget_runs=1)
    server.set_scenario(script(idea(SLEEPER, "sleep forever")))
    engine = await engine_for(open_engine, server)
    experiment = await engine.experiments.start(repo)
    (agent,) = experiment.state.sessions
    await finished(engine, "slow")
    rows = tsv(results_path(cockpit_env, "slow"))
    assert rows[-1][1:] == ["", "crash", "sleep forever [timed out after 4s]", agent]
    child = int(pid_file.read_text())
    await until(lambda: not process_alive(child), "the run's grandchild to be gone")
    assert (engine.get(agent).path / "knob.py").read_text() == BASE_KNOB


async def test_changes_outside_the_allowed_files_are_discarded_without_a_run(open_engine, server, tmp_path,
                                                                            cockpit_env):
    repo = experiment_repo(tmp_path / "exp", name="rules", budget_runs=1)
    server.set_scenario(script(idea("print('hacked')\n", "edit the scorer", path="run.py")))
    engine = await engine_for(open_engine, server)
    experiment = await engine.experiments.start(repo)
    (agent,) = experiment.state.sessions
    await finished(engine, "rules")
    assert tsv(results_path(cockpit_env, "rules"))[-1] == [
        "", "", "discard", "edit the scorer [changed files outside knob.py: run.py]", agent]
    worktree = engine.get(agent).path
    assert (worktree / "run.py").read_text() == (repo / "run.py").read_text()
    assert head(worktree) == run_git(repo, "rev-parse", "HEAD").strip()


async def test_parallel_agents_work_only_in_their_own_worktree_and_branch(open_engine, server, tmp_path, cockpit_env):
    repo = experiment_repo(tmp_path / "exp", name="pair", agents=2, budget_runs=2)
    engine = await engine_for(open_engine, server)
    experiment = await engine.experiments.start(repo)
    first, second = experiment.state.sessions
    server.set_scenario(script(idea("VALUE = 3\n", "a three"), idea("VALUE = 1.5\n", "a half")), session=first)
    server.set_scenario(script(idea("VALUE = 4\n", "b four"), idea("VALUE = 0\n", "b zero")), session=second)
    await finished(engine, "pair")
    base = run_git(repo, "rev-parse", "HEAD").strip()
    for session_id, own, others in ((first, "a ", "b "), (second, "b ", "a ")):
        worktree = engine.get(session_id).path
        subjects = run_git(worktree, "log", "--format=%s", f"{base}..HEAD").splitlines()
        assert subjects and all(s.startswith(own) for s in subjects)
        bodies = run_git(worktree, "log", "--format=%b", f"{base}..HEAD")
        assert f"agent {experiment.agent_label(session_id)}," in bodies
        assert not any(s.startswith(others) for s in subjects)
    assert (engine.get(first).path / "knob.py").read_text() == "VALUE = 1.5\n"
    assert (engine.get(second).path / "knob.py").read_text() == "VALUE = 4\n"  # b zero scored 2, not better
    rows = tsv(results_path(cockpit_env, "pair"))[2:]
    assert sorted((r[4], r[3], r[2]) for r in rows) == sorted([
        (first, "a three", "keep"), (first, "a half", "keep"), (second, "b four", "keep"), (second, "b zero", "discard"),
    ])


@pytest.mark.parametrize("sharing", ["reset-to-best", "none"])
async def test_sharing_moves_other_branches_to_a_new_global_best(open_engine, server, tmp_path, cockpit_env, sharing):
    repo = experiment_repo(tmp_path / "exp", name="share", agents=2, sharing=sharing, budget_runs=2)
    engine = await engine_for(open_engine, server)
    experiment = await engine.experiments.start(repo)
    leader, follower = experiment.state.sessions
    server.set_scenario(script(idea("VALUE = 2\n", "exact")), session=leader)  # metric 0 at once
    # The follower's first turn outlasts the leader's first iteration, so its second sees the new best.
    server.set_scenario(script(idea("VALUE = 4\n", "four", stall=4), idea("VALUE = 3.5\n", "three and a half")),
                        session=follower)
    await finished(engine, "share")
    rows = tsv(results_path(cockpit_env, "share"))[2:]
    exact = next(r[0] for r in rows if r[3] == "exact")
    worktree = engine.get(follower).path
    prompts = await user_texts(engine, follower)
    if sharing == "none":
        assert not is_ancestor(worktree, exact)
        assert (worktree / "knob.py").read_text() == "VALUE = 3.5\n"  # metric 1.5 beat its own 2
        assert not any("Your branch was reset" in p for p in prompts)
    else:
        assert head(worktree).startswith(exact)  # its "3.5" (metric 1.5) lost to the adopted 0
        assert (worktree / "knob.py").read_text() == "VALUE = 2\n"
        assert f"Your branch was reset to the best result so far: metric 0 by {experiment.agent_label(leader)}" \
            in prompts[1]
        state = json.loads((experiment_dir(cockpit_env.home, "share") / "state.json").read_text())
        assert state["bests"][follower]["commit"].startswith(exact)


async def test_a_restart_resumes_the_count_and_drops_a_half_done_iteration(open_engine, server, tmp_path,
                                                                          cockpit_env):
    repo = experiment_repo(tmp_path / "exp", name="again", budget_runs=2)
    server.set_scenario(script(idea("VALUE = 4\n", "four"), idea("VALUE = 3\n", "three"),
                               idea("VALUE = 9\n", "nine"), idea("VALUE = 2.5\n", "two and a half")))
    engine = await engine_for(open_engine, server)
    experiment = await engine.experiments.start(repo)
    (agent,) = experiment.state.sessions
    await finished(engine, "again")
    worktree = engine.get(agent).path
    best = head(worktree)
    # What a kill between commit and measurement leaves: an unmeasured commit and stray files.
    (worktree / "knob.py").write_text("VALUE = 2\n")
    run_git(worktree, "commit", "-qam", "unmeasured")
    stray = head(worktree)
    (worktree / "scratch.txt").write_text("left behind\n")
    await engine.close()

    engine = await engine_for(open_engine, server)
    experiment = await engine.experiments.resume("again", {"budget.runs": 4})
    await finished(engine, "again")
    rows = tsv(results_path(cockpit_env, "again"))[1:]
    assert [(r[3], r[2]) for r in rows] == [
        ("baseline", "keep"), ("four", "keep"), ("three", "keep"), ("nine", "discard"), ("two and a half", "keep")]
    assert is_ancestor(worktree, best) and not is_ancestor(worktree, stray)
    assert not (worktree / "scratch.txt").exists()
    prompts = await user_texts(engine, agent)
    assert prompts[2].startswith("Experiment again resumed at iteration 3. Current best 1.")
    assert "iteration 3 of 4" in prompts[2]
    assert ExperimentState.load(experiment_dir(cockpit_env.home, "again")).status == "finished"


async def test_stop_interrupts_the_run_and_puts_the_worktree_back(open_engine, server, tmp_path, cockpit_env,
                                                                 monkeypatch):
    pid_file = tmp_path / "child.pid"
    monkeypatch.setenv("CHILD_PID_FILE", str(pid_file))
    repo = experiment_repo(tmp_path / "exp", name="halt", timeout=60, budget_runs=3)
    server.set_scenario(script(idea(SLEEPER, "sleep")))
    engine = await engine_for(open_engine, server)
    experiment = await engine.experiments.start(repo)
    (agent,) = experiment.state.sessions
    loop = experiment.loops[agent]
    await until(lambda: loop.phase == RUN and pid_file.exists(), "the run to be going")
    status = await engine.experiments.stop("halt")
    assert (status["status"], status["detail"]) == ("stopped", "stopped by the person")
    await until(lambda: not process_alive(int(pid_file.read_text())), "the run's grandchild to be gone")
    worktree = engine.get(agent).path
    assert (worktree / "knob.py").read_text() == BASE_KNOB and run_git(worktree, "status", "--porcelain") == ""
    assert len(tsv(results_path(cockpit_env, "halt"))) == 2  # header and baseline: no half row
    assert ExperimentState.load(experiment_dir(cockpit_env.home, "halt")).pid == 0


async def test_notes_and_instruction_edits_reach_the_agents(open_engine, server, tmp_path, cockpit_env):
    repo = experiment_repo(tmp_path / "exp", name="steer", budget_runs=2)
    # The summaries match any request: the note joins the turn as the last (user) message.
    four, three = idea("VALUE = 4\n", "four", stall=1.5), idea("VALUE = 3\n", "three")
    del four[1]["when"], three[1]["when"]
    server.set_scenario(script(four, three))
    engine = await engine_for(open_engine, server)
    experiment = await engine.experiments.start(repo)
    (agent,) = experiment.state.sessions
    await until(lambda: experiment.loops[agent].phase == TURN, "the first turn")
    (repo / "program.md").write_text("New plan: only try values below three.\n")
    assert await engine.execute({"cmd": "experiment_note", "name": "steer", "text": "mind the sign"}) == [agent]
    await finished(engine, "steer")
    prompts = await user_texts(engine, agent)
    assert "Note from the person running the experiment: mind the sign" in prompts  # mid-turn, at once
    first, second = [p for p in prompts if p.startswith(("Experiment", "Last change"))]
    assert "Make the metric as small" in first and "New plan" not in first
    assert "New plan: only try values below three." in second


async def test_the_token_budget_ends_the_experiment(open_engine, server, tmp_path, cockpit_env):
    repo = experiment_repo(tmp_path / "exp", name="cheap", budget_runs=0, budget_tokens=1)
    server.set_scenario(script(idea("VALUE = 4\n", "four"), idea("VALUE = 3\n", "three")))
    engine = await engine_for(open_engine, server)
    await engine.experiments.start(repo)
    status = await finished(engine, "cheap")
    assert (status["status"], status["detail"], status["rows"]) == ("finished", "budget spent: 1 tokens", 2)
    assert status["tokens"] > 1


async def test_a_broken_definition_fails_before_any_session_is_made(open_engine, server, tmp_path):
    repo = experiment_repo(tmp_path / "exp")
    (repo / "bad.toml").write_text('run = "python run.py"\nfiles = ["knob.py"]\ndirection = "down"\n[budget]\nruns = 1\n')
    engine = await engine_for(open_engine, server)
    with pytest.raises(ConfigError) as caught:
        await engine.execute({"cmd": "experiment_start", "repo": str(repo), "file": "bad.toml"})
    assert str(caught.value) == f"{repo / 'bad.toml'}: key 'direction' must be one of 'min', 'max', got 'down'"
    assert engine.sessions == {}


async def test_a_crashing_baseline_fails_the_start_with_one_line(open_engine, server, tmp_path, cockpit_env):
    repo = experiment_repo(tmp_path / "exp", name="broken", run="python missing.py")
    engine = await engine_for(open_engine, server)
    await engine.experiments.start(repo)
    status = await finished(engine, "broken")
    assert status["status"] == "failed"
    assert status["detail"].startswith("experiment 'broken': the run command failed on the base commit (exit 2); see ")
    assert "\n" not in status["detail"]
    assert tsv(results_path(cockpit_env, "broken"))[-1][1:4] == ["", "crash", "baseline [exit 2]"]


async def test_status_and_list_commands_describe_every_agent(open_engine, server, tmp_path):
    repo = experiment_repo(tmp_path / "exp", name="board", agents=2, budget_runs=2)
    server.set_scenario(script(idea("VALUE = 3\n", "three"), idea("VALUE = 'x'\n", "crash")))
    engine = await engine_for(open_engine, server)
    await engine.execute({"cmd": "experiment_start", "repo": str(repo)})
    await finished(engine, "board")
    status = await engine.execute({"cmd": "experiment_status", "name": "board"})
    assert (status["baseline"], status["best"]["metric"], status["rows"]) == (3.0, 1.0, 5)
    assert [(a["runs"], a["keeps"], a["crashes"], a["best"], a["series"]) for a in status["agents"]] == [
        (2, 1, 1, 1.0, [1.0, 1.0])] * 2
    assert status["best_session"] in {a["session"] for a in status["agents"]}
    assert all(a["phase"] == "finished" for a in status["agents"])
    assert [s["name"] for s in await engine.execute({"cmd": "experiment_list"})] == ["board"]
    assert json.loads(json.dumps(status)) == status  # JSON-able for a remote client


async def test_closing_the_cockpit_stops_the_experiment_cleanly(open_engine, server, tmp_path, cockpit_env,
                                                               monkeypatch):
    pid_file = tmp_path / "child.pid"
    monkeypatch.setenv("CHILD_PID_FILE", str(pid_file))
    repo = experiment_repo(tmp_path / "exp", name="quit", timeout=60, budget_runs=3)
    server.set_scenario(script(idea(SLEEPER, "sleep")))
    engine = await engine_for(open_engine, server)
    experiment = await engine.experiments.start(repo)
    (agent,) = experiment.state.sessions
    worktree = engine.get(agent).path
    await until(lambda: experiment.loops[agent].phase == RUN and pid_file.exists(), "the run to be going")
    await engine.close()
    state = ExperimentState.load(experiment_dir(cockpit_env.home, "quit"))
    assert (state.status, state.detail, state.pid) == ("stopped", "the cockpit closed", 0)
    await until(lambda: not process_alive(int(pid_file.read_text())), "the run's grandchild to be gone")
    assert (worktree / "knob.py").read_text() == BASE_KNOB and run_git(worktree, "status", "--porcelain") == ""
