"""The fake server's refusals, read by the real SDKs over HTTP, as each API sends them.

Chat Completions: ``refusal`` deltas (not streamed: ``message.refusal``, ``content`` null);
the Responses API: a ``refusal`` content part (``response.refusal.delta`` events); Anthropic:
the text, with ``stop_reason="refusal"``.
"""

from __future__ import annotations

from typing import Any

import anthropic
import openai

from miniagents.testing import FakeLLMServer
from tests.fakes.fixtures import fake_llm  # noqa: F401

REFUSAL = ["I can't ", "help with ", "that."]


def openai_client(server: FakeLLMServer) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=server.openai_base_url, api_key="test", max_retries=0)


def anthropic_client(server: FakeLLMServer) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(
        base_url=server.anthropic_base_url, api_key="test", max_retries=0
    )


async def test_chat_completions_streams_the_refusal_as_refusal_deltas(
    fake_llm: FakeLLMServer,  # noqa: F811
) -> None:
    fake_llm.reply(refusal=REFUSAL)
    async with openai_client(fake_llm) as client:
        stream = await client.chat.completions.create(
            model="gpt-test", messages=[{"role": "user", "content": "hi"}], stream=True
        )
        chunks = [chunk async for chunk in stream]
    deltas = [chunk.choices[0].delta for chunk in chunks if chunk.choices]
    assert [delta.refusal for delta in deltas if delta.refusal] == REFUSAL
    assert not any(delta.content for delta in deltas)
    assert chunks[-1].choices[0].finish_reason == "stop"


async def test_chat_completions_not_streamed_has_the_refusal_and_no_content(
    fake_llm: FakeLLMServer,  # noqa: F811
) -> None:
    fake_llm.reply(refusal="I can't help with that.")
    async with openai_client(fake_llm) as client:
        completion = await client.chat.completions.create(
            model="gpt-test", messages=[{"role": "user", "content": "hi"}]
        )
    message = completion.choices[0].message
    assert message.refusal == "I can't help with that."
    assert message.content is None


async def test_the_responses_api_streams_a_refusal_content_part(
    fake_llm: FakeLLMServer,  # noqa: F811
) -> None:
    fake_llm.reply(refusal=REFUSAL)
    async with openai_client(fake_llm) as client:
        stream = await client.responses.create(model="gpt-test", input="hi", stream=True)
        events: list[Any] = [event async for event in stream]
    kinds = [event.type for event in events]
    assert kinds == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.refusal.delta",
        "response.refusal.delta",
        "response.refusal.delta",
        "response.refusal.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [event.delta for event in events if event.type == "response.refusal.delta"] == REFUSAL
    done = next(event for event in events if event.type == "response.refusal.done")
    assert done.refusal == "".join(REFUSAL)
    (item,) = events[-1].response.output
    assert [(part.type, part.refusal) for part in item.content] == [("refusal", "".join(REFUSAL))]


async def test_the_responses_api_not_streamed_has_a_refusal_part(
    fake_llm: FakeLLMServer,  # noqa: F811
) -> None:
    fake_llm.reply(refusal=REFUSAL)
    async with openai_client(fake_llm) as client:
        response = await client.responses.create(model="gpt-test", input="hi")
    (item,) = response.output
    assert item.type == "message"
    assert [part.type for part in item.content] == ["refusal"]
    assert response.output_text == ""


async def test_anthropic_ends_a_refusal_with_its_stop_reason(
    fake_llm: FakeLLMServer,  # noqa: F811
) -> None:
    fake_llm.reply(refusal=REFUSAL)
    fake_llm.reply(refusal=REFUSAL)
    messages: Any = [{"role": "user", "content": "hi"}]
    async with anthropic_client(fake_llm) as client:
        stream = await client.messages.create(
            model="claude-test", max_tokens=100, messages=messages, stream=True
        )
        events: list[Any] = [event async for event in stream]
        whole = await client.messages.create(model="claude-test", max_tokens=100, messages=messages)
    texts = [
        event.delta.text
        for event in events
        if event.type == "content_block_delta" and event.delta.type == "text_delta"
    ]
    assert texts == REFUSAL
    (stopped,) = [event for event in events if event.type == "message_delta"]
    assert stopped.delta.stop_reason == "refusal"
    assert whole.stop_reason == "refusal"
    assert [block.type for block in whole.content] == ["text"]
