"""``ListTasks``: the caller's tasks, the most recently updated first, a page at a time.

Pages follow one another by the place the last one ended (``nextPageToken``, empty on the
last page), each task once; the filters (context, state, updated since) and the task's
fields (artifacts only when asked, the history cut to ``historyLength``) are the spec's
(§3.1.4); another principal's tasks are never listed (``test_ownership.py``).
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx2
import pytest
from starlette.applications import Starlette

from miniagents import InteractionContext, miniagent
from miniagents.ext.a2a import _encoding, a2a_app, server
from miniagents.ext.a2a.server import DEFAULT_PAGE_SIZE
from miniagents.ext.llm.offline import offline_agent
from miniagents.ext.web import NoAuthentication
from miniagents.ext.web.lowlevel import Job
from tests.ext.a2a.kit import approving
from tests.ext.a2a.rpc import call, error_of, get_task, rpc, send_params, violations
from tests.ext.web.serving import SSEReader, served


@pytest.fixture
def app() -> Starlette:
    return a2a_app(
        offline_agent.fork(alias="ECHO", reply="Done.", token_delay=0),
        authentication=NoAuthentication(),
    )


@pytest.fixture
async def web(app: Starlette) -> AsyncIterator[httpx2.AsyncClient]:
    async with served(app) as client:
        yield client


async def sent(web: httpx2.AsyncClient, text: str = "Hi", **fields: object) -> dict[str, Any]:
    """The task of one ``SendMessage`` (blocking: it has ended)."""
    answered = await call(web, rpc("SendMessage", send_params(text, **fields)))
    task: dict[str, Any] = answered.json()["result"]["task"]
    return task


async def listed(web: httpx2.AsyncClient, **params: object) -> dict[str, Any]:
    answered = await call(web, rpc("ListTasks", params))
    body: dict[str, Any] = answered.json()
    assert "result" in body, body
    found: dict[str, Any] = body["result"]
    return found


def stamp(task: dict[str, Any]) -> str:
    return str(task["status"]["timestamp"])


async def test_the_tasks_come_most_recently_updated_first_a_page_at_a_time(
    web: httpx2.AsyncClient,
) -> None:
    made = [await sent(web, f"task {number}") for number in range(5)]
    first = await listed(web, pageSize=2)
    assert (first["pageSize"], first["totalSize"], len(first["tasks"])) == (2, 5, 2)
    pages = [first]
    while pages[-1]["nextPageToken"]:
        pages.append(await listed(web, pageSize=2, pageToken=pages[-1]["nextPageToken"]))
    assert [len(page["tasks"]) for page in pages] == [2, 2, 1]
    assert pages[-1]["nextPageToken"] == ""  # (always there: empty on the last page)
    tasks = [task for page in pages for task in page["tasks"]]
    assert sorted(task["id"] for task in tasks) == sorted(task["id"] for task in made)
    order = [(stamp(task), task["id"]) for task in tasks]
    assert order == sorted(order, reverse=True)  # (the latest status first; ties by id)
    whole = await listed(web)
    assert (whole["pageSize"], whole["nextPageToken"]) == (DEFAULT_PAGE_SIZE, "")
    assert [task["id"] for task in whole["tasks"]] == [task["id"] for task in tasks]


async def test_a_task_that_starts_between_two_pages_moves_no_other(
    web: httpx2.AsyncClient,
) -> None:
    for number in range(3):
        await sent(web, f"task {number}")
    first = await listed(web, pageSize=2)
    newer = await sent(web, "a newer task")  # (before the first page: not on the next)
    second = await listed(web, pageSize=2, pageToken=first["nextPageToken"])
    ids = [task["id"] for page in (first, second) for task in page["tasks"]]
    assert len(ids) == len(set(ids)) == 3
    assert newer["id"] not in ids
    assert second["totalSize"] == 4


async def test_a_task_answered_keeps_one_status_time_and_a_client_paging_sees_it_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A task answered whose run has not gone on yet works since it was answered: each read
    says that time, and so does the event of its run going on (was: the time of each read,
    so that the task moved in the order at every read, past a client's page token)."""
    ticks = itertools.count(1)

    def ticking() -> str:  # (a clock that moves at each reading: no two share a time)
        moment = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(milliseconds=next(ticks))
        return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")

    monkeypatch.setattr(_encoding, "now", ticking)
    monkeypatch.setattr(server, "now", ticking)
    hold = asyncio.Event()
    resumed = Job.aresumed

    async def held(job: Job) -> str:  # (answered, its run held before it goes on)
        run_key = await resumed(job)
        await hold.wait()
        return run_key

    monkeypatch.setattr(Job, "aresumed", held)
    async with served(a2a_app(approving(), authentication=NoAuthentication())) as web:
        asked = [await sent(web, f"Delete notes {number}") for number in range(3)]
        answered = asked[0]  # (the oldest, then the most recently updated)
        [question] = [part for part in answered["status"]["message"]["parts"] if "data" in part]
        call_id = question["data"]["toolApprovalRequest"]["toolCallId"]
        answer = {"data": {"toolCallId": call_id, "approved": True}}
        params = send_params(taskId=answered["id"], parts=[answer])
        params["configuration"] = {"returnImmediately": True}
        assert "result" in (await call(web, rpc("SendMessage", params))).json()
        first = await listed(web, pageSize=2)
        assert [task["id"] for task in first["tasks"]] == [answered["id"], asked[2]["id"]]
        status = first["tasks"][0]["status"]
        assert status["state"] == "TASK_STATE_WORKING"
        assert (await get_task(web, answered["id"]))["status"] == status  # (read: unmoved)
        second = await listed(web, pageSize=2, pageToken=first["nextPageToken"])
        assert [task["id"] for task in second["tasks"]] == [asked[1]["id"]]
        assert second["nextPageToken"] == ""
        body = rpc("SubscribeToTask", {"id": answered["id"]})
        async with web.stream("POST", "/", json=body) as response:
            reader = SSEReader(response)
            [snapshot] = await reader.take(1)
            hold.set()
            [going_on] = await reader.take(1)
    assert json.loads(snapshot.data)["result"]["task"]["status"] == status
    assert json.loads(going_on.data)["result"]["statusUpdate"]["status"] == status


