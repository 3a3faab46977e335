"""Streams of the three APIs that the fake server does not send, read by the real SDK clients.

Each reply is a body of server-sent events (``tests/ext/llm/wire.py``) paced on a virtual
clock: what takes seconds here takes no time.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx2
import openai
import pytest

from miniagents import MiniAgents
from miniagents.ext.llm import AssistantMessage, Budget, TokenUsage, UsageTotals, _openai_chat
from miniagents.ext.llm._openai_options import OpenAIOptions
from miniagents.ext.llm.errors import LLMResponseError, LLMTimeoutError
from miniagents.ext.llm.prompt import PromptText
from miniagents.ext.llm.provider import LLMCall
from miniagents.testing import run_with_virtual_time
from tests.ext.llm.wire import (
    APIS,
    EVENTS,
    chat_events,
    error_reply,
    events_reply,
    paced_agent,
    replying_agent,
    response,
    sse,
)


@pytest.mark.parametrize("api", APIS)
def test_thinking_events_keep_a_reply_alive_past_its_stall_timeout(api: str) -> None:
    """Extended thinking, reasoning content or summaries: events of the reply, if not text.

    Ten thinking events, 0.4 s apart, with a stall timeout of 1 s: 4 s with no text, yet
    never 1 s without an event. The same stream with events 1.5 s apart stalls, and says
    that nothing came for 1 second.
    """
    before, deltas, after = EVENTS[api](["Answer."], thinking=["Hmm. "] * 10)

    async def answer(gap: float) -> str:
        agent = paced_agent(api, [*before, *deltas, *after], gap)
        async with MiniAgents(llm_stall_timeout=1.0):
            return str((await agent.inquire("Think first."))[0])

    assert run_with_virtual_time(answer(0.4)) == "Answer."
    with pytest.raises(LLMTimeoutError, match="sent nothing for 1 seconds"):
        run_with_virtual_time(answer(1.5))


@pytest.mark.parametrize("include_usage", [True, False], ids=["asked", "turned-off"])
def test_a_chat_stream_without_usage_is_complete_its_usage_unknown(
    include_usage: bool, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A finish reason then ``[DONE]``, no usage chunk: a server that ignores include_usage.

    The reply is kept, its usage's counts ``None``; a budget counts the call as unpriced
    (its streamed pieces as output tokens), and one warning says so, whichever call.
    """
    monkeypatch.setattr(_openai_chat, "_WARNED", set())
    before, deltas, after = chat_events(["Hel", "lo"], usage=False)
    extra = {} if include_usage else {"stream_options": {"include_usage": False}}

    async def main() -> tuple[list[AssistantMessage], UsageTotals]:
        agent = paced_agent("chat", [*before, *deltas, *after])
        budget = Budget()
        async with MiniAgents():
            replies = [await agent.inquire("Hi", budget=budget, extra_options=extra) for _ in "12"]
        return [reply[0] for reply in replies], budget.usage

    messages, usage = run_with_virtual_time(main())
    assert [(str(message), message.finish_reason) for message in messages] == [
        ("Hello", "stop")
    ] * 2
    assert all(message.usage == TokenUsage() for message in messages)
    assert (usage.requests, usage.unpriced_requests) == (2, 2)
    assert (usage.input_tokens, usage.output_tokens, usage.cost_usd) == (0, 4, 0.0)
    [warning] = [record for record in caplog.records if "without its usage" in record.message]
    assert warning.levelname == "WARNING"
    said = "asked for it (the server ignores it)" if include_usage else "does not ask for it"
    assert said in warning.message
    assert "unpriced_requests" in warning.message


def test_a_chat_stream_without_a_finish_reason_is_incomplete() -> None:
    before, deltas, _ = chat_events(["Hel", "lo"])

    async def main() -> None:
        async with MiniAgents():
            await paced_agent("chat", [*before, *deltas]).inquire("Hi")

    with pytest.raises(LLMResponseError, match="no chunk gave a finish_reason"):
        run_with_virtual_time(main())


