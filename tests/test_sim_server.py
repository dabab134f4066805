"""The scripted model server, driven through litellm's real HTTP and streaming path."""

from __future__ import annotations

import json
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
import litellm  # imported after the environment variable above: it reads it at import

from cockpit.sim import SESSION_HEADER, TIMESTAMP_FIELD, Scenario, ScenarioError, ScriptedLLMServer, builtin_names
from cockpit.sim.facts import Facts
from cockpit.sim.scenario import Cursor

litellm.suppress_debug_info = True

USER = [{"role": "user", "content": "fix the bug"}]


@pytest.fixture
async def server() -> AsyncIterator[ScriptedLLMServer]:
    async with ScriptedLLMServer() as srv:
        yield srv


async def stream(url: str, messages: list[dict[str, Any]] = USER, session: str | None = None,
                 **kwargs: Any) -> list[Any]:
    """All chunks of one streamed completion."""
    headers = {SESSION_HEADER: session} if session else {}
    response = await litellm.acompletion(
        model="openai/sim", api_base=url, api_key="sk-test", messages=messages, stream=True,
        stream_options={"include_usage": True}, num_retries=0, extra_headers=headers, **kwargs)
    return [chunk async for chunk in response]


def text_of(chunks: list[Any]) -> str:
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


def tool_calls_of(chunks: list[Any]) -> dict[int, dict[str, str]]:
    calls: dict[int, dict[str, str]] = {}
    for chunk in chunks:
        for call in (chunk.choices[0].delta.tool_calls or []) if chunk.choices else []:
            draft = calls.setdefault(call.index, {"id": "", "name": "", "arguments": "", "pieces": 0})
            draft["id"] = call.id or draft["id"]
            draft["name"] += call.function.name or ""
            draft["arguments"] += call.function.arguments or ""
            draft["pieces"] += bool(call.function.arguments)
    return calls


def usage_of(chunks: list[Any]) -> Any:
    return next(c.usage for c in reversed(chunks) if getattr(c, "usage", None))


def tool_result(text: str) -> list[dict[str, Any]]:
    """A conversation whose last message is a tool result."""
    return [*USER,
            {"role": "assistant", "content": None, "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "run_shell", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": text}]


# -- streaming through litellm --------------------------------------------------------------------

async def test_streamed_text_is_assembled_exactly_with_usage_and_timestamps(server: ScriptedLLMServer):
    text = "Hello,  world!\nLine two:\tcafé ünïcode — done.  "
    server.set_scenario({"steps": [{"text": text, "prompt_tokens": 11, "completion_tokens": 7}]})

    chunks = await stream(server.url)

    assert text_of(chunks) == text
    assert sum(bool(c.choices and c.choices[0].delta.content) for c in chunks) >= 8  # word by word
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["stop"]
    usage = usage_of(chunks)
    assert (usage.prompt_tokens, usage.completion_tokens) == (11, 7)
    # The send time survives litellm's stream wrapper on every chunk but the usage one it rebuilds.
    stamps = [getattr(c, TIMESTAMP_FIELD) for c in chunks if c.choices]
    assert all(isinstance(s, float) and abs(s - time.time()) < 5 for s in stamps)
    assert stamps == sorted(stamps)
    assert server.requests[-1]["messages"] == USER


async def test_streamed_tool_calls_arrive_with_ids_and_split_arguments(server: ScriptedLLMServer):
    edit = {"path": "calc.py", "search": "    return a - b\n", "replace": "    return a + b\n"}
    server.set_scenario({"steps": [{"text": "Fixing.", "tool_calls": [
        {"name": "edit_file", "arguments": edit},
        {"name": "run_shell", "arguments": '{"command": "pytest -q"}'},
    ]}]})

    chunks = await stream(server.url)

    calls = tool_calls_of(chunks)
    assert [calls[i]["name"] for i in sorted(calls)] == ["edit_file", "run_shell"]
    assert json.loads(calls[0]["arguments"]) == edit
    assert json.loads(calls[1]["arguments"]) == {"command": "pytest -q"}
    assert calls[0]["pieces"] > 3  # the JSON really is split across chunks
    assert calls[0]["id"] and calls[1]["id"] and calls[0]["id"] != calls[1]["id"]
    assert text_of(chunks) == "Fixing."
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["tool_calls"]
    assert usage_of(chunks).completion_tokens > 0


