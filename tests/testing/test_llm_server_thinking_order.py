"""The fake LLM server's ``thinking_order``: the scripted thinking after the text, or beside it.

Each wire, read by its real SDK client (OpenAI's for Chat Completions and the Responses
API, Anthropic's, google-genai's for Gemini, aiobotocore's for Bedrock's Converse),
streamed and not: ``"after_text"`` sends the thinking after the text and before the
calls, ``"with_text"`` puts Chat Completions' reasoning and Gemini's thought parts in the
text's chunks (the other APIs, which have no such event, refuse it), and a value that is
none of the three is refused.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiobotocore.session
import anthropic
import httpx2
import openai
import pytest
from google import genai

from miniagents.testing import (
    AWS_TEST_CREDENTIALS,
    FakeLLMServer,
    FakeLLMServerError,
    ToolCall,
    thinking_signature,
)
from tests.fakes.fixtures import fake_llm  # noqa: F401

ADD = ToolCall("add", {"a": 1, "b": 2}, id="call_add")
ASK: Any = [{"role": "user", "content": "hi"}]


@pytest.fixture
async def oai(fake_llm: FakeLLMServer) -> AsyncIterator[openai.AsyncOpenAI]:  # noqa: F811
    async with openai.AsyncOpenAI(
        base_url=fake_llm.openai_base_url, api_key="test", max_retries=0
    ) as client:
        yield client


def _reasoning(delta: Any) -> str | None:
    reasoning: str | None = (delta.model_extra or {}).get("reasoning_content")
    return reasoning


async def test_chat_sends_the_reasoning_after_the_text_or_in_its_chunks(
    fake_llm: FakeLLMServer,  # noqa: F811
    oai: openai.AsyncOpenAI,
) -> None:
    fake_llm.reply(["Yes", "."], thinking=["Add ", "them."], thinking_order="after_text")
    fake_llm.reply(["Yes", "."], thinking=["Add ", "them", "."], thinking_order="with_text")
    fake_llm.reply(["Yes."], thinking=["Add ", "them."], thinking_order="with_text")
    seen = []
    for _ in range(2):
        chunks = await oai.chat.completions.create(model="m", messages=ASK, stream=True)
        deltas = [chunk.choices[0].delta async for chunk in chunks if chunk.choices]
        seen.append([(delta.content, _reasoning(delta)) for delta in deltas[1:-1]])
    assert seen == [
        [("Yes", None), (".", None), (None, "Add "), (None, "them.")],
        [("Yes", "Add "), (".", "them"), (None, ".")],  # (the pieces past the tokens: alone)
    ]
    whole = await oai.chat.completions.create(model="m", messages=ASK)
    assert whole.choices[0].message.content == "Yes."
    assert _reasoning(whole.choices[0].message) == "Add them."


async def test_responses_sends_the_reasoning_item_after_the_message(
    fake_llm: FakeLLMServer,  # noqa: F811
    oai: openai.AsyncOpenAI,
) -> None:
    fake_llm.reply(
        ["Yes."], thinking=["Add ", "them."], tool_calls=[ADD], thinking_order="after_text", times=2
    )
    stream = await oai.responses.create(model="m", input="hi", stream=True)
    events: list[Any] = [event async for event in stream]  # (read by their type's name)
    items = [(e.type, e.output_index, e.item.type) for e in events if "output_item" in e.type]
    added = [item[1:] for item in items if item[0] == "response.output_item.added"]
    assert added == [(0, "message"), (1, "reasoning"), (2, "function_call")]
    summary = [e for e in events if e.type == "response.reasoning_summary_text.delta"]
    assert [(e.output_index, e.delta) for e in summary] == [(1, "Add "), (1, "them.")]
    assert [item[0].rsplit(".", 1)[1] for item in items] == ["added", "done"] * 3  # (in turn)
    assert [item[1:] for item in items if item[0] == "response.output_item.done"] == added
    whole = await oai.responses.create(model="m", input="hi")
    assert [item.type for item in whole.output] == ["message", "reasoning", "function_call"]
    assert whole.output_text == "Yes."


async def test_anthropic_sends_the_thinking_blocks_after_the_texts(
    fake_llm: FakeLLMServer,  # noqa: F811
) -> None:
    fake_llm.reply(
        ["Yes."],
        thinking=["Add ", "them."],
        redacted_thinking="c2VjcmV0",
        tool_calls=[ADD],
        thinking_order="after_text",
        times=2,
    )
    tools: Any = [{"name": "add", "input_schema": {"type": "object"}}]
    async with anthropic.AsyncAnthropic(
        base_url=fake_llm.anthropic_base_url, api_key="test", max_retries=0
    ) as client:
        stream = await client.messages.create(
            model="claude-test", max_tokens=50, messages=ASK, tools=tools, stream=True
        )
        events = [event async for event in stream]
        whole = await client.messages.create(
            model="claude-test", max_tokens=50, messages=ASK, tools=tools
        )
    starts = [(e.index, e.content_block.type) for e in events if e.type == "content_block_start"]
    assert starts == [(0, "text"), (1, "thinking"), (2, "redacted_thinking"), (3, "tool_use")]
    deltas = [(e.index, e.delta.type) for e in events if e.type == "content_block_delta"]
    assert deltas[:4] == [
        (0, "text_delta"),
        (1, "thinking_delta"),
        (1, "thinking_delta"),
        (1, "signature_delta"),
    ]
    stops = [e.index for e in events if e.type == "content_block_stop"]
    assert stops == [0, 1, 2, 3]  # each block closed once, before the next starts
    assert [block.type for block in whole.content] == [
        "text",
        "thinking",
        "redacted_thinking",
        "tool_use",
    ]
    assert whole.content[1].signature == thinking_signature("Add them.")  # type: ignore[union-attr]


async def test_gemini_sends_the_thought_parts_after_the_text(
    fake_llm: FakeLLMServer,  # noqa: F811
) -> None:
    fake_llm.reply(["Yes", "."], thinking=["Add ", "them."], thinking_order="after_text", times=2)
    options = genai.types.HttpOptions(
        base_url=fake_llm.gemini_base_url,
        async_client_args={"transport": httpx2.AsyncHTTPTransport()},
    )
    client = genai.Client(api_key="test", http_options=options)
    parts = []
    async for chunk in await client.aio.models.generate_content_stream(
        model="gemini-test", contents="hi"
    ):
        for candidate in chunk.candidates or ():
            content = candidate.content
            parts += [(part.text, bool(part.thought)) for part in (content and content.parts) or ()]
    assert [part for part in parts if part[0]] == [
        ("Yes", False),
        (".", False),
        ("Add ", True),
        ("them.", True),
    ]
    whole = await client.aio.models.generate_content(model="gemini-test", contents="hi")
    [candidate] = whole.candidates or []
    assert candidate.content is not None
    got = [(part.text, bool(part.thought)) for part in candidate.content.parts or ()]
    assert got == [("Yes.", False), ("Add them.", True)]


async def test_gemini_sends_a_thought_part_beside_each_text_token_with_text(
    fake_llm: FakeLLMServer,  # noqa: F811
) -> None:
    fake_llm.reply(["Yes", "."], thinking=["Add ", "them", "."], thinking_order="with_text")
    options = genai.types.HttpOptions(
        base_url=fake_llm.gemini_base_url,
        async_client_args={"transport": httpx2.AsyncHTTPTransport()},
    )
    client = genai.Client(api_key="test", http_options=options)
    chunks = []
    async for chunk in await client.aio.models.generate_content_stream(
        model="gemini-test", contents="hi"
    ):
        for candidate in chunk.candidates or ():
            content = candidate.content
            parts = [(part.text, bool(part.thought)) for part in (content and content.parts) or ()]
            if any(text for text, _ in parts):
                chunks.append(parts)
    assert chunks == [
        [("Yes", False), ("Add ", True)],
        [(".", False), ("them", True)],
        [(".", True)],  # (the pieces past the tokens: alone)
    ]


@pytest.mark.parametrize("api", ["anthropic", "responses"])
async def test_an_api_without_an_event_of_text_and_thinking_refuses_a_reply_with_text(
    api: str,
    fake_llm: FakeLLMServer,  # noqa: F811
    oai: openai.AsyncOpenAI,
) -> None:
    """Was: sent as with ``"after_text"``, silently; now a 400 that names the APIs that
    have such an event."""
    fake_llm.reply(["Yes", "."], thinking=["Add ", "them."], thinking_order="with_text")
    said = "only Chat Completions .* and Gemini support it"
    if api == "responses":
        with pytest.raises(openai.BadRequestError, match=said):
            await oai.responses.create(model="m", input="hi", stream=True)
        return
    async with anthropic.AsyncAnthropic(
        base_url=fake_llm.anthropic_base_url, api_key="test", max_retries=0
    ) as client:
        with pytest.raises(anthropic.BadRequestError, match=said):
            await client.messages.create(
                model="claude-test", max_tokens=50, messages=ASK, stream=True
            )


async def test_bedrock_sends_the_reasoning_blocks_after_the_text(
    fake_llm: FakeLLMServer,  # noqa: F811
) -> None:
    fake_llm.reply(
        ["Yes", "."],
        thinking=["Add ", "them."],
        tool_calls=[ADD],
        thinking_order="after_text",
        times=2,
    )
    messages: Any = [{"role": "user", "content": [{"text": "hi"}]}]
    session = aiobotocore.session.get_session()
    async with session.create_client(
        "bedrock-runtime",
        endpoint_url=fake_llm.bedrock_base_url,
        region_name=AWS_TEST_CREDENTIALS["region_name"],
        aws_access_key_id=AWS_TEST_CREDENTIALS["aws_access_key_id"],
        aws_secret_access_key=AWS_TEST_CREDENTIALS["aws_secret_access_key"],
    ) as client:
        response = await client.converse_stream(modelId="m", messages=messages)
        stream = response["stream"]
        events = [event async for event in stream]
        stream.close()
        whole = await client.converse(modelId="m", messages=messages)
    blocks = []  # (block, what it carries), in order
    for event in events:
        if "contentBlockDelta" in event:
            delta = event["contentBlockDelta"]
            kind = next(iter(delta["delta"]))
            blocks.append((delta["contentBlockIndex"], kind))
        elif "contentBlockStop" in event:
            blocks.append((event["contentBlockStop"]["contentBlockIndex"], "stop"))
    assert [each for each in blocks if each[1] != "toolUse"] == [
        (0, "text"),
        (0, "text"),
        (0, "stop"),
        (1, "reasoningContent"),
        (1, "reasoningContent"),
        (1, "reasoningContent"),  # (its signature)
        (1, "stop"),
        (2, "stop"),
    ]
    content = whole["output"]["message"]["content"]
    assert [next(iter(block)) for block in content] == ["text", "reasoningContent", "toolUse"]


def test_a_thinking_order_that_is_none_of_the_three_is_refused(
    fake_llm: FakeLLMServer,  # noqa: F811
) -> None:
    with pytest.raises(FakeLLMServerError, match="thinking_order= as one of 'first', "):
        fake_llm.reply(["Yes."], thinking=["Hm."], thinking_order="last")  # type: ignore[arg-type]
