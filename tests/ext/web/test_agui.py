"""``agui_app`` under a real uvicorn server: every event type, nested streams, its input.

Bad input and refused resumes, alike in both protocols, are tested in test_protocols.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Sequence
from typing import Any

import pytest
from ag_ui.core import Context, Tool

from miniagents import InteractionContext, miniagent
from miniagents.ext.llm.offline import CallTool, offline_agent, one_per_call
from miniagents.ext.tools import ToolCallMessage, ToolResultMessage
from miniagents.ext.web import NoAuthentication, WebSettings, agui, agui_app
from miniagents.frozen.errors import HashKeyError
from miniagents.messages.message import Message
from miniagents.testing import FakeLLMServer
from tests.ext.web.serving import (
    AGUI_EVENT,
    GatedDurable,
    SSEReader,
    agui_input,
    approving,
    collapsed,
    deleted,
    gated,
    get_events,
    nothing_deleted,  # noqa: F401
    post_events,
    queued_poet,
    served,
    two_models,
    unmetered,
    until,
    weather_and_poem,
    with_writer,
)


def run_input(run_id: str = "r1", messages: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return agui_input(run_id, text="Weather and a poem?", messages=messages)


def assistant() -> Any:
    return weather_and_poem(CallTool("weather", {"city": "Paris"}), answer="Both done.")


async def test_a_run_streams_every_event_type_with_ids_headers_and_nested_tool_output() -> None:
    async with served(agui_app(assistant(), authentication=NoAuthentication())) as client:
        response, events = await post_events(client, run_input())
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["cache-control"] == "no-cache"
    assert [event.id for event in events] == [str(n) for n in range(len(events))]
    for event in events:  # every one an AG-UI event, by the protocol's own models
        AGUI_EVENT.validate_json(event.data)
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
    assert data[0] == {
        "type": "RUN_STARTED",
        "threadId": "t1",
        "runId": "r1",
        "protocolVersion": "1.0",  # (AG-UI 1.0: the app sends its events, SUBAGENT_ERROR, usage)
    }
    # (the offline model's, as it counts its tokens: the assistant's calls, 19 in and 6 out,
    # and the POET's own call, an agent called as a tool, 1 in and 4 out)
    assert data[-1].pop("usage") == [
        {"model": "offline", "inputTokens": 20, "outputTokens": 10, "totalTokens": 30}
    ]
    assert data[-1] == {"type": "RUN_FINISHED", "threadId": "t1", "runId": "r1"}
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
    agent = offline_agent.fork(
        tools=[queued_poet(tokens)],
        reply=one_per_call(CallTool("POET", {"subject": "x"}), "Done."),
        token_delay=0,
    )
    async with (
        served(agui_app(agent, authentication=NoAuthentication())) as client,
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

    async with served(agui_app(failing, authentication=NoAuthentication())) as client:
        _response, events = await post_events(client, run_input())
    assert collapsed(events)[0] == "RUN_STARTED"
    assert events[-1].type == "RUN_ERROR"
    assert events[-1].json["code"] == "ValueError"
    # (its text stays in the server's log: see test_error_texts.py; was: no agent's name)
    assert events[-1].json["message"].startswith("The agent FAILING failed with ValueError. ")
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
    async with served(agui_app(recorder, authentication=NoAuthentication())) as client:
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


async def test_the_inputs_state_tools_context_and_props_reach_the_agent_as_its_parameters() -> None:
    seen: dict[str, object] = {}

    @miniagent
    async def frontend_aware(
        ctx: InteractionContext,
        state: Any,
        tools: list[Tool],
        context: list[Context],
        forwarded_props: Any,
        user: str,
    ) -> None:
        seen.update(state=state, tools=tools, context=context, props=forwarded_props, user=user)
        ctx.reply("ok")

    body = run_input()
    body["state"] = {"cart": ["apple"]}
    body["tools"] = [
        {
            "name": "show_map",
            "description": "Show a map in the page.",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        }
    ]
    body["context"] = [{"description": "The user's time zone", "value": "Europe/Paris"}]
    body["forwardedProps"] = {"user": "ada"}
    app = agui_app(
        frontend_aware,
        authentication=NoAuthentication(),
        inputs=["state", "tools", "context", "forwarded_props"],
        arguments=lambda run: {"user": dict(run.forwarded_props or {})["user"]},
    )
    async with served(app) as client:
        _response, events = await post_events(client, body)
    assert events[-1].type == "RUN_FINISHED"
    assert seen["state"] == {"cart": ["apple"]}
    assert seen["tools"] == [Tool.model_validate(body["tools"][0])]
    assert seen["context"] == [Context(description="The user's time zone", value="Europe/Paris")]
    assert seen["props"] == {"user": "ada"}
    assert seen["user"] == "ada"


@pytest.mark.parametrize("error_texts", [False, True], ids=["by reference", "error texts"])
async def test_an_arguments_callback_that_raises_refuses_the_run_input(
    caplog: pytest.LogCaptureFixture, error_texts: bool
) -> None:
    # was: a 500 (the callback's KeyError raised out of the request), logged by the server
    started: list[bool] = []

    @miniagent
    async def greeter(ctx: InteractionContext, user: str) -> None:
        started.append(True)
        ctx.reply(f"Hello {user}")

    app = agui_app(
        greeter,
        authentication=NoAuthentication(),
        settings=WebSettings(error_texts=error_texts),
        arguments=lambda run: {"user": dict(run.forwarded_props or {})["user"]},
    )
    body = run_input()  # (no forwardedProps: the callback's KeyError)
    async with served(app) as client:
        response = await client.post("/", json=body)
        _response, events = await post_events(client, {**body, "forwardedProps": {"user": "ada"}})
    assert response.status_code == 500  # (was: Starlette's bare 500, no word of the callback)
    error = response.json()["error"]
    assert error["code"] == "arguments_failed"
    logged = [record for record in caplog.records if record.exc_info is not None]
    assert [type(record.exc_info[1]) for record in logged if record.exc_info] == [KeyError]
    assert {record.name for record in logged} == {"miniagents.ext.web"}
    reference = logged[0].args[-1] if isinstance(logged[0].args, tuple) else None
    assert error["message"] == (
        "The app's arguments= callback failed with KeyError on this run input, so no run was "
        f"started. The server's log has the error under the reference {reference}: ask the "
        "server's operator to look it up there." + (" Its error: 'user'" if error_texts else "")
    )
    assert events[-1].type == "RUN_FINISHED"  # (the same run id: the first started none)
    assert started == [True]


async def test_absent_inputs_reach_the_agent_as_none_or_empty_lists() -> None:
    seen: list[object] = []

    @miniagent
    async def frontend_aware(
        ctx: InteractionContext, state: Any, tools: list[Tool], context: list[Context]
    ) -> None:
        seen.extend([state, tools, context])
        ctx.reply("ok")

    body = {"threadId": "t", "runId": "r", "messages": []}
    async with served(
        agui_app(
            frontend_aware, authentication=NoAuthentication(), inputs=["state", "tools", "context"]
        )
    ) as client:
        _response, events = await post_events(client, body)
    assert events[-1].type == "RUN_FINISHED"
    assert seen == [None, [], []]


async def test_a_run_id_in_use_is_a_409_that_says_how_to_follow_it() -> None:
    async with served(
        agui_app(
            offline_agent.fork(reply="Hi there", token_delay=0), authentication=NoAuthentication()
        )
    ) as client:
        _response, events = await post_events(client, run_input("r1"))
        again = await client.post("/", json=run_input("r1"))
        assert again.status_code == 409
        assert again.json()["error"]["code"] == "run_exists"
        assert "runs/r1" in again.json()["error"]["message"]
        # the run is unchanged: it still replays whole
        _response, replayed = await get_events(client, "/runs/r1")
    assert replayed == events


async def test_a_run_given_up_on_ends_what_it_left_open_before_its_run_finished() -> None:
    # @ag-ui/client's verifier refuses a RUN_FINISHED while a text message, a tool call or
    # a nested run is open: a run cancelled mid-message must end them first
    tokens: asyncio.Queue[str | None] = asyncio.Queue()
    agent = offline_agent.fork(
        tools=[queued_poet(tokens)],
        reply=one_per_call(CallTool("POET", {"subject": "x"}), "Done."),
        token_delay=0,
    )
    app = agui_app(agent, authentication=NoAuthentication(), settings=WebSettings(grace_period=0))
    async with served(app) as client:
        async with client.stream("POST", "/", json=run_input()) as response:
            tokens.put_nowait("half ")
            seen = await SSEReader(response).until("TEXT_MESSAGE_CONTENT")
        await until(lambda: app.state.runs.live == 0)  # its client left: cancelled
        _response, events = await get_events(
            client, "/runs/r1", {"last-event-id": seen[-1].id or ""}
        )
    nested = seen[-1].json["subagentRunId"]
    assert [*(event.json for event in events[:-1]), unmetered(events[-1].json)] == [
        {
            "type": "TEXT_MESSAGE_END",
            "messageId": seen[-1].json["messageId"],
            "subagentRunId": nested,
        },
        {"type": "SUBAGENT_FINISHED", "subagentRunId": nested},
        {
            "type": "RUN_FINISHED",
            "threadId": "t1",
            "runId": "r1",
            "outcome": {"type": "cancelled"},
        },
    ]


class _GatedAbandons(GatedDurable):
    """Its run-id check answers at once: only a new run's abandoning waits for the gate."""

    async def afind_named(self, owner: str | None, name: str) -> None:
        return None


