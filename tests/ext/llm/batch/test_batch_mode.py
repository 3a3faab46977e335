"""Batch mode: a pipeline's calls of models through the real SDKs' batch APIs, against the fake
server over HTTP: the replies, several steps per agent, flushing, failures, budgets, resuming."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from contextlib import aclosing
from pathlib import Path
from typing import Any, Literal

import anthropic
import httpx2
import openai
import pytest

from miniagents import InteractionContext, MiniAgents, miniagent, pipeline
from miniagents.ext.llm.anthropic import AnthropicMessage, anthropic_agent
from miniagents.ext.llm.batch import BatchMode, BatchRun, FileJournal
from miniagents.ext.llm.errors import (
    BudgetExceededError,
    LLMBatchError,
    LLMConfigurationError,
    LLMRequestError,
)
from miniagents.ext.llm.messages import LLMToolCallMessage, LLMToolResultMessage
from miniagents.ext.llm.openai import OpenAIMessage, OpenAIOptions, OpenAIProvider, openai_agent
from miniagents.ext.llm.pricing import cost_usd
from miniagents.ext.llm.prompt import PromptText
from miniagents.ext.llm.provider import Finish, LLMCall, LLMEvent
from miniagents.ext.llm.routing import route_llm_calls
from miniagents.ext.llm.usage import Budget, charged_to
from miniagents.miniagents import MiniAgent
from miniagents.operators import map_agent
from miniagents.pipeline import ItemResult
from miniagents.promising.sentinels import DEFAULT
from miniagents.testing import FakeLLMServer, ToolCall, manual_time, scripted_agent
from tests.ext.llm.batch.kit import (
    MemoryJournal,
    batch_mode,
    collect,
    run_batched,
    until,
    until_looked,
)
from tests.fakes.fixtures import WAIT, fake_llm  # noqa: F401
from tests.subprocesses import ROOT, ProcessGroups

Api = Literal["chat", "responses", "anthropic"]
APIS: tuple[Api, ...] = ("chat", "responses", "anthropic")
MODELS = {"chat": "gpt-4o-mini", "responses": "gpt-4o-mini", "anthropic": "claude-haiku-4-5"}
PRICES = {"chat": "openai", "responses": "openai", "anthropic": "anthropic"}


_CLIENTS: list[Any] = []
"""The SDK clients the test made (closed after it)."""


@pytest.fixture(autouse=True)
async def _close_clients() -> AsyncIterator[None]:
    yield
    while _CLIENTS:
        await _CLIENTS.pop().close()


def _agent(api: Api, server: FakeLLMServer, **options: Any) -> MiniAgent[..., Any]:
    if api == "anthropic":
        client: Any = anthropic.AsyncAnthropic(base_url=server.anthropic_base_url, api_key="test")
        _CLIENTS.append(client)
        options.setdefault("model", MODELS[api])
        return anthropic_agent.fork(async_client=client, **options)
    client = openai.AsyncOpenAI(base_url=server.openai_base_url, api_key="test")
    _CLIENTS.append(client)
    if api == "responses":
        options["api"] = "responses"
    options.setdefault("model", MODELS[api])
    return openai_agent.fork(async_client=client, **options)


def _live_calls(server: FakeLLMServer) -> list[str]:
    """The paths of the live calls of models the server got (not its batch APIs')."""
    return [
        request.path
        for request in server.requests
        if request.path.endswith(("/chat/completions", "/responses", "/messages"))
    ]


@pytest.mark.parametrize("api", APIS)
async def test_every_item_gets_its_reply_from_one_batch_at_the_batch_price(
    api: Api,
    fake_llm: FakeLLMServer,  # noqa: F811
) -> None:
    fake_llm.reply(usage=(1000, 100), times=3)  # each echoes its item
    journal = MemoryJournal()
    mode = batch_mode(journal=journal)
    results = await run_batched(_agent(api, fake_llm), ["It is A.", "It is B.", "It is C."], mode)

    assert [str(result.get()[-1]) for result in results] == ["It is A.", "It is B.", "It is C."]
    (batch,) = fake_llm.batches.created
    assert batch.endpoint == {"chat": "/v1/chat/completions", "responses": "/v1/responses"}.get(
        api, "/v1/messages"
    )
    assert len(batch.requests) == 3
    assert all(not request.body.get("stream") for request in batch.requests)
    assert not _live_calls(fake_llm)
    live = cost_usd(MODELS[api], results[0].get()[-1].usage, PRICES[api])
    assert live is not None
    for result in results:
        (reply,) = result.get()
        assert type(reply) is (AnthropicMessage if api == "anthropic" else OpenAIMessage)
        assert reply.usage is not None
        assert reply.usage.input_tokens == 1000
        assert reply.usage.output_tokens == 100
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
    assert journal.records == []
    assert journal.cleared == 1


@pytest.mark.parametrize("api", APIS)
async def test_an_agent_with_a_tool_loop_has_its_next_call_in_a_later_batch(
    api: Api,
    fake_llm: FakeLLMServer,  # noqa: F811
) -> None:
    def add(a: int, b: int) -> int:
        """Add two numbers."""
        return a + b

    fake_llm.reply(tool_calls=[ToolCall("add", {"a": 2, "b": 3}, id="c1")])
    fake_llm.reply(["It is 5."])
    mode = batch_mode()
    (result,) = await run_batched(_agent(api, fake_llm, tools=[add]), ["2 + 3?"], mode)

    called, answered, said = result.get()
    assert isinstance(called, LLMToolCallMessage)
    assert called.arguments == {"a": 2, "b": 3}
    assert isinstance(answered, LLMToolResultMessage)
    assert str(answered) == "5"
    assert str(said) == "It is 5."
    first, second = fake_llm.batches.created
    assert len(first.requests) == len(second.requests) == 1
    assert "5" in str(second.requests[0].body)  # the tool's result went back to the model
    assert mode.progress.batches_done == 2
    assert not _live_calls(fake_llm)


async def test_a_chain_of_agents_has_each_call_in_its_own_batch(
    fake_llm: FakeLLMServer,  # noqa: F811
) -> None:
    fake_llm.reply(["drafted"], for_model="drafter", times=2)
    fake_llm.reply(["checked"], for_model="checker", times=2)
    first = _agent("chat", fake_llm, alias="DRAFT", model="drafter")
    second = _agent("chat", fake_llm, alias="CHECK", model="checker")
    results = await run_batched([first, second], ["one", "two"], batch_mode())
    assert [str(result.get()[-1]) for result in results] == ["checked", "checked"]
    drafts, checks = fake_llm.batches.created
    assert [request.body["model"] for request in drafts.requests] == ["drafter", "drafter"]
    assert [request.body["messages"][-1] for request in checks.requests] == [
        {"role": "assistant", "content": "drafted"}
    ] * 2  # the draft went on to the second agent


async def test_a_queue_is_flushed_when_it_holds_max_requests(
    fake_llm: FakeLLMServer,  # noqa: F811
) -> None:
    items = [f"item {index}" for index in range(5)]
    results = await run_batched(_agent("chat", fake_llm), items, batch_mode(max_requests=2))
    assert [str(result.get()[-1]) for result in results] == items
    assert sorted(len(batch.requests) for batch in fake_llm.batches.created) == [1, 2, 2]


async def test_a_queue_is_flushed_before_it_would_hold_more_than_max_bytes(
    fake_llm: FakeLLMServer,  # noqa: F811
) -> None:
    items = ["aaaa", "bbbb", "cccc"]
    probe = await run_batched(_agent("chat", fake_llm), ["zzzz"], batch_mode())  # one line's size
    (probe_batch,) = fake_llm.batches.created
    assert probe[0].ok
    content = fake_llm.batches.files[probe_batch.input_file_id or ""][2]
    line = len(content)
    results = await run_batched(
        _agent("chat", fake_llm), items, batch_mode(max_bytes=line + line // 2)
    )
    assert [str(result.get()[-1]) for result in results] == items
    assert [len(batch.requests) for batch in fake_llm.batches.created[1:]] == [1, 1, 1]


async def test_a_request_larger_than_a_batch_takes_fails_its_item_alone(
    fake_llm: FakeLLMServer,  # noqa: F811
) -> None:
    results = await run_batched(
        _agent("chat", fake_llm), ["short", "long " * 200], batch_mode(max_bytes=600)
    )
    assert str(results[0].get()[-1]) == "short"
    error = results[1].error
    assert isinstance(error, LLMBatchError)
    assert error.reason == "failed"
    assert error.batch_id is None
    assert "bytes, more than a batch takes" in str(error)


async def test_a_queue_is_flushed_once_its_oldest_request_waited_max_wait(
    fake_llm: FakeLLMServer,  # noqa: F811
) -> None:
    gate = asyncio.Event()
    llm = _agent("chat", fake_llm)

    @miniagent
    async def gated(ctx: InteractionContext) -> None:
        text = str(await ctx.message_promises)
        if text == "late":  # runs, and waits for the test, before it calls the model
            await gate.wait()
        ctx.reply(llm.inquire(text))

    journal = MemoryJournal()
    mode = BatchMode(max_wait=60, idle_wait=0, poll_interval=5, journal=journal)
    with manual_time() as clock:
        async with MiniAgents():
            run = asyncio.ensure_future(
                collect(pipeline(gated, ["early", "late"], batch=mode, max_concurrency=2))
            )
            await until(lambda: mode.progress.requests == 1)  # (the clock stands still)
            clock.advance(59.5)
            for _ in range(100):
                await asyncio.sleep(0)
            assert journal.kinds() == []  # "late" runs and calls nothing: no flush yet
            clock.advance(0.5)
            await journal.await_kind("submitted")
            assert journal.times[0] == pytest.approx(clock.start + 60.0)
            gate.set()  # "late" calls now: every item waits, so its queue goes at once
            await until(lambda: mode.progress.batches_submitted == 2)
            assert [len(batch.requests) for batch in fake_llm.batches.created] == [1, 1]
            await until_looked(clock, fake_llm, fake_llm.batches.created[-1].id, within=5)
            results = await run
    assert [str(result.get()[-1]) for result in results] == ["early", "late"]


@pytest.mark.parametrize(("idle_wait", "sizes"), [(1.0, [2]), (0.0, [1, 1])])
async def test_an_item_that_starts_within_idle_wait_joins_the_batch(
    idle_wait: float,
    sizes: list[int],
    fake_llm: FakeLLMServer,  # noqa: F811
) -> None:
    gate = asyncio.Event()

    async def items() -> AsyncIterator[str]:
        yield "first"
        await gate.wait()  # the second comes half a second after the first waits
        yield "second"

    mode = BatchMode(max_wait=3600, idle_wait=idle_wait, poll_interval=5, journal=None)
    with manual_time() as clock:
        async with MiniAgents():
            agent = _agent("chat", fake_llm)
            run = asyncio.ensure_future(collect(pipeline(agent, items(), batch=mode)))
            await until(lambda: mode.progress.requests == 1)
            clock.advance(0.5)
            gate.set()
            await until(lambda: mode.progress.requests == 2)
            clock.advance(0.5)
            await until(lambda: mode.progress.batches_submitted == len(sizes))
            await until_looked(clock, fake_llm, fake_llm.batches.created[-1].id, within=5)
            results = await run
    assert [str(result.get()[-1]) for result in results] == ["first", "second"]
    assert [len(batch.requests) for batch in fake_llm.batches.created] == sizes


async def test_a_call_waiting_in_a_batch_is_kept_alive_past_its_stall_timeout(
    fake_llm: FakeLLMServer,  # noqa: F811
) -> None:
    fake_llm.batches.hold()
    mode = BatchMode(max_wait=1, idle_wait=0, poll_interval=1000, journal=None)
    # (the SDK's own timeout out of the way: the clock moves while a request is in flight)
    agent = _agent("chat", fake_llm, stall_timeout=5, timeout=1e6)
    with manual_time() as clock:
        async with MiniAgents():
            run = asyncio.ensure_future(collect(pipeline(agent, ["x"], batch=mode)))
            await until(lambda: mode.progress.batches_submitted == 1)  # its poller waits
            (batch,) = fake_llm.batches.created
            for _ in range(300):  # 300 s in the batch: 60 times its stall timeout, a second
                clock.advance(1)  # at a time (a jump past its stall timeout would be a stall)
                for _ in range(5):
                    await asyncio.sleep(0)
            assert not run.done()
            fake_llm.batches.release()
            await until_looked(clock, fake_llm, batch.id, within=1000)  # the poller's look
            (result,) = await run
    assert str(result.get()[-1]) == "x"


async def test_an_http_error_of_one_request_is_its_items_error_as_it_would_be_live(
    fake_llm: FakeLLMServer,  # noqa: F811
) -> None:
    fake_llm.reply(["fine"])
    fake_llm.fail(400, message="Bad request of the batch.")
    results = await run_batched(
        _agent("chat", fake_llm), ["a", "b"], batch_mode(retry="batch", retries=3)
    )
    assert str(results[0].get()[-1]) == "fine"
    assert isinstance(results[1].error, LLMRequestError)
    assert "Bad request of the batch." in str(results[1].error)
    assert len(fake_llm.batches.created) == 1  # a 400 is not tried again


async def test_a_request_that_got_a_server_error_goes_in_the_next_batch(
    fake_llm: FakeLLMServer,  # noqa: F811
) -> None:
    fake_llm.fail(500)
    fake_llm.reply(["second time"])
    mode = batch_mode(retry="batch", retries=1)
    (result,) = await run_batched(_agent("chat", fake_llm), ["a"], mode)
    assert str(result.get()[-1]) == "second time"
    assert len(fake_llm.batches.created) == 2
    assert (mode.progress.failed, mode.progress.retried, mode.progress.answered) == (1, 1, 1)


@pytest.mark.parametrize("api", ["chat", "anthropic"])
async def test_an_expired_request_is_its_items_error_when_it_may_not_be_tried_again(
    api: Api,
    fake_llm: FakeLLMServer,  # noqa: F811
) -> None:
    fake_llm.batches.expire_next(after=1)
    results = await run_batched(_agent(api, fake_llm), ["ran", "expired"], batch_mode(retry="none"))
    assert str(results[0].get()[-1]) == "ran"
    error = results[1].error
    assert isinstance(error, LLMBatchError)
    (batch,) = fake_llm.batches.created
    assert (error.reason, error.batch_id) == ("expired", batch.id)
    assert "expired before the provider ran it" in str(error)
    # (Anthropic's was: "... (a batch has 24 hours, Gemini's 48) (the request expired).")
    if api == "anthropic":
        assert str(error) == (
            f"A call queued in batch mode got no reply: its request, in the batch {batch.id}, "
            "expired before the provider ran it (a batch has 24 hours, Gemini's 48). Give the "
            "batch mode more retries (BatchMode(retries=...)), retry live "
            "(BatchMode(retry='live')), or run the item again."
        )


async def test_an_expired_request_is_made_live_when_the_mode_says_so(
    fake_llm: FakeLLMServer,  # noqa: F811
) -> None:
    fake_llm.batches.expire_next(after=0)
    fake_llm.reply(["live ", "reply"], usage=(1000, 100))
    mode = batch_mode(retry="live")
    (result,) = await run_batched(_agent("chat", fake_llm), ["x"], mode)
    (reply,) = result.get()
    assert str(reply) == "live reply"
    (live,) = [request for request in fake_llm.requests if request.path.endswith("/completions")]
    assert live.stream  # made as the agent makes it: streamed
    assert reply.usage.cost_usd == pytest.approx(cost_usd(MODELS["chat"], reply.usage, "openai"))
    assert mode.progress.retried == 1


async def test_a_live_retry_its_reader_closes_part_way_is_closed_at_once_in_its_task(
    fake_llm: FakeLLMServer,  # noqa: F811
) -> None:
    # (was: the live call of a retry, left at its yield as the batched call's events were
    # closed, was closed later by the garbage collector's hook, in a task of its own: the
    # provider's request and its connection held until then)
    fake_llm.batches.expire_next(after=0)
    client = openai.AsyncOpenAI(base_url=fake_llm.openai_base_url, api_key="test")
    _CLIENTS.append(client)
    options = OpenAIOptions(model=MODELS["chat"], async_client=client)
    provider = OpenAIProvider()
    closed_in: list[asyncio.Task[Any] | None] = []

    async def live() -> AsyncIterator[LLMEvent]:
        try:
            yield "the live token"
            yield Finish("stop")
        finally:
            closed_in.append(asyncio.current_task())

    def proceed(given: LLMCall, with_options: Any) -> AsyncIterator[LLMEvent]:
        return live() if given.stream else provider.reply(given, with_options)  # (the batch's)

    prompt = (PromptText("user", "x"),)
    call = LLMCall(model=MODELS["chat"], stream=True, system=None, messages=prompt)
    async with MiniAgents():
        run = batch_mode(retry="live").start("live-retry", None)
        await run.aopen()
        try:
            with run.item():
                called = run.llm_call(provider, call, options, proceed)
                assert isinstance(called, AsyncGenerator)
                async with aclosing(called) as events:
                    async for event in events:  # (signs of life while the batch waits)
                        if event == "the live token":
                            break  # (the reader stops part-way)
                assert closed_in == [asyncio.current_task()]  # (was: [], closed later)
        finally:
            await run.aclose("completed")


async def test_a_batch_that_failed_as_a_whole_fails_each_of_its_items(
    fake_llm: FakeLLMServer,  # noqa: F811
) -> None:
    fake_llm.batches.fail_next("The input file is not valid.")
    results = await run_batched(_agent("chat", fake_llm), ["a", "b"], batch_mode(retry="batch"))
    for result in results:
        assert isinstance(result.error, LLMBatchError)
        assert result.error.reason == "failed"
        assert "The input file is not valid." in str(result.error)
    assert len(fake_llm.batches.created) == 1  # not tried again


@pytest.mark.parametrize("api", ["chat", "anthropic"])
async def test_a_batch_that_could_not_be_created_fails_its_items_with_the_providers_error(
    api: Api,
    fake_llm: FakeLLMServer,  # noqa: F811
) -> None:
    fake_llm.batches.refuse_next_create(400, message="Batches are not enabled.")
    journal = MemoryJournal()
    results = await run_batched(_agent(api, fake_llm), ["a", "b"], batch_mode(journal=journal))
    for result in results:
        assert isinstance(result.error, LLMRequestError)
        assert "Batches are not enabled." in str(result.error)
    assert fake_llm.batches.created == []
    assert journal.kinds() == ["submitting", "abandoned"]


async def test_a_batch_that_cannot_be_read_five_times_in_a_row_fails_its_items(
    fake_llm: FakeLLMServer,  # noqa: F811
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake_llm.batches.fail_looks(5)
    with caplog.at_level(logging.WARNING, logger="miniagents"):
        (result,) = await run_batched(_agent("chat", fake_llm), ["a"], batch_mode())
    error = result.error
    assert isinstance(error, LLMBatchError)
    (batch,) = fake_llm.batches.created
    assert (error.reason, error.batch_id) == ("failed", batch.id)
    assert "its batch could not be read" in str(error)
    looks = [record for record in caplog.records if "could not look at the batch" in record.message]
    assert len(looks) == 5


async def test_a_batch_read_again_after_a_failed_look_gives_its_replies(
    fake_llm: FakeLLMServer,  # noqa: F811
) -> None:
    fake_llm.batches.fail_looks(2)
    (result,) = await run_batched(_agent("anthropic", fake_llm), ["a"], batch_mode())
    assert str(result.get()[-1]) == "a"


async def test_a_budget_refuses_a_call_before_it_is_queued_and_charges_the_batch_price(
    fake_llm: FakeLLMServer,  # noqa: F811
) -> None:
    fake_llm.reply(["one"], usage=(1000, 100), times=3)
    budget = Budget(max_requests=2)
    with charged_to(budget):
        results = await run_batched(
            _agent("chat", fake_llm), ["a", "b", "c"], batch_mode(), max_concurrency=1
        )
    assert [result.ok for result in results] == [True, True, False]
    assert isinstance(results[2].error, BudgetExceededError)
    assert sum(len(batch.requests) for batch in fake_llm.batches.created) == 2
    batch_price = cost_usd(MODELS["chat"], results[0].get()[-1].usage, "openai", batch=True)
    assert batch_price is not None
    assert budget.usage.cost_usd == pytest.approx(2 * batch_price)
    assert budget.usage.requests == 2


async def test_map_agent_runs_in_batch_mode_too(fake_llm: FakeLLMServer) -> None:  # noqa: F811
    import reactivex

    mode = batch_mode()
    async with MiniAgents():
        source = reactivex.from_iterable(["a", "b", "c"])
        results: list[ItemResult[str, Any]] = []
        done = asyncio.Event()
        source.pipe(map_agent(_agent("chat", fake_llm), batch=mode, max_concurrency=3)).subscribe(
            on_next=results.append, on_completed=done.set, on_error=lambda _: done.set()
        )
        await asyncio.wait_for(done.wait(), WAIT)
    assert [str(result.get()[-1]) for result in results] == ["a", "b", "c"]
    assert [len(batch.requests) for batch in fake_llm.batches.created] == [3]


async def test_identical_requests_of_a_run_are_separate_requests_of_the_batch(
    fake_llm: FakeLLMServer,  # noqa: F811
) -> None:
    fake_llm.reply(["first"])
    fake_llm.reply(["second"])
    results = await run_batched(_agent("chat", fake_llm), ["same", "same"], batch_mode())
    assert sorted(str(result.get()[-1]) for result in results) == ["first", "second"]
    (batch,) = fake_llm.batches.created
    assert len(set(batch.custom_ids)) == 2


async def test_a_provider_without_a_batch_api_is_called_live_with_one_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    agent = scripted_agent("one", "two")
    with caplog.at_level(logging.WARNING, logger="miniagents"):
        results = await run_batched(agent, ["a", "b"], batch_mode(), max_concurrency=1)
    assert [str(result.get()[-1]) for result in results] == ["one", "two"]
    warnings = [record for record in caplog.records if "makes the calls of" in record.message]
    assert len(warnings) == 1


async def test_the_progress_bar_shows_the_batches_and_the_money_saved(
    capsys: pytest.CaptureFixture[str],
    fake_llm: FakeLLMServer,  # noqa: F811
) -> None:
    fake_llm.reply(usage=(1000, 100), times=2)
    mode = batch_mode()
    results = await run_batched(_agent("chat", fake_llm), ["a", "b"], mode, progress=True)
    assert all(result.ok for result in results)
    drawn = capsys.readouterr().err
    assert "2/2" in drawn
    assert f"batches 1 submitted, 0 running, 1 done, saved ${mode.progress.saved_usd:.4f}" in drawn
    assert mode.progress.saved_usd > 0


# -- resuming ------------------------------------------------------------------------------


async def _interrupted_run(
    agent: MiniAgent[..., Any], items: list[str], journal: MemoryJournal, server: FakeLLMServer
) -> None:
    """Run the pipeline until its batch is created (and noted, unless its creation stalls),
    then cancel it, as Ctrl+C would."""
    mode = batch_mode(journal=journal)
    async with MiniAgents():
        run = asyncio.ensure_future(
            collect(pipeline(agent, items, batch=mode, max_concurrency=len(items)))
        )
        await server.batches.wait_created_async(1, WAIT)
        if not server.batches.created[0].unanswered:
            await journal.await_kind("submitted")
        run.cancel()
        with pytest.raises(asyncio.CancelledError):
            await run


@pytest.mark.parametrize("stalled", [False, True], ids=["noted", "creation-unanswered"])
async def test_a_run_started_again_takes_its_replies_from_the_batches_of_the_one_before(
    stalled: bool,
    fake_llm: FakeLLMServer,  # noqa: F811
) -> None:
    fake_llm.batches.hold()
    if stalled:  # the batch is made, and the run never hears of it (killed right then)
        fake_llm.batches.stall_next_create()
    journal = MemoryJournal()
    items = ["a", "b", "c"]
    await _interrupted_run(_agent("chat", fake_llm), items, journal, fake_llm)
    assert journal.cleared == 0  # interrupted: kept for the next run
    assert journal.kinds() == ["submitting"] if stalled else ["submitting", "submitted"]
    (batch,) = fake_llm.batches.created
    assert not batch.cancel_asked  # left running, for the next run
    fake_llm.batches.release()

    again = MemoryJournal(journal.records)
    results = await run_batched(_agent("chat", fake_llm), items, batch_mode(journal=again))
    assert [str(result.get()[-1]) for result in results] == items
    assert fake_llm.batches.created == [batch]  # no request submitted twice
    assert again.records == []  # completed: cleared


async def test_a_run_started_again_pays_only_for_the_calls_not_made_before(
    fake_llm: FakeLLMServer,  # noqa: F811
) -> None:
    def add(a: int, b: int) -> int:
        """Add two numbers."""
        return a + b

    fake_llm.batches.hold()
    fake_llm.reply(tool_calls=[ToolCall("add", {"a": 2, "b": 3}, id="c1")])
    fake_llm.reply(["It is 5."])
    journal = MemoryJournal()
    agent = _agent("chat", fake_llm, tools=[add])
    await _interrupted_run(agent, ["2 + 3?"], journal, fake_llm)
    fake_llm.batches.release()
    again = MemoryJournal(journal.records)
    (result,) = await run_batched(
        _agent("chat", fake_llm, tools=[add]), ["2 + 3?"], batch_mode(journal=again)
    )
    assert str(result.get()[-1]) == "It is 5."
    first, second = fake_llm.batches.created  # the first call's batch, once; the answer's
    assert "5" in str(second.requests[0].body)
    assert len(first.requests) == len(second.requests) == 1


async def test_an_anthropic_batch_whose_creation_was_not_answered_is_submitted_again(
    fake_llm: FakeLLMServer,  # noqa: F811
) -> None:
    fake_llm.batches.hold()
    fake_llm.batches.stall_next_create()
    journal = MemoryJournal()
    await _interrupted_run(_agent("anthropic", fake_llm), ["a"], journal, fake_llm)
    fake_llm.batches.release()
    again = MemoryJournal(journal.records)
    (result,) = await run_batched(_agent("anthropic", fake_llm), ["a"], batch_mode(journal=again))
    assert str(result.get()[-1]) == "a"  # not lost; the API could not tell it was made
    assert len(fake_llm.batches.created) == 2


class _HeldListing(httpx2.AsyncHTTPTransport):
    """Real HTTP to the fake server; a listing of the batches waits until the test lets it."""

    def __init__(self) -> None:
        super().__init__()
        self.listing = asyncio.Event()
        self.answer = asyncio.Event()

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        if request.method == "GET" and request.url.path.endswith("/batches"):
            self.listing.set()
            await self.answer.wait()
        return await super().handle_async_request(request)


async def _batched_text(run: BatchRun, options: OpenAIOptions, text: str) -> str:
    """The text of the reply to ``text``, its call routed through ``run`` in a try of an item."""
    provider = OpenAIProvider()
    call = LLMCall(
        model=MODELS["chat"], stream=False, system=None, messages=(PromptText("user", text),)
    )
    with run.item():
        events = run.llm_call(provider, call, options, provider.reply)
        return "".join([event async for event in events if isinstance(event, str)])


async def test_a_call_given_up_while_its_batch_is_looked_for_keeps_no_other_waiting(
    fake_llm: FakeLLMServer,  # noqa: F811
) -> None:
    # (was: the call that asked the provider which batch a journal's creation made was the
    # one that waited for the answer; given up meanwhile, it left the answer unset, and the
    # other calls of that batch waited for ever, with signs of life for their stall watch)
    fake_llm.batches.hold()
    fake_llm.batches.stall_next_create()  # made, its id never noted: looked for on restart
    journal = MemoryJournal()
    client = openai.AsyncOpenAI(base_url=fake_llm.openai_base_url, api_key="test")
    _CLIENTS.append(client)
    options = OpenAIOptions(model=MODELS["chat"], async_client=client)
    async with MiniAgents():
        run = batch_mode(journal=journal).start("restarted", None)
        await run.aopen()
        calls = [asyncio.ensure_future(_batched_text(run, options, text)) for text in "ab"]
        await fake_llm.batches.wait_created_async(1, WAIT)
        for each in calls:
            each.cancel()
        await asyncio.gather(*calls, return_exceptions=True)
        await run.aclose("interrupted")
    assert journal.kinds() == ["submitting"]
    fake_llm.batches.release()

    transport = _HeldListing()
    client = openai.AsyncOpenAI(
        base_url=fake_llm.openai_base_url,
        api_key="test",
        http_client=httpx2.AsyncClient(transport=transport),
    )
    _CLIENTS.append(client)
    options = OpenAIOptions(model=MODELS["chat"], async_client=client)
    async with MiniAgents():
        run = batch_mode(journal=MemoryJournal(journal.records)).start("restarted", None)
        await run.aopen()
        first = asyncio.ensure_future(_batched_text(run, options, "a"))
        await asyncio.wait_for(transport.listing.wait(), WAIT)  # it looks for the batch
        second = asyncio.ensure_future(_batched_text(run, options, "b"))  # it waits for that
        first.cancel()
        transport.answer.set()
        try:
            assert await asyncio.wait_for(second, WAIT) == "b"
        finally:
            await run.aclose("completed")
    assert len(fake_llm.batches.created) == 1  # its reply came from the batch found


async def test_the_exit_of_a_block_never_waits_for_the_poller_of_a_run_it_holds(
    fake_llm: FakeLLMServer,  # noqa: F811
) -> None:
    # (was: the poller, started with no owner, was the block's: its exit waited for it,
    # polling a batch that a call waited for, until the batch ended; here never)
    fake_llm.batches.hold()
    client = openai.AsyncOpenAI(base_url=fake_llm.openai_base_url, api_key="test")
    _CLIENTS.append(client)
    options = OpenAIOptions(model=MODELS["chat"], async_client=client)
    run = batch_mode().start("held", None)

    async def block() -> asyncio.Future[str]:
        async with MiniAgents():
            await run.aopen()
            waiting = asyncio.ensure_future(_batched_text(run, options, "a"))
            (batch,) = await fake_llm.batches.wait_created_async(1, WAIT)
            await until(lambda: fake_llm.batches.get(batch.id).looks > 0)  # the poller runs
        return waiting

    waiting = await asyncio.wait_for(block(), WAIT)  # (a bound on the exit's hang)
    try:
        assert not waiting.done()  # the block ended, its run's call still waiting
    finally:
        waiting.cancel()
        await asyncio.gather(waiting, return_exceptions=True)
        await run.aclose("completed")


async def test_leaving_the_loop_early_cancels_the_batches_of_the_run(
    fake_llm: FakeLLMServer,  # noqa: F811
) -> None:
    fake_llm.batches.hold()
    journal = MemoryJournal()
    mode = batch_mode(journal=journal)

    @miniagent
    async def first_done(ctx: InteractionContext) -> None:
        text = str(await ctx.message_promises)
        ctx.reply("done" if text == "quick" else llm.inquire(text))

    llm = _agent("chat", fake_llm)
    async with MiniAgents():
        run = pipeline(first_done, ["quick", "slow"], batch=mode, ordered=False)
        async with aclosing(run.__aiter__()) as results:
            assert str((await anext(results)).get()[-1]) == "done"
            await journal.await_kind("submitted")
    (batch,) = fake_llm.batches.created
    assert batch.cancel_asked
    assert journal.cleared == 1
    progress = mode.progress  # the batch is no longer counted as running
    running, done = progress.batches_running, progress.batches_done
    assert (running, done, progress.batches_cancelled) == (0, 0, 1)
    assert progress.text() == "batches 1 submitted, 0 running, 0 done, 1 cancelled, saved $0.0000"


async def test_a_loop_left_with_break_cancels_the_batches_before_the_context_exits(
    fake_llm: FakeLLMServer,  # noqa: F811
) -> None:
    fake_llm.batches.hold()
    journal = MemoryJournal()
    mode = batch_mode(journal=journal)

    @miniagent
    async def first_done(ctx: InteractionContext) -> None:
        text = str(await ctx.message_promises)
        ctx.reply("done" if text == "quick" else llm.inquire(text))

    llm = _agent("chat", fake_llm)
    async with MiniAgents():
        # no aclosing: the generator is collected at the break, and closed by the loop
        async for result in pipeline(first_done, ["quick", "slow"], batch=mode, ordered=False):
            assert str(result.get()[-1]) == "done"
            await journal.await_kind("submitted")
            break
    # the context's exit waited for the run to end, its batch mode's close included
    (batch,) = fake_llm.batches.created
    assert batch.cancel_asked
    assert journal.cleared == 1


async def test_the_file_journal_skips_a_record_cut_short_and_appends_after_it(
    tmp_path: Any,
) -> None:
    journal = FileJournal(tmp_path / "run.jsonl")
    assert await journal.aload() == []
    await journal.aappend({"kind": "submitting", "tag": "t1"})
    with journal.path.open("a", encoding="utf-8") as file:
        file.write('{"kind": "submitted", "ta')  # a crash in the middle of a write
    await journal.aappend({"kind": "abandoned", "tag": "t1"})
    assert await journal.aload() == [
        {"kind": "submitting", "tag": "t1"},
        {"kind": "abandoned", "tag": "t1"},
    ]
    await journal.aclear()
    assert not journal.path.exists()


async def test_a_second_run_of_a_pipeline_while_the_first_runs_is_refused_and_clears_nothing(
    fake_llm: FakeLLMServer,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # (was: both runs used the default journal file of the pipeline's name; the second read
    # the first's batches as its own, and the first to end deleted the file under the other)
    monkeypatch.chdir(tmp_path)  # (the default journal's folder, in the current one)
    fake_llm.reply(times=4)  # each echoes its item
    fake_llm.batches.hold()
    agent = _agent("chat", fake_llm)
    async with MiniAgents():
        first = asyncio.ensure_future(
            collect(pipeline(agent, ["a", "b"], batch=batch_mode(journal=DEFAULT)))
        )
        await fake_llm.batches.wait_created_async(1, WAIT)
        (journal_file,) = (tmp_path / "miniagents_batches").glob("*.jsonl")
        await until(lambda: '"kind":"submitted"' in journal_file.read_text())
        noted = journal_file.read_text()
        second = asyncio.ensure_future(
            collect(pipeline(agent, ["c", "d"], batch=batch_mode(journal=DEFAULT)))
        )
        await until(second.done)  # refused at its start (its batches held, it would wait)
        assert journal_file.read_text() == noted  # the first run's records, untouched
        fake_llm.batches.release()
        results = await first
        with pytest.raises(LLMConfigurationError) as caught:
            await second
    message = str(caught.value)
    assert f"Another run of the pipeline {agent.alias!r} (process {os.getpid()})" in message
    assert "BatchMode(journal='other.jsonl')" in message
    assert [str(result.get()[-1]) for result in results] == ["a", "b"]
    assert len(fake_llm.batches.created) == 1
    assert not (tmp_path / "miniagents_batches").exists()  # cleared, its lock and folder too


_HOLDING = """
import asyncio, sys
from miniagents.ext.llm.batch import FileJournal

async def main():
    hold = await FileJournal(sys.argv[1]).ahold("child")
    print("held", flush=True)
    sys.stdin.read()  # until the test closes it
    if sys.argv[2] == "release":
        await hold.arelease()

asyncio.run(main())
"""


@pytest.mark.parametrize("ending", ["release", "exit"])
async def test_a_file_journal_is_held_by_one_run_of_any_process_until_it_lets_go_or_ends(
    tmp_path: Path, ending: str
) -> None:
    journal = FileJournal(tmp_path / "run.jsonl")
    pipe = subprocess.PIPE
    with ProcessGroups() as started:  # (ended with all it started, whatever happens)
        child = started.python(  # (it prints one line, then waits for ours)
            ["-c", _HOLDING, str(journal.path), ending], ROOT, stdin=pipe, stdout=pipe
        )
        assert child.stdout is not None
        assert child.stdout.readline() == "held\n"
        with pytest.raises(LLMConfigurationError, match=rf"\(process {child.pid}\) is using"):
            await journal.ahold("pipeline")
        child.communicate("", timeout=WAIT)  # it lets go, or ends holding it (as a crash)
    assert child.returncode == 0
    assert journal.lock_path.exists() == (ending == "exit")  # a crash leaves its lock file
    hold = await journal.ahold("pipeline")  # a restart holds it at once
    with pytest.raises(LLMConfigurationError):
        await FileJournal(journal.path).ahold("pipeline")  # (this process's other runs too)
    await hold.arelease()
    await hold.arelease()  # (again: nothing)
    assert not journal.lock_path.exists()
    await (await journal.ahold("pipeline")).arelease()


class _DamagingTransport(httpx2.AsyncHTTPTransport):
    """Real HTTP to the fake server; the batch's results come back with their first three
    lines damaged: not JSON, without a ``custom_id``, without a response (or result)."""

    def __init__(self, results_path_end: str) -> None:
        super().__init__()
        self._end = results_path_end
        self.whole: list[str] = []  # the custom_id of the line left whole

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        response = await super().handle_async_request(request)
        if not request.url.path.endswith(self._end):
            return response
        lines = [json.loads(line) for line in (await response.aread()).splitlines() if line]
        self.whole.append(lines[3]["custom_id"])
        damaged = [
            "{not json",
            json.dumps({key: value for key, value in lines[1].items() if key != "custom_id"}),
            json.dumps({"custom_id": lines[2]["custom_id"]}),
            json.dumps(lines[3]),
        ]
        content = "\n".join(damaged).encode()
        return httpx2.Response(
            200, headers={"content-type": "application/octet-stream"}, content=content + b"\n"
        )


@pytest.mark.parametrize("api", ["chat", "anthropic"])
async def test_a_damaged_line_of_the_results_fails_its_request_alone(
    api: Api,
    fake_llm: FakeLLMServer,  # noqa: F811
    caplog: pytest.LogCaptureFixture,
) -> None:
    # a results line that is not JSON, has no custom_id, or has no response: its request
    # fails (an LLMBatchError), the others keep their replies; the skipped lines are logged
    # naming the batch and the line
    transport = _DamagingTransport("/content" if api == "chat" else "/results")
    http = httpx2.AsyncClient(transport=transport)
    if api == "anthropic":
        client: Any = anthropic.AsyncAnthropic(
            base_url=fake_llm.anthropic_base_url, api_key="test", http_client=http
        )
        agent: MiniAgent[..., Any] = anthropic_agent.fork(async_client=client, model=MODELS[api])
    else:
        client = openai.AsyncOpenAI(
            base_url=fake_llm.openai_base_url, api_key="test", http_client=http
        )
        agent = openai_agent.fork(async_client=client, model=MODELS[api])
    _CLIENTS.append(client)
    fake_llm.reply(times=4)  # each echoes its item
    items = ["It is A.", "It is B.", "It is C.", "It is D."]
    with caplog.at_level(logging.WARNING, logger="miniagents"):
        results = await run_batched(agent, items, batch_mode(retry="none"))

    (batch,) = fake_llm.batches.created
    (whole,) = set(transport.whole)  # (read once)
    owners = {
        item: next(req.custom_id for req in batch.requests if item in json.dumps(req.body))
        for item in items
    }
    for item, result in zip(items, results, strict=True):
        if owners[item] == whole:
            assert str(result.get()[-1]) == item
            continue
        assert isinstance(result.error, LLMBatchError)
        assert (result.error.reason, result.error.batch_id) == ("failed", batch.id)
    assert sum(result.error is None for result in results) == 1
    errors = " ".join(str(result.error) for result in results if result.error is not None)
    assert f"line 3 of the {'file' if api == 'chat' else 'results'}" in errors
    skipped = [record.getMessage() for record in caplog.records if "skipped line" in record.message]
    assert [message.split(":")[0].split(" of ")[0] for message in skipped] == [
        "Batch mode skipped line 1",
        "Batch mode skipped line 2",
    ]
    assert all(batch.id in message for message in skipped)


@pytest.mark.parametrize("journal", [123, object(), b"journal.jsonl"])
def test_a_journal_that_is_no_path_nor_run_journal_is_refused_at_once(journal: object) -> None:
    # (was: accepted, to be used as a RunJournal only when a batched run opened it)
    with pytest.raises(LLMConfigurationError, match=r"^BatchMode's journal must be a file path"):
        BatchMode(journal=journal)  # type: ignore[arg-type]


class _NoteOfBatchFails(MemoryJournal):
    """A journal whose write of a batch's id fails (a full disk, say), once."""

    async def aappend(self, record: Mapping[str, object]) -> None:
        if record["kind"] == "submitted" and "submitted" not in self.failed:
            self.failed.append("submitted")
            raise OSError(28, "No space left on device")
        await super().aappend(record)

    failed: list[str]

    def __init__(self) -> None:
        super().__init__()
        self.failed = []


async def test_a_batch_whose_note_fails_is_waited_for_not_left_paid_for_and_lost(
    fake_llm: FakeLLMServer,  # noqa: F811
    caplog: pytest.LogCaptureFixture,
) -> None:
    # (was: every call of the batch failed with the journal's OSError, and the batch made
    # at the provider, paid for, was never looked at again nor cancelled: its replies lost)
    journal = _NoteOfBatchFails()
    with caplog.at_level(logging.WARNING, logger="miniagents"):
        results = await run_batched(
            _agent("chat", fake_llm), ["a", "b"], batch_mode(journal=journal)
        )
    assert [str(result.get()[-1]) for result in results] == ["a", "b"]
    assert len(fake_llm.batches.created) == 1
    assert journal.failed == ["submitted"]
    (warning,) = [
        record for record in caplog.records if "could not note the batch" in record.message
    ]
    assert "wait for it all the same" in warning.getMessage()


async def test_a_batch_reply_saves_what_the_model_that_answered_would_have_cost_live(
    fake_llm: FakeLLMServer,  # noqa: F811
) -> None:
    # Asked "gpt-4o", answered "gpt-4o-2024-05-13" (a dated model, priced apart): the savings
    # are the answered model's live price less its batch price, as the reply's own cost is.
    # (was: priced at the model asked for, 0.00175 saved where 0.00325 was)
    fake_llm.reply(usage=(1000, 100), model="gpt-4o-2024-05-13")
    mode = batch_mode()
    (result,) = await run_batched(_agent("chat", fake_llm, model="gpt-4o"), ["a"], mode)
    (reply,) = result.get()
    assert reply.usage is not None
    usage = reply.usage
    dated_live = cost_usd("gpt-4o-2024-05-13", usage, "openai")
    dated_batch = cost_usd("gpt-4o-2024-05-13", usage, "openai", batch=True)
    assert dated_live is not None
    assert dated_batch is not None
    assert usage.cost_usd == pytest.approx(dated_batch)
    assert mode.progress.saved_usd == pytest.approx(dated_live - dated_batch)
    assert mode.progress.saved_usd != pytest.approx(
        (cost_usd("gpt-4o", usage, "openai") or 0.0)
        - (cost_usd("gpt-4o", usage, "openai", batch=True) or 0.0)
    )


class _NegativeCount:
    """A route after the batch's that answers with a count that is no count (a server's
    misreport, which the fake server refuses to send)."""

    rank = 20

    def llm_call(
        self, provider: object, call: LLMCall, options: object, proceed: object
    ) -> AsyncIterator[LLMEvent]:
        return self._events()

    async def _events(self) -> AsyncIterator[LLMEvent]:
        yield "misreported"
        yield Finish("stop", -5, 100)


async def test_a_batch_reply_with_a_negative_count_is_not_priced_into_the_savings() -> None:
    # A negative count is unknown (pricing.reported_usage): no price, no savings, the reply
    # kept. (was: priced as it was, and the price table's ValueError failed the call)
    mode = batch_mode()
    client = openai.AsyncOpenAI(base_url="http://127.0.0.1:9/v1", api_key="test")
    _CLIENTS.append(client)
    agent = openai_agent.fork(async_client=client, model="gpt-4o")
    with route_llm_calls(_NegativeCount()):
        (result,) = await run_batched(agent, ["a"], mode)
    (reply,) = result.get()
    assert str(reply) == "misreported"
    assert reply.usage is not None
    assert (reply.usage.input_tokens, reply.usage.output_tokens) == (None, 100)
    assert mode.progress.saved_usd == 0.0
