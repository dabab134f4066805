"""Configuration: TOML from the user's config folder, overlaid by the repository's `.cockpit.toml`.

The schema is a tree of dataclasses. Loading walks the TOML against it so that every mistake
(bad TOML, unknown key, wrong type, bad enum value) becomes one `ConfigError` line naming the
file, the key and what was expected — the CLI prints it and exits 2, never a traceback.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import os
import re
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Literal

from cockpit.dirs import xdg_config_home
from cockpit.errors import ConfigError

Decision = Literal["auto", "ask", "deny"]
Preset = Literal["read-only", "ask-shell", "auto"]
LayoutName = Literal["tiled", "even-horizontal", "even-vertical", "main-vertical", "main-horizontal"]
AgentKind = Literal["llm", "acp", "terminal", "conductor"]
MergeStrategy = Literal["squash", "merge", "rebase"]
AfterMerge = Literal["keep", "remove-worktree", "remove"]
ModelRoute = Literal["auto", "litellm"]


def _ranged(default: Any, low: float, high: float | None) -> Any:
    """A number field whose value must lie in [low, high] (no upper bound when high is None)."""
    return field(default=default, metadata={"range": (low, high)})


@dataclass
class ModelConfig:
    """A named model: any litellm model string plus where and how to reach it."""

    model: str = "openai/sim"
    api_base: str = ""
    #: Name of the environment variable holding the key; the key itself never enters config.
    api_key_env: str = ""
    context_window: int = _ranged(0, 0, 100_000_000)  # 0 = ask litellm, fall back to 128k
    max_output_tokens: int = _ranged(4096, 1, 10_000_000)
    temperature: float = _ranged(0.0, 0.0, 2.0)
    retries: int = _ranged(4, 0, 100)  # after a 429 / 5xx / timeout / dropped stream
    retry_base_s: float = _ranged(1.0, 0.0, 3600.0)  # first back-off; doubles each try
    stall_timeout_s: float = _ranged(90.0, 0.001, 86400.0)  # no chunk for this long = a dropped stream
    #: "auto": an `openai/…` model with an `api_base` streams through the cockpit's own
    #: OpenAI-wire client (far less CPU per chunk), every other model through litellm;
    #: "litellm": always litellm.
    route: ModelRoute = "auto"


@dataclass
class AgentConfig:
    """A kind of agent a session can run."""

    kind: AgentKind = "llm"
    model: str = "default"  # a key of [models]
    command: list[str] = field(default_factory=list)  # for acp / terminal agents
    env: dict[str, str] = field(default_factory=dict)
    #: Names of environment variables (API keys) handed to the agent's process; nothing else
    #: from the cockpit's environment reaches an acp agent.
    pass_env: list[str] = field(default_factory=list)
    waiting_patterns: list[str] = field(default_factory=list)  # terminal agents: regexes = waiting
    #: acp agents: folders the agent's sandboxed process may write besides its worktree (its own
    #: state, e.g. "~/.claude"), added to `[sandbox] writable`; ~ expands.
    writable: list[str] = field(default_factory=list)
    #: acp agents: hosts its process may reach (its API), added to `[sandbox] allow_hosts`.
    allow_hosts: list[str] = field(default_factory=list)


@dataclass
class ApprovalConfig:
    preset: Preset = "ask-shell"
    tools: dict[str, Decision] = field(default_factory=dict)
    shell_allow: list[str] = field(default_factory=list)
    shell_deny: list[str] = field(default_factory=list)
    #: Shell commands (globs, as shell_allow) a plan's conductor may approve for its sessions on the
    #: person's behalf; every other request waits for the person. Empty: the conductor approves nothing.
    conductor: list[str] = field(default_factory=list)


@dataclass
class BudgetConfig:
    """Spending caps; 0 means no cap."""

    session_usd: float = _ranged(0.0, 0.0, None)
    total_usd: float = _ranged(0.0, 0.0, None)
    session_tokens: int = _ranged(0, 0, None)
    total_tokens: int = _ranged(0, 0, None)


@dataclass
class LayoutConfig:
    layout: LayoutName = "tiled"
    main_size: int = _ranged(60, 10, 90)  # percent of the screen for the main pane
    min_pane_width: int = _ranged(30, 1, 1000)
    min_pane_height: int = _ranged(6, 1, 1000)


@dataclass
class WorktreeConfig:
    """How a fresh worktree is made ready to run."""

    copy: list[str] = field(default_factory=list, metadata={"inside": True})  # copied from the main checkout
    symlink: list[str] = field(default_factory=list, metadata={"inside": True})  # symlinked from the main checkout
    #: Monorepos: check out only these folders (`git sparse-checkout set --cone`); empty = all.
    sparse: list[str] = field(default_factory=list, metadata={"inside": True})
    setup: str = ""  # shell command run in the new worktree
    teardown: str = ""  # shell command run before the worktree is removed
    setup_timeout: float = _ranged(600.0, 0.001, 86400.0)
    port_base: int = _ranged(20000, 1024, 65534)
    port_block: int = _ranged(10, 1, 1000)


@dataclass
class ReviewConfig:
    """The merge desk: verification, merge strategy, what happens after a merge."""

    verify: str = ""  # shell command run in a worktree, e.g. "pytest -q"; empty = none
    verify_after_turn: bool = False
    verify_timeout: float = _ranged(900.0, 0.001, 86400.0)
    gate_on_verify: bool = False  # refuse to merge unless the last verify of this change passed
    strategy: MergeStrategy = "squash"
    target: str = ""  # branch merged into; empty = the branch the session was made from
    after_merge: AfterMerge = "remove-worktree"  # "remove" also deletes the branch
    checkpoints: bool = True  # snapshot the worktree at the end of every agent turn
    watch: bool = True  # live "files changed" in pane headers (watchfiles)
    #: Tell each agent when another live session changes a file it changed too (see
    #: `cockpit.alerts.collisions`); the pane headers show such collisions either way.
    collision_notes: bool = False
    large_file_lines: int = _ranged(3000, 1, 10_000_000)  # longer diffs are folded until the person opens them


@dataclass
class SandboxConfig:
    """Where commands (shell tool, terminals, set-up, verify) run: see `cockpit.core.sandbox`."""

    enabled: bool = True  # false: commands run unconfined, and `auto` asks before shell commands
    writable: list[str] = field(default_factory=list)  # more folders commands may write (caches); ~ expands
    hidden: list[str] = field(default_factory=list)  # more paths commands must not see
    #: Hosts commands may reach, only through the cockpit's proxy (`core.net_proxy`): "pypi.org",
    #: "*.pythonhosted.org" (names under it), "localhost:8080" (that port; else 443 and 80).
    #: Empty (the default) means no network at all.
    #: (An acp agent's `[agents.<name>] writable` and `allow_hosts` add to these for its process.)
    allow_hosts: list[str] = field(default_factory=list)


PhoneEvent = Literal["approval", "error", "finished"]


@dataclass
class NotifyConfig:
    bell: bool = True
    desktop: bool = True
    hook: str = ""
    #: Away from the desk (`cockpit.alerts.phone`, sent by the engine, attached or not): a URL that
    #: gets a JSON POST, and an ntfy-compatible topic URL ("https://ntfy.sh/<topic>"). Only the
    #: user's own config.toml sets these; a repository's `.cockpit.toml` never does.
    webhook: str = field(default="", metadata={"url": True})
    ntfy: str = field(default="", metadata={"url": True})
    phone_events: list[PhoneEvent] = field(default_factory=lambda: ["approval", "error"])
    #: What happens within this many seconds becomes one message (at most one per window).
    phone_coalesce_s: float = _ranged(5.0, 0.0, 3600.0)


@dataclass
class UiConfig:
    """How the screen behaves."""

    #: After Enter the focus goes back to the panes, so the next `q` or `i` is a key again and not
    #: text for the agents; true keeps the instruction bar focused for several lines in a row.
    keep_bar_open: bool = False


@dataclass
class WorkersConfig:
    """The processes agents run in (`cockpit.workers`), away from the engine's event loop."""

    count: int = _ranged(0, 0, 256)  # 0 = one per core
    nice: int = _ranged(10, 0, 19)  # how much lower their priority is than the engine's and the screen's
    batch_ms: float = _ranged(30.0, 1.0, 1000.0)  # how long streamed text waits to be sent in one message


