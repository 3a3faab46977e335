"""A task belongs to the principal who started it: to anyone else it is not found.

With ``authentication=``, alice's task is ``TaskNotFoundError`` to bob whether he gets it,
cancels it, follows it or answers it, and none of that changes it (a task that waits for
input too: cancelled by alice, it ends canceled, its agent's wait cancelled and nothing of
it left running); ``ListTasks`` lists each his own; a request without
credentials is a 401 that starts nothing; the card is served to anyone (it says the bearer
scheme). The official Python SDK client sends the requests, with each principal's token.
"""

from __future__ import annotations

import asyncio
import base64
import json
from pathlib import Path
from types import CoroutineType
from typing import Any

import pytest
from a2a.types import (
    CancelTaskRequest,
    GetTaskRequest,
    SubscribeToTaskRequest,
    TaskNotFoundError,
    TaskState,
)
from google.protobuf.json_format import MessageToDict

import miniagents
from miniagents import InteractionContext, miniagent
from miniagents.ext.a2a import a2a_app
from miniagents.ext.input_requests import request_input
from miniagents.ext.llm.offline import CallTool, offline_agent, one_per_call
from miniagents.ext.tools import FunctionTool
from miniagents.ext.web import BearerTokenAuth
from tests.ext.a2a.rpc import all_of, call, decision, rpc, sdk_client, send_params, user_message
from tests.ext.web.serving import delete_file, deleted, gated, nothing_deleted, served  # noqa: F401

TOKENS = BearerTokenAuth({"alice-secret-token": "alice", "bob-secret-token": "bob"})
ALICE = {"Authorization": "Bearer alice-secret-token"}
BOB = {"Authorization": "Bearer bob-secret-token"}


async def test_another_principal_cannot_get_cancel_follow_or_answer_a_task() -> None:
    tokens: asyncio.Queue[str | None] = asyncio.Queue()
    app = a2a_app(gated(tokens), authentication=TOKENS)
    async with served(app) as web:
        url = f"{web.base_url}/"
        async with sdk_client(url, ALICE) as alice, sdk_client(url, BOB) as bob:
            events = aiter(alice.send_message(user_message("Mine")))
            task_id = (await anext(events)).task.id
            with pytest.raises(TaskNotFoundError):
                await bob.get_task(GetTaskRequest(id=task_id))
            with pytest.raises(TaskNotFoundError):
                await bob.cancel_task(CancelTaskRequest(id=task_id))
            with pytest.raises(TaskNotFoundError):
                await all_of(bob.subscribe(SubscribeToTaskRequest(id=task_id)))
            with pytest.raises(TaskNotFoundError):
                await all_of(bob.send_message(user_message("Yours?", task_id=task_id)))
            tokens.put_nowait("Still hers.")
            tokens.put_nowait(None)
            rest = [event async for event in events]
            assert rest[-1].status_update.status.state == TaskState.TASK_STATE_COMPLETED
            mine = await alice.get_task(GetTaskRequest(id=task_id))
    assert [part.text for part in mine.artifacts[0].parts] == ["Still hers."]


async def test_each_principal_lists_only_their_own_tasks() -> None:
    app = a2a_app(offline_agent.fork(reply="Hi.", token_delay=0), authentication=TOKENS)
    async with served(app) as web:
        mine = []
        for _ in range(2):
            sent = await call(web, rpc("SendMessage", send_params()), headers=ALICE)
            mine.append(sent.json()["result"]["task"]["id"])
        his = await call(web, rpc("SendMessage", send_params()), headers=BOB)
        for who, expected in ((ALICE, set(mine)), (BOB, {his.json()["result"]["task"]["id"]})):
            listed = (await call(web, rpc("ListTasks", {}), headers=who)).json()["result"]
            assert {task["id"] for task in listed["tasks"]} == expected
            assert listed["totalSize"] == len(expected)
        assert (await call(web, rpc("ListTasks", {}))).status_code == 401


async def test_a_page_token_is_taken_from_its_caller_only_and_a_forged_one_is_refused() -> None:
    # (was: a pageToken of any two strings was taken as a place, another caller's too)
    app = a2a_app(offline_agent.fork(reply="Hi.", token_delay=0), authentication=TOKENS)
    async with served(app) as web:
        for _ in range(3):
            await call(web, rpc("SendMessage", send_params()), headers=ALICE)

        async def listed(who: dict[str, str], **params: object) -> dict[str, Any]:
            body: dict[str, Any] = (await call(web, rpc("ListTasks", params), headers=who)).json()
            return body

        first = (await listed(ALICE, pageSize=1))["result"]
        token = first["nextPageToken"]
        second = (await listed(ALICE, pageSize=1, pageToken=token))["result"]  # (hers: good)
        assert len(second["tasks"]) == 1
        assert second["tasks"][0]["id"] != first["tasks"][0]["id"]
        place = first["tasks"][0]["status"]["timestamp"], first["tasks"][0]["id"]
        made_up = base64.urlsafe_b64encode(json.dumps(place).encode()).decode()
        signature = token.partition(".")[2]
        changed = base64.urlsafe_b64encode(json.dumps(["9999", "z"]).encode()).decode()
        for who, given in (
            (BOB, token),  # (another caller's)
            (ALICE, made_up),  # (a place of two strings, unsigned: was taken)
            (ALICE, f"{changed}.{signature}"),  # (another place under her token's signature)
        ):
            error = (await listed(who, pageSize=1, pageToken=given))["error"]
            assert error["code"] == -32602
            assert "no page token this app gave you" in error["message"]
            assert error["data"][1]["fieldViolations"][0]["field"] == "pageToken"


