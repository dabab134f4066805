"""CPU per streamed chunk of each way the built-in agent can read an OpenAI-compatible server.

The scripted model server runs in its own process (so its CPU is not counted) and streams a
long answer at a fixed rate, or a one-word answer when asked for a short one. Each route reads
`streams` answers at once in this process, long ones then short ones, and is charged this
process's CPU time (`time.process_time`). A chunk costs the difference between the two over
the difference in chunks, so what a call costs once (connecting, building the request, the
cost lookup) is not smeared over its chunks; that is reported per call. Figures are medians of
a few rounds, the routes taking turns within each round so a noisy neighbour hurts them alike.
Routes:
- `raw`: a bare aiohttp client, `json.loads` of each SSE line (the floor);
- `openai_wire`: `stream_completion` on an `openai/` model with an `api_base` (route "auto"),
  i.e. the cockpit's own client, `cockpit.agents.openai_wire`;
- `litellm_<provider>`: `stream_completion` forced onto litellm (route "litellm") with the model
  string `<provider>/bench`, for each litellm provider that speaks to an OpenAI-compatible
  server: `openai` and `custom_openai` (the OpenAI SDK), `hosted_vllm` (litellm's own HTTP
  handler), `lm_studio`, `llamafile`, `litellm_proxy`, `xinference`, and `aiohttp_openai`
  (which cannot stream from such a server: reported as not streaming). `--quick` measures
raw, openai_wire and one route per litellm code path (openai, hosted_vllm).
Every request carries the agent's tool list, as the agent's do.

Figures: `cpu_ms_per_chunk_<route>`, `cpu_ms_per_call_<route>`, `ratio_vs_raw_<route>` (per
chunk), `cheapest_route` (by CPU per chunk, of the routes other than raw), `chosen_route` (the
one `stream_completion` takes for `openai/…` + api_base) and `streams_<route>` (false for a
route that could not stream).

Usage: python bench/llm_routes.py [--quick] [--json]
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
from _common import Report, median, parse_args, start_sim

from cockpit.agents.llm_client import litellm, stream_completion, uses_openai_wire
from cockpit.agents.tools import tool_specs
from cockpit.config import ModelConfig
from cockpit.sim import SESSION_HEADER

LITELLM_PROVIDERS = ("openai", "custom_openai", "hosted_vllm", "lm_studio", "llamafile", "litellm_proxy",
                     "xinference", "aiohttp_openai")
QUICK_PROVIDERS = ("openai", "hosted_vllm")  # the OpenAI SDK's path and litellm's own HTTP handler
SHORT = "short answer please"  # asks the scripted server for its one-word answer
#: One stream: reads the answer to `question` and returns how many text chunks it delivered.
Stream = Callable[[str, str], Awaitable[int]]


async def read_raw(url: str, question: str) -> int:
    body = {"model": "bench", "stream": True, "messages": [{"role": "user", "content": question}],
            "tools": tool_specs()}
    chunks = 0
    async with aiohttp.ClientSession() as http, \
            http.post(f"{url}/chat/completions", json=body, headers={SESSION_HEADER: question}) as resp:
        async for raw in resp.content:
            line = raw.strip()
            if line.startswith(b"data: {"):
                choices = json.loads(line[6:]).get("choices") or ()
                chunks += bool(choices and choices[0].get("delta", {}).get("content"))
    return chunks


def through_stream_completion(model: str, route: str) -> Stream:
    async def read(url: str, question: str) -> int:
        config = ModelConfig(model=model, api_base=url, route=route, max_output_tokens=100_000,  # type: ignore[arg-type]
                             stall_timeout_s=30)
        chunks = 0

        def on_text(_: str) -> None:
            nonlocal chunks
            chunks += 1

        await stream_completion(config, [{"role": "user", "content": question}], tool_specs(), on_text=on_text,
                                on_thought=lambda _: None, headers={SESSION_HEADER: f"{model} {question}"})
        return chunks

    return read


def routes(providers: tuple[str, ...]) -> dict[str, Stream]:
    found: dict[str, Stream] = {"raw": read_raw, "openai_wire": through_stream_completion("openai/bench", "auto")}
    found.update({f"litellm_{p}": through_stream_completion(f"{p}/bench", "litellm") for p in providers})
    return found


async def measure(read: Stream, url: str, streams: int, question: str) -> tuple[float, int]:
    """(CPU seconds, chunks) of `streams` concurrent answers."""
    cpu = time.process_time()
    counts = await asyncio.gather(*(read(url, f"{question} {i}") for i in range(streams)))
    return time.process_time() - cpu, sum(counts)


async def costs(read: Stream, url: str, streams: int) -> tuple[float, float]:
    """(CPU ms per chunk, CPU ms per call): long answers against short ones."""
    long_cpu, long_chunks = await measure(read, url, streams, "long answer please")
    short_cpu, short_chunks = await measure(read, url, streams, SHORT)
    return (long_cpu - short_cpu) * 1000 / (long_chunks - short_chunks), short_cpu * 1000 / streams


async def main() -> None:
    args = parse_args(__doc__.splitlines()[0])
    # about half a core for litellm's routes, so none falls behind the pace (then chunks arrive
    # in batches, which is cheaper per chunk and not what a live stream looks like)
    streams, rate, seconds, rounds = (8, 60, 2.0, 3) if args.quick else (16, 30, 6.0, 5)
    report = Report("llm_routes", args.quick)
    litellm()  # seconds to import: outside every measured window
    words = " ".join(f"tok{i}" for i in range(int(rate * seconds)))
    scenario = {"name": "bench", "tokens_per_s": rate, "final": words,
                "steps": [{"when": {"last_user_contains": SHORT}, "text": "ok", "times": 1_000_000}]}
    per_chunk: dict[str, list[float]] = {}
    per_call: dict[str, list[float]] = {}
    broken: dict[str, str] = {}
    with tempfile.TemporaryDirectory(dir=args.dir) as scratch:
        proc, url = start_sim(Path(scratch), scenario)
        try:
            print(f"{streams} streams × {rate} chunks/s × {seconds:g} s per route, {rounds} rounds, against {url}",
                  flush=True)
            candidates = routes(QUICK_PROVIDERS if args.quick else LITELLM_PROVIDERS)
            for name, read in list(candidates.items()):  # a first call imports provider code: not measured
                try:
                    await read(url, f"{SHORT} (warm-up)")
                except Exception as exc:  # a route that cannot stream from this server is reported, not fatal
                    broken[name] = " ".join(str(exc).split())[:160]
                    del candidates[name]
            for _ in range(rounds):
                for name, read in candidates.items():
                    chunk_ms, call_ms = await costs(read, url, streams)
                    per_chunk.setdefault(name, []).append(chunk_ms)
                    per_call.setdefault(name, []).append(call_ms)
        finally:
            proc.terminate()
            proc.wait()
    figures = {name: median(values) for name, values in per_chunk.items()}
    for name, value in figures.items():
        report.add(f"streams_{name}", True)
        report.add(f"cpu_ms_per_chunk_{name}", value, f"{name}: CPU per streamed chunk", "ms")
        report.add(f"cpu_ms_per_call_{name}", median(per_call[name]), f"{name}: CPU per call (a one-word answer)", "ms")
        report.add(f"ratio_vs_raw_{name}", value / figures["raw"], f"{name}: CPU per chunk ÷ raw client's", "×")
    for name, reason in broken.items():
        report.add(f"streams_{name}", False)
        print(f"  {name}: does not stream from an OpenAI-compatible server ({reason})", flush=True)
    report.add("cheapest_route", min((n for n in figures if n != "raw"), key=figures.__getitem__))
    chosen = "openai_wire" if uses_openai_wire(ModelConfig(model="openai/bench", api_base=url)) else "litellm_openai"
    report.add("chosen_route", chosen)
    print(f"  cheapest: {report.figures['cheapest_route']}; stream_completion takes: {chosen}", flush=True)
    report.finish(args.json)


if __name__ == "__main__":
    asyncio.run(main())