@dataclass
class Defaults:
    agent: str = "builtin"  # a key of [agents]
    base_ref: str = ""  # empty = the repository's current branch


#: The agents every cockpit has before any file is read, as raw TOML so that user files merge into
#: them key by key: the built-in agent, a terminal running the user's shell ($SHELL, else bash),
#: and ACP agents that work wherever their program is installed. `pass_env` names the API keys
#: each may see; nothing else secret reaches them. ACP agents run sandboxed: `writable` are their
#: own state folders (and npx's cache), `allow_hosts` their APIs (and npm's registry for npx).
_NPX = {"writable": ["~/.npm"], "allow_hosts": ["registry.npmjs.org"]}
_MODEL_APIS = ["api.anthropic.com", "api.openai.com", "generativelanguage.googleapis.com"]
BUILTIN_AGENTS: dict[str, dict[str, Any]] = {
    "builtin": {},
    "shell": {"kind": "terminal"},
    "conductor": {"kind": "conductor"},  # plans' conductors (`cockpit plan`); its model: `model`
    "claude": {"kind": "acp", "command": ["npx", "--yes", "@zed-industries/claude-agent-acp"],
               "pass_env": ["ANTHROPIC_API_KEY"], "writable": ["~/.claude", *_NPX["writable"]],
               "allow_hosts": ["api.anthropic.com", "statsig.anthropic.com", *_NPX["allow_hosts"]]},
    "gemini": {"kind": "acp", "command": ["gemini", "--acp"], "pass_env": ["GEMINI_API_KEY", "GOOGLE_API_KEY"],
               "writable": ["~/.gemini"], "allow_hosts": ["*.googleapis.com"]},
    "codex": {"kind": "acp", "command": ["npx", "--yes", "@zed-industries/codex-acp"],
              "pass_env": ["OPENAI_API_KEY"], "writable": ["~/.codex", *_NPX["writable"]],
              "allow_hosts": ["api.openai.com", "chatgpt.com", *_NPX["allow_hosts"]]},
    "goose": {"kind": "acp", "command": ["goose", "acp"],
              "pass_env": ["GOOSE_PROVIDER", "GOOSE_MODEL", "ANTHROPIC_API_KEY", "OPENAI_API_KEY", "GOOGLE_API_KEY"],
              "writable": ["~/.config/goose", "~/.local/share/goose", "~/.local/state/goose"],
              "allow_hosts": _MODEL_APIS},
    "opencode": {"kind": "acp", "command": ["opencode", "acp"],
                 "pass_env": ["ANTHROPIC_API_KEY", "OPENAI_API_KEY", "GEMINI_API_KEY", "OPENROUTER_API_KEY"],
                 "writable": ["~/.config/opencode", "~/.local/share/opencode", "~/.local/state/opencode",
                              "~/.cache/opencode"],
                 "allow_hosts": [*_MODEL_APIS, "openrouter.ai", "models.dev", *_NPX["allow_hosts"]]},
}


