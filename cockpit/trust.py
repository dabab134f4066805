"""Workspace trust: which repositories' `.cockpit.toml` may run commands and send keys.

A cloned repository's `.cockpit.toml` is written by whoever committed it. Until the person says
they trust it, only its harmless keys apply (`config_gate.py`). Trust is remembered outside the
repository, in the user's config folder (`trusted.json`), per repository path *and* the hash of
the file's bytes: a changed file is a new file, and asks again.

The same file remembers which untrusted file versions the person was already told about, so the
"keys ignored" line is said once per version, not on every command.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import stat
import tempfile
from pathlib import Path
from typing import Any

from cockpit.dirs import xdg_config_home
from cockpit.errors import ConfigError

REPO_FILE = ".cockpit.toml"


def trust_path() -> Path:
    return xdg_config_home() / "cockpit" / "trusted.json"


def repo_key(repo: Path | str) -> str:
    """A repository as trust remembers it: its real absolute path."""
    return str(Path(repo).resolve())


#: Larger config files are refused: a committed file (or a symlink to `/dev/zero`) must not be
#: able to make every command read forever.
MAX_CONFIG_BYTES = 1 << 20


def read_config_bytes(path: Path) -> bytes | None:
    """A config file's bytes, None when there is none; a device, FIFO or huge file is one line.

    A repository can commit `.cockpit.toml` as a symlink to anything (`/dev/zero`, a FIFO).
    """
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):
            raise ConfigError(f"{path}: cannot read config: not a regular file")
        if info.st_size > MAX_CONFIG_BYTES:
            raise ConfigError(f"{path}: cannot read config: {info.st_size} bytes, more than {MAX_CONFIG_BYTES}")
        return path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config: {exc}") from None


def file_digest(path: Path) -> str:
    """The sha256 of a file's bytes, or "" when there is no file."""
    data = read_config_bytes(path)
    return "" if data is None else "sha256:" + hashlib.sha256(data).hexdigest()


class TrustStore:
    """The person's trust decisions, read from disk on every question (another process — the CLI's
    `cockpit trust` — may have changed them since)."""

    def __init__(self, path: Path | None = None):
        self.path = path or trust_path()

    def _load(self) -> dict[str, Any]:
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {"trusted": {}, "told": {}}
        except (OSError, ValueError) as exc:
            raise ConfigError(f"{self.path}: cannot read the trust list: {exc} "
                              f"(delete it to start again; every repository is then untrusted)") from None
        if not isinstance(raw, dict):
            raise ConfigError(f"{self.path}: the trust list must be a JSON object (delete it to start again)")
        return {"trusted": dict(raw.get("trusted") or {}), "told": dict(raw.get("told") or {})}

    def _save(self, data: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".trusted-", suffix=".json")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump(data, out, indent=2, sort_keys=True)
            os.chmod(tmp, 0o600)
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    def signature(self) -> tuple[int, int]:
        """Changes whenever the trust list does (for caches)."""
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            return (0, 0)
        return (stat.st_mtime_ns, stat.st_size)

    def is_trusted(self, repo: Path | str, digest: str) -> bool:
        return bool(digest) and self._load()["trusted"].get(repo_key(repo)) == digest

    def trust(self, repo: Path | str, expect: str = "") -> str:
        """Trust the repository's `.cockpit.toml` as it is now (only if it still has digest
        `expect`, when given: what the person was shown); returns its digest."""
        digest = file_digest(Path(repo) / REPO_FILE)
        if not digest:
            raise ConfigError(f"{Path(repo) / REPO_FILE}: no such file, nothing to trust")
        if expect and digest != expect:
            raise ConfigError(f"{Path(repo) / REPO_FILE} changed since you were asked; not trusted "
                              f"(look at it again, then `cockpit trust {repo}`)")
        data = self._load()
        data["trusted"][repo_key(repo)] = digest
        self._save(data)
        return digest

    def revoke(self, repo: Path | str) -> bool:
        data = self._load()
        gone = data["trusted"].pop(repo_key(repo), None) is not None
        if gone:
            self._save(data)
        return gone

    def trusted(self) -> dict[str, str]:
        """Repository path → digest of the file version trusted."""
        return dict(self._load()["trusted"])

    def first_telling(self, repo: Path | str, digest: str) -> bool:
        """True the first time this untrusted file version is reported (and remember it)."""
        data = self._load()
        if data["told"].get(repo_key(repo)) == digest:
            return False
        data["told"][repo_key(repo)] = digest
        with contextlib.suppress(OSError):  # failing to remember only means saying it again
            self._save(data)
        return True
