"""The fake LLM server, driven by the real OpenAI and Anthropic SDK clients over local HTTP.

These tests also pin down what each SDK does on each failure mode (openai 3.52, anthropic
2.11): the library's LLM agents translate these outcomes, so a change here is a change they
must follow.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import inspect
import json
import math
import re
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import anthropic
import httpx2
import openai
import pytest
from anthropic.types import RawMessageStreamEvent
from openai.types.chat import ChatCompletionChunk

from miniagents.testing import (
    FAST_RETRY,
    FakeBatches,
    FakeLLMServer,
    FakeLLMServerError,
    FakeLLMServerTimeout,
    RecordedRequest,
    ToolCall,
    manual_time,
    virtual_time,
)
from tests.fakes.fixtures import THREAD_WAIT, WAIT, fake_llm  # noqa: F401
from tests.testing.raw_json import post_json

USER = "hi there you"

_T = TypeVar("_T")


@asynccontextmanager
async def openai_client(
    server: FakeLLMServer, max_retries: int = 2
) -> AsyncIterator[openai.AsyncOpenAI]:
    async with openai.AsyncOpenAI(
        base_url=server.openai_base_url, api_key="test", max_retries=max_retries
    ) as client:
        yield client


@asynccontextmanager
async def anthropic_client(
    server: FakeLLMServer, max_retries: int = 2
) -> AsyncIterator[anthropic.AsyncAnthropic]:
    async with anthropic.AsyncAnthropic(
        base_url=server.anthropic_base_url, api_key="test", max_retries=max_retries
    ) as client:
        yield client


async def openai_stream(
    server: FakeLLMServer, max_retries: int = 2
) -> tuple[list[ChatCompletionChunk], Exception | None]:
    """Stream a chat completion; return the chunks received and the error raised, if any."""
    chunks: list[ChatCompletionChunk] = []
    async with openai_client(server, max_retries) as client:
        try:
            stream = await client.chat.completions.create(
                model="gpt-test",
                messages=[{"role": "user", "content": USER}],
                stream=True,
                stream_options={"include_usage": True},
            )
            async for chunk in stream:
                chunks.append(chunk)
        except Exception as error:
            return chunks, error
    return chunks, None


async def anthropic_stream(
    server: FakeLLMServer, max_retries: int = 2
) -> tuple[list[RawMessageStreamEvent], Exception | None]:
    """Stream a message; return the events received and the error raised, if any."""
    events: list[RawMessageStreamEvent] = []
    async with anthropic_client(server, max_retries) as client:
        try:
            stream = await client.messages.create(
                model="claude-test",
                max_tokens=50,
                messages=[{"role": "user", "content": USER}],
                stream=True,
            )
            async for event in stream:
                events.append(event)
        except Exception as error:
            return events, error
    return events, None


def openai_text(chunks: list[ChatCompletionChunk]) -> str:
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


def anthropic_text(events: list[RawMessageStreamEvent]) -> str:
    return "".join(
        e.delta.text
        for e in events
        if e.type == "content_block_delta" and e.delta.type == "text_delta"
    )


async def openai_complete(server: FakeLLMServer, max_retries: int = 2) -> str | None:
    async with openai_client(server, max_retries) as client:
        completion = await client.chat.completions.create(
            model="gpt-test", messages=[{"role": "user", "content": USER}]
        )
    return completion.choices[0].message.content


async def anthropic_complete(server: FakeLLMServer, max_retries: int = 2) -> str:
    async with anthropic_client(server, max_retries) as client:
        message = await client.messages.create(
            model="claude-test", max_tokens=50, messages=[{"role": "user", "content": USER}]
        )
    return "".join(block.text for block in message.content if block.type == "text")


async def take(iterator: AsyncIterator[_T], count: int) -> list[_T]:
    return [await iterator.__anext__() for _ in range(count)]


async def time_out_reading(iterator: AsyncIterator[_T]) -> None:
    """A consumer giving up: the pending read is cancelled by a timeout."""
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(iterator.__anext__(), 0.1)


# -- successful replies --------------------------------------------------------------------


async def test_openai_not_streamed(fake_llm: FakeLLMServer) -> None:  # noqa: F811
    fake_llm.reply(tokens=["Hel", "lo"], finish_reason="length", usage=(5, 2))
    async with openai_client(fake_llm) as client:
        completion = await client.chat.completions.create(
            model="gpt-test",
            messages=[
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Say hello"},
            ],
            max_tokens=10,
            temperature=0.5,
        )
    assert completion.object == "chat.completion"
    assert completion.model == "gpt-test"
    assert completion.choices[0].message.role == "assistant"
    assert completion.choices[0].message.content == "Hello"
    assert completion.choices[0].finish_reason == "length"
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (5, 2)
    assert completion.usage.total_tokens == 7

    [request] = fake_llm.requests
    assert (request.method, request.path, request.provider) == (
        "POST",
        "/v1/chat/completions",
        "openai",
    )
    assert request.headers["authorization"] == "Bearer test"
    assert request.json == {
        "model": "gpt-test",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Say hello"},
        ],
        "max_tokens": 10,
        "temperature": 0.5,
    }
    assert not request.stream
    finished = fake_llm.wait_finished(0)
    assert (finished.status, finished.outcome, finished.client_disconnected) == (
        200,
        "complete",
        False,
    )


async def test_openai_streamed(fake_llm: FakeLLMServer) -> None:  # noqa: F811
    for include_usage in (True, False):
        fake_llm.reply(tokens=["Hel", "lo"], usage=(5, 2))
        async with openai_client(fake_llm) as client:
            stream = await client.chat.completions.create(
                model="gpt-test",
                messages=[{"role": "user", "content": "Say hello"}],
                max_tokens=10,
                temperature=0.0,
                stream=True,
                stream_options={"include_usage": include_usage},
            )
            chunks = [chunk async for chunk in stream]

        assert all(c.object == "chat.completion.chunk" and c.model == "gpt-test" for c in chunks)
        assert len({c.id for c in chunks}) == 1
        assert chunks[0].choices[0].delta.role == "assistant"
        assert [c.choices[0].delta.content for c in chunks[1:3]] == ["Hel", "lo"]
        assert openai_text(chunks) == "Hello"
        assert [c.choices[0].finish_reason for c in chunks if c.choices] == [
            None,
            None,
            None,
            "stop",
        ]
        if include_usage:
            usage_chunk = chunks[-1]
            assert usage_chunk.choices == []
            assert usage_chunk.usage is not None
            assert (usage_chunk.usage.prompt_tokens, usage_chunk.usage.completion_tokens) == (5, 2)
            assert all(c.usage is None for c in chunks[:-1])
            assert len(chunks) == 5
        else:
            assert all(c.usage is None for c in chunks)
            assert len(chunks) == 4

        request = fake_llm.wait_finished(len(fake_llm.requests) - 1)
        assert request.stream
        assert request.json["stream_options"] == {"include_usage": include_usage}
        assert (request.json["max_tokens"], request.json["temperature"]) == (10, 0.0)
        assert (request.outcome, request.client_disconnected) == ("complete", False)


async def test_anthropic_not_streamed(fake_llm: FakeLLMServer) -> None:  # noqa: F811
    fake_llm.reply(tokens=["Hel", "lo"], finish_reason="stop", usage=(5, 2))
    async with anthropic_client(fake_llm) as client:
        message = await client.messages.create(
            model="claude-test",
            max_tokens=10,
            system="Be brief.",
            messages=[{"role": "user", "content": "Say hello"}],
            # anthropic 2.11 has no `temperature` parameter any more: it goes in extra_body
            extra_body={"temperature": 0.5},
        )
    assert (message.type, message.role, message.model) == ("message", "assistant", "claude-test")
    assert [(b.type, getattr(b, "text", None)) for b in message.content] == [("text", "Hello")]
    assert message.stop_reason == "end_turn"  # "stop" is translated for Anthropic
    assert message.stop_sequence is None
    assert (message.usage.input_tokens, message.usage.output_tokens) == (5, 2)

    [request] = fake_llm.requests
    assert (request.path, request.provider) == ("/v1/messages", "anthropic")
    # anthropic 2.11 sends the api key as a bearer token, not as `x-api-key`
    assert request.headers["authorization"] == "Bearer test"
    assert "x-api-key" not in request.headers
    assert "anthropic-version" in request.headers
    assert request.json == {
        "model": "claude-test",
        "max_tokens": 10,
        "temperature": 0.5,
        "system": "Be brief.",
        "messages": [{"role": "user", "content": "Say hello"}],
    }


async def test_anthropic_streamed(fake_llm: FakeLLMServer) -> None:  # noqa: F811
    fake_llm.reply(tokens=["Hel", "lo"], finish_reason="max_tokens", usage=(5, 2))
    async with anthropic_client(fake_llm) as client:
        stream = await client.messages.create(
            model="claude-test",
            max_tokens=10,
            system=[{"type": "text", "text": "Be brief."}],
            messages=[{"role": "user", "content": "Say hello"}],
            stream=True,
            extra_body={"temperature": 0.0},
        )
        events = [event async for event in stream]

    # the SDK drops the `ping` event
    assert [e.type for e in events] == [
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    start, delta = events[0], events[5]
    assert start.type == "message_start"
    assert start.message.model == "claude-test"
    assert start.message.usage.input_tokens == 5
    assert anthropic_text(events) == "Hello"
    assert delta.type == "message_delta"
    assert delta.delta.stop_reason == "max_tokens"
    assert delta.usage.output_tokens == 2

    request = fake_llm.wait_finished(0)
    assert request.stream
    assert request.json["system"] == [{"type": "text", "text": "Be brief."}]
    assert (request.json["max_tokens"], request.json["temperature"]) == (10, 0.0)
    assert (request.outcome, request.client_disconnected) == ("complete", False)

    # on the wire: every event has its `event:` line; the body is chunked
    fake_llm.reply(tokens=["Hi"], usage=(3, 1))
    async with httpx2.AsyncClient() as http:
        response = await http.post(
            f"{fake_llm.base_url}/v1/messages",
            json={"model": "m", "max_tokens": 5, "messages": [], "stream": True},
        )
    assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
    assert response.headers["transfer-encoding"] == "chunked"
    blocks = response.text.split("\n\n")
    assert blocks[-1] == ""
    names = [block.split("\n")[0] for block in blocks[:-1]]
    assert names == [
        "event: message_start",
        "event: content_block_start",
        "event: ping",
        "event: content_block_delta",
        "event: content_block_stop",
        "event: message_delta",
        "event: message_stop",
    ]
    datas = [json.loads(block.split("\n")[1].removeprefix("data: ")) for block in blocks[:-1]]
    assert [d["type"] for d in datas] == [name.removeprefix("event: ") for name in names]
    assert datas[5] == {
        "type": "message_delta",
        "delta": {"stop_reason": "end_turn", "stop_sequence": None},
        "usage": {"output_tokens": 1},
    }


async def test_default_reply_echoes_the_last_user_message(
    fake_llm: FakeLLMServer,  # noqa: F811
) -> None:
    async with openai_client(fake_llm) as oai, anthropic_client(fake_llm) as ant:
        completion = await oai.chat.completions.create(
            model="gpt-test",
            messages=[
                {"role": "user", "content": "first"},
                {"role": "assistant", "content": "ok"},
                {"role": "user", "content": "echo me please"},
            ],
        )
        message = await ant.messages.create(
            model="claude-test",
            max_tokens=10,
            messages=[{"role": "user", "content": [{"type": "text", "text": "and me too"}]}],
        )
    assert completion.choices[0].message.content == "echo me please"
    assert [getattr(b, "text", None) for b in message.content] == ["and me too"]
    chunks, error = await openai_stream(fake_llm)
    assert (openai_text(chunks), error) == (USER, None)
    assert len(chunks) == 1 + 3 + 2  # role, one chunk per word, finish, usage


# -- HTTP errors and SDK retries -----------------------------------------------------------


async def test_429_with_retry_after_0_is_retried_after_the_sdk_backoff(
    fake_llm: FakeLLMServer,  # noqa: F811
) -> None:
    fake_llm.fail(429, headers={"retry-after": "0"}, times=2)
    fake_llm.reply(tokens=["ok"], times=2)
    started = time.monotonic()
    # concurrently, to save the backoff time once: each takes one 429 then one reply
    texts = await asyncio.gather(openai_complete(fake_llm), anthropic_complete(fake_llm))
    elapsed = time.monotonic() - started
    assert list(texts) == ["ok", "ok"]
    # `retry-after: 0` is not honoured as "now": the SDKs fall back on their own backoff,
    # 0.5 s * jitter(0.75..1) for the first retry.
    assert elapsed >= 0.35

    requests = fake_llm.requests
    assert [r.status for r in requests] == [429, 429, 200, 200]
    for provider in ("openai", "anthropic"):
        first, second = (r for r in requests if r.provider == provider)
        assert (first.status, second.status) == (429, 200)
        assert first.headers["x-stainless-retry-count"] == "0"
        assert second.headers["x-stainless-retry-count"] == "1"
        assert first.json == second.json


async def test_500_beyond_max_retries_raises(fake_llm: FakeLLMServer) -> None:  # noqa: F811
    fake_llm.fail(500, headers=FAST_RETRY, times=3)
    with pytest.raises(openai.InternalServerError) as caught:
        await openai_complete(fake_llm)
    assert len(fake_llm.requests) == 3  # 1 + max_retries
    assert caught.value.status_code == 500
    assert str(caught.value) == (
        "Error code: 500 - The server had an error while processing your request. Sorry about that!"
    )
    assert caught.value.body == {
        "message": "The server had an error while processing your request. Sorry about that!",
        "type": "server_error",
        "param": None,
        "code": None,
    }

    fake_llm.fail(500, headers=FAST_RETRY, times=3)
    with pytest.raises(anthropic.InternalServerError) as caught_ant:
        await anthropic_complete(fake_llm)
    assert len(fake_llm.requests) == 6
    assert caught_ant.value.status_code == 500
    body: Any = caught_ant.value.body
    assert body["type"] == "error"
    assert body["error"] == {"type": "api_error", "message": "Internal server error"}
    assert str(caught_ant.value).startswith("Error code: 500 - {'type': 'error', 'error': {")
    assert fake_llm.pending == 0


async def test_error_statuses(fake_llm: FakeLLMServer) -> None:  # noqa: F811
    cases: list[tuple[int, type[Exception], str, str]] = [
        (429, openai.RateLimitError, "openai", "requests"),
        (503, openai.InternalServerError, "openai", "server_error"),
        (429, anthropic.RateLimitError, "anthropic", "rate_limit_error"),
        (503, anthropic.ServiceUnavailableError, "anthropic", "api_error"),
        (529, anthropic.OverloadedError, "anthropic", "overloaded_error"),
    ]
    for status, error_class, provider, error_type in cases:
        fake_llm.fail(status, headers={"x-should-retry": "false"})  # obeyed: no retry
        if provider == "openai":
            _, error = await openai_stream(fake_llm)
            assert isinstance(error, openai.APIStatusError)
            body: Any = error.body
            assert body["type"] == error_type
        else:
            _, error = await anthropic_stream(fake_llm)
            assert isinstance(error, anthropic.APIStatusError)
            body = error.body
            assert body["error"]["type"] == error_type
        assert type(error) is error_class
        assert error.status_code == status
    assert [r.status for r in fake_llm.requests] == [case[0] for case in cases]


@pytest.mark.parametrize("status", ["500", 42, 600, True, 500.0])
def test_a_failure_that_is_no_http_status_is_refused_where_it_is_scripted(
    fake_llm: FakeLLMServer,  # noqa: F811
    status: object,
) -> None:
    with pytest.raises(FakeLLMServerError, match=r"takes an HTTP status, an int from 200 to 599"):
        fake_llm.fail(status)  # type: ignore[arg-type]
    # (was: scripted, then the server's handler broke on it: the request had no status and
    # the SDK, its connection dropped, retried and got the next reply, so the test passed)
    assert fake_llm.requests == []


@pytest.mark.parametrize(
    ("method", "arguments", "wanted"),
    [
        ("reply", {"cut_after": -1}, "reply() takes cut_after= as a whole number of at least 0"),
        ("reply", {"hang_after": -2}, "reply() takes hang_after= as a whole number of at least 0"),
        ("reply", {"pause_after": 1.5}, "takes pause_after= as a whole number of at least 0"),
        ("reply", {"malformed_after": True}, "takes malformed_after= as a whole number"),
        ("reply", {"error_event_after": -1}, "takes error_event_after= as a whole number"),
        ("reply", {"failed_after": -1}, "takes failed_after= as a whole number"),
        ("reply", {"token_delay": -0.1}, "takes token_delay= as a finite number of seconds"),
        ("reply", {"delay": math.nan}, "takes delay= as a finite number of seconds"),
        ("reply", {"times": 0}, "reply() takes times= as a whole number of at least 1"),
        ("fail", {"delay": -1.0}, "fail() takes delay= as a finite number of seconds"),
        ("fail", {"times": -1}, "fail() takes times= as a whole number of at least 1"),
        ("speak", {"drop_after": -1}, "speak() takes drop_after= as a whole number of at least 0"),
        ("speak", {"heard_after": -1}, "takes heard_after= as a whole number of at least 0"),
        ("speak", {"pause_after": -1}, "takes pause_after= as a whole number of at least 0"),
        ("speak", {"ms_per_piece": 0}, "takes ms_per_piece= as a whole number of at least 1"),
        ("speak", {"pace": math.inf}, "takes pace= as a finite number of times real time"),
        ("speak", {"heard": []}, "speak() takes heard= as the user's words (a str), or"),
        ("speak", {"heard": ["Plan ", 1]}, "their transcription's pieces (a list of at least"),
    ],
)
def test_a_count_or_delay_that_could_never_happen_is_refused_where_it_is_scripted(
    method: str, arguments: dict[str, object], wanted: str
) -> None:
    # (was: a negative cut_after or hang_after was taken and never struck: no stream reaches
    # it, so a test of the fault passed without it)
    server = FakeLLMServer()
    with pytest.raises(FakeLLMServerError, match=re.escape(wanted)):
        getattr(server, method)(**arguments)
    assert server.pending == 0


def test_a_tool_call_split_into_no_pieces_is_refused() -> None:
    with pytest.raises(FakeLLMServerError, match=r"ToolCall\(\) takes pieces= as a whole number"):
        ToolCall("add", {"a": 1}, pieces=0)


async def test_async_with_says_to_enter_the_server_with_a_plain_with() -> None:
    server = FakeLLMServer()
    with pytest.raises(
        FakeLLMServerError, match=r"with a plain `with FakeLLMServer\(\) as server:`"
    ):
        async with server:  # type: ignore[attr-defined]  # (mypy refuses it too)
            raise AssertionError("never entered")
    # (was: a bare TypeError, "'FakeLLMServer' object does not support the asynchronous
    # context manager protocol")
    with pytest.raises(FakeLLMServerError, match="not started"):
        server.port  # noqa: B018 - (nor was it started)


# -- stream failure modes ------------------------------------------------------------------


async def test_cut_stream(fake_llm: FakeLLMServer) -> None:  # noqa: F811
    fake_llm.reply(tokens=["a", "b", "c"], cut_after=1)
    chunks, error = await openai_stream(fake_llm)
    assert openai_text(chunks) == "a"
    assert type(error) is openai.APIConnectionError
    assert str(error) == "Connection error."
    assert type(error.__cause__) is httpx2.RemoteProtocolError
    assert str(error.__cause__) == (
        "peer closed connection without sending complete message body (incomplete chunked read)"
    )
    assert len(fake_llm.requests) == 1  # a broken stream is not retried
    assert fake_llm.wait_finished(0).outcome == "cut"

    fake_llm.reply(tokens=["a", "b", "c"], cut_after=2, reset=True)
    chunks, error = await openai_stream(fake_llm)
    assert openai_text(chunks) == "ab"
    assert type(error) is openai.APIConnectionError
    assert str(error) == "Connection error."
    assert type(error.__cause__) is httpx2.ReadError

    fake_llm.reply(tokens=["a", "b", "c"], cut_after=1)
    events, error = await anthropic_stream(fake_llm)
    assert anthropic_text(events) == "a"
    # not wrapped in an anthropic error: the raw httpx2 transport error escapes
    assert type(error) is httpx2.RemoteProtocolError
    assert str(error) == (
        "peer closed connection without sending complete message body (incomplete chunked read)"
    )
    assert fake_llm.wait_finished(2).outcome == "cut"

    fake_llm.reply(tokens=["a", "b", "c"], cut_after=2, reset=True)
    events, error = await anthropic_stream(fake_llm)
    assert anthropic_text(events) == "ab"
    assert type(error) is httpx2.ReadError
    assert [r.outcome for r in fake_llm.requests] == ["cut"] * 4  # none retried


async def test_stream_without_final_events_ends_silently(
    fake_llm: FakeLLMServer,  # noqa: F811
) -> None:
    fake_llm.reply(tokens=["a", "b"], omit_final=True, times=2)
    chunks, error = await openai_stream(fake_llm)
    assert error is None
    assert openai_text(chunks) == "ab"
    # no finish_reason, no usage chunk: only the absence of finish_reason tells
    assert [c.choices[0].finish_reason for c in chunks] == [None, None, None]
    assert all(c.usage is None for c in chunks)

    events, error = await anthropic_stream(fake_llm)
    assert error is None
    assert anthropic_text(events) == "ab"
    assert [e.type for e in events][-2:] == ["content_block_stop", "message_delta"]


async def test_malformed_event(fake_llm: FakeLLMServer) -> None:  # noqa: F811
    fake_llm.reply(tokens=["a", "b"], malformed_after=1, times=2)
    chunks, error = await openai_stream(fake_llm)
    assert openai_text(chunks) == "a"
    assert type(error) is json.JSONDecodeError
    assert str(error).startswith("Unterminated string starting at: line 1 column")

    events, error = await anthropic_stream(fake_llm)
    assert anthropic_text(events) == "a"
    assert type(error) is json.JSONDecodeError
    assert str(error).startswith("Unterminated string starting at: line 1 column")


async def test_error_event(fake_llm: FakeLLMServer) -> None:  # noqa: F811
    fake_llm.reply(tokens=["a", "b"], error_event_after=1, error_message="Boom")
    chunks, error = await openai_stream(fake_llm)
    assert openai_text(chunks) == "a"
    assert type(error) is openai.APIError  # the base class: no status error, no status code
    assert str(error) == "Boom"
    assert error.body == {"message": "Boom", "type": "server_error", "param": None, "code": None}

    fake_llm.reply(tokens=["a", "b"], error_event_after=1)
    events, error = await anthropic_stream(fake_llm)
    assert anthropic_text(events) == "a"
    # the base status error, with the status of the stream's response (200)
    assert type(error) is anthropic.APIStatusError
    assert error.status_code == 200
    body = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    assert error.body == body
    assert str(error) == str(body)


# -- hanging responses and cancellation ----------------------------------------------------


async def test_cancelled_consumer_closes_the_connection(
    fake_llm: FakeLLMServer,  # noqa: F811
) -> None:
    fake_llm.reply(tokens=["a", "b", "c"], hang_after=1, times=2)
    async with openai_client(fake_llm) as oai, anthropic_client(fake_llm) as ant:
        chunks = await oai.chat.completions.create(
            model="gpt-test", messages=[{"role": "user", "content": USER}], stream=True
        )
        chunk_iterator = chunks.__aiter__()
        received = await take(chunk_iterator, 2)  # the role chunk, then "a"
        await time_out_reading(chunk_iterator)
        # cancelling the pending read is enough: the SDK's stream generator closes the
        # response in its `finally`, so the server sees the client leave before close()
        assert await fake_llm.wait_disconnected_async(0, timeout=WAIT)
        await chunks.close()
        assert openai_text(received) == "a"

        events = await ant.messages.create(
            model="claude-test",
            max_tokens=5,
            messages=[{"role": "user", "content": USER}],
            stream=True,
        )
        event_iterator = events.__aiter__()
        # message_start, content_block_start, then "a"
        received_events = await take(event_iterator, 3)
        await time_out_reading(event_iterator)
        assert await fake_llm.wait_disconnected_async(1, timeout=WAIT)
        await events.close()
        assert anthropic_text(received_events) == "a"
    for record in fake_llm.requests:
        assert (record.outcome, record.client_disconnected) == ("disconnected", True)


async def test_read_timeout_mid_stream(fake_llm: FakeLLMServer) -> None:  # noqa: F811
    fake_llm.reply(tokens=["a", "b"], hang_after=1, times=2)
    async with openai.AsyncOpenAI(
        base_url=fake_llm.openai_base_url, api_key="test", max_retries=0, timeout=0.2
    ) as oai:
        stream = await oai.chat.completions.create(
            model="gpt-test", messages=[{"role": "user", "content": USER}], stream=True
        )
        with pytest.raises(openai.APITimeoutError) as caught:
            _ = [chunk async for chunk in stream]
    assert str(caught.value) == "Request timed out."
    assert type(caught.value.__cause__) is httpx2.ReadTimeout
    async with anthropic.AsyncAnthropic(
        base_url=fake_llm.anthropic_base_url, api_key="test", max_retries=0, timeout=0.2
    ) as ant:
        events = await ant.messages.create(
            model="claude-test",
            max_tokens=5,
            messages=[{"role": "user", "content": USER}],
            stream=True,
        )
        with pytest.raises(httpx2.ReadTimeout):  # raw, not wrapped
            _ = [event async for event in events]
    assert fake_llm.wait_disconnected(0)
    assert fake_llm.wait_disconnected(1)


async def test_cancelled_request_and_abandoned_stream_close_the_connection(
    fake_llm: FakeLLMServer,  # noqa: F811
) -> None:
    fake_llm.reply(hang_after=0)  # not streamed: hang before the status line
    request = asyncio.create_task(openai_complete(fake_llm))
    await fake_llm.wait_requests_async(1)
    request.cancel()
    with pytest.raises(asyncio.CancelledError):
        await request
    assert await fake_llm.wait_disconnected_async(0, timeout=WAIT)
    assert fake_llm.requests[0].status is None

    fake_llm.reply(tokens=["a"] * 100, token_delay=0.02)  # slow stream, left early
    async with anthropic_client(fake_llm) as client:
        stream = await client.messages.create(
            model="claude-test",
            max_tokens=5,
            messages=[{"role": "user", "content": USER}],
            stream=True,
        )
        async for event in stream:
            if event.type == "content_block_delta":
                break
        await stream.close()
    assert await fake_llm.wait_disconnected_async(1, timeout=WAIT)


async def test_stopping_the_server_ends_a_hanging_stream() -> None:
    with FakeLLMServer() as server:
        server.reply(tokens=["a", "b"], hang_after=1)
        async with openai_client(server) as client:
            stream = await client.chat.completions.create(
                model="gpt-test", messages=[{"role": "user", "content": USER}], stream=True
            )
            first = await stream.__anext__()
            assert first.choices[0].delta.role == "assistant"
            # read the token before the hang first: stopping before the server has sent
            # it would race with the server's own thread
            second = await stream.__anext__()
            assert second.choices[0].delta.content == "a"
            await asyncio.to_thread(server.stop)
            with pytest.raises(openai.APIConnectionError):
                await stream.__anext__()
    assert server.requests[0].outcome == "stopped"
    assert not server.requests[0].client_disconnected


def test_a_handler_that_heeds_no_stop_is_told_as_the_servers_error_not_waited_for_each(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Handler threads that do not return once the server stops (a bug of the fake) are
    waited for ``_STOP_SECONDS`` in all, then told in ``server.errors`` by name, left
    running. (Each was waited for 5 seconds in turn, then forgotten without a word.)"""
    serving = importlib.import_module("miniagents.testing._serving")
    monkeypatch.setattr(serving, "_STOP_SECONDS", 0.05)
    release = threading.Event()
    arrived = threading.Semaphore(0)

    def stuck(self: object, handler: object) -> None:
        arrived.release()
        release.wait(THREAD_WAIT)  # (heeds no `stopping`)

    monkeypatch.setattr(serving.ScriptedApp, "handle", stuck)
    server = FakeLLMServer().start()
    clients = [
        threading.Thread(target=_post_and_forget, args=(server.openai_base_url,), daemon=True)
        for _ in range(3)
    ]
    try:
        for client in clients:
            client.start()
        for _ in clients:
            assert arrived.acquire(timeout=THREAD_WAIT)  # (the three handlers hold)
        server.stop()
        (error,) = server.errors
        assert isinstance(error, FakeLLMServerError)
        assert "3 handler thread(s) of the fake LLM server still ran 0.05 s after stop()" in str(
            error
        )
    finally:
        release.set()
        for client in clients:
            client.join(THREAD_WAIT)


