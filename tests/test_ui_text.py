"""One-line renderings: pane headers put who and what first, then cost, changes, branch."""

from cockpit.ui.text import header_text, summarize_tool, tool_result_line

SESSION = {
    "number": 3, "name": "fix-tests", "state": "running", "branch": "cockpit/fix-tests", "tags": ["api"],
    "usage": {"prompt_tokens": 12000, "completion_tokens": 345, "cost_usd": 0.0412, "cost_known": True},
}


def test_header_orders_identity_state_cost_changes_branch_tags():
    text = header_text(SESSION, marked=True, spinner="⠋", stats={"files": 2, "added": 5, "removed": 1}, focused=True)
    assert text == "▶◆@3 fix-tests  ⠋ running  12.3k tok $0.04  2f +5 −1  cockpit/fix-tests  #api"


def test_unknown_cost_and_no_changes():
    session = {**SESSION, "state": "idle", "tags": [], "usage": {"prompt_tokens": 10, "cost_known": False}}
    assert header_text(session, marked=False, spinner="⠋", stats={}) == " @3 fix-tests  ○ idle  10 tok $?  cockpit/fix-tests"


def test_tool_lines():
    assert summarize_tool({"name": "run_shell", "arguments": {"command": "pytest -q\nmore"}}) == "⚙ run_shell pytest -q"
    assert summarize_tool({"name": "read_file", "raw_arguments": "{bad"}) == "⚙ read_file (malformed arguments)"
    assert tool_result_line({"ok": False, "output": "exit code 1\n2 failed"}) == ("fail", "  ✗ exit code 1  (+1 lines)")
