"""The config a command line reads for its repository, and the one line about an untrusted file.

Every verb and the screen read the repository's config first: a mistake is one line before
anything starts, and the first time a version of the repository's untrusted `.cockpit.toml` is
met, one line on stderr says which of its keys were ignored and how to trust it.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from cockpit.config import Config, load_config_report, trust_store, untrusted_line


def repo_root(path: Path | str) -> Path:
    """The top of the git checkout holding `path` (the path itself outside git)."""
    done = subprocess.run(["git", "rev-parse", "--show-toplevel"], cwd=path, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL)
    return Path(done.stdout.strip()) if done.returncode == 0 and done.stdout.strip() else Path(path).resolve()


def load_and_tell(repo: Path | str) -> Config:
    """The repository's config (a mistake raises one ConfigError line), telling about an untrusted
    file once per version of it."""
    root = repo_root(repo) if Path(repo).is_dir() else Path(repo)
    config, report = load_config_report(root)
    if report is not None and report.ignored and trust_store().first_telling(root, report.digest):
        print(f"cockpit: {untrusted_line(report)}", file=sys.stderr)
    return config