def _post_and_forget(base_url: str) -> None:
    """POST a chat completion to ``base_url``; whatever comes back (or fails) is dropped."""
    request = urllib.request.Request(
        f"{base_url}/chat/completions", data=b"{}", headers={"Content-Type": "application/json"}
    )
    with contextlib.suppress(OSError):
        urllib.request.urlopen(request, timeout=THREAD_WAIT).read()


# -- not streamed: connection failures -----------------------------------------------------


async def test_not_streamed_faults(fake_llm: FakeLLMServer) -> None:  # noqa: F811
    # a body cut short is a connection error, retried (after the backoff)
    fake_llm.reply(cut_after=0)
    fake_llm.reply(tokens=["ok"])
    assert await anthropic_complete(fake_llm, max_retries=1) == "ok"
    # the server records the outcome after the last byte, which the client may read first
    assert [fake_llm.wait_finished(index).outcome for index in (0, 1)] == ["cut", "complete"]

    fake_llm.reply(cut_after=0)
    with pytest.raises(openai.APIConnectionError) as caught:
        await openai_complete(fake_llm, max_retries=0)
    assert type(caught.value.__cause__) is httpx2.RemoteProtocolError
    assert str(caught.value.__cause__).startswith(
        "peer closed connection without sending complete message body (received"
    )
    fake_llm.reply(cut_after=0, reset=True)
    with pytest.raises(anthropic.APIConnectionError) as caught_ant:
        await anthropic_complete(fake_llm, max_retries=0)
    assert type(caught_ant.value.__cause__) is httpx2.ReadError

    # a 200 with a body that is not JSON: the raw decoding error, not retried
    fake_llm.reply(malformed_after=0, times=2)
    with pytest.raises(json.JSONDecodeError):
        await openai_complete(fake_llm)
    with pytest.raises(json.JSONDecodeError):
        await anthropic_complete(fake_llm)
    assert len(fake_llm.requests) == 6