async def test_another_principal_cannot_decide_a_call_that_waits() -> None:
    agent = offline_agent.fork(
        tools=[FunctionTool(delete_file, requires_approval=True)],
        reply=one_per_call(CallTool("delete_file", {"path": "notes.md"}), "Done."),
        token_delay=0,
    )
    async with served(a2a_app(agent, authentication=TOKENS)) as web:
        url = f"{web.base_url}/"
        async with sdk_client(url, ALICE) as alice, sdk_client(url, BOB) as bob:
            asked = (await all_of(alice.send_message(user_message("Delete"))))[-1].status_update
            [call_id] = [
                MessageToDict(part)["data"]["toolApprovalRequest"]["toolCallId"]
                for part in asked.status.message.parts
                if part.WhichOneof("content") == "data"
            ]
            approve = decision(asked.task_id, {"toolCallId": call_id, "approved": True})
            with pytest.raises(TaskNotFoundError):
                await all_of(bob.send_message(approve))
            assert deleted == []
            waiting = await alice.get_task(GetTaskRequest(id=asked.task_id))
            assert waiting.status.state == TaskState.TASK_STATE_INPUT_REQUIRED
            done = await all_of(alice.send_message(approve))
    assert done[-1].status_update.status.state == TaskState.TASK_STATE_COMPLETED
    assert deleted == ["notes.md"]


async def test_without_credentials_nothing_starts_and_the_card_is_public() -> None:
    app = a2a_app(offline_agent.fork(reply="Hi.", token_delay=0), authentication=TOKENS)
    async with served(app) as web:
        refused = await call(web, rpc("SendMessage", send_params()))
        assert refused.status_code == 401
        assert refused.headers["www-authenticate"] == "Bearer"
        wrong = await call(
            web, rpc("SendMessage", send_params()), headers={"Authorization": "Bearer x"}
        )
        assert wrong.status_code == 401
        assert app.state.runs.kept == 0
        card = (await web.get("/.well-known/agent-card.json")).json()
    assert card["securitySchemes"] == {"bearer": {"httpAuthSecurityScheme": {"scheme": "Bearer"}}}
    assert card["securityRequirements"] == [{"schemes": {"bearer": {}}}]


def running_ours() -> list[asyncio.Task[object]]:
    """The tasks that run a coroutine of the package (an agent's, a run's), not the server's."""
    package = Path(miniagents.__file__).parent
    return [
        task
        for task in asyncio.all_tasks()
        if isinstance(coroutine := task.get_coro(), CoroutineType)
        and Path(coroutine.cr_code.co_filename).is_relative_to(package)
    ]


async def test_a_task_that_waits_for_input_is_cancelled_by_its_owner_alone() -> None:
    # (untested before: a task paused for input, cancelled by its owner, and by another)
    cancelled = asyncio.Event()

    @miniagent
    async def asking(ctx: InteractionContext) -> None:
        question = request_input("Which city?")
        ctx.reply(question)
        try:
            await question.aanswer()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    app = a2a_app(asking, authentication=TOKENS)
    async with served(app) as web:
        sent = await call(web, rpc("SendMessage", send_params()), headers=ALICE)
        task = sent.json()["result"]["task"]
        assert task["status"]["state"] == "TASK_STATE_INPUT_REQUIRED"
        job = app.state.runs.job(task["id"], "alice")
        assert job is not None
        assert job.task is not None
        assert job.question is not None
        cancel = rpc("CancelTask", {"id": task["id"]})
        refused = (await call(web, cancel, headers=BOB)).json()
        assert refused["error"]["code"] == -32001, refused  # (not found: it is not his)
        assert not cancelled.is_set()
        assert not job.task.done()
        still = (await call(web, rpc("GetTask", {"id": task["id"]}), headers=ALICE)).json()
        assert still["result"]["status"]["state"] == "TASK_STATE_INPUT_REQUIRED"
        assert running_ours()  # (its job runs: the check below sees it)
        answer = (await call(web, cancel, headers=ALICE)).json()
        assert answer["result"]["status"]["state"] == "TASK_STATE_CANCELED", answer
        assert cancelled.is_set()  # (its agent's wait for the answer was cancelled)
        assert job.task.done()
        assert job.question is None
        assert app.state.runs.live == 0  # (no job runs, nor waits paused)
        assert running_ours() == []  # (none of the task's work runs on)
        ended = (await call(web, rpc("GetTask", {"id": task["id"]}), headers=ALICE)).json()
        assert ended["result"]["status"]["state"] == "TASK_STATE_CANCELED"
        again = (await call(web, cancel, headers=ALICE)).json()
        assert again["error"]["code"] == -32002, again  # (not cancelable: it has ended)
        late = send_params("Paris", taskId=task["id"])
        answered = (await call(web, rpc("SendMessage", late), headers=ALICE)).json()
        assert answered["error"]["code"] == -32004, answered  # (it takes no more messages)
