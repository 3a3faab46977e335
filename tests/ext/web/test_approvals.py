"""A person approves tool calls from the page: the protocols' own flows, the decision URLs.

The protocols' own flows (the default, ``approval_flow="protocol"``) are driven as a stock
client drives them: AG-UI's run that finishes with an interrupt outcome and a new run that
resumes it, the AI SDK's stream that ends at the approval request and the chat sent again
with the approval response. The ``"in_stream"`` flow keeps the stream open for a decision
at the app's own URL.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx2 as httpx
import pytest
from starlette.applications import Starlette
from starlette.responses import Response

from miniagents import Message, MiniAgent
from miniagents.ext.llm.offline import CallTool, ScriptedReply, offline_agent, one_per_call
from miniagents.ext.llm.offline_script import model_turns
from miniagents.ext.llm.provider import LLMCall
from miniagents.ext.tools import FunctionTool
from miniagents.ext.web import NoAuthentication, WebSettings, agui_app, ai_sdk_app
from miniagents.ext.web.lowlevel import Job, RunManager
from tests.ext.web.serving import (
    AGUI_EVENT,
    SSEEvent,
    SSEReader,
    agui_input,
    answered_chat,
    approval_input,
    approving_assistant,
    chat_request,
    delete_file,
    deleted,
    event_types,
    get_events,
    nothing_deleted,  # noqa: F401
    post_events,
    queued_poet,
    served,
    unmetered,
    until,
)


def gated_assistant(poem: asyncio.Queue[str | None]) -> MiniAgent[..., Message]:
    """A poet (writing the tokens the test gives) called before the call that needs approval."""
    calls = [CallTool("POET", {"subject": "rivers"}), CallTool("delete_file", {"path": "a.txt"})]
    return offline_agent.fork(
        tools=[queued_poet(poem), FunctionTool(delete_file, requires_approval=True)],
        reply=one_per_call(calls, "Finished."),
        token_delay=0,
    )


CHAT = chat_request("c1", text="Delete")


# -- AG-UI's own flow: the run finishes with an interrupt, a new run resumes it -----------------


async def test_an_agui_run_pauses_with_an_interrupt_and_a_new_run_resumes_it() -> None:
    async with served(
        agui_app(
            approving_assistant(),
            authentication=NoAuthentication(),
            settings=WebSettings(approval_edits=True),
        )
    ) as client:
        _response, first = await post_events(client, approval_input("r1"))
        for event in first:
            AGUI_EVENT.validate_json(event.data)
        finished = first[-1].json
        assert finished["type"] == "RUN_FINISHED"
        assert finished["runId"] == "r1"
        [interrupt] = finished["outcome"]["interrupts"]
        assert finished["outcome"]["type"] == "interrupt"
        call_id = interrupt["toolCallId"]
        assert interrupt["id"] == call_id
        assert interrupt["reason"] == "tool_approval"
        assert interrupt["metadata"] == {"toolName": "delete_file", "arguments": {"path": "a.txt"}}
        assert interrupt["responseSchema"]["required"] == ["approved"]
        assert "expiresAt" in interrupt
        assert "CUSTOM" not in event_types(first)
        assert deleted == []  # it waits, with no stream open

        entry = {
            "interruptId": call_id,
            "status": "resolved",
            "payload": {"approved": True, "arguments": {"path": "b.txt"}},
        }
        _response, second = await post_events(client, approval_input("r2", [entry]))
        for event in second:
            AGUI_EVENT.validate_json(event.data)
        # each run is kept and resumable at its own URL
        assert (await get_events(client, "/runs/r1"))[1] == first
        assert (await get_events(client, "/runs/r2"))[1] == second
    assert second[0].json == {
        "type": "RUN_STARTED",
        "threadId": "t1",
        "runId": "r2",
        "protocolVersion": "1.0",
    }
    result = next(e.json for e in second if e.type == "TOOL_CALL_RESULT")
    assert (result["toolCallId"], result["content"]) == (call_id, "Deleted b.txt")
    text = "".join(e.json["delta"] for e in second if e.type == "TEXT_MESSAGE_CONTENT")
    assert text.endswith("Finished.")
    assert unmetered(second[-1].json) == {"type": "RUN_FINISHED", "threadId": "t1", "runId": "r2"}
    assert deleted == ["b.txt"]


async def test_an_agui_interrupt_cancelled_is_a_denial_the_model_reads() -> None:
    async with served(agui_app(approving_assistant(), authentication=NoAuthentication())) as client:
        _response, first = await post_events(client, approval_input("r1"))
        call_id = first[-1].json["outcome"]["interrupts"][0]["id"]
        entry = {"interruptId": call_id, "status": "cancelled"}
        _response, second = await post_events(client, approval_input("r2", [entry]))
    result = next(e.json for e in second if e.type == "TOOL_CALL_RESULT")
    assert result["content"] == (
        "The user denied the call of the tool delete_file; it did not run."
    )
    assert result["metadata"] == {"isError": True, "denied": True}
    assert second[-1].type == "RUN_FINISHED"
    assert deleted == []


@pytest.mark.parametrize(
    ("entry", "status", "code", "named"),
    [
        ({"interruptId": "nope", "status": "resolved"}, 404, "unknown_interrupt", "'nope'"),
        (
            {"interruptId": "{call}", "status": "resolved", "payload": {"approved": "yes"}},
            422,
            "invalid_resume",
            "resume.0.payload",
        ),
        ({"interruptId": "{call}", "status": "resolved"}, 422, "invalid_resume", "approved"),
        ({"interruptId": "{call}", "status": "maybe"}, 422, "invalid_run_input", "status"),
    ],
)
async def test_a_bad_agui_resume_is_a_4xx_and_changes_nothing(
    entry: dict[str, Any], status: int, code: str, named: str
) -> None:
    async with served(agui_app(approving_assistant(), authentication=NoAuthentication())) as client:
        _response, first = await post_events(client, approval_input("r1"))
        call_id = first[-1].json["outcome"]["interrupts"][0]["id"]
        bad = {
            key: value.format(call=call_id) if key == "interruptId" else value
            for key, value in entry.items()
        }
        refused = await client.post("/", json=approval_input("r2", [bad]))
        assert refused.status_code == status
        assert refused.json()["error"]["code"] == code
        assert named in refused.json()["error"]["message"]
        assert (await client.get("/runs/r2")).status_code == 404  # no run started
        assert deleted == []
        good = {"interruptId": call_id, "status": "resolved", "payload": {"approved": True}}
        _response, second = await post_events(client, approval_input("r2", [good]))
        assert second[-1].type == "RUN_FINISHED"
        # answered once: the same answer again finds nothing waiting
        again = await client.post("/", json=approval_input("r3", [good]))
        assert again.status_code == 404
        assert again.json()["error"]["code"] == "unknown_interrupt"
    assert deleted == ["a.txt"]


async def test_a_resume_that_answers_a_later_call_first_pauses_again_at_the_earlier_one() -> None:
    calls = [CallTool("delete_file", {"path": "a.txt"}), CallTool("delete_file", {"path": "b.txt"})]
    agent = offline_agent.fork(
        tools=[FunctionTool(delete_file, requires_approval=True)],
        reply=one_per_call(calls, "Finished."),
        token_delay=0,
    )
    approve = {"status": "resolved", "payload": {"approved": True}}
    async with served(agui_app(agent, authentication=NoAuthentication())) as client:
        _response, first = await post_events(client, approval_input("r1"))
        asked = first[-1].json["outcome"]["interrupts"]
        assert [i["metadata"]["arguments"]["path"] for i in asked] == ["a.txt", "b.txt"]
        later = {"interruptId": asked[1]["id"], **approve}
        _response, second = await post_events(client, approval_input("r2", [later]))
        assert event_types(second) == ["RUN_STARTED", "RUN_FINISHED"]  # a.txt's result still waits
        [still] = second[-1].json["outcome"]["interrupts"]
        assert still["id"] == asked[0]["id"]
        assert deleted == ["b.txt"]  # the answered call ran meanwhile
        earlier = {"interruptId": asked[0]["id"], **approve}
        _response, third = await post_events(client, approval_input("r3", [earlier]))
    results = [e.json["content"] for e in third if e.type == "TOOL_CALL_RESULT"]
    assert results == ["Deleted a.txt", "Deleted b.txt"]
    assert unmetered(third[-1].json) == {"type": "RUN_FINISHED", "threadId": "t1", "runId": "r3"}
    assert sorted(deleted) == ["a.txt", "b.txt"]


async def test_a_resumed_run_left_by_its_client_is_cancelled_under_its_own_ids() -> None:
    poem: asyncio.Queue[str | None] = asyncio.Queue()
    calls = [CallTool("delete_file", {"path": "a.txt"}), CallTool("POET", {"subject": "x"})]
    agent = offline_agent.fork(
        tools=[FunctionTool(delete_file, requires_approval=True), queued_poet(poem)],
        reply=one_per_call(calls, "Finished."),
        token_delay=0,
    )
    app = agui_app(agent, authentication=NoAuthentication(), settings=WebSettings(grace_period=0))
    async with served(app) as client:
        _response, first = await post_events(client, approval_input("r1"))
        call_id = first[-1].json["outcome"]["interrupts"][0]["id"]
        entry = {"interruptId": call_id, "status": "resolved", "payload": {"approved": True}}
        async with client.stream("POST", "/", json=approval_input("r2", [entry])) as response:
            reader = SSEReader(response)
            await reader.until("TOOL_CALL_RESULT")  # a.txt deleted; the poet still writes
            poem.put_nowait("Half ")
            await reader.until("TEXT_MESSAGE_CONTENT")
        await until(lambda: app.state.runs.live == 0)  # the client left: cancelled
        _response, second = await get_events(client, "/runs/r2")
    assert second[-1].json == {
        "type": "RUN_FINISHED",
        "threadId": "t1",
        "runId": "r2",
        "outcome": {"type": "cancelled"},
    }
    assert deleted == ["a.txt"]


async def test_a_new_agui_run_of_the_thread_abandons_the_paused_one() -> None:
    # the model's next reply at each call of the process (not one per turn of the
    # conversation, which would ask r2's same call for approval anew): r2 just finishes
    replies: list[ScriptedReply] = [CallTool("delete_file", {"path": "a.txt"}), "Finished."]
    sequential = offline_agent.fork(
        tools=[FunctionTool(delete_file, requires_approval=True)],
        reply=iter(replies),
        token_delay=0,
    )
    app = agui_app(sequential, authentication=NoAuthentication())
    async with served(app) as client:
        _response, first = await post_events(client, approval_input("r1"))
        paused = app.state.runs.get("r1").job
        assert paused.paused
        _response, second = await post_events(client, approval_input("r2"))
        await until(lambda: paused.done)
        call_id = first[-1].json["outcome"]["interrupts"][0]["id"]
        entry = {"interruptId": call_id, "status": "resolved", "payload": {"approved": True}}
        late = await client.post("/", json=approval_input("r3", [entry]))
    assert second[0].json == {
        "type": "RUN_STARTED",
        "threadId": "t1",
        "runId": "r2",
        "protocolVersion": "1.0",
    }
    assert unmetered(second[-1].json) == {"type": "RUN_FINISHED", "threadId": "t1", "runId": "r2"}
    assert late.status_code == 404  # the abandoned run's interrupt is answered by nobody
    assert deleted == []


async def test_two_paused_agui_runs_of_one_thread_are_each_resumed_by_their_interrupts() -> None:
    # r1 and r2 of thread t1 run at once and both pause (r2 first); each is resumed by the
    # ids of its own interrupts (was: the thread kept its latest pause only, so r2's resume
    # was a 404 and r2 waited until keep_runs_for cancelled it)
    release = asyncio.Event()

    async def hold() -> str:
        """Wait for the test."""
        await release.wait()
        return "held"

    def reply(call: LLMCall) -> ScriptedReply:
        texts = [m.text or "" for m in call.messages]
        [run] = [text.split()[-1] for text in texts if text.startswith("Run ")]
        deleting = CallTool("delete_file", {"path": f"{run}.txt"})
        first: ScriptedReply = [CallTool("hold", {}), deleting] if run == "r1" else deleting
        return one_per_call(first, "Finished.")(call)

    agent = offline_agent.fork(
        tools=[FunctionTool(hold), FunctionTool(delete_file, requires_approval=True)],
        reply=reply,
        token_delay=0,
    )
    app = agui_app(agent, authentication=NoAuthentication())
    manager: RunManager = app.state.runs
    async with (
        served(app) as client,
        client.stream("POST", "/", json=agui_input("r1", text="Run r1")) as first,
    ):
        reader = SSEReader(first)
        await reader.until("TOOL_CALL_END")  # r1 holds: it runs, not paused
        _response, second = await post_events(client, agui_input("r2", text="Run r2"))
        release.set()
        rest = await reader.rest()
        assert manager.live == 2
        assert all(job.paused for job in manager.jobs())
        asked = {
            run: events[-1].json["outcome"]["interrupts"][0]["id"]
            for run, events in (("r1", rest), ("r2", second))
        }
        assert asked["r1"] != asked["r2"]
        done = {}
        for run, resumed in (("r2", "r3"), ("r1", "r4")):
            entry = {"interruptId": asked[run], "status": "resolved", "payload": {"approved": True}}
            response, events = await post_events(client, approval_input(resumed, [entry]))
            assert response.status_code == 200, (run, response.status_code)
            done[run] = events
            assert deleted == [f"{name}.txt" for name in done]
    for events in done.values():
        assert events[-1].json["type"] == "RUN_FINISHED"
        assert "outcome" not in events[-1].json or events[-1].json["outcome"]["type"] == "success"
    assert manager.live == 0


async def test_a_paused_run_nobody_resumes_is_cancelled_after_keep_runs_for() -> None:
    app = agui_app(
        approving_assistant(),
        authentication=NoAuthentication(),
        settings=WebSettings(keep_runs_for=0),
    )
    async with served(app) as client:
        _response, first = await post_events(client, approval_input("r1"))
        assert first[-1].json["outcome"]["type"] == "interrupt"
        await until(lambda: app.state.runs.live == 0)  # the paused job is cancelled
        call_id = first[-1].json["outcome"]["interrupts"][0]["id"]
        entry = {"interruptId": call_id, "status": "resolved", "payload": {"approved": True}}
        late = await client.post("/", json=approval_input("r2", [entry]))
    assert late.status_code == 404
    assert "keep_runs_for" in late.json()["error"]["message"]
    assert deleted == []


# -- the AI SDK's own flow: the stream ends at the request, the chat is sent again ---------------


async def test_an_ai_sdk_stream_ends_at_the_approval_and_the_resent_chat_resumes_it() -> None:
    async with served(
        ai_sdk_app(approving_assistant(), authentication=NoAuthentication())
    ) as client:
        _response, first = await post_events(client, CHAT)
        assert event_types(first)[-4:] == [
            "tool-approval-request",
            "finish-step",
            "finish",
            "[DONE]",
        ]
        asked = first[-4].json
        assert asked == {
            "type": "tool-approval-request",
            "approvalId": asked["toolCallId"],
            "toolCallId": asked["toolCallId"],
        }
        assert deleted == []
        paused = await client.get("/c1/stream")  # a reload: no stream is active, nothing twice
        assert (paused.status_code, paused.content) == (204, b"")
        _response, second = await post_events(client, answered_chat(first, {"approved": True}))
        ended = await client.get("/c1/stream")
        assert ended.status_code == 204
        _response, resumed = await get_events(client, "/c1/stream", {"last-event-id": "0"})
    assert resumed == second[1:]  # the chat's latest run, to a client cut off in it
    assert second[0].json == {"type": "start", "messageId": first[0].json["messageId"]}
    # the decided call's output comes outside a step (as the AI SDK's agents send it: a
    # start-step first left an empty step in the message); the model's next step follows
    assert event_types(second)[:4] == [
        "start",
        "data-tool-output-delta",
        "tool-output-available",
        "start-step",
    ]
    output = next(e.json for e in second if e.type == "tool-output-available")
    assert output == {
        "type": "tool-output-available",
        "toolCallId": asked["toolCallId"],
        "output": "Deleted a.txt",
    }
    assert "".join(e.json["delta"] for e in second if e.type == "text-delta") == "Finished."
    assert event_types(second)[-3:] == ["finish-step", "finish", "[DONE]"]
    assert deleted == ["a.txt"]


async def test_an_ai_sdk_stream_pauses_once_the_calls_that_need_no_approval_have_their_output() -> (
    None
):
    # useChat's lastAssistantMessageIsCompleteWithApprovalResponses sends the approvals back
    # only when each call of the last step has an output (or an approval response): a call
    # that needs none, made after the one that waits, must have its output before the pause
    def add(a: int, b: int) -> int:
        """Add two numbers."""
        return a + b

    calls = [CallTool("delete_file", {"path": "a.txt"}), CallTool("add", {"a": 1, "b": 2})]
    agent = offline_agent.fork(
        tools=[FunctionTool(delete_file, requires_approval=True), add],
        reply=one_per_call(calls, "Finished."),
        token_delay=0,
    )
    async with served(ai_sdk_app(agent, authentication=NoAuthentication())) as client:
        _response, first = await post_events(client, CHAT)
        data = [event.json for event in first if event.data != "[DONE]"]
        ids = [e["toolCallId"] for e in data if e["type"] == "tool-input-available"]
        assert {"type": "tool-output-available", "toolCallId": ids[1], "output": "3"} in data
        assert event_types(first)[-3:] == ["finish-step", "finish", "[DONE]"]
        assert not any(e.get("toolCallId") == ids[0] for e in data if "output" in e["type"])
        _response, second = await post_events(client, answered_chat(first, {"approved": True}))
    rest = [event.json for event in second if event.data != "[DONE]"]
    output = {"type": "tool-output-available", "toolCallId": ids[0], "output": "Deleted a.txt"}
    assert output in rest
    assert not any(e.get("toolCallId") == ids[1] for e in rest)  # its output came before
    assert "".join(e["delta"] for e in rest if e["type"] == "text-delta") == "Finished."
    assert deleted == ["a.txt"]


# -- a resume sent while its run still streams: it waits for the pause, the job runs once ------


def held_assistant(poem: asyncio.Queue[str | None], turns: list[int]) -> MiniAgent[..., Message]:
    """The poet (writing the tokens the test gives) and a call that needs approval, in one
    round; ``turns`` notes the turn of each call of the model (its body runs once a turn)."""
    script = one_per_call(
        [CallTool("POET", {"subject": "rivers"}), CallTool("delete_file", {"path": "a.txt"})],
        "Finished.",
    )

    def reply(call: LLMCall) -> ScriptedReply:
        turns.append(model_turns(call.messages))
        return script(call)

    return offline_agent.fork(
        tools=[queued_poet(poem), FunctionTool(delete_file, requires_approval=True)],
        reply=reply,
        token_delay=0,
    )


def noted_lookups(monkeypatch: pytest.MonkeyPatch) -> asyncio.Event:
    """An event set as a resume request looks for its paused job (``apaused_here``)."""
    entered = asyncio.Event()
    lookup = RunManager.apaused_here

    async def noted(self: RunManager, *args: Any, **kwargs: Any) -> Job | Response | None:
        entered.set()
        return await lookup(self, *args, **kwargs)

    monkeypatch.setattr(RunManager, "apaused_here", noted)
    return entered


async def resumed_in_the_window(
    monkeypatch: pytest.MonkeyPatch,
    app: Starlette,
    client: httpx.AsyncClient,
    reader: SSEReader,
    poem: asyncio.Queue[str | None],
    resume_body: dict[str, Any],
    twice: bool = False,
) -> tuple[list[SSEEvent], list[SSEEvent]]:
    """Resume the run ``reader`` follows while its poet still writes, then let the poet end.

    The poet ends only once the resume request looks for its paused job (``apaused_here``,
    noted before it runs: when the test wakes, the request waits in it, or was answered);
    ``twice``: a second resume is sent first, and refused at once (one waits at a time).
    Returns the first run's rest and the resume's events, once the manager has no job left.
    """
    entered = noted_lookups(monkeypatch)
    manager: RunManager = app.state.runs
    assert manager.live == 1
    assert manager.jobs()[0].paused is False  # still streaming: the poet writes
    resume = asyncio.ensure_future(post_events(client, resume_body))
    await entered.wait()
    if twice:
        refused = await client.post("/", json=resume_body)
        assert (refused.status_code, refused.json()["error"]["code"]) == (409, "resume_waiting")
    assert not resume.done()
    assert deleted == []
    poem.put_nowait("Rivers.")
    poem.put_nowait(None)
    rest = await reader.rest()
    resumed, second = await resume
    assert resumed.status_code == 200  # (not a 409 or a 404: it waited for the pause)
    await until(lambda: manager.live == 0)
    return rest, second


@pytest.mark.parametrize("twice", [False, True], ids=["once", "a second refused"])
async def test_an_ai_sdk_resume_sent_before_the_run_paused_waits_for_the_pause(
    monkeypatch: pytest.MonkeyPatch, twice: bool
) -> None:
    # the approval request reaches the page while the round's other call (the poet) still
    # runs; the chat sent back in that window resumes the job when it pauses: not a 409,
    # and not a second job of the chat (a second resume meanwhile, another tab's or a
    # retry, is answered at once: one waits at a time, and it holds nothing)
    poem: asyncio.Queue[str | None] = asyncio.Queue()
    turns: list[int] = []
    app = ai_sdk_app(held_assistant(poem, turns), authentication=NoAuthentication())
    async with served(app) as client, client.stream("POST", "/", json=CHAT) as response:
        reader = SSEReader(response)
        first = await reader.until("tool-approval-request")
        again = answered_chat(first, {"approved": True})
        rest, second = await resumed_in_the_window(
            monkeypatch, app, client, reader, poem, again, twice
        )
    first += rest
    assert event_types(first)[-3:] == ["finish-step", "finish", "[DONE]"]  # it paused
    poet_output = [e.json for e in first if e.type == "tool-output-available"]
    assert [output["output"] for output in poet_output] == ["Rivers."]
    asked = next(e.json for e in first if e.type == "tool-approval-request")
    output = {"type": "tool-output-available", "toolCallId": asked["toolCallId"]}
    assert [e.json for e in second if e.type == "tool-output-available"] == [
        {**output, "output": "Deleted a.txt"}
    ]
    assert "".join(e.json["delta"] for e in second if e.type == "text-delta") == "Finished."
    assert event_types(second)[-3:] == ["finish-step", "finish", "[DONE]"]
    assert deleted == ["a.txt"]
    assert turns == [0, 1]  # one job: each turn of the model asked once
    manager: RunManager = app.state.runs
    assert (manager.live, manager.paused("c1"), manager.open_streams) == (0, None, 0)


async def test_an_agui_resume_sent_before_the_run_paused_waits_for_the_pause(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # a client that resumes by the call's id (its interrupt's) as soon as it saw the call,
    # while the round's other call still runs: the new run goes on from the pause
    poem: asyncio.Queue[str | None] = asyncio.Queue()
    turns: list[int] = []
    app = agui_app(held_assistant(poem, turns), authentication=NoAuthentication())
    async with served(app) as client, client.stream("POST", "/", json=approval_input()) as response:
        reader = SSEReader(response)
        first = await reader.until("TOOL_CALL_END")  # the poet's call
        first += await reader.until("TOOL_CALL_END")  # delete_file's
        [call_id] = [
            e.json["toolCallId"]
            for e in first
            if e.type == "TOOL_CALL_START" and e.json["toolCallName"] == "delete_file"
        ]
        entry = {"interruptId": call_id, "status": "resolved", "payload": {"approved": True}}
        again = approval_input("r2", [entry])
        rest, second = await resumed_in_the_window(monkeypatch, app, client, reader, poem, again)
    first += rest
    [interrupt] = first[-1].json["outcome"]["interrupts"]  # it paused
    assert interrupt["id"] == call_id
    results = [e.json["content"] for e in first if e.type == "TOOL_CALL_RESULT"]
    assert results == ["Rivers."]
    results = [e.json["content"] for e in second if e.type == "TOOL_CALL_RESULT"]
    assert results == ["Deleted a.txt"]
    assert unmetered(second[-1].json) == {"type": "RUN_FINISHED", "threadId": "t1", "runId": "r2"}
    assert deleted == ["a.txt"]
    assert turns == [0, 1]
    manager: RunManager = app.state.runs
    assert (manager.live, manager.paused("t1"), manager.open_streams) == (0, None, 0)


async def test_an_ai_sdk_denial_on_the_resend_is_tool_output_denied_and_the_run_goes_on() -> None:
    async with served(
        ai_sdk_app(approving_assistant(), authentication=NoAuthentication())
    ) as client:
        _response, first = await post_events(client, CHAT)
        answer = {"approved": False, "reason": "Keep it."}
        _response, second = await post_events(client, answered_chat(first, answer))
    call_id = first[-4].json["toolCallId"]
    data = [e.json for e in second if e.data != "[DONE]"]
    assert {"type": "tool-output-denied", "toolCallId": call_id} in data
    denial = "".join(
        e["data"]["delta"] for e in data if e["type"] == "data-tool-output-delta"
    )  # what the model reads as the tool's result
    assert denial == (
        "The user denied the call of the tool delete_file; it did not run. Their reason: Keep it."
    )
    assert "".join(e["delta"] for e in data if e["type"] == "text-delta") == "Finished."
    assert second[-1].data == "[DONE]"
    assert deleted == []


@pytest.mark.parametrize(
    ("approval", "status", "code", "named"),
    [
        ({"id": "nope", "approved": True}, 404, "unknown_approval", "'nope'"),
        ({"id": "{call}", "approved": "yes"}, 422, "invalid_chat_request", "approval"),
        ({"approved": True}, 422, "invalid_chat_request", "messages.1.parts.0.approval"),
    ],
)
async def test_a_bad_ai_sdk_approval_response_is_a_4xx_and_changes_nothing(
    approval: dict[str, Any], status: int, code: str, named: str
) -> None:
    async with served(
        ai_sdk_app(approving_assistant(), authentication=NoAuthentication())
    ) as client:
        _response, first = await post_events(client, CHAT)
        call_id = first[-4].json["approvalId"]
        body = answered_chat(first, {})
        part = body["messages"][1]["parts"][0]
        part["approval"] = {
            key: value.format(call=call_id) if isinstance(value, str) else value
            for key, value in approval.items()
        }
        refused = await client.post("/", json=body)
        assert refused.status_code == status
        assert refused.json()["error"]["code"] == code
        assert named in refused.json()["error"]["message"]
        assert deleted == []
        _response, kept = await get_events(client, "/c1/stream", {"last-event-id": "0"})
        assert kept == first[1:]  # the chat's run is the paused one still
        _response, second = await post_events(client, answered_chat(first, {"approved": True}))
        assert second[-1].data == "[DONE]"
        again = await client.post("/", json=answered_chat(first, {"approved": True}))
        assert again.status_code == 409  # answered once: nothing waits any more
        assert again.json()["error"]["code"] == "not_pending"
    assert deleted == ["a.txt"]


JSON = {"content-type": "application/json"}

REFUSED_EDIT = {"approved": True, "arguments": {"path": 42, "extra": 1}}
"""An approval whose edited arguments ``delete_file`` refuses (a number, and an extra one)."""


def says_the_edit_is_refused(message: str, where: str, call_id: str) -> None:
    assert message.startswith(
        f"{where}: The edited arguments of the call {call_id!r} of delete_file do not fit the "
        "tool's argument schema, so the call was not decided and still waits"
    )
    assert "'path': Input should be a valid string" in message
    assert "'extra': Extra inputs are not permitted" in message


async def test_an_agui_resume_whose_edit_the_tool_refuses_is_a_422_and_nothing_is_decided() -> None:
    calls = [CallTool("delete_file", {"path": "a.txt"}), CallTool("delete_file", {"path": "b.txt"})]
    agent = offline_agent.fork(
        tools=[FunctionTool(delete_file, requires_approval=True)],
        reply=one_per_call(calls, "Finished."),
        token_delay=0,
    )
    app = agui_app(
        agent, authentication=NoAuthentication(), settings=WebSettings(approval_edits=True)
    )
    async with served(app) as client:
        _response, first = await post_events(client, approval_input("r1"))
        asked = [interrupt["id"] for interrupt in first[-1].json["outcome"]["interrupts"]]
        approve = {"status": "resolved", "payload": {"approved": True}}
        entries = [
            {"interruptId": asked[0], **approve},
            {"interruptId": asked[1], "status": "resolved", "payload": REFUSED_EDIT},
        ]
        refused = await client.post("/", json=approval_input("r2", entries))
        assert refused.status_code == 422
        error = refused.json()["error"]
        assert error["code"] == "invalid_arguments"
        says_the_edit_is_refused(error["message"], "resume.1.payload.arguments", asked[1])
        job = app.state.runs.paused("t1")
        assert job is not None  # the run still waits, for both: the good answer was not given
        assert [job.asked(call).pending for call in asked] == [True, True]
        assert (await client.get("/runs/r2")).status_code == 404  # no run started
        edited = {"approved": True, "arguments": {"path": "c.txt"}}
        entries[1] = {"interruptId": asked[1], "status": "resolved", "payload": edited}
        _response, second = await post_events(
            client, approval_input("r2", entries)
        )  # answered again
    results = [e.json["content"] for e in second if e.type == "TOOL_CALL_RESULT"]
    assert results == ["Deleted a.txt", "Deleted c.txt"]
    assert unmetered(second[-1].json) == {"type": "RUN_FINISHED", "threadId": "t1", "runId": "r2"}
    assert sorted(deleted) == ["a.txt", "c.txt"]


@pytest.mark.parametrize("protocol", ["agui", "ai_sdk"])
async def test_a_decision_whose_edit_the_tool_refuses_is_a_422_and_the_call_still_waits(
    protocol: str,
) -> None:
    if protocol == "agui":
        app = agui_app(
            approving_assistant(),
            authentication=NoAuthentication(),
            settings=WebSettings(approval_edits=True),
            approval_flow="in_stream",
        )
        body, ask, url = approval_input(), "CUSTOM", "/runs/r1/approvals/{}"
    else:
        app = ai_sdk_app(
            approving_assistant(),
            authentication=NoAuthentication(),
            settings=WebSettings(approval_edits=True),
            approval_flow="in_stream",
        )
        body, ask, url = CHAT, "tool-approval-request", "/c1/approvals/{}"
    async with (
        served(app) as client,
        client.stream("POST", "/", json=body) as response,
    ):
        reader = SSEReader(response)
        asked = (await reader.until(ask))[-1].json
        call_id = asked["value"]["toolCallId"] if protocol == "agui" else asked["toolCallId"]
        refused = await client.post(url.format(call_id), json=REFUSED_EDIT)
        assert refused.status_code == 422
        error = refused.json()["error"]
        assert error["code"] == "invalid_arguments"
        says_the_edit_is_refused(error["message"], "arguments", call_id)
        edited = {"approved": True, "arguments": {"path": "b.txt"}}
        decided = await client.post(url.format(call_id), json=edited)  # answered again
        assert decided.status_code == 200
        rest = await reader.rest()
    assert rest[-1].type == ("RUN_FINISHED" if protocol == "agui" else "[DONE]")
    assert deleted == ["b.txt"]


async def test_the_decision_url_decides_a_call_before_the_run_pauses_so_it_never_does() -> None:
    poem: asyncio.Queue[str | None] = asyncio.Queue()
    async with (
        served(ai_sdk_app(gated_assistant(poem), authentication=NoAuthentication())) as client,
        client.stream("POST", "/", json=CHAT) as response,
    ):
        reader = SSEReader(response)
        asked = (await reader.until("tool-approval-request"))[-1].json
        decided = await client.post(f"/c1/approvals/{asked['approvalId']}", json={"approved": True})
        assert decided.status_code == 200
        poem.put_nowait("Flow.")
        poem.put_nowait(None)
        rest = await reader.rest()
    assert event_types(rest).count("finish") == 1  # one stream, to the end
    assert "".join(e.json["delta"] for e in rest if e.type == "text-delta") == "Finished."
    assert deleted == ["a.txt"]


async def test_the_decision_url_refuses_a_paused_run_and_names_the_protocols_way() -> None:
    async with served(agui_app(approving_assistant(), authentication=NoAuthentication())) as client:
        _response, first = await post_events(client, approval_input("r1"))
        call_id = first[-1].json["outcome"]["interrupts"][0]["id"]
        refused = await client.post(f"/runs/r1/approvals/{call_id}", json={"approved": True})
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "paused"
    assert "resume" in refused.json()["error"]["message"]
    assert deleted == []


# -- the in-stream flow: the stream stays open, the decision comes to the app's own URL ---------


async def test_an_agui_page_is_asked_in_stream_and_its_edited_approval_resumes_the_run() -> None:
    async with (
        served(
            agui_app(
                approving_assistant(),
                authentication=NoAuthentication(),
                approval_flow="in_stream",
                settings=WebSettings(approval_edits=True),
            )
        ) as client,
        client.stream("POST", "/", json=approval_input()) as response,
    ):
        reader = SSEReader(response)
        before = await reader.until("CUSTOM")
        ask = before[-1].json
        assert ask["name"] == "tool_approval_request"
        call_id = ask["value"]["toolCallId"]
        assert ask["value"]["id"] == call_id
        assert ask["value"]["reason"] == "tool_approval"
        assert ask["value"]["metadata"] == {
            "toolName": "delete_file",
            "arguments": {"path": "a.txt"},
        }
        assert ask["value"]["responseSchema"]["required"] == ["approved"]
        assert deleted == []  # it waits
        decided = await client.post(
            f"/runs/r1/approvals/{call_id}",
            json={"approved": True, "arguments": {"path": "b.txt"}},
        )
        assert decided.status_code == 200
        assert decided.json() == {"toolCallId": call_id, "approved": True}
        again = await client.post(f"/runs/r1/approvals/{call_id}", json={"approved": False})
        assert again.status_code == 409
        assert again.json()["error"]["code"] == "not_pending"
        rest = await reader.rest()
    result = next(e.json for e in rest if e.type == "TOOL_CALL_RESULT")
    assert result["content"] == "Deleted b.txt"
    assert rest[-1].type == "RUN_FINISHED"
    assert "outcome" not in rest[-1].json
    assert deleted == ["b.txt"]


async def test_an_in_stream_decision_of_a_call_decided_already_names_the_calls_still_waiting() -> (
    None
):
    """A run that streams waits at two calls; one is decided at the approvals URL, and a
    second decision of it is refused with a 409 that names the call still waiting; deciding
    that one goes on. (Was: the plain "is not waiting for a decision any more", which did
    not say which of the run's calls still wait.)"""
    calls = [CallTool("delete_file", {"path": "a.txt"}), CallTool("delete_file", {"path": "b.txt"})]
    agent = offline_agent.fork(
        tools=[FunctionTool(delete_file, requires_approval=True)],
        reply=one_per_call(calls, "Finished."),
        token_delay=0,
    )
    app = agui_app(agent, authentication=NoAuthentication(), approval_flow="in_stream")
    async with served(app) as client, client.stream("POST", "/", json=approval_input()) as response:
        reader = SSEReader(response)
        first_id, second_id = [
            (await reader.until("CUSTOM"))[-1].json["value"]["toolCallId"] for _ in range(2)
        ]
        decided = await client.post(f"/runs/r1/approvals/{first_id}", json={"approved": True})
        assert decided.status_code == 200
        again = await client.post(f"/runs/r1/approvals/{first_id}", json={"approved": False})
        assert again.status_code == 409
        assert again.json()["error"] == {
            "code": "not_pending",
            "message": f"The call {first_id!r} of delete_file was decided already (a call's "
            "first decision holds); decide only the calls of the run still waiting: "
            f"{second_id!r}.",
        }
        decided = await client.post(f"/runs/r1/approvals/{second_id}", json={"approved": True})
        assert decided.status_code == 200
        rest = await reader.rest()
    assert rest[-1].type == "RUN_FINISHED"
    assert sorted(deleted) == ["a.txt", "b.txt"]


async def test_an_ai_sdk_page_is_asked_in_stream_and_its_denial_reaches_the_model() -> None:
    async with (
        served(
            ai_sdk_app(
                approving_assistant(), authentication=NoAuthentication(), approval_flow="in_stream"
            )
        ) as client,
        client.stream("POST", "/", json=CHAT) as response,
    ):
        reader = SSEReader(response)
        call_id = (await reader.until("tool-approval-request"))[-1].json["toolCallId"]
        decided = await client.post(
            f"/c1/approvals/{call_id}", json={"approved": False, "reason": "Keep it."}
        )
        assert decided.status_code == 200
        rest = await reader.rest()
    assert {"type": "tool-output-denied", "toolCallId": call_id} in [
        e.json for e in rest if e.data != "[DONE]"
    ]
    assert event_types(rest).count("finish") == 1
    assert rest[-1].data == "[DONE]"
    assert deleted == []


@pytest.mark.parametrize(
    ("path", "body", "status", "code"),
    [
        ("/runs/nope/approvals/x", {"approved": True}, 404, "unknown_run"),
        ("/runs/r1/approvals/not-a-call", {"approved": True}, 404, "unknown_approval"),
        ("/runs/r1/approvals/{call}", {"approved": "yes"}, 422, "invalid_decision"),
        ("/runs/r1/approvals/{call}", {"approved": True, "extra": 1}, 422, "invalid_decision"),
        ("/runs/r1/approvals/{call}", b"{", 400, "invalid_json"),
    ],
)
async def test_a_bad_decision_is_a_4xx_and_changes_nothing(
    path: str, body: object, status: int, code: str
) -> None:
    async with (
        served(
            agui_app(
                approving_assistant(), authentication=NoAuthentication(), approval_flow="in_stream"
            )
        ) as client,
        client.stream("POST", "/", json=approval_input()) as response,
    ):
        reader = SSEReader(response)
        call = (await reader.until("CUSTOM"))[-1].json["value"]["toolCallId"]
        url = path.format(call=call)
        if isinstance(body, bytes):
            refused = await client.post(url, content=body, headers=JSON)
        else:
            refused = await client.post(url, json=body)
        assert refused.status_code == status
        assert refused.json()["error"]["code"] == code
        assert deleted == []
        decided = await client.post(f"/runs/r1/approvals/{call}", json={"approved": True})
        assert decided.status_code == 200  # still pending: the bad one changed nothing
        rest = await reader.rest()
    assert rest[-1].type == "RUN_FINISHED"
    assert deleted == ["a.txt"]


async def test_a_decision_after_the_run_was_cancelled_is_a_409() -> None:
    app = agui_app(
        approving_assistant(),
        authentication=NoAuthentication(),
        approval_flow="in_stream",
        settings=WebSettings(grace_period=0),
    )
    async with served(app) as client:
        async with client.stream("POST", "/", json=approval_input()) as response:
            call = (await SSEReader(response).until("CUSTOM"))[-1].json["value"]["toolCallId"]
        await until(lambda: app.state.runs.get("r1").done)  # the last client left: cancelled
        refused = await client.post(f"/runs/r1/approvals/{call}", json={"approved": True})
        assert refused.status_code == 409
        assert "ended or was cancelled" in refused.json()["error"]["message"]
        _response, events = await get_events(client, "/runs/r1")
    assert events[-1].json["outcome"] == {"type": "cancelled"}
    assert deleted == []


async def test_an_agui_resume_waits_past_other_runs_of_the_thread_that_end_without_pausing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # three runs of thread t1 at once: r1 will pause for delete_file's approval, r2 and r3
    # will finish without pausing; a resume sent while all three run waits until r1 pauses,
    # whichever of them it first waits for (was: the first it found, so a 404 once that one
    # had ended, about two times in three)
    gates = {name: asyncio.Event() for name in ("r1", "r2", "r3")}

    async def hold(name: str) -> str:
        """Wait for the test."""
        await gates[name].wait()
        return f"{name} held"

    def reply(call: LLMCall) -> ScriptedReply:
        texts = [m.text or "" for m in call.messages]
        [run] = [text.split()[-1] for text in texts if text.startswith("Run ")]
        if run == "r1":
            first: ScriptedReply = [
                CallTool("hold", {"name": "r1"}),
                CallTool("delete_file", {"path": "a.txt"}),
            ]
        else:
            first = CallTool("hold", {"name": run})
        return one_per_call(first, "Finished.")(call)

    agent = offline_agent.fork(
        tools=[FunctionTool(hold), FunctionTool(delete_file, requires_approval=True)],
        reply=reply,
        token_delay=0,
    )
    entered = noted_lookups(monkeypatch)
    app = agui_app(agent, authentication=NoAuthentication())
    manager: RunManager = app.state.runs
    async with (
        served(app) as client,
        client.stream("POST", "/", json=agui_input("r1", text="Run r1")) as first,
        client.stream("POST", "/", json=agui_input("r2", text="Run r2")) as second,
        client.stream("POST", "/", json=agui_input("r3", text="Run r3")) as third,
    ):
        readers = [SSEReader(response) for response in (first, second, third)]
        started = await readers[0].until("TOOL_CALL_END")
        started += await readers[0].until("TOOL_CALL_END")  # delete_file's call
        [call_id] = [
            e.json["toolCallId"]
            for e in started
            if e.type == "TOOL_CALL_START" and e.json["toolCallName"] == "delete_file"
        ]
        for reader in readers[1:]:
            await reader.until("TOOL_CALL_END")
        assert manager.live == 3
        assert not any(job.paused for job in manager.jobs())
        entry = {"interruptId": call_id, "status": "resolved", "payload": {"approved": True}}
        resume = asyncio.ensure_future(post_events(client, approval_input("r4", [entry])))
        await entered.wait()
        for name, reader in zip(("r2", "r3"), readers[1:], strict=True):
            gates[name].set()
            assert (await reader.rest())[-1].json["type"] == "RUN_FINISHED"
        await until(lambda: manager.live == 1)
        assert not resume.done()
        assert deleted == []
        gates["r1"].set()
        rest = await readers[0].rest()
        resumed, events = await resume
    assert rest[-1].json["outcome"]["interrupts"][0]["id"] == call_id  # r1 paused
    assert resumed.status_code == 200
    results = [e.json["content"] for e in events if e.type == "TOOL_CALL_RESULT"]
    assert results == ["Deleted a.txt"]
    assert unmetered(events[-1].json) == {"type": "RUN_FINISHED", "threadId": "t1", "runId": "r4"}
    assert deleted == ["a.txt"]
    await until(lambda: manager.live == 0)