@dataclass
class Config:
    theme: str = "cockpit-dark"
    defaults: Defaults = field(default_factory=Defaults)
    models: dict[str, ModelConfig] = field(default_factory=lambda: {"default": ModelConfig(default_model())})
    agents: dict[str, AgentConfig] = field(default_factory=lambda: {
        name: AgentConfig(**copy.deepcopy(raw)) for name, raw in BUILTIN_AGENTS.items()})
    approval: ApprovalConfig = field(default_factory=ApprovalConfig)
    budgets: BudgetConfig = field(default_factory=BudgetConfig)
    layouts: dict[str, LayoutConfig] = field(default_factory=dict)
    keys: dict[str, str] = field(default_factory=dict)
    worktrees: WorktreeConfig = field(default_factory=WorktreeConfig)
    notify: NotifyConfig = field(default_factory=NotifyConfig)
    review: ReviewConfig = field(default_factory=ReviewConfig)
    ui: UiConfig = field(default_factory=UiConfig)
    sandbox: SandboxConfig = field(default_factory=SandboxConfig)
    workers: WorkersConfig = field(default_factory=WorkersConfig)

    def model(self, name: str) -> ModelConfig:
        return self.models.get(name) or self.models["default"]

    def agent(self, name: str) -> AgentConfig:
        try:
            return self.agents[name]
        except KeyError:
            known = ", ".join(sorted(self.agents)) or "none"
            raise ConfigError(f"unknown agent {name!r} (configured agents: {known})") from None


def default_model() -> str:
    return os.environ.get("COCKPIT_MODEL", "anthropic/claude-sonnet-4-5")


def _builtin_defaults() -> dict[str, Any]:
    """What every cockpit has before any file is read: one model and the `BUILTIN_AGENTS`.

    (The same as `Config()`; as raw TOML so user files merge into it key by key.)
    """
    return {"models": {"default": {"model": default_model()}}, "agents": copy.deepcopy(BUILTIN_AGENTS)}


# ---------------------------------------------------------------------------------------------
# Paths


def user_config_path() -> Path:
    return xdg_config_home() / "cockpit" / "config.toml"


