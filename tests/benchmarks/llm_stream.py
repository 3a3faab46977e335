"""Benchmark W5: an LLM reply read with ``async for``, the raw SDK against our LLM agent.

Run it by hand from the repository root (it is not a test; pytest never collects it)::

    python tests/benchmarks/llm_stream.py                       # every API and workload, 3 reps
    python tests/benchmarks/llm_stream.py --quick               # small sizes, 1 rep
    python tests/benchmarks/llm_stream.py --apis chat --workloads single many --reps 5
    python tests/benchmarks/llm_stream.py --concurrency 200     # the "many" workload at 200
    python tests/benchmarks/llm_stream.py --workloads single paced --rounds 20  # TTFT to 0.1 ms
    python tests/benchmarks/llm_stream.py --workloads paced --paced-calls 1     # one paced call

A minimal server (asyncio, in a process of its own on 127.0.0.1) serves the OpenAI Chat
Completions, Responses and Anthropic Messages wire formats, Gemini's
``streamGenerateContent`` (SSE) and Bedrock's ConverseStream (AWS's binary event-stream
framing, the fake LLM server's encoder; the signature is not checked) (``WIRES``). The
APIs (``--apis``): ``chat``, ``responses``, ``anthropic`` (the OpenAI and Anthropic SDKs),
``gemini`` (google-genai, through an httpx2 transport as the agent's own client),
``bedrock`` (aiobotocore) and ``ollama`` (the OpenAI SDK's Chat Completions at
``/ollama/v1``, with ``ollama_agent``). A reply's events are encoded once per (wire
format, size) and written with one ``write`` (a burst), or one event every 20 ms (paced).
Workloads:

* ``single``: 1 call of 2,000 tokens, sent at once;
* ``many``: N concurrent calls (1,000 by default) of 200 tokens each, sent at once;
* ``paced``: 10 concurrent calls (``--paced-calls``) of 50 tokens, 20 ms between tokens (as
  a real model).

Variants, each run in a fresh Python process, interleaved, ``--reps`` times:

* ``httpx``: a bare ``httpx2`` reader (``aiter_bytes``, counting the events), to show that
  the server is not the bottleneck (it should be several times faster than the SDK);
* ``raw``: ``async for`` over the SDK's stream (``stream=True``), the text of each delta;
* ``ours``: ``async for`` over our LLM agent's reply (``openai_agent``, ``anthropic_agent``,
  ``gemini_agent``, ``bedrock_agent``, ``ollama_agent``, with the same client), then over
  each message's tokens.

Per variant: wall and CPU time of the run, time to first token of each call (from the start
of the run: every call starts then) as the median and 99th percentile over the calls, and
RSS growth (VmHWM at the end less VmRSS before the run). Every variant checks the text it read.
With ``--rounds R`` each process runs the workload R times in a row (after one warm-up call
per connection a round uses) and the TTFT figures are over the calls of every round, each
from its round's start: one run's spread is too wide to resolve a millisecond.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote

APIS = ("chat", "responses", "anthropic", "gemini", "bedrock", "ollama")
"""The APIs: the first three OpenAI's and Anthropic's own, then Google's (google-genai),
Bedrock's ConverseStream (aiobotocore) and Ollama's Chat Completions (the OpenAI SDK)."""
WORKLOADS = ("single", "many", "paced")
VARIANTS = ("httpx", "raw", "ours", "before", "watched", "turns", "sliced")
"""``before``: ``ours`` with the library found in ``--before DIR`` (e.g. an export of an
older commit: ``git archive <commit> miniagents | tar -x -C DIR``); ``watched``: ``ours``
with the context's default ``llm_stall_timeout`` (``ours`` runs without the stall watch);
``turns``: ``ours`` with ``MiniAgents(llm_parse_in_turn=True)`` (a burst parsed call by call);
``sliced``: ``ours`` with the Anthropic SDK's network reads cut into pieces of
``SLICE`` bytes before its SSE decoder splits them into lines (an experiment on what a call
parked after its first token holds, see the benchmarks README; not a library feature)."""
WARM_TOKENS = 3
"""The size of the warm-up calls' replies (a call's model names its size)."""
WARM_MODEL = f"w5-{WARM_TOKENS}-0"
"""The model of the warm-up calls: ``WARM_TOKENS`` tokens, sent at once."""
SLICE = 2048
"""The size of a network read's pieces in the variant ``sliced``."""
TIMEOUT = 600.0
"""Seconds a call may take, connecting included (the SDK's own 5 s to connect is too short
for 1,000 connections at once on a loaded machine)."""


