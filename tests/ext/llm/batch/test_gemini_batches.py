"""Batch mode for Gemini: ``gemini_agent``'s calls through google-genai's Batch API (inline
requests), the real SDK against the fake server over HTTP: the replies and their price, the
requests as live, several steps per agent, failed requests and batches, cancellation,
resuming, and Vertex AI refused."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any

import httpx2
import pytest
from google import genai

from miniagents import InteractionContext, Message, MiniAgents, miniagent, pipeline
from miniagents.ext.llm import ImagePart, UserMessage, structured
from miniagents.ext.llm.batch import BatchMode
from miniagents.ext.llm.errors import (
    LLMBatchError,
    LLMConfigurationError,
    LLMRateLimitError,
    LLMRequestError,
)
from miniagents.ext.llm.gemini import GeminiMessage, gemini_agent
from miniagents.ext.llm.messages import LLMToolCallMessage, LLMToolResultMessage
from miniagents.ext.llm.pricing import cost_usd
from miniagents.miniagents import MiniAgent
from miniagents.testing import FakeLLMServer, ToolCall, manual_time
from miniagents.testing._gemini_wire import THOUGHT_SIGNATURE
from tests.ext.llm.batch.kit import (
    MemoryJournal,
    batch_mode,
    collect,
    run_batched,
    until,
    until_looked,
)
from tests.fakes.fixtures import WAIT, fake_llm  # noqa: F401
from tests.messages.images import WHOLE_PNG

MODEL = "gemini-2.5-flash"

_CLIENTS: list[genai.Client] = []
"""The SDK clients the test made (closed after it)."""


@pytest.fixture(autouse=True)
async def _close_clients() -> AsyncIterator[None]:
    yield
    while _CLIENTS:
        client = _CLIENTS.pop()
        await client.aio.aclose()
        client.close()


def _client(server: FakeLLMServer, *, vertex: bool = False) -> genai.Client:
    options = genai.types.HttpOptions(
        base_url=server.gemini_base_url,
        async_client_args={"transport": httpx2.AsyncHTTPTransport()},
    )
    if vertex:
        client = genai.Client(
            vertexai=True, project="p", location="us-central1", http_options=options
        )
    else:
        client = genai.Client(vertexai=False, api_key="test", http_options=options)
    _CLIENTS.append(client)
    return client


def _agent(server: FakeLLMServer, **options: Any) -> MiniAgent[..., Any]:
    options.setdefault("model", MODEL)
    return gemini_agent.fork(async_client=_client(server), **options)


def _live_calls(server: FakeLLMServer) -> list[str]:
    """The paths of the live calls of models the server got (not its batch API's)."""
    return [
        request.path
        for request in server.requests
        if request.path.split("?")[0].endswith(("generateContent", "GenerateContent"))
        and ":batchGenerateContent" not in request.path
    ]


async def test_every_item_gets_its_reply_from_one_batch_at_the_batch_price(
    fake_llm: FakeLLMServer,  # noqa: F811
) -> None:
    fake_llm.reply(usage=(1000, 100), times=3)  # each echoes its item
    journal = MemoryJournal()
    mode = batch_mode(journal=journal)
    results = await run_batched(_agent(fake_llm), ["It is A.", "It is B.", "It is C."], mode)

    assert [str(result.get()[-1]) for result in results] == ["It is A.", "It is B.", "It is C."]
    (batch,) = fake_llm.batches.created
    assert (batch.provider, batch.model) == ("gemini", MODEL)
    assert batch.endpoint == f"models/{MODEL}:generateContent"
    assert len(batch.requests) == 3
    assert batch.metadata["displayName"] == journal.appended[0]["tag"]  # found by it again
    assert not _live_calls(fake_llm)
    live = cost_usd(MODEL, results[0].get()[-1].usage, "google")
    assert live is not None
    for result in results:
        (reply,) = result.get()
        assert type(reply) is GeminiMessage
        assert reply.usage is not None
        assert (reply.usage.input_tokens, reply.usage.output_tokens) == (1000, 100)
        assert reply.usage.cost_usd == pytest.approx(live / 2)
    progress = mode.progress
    assert (progress.requests, progress.answered, progress.failed) == (3, 3, 0)
    assert (progress.batches_submitted, progress.batches_running, progress.batches_done) == (
        1,
        0,
        1,
    )
    assert progress.saved_usd == pytest.approx(3 * live / 2)
    assert journal.kinds() == ["submitting", "submitted"]
    assert journal.appended[1]["batch"] == batch.id
    assert batch.id.startswith("batches/")
    assert journal.cleared == 1


async def test_a_request_of_a_batch_is_the_body_the_live_call_sends(
    fake_llm: FakeLLMServer,  # noqa: F811
) -> None:
    def add(a: int, b: int) -> int:
        """Add two numbers."""
        return a + b

    options: dict[str, Any] = {
        "tools": [add],
        "system": "Be brief.",
        "temperature": 0.5,
        "max_tokens": 200,
        "extra_options": {"thinking_config": {"thinking_budget": 0}},
    }
    async with MiniAgents():
        live = await _agent(fake_llm, **options).inquire("2 + 3?")
    assert str(live) == "2 + 3?"
    (request,) = fake_llm.requests
    (result,) = await run_batched(_agent(fake_llm, **options), ["2 + 3?"], batch_mode())
    assert str(result.get()[-1]) == "2 + 3?"
    (batch,) = fake_llm.batches.created
    assert batch.requests[0].body == request.json  # contents, system, tools, config alike
    assert batch.requests[0].body["generationConfig"]["temperature"] == 0.5


class Weather(Message):
    """The weather in a city."""

    city: str
    celsius: float


async def test_structured_output_and_an_image_go_in_a_batch_as_live(
    fake_llm: FakeLLMServer,  # noqa: F811
) -> None:
    fake_llm.reply(['{"city": "Paris", ', '"celsius": 21.5}'])
    image = ImagePart(data=WHOLE_PNG, media_type="image/png")
    item = UserMessage(text="The weather here?", images=(image,))
    async with MiniAgents():
        results = [
            result
            async for result in pipeline(
                structured(_agent(fake_llm), Weather), [item], batch=batch_mode()
            )
        ]
    (result,) = results
    (weather,) = result.get()
    assert isinstance(weather, Weather)
    assert (weather.city, weather.celsius) == ("Paris", 21.5)
    ((request,),) = [batch.requests for batch in fake_llm.batches.created]
    config = request.body["generationConfig"]
    assert config["responseMimeType"] == "application/json"
    assert set(config["responseJsonSchema"]["properties"]) == {"city", "celsius"}
    (text, picture) = request.body["contents"][-1]["parts"]
    assert text == {"text": "The weather here?"}
    assert picture["inlineData"]["mime_type"] == "image/png"


async def test_an_agent_with_a_tool_loop_has_its_next_call_in_a_later_batch(
    fake_llm: FakeLLMServer,  # noqa: F811
) -> None:
    def add(a: int, b: int) -> int:
        """Add two numbers."""
        return a + b

    fake_llm.reply(tool_calls=[ToolCall("add", {"a": 2, "b": 3}, id="c1")])
    fake_llm.reply(["It is 5."])
    mode = batch_mode()
    (result,) = await run_batched(_agent(fake_llm, tools=[add]), ["2 + 3?"], mode)

    called, answered, said = result.get()
    assert isinstance(called, LLMToolCallMessage)
    assert called.arguments == {"a": 2, "b": 3}
    assert isinstance(answered, LLMToolResultMessage)
    assert str(answered) == "5"
    assert str(said) == "It is 5."
    first, second = fake_llm.batches.created
    assert len(first.requests) == len(second.requests) == 1
    model_turn, results_turn = second.requests[0].body["contents"][-2:]
    (call_part,) = model_turn["parts"]
    assert call_part["thoughtSignature"] == THOUGHT_SIGNATURE  # the one the batch's reply gave
    (response_part,) = results_turn["parts"]
    assert response_part["functionResponse"]["response"] == {"result": "5"}
    assert mode.progress.batches_done == 2
    assert not _live_calls(fake_llm)


async def test_the_requests_of_two_models_go_in_a_batch_each(
    fake_llm: FakeLLMServer,  # noqa: F811
) -> None:
    fake_llm.reply(["flash"], for_model=MODEL)
    fake_llm.reply(["pro"], for_model="gemini-2.5-pro")
    flash = _agent(fake_llm, alias="FLASH")
    pro = _agent(fake_llm, alias="PRO", model="gemini-2.5-pro")

    @miniagent
    async def both(ctx: InteractionContext) -> None:
        text = str(await ctx.message_promises)
        ctx.reply([flash.inquire(text), pro.inquire(text)])

    (result,) = await run_batched(both, ["x"], batch_mode())
    assert [str(message) for message in result.get()] == ["flash", "pro"]
    assert sorted(batch.model or "" for batch in fake_llm.batches.created) == [
        "gemini-2.5-flash",
        "gemini-2.5-pro",
    ]


async def test_an_http_error_of_one_request_is_its_items_error_as_it_would_be_live(
    fake_llm: FakeLLMServer,  # noqa: F811
) -> None:
    fake_llm.reply(["fine"])
    fake_llm.fail(400, message="Bad request of the batch.")
    fake_llm.fail(429, message="Too many.")
    results = await run_batched(_agent(fake_llm), ["a", "b", "c"], batch_mode(retry="none"))
    assert str(results[0].get()[-1]) == "fine"
    assert isinstance(results[1].error, LLMRequestError)
    assert "Bad request of the batch." in str(results[1].error)
    assert isinstance(results[2].error, LLMRateLimitError)
    assert "Too many." in str(results[2].error)
    assert len(fake_llm.batches.created) == 1


async def test_a_request_that_got_a_server_error_goes_in_the_next_batch(
    fake_llm: FakeLLMServer,  # noqa: F811
) -> None:
    fake_llm.fail(503)
    fake_llm.reply(["second time"])
    mode = batch_mode(retry="batch", retries=1)
    (result,) = await run_batched(_agent(fake_llm), ["a"], mode)
    assert str(result.get()[-1]) == "second time"
    assert len(fake_llm.batches.created) == 2
    assert (mode.progress.failed, mode.progress.retried, mode.progress.answered) == (1, 1, 1)


async def test_the_requests_an_expired_batch_did_not_run_are_expired(
    fake_llm: FakeLLMServer,  # noqa: F811
) -> None:
    fake_llm.batches.expire_next(after=1)
    results = await run_batched(_agent(fake_llm), ["ran", "expired"], batch_mode(retry="none"))
    assert str(results[0].get()[-1]) == "ran"
    error = results[1].error
    assert isinstance(error, LLMBatchError)
    (batch,) = fake_llm.batches.created
    assert (error.reason, error.batch_id) == ("expired", batch.id)
    assert "expired before the provider ran it" in str(error)


async def test_an_expired_request_goes_in_the_next_batch_when_the_mode_says_so(
    fake_llm: FakeLLMServer,  # noqa: F811
) -> None:
    fake_llm.batches.expire_next(after=0)
    mode = batch_mode(retry="batch", retries=1)
    (result,) = await run_batched(_agent(fake_llm), ["again"], mode)
    assert str(result.get()[-1]) == "again"
    first, second = fake_llm.batches.created
    assert (first.ending, second.ending) == ("expired", "completed")
    assert mode.progress.retried == 1


async def test_a_batch_that_failed_as_a_whole_fails_each_of_its_items(
    fake_llm: FakeLLMServer,  # noqa: F811
) -> None:
    fake_llm.batches.fail_next("The batch is not valid.")
    results = await run_batched(_agent(fake_llm), ["a", "b"], batch_mode(retry="batch"))
    (batch,) = fake_llm.batches.created  # not tried again
    for result in results:
        assert isinstance(result.error, LLMBatchError)
        assert (result.error.reason, result.error.batch_id) == ("failed", batch.id)
        assert "Gemini failed the batch as a whole" in str(result.error)


async def test_a_batch_that_could_not_be_created_fails_its_items_with_the_providers_error(
    fake_llm: FakeLLMServer,  # noqa: F811
) -> None:
    fake_llm.batches.refuse_next_create(400, message="Batches are not enabled.")
    journal = MemoryJournal()
    results = await run_batched(_agent(fake_llm), ["a", "b"], batch_mode(journal=journal))
    for result in results:
        assert isinstance(result.error, LLMRequestError)
        assert "Batches are not enabled." in str(result.error)
    assert fake_llm.batches.created == []
    assert journal.kinds() == ["submitting", "abandoned"]


async def test_a_batch_cancelled_at_the_provider_ends_its_unrun_requests_cancelled(
    fake_llm: FakeLLMServer,  # noqa: F811
) -> None:
    fake_llm.batches.hold()
    mode = BatchMode(max_wait=3600, idle_wait=0, poll_interval=30, retry="none", journal=None)
    with manual_time() as clock:
        async with MiniAgents():
            run = asyncio.ensure_future(collect(pipeline(_agent(fake_llm), ["x"], batch=mode)))
            await until(lambda: mode.progress.batches_submitted == 1)
            (batch,) = fake_llm.batches.created
            fake_llm.batches.cancel(batch.id)  # (as a click in Google's console would)
            await until_looked(clock, fake_llm, batch.id, within=30)  # the poller's look
            (result,) = await run
    error = result.error
    assert isinstance(error, LLMBatchError)
    assert (error.reason, error.batch_id) == ("cancelled", batch.id)
    assert batch.ending == "cancelled"


async def test_leaving_the_loop_early_cancels_the_batches_of_the_run(
    fake_llm: FakeLLMServer,  # noqa: F811
) -> None:
    fake_llm.batches.hold()
    journal = MemoryJournal()
    mode = batch_mode(journal=journal)
    llm = _agent(fake_llm)

    @miniagent
    async def first_done(ctx: InteractionContext) -> None:
        text = str(await ctx.message_promises)
        ctx.reply("done" if text == "quick" else llm.inquire(text))

    async with MiniAgents():
        run = pipeline(first_done, ["quick", "slow"], batch=mode, ordered=False)
        async with aclosing(run.__aiter__()) as results:
            assert str((await anext(results)).get()[-1]) == "done"
            await journal.await_kind("submitted")
    (batch,) = fake_llm.batches.created
    assert batch.cancel_asked
    assert journal.cleared == 1


@pytest.mark.parametrize("stalled", [False, True], ids=["noted", "creation-unanswered"])
async def test_a_run_started_again_takes_its_replies_from_the_batches_of_the_one_before(
    stalled: bool,
    fake_llm: FakeLLMServer,  # noqa: F811
) -> None:
    fake_llm.batches.hold()
    if stalled:  # the batch is made, and the run never hears of it: found by its name
        fake_llm.batches.stall_next_create()
    journal = MemoryJournal()
    items = ["a", "b", "c"]
    async with MiniAgents():
        run = asyncio.ensure_future(
            collect(pipeline(_agent(fake_llm), items, batch=batch_mode(journal=journal)))
        )
        await fake_llm.batches.wait_created_async(1, WAIT)
        if not stalled:
            await journal.await_kind("submitted")
        run.cancel()  # as Ctrl+C would
        with pytest.raises(asyncio.CancelledError):
            await run
    assert journal.kinds() == ["submitting"] if stalled else ["submitting", "submitted"]
    (batch,) = fake_llm.batches.created
    assert not batch.cancel_asked  # left running, for the next run
    fake_llm.batches.release()

    again = MemoryJournal(journal.records)
    results = await run_batched(_agent(fake_llm), items, batch_mode(journal=again))
    assert [str(result.get()[-1]) for result in results] == items
    assert fake_llm.batches.created == [batch]  # no request submitted twice
    assert again.records == []


async def test_a_gemini_agent_on_vertex_ai_is_refused_with_what_to_do(
    fake_llm: FakeLLMServer,  # noqa: F811
) -> None:
    agent = gemini_agent.fork(model=MODEL, async_client=_client(fake_llm, vertex=True))
    (result,) = await run_batched(agent, ["x"], batch_mode())
    error = result.error
    assert isinstance(error, LLMConfigurationError)
    assert "on Vertex AI" in str(error)
    assert "Gemini Developer API" in str(error)
    assert fake_llm.requests == []  # neither live nor batched


async def test_a_body_the_inline_request_cannot_hold_fails_its_call_alone(
    fake_llm: FakeLLMServer,  # noqa: F811
) -> None:
    from miniagents.ext.llm.batch import GeminiBatchAPI

    api = GeminiBatchAPI()
    with pytest.raises(LLMConfigurationError, match="cannot put this Gemini request in a batch"):
        api.encode("mb-1", f"models/{MODEL}", {"contents": [], "unheardOf": 1})
    with pytest.raises(LLMConfigurationError, match="cannot put this Gemini request in a batch"):
        api.encode("mb-1", f"models/{MODEL}", {"contents": [], "generationConfig": {"nope": 1}})
    assert api.endpoint(f"/v1beta/models/{MODEL}:generateContent") == f"models/{MODEL}"
    assert api.endpoint(f"/v1beta/models/{MODEL}:streamGenerateContent") is None


# -- helpers -------------------------------------------------------------------------------