@pytest.mark.parametrize("api", APIS)
def test_a_stall_while_the_sdk_waits_to_retry_says_which_http_error_it_retries(api: str) -> None:
    """A 429 whose Retry-After (5 s) is past the stall timeout (1 s): the SDK was still
    waiting when the agent stopped the call; the stall error names the 429, its cause."""

    async def main() -> None:
        agent = replying_agent(api, error_reply(429, {"retry-after": "5"}))
        async with MiniAgents(llm_stall_timeout=1.0):
            await agent.inquire("Hi", max_retries=1)

    with pytest.raises(LLMTimeoutError) as raised:
        run_with_virtual_time(main())
    error = raised.value
    assert str(error).startswith(
        f"The agent {error_alias(api)} stopped its call: the model 'm' sent nothing for 1 "
        "seconds (its stall_timeout), while the SDK waited to retry the request that the "
        "provider had answered with HTTP 429 Too Many Requests (see __cause__). Give it longer"
    )
    assert str(error).endswith(
        "; or " + error_alias(api).lower() + ".fork(max_retries=0) to get that error at once."
    )
    assert isinstance(error.__cause__, httpx2.HTTPStatusError)
    assert error.__cause__.response.status_code == 429


@pytest.mark.parametrize("api", APIS)
def test_an_error_retried_before_the_reply_began_is_not_the_cause_of_a_later_stall(
    api: str,
) -> None:
    """A 500, retried at once, then a reply that stops after its first event."""
    before, deltas, after = EVENTS[api](["Hel", "lo"])

    async def main() -> None:
        stopping = events_reply([*before, *deltas, *after], gap=1e6)
        agent = replying_agent(api, error_reply(500, {"retry-after-ms": "1"}), stopping)
        async with MiniAgents(llm_stall_timeout=1.0):
            await agent.inquire("Hi", max_retries=1)

    with pytest.raises(LLMTimeoutError) as raised:
        run_with_virtual_time(main())
    assert str(raised.value).endswith("or None to wait as long as it takes.")
    assert raised.value.__cause__ is None


def error_alias(api: str) -> str:
    """The alias of the agent of ``api``."""
    return "ANTHROPIC_AGENT" if api == "anthropic" else "OPENAI_AGENT"


def test_a_chat_chunk_of_a_tool_call_is_its_events_without_a_sign_of_life() -> None:
    """A sign of life ("") only for a chunk that gives nothing else: a tool call's chunks
    give their call events alone, as a text chunk gives its token alone."""
    tool_chunks = [
        sse(
            None,
            {
                "id": "c",
                "object": "chat.completion.chunk",
                "created": 1,
                "model": "m",
                "choices": [{"index": 0, "finish_reason": None, "delta": delta}],
            },
        )
        for delta in (
            {
                "tool_calls": [
                    {
                        "index": 0,
                        "id": "t1",
                        "type": "function",
                        "function": {"name": "add", "arguments": ""},
                    }
                ]
            },
            {"tool_calls": [{"index": 0, "function": {"arguments": '{"a": 1}'}}]},
        )
    ]
    before, _deltas, after = chat_events([], usage=True)

    async def events() -> list[object]:
        http = httpx2.AsyncClient(
            transport=httpx2.MockTransport(
                lambda _: events_reply([*before, *tool_chunks, *after])()
            )
        )
        client = openai.AsyncOpenAI(api_key="test", max_retries=0, http_client=http)
        call = LLMCall(model="m", stream=True, system=None, messages=(PromptText("user", "Hi"),))
        return [
            event
            async for event in _openai_chat.chat_reply(
                lambda _: client, call, OpenAIOptions(model="m")
            )
        ]

    seen = run_with_virtual_time(events())
    signs = [event for event in seen if event == ""]
    # the role chunk and the finish chunk give nothing else; the usage chunk neither
    assert len(signs) == 3
    assert len(seen) == len(signs) + 2 + 1  # the call's two events, and the Finish


def _tool_chunk(*calls: dict[str, object]) -> bytes:
    """A Chat Completions chunk of ``calls`` (each a ``tool_calls`` entry, with its index)."""
    choice = {"index": 0, "finish_reason": None, "delta": {"tool_calls": list(calls)}}
    chunk = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m"}
    return sse(None, {**chunk, "choices": [choice]})


def test_chat_calls_of_one_id_whose_deltas_interleave_each_keep_their_arguments() -> None:
    """A model that wrote one id for two calls, their deltas interleaved by index: each
    call runs with its own arguments, the second renamed, and each result goes back."""

    def start(index: int) -> dict[str, object]:
        function = {"name": "add", "arguments": ""}
        return {"index": index, "id": "dup", "type": "function", "function": function}

    def piece(index: int, text: str) -> dict[str, object]:
        return {"index": index, "function": {"arguments": text}}

    ran: list[int] = []

    def add(a: int) -> int:
        """Add one.

        Args:
            a: A number.
        """
        ran.append(a)
        return a + 1

    calls = [
        _tool_chunk(start(0)),
        _tool_chunk(start(1)),
        _tool_chunk(piece(0, '{"a": ')),
        _tool_chunk(piece(1, '{"a": ')),
        _tool_chunk(piece(1, "2}"), piece(0, "1}")),
    ]
    assert run_with_virtual_time(_added(calls, add)) == _ADDED
    assert sorted(ran) == [1, 2]  # sync tools run in threads, side by side


