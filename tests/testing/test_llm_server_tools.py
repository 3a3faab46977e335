"""The fake LLM server's tool calls, read by the real OpenAI and Anthropic SDK clients.

Both wire formats, streamed and not: the text then the calls, streamed argument deltas,
several calls in one reply, malformed argument JSON, the 400s the APIs answer to calls and
results that do not pair up, replies scripted per model, and a response paused by the test.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from typing import Any

import anthropic
import httpx2
import openai
import pytest

from miniagents.testing import FakeLLMServer, FakeLLMServerError, ToolCall, thinking_signature
from tests.fakes.fixtures import fake_llm  # noqa: F401

WEATHER = ToolCall("get_weather", {"city": "Paris"}, pieces=3)
ADD = ToolCall("add", {"a": 1, "b": 2}, id="call_add")
TOOLS_OPENAI: list[Any] = [
    {"type": "function", "function": {"name": "add", "parameters": {"type": "object"}}}
]
TOOLS_ANTHROPIC: list[Any] = [{"name": "add", "input_schema": {"type": "object"}}]


@pytest.fixture
async def oai(fake_llm: FakeLLMServer) -> AsyncIterator[openai.AsyncOpenAI]:  # noqa: F811
    async with openai.AsyncOpenAI(
        base_url=fake_llm.openai_base_url, api_key="test", max_retries=0
    ) as client:
        yield client


@pytest.fixture
async def ant(fake_llm: FakeLLMServer) -> AsyncIterator[anthropic.AsyncAnthropic]:  # noqa: F811
    async with anthropic.AsyncAnthropic(
        base_url=fake_llm.anthropic_base_url, api_key="test", max_retries=0
    ) as client:
        yield client


def test_a_tool_call_splits_its_arguments_into_deltas() -> None:
    assert WEATHER.text == '{"city":"Paris"}'
    assert WEATHER.deltas() == ['{"city', '":"Par', 'is"}']
    assert "".join(WEATHER.deltas()) == WEATHER.text
    assert ToolCall("ping").deltas() == ["{", "}"]
    assert ToolCall("ping", "").deltas() == []
    assert ToolCall("x", '{"a": 1,', pieces=1).deltas() == ['{"a": 1,']
    assert ToolCall("x", '{"a": 1,').input() == '{"a": 1,'  # not JSON: the raw text


async def test_openai_streams_text_then_each_call_with_its_argument_deltas(
    fake_llm: FakeLLMServer,  # noqa: F811
    oai: openai.AsyncOpenAI,
) -> None:
    fake_llm.reply(tokens=["Let me ", "check."], tool_calls=[WEATHER, ADD])
    stream = await oai.chat.completions.create(
        model="gpt-test", messages=[{"role": "user", "content": "hi"}], stream=True
    )
    chunks = [chunk async for chunk in stream]
    deltas = [chunk.choices[0].delta for chunk in chunks if chunk.choices]
    assert "".join(delta.content or "" for delta in deltas) == "Let me check."
    calls = [call for delta in deltas for call in delta.tool_calls or []]
    starts = [
        (call.index, call.id, call.function and call.function.name) for call in calls if call.id
    ]
    assert starts[0][::2] == (0, "get_weather")
    assert str(starts[0][1]).startswith("call_fake")
    assert starts[1] == (1, "call_add", "add")
    pieces = {0: [], 1: []}  # type: dict[int, list[str]]
    for call in calls:
        if call.function and call.function.arguments and not call.id:
            pieces[call.index].append(call.function.arguments)
    assert pieces == {0: ['{"city', '":"Par', 'is"}'], 1: ['{"a":1,', '"b":2}']}
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


async def test_openai_not_streamed_gives_the_calls_in_the_message(
    fake_llm: FakeLLMServer,  # noqa: F811
    oai: openai.AsyncOpenAI,
) -> None:
    fake_llm.reply(tool_calls=[WEATHER, ADD])
    completion = await oai.chat.completions.create(
        model="gpt-test", messages=[{"role": "user", "content": "hi"}]
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None  # no text: no echo of the prompt either
    calls = choice.message.tool_calls or []
    assert [(call.id, call.function.name, call.function.arguments) for call in calls] == [  # type: ignore[union-attr]
        (calls[0].id, "get_weather", '{"city":"Paris"}'),
        ("call_add", "add", '{"a":1,"b":2}'),
    ]


async def test_anthropic_streams_a_tool_use_block_per_call(
    fake_llm: FakeLLMServer,  # noqa: F811
    ant: anthropic.AsyncAnthropic,
) -> None:
    fake_llm.reply(tokens=["Checking."], tool_calls=[WEATHER, ADD])
    stream = await ant.messages.create(
        model="claude-test",
        max_tokens=50,
        messages=[{"role": "user", "content": "hi"}],
        tools=TOOLS_ANTHROPIC,
        stream=True,
    )
    events = [event async for event in stream]
    assert [event.type for event in events] == [
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "content_block_start",
        *["content_block_delta"] * 3,
        "content_block_stop",
        "content_block_start",
        *["content_block_delta"] * 2,
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    blocks = [event.content_block for event in events if event.type == "content_block_start"]
    assert [block.type for block in blocks] == ["text", "tool_use", "tool_use"]
    assert [(block.name, block.id) for block in blocks[1:]] == [  # type: ignore[union-attr]
        ("get_weather", blocks[1].id),  # type: ignore[union-attr]
        ("add", "call_add"),
    ]
    assert blocks[1].id.startswith("toolu_fake")  # type: ignore[union-attr]
    partial: dict[int, str] = {}
    for event in events:
        if event.type == "content_block_delta" and event.delta.type == "input_json_delta":
            partial[event.index] = partial.get(event.index, "") + event.delta.partial_json
    assert partial == {1: '{"city":"Paris"}', 2: '{"a":1,"b":2}'}
    assert events[-2].type == "message_delta"
    assert events[-2].delta.stop_reason == "tool_use"


async def test_anthropic_not_streamed_gives_tool_use_blocks_with_their_input(
    fake_llm: FakeLLMServer,  # noqa: F811
    ant: anthropic.AsyncAnthropic,
) -> None:
    fake_llm.reply(tool_calls=[ADD, ToolCall("broken", '{"a": 1,')])
    message = await ant.messages.create(
        model="claude-test",
        max_tokens=50,
        messages=[{"role": "user", "content": "hi"}],
        tools=TOOLS_ANTHROPIC,
    )
    assert message.stop_reason == "tool_use"
    assert [block.type for block in message.content] == ["tool_use", "tool_use"]
    first, second = message.content
    assert (first.id, first.name, first.input) == ("call_add", "add", {"a": 1, "b": 2})  # type: ignore[union-attr]
    assert second.input == '{"a": 1,'  # type: ignore[union-attr]


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
async def test_malformed_argument_json_is_streamed_as_written(
    fake_llm: FakeLLMServer,  # noqa: F811
    oai: openai.AsyncOpenAI,
    ant: anthropic.AsyncAnthropic,
    provider: str,
) -> None:
    fake_llm.reply(tool_calls=[ToolCall("add", '{"a": 1, "b":', pieces=2)])
    if provider == "openai":
        stream = await oai.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "hi"}], stream=True
        )
        text = "".join(
            [
                call.function.arguments or ""
                async for chunk in stream
                for call in (chunk.choices[0].delta.tool_calls or [] if chunk.choices else [])
                if call.function
            ]
        )
    else:
        events = await ant.messages.create(
            model="m",
            max_tokens=5,
            messages=[{"role": "user", "content": "hi"}],
            tools=TOOLS_ANTHROPIC,
            stream=True,
        )
        text = "".join(
            [
                event.delta.partial_json
                async for event in events
                if event.type == "content_block_delta" and event.delta.type == "input_json_delta"
            ]
        )
    assert text == '{"a": 1, "b":'


async def test_faults_count_argument_deltas_as_content_events(
    fake_llm: FakeLLMServer,  # noqa: F811
    oai: openai.AsyncOpenAI,
) -> None:
    fake_llm.reply(tokens=["a"], tool_calls=[ToolCall("add", {"a": 1}, pieces=2)], cut_after=2)
    stream = await oai.chat.completions.create(
        model="m", messages=[{"role": "user", "content": "hi"}], stream=True
    )
    received: list[str] = []

    async def read() -> None:
        async for chunk in stream:
            for choice in chunk.choices:
                received.append(choice.delta.content or "")
                for call in choice.delta.tool_calls or []:
                    received.append(call.function.arguments or "" if call.function else "")

    with pytest.raises(openai.APIConnectionError):
        await read()
    assert [piece for piece in received if piece] == ["a", '{"a"']
    assert fake_llm.wait_finished(0).outcome == "cut"


# -- requests the APIs refuse --------------------------------------------------------------

CALL = {"id": "c1", "type": "function", "function": {"name": "add", "arguments": "{}"}}


@pytest.mark.parametrize(
    ("messages", "says"),
    [
        (
            [{"role": "user", "content": "hi"}, {"role": "assistant", "tool_calls": [CALL]}],
            "The following tool_call_ids did not have response messages: c1",
        ),
        (
            [
                {"role": "assistant", "tool_calls": [CALL]},
                {"role": "user", "content": "and?"},
                {"role": "tool", "tool_call_id": "c1", "content": "3"},
            ],
            "did not have response messages: c1",
        ),
        (
            [
                {"role": "user", "content": "hi"},
                {"role": "tool", "tool_call_id": "c9", "content": "3"},
            ],
            "messages with role 'tool' must be a response to a preceeding message",
        ),
    ],
    ids=["call-without-result", "result-too-late", "result-without-call"],
)
async def test_openai_refuses_calls_and_results_that_do_not_pair_up(
    fake_llm: FakeLLMServer,  # noqa: F811
    oai: openai.AsyncOpenAI,
    messages: list[Any],
    says: str,
) -> None:
    with pytest.raises(openai.BadRequestError, match=says):
        await oai.chat.completions.create(model="m", messages=messages)
    good: list[Any] = [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "tool_calls": [CALL]},
    ]
    good.append({"role": "tool", "tool_call_id": "c1", "content": "3"})
    fake_llm.reply(["ok"])
    completion = await oai.chat.completions.create(model="m", messages=good, tools=TOOLS_OPENAI)
    assert completion.choices[0].message.content == "ok"
    assert fake_llm.pending == 0


ASK = {"role": "user", "content": "Add them."}  # (a conversation starts with the user)
USE = {"type": "tool_use", "id": "t1", "name": "add", "input": {}}
RESULT = {"type": "tool_result", "tool_use_id": "t1", "content": "3"}
TEXT = {"type": "text", "text": "and?"}


@pytest.mark.parametrize(
    ("messages", "tools", "says"),
    [
        (
            [ASK, {"role": "assistant", "content": [USE]}, {"role": "user", "content": [RESULT]}],
            False,
            "must define tools",
        ),
        (
            [ASK, {"role": "assistant", "content": [USE]}, {"role": "user", "content": [TEXT]}],
            True,
            "`tool_use` ids were found without `tool_result` blocks immediately after: t1",
        ),
        (
            [
                ASK,
                {"role": "assistant", "content": [USE]},
                {"role": "user", "content": [TEXT, RESULT]},
            ],
            True,
            "`tool_result` blocks must come first",
        ),
        (
            [{"role": "user", "content": [RESULT]}],
            True,
            "unexpected `tool_use_id` found in `tool_result` blocks: t1",
        ),
        (
            [
                ASK,
                {"role": "assistant", "content": [USE, USE]},
                {"role": "user", "content": [RESULT, RESULT]},
            ],
            True,
            "messages.1: `tool_use` ids must be unique",
        ),
        (
            [
                ASK,
                {"role": "assistant", "content": [USE]},
                {"role": "user", "content": [RESULT]},
                {"role": "assistant", "content": [USE]},
                {"role": "user", "content": [RESULT]},
            ],
            True,
            "messages.3: `tool_use` ids must be unique",
        ),
    ],
    ids=[
        "no-tools",
        "use-without-result",
        "result-not-first",
        "result-without-use",
        "one-id-twice-in-a-turn",
        "one-id-in-two-turns",
    ],
)
async def test_anthropic_refuses_tool_blocks_that_do_not_pair_up(
    fake_llm: FakeLLMServer,  # noqa: F811
    ant: anthropic.AsyncAnthropic,
    messages: list[Any],
    tools: bool,
    says: str,
) -> None:
    extra: dict[str, Any] = {"tools": TOOLS_ANTHROPIC} if tools else {}
    with pytest.raises(anthropic.BadRequestError, match=says):
        await ant.messages.create(model="m", max_tokens=5, messages=messages, **extra)
    good: list[Any] = [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": [{"type": "text", "text": "Adding."}, USE]},
        {"role": "user", "content": [RESULT, TEXT]},
    ]
    fake_llm.reply(["ok"])
    message = await ant.messages.create(
        model="m", max_tokens=5, messages=good, tools=TOOLS_ANTHROPIC
    )
    assert message.content[0].text == "ok"  # type: ignore[union-attr]


async def test_anthropic_streams_the_scripted_thinking_first_signed(
    fake_llm: FakeLLMServer,  # noqa: F811
    ant: anthropic.AsyncAnthropic,
) -> None:
    fake_llm.reply(thinking=["Add ", "them."], redacted_thinking="c2VjcmV0", tool_calls=[ADD])
    stream = await ant.messages.create(
        model="claude-test",
        max_tokens=50,
        messages=[{"role": "user", "content": "hi"}],
        tools=TOOLS_ANTHROPIC,
        stream=True,
    )
    events = [event async for event in stream]
    blocks = [event.content_block for event in events if event.type == "content_block_start"]
    assert [block.type for block in blocks] == ["thinking", "redacted_thinking", "tool_use"]
    assert blocks[1].data == "c2VjcmV0"  # type: ignore[union-attr]
    deltas = [
        (event.index, event.delta.type) for event in events if event.type == "content_block_delta"
    ]
    assert deltas[:3] == [(0, "thinking_delta"), (0, "thinking_delta"), (0, "signature_delta")]
    signatures = [
        event.delta.signature
        for event in events
        if event.type == "content_block_delta" and event.delta.type == "signature_delta"
    ]
    assert signatures == [thinking_signature("Add them.")]
    stops = [event.index for event in events if event.type == "content_block_stop"]
    assert stops == [0, 1, 2]  # each block closed once
    fake_llm.reply(thinking="Hm.", tool_calls=[ADD])
    whole = await ant.messages.create(
        model="claude-test",
        max_tokens=50,
        messages=[{"role": "user", "content": "hi"}],
        tools=TOOLS_ANTHROPIC,
    )
    assert [block.type for block in whole.content] == ["thinking", "tool_use"]
    assert whole.content[0].signature == thinking_signature("Hm.")  # type: ignore[union-attr]


async def test_openai_apis_send_the_scripted_thinking_as_reasoning_first(
    fake_llm: FakeLLMServer,  # noqa: F811
    oai: openai.AsyncOpenAI,
) -> None:
    # Chat Completions: reasoning_content (DeepSeek's, vLLM's), a chunk per piece, before
    # the text; the Responses API: a reasoning item's summary, a delta per piece
    fake_llm.reply(["Yes."], thinking=["Add ", "them."], times=4)
    messages: Any = [{"role": "user", "content": "hi"}]
    chunks = await oai.chat.completions.create(model="m", messages=messages, stream=True)
    deltas = [chunk.choices[0].delta async for chunk in chunks if chunk.choices]
    extras = [(delta.model_extra or {}).get("reasoning_content") for delta in deltas]
    assert extras[:4] == [None, "Add ", "them.", None]
    assert [delta.content for delta in deltas][3] == "Yes."
    completion = await oai.chat.completions.create(model="m", messages=messages)
    assert (completion.choices[0].message.model_extra or {})["reasoning_content"] == "Add them."
    stream = await oai.responses.create(model="m", input="hi", stream=True)
    events = [event async for event in stream]
    summary = [e.delta for e in events if e.type == "response.reasoning_summary_text.delta"]
    assert summary == ["Add ", "them."]
    added = [e.item.type for e in events if e.type == "response.output_item.added"]
    assert added == ["reasoning", "message"]
    whole = await oai.responses.create(model="m", input="hi")
    assert [item.type for item in whole.output] == ["reasoning", "message"]
    assert whole.output[0].summary[0].text == "Add them."  # type: ignore[union-attr]
    assert whole.output_text == "Yes."


def test_gemini_sends_the_scripted_thinking_as_thought_parts_first(
    fake_llm: FakeLLMServer,  # noqa: F811
) -> None:
    fake_llm.reply(["Yes."], thinking=["Add ", "them."])
    url = f"{fake_llm.gemini_base_url}/v1beta/models/gemini-test:generateContent"
    body = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
    response = httpx2.post(url, json=body, headers={"x-goog-api-key": "test"})
    parts = response.json()["candidates"][0]["content"]["parts"]
    assert parts == [{"text": "Add them.", "thought": True}, {"text": "Yes."}]


THINKING = {"type": "enabled", "budget_tokens": 1024}
THOUGHT = {"type": "thinking", "thinking": "Add.", "signature": thinking_signature("Add.")}


@pytest.mark.parametrize(
    ("assistant", "thinking", "says"),
    [
        ([USE], THINKING, "Expected `thinking` or `redacted_thinking`, but found `tool_use`"),
        ([TEXT, USE], THINKING, "messages.1.content.0.type: Expected `thinking` or"),
        ([{**THOUGHT, "thinking": "Sub."}, USE], THINKING, "Invalid `signature` in `thinking`"),
        ([{**THOUGHT, "signature": ""}, USE], None, "messages.1.content.0: Invalid `signature`"),
        ([THOUGHT, USE], THINKING, None),
        ([{"type": "redacted_thinking", "data": "c2VjcmV0"}, USE], THINKING, None),
        ([USE], None, None),  # (thinking not enabled)
    ],
    ids=["missing", "text-first", "altered", "unsigned", "thinking", "redacted", "disabled"],
)
async def test_anthropic_refuses_a_tool_loop_without_its_thinking_when_thinking_is_on(
    fake_llm: FakeLLMServer,  # noqa: F811
    ant: anthropic.AsyncAnthropic,
    assistant: list[Any],
    thinking: dict[str, Any] | None,
    says: str | None,
) -> None:
    messages: list[Any] = [
        ASK,
        {"role": "assistant", "content": assistant},
        {"role": "user", "content": [RESULT]},
    ]
    extra: dict[str, Any] = {} if thinking is None else {"thinking": thinking}
    create = ant.messages.create
    if says is not None:
        with pytest.raises(anthropic.BadRequestError, match=re.escape(says)):
            await create(model="m", max_tokens=5, messages=messages, tools=TOOLS_ANTHROPIC, **extra)
        return
    fake_llm.reply(["3."])
    message = await create(
        model="m", max_tokens=5, messages=messages, tools=TOOLS_ANTHROPIC, **extra
    )
    assert message.content[0].text == "3."


# -- the turns each API takes (issue 62, item 1: a request the API refuses fails here too) -----


@pytest.mark.parametrize(
    ("messages", "says"),
    [
        ([{"role": "model", "content": "Hi"}], "messages.0.role: Input should be 'user' or"),
        ([{"role": "assistant", "content": "Hi"}], 'first message must use the "user" role'),
        (
            [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}],
            'roles must alternate between "user" and "assistant", but found multiple "user"',
        ),
        (
            [{"role": "user", "content": ""}, {"role": "assistant", "content": "Hi"}],
            "messages.0: all messages must have non-empty content except for the optional",
        ),
        (
            [{"role": "user", "content": [{"type": "text", "text": " "}]}],
            "text content blocks must be non-empty",
        ),
        (
            [{"role": "user", "content": "a"}, {"role": "assistant", "content": "Sure. "}],
            "final assistant content cannot end with trailing whitespace",
        ),
        (
            [
                ASK,
                {"role": "assistant", "content": [{**USE, "id": "functions.add:0"}]},
                {"role": "user", "content": [{**RESULT, "tool_use_id": "functions.add:0"}]},
            ],
            "tool_use.id: String should match pattern",
        ),
    ],
    ids=["role", "first", "alternate", "empty", "blank-text", "trailing-space", "tool-id"],
)
async def test_anthropic_refuses_turns_as_claude_does(
    ant: anthropic.AsyncAnthropic, messages: list[Any], says: str
) -> None:
    with pytest.raises(anthropic.BadRequestError, match=re.escape(says)):
        await ant.messages.create(model="m", max_tokens=5, messages=messages, tools=TOOLS_ANTHROPIC)


async def test_a_last_assistant_message_may_be_empty_for_anthropic(
    fake_llm: FakeLLMServer,  # noqa: F811
    ant: anthropic.AsyncAnthropic,
) -> None:
    fake_llm.reply(["ok"])
    messages: list[Any] = [ASK, {"role": "assistant", "content": ""}]
    message = await ant.messages.create(model="m", max_tokens=5, messages=messages)
    assert message.content[0].text == "ok"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("messages", "says"),
    [
        (
            [{"role": "critic", "content": "Too long."}],
            "Invalid value: 'critic'. Supported values are: 'system', 'assistant', 'user'",
        ),
        (
            [
                {"role": "user", "content": "hi"},
                {"role": "assistant", "tool_calls": [{**CALL, "id": "x" * 41}]},
                {"role": "tool", "tool_call_id": "x" * 41, "content": "3"},
            ],
            "Invalid 'messages[1].tool_calls[0].id': string too long. Expected a string with "
            "maximum length 40, but got a string with length 41 instead.",
        ),
    ],
    ids=["role", "call-id"],
)
async def test_openai_refuses_a_role_it_has_not_and_a_long_call_id(
    oai: openai.AsyncOpenAI, messages: list[Any], says: str
) -> None:
    with pytest.raises(openai.BadRequestError, match=re.escape(says)):
        await oai.chat.completions.create(model="m", messages=messages, tools=TOOLS_OPENAI)


async def test_the_responses_api_refuses_a_role_it_has_not(oai: openai.AsyncOpenAI) -> None:
    given: Any = [{"role": "tool", "content": "3"}]  # (the SDK's types refuse it too)
    with pytest.raises(openai.BadRequestError, match=re.escape("Invalid value: 'tool'.")):
        await oai.responses.create(model="m", input=given)


# -- scripting concurrent calls ------------------------------------------------------------


async def test_a_reply_for_a_model_goes_only_to_a_request_for_that_model(
    fake_llm: FakeLLMServer,  # noqa: F811
    oai: openai.AsyncOpenAI,
) -> None:
    fake_llm.reply(["for the writer"], for_model="writer")
    fake_llm.reply(["for anyone"])

    async def ask(model: str) -> str | None:
        completion = await oai.chat.completions.create(
            model=model, messages=[{"role": "user", "content": "hi"}]
        )
        return completion.choices[0].message.content

    assert await ask("critic") == "for anyone"
    assert await ask("critic") == "hi"  # the script has only the writer's reply left: echo
    assert fake_llm.pending == 1
    assert await ask("writer") == "for the writer"
    with pytest.raises(FakeLLMServerError, match=r"takes times= as a whole number of at least 1"):
        fake_llm.reply(["x"], times=0)


async def test_a_paused_response_goes_on_when_the_test_resumes_it(
    fake_llm: FakeLLMServer,  # noqa: F811
    ant: anthropic.AsyncAnthropic,
) -> None:
    fake_llm.reply(["one", " two", " three"], pause_after=2)
    stream = await ant.messages.create(
        model="m", max_tokens=5, messages=[{"role": "user", "content": "hi"}], stream=True
    )
    texts: list[str] = []
    events = aiter(stream)
    while len(texts) < 2:
        event = await anext(events)
        if event.type == "content_block_delta" and event.delta.type == "text_delta":
            texts.append(event.delta.text)
    record = await fake_llm.wait_paused_async(0)
    assert (record.paused, record.finished) == (True, False)
    record.resume()
    rest = [event async for event in events]
    texts += [
        event.delta.text
        for event in rest
        if event.type == "content_block_delta" and event.delta.type == "text_delta"
    ]
    assert texts == ["one", " two", " three"]
    assert (await fake_llm.wait_finished_async(0)).outcome == "complete"
    assert (record.paused, record.finished) == (False, True)
    assert json.loads(record.raw_body)["stream"] is True
