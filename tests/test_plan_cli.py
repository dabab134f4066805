"""`cockpit plan`, run as a real subprocess with `--local` (no agent runs there: the conductor's
task is recorded, so the plan stays a draft)."""

from __future__ import annotations

import json

from test_cli import _assert_one_line_error, cockpit


def test_plan_starts_a_conductor_and_shows_the_draft(repo):
    done = cockpit("plan", "--local", "Add", "a", "greeting", "--json", cwd=repo)
    assert done.returncode == 0, done.stderr
    plan = json.loads(done.stdout)
    assert (plan["task"], plan["status"], plan["repo"]) == ("Add a greeting", "drafting", str(repo))

    listed = cockpit("ls", "--local", "--json", cwd=repo)
    (conductor,) = json.loads(listed.stdout)
    assert conductor["id"] == plan["conductor"] and conductor["agent"] == "conductor"
    assert conductor["tags"] == [f"plan-{plan['id']}", "conductor"]

    shown = cockpit("plan", "--local", "--show", plan["id"], cwd=repo)
    assert (shown.returncode, shown.stdout) == (0, f"plan {plan['id']} · drafting · Add a greeting\n")
    listed = cockpit("plan", "--local", "--ls", cwd=repo)
    assert listed.stdout == f"{plan['id']}  drafting  0 sub-tasks  Add a greeting\n"


def test_plan_mistakes_are_one_line(repo):
    _assert_one_line_error(cockpit("plan", "--local", cwd=repo),
                           'plan: say what to do, e.g. `cockpit plan "add a --json flag to every command"`')
    _assert_one_line_error(cockpit("plan", "--local", "--agent", "robot", "task", cwd=repo),
                           "unknown agent 'robot' (configured agents: "
                           "builtin, claude, codex, conductor, gemini, goose, opencode, shell)")
    _assert_one_line_error(cockpit("plan", "--local", "--show", "zzzz", cwd=repo),
                           "no plan 'zzzz' (see `cockpit plan --ls`)")
    _assert_one_line_error(cockpit("plan", "--local", "--files", "a.py", "task", cwd=repo),
                           "plan: --files goes with --edit")
    _assert_one_line_error(cockpit("plan", "--local", "--edit", "zzzz", "s1", cwd=repo),
                           "plan --edit: say what changes: --text and/or --files")