def test_chat_continuation_deltas_that_repeat_id_and_name_keep_to_their_call() -> None:
    """A server that sends the id and the name again in every delta of a streamed call (two
    calls of one id, the second renamed): each index's deltas make one call, not one each."""

    def piece(index: int, text: str) -> dict[str, object]:
        function = {"name": "add", "arguments": text}
        return {"index": index, "id": "dup", "type": "function", "function": function}

    def add(a: int) -> int:
        """Add one.

        Args:
            a: A number.
        """
        return a + 1

    calls = [
        _tool_chunk(piece(0, '{"a": ')),
        _tool_chunk(piece(1, '{"a": ')),
        _tool_chunk(piece(0, "1}")),
        _tool_chunk(piece(1, "2}")),
    ]
    assert run_with_virtual_time(_added(calls, add)) == _ADDED


_ADDED = [
    ("LLMToolCallMessage", "dup", '{"a": 1}'),
    ("LLMToolCallMessage", "dup_2", '{"a": 2}'),
    ("LLMToolResultMessage", "dup", "2"),
    ("LLMToolResultMessage", "dup_2", "3"),
    ("OpenAIMessage", "", "Done."),
]
"""What a Chat agent's reply is for two calls of ``add`` (id ``dup``, ``a`` 1 and 2)."""


async def _added(calls: list[bytes], add: Callable[[int], int]) -> list[tuple[str, str, str]]:
    """The reply (class, call id, text) of a Chat agent whose model sent ``calls`` (chunks)."""
    before, _deltas, after = chat_events([])
    done = chat_events(["Done."])
    agent = replying_agent(
        "chat",
        events_reply([*before, *calls, *after]),
        events_reply([event for part in done for event in part]),
    )
    async with MiniAgents():
        reply = await agent.inquire("Add one to 1 and to 2.", tools=[add])
    return [
        (type(message).__name__, str(getattr(message, "call_id", "")), str(message))
        for message in reply
    ]


@pytest.mark.parametrize("api", APIS)
def test_a_whole_reply_that_is_not_json_is_a_response_error_not_an_attribute_error(
    api: str,
) -> None:
    """``stream=False`` answered 200 with a web page (a proxy's, a wrong base URL): the SDK
    hands back the body as a ``str``; the call fails with an ``LLMResponseError`` that
    shows the start of the body and names the base URL to check."""
    page = b"<html><body>Sign in to the network</body></html>"

    async def main() -> None:
        body = lambda: httpx2.Response(200, content=page, headers={"content-type": "text/html"})  # noqa: E731
        async with MiniAgents():
            await replying_agent(api, body).inquire("Hi", stream=False)

    with pytest.raises(LLMResponseError) as raised:
        run_with_virtual_time(main())
    message = str(raised.value)
    assert "not the JSON of its API" in message
    assert "'<html><body>Sign in to the network</body></html>'" in message
    assert "base URL" in message


def test_a_whole_chat_completion_without_choices_is_a_response_error() -> None:
    """A completion whose ``choices`` list is empty: no reply, said so, not an IndexError."""
    completion = {
        "id": "c",
        "object": "chat.completion",
        "created": 1,
        "model": "m",
        "choices": [],
        "usage": {"prompt_tokens": 1, "completion_tokens": 0, "total_tokens": 1},
    }

    async def main() -> None:
        async with MiniAgents():
            await replying_agent("chat", lambda: httpx2.Response(200, json=completion)).inquire(
                "Hi", stream=False
            )

    with pytest.raises(LLMResponseError, match="no choices"):
        run_with_virtual_time(main())


def test_a_whole_responses_message_with_null_content_is_a_reply_without_text() -> None:
    """A Responses reply (``stream=False``) whose message item has ``content: null`` (a
    server of another make): the reply has no text, as a streamed one would have; not a
    bare ``TypeError``."""
    item = {"type": "message", "id": "m1", "role": "assistant", "status": "completed"}
    body = response("completed", [{**item, "content": None}])

    async def main() -> list[str]:
        async with MiniAgents():
            agent = replying_agent("responses", lambda: httpx2.Response(200, json=body))
            return [str(message) for message in await agent.inquire("Hi", stream=False)]

    assert run_with_virtual_time(main()) == [""]


