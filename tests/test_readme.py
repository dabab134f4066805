"""The README's promises: its first commands are what CI runs, and its config example is valid."""

import re
from pathlib import Path

from cockpit.config import parse_config_text
from cockpit.ui.keymap import known_bindings, validate_keymap

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_the_readme_starts_with_the_start_and_test_commands_and_ci_runs_the_test_one():
    first_block = re.search(r"```sh\n(.*?)```", README, re.S).group(1).splitlines()
    start, test = (line.split("#")[0].strip() for line in first_block[:2])
    assert start == "pip install uv && uv run cockpit demo"
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert test in ci.splitlines()


def test_every_config_example_loads_and_its_key_bindings_exist():
    examples = re.findall(r"```toml\n(.*?)```", README, re.S)
    assert len(examples) >= 2
    for example in examples:
        config = parse_config_text(example, "README.md")
        validate_keymap(config.keys, known_bindings())
    main = next(e for e in examples if "[models.default]" in e)
    assert parse_config_text(main, "README.md").models["default"].api_key_env == "ANTHROPIC_API_KEY"
