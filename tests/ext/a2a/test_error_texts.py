"""What a failed task tells its client: by default a sentence and a reference, not the error.

An agent's error may echo what its client must not see (an SDK's error names the URL it
called, with its key; an ``OSError`` a path). The client of a failed task, its stream, its
``GetTask`` (status and history), ``ListTasks`` and its webhooks get the error's class and
a reference; the server's log has the error whole, once, under that reference. With
``WebSettings(error_texts=True)`` the error's text is sent as it is.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
from typing import Any

import pytest
from starlette.applications import Starlette

from miniagents import InteractionContext, miniagent
from miniagents.ext.a2a import a2a_app
from miniagents.ext.errors import InputRequestError
from miniagents.ext.web import NoAuthentication, WebSettings
from tests.ext.a2a.kit import Receiver, pushing, receiving
from tests.ext.a2a.rpc import call, rpc, send_params, stream_results
from tests.ext.web.serving import served, until

SECRET = "https://api.example.com/v1/chat?key=sk-live-0123456789"
"""What the agent's error echoes: a URL with its key."""


@miniagent
async def leaky(ctx: InteractionContext) -> None:
    """Fails as an SDK would, its error naming the URL it called."""
    ctx.reply("Calling the model. ")
    raise ConnectionError(f"Could not reach {SECRET}.")


def leaky_app(receiver: Receiver, **options: Any) -> Starlette:
    return a2a_app(
        leaky, authentication=NoAuthentication(), push_notifications=pushing(receiver), **options
    )


async def failed_task(receiver: Receiver, app: Starlette) -> tuple[str, dict[str, Any]]:
    """The failed task's stream, ``GetTask``, ``ListTasks`` and webhook posts, as one text,
    and its last status update."""
    async with served(app) as web:
        config = {"url": f"{receiver.url}hooks/mine"}
        params = {**send_params(), "configuration": {"taskPushNotificationConfig": config}}
        events = await stream_results(web, rpc("SendStreamingMessage", params))
        last: dict[str, Any] = events[-1]["result"]["statusUpdate"]
        got = await call(web, rpc("GetTask", {"id": last["taskId"], "historyLength": 10}))
        listed = await call(web, rpc("ListTasks", {"historyLength": 10}))
        await until(lambda: "TASK_STATE_FAILED" in receiver.states())
    posted = [body.decode() for _, body in receiver.posts]
    return json.dumps([events, got.json(), listed.json(), posted]), last


async def test_a_failed_task_sends_its_class_and_a_reference_and_logs_the_error_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # (the error's text was sent as it is: to the stream, GetTask, ListTasks and webhooks)
    caplog.set_level(logging.INFO)
    async with receiving() as receiver:
        said, last = await failed_task(receiver, leaky_app(receiver))
    assert last["status"]["state"] == "TASK_STATE_FAILED"
    reference = last["metadata"]["miniagents"]["errorReference"]
    assert last["metadata"]["miniagents"] == {
        "errorType": "ConnectionError",
        "errorReference": reference,
    }
    [text] = [part["text"] for part in last["status"]["message"]["parts"]]
    assert text.startswith("The agent LEAKY failed with ConnectionError.")
    assert re.fullmatch(r"[0-9a-f]{32}", reference)
    assert reference in text
    assert "api.example.com" not in said
    assert "sk-live" not in said
    assert said.count(reference) >= 4  # (the stream, GetTask, ListTasks, the webhook)
    logged = [record for record in caplog.records if SECRET in _whole(record)]
    assert len(logged) == 1, [record.getMessage() for record in logged]  # (once)
    assert (logged[0].name, logged[0].levelno) == ("miniagents.ext.a2a", logging.ERROR)
    assert reference in logged[0].getMessage()  # (the operator finds it by its reference)


def _whole(record: logging.LogRecord) -> str:
    """A log record as a handler writes it: its message, and its error's traceback."""
    return logging.Formatter().format(record)


async def test_with_error_texts_a_failed_task_sends_its_errors_text() -> None:
    async with receiving() as receiver:
        texts = WebSettings(error_texts=True)
        said, last = await failed_task(receiver, leaky_app(receiver, settings=texts))
    [text] = [part["text"] for part in last["status"]["message"]["parts"]]
    assert text == f"Could not reach {SECRET}."
    assert said.count("sk-live") >= 4  # (the stream, GetTask, ListTasks, the webhook)


async def test_an_error_the_library_wrote_for_the_client_is_sent_as_it_is(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # (A2A's encoder kept its own list of such errors, apart from the run manager's:
    # an InputRequestError was told by reference, the library's sentence logged as the
    # agent's failure; AG-UI's and the AI SDK's clients were told it as it is)
    @miniagent
    async def withdrawn(ctx: InteractionContext) -> None:
        del ctx
        raise InputRequestError("Nobody can answer the question here.")

    caplog.set_level(logging.INFO)
    async with served(a2a_app(withdrawn, authentication=NoAuthentication())) as client:
        events = await stream_results(client, rpc("SendStreamingMessage", send_params()))
    last = events[-1]["result"]["statusUpdate"]
    assert last["status"]["state"] == "TASK_STATE_FAILED", last
    [text] = [part["text"] for part in last["status"]["message"]["parts"]]
    assert text == "Nobody can answer the question here."
    assert last["metadata"]["miniagents"] == {"errorType": "InputRequestError"}
    assert not [record for record in caplog.records if record.levelno >= logging.ERROR]


@miniagent
async def greeting(ctx: InteractionContext) -> None:
    ctx.reply("Hello")


async def test_a_failed_step_of_the_servers_own_is_told_as_the_servers_not_the_agents(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # (was: "The agent GREETING failed with TypeError. ...": the server's own step, its
    # encoder making an event that is no text, was told as the agent's failure)
    caplog.set_level(logging.INFO)
    app = a2a_app(greeting, authentication=NoAuthentication())
    protocol = app.state.runs.protocol
    make_encoder = protocol.encoder

    def not_text(*args: Any) -> Any:  # (a protocol's bug: the job's own step fails)
        encoder = make_encoder(*args)
        encoder.events = lambda _part: [None]
        return encoder

    protocol.encoder = not_text
    async with served(app) as client:
        events = await stream_results(client, rpc("SendStreamingMessage", send_params()))
    last = events[-1]["result"]["statusUpdate"]
    assert last["status"]["state"] == "TASK_STATE_FAILED", last
    reference = last["metadata"]["miniagents"]["errorReference"]
    assert last["metadata"]["miniagents"] == {"errorType": "TypeError", "errorReference": reference}
    [text] = [part["text"] for part in last["status"]["message"]["parts"]]
    assert text == (
        "The server, streaming the run, failed with TypeError. The server's log has the error "
        f"under the reference {reference}: ask the server's operator to look it up there."
    )
    logged = [record for record in caplog.records if record.levelno >= logging.ERROR]
    assert len(logged) == 1, [record.getMessage() for record in logged]  # (once)
    assert reference in logged[0].getMessage()


async def test_error_texts_is_read_from_the_managers_settings_as_they_stand() -> None:
    # (was: A2A's protocol kept its own copy of error_texts, taken as the app was made, so
    # the manager's settings replaced later told the error by reference still)
    async with receiving() as receiver:
        app = leaky_app(receiver)
        manager = app.state.runs
        manager.settings = dataclasses.replace(manager.settings, error_texts=True)
        said, last = await failed_task(receiver, app)
    [text] = [part["text"] for part in last["status"]["message"]["parts"]]
    assert text == f"Could not reach {SECRET}."
    assert said.count("sk-live") >= 4  # (the stream, GetTask, ListTasks, the webhook)