def test_negative_token_counts_of_a_server_are_unknown_not_a_credit_to_the_budget() -> None:
    """A server that reports ``prompt_tokens: -1000000``: the reply is kept, those counts
    are unknown (``None``), the call is unpriced, and a budget is not credited with them
    (was: a bare ``ValueError`` of the price table, and a budget whose total went down)."""
    base = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o-mini"}
    text = {"index": 0, "delta": {"role": "assistant", "content": "Hi"}, "finish_reason": None}
    counts = {"prompt_tokens": -1_000_000, "completion_tokens": -5, "total_tokens": -1_000_005}
    events = [
        sse(None, {**base, "choices": [text]}),
        sse(None, {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}),
        sse(None, {**base, "choices": [], "usage": counts}),
        sse(None, "[DONE]"),
    ]
    budget = Budget(max_total_tokens=1000)

    async def main() -> AssistantMessage:
        async with MiniAgents():
            reply = paced_agent("chat", events).inquire("Hi", model="gpt-4o-mini", budget=budget)
            message = (await reply)[0]
        assert isinstance(message, AssistantMessage)
        return message

    message = run_with_virtual_time(main())
    assert str(message) == "Hi"
    assert message.usage == TokenUsage()
    totals = budget.usage
    assert (totals.requests, totals.unpriced_requests) == (1, 1)
    assert totals.input_tokens == 0
    assert totals.output_tokens == 1  # its streamed piece, as for a reply without usage


@pytest.mark.parametrize(
    "usage", [{"queue_time": 0.1}, {"prompt_tokens": "lots"}], ids=["partial", "not-a-count"]
)
def test_a_groq_usage_that_is_not_one_leaves_the_usage_unknown_and_the_reply_kept(
    usage: dict[str, object],
) -> None:
    """``x_groq.usage`` without its counts (or with counts that are no numbers): the reply
    is kept, its usage unknown (was: a bare pydantic ``ValidationError`` that lost it)."""
    base = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m"}
    text = {"index": 0, "delta": {"role": "assistant", "content": "Hi"}, "finish_reason": None}
    stop = {"index": 0, "delta": {}, "finish_reason": "stop"}
    events = [
        sse(None, {**base, "choices": [text]}),
        sse(None, {**base, "choices": [stop], "x_groq": {"usage": usage}}),
        sse(None, "[DONE]"),
    ]

    async def main() -> AssistantMessage:
        async with MiniAgents():
            message = (await paced_agent("chat", events).inquire("Hi"))[0]
        assert isinstance(message, AssistantMessage)
        return message

    message = run_with_virtual_time(main())
    assert str(message) == "Hi"
    assert message.usage == TokenUsage()


@pytest.mark.parametrize("given", ["usage", "x_groq"])
def test_a_chat_stream_whose_chunks_have_extra_fields_has_its_usage_read_at_its_end_only(
    given: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server that adds a field of its own to every chunk (OpenRouter's ``provider``):
    its usage is still read (in the usage chunk, or Groq's ``x_groq`` in the last one), but
    only the chunks that end the reply are looked through for it, not every token's (was:
    a call of ``_chunk_usage`` per token)."""
    base = {
        "id": "c",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "gpt-4o-mini",
        "provider": "Somewhere",
    }
    counts = {"prompt_tokens": 4, "completion_tokens": 6, "total_tokens": 10}
    tokens = [
        sse(None, {**base, "choices": [{"index": 0, "delta": {"content": f"t{i} "}}]})
        for i in range(6)
    ]
    stop = {"index": 0, "delta": {}, "finish_reason": "stop"}
    ending = (
        [
            sse(None, {**base, "choices": [stop]}),
            sse(None, {**base, "choices": [], "usage": counts}),
        ]
        if given == "usage"
        else [sse(None, {**base, "choices": [stop], "x_groq": {"usage": counts}})]
    )
    looked: list[object] = []
    chunk_usage = _openai_chat._chunk_usage

    def counted(chunk: object) -> object:
        looked.append(chunk)
        return chunk_usage(chunk)

    monkeypatch.setattr(_openai_chat, "_chunk_usage", counted)

    async def main() -> AssistantMessage:
        async with MiniAgents():
            reply = paced_agent("chat", [*tokens, *ending, sse(None, "[DONE]")]).inquire("Hi")
            message = (await reply)[0]
        assert isinstance(message, AssistantMessage)
        return message

    message = run_with_virtual_time(main())
    assert str(message) == "t0 t1 t2 t3 t4 t5 "
    assert message.usage is not None
    assert (message.usage.input_tokens, message.usage.output_tokens) == (4, 6)
    assert len(looked) <= len(ending)  # the chunks that end the reply, not the tokens'
