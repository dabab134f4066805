"""The two ways `stream_completion` reads an OpenAI-compatible server, against the scripted one.

`openai/…` models with an `api_base` go through the cockpit's direct client (`openai_wire`,
chosen for its CPU per chunk: bench/llm_routes.py); every other model, or `route = "litellm"`,
through litellm. Each fault the scripted server can play must come out the same on both: the
same Completion, the same transient/fatal verdict, the same one-line message where the server
chose the words.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from cockpit.agents.llm_client import Completion, FatalLLMError, TransientLLMError, stream_completion, uses_openai_wire
from cockpit.agents.tools import tool_specs
from cockpit.config import ModelConfig
from cockpit.sim import SESSION_HEADER, ScriptedLLMServer

ROUTES = ["auto", "litellm"]  # "auto" on an openai/ model with an api_base: the direct client
USER = [{"role": "user", "content": "fix the bug"}]


@pytest.fixture
async def server() -> AsyncIterator[ScriptedLLMServer]:
    async with ScriptedLLMServer() as srv:
        yield srv


class Streamed:
    """What one call delivered along the way."""

    def __init__(self) -> None:
        self.text: list[str] = []
        self.thoughts: list[str] = []


async def call(url: str, route: str, scenario: dict[str, Any], server: ScriptedLLMServer | None = None,
               **model: Any) -> tuple[Completion, Streamed]:
    if server is not None:
        server.set_scenario(scenario, session="s1")
    config = ModelConfig(model="openai/cockpit-sim", api_base=url, route=route, **{"stall_timeout_s": 5, **model})
    streamed = Streamed()
    completion = await stream_completion(config, USER, tool_specs(), on_text=streamed.text.append,
                                         on_thought=streamed.thoughts.append, headers={SESSION_HEADER: "s1"})
    return completion, streamed


async def failure(server: ScriptedLLMServer, route: str, step: dict[str, Any], **model: Any) -> Exception:
    with pytest.raises((TransientLLMError, FatalLLMError)) as raised:
        await call(server.url, route, {"steps": [step]}, server, **model)
    return raised.value


# -- which route ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("model", "api_base", "route", "direct"), [
    ("openai/qwen2.5-coder", "http://127.0.0.1:8000/v1", "auto", True),
    ("openai/qwen2.5-coder", "http://127.0.0.1:8000/v1", "litellm", False),  # forced
    ("openai/qwen2.5-coder", "", "auto", False),  # no server of one's own: OpenAI itself, via litellm
    ("openai/gpt-4o", "https://gateway.example/v1", "auto", False),  # litellm rewrites OpenAI's models' requests
    ("anthropic/claude-sonnet-4-5", "", "auto", False),
    ("anthropic/claude-sonnet-4-5", "https://proxy.example", "auto", False),
    ("gemini/gemini-2.5-pro", "", "auto", False),
    ("hosted_vllm/qwen", "http://127.0.0.1:8000/v1", "auto", False),
    ("ollama_chat/llama3", "http://127.0.0.1:11434", "auto", False),
])
def test_only_openai_models_on_a_server_of_ones_own_take_the_direct_client(model, api_base, route, direct):
    assert uses_openai_wire(ModelConfig(model=model, api_base=api_base, route=route)) is direct


def test_a_route_other_than_auto_or_litellm_is_one_clear_config_error(tmp_path):
    from cockpit.config import load_config
    from cockpit.errors import ConfigError

    config = tmp_path / "config.toml"
    config.write_text('[models.default]\nroute = "fast"\n')
    with pytest.raises(ConfigError, match=r"key 'models.default.route' must be one of 'auto', 'litellm', got 'fast'"):
        load_config(user_file=config)


# -- the same answer either way ------------------------------------------------------------------

async def test_both_routes_give_the_same_completion_for_a_tool_call_turn(monkeypatch):
    monkeypatch.setenv("COCKPIT_TEST_KEY", "sk-route-test")
    edit = {"path": "calc.py", "search": "    return a - b\n", "replace": "    return a + b\n"}
    scenario = {"steps": [{"thought": "The sign is wrong.", "text": "Fixing the sign.", "tool_calls": [
        {"name": "edit_file", "arguments": edit},
        {"name": "run_shell", "arguments": {"command": "pytest -q"}},
    ]}]}
    results = {}
    for route in ROUTES:
        async with ScriptedLLMServer() as server:  # each from request 1, so the call ids match too
            completion, streamed = await call(server.url, route, scenario, server, api_key_env="COCKPIT_TEST_KEY")
            results[route] = completion, streamed.text, streamed.thoughts, server.requests[-1]
            headers = server.request_headers[-1]
            assert headers["Authorization"] == "Bearer sk-route-test"
            assert headers[SESSION_HEADER] == "s1"
    completion, text, thoughts, request = results["auto"]
    assert results["litellm"] == results["auto"]
    assert completion.text == "Fixing the sign." == "".join(text) and len(text) == 3  # streamed word by word
    assert "".join(thoughts) == "The sign is wrong."
    assert [(c.id, c.name) for c in completion.tool_calls] == [("call_sim1_0", "edit_file"),
                                                              ("call_sim1_1", "run_shell")]
    assert completion.tool_calls[0].arguments == '{"path": "calc.py", "search": "    return a - b\\n", ' \
                                                 '"replace": "    return a + b\\n"}'
    assert completion.finish_reason == "tool_calls"
    assert completion.usage.prompt_tokens > 0 and completion.usage.completion_tokens > 0
    assert completion.usage.cost_known is False  # litellm has no price for the simulated model
    assert request["model"] == "cockpit-sim" and request["tools"] == tool_specs()
    assert request["stream_options"] == {"include_usage": True} and request["max_tokens"] == 4096


@pytest.mark.parametrize("route", ROUTES)
async def test_without_a_key_a_local_server_still_gets_one(server, route, monkeypatch):
    await call(server.url, route, {"steps": [{"text": "hi"}]}, server)
    assert server.request_headers[-1]["Authorization"] == "Bearer not-needed"


@pytest.mark.parametrize("route", ROUTES)
async def test_malformed_tool_arguments_reach_the_agent_as_sent(server, route):
    completion, _ = await call(server.url, route, {"steps": [
        {"tool_calls": [{"name": "read_file", "arguments": {"path": "README.md"}}], "malformed_tool_args": True}]},
        server)
    assert [(c.name, c.arguments) for c in completion.tool_calls] == [("read_file", '{"path": "README.md"')]


# -- faults ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize(("step", "kind", "message"), [
    ({"status": 429, "retry_after": 0, "error_message": "slow down"}, TransientLLMError, "RateLimitError 429: slow down"),
    ({"status": 500}, TransientLLMError, "InternalServerError 500: simulated error 500"),
    ({"status": 503, "error_message": "overloaded"}, TransientLLMError, "ServiceUnavailableError 503: overloaded"),
    ({"status": 400, "error_message": "bad thing"}, FatalLLMError, "BadRequestError 400: bad thing"),
    ({"status": 401}, FatalLLMError, "AuthenticationError 401: simulated error 401"),
    ({"status": 404}, FatalLLMError, "NotFoundError 404: simulated error 404"),
])
async def test_error_statuses_are_classified_in_the_servers_words(server, route, step, kind, message):
    error = await failure(server, route, step)
    assert type(error) is kind and str(error) == message


@pytest.mark.parametrize("route", ROUTES)
async def test_a_stall_is_transient(server, route):
    error = await failure(server, route, {"stall": 3, "text": "too late"}, stall_timeout_s=0.3)
    assert isinstance(error, TransientLLMError) and "Timeout" in str(error)


@pytest.mark.parametrize("route", ROUTES)
async def test_a_malformed_chunk_is_transient(server, route):
    error = await failure(server, route, {"text": "one two three four", "malformed_chunk": 2})
    assert isinstance(error, TransientLLMError) and "Expecting value" in str(error)


@pytest.mark.parametrize("route", ROUTES)
async def test_a_disconnect_is_transient_after_the_text_so_far(server, route):
    server.set_scenario({"steps": [{"text": "one two three four five", "disconnect": 3}]}, session="s1")
    streamed = Streamed()
    config = ModelConfig(model="openai/cockpit-sim", api_base=server.url, route=route, stall_timeout_s=5)
    with pytest.raises(TransientLLMError, match="Connection|connection"):
        await stream_completion(config, USER, [], on_text=streamed.text.append, on_thought=streamed.thoughts.append,
                                headers={SESSION_HEADER: "s1"})
    assert "".join(streamed.text) == "one two three"


@pytest.mark.parametrize("route", ROUTES)
async def test_a_server_that_is_not_there_is_transient(route, unused_tcp_port):
    config = ModelConfig(model="openai/cockpit-sim", api_base=f"http://127.0.0.1:{unused_tcp_port}/v1", route=route)
    with pytest.raises(TransientLLMError):
        await stream_completion(config, USER, [], on_text=print, on_thought=print, headers={})
