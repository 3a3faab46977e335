"""An ended task keeps what ``GetTask`` answers, not its runs (kept as long as the app keeps each).

The run manager keeps at most ``max_ended_runs`` ended runs for late readers, and as many
ended tasks for ``GetTask``. A task of several runs (one per answer to its questions) ends
more runs than tasks, so its runs are let go of before it is: the task, still answered in
full, must not hold them (nor its last one) past that. What the ended tasks keep is bounded
in bytes too (``max_ended_run_bytes``): their clients' messages may be as large as a body.
A live task is bounded by ``max_live_run_bytes``: a running turn past it is cut (the task
fails with the error), and a message to a task that holds more is refused.
"""

from __future__ import annotations

import gc
import json
import tracemalloc
from typing import Any

import httpx2
from starlette.applications import Starlette

from miniagents import InteractionContext, Message, MiniAgent, miniagent
from miniagents.ext.a2a import a2a_app
from miniagents.ext.a2a._encoding import A2AEncoder
from miniagents.ext.input_requests import request_input
from miniagents.ext.llm.offline import offline_agent
from miniagents.ext.web import BearerTokenAuth, NoAuthentication, WebSettings
from miniagents.ext.web.lowlevel import Run
from miniagents.ext.web.settings import DEFAULT_MAX_ENDED_RUN_BYTES
from tests.ext.a2a.kit import ALICE, BOB, approving
from tests.ext.a2a.rpc import call, get_task, rpc, send_params, stream_results
from tests.ext.web.long_reply import BOUND, PEAK_BYTES, TOKEN, TOKENS, Sent, writer
from tests.ext.web.serving import (  # noqa: F401
    delete_file,
    deleted,
    nothing_deleted,
    served,
    until,
)


def runs_of(task_id: str) -> list[Run]:
    """The runs of the task ``task_id`` that anything still holds, with their events (after a
    ``gc.collect()``; an ended task's own stand-in, an empty run, is none)."""
    gc.collect()
    return [
        found
        for found in gc.get_objects()
        if isinstance(found, Run) and task_id in found.key and found.events
    ]


async def approved_task(client: httpx2.AsyncClient) -> str:
    """A task that asks for an approval, is answered, and completes: two runs; its id."""
    asked = (await call(client, rpc("SendMessage", send_params("Delete notes.md")))).json()
    task = asked["result"]["task"]
    assert task["status"]["state"] == "TASK_STATE_INPUT_REQUIRED"
    [question] = [part for part in task["status"]["message"]["parts"] if "data" in part]
    call_id = question["data"]["toolApprovalRequest"]["toolCallId"]
    answer = {"data": {"toolCallId": call_id, "approved": True}}
    sent = send_params(taskId=task["id"], parts=[answer])
    done = (await call(client, rpc("SendMessage", sent))).json()["result"]["task"]
    assert done["status"]["state"] == "TASK_STATE_COMPLETED"
    return str(task["id"])


async def test_an_ended_tasks_runs_are_let_go_of_while_get_task_still_answers_it_whole() -> None:
    app = a2a_app(
        approving(),
        authentication=NoAuthentication(),
        settings=WebSettings(keep_runs_for=3600, max_ended_runs=2),
    )
    manager = app.state.runs
    transport = httpx2.ASGITransport(app=app)
    async with httpx2.AsyncClient(transport=transport, base_url="http://localhost") as client:
        first = await approved_task(client)
        whole = await get_task(client, first)
        assert runs_of(first) == []  # let go of as it ended (A2A answers from its task)
        second = await approved_task(client)
        assert manager.kept == 0  # (no ended run kept for late readers A2A never has)
        assert runs_of(second) == []
        again = await get_task(client, first)
    assert again == whole  # its status, artifacts and history, as when its runs were kept
    assert [artifact["metadata"]["miniagents"]["kind"] for artifact in whole["artifacts"]] == [
        "tool-call",
        "tool-result",
        "text",
    ]
    assert whole["artifacts"][-1]["parts"] == [{"text": "Done."}]
    assert len(whole["history"]) == 3  # the request, the question, the answer
    assert deleted == ["notes.md", "notes.md"]


