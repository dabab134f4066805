"""The approval inbox below the screen: shapes, groups, answer tallies, rule edits, the engine feature."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest
from asking_backend import AskingBackend, asking_agent
from server_kit import acockpit, all_idle, attached, model_config, start_server, text_of, until
from turn_backend import wait_for

from cockpit.config import ApprovalConfig
from cockpit.core import events as ev
from cockpit.core.events import Event
from cockpit.errors import CockpitError, ConfigError
from cockpit.inbox.groups import group_pending, tally_answers, worth_suggesting
from cockpit.inbox.rules import plan_rule, with_shell_allow, write_rule
from cockpit.inbox.shapes import command_shape, rule_refusal, shape_of
from cockpit.sim import ScriptedLLMServer
from cockpit.trust import REPO_FILE, TrustStore, file_digest

#: A scripted model whose agent asks to run one shell command, then says what it printed.
ASKS_TO_RUN = {"name": "asks", "final": "Ran it: {last_tool_result_tail}",
               "steps": [{"text": "Checking.", "tool_calls": [{"name": "run_shell",
                                                               "arguments": {"command": "echo checked"}}]}]}

# -- shapes ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("command", "label"), [
    ("pytest -q tests/test_a.py", "pytest …"),
    ("pytest", "pytest"),
    ("npm test", "npm test"),
    ("npm test -- --watch=false", "npm test …"),
    ("npm run build", "npm run build"),
    ("uv run pytest -x", "uv run pytest …"),
    ("python -m pytest -q", "python -m pytest …"),
    ("git status --short", "git status …"),
    ("cd app && npm test", "cd … ; npm test"),
    ("ls -la | grep py", "ls … ; grep …"),
])
def test_a_command_is_shaped_by_its_program_and_subcommand(command: str, label: str):
    assert command_shape(command).label == label


def test_one_shape_covers_its_commands_with_any_arguments():
    assert command_shape("pytest -q").key == command_shape("pytest tests/test_b.py -x").key == command_shape("pytest").key
    assert command_shape("git status").key != command_shape("git push").key
    assert command_shape("npm test").patterns == ("npm test", "npm test *")


@pytest.mark.parametrize("command", ["$TOOL run", "FOO=1 make", "echo 'unclosed"])
def test_a_line_that_cannot_be_read_for_sure_is_its_own_shape_and_takes_no_rule(command: str):
    shape = command_shape(command)
    assert shape.patterns == ()
    assert shape.label == " ".join(command.split())


def test_requests_are_shaped_by_command_file_or_tool():
    acp_execute = json.dumps({"command": "pytest -q"}) + "\noptions: Allow / Reject"
    assert shape_of("execute", "Run the tests", acp_execute).key == shape_of("run_shell", "pytest -x").key
    edit = shape_of("edit", "Edit src/app.py", json.dumps({"path": "src/app.py"}))
    assert (edit.label, edit.patterns) == ("src/app.py", ())
    assert shape_of("fetch", "https://example.com").label == "fetch: https://example.com"


def test_a_rule_is_checked_by_the_policy_itself():
    approval = ApprovalConfig(shell_deny=["rm *"])
    assert rule_refusal(approval, ("pytest", "pytest *"), ["pytest -q", "pytest"]) == ""
    assert "shell_deny" in rule_refusal(ApprovalConfig(shell_deny=["pytest --pdb*"]), ("pytest", "pytest *"),
                                        ["pytest --pdb"])
    assert "would still not run" in rule_refusal(approval, ("echo", "echo *"), ["echo hi > out.txt"])
    assert rule_refusal(approval, (), ["x"]) != ""


# -- groups ------------------------------------------------------------------------------------------


def _request(n: int, session: int, title: str, tool: str = "run_shell") -> dict:
    return {"session": f"s{session}", "number": session, "name": f"agent-{session}", "repo": "/r/repo",
            "id": f"a{n}", "tool": tool, "title": title, "detail": json.dumps({"command": title})}


def test_pending_requests_group_by_shape_biggest_first():
    requests = [_request(1, 1, "npm test"), _request(2, 2, "pytest -q a.py"), _request(3, 3, "pytest b.py"),
                _request(4, 1, "pytest"), _request(5, 4, "git push")]
    groups = group_pending(requests)
    assert [(g.label, len(g.requests)) for g in groups] == [("pytest …", 3), ("git push", 1), ("npm test", 1)]
    assert groups[0].sessions == ["s2", "s3", "s1"]
    assert groups[0].commands == ["pytest -q a.py", "pytest b.py", "pytest"]
    assert groups[0].by_repo() == {("", "/r/repo"): "s2"}


def _answers(*pairs: tuple[str, bool]) -> list[Event]:
    events = []
    for n, (command, approved) in enumerate(pairs):
        request = {"id": "a1", "tool": "run_shell", "title": command, "detail": ""}  # ids restart: a1 again and again
        events += [Event(ev.APPROVAL_REQUEST, "s1", request), Event(ev.APPROVAL_RESOLVED, "s1",
                                                                    {"id": "a1", "approved": approved})]
    return events


def test_past_answers_are_tallied_per_shape():
    tallies = tally_answers(_answers(("npm test", True), ("npm test -- -u", True), ("npm test", True),
                                     ("rm -rf build", True), ("rm -rf dist", False)))
    npm = tallies[command_shape("npm test").key]
    assert (npm.approved, npm.denied, npm.commands) == (3, 0, ["npm test", "npm test -- -u"])
    assert worth_suggesting(npm)
    assert not worth_suggesting(tallies[command_shape("rm -rf build").key])  # denied once


# -- rules in .cockpit.toml --------------------------------------------------------------------------


@pytest.mark.parametrize("text", [
    "",
    "theme = \"cockpit-light\"\n",
    "# mine\n[approval]\npreset = \"ask-shell\"  # keep\n\n[ui]\nkeep_bar_open = true\n",
    "[approval]\nshell_allow = [\n  \"ls\",  # listing\n  \"cat *\",\n]\n",
    "[approval]\nshell_allow = []\n",
    "[approval]\nshell_allow = ['make \"x\"']\n",
])
def test_a_rule_is_added_keeping_everything_else(text: str):
    edited, added = with_shell_allow(text, ["npm test", "npm test *"])
    assert added == ["npm test", "npm test *"]
    before, after = tomllib.loads(text), tomllib.loads(edited)
    assert after["approval"]["shell_allow"] == [*before.get("approval", {}).get("shell_allow", []), *added]
    assert {k: v for k, v in after.items() if k != "approval"} == {k: v for k, v in before.items() if k != "approval"}
    assert all(line in edited for line in text.splitlines() if "shell_allow" not in line)  # comments, layout


def test_a_file_the_editor_cannot_change_safely_is_left_for_the_person():
    with pytest.raises(ConfigError, match="by hand"):
        with_shell_allow('approval.preset = "ask-shell"\n', ["npm test"])
    with pytest.raises(ConfigError, match="not valid TOML"):
        with_shell_allow("[approval\n", ["npm test"])
    assert with_shell_allow('[approval]\nshell_allow = ["npm test"]\n', ["npm test"])[1] == []


def test_writing_a_rule_keeps_a_trusted_file_trusted_and_refuses_an_untrusted_one(tmp_path: Path):
    trust = TrustStore()
    repo = tmp_path / "repo"
    repo.mkdir()
    plan = plan_rule(repo, ["npm test", "npm test *"], trust)  # no file yet: the whole new file is shown
    assert plan.digest == "" and "+shell_allow = [\"npm test\", \"npm test *\"]" in plan.diff
    digest = write_rule(repo, ["npm test", "npm test *"], plan.digest, trust)
    assert trust.is_trusted(repo, digest) and digest == file_digest(repo / REPO_FILE)

    plan = plan_rule(repo, ["pytest", "pytest *"], trust)
    (repo / REPO_FILE).write_text((repo / REPO_FILE).read_text() + "# edited meanwhile\n")
    with pytest.raises(ConfigError, match="not trusted"):  # the edit made it a file nobody trusted
        plan_rule(repo, ["pytest", "pytest *"], trust)
    trust.trust(repo)  # the person looked at the edit and trusts it: still not the file whose diff was shown
    with pytest.raises(ConfigError, match="changed since its diff was shown"):
        write_rule(repo, ["pytest", "pytest *"], plan.digest, trust)
    assert "pytest" not in (repo / REPO_FILE).read_text()


# -- the engine feature ------------------------------------------------------------------------------


async def _asking_engine(open_engine, repo: Path, count: int):
    engine = await open_engine(agent_factory=asking_agent)
    sessions = await engine.create_sessions(repo, name="agent", count=count)
    return engine, sessions


async def _ask(engine, session, *commands: str) -> None:
    before = len(engine.hosts[session.id].pending)
    await engine.send(session.id, json.dumps(list(commands)))
    await wait_for(lambda: len(engine.hosts[session.id].pending) == before + len(commands))


async def test_pending_requests_are_listed_and_a_rule_lets_the_shape_run_unasked(open_engine, repo: Path):
    engine, (one, two) = await _asking_engine(open_engine, repo, 2)
    await _ask(engine, one, "npm test", "pytest -q")
    await _ask(engine, two, "npm test -- -u")
    pending = await engine.execute({"cmd": "inbox_pending"})
    assert [(r["number"], r["title"], r["repo"]) for r in pending] == [
        (one.number, "npm test", str(repo)), (one.number, "pytest -q", str(repo)), (two.number, "npm test -- -u", str(repo))]
    npm = next(g for g in group_pending(pending) if g.label == "npm test …")

    preview = await engine.execute({"cmd": "inbox_rule_preview", "session": two.id,
                                    "patterns": list(npm.shape.patterns), "commands": npm.commands})
    assert preview["new_file"] and '+shell_allow = ["npm test", "npm test *"]' in preview["diff"]
    await engine.execute({"cmd": "inbox_rule_write", "session": two.id, "patterns": list(npm.shape.patterns),
                          "digest": preview["digest"]})
    for request in npm.requests:  # what was asked before the rule is still answered by the person
        await engine.execute({"cmd": "approve", "session": request["session"], "id": request["id"]})
    await wait_for(lambda: "npm test -- -u" in AskingBackend.by_session[two.id].outcomes)

    await engine.send(two.id, json.dumps(["npm test -- --ci"]))  # the running agent follows the new rule
    await wait_for(lambda: "npm test -- --ci" in AskingBackend.by_session[two.id].outcomes)
    assert AskingBackend.by_session[two.id].outcomes["npm test -- --ci"] == ""
    assert [r["title"] for r in await engine.execute({"cmd": "inbox_pending"})] == ["pytest -q"]


async def test_a_rule_the_policy_would_not_honour_is_refused_before_any_diff(open_engine, repo: Path):
    engine, (one,) = await _asking_engine(open_engine, repo, 1)
    with pytest.raises(CockpitError, match="would still not run"):
        await engine.execute({"cmd": "inbox_rule_preview", "session": one.id, "patterns": ["echo", "echo *"],
                              "commands": ["echo hi > notes.txt"]})
    with pytest.raises(CockpitError, match="one-line, non-empty"):
        await engine.execute({"cmd": "inbox_rule_preview", "session": one.id, "patterns": ["ls\nrm -rf /"]})
    assert not (repo / REPO_FILE).exists()


async def test_shapes_approved_often_are_suggested_until_a_rule_allows_them(open_engine, repo: Path):
    engine, (one,) = await _asking_engine(open_engine, repo, 1)
    for n in range(3):
        await _ask(engine, one, f"make lint FILE={n}", "git push")
        for request in list(engine.hosts[one.id].pending.values()):
            approve = request.title.startswith("make")
            await engine.execute({"cmd": "approve" if approve else "deny", "session": one.id, "id": request.id})
        await wait_for(lambda: not engine.hosts[one.id].pending)
    (suggestion,) = await engine.execute({"cmd": "inbox_suggestions"})
    assert (suggestion["label"], suggestion["approved"], suggestion["repo"]) == ("make lint …", 3, str(repo))
    preview = await engine.execute({"cmd": "inbox_rule_preview", "session": suggestion["session"],
                                    "patterns": suggestion["patterns"], "commands": suggestion["commands"]})
    await engine.execute({"cmd": "inbox_rule_write", "session": suggestion["session"],
                          "patterns": suggestion["patterns"], "digest": preview["digest"]})
    assert await engine.execute({"cmd": "inbox_suggestions"}) == []


@pytest.mark.slow
async def test_cockpit_inbox_lists_the_groups_of_a_server(cockpit_env, repo: Path):
    async with ScriptedLLMServer(ASKS_TO_RUN) as sim:
        cockpit_env.write_user_config(model_config(sim.url))
        made = await acockpit("new", "work", "--count", "2", "--task", "check it", "--json", cwd=repo)
        ids = [s["id"] for s in json.loads(made.stdout)]
        done = await acockpit("wait", *ids, "--until", "waiting", "--timeout", "60", cwd=repo)
        assert done.returncode == 0, done.stderr
        listed = await acockpit("inbox", cwd=repo)
        assert listed.stdout.splitlines() == ["   2× echo …", "      @1 @2"], listed.stderr
        groups = json.loads((await acockpit("inbox", "--json", cwd=repo)).stdout)["groups"]
        assert [(g["label"], g["count"], g["patterns"]) for g in groups] == [("echo …", 2, ["echo", "echo *"])]
        for request in groups[0]["requests"]:
            await acockpit("approve", request["session"], "--id", request["id"], cwd=repo)
        done = await acockpit("wait", *ids, "--until", "idle", "--timeout", "60", cwd=repo)
        assert done.returncode == 0, done.stderr
        assert (await acockpit("inbox", cwd=repo)).stdout == "nothing is waiting for approval\n"


ASKS_TWICE = {"name": "asks-twice", "final": "Second: {last_tool_result_tail}",
              "steps": [{"text": "First.", "tool_calls": [{"name": "run_shell", "arguments": {"command": "echo one"}}]},
                        {"when": {"last_role": "tool"}, "text": "Again.",
                         "tool_calls": [{"name": "run_shell", "arguments": {"command": "echo two"}}]}]}


@pytest.mark.slow
async def test_an_agent_in_a_worker_process_follows_a_rule_written_mid_turn(cockpit_env, repo: Path):
    """The server runs agents in worker processes, which got the config at start: the rule the
    person writes while the agent waits still lets its next command run unasked."""
    async with ScriptedLLMServer(ASKS_TWICE) as sim:
        cockpit_env.write_user_config(model_config(sim.url))
        client = await attached(await start_server(cockpit_env.home, repo))
        try:
            (made,) = await client.execute({"cmd": "create", "repo": str(repo), "name": "twice", "task": "go"})
            await until(lambda: client.snapshot()[0]["state"] == "waiting", "the first request")
            (request,) = await client.execute({"cmd": "inbox_pending"})
            preview = await client.execute({"cmd": "inbox_rule_preview", "session": made["id"],
                                            "patterns": ["echo", "echo *"], "commands": [request["title"]]})
            await client.execute({"cmd": "inbox_rule_write", "session": made["id"], "patterns": ["echo", "echo *"],
                                  "digest": preview["digest"]})
            await client.execute({"cmd": "approve", "session": made["id"], "id": request["id"]})
            await until(lambda: all_idle(client, 1), "the turn to end without asking again")
            events = await client.transcript(made["id"])
            assert [e.data["title"] for e in events if e.kind == ev.APPROVAL_REQUEST] == ["echo one"]
            assert "Second: two" in text_of(events)
        finally:
            await client.close()