async def test_non_streaming_returns_the_whole_message(server: ScriptedLLMServer):
    call = {"name": "list_files", "arguments": {"path": "."}}
    server.set_scenario({"steps": [{"text": "All done.", "tool_calls": [call]}]})

    response = await litellm.acompletion(model="openai/sim", api_base=server.url, api_key="sk-test",
                                         messages=USER, num_retries=0)

    message = response.choices[0].message
    assert message.content == "All done."
    assert json.loads(message.tool_calls[0].function.arguments) == {"path": "."}
    assert response.choices[0].finish_reason == "tool_calls"
    assert response.usage.total_tokens == response.usage.prompt_tokens + response.usage.completion_tokens > 0


async def test_stream_is_paced_at_the_scripted_rate(server: ScriptedLLMServer):
    server.set_scenario({"tokens_per_s": 40, "steps": [{"text": " ".join(["word"] * 21)}]})

    chunks = await stream(server.url)

    stamps = [getattr(c, TIMESTAMP_FIELD) for c in chunks if c.choices and c.choices[0].delta.content]
    assert len(stamps) == 21
    assert stamps[-1] - stamps[0] == pytest.approx(20 / 40, abs=0.08)


# -- faults ---------------------------------------------------------------------------------------

async def test_429_then_success(server: ScriptedLLMServer):
    server.set_scenario({"steps": [{"status": 429, "retry_after": 2}, {"text": "ok now"}]})

    with pytest.raises(litellm.RateLimitError):
        await stream(server.url)
    assert text_of(await stream(server.url)) == "ok now"
    assert len(server.requests) == 2  # neither litellm nor the OpenAI client retried behind our back


async def test_retry_after_header_and_error_body():
    scenario = {"steps": [{"status": 429, "retry_after": 1.5, "error_message": "slow down"}]}
    async with ScriptedLLMServer(scenario) as srv, aiohttp.ClientSession() as http, \
            http.post(f"{srv.url}/chat/completions", json={"messages": USER}) as response:
        assert response.status == 429
        assert response.headers["Retry-After"] == "2"
        assert response.headers["retry-after-ms"] == "1500"
        assert (await response.json())["error"] == {
            "message": "slow down", "type": "rate_limit_error", "param": None, "code": "429"}


async def test_500_repeats_times_then_moves_on(server: ScriptedLLMServer):
    server.set_scenario({"steps": [{"status": 500, "times": 2}, {"text": "recovered"}]})

    for _ in range(2):
        with pytest.raises(litellm.InternalServerError):
            await stream(server.url)
    assert text_of(await stream(server.url)) == "recovered"


async def test_disconnect_mid_stream_raises_after_some_text(server: ScriptedLLMServer):
    server.set_scenario({"steps": [{"text": "one two three four five six", "disconnect": 3}]})
    received: list[str] = []

    # litellm reports any error after the first chunk as a MidStreamFallbackError, a subclass of
    # ServiceUnavailableError (so retryable), wrapping the underlying connection error.
    with pytest.raises(litellm.ServiceUnavailableError, match="Connection error"):
        response = await litellm.acompletion(model="openai/sim", api_base=server.url, api_key="sk-test",
                                             messages=USER, stream=True, num_retries=0)
        async for chunk in response:
            received.append(chunk.choices[0].delta.content or "")
    assert "".join(received) == "one two three"


async def test_malformed_chunk_surfaces_as_an_error(server: ScriptedLLMServer):
    server.set_scenario({"steps": [{"text": "one two three four", "malformed_chunk": 2}]})

    with pytest.raises(litellm.ServiceUnavailableError, match="Expecting value"):
        await stream(server.url)