BODY_TEXT = 900_000
"""The text of each large message (a body just under the default ``max_body_bytes``)."""


def kept_records() -> dict[str, int]:
    """The bytes of each task record that anything still holds, by task id (its JSON, the
    client's messages in its history; after a ``gc.collect()``)."""
    gc.collect()
    return {
        found.fold.task_id: len(json.dumps(found.fold.task(found.client_messages)))
        for found in gc.get_objects()
        if isinstance(found, A2AEncoder)
    }


async def sent_task(client: httpx2.AsyncClient, text: str, token: str = ALICE) -> str:
    """A task of one message of ``text``, ended (completed); its id."""
    headers = {"Authorization": f"Bearer {token}"}
    answer = await call(client, rpc("SendMessage", send_params(text)), headers=headers)
    task = answer.json()["result"]["task"]
    assert task["status"]["state"] == "TASK_STATE_COMPLETED"
    return str(task["id"])


async def test_the_ended_tasks_keep_at_most_max_ended_run_bytes_of_their_messages() -> None:
    # (they kept every client's message: up to max_ended_runs x max_body_bytes, 1 GB)
    tasks = DEFAULT_MAX_ENDED_RUN_BYTES // BODY_TEXT + 5
    app = a2a_app(
        offline_agent.fork(reply="Done.", token_delay=0),
        authentication=BearerTokenAuth({ALICE: "alice", BOB: "bob"}),
        settings=WebSettings(keep_runs_for=3600),
    )
    async with served(app) as client:
        bobs = await sent_task(client, "b" * BODY_TEXT, BOB)
        alices = [await sent_task(client, "a" * BODY_TEXT) for _ in range(tasks)]
        kept = kept_records()
        assert sum(kept.values()) <= DEFAULT_MAX_ENDED_RUN_BYTES
        assert len(kept) < tasks  # (each record is a body's size)
        assert bobs in kept  # alice's burst let go of her own oldest, not bob's
        assert alices[-1] in kept
        assert alices[0] not in kept
        gone = await call(
            client, rpc("GetTask", {"id": alices[0]}), headers={"Authorization": f"Bearer {ALICE}"}
        )
        assert gone.json()["error"]["code"] == -32001  # TaskNotFoundError
        last = await call(
            client, rpc("GetTask", {"id": alices[-1]}), headers={"Authorization": f"Bearer {ALICE}"}
        )
        [sent] = last.json()["result"]["history"]
        assert sent["parts"] == [{"text": "a" * BODY_TEXT}]


async def test_an_ended_task_keeps_about_its_own_size_not_its_run_logs() -> None:
    # (its ended run's log was kept for late readers A2A never has: 27 times the task, for
    # a reply of 500 words, so that max_ended_run_bytes kept 27 times fewer tasks)
    words = " ".join(f"word{index}" for index in range(500))
    app = a2a_app(
        offline_agent.fork(reply=words, token_delay=0),
        authentication=NoAuthentication(),
        settings=WebSettings(keep_runs_for=3600),
    )
    async with served(app) as client:
        answer = await call(client, rpc("SendMessage", send_params("Say 500 words.")))
        task = answer.json()["result"]["task"]
        assert task["status"]["state"] == "TASK_STATE_COMPLETED"
        assert runs_of(task["id"]) == []  # its run's log, let go of as the task ended
        [record] = kept_records().values()
        assert record < 2 * len(json.dumps(task))
        got = await get_task(client, task["id"])
    assert got["artifacts"][-1]["parts"] == [{"text": words}]


