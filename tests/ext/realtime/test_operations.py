"""Operating realtime sessions: budgets that stop them, the call cache, traces, bounded memory.

- A ``Budget`` is charged each reply's usage (its audio at audio prices): past its
  ``max_cost_usd`` the session stops with a ``BudgetExceededError``, after the reply that
  crossed it; a budget with no requests left refuses the next reply.
- A call cache records a session (the API's events, the session's sends as digests) and
  replays it with no server, byte for byte, at no cost; a session with another setup, or
  whose input differs, is a miss.
- Each reply is traced as a ``chat`` span of the agent's ``invoke_agent`` span, with its
  tokens; a tool's ``execute_tool`` span sits beside it.
- A long session keeps what its readers still need (the replay window), not all its audio.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import math
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import Any

import pytest

from miniagents import MessagePromise, MiniAgent, MiniAgents
from miniagents.errors import (
    BudgetExceededError,
    LLMCacheMissError,
    LLMConfigurationError,
    RealtimeConnectionError,
    RealtimeInputError,
)
from miniagents.ext.llm.cache import CallCache, MemoryCallStore, request_key
from miniagents.ext.llm.usage import Budget, charged_to, usage_totals
from miniagents.ext.realtime import (
    PCM16K,
    PCM24K,
    AudioChunk,
    Interruption,
    PlaybackPosition,
    RealtimePiece,
    SessionEnd,
    SessionSetup,
    Transcript,
    TurnEnd,
    make_realtime_agent,
)
from miniagents.ext.realtime._recording import session_request
from miniagents.ext.realtime.gemini import GeminiLiveProvider, _GeminiLink
from miniagents.ext.realtime.openai import (
    OpenAIRealtimeOptions,
    OpenAIRealtimeProvider,
    _OpenAILink,
)
from miniagents.ext.realtime.provider import (
    RealtimeEvent,
    ReplyEnded,
    ReplyStarted,
    ServerFailed,
    SpeechStopped,
    TextOut,
    ToolCalled,
    ToolCancelled,
    UserTranscribed,
    session_options,
)
from miniagents.ext.tools import Tool
from miniagents.messages.image import ImagePart
from miniagents.promising.lowlevel import core_of
from miniagents.testing import FakeLLMServer, LiveUsage, ToolCall, VirtualClock, tone
from miniagents.testing._gemini_live_wire import GeminiLiveWire
from miniagents.testing._live import (
    CallOut,
    LiveEvent,
    LiveRecord,
    LiveSession,
    LiveWire,
    ProtocolError,
    ReplyEnd,
    ReplyStart,
    SpokenReply,
    taking,
)
from miniagents.testing._openai_realtime_wire import OpenAIRealtimeWire
from tests.ext.realtime.kit import (
    APIS,
    Api,
    ScriptedLink,
    of,
    pieces,
    pieces_then_error,
    question,
    scripted_agent,
    silence,
    speech,
    streamed,
)
from tests.fakes.tracing import Traces, parent_of
from tests.subprocesses import outputs_by_hash_seed

USAGE = LiveUsage(input_text=100, input_audio=2000, output_text=50, output_audio=4000)


async def test_a_budget_past_its_cost_stops_the_session_after_the_reply_that_crossed_it(
    api: Api, fake_llm: FakeLLMServer
) -> None:
    fake_llm.speak(["Costly."], usage=USAGE)
    fake_llm.speak(["Never said."])
    budget = Budget(max_cost_usd=0.01)
    async with MiniAgents():
        voice = api.voice(fake_llm, budget=budget)
        found, error = await pieces_then_error(voice.inquire(streamed(["Hi.", "And again?"])))
    assert isinstance(error, BudgetExceededError)
    assert "max_cost_usd" in str(error)
    (turn,) = of(TurnEnd, found)
    assert turn.usage is not None
    assert turn.usage.cost_usd is not None
    assert budget.usage.cost_usd == pytest.approx(turn.usage.cost_usd)
    assert turn.usage.cost_usd > 0.01
    assert error.limit == "max_cost_usd"
    assert [piece.text for piece in of(Transcript, found)] == ["Costly."]
    assert fake_llm.realtime_sessions[0].outcome == "closed"


async def test_a_budget_with_no_request_left_refuses_the_next_reply(
    api: Api, fake_llm: FakeLLMServer
) -> None:
    budget = Budget(max_requests=1)
    async with MiniAgents():
        with charged_to(budget):
            reply = api.voice(fake_llm).inquire(streamed(["One.", "Two."]))
        found, error = await pieces_then_error(reply)
        assert isinstance(error, BudgetExceededError)
        assert error.limit == "max_requests"
        assert usage_totals().requests == 1  # (the second refused: not made, not counted)
    assert len(of(TurnEnd, found)) == 1


async def test_a_recorded_session_replays_byte_for_byte_with_no_server(api: Api) -> None:
    store = MemoryCallStore()
    asked = question(api)
    with FakeLLMServer() as server:
        server.speak(["Hello ", "there."], heard="Hi.", tool_calls=[ToolCall("clock")])
        server.speak(["It is noon."])

        def clock() -> str:
            """The time."""
            return "12:00"

        async with MiniAgents():
            with CallCache(store, mode="read_through").active():
                live = await pieces(api.voice(server, tools=[clock]).inquire(streamed(asked)))
        client = api.client(server)
    assert len(store) == 1
    async with MiniAgents():  # the server has stopped: a request would fail
        with CallCache(store, mode="replay").active():
            voice = api.agent.fork(async_client=client, tools=[clock])
            replayed = await pieces(voice.inquire(streamed(asked)))
    assert [chunk.audio for chunk in of(AudioChunk, replayed)] == [
        chunk.audio for chunk in of(AudioChunk, live)
    ]
    assert [piece.text for piece in of(Transcript, replayed)] == [
        "Hi.",
        "Hello there.",
        "It is noon.",
    ]
    assert [piece.text for piece in of(Transcript, live)] == [
        piece.text for piece in of(Transcript, replayed)
    ]
    costs = [turn.usage.cost_usd for turn in of(TurnEnd, replayed) if turn.usage is not None]
    assert costs == [0.0, 0.0]
    assert isinstance(replayed[-1], SessionEnd)
    async with MiniAgents():
        with CallCache(store, mode="replay").active():
            other = api.agent.fork(async_client=client, tools=[clock], instructions="Be brief.")
            with pytest.raises(LLMCacheMissError, match="Be brief"):
                await other.inquire(streamed(asked))
            with pytest.raises(LLMCacheMissError, match="input differs") as missed:
                await voice.inquire(streamed(["Something else."]))
    # (was: "the 1th thing sent", an ordinal made by appending "th" to any number)
    assert "does not hold (text, its send number 1): its input differs" in str(missed.value)


async def test_a_recording_is_replayed_only_for_the_same_transcription_model() -> None:
    # (was: the session's key held the setup's settings but not OpenAI's own, so a session
    # recorded with one transcription model replayed, its user's words unchanged, for
    # another; the client and the WebSocket's options, which only say how to connect, still
    # key nothing)
    openai_api = APIS[0]
    store = MemoryCallStore()
    asked = question(openai_api)
    with FakeLLMServer() as server:
        server.speak(["Hello."], heard="Hi.")
        async with MiniAgents():
            with CallCache(store, mode="read_through").active():
                voice = openai_api.voice(server, transcription_model="whisper-1")
                live = await pieces(voice.inquire(streamed(asked)))
        client = openai_api.client(server)
    assert len(store) == 1
    async with MiniAgents():  # the server has stopped: a request would fail
        with CallCache(store, mode="replay").active():
            same = openai_api.agent.fork(
                async_client=client,
                transcription_model="whisper-1",
                websocket_options={"open_timeout": 30},
            )
            replayed = await pieces(same.inquire(streamed(asked)))
            assert [piece.text for piece in of(Transcript, replayed)] == [
                piece.text for piece in of(Transcript, live)
            ]
            for other in (None, "gpt-4o-transcribe"):
                voice = openai_api.agent.fork(async_client=client, transcription_model=other)
                with pytest.raises(LLMCacheMissError, match="transcription_model"):
                    await voice.inquire(streamed(asked))


def test_a_sessions_key_holds_the_providers_own_settings_apart_from_its_extra_ones() -> None:
    provider = OpenAIRealtimeProvider()
    whisper = SessionSetup("gpt-realtime", provider_options={"transcription_model": "whisper-1"})
    extra = SessionSetup("gpt-realtime", options={"transcription_model": "whisper-1"})
    request = session_request(provider, whisper)
    assert request["options"]["provider_options"] == {"transcription_model": "whisper-1"}
    assert (
        "provider_options" not in session_request(provider, SessionSetup("gpt-realtime"))["options"]
    )
    keys = {
        request_key(session_request(provider, each))
        for each in (whisper, extra, SessionSetup("gpt-realtime"))
    }
    assert len(keys) == 3


def _key(provider: Any, setup: SessionSetup) -> str:
    """The key of ``setup``'s session in a call cache of namespace ``""``."""
    return request_key(session_request(provider, setup))