def cockpit_home() -> Path:
    """Where the database, worktrees, logs and the server socket live."""
    explicit = os.environ.get("COCKPIT_HOME")
    if explicit:
        return Path(explicit)
    data = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data) / "cockpit"


# ---------------------------------------------------------------------------------------------
# Loading


@dataclass
class RepoFile:
    """What became of a repository's `.cockpit.toml` when its config was loaded."""

    path: Path
    digest: str  # of the file's bytes; "" when there is none
    trusted: bool
    ignored: list[str]  # keys left out because the file is not trusted


def load_config(repo: Path | None = None, *, user_file: Path | None = None, base: Config | None = None,
                trust: Any = None) -> Config:
    """Read the user's config and overlay the repository's `.cockpit.toml` on it (only its
    harmless keys until the person trusts that file: `config_gate.py`)."""
    return load_config_report(repo, user_file=user_file, base=base, trust=trust)[0]


def load_config_report(repo: Path | None = None, *, user_file: Path | None = None, base: Config | None = None,
                       trust: Any = None) -> tuple[Config, RepoFile | None]:
    """`load_config`, plus what happened to the repository's file.

    `base`: a Config to overlay instead of the user's file (an engine opened with one);
    `trust`: the `TrustStore` to ask (default: the person's own).
    """
    if base is None:
        merged = _builtin_defaults()
        source: Path | str = user_file or user_config_path()
        if Path(source).is_file():
            raw = _read_toml(Path(source))
            _check_file(raw, Path(source))  # each file on its own: errors name the file with the mistake
            _deep_merge(merged, raw)
        base = _build(Config, merged, source, "")
    if repo is None:
        return base, None
    from cockpit.trust import REPO_FILE, TrustStore, file_digest

    path = Path(repo) / REPO_FILE
    digest = file_digest(path)
    if not digest:
        return base, None
    raw = _read_toml(path)
    _check_file(raw, path)
    trusted = (trust or TrustStore()).is_trusted(repo, digest)
    ignored: list[str] = []
    if not trusted:
        from cockpit.config_gate import gate

        raw, ignored = gate(raw, base)
    merged = dataclasses.asdict(base)
    _deep_merge(merged, raw)
    return _build(Config, merged, path, ""), RepoFile(path, digest, trusted, ignored)


def untrusted_line(report: RepoFile) -> str:
    """One line: which keys an untrusted repository file wanted, and how to trust it."""
    repo = report.path.parent
    return (f"{report.path} is not trusted, so these keys were ignored: {', '.join(report.ignored)}; "
            f"if you trust this repository's config, run `cockpit trust {repo}`")


def parse_config_text(text: str, source: str = "<config>") -> Config:
    """Build a Config from TOML text (used by tests and by `cockpit config check`)."""
    merged = _builtin_defaults()
    raw = _parse_toml(text, source)
    _build(Config, raw, source, "")
    _deep_merge(merged, raw)
    return _build(Config, merged, source, "")


def config_from_dict(raw: dict[str, Any]) -> Config:
    """A Config again from `dataclasses.asdict(config)` (what an agent worker is handed)."""
    return _build(Config, raw, "<engine>", "")


def _check_file(raw: dict[str, Any], path: Path) -> None:
    """Validate one file's TOML on its own; a mistake names the file, the line and the key."""
    try:
        _build(Config, raw, path, "")
    except ConfigError as exc:
        message = str(exc)
        found = re.match(rf"{re.escape(str(path))}: (?:unknown )?key '([^']+)'", message)
        line = _line_of(path, found.group(1)) if found else None
        if line is None:
            raise
        raise ConfigError(message.replace(f"{path}: ", f"{path}: line {line}: ", 1)) from None


def _line_of(path: Path, dotted: str) -> int | None:
    """The line of `path` that sets key `dotted` (`a.b.c`, `a.b[2]`), as far as a plain reading of
    table headers and `key = value` lines can tell; None when it cannot."""
    wanted = [part.strip('"') for part in re.sub(r"\[\d+\]$", "", dotted).split(".")]
    table: list[str] = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return None
    for number, text in enumerate(lines, 1):
        text = text.strip()
        header = re.fullmatch(r"\[\[?\s*([^\]]+?)\s*\]?\]", text)
        if header:
            table = [p.strip().strip('"') for p in header.group(1).split(".")]
            if table == wanted:
                return number
            continue
        assigned = re.match(r"([A-Za-z0-9_.\"' -]+?)\s*=", text)
        if assigned:
            key = table + [p.strip().strip('"').strip("'") for p in assigned.group(1).split(".")]
            if key == wanted[:len(key)]:
                return number
    return None


