"""What a web run's client is told of its agent's error: not its text, by default.

An agent's error may echo what its client must not see (an SDK's error names the URL it
called, with its key): AG-UI's ``RUN_ERROR``, the AI SDK's error part and the chat page's
say the error's class and a reference, the server's log has the error whole under it, and
``WebSettings(error_texts=True)`` sends the text as is.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest

from miniagents import InteractionContext, miniagent
from miniagents.ext.errors import InputRequestError
from miniagents.ext.web import NoAuthentication, WebSettings, web_chat_app
from tests.ext.web.serving import (
    PROTOCOLS,
    Protocol,
    SSEEvent,
    chat_request,
    get_events,
    post_events,
    served,
)

SECRET = "https://api.example.com/v1?key=sk-secret-1234"
LOGGER = "miniagents.ext.web"
PAGE = Path(__file__).parents[3] / "examples" / "web_chat" / "index.html"


@miniagent
async def leaky(ctx: InteractionContext) -> None:
    ctx.reply("Partial answer")
    raise ConnectionError(f"The call to {SECRET} failed.")


def streamed(events: list[SSEEvent]) -> str:
    """Every event's data, together."""
    return "".join(event.data for event in events)


def told_text(events: list[SSEEvent]) -> str:
    """What the failure's last event tells (AG-UI's ``message``, the AI SDK's ``errorText``)."""
    ending = next(event.json for event in reversed(events) if event.data != "[DONE]")
    assert ending["type"] in ("RUN_ERROR", "error")
    text = ending.get("message", ending.get("errorText"))
    assert isinstance(text, str)
    return text


@pytest.mark.parametrize("protocol", PROTOCOLS, ids=str)
async def test_a_failed_runs_client_and_followers_get_the_errors_class_and_a_reference(
    protocol: Protocol, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger=LOGGER)
    async with served(protocol.app(leaky, authentication=NoAuthentication())) as client:
        _response, events = await post_events(client, protocol.body("k1"))
        _again, replayed = await get_events(
            client, protocol.resume_path("k1"), {"last-event-id": "0"}
        )
    assert SECRET not in streamed(events)
    assert replayed == events[1:]  # (a follower reads what the client was told)
    text = told_text(events)
    found = re.fullmatch(
        r"The agent failed with ConnectionError\. The server's log has the error under the "
        r"reference ([0-9a-f]{32}): ask the agent's operator to look it up there\.",
        text,
    )
    assert found is not None, text
    if protocol.name == "agui":
        assert events[-1].json["code"] == "ConnectionError"
    logged = [record for record in caplog.records if record.name == LOGGER]
    assert len(logged) == 1
    assert found[1] in logged[0].getMessage()
    assert logged[0].exc_info is not None
    assert SECRET in str(logged[0].exc_info[1])


@pytest.mark.parametrize("protocol", PROTOCOLS, ids=str)
async def test_an_app_made_with_error_texts_sends_the_errors_text(protocol: Protocol) -> None:
    settings = WebSettings(error_texts=True)
    app = protocol.app(leaky, authentication=NoAuthentication(), settings=settings)
    async with served(app) as client:
        _response, events = await post_events(client, protocol.body("k1"))
    assert told_text(events) == f"The call to {SECRET} failed."


@pytest.mark.parametrize("protocol", PROTOCOLS, ids=str)
async def test_an_error_the_library_wrote_for_the_client_is_sent_as_it_is(
    protocol: Protocol,
) -> None:
    @miniagent
    async def withdrawn(ctx: InteractionContext) -> None:
        del ctx
        raise InputRequestError("Nobody can answer the question here.")

    async with served(protocol.app(withdrawn, authentication=NoAuthentication())) as client:
        _response, events = await post_events(client, protocol.body("k1"))
    assert told_text(events) == "Nobody can answer the question here."


async def test_the_chat_page_gets_the_errors_class_not_its_text() -> None:
    app = web_chat_app(leaky, authentication=NoAuthentication(), page=PAGE)
    async with served(app) as client:
        response, events = await post_events(
            client, chat_request(), "/api/chat/", {"origin": str(client.base_url).rstrip("/")}
        )
    assert response.status_code == 200, response
    assert SECRET not in streamed(events)
    assert told_text(events).startswith("The agent failed with ConnectionError.")


def test_error_texts_is_true_or_false() -> None:
    with pytest.raises(Exception, match="error_texts") as refused:
        WebSettings(error_texts="yes")  # type: ignore[arg-type]
    assert getattr(refused.value, "parameter", None) == "error_texts"