def token(index: int) -> str:
    """The text of token ``index``."""
    return f" t{index}"


def sizes(workload: str, concurrency: int) -> tuple[int, int, float]:
    """(calls, tokens per call, seconds between tokens) of a workload.

    ``concurrency`` is the number of calls of ``many`` and of ``paced`` (``main`` passes
    ``--concurrency`` for the one and ``--paced-calls`` for the other); ``single`` has one.
    """
    if workload == "single":
        return 1, 2000, 0.0
    if workload == "many":
        return concurrency, 200, 0.0
    return concurrency, 50, 0.02


# -- the server --------------------------------------------------------------------------------


def _sse(event: str | None, data: dict[str, Any] | str) -> bytes:
    body = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {body}\n\n".encode()


Events = tuple[list[bytes], list[bytes], list[bytes]]
"""A reply's events: (before the tokens, one per token, after the tokens)."""


def _chat_events(texts: list[str]) -> Events:
    tokens = len(texts)

    def chunk(delta: dict[str, Any], finish: str | None, **extra: Any) -> bytes:
        return _sse(
            None,
            {
                "id": "chatcmpl-w5",
                "object": "chat.completion.chunk",
                "created": 1,
                "model": "w5",
                "choices": [
                    {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
                ],
                **extra,
            },
        )

    usage = {"prompt_tokens": 5, "completion_tokens": tokens, "total_tokens": tokens + 5}
    final = _sse(
        None,
        {
            "id": "chatcmpl-w5",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": "w5",
            "choices": [],
            "usage": usage,
        },
    )
    return (
        [chunk({"role": "assistant", "content": ""}, None)],
        [chunk({"content": text}, None) for text in texts],
        [chunk({}, "stop"), final, _sse(None, "[DONE]")],
    )


def _responses_events(texts: list[str]) -> Events:
    tokens = len(texts)
    numbers = iter(range(10**9))

    def event(kind: str, **fields: Any) -> bytes:
        return _sse(kind, {"type": kind, "sequence_number": next(numbers), **fields})

    def response(status: str, output: list[Any], usage: dict[str, Any] | None) -> Any:
        return {
            "id": "resp_w5",
            "object": "response",
            "created_at": 1,
            "status": status,
            "error": None,
            "incomplete_details": None,
            "instructions": None,
            "model": "w5",
            "output": output,
            "parallel_tool_calls": True,
            "tool_choice": "auto",
            "tools": [],
            "usage": usage,
            "metadata": {},
        }

    where = {"item_id": "msg_w5", "output_index": 0}
    message = {"id": "msg_w5", "type": "message", "status": "in_progress", "role": "assistant"}
    text = "".join(texts)
    part = {"type": "output_text", "text": text, "annotations": []}
    done = {**message, "status": "completed", "content": [part]}
    totals: dict[str, Any] = {
        "input_tokens": 5,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": tokens + 5,
    }
    head = [
        event("response.created", response=response("in_progress", [], None)),
        event("response.in_progress", response=response("in_progress", [], None)),
        event("response.output_item.added", output_index=0, item={**message, "content": []}),
        event(
            "response.content_part.added",
            **where,
            content_index=0,
            part={"type": "output_text", "text": "", "annotations": []},
        ),
    ]
    body = [
        event("response.output_text.delta", **where, content_index=0, delta=text_)
        for text_ in texts
    ]
    tail = [
        event("response.output_text.done", **where, content_index=0, text=text),
        event("response.content_part.done", **where, content_index=0, part=part),
        event("response.output_item.done", output_index=0, item=done),
        event("response.completed", response=response("completed", [done], totals)),
    ]
    return head, body, tail


def _anthropic_events(texts: list[str]) -> Events:
    tokens = len(texts)
    start: dict[str, Any] = {
        "id": "msg_w5",
        "type": "message",
        "role": "assistant",
        "model": "w5",
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {"input_tokens": 5, "output_tokens": 1},
    }
    return (
        [
            _sse("message_start", {"type": "message_start", "message": start}),
            _sse(
                "content_block_start",
                {
                    "type": "content_block_start",
                    "index": 0,
                    "content_block": {"type": "text", "text": ""},
                },
            ),
        ],
        [
            _sse(
                "content_block_delta",
                {
                    "type": "content_block_delta",
                    "index": 0,
                    "delta": {"type": "text_delta", "text": text_},
                },
            )
            for text_ in texts
        ],
        [
            _sse("content_block_stop", {"type": "content_block_stop", "index": 0}),
            _sse(
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                    "usage": {"output_tokens": tokens},
                },
            ),
            _sse("message_stop", {"type": "message_stop"}),
        ],
    )