def _read_toml(path: Path) -> dict[str, Any]:
    from cockpit.trust import read_config_bytes

    try:
        text = (read_config_bytes(path) or b"").decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: cannot read config: {exc}") from None
    return _parse_toml(text, str(path))


def _parse_toml(text: str, source: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        match = re.search(r"\(at line (\d+), column (\d+)\)", message)
        where = f"line {match.group(1)}" if match else "somewhere"
        reason = re.sub(r"\s*\(at line \d+, column \d+\)", "", message)
        raise ConfigError(f"{source}: {where}: invalid TOML: {reason}") from None


def _deep_merge(base: dict[str, Any], over: dict[str, Any]) -> None:
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _deep_merge(base[key], value)
        else:
            base[key] = value


def _build(cls: type, raw: Any, source: Path | str, prefix: str) -> Any:
    """Build dataclass `cls` from a TOML table, raising ConfigError on the first mistake."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: key '{prefix}' must be a table, got {_describe(raw)}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    names = set(fields)
    values: dict[str, Any] = {}
    for key, value in raw.items():
        dotted = f"{prefix}.{key}" if prefix else key
        if key not in names:
            expected = ", ".join(sorted(names))
            raise ConfigError(f"{source}: unknown key '{dotted}' (expected one of: {expected})")
        values[key] = _convert(hints[key], value, source, dotted)
        _check_range(fields[key], values[key], source, dotted)
    return cls(**values)


def _check_range(spec: dataclasses.Field[Any], value: Any, source: Path | str, key: str) -> None:
    if spec.metadata.get("inside"):
        for i, item in enumerate(value):
            if outside_reason(item):
                raise ConfigError(f"{source}: key '{key}[{i}]' must be a path inside the repository "
                                  f"(relative, no '..'), got {item!r}")
    if spec.metadata.get("url") and value and not re.fullmatch(r"https?://[^\s/]+(/\S*)?", value):
        raise ConfigError(f"{source}: key '{key}' must be an http:// or https:// URL")
    bounds = spec.metadata.get("range")
    if bounds is None:
        return
    low, high = bounds
    if value < low or (high is not None and value > high):
        allowed = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise ConfigError(f"{source}: key '{key}' must be {allowed}, got {value!r}")


def _convert(hint: Any, value: Any, source: Path | str, key: str) -> Any:
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, source, key)
    if origin is Literal:
        allowed = typing.get_args(hint)
        if value not in allowed:
            choices = ", ".join(repr(a) for a in allowed)
            raise ConfigError(f"{source}: key '{key}' must be one of {choices}, got {value!r}")
        return value
    if origin is dict:
        _, value_hint = typing.get_args(hint)
        if not isinstance(value, dict):
            raise ConfigError(f"{source}: key '{key}' must be a table, got {_describe(value)}")
        return {k: _convert(value_hint, v, source, f"{key}.{k}") for k, v in value.items()}
    if origin is list:
        (item_hint,) = typing.get_args(hint)
        if not isinstance(value, list):
            raise ConfigError(f"{source}: key '{key}' must be a list, got {_describe(value)}")
        return [_convert(item_hint, v, source, f"{key}[{i}]") for i, v in enumerate(value)]
    if origin in (typing.Union, types.UnionType):
        raise TypeError(f"config schema uses a union at {key}; not supported")
    return _scalar(hint, value, source, key)


_SCALAR_NAMES = {str: "a string", int: "an integer", float: "a number", bool: "true or false"}


def _scalar(hint: type, value: Any, source: Path | str, key: str) -> Any:
    ok = isinstance(value, hint) and not (hint is int and isinstance(value, bool))
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint is float and isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{source}: key '{key}' must be a finite number, got {value!r}")
    if not ok:
        raise ConfigError(
            f"{source}: key '{key}' must be {_SCALAR_NAMES[hint]}, got {_describe(value)}"
        )
    return value


def outside_reason(pattern: str) -> str:
    """Why a copy/symlink pattern could reach outside the repository ("" when it cannot)."""
    path = PurePosixPath(pattern.replace("\\", "/"))
    if path.is_absolute() or pattern.startswith("~"):
        return "is not relative to the repository"
    if ".." in path.parts:
        return "climbs out with '..'"
    return ""


def _describe(value: Any) -> str:
    names = {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
             list: "a list", dict: "a table"}
    return f"{names.get(type(value), type(value).__name__)} ({value!r})"[:80]