def test_interrupt_keys_a_session_only_where_it_can_cut_the_model_short() -> None:
    # (was: interrupt was keyed with vad=False too, where OpenAI, with no turn detection,
    # cuts nothing short: two sessions that behave the same missed each other's recording)
    openai, gemini = OpenAIRealtimeProvider(), GeminiLiveProvider()

    def keys(provider: Any, vad: bool) -> set[str]:
        return {
            _key(provider, SessionSetup("m", vad=vad, interrupt=interrupt))
            for interrupt in (True, False)
        }

    assert keys(openai, vad=False) == {_key(openai, SessionSetup("m", vad=False))}
    assert len(keys(openai, vad=True)) == 2
    # Gemini's start of the user's audio (activity_start) cuts the model short unless
    # interrupt=False (its NO_INTERRUPTION), with vad=False too
    assert len(keys(gemini, vad=False)) == 2
    assert len(keys(gemini, vad=True)) == 2
    assert len(keys(openai, vad=False) | keys(openai, vad=True)) == 3


def test_the_default_transcription_model_named_keys_the_session_as_none_does() -> None:
    # (was: transcription_model="gpt-4o-mini-transcribe", what None sends, was another key
    # than None's, so the same session missed a recording made without naming it)
    provider = OpenAIRealtimeProvider()

    def key(model: str | None) -> str:
        options = OpenAIRealtimeOptions(transcription_model=model)
        return _key(provider, SessionSetup("m", provider_options=session_options(options)))

    assert key("gpt-4o-mini-transcribe") == key(None) == _key(provider, SessionSetup("m"))
    assert len({key(None), key("whisper-1"), key("gpt-4o-transcribe")}) == 3


async def test_each_reply_is_a_chat_span_of_the_agents_span_and_a_tool_one_beside_it(
    api: Api, fake_llm: FakeLLMServer, traces: Traces
) -> None:
    def clock() -> str:
        """The time."""
        return "12:00"

    fake_llm.speak(["Let me see."], tool_calls=[ToolCall("clock")], usage=USAGE)
    fake_llm.speak(["Noon."])
    async with MiniAgents():
        await api.voice(fake_llm, tools=[clock]).inquire(streamed(["What time is it?"]))
    agent = traces.one(f"invoke_agent {api.agent.alias}")
    chats = [span for span in traces.spans() if span.name.startswith("chat ")]
    assert len(chats) == 2
    assert all(parent_of(chat, agent) for chat in chats)
    tool = traces.one("execute_tool clock")
    assert parent_of(tool, agent)
    first = min(chats, key=lambda span: span.start_time or 0)
    attributes = first.attributes or {}
    assert attributes["gen_ai.usage.input_tokens"] == 2100
    assert attributes["gen_ai.usage.output_tokens"] == 4050
    # (was: the model asked for, as if the API had named the model that answered)
    assert "gen_ai.response.model" not in attributes