def _gemini_events(texts: list[str]) -> Events:
    def chunk(text: str, final: bool = False) -> bytes:
        candidate: dict[str, Any] = {"content": {"parts": [{"text": text}], "role": "model"}}
        usage: dict[str, Any] = {"promptTokenCount": 5, "totalTokenCount": 5}
        if final:
            candidate["finishReason"] = "STOP"
            usage = {**usage, "candidatesTokenCount": tokens, "totalTokenCount": tokens + 5}
        body = {
            "candidates": [{**candidate, "index": 0}],
            "usageMetadata": usage,
            "modelVersion": "w5",
            "responseId": "w5",
        }
        return _sse(None, body)

    tokens = len(texts)
    return [], [chunk(text) for text in texts], [chunk("", final=True)]


def _bedrock_events(texts: list[str]) -> Events:
    # AWS's binary event-stream framing, as the fake LLM server of miniagents.testing has it
    from miniagents.testing._eventstream import stream_message

    def event(kind: str, payload: dict[str, Any]) -> bytes:
        return stream_message("event", kind, json.dumps(payload, separators=(",", ":")).encode())

    usage = {"inputTokens": 5, "outputTokens": len(texts), "totalTokens": len(texts) + 5}
    return (
        [event("messageStart", {"role": "assistant"})],
        [
            event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": text}})
            for text in texts
        ],
        [
            event("contentBlockStop", {"contentBlockIndex": 0}),
            event("messageStop", {"stopReason": "end_turn"}),
            event("metadata", {"usage": usage, "metrics": {"latencyMs": 1}}),
        ],
    )


WIRES: dict[str, Callable[[list[str]], Events]] = {
    "chat": _chat_events,
    "responses": _responses_events,
    "anthropic": _anthropic_events,
    "gemini": _gemini_events,
    "bedrock": _bedrock_events,
}
"""Each wire format the server speaks: its reply's events for the given tokens."""


def wire_events(wire: str, tokens: int) -> Events:
    """The events of a reply in a wire format of ``WIRES``: before, per token, after."""
    return WIRES[wire]([token(i) for i in range(tokens)])


