"""The call cache: a call's recorded reply replayed token by token, typed as the live one, at no
cost; modes, stores, invalidation, identical calls in flight, misses that name the change."""

from __future__ import annotations

import asyncio
import difflib
import gc
import random
import sqlite3
import sys
import threading
import time
import warnings
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, cast

import anthropic
import openai
import pytest

from miniagents import MiniAgents, pipeline
from miniagents.ext.llm.anthropic import AnthropicMessage, anthropic_agent
from miniagents.ext.llm.batch import BatchMode
from miniagents.ext.llm.cache import (
    CacheStats,
    CallCache,
    MemoryCallStore,
    RecordedCall,
    SQLiteCallStore,
    canonical_request,
    request_key,
)
from miniagents.ext.llm.errors import (
    LLMCacheFileError,
    LLMCacheLockedError,
    LLMCacheMissError,
    LLMConfigurationError,
    LLMRequestError,
)
from miniagents.ext.llm.messages import LLMToolCallMessage, LLMToolResultMessage
from miniagents.ext.llm.offline import offline_agent
from miniagents.ext.llm.openai import OpenAIMessage, openai_agent
from miniagents.ext.llm.pricing import cost_usd
from miniagents.ext.llm.prompt import PromptText
from miniagents.ext.llm.provider import Finish, LLMCall
from miniagents.ext.llm.usage import Budget, charged_to, usage_totals
from miniagents.messages.image import ImagePart
from miniagents.miniagents import MiniAgent
from miniagents.testing import FakeLLMServer, ToolCall
from tests.ext.llm.natives import BEDROCK, GEMINI, Native
from tests.fakes.fixtures import WAIT, fake_llm  # noqa: F401
from tests.fakes.tracing import Traces, traces  # noqa: F401
from tests.subprocesses import outputs_by_hash_seed

_CLIENTS: list[Any] = []


@pytest.fixture(autouse=True)
async def _close_clients() -> AsyncIterator[None]:
    yield
    while _CLIENTS:
        await _CLIENTS.pop().close()


def _openai(server: FakeLLMServer, **options: Any) -> MiniAgent[..., Any]:
    client = openai.AsyncOpenAI(base_url=server.openai_base_url, api_key="test", max_retries=0)
    _CLIENTS.append(client)
    options.setdefault("model", "gpt-4o-mini")
    return openai_agent.fork(async_client=client, **options)


def _anthropic(server: FakeLLMServer, **options: Any) -> MiniAgent[..., Any]:
    client = anthropic.AsyncAnthropic(base_url=server.anthropic_base_url, api_key="test")
    _CLIENTS.append(client)
    return anthropic_agent.fork(model="claude-haiku-4-5", async_client=client, **options)


def _calls(server: FakeLLMServer) -> int:
    return sum(request.path.endswith(("/completions", "/messages")) for request in server.requests)


async def _tokens(agent: MiniAgent[..., Any], prompt: str) -> tuple[list[str], Any]:
    """The tokens of the reply's answer as a reader sees them, and the answer."""
    reply = agent.inquire(prompt)
    async for promise in reply:
        tokens = [token async for token in promise]
        answer = await promise
    return tokens, answer


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
async def test_a_recorded_call_is_replayed_token_by_token_typed_as_live_at_no_cost(
    provider: str,
    fake_llm: FakeLLMServer,  # noqa: F811
) -> None:
    fake_llm.reply(["It ", "is ", "five."], usage=(1000, 100))
    agent = _openai(fake_llm) if provider == "openai" else _anthropic(fake_llm)
    cache = CallCache(MemoryCallStore())
    async with MiniAgents():
        with cache.active():
            live_tokens, live = await _tokens(agent, "2 + 3?")
            tokens, replayed = await _tokens(agent, "2 + 3?")
        totals = usage_totals()
    assert _calls(fake_llm) == 1
    assert tokens == live_tokens == ["It ", "is ", "five."]
    assert (
        type(replayed)
        is type(live)
        is (OpenAIMessage if provider == "openai" else AnthropicMessage)
    )
    assert replayed.finish_reason == live.finish_reason
    assert replayed.usage is not None
    assert live.usage is not None
    assert (replayed.usage.input_tokens, replayed.usage.output_tokens) == (1000, 100)
    assert replayed.usage.cost_usd == 0.0
    assert live.usage.cost_usd is not None
    assert live.usage.cost_usd > 0
    assert totals.cost_usd == pytest.approx(live.usage.cost_usd)  # the replay added no cost
    assert cache.stats.hits == 1
    assert cache.stats.misses == 1
    assert cache.stats.recorded == 1