# -- the server itself ---------------------------------------------------------------------


def test_unknown_path_and_invalid_request(fake_llm: FakeLLMServer) -> None:  # noqa: F811
    fake_llm.reply(tokens=["kept"])

    def post(path: str, payload: object) -> tuple[int, Any]:
        return post_json(fake_llm, path, payload)

    status, body = post("/v1/embeddings", {})
    assert status == 404
    status, body = post("/v1/messages", {"model": "m", "messages": []})
    assert status == 400
    assert body["error"] == {
        "type": "invalid_request_error",
        "message": "max_tokens: Field required",
    }
    status, body = post("/v1/chat/completions", {"model": "m"})
    assert status == 400
    assert body["error"]["message"] == "messages: Field required"
    assert fake_llm.pending == 1  # invalid requests do not use the script
    status, body = post("/chat/completions", {"model": "m", "messages": []})
    assert (status, body["choices"][0]["message"]["content"]) == (200, "kept")
    assert [r.provider for r in fake_llm.requests] == [None, "anthropic", "openai", "openai"]


def test_numeric_options_out_of_the_api_range_are_refused(
    fake_llm: FakeLLMServer,  # noqa: F811
) -> None:
    base = {"model": "m", "messages": [], "max_tokens": 5}
    status, body = post_json(fake_llm, "/v1/messages", {**base, "top_k": "x"})
    assert (status, body["error"]["message"]) == (400, "top_k: Input should be a valid number")
    status, body = post_json(fake_llm, "/v1/messages", {**base, "temperature": 1.5})
    assert status == 400
    assert body["error"]["message"] == "temperature: Input should be between 0 and 1, got 1.5"
    status, body = post_json(fake_llm, "/v1/chat/completions", {**base, "temperature": 1.5})
    assert status == 200  # OpenAI's range is 0 to 2
    status, body = post_json(fake_llm, "/v1/chat/completions", {**base, "temperature": 2.5})
    assert status == 400
    assert body["error"]["message"] == "temperature: Input should be between 0 and 2, got 2.5"