async def test_stall_times_out_on_the_client(server: ScriptedLLMServer):
    server.set_scenario({"steps": [{"stall": 2, "text": "too late"}, {"text": "fine"}]})
    started = time.monotonic()

    with pytest.raises(litellm.Timeout):
        await stream(server.url, timeout=0.5)
    assert time.monotonic() - started < 1.8
    assert text_of(await stream(server.url)) == "fine"


@pytest.mark.parametrize("fault", [{"disconnect": 0}, {"malformed_chunk": 0}])
async def test_non_streaming_faults_raise(server: ScriptedLLMServer, fault: dict[str, int]):
    server.set_scenario({"steps": [{"text": "never seen", **fault}]})

    with pytest.raises(litellm.InternalServerError):
        await litellm.acompletion(model="openai/sim", api_base=server.url, api_key="sk-test", messages=USER,
                                  num_retries=0)


async def test_malformed_tool_arguments_are_not_json(server: ScriptedLLMServer):
    server.set_scenario({"steps": [{"tool_calls": [{"name": "read_file", "arguments": {"path": "a.py"}}],
                                    "malformed_tool_args": True}]})

    arguments = tool_calls_of(await stream(server.url))[0]["arguments"]
    assert arguments.startswith('{"path"')
    with pytest.raises(json.JSONDecodeError):
        json.loads(arguments)


# -- scripting ------------------------------------------------------------------------------------

async def test_sessions_keep_separate_cursors_when_interleaved(server: ScriptedLLMServer):
    server.set_scenario({"final": "the end", "steps": [{"text": "first"}, {"text": "second"}]})

    seen = [text_of(await stream(server.url, session=s)) for s in ("a", "b", "a", "b", "a")]

    assert seen == ["first", "first", "second", "second", "the end"]


async def test_without_header_conversations_are_told_apart_by_their_opening(server: ScriptedLLMServer):
    server.set_scenario({"steps": [{"text": "first"}, {"text": "second"}]})
    other = [{"role": "system", "content": "another agent"}, *USER]

    assert text_of(await stream(server.url, USER)) == "first"
    assert text_of(await stream(server.url, other)) == "first"
    assert text_of(await stream(server.url, [*USER, {"role": "assistant", "content": "first"},
                                             {"role": "user", "content": "go on"}])) == "second"


async def test_when_branches_on_the_tool_result_and_fills_placeholders(server: ScriptedLLMServer):
    server.set_scenario({"steps": [
        {"when": {"last_role": "tool", "contains": "FAILED"}, "text": "Still red: {last_tool_result_tail}"},
        {"when": {"last_role": "tool", "contains": "PASSED"}, "text": "Green: {last_tool_result_tail} {unknown}"},
    ]})

    assert text_of(await stream(server.url, tool_result("collected 3\n\n3 PASSED in 0.1s\n"), session="a")) \
        == "Green: 3 PASSED in 0.1s {unknown}"
    assert text_of(await stream(server.url, tool_result("1 FAILED, 2 passed"), session="b")) \
        == "Still red: 1 FAILED, 2 passed"
    # b's cursor moved past the FAILED step only; the PASSED step is still ahead of it.
    assert text_of(await stream(server.url, tool_result("3 PASSED"), session="b")) == "Green: 3 PASSED {unknown}"


async def test_per_session_scenario_overrides_the_default(server: ScriptedLLMServer):
    server.set_scenario({"steps": [{"text": "default"}]})
    server.set_scenario({"steps": [{"text": "special"}]}, session="vip")

    assert text_of(await stream(server.url, session="vip")) == "special"
    assert text_of(await stream(server.url, session="plain")) == "default"


async def test_exhausted_script_ends_with_final_text_and_no_tool_calls(server: ScriptedLLMServer):
    server.set_scenario({"final": "Nothing left.", "steps": [{"tool_calls": [{"name": "list_files"}]}]})

    assert tool_calls_of(await stream(server.url))[0]["name"] == "list_files"
    for _ in range(2):
        chunks = await stream(server.url)
        assert text_of(chunks) == "Nothing left." and not tool_calls_of(chunks)


