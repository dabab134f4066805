"""The router: instruction line → targets + text, for every target form."""

from __future__ import annotations

import pytest

from cockpit.core.model import Session
from cockpit.core.router import route, split_targets
from cockpit.core.states import State
from cockpit.errors import RouteError


def _session(number: int, id: str, name: str, state: State = State.IDLE, tags=()) -> Session:
    return Session(
        id=id, number=number, name=name, slug=name.lower(), repo_id=1, branch=f"cockpit/{name.lower()}",
        base_ref="main", base_commit="0" * 40, worktree=f"/tmp/wt/{name}", tags=list(tags), state=state,
    )


@pytest.fixture
def sessions() -> list[Session]:
    return [
        _session(1, "k3f9a", "api", State.RUNNING, ["backend"]),
        _session(2, "k7b2c", "ui", State.WAITING, ["frontend"]),
        _session(3, "x1y2z", "Docs", State.IDLE, ["Backend", "docs"]),
        _session(4, "m9n8p", "flaky", State.ERROR),
        _session(5, "a0a0a", "old", State.ARCHIVED, ["backend"]),
        _session(6, "b1b1b", "done", State.MERGED),
        _session(7, "c2c2c", "spare", State.IDLE),
    ]


def _numbers(line: str, sessions, **kwargs) -> tuple[list[int], str]:
    routed = route(line, sessions, **kwargs)
    return [s.number for s in routed.targets], routed.text


@pytest.mark.parametrize(
    ("line", "numbers", "text"),
    [
        ("@3 write the docs", [3], "write the docs"),
        ("@api add an endpoint", [1], "add an endpoint"),
        ("@API add an endpoint", [1], "add an endpoint"),  # names are case-insensitive
        ("@docs fix typos", [3], "fix typos"),  # by slug/name
        ("@x1y2z go", [3], "go"),  # by full id
        ("@m9 go", [4], "go"),  # by unique id prefix
        ("#backend run the tests", [1, 3], "run the tests"),  # open sessions with the tag, any case
        ("#FRONTEND go", [2], "go"),
        ("@all pull main", [1, 2, 3, 4, 7], "pull main"),  # archived and merged are left out
        ("@waiting explain", [2], "explain"),
        ("@idle start", [3, 7], "start"),
        ("@error retry", [4], "retry"),
        ("@running stop", [1], "stop"),
        ("@1 @ui #docs  do  it ", [1, 2, 3], "do  it"),  # order kept, duplicates once, inner spaces kept
        ("@1 @1 once", [1], "once"),
        ("@5 wake up", [5], "wake up"),  # a closed session can still be named directly
        ("@3 ask @4 about #backend", [3], "ask @4 about #backend"),  # mid-text @ and # are text
        ("@3\ttabbed", [3], "tabbed"),
    ],
)
def test_target_forms(sessions, line, numbers, text):
    assert _numbers(line, sessions) == (numbers, text)


def test_marked_group(sessions):
    assert _numbers("@marked go", sessions, marked=["x1y2z", "k3f9a"]) == ([1, 3], "go")


def test_no_prefix_goes_to_the_marked_set_else_the_focused_pane(sessions):
    assert _numbers("fix it", sessions, focused="k7b2c") == ([2], "fix it")
    assert _numbers("fix it", sessions, focused="k7b2c", marked=["c2c2c", "m9n8p"]) == ([4, 7], "fix it")
    # Marks of sessions that no longer exist are ignored.
    assert _numbers("fix it", sessions, focused="k7b2c", marked=["gone1"]) == ([2], "fix it")
    assert _numbers("mail me at a@b.c", sessions, focused="k3f9a") == ([1], "mail me at a@b.c")
    assert _numbers("@ is not a target", sessions, focused="k3f9a") == ([1], "@ is not a target")


def test_no_prefix_and_nothing_focused_or_marked(sessions):
    with pytest.raises(RouteError) as caught:
        route("fix it", sessions)
    assert str(caught.value) == "no target: focus a pane, mark panes, or start with @name / #tag"
    with pytest.raises(RouteError):
        route("fix it", sessions, focused="gone1")


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("@nobody do x", "unknown target: @nobody"),
        ("@nobody #ghost @3 do x", "unknown targets: @nobody #ghost"),
        ("@99 do x", "unknown target: @99"),
        ("@k do x", "unknown target: @k"),  # prefix shared by two ids: ambiguous, so refused
        ("@marked do x", "nobody to send to: no session matches @marked right now"),  # nothing marked
        ("#old do x", "unknown target: #old"),  # only an archived session carries it
    ],
)
def test_unknown_targets_are_named(sessions, line, message):
    with pytest.raises(RouteError) as caught:
        route(line, sessions)
    assert str(caught.value) == message


@pytest.mark.parametrize("line", ["@3", "@3   ", "", "   ", "#backend @1"])
def test_empty_text_is_refused(sessions, line):
    with pytest.raises(RouteError) as caught:
        route(line, sessions, focused="k3f9a")
    assert str(caught.value) == "nothing to send: type an instruction after the targets"


def test_split_targets():
    assert split_targets("  @a #b hello @c ") == (["@a", "#b"], "hello @c")
    assert split_targets("hello") == ([], "hello")
    assert split_targets("@a\n#b\nmulti\nline") == (["@a", "#b"], "multi\nline")


def test_a_group_that_names_nobody_right_now_says_so(sessions):
    with pytest.raises(RouteError) as caught:
        route("@waiting @error retry", [s for s in sessions if s.state.value not in ("waiting", "error")])
    assert str(caught.value) == "nobody to send to: no session matches @waiting @error right now"


# -- repository scopes -------------------------------------------------------------------------


@pytest.fixture
def two_repos() -> list[Session]:
    """Sessions of repositories `api` and `web`: a name (`fix`) and a tag exist in both."""
    made = [
        _session(1, "aaaa1", "fix", State.IDLE, ["ui"]), _session(2, "aaaa2", "docs", State.WAITING),
        _session(3, "bbbb1", "fix", State.RUNNING, ["ui"]), _session(4, "bbbb2", "old", State.ARCHIVED),
    ]
    for session in made:
        session.repo = "api" if session.id.startswith("a") else "web"
    return made


@pytest.mark.parametrize(
    ("line", "numbers"),
    [
        ("@api: go", [1, 2]),  # every open session of the repository
        ("@WEB: go", [3]),  # any case; archived ones are left out
        ("@web:fix go", [3]),  # a name inside the repository only
        ("@api:#ui go", [1]),  # a tag inside the repository only
        ("@api:waiting go", [2]),  # a group inside the repository only
        ("@web:3 go", [3]),
        ("@api: @web:fix go", [1, 2, 3]),
    ],
)
def test_repository_scoped_targets(line, numbers, two_repos):
    assert _numbers(line, two_repos) == (numbers, "go")


def test_repository_scopes_that_name_nobody_are_refused(two_repos):
    with pytest.raises(RouteError, match="unknown target: @mobile:"):
        route("@mobile: go", two_repos)
    with pytest.raises(RouteError, match="unknown target: @api:3"):
        route("@api:3 go", two_repos)  # session 3 is web's
    with pytest.raises(RouteError, match="nobody to send to: no session matches @web:waiting"):
        route("@web:waiting go", two_repos)