@pytest.mark.parametrize(
    ("server", "most"), [("ollama", None), ("vllm", None), ("together", None), ("groq", 2)]
)
def test_each_compatible_dialect_takes_its_servers_temperature_range(
    fake_llm: FakeLLMServer,  # noqa: F811
    server: str,
    most: float | None,
) -> None:
    # every dialect refused a temperature above 2, as OpenAI does: a local server takes more
    path = f"/{server}/v1/chat/completions"
    base = {"model": "m", "messages": [{"role": "user", "content": "Hi"}]}
    fake_llm.reply("Hot.")
    status, body = post_json(fake_llm, path, {**base, "temperature": 3.5})
    if most is None:
        assert (status, body["choices"][0]["message"]["content"]) == (200, "Hot.")
        status, body = post_json(fake_llm, path, {**base, "temperature": -1})
        assert (status, body["error"]["message"]) == (
            400,
            "temperature: Input should be greater than or equal to 0, got -1",
        )
    else:
        assert (status, body["error"]["message"]) == (
            400,
            "temperature: Input should be between 0 and 2, got 3.5",
        )


# -- waiting for the server -----------------------------------------------------------------


@asynccontextmanager
async def held_stream(
    server: FakeLLMServer, client: anthropic.AsyncAnthropic, index: int
) -> AsyncIterator[RecordedRequest]:
    """Stream a message (request ``index``, its reply scripted as ``one``, `` two`` paused
    after one piece) and yield its record once it pauses; after the block, resume it and
    check that the client reads it whole."""
    stream = await client.messages.create(
        model="claude-test",
        max_tokens=5,
        messages=[{"role": "user", "content": USER}],
        stream=True,
    )
    record = await server.wait_paused_async(index, WAIT)
    yield record
    record.resume()
    assert anthropic_text([event async for event in stream]) == "one two"


