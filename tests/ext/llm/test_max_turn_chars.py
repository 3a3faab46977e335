"""One call of the model keeps at most ``MiniAgents(llm_max_turn_chars=...)`` characters.

A provider (or a proxy) that streams without end would fill the memory with the reply's
text or a tool call's arguments, and the stall timeout never fires while pieces keep
coming: past the bound the call is stopped with an ``LLMResponseError``, its HTTP stream
closed. Against the fake server with the real SDKs (OpenAI Chat Completions, the Responses
API, Anthropic Messages), each reply hanging after its pieces, as one that never ends. The
thinking that Anthropic's and Bedrock's providers keep (to send it back with the turn's
calls) counts with the text.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx2
import openai
import pytest

from miniagents import MessagePromise, MessageSequencePromise, MiniAgents
from miniagents.errors import ContextArgumentError, LLMResponseError
from miniagents.ext.llm import _openai_chat
from miniagents.ext.llm import _turn as turn_module
from miniagents.ext.llm._openai_options import OpenAIOptions
from miniagents.ext.llm.prompt import PromptText
from miniagents.ext.llm.provider import LLMCall
from miniagents.testing import FakeLLMServer, ToolCall, run_with_virtual_time, thinking_signature
from tests.ext.llm.natives import BEDROCK, GEMINI
from tests.ext.llm.providers import ANTHROPIC, LLM, OPENAI, RESPONSES, SDKClient
from tests.ext.llm.wire import chat_events, events_reply, sse
from tests.fakes.fixtures import WAIT, fake_llm  # noqa: F401

BOUND = 25
"""The bound of these tests, in characters (far below the default, ten million)."""


def too_long(alias: str, model: str) -> str:
    """The error's message for an agent ``alias`` whose model sent more than ``BOUND``."""
    return (
        f"The agent {alias} stopped its call: the model {model!r} sent more than {BOUND:,} "
        "characters in one turn (its text, thinking and tool calls' arguments together), "
        "the bound MiniAgents(llm_max_turn_chars=...) sets on what a reply keeps in memory. A "
        "stream that long usually means a broken provider or proxy that does not end its "
        "stream: check the provider's endpoint; if the model really writes that much, raise "
        "the bound with MiniAgents(llm_max_turn_chars=...)."
    )


async def collect(reply: MessageSequencePromise, promises: list[MessagePromise]) -> None:
    """Keep the reply's message promises in ``promises`` as they come (to its end or error)."""
    async for promise in reply:
        promises.append(promise)


async def test_streamed_text_past_the_bound_stops_the_call(
    llm: LLM,
    client: SDKClient,
    fake_llm: FakeLLMServer,  # noqa: F811
) -> None:
    # 40 characters, then nothing (the stream not ended): the bound stops it at 28 (the
    # stall timeout, WAIT, only ends a call the bound did not stop)
    fake_llm.reply(["abcd"] * 10, hang_after=10)
    agent = llm.agent.fork(model=llm.model, async_client=client, stream=True)
    async with MiniAgents(llm_max_turn_chars=BOUND, llm_stall_timeout=WAIT):
        with pytest.raises(LLMResponseError) as raised:
            await agent.inquire("Go on for ever.")
        assert await fake_llm.wait_disconnected_async(0, WAIT)  # its HTTP stream closed
    assert str(raised.value) == too_long(llm.alias, llm.model)
    assert len(fake_llm.requests) == 1  # not asked again


async def test_tool_call_arguments_past_the_bound_stop_the_call(
    llm: LLM,
    client: SDKClient,
    fake_llm: FakeLLMServer,  # noqa: F811
) -> None:
    # arguments of 71 characters in 6 deltas (of about 12), then nothing
    arguments = {"text": "x" * 60}
    fake_llm.reply(tool_calls=[ToolCall("note", arguments, pieces=6)], hang_after=6)
    agent = llm.agent.fork(model=llm.model, async_client=client, stream=True)
    async with MiniAgents(llm_max_turn_chars=BOUND, llm_stall_timeout=WAIT):
        reply = agent.inquire("Write a long note.")
        promises: list[MessagePromise] = []
        with pytest.raises(LLMResponseError) as raised:
            await collect(reply, promises)
        assert await fake_llm.wait_disconnected_async(0, WAIT)
        assert promises  # the call's message, failed with the call
        for promise in promises:
            with pytest.raises(LLMResponseError) as failed:
                await promise
            assert failed.value is raised.value
    assert str(raised.value) == too_long(llm.alias, llm.model)


