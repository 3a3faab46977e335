"""``a2a_app``: every part type and task state an agent can reach, read by the official client.

Files (bytes or a URL, with a name and a media type), data, a message's images and several
artifacts in one reply; a direct answer (one message, no task); a task rejected, a question
to the caller (``TASK_STATE_INPUT_REQUIRED``) and a request to authenticate
(``TASK_STATE_AUTH_REQUIRED``), each answered by the next message to the task, its history
kept; a client's files as the agent's input (of the media types it takes).
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
from pathlib import Path
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
from miniagents import InteractionContext, Message, miniagent
from miniagents.ext.a2a import A2AFile, A2ATaskRejectedError, a2a_app
from miniagents.ext.input_requests import AuthRequest, request_input
from miniagents.ext.web import NoAuthentication, WebSettings
from miniagents.messages.image import ImagePart
from tests.ext.a2a.kit import PNG, greeter, reporter
from tests.ext.a2a.rpc import (
    all_of,
    call,
    kind,
    rpc,
    sdk_client,
    send_params,
    stream_results,
    user_message,
)
from tests.ext.web.serving import served

COMPLETED = TaskState.TASK_STATE_COMPLETED
INPUT_REQUIRED = TaskState.TASK_STATE_INPUT_REQUIRED


def parts_json(parts: Any) -> list[dict[str, Any]]:
    return [MessageToDict(part) for part in parts]


async def test_files_data_and_images_are_their_own_parts_each_message_an_artifact() -> None:
    async with (
        served(a2a_app(reporter, authentication=NoAuthentication())) as web,
        sdk_client(str(web.base_url)) as client,
    ):
        events = await all_of(client.send_message(user_message("Report")))
        task = await client.get_task(GetTaskRequest(id=events[0].task.id))
    assert task.status.state == COMPLETED
    artifacts = [parts_json(artifact.parts) for artifact in task.artifacts]
    assert artifacts == [
        [{"text": "Here is the report."}],
        [
            {
                "raw": base64.b64encode(b"tck").decode(),
                "filename": "output.txt",
                "mediaType": "text/plain",
            }
        ],
        [{"text": "The PDF."}, {"url": "https://example.com/r.pdf", "filename": "r.pdf"}],
        [{"data": {"key": "value", "count": 42}, "mediaType": "application/json"}],
        [{"text": "A chart:"}, {"raw": base64.b64encode(PNG).decode(), "mediaType": "image/png"}],
    ]
    whole = [
        event for event in events if kind(event) == "last" and event.artifact_update.append is False
    ]
    assert [event.artifact_update.artifact.name for event in whole] == [
        "output.txt",
        "r.pdf",
        "data",
    ]
    assert task.artifacts[1].metadata["miniagents"]["kind"] == "file"  # type: ignore[index]
    assert task.artifacts[3].metadata["miniagents"]["kind"] == "data"  # type: ignore[index]


async def test_a_rejected_task_says_why_and_ends_its_stream() -> None:
    @miniagent
    async def picky(ctx: InteractionContext) -> None:
        raise A2ATaskRejectedError("I only answer questions about rivers.")

    async with (
        served(a2a_app(picky, authentication=NoAuthentication())) as web,
        sdk_client(str(web.base_url)) as client,
    ):
        events = await all_of(client.send_message(user_message("Mountains?")))
    status = events[-1].status_update.status
    assert status.state == TaskState.TASK_STATE_REJECTED
    assert [part.text for part in status.message.parts] == ["I only answer questions about rivers."]
    assert MessageToDict(events[-1].status_update.metadata)["miniagents"] == {
        "errorType": "A2ATaskRejectedError"
    }


async def test_a_failed_task_reports_its_errors_message_and_class_only() -> None:
    """Never its traceback, its causes, nor a file of the library's (or the agent's): not
    even with ``WebSettings(error_texts=True)`` (by default not its message either: see
    test_error_texts)."""

    @miniagent
    async def reader(ctx: InteractionContext) -> None:
        path = str(Path(__file__).with_name("no-such-file"))
        missing = FileNotFoundError(2, "No such file", path)
        raise ValueError("The river's data could not be read.") from missing

    @miniagent
    async def analyst(ctx: InteractionContext) -> None:
        ctx.reply("Reading the data. ")
        ctx.reply(reader.inquire())  # (its failure fails the task: a sub-agent's, nested)

    app = a2a_app(
        analyst, authentication=NoAuthentication(), settings=WebSettings(error_texts=True)
    )
    async with served(app) as web:
        events = await stream_results(web, rpc("SendStreamingMessage", send_params()))
        last = events[-1]["result"]["statusUpdate"]
        got = (await call(web, rpc("GetTask", {"id": last["taskId"]}))).json()["result"]
    assert got["status"] == last["status"]
    assert last["status"]["state"] == "TASK_STATE_FAILED"
    assert last["status"]["message"]["parts"] == [{"text": "The river's data could not be read."}]
    assert last["metadata"]["miniagents"]["errorType"] == "ValueError"
    said = json.dumps([events, got])
    for leaked in ("Traceback", "no-such-file", 'File \\"', str(Path(miniagents.__file__).parent)):
        assert leaked not in said, leaked


async def test_a_question_pauses_the_task_and_the_next_message_is_its_answer() -> None:
    async with served(a2a_app(greeter, authentication=NoAuthentication())) as web:
        async with sdk_client(str(web.base_url)) as client:
            asked = await all_of(client.send_message(user_message("Greet me")))
            status = asked[-1].status_update.status
            assert status.state == INPUT_REQUIRED  # (the stream ended there: the agent waits)
            assert [part.text for part in status.message.parts] == ["What is your name?"]
            task_id = asked[-1].status_update.task_id
            waiting = await client.get_task(GetTaskRequest(id=task_id))
            assert waiting.status.state == INPUT_REQUIRED
            answered = await all_of(client.send_message(user_message("Claude", task_id=task_id)))
            assert [kind(event) for event in answered][:2] == ["task", "status TASK_STATE_WORKING"]
            assert answered[-1].status_update.status.state == COMPLETED
            done = await client.get_task(GetTaskRequest(id=task_id))
        again = await call(web, rpc("SendMessage", send_params("More", taskId=task_id)))
    assert [part.text for part in done.artifacts[0].parts] == ["Hello, Claude!"]
    history = [(message.role, message.parts[0].text) for message in done.history]
    assert history == [(1, "Greet me"), (2, "What is your name?"), (1, "Claude")]
    assert again.json()["error"]["code"] == -32004  # (it has ended: it takes no more)


async def test_a_follower_of_a_task_that_asks_follows_it_past_the_answer_to_its_end() -> None:
    """``SubscribeToTask`` ends where the task ends (a terminal state), not where it waits."""
    async with (
        served(a2a_app(greeter, authentication=NoAuthentication())) as web,
        sdk_client(str(web.base_url)) as client,
    ):
        asked = await all_of(client.send_message(user_message("Greet me")))
        task_id = asked[-1].status_update.task_id
        following = aiter(client.subscribe(SubscribeToTaskRequest(id=task_id)))
        first = await anext(following)
        assert first.task.status.state == INPUT_REQUIRED
        answered = await all_of(client.send_message(user_message("Ada", task_id=task_id)))
        followed = [first, *[event async for event in following]]
    assert answered[-1].status_update.status.state == COMPLETED
    assert [kind(event) for event in followed] == [
        "task",
        "status TASK_STATE_WORKING",
        "first",
        "chunk",
        "last",
        "status TASK_STATE_COMPLETED",
    ]


async def test_a_follower_of_a_task_cancelled_where_it_asks_hears_it_was_cancelled() -> None:
    async with (
        served(a2a_app(greeter, authentication=NoAuthentication())) as web,
        sdk_client(str(web.base_url)) as client,
    ):
        asked = await all_of(client.send_message(user_message("Greet me")))
        task_id = asked[-1].status_update.task_id
        following = aiter(client.subscribe(SubscribeToTaskRequest(id=task_id)))
        assert (await anext(following)).task.status.state == INPUT_REQUIRED
        await client.cancel_task(CancelTaskRequest(id=task_id))
        rest = [event async for event in following]
    assert [kind(event) for event in rest] == ["status TASK_STATE_CANCELED"]


async def test_each_input_message_says_the_a2a_message_it_came_in() -> None:
    ids: list[object] = []

    @miniagent
    async def noting(ctx: InteractionContext) -> None:
        ids.extend(getattr(message, "message_id", None) for message in await ctx.message_promises)
        question = request_input("More?")
        ctx.reply(question)
        ids.extend(getattr(message, "message_id", None) for message in await question.aanswer())

    async with served(a2a_app(noting, authentication=NoAuthentication())) as web:
        message = {
            "messageId": "first-1",
            "role": "ROLE_USER",
            "parts": [{"text": "a"}, {"data": 1}],
        }
        task = (await call(web, rpc("SendMessage", {"message": message}))).json()["result"]["task"]
        answer = {
            "messageId": "answer-2",
            "role": "ROLE_USER",
            "parts": [{"text": "b"}],
            "taskId": task["id"],
        }
        await call(web, rpc("SendMessage", {"message": answer}))
    assert ids == ["first-1", "first-1", "answer-2"]


async def test_a_blocking_send_returns_at_the_question_and_the_answer_with_the_end() -> None:
    async with served(a2a_app(greeter, authentication=NoAuthentication())) as web:
        first = (await call(web, rpc("SendMessage", send_params("Greet me")))).json()["result"]
        task = first["task"]
        assert task["status"]["state"] == "TASK_STATE_INPUT_REQUIRED"
        answer = send_params("Ada", taskId=task["id"], contextId=task["contextId"])
        second = (await call(web, rpc("SendMessage", answer))).json()["result"]["task"]
    assert second["status"]["state"] == "TASK_STATE_COMPLETED"
    assert second["artifacts"][0]["parts"] == [{"text": "Hello, Ada!"}]


async def test_a_request_to_authenticate_is_auth_required_and_answered_the_same_way() -> None:
    @miniagent
    async def guarded(ctx: InteractionContext) -> None:
        request = request_input(
            "Sign in at https://id.example/a2a first.", request_class=AuthRequest
        )
        ctx.reply(request)
        ctx.reply(f"Signed in with {await request.aanswer()}.")

    async with (
        served(a2a_app(guarded, authentication=NoAuthentication())) as web,
        sdk_client(str(web.base_url)) as client,
    ):
        asked = await all_of(client.send_message(user_message("Go")))
        status = asked[-1].status_update
        assert status.status.state == TaskState.TASK_STATE_AUTH_REQUIRED
        done = await all_of(client.send_message(user_message("token-1", task_id=status.task_id)))
    assert done[-1].status_update.status.state == COMPLETED
    chunks = "".join(
        event.artifact_update.artifact.parts[0].text for event in done if kind(event) == "chunk"
    )
    assert chunks == "Signed in with token-1."


async def test_a_task_cancelled_while_it_asks_says_it_was_cancelled() -> None:
    async with served(a2a_app(greeter, authentication=NoAuthentication())) as web:
        task = (await call(web, rpc("SendMessage", send_params()))).json()["result"]["task"]
        cancelled = (await call(web, rpc("CancelTask", {"id": task["id"]}))).json()["result"]
        answered = (
            await call(web, rpc("SendMessage", send_params("Ada", taskId=task["id"])))
        ).json()
    assert cancelled["status"]["state"] == "TASK_STATE_CANCELED"
    assert answered["error"]["code"] == -32004  # (no question waits any more)


async def test_an_answer_sent_while_the_task_is_being_cancelled_is_refused_as_ended() -> None:
    stopping, release = asyncio.Event(), asyncio.Event()
    heard: list[object] = []

    @miniagent
    async def slow_to_stop(ctx: InteractionContext) -> None:
        question = request_input("Which city?")
        ctx.reply(question)
        try:
            heard.append(await question.aanswer())
        except asyncio.CancelledError:
            stopping.set()
            await release.wait()  # (its task ends only once the test lets it)
            raise

    async with served(a2a_app(slow_to_stop, authentication=NoAuthentication())) as web:
        task = (await call(web, rpc("SendMessage", send_params()))).json()["result"]["task"]
        assert task["status"]["state"] == "TASK_STATE_INPUT_REQUIRED"
        cancelling = asyncio.ensure_future(call(web, rpc("CancelTask", {"id": task["id"]})))
        await stopping.wait()  # CancelTask was taken; the task has not ended yet
        answer = send_params("Paris", taskId=task["id"])
        answer["configuration"] = {"returnImmediately": True}
        answered = (await call(web, rpc("SendMessage", answer))).json()
        release.set()
        cancelled = (await cancelling).json()["result"]
    assert cancelled["status"]["state"] == "TASK_STATE_CANCELED"
    assert answered["error"]["code"] == -32004, answered  # (as to a task that has ended)
    assert "has ended (TASK_STATE_CANCELED)" in answered["error"]["message"]
    assert heard == []


async def test_a_question_nobody_answers_is_cancelled_with_its_task(
    virtual_clock: Any,
) -> None:
    gave_up: list[str] = []

    @miniagent
    async def patient(ctx: InteractionContext) -> None:
        question = request_input("Which city?")
        ctx.reply(question)
        try:
            await question.aanswer()
        except asyncio.CancelledError:
            gave_up.append("cancelled")
            raise

    app = a2a_app(
        patient, authentication=NoAuthentication(), settings=WebSettings(keep_runs_for=60)
    )
    async with served(app) as web:
        task = (await call(web, rpc("SendMessage", send_params()))).json()["result"]["task"]
        await asyncio.sleep(61)
        gone = (await call(web, rpc("GetTask", {"id": task["id"]}))).json()["result"]
    assert gone["status"]["state"] == "TASK_STATE_CANCELED"
    assert gave_up == ["cancelled"]


async def test_cancel_task_answers_within_its_bound_though_the_agent_goes_on(
    virtual_clock: Any,
) -> None:
    swallowed, release = asyncio.Event(), asyncio.Event()

    @miniagent
    async def stubborn(ctx: InteractionContext) -> None:
        question = request_input("Which city?")
        ctx.reply(question)
        try:
            await question.aanswer()
        except asyncio.CancelledError:
            swallowed.set()  # (goes on, as if it had not been cancelled)
        await release.wait()

    app = a2a_app(stubborn, authentication=NoAuthentication())
    async with served(app) as web:
        task = (await call(web, rpc("SendMessage", send_params()))).json()["result"]["task"]
        answer = (await call(web, rpc("CancelTask", {"id": task["id"]}))).json()
        assert swallowed.is_set()
        job = app.state.runs.job(task["id"])
        assert job.task is not None
        assert not job.task.done()  # (answered without its end)
        release.set()
        await asyncio.wait([job.task])
        ended = (await call(web, rpc("GetTask", {"id": task["id"]}))).json()["result"]
    assert answer["result"]["id"] == task["id"], answer
    assert answer["result"]["status"]["state"] == "TASK_STATE_WORKING"  # (as it stood)
    assert ended["status"]["state"] == "TASK_STATE_CANCELED"


async def test_a_clients_files_are_the_agents_input_when_their_media_types_are_taken() -> None:
    heard: list[Message] = []

    @miniagent
    async def reader(ctx: InteractionContext) -> None:
        heard.extend(await ctx.message_promises)
        ctx.reply("Read.")

    app = a2a_app(
        reader,
        authentication=NoAuthentication(),
        input_modes=("text/plain", "image/*", "application/pdf"),
    )
    parts = [
        {"text": "Look:"},
        {"raw": base64.b64encode(PNG).decode(), "mediaType": "image/png", "filename": "a.png"},
        {"url": "https://example.com/b.pdf", "mediaType": "application/pdf"},
        {"data": {"x": 1}},
    ]
    async with served(app) as web:
        card = (await web.get("/.well-known/agent-card.json")).json()
        message = {"messageId": "m1", "role": "ROLE_USER", "parts": parts}
        refused = (await call(web, rpc("SendMessage", {"message": message}))).json()["error"]
        message["parts"] = parts[:3]
        done = (await call(web, rpc("SendMessage", {"message": message}))).json()["result"]
    assert card["defaultInputModes"] == ["text/plain", "image/*", "application/pdf"]
    assert refused["code"] == -32005  # (data is not taken: application/json is not listed)
    assert done["task"]["status"]["state"] == "TASK_STATE_COMPLETED"
    text, image, pdf = heard
    assert str(text) == "Look:"
    assert isinstance(image, A2AFile)
    assert (image.data, image.filename, image.media_type) == (PNG, "a.png", "image/png")
    assert image.images == (ImagePart(data=PNG, media_type="image/png"),)  # (a model sees it)
    assert isinstance(pdf, A2AFile)
    assert (pdf.url, pdf.media_type, pdf.images) == (
        "https://example.com/b.pdf",
        "application/pdf",
        (),
    )


@pytest.mark.parametrize("streaming", [False, True])
async def test_an_app_that_answers_as_a_message_gives_one_message_and_no_task(
    streaming: bool,
) -> None:
    app = a2a_app(reporter, authentication=NoAuthentication(), answer_as="message")
    async with served(app) as web, sdk_client(str(web.base_url), streaming=streaming) as client:
        events = await all_of(client.send_message(user_message("Report")))
        [only] = events
        assert only.WhichOneof("payload") == "message"
        listed = (await call(web, rpc("ListTasks", {}))).json()["result"]
        with pytest.raises(TaskNotFoundError):  # (no task to follow: it was answered whole)
            await client.get_task(GetTaskRequest(id="any"))
    message = only.message
    assert (message.role, message.task_id, bool(message.context_id)) == (2, "", True)
    kinds = [part.WhichOneof("content") for part in message.parts]
    assert kinds == ["text", "raw", "text", "url", "data", "text", "raw"]
    assert listed["tasks"] == []


async def test_a_reply_that_fails_is_answered_as_its_task_even_by_an_app_of_messages() -> None:
    @miniagent
    async def failing(ctx: InteractionContext) -> None:
        raise ValueError("No river here.")

    def chosen(request: Any) -> Any:
        return "message" if request.message.message_id.startswith("direct") else "task"

    async with served(a2a_app(failing, authentication=NoAuthentication(), answer_as=chosen)) as web:
        message = {"messageId": "direct-1", "role": "ROLE_USER", "parts": [{"text": "Hi"}]}
        answered = (await call(web, rpc("SendMessage", {"message": message}))).json()["result"]
    assert answered["task"]["status"]["state"] == "TASK_STATE_FAILED"


async def test_an_answer_as_function_returning_neither_value_is_an_internal_error_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # (was: taken as "task", so the app's own bug went unseen)
    called: list[str] = []

    @miniagent
    async def counted(ctx: InteractionContext) -> None:
        called.append("called")
        ctx.reply("Done.")

    def chosen(request: Any) -> Any:
        return "messages"

    app = a2a_app(counted, authentication=NoAuthentication(), answer_as=chosen)
    async with served(app) as web:
        message = {"messageId": "m-1", "role": "ROLE_USER", "parts": [{"text": "Hi"}]}
        with caplog.at_level("ERROR", logger="miniagents.ext.a2a"):
            for method in ("SendMessage", "SendStreamingMessage"):
                answered = (await call(web, rpc(method, {"message": message}))).json()
                assert answered["error"]["code"] == -32603, method
                assert "'messages', neither 'task' nor 'message'" in answered["error"]["message"]
        listed = (await call(web, rpc("ListTasks", {}))).json()["result"]
    assert listed["tasks"] == []
    assert called == []  # (no task started)
    logged = [record.getMessage() for record in caplog.records]
    assert len(logged) == 2
    assert "Make it return 'task' or 'message'." in logged[0]


@pytest.mark.parametrize("function", ["answer_as", "arguments"])
async def test_an_apps_function_that_raises_is_an_internal_error_logged_once_by_reference(
    function: str, caplog: pytest.LogCaptureFixture
) -> None:
    # (was: the exception out of the app, Starlette's plain-text 500)
    called: list[str] = []

    @miniagent
    async def counted(ctx: InteractionContext) -> None:
        called.append("called")
        ctx.reply("Done.")

    def raising(request: Any) -> Any:
        raise ValueError(f"No rule for {request.message.message_id}.")

    given: dict[str, Any] = {function: raising}
    app = a2a_app(counted, authentication=NoAuthentication(), **given)
    async with served(app) as web:
        message = {"messageId": "m-1", "role": "ROLE_USER", "parts": [{"text": "Hi"}]}
        with caplog.at_level("ERROR", logger="miniagents.ext.a2a"):
            answered = await call(web, rpc("SendMessage", {"message": message}))
        listed = (await call(web, rpc("ListTasks", {}))).json()["result"]
    assert answered.headers["content-type"] == "application/json"
    error = answered.json()["error"]
    assert error["code"] == -32603
    told = re.fullmatch(
        rf"The agent's server's {function} function failed with ValueError\. The server's log "
        r"has the error under the reference ([0-9a-f]{32}): ask the agent's operator to look "
        r"it up there\. No task started\.",
        error["message"],
    )
    assert told is not None, error["message"]
    assert "m-1" not in error["message"]  # (its text only in the log)
    (logged,) = caplog.records
    assert logged.getMessage() == (
        f"The {function} function of a2a_app failed with ValueError (reference {told[1]})."
    )
    assert logged.exc_info is not None
    assert str(logged.exc_info[1]) == "No rule for m-1."
    assert listed["tasks"] == []
    assert called == []  # (no task started)
