"""`cockpit demo --print`: the no-key demo does real work through litellm in a sample repo."""

import os
import subprocess
import sys

import pytest


@pytest.mark.slow
def test_demo_agents_fix_the_bug_write_docs_and_survive_a_flaky_provider(tmp_path, cockpit_env):
    done = subprocess.run(
        [sys.executable, "-m", "cockpit", "demo", "--print", "--timeout", "90"],
        capture_output=True, text=True, timeout=150, env={**os.environ}, stdin=subprocess.DEVNULL,
    )
    out = done.stdout
    assert done.returncode == 0, out + done.stderr
    assert "DEMO: simulated agents" in out.splitlines()[0]
    assert "All tests pass now" in out  # the fix-add agent fixed calc.add and re-ran the tests
    assert out.count("⚠ approval asked: run_shell python -m unittest -q") == 2
    assert "retry 1/4" in out and "retry 2/4" in out  # the flaky provider was retried
    demo = cockpit_env.home / "demo"
    fixed = (demo / "worktrees" / "calc" / "fix-add" / "calc.py").read_text()
    assert "return a + b" in fixed
    assert (demo / "worktrees" / "calc" / "docs" / "docs" / "usage.md").is_file()
    assert "return a - b" in (demo / "calc" / "calc.py").read_text()  # the main checkout is untouched
    assert "Traceback" not in done.stderr
