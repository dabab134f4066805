"""A repository's config as a command loads it, and the one line about its untrusted file.

Shared by every verb (`client.cli.connected`, the screen, `cockpit trust`), so it lives apart
from both: `trust_cli` uses `connected` for `--remote`, and `connected` loads the config first.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from cockpit.config import Config, load_config_report, untrusted_line
from cockpit.trust import TrustStore


def repo_root(path: Path | str) -> Path:
    """The top of the git checkout holding `path` (the path itself outside git)."""
    done = subprocess.run(["git", "rev-parse", "--show-toplevel"], cwd=path, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL)
    return Path(done.stdout.strip()) if done.returncode == 0 and done.stdout.strip() else Path(path).resolve()


def load_and_tell(repo: Path | str) -> Config:
    """The repository's config (a mistake is one ConfigError line); the first time a version of
    its untrusted file is met, one line on stderr says which keys were ignored and how to trust."""
    root = repo_root(repo) if Path(repo).is_dir() else Path(repo)
    config, report = load_config_report(root)
    if report is not None and report.ignored and TrustStore().first_telling(root, report.digest):
        print(f"cockpit: {untrusted_line(report)}", file=sys.stderr)
    return config