async def test_the_async_waiters_work_on_a_stopped_clock_and_keep_their_timeout(
    fake_llm: FakeLLMServer,  # noqa: F811
) -> None:
    fake_llm.reply(tokens=["one", " two"], pause_after=1)
    with manual_time() as clock:
        with pytest.raises(FakeLLMServerTimeout, match=r"received 0 requests within 0\.05 s"):
            await fake_llm.wait_requests_async(1, timeout=0.05)  # in wall-clock time
        async with anthropic_client(fake_llm) as client, held_stream(fake_llm, client, 0) as record:
            assert len(await fake_llm.wait_requests_async(1, WAIT)) == 1
            assert await asyncio.to_thread(fake_llm.wait_paused, 0, WAIT) is record
        assert (await fake_llm.wait_finished_async(0, WAIT)).outcome == "complete"
        assert not await fake_llm.wait_disconnected_async(0, WAIT)
        assert clock.elapsed == 0


async def test_a_blocking_waiter_timing_out_in_async_code_names_its_async_twin(
    fake_llm: FakeLLMServer,  # noqa: F811
) -> None:
    twin = r"received 0 requests.*blocked the event loop.*await server\.wait_requests_async"
    with pytest.raises(FakeLLMServerTimeout, match=twin):
        fake_llm.wait_requests(1, timeout=0.05)  # (was: "received 0 requests" alone)
    assert fake_llm.wait_requests(0) == []  # what has come already is given at once