def test_cursor_skips_unmatched_steps_and_falls_back_to_final():
    scenario = Scenario.from_dict({"final": "bye", "steps": [
        {"when": {"last_user_contains": "deploy"}, "text": "deploying"},
        {"text": "any", "times": 2},
    ]})
    deploy = Facts.of({"messages": [{"role": "user", "content": [{"type": "text", "text": "please deploy"}]}]}, {})
    other = Facts.of({"messages": USER}, {})

    branching = Cursor(scenario)
    assert [branching.next_step(f).text for f in (deploy, other)] == ["deploying", "any"]
    cursor = Cursor(scenario)
    # The first request skips the deploy step for good; "any" answers twice, then the script is over.
    assert [cursor.next_step(f).text for f in (other, deploy, other)] == ["any", "any", "bye"]


# -- loading and the HTTP surface -----------------------------------------------------------------

@pytest.mark.parametrize("name", builtin_names())
def test_builtin_scenarios_load(name: str):
    scenario = Scenario.builtin(name)
    assert scenario.name == name and scenario.steps


def test_demo_uses_the_agent_tools():
    names = {call.name for step in Scenario.builtin("demo").steps for call in step.tool_calls}
    assert {"list_files", "edit_file", "run_shell"} <= names


def test_scenario_files_load_and_errors_name_the_key(tmp_path: Path):
    toml = tmp_path / "mine.toml"
    toml.write_text('[[steps]]\nstatus = 503\ntimes = 2\n\n[[steps]]\ntext = "hi"\n', encoding="utf-8")
    as_json = tmp_path / "mine.json"
    as_json.write_text(json.dumps({"steps": [{"status": 503, "times": 2}, {"text": "hi"}]}), encoding="utf-8")
    assert Scenario.load(toml) == Scenario.load(as_json)
    assert Scenario.load(toml).steps[0].times == 2

    for bad, message in [
        ({"steps": [{"txt": "typo"}]}, "step 1: unknown key 'txt'"),
        ({"steps": [{"times": "2"}]}, "step 1: 'times' must be int"),
        ({"steps": [{"stall": True}]}, "step 1: 'stall' must be int or float"),
        ({"steps": [{"status": 200}]}, "HTTP error status"),
        ({"steps": [{"when": {"role": "tool"}}]}, "step 1 when: unknown key 'role'"),
        ({"steps": [{"malformed_tool_args": True}]}, "needs 'tool_calls'"),
    ]:
        with pytest.raises(ScenarioError, match=message):
            Scenario.from_dict(bad)
    with pytest.raises(ScenarioError, match="no built-in scenario"):
        Scenario.builtin("nope")


async def test_models_endpoint_and_bad_request(server: ScriptedLLMServer):
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{server.url}/models") as response:
            assert (await response.json())["data"][0]["object"] == "model"
        async with http.post(f"{server.url}/chat/completions", data=b"not json") as response:
            assert response.status == 400
            assert (await response.json())["error"]["type"] == "invalid_request_error"


async def test_run_in_thread_serves_another_loop():
    srv = ScriptedLLMServer({"steps": [{"text": "from a thread"}]})
    url, stop = srv.run_in_thread()
    try:
        assert text_of(await stream(url)) == "from a thread"
    finally:
        stop()
    async with aiohttp.ClientSession() as http:
        with pytest.raises(aiohttp.ClientConnectionError):
            await http.get(f"{url}/models")


def test_the_docs_agent_says_a_denied_write_was_denied() -> None:
    """Issue #12.11: scripted agents follow what happened; a denied write is not reported as done."""
    def after_tool(result: str) -> str:
        cursor = Cursor(Scenario.builtin("docs"))
        facts = [Facts.of({"messages": USER}, {})]
        for text in ("def add(a, b): ...", result):
            facts.append(Facts.of({"messages": [*USER, {"role": "tool", "tool_call_id": "1", "content": text}]}, {}))
        steps = [cursor.next_step(f) for f in facts]
        return facts[-1].fill(steps[-1].text)

    assert after_tool("denied by the person: not now") == (
        "I was not allowed to write `docs/usage.md` (denied by the person: not now), so there is no usage guide yet.")
    assert after_tool("created docs/usage.md").startswith("Done: `docs/usage.md` shows both functions")