@pytest.mark.parametrize("durable", [GatedDurable, _GatedAbandons], ids=["check", "abandoning"])
async def test_two_starts_of_one_run_id_across_the_durable_check_are_one_run_and_a_409(
    durable: type[GatedDurable],
) -> None:
    """Two starts of the run ``r1`` whose run-id checks both wait in the durable agent's
    lookup (neither found a run there), or that both wait after them while the durable
    agent gives up on the thread's paused runs, start one run; the other is a 409
    ``run_exists`` (was: both started: two live jobs of one run id)."""
    tokens: asyncio.Queue[str | None] = asyncio.Queue()
    app = agui_app(gated(tokens), authentication=NoAuthentication())
    finds = durable(gated(tokens))
    app.state.runs.durable = finds
    async with served(app) as client:
        first = asyncio.ensure_future(client.post("/", json=run_input("r1")))
        second = asyncio.ensure_future(client.post("/", json=run_input("r1")))
        await until(lambda: finds.waiting == 2)
        finds.gate.set_result(None)
        manager = app.state.runs
        await until(lambda: first.done() or second.done() or manager.live == 2)
        assert manager.live == 1  # (was: 2)
        for token in ("Hi", None, None):  # (each run's stream ends at a None)
            tokens.put_nowait(token)
        answers = await asyncio.gather(first, second, return_exceptions=True)
    assert sorted(str(getattr(answer, "status_code", repr(answer))) for answer in answers) == [
        "200",
        "409",
    ]