async def test_a_live_task_that_holds_over_max_live_run_bytes_takes_no_more_turns() -> None:
    # (a live task of many turns held each turn's runs and messages, none counted: 40
    # answers of 200 KB were 41 runs and 8 MB, bounded only by 10 live tasks a principal)
    app = a2a_app(
        approving(),
        authentication=NoAuthentication(),
        settings=WebSettings(max_live_run_bytes=50_000),
    )
    async with served(app) as client:
        large = send_params("Delete notes.md. " + "x" * 60_000)
        task = (await call(client, rpc("SendMessage", large))).json()["result"]["task"]
        assert task["status"]["state"] == "TASK_STATE_INPUT_REQUIRED"
        [question] = [part for part in task["status"]["message"]["parts"] if "data" in part]
        call_id = question["data"]["toolApprovalRequest"]["toolCallId"]
        answer = {"data": {"toolCallId": call_id, "approved": True}}
        sent = send_params(taskId=task["id"], parts=[answer])
        refused = (await call(client, rpc("SendMessage", sent))).json()["error"]
        still = await get_task(client, task["id"])
    assert "max_live_run_bytes (50000)" in refused["message"]
    assert "Send a new message without taskId" in refused["message"]
    assert still["status"]["state"] == "TASK_STATE_INPUT_REQUIRED"  # (the turn not taken)
    assert deleted == []


async def test_a_refused_turn_leaves_what_its_task_holds_as_it_was() -> None:
    # (a message refused after the task's bound was checked, here for a call that waits for
    # no decision, had set what the task holds to the bytes of that turn, which never ran)
    app = a2a_app(
        approving(),
        authentication=NoAuthentication(),
        settings=WebSettings(max_live_run_bytes=50_000),
    )
    async with served(app) as client:
        asked = (await call(client, rpc("SendMessage", send_params("Delete notes.md")))).json()
        task = asked["result"]["task"]
        [job] = app.state.runs.jobs()
        before = job.held_bytes
        unknown = {"data": {"toolCallId": "no_such_call", "approved": True, "pad": "x" * 9_000}}
        sent = send_params(taskId=task["id"], parts=[unknown])
        refused = (await call(client, rpc("SendMessage", sent))).json()["error"]
        after_refusal = job.held_bytes
        [question] = [part for part in task["status"]["message"]["parts"] if "data" in part]
        call_id = question["data"]["toolApprovalRequest"]["toolCallId"]
        answer = {"data": {"toolCallId": call_id, "approved": True}}
        sent = send_params(taskId=task["id"], parts=[answer])
        done = (await call(client, rpc("SendMessage", sent))).json()["result"]["task"]
    assert "asked for no approval of a call 'no_such_call'" in refused["message"], refused
    assert after_refusal == before  # (was the refused message's turn, with its 9 KB)
    assert 0 < job.held_bytes < 9_000  # (the turn taken: its task's runs and messages)
    assert done["status"]["state"] == "TASK_STATE_COMPLETED"
    assert deleted == ["notes.md"]


def failure(status: dict[str, Any]) -> str:
    """The text of a failed task's ``status`` (its error's message), checked to be the cut's."""
    assert status["state"] == "TASK_STATE_FAILED", status
    [part] = status["message"]["parts"]
    text: str = part["text"]
    return text


async def test_a_running_turn_past_max_live_run_bytes_fails_its_task_with_the_cut() -> None:
    # (a running turn was never cut: one turn of a task held every event of its reply, a
    # 5 MB reply 5 MB and more, past max_live_run_bytes; only the next message was refused)
    sent = Sent()
    app = bounded(writer(sent))
    manager = app.state.runs
    async with served(app) as client:
        tracemalloc.start()
        try:
            events = await stream_results(client, rpc("SendStreamingMessage", send_params()))
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        await until(lambda: sent.stopped and manager.live == 0)
        last = events[-1]["result"]["statusUpdate"]
        task_id = last["taskId"]
        got = await get_task(client, task_id)
        whole = await call(client, rpc("SendMessage", send_params()))
    message = failure(last["status"])
    assert "max_live_run_bytes (100000)" in message, message
    assert "was cut" in message
    assert last["metadata"]["miniagents"]["errorType"] == "WebRunTooLargeError"
    assert failure(got["status"]) == message  # (a later GetTask reads the same error)
    assert "max_live_run_bytes (100000)" in failure(whole.json()["result"]["task"]["status"])
    assert sent.tokens < TOKENS  # (its agent was stopped: it wrote no more)
    streamed = sum(len(json.dumps(event)) for event in events)
    assert streamed < BOUND + 2 * len(TOKEN) + 10_000, streamed
    assert peak < PEAK_BYTES, f"peak {peak:,} bytes"