def _chunked(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


EVENT_STREAM = b"application/vnd.amazon.eventstream"
"""The content type of Bedrock's streams (AWS's binary framing)."""


def route(path: str, request: dict[str, Any]) -> tuple[str, str]:
    """A request's wire format (of ``WIRES``) and model: in its path for Gemini and Bedrock."""
    path = path.partition("?")[0]
    if path.endswith(":streamGenerateContent"):  # /v1beta/models/{model}:streamGenerateContent
        return "gemini", path.rpartition(":")[0].rpartition("/models/")[2]
    if path.endswith("/converse-stream"):  # /model/{model}/converse-stream
        return "bedrock", unquote(path.rpartition("/")[0].rpartition("/model/")[2])
    model = str(request.get("model", "w5-1-0"))
    if path.endswith("/chat/completions"):  # OpenAI's and the compatible servers' own
        return "chat", model
    return ("responses" if path.endswith("/responses") else "anthropic"), model


async def _serve_connection(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    cache: dict[tuple[str, int], Events],
) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            path = lines[0].split(" ")[1]
            length = 0
            for line in lines[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value)
            request = json.loads(await reader.readexactly(length)) if length else {}
            wire, model = route(path, request)
            # the model names the size: "w5-<tokens>-<milliseconds between tokens>"
            _, tokens_, delay_ = model.split("-")
            tokens, delay = int(tokens_), int(delay_) / 1000
            events = cache.get((wire, tokens))
            if events is None:
                events = cache[(wire, tokens)] = wire_events(wire, tokens)
            before, body, after = events
            kind = (
                b"application/vnd.amazon.eventstream" if wire == "bedrock" else b"text/event-stream"
            )
            writer.write(
                b"HTTP/1.1 200 OK\r\ncontent-type: %s\r\n"
                b"transfer-encoding: chunked\r\nrequest-id: w5\r\nx-request-id: w5\r\n\r\n" % kind
            )
            if not delay:
                writer.write(_chunked(b"".join([*before, *body, *after])))
            else:
                writer.write(_chunked(b"".join(before)))
                await writer.drain()
                for event in body:
                    await asyncio.sleep(delay)
                    writer.write(_chunked(event))
                    await writer.drain()
                writer.write(_chunked(b"".join(after)))
            writer.write(b"0\r\n\r\n")
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


async def _server_main() -> None:
    # every workload's replies made before the port is given: otherwise the first call of
    # each size (the first rep's first variant, raw) waited for them (6 to 9 ms at 2,000
    # tokens, which was all of raw's first-rep "single" TTFT up to the eighth pass)
    cache = {
        (wire, tokens): wire_events(wire, tokens)
        for wire in WIRES
        for tokens in {sizes(workload, 1)[1] for workload in WORKLOADS} | {WARM_TOKENS}
    }
    server = await asyncio.start_server(
        lambda r, w: _serve_connection(r, w, cache), "127.0.0.1", 0, backlog=4096
    )
    port = server.sockets[0].getsockname()[1]
    print(port, flush=True)
    async with server:
        await server.serve_forever()


# -- the clients -------------------------------------------------------------------------------


def rss_kb(field: str) -> int:
    """A memory figure of this process from /proc/self/status (VmRSS, VmHWM), in kB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise LookupError(field)


def _client(api: str, base: str) -> Any:
    """The SDK client of an API (``open_client`` for every API: Bedrock's is opened)."""
    if api == "anthropic":
        import anthropic

        return anthropic.AsyncAnthropic(
            base_url=base, api_key="bench", max_retries=0, timeout=TIMEOUT
        )
    if api == "gemini":
        import httpx2
        from google import genai

        # the SDK sends through httpx given a transport (as the agent's own client does);
        # the transport's pool takes every call of "many" at once, as the others' do
        limits = httpx2.Limits(max_connections=2000, max_keepalive_connections=2000)
        options = genai.types.HttpOptions(
            base_url=base,
            timeout=round(TIMEOUT * 1000),
            async_client_args={"transport": httpx2.AsyncHTTPTransport(limits=limits)},
        )
        return genai.Client(api_key="bench", http_options=options)
    import openai

    path = "/ollama/v1" if api == "ollama" else "/v1"
    return openai.AsyncOpenAI(base_url=base + path, api_key="bench", max_retries=0, timeout=TIMEOUT)


async def open_client(api: str, base: str) -> Any:
    """The SDK client of an API, opened (aiobotocore's is an async context manager)."""
    if api != "bedrock":
        return _client(api, base)
    from aiobotocore.config import AioConfig
    from aiobotocore.session import get_session

    config = AioConfig(
        max_pool_connections=2000,
        connect_timeout=TIMEOUT,
        read_timeout=TIMEOUT,
        retries={"max_attempts": 0, "mode": "standard"},
    )
    client = get_session().create_client(
        "bedrock-runtime",
        region_name="us-east-1",
        endpoint_url=base,
        aws_access_key_id="bench",
        aws_secret_access_key="bench",
        config=config,
    )
    return await client.__aenter__()


async def close_client(api: str, client: Any) -> None:
    """Close a client of ``open_client``."""
    if api == "bedrock":
        await client.__aexit__(None, None, None)
    elif api == "gemini":
        await client.aio.aclose()
    else:
        await client.close()


def our_agent(api: str, model: str, client: Any) -> Any:
    """Our LLM agent of an API on ``client``."""
    if api == "anthropic":
        from miniagents.ext.llm.anthropic import anthropic_agent

        return anthropic_agent.fork(model=model, async_client=client)
    if api == "gemini":
        from miniagents.ext.llm.gemini import gemini_agent

        return gemini_agent.fork(model=model, async_client=client)
    if api == "bedrock":
        from miniagents.ext.llm.bedrock import bedrock_agent

        return bedrock_agent.fork(model=model, async_client=client)
    if api == "ollama":
        from miniagents.ext.llm.compatible import ollama_agent

        return ollama_agent.fork(model=model, async_client=client)
    from miniagents.ext.llm.openai import openai_agent

    api_name: Literal["chat_completions", "responses"] = (
        "chat_completions" if api == "chat" else "responses"
    )
    return openai_agent.fork(model=model, async_client=client, api=api_name)


PROMPT = "Say something."
"""What every call asks."""


async def _raw_call(client: Any, api: str, model: str, first: Callable[[], None]) -> str:
    parts: list[str] = []
    messages = [{"role": "user", "content": PROMPT}]
    if api in ("chat", "ollama"):
        stream = await client.chat.completions.create(model=model, messages=messages, stream=True)
        async with stream:
            async for chunk in stream:
                if chunk.choices and chunk.choices[0].delta.content:
                    if not parts:
                        first()
                    parts.append(chunk.choices[0].delta.content)
    elif api == "responses":
        stream = await client.responses.create(model=model, input=PROMPT, stream=True)
        async with stream:
            async for event in stream:
                if event.type == "response.output_text.delta" and event.delta:
                    if not parts:
                        first()
                    parts.append(event.delta)
    elif api == "gemini":
        chunks = await client.aio.models.generate_content_stream(model=model, contents=PROMPT)
        async for chunk in chunks:
            text = chunk.text
            if text:
                if not parts:
                    first()
                parts.append(text)
    elif api == "bedrock":
        response = await client.converse_stream(
            modelId=model, messages=[{"role": "user", "content": [{"text": PROMPT}]}]
        )
        async for event in response["stream"]:
            delta = event.get("contentBlockDelta")
            if delta is not None and delta["delta"].get("text"):
                if not parts:
                    first()
                parts.append(delta["delta"]["text"])
    else:
        stream = await client.messages.create(
            model=model, messages=messages, max_tokens=4096, stream=True
        )
        async with stream:
            async for event in stream:
                if (
                    event.type == "content_block_delta"
                    and event.delta.type == "text_delta"
                    and event.delta.text
                ):
                    if not parts:
                        first()
                    parts.append(event.delta.text)
    return "".join(parts)


async def ours_call(agent: Any, first: Callable[[], None]) -> str:
    """Read our LLM agent's reply with ``async for``; call ``first`` at its first token."""
    parts: list[str] = []
    async for message in agent.inquire(PROMPT):
        async for piece in message:
            if not parts:
                first()
            parts.append(piece)
    return "".join(parts)


@contextlib.contextmanager
def served() -> Iterator[str]:
    """This script's SSE server started in a process of its own; its base URL."""
    server = subprocess.Popen(
        [sys.executable, __file__, "--server"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert server.stdout is not None
        yield f"http://127.0.0.1:{server.stdout.readline().strip()}"
    finally:
        server.terminate()
        server.wait()


HTTP_PATHS = {
    "chat": "/v1/chat/completions",
    "ollama": "/ollama/v1/chat/completions",
    "responses": "/v1/responses",
    "anthropic": "/v1/messages",
    "gemini": "/v1beta/models/{model}:streamGenerateContent?alt=sse",
    "bedrock": "/model/{model}/converse-stream",
}
"""The path of each API's streamed request (Gemini and Bedrock name the model in it)."""


async def _httpx_call(
    client: Any, api: str, base: str, model: str, first: Callable[[], None]
) -> str:
    path = HTTP_PATHS[api].format(model=model)
    end = b":event-type" if api == "bedrock" else b"\n\n"  # (in each event: its count)
    seen = 0
    async with client.stream("POST", base + path, json={"model": model, "stream": True}) as reply:
        async for data in reply.aiter_bytes():
            if not seen:
                first()
            seen += data.count(end)
    return str(seen)


async def run_variant(
    variant: str, api: str, workload: str, concurrency: int, base: str, rounds: int = 1
) -> dict[str, float]:
    """Run one variant ``rounds`` times in a row (in this fresh process); return its figures.

    Each round starts its calls at once; a call's time to first token is counted from the
    start of its round, and the median and p99 are over the calls of every round.
    """
    calls, tokens, delay = sizes(workload, concurrency)
    model = f"w5-{tokens}-{round(delay * 1000)}"
    expected = "".join(token(i) for i in range(tokens))
    firsts: list[float] = []
    if variant == "httpx":
        import httpx2

        client: Any = httpx2.AsyncClient(
            timeout=TIMEOUT, limits=httpx2.Limits(max_connections=2000)
        )
    else:
        client = await open_client(api, base)
    agent: Any = None
    contexts: Any = contextlib.nullcontext()
    if variant in ("ours", "watched", "turns"):
        from miniagents import MiniAgents

        if variant == "watched":
            contexts = MiniAgents()
        else:
            contexts = MiniAgents(llm_stall_timeout=None, llm_parse_in_turn=variant == "turns")
        agent = our_agent(api, model, client)

    warm = WARM_MODEL
    agents: dict[str, Any] = {
        name: agent if agent is None else agent.fork(model=name) for name in (model, warm)
    }

    async def call(model: str, first: Callable[[], None]) -> str:
        if variant == "raw":
            return await _raw_call(client, api, model, first)
        if variant == "httpx":
            return await _httpx_call(client, api, base, model, first)
        return await ours_call(agents[model], first)

    async with contexts:  # ours: one context for every round, as a long-lived app has
        # warm-up calls of a few tokens, one per connection a round uses (not timed): the SDK
        # builds its models and the pool its connections on first use, not what is measured
        await asyncio.gather(*(call(warm, lambda: None) for _ in range(calls)))
        before = rss_kb("VmRSS")
        cpu_started = time.process_time()
        started = time.perf_counter()
        texts: list[str] = []
        for _ in range(rounds):
            round_started = time.perf_counter()
            round_firsts = [0.0] * calls

            def marker(index: int, times: list[float], since: float) -> Callable[[], None]:
                def first() -> None:
                    times[index] = time.perf_counter() - since

                return first

            texts += await asyncio.gather(
                *(call(model, marker(i, round_firsts, round_started)) for i in range(calls))
            )
            firsts += round_firsts
        wall = time.perf_counter() - started
        cpu = time.process_time() - cpu_started
    await close_client(api, client) if variant != "httpx" else await client.aclose()
    if variant != "httpx" and any(text != expected for text in texts):
        raise AssertionError(f"{variant} read a wrong text")
    if variant == "httpx" and any(int(text) < tokens for text in texts):
        raise AssertionError("httpx read too few events")
    ordered = sorted(firsts)
    return {
        "wall": wall,
        "cpu": cpu,
        "ttft_median": statistics.median(ordered),
        "ttft_p99": ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))],
        "rss_growth_mb": (rss_kb("VmHWM") - before) / 1000,
    }


def child(
    variant: str, api: str, workload: str, concurrency: int, base: str, rounds: int
) -> dict[str, float]:
    """Import what a variant needs before the clock starts, then run it."""
    import anthropic  # noqa: F401
    import httpx2  # noqa: F401
    import openai  # noqa: F401

    if api == "gemini":
        import google.genai  # noqa: F401
    if api == "bedrock":
        import aiobotocore.session  # noqa: F401
    if variant == "sliced":
        _slice_anthropic_reads(SLICE)
        variant = "ours"
    if variant in ("ours", "watched", "turns"):
        our_agent(api, "w5", None)  # its module imported
    return asyncio.run(run_variant(variant, api, workload, concurrency, base, rounds))


def _slice_anthropic_reads(size: int) -> None:
    """Have the Anthropic SDK's SSE decoder see each network read in pieces of ``size`` bytes.

    Its ``_aiter_chunks`` splits a whole read into lines at once, and a call parked after its
    first token keeps that list until it resumes; with pieces, it keeps one piece's lines.
    """
    from anthropic import _streaming

    split = _streaming.SSEDecoder._aiter_chunks

    async def pieces(reads: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        async for read in reads:
            for start in range(0, len(read), size):
                yield read[start : start + size]

    def sliced(self: Any, reads: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        return split(self, pieces(reads))

    _streaming.SSEDecoder._aiter_chunks = sliced  # type: ignore[method-assign,assignment]


# -- the driver --------------------------------------------------------------------------------


def _run_child(
    variant: str,
    api: str,
    workload: str,
    concurrency: int,
    base: str,
    before: str | None,
    rounds: int,
) -> dict[str, float]:
    library = str(Path(__file__).resolve().parents[2])
    if variant == "before":
        if before is None:
            raise SystemExit("the variant 'before' needs --before DIR")
        library, variant = before, "ours"
    env = {**os.environ, "PYTHONPATH": library}
    arguments = ["--child", variant, api, workload, str(concurrency), base, str(rounds)]
    done = subprocess.run(
        [sys.executable, __file__, *arguments],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=3600,
    )
    if done.returncode:
        raise RuntimeError(f"{variant} {api} {workload} failed:\n{done.stderr[-3000:]}")
    figures: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


def _fmt_ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}"


def main(argv: Sequence[str] | None = None) -> None:
    """Run the benchmark and print its tables."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--apis", nargs="+", choices=APIS, default=list(APIS))
    parser.add_argument("--workloads", nargs="+", choices=WORKLOADS, default=list(WORKLOADS))
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS[:3]))
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=1000)
    parser.add_argument(
        "--paced-calls", type=int, default=10, help="the concurrent calls of 'paced'"
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="run each workload this many times in a row in each process (TTFT over all)",
    )
    parser.add_argument("--quick", action="store_true", help="concurrency 100, 1 rep")
    parser.add_argument("--before", help="the library of the variant 'before' (a folder)")
    args = parser.parse_args(argv)
    if args.quick:
        args.concurrency, args.reps = 100, 1
    with served() as base:
        for workload in args.workloads:
            calls = args.paced_calls if workload == "paced" else args.concurrency
            for api in args.apis:
                results: dict[str, list[dict[str, float]]] = {v: [] for v in args.variants}
                for _ in range(args.reps):
                    for variant in args.variants:  # interleaved
                        results[variant].append(
                            _run_child(
                                variant,
                                api,
                                workload,
                                calls,
                                base,
                                args.before,
                                args.rounds,
                            )
                        )
                _report(api, workload, calls, results)


def _report(
    api: str, workload: str, concurrency: int, results: dict[str, list[dict[str, float]]]
) -> None:
    calls, tokens, delay = sizes(workload, concurrency)
    print(f"\n### {api}, {workload}: {calls} call(s) x {tokens} tokens, {delay * 1000:g} ms apart")
    print("| variant | wall ms | CPU ms | TTFT median ms | TTFT p99 ms | RSS growth MB |")
    print("|---|---|---|---|---|---|")
    for variant, runs in results.items():
        cells = []
        for key in ("wall", "cpu", "ttft_median", "ttft_p99", "rss_growth_mb"):
            values = [run[key] for run in runs]
            shown = (lambda v: f"{v:.1f}") if key == "rss_growth_mb" else _fmt_ms
            cells.append(" / ".join(shown(value) for value in values))
        print(f"| {variant} | " + " | ".join(cells) + " |")
    for mine in ("ours", "before", "watched", "turns", "sliced"):
        if "raw" not in results or mine not in results:
            continue
        print(f"\n{mine} / raw per rep (same rep, interleaved):")
        for key in ("wall", "cpu", "ttft_median", "ttft_p99", "rss_growth_mb"):
            ratios = [
                o[key] / r[key] if r[key] else float("nan")
                for o, r in zip(results[mine], results["raw"], strict=True)
            ]
            print(f"  {key}: " + " / ".join(f"{ratio:.2f}x" for ratio in ratios))
        deltas = [
            (o["ttft_median"] - r["ttft_median"]) * 1000
            for o, r in zip(results[mine], results["raw"], strict=True)
        ]
        print(f"  ttft_median {mine} - raw: " + " / ".join(f"{d:+.2f} ms" for d in deltas))
    sys.stdout.flush()


if __name__ == "__main__":
    if sys.argv[1:2] == ["--server"]:
        asyncio.run(_server_main())
    elif sys.argv[1:2] == ["--child"]:
        variant_, api_, workload_, concurrency_, base_, rounds_ = sys.argv[2:8]
        print(json.dumps(child(variant_, api_, workload_, int(concurrency_), base_, int(rounds_))))
    else:
        main()