async def test_a_turn_of_exactly_the_bound_is_kept(
    llm: LLM,
    client: SDKClient,
    fake_llm: FakeLLMServer,  # noqa: F811
) -> None:
    fake_llm.reply(["abcde"] * 5)  # 25 characters: the bound, not past it
    agent = llm.agent.fork(model=llm.model, async_client=client, stream=True)
    async with MiniAgents(llm_max_turn_chars=BOUND):
        assert [str(message) for message in await agent.inquire("Say it.")] == ["abcde" * 5]


@pytest.mark.parametrize("bound", [0, -1, 2.5, True, "10"])
def test_a_bound_that_is_no_count_is_refused_where_it_is_given(bound: object) -> None:
    with pytest.raises(ContextArgumentError, match="llm_max_turn_chars"):
        MiniAgents(llm_max_turn_chars=bound)  # type: ignore[arg-type]


async def test_anthropic_streamed_thinking_counts_toward_the_bound(
    fake_llm: FakeLLMServer,  # noqa: F811
) -> None:
    # (was: the thinking deltas were kept by the provider, to go back with the turn's
    # calls, and counted nowhere: a model, or a proxy, that thinks without end filled the
    # memory; they count now as text does: 40 characters of thinking are past 25)
    fake_llm.reply(["x"], thinking=["abcd"] * 10)
    async with ANTHROPIC.client(fake_llm) as client:
        agent = ANTHROPIC.agent.fork(model=ANTHROPIC.model, async_client=client, stream=True)
        async with MiniAgents(llm_max_turn_chars=BOUND, llm_stall_timeout=WAIT):
            with pytest.raises(LLMResponseError) as raised:
                await agent.inquire("Think for ever.")
    assert str(raised.value) == too_long(ANTHROPIC.alias, ANTHROPIC.model)
    assert len(fake_llm.requests) == 1  # not asked again


async def test_anthropic_thinking_and_text_share_the_bound(
    fake_llm: FakeLLMServer,  # noqa: F811
) -> None:
    # 20 characters of thinking, its signature (kept with it: counted too), then 5 of text:
    # kept within a bound of all of them; one less, and the text's last character is over
    kept = 20 + len(thinking_signature("abcd" * 5)) + 5
    fake_llm.reply(["abcde"], thinking=["abcd"] * 5, times=2)
    async with ANTHROPIC.client(fake_llm) as client:
        agent = ANTHROPIC.agent.fork(model=ANTHROPIC.model, async_client=client, stream=True)
        async with MiniAgents(llm_max_turn_chars=kept):
            assert [str(message) for message in await agent.inquire("Say it.")] == ["abcde"]
        async with MiniAgents(llm_max_turn_chars=kept - 1):
            with pytest.raises(LLMResponseError, match=f"more than {kept - 1:,} characters"):
                await agent.inquire("Say it.")


