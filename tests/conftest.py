"""Shared fixtures: an isolated cockpit home, real git repositories and an open engine.

Every test runs with `COCKPIT_HOME`, `XDG_CONFIG_HOME` and `XDG_DATA_HOME` pointing into its own
temporary folder, and with git's global and system config switched off, so nothing reads or
writes the developer's home directory.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

from cockpit.config import Config, load_config
from cockpit.core.agent_api import AgentFactory
from cockpit.core.engine import Engine
from cockpit.features import install
from cockpit.server.daemon import stop_server
from cockpit.server.paths import ServerPaths

install()  # the features (experiments) that the entry points give every engine


@dataclass(frozen=True)
class CockpitEnv:
    home: Path  # $COCKPIT_HOME
    config_home: Path  # $XDG_CONFIG_HOME

    @property
    def user_config(self) -> Path:
        return self.config_home / "cockpit" / "config.toml"

    def write_user_config(self, text: str) -> Path:
        self.user_config.parent.mkdir(parents=True, exist_ok=True)
        self.user_config.write_text(text, encoding="utf-8")
        return self.user_config


@pytest.fixture(autouse=True)
def cockpit_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[CockpitEnv]:
    env = CockpitEnv(home=tmp_path / "cockpit-home", config_home=tmp_path / "xdg-config")
    monkeypatch.setenv("COCKPIT_HOME", str(env.home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(env.config_home))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    monkeypatch.delenv("COCKPIT_MODEL", raising=False)
    # git must not read the developer's ~/.gitconfig (hooks, signing, templates).
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(tmp_path / "no-global-gitconfig"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for name in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE"):
        monkeypatch.delenv(name, raising=False)
    yield env
    # The CLI starts a background server on demand; it must not outlive the test that started it.
    stop_server(ServerPaths(env.home))


def run_git(cwd: Path | str, *args: str, check: bool = True) -> str:
    """Run git synchronously (test set-up and assertions only); return stdout."""
    done = subprocess.run(["git", *args], cwd=str(cwd), capture_output=True, text=True)
    if check and done.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed ({done.returncode}): {done.stderr.strip()}")
    return done.stdout


def make_repo(path: Path, files: Mapping[str, str] | None = None, *, branch: str = "main") -> Path:
    """A real git repository at `path` with `files` committed on `branch` (one commit)."""
    path.mkdir(parents=True, exist_ok=True)
    run_git(path, "init", "-q", "-b", branch)
    run_git(path, "config", "user.name", "Cockpit Tests")
    run_git(path, "config", "user.email", "tests@cockpit.invalid")
    run_git(path, "config", "commit.gpgsign", "false")
    for rel, text in (files if files is not None else {"README.md": "hello\n"}).items():
        target = path / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    run_git(path, "add", "-A")
    run_git(path, "commit", "-q", "--allow-empty", "-m", "initial")
    return path.resolve()


@pytest.fixture
def off_tmp() -> Iterator[Path]:
    """A folder outside /tmp: the sandbox replaces /tmp with a private one, which would hide a
    folder under it for the wrong reason; /var/tmp stays in view, read-only."""
    path = Path(tempfile.mkdtemp(prefix="cockpit-test-", dir="/var/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(name="make_repo")
def make_repo_fixture() -> Callable[..., Path]:
    """`make_repo(tmp_path / "name", files={...})` → the repository's resolved path."""
    return make_repo


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "repo", {"README.md": "hello\n", "src/app.py": "print('hi')\n"})


@pytest.fixture
async def open_engine(cockpit_env: CockpitEnv) -> AsyncIterator[Callable[..., object]]:
    """`await open_engine(config=..., agent_factory=...)`; every engine opened is closed at the end."""
    opened: list[Engine] = []

    async def _open(config: Config | None = None, agent_factory: AgentFactory | None = None) -> Engine:
        engine = await Engine.open(cockpit_env.home, config or load_config(), agent_factory)
        opened.append(engine)
        return engine

    yield _open
    for engine in reversed(opened):
        if not engine.store.closed:
            await engine.close()


@pytest.fixture
async def engine(open_engine: Callable[..., object]) -> Engine:
    return await open_engine()  # type: ignore[misc]