async def test_waiting_for_a_disconnection_that_does_not_come_times_out(
    fake_llm: FakeLLMServer,  # noqa: F811
) -> None:
    # (was: False, as when the response ended before the client left: a test could not
    # tell a client that still held the stream from one that read it to its end)
    fake_llm.reply(tokens=["one", " two"], pause_after=1)  # held open until resumed
    said = r"did not close the connection of request 0, nor did its response end, within 0\.05 s"
    async with anthropic_client(fake_llm) as client, held_stream(fake_llm, client, 0):
        with pytest.raises(FakeLLMServerTimeout, match=said):
            await fake_llm.wait_disconnected_async(0, timeout=0.05)
        with pytest.raises(FakeLLMServerTimeout, match=said):
            await asyncio.to_thread(fake_llm.wait_disconnected, 0, 0.05)
    assert await fake_llm.wait_disconnected_async(0, WAIT) is False  # it ended whole first


async def test_waiting_for_a_pause_of_a_response_that_ended_unpaused_fails_when_it_ends(
    fake_llm: FakeLLMServer,  # noqa: F811
) -> None:
    # (was: wait_paused waited its whole timeout, 60 s by default, for a pause that could
    # no longer come, then said it "did not pause within 60 s")
    fake_llm.reply(["not", " paused"])
    fake_llm.reply(["one", " two"], pause_after=1)
    async with anthropic_client(fake_llm) as client:
        message = await client.messages.create(
            model="claude-test", max_tokens=5, messages=[{"role": "user", "content": USER}]
        )
        assert [block.type for block in message.content] == ["text"]
        for wait in (
            fake_llm.wait_paused_async(0),
            asyncio.to_thread(fake_llm.wait_paused, 0),
        ):
            with pytest.raises(FakeLLMServerError) as raised:
                await wait
            assert type(raised.value) is FakeLLMServerError  # not a timeout: it ended
            assert str(raised.value).startswith(
                "The response to request 0 ended (complete) without pausing, so it never will."
            )
        async with held_stream(fake_llm, client, 1) as record:
            pass  # (it paused; resumed as the block ends, and read whole)
        assert (await fake_llm.wait_finished_async(1, WAIT)).outcome == "complete"
        # paused, resumed and ended: the pause is found still
        assert await fake_llm.wait_paused_async(1, WAIT) is record