class _Abandons(GatedDurable):
    """Its gate open: records the groups (threads) whose durable runs a new run abandons."""

    def __init__(self, agent: Any) -> None:
        super().__init__(agent)
        self.gate.set_result(None)
        self.abandoned: list[str | None] = []

    async def aabandon_all(
        self,
        owner: str | None,
        key: str | None = None,
        *,
        group: str | None = None,
        but: Collection[str | None] = (),
        paused_elsewhere: bool = False,
    ) -> None:
        self.abandoned.append(group)

    async def afind_named(self, owner: str | None, name: str) -> None:
        return None


async def test_a_refused_run_input_abandons_no_durable_run_of_its_thread(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # a new run of a thread abandons the thread's durable runs paused elsewhere: a run
    # input refused as bad (a 422, its messages not kept) did so first, and the paused run,
    # refused no more, was lost (was: ["t1"]); now its messages are read first, as the AI
    # SDK's chat request's are, and the run stays paused, resumable
    tokens: asyncio.Queue[str | None] = asyncio.Queue()
    app = agui_app(gated(tokens), authentication=NoAuthentication())
    durable = _Abandons(gated(tokens))
    app.state.runs.durable = durable
    read = agui.agui_input_messages

    def unkept(messages: Sequence[object]) -> list[Message]:
        raise HashKeyError("A message holds a value nested too deeply to be kept.")

    async with served(app) as client:
        monkeypatch.setattr(agui, "agui_input_messages", unkept)
        refused = await client.post("/", json=run_input("r2"))
        assert refused.status_code == 422, refused.text
        assert refused.json()["error"]["code"] == "invalid_run_input"
        assert durable.abandoned == []  # (was: ["t1"])
        monkeypatch.setattr(agui, "agui_input_messages", read)
        tokens.put_nowait(None)
        _response, events = await post_events(client, run_input("r3"))
    assert events[-1].type == "RUN_FINISHED"
    assert durable.abandoned == ["t1"]  # (a good one abandons them, as ever)


async def test_run_finished_reports_the_runs_usage_per_model_and_its_cost(
    fake_llm: FakeLLMServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = agui_app(two_models(fake_llm, monkeypatch), authentication=NoAuthentication())
    async with served(app) as client:
        _, events = await post_events(client, run_input())
    finished = events[-1].json
    AGUI_EVENT.validate_json(events[-1].data)
    assert finished["usage"] == [  # (the cache and reasoning counts where not 0)
        {"model": "gpt-4o-mini", "inputTokens": 12, "outputTokens": 3, "totalTokens": 15},
        {
            "model": "gpt-4o",
            "inputTokens": 20,
            "outputTokens": 5,
            "totalTokens": 25,
            "cachedInputTokens": 4,
        },
    ]
    assert finished["metadata"]["costUsd"] > 0


async def test_run_error_reports_the_usage_of_the_texts_before_the_failure(
    fake_llm: FakeLLMServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    agent = two_models(fake_llm, monkeypatch, then_fail=True)
    settings = WebSettings(error_texts=True)
    async with served(agui_app(agent, authentication=NoAuthentication(), settings=settings)) as c:
        _, events = await post_events(c, run_input())
    failed = events[-1].json
    assert (failed["type"], failed["message"]) == ("RUN_ERROR", "the agent broke")
    assert failed["usage"] == [
        {"model": "gpt-4o-mini", "inputTokens": 12, "outputTokens": 3, "totalTokens": 15}
    ]


async def test_run_finished_counts_the_tokens_of_an_agent_called_as_a_tool(
    fake_llm: FakeLLMServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The run's usage has the calls of ``WRITER``, an agent tool, beside its caller's (was:
    only what the reply's texts said, its caller's answer's: gpt-4o-mini's alone)."""
    app = agui_app(with_writer(fake_llm, monkeypatch), authentication=NoAuthentication())
    async with served(app) as client:
        _, events = await post_events(client, run_input())
    finished = events[-1].json
    AGUI_EVENT.validate_json(events[-1].data)
    assert finished["usage"] == [
        {"model": "gpt-4o-mini", "inputTokens": 25, "outputTokens": 5, "totalTokens": 30},
        {"model": "gpt-4o", "inputTokens": 30, "outputTokens": 7, "totalTokens": 37},
    ]
    assert finished["metadata"]["costUsd"] > 0


async def test_a_run_resumed_after_an_approval_reports_only_what_it_spent(
    fake_llm: FakeLLMServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each of the two runs of one turn reports the calls made in it: the call before the
    pause in the first, the one after it in the second (was: none in the first, and in the
    second the answer's usage, its whole tool loop's, the first call counted again)."""
    app = agui_app(approving(fake_llm, monkeypatch), authentication=NoAuthentication())
    async with served(app) as client:
        _, first = await post_events(client, run_input("r1"))
        [interrupt] = first[-1].json["outcome"]["interrupts"]
        entry = {
            "interruptId": interrupt["toolCallId"],
            "status": "resolved",
            "payload": {"approved": True},
        }
        _, second = await post_events(client, agui_input("r2", resume=[entry]))
    assert deleted == ["a.txt"]
    assert first[-1].json["usage"] == [
        {"model": "gpt-4o-mini", "inputTokens": 10, "outputTokens": 2, "totalTokens": 12}
    ]
    assert (second[-1].json["runId"], second[-1].json["usage"]) == (
        "r2",
        [{"model": "gpt-4o-mini", "inputTokens": 15, "outputTokens": 3, "totalTokens": 18}],
    )


async def test_a_run_whose_texts_say_no_usage_reports_none() -> None:
    tokens: asyncio.Queue[str | None] = asyncio.Queue()
    for token in ("Hi", None):
        tokens.put_nowait(token)
    async with served(agui_app(gated(tokens), authentication=NoAuthentication())) as client:
        _, events = await post_events(client, run_input())
    assert events[-1].json == {"type": "RUN_FINISHED", "threadId": "t1", "runId": "r1"}


async def test_a_tool_that_fails_ends_its_nested_run_with_subagent_error() -> None:
    agent = weather_and_poem(CallTool("weather", {"city": "Atlantis"}), answer="Done.")
    async with served(agui_app(agent, authentication=NoAuthentication())) as client:
        _, events = await post_events(client, run_input())
    for event in events:
        AGUI_EVENT.validate_json(event.data)
    data = [event.json for event in events]
    calls = {e["toolCallName"]: e["toolCallId"] for e in data if e["type"] == "TOOL_CALL_START"}
    failed = f"{calls['weather']}-run"
    ends = {
        e["subagentRunId"]: e for e in data if e["type"].startswith("SUBAGENT_") and "name" not in e
    }
    result = next(
        e for e in data if e["type"] == "TOOL_CALL_RESULT" and e["toolCallId"] == calls["weather"]
    )
    assert ends[failed] == {
        "type": "SUBAGENT_ERROR",
        "subagentRunId": failed,
        "message": result["content"],
    }
    assert "There is no weather under the sea." in result["content"]
    assert ends[f"{calls['POET']}-run"]["type"] == "SUBAGENT_FINISHED"  # (the poet wrote)
