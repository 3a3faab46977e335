"""The fake server's batch APIs, driven by the real SDKs over HTTP: OpenAI's files and batches,
Anthropic's Message Batches (create, look, results, expiry, failures, cancellation)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import anthropic
import openai
import pytest

from miniagents.testing import FakeLLMServer
from tests.fakes.fixtures import WAIT, fake_llm  # noqa: F401


def _chat_line(custom_id: str, text: str, model: str = "gpt-4o-mini") -> bytes:
    body = {"model": model, "messages": [{"role": "user", "content": text}]}
    line = {"custom_id": custom_id, "method": "POST", "url": "/v1/chat/completions", "body": body}
    return json.dumps(line).encode() + b"\n"


def _anthropic_request(custom_id: str, text: str) -> Any:  # (the SDK's Request TypedDict)
    params = {
        "model": "claude-haiku-4-5",
        "max_tokens": 64,
        "messages": [{"role": "user", "content": text}],
    }
    return {"custom_id": custom_id, "params": params}


async def _openai_results(client: openai.AsyncOpenAI, file_id: str | None) -> list[dict[str, Any]]:
    if not file_id:
        return []
    content = await client.files.content(file_id)
    return [json.loads(line) for line in content.text.splitlines() if line.strip()]


async def test_an_openai_batch_runs_each_line_through_the_script(
    fake_llm: FakeLLMServer,  # noqa: F811
) -> None:
    fake_llm.reply(["Hel", "lo"], usage=(3, 2))
    fake_llm.fail(500)
    async with openai.AsyncOpenAI(base_url=fake_llm.openai_base_url, api_key="test") as client:
        content = _chat_line("r-1", "hi") + _chat_line("r-2", "there") + _chat_line("r-3", "you")
        uploaded = await client.files.create(file=("in.jsonl", content), purpose="batch")
        assert (await client.files.retrieve(uploaded.id)).bytes == len(content)
        assert (await client.files.content(uploaded.id)).content == content
        created = await client.batches.create(
            input_file_id=uploaded.id,
            endpoint="/v1/chat/completions",
            completion_window="24h",
            metadata={"tag": "t-1"},
        )
        assert created.status == "validating"
        batch = await client.batches.retrieve(created.id)
        assert batch.status == "completed"
        assert batch.request_counts is not None
        assert (batch.request_counts.completed, batch.request_counts.failed) == (2, 1)
        output = await _openai_results(client, batch.output_file_id)
        errors = await _openai_results(client, batch.error_file_id)
        listed = [each async for each in await client.batches.list(limit=10)]
    assert [line["custom_id"] for line in output] == ["r-1", "r-3"]
    first = output[0]["response"]
    assert first["status_code"] == 200
    assert first["body"]["choices"][0]["message"]["content"] == "Hello"
    assert first["body"]["usage"]["prompt_tokens"] == 3
    assert output[1]["response"]["body"]["choices"][0]["message"]["content"] == "you"  # echo
    assert [(line["custom_id"], line["response"]["status_code"]) for line in errors] == [
        ("r-2", 500)
    ]
    assert [each.id for each in listed] == [created.id]
    assert listed[0].metadata == {"tag": "t-1"}
    (made,) = fake_llm.batches.created
    assert made.custom_ids == ("r-1", "r-2", "r-3")
    assert made.requests[1].body["messages"][0]["content"] == "there"


async def test_a_held_openai_batch_runs_when_released_and_expires_part_way(
    fake_llm: FakeLLMServer,  # noqa: F811
) -> None:
    fake_llm.batches.hold()
    fake_llm.batches.expire_next(after=1)
    async with openai.AsyncOpenAI(base_url=fake_llm.openai_base_url, api_key="test") as client:
        content = _chat_line("a", "one") + _chat_line("b", "two")
        uploaded = await client.files.create(file=("in.jsonl", content), purpose="batch")
        created = await client.batches.create(
            input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
        )
        held = await client.batches.retrieve(created.id)
        assert held.status == "in_progress"
        assert held.output_file_id is None
        fake_llm.batches.release()
        batch = await client.batches.retrieve(created.id)
        output = await _openai_results(client, batch.output_file_id)
        errors = await _openai_results(client, batch.error_file_id)
    assert batch.status == "expired"
    assert [line["custom_id"] for line in output] == ["a"]
    assert [(line["custom_id"], line["error"]["code"]) for line in errors] == [
        ("b", "batch_expired")
    ]


async def test_an_openai_batch_cancelled_while_held_runs_none_of_its_requests(
    fake_llm: FakeLLMServer,  # noqa: F811
) -> None:
    fake_llm.batches.hold()
    fake_llm.reply(["unused"])
    async with openai.AsyncOpenAI(base_url=fake_llm.openai_base_url, api_key="test") as client:
        uploaded = await client.files.create(
            file=("in.jsonl", _chat_line("a", "x")), purpose="batch"
        )
        created = await client.batches.create(
            input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
        )
        cancelling = await client.batches.cancel(created.id)
        batch = await client.batches.retrieve(created.id)
        errors = await _openai_results(client, batch.error_file_id)
        with pytest.raises(openai.BadRequestError):  # an ended batch cannot be cancelled
            await client.batches.cancel(created.id)
    assert cancelling.status == "cancelling"
    assert batch.status == "cancelled"
    assert batch.output_file_id is None
    assert [line["error"]["code"] for line in errors] == ["batch_cancelled"]
    assert fake_llm.pending == 1  # the script's item was not taken


async def test_an_invalid_openai_input_file_makes_a_failed_batch(
    fake_llm: FakeLLMServer,  # noqa: F811
) -> None:
    async with openai.AsyncOpenAI(base_url=fake_llm.openai_base_url, api_key="test") as client:
        mixed = _chat_line("a", "x", model="m-1") + _chat_line("b", "y", model="m-2")
        uploaded = await client.files.create(file=("in.jsonl", mixed), purpose="batch")
        created = await client.batches.create(
            input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
        )
        batch = await client.batches.retrieve(created.id)
        with pytest.raises(openai.BadRequestError):
            await client.batches.create(
                input_file_id="file-none", endpoint="/v1/chat/completions", completion_window="24h"
            )
    assert batch.status == "failed"
    assert batch.errors is not None
    assert batch.errors.data
    assert "same model" in str(batch.errors.data[0].message)
    assert batch.output_file_id is None
    assert batch.error_file_id is None


async def test_a_batch_request_that_asks_to_stream_is_refused_alone(
    fake_llm: FakeLLMServer,  # noqa: F811
) -> None:
    async with openai.AsyncOpenAI(base_url=fake_llm.openai_base_url, api_key="test") as client:
        body = {"model": "m", "messages": [{"role": "user", "content": "x"}], "stream": True}
        line = {"custom_id": "s", "method": "POST", "url": "/v1/chat/completions", "body": body}
        uploaded = await client.files.create(
            file=("in.jsonl", json.dumps(line).encode() + b"\n" + _chat_line("t", "fine", "m")),
            purpose="batch",
        )
        created = await client.batches.create(
            input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
        )
        batch = await client.batches.retrieve(created.id)
        errors = await _openai_results(client, batch.error_file_id)
    assert batch.status == "completed"
    assert [(line["custom_id"], line["response"]["status_code"]) for line in errors] == [("s", 400)]


async def test_an_anthropic_message_batch_gives_each_kind_of_result(
    fake_llm: FakeLLMServer,  # noqa: F811
) -> None:
    fake_llm.reply(["Hi", "!"], usage=(4, 2))
    fake_llm.fail(529)
    fake_llm.batches.expire_next(after=2)
    async with anthropic.AsyncAnthropic(
        base_url=fake_llm.anthropic_base_url, api_key="test"
    ) as client:
        created = await client.messages.batches.create(
            requests=[
                _anthropic_request("a", "one"),
                _anthropic_request("b", "two"),
                _anthropic_request("c", "three"),
            ]
        )
        assert created.processing_status == "in_progress"
        batch = await client.messages.batches.retrieve(created.id)
        results = {
            item.custom_id: item.result
            async for item in await client.messages.batches.results(created.id)
        }
        listed = [each.id async for each in await client.messages.batches.list(limit=5)]
        deleted = await client.messages.batches.delete(created.id)
    assert batch.processing_status == "ended"
    assert batch.results_url is not None
    assert batch.results_url.endswith("/results")
    counts = batch.request_counts
    assert (counts.succeeded, counts.errored, counts.expired) == (1, 1, 1)
    first = results["a"]
    assert first.type == "succeeded"
    assert [block.text for block in first.message.content if block.type == "text"] == ["Hi!"]
    assert first.message.usage.input_tokens == 4
    errored = results["b"]
    assert errored.type == "errored"
    assert errored.error.error.type == "overloaded_error"
    assert results["c"].type == "expired"
    assert listed == [created.id]
    assert deleted.id == created.id


async def test_an_anthropic_batch_cancelled_while_held_ends_with_cancelled_results(
    fake_llm: FakeLLMServer,  # noqa: F811
) -> None:
    fake_llm.batches.hold()
    async with anthropic.AsyncAnthropic(
        base_url=fake_llm.anthropic_base_url, api_key="test"
    ) as client:
        created = await client.messages.batches.create(requests=[_anthropic_request("a", "x")])
        cancelling = await client.messages.batches.cancel(created.id)
        batch = await client.messages.batches.retrieve(created.id)
        results = [
            item.result.type async for item in await client.messages.batches.results(created.id)
        ]
        with pytest.raises(anthropic.BadRequestError):  # a repeated custom_id
            await client.messages.batches.create(
                requests=[_anthropic_request("z", "x"), _anthropic_request("z", "y")]
            )
    assert cancelling.processing_status == "canceling"
    assert batch.processing_status == "ended"
    assert batch.request_counts.canceled == 1
    assert results == ["canceled"]


async def test_a_stalled_creation_makes_the_batch_and_never_answers(
    fake_llm: FakeLLMServer,  # noqa: F811
) -> None:
    fake_llm.batches.stall_next_create()
    async with openai.AsyncOpenAI(
        base_url=fake_llm.openai_base_url, api_key="test", max_retries=0
    ) as client:
        uploaded = await client.files.create(
            file=("in.jsonl", _chat_line("a", "x")), purpose="batch"
        )
        creating = asyncio.ensure_future(
            client.batches.create(
                input_file_id=uploaded.id,
                endpoint="/v1/chat/completions",
                completion_window="24h",
                metadata={"tag": "lost"},
            )
        )
        (made,) = await fake_llm.batches.wait_created_async(1, WAIT)
        assert not creating.done()
        creating.cancel()  # the client gives up (as one killed would)
        with pytest.raises(asyncio.CancelledError):
            await creating
        # as a chat request's: the server sees the client leave, and says so at once
        assert await fake_llm.wait_disconnected_async(1, timeout=WAIT)
        found = [each async for each in await client.batches.list()]
    creation = fake_llm.requests[1]
    assert (creation.path, creation.outcome, creation.client_disconnected) == (
        "/v1/batches",
        "disconnected",
        True,
    )
    assert made.unanswered
    assert [(each.id, each.metadata) for each in found] == [(made.id, {"tag": "lost"})]