@pytest.mark.parametrize("native", [GEMINI, BEDROCK], ids=["gemini", "bedrock"])
async def test_a_call_of_any_provider_is_replayed_typed_as_live_at_no_cost(
    native: Native,
    fake_llm: FakeLLMServer,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    native.environment(fake_llm, monkeypatch)
    fake_llm.reply(["It ", "is ", "five."], usage=(1000, 100))
    cache = CallCache(MemoryCallStore())
    async with MiniAgents():
        with cache.active():
            live = await native.ask("2 + 3?")
            requests = len(fake_llm.requests)
            replayed = await native.ask("2 + 3?")
    assert len(fake_llm.requests) == requests  # no request for the replay
    assert (live[-1].text, replayed[-1].text) == ("It is five.", "It is five.")
    assert type(replayed[-1]) is type(live[-1]) is native.message_class
    assert replayed[-1].usage is not None
    assert live[-1].usage is not None
    assert (replayed[-1].usage.input_tokens, replayed[-1].usage.output_tokens) == (1000, 100)
    assert replayed[-1].usage.cost_usd == 0.0
    assert live[-1].usage.cost_usd is not None
    assert live[-1].usage.cost_usd > 0
    assert (cache.stats.hits, cache.stats.recorded) == (1, 1)


async def test_a_tool_loop_is_replayed_call_by_call_and_its_tools_run_again(
    fake_llm: FakeLLMServer,  # noqa: F811
) -> None:
    ran: list[tuple[int, int]] = []

    def add(a: int, b: int) -> int:
        """Add two numbers."""
        ran.append((a, b))
        return a + b

    fake_llm.reply(tool_calls=[ToolCall("add", {"a": 2, "b": 3}, id="c1")])
    fake_llm.reply(["It is 5."])
    agent = _openai(fake_llm, tools=[add])
    cache = CallCache(MemoryCallStore())
    async with MiniAgents():
        with cache.active():
            live = await agent.inquire("2 + 3?")
            replayed = await agent.inquire("2 + 3?")
    assert _calls(fake_llm) == 2  # the live run's two calls; none for the replay
    assert [type(message) for message in replayed] == [type(message) for message in live]
    assert isinstance(replayed[0], LLMToolCallMessage)
    assert replayed[0].call_id == "c1"
    assert isinstance(replayed[1], LLMToolResultMessage)
    assert str(replayed[1]) == "5"
    assert str(replayed[2]) == "It is 5."
    assert ran == [(2, 3), (2, 3)]
    assert cache.stats.hits == 2


async def test_a_replay_only_cache_names_the_nearest_recording_and_the_change(
    fake_llm: FakeLLMServer,  # noqa: F811
) -> None:
    agent = _openai(fake_llm, system="Answer in French.")
    store = MemoryCallStore()
    async with MiniAgents():
        with CallCache(store).active():
            await agent.inquire("What is the capital of Spain?")
        with CallCache(store, mode="replay").active():
            replayed = await agent.inquire("What is the capital of Spain?")
            with pytest.raises(LLMCacheMissError) as caught:
                await agent.inquire("What is the capital of Italy?")
    assert str(replayed[-1]) == "What is the capital of Spain?"  # (the fake echoes)
    assert _calls(fake_llm) == 1  # the miss made no request
    error = caught.value
    assert error.nearest is not None
    assert error.nearest != error.key
    assert '-   "text": "What is the capital of Spain?"' in error.diff
    assert '+   "text": "What is the capital of Italy?"' in error.diff
    assert error.diff in str(error)
    assert "mode 'record' or 'read_through'" in str(error)


def _pages(seed: int) -> str:
    """A few pages of text (some 20,000 characters), its words as frequent as a language's."""
    words = [f"word{rank}" for rank in range(3000)]
    weights = [1 / (rank + 1) for rank in range(3000)]
    return " ".join(random.Random(seed).choices(words, weights, k=3000))


async def test_a_replay_only_miss_among_long_recordings_is_told_off_the_loop_word_by_word(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # (was: the call was compared with each recording character by character, on the
    # loop: two prompts of a few pages took half a minute, so a suite with long prompts
    # held its loop for minutes at a miss, before it was told)
    from miniagents.ext.llm.cache import calls as cache_calls
    from miniagents.ext.llm.cache import keys as cache_keys
    from miniagents.ext.llm.openai import OpenAIOptions, OpenAIProvider

    provider = OpenAIProvider()
    options = OpenAIOptions(model="gpt-4o-mini")

    def call(text: str) -> LLMCall:
        prompt = (PromptText("user", text),)
        return LLMCall(model="gpt-4o-mini", stream=True, system=None, messages=prompt)

    made: list[LLMCall] = []

    async def live(given: LLMCall, _options: object) -> AsyncIterator[Any]:
        made.append(given)
        yield Finish("stop")

    compared_in: set[int] = set()  # the threads the comparisons ran in
    compared_lengths: list[int] = []  # the lengths of the sequences compared

    def similarity(request: Any, other: Any) -> float:
        compared_in.add(threading.get_ident())
        return cache_keys.similarity(request, other)

    class Matcher(difflib.SequenceMatcher[str]):
        def set_seqs(self, a: Any, b: Any) -> None:
            compared_lengths.extend((len(a), len(b)))
            super().set_seqs(a, b)

    monkeypatch.setattr(cache_calls, "similarity", similarity)
    monkeypatch.setattr(difflib, "SequenceMatcher", Matcher)
    store = MemoryCallStore()
    for seed in range(4):
        request = canonical_request(provider, call(_pages(seed)))
        await store.aput(
            RecordedCall(request_key(request), request, ("...", Finish("stop")), time.time())
        )
    changed = _pages(2).replace("word7 ", "word8 ", 5)
    with pytest.raises(LLMCacheMissError) as caught:
        async for _event in CallCache(store, mode="replay").llm_call(
            provider, call(changed), options, live
        ):
            pass
    nearest = canonical_request(provider, call(_pages(2)))
    assert caught.value.nearest == request_key(nearest)
    assert made == []  # (replay only: no call made)
    assert compared_in
    assert threading.get_ident() not in compared_in  # (never on the loop)
    # word by word: some 6,000 words and spaces, where the characters were over 20,000
    assert compared_lengths
    assert max(compared_lengths) < len(_pages(2)) / 2


async def test_a_memory_store_finds_the_candidates_of_a_miss_without_comparing_recordings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # (was: each recording was looked for in the list of those alike, compared one by one
    # with them: the square of the count, half a minute for 20,000 recordings)
    compared: list[object] = []

    def equal(self: RecordedCall, other: object) -> bool:
        compared.append(other)
        return self is other

    store = MemoryCallStore(max_entries=None)
    for number in range(2_000):
        model = "gpt-4o-mini" if number % 2 else "gpt-4o"
        request = {"provider": "openai", "model": model, "messages": [number]}
        await store.aput(RecordedCall(f"k{number}", request, ("...", Finish("stop")), 0.0))
    monkeypatch.setattr(RecordedCall, "__eq__", equal)
    candidates = await store.acandidates("openai", "gpt-4o-mini", 3)
    assert compared == []  # (one pass: a full store's search was 10,000 squared comparisons)
    assert [each.key for each in candidates] == ["k1999", "k1997", "k1995"]
    others = await store.acandidates("openai", "claude", 2)
    assert [each.key for each in others] == ["k1999", "k1998"]  # none alike: the latest


async def test_a_replay_only_cache_without_recordings_says_so() -> None:
    agent = openai_agent.fork(model="gpt-4o-mini", async_client=None)
    async with MiniAgents():
        with (
            CallCache(MemoryCallStore(), mode="replay").active(),
            pytest.raises(
                LLMCacheMissError, match=r"It has no recording at all\. Record"
            ) as caught,
        ):
            await agent.inquire("hi")  # no key in the environment, and no request made
    assert caught.value.nearest is None
    assert caught.value.diff == ""


def test_a_cache_refuses_a_store_class_for_a_store_object() -> None:
    with pytest.raises(LLMConfigurationError, match=r"CallCache\(MemoryCallStore\(\)\)"):
        CallCache(MemoryCallStore)  # type: ignore[arg-type]


async def test_record_mode_makes_every_call_and_keeps_the_latest_reply(
    fake_llm: FakeLLMServer,  # noqa: F811
) -> None:
    fake_llm.reply(["old"])
    fake_llm.reply(["new"])
    agent = _openai(fake_llm)
    store = MemoryCallStore()
    async with MiniAgents():
        with CallCache(store, mode="record").active():
            await agent.inquire("q")
            await agent.inquire("q")
        with CallCache(store, mode="replay").active():
            replayed = await agent.inquire("q")
    assert _calls(fake_llm) == 2
    assert str(replayed[-1]) == "new"
    assert len(store) == 1


async def test_a_failed_call_is_not_recorded(fake_llm: FakeLLMServer) -> None:  # noqa: F811
    fake_llm.fail(400, message="No.")
    fake_llm.reply(["yes"])
    agent = _openai(fake_llm)
    cache = CallCache(MemoryCallStore())
    async with MiniAgents():
        with cache.active():
            with pytest.raises(LLMRequestError):
                await agent.inquire("q")
            again = await agent.inquire("q")
    assert str(again[-1]) == "yes"
    assert _calls(fake_llm) == 2
    assert cache.stats.recorded == 1


async def test_two_identical_calls_in_flight_make_one_request(
    fake_llm: FakeLLMServer,  # noqa: F811
) -> None:
    fake_llm.reply(["shared ", "reply"], pause_after=1)
    agent = _openai(fake_llm)
    cache = CallCache(MemoryCallStore())
    async with MiniAgents():
        with cache.active():
            first = agent.inquire("same")
            second = agent.inquire("same")
            first.start()
            second.start()
            paused = await fake_llm.wait_paused_async(0, WAIT)
            paused.resume()
            one, two = await asyncio.wait_for(asyncio.gather(first, second), WAIT)
    assert str(one[-1]) == str(two[-1]) == "shared reply"
    assert _calls(fake_llm) == 1
    assert cache.stats.shared == 1
    assert cache.stats.misses == 1


async def test_three_identical_calls_in_flight_all_get_the_reply(
    fake_llm: FakeLLMServer,  # noqa: F811
) -> None:
    # (was: each waiter put a fresh event in place of the one it woke on, so a second waiter
    # could replace the event the first was waiting on already: nobody set it, and the
    # first waited for ever)
    fake_llm.reply(["shared ", "reply ", "in ", "parts"], pause_after=1)
    agent = _openai(fake_llm)
    cache = CallCache(MemoryCallStore())
    async with MiniAgents():
        with cache.active():
            replies = [agent.inquire("same") for _ in range(3)]
            for reply in replies:
                reply.start()
            paused = await fake_llm.wait_paused_async(0, WAIT)
            paused.resume()
            answers = await asyncio.wait_for(asyncio.gather(*replies), WAIT)
    assert [str(answer[-1]) for answer in answers] == ["shared reply in parts"] * 3
    assert _calls(fake_llm) == 1
    assert (cache.stats.misses, cache.stats.shared) == (1, 2)


def test_identical_calls_in_two_threads_event_loops_make_one_request_each(
    fake_llm: FakeLLMServer,  # noqa: F811
) -> None:
    # (was: the second waited on the first's flight, an asyncio event of another loop, set
    # from the other thread: not thread-safe, and it never made its own request)
    fake_llm.reply(["first ", "reply"], pause_after=1)
    fake_llm.reply(["second reply"])
    cache = CallCache(MemoryCallStore())
    answers: dict[str, object] = {}

    def run(name: str) -> None:
        async def call() -> str:
            client = openai.AsyncOpenAI(base_url=fake_llm.openai_base_url, api_key="test")
            async with client, MiniAgents():
                agent = openai_agent.fork(model="gpt-4o-mini", async_client=client)
                return str((await agent.inquire("same"))[-1])

        try:
            answers[name] = asyncio.run(call())
        except Exception as error:  # (shown by the assertion below)
            answers[name] = error

    remove = cache.install()
    threads = [threading.Thread(target=run, args=(name,)) for name in ("first", "second")]
    try:
        threads[0].start()
        paused = fake_llm.wait_paused(0, WAIT)  # the first call is in flight
        threads[1].start()
        try:
            fake_llm.wait_requests(2, WAIT)  # the second made its own
        finally:
            paused.resume()
            for thread in threads:
                thread.join(WAIT)
    finally:
        remove()
    assert answers == {"first": "first reply", "second": "second reply"}
    assert (cache.stats.misses, cache.stats.shared) == (2, 0)


def test_the_counts_are_exact_when_the_event_loops_of_many_threads_share_the_cache() -> None:
    # (the counts were bare `+= 1`s; CPython 3.11's GIL switches threads at no point inside
    # one, so this passed before the lock too: it keeps them exact where a switch can land)
    from miniagents.ext.llm.openai import OpenAIOptions, OpenAIProvider

    provider = OpenAIProvider()
    options = OpenAIOptions(model="gpt-4o-mini")
    cache = CallCache(MemoryCallStore())
    threads_count, calls = 6, 150

    async def live(call: LLMCall, _options: object) -> AsyncIterator[Any]:
        yield f"answer to {call.messages!r}"
        yield Finish("stop")

    async def ask_twice(thread: int) -> None:
        for _ in range(2):  # each call made (a miss, recorded), then replayed (a hit)
            for number in range(calls):
                prompt = (PromptText("user", f"thread {thread}, question {number}"),)
                call = LLMCall(model="gpt-4o-mini", stream=True, system=None, messages=prompt)
                async for _event in cache.llm_call(provider, call, options, live):
                    pass

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as CPython does
    try:
        threads = [
            threading.Thread(target=asyncio.run, args=(ask_twice(thread),))
            for thread in range(threads_count)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(WAIT)
    finally:
        sys.setswitchinterval(interval)
    made = threads_count * calls
    assert cache.stats == CacheStats(hits=made, misses=made, recorded=made, shared=0)


async def test_a_made_call_its_reader_closes_part_way_is_closed_at_once_in_its_task() -> None:
    # (was: closing the cache's events part-way left the call it made (the provider's reply,
    # holding the SDK's request) open at its yield; the garbage collector's hook closed it
    # later, in a task of its own, its connection held until then)
    from miniagents.ext.llm.openai import OpenAIOptions, OpenAIProvider

    closed_in: list[asyncio.Task[Any] | None] = []

    async def live(_call: LLMCall, _options: object) -> AsyncIterator[Any]:
        try:
            yield "the first token"
            yield Finish("stop")
        finally:
            closed_in.append(asyncio.current_task())

    prompt = (PromptText("user", "Stop me part-way."),)
    call = LLMCall(model="gpt-4o-mini", stream=True, system=None, messages=prompt)
    cache = CallCache(MemoryCallStore())
    events = cache.llm_call(OpenAIProvider(), call, OpenAIOptions(model="gpt-4o-mini"), live)
    assert await anext(events) == "the first token"
    await cast(Any, events).aclose()
    assert closed_in == [asyncio.current_task()]  # (was: [], closed later elsewhere)
    assert (cache.stats.misses, cache.stats.recorded) == (1, 0)


async def test_a_call_waiting_for_an_identical_one_that_fails_makes_it_itself(
    fake_llm: FakeLLMServer,  # noqa: F811
) -> None:
    fake_llm.fail(500)
    fake_llm.reply(["second try"])
    agent = _openai(fake_llm)
    cache = CallCache(MemoryCallStore())
    async with MiniAgents():
        with cache.active():
            first = agent.inquire("same")
            second = agent.inquire("same")
            first.start()
            second.start()
            results = await asyncio.wait_for(
                asyncio.gather(first, second, return_exceptions=True), WAIT
            )
    assert isinstance(results[0], Exception)
    assert str(results[1][-1]) == "second try"  # type: ignore[index]
    assert _calls(fake_llm) == 2


async def test_an_old_recording_or_another_namespace_is_a_miss(
    fake_llm: FakeLLMServer,  # noqa: F811
) -> None:
    fake_llm.reply(["fresh"], times=2)
    agent = _openai(fake_llm)
    store = MemoryCallStore()
    call = LLMCall(
        model="gpt-4o-mini", stream=True, system=None, messages=(PromptText("user", "q"),)
    )
    provider = openai_agent_provider()
    request = canonical_request(provider, call)
    old = RecordedCall(request_key(request), request, ("stale", Finish("stop")), time.time() - 100)
    await store.aput(old)
    async with MiniAgents():
        with CallCache(store).active():  # no max_age: the old one is good
            assert str((await agent.inquire("q"))[-1]) == "stale"
        with CallCache(store, max_age=10).active():
            assert str((await agent.inquire("q"))[-1]) == "fresh"
        with CallCache(store, namespace="v2").active():
            assert str((await agent.inquire("q"))[-1]) == "fresh"
    assert _calls(fake_llm) == 2


def openai_agent_provider() -> object:
    from miniagents.ext.llm.openai import OpenAIProvider

    return OpenAIProvider()


def test_the_key_is_the_request_not_how_it_is_streamed_nor_its_option_order() -> None:
    provider = openai_agent_provider()
    image = ImagePart(data=b"\x89PNG\r\n\x1a\n" + b"\0" * 16)
    messages = (PromptText("user", "What is it?", (image,)),)
    one = LLMCall("m", True, "sys", messages, {"temperature": 0.1, "max_tokens": 5})
    two = LLMCall("m", False, "sys", messages, {"max_tokens": 5, "temperature": 0.1})
    other = LLMCall("m", True, "sys", messages, {"max_tokens": 6, "temperature": 0.1})
    key = request_key(canonical_request(provider, one))
    assert key == request_key(canonical_request(provider, two))
    assert key != request_key(canonical_request(provider, other))
    assert key != request_key(canonical_request(provider, one), namespace="other")
    shown = canonical_request(provider, one)["messages"][0]["images"][0]
    assert set(shown) == {"media_type", "detail", "sha256"}  # the bytes hashed, not kept
    secret = LLMCall("m", True, None, messages, {"extra_headers": {"x-api-key": "sk-secret"}})
    other = LLMCall("m", True, None, messages, {"extra_headers": {"x-api-key": "sk-other"}})
    request = canonical_request(provider, secret)
    assert "sk-secret" not in str(request)  # kept as a hash
    assert request_key(request) != request_key(canonical_request(provider, other))


async def test_a_sqlite_store_keeps_the_recordings_for_another_cache(
    tmp_path: Path,
    fake_llm: FakeLLMServer,  # noqa: F811
) -> None:
    path = tmp_path / "calls.sqlite"
    agent = _openai(fake_llm)
    async with MiniAgents():
        with CallCache(path).active():
            await agent.inquire("kept?")
        store = SQLiteCallStore(path)
        try:
            with CallCache(store, mode="replay").active():
                replayed = await agent.inquire("kept?")
            assert len(await store.acandidates("openai", "gpt-4o-mini", 10)) == 1
            await CallCache(store).aclear()
            assert await store.acandidates("openai", "gpt-4o-mini", 10) == []
        finally:
            store.close()
    assert str(replayed[-1]) == "kept?"
    assert _calls(fake_llm) == 1


async def test_a_sqlite_file_that_cannot_be_opened_is_our_error_naming_the_file(
    tmp_path: Path,
) -> None:
    # (was: sqlite3.OperationalError: unable to open database file, from the agent's reply)
    store = SQLiteCallStore(tmp_path)  # a folder, not a file
    try:
        with pytest.raises(LLMCacheFileError, match=r"Cannot open the call cache's file .*"):
            await store.aget("k1")
    finally:
        store.close()
    offline = offline_agent.fork(token_delay=0)
    async with MiniAgents():
        with CallCache(tmp_path).active(), pytest.raises(LLMCacheFileError, match="not a folder"):
            await offline.inquire("x")


@pytest.mark.parametrize("max_entries", [0, -1, "5", 2.5])
def test_a_memory_store_refuses_a_max_entries_that_is_not_a_count(max_entries: object) -> None:
    # (was: accepted; at the first recording -1 raised KeyError: 'dictionary is empty' and
    # "5" a TypeError of its comparison, each failing the agent's reply)
    refused = r"^MemoryCallStore needs max_entries to be a whole number of at least 1; got "
    with pytest.raises(LLMConfigurationError, match=refused):
        MemoryCallStore(max_entries=max_entries)  # type: ignore[arg-type]


async def test_a_sqlite_store_nobody_closes_closes_its_file_when_it_goes(tmp_path: Path) -> None:
    """A store left to the collector (a ``CallCache(path)`` nobody closes) closes its file:
    an open one, collected, is a ``ResourceWarning`` on Python 3.13, and a lost write-ahead
    log on every version until the process ends."""
    path = tmp_path / "calls.sqlite"
    store = SQLiteCallStore(path)
    await store.aclear()  # (opens it)
    # the executor's thread that ran it may still hold the call's bound method (the store)
    # for a moment after the result came back: wait for it to let go
    await asyncio.get_running_loop().shutdown_default_executor()
    log = path.with_name(path.name + "-wal")
    assert log.exists()  # open: its write-ahead log beside it
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        del store
        gc.collect()
    assert not log.exists()  # closed: the last connection checkpoints and removes its log
    assert [w for w in caught if issubclass(w.category, ResourceWarning)] == []


async def test_a_replayed_call_is_marked_cached_in_its_span(
    traces: Traces,  # noqa: F811
    fake_llm: FakeLLMServer,  # noqa: F811
) -> None:
    agent = _openai(fake_llm)
    async with MiniAgents():
        with CallCache(MemoryCallStore()).active():
            await agent.inquire("traced")
            await agent.inquire("traced")
    live, replayed = traces.named("chat gpt-4o-mini")
    assert live.attributes is not None
    assert replayed.attributes is not None
    assert "miniagents.llm.cached" not in live.attributes
    assert replayed.attributes["miniagents.llm.cached"] is True
    assert (
        replayed.attributes["gen_ai.usage.input_tokens"]
        == live.attributes["gen_ai.usage.input_tokens"]
    )


async def test_a_budget_counts_a_replayed_calls_tokens_at_no_cost(
    fake_llm: FakeLLMServer,  # noqa: F811
) -> None:
    fake_llm.reply(["x"], usage=(1000, 100))
    agent = _openai(fake_llm)
    budget = Budget()
    async with MiniAgents():
        with CallCache(MemoryCallStore()).active(), charged_to(budget):
            live = await agent.inquire("q")
            await agent.inquire("q")
    price = cost_usd("gpt-4o-mini", live[-1].usage, "openai")
    assert budget.usage.requests == 2
    assert budget.usage.input_tokens == 2000
    assert budget.usage.cost_usd == pytest.approx(price)


async def test_a_cached_batch_pipeline_replays_instead_of_queueing(
    fake_llm: FakeLLMServer,  # noqa: F811
) -> None:
    agent = _openai(fake_llm)
    cache = CallCache(MemoryCallStore())
    items = ["a", "b"]

    async def run() -> list[str]:
        mode = BatchMode(poll_interval=0.005, max_wait=3600, idle_wait=0, journal=None)
        async with MiniAgents():
            with cache.active():
                return [
                    str(result.get()[-1])
                    async for result in pipeline(agent, items, batch=mode, max_concurrency=2)
                ]

    assert await run() == items
    assert await run() == items
    assert len(fake_llm.batches.created) == 1  # the second run replayed both calls
    assert cache.stats.hits == 2


def test_a_cache_refuses_arguments_it_cannot_work_with() -> None:
    from miniagents.ext.llm.errors import LLMConfigurationError

    with pytest.raises(LLMConfigurationError, match="mode"):
        CallCache(MemoryCallStore(), mode="sometimes")  # type: ignore[arg-type]
    with pytest.raises(LLMConfigurationError, match="max_age"):
        CallCache(MemoryCallStore(), max_age=0)
    with pytest.raises(LLMConfigurationError, match="store"):
        CallCache(42)  # type: ignore[arg-type]


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_a_cache_given_no_store_keeps_its_recordings_in_the_default_file(in_tmp: Path) -> None:
    cache = CallCache()
    assert isinstance(cache.store, SQLiteCallStore)
    assert cache.store.path == Path("miniagents_llm_calls.sqlite")


def test_a_recorded_calls_thought_signature_is_kept() -> None:
    from miniagents.ext.llm.cache.stores import events_from_json, events_to_json
    from miniagents.ext.llm.provider import ToolCallStart

    signed = ToolCallStart("call_0", "get_weather", thought_signature="c2ln")
    assert events_from_json(events_to_json([signed])) == (signed,)
    assert events_to_json([ToolCallStart("c1", "add")]) == [["call", "c1", "add"]]
    assert events_from_json([["call", "c1", "add"]]) == (ToolCallStart("c1", "add"),)  # (older)


async def test_a_recorded_calls_audio_tokens_are_kept_through_a_store_file(tmp_path: Path) -> None:
    # (was: read back as a dict, not an AudioTokens, and priced so by no one)
    from miniagents.ext.llm.cache.stores import events_from_json
    from miniagents.ext.llm.provider import AudioTokens

    heard = Finish("stop", 30, 10, 5, model="gpt-audio", audio=AudioTokens(20, 8, None))
    store = SQLiteCallStore(tmp_path / "calls.sqlite")
    await store.aput(RecordedCall("k", {"model": "gpt-audio"}, ("Hi.", heard), 1.0))
    found = await store.aget("k")
    assert found is not None
    assert found.events == ("Hi.", heard)
    older = [["finish", {"reason": "stop", "input_tokens": 3}]]  # (written before audio)
    assert events_from_json(older) == (Finish("stop", 3),)
    with pytest.raises(LLMConfigurationError, match="cannot read"):
        events_from_json([["finish", {"reason": "stop", "audio": 20}]])


@pytest.mark.parametrize(
    "event",
    [["text"], ["call", "c1"], ["arguments", "c1"], ["refusal"], ["finish"], "text", [], 7],
    ids=repr,
)
def test_a_stored_event_missing_its_fields_is_the_stores_error_naming_the_fix(event: Any) -> None:
    # (was: a bare IndexError, or a TypeError, from deep in the read)
    from miniagents.ext.llm.cache.stores import events_from_json

    with pytest.raises(LLMConfigurationError, match=r"cannot read.*Clear it"):
        events_from_json([["text", "fine"], event])


async def test_a_recording_that_cannot_be_written_is_logged_once_and_the_calls_are_answered(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # (was: the raw sqlite3.OperationalError "database is locked", after the whole answer)
    path = tmp_path / "calls.sqlite"
    store = SQLiteCallStore(path, timeout=0.01)  # (not 30 s: the lock is held throughout)
    cache = CallCache(store)
    offline = offline_agent.fork(token_delay=0)
    await store.aget("opened")
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process writing: reads go on, writes wait
    try:
        async with MiniAgents():
            with cache.active():
                first = await offline.inquire("one")
                second = await offline.inquire("two")
    finally:
        holder.close()
        store.close()
    assert [str(reply[-1])[-13:] for reply in (first, second)] == ["You said: one", "You said: two"]
    assert cache.stats == CacheStats(hits=0, misses=2, recorded=0)
    assert [record.getMessage() for record in caplog.records] == [
        f"The call cache cannot record its calls in SQLiteCallStore({str(path)!r}) "
        f"(LLMCacheLockedError: {_locked(path, 0.01)}); their answers are delivered, "
        "unrecorded. Let the cache write its file: free it (another process may hold it "
        "locked), make room on its disk or make it writable, or give the cache another file. "
        "This is logged once for the cache."
    ]


def _locked(path: Path, timeout: float) -> str:
    return (
        f"The call cache's file {path} stayed locked by another connection (a process writing "
        f"it) past the store's timeout of {timeout:g} s: database is locked. Let the other "
        "process finish or close the file, give the store a longer wait "
        "(SQLiteCallStore(path, timeout=...)), or give the cache a file of its own."
    )


async def test_a_store_file_locked_past_its_timeout_is_our_error_naming_the_fix(
    tmp_path: Path,
) -> None:
    # (was: the raw sqlite3.OperationalError "database is locked", after SQLite's fixed 30 s)
    path = tmp_path / "calls.sqlite"
    store = SQLiteCallStore(path, timeout=0.01)
    recorded = RecordedCall(key="k", request={"provider": "p"}, events=(), recorded_at=0.0)
    await store.aput(recorded)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process writing: the store's write waits
    try:
        with pytest.raises(LLMCacheLockedError) as raised:
            await store.aput(recorded)
        assert (await store.aget("k")) == recorded  # (reads go on: WAL)
    finally:
        holder.close()
    try:
        assert str(raised.value) == _locked(path, 0.01)
        assert isinstance(raised.value, LLMCacheFileError)
        assert isinstance(raised.value.__cause__, sqlite3.OperationalError)
        await store.aput(recorded)  # free again: written
    finally:
        store.close()


@pytest.mark.parametrize("timeout", [0, -1, float("nan"), "5", True])
def test_a_sqlite_store_refuses_a_timeout_that_is_no_wait(timeout: object) -> None:
    with pytest.raises(LLMConfigurationError, match=r"^SQLiteCallStore needs timeout to be "):
        SQLiteCallStore("calls.sqlite", timeout=timeout)  # type: ignore[arg-type]


async def test_record_mode_fails_at_a_damaged_file_before_the_call_is_made(
    tmp_path: Path,
    fake_llm: FakeLLMServer,  # noqa: F811
) -> None:
    # (was: the call made, its reply streamed to the reader, then the LLMCacheFileError)
    path = tmp_path / "calls.sqlite"
    path.write_bytes(b"not a database, " * 512)
    agent = _openai(fake_llm)
    async with MiniAgents():
        with CallCache(path, mode="record").active():
            reply = agent.inquire("q")
            with pytest.raises(LLMCacheFileError, match="is not a SQLite database, or is damaged"):
                await _tokens_before_the_end(reply)
    assert _calls(fake_llm) == 0


async def test_record_mode_checks_its_store_once_and_reads_no_recording(
    fake_llm: FakeLLMServer,  # noqa: F811
) -> None:
    # (was: every call read and decoded the recording under its key, only to check the store)
    store = _Counted()
    async with MiniAgents():
        with CallCache(store, mode="record").active():
            await _openai(fake_llm).inquire("q")
            await _openai(fake_llm).inquire("q")
    assert (store.checks, store.reads, _calls(fake_llm)) == (1, 0, 2)


class _Counted(MemoryCallStore):
    """A store that counts its checks and its reads."""

    checks = reads = 0

    async def acheck(self) -> None:
        self.checks += 1

    async def aget(self, key: str) -> RecordedCall | None:
        self.reads += 1
        return await super().aget(key)


async def _tokens_before_the_end(reply: Any) -> None:
    async for promise in reply:
        async for _ in promise:
            pytest.fail("a token of a call that should not have been made")


class _FullDisk(MemoryCallStore):
    """A store whose writes fail as on a full disk."""

    async def aput(self, recorded: RecordedCall) -> None:
        raise OSError(28, "No space left on device")


class _AnnouncedLock:
    """A lock that calls ``waiting`` before each acquisition (to order two threads by it)."""

    def __init__(self, waiting: Callable[[], None]) -> None:
        self._lock = threading.Lock()
        self._waiting = waiting

    def __enter__(self) -> None:
        self._waiting()
        self._lock.acquire()

    def __exit__(self, *exc: object) -> None:
        self._lock.release()


class _RacingCache(CallCache):
    """A cache whose first thread, once it has read the flag, waits for the second to try."""

    first: threading.Thread | None = None

    def __init__(self) -> None:
        self.first_read = threading.Event()
        self.second_came = threading.Event()
        self.logged = False
        super().__init__(_FullDisk())
        self._counts_lock = cast("Any", _AnnouncedLock(self._came))

    def _came(self) -> None:
        if threading.current_thread() is not self.first:
            self.second_came.set()

    @property
    def _unwritable_logged(self) -> bool:
        logged = self.logged
        if threading.current_thread() is self.first:
            self.first_read.set()
            assert self.second_came.wait(WAIT)  # the second reads the flag, or waits for it
        else:
            self.second_came.set()
        return logged

    @_unwritable_logged.setter
    def _unwritable_logged(self, logged: bool) -> None:
        self.logged = logged


def test_two_threads_that_cannot_record_log_it_once(caplog: pytest.LogCaptureFixture) -> None:
    # (was: the flag read, then set, outside the cache's lock: both threads read it unset)
    cache = _RacingCache()
    recorded = RecordedCall(key="k", request={}, events=(), recorded_at=0.0)
    kept: list[bool] = []

    def keep() -> None:
        kept.append(asyncio.run(cache._akeep(recorded)))

    first = cache.first = threading.Thread(target=keep)
    first.start()
    assert cache.first_read.wait(WAIT)
    second = threading.Thread(target=keep)
    second.start()
    first.join(WAIT)
    second.join(WAIT)
    assert kept == [False, False]
    assert len([r for r in caplog.records if "cannot record its calls" in r.getMessage()]) == 1


_KEY_OF_A_SET = """
import dataclasses
from miniagents.ext.llm.cache import canonical_request, request_key
from miniagents.ext.llm.openai import OpenAIProvider
from miniagents.ext.llm.prompt import PromptText
from miniagents.ext.llm.provider import LLMCall

@dataclasses.dataclass
class Route:
    regions: frozenset[str]

regions = frozenset(f"region-{n}" for n in range(20))
options = {"extra_body": {"tags": {f"tag-{n}" for n in range(20)}, "route": Route(regions)}}
prompt = (PromptText("user", "Hi"),)
call = LLMCall("gpt-4o-mini", True, None, prompt, options)
print(request_key(canonical_request(OpenAIProvider(), call)))
"""


def test_a_set_or_a_dataclass_in_the_options_has_one_key_in_every_process() -> None:
    # (was: keyed by their repr, and a set's order, in its repr or in a dataclass's, changes
    # with the hash seed of each process: a recording made in one process was never
    # replayed in the next)
    assert len(outputs_by_hash_seed(_KEY_OF_A_SET)) == 1


class _Route:
    """An object of a class with no ``__repr__`` of its own: its repr names its address."""

    def __init__(self, region: str) -> None:
        self.region = region


async def test_an_option_keyed_by_its_address_is_refused_naming_the_option_and_the_fix() -> None:
    # (was: keyed by its repr, "<_Route object at 0x7f...>", another in every process: the
    # call was recorded, and its recording never replayed by the next run)
    offline = offline_agent.fork(token_delay=0, reply="live", extra_options={"route": _Route("eu")})
    cache = CallCache(MemoryCallStore())
    async with MiniAgents():
        with cache.active(), pytest.raises(LLMConfigurationError) as caught:
            await offline.inquire("q")
    message = str(caught.value)
    assert "its call option 'route' holds a _Route (<" in message
    assert "its address in memory" in message
    assert "a dataclass or a pydantic model" in message
    assert cache.stats == CacheStats()  # refused before it was made or recorded
    # canonical_request itself (not stable) still shows it, as a studio's recording does
    call = LLMCall("m", True, None, (PromptText("user", "q"),), {"route": _Route("eu")})
    assert " at 0x" in str(canonical_request(openai_agent_provider(), call))


async def test_a_call_to_the_responses_api_is_not_replayed_for_chat_completions(
    fake_llm: FakeLLMServer,  # noqa: F811
) -> None:
    # (was: the key did not name the API, so the second call replayed the first's recording)
    fake_llm.reply("from chat completions")
    fake_llm.reply("from responses")
    chat = _openai(fake_llm)
    responses = _openai(fake_llm, api="responses")
    cache = CallCache(MemoryCallStore())
    async with MiniAgents():
        with cache.active():
            assert str(await chat.inquire("q")) == "from chat completions"
            assert str(await responses.inquire("q")) == "from responses"
            assert str(await responses.inquire("q")) == "from responses"  # replayed
            assert str(await chat.inquire("q")) == "from chat completions"  # replayed
    assert [request.path.rsplit("/", 1)[-1] for request in fake_llm.requests] == [
        "completions",
        "responses",
    ]
    assert cache.stats == CacheStats(hits=2, misses=2, recorded=2)


def test_the_default_api_keeps_the_keys_of_the_recordings_made_before() -> None:
    from miniagents.ext.llm.openai import OpenAIOptions

    provider = openai_agent_provider()
    call = LLMCall("gpt-4o-mini", True, None, (PromptText("user", "Hi"),), {})
    before = request_key(canonical_request(provider, call))  # (as the key was made before)
    chat = canonical_request(provider, call, OpenAIOptions(model="gpt-4o-mini"))
    responses = canonical_request(
        provider, call, OpenAIOptions(model="gpt-4o-mini", api="responses")
    )
    assert request_key(chat) == before
    assert responses["api"] == "responses"
    assert request_key(responses) != before


async def test_a_wrong_with_is_refused_with_a_sentence_naming_cache_active() -> None:
    """``async with cache.active()``, ``with cache`` and ``async with cache`` each say the fix."""
    cache = CallCache(MemoryCallStore())
    with pytest.raises(LLMConfigurationError, match=r"with cache\.active\(\):"):
        async with cache.active():  # type: ignore[attr-defined]
            pass
    with (
        pytest.raises(LLMConfigurationError, match=r"with cache\.active\(\):"),
        cache,  # type: ignore[attr-defined]
    ):
        pass
    with pytest.raises(LLMConfigurationError, match=r"with cache\.active\(\):"):
        async with cache:  # type: ignore[attr-defined]
            pass
    with cache.active() as active:  # the plain block still works, and gives the cache
        assert active is cache


@pytest.mark.parametrize(
    "damage",
    [
        'UPDATE llm_calls SET events = \'[["text", "cut sh\'',  # (its JSON cut short)
        'UPDATE llm_calls SET events = \'[["shout", "x"]]\'',  # (an event of no kind)
        "UPDATE llm_calls SET request = '[1, 2]'",  # (a request that is no object)
        "UPDATE llm_calls SET recorded_at = 'yesterday'",
    ],
    ids=["cut", "unknown-event", "request", "recorded-at"],
)
async def test_a_damaged_recording_is_a_miss_made_again_and_rewritten_with_a_warning(
    tmp_path: Path,
    fake_llm: FakeLLMServer,  # noqa: F811
    caplog: pytest.LogCaptureFixture,
    damage: str,
) -> None:
    """A recording of the file that cannot be read is found before its reply is given: the
    call is made and recorded in its place, and a warning names the file. (It was an error,
    json's ``JSONDecodeError`` or the cache's, failing the call.)"""
    path = tmp_path / "calls.sqlite"
    agent = _openai(fake_llm)
    async with MiniAgents():
        with CallCache(path).active():
            await agent.inquire("kept?")
        with sqlite3.connect(path) as connection:
            connection.execute(damage)
        connection.close()
        with CallCache(path, mode="replay").active(), pytest.raises(LLMCacheMissError):
            await agent.inquire("kept?")
        cache = CallCache(path)
        with cache.active():
            made = await agent.inquire("kept?")
        with CallCache(path, mode="replay").active():
            replayed = await agent.inquire("kept?")  # rewritten: replayed
    assert str(made[-1]) == str(replayed[-1]) == "kept?"
    assert _calls(fake_llm) == 2
    assert (cache.stats.misses, cache.stats.recorded) == (1, 1)
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warned) == 3  # the replay's key, its nearest recording; the read-through's key
    assert warned[0].startswith(f"The call cache's store file {str(path)!r} holds a damaged ")
    assert warned[0].endswith("it is taken as a miss: the call is made and recorded in its place.")