async def test_bedrock_streamed_reasoning_counts_toward_the_bound(
    fake_llm: FakeLLMServer,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # (was: as Anthropic's thinking, the reasoning deltas were kept and counted nowhere)
    BEDROCK.environment(fake_llm, monkeypatch)
    fake_llm.reply(["x"], thinking=["abcd"] * 10)
    async with MiniAgents(llm_max_turn_chars=BOUND, llm_stall_timeout=WAIT):
        with pytest.raises(LLMResponseError) as raised:
            await BEDROCK.ask("Think for ever.", stream=True)
    assert str(raised.value) == too_long(BEDROCK.agent.alias, BEDROCK.model)
    assert len(fake_llm.requests) == 1  # not asked again


async def test_bedrock_reasoning_and_text_share_the_bound(
    fake_llm: FakeLLMServer,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # 20 characters of reasoning, its signature (counted too), then 5 of text
    BEDROCK.environment(fake_llm, monkeypatch)
    kept = 20 + len(thinking_signature("abcd" * 5)) + 5
    fake_llm.reply(["abcde"], thinking=["abcd"] * 5, times=2)
    async with MiniAgents(llm_max_turn_chars=kept):
        messages = await BEDROCK.ask("Say it.", stream=True)
        assert [str(message) for message in messages] == ["abcde"]
    async with MiniAgents(llm_max_turn_chars=kept - 1):
        with pytest.raises(LLMResponseError, match=f"more than {kept - 1:,} characters"):
            await BEDROCK.ask("Say it.", stream=True)


async def test_anthropic_whole_reply_thinking_counts_toward_the_bound(
    fake_llm: FakeLLMServer,  # noqa: F811
) -> None:
    # (was: a reply not streamed kept its thinking blocks, to go back with its calls, and
    # counted them nowhere, while a streamed reply's count: the same reply, not streamed,
    # was kept past the bound; it counts the same way now)
    kept = 20 + len(thinking_signature("abcd" * 5)) + 5
    fake_llm.reply(["abcde"], thinking=["abcd"] * 5, times=2)
    async with ANTHROPIC.client(fake_llm) as client:
        agent = ANTHROPIC.agent.fork(model=ANTHROPIC.model, async_client=client, stream=False)
        async with MiniAgents(llm_max_turn_chars=kept):
            assert [str(message) for message in await agent.inquire("Say it.")] == ["abcde"]
        async with MiniAgents(llm_max_turn_chars=kept - 1):
            with pytest.raises(LLMResponseError) as raised:
                await agent.inquire("Say it.")
    assert str(raised.value) == too_long(ANTHROPIC.alias, ANTHROPIC.model).replace(
        f"{BOUND:,}", f"{kept - 1:,}"
    )
    assert len(fake_llm.requests) == 2  # not asked again


async def test_bedrock_whole_reply_reasoning_counts_toward_the_bound(
    fake_llm: FakeLLMServer,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # (was: as Anthropic's, a reply not streamed kept its reasoning and counted it nowhere;
    # its text, signature and redacted bytes count now, as a stream's deltas do)
    BEDROCK.environment(fake_llm, monkeypatch)
    kept = 20 + len(thinking_signature("abcd" * 5)) + len(b"secret") + 5  # (its bytes, decoded)
    fake_llm.reply(["abcde"], thinking=["abcd"] * 5, redacted_thinking="c2VjcmV0", times=2)
    async with MiniAgents(llm_max_turn_chars=kept):
        messages = await BEDROCK.ask("Say it.", stream=False)
        assert [str(message) for message in messages] == ["abcde"]
    async with MiniAgents(llm_max_turn_chars=kept - 1):
        with pytest.raises(LLMResponseError, match=f"more than {kept - 1:,} characters"):
            await BEDROCK.ask("Say it.", stream=False)
    assert len(fake_llm.requests) == 2  # not asked again


async def test_streamed_reasoning_without_end_stops_the_call(
    llm: LLM,
    client: SDKClient,
    fake_llm: FakeLLMServer,  # noqa: F811
) -> None:
    # (was: Chat Completions' reasoning_content and the Responses API's reasoning summary
    # were signs of life only, counted nowhere: a provider that streamed reasoning without
    # end, its text never coming, moved the stall watch's deadline with each piece, and
    # nothing bounded the turn. They count now as Anthropic's thinking does: 40 characters
    # of reasoning, then nothing (the stream not ended), are past 25)
    fake_llm.reply(["x"], thinking=["abcd"] * 10, hang_after=0)
    agent = llm.agent.fork(model=llm.model, async_client=client, stream=True)
    async with MiniAgents(llm_max_turn_chars=BOUND, llm_stall_timeout=WAIT):
        with pytest.raises(LLMResponseError) as raised:
            await agent.inquire("Think for ever.")
        assert await fake_llm.wait_disconnected_async(0, WAIT)  # its HTTP stream closed
    assert str(raised.value) == too_long(llm.alias, llm.model)
    assert len(fake_llm.requests) == 1  # not asked again


@pytest.mark.parametrize("stream", [True, False], ids=["streamed", "whole"])
async def test_reasoning_and_text_share_the_bound(
    llm: LLM,
    client: SDKClient,
    fake_llm: FakeLLMServer,  # noqa: F811
    stream: bool,
) -> None:
    # 20 characters of reasoning (Anthropic's signed: its signature counted too), then 5
    # of text: kept within a bound of all of them; one less, and the text is over
    kept = 20 + llm.pick((0, len(thinking_signature("abcd" * 5)), 0)) + 5
    fake_llm.reply(["abcde"], thinking=["abcd"] * 5, times=2)
    agent = llm.agent.fork(model=llm.model, async_client=client, stream=stream)
    async with MiniAgents(llm_max_turn_chars=kept):
        assert [str(message) for message in await agent.inquire("Say it.")] == ["abcde"]
    async with MiniAgents(llm_max_turn_chars=kept - 1):
        with pytest.raises(LLMResponseError, match=f"more than {kept - 1:,} characters"):
            await agent.inquire("Say it.")


@pytest.mark.parametrize("stream", [True, False], ids=["streamed", "whole"])
async def test_reasoning_and_tool_call_arguments_share_the_bound(
    llm: LLM,
    client: SDKClient,
    fake_llm: FakeLLMServer,  # noqa: F811
    stream: bool,
) -> None:
    # 20 characters of reasoning, then a call's 17 of arguments: each below 25, together
    # past it (counted apart, the agent would get to its next error: a call without tools)
    fake_llm.reply(thinking=["abcd"] * 5, tool_calls=[ToolCall("note", {"text": "x" * 5})])
    agent = llm.agent.fork(model=llm.model, async_client=client, stream=stream)
    async with MiniAgents(llm_max_turn_chars=BOUND):
        with pytest.raises(LLMResponseError) as raised:
            await agent.inquire("Write a note.")
    assert str(raised.value) == too_long(llm.alias, llm.model)


async def test_gemini_streamed_thoughts_without_end_stop_the_call(
    fake_llm: FakeLLMServer,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # (was: as the OpenAI APIs' reasoning, Gemini's thought parts were signs of life only)
    GEMINI.environment(fake_llm, monkeypatch)
    fake_llm.reply(["x"], thinking=["abcd"] * 10, hang_after=0)
    async with MiniAgents(llm_max_turn_chars=BOUND, llm_stall_timeout=WAIT):
        with pytest.raises(LLMResponseError) as raised:
            await GEMINI.ask("Think for ever.", stream=True)
    assert str(raised.value) == too_long(GEMINI.agent.alias, GEMINI.model)
    assert len(fake_llm.requests) == 1  # not asked again


@pytest.mark.parametrize("stream", [True, False], ids=["streamed", "whole"])
async def test_gemini_thoughts_text_and_calls_share_the_bound(
    fake_llm: FakeLLMServer,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    stream: bool,
) -> None:
    # 20 characters of thoughts, then 5 of text: kept within 25, not within 24; 20 of
    # thoughts, then a call's 17 of arguments: past 25
    GEMINI.environment(fake_llm, monkeypatch)
    fake_llm.reply(["abcde"], thinking=["abcd"] * 5, times=2)
    fake_llm.reply(thinking=["abcd"] * 5, tool_calls=[ToolCall("note", {"text": "x" * 5})])
    async with MiniAgents(llm_max_turn_chars=25):
        messages = await GEMINI.ask("Say it.", stream=stream)
        assert [str(message) for message in messages] == ["abcde"]
    async with MiniAgents(llm_max_turn_chars=24):
        with pytest.raises(LLMResponseError, match="more than 24 characters"):
            await GEMINI.ask("Say it.", stream=stream)
    async with MiniAgents(llm_max_turn_chars=BOUND):
        with pytest.raises(LLMResponseError) as raised:
            await GEMINI.ask("Write a note.", stream=stream)
    assert str(raised.value) == too_long(GEMINI.agent.alias, GEMINI.model)


# -- one count per turn: the turn's text and its provider's thinking, in any order ---------

APIS = ["openai", "responses", "gemini", "anthropic", "bedrock"]
"""Every API whose provider counts thinking or reasoning, by these tests' names."""

SIGNED = ("anthropic", "bedrock")
"""The APIs whose thinking carries a signature (counted with it)."""


@contextlib.asynccontextmanager
async def _asking(
    api: str, server: FakeLLMServer, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Callable[[str], Awaitable[list[str]]]]:
    """A function asking ``api``'s agent (streamed), for the fake server: its texts."""
    if api in ("gemini", "bedrock"):
        native = GEMINI if api == "gemini" else BEDROCK
        native.environment(server, monkeypatch)

        async def ask_native(prompt: str) -> list[str]:
            return [str(message) for message in await native.ask(prompt, stream=True)]

        yield ask_native
        return
    llm = {"openai": OPENAI, "responses": RESPONSES, "anthropic": ANTHROPIC}[api]
    async with llm.client(server) as client:
        agent = llm.agent.fork(model=llm.model, async_client=client, stream=True)

        async def ask(prompt: str) -> list[str]:
            return [str(message) for message in await agent.inquire(prompt)]

        yield ask


def _signature(api: str) -> int:
    """The characters of the signature that Anthropic's and Bedrock's thinking carries."""
    return len(thinking_signature("abcd" * 5)) if api in SIGNED else 0


@pytest.mark.parametrize("api", APIS)
async def test_text_then_thinking_count_once_toward_one_bound(
    api: str,
    fake_llm: FakeLLMServer,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # (was: Chat Completions, the Responses API and Gemini counted the reasoning from its
    # first piece on, in a count of their own, and the text before it in the turn's only:
    # 20 characters of text, then 20 of reasoning, passed a bound of 25. The turn and its
    # provider share one count now: the text, then the thinking, each counted once)
    kept = 20 + 20 + _signature(api)
    fake_llm.reply(["abcde"] * 4, thinking=["abcd"] * 5, thinking_order="after_text", times=3)
    async with _asking(api, fake_llm, monkeypatch) as ask:
        async with MiniAgents(llm_max_turn_chars=kept):
            assert await ask("Say it.") == ["abcde" * 4]
        async with MiniAgents(llm_max_turn_chars=kept - 1):
            with pytest.raises(LLMResponseError, match=f"more than {kept - 1:,} characters"):
                await ask("Say it.")
        async with MiniAgents(llm_max_turn_chars=BOUND):
            with pytest.raises(LLMResponseError) as raised:
                await ask("Say it.")
    alias = {"gemini": GEMINI.agent.alias, "bedrock": BEDROCK.agent.alias}.get(api)
    model = {"gemini": GEMINI.model, "bedrock": BEDROCK.model}.get(api)
    if alias is None:
        llm = {"openai": OPENAI, "responses": RESPONSES, "anthropic": ANTHROPIC}[api]
        alias, model = llm.alias, llm.model
    assert str(raised.value) == too_long(alias, str(model))


@pytest.mark.parametrize("api", APIS)
async def test_thinking_then_text_count_once_toward_one_bound(
    api: str,
    fake_llm: FakeLLMServer,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # half the bound of thinking (its signature, where it has one, with it), then half of
    # text: kept at the bound, stopped one character below it
    kept = 20 + _signature(api) + 20
    fake_llm.reply(["abcde"] * 4, thinking=["abcd"] * 5, times=2)
    async with _asking(api, fake_llm, monkeypatch) as ask:
        async with MiniAgents(llm_max_turn_chars=kept):
            assert await ask("Say it.") == ["abcde" * 4]
        async with MiniAgents(llm_max_turn_chars=kept - 1):
            with pytest.raises(LLMResponseError, match=f"more than {kept - 1:,} characters"):
                await ask("Say it.")


async def test_a_chat_chunk_of_text_and_reasoning_counts_both(
    fake_llm: FakeLLMServer,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # (was: a chunk with content counted its content only, its reasoning_content beside it
    # not at all: 5 chunks of 4 characters of text and 4 of reasoning passed a bound of
    # 20; both count now)
    fake_llm.reply(["abcd"] * 5, thinking=["wxyz"] * 5, thinking_order="with_text", times=3)
    async with _asking("openai", fake_llm, monkeypatch) as ask:
        async with MiniAgents(llm_max_turn_chars=40):
            assert await ask("Say it.") == ["abcd" * 5]
        async with MiniAgents(llm_max_turn_chars=39):
            with pytest.raises(LLMResponseError, match="more than 39 characters"):
                await ask("Say it.")
        async with MiniAgents(llm_max_turn_chars=20):
            with pytest.raises(LLMResponseError) as raised:
                await ask("Say it.")
    assert str(raised.value) == too_long(OPENAI.alias, OPENAI.model).replace(f"{BOUND:,}", "20")


async def test_a_turn_that_fails_before_its_first_event_fails_its_messages(
    fake_llm: FakeLLMServer,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # (was: the turn set its count, then asked the loop for its queue (run_first) before the
    # `try` that ends it: had that raised, the count stayed set and the turn's text message,
    # opened before the call, never ended: its reader waited until the deadlock watch
    # stopped it. Now every way out of the turn ends its messages and clears its count)
    def broken(loop: object = None) -> None:
        raise RuntimeError("The loop's queue cannot be read.")

    monkeypatch.setattr(turn_module, "run_first", broken)
    fake_llm.reply(["abcde"] * 4)
    promises: list[MessagePromise] = []

    async def read(reply: MessageSequencePromise) -> None:
        async for promise in reply:
            promises.append(promise)
            async for _ in promise:
                pass

    async with OPENAI.client(fake_llm) as client:
        agent = OPENAI.agent.fork(model=OPENAI.model, async_client=client, stream=True)
        async with MiniAgents():
            with pytest.raises(RuntimeError, match="queue cannot be read"):
                await read(agent.inquire("Say it."))
    assert len(promises) == 1  # (the text message, read to its error)


def test_a_null_reasoning_beside_each_chat_token_costs_no_call(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # (was: a server that sends `"reasoning": null` with every text chunk, as some
    # OpenAI-compatible ones do, had each token's extra fields read by a call of its own;
    # now only a reasoning that is there is read. The role and finish chunks, which carry
    # no text, are read as before)
    read: list[object] = []
    reasoned = _openai_chat._reasoned

    def counted(said: Any, count: Any) -> Any:
        read.append(said)
        return reasoned(said, count)

    monkeypatch.setattr(_openai_chat, "_reasoned", counted)
    before, _texts, after = chat_events([])
    texts = [chat_chunk({"content": "abcd", "reasoning": None}) for _ in range(5)]
    texts.append(chat_chunk({"content": "wxyz", "reasoning": "hmm"}))  # (this one counts)

    async def events() -> list[object]:
        reply = events_reply([*before, *texts, *after])
        http = httpx2.AsyncClient(transport=httpx2.MockTransport(lambda _: reply()))
        client = openai.AsyncOpenAI(api_key="test", max_retries=0, http_client=http)
        call = LLMCall(model="m", stream=True, system=None, messages=(PromptText("user", "Hi"),))
        async with MiniAgents():
            options = OpenAIOptions(model="m")
            return [
                event async for event in _openai_chat.chat_reply(lambda _: client, call, options)
            ]

    seen = run_with_virtual_time(events())
    assert [event for event in seen if isinstance(event, str) and event] == ["abcd"] * 5 + ["wxyz"]
    assert len(read) == 3  # the role chunk, the one reasoning beside its text, the finish


def chat_chunk(delta: dict[str, Any]) -> bytes:
    """One Chat Completions chunk of ``delta``, as a server-sent event."""
    choice = {"index": 0, "delta": delta, "finish_reason": None}
    chunk = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m"}
    return sse(None, {**chunk, "choices": [choice]})
