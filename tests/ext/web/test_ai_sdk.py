"""``ai_sdk_app`` under a real uvicorn server: every part type, nested streams, its input.

Bad input and refused resumes, alike in both protocols, are tested in test_protocols.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Collection
from typing import Any

import pytest

from miniagents import (
    InteractionContext,
    MessagePromise,
    MessageSequencePromise,
    MiniAgent,
    miniagent,
)
from miniagents.ext.llm.offline import CallTool, offline_agent, one_per_call
from miniagents.ext.tools import FunctionTool, ToolCallMessage, ToolResultMessage
from miniagents.ext.web import NoAuthentication, WebSettings, ai_sdk_app
from miniagents.ext.web._durable import FoundRun
from miniagents.messages.message import Message
from miniagents.testing import FakeLLMServer
from tests.ext.web.serving import (
    GatedDurable,
    SSEReader,
    answered_chat,
    approving,
    chat_request,
    collapsed,
    delete_file,
    deleted,
    event_types,
    events_of,
    gated,
    nothing_deleted,  # noqa: F401
    post_events,
    queued_poet,
    served,
    two_models,
    until,
    weather_and_poem,
    with_writer,
)


def chat(chat_id: str = "chat-1", messages: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return chat_request(chat_id, text="Weather and a poem?", messages=messages)


def assistant() -> Any:
    calls = [CallTool("weather", {"city": "Paris"}), CallTool("weather", {"city": "Atlantis"})]
    return weather_and_poem(*calls, answer="All done.")


async def test_a_chat_streams_every_part_type_with_ids_headers_and_nested_tool_output() -> None:
    async with served(ai_sdk_app(assistant(), authentication=NoAuthentication())) as client:
        response, events = await post_events(client, chat())
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["x-vercel-ai-ui-message-stream"] == "v1"
    assert response.headers["cache-control"] == "no-cache"
    assert [event.id for event in events] == [str(n) for n in range(len(events))]
    assert events[-1].data == "[DONE]"
    assert collapsed(events) == [
        "start",
        "start-step",
        *["tool-input-start", "tool-input-delta", "tool-input-available"] * 3,
        "data-tool-output-delta",
        "tool-output-available",
        "data-tool-output-delta",
        "tool-output-error",
        "data-tool-output-delta",
        "tool-output-available",
        "finish-step",
        "start-step",
        "text-start",
        "text-delta",
        "text-end",
        "finish-step",
        "finish",
        "[DONE]",
    ]
    data = [event.json for event in events[:-1]]
    assert data[0]["messageId"].startswith("msg-")
    inputs = {e["toolCallId"]: e for e in data if e["type"] == "tool-input-available"}
    assert sorted((e["toolName"], e["input"].get("city")) for e in inputs.values()) == [
        ("POET", None),
        ("weather", "Atlantis"),
        ("weather", "Paris"),
    ]
    outputs = {e["toolCallId"]: e for e in data if e["type"].startswith("tool-output")}
    by_input = {(e["toolName"], str(e["input"])): call_id for call_id, e in inputs.items()}
    paris = by_input[("weather", "{'city': 'Paris'}")]
    atlantis = by_input[("weather", "{'city': 'Atlantis'}")]
    poem = by_input[("POET", "{'subject': 'rivers'}")]
    assert outputs[paris] == {
        "type": "tool-output-available",
        "toolCallId": paris,
        "output": "Sunny in Paris",
    }
    assert outputs[atlantis]["errorText"] == "There is no weather under the sea."
    assert outputs[poem]["output"] == "Streams flow, rivers glow."
    for call_id, output in outputs.items():  # the output streamed first, under its call
        deltas = [
            e
            for e in data
            if e["type"] == "data-tool-output-delta" and e["data"]["toolCallId"] == call_id
        ]
        assert all(e["transient"] is True for e in deltas)
        assert "".join(e["data"]["delta"] for e in deltas) == output.get(
            "output", output.get("errorText")
        )
    text_ids = {e["id"] for e in data if e["type"].startswith("text-")}
    assert len(text_ids) == 1
    assert "".join(e["delta"] for e in data if e["type"] == "text-delta") == "All done."


async def test_a_sub_agents_tokens_reach_the_page_while_it_still_writes() -> None:
    tokens: asyncio.Queue[str | None] = asyncio.Queue()
    agent = offline_agent.fork(
        tools=[queued_poet(tokens)],
        reply=one_per_call(CallTool("POET", {"subject": "x"}), "Done."),
        token_delay=0,
    )
    async with (
        served(ai_sdk_app(agent, authentication=NoAuthentication())) as client,
        client.stream("POST", "/", json=chat()) as response,
    ):
        reader = SSEReader(response)
        tokens.put_nowait("first ")
        before = await reader.until("data-tool-output-delta")
        assert before[-1].json["data"]["delta"] == "first "
        tokens.put_nowait("second")
        tokens.put_nowait(None)
        rest = await reader.rest()
    output = next(e.json for e in rest if e.type == "tool-output-available")
    assert output["output"] == "first second"
    assert rest[-1].data == "[DONE]"


async def test_an_agents_failure_ends_the_stream_with_an_error_part() -> None:
    @miniagent
    async def failing(ctx: InteractionContext) -> None:
        ctx.reply("Partial answer")
        raise ValueError("The database is down.")

    async with served(ai_sdk_app(failing, authentication=NoAuthentication())) as client:
        _response, events = await post_events(client, chat())
    assert events[-2].type == "error"
    # (its text stays in the server's log: see test_error_texts.py; was: no agent's name)
    assert events[-2].json["errorText"].startswith("The agent FAILING failed with ValueError. ")
    assert events[-1].data == "[DONE]"
    assert "finish" not in collapsed(events)


async def test_an_agents_failure_mid_text_ends_the_text_before_the_error_part() -> None:
    """A reply that fails while its text streams: its ``text-end`` comes before the
    ``error`` (it came with the text still open, a part ``useChat`` keeps streaming)."""

    async def tokens() -> AsyncIterator[str]:
        yield "Partial "
        raise ValueError("The model's stream broke.")

    @miniagent
    async def breaking(ctx: InteractionContext) -> None:
        ctx.reply(MessagePromise.from_async_iterable(tokens()))

    async with served(ai_sdk_app(breaking, authentication=NoAuthentication())) as client:
        _response, events = await post_events(client, chat())
    types = event_types(events)
    assert types[-2:] == ["error", "[DONE]"], types
    assert types.count("text-start") == 1, types
    assert types.index("text-start") < types.index("text-end") < types.index("error"), types
    (start,) = (event.json for event in events if event.type == "text-start")
    (end,) = (event.json for event in events if event.type == "text-end")
    assert end == {"type": "text-end", "id": start["id"]}


async def test_the_chats_ui_messages_become_the_agents_input() -> None:
    seen: list[Message] = []

    @miniagent
    async def recorder(ctx: InteractionContext) -> None:
        seen.extend(await ctx.message_promises)
        ctx.reply("ok")

    messages: list[dict[str, Any]] = [
        {"id": "s", "role": "system", "parts": [{"type": "text", "text": "Be brief."}]},
        {"id": "u", "role": "user", "parts": [{"type": "text", "text": "Add 2 and 3"}]},
        {
            "id": "a",
            "role": "assistant",
            "parts": [
                {"type": "step-start"},
                {"type": "text", "text": "Adding."},
                {
                    "type": "tool-add",
                    "toolCallId": "c1",
                    "state": "output-available",
                    "input": {"a": 2, "b": 3},
                    "output": 5,
                },
                {
                    "type": "dynamic-tool",
                    "toolName": "divide",
                    "toolCallId": "c2",
                    "state": "output-error",
                    "input": {"a": 1, "b": 0},
                    "errorText": "Division by zero.",
                },
                {"type": "reasoning", "text": "(left out)"},
                {"type": "text", "text": "It is 5."},
            ],
        },
        {"id": "u2", "role": "user", "parts": [{"type": "text", "text": "Thanks"}]},
    ]
    async with served(ai_sdk_app(recorder, authentication=NoAuthentication())) as client:
        _response, events = await post_events(client, chat(messages=messages))
    assert events[-1].data == "[DONE]"
    assert [(type(m).__name__, m.text) for m in seen] == [
        ("SystemMessage", "Be brief."),
        ("UserMessage", "Add 2 and 3"),
        ("AssistantMessage", "Adding."),
        ("ToolCallMessage", '{"a": 2, "b": 3}'),
        ("ToolResultMessage", "5"),
        ("ToolCallMessage", '{"a": 1, "b": 0}'),
        ("ToolResultMessage", "Division by zero."),
        ("AssistantMessage", "It is 5."),
        ("UserMessage", "Thanks"),
    ]
    first, failed = seen[4], seen[6]
    assert isinstance(seen[3], ToolCallMessage)
    assert (seen[3].tool_name, seen[3].call_id) == ("add", "c1")
    assert isinstance(first, ToolResultMessage)
    assert (first.tool_name, first.call_id, first.is_error) == ("add", "c1", False)
    assert isinstance(failed, ToolResultMessage)
    assert (failed.tool_name, failed.call_id, failed.is_error) == ("divide", "c2", True)


async def test_a_denied_tool_part_becomes_the_denial_the_model_reads() -> None:
    seen: list[Message] = []

    @miniagent
    async def recorder(ctx: InteractionContext) -> None:
        seen.extend(await ctx.message_promises)
        ctx.reply("ok")

    denied = {
        "type": "tool-delete_file",
        "toolCallId": "c1",
        "state": "output-denied",
        "input": {"path": "a.txt"},
        "approval": {"id": "c1", "approved": False, "reason": "Keep it."},
    }
    messages: list[dict[str, Any]] = [
        {"id": "u", "role": "user", "parts": [{"type": "text", "text": "Delete a.txt"}]},
        {"id": "a", "role": "assistant", "parts": [denied]},
    ]
    async with served(ai_sdk_app(recorder, authentication=NoAuthentication())) as client:
        _response, events = await post_events(client, chat(messages=messages))
    assert events[-1].data == "[DONE]"
    result = seen[-1]
    assert isinstance(result, ToolResultMessage)
    assert (result.call_id, result.is_error) == ("c1", True)
    assert result.text == (
        "The user denied the call of the tool delete_file; it did not run. Their reason: Keep it."
    )


async def test_two_chats_started_across_the_abandon_await_keep_to_max_live_runs() -> None:
    """``max_live_runs=1``: two new chats whose starts both wait in the durable agent's
    ``aabandon_all`` (each had room before it) start one run, and the other is a 503 (room is
    checked again after the await; both started, two live runs over a limit of one)."""
    tokens: asyncio.Queue[str | None] = asyncio.Queue()
    agent = gated(tokens)
    app = ai_sdk_app(
        agent, authentication=NoAuthentication(), settings=WebSettings(max_live_runs=1)
    )
    manager = app.state.runs
    abandons = GatedDurable(agent)
    manager.durable = abandons
    async with served(app) as client:
        first = asyncio.ensure_future(client.post("/", json=chat_request("c1")))
        second = asyncio.ensure_future(client.post("/", json=chat_request("c2")))
        await until(lambda: abandons.waiting == 2)
        abandons.gate.set_result(None)
        await until(lambda: manager.live == 2 or first.done() or second.done())
        live = manager.live
        for token in ("Hi", None, None):  # (each run's stream ends at a None)
            tokens.put_nowait(token)
        answers = sorted([(await first).status_code, (await second).status_code])
    assert live == 1
    assert answers == [200, 503]


class _CancelledElsewhere(GatedDurable):
    """Durable runs (see ``GatedDurable``, its gate open) where another server cancelled
    every run paused here, and recorded the chat ``c2``'s run, whose replay here is
    ``replayed_by``'s reply."""

    def __init__(self, agent: MiniAgent[..., Message], replayed_by: MiniAgent[[]]) -> None:
        super().__init__(agent)
        self.gate.set_result(None)
        self.replayed_by = replayed_by
        self.asked: list[set[str]] = []

    async def acancelled(self, workflow_ids: Collection[str]) -> set[str]:
        self.asked.append(set(workflow_ids))
        return set(workflow_ids)

    async def afind(self, owner: str | None, **found: object) -> FoundRun | None:
        if found.get("key") != "c2":
            return None
        return FoundRun("c2/g", owner, "c2", "g", ended=False, decided=frozenset())

    def replayed(self, workflow_id: str) -> MessageSequencePromise[Message]:
        return self.replayed_by.inquire()

    def stopped_by_dbos(self, error: BaseException) -> bool:
        return False


