"""``agui_app`` under a real uvicorn server: every event type, nested streams, input, bad input."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from typing import Any

import pytest
from ag_ui.core import Event
from pydantic import TypeAdapter

from miniagents import InteractionContext, MessagePromise, miniagent
from miniagents.ext.llm.offline import CallTool, offline_agent, one_per_call
from miniagents.ext.tools import ToolCallMessage, ToolResultMessage
from miniagents.ext.web import agui_app
from miniagents.messages.message import Message
from tests.ext.web.serving import SSEEvent, SSEReader, get_events, post_events, served

EVENT = TypeAdapter(Event)


def run_input(
    run_id: str = "run-1", messages: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    return {
        "threadId": "thread-1",
        "runId": run_id,
        "state": {},
        "messages": messages or [{"id": "u1", "role": "user", "content": "Weather and a poem?"}],
        "tools": [],
        "context": [],
        "forwardedProps": {},
    }


def weather(city: str) -> str:
    """Get the weather in a city."""
    return f"Sunny in {city}"


@miniagent
async def poet(ctx: InteractionContext, subject: str) -> None:
    """Write a one-line poem."""
    ctx.reply(offline_agent.inquire(subject, reply=f"Streams flow, {subject} glow.", token_delay=0))


def assistant() -> Any:
    calls = [CallTool("weather", {"city": "Paris"}), CallTool("POET", {"subject": "rivers"})]
    return offline_agent.fork(
        tools=[weather, poet], reply=one_per_call(calls, "Both done."), token_delay=0
    )


def collapsed(events: list[SSEEvent]) -> list[str]:
    """The event types, each run of one type as one."""
    return [kind for kind, _ in itertools.groupby(event.type for event in events)]


async def test_a_run_streams_every_event_type_with_ids_headers_and_nested_tool_output() -> None:
    async with served(agui_app(assistant())) as client:
        response, events = await post_events(client, run_input())
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["cache-control"] == "no-cache"
    assert [event.id for event in events] == [str(n) for n in range(len(events))]
    for event in events:  # every one an AG-UI event, by the protocol's own models
        EVENT.validate_json(event.data)
    assert collapsed(events) == [
        "RUN_STARTED",
        *["TOOL_CALL_START", "TOOL_CALL_ARGS", "TOOL_CALL_END"] * 2,
        *[
            "SUBAGENT_STARTED",
            "TEXT_MESSAGE_START",
            "TEXT_MESSAGE_CONTENT",
            "TEXT_MESSAGE_END",
            "SUBAGENT_FINISHED",
            "TOOL_CALL_RESULT",
        ]
        * 2,
        "TEXT_MESSAGE_START",
        "TEXT_MESSAGE_CONTENT",
        "TEXT_MESSAGE_END",
        "RUN_FINISHED",
    ]
    data = [event.json for event in events]
    assert data[0] == {"type": "RUN_STARTED", "threadId": "thread-1", "runId": "run-1"}
    assert data[-1] == {"type": "RUN_FINISHED", "threadId": "thread-1", "runId": "run-1"}
    calls = {event["toolCallId"]: event for event in data if event["type"] == "TOOL_CALL_START"}
    assert sorted(call["toolCallName"] for call in calls.values()) == ["POET", "weather"]
    arguments = {
        call_id: "".join(
            e["delta"] for e in data if e["type"] == "TOOL_CALL_ARGS" and e["toolCallId"] == call_id
        )
        for call_id in calls
    }
    by_name = {calls[call_id]["toolCallName"]: call_id for call_id in calls}
    assert arguments[by_name["weather"]] == '{"city": "Paris"}'
    results = {e["toolCallId"]: e for e in data if e["type"] == "TOOL_CALL_RESULT"}
    assert results[by_name["weather"]]["content"] == "Sunny in Paris"
    assert results[by_name["POET"]]["content"] == "Streams flow, rivers glow."
    # each tool's output streamed as a nested run under its call, then given whole
    for started in (e for e in data if e["type"] == "SUBAGENT_STARTED"):
        nested = [e for e in data if e.get("subagentRunId") == started["subagentRunId"]]
        text = "".join(e["delta"] for e in nested if e["type"] == "TEXT_MESSAGE_CONTENT")
        assert text == results[started["parentToolCallId"]]["content"]
        assert started["name"] == calls[started["parentToolCallId"]]["toolCallName"]
    answer = [e for e in data if e["type"] == "TEXT_MESSAGE_CONTENT" and "subagentRunId" not in e]
    assert "".join(e["delta"] for e in answer) == "Both done."


async def test_a_sub_agents_tokens_reach_the_client_while_it_still_writes() -> None:
    tokens: asyncio.Queue[str | None] = asyncio.Queue()

    async def from_queue() -> AsyncIterator[str]:
        while (token := await tokens.get()) is not None:
            yield token

    @miniagent
    async def slow_poet(ctx: InteractionContext, subject: str) -> None:
        """Write slowly."""
        ctx.reply(MessagePromise.from_async_iterable(from_queue()))

    agent = offline_agent.fork(
        tools=[slow_poet],
        reply=one_per_call(CallTool("SLOW_POET", {"subject": "x"}), "Done."),
        token_delay=0,
    )
    async with (
        served(agui_app(agent)) as client,
        client.stream("POST", "/", json=run_input()) as response,
    ):
        reader = SSEReader(response)
        tokens.put_nowait("first ")
        before = await reader.until("TEXT_MESSAGE_CONTENT")
        assert before[-1].json["delta"] == "first "
        assert "subagentRunId" in before[-1].json  # nested, while the poet still writes
        tokens.put_nowait("second")
        tokens.put_nowait(None)
        rest = await reader.rest()
    result = next(e.json for e in rest if e.type == "TOOL_CALL_RESULT")
    assert result["content"] == "first second"
    assert rest[-1].type == "RUN_FINISHED"


async def test_an_agents_failure_ends_the_run_with_run_error() -> None:
    @miniagent
    async def failing(ctx: InteractionContext) -> None:
        ctx.reply("Partial answer")
        raise ValueError("The database is down.")

    async with served(agui_app(failing)) as client:
        _response, events = await post_events(client, run_input())
    assert collapsed(events)[0] == "RUN_STARTED"
    assert events[-1].json == {
        "type": "RUN_ERROR",
        "message": "The database is down.",
        "code": "ValueError",
    }
    assert "RUN_FINISHED" not in collapsed(events)


async def test_the_run_inputs_messages_become_the_agents_input() -> None:
    seen: list[Message] = []

    @miniagent
    async def recorder(ctx: InteractionContext) -> None:
        seen.extend(await ctx.message_promises)
        ctx.reply("ok")

    messages: list[dict[str, Any]] = [
        {"id": "s", "role": "system", "content": "Be brief."},
        {"id": "u", "role": "user", "content": [{"type": "text", "text": "Add 2 and 3"}]},
        {
            "id": "a",
            "role": "assistant",
            "content": "Adding.",
            "toolCalls": [
                {
                    "id": "c1",
                    "type": "function",
                    "function": {"name": "add", "arguments": '{"a": 2}'},
                }
            ],
        },
        {"id": "t", "role": "tool", "toolCallId": "c1", "content": "5"},
    ]
    async with served(agui_app(recorder)) as client:
        _response, events = await post_events(client, run_input(messages=messages))
    assert events[-1].type == "RUN_FINISHED"
    assert [(type(m).__name__, m.text, getattr(m, "role", None)) for m in seen] == [
        ("SystemMessage", "Be brief.", "system"),
        ("UserMessage", "Add 2 and 3", "user"),
        ("AssistantMessage", "Adding.", "assistant"),
        ("ToolCallMessage", '{"a": 2}', "assistant"),
        ("ToolResultMessage", "5", "tool"),
    ]
    call, result = seen[3], seen[4]
    assert isinstance(call, ToolCallMessage)
    assert (call.tool_name, dict(call.arguments), call.call_id) == ("add", {"a": 2}, "c1")
    assert isinstance(result, ToolResultMessage)
    assert (result.tool_name, result.call_id, result.is_error) == ("add", "c1", False)


@pytest.mark.parametrize(
    ("content", "status", "code", "named"),
    [
        (b'{"threadId": "t", "runId": ', 400, "invalid_json", "not valid JSON"),
        (b'{"threadId": "t", "messages": []}', 422, "invalid_run_input", "runId"),
        (
            b'{"threadId": "t", "runId": "r", "messages": "hi"}',
            422,
            "invalid_run_input",
            "messages",
        ),
        (b"[1, 2]", 422, "invalid_run_input", "RunAgentInput"),
        (b'{"pad": "' + b"x" * 2_000 + b'"}', 413, "body_too_large", "1000 bytes"),
    ],
)
async def test_bad_input_is_a_4xx_json_error_naming_the_problem_and_starts_no_run(
    content: bytes, status: int, code: str, named: str
) -> None:
    calls: list[object] = []

    @miniagent
    async def counted(ctx: InteractionContext) -> None:
        calls.append(ctx)
        ctx.reply("ok")

    async with served(agui_app(counted, max_body_bytes=1000)) as client:
        response = await client.post(
            "/", content=content, headers={"content-type": "application/json"}
        )
        assert response.status_code == status
        assert response.headers["content-type"] == "application/json"
        error = response.json()["error"]
        assert error["code"] == code
        assert named in error["message"]
        unknown = await client.get("/runs/r")
        assert unknown.status_code == 404
    assert calls == []


async def test_a_run_id_in_use_an_unknown_run_and_a_foreign_last_event_id_are_refused() -> None:
    async with served(agui_app(offline_agent.fork(reply="Hi there", token_delay=0))) as client:
        _response, events = await post_events(client, run_input("r1"))
        again = await client.post("/", json=run_input("r1"))
        assert again.status_code == 409
        assert again.json()["error"]["code"] == "run_exists"
        assert "runs/r1" in again.json()["error"]["message"]
        missing = await client.get("/runs/nope")
        assert missing.status_code == 404
        assert "'nope'" in missing.json()["error"]["message"]
        for foreign in ("abc", str(len(events)), "-1", "1e3"):
            refused = await client.get("/runs/r1", headers={"last-event-id": foreign})
            assert refused.status_code == 400, foreign
            assert refused.json()["error"]["code"] == "unknown_event_id"
        # the run is unchanged: it still replays whole
        _response, replayed = await get_events(client, "/runs/r1")
    assert replayed == events