def asking_writer(sent: Sent) -> MiniAgent[..., Message]:
    """An agent that writes 60 KB and asks to go on, then replies as ``writer`` does."""

    @miniagent
    async def asking(ctx: InteractionContext) -> None:
        question = request_input("Go on?")
        ctx.reply(TOKEN * 6)
        ctx.reply(question)
        await question.aanswer()
        ctx.reply(writer(sent).inquire())

    return asking


def bounded(agent: MiniAgent[..., Message]) -> Starlette:
    """``agent``'s app, its live tasks bounded to ``BOUND`` bytes, its ended ones kept."""
    settings = WebSettings(max_live_run_bytes=BOUND, keep_runs_for=3600)
    return a2a_app(agent, authentication=NoAuthentication(), settings=settings)


async def test_a_cut_turn_leaves_its_task_holding_at_most_max_live_run_bytes() -> None:
    # (a turn was cut at max_live_run_bytes of its own events: with its earlier turns, its
    # task held up to about twice the bound, here 60 KB and 100 KB)
    sent = Sent()
    app = bounded(asking_writer(sent))
    async with served(app) as client:
        first = await stream_results(client, rpc("SendStreamingMessage", send_params()))
        task_id = first[-1]["result"]["statusUpdate"]["taskId"]
        assert first[-1]["result"]["statusUpdate"]["status"]["state"] == "TASK_STATE_INPUT_REQUIRED"
        answer = send_params("Yes.", taskId=task_id)
        second = await stream_results(client, rpc("SendStreamingMessage", answer))
        await until(lambda: sent.stopped and app.state.runs.live == 0)
    message = failure(second[-1]["result"]["statusUpdate"]["status"])
    assert "max_live_run_bytes (100000)" in message, message
    assert sent.tokens < TOKENS  # (its agent was stopped: it wrote no more)
    events = [event["result"] for event in [*first, *second] if "task" not in event["result"]]
    held = sum(len(json.dumps(event)) for event in events)  # (each stream's task snapshot aside)
    assert held < BOUND + 2 * len(TOKEN), held  # (the bound, and one event's overshoot)


def asking_once() -> MiniAgent[..., Message]:
    """An agent that asks to go on and, answered, ends with no more to say."""

    @miniagent
    async def ask_once(ctx: InteractionContext) -> None:
        question = request_input("Go on?")
        ctx.reply(question)
        await question.aanswer()

    return ask_once


async def asked_task(app: Starlette, padding: str) -> tuple[str, dict[str, Any]]:
    """A task of ``app`` that asks to go on (its first message padded with ``padding``), and
    what its client's answer "Yes." gets: its id and the answer's JSON-RPC reply."""
    async with served(app) as client:
        asked = await call(client, rpc("SendMessage", send_params(f"Go. {padding}")))
        task = asked.json()["result"]["task"]
        assert task["status"]["state"] == "TASK_STATE_INPUT_REQUIRED", task
        answer = send_params("Yes.", taskId=task["id"])
        return task["id"], (await call(client, rpc("SendMessage", answer))).json()


async def test_a_turn_is_cut_by_every_event_its_task_logs_not_only_its_replys_parts() -> None:
    # (a turn's bytes were counted twice: the encoder counted its reply's parts only, the
    # run's log every event, its WORKING status too; a turn whose status took its task past
    # max_live_run_bytes completed, and the task held over the bound)
    padding = "x" * 20_000  # (its client's first message: the task holds it, not its run)
    small = a2a_app(
        asking_once(),
        authentication=NoAuthentication(),
        settings=WebSettings(max_live_run_bytes=10_000),
    )
    _, refused = await asked_task(small, padding)
    held = int(refused["error"]["data"][0]["metadata"]["heldBytes"])  # (before the turn)
    settings = WebSettings(max_live_run_bytes=held + 50)  # (its WORKING status: over 50)
    app = a2a_app(asking_once(), authentication=NoAuthentication(), settings=settings)
    _, answered = await asked_task(app, padding)
    task = answered["result"]["task"]
    message = failure(task["status"])
    assert "max_live_run_bytes" in message, message
    assert task["metadata"]["miniagents"]["errorType"] == "WebRunTooLargeError", task