async def test_a_chat_recovered_here_frees_the_place_of_a_run_paused_here_cancelled_elsewhere() -> (
    None
):
    """``max_live_runs=1``: the chat ``c1`` paused here for an approval, and another server
    cancelled its run (a new turn of it there); the chat ``c2``'s run, recorded there, is
    followed here: it is made again (was: a 503, the paused job held its place until it
    expired, as the chat's follow checked the room without asking what was cancelled)."""
    tokens: asyncio.Queue[str | None] = asyncio.Queue()
    needs_approval = offline_agent.fork(
        tools=[FunctionTool(delete_file, requires_approval=True)],
        reply=one_per_call(CallTool("delete_file", {"path": "a.txt"}), "Finished."),
        token_delay=0,
    )
    app = ai_sdk_app(
        needs_approval, authentication=NoAuthentication(), settings=WebSettings(max_live_runs=1)
    )
    durable = _CancelledElsewhere(needs_approval, gated(tokens))
    app.state.runs.durable = durable
    async with served(app) as client:
        _, paused = await post_events(client, chat_request("c1", text="Delete"))
        assert event_types(paused)[-4] == "tool-approval-request"
        first = app.state.runs.job("c1")
        async with client.stream("GET", "/c2/stream") as response:
            assert response.status_code == 200, await response.aread()
            for token in ("Hello.", None):
                tokens.put_nowait(token)
            replayed = await events_of(response)
    texts = [event.json["delta"] for event in replayed if event.type == "text-delta"]
    assert texts == ["Hello."]
    assert [len(asked) for asked in durable.asked] == [1]  # (asked only when there was no room)
    assert first.done
    assert deleted == []