def test_every_waiter_s_default_timeout_is_a_hang_guard_not_a_window() -> None:
    # a default that decides a result on a loaded machine (was: 5 s) fails slow CI runs
    waiters = [
        getattr(owner, name)
        for owner in (FakeLLMServer, FakeBatches)
        for name in dir(owner)
        if name.startswith("wait_")
    ]
    assert len(waiters) == 13  # (wait_connections_closed and its twin among them)
    for waiter in waiters:
        assert inspect.signature(waiter).parameters["timeout"].default == 60, waiter


async def test_an_async_waiter_does_not_hold_a_clock_that_runs_by_itself(
    fake_llm: FakeLLMServer,  # noqa: F811
) -> None:
    async def later() -> tuple[int, Any]:  # the code under test sleeps, then calls the model
        await asyncio.sleep(60)
        payload = {"model": "m", "messages": [{"role": "user", "content": USER}]}
        return await asyncio.to_thread(post_json, fake_llm, "/v1/chat/completions", payload)

    with virtual_time() as clock:
        call = asyncio.ensure_future(later())
        await fake_llm.wait_requests_async(1, WAIT)
        assert clock.elapsed == pytest.approx(60, abs=1e-9)  # not moved on by the waiter
        assert (await call)[0] == 200


async def test_an_async_waiter_given_up_on_ends_its_thread(
    fake_llm: FakeLLMServer,  # noqa: F811
) -> None:
    before = set(threading.enumerate())
    waiter = asyncio.ensure_future(fake_llm.wait_finished_async(0, WAIT))
    await asyncio.sleep(0)  # the waiter's thread starts
    (thread,) = set(threading.enumerate()) - before
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    thread.join(THREAD_WAIT)
    assert not thread.is_alive()


