"""Input requests: an agent asks, whoever reads its reply answers, and the agent goes on.

The request in the reply is the one the agent waits on (answering it lets the agent go
on, once); one read back from its fields is not pending; a request nobody can answer
where it is served (the AG-UI and AI SDK apps, whose clients answer none) is withdrawn,
so the agent's wait ends with an error that says why, and the question is shown as a text.
"""

from __future__ import annotations

import asyncio

import pytest

from miniagents import InteractionContext, Message, MiniAgents, miniagent
from miniagents.ext.errors import InputRequestError
from miniagents.ext.input_requests import (
    AuthRequest,
    InputRequest,
    request_input,
    withdraw_input_request,
)
from miniagents.ext.web import NoAuthentication, agui_app, ai_sdk_app
from tests.ext.web.serving import agui_input, chat_request, post_events, served


@miniagent
async def greeter(ctx: InteractionContext) -> None:
    """Asks for a name, then greets."""
    question = request_input("What is your name?")
    ctx.reply(question)
    try:
        name = await question.aanswer()
    except InputRequestError as error:
        ctx.reply(f"(unanswered: {error})")
        return
    ctx.reply(f"Hello, {name}!")


async def test_the_reader_of_the_reply_answers_and_the_agent_goes_on() -> None:
    async with MiniAgents():
        reply = aiter(greeter.inquire("Hi"))
        question = await anext(reply)
        request = await question
        assert isinstance(request, InputRequest)
        assert (str(request), request.role, request.pending) == (
            "What is your name?",
            "assistant",
            True,
        )
        request.answer("Ada", Message(text="Lovelace"))
        assert not request.pending
        with pytest.raises(InputRequestError, match="answered already"):
            request.answer("Again")
        assert str(await anext(reply)) == "Hello, Ada\n\nLovelace!"


async def test_a_request_rebuilt_from_its_fields_is_not_pending() -> None:
    rebuilt = InputRequest(text="Which city?")
    assert not rebuilt.pending
    with pytest.raises(InputRequestError, match="not pending"):
        rebuilt.answer("Paris")
    with pytest.raises(InputRequestError, match="not pending"):
        await rebuilt.aanswer()
    asked = request_input("Which city?")
    with pytest.raises(InputRequestError, match="at least one message"):
        asked.answer()


async def test_a_withdrawn_request_ends_the_wait_with_the_reason() -> None:
    asked = request_input("Sign in first.", request_class=AuthRequest, agent_alias="SAFE")
    assert isinstance(asked, AuthRequest)
    waiting = asyncio.ensure_future(asked.aanswer())
    await asyncio.sleep(0)
    withdraw_input_request(asked, "Nobody can answer here.")
    with pytest.raises(InputRequestError, match="Nobody can answer here"):
        await waiting
    with pytest.raises(InputRequestError, match="Nobody can answer here"):
        asked.answer("done")


@pytest.mark.parametrize("protocol", ["ag-ui", "ai-sdk"])
async def test_an_app_whose_clients_answer_nothing_withdraws_the_question_and_shows_it(
    protocol: str,
) -> None:
    make = agui_app if protocol == "ag-ui" else ai_sdk_app
    app = make(greeter, authentication=NoAuthentication())
    body = agui_input() if protocol == "ag-ui" else chat_request()
    async with served(app) as web:
        _, events = await post_events(web, body)
    said = "".join(
        str(event.json.get("delta", ""))
        for event in events
        if event.data != "[DONE]"
        and event.json.get("type") in ("TEXT_MESSAGE_CONTENT", "text-delta")
    )
    assert said.startswith("What is your name?(unanswered: The agent asked its caller a question")
    assert f"over {protocol}" in said