async def test_finish_carries_the_messages_usage_summed_as_its_metadata(
    fake_llm: FakeLLMServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = ai_sdk_app(two_models(fake_llm, monkeypatch), authentication=NoAuthentication())
    async with served(app) as client:
        _, events = await post_events(client, chat())
    finish = events[-2].json
    assert finish["type"] == "finish"
    usage = finish["messageMetadata"]["usage"]
    assert usage.pop("costUsd") > 0
    assert usage == {
        "inputTokens": 32,
        "outputTokens": 8,
        "totalTokens": 40,
        "cachedInputTokens": 4,
    }


async def test_finish_counts_the_tokens_of_an_agent_called_as_a_tool(
    fake_llm: FakeLLMServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The message's usage has the call of ``WRITER``, an agent tool, beside its caller's
    (was: only what the reply's texts said, its caller's answer's: 25 in, 5 out)."""
    app = ai_sdk_app(with_writer(fake_llm, monkeypatch), authentication=NoAuthentication())
    async with served(app) as client:
        _, events = await post_events(client, chat())
    usage = events[-2].json["messageMetadata"]["usage"]
    assert usage.pop("costUsd") > 0
    assert usage == {"inputTokens": 55, "outputTokens": 12, "totalTokens": 67}


async def test_a_resumed_response_says_the_messages_usage_each_call_once(
    fake_llm: FakeLLMServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The response that ends at the approval says the call before it; the resumed one, which
    goes on with the same message, says the message's: both calls, each once."""
    app = ai_sdk_app(approving(fake_llm, monkeypatch), authentication=NoAuthentication())
    async with served(app) as client:
        _, first = await post_events(client, chat_request("c1", text="Delete"))
        _, second = await post_events(client, answered_chat(first, {"approved": True}))
    assert deleted == ["a.txt"]
    said = [
        {
            key: value
            for key, value in event.json["messageMetadata"]["usage"].items()
            if key != "costUsd"
        }
        for event in (first[-2], second[-2])
    ]
    assert said == [
        {"inputTokens": 10, "outputTokens": 2, "totalTokens": 12},
        {"inputTokens": 25, "outputTokens": 5, "totalTokens": 30},
    ]


async def test_a_failure_tells_the_usage_before_it_in_a_message_metadata_part(
    fake_llm: FakeLLMServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    agent = two_models(fake_llm, monkeypatch, then_fail=True)
    settings = WebSettings(error_texts=True)
    async with served(ai_sdk_app(agent, authentication=NoAuthentication(), settings=settings)) as c:
        _, events = await post_events(c, chat())
    assert event_types(events)[-3:] == ["message-metadata", "error", "[DONE]"]
    usage = events[-3].json["messageMetadata"]["usage"]
    assert (usage["inputTokens"], usage["outputTokens"], usage["totalTokens"]) == (12, 3, 15)
    assert events[-2].json == {"type": "error", "errorText": "the agent broke"}


async def test_a_message_whose_texts_say_no_usage_finishes_without_metadata() -> None:
    tokens: asyncio.Queue[str | None] = asyncio.Queue()
    for token in ("Hi", None):
        tokens.put_nowait(token)
    async with served(ai_sdk_app(gated(tokens), authentication=NoAuthentication())) as client:
        _, events = await post_events(client, chat())
    assert events[-2].json == {"type": "finish"}