class _NamingLink(ScriptedLink):
    """A link whose API answers a text with a reply that names the model that answered."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: asyncio.Queue[RealtimeEvent | None] = asyncio.Queue()

    async def asend_text(self, text: str, images: Sequence[ImagePart] = ()) -> None:
        del text, images

    async def arespond(self) -> None:
        for event in (
            ReplyStarted("r1"),
            TextOut("i1", "Hello."),
            ReplyEnded("r1", "completed", model="named-model-2026-01-01"),
        ):
            self.sent.put_nowait(event)

    async def aclose(self) -> None:
        self.sent.put_nowait(None)

    async def events(self) -> AsyncIterator[RealtimeEvent]:
        while (event := await self.sent.get()) is not None:
            yield event


async def test_a_replys_span_names_the_model_the_api_said_answered(traces: Traces) -> None:
    voice = scripted_agent(_NamingLink, "NAMING", default_model="asked-model")
    async with MiniAgents():
        await pieces(voice.inquire(streamed(["Hi."])))
    (chat,) = [span for span in traces.spans() if span.name.startswith("chat ")]
    attributes = chat.attributes or {}
    assert attributes["gen_ai.request.model"] == "asked-model"
    assert attributes["gen_ai.response.model"] == "named-model-2026-01-01"


async def test_a_long_session_keeps_only_what_its_reader_still_needs(
    api: Api, fake_llm: FakeLLMServer
) -> None:
    fake_llm.speak(["word "] * 600)  # a minute of audio, in 600 chunks of 100 ms
    async with MiniAgents(replay_window=64):
        reply = api.voice(fake_llm).inquire(streamed(["Talk for a minute."]))
        behind = 0  # pieces kept that the reader has read already
        count = read = 0
        async for piece in reply:
            read += 1
            count += piece.message_class is AudioChunk
            behind = max(behind, read - core_of(reply).base)
    assert count == 600
    # the window and a batch (a stream releases 64 pieces at a time, as it records), not
    # the minute (what the reader has not read yet is kept too: nothing is lost)
    assert behind <= 64 + 64


async def test_a_replayed_spoken_session_closes_once_its_last_reply_has_ended(api: Api) -> None:
    # (was, on Gemini: a replay gives the reply's start while the input's end is still being
    # told, and the reply owed for the end was counted after it had started: the replay
    # waited its drain_timeout, 10 s by default, after the last reply; with none, forever)
    store = MemoryCallStore()
    asked = question(api)
    with FakeLLMServer() as server:
        server.speak(["Hello."], heard="Hi.")
        async with MiniAgents():
            with CallCache(store, mode="read_through").active():
                live = await pieces(api.voice(server).inquire(streamed(asked)))
        client = api.client(server)
    async with MiniAgents():
        with CallCache(store, mode="replay").active():
            voice = api.agent.fork(async_client=client, drain_timeout=float("inf"))
            async with asyncio.timeout(30):  # (a guard: the session ends by itself, at once)
                replayed = await pieces(voice.inquire(streamed(asked)))
    assert [piece.text for piece in of(Transcript, replayed)] == ["Hi.", "Hello."]
    assert [piece.text for piece in of(Transcript, live)] == ["Hi.", "Hello."]
    assert [turn.status for turn in of(TurnEnd, replayed)] == ["completed"]
    assert isinstance(replayed[-1], SessionEnd)


async def interrupted_twice(voice: MiniAgent[..., RealtimePiece], api: Api) -> list[RealtimePiece]:
    """A session whose user speaks over the model twice, after the first 100 ms of each item.

    Each time the user goes quiet once the cut is told (as a user speaking at real time
    does: the API's confirmation comes before the turn ends).
    """
    call = voice.initiate_inquiry()
    call.send_message(question(api))
    pieces = aiter(call.reply_sequence(finish_call=False))
    found: list[MessagePromise[RealtimePiece]] = []
    cut: set[str | None] = set()
    while len(cut) < 2:
        found.append(piece := await anext(pieces))
        if piece.message_class is Interruption:
            call.send_message(silence(api))  # the user's turn ends
        if piece.message_class is not AudioChunk:
            continue  # (a transcript: complete once its reply is cut)
        chunk = await piece
        assert isinstance(chunk, AudioChunk)
        if chunk.item_id not in cut:
            assert chunk.item_id is not None
            cut.add(chunk.item_id)
            call.send_message(PlaybackPosition(item_id=chunk.item_id, played_ms=100))
            call.send_message(speech(api))  # the user speaks over it
    while (piece := await anext(pieces)).message_class is not Interruption:
        found.append(piece)
    found.append(piece)
    call.send_message(silence(api))
    call.finish()
    found += [piece async for piece in pieces]
    return [await piece for piece in found]


async def test_a_recorded_session_with_two_interruptions_replays(api: Api) -> None:
    # (was: the replay of the second truncation took the first's, used up, and failed with
    # an LLMCacheMissError saying the input differed)
    store = MemoryCallStore()
    with FakeLLMServer() as server:
        server.speak(["Hello ", "there."], heard="Hi.", pause_after=1)
        server.speak(["Yes, ", "go on."], heard="Wait!", pause_after=1)
        server.speak(["Done."], heard="Stop!")
        async with MiniAgents():
            with CallCache(store, mode="read_through").active():
                live = await interrupted_twice(api.voice(server), api)
        client = api.client(server)
    async with MiniAgents():
        with CallCache(store, mode="replay").active():
            replayed = await interrupted_twice(api.agent.fork(async_client=client), api)
    cuts = [(cut.item_id, cut.played_ms, cut.heard) for cut in of(Interruption, live)]
    assert [(played, heard) for _, played, heard in cuts] == [(100, "Hello "), (100, "Yes, ")]
    assert [(cut.item_id, cut.played_ms, cut.heard) for cut in of(Interruption, replayed)] == cuts
    assert [piece.text for piece in of(Transcript, replayed)] == [
        piece.text for piece in of(Transcript, live)
    ]
    assert isinstance(replayed[-1], SessionEnd)


class _LateLink(ScriptedLink):
    """A link whose API sends one more event while the session closes it (then ends)."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: asyncio.Queue[RealtimeEvent | None] = asyncio.Queue()
        self._handed_late = asyncio.Event()

    async def asend_text(self, text: str, images: Sequence[ImagePart] = ()) -> None:
        del images
        self._late = UserTranscribed(None, f"(said as the session closed, after {text!r})")

    async def arespond(self) -> None:
        for event in (ReplyStarted("r1"), TextOut("i1", "Hello."), ReplyEnded("r1", "completed")):
            self.sent.put_nowait(event)

    async def aclose(self) -> None:
        self.sent.put_nowait(self._late)  # (sent by the API before it saw the close)
        await self._handed_late.wait()
        self.sent.put_nowait(None)

    async def events(self) -> AsyncIterator[RealtimeEvent]:
        while (event := await self.sent.get()) is not None:
            if event is self._late:
                self._handed_late.set()
            yield event


async def test_an_event_sent_while_the_session_closes_is_recorded_and_the_session_kept() -> None:
    # (was: the session stopped reading the events once it was closing, so the recording's
    # events never ended and the session, ended well, was never stored)
    store = MemoryCallStore()
    voice = scripted_agent(_LateLink, "LATE", provider_name="late", default_model="late-model")
    async with MiniAgents():
        with CallCache(store, mode="read_through").active():
            found = await pieces(voice.inquire(streamed(["Hi."])))
    assert [piece.text for piece in of(Transcript, found)] == [
        "Hello.",
        "(said as the session closed, after 'Hi.')",
    ]
    assert isinstance(found[-1], SessionEnd)
    assert len(store) == 1
    (recorded,) = await store.acandidates("late", "late-model", 10)
    kept = [each for each in recorded.events if isinstance(each, str)]
    assert kept[-1].startswith('<{"type":"UserTranscribed"')


_KEY_OF_A_SESSION = """
import dataclasses
from miniagents.ext.llm.cache import request_key
from miniagents.ext.realtime import SessionSetup
from miniagents.ext.realtime._recording import session_request
from miniagents.ext.realtime.openai import OpenAIRealtimeProvider

@dataclasses.dataclass
class Route:
    regions: frozenset[str]

regions = frozenset(f"region-{n}" for n in range(20))
options = {"tags": {f"tag-{n}" for n in range(20)}, "route": Route(regions)}
setup = SessionSetup("gpt-realtime", options=options)
print(request_key(session_request(OpenAIRealtimeProvider(), setup)))
"""


def test_a_set_or_a_dataclass_in_a_sessions_options_has_one_key_in_every_process() -> None:
    # (was: the session's extra options keyed as json.dumps(default=repr) wrote them: a
    # set's order, in its repr or in a dataclass's, changes with each process's hash seed,
    # so a session recorded in one process was never replayed in the next)
    assert len(outputs_by_hash_seed(_KEY_OF_A_SESSION)) == 1


class _Lookup(Tool):
    """A tool whose schema holds a set (as a schema built in code may)."""

    def __init__(self, kinds: set[str]) -> None:
        schema = {"type": "object", "properties": {"kind": {"type": "string", "enum": kinds}}}
        super().__init__(name="lookup", description="Look a kind up.", parameters=schema)

    async def run(self, arguments: Mapping[str, object]) -> AsyncIterator[str]:
        yield "found"


def test_a_set_in_a_tools_parameters_is_keyed_as_a_calls_are() -> None:
    # (was: the parameters went into the key unconverted, and json.dumps raised a raw
    # TypeError, "Object of type set is not JSON serializable", as the session connected)
    setup = SessionSetup("gpt-realtime", tools=(_Lookup({"a", "b", "c"}),))
    request = session_request(OpenAIRealtimeProvider(), setup)
    (tool,) = request["tools"]
    assert tool["parameters"]["properties"]["kind"]["enum"] == {"set": ["a", "b", "c"]}
    same = SessionSetup("gpt-realtime", tools=(_Lookup({"c", "b", "a"}),))
    other = SessionSetup("gpt-realtime", tools=(_Lookup({"a", "b"}),))
    keys = {
        request_key(session_request(OpenAIRealtimeProvider(), each))
        for each in (setup, same, other)
    }
    assert len(keys) == 2


def test_an_extra_session_option_named_as_a_setup_field_does_not_stand_in_for_it() -> None:
    # (was: the extra options were spread over the setup's fields in the key, so that
    # extra_session={"voice": "alloy"} with voice "echo" had the key of voice "alloy")
    provider = OpenAIRealtimeProvider()
    echo = SessionSetup("gpt-realtime", voice="echo", options={"voice": "alloy", "vad": False})
    alloy = SessionSetup("gpt-realtime", voice="alloy", vad=False)
    request = session_request(provider, echo)
    assert request["options"]["voice"] == "echo"
    assert request["options"]["vad"] is True
    assert request["options"]["extra_session"] == {"voice": "alloy", "vad": False}
    assert request_key(request) != request_key(session_request(provider, alloy))


class _Route:
    """An object of a class with no ``__repr__`` of its own: its repr names its address."""

    def __init__(self, region: str) -> None:
        self.region = region


async def test_a_session_option_keyed_by_its_address_is_refused_naming_it_and_the_fix(
    api: Api, fake_llm: FakeLLMServer
) -> None:
    # (was: keyed by its repr, "<_Route object at 0x7f...>", another in every process: the
    # session was recorded, and its recording never replayed by the next run)
    store = MemoryCallStore()
    async with MiniAgents():
        with CallCache(store, mode="read_through").active():
            voice = api.voice(fake_llm, extra_session={"route": _Route("eu")})
            with pytest.raises(LLMConfigurationError) as caught:
                await voice.inquire(streamed(["Hi."]))
    message = str(caught.value)
    if api.name == "openai":  # (refused sooner: session.update cannot send it as JSON)
        assert "Its setting 'route' cannot be sent as JSON (Object of type _Route" in message
    else:
        assert "cannot key a realtime session: its session option 'route' holds a _Route (<" in (
            message
        )
        assert "a dataclass or a pydantic model" in message
    assert len(store) == 0
    assert fake_llm.realtime_sessions == []  # refused before the session was opened


async def test_a_session_failed_by_its_own_task_is_not_kept_as_a_recording(
    api: Api, fake_llm: FakeLLMServer
) -> None:
    # (was: the failed task closed the link, the recorded events then ended as if the
    # session had ended well, and the session was stored: a later replay gave a failed
    # session's events back as a good one's)
    wrong = PCM16K if api.format == PCM24K else PCM24K
    store = MemoryCallStore()
    async with MiniAgents():
        with CallCache(store, mode="read_through").active():
            reply = api.voice(fake_llm).inquire(
                streamed([AudioChunk(audio=bytes(320), format=wrong)])
            )
            _, error = await pieces_then_error(reply)
    assert isinstance(error, RealtimeInputError)
    assert "resample it" in str(error)
    assert len(store) == 0


class _WireConnection:
    """A connection of the OpenAI SDK that gives the fake realtime wire's events, in order."""

    def __init__(self, events: Sequence[LiveEvent]) -> None:
        wire = OpenAIRealtimeWire()
        record = LiveRecord(index=0, provider=wire.provider, path="/", headers={})
        session = LiveSession(
            wire,
            record,
            taking(),
            itertools.count().__next__,
            input_rate=24_000,
            output_rate=24_000,
        )
        self._raw = [
            json.dumps(raw).encode() for each in events for raw in wire.render(session, each)
        ]

    async def recv_bytes(self) -> bytes:
        return self._raw.pop(0)

    async def close(self) -> None:
        return None


def test_a_fakes_reply_scripted_as_an_error_drops_the_turns_waiting_for_their_answers() -> None:
    # (was: the error closed the session, but the turns waiting after the failed reply's
    # were kept, to be answered by a session that never would)
    wire = OpenAIRealtimeWire()
    record = LiveRecord(index=0, provider=wire.provider, path="/", headers={})
    script = taking(
        SpokenReply(transcript=("Hello.",)),
        SpokenReply(error="The server is overloaded."),
        SpokenReply(transcript=("Never said.",)),
    )
    session = LiveSession(
        wire, record, script, itertools.count().__next__, input_rate=24_000, output_rate=24_000
    )
    session.turn_waits = True
    session.start_reply()
    session.reply_after()
    session.reply_after()  # (two turns ended during the reply: each waits for its answer)
    assert session.waiting == 2
    session.cancel_reply()  # (the first waiting turn's answer is the error)
    assert session.failed is not None
    assert session.failed.message == "The server is overloaded."
    assert session.waiting == 0
    assert session.next_due() is None  # (no reply under way: nothing left to send)


@pytest.mark.parametrize("wire", [OpenAIRealtimeWire, GeminiLiveWire], ids=["openai", "gemini"])
def test_a_fakes_reply_scripted_as_an_error_after_another_starts_then_fails_then_errs(
    wire: Callable[[], LiveWire],
) -> None:
    # (was: the reply a turn waited for, scripted as an error, was the error alone, a reply
    # the client never saw begin; OpenAI says it as a response created, then failed)
    record = LiveRecord(index=0, provider="fake", path="/", headers={})
    script = taking(SpokenReply(transcript=("Hello.",)), SpokenReply(error="Overloaded."))
    session = LiveSession(
        wire(), record, script, itertools.count().__next__, input_rate=24_000, output_rate=24_000
    )
    session.turn_waits = True
    session.start_reply()
    session.reply_after()  # (a turn ended during the reply: its answer is the error)
    session.take_outbox()
    session.step(math.inf)  # (the reply's pieces, its end, then the answer waiting)
    sent = session.take_outbox()
    ends = [each for each in sent if each.get("type") == "response.done"]
    if wire is OpenAIRealtimeWire:
        types = [each["type"] for each in sent]
        assert types[-4:] == ["response.done", "response.created", "response.done", "error"]
        failed = ends[-1]["response"]
        assert failed["id"] == sent[-3]["response"]["id"]
        assert (failed["status"], failed["output"]) == ("failed", [])
        assert failed["status_details"] == {
            "type": "failed",
            "error": {"type": "server_error", "code": "server_error", "message": "Overloaded."},
        }
        assert sent[-1]["error"]["message"] == "Overloaded."
    else:  # (Gemini tells no turn's start nor its failure: it closes the connection, 1011)
        assert sent[-3:] == [
            {"serverContent": {"generationComplete": True}},
            {"serverContent": {"turnComplete": True}},
            {"usageMetadata": sent[-1]["usageMetadata"]},
        ]
    assert session.failed == ProtocolError("server_error", "Overloaded.", fatal=True)
    assert [reply.error for reply in record.replies] == [None, "Overloaded."]


async def test_openais_calls_of_a_reply_never_ended_are_let_go_at_the_next_reply() -> None:
    # (was: the link kept each reply's calls until its response.done, so a reply that never
    # got one kept its calls for the rest of the session: memory over a long session)
    replies = 100
    events: list[LiveEvent] = []
    for n in range(replies):
        events.append(ReplyStart(f"resp_{n}"))
        events.append(CallOut(f"resp_{n}", f"item_{n}", f"call_{n}", ToolCall("clock")))
    link = _OpenAILink(_WireConnection(events), vad=True)
    read = link.events()
    for n in range(replies):
        assert await anext(read) == ReplyStarted(f"resp_{n}")
        assert await anext(read) == ToolCalled(f"call_{n}", "clock", "{}")
        assert sum(map(len, link._calls.values())) == 1  # (the reply's under way, alone)


async def test_openais_cancelled_reply_withdraws_its_calls_and_keeps_none() -> None:
    usage = LiveUsage()
    call = CallOut("resp_1", "item_1", "call_1", ToolCall("clock"))
    events: list[LiveEvent] = [
        ReplyStart("resp_1"),
        call,
        ReplyEnd("resp_1", "cancelled", {}, (call,), usage, False),
    ]
    link = _OpenAILink(_WireConnection(events), vad=True)
    read = link.events()
    found = [await anext(read) for _ in range(4)]
    assert found[2] == ToolCancelled("call_1")
    assert isinstance(found[3], ReplyEnded)
    assert found[3].status == "cancelled"
    assert link._calls == {}


class _GoingAway:
    """A Gemini Live session of the SDK that says it is about to close (``go_away``)."""

    async def receive(self) -> AsyncIterator[object]:
        from google.genai import types

        yield types.LiveServerMessage(go_away=types.LiveServerGoAway(time_left="9s"))


class _LateWords:
    """A Gemini Live session of the SDK whose one reply ends before its turn's words come."""

    def __init__(self) -> None:
        self.read = 0

    async def receive(self) -> AsyncIterator[object]:
        from google.genai import types

        self.read += 1
        if self.read > 1:  # (the session closed it)
            raise ConnectionError("The connection is closed.")
        said = types.Content(parts=[types.Part(text="Hello.")])
        yield types.LiveServerMessage(server_content=types.LiveServerContent(model_turn=said))
        yield types.LiveServerMessage(server_content=types.LiveServerContent(turn_complete=True))
        usage = types.UsageMetadata(prompt_token_count=3, response_token_count=2)
        yield types.LiveServerMessage(usage_metadata=usage)  # (the reply's end)
        words = types.Transcription(text="Hi.", finished=True)
        heard = types.LiveServerContent(input_transcription=words)
        yield types.LiveServerMessage(server_content=heard)


class _Manager:
    """The SDK's context manager of a Gemini Live session (its exit closes it)."""

    async def __aexit__(self, *given: object) -> None:
        return None


async def test_a_gemini_turn_transcribed_after_the_last_reply_is_told_as_its_words_come() -> None:
    # (was: its words waited for a reply that never came, and were never told; then, told
    # as the session closed, after a SpeechStopped that had the session await their answer)
    from google.genai import types

    link = _GeminiLink(_Manager(), _LateWords(), types, vad=True)
    read = link.events()
    found = [await anext(read) for _ in range(4)]
    assert [type(event) for event in found] == [ReplyStarted, TextOut, ReplyEnded, UserTranscribed]
    assert found[3] == UserTranscribed(None, "Hi.")  # (no turn to answer: the words of one)
    await link.aclose()
    assert [event async for event in read] == []


class _AnsweredBeforeItsWords(_LateWords):
    """A Gemini Live session of the SDK that answers the audio stream's end, then transcribes it.

    Its one reply comes once the audio stream has ended, and its turn's words after that
    reply's end; its exit (the session's close) ends what it sends.
    """

    def __init__(self) -> None:
        super().__init__()
        self.stream_ended = asyncio.Event()
        self.closed = asyncio.Event()

    async def send_realtime_input(self, **given: object) -> None:
        if given.get("audio_stream_end"):
            self.stream_ended.set()

    async def receive(self) -> AsyncIterator[object]:
        await (self.stream_ended if self.read == 0 else self.closed).wait()
        async for message in super().receive():
            yield message

    async def __aexit__(self, *given: object) -> None:
        self.closed.set()


async def test_a_gemini_session_whose_words_come_after_its_last_reply_closes_at_once(
    virtual_clock: VirtualClock,
) -> None:
    # (was: the late words were taken for a new turn, and the session waited its
    # drain_timeout, 10 s, for an answer nobody asked for before it closed)
    from google.genai import types

    live = _AnsweredBeforeItsWords()
    voice = scripted_agent(
        lambda: _GeminiLink(live, live, types, vad=True), "LATE_WORDS", input_format=PCM16K
    )
    chunk = AudioChunk(audio=tone(100, 440.0, PCM16K.rate), format=PCM16K)
    async with MiniAgents():
        found = await pieces(voice.inquire(streamed([chunk])))
    told = [
        f"{piece.role}: {piece.text}" if isinstance(piece, Transcript) else type(piece).__name__
        for piece in found
        if isinstance(piece, TurnEnd | Transcript | SessionEnd)
    ]
    assert told == ["assistant: Hello.", "TurnEnd", "user: Hi.", "SessionEnd"]
    assert virtual_clock.elapsed == 0.0  # (closed at once: no answer awaited)


class _WarnedLink(_LateLink):
    """A link whose API says ``said`` (errors that are not fatal) within its one reply."""

    def __init__(self, said: Sequence[RealtimeEvent]) -> None:
        super().__init__()
        self.said = said

    async def asend_text(self, text: str, images: Sequence[ImagePart] = ()) -> None:
        del text, images

    async def arespond(self) -> None:
        reply = (ReplyStarted("r1"), *self.said, TextOut("i1", "Hello."))
        for event in (*reply, ReplyEnded("r1", "completed")):
            self.sent.put_nowait(event)

    async def aclose(self) -> None:
        self.sent.put_nowait(None)

    async def events(self) -> AsyncIterator[RealtimeEvent]:
        while (event := await self.sent.get()) is not None:
            yield event


class _ClosedLive:
    """A Gemini Live session of the SDK whose connection the API has closed (code 1011)."""

    async def send_client_content(self, **given: object) -> None:
        from websockets.exceptions import ConnectionClosedError
        from websockets.frames import Close

        raise ConnectionClosedError(Close(1011, "The model is overloaded."), None)


async def test_a_gemini_send_that_finds_the_connection_closed_is_a_realtime_connection_error() -> (
    None
):
    # (was: the websockets library's ConnectionClosedError, as the SDK lets it out: no
    # MiniAgentsError, and the session did not read the events left for the API's close)
    from google.genai import types

    link = _GeminiLink(None, _ClosedLive(), types, vad=True)
    with pytest.raises(RealtimeConnectionError) as found:
        await link.asend_text("Hi.")
    assert str(found.value) == (
        'The connection to Gemini Live was closed by the API (close code 1011, reason "The '
        'model is overloaded") as the session sent to it; the session ended. Start a new '
        "session to go on."
    )


class _ClosedConnection:
    """An OpenAI SDK connection whose sends find it closed, as ``closed`` says."""

    def __init__(self, closed: Exception) -> None:
        self.closed = closed

    async def send_raw(self, data: str) -> None:
        raise self.closed


def _closed(received: tuple[int, str] | None, sent: tuple[int, str] | None) -> Exception:
    """The websockets library's error of a connection closed with these close frames."""
    from websockets.exceptions import ConnectionClosedError
    from websockets.frames import Close

    rcvd = None if received is None else Close(*received)
    frame = None if sent is None else Close(*sent)
    both = None if rcvd is None or frame is None else True
    return ConnectionClosedError(rcvd, frame, both)


@pytest.mark.parametrize(
    ("closed", "said"),
    [
        (
            _closed((1011, "overloaded."), (1011, "overloaded.")),
            'was closed by the API (close code 1011, reason "overloaded") as the session sent',
        ),
        (_closed(None, (1000, "")), "was closed by this side (close code 1000) as the session"),
        (_closed(None, None), "dropped (no close frame) as the session sent to it"),
    ],
)
async def test_an_openai_send_that_finds_the_connection_closed_says_so_in_full_sentences(
    closed: Exception, said: str
) -> None:
    # (was: the websockets library's text joined in, "The connection to the OpenAI Realtime
    # API dropped: received 1011 (internal error) overloaded.; then sent 1011 (internal
    # error) overloaded..", its punctuation ending the sentence midway)
    link = _OpenAILink(_ClosedConnection(closed), vad=True)
    with pytest.raises(RealtimeConnectionError) as found:
        await link.asend_audio(bytes(480))
    told = str(found.value)
    assert told.startswith(f"The connection to the OpenAI Realtime API {said}")
    assert told.endswith(" to it; the session ended. Start a new session to go on.")


async def _openais_race() -> RealtimeEvent:
    """OpenAI's error for a cancel that came after its reply had ended (a race: noise)."""
    refused = ProtocolError(
        "response_cancel_not_active", "Cancellation failed: no active response found.", "e1"
    )
    return await anext(_OpenAILink(_WireConnection([refused]), vad=True).events())


async def _geminis_go_away() -> RealtimeEvent:
    from google.genai import types

    return await anext(_GeminiLink(None, _GoingAway(), types, vad=True).events())


async def _own_warning() -> RealtimeEvent:
    """A provider of one's own: a warning of its API, not fatal."""
    return ServerFailed("Slow down: 80% of the rate limit is used.", "rate_warning", fatal=False)


@pytest.mark.parametrize(
    ("said", "warned"),
    [
        (_openais_race, None),
        (
            _geminis_go_away,
            "Gemini Live is about to close the session (go_away: in 9s), as it closes every "
            "session at its time limit: start a new session to go on. (go_away)",
        ),
        (_own_warning, "Slow down: 80% of the rate limit is used. (rate_warning)"),
    ],
    ids=["openai-race", "gemini-go-away", "own-provider"],
)
async def test_an_api_error_the_session_goes_on_after_is_told_at_warning_unless_a_race(
    caplog: pytest.LogCaptureFixture,
    said: Callable[[], Awaitable[RealtimeEvent]],
    warned: str | None,
) -> None:
    # (was: the session logged every error that was not fatal at DEBUG: a provider's warning
    # was lost, and Gemini's link logged its go_away itself, once live and never in a replay)
    event = await said()
    assert isinstance(event, ServerFailed)
    assert not event.fatal
    voice = scripted_agent(lambda: _WarnedLink([event]), "WARNED")
    with caplog.at_level(logging.DEBUG, logger="miniagents"):
        async with MiniAgents():
            found = await pieces(voice.inquire(streamed(["Hi."])))
    assert [piece.text for piece in of(Transcript, found)] == ["Hello."]  # (it went on)
    assert isinstance(found[-1], SessionEnd)
    warnings = [each.getMessage() for each in caplog.records if each.levelno >= logging.WARNING]
    if warned is None:
        assert warnings == []
        told = [each.getMessage() for each in caplog.records if each.levelno == logging.DEBUG]
        assert f"The realtime API said {event.code}: {event.message}" in told
    else:
        assert warnings == [f"The realtime API warned the session of WARNED: {warned}"]


class _RefusedProvider(OpenAIRealtimeProvider):
    """OpenAI's provider, whose link first sends an item that the API refuses (no ``item``)."""

    async def aconnect(self, setup: SessionSetup, options: OpenAIRealtimeOptions) -> _OpenAILink:
        link = await super().aconnect(setup, options)
        await link.send({"type": "conversation.item.create"})
        return link


async def test_openais_refusal_of_one_client_event_is_a_warning_and_the_session_goes_on(
    caplog: pytest.LogCaptureFixture, fake_llm: FakeLLMServer
) -> None:
    # (was: every error event but two races ended the session, though the API keeps it open
    # after refusing one client event: a refused item ended the conversation)
    fake_llm.speak(["Fine."])
    voice = make_realtime_agent(
        OpenAIRealtimeOptions, _RefusedProvider(), alias="REFUSED", summary="Refused."
    ).fork(async_client=APIS[0].client(fake_llm))
    with caplog.at_level(logging.WARNING, logger="miniagents"):
        async with MiniAgents():
            found = await pieces(voice.inquire(streamed(["How are you?"])))
    assert [piece.text for piece in of(Transcript, found)] == ["Fine."]
    assert isinstance(found[-1], SessionEnd)
    warnings = [each.getMessage() for each in caplog.records if each.levelno >= logging.WARNING]
    assert warnings == [
        "The realtime API warned the session of REFUSED: Missing required parameter: 'item'. "
        "(missing_required_parameter)"
    ]
    (refused,) = fake_llm.realtime_sessions[0].errors
    assert refused.event_id == "2:conversation.item.create"  # (the link's id of the event)


class _RawConnection:
    """A connection of the OpenAI SDK: what is sent is kept, the events are the test's."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self.events: asyncio.Queue[bytes] = asyncio.Queue()

    async def send_raw(self, data: str) -> None:
        self.sent.append(json.loads(data))

    async def recv_bytes(self) -> bytes:
        return await self.events.get()

    async def close(self) -> None:
        return None


@pytest.mark.parametrize(
    ("refused", "fatal"),
    [
        *[
            (kind, False)
            for kind in (
                "input_audio_buffer.append",
                "conversation.item.create",
                "conversation.item.truncate",
                "response.cancel",
                "session.update",
            )
        ],
        ("the setup", True),  # (the session cannot be what it was set up to be)
        ("response.create", True),  # (the session would wait for the reply it asked for)
        ("input_audio_buffer.commit", True),  # (and for the reply to the turn it committed)
        ("no event", True),  # (e.g. session_expired: the session is over)
        ("another's", True),  # (an event_id the link never gave)
    ],
)
async def test_an_openai_error_ends_the_session_unless_it_refuses_an_event_that_can_go(
    refused: str, fatal: bool
) -> None:
    connection = _RawConnection()
    link = _OpenAILink(connection, vad=True)
    await link.aconfigure({"type": "realtime"})
    named: str | None = {"no event": None, "another's": "event_123"}.get(refused, "")
    if refused == "the setup":
        named = connection.sent[0]["event_id"]
    elif named == "":
        await link.send({"type": refused})
        named = connection.sent[-1]["event_id"]
    error = {
        "type": "invalid_request_error",
        "code": "session_expired" if refused == "no event" else "invalid_value",
        "message": "Refused.",
        "param": None,
        "event_id": named,
    }
    connection.events.put_nowait(
        json.dumps({"type": "error", "event_id": "event_1", "error": error}).encode()
    )
    event = await anext(link.events())
    assert isinstance(event, ServerFailed)
    assert (event.fatal, event.expected, event.message) == (fatal, False, "Refused.")
    ids = [each["event_id"] for each in connection.sent]
    assert len(set(ids)) == len(ids)  # (each client event has an id of its own)


async def test_openais_end_of_input_waits_for_its_sync_on_the_loops_clock_and_says_when_it_gave_up(
    virtual_clock: VirtualClock, caplog: pytest.LogCaptureFixture
) -> None:
    # (was: past its 10 s, the wait for the API's answer to the sync session.update ended
    # silently, and the turn was ended on what the link had heard, with nothing said)
    connection = _RawConnection()  # (it never answers: no session.updated comes)
    link = _OpenAILink(connection, vad=False)
    await link.aconfigure({"type": "realtime"})
    await link.asend_audio(bytes(4800))
    with caplog.at_level(logging.WARNING, logger="miniagents"):
        ended = await link.aend_input()
    assert virtual_clock.elapsed == pytest.approx(10.0)  # (its time, at once: the loop's clock)
    assert ended == "ask"
    assert [each["type"] for each in connection.sent[-2:]] == [
        "session.update",
        "input_audio_buffer.commit",
    ]
    warnings = [each.getMessage() for each in caplog.records if each.levelno >= logging.WARNING]
    assert warnings == [
        "The OpenAI Realtime API did not answer the session.update that ends the input within "
        "10 s (the wait for it to take the audio sent); the user's turn under way is ended on "
        "the API's events read so far."
    ]


class _Scripted:
    """A Gemini Live session of the SDK that sends ``messages``, then finds itself closed."""

    def __init__(self, messages: list[object]) -> None:
        self.messages = messages
        self.read = 0

    async def receive(self) -> AsyncIterator[object]:
        self.read += 1
        if self.read > 1:  # (the session closed it)
            raise ConnectionError("The connection is closed.")
        for message in self.messages:
            yield message


async def test_late_gemini_words_not_whole_when_another_turn_starts_stay_their_own_turns() -> None:
    # (was: the late words heard so far were told as the next turn's, before it, the rest
    # of them and that turn's own words kept for the turn after, or the session's close)
    from google.genai import types

    def content(given: types.LiveServerContent) -> object:
        return types.LiveServerMessage(server_content=given)

    def heard(text: str, finished: bool | None = None) -> object:
        words = types.Transcription(text=text, finished=finished)
        return content(types.LiveServerContent(input_transcription=words))

    def turn(text: str) -> list[object]:
        said = types.Content(parts=[types.Part(text=text)])
        usage = types.UsageMetadata(prompt_token_count=3, response_token_count=2)
        return [
            content(types.LiveServerContent(model_turn=said)),
            content(types.LiveServerContent(turn_complete=True)),
            types.LiveServerMessage(usage_metadata=usage),
        ]

    first, second = turn("Hello."), turn("Sure.")
    messages = [*first, heard("Hi "), second[0], heard("there.", True), heard("Go on?", True)]
    link = _GeminiLink(_Manager(), _Scripted([*messages, *second[1:]]), types, vad=True)
    read = link.events()
    found = [await anext(read) for _ in range(8)]
    words = [(type(event).__name__, getattr(event, "text", None)) for event in found]
    assert words == [
        ("ReplyStarted", None),
        ("TextOut", "Hello."),
        ("ReplyEnded", None),
        ("ReplyStarted", None),
        ("TextOut", "Sure."),
        ("UserTranscribed", "Hi there."),  # (the first turn's, whole)
        ("UserTranscribed", "Go on?"),  # (the second's, before its end)
        ("ReplyEnded", None),
    ]
    await link.aclose()
    assert [event async for event in read] == []


class _Sending(_Scripted):
    """A scripted Gemini Live session of the SDK that takes what the link sends."""

    async def send_realtime_input(self, **given: object) -> None:
        return None

    async def send_client_content(self, **given: object) -> None:
        return None

    async def send_tool_response(self, **given: object) -> None:
        return None


@pytest.mark.parametrize("answered", ["tool_output", "text"])
async def test_gemini_words_spoken_before_an_answer_to_something_else_are_a_turn_to_answer(
    answered: str,
) -> None:
    # (was: the model's turn that answered the tool's output (or the text) was taken as the
    # answer of the audio sent before it, so its words, transcribed after that turn, were
    # the late words of a turn answered, and the session closed before their answer)
    from google.genai import types

    said = types.Content(parts=[types.Part(text="Sunny.")])
    usage = types.UsageMetadata(prompt_token_count=3, response_token_count=2)
    words = types.Transcription(text="And tomorrow?", finished=True)
    messages: list[object] = [
        types.LiveServerMessage(server_content=types.LiveServerContent(model_turn=said)),
        types.LiveServerMessage(server_content=types.LiveServerContent(turn_complete=True)),
        types.LiveServerMessage(usage_metadata=usage),
        types.LiveServerMessage(server_content=types.LiveServerContent(input_transcription=words)),
    ]
    link = _GeminiLink(_Manager(), _Sending(messages), types, vad=True)
    await link.asend_audio(tone(100, 440.0, PCM16K.rate))
    if answered == "tool_output":
        await link.asend_tool_output("call_1", "lookup", "Sunny.")
    else:
        await link.asend_text("The weather?")
        await link.arespond()
    read = link.events()
    found = [await anext(read) for _ in range(4)]
    assert [type(event) for event in found] == [ReplyStarted, TextOut, ReplyEnded, SpeechStopped]
    assert await link.aend_input() == "no_turn"  # (told already: once)
    await link.aclose()
    assert [event async for event in read] == [UserTranscribed(None, "And tomorrow?")]


class _ScriptedTaking(_Scripted):
    """A :class:`_Scripted` session that takes tools' outputs, noting each."""

    def __init__(self, messages: list[object]) -> None:
        super().__init__(messages)
        self.responses: list[Any] = []

    async def send_tool_response(self, function_responses: list[Any]) -> None:
        self.responses.extend(function_responses)


async def test_gemini_calls_sent_without_ids_are_each_their_own_call() -> None:
    # (was: each had its tool's name as its id: two calls of one tool in a turn were one)
    from google.genai import types

    calls = [types.FunctionCall(name="lookup", args={"city": city}) for city in ("Oslo", "Rome")]
    message = types.LiveServerMessage(tool_call=types.LiveServerToolCall(function_calls=calls))
    session = _ScriptedTaking([message])
    link = _GeminiLink(_Manager(), session, types, vad=True)
    read = link.events()
    found = [await anext(read) for _ in range(3)]
    first, second = found[1], found[2]
    assert isinstance(first, ToolCalled)
    assert isinstance(second, ToolCalled)
    assert first.call_id != second.call_id
    await link.asend_tool_output(first.call_id, "lookup", "Sunny.")
    assert [(each.id, each.name) for each in session.responses] == [(None, "lookup")]