async def test_artifacts_only_when_asked_and_the_history_cut_as_asked(
    web: httpx2.AsyncClient,
) -> None:
    await sent(web, "Rivers?")
    [bare] = (await listed(web))["tasks"]
    assert "artifacts" not in bare  # (omitted, not an empty list: the spec's MUST)
    assert [part["text"] for part in bare["history"][0]["parts"]] == ["Rivers?"]
    [full] = (await listed(web, includeArtifacts=True, historyLength=0))["tasks"]
    assert "Done." in "".join(part.get("text", "") for part in full["artifacts"][0]["parts"])
    assert "history" not in full


async def test_the_filters_pick_a_context_a_state_and_what_was_updated_since() -> None:
    release = asyncio.Event()

    @miniagent
    async def waits_when_asked(ctx: InteractionContext) -> None:
        if str((await ctx.message_promises)[0]) == "wait":
            await release.wait()
        ctx.reply("done")

    async with served(a2a_app(waits_when_asked, authentication=NoAuthentication())) as web:
        await sent(web, "one", contextId="ctx-a")
        await sent(web, "two", contextId="ctx-b")
        immediately = {"configuration": {"returnImmediately": True}}
        working = await call(
            web, rpc("SendMessage", {**send_params("wait", contextId="ctx-a"), **immediately})
        )
        working_id = working.json()["result"]["task"]["id"]
        in_a = await listed(web, contextId="ctx-a")
        assert {task["contextId"] for task in in_a["tasks"]} == {"ctx-a"}
        assert in_a["totalSize"] == 2
        live = await listed(web, status="TASK_STATE_WORKING")
        assert [task["id"] for task in live["tasks"]] == [working_id]
        done = await listed(web, status="TASK_STATE_COMPLETED")
        assert done["totalSize"] == 2
        later = await listed(web, statusTimestampAfter="2999-01-01T00:00:00Z")
        assert (later["tasks"], later["totalSize"]) == ([], 0)
        since = await listed(web, statusTimestampAfter="2000-01-01T00:00:00Z")
        assert since["totalSize"] == 3
        newest = done["tasks"][0]  # (a bound equal to its time keeps it: A2A's "greater than
        # or equal to this value", as the a2a-python SDK's task stores keep it)
        at_it = await listed(web, statusTimestampAfter=newest["status"]["timestamp"])
        assert newest["id"] in [task["id"] for task in at_it["tasks"]]
        release.set()


DEEP_TOKEN = base64.urlsafe_b64encode(b"[" * 100_000).decode()
"""A page token of JSON nested past what Python's JSON reads (on 3.11 and 3.13 alike)."""


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"pageSize": 0}, "pageSize"),
        ({"pageSize": 101}, "pageSize"),
        ({"historyLength": -1}, "historyLength"),
        ({"pageToken": "not-a-token"}, "pageToken"),
        ({"pageToken": "WzEsIDJd"}, "pageToken"),  # (base64 of JSON, but not a place)
        ({"pageToken": DEEP_TOKEN}, "pageToken"),  # (was: a 500, Python's JSON recursing)
        ({"status": 999}, "status"),  # (a number protobuf takes, but no TaskState)
        ({"status": -5}, "status"),
    ],
)
async def test_a_page_the_app_cannot_give_is_refused(
    web: httpx2.AsyncClient, params: dict[str, object], field: str
) -> None:
    error = error_of(await call(web, rpc("ListTasks", params)))
    assert error["code"] == -32602
    assert violations(error) == [field]


async def test_a_page_token_of_before_the_app_started_again_is_refused(
    web: httpx2.AsyncClient,
) -> None:
    # (the docs say so: the key that signs page tokens lives in the process, and no setting
    # passes one; an app made again, as after a restart, has a key of its own)
    for number in range(3):
        await sent(web, f"task {number}")
    token = (await listed(web, pageSize=2))["nextPageToken"]
    again = a2a_app(
        offline_agent.fork(alias="ECHO", reply="Done.", token_delay=0),
        authentication=NoAuthentication(),
    )
    async with served(again) as restarted:
        for number in range(3):
            await sent(restarted, f"task {number}")
        error = error_of(await call(restarted, rpc("ListTasks", {"pageToken": token})))
    assert error["code"] == -32602
    assert "of before the app started again" in error["message"]