@pytest.mark.parametrize(
    ("waiter", "arguments", "wanted"),
    [
        ("wait_requests", (-1, 0.01), "takes count= as a whole number of at least 0, not -1"),
        ("wait_requests", (1, 0), "takes timeout= as a finite number of seconds above 0, not 0"),
        ("wait_finished", (-1, 0.01), "takes index= as a whole number of at least 0, not -1"),
        ("wait_finished", ("0", 0.01), "takes index= as a whole number of at least 0, not '0'"),
        ("wait_disconnected", (0, -1.0), "takes timeout= as a finite number of seconds above 0"),
        ("wait_paused", (True, 0.01), "takes index= as a whole number of at least 0, not True"),
        ("wait_paused", (0, math.nan), "takes timeout= as a finite number of seconds above 0"),
        ("wait_finished", (0, math.inf), "takes timeout= as a finite number of seconds above 0"),
    ],
)
async def test_a_waiter_refuses_a_count_index_or_timeout_it_could_not_wait_with_at_once(
    waiter: str, arguments: tuple[object, object], wanted: str
) -> None:
    # (was: a negative index named a request from the end, a negative count was reached at
    # once, a timeout of 0 or less gave up before looking, and a NaN or inf timeout or a
    # str index broke the waiting thread: the blocking waiter raised Python's error, the
    # _async one waited for ever)
    server = FakeLLMServer()
    with pytest.raises(FakeLLMServerError) as blocking:
        getattr(server, waiter)(*arguments)
    assert type(blocking.value) is FakeLLMServerError  # not a timeout: refused
    assert str(blocking.value).startswith(f"FakeLLMServer.{waiter}() {wanted}")
    awaited = getattr(server, f"{waiter}_async")(*arguments)
    with pytest.raises(FakeLLMServerError) as refused:
        awaited.send(None)  # refused before it waits: no thread started, nothing awaited
    assert str(refused.value).startswith(f"FakeLLMServer.{waiter}_async() {wanted}")
    assert str(refused.value).endswith(".")


@pytest.mark.parametrize("index", [-1, 1.0])
async def test_the_realtime_and_batch_waiters_refuse_what_they_could_not_wait_with_at_once(
    index: object,
) -> None:
    server = FakeLLMServer()
    for awaited in (
        server.wait_realtime_async(index, timeout=0.01),  # type: ignore[arg-type]
        server.batches.wait_created_async(index, timeout=0.01),  # type: ignore[arg-type]
        server.wait_realtime_async(0, timeout=0),
        server.batches.wait_created_async(0, timeout=-1),
    ):
        with pytest.raises(FakeLLMServerError, match=r"takes \w+= as a") as refused:
            awaited.send(None)
        assert type(refused.value) is FakeLLMServerError
    with pytest.raises(FakeLLMServerError, match=r"FakeBatches\.wait_created\(\) takes count="):
        server.batches.wait_created(-1, 0.01)


def _send_and_vanish(server: FakeLLMServer, text: str) -> None:
    """Send a whole chat request on a connection of its own and close it at once (as a
    client process killed right after writing it)."""
    body = json.dumps({"model": "gpt-4o", "messages": [{"role": "user", "content": text}]})
    request = (
        "POST /v1/chat/completions HTTP/1.1\r\nHost: fake\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n{body}"
    )
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(request.encode())


def test_waiting_for_the_connections_to_close_sees_every_request_of_a_vanished_client(
    fake_llm: FakeLLMServer,  # noqa: F811
) -> None:
    # a client killed after sending its requests: without a wait for its connections, a
    # request still unread when the test cleared the script took the next script's reply
    fake_llm.reply(["first"], times=5)
    for number in range(5):
        _send_and_vanish(fake_llm, f"request {number}")
    fake_llm.wait_connections_closed(WAIT)
    assert sorted(request.json["messages"][0]["content"] for request in fake_llm.requests) == [
        f"request {number}" for number in range(5)
    ]
    assert fake_llm.pending == 0  # (each took its reply before the wait returned)
    fake_llm.clear_script()
    fake_llm.reply(["second"])
    assert fake_llm.pending == 1  # (nothing left to take it)


async def test_waiting_for_the_connections_to_close_times_out_while_a_client_holds_one(
    fake_llm: FakeLLMServer,  # noqa: F811
) -> None:
    held = socket.create_connection(("127.0.0.1", fake_llm.port))
    said = r"1 connection\(s\) to the fake server stayed open for 0\.05 s"
    try:
        with pytest.raises(FakeLLMServerTimeout, match=said):
            await fake_llm.wait_connections_closed_async(timeout=0.05)
        with pytest.raises(FakeLLMServerTimeout, match=said):
            await asyncio.to_thread(fake_llm.wait_connections_closed, 0.05)
    finally:
        held.close()
    await fake_llm.wait_connections_closed_async(WAIT)
    with pytest.raises(FakeLLMServerError, match="timeout"):
        fake_llm.wait_connections_closed(timeout=0)
