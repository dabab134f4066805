"""The sample repository the demo works in: a tiny Python project with a bug and tests."""

from __future__ import annotations

import subprocess
from pathlib import Path

#: The sample's test command, the demo engine's `[review] verify` (so `v` and the merge desk run the
#: tests). Not a `.cockpit.toml` in the sample: an untrusted repository file asks to be trusted first.
SAMPLE_VERIFY = "python -m unittest -q"

FILES = {
    "README.md": "# calc\n\nA tiny calculator used by the cockpit demo.\n",
    "AGENTS.md": (
        "# Working on calc\n\n"
        "- Run the tests with `python -m unittest -q`.\n"
        "- Keep functions small and documented.\n"
    ),
    "calc.py": (
        '"""A tiny calculator."""\n\n\n'
        "def add(a, b):\n"
        '    """Return the sum of a and b."""\n'
        "    return a - b\n\n\n"
        "def mul(a, b):\n"
        '    """Return the product of a and b."""\n'
        "    return a * b\n"
    ),
    "test_calc.py": (
        "import unittest\n\n"
        "from calc import add, mul\n\n\n"
        "class CalcTest(unittest.TestCase):\n"
        "    def test_add(self):\n"
        "        self.assertEqual(add(2, 3), 5)\n\n"
        "    def test_mul(self):\n"
        "        self.assertEqual(mul(2, 3), 6)\n\n\n"
        'if __name__ == "__main__":\n'
        "    unittest.main()\n"
    ),
    ".gitignore": "__pycache__/\n",
}


def make_sample_repo(path: Path) -> Path:
    """Create (or reuse) the sample repository at `path` with one commit on `main`."""
    path = Path(path)
    if (path / ".git").exists():
        return path
    path.mkdir(parents=True, exist_ok=True)
    for name, text in FILES.items():
        (path / name).write_text(text, encoding="utf-8")

    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=path, check=True, capture_output=True)

    git("init", "-q", "-b", "main")
    git("config", "user.name", "Cockpit Demo")
    git("config", "user.email", "demo@cockpit.invalid")
    git("add", "-A")
    git("commit", "-q", "-m", "calc: first version")
    return path
