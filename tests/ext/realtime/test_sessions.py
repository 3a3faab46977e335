"""A realtime session, over both APIs of the fake server with their real SDKs.

Audio in, spoken replies out: the user's voice reaches the API byte for byte, the model's
audio comes back byte for byte with its format and item, its transcript streams as text
tokens, each reply ends with its usage (audio and text apart) and cost, and the session
ends when its input has and nothing is pending. Text and images in; two readers of one
reply; errors of the API, a dropped connection, a refused key, input of the wrong format.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import math
import re
import socket
import typing
from collections.abc import AsyncIterator, Awaitable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import pytest

from miniagents import MiniAgents
from miniagents.errors import LLMAuthenticationError, LLMConfigurationError
from miniagents.ext.llm.pricing import finish_usage, modal_cost_usd
from miniagents.ext.llm.provider import AudioTokens, Finish
from miniagents.ext.llm.usage import Budget, charged_to
from miniagents.ext.realtime import (
    PCM24K,
    AudioChunk,
    AudioFormat,
    RealtimeConnectionError,
    RealtimeInputError,
    RealtimeOptions,
    RealtimeServerError,
    RealtimeUsage,
    SessionEnd,
    SessionSetup,
    Transcript,
    TurnEnd,
    make_realtime_agent,
)
from miniagents.ext.realtime._session import READ_ON_EVENTS, READ_ON_SECONDS
from miniagents.ext.realtime.gemini import _usage as gemini_usage
from miniagents.ext.realtime.openai import (
    OpenAIRealtimeOptions,
    OpenAIRealtimeProvider,
    _OpenAILink,
)
from miniagents.ext.realtime.provider import (
    InputEnd,
    RealtimeEvent,
    ReplyEnded,
    ReplyStarted,
    ServerFailed,
    TextOut,
    ToolCalled,
)
from miniagents.ext.studio import Recorder, RunStore, RunTree
from miniagents.messages import ImagePart, Message
from miniagents.testing import FakeLLMServer, FakeLLMServerError, LiveUsage, VirtualClock, tone
from tests.ext.realtime.kit import (
    APIS,
    Api,
    ScriptedLink,
    of,
    pieces,
    pieces_then_error,
    question,
    scripted_agent,
    streamed,
)

DOT = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAICRAEAOw==")
USAGE = LiveUsage(input_text=10, input_audio=20, output_text=4, output_audio=30)


def _clock() -> str:
    """The time."""
    return "noon"


async def test_a_spoken_question_gets_its_answer_spoken_transcribed_and_priced(
    api: Api, fake_llm: FakeLLMServer
) -> None:
    fake_llm.speak(["Hello ", "there."], heard="Hi!", usage=USAGE)
    asked = question(api)
    async with MiniAgents():
        reply = api.voice(fake_llm, instructions="Be brief.").inquire(streamed(asked))
        tokens: list[str] = []
        found = []
        async for piece in reply:
            if piece.message_class is Transcript:
                tokens += [token async for token in piece]
            found.append(await piece)
    user, said = of(Transcript, found)
    assert (user.role, user.text) == ("user", "Hi!")
    assert (said.role, said.text, tokens[1:]) == ("assistant", "Hello there.", ["Hello ", "there."])
    audio = of(AudioChunk, found)
    assert [chunk.audio for chunk in audio] == [tone(100, 220, 24000), tone(100, 240, 24000)]
    assert {(chunk.format, chunk.role, chunk.item_id) for chunk in audio} == {
        (PCM24K, "assistant", said.item_id)
    }
    record = fake_llm.realtime_sessions[0]
    assert bytes(record.input_audio) == b"".join(chunk.audio for chunk in asked)
    (turn,) = of(TurnEnd, found)
    usage = turn.usage
    assert turn.status == "completed"
    assert usage is not None
    given = (usage.input_text_tokens, usage.input_audio_tokens, usage.input_tokens)
    made = (usage.output_text_tokens, usage.output_audio_tokens, usage.output_tokens)
    assert (given, made) == ((10, 20, 30), (4, 30, 34))
    model = said.model
    assert model is not None
    expected = modal_cost_usd(
        model,
        "openai" if api.name == "openai" else "google",
        input_tokens=30,
        output_tokens=34,
        input_audio_tokens=20,
        output_audio_tokens=30,
    )
    assert expected is not None
    assert expected > 0
    assert usage.cost_usd == pytest.approx(expected)
    end = found[-1]
    assert isinstance(end, SessionEnd)
    assert (end.turns, end.usage) == (1, usage)
    assert record.outcome == "closed"
    assert record.errors == []
    if api.name == "openai":
        instructions = record.config["instructions"]
    else:
        instructions = record.config["systemInstruction"]["parts"][0]["text"]
    assert instructions == "Be brief."


def _camel_keys(value: Any) -> Any:
    """``value`` with the keys of its mappings, at any depth, in camelCase."""
    if isinstance(value, dict):
        return {
            re.sub(r"_(\w)", lambda m: m[1].upper(), k): _camel_keys(v) for k, v in value.items()
        }
    if isinstance(value, list):
        return [_camel_keys(each) for each in value]
    return value


@pytest.mark.parametrize(
    "arguments",
    [
        {
            "voice": "Puck",
            "silence_ms": 400,
            "interrupt": False,
            "tools": [_clock],
            "extra_session": {"temperature": 0.3},
        },
        {"modality": "text", "vad": False, "transcribe_input": False, "instructions": "Hi."},
    ],
    ids=["voice-tools-detection", "text-no-vad"],
)
async def test_the_gemini_fake_takes_every_setup_a_session_sends(
    fake_llm: FakeLLMServer, arguments: dict[str, Any]
) -> None:
    # (the fake refuses an unknown field in a setup's messages, as in its generation config:
    # the setups the sessions send, each of their settings, are not)
    gemini = APIS[1]
    fake_llm.speak(["Hello."], heard="Hi.")
    async with MiniAgents():
        found = await pieces(
            gemini.voice(fake_llm, **arguments).inquire(streamed(question(gemini)))
        )
    assert isinstance(found[-1], SessionEnd)
    (record,) = fake_llm.realtime_sessions
    assert (record.outcome, record.errors) == ("closed", [])
    config = _camel_keys(record.config)  # (the SDK writes some of the nested ones snake_case)
    if "voice" in arguments:
        speech = config["generationConfig"]["speechConfig"]
        assert speech["voiceConfig"]["prebuiltVoiceConfig"]["voiceName"] == "Puck"
        assert config["generationConfig"]["temperature"] == 0.3
        realtime = config["realtimeInputConfig"]
        assert realtime["automaticActivityDetection"]["silenceDurationMs"] == 400
        assert realtime["activityHandling"] == "NO_INTERRUPTION"
        (tool,) = config["tools"]
        assert tool["functionDeclarations"][0]["name"] == "_clock"
    else:
        assert config["generationConfig"]["responseModalities"] == ["TEXT"]
        assert config["realtimeInputConfig"]["automaticActivityDetection"] == {"disabled": True}


async def test_two_readers_read_one_session_live_and_a_late_one_awaits_it_whole(
    api: Api, fake_llm: FakeLLMServer
) -> None:
    fake_llm.speak(["One ", "two ", "three."])
    async with MiniAgents():
        reply = api.voice(fake_llm).inquire(streamed(question(api)))
        first, second = await asyncio.gather(pieces(reply), pieces(reply))
        whole = await reply
    assert first == second == list(whole)
    assert [str(piece) for piece in of(Transcript, whole)][-1] == "One two three."
    assert len(fake_llm.realtime_sessions) == 1  # one session, read three times


async def test_text_and_images_are_turns_the_model_answers(
    api: Api, fake_llm: FakeLLMServer
) -> None:
    fake_llm.speak(["A dot."])
    fake_llm.speak(["Fine."])
    asked: list[Message | str] = [
        Message(text="What is this?", images=(ImagePart(data=DOT),)),
        "How are you?",
    ]
    async with MiniAgents():
        found = await pieces(api.voice(fake_llm).inquire(streamed(asked)))
    said = [piece.text for piece in of(Transcript, found)]
    assert said == ["A dot.", "Fine."]
    assert [turn.status for turn in of(TurnEnd, found)] == ["completed", "completed"]
    received = fake_llm.realtime_sessions[0].received
    if api.name == "openai":
        items = [event["item"] for event in received if event["type"] == "conversation.item.create"]
        assert items[0]["content"][0] == {"type": "input_text", "text": "What is this?"}
        assert items[0]["content"][1]["image_url"].startswith("data:image/gif;base64,")
        assert [event["type"] for event in received].count("response.create") == 2
    else:
        turns = [event["client_content"] for event in received if "client_content" in event]
        parts = turns[0]["turns"][0]["parts"]
        assert parts[0] == {"text": "What is this?"}
        assert "inline_data" in parts[1] or "inlineData" in parts[1]


async def test_an_error_of_the_api_ends_the_reply_after_what_came_before(
    api: Api, fake_llm: FakeLLMServer
) -> None:
    fake_llm.speak(["Fine."])
    fake_llm.speak(error="The model is overloaded.")
    async with MiniAgents():
        reply = api.voice(fake_llm).inquire(streamed(["How are you?", "And now?"]))
        found, error = await pieces_then_error(reply)
    assert [piece.text for piece in of(Transcript, found)] == ["Fine."]
    assert isinstance(error, RealtimeServerError)
    assert "overloaded" in str(error)
    assert error.code == ("server_error" if api.name == "openai" else "1011")
    assert fake_llm.realtime_sessions[0].outcome == "failed"  # (the API closed it after)


async def test_a_gemini_close_of_another_code_is_told_as_a_sentence(
    fake_llm: FakeLLMServer,
) -> None:
    # (was: "... closed the session with code 1011: <reason>" with no period where the
    # reason had none; both links now say it as provider._ended_error does)
    fake_llm.speak(error="The model is overloaded")
    async with MiniAgents():
        voice = APIS[1].voice(fake_llm)
        _, error = await pieces_then_error(voice.inquire(streamed(["How are you?"])))
    assert isinstance(error, RealtimeServerError)
    assert str(error).startswith("Gemini Live closed the session with code 1011: ")
    assert str(error).endswith("The model is overloaded.")


async def test_a_dropped_connection_ends_the_reply_after_what_came(
    api: Api, fake_llm: FakeLLMServer
) -> None:
    fake_llm.speak(["One ", "two ", "three."], drop_after=1)
    async with MiniAgents():
        found, error = await pieces_then_error(api.voice(fake_llm).inquire(streamed(["Count."])))
    assert isinstance(error, RealtimeConnectionError)
    assert "dropped" in str(error)
    assert len(of(AudioChunk, found)) == 1
    assert fake_llm.realtime_sessions[0].outcome == "dropped"


class _HeldLink:
    """OpenAI's link, whose events the session reads only once a send has failed.

    The link's own events are read at once (``closed`` is set when they end, the API having
    closed the connection); the session is given them when a send fails, or at the close:
    the API's error and its close came, and a send found the connection closed, before
    the session read the error (as when the session is busy as they come).
    """

    reports_speech = True
    replies_to_tool_outputs = False
    replayed = False

    def __init__(self, link: _OpenAILink, closed: asyncio.Event) -> None:
        self._link = link
        self._closed = closed
        self._released = asyncio.Event()
        self._held: list[RealtimeEvent] = []
        self._end: Exception | None = None
        self._reading = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        try:
            async for event in self._link.events():
                self._held.append(event)
        except Exception as error:
            self._end = error
        finally:
            self._closed.set()

    async def _sent(self, sending: Awaitable[None]) -> None:
        try:
            await sending
        except BaseException:
            self._released.set()
            raise

    async def asend_audio(self, audio: bytes) -> None:
        await self._sent(self._link.asend_audio(audio))

    async def asend_text(self, text: str, images: Sequence[ImagePart] = ()) -> None:
        await self._sent(self._link.asend_text(text, images))

    async def asend_images(self, images: Sequence[ImagePart]) -> None:
        await self._sent(self._link.asend_images(images))

    async def asend_item(self, role: str, text: str) -> None:
        await self._sent(self._link.asend_item(role, text))

    async def asend_tool_output(self, call_id: str, name: str, output: str) -> None:
        await self._sent(self._link.asend_tool_output(call_id, name, output))

    async def arespond(self) -> None:
        await self._sent(self._link.arespond())

    async def atruncate(self, item_id: str, played_ms: int) -> None:
        await self._sent(self._link.atruncate(item_id, played_ms))

    async def aend_input(self) -> InputEnd:
        return await self._link.aend_input()

    async def events(self) -> AsyncIterator[RealtimeEvent]:
        await self._released.wait()
        await self._reading
        for event in self._held:
            yield event
        if self._end is not None:
            raise self._end

    async def aclose(self) -> None:
        self._released.set()
        await self._link.aclose()


class _HeldProvider:
    """OpenAI's provider, whose link is a :class:`_HeldLink`."""

    provider_name = "openai"
    price_provider: str | None = "openai"
    input_format = PCM24K
    output_format = PCM24K
    default_model: str | None = "gpt-realtime"

    def __init__(self) -> None:
        self.closed = asyncio.Event()

    async def aconnect(self, setup: SessionSetup, options: OpenAIRealtimeOptions) -> _HeldLink:
        return _HeldLink(await OpenAIRealtimeProvider().aconnect(setup, options), self.closed)


async def test_a_send_the_api_closed_before_its_error_was_read_ends_with_the_apis_error(
    fake_llm: FakeLLMServer,
) -> None:
    # (was: the send failed as the connection was closed, and the session ended with
    # "The connection to the OpenAI Realtime API dropped", the API's error left unread)
    fake_llm.speak(error="The model is overloaded.")
    provider = _HeldProvider()

    async def talk() -> AsyncIterator[str]:
        yield "How are you?"
        await provider.closed.wait()  # (the API's error, then its close, came)
        yield "And now?"

    voice = make_realtime_agent(
        OpenAIRealtimeOptions, provider, alias="HELD", summary="Held."
    ).fork(async_client=APIS[0].client(fake_llm))
    async with MiniAgents():
        found, error = await pieces_then_error(voice.inquire(talk()))
    assert isinstance(error, RealtimeServerError)
    assert str(error) == (
        "The realtime API ended the session of HELD: The model is overloaded. (server_error)"
    )
    assert error.code == "server_error"
    assert not of(SessionEnd, found)
    assert fake_llm.realtime_sessions[0].outcome == "failed"


class _FoundClosedLink(ScriptedLink):
    """A link whose connection a send finds closed; the API's events left then are ``left``,
    and none come after them until the session closes it (a connection silent at its end)."""

    def __init__(self, left: Sequence[RealtimeEvent], found_by: str) -> None:
        super().__init__()
        self._left = left
        self._found_by = found_by  # "text", or "respond": the ask for a reply
        self._found_closed = asyncio.Event()
        self._text_sent = asyncio.Event()

    async def asend_text(self, text: str, images: Sequence[ImagePart] = ()) -> None:
        self._text_sent.set()
        self._found("text")

    async def arespond(self) -> None:
        self._found("respond")

    def _found(self, sending: str) -> None:
        if sending == self._found_by:
            self._found_closed.set()
            raise RealtimeConnectionError("The connection dropped.")

    async def events(self) -> AsyncIterator[RealtimeEvent]:
        if self._found_by == "respond":  # (a reply under way as the text is sent: its end
            yield ReplyStarted("r0")  # then asks for the reply to the text)
            await self._text_sent.wait()
            yield ReplyEnded("r0", "completed")
        await self._found_closed.wait()
        for event in self._left:
            yield event
        await self.closed.wait()


_SAID = (ReplyStarted("r1"), TextOut("i1", "Hello."), ToolCalled("c1", "clock", "{}"))
_API_ERROR = ServerFailed("The model is overloaded.", "server_error")


@pytest.mark.parametrize(
    ("left", "apis", "seconds"),
    [
        ((), False, READ_ON_SECONDS),  # (nothing comes: the connection's, at the bound)
        ((*_SAID, _API_ERROR), True, 0.0),
        ((*(TextOut("i1", "x"),) * (READ_ON_EVENTS - 1), _API_ERROR), True, 0.0),
        (((TextOut("i1", "x"),) * READ_ON_EVENTS + (_API_ERROR,)), False, 0.0),  # (too late)
    ],
    ids=["silent", "error-after-a-reply", "error-last-read", "error-past-the-bound"],
)
async def test_the_events_left_after_a_send_found_the_connection_closed_are_read_within_bounds(
    virtual_clock: VirtualClock, left: Sequence[RealtimeEvent], apis: bool, seconds: float
) -> None:
    voice = scripted_agent(lambda: _FoundClosedLink(left, "text"), "CLOSED").fork(tools=[_clock])
    async with MiniAgents():
        found, error = await pieces_then_error(voice.inquire(streamed(["Hi."])))
    if apis:
        assert isinstance(error, RealtimeServerError)
        assert str(error) == (
            "The realtime API ended the session of CLOSED: The model is overloaded. (server_error)"
        )
    else:
        assert isinstance(error, RealtimeConnectionError)
        assert str(error) == "The connection dropped."
    assert found == []  # (what came after the send failed is not the reply's: no tool ran)
    assert virtual_clock.elapsed == pytest.approx(seconds)


async def test_an_ask_for_a_reply_that_found_the_connection_closed_ends_with_the_apis_error() -> (
    None
):
    # (was: the ask made as a reply ended, the session's read of the events raised the
    # connection's error at once, the API's error after it never read)
    voice = scripted_agent(lambda: _FoundClosedLink((*_SAID, _API_ERROR), "respond"), "CLOSED")
    async with MiniAgents():
        found, error = await pieces_then_error(voice.inquire(streamed(["Hi."])))
    assert isinstance(error, RealtimeServerError)
    assert "The model is overloaded." in str(error)
    assert [type(piece) for piece in found] == [TurnEnd]  # (the reply under way's end)


async def test_a_session_the_api_ends_mid_conversation_is_an_error_and_one_closed_here_ends_well(
    api: Api, fake_llm: FakeLLMServer
) -> None:
    # (was: the API's normal close, code 1000, mid-reply ended the reply with a SessionEnd,
    # as if the conversation had ended as asked)
    fake_llm.speak(["Fine."])
    fake_llm.speak(["One ", "two ", "three."], close_after=1)
    async with MiniAgents():
        ended = await pieces(api.voice(fake_llm).inquire(streamed(["How are you?"])))
        found, error = await pieces_then_error(api.voice(fake_llm).inquire(streamed(["Count."])))
    assert isinstance(ended[-1], SessionEnd)  # closed by the session, once it was done
    assert fake_llm.realtime_sessions[0].outcome == "closed"
    assert isinstance(error, RealtimeServerError)
    assert "ended the session itself, mid-conversation (close code 1000" in str(error)
    assert error.code == "1000"
    assert not of(SessionEnd, found)
    assert len(of(AudioChunk, found)) == 1
    assert fake_llm.realtime_sessions[1].outcome == "ended"


async def test_a_refused_key_is_an_authentication_error(api: Api, fake_llm: FakeLLMServer) -> None:
    fake_llm.refuse_realtime(401)
    async with MiniAgents():
        with pytest.raises(LLMAuthenticationError, match="401"):
            await api.voice(fake_llm).inquire(streamed(["Hi."]))
    assert fake_llm.realtime_sessions == []


async def test_a_server_certificate_not_trusted_says_how_to_give_the_client_a_context() -> None:
    # (was: "could not be opened: [SSL: CERTIFICATE_VERIFY_FAILED] ...", saying nothing of
    # what to do; a newcomer's Gemini client of the fake server, without its tls_context.
    # A server of the test's own: the handshake the client gives up is logged in its errors)
    from google import genai
    from google.genai import types

    with FakeLLMServer() as server:
        options = types.HttpOptions(base_url=server.gemini_base_url)
        client = genai.Client(api_key="test", http_options=options)
        async with MiniAgents():
            with pytest.raises(LLMConfigurationError) as refused:
                await APIS[1].agent.fork(async_client=client).inquire(streamed(["Hi."]))
        assert server.realtime_sessions == []
    said = str(refused.value)
    assert "did not trust the server's TLS certificate" in said
    assert 'async_client_args={"ssl": context}' in said
    assert "server.tls_context" in said


async def test_audio_of_another_format_is_refused_before_it_is_sent(
    api: Api, fake_llm: FakeLLMServer
) -> None:
    wrong = AudioChunk(audio=bytes(1600), format=AudioFormat(rate=8000))
    async with MiniAgents():
        with pytest.raises(RealtimeInputError, match=f"resample it to {api.format.rate} Hz"):
            await api.voice(fake_llm).inquire(streamed([wrong]))
    assert fake_llm.realtime_sessions[0].input_audio_bytes == 0


async def test_an_api_that_cannot_be_reached_is_a_connection_error_saying_what_to_check(
    api: Api,
) -> None:
    # (was: "The OpenAI Realtime API could not be reached: ConnectionRefusedError: [Errno
    # 111] Connect call failed ('127.0.0.1', 5)", the library's text, and no fix)
    with socket.socket() as closed:  # (bound, never listening: a connection is refused)
        closed.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{closed.getsockname()[1]}"
        if api.name == "openai":
            import openai

            client: Any = openai.AsyncOpenAI(base_url=url + "/v1", api_key="test")
        else:
            from google import genai
            from google.genai import types

            client = genai.Client(api_key="test", http_options=types.HttpOptions(base_url=url))
        async with MiniAgents():
            with pytest.raises(RealtimeConnectionError) as refused:
                await api.agent.fork(async_client=client).inquire(streamed(["Hi."]))
    told = str(refused.value)
    assert " could not be reached (" in told
    assert told.endswith(
        "\"). Check the network and the client's base URL, then start the session again."
    )


@pytest.mark.parametrize(
    ("arguments", "said"),
    [
        ({"silence_ms": -1}, "needs silence_ms to be a whole number of at least 1; got -1"),
        ({"silence_ms": 1.5}, "needs silence_ms to be a whole number of at least 1; got 1.5"),
        # (was: sent to no voice detection, or to a disabled one, and so ignored)
        ({"silence_ms": 300, "vad": False}, "got silence_ms=300 with vad=False: silence_ms is"),
        ({"voice": "alloy", "modality": "text"}, "got voice='alloy' with modality='text': the"),
        ({"model": 7}, "needs model to be a str"),  # (was: a ValidationError of a Transcript)
        ({"voice": 5}, "needs voice to be a str"),  # (was: sent to the API as it was)
        ({"instructions": ["Be brief."]}, "needs instructions to be a str"),
        ({"vad": "no"}, "needs vad to be True or False; got 'no'"),
        ({"extra_session": 5}, "needs extra_session to be a mapping"),  # (was: a TypeError)
        ({"handoffs": [5]}, "needs handoffs to be MiniAgents (text agents) to hand the"),
        ({"modality": "video"}, "needs modality to be 'audio' or 'text'; got 'video'. Pass"),
        ({"budget": 5}, "needs budget to be a Budget (or None: no budget of its own); got 5"),
    ],
)
async def test_wrong_arguments_are_refused_before_connecting_saying_what_to_give(
    api: Api, fake_llm: FakeLLMServer, arguments: dict[str, object], said: str
) -> None:
    async with MiniAgents():
        with pytest.raises(LLMConfigurationError, match=re.escape(said)) as refused:
            await api.voice(fake_llm, **arguments).inquire(streamed(["Hi."]))
    assert refused.value.parameter == next(iter(arguments))
    assert fake_llm.realtime_sessions == []


@pytest.mark.parametrize(
    ("arguments", "said"),
    [
        ({"transcription_model": 5}, "needs transcription_model to be a non-empty str; got 5"),
        ({"transcription_model": " "}, "needs transcription_model to be a non-empty str"),
        ({"websocket_options": 30}, "needs websocket_options to be a mapping"),
        ({"websocket_options": {1: 30}}, "needs websocket_options to be a mapping"),
        # (was: the TypeError of json.dumps, as session.update was sent on the open session)
        (
            {"extra_session": {"tracing": object()}},
            "Its setting 'tracing' cannot be sent as JSON (Object of type object is not JSON",
        ),
        (
            {"extra_session": {"tracing": {"group": {"a", "b"}}}},
            "Its setting 'tracing' cannot be sent as JSON (Object of type set is not JSON",
        ),
        (
            {"extra_session": {"temperature": math.nan}},
            "Its setting 'temperature' cannot be sent as JSON (Out of range float values",
        ),
        ({"extra_session": {1: "x"}}, "Its setting 1 is not named by a str: give each"),
        # (was: taken, and ignored: with transcribe_input=False nothing is transcribed)
        (
            {"transcription_model": "whisper-1", "transcribe_input": False},
            "got transcription_model='whisper-1' with transcribe_input=False: the "
            "transcription model transcribes the user's speech, which transcribe_input=False "
            "turns off, so it would be ignored. Drop transcription_model, or keep "
            "transcribe_input=True.",
        ),
        # (was: the provider's check first, so a flag of the wrong kind, falsy, was taken
        # for False, and the transcription model refused as ignored)
        (
            {"transcribe_input": 0, "transcription_model": "whisper-1"},
            "needs transcribe_input to be True or False; got 0",
        ),
    ],
)
async def test_openais_own_wrong_arguments_are_refused_before_connecting(
    fake_llm: FakeLLMServer, arguments: dict[str, object], said: str
) -> None:
    # (was: a number sent as the transcription model; the SDK's TypeError, at connecting)
    async with MiniAgents():
        with pytest.raises(LLMConfigurationError, match=re.escape(said)) as refused:
            await APIS[0].voice(fake_llm, **arguments).inquire(streamed(["Hi."]))
    assert refused.value.parameter == next(iter(arguments))
    assert fake_llm.realtime_sessions == []


@pytest.mark.parametrize(
    ("arguments", "transcription"),
    [
        ({}, {"model": "gpt-4o-mini-transcribe"}),
        ({"transcription_model": "whisper-1"}, {"model": "whisper-1"}),
        ({"transcribe_input": False}, None),
    ],
)
async def test_openais_transcription_model_is_sent_only_to_transcribe(
    fake_llm: FakeLLMServer, arguments: dict[str, object], transcription: object
) -> None:
    fake_llm.speak(["Hello."])
    async with MiniAgents():
        await pieces(APIS[0].voice(fake_llm, **arguments).inquire(streamed(["Hi."])))
    record = fake_llm.realtime_sessions[0]
    assert record.received[0]["session"]["audio"]["input"].get("transcription") == transcription


async def test_a_spoken_session_closes_once_its_last_reply_has_ended_not_at_its_drain_timeout(
    api: Api, fake_llm: FakeLLMServer
) -> None:
    # (was, on Gemini: the user's turn counted twice, once as the API transcribed it and
    # once as the input ended, so every spoken session waited its drain_timeout, 10 s by
    # default, after its last reply; with no timeout, forever)
    fake_llm.speak(["Hello."], heard="Hi!")
    async with MiniAgents():
        voice = api.voice(fake_llm, drain_timeout=float("inf"))
        async with asyncio.timeout(30):  # (a guard: the session ends by itself, at once)
            found = await pieces(voice.inquire(streamed(question(api))))
    assert [(piece.role, piece.text) for piece in of(Transcript, found)] == [
        ("user", "Hi!"),
        ("assistant", "Hello."),
    ]
    assert [turn.status for turn in of(TurnEnd, found)] == ["completed"]
    assert isinstance(found[-1], SessionEnd)
    assert fake_llm.realtime_sessions[0].outcome == "closed"


@pytest.mark.parametrize(
    ("arguments", "param", "said"),
    [
        ({"voice": "nope"}, "session.audio.output.voice", "Invalid value for '{param}'"),
        (
            {"extra_session": {"audio": {"input": {"turn_detection": {"type": "vad"}}}}},
            "session.audio.input.turn_detection.type",
            "Invalid value for '{param}'",
        ),
        # (was: the fake took fields the API does not know, as a setting of its beta,
        # temperature, or a misspelt one, which the API refuses)
        ({"extra_session": {"temperature": 0.8}}, "session.temperature", "Unknown parameter"),
        (
            {"extra_session": {"audio": {"output": {"volume": 2}}}},
            "session.audio.output.volume",
            "Unknown parameter",
        ),
    ],
)
async def test_a_setup_the_openai_api_refuses_ends_the_session_with_the_apis_error(
    fake_llm: FakeLLMServer, arguments: dict[str, object], param: str, said: str
) -> None:
    # (was: the fake took any session.update, so a voice the API does not have, or a
    # turn detection of a type it does not know, passed here and failed only against it)
    fake_llm.speak(["Hello."])
    async with MiniAgents():
        found, error = await pieces_then_error(
            APIS[0].voice(fake_llm, **arguments).inquire(streamed(["Hi."]))
        )
    assert isinstance(error, RealtimeServerError)
    if said == "Unknown parameter":
        assert str(error) == (
            "The realtime API ended the session of OPENAI_REALTIME_AGENT: Unknown parameter: "
            f"'{param}'. (unknown_parameter)"
        )
        assert error.code == "unknown_parameter"
    else:
        assert str(error).startswith(
            "The realtime API ended the session of OPENAI_REALTIME_AGENT: "
            + said.format(param=param)
        )
        assert error.code == "invalid_value"
    assert not of(SessionEnd, found)
    record = fake_llm.realtime_sessions[0]
    (refused,) = record.errors
    assert (refused.param, refused.event_id) == (param, record.received[0]["event_id"])
    assert record.config == {}  # (nothing of the refused update was taken)


class _KeptLinkProvider(OpenAIRealtimeProvider):
    """OpenAI's provider, which keeps the link it opened (for a test to send on it)."""

    def __init__(self) -> None:
        self.links: list[_OpenAILink] = []

    async def aconnect(self, setup: SessionSetup, options: OpenAIRealtimeOptions) -> _OpenAILink:
        link = await super().aconnect(setup, options)
        self.links.append(link)
        return link


async def test_a_voice_set_once_the_model_has_spoken_is_refused_and_said_with_the_fix(
    fake_llm: FakeLLMServer, caplog: pytest.LogCaptureFixture
) -> None:
    # (was: the fake took a new voice at any time, where the API refuses it once the model
    # has spoken, with an error that names no client event, which ended the session)
    fake_llm.speak(["Fine."])
    fake_llm.speak(["Still fine."])
    provider = _KeptLinkProvider()
    spoken = asyncio.Event()

    async def talk() -> AsyncIterator[str]:
        yield "How are you?"
        await spoken.wait()  # (the first reply ended: its audio is in the conversation)
        (link,) = provider.links
        voice = {"type": "realtime", "audio": {"output": {"voice": "echo"}}}
        await link.send({"type": "session.update", "session": voice})
        yield "And now?"

    voice = make_realtime_agent(
        OpenAIRealtimeOptions, provider, alias="VOICED", summary="Voiced."
    ).fork(async_client=APIS[0].client(fake_llm), voice="alloy")
    found: list[object] = []
    with caplog.at_level(logging.WARNING, logger="miniagents"):
        async with MiniAgents():
            async for promise in voice.inquire(talk()):
                piece = await promise
                found.append(piece)
                if isinstance(piece, TurnEnd):
                    spoken.set()
    assert [piece.text for piece in of(Transcript, found)] == ["Fine.", "Still fine."]
    assert isinstance(found[-1], SessionEnd)  # (the API went on, and so did the session)
    warnings = [each.getMessage() for each in caplog.records if each.levelno >= logging.WARNING]
    assert warnings == [
        "The realtime API warned the session of VOICED: Cannot update a conversation's voice "
        "if assistant audio is present. The voice is set before the model's first reply, for "
        "the whole session: give it as the agent's voice=... (sent as the session starts), or "
        "start a new session to speak with another. (cannot_update_voice)"
    ]
    record = fake_llm.realtime_sessions[0]
    (refused,) = record.errors
    assert (refused.code, refused.event_id, refused.param) == ("cannot_update_voice", None, None)
    assert record.config["audio"]["output"]["voice"] == "alloy"  # (the voice it kept)


async def test_an_openai_session_the_api_expires_ends_with_its_error_told_once(
    fake_llm: FakeLLMServer, caplog: pytest.LogCaptureFixture
) -> None:
    # (was: the fake kept the connection open after a fatal error, where the API closes it,
    # code 1001 after session_expired; so the session's end on that close went untested)
    fake_llm.speak(["Fine."])
    expired = "Your session hit the maximum duration of 60 minutes."
    fake_llm.speak(error=expired, error_code="session_expired")
    caplog.set_level("DEBUG", logger="miniagents")
    async with MiniAgents():
        reply = APIS[0].voice(fake_llm).inquire(streamed(["How are you?", "And now?"]))
        found, error = await pieces_then_error(reply)
        _, again = await pieces_then_error(reply)
    assert [piece.text for piece in of(Transcript, found)] == ["Fine."]
    assert isinstance(error, RealtimeServerError)
    assert str(error) == (
        f"The realtime API ended the session of OPENAI_REALTIME_AGENT: {expired} (session_expired)"
    )
    assert error.code == "session_expired"
    assert again is error  # (a reader after the end is told the same error, not another)
    assert not of(SessionEnd, found)
    record = fake_llm.realtime_sessions[0]
    assert record.outcome == "failed"
    assert record.sent_types()[-1] == "error"  # (then the close, code 1001)
    told = [each for each in caplog.records if each.levelname in ("WARNING", "ERROR")]
    assert told == []  # (the close after the error is no second error, nor a lost one)


def test_realtime_usages_sum_to_a_realtime_usage_text_and_audio_apart() -> None:
    first = RealtimeUsage(input_tokens=30, input_audio_tokens=20, output_audio_tokens=30)
    second = RealtimeUsage(input_tokens=5, input_text_tokens=5, cost_usd=0.25)
    total = RealtimeUsage.summed((first, second))
    assert isinstance(total, RealtimeUsage)
    assert (total.input_tokens, total.input_text_tokens, total.input_audio_tokens) == (35, 5, 20)
    assert (total.output_audio_tokens, total.output_text_tokens, total.cost_usd) == (30, None, 0.25)


class _MisreportingLink(ScriptedLink):
    """A link whose API answers a text with one reply, reporting ``usage`` at its end (and
    ``model``, the model it says answered)."""

    def __init__(self, usage: RealtimeUsage, model: str | None = None) -> None:
        super().__init__()
        self._usage = usage
        self._model = model
        self._sent: asyncio.Queue[RealtimeEvent | None] = asyncio.Queue()

    async def asend_text(self, text: str, images: Sequence[ImagePart] = ()) -> None:
        del images
        for event in (
            ReplyStarted("r1"),
            TextOut("i1", f"Heard {text}"),
            ReplyEnded("r1", "completed", self._usage, self._model),
        ):
            self._sent.put_nowait(event)

    async def arespond(self) -> None:
        pass  # (the text's reply is under way already)

    async def aclose(self) -> None:
        self._sent.put_nowait(None)

    async def events(self) -> AsyncIterator[RealtimeEvent]:
        while (event := await self._sent.get()) is not None:
            yield event


@pytest.mark.parametrize(
    ("usage", "counts"),
    [
        (
            RealtimeUsage(input_tokens=-5, output_tokens=10),
            (None, 10, None),
        ),
        (
            RealtimeUsage(input_tokens=30, output_tokens=10, input_audio_tokens=-20),
            (30, 10, None),
        ),
    ],
    ids=["input", "input-audio"],
)
async def test_a_reply_whose_api_reports_a_negative_count_is_neither_priced_nor_charged_it(
    usage: RealtimeUsage, counts: tuple[int | None, int | None, int | None]
) -> None:
    # A count that is no count is unknown, as pricing.reported_usage has it for any call.
    # (was: priced as it came: the price table's ValueError failed the session)
    voice = scripted_agent(
        lambda: _MisreportingLink(usage),
        "MISCOUNTED",
        price_provider="openai",
        default_model="gpt-realtime",
    )
    budget = Budget()
    async with MiniAgents():
        with charged_to(budget):
            found = await pieces(voice.inquire(streamed(["Hi."])))
    (turn,) = of(TurnEnd, found)
    assert turn.usage is not None
    told = (turn.usage.input_tokens, turn.usage.output_tokens, turn.usage.input_audio_tokens)
    assert told == counts
    assert turn.usage.cost_usd is None
    assert budget.usage.input_tokens == (counts[0] or 0)
    assert budget.usage.unpriced_requests == 1
    assert isinstance(found[-1], SessionEnd)


@pytest.mark.parametrize(
    ("usage", "priced"),
    [
        (RealtimeUsage(input_tokens=30, output_tokens=10, output_audio_tokens=10), False),
        (RealtimeUsage(input_tokens=30, output_tokens=10, input_audio_tokens=20), False),
        (
            RealtimeUsage(
                input_tokens=30,
                output_tokens=10,
                cached_input_tokens=5,
                input_audio_tokens=20,
                output_audio_tokens=10,
            ),
            False,
        ),
        (
            RealtimeUsage(
                input_tokens=30, output_tokens=10, input_audio_tokens=20, output_audio_tokens=10
            ),
            True,
        ),
    ],
    ids=["input-audio", "output-audio", "cached-audio", "no-cached-prompt"],
)
async def test_a_reply_whose_link_leaves_an_audio_count_unknown_has_an_unknown_price(
    usage: RealtimeUsage, priced: bool
) -> None:
    # An audio count not said (None) is unknown, as one that is no count is: the price too.
    # (was: priced as 0 audio tokens, its audio at text rates, about 8x under gpt-realtime's
    # audio input; the cached audio alone goes unsaid where nothing was cached)
    voice = scripted_agent(
        lambda: _MisreportingLink(usage),
        "UNSAID",
        price_provider="openai",
        default_model="gpt-realtime",
    )
    budget = Budget()
    async with MiniAgents():
        with charged_to(budget):
            found = await pieces(voice.inquire(streamed(["Hi."])))
    (turn,) = of(TurnEnd, found)
    assert turn.usage is not None
    assert (turn.usage.cost_usd is not None) is priced
    assert (budget.usage.input_tokens, budget.usage.unpriced_requests) == (30, 0 if priced else 1)
    assert isinstance(found[-1], SessionEnd)


@pytest.mark.parametrize(
    ("audio", "cached", "priced"),
    [
        (AudioTokens(None, 10, None), None, False),
        (AudioTokens(20, None, None), None, False),
        (AudioTokens(20, 10, None), 5, False),
        (AudioTokens(20, 10, -1), 5, False),
        (AudioTokens(20, 10, None), None, True),
        (AudioTokens(20, 10, 0), 5, True),
    ],
    ids=["input-audio", "output-audio", "cached-audio", "no-count", "no-cached-prompt", "all"],
)
def test_a_finish_that_says_its_audio_is_priced_by_the_sessions_rule(
    audio: AudioTokens, cached: int | None, priced: bool
) -> None:
    # A reply's Finish (the evals' trees, the studio) is priced as the session prices it:
    # an audio count unknown, an unknown price; else each count at its own rate.
    # (was: a Finish said no audio: priced as text, about 8x under gpt-realtime's audio)
    finish = Finish("completed", 30, 10, cached, audio=audio)
    cost = finish_usage(finish, "gpt-realtime", "openai").cost_usd
    assert (cost is not None) is priced
    if cost is not None:
        expected = modal_cost_usd(
            "gpt-realtime",
            "openai",
            input_tokens=30,
            output_tokens=10,
            cached_input_tokens=cached or 0,
            input_audio_tokens=20,
            output_audio_tokens=10,
        )
        assert cost == pytest.approx(expected)
    text = finish_usage(Finish("completed", 30, 10, cached), "gpt-realtime", "openai")
    assert text.cost_usd is not None  # (no audio said: a text call's price)
    assert text.cost_usd != cost


async def test_a_reply_answered_by_another_model_is_priced_as_its_finish_is(
    tmp_path: Path,
) -> None:
    # The session priced the model asked for; a Finish (the evals' trees, the studio) is
    # priced as the model that answered, if the table knows it (pricing.priced_model). The
    # session prices its reply's Finish now: one price, whichever model the API names.
    usage = RealtimeUsage(
        input_tokens=300, output_tokens=100, input_audio_tokens=200, output_audio_tokens=80
    )
    answered, asked = (
        modal_cost_usd(
            model,
            "openai",
            input_tokens=300,
            output_tokens=100,
            input_audio_tokens=200,
            output_audio_tokens=80,
        )
        for model in ("gpt-4o-mini-realtime-preview", "gpt-realtime")
    )
    assert answered is not None
    assert answered != pytest.approx(asked)  # (else the test shows nothing)
    voice = scripted_agent(
        lambda: _MisreportingLink(usage, "gpt-4o-mini-realtime-preview"),
        "ANSWERED",
        price_provider="openai",
        default_model="gpt-realtime",
    )
    store = RunStore(tmp_path / "runs.sqlite")
    try:
        with Recorder(store, name="answered", command=()) as studio:
            async with MiniAgents():
                found = await pieces(voice.inquire(streamed(["Hi."])))
        (studio_call,) = RunTree.of(store, studio.run_id).calls.values()
    finally:
        store.close()
    (turn,) = of(TurnEnd, found)
    assert turn.usage is not None
    assert turn.usage.cost_usd == pytest.approx(answered)
    assert studio_call.cost_usd == pytest.approx(answered)


async def test_an_openai_reply_of_a_cached_prompt_with_audio_is_priced(
    fake_llm: FakeLLMServer,
) -> None:
    # (was: its cached audio, 0, was not told to the price table, which refuses a cache
    # read of an audio prompt that does not say how much was audio: the reply went unpriced)
    openai_api = APIS[0]
    fake_llm.speak(["Hello."], usage=LiveUsage(input_text=30, input_audio=20, cached=10))
    async with MiniAgents():
        found = await pieces(openai_api.voice(fake_llm).inquire(streamed(["Hi."])))
    (turn,) = of(TurnEnd, found)
    assert turn.usage is not None
    assert (turn.usage.cached_input_tokens, turn.usage.cached_audio_tokens) == (10, 0)
    expected = modal_cost_usd(
        "gpt-realtime", "openai", input_tokens=50, output_tokens=0, input_audio_tokens=20
    )
    assert expected is not None
    assert turn.usage.cost_usd is not None
    assert 0 < turn.usage.cost_usd < expected  # (10 text tokens read from the cache)


class _Misreported(LiveUsage):
    """A usage as a misbehaving API reports it: its counts not checked."""

    def __post_init__(self) -> None:
        pass  # (a count no API reports, scripted to be told on the wire)


@pytest.mark.parametrize(
    ("usage", "counts"),
    [
        # (was: a float count failed the link's RealtimeUsage, and with it the session)
        (
            _Misreported(input_text=100, input_audio=cast("int", 2.5), output_text=50),
            (None, None, 50, 0),
        ),
        # (was: True was taken as 1 token, priced and charged)
        (_Misreported(input_text=100, output_text=50, output_audio=True), (100, 0, 51, None)),
    ],
    ids=["float", "bool"],
)
async def test_an_openai_reply_whose_usage_has_a_count_that_is_no_count_leaves_it_unknown(
    usage: LiveUsage, counts: tuple[int | None, ...]
) -> None:
    # A count that is no count is unknown, read so by the link (pricing.reported_count).
    openai_api = APIS[0]
    budget = Budget()
    with FakeLLMServer() as server:
        server.speak(["Hello."], usage=usage)
        async with MiniAgents():
            with charged_to(budget):
                found = await pieces(openai_api.voice(server).inquire(streamed(["Hi."])))
    (turn,) = of(TurnEnd, found)
    assert turn.usage is not None
    told = turn.usage
    given = (told.input_tokens, told.input_audio_tokens, told.output_tokens)
    assert (*given, told.output_audio_tokens) == counts
    assert budget.usage.input_tokens == (counts[0] or 0)
    assert isinstance(found[-1], SessionEnd)


@pytest.mark.parametrize(
    ("usage", "counts"),
    [
        (LiveUsage(input_text=100, output_audio=30), (100, 0, 0, 30)),
        (LiveUsage(input_text=100, output_audio=30, by_modality=False), (None,) * 4),
    ],
    ids=["split", "totals-only"],
)
async def test_a_reply_whose_usage_leaves_a_modality_out_counts_it_as_none_or_unknown(
    api: Api, fake_llm: FakeLLMServer, usage: LiveUsage, counts: tuple[int | None, ...]
) -> None:
    # Gemini lists the modalities that had tokens: one it leaves out had none, and a reply
    # that splits nothing by modality leaves each unknown (so its price), not 0.
    # (was: Gemini's unlisted modality was unknown, so a reply of a text prompt unpriced)
    fake_llm.speak(["Hello."], usage=usage)
    budget = Budget()
    async with MiniAgents():
        with charged_to(budget):
            found = await pieces(api.voice(fake_llm).inquire(streamed(["Hi."])))
    (turn,) = of(TurnEnd, found)
    told = turn.usage
    assert told is not None
    given = (told.input_text_tokens, told.input_audio_tokens)
    assert (*given, told.output_text_tokens, told.output_audio_tokens) == counts
    assert (told.input_tokens, told.output_tokens) == (100, 30)
    assert (told.cost_usd is not None) is usage.by_modality
    assert budget.usage.unpriced_requests == (0 if usage.by_modality else 1)


async def test_a_gemini_reply_whose_usage_leaves_out_its_zero_totals_is_priced(
    fake_llm: FakeLLMServer,
) -> None:
    # Gemini's usageMetadata leaves out a total of 0 (protobuf's JSON leaves out zeros), as
    # the fake server's does: a reply with no output says no responseTokenCount.
    # (was: a total left out was read as unknown, so such a reply went unpriced)
    gemini_api = APIS[1]
    fake_llm.speak(["Hello."], usage=LiveUsage(input_text=100, input_audio=20))
    budget = Budget()
    async with MiniAgents():
        with charged_to(budget):
            found = await pieces(gemini_api.voice(fake_llm).inquire(streamed(["Hi."])))
    (turn,) = of(TurnEnd, found)
    told = turn.usage
    assert told is not None
    assert (told.input_tokens, told.output_tokens, told.cached_input_tokens) == (120, 0, 0)
    assert (told.output_text_tokens, told.output_audio_tokens) == (0, 0)
    assert turn.model is not None
    expected = modal_cost_usd(
        turn.model, "google", input_tokens=120, output_tokens=0, input_audio_tokens=20
    )
    assert expected is not None
    assert told.cost_usd == pytest.approx(expected)
    assert budget.usage.unpriced_requests == 0


async def test_a_gemini_reply_of_a_cached_prompt_is_priced(fake_llm: FakeLLMServer) -> None:
    # Gemini says of what its cached tokens were (cacheTokensDetails), as the fake server
    # now does: 10 of the prompt's text tokens read from the cache, none of its audio.
    # (was: the fake sent no cacheTokensDetails, so the cached audio was unknown and a
    # cached reply unpriced)
    gemini_api = APIS[1]
    fake_llm.speak(["Hello."], usage=LiveUsage(input_text=30, input_audio=20, cached=10))
    async with MiniAgents():
        found = await pieces(gemini_api.voice(fake_llm).inquire(streamed(["Hi."])))
    (turn,) = of(TurnEnd, found)
    told = turn.usage
    assert told is not None
    assert (told.cached_input_tokens, told.cached_audio_tokens) == (10, 0)
    assert turn.model is not None
    expected = modal_cost_usd(
        turn.model,
        "google",
        input_tokens=50,
        output_tokens=0,
        cached_input_tokens=10,
        input_audio_tokens=20,
    )
    assert expected is not None
    assert told.cost_usd == pytest.approx(expected)


@pytest.mark.parametrize("api", APIS, ids=[api.name for api in APIS])
async def test_a_reply_of_a_cached_audio_prompt_is_priced(
    fake_llm: FakeLLMServer, api: Api
) -> None:
    # a script says cached audio too (LiveUsage(cached_audio=...)), and each API's wire says
    # it as the API does (Gemini's cacheTokensDetails, OpenAI's cached_tokens_details): the
    # reply is priced with its cached audio at the model's cached audio rate
    usage = LiveUsage(input_text=30, input_audio=20, cached=10, cached_audio=5)
    fake_llm.speak(["Hello."], usage=usage)
    async with MiniAgents():
        found = await pieces(api.voice(fake_llm).inquire(streamed(["Hi."])))
    (turn,) = of(TurnEnd, found)
    told = turn.usage
    assert told is not None
    assert (told.cached_input_tokens, told.cached_audio_tokens) == (15, 5)
    assert turn.model is not None
    expected = modal_cost_usd(
        turn.model,
        "google" if api.name == "gemini" else "openai",
        input_tokens=50,
        output_tokens=0,
        cached_input_tokens=15,
        input_audio_tokens=20,
        cached_audio_tokens=5,
    )
    assert expected is not None
    assert told.cost_usd == pytest.approx(expected)


def test_a_gemini_usage_sums_the_counts_of_a_modality_it_lists_twice() -> None:
    from google.genai import types

    def count(modality: types.MediaModality, tokens: int) -> types.ModalityTokenCount:
        return types.ModalityTokenCount(modality=modality, token_count=tokens)

    given = types.UsageMetadata(
        prompt_token_count=45,
        prompt_tokens_details=[
            count(types.MediaModality.AUDIO, 10),
            count(types.MediaModality.TEXT, 30),
            count(types.MediaModality.AUDIO, 5),  # (was: read as its first entry's, 10)
        ],
    )
    usage = gemini_usage(given)
    assert (usage.input_text_tokens, usage.input_audio_tokens) == (30, 15)


def test_a_gemini_usage_tells_a_modality_of_none_from_one_not_said() -> None:
    from google.genai import types

    def count(modality: types.MediaModality, tokens: int | None) -> types.ModalityTokenCount:
        return types.ModalityTokenCount(modality=modality, token_count=tokens)

    given = types.UsageMetadata(
        prompt_token_count=40,
        response_token_count=0,
        cached_content_token_count=10,
        prompt_tokens_details=[
            count(types.MediaModality.TEXT, 40),
            count(types.MediaModality.AUDIO, None),  # (a zero, left out on the wire)
        ],
        cache_tokens_details=[],
    )
    usage = gemini_usage(given)
    given_counts = (usage.input_text_tokens, usage.input_audio_tokens, usage.input_image_tokens)
    assert given_counts == (40, 0, 0)
    assert (usage.output_text_tokens, usage.output_audio_tokens) == (0, 0)  # (of 0 tokens)
    assert usage.cached_audio_tokens is None  # (10 cached, not said of what)


@pytest.mark.parametrize(
    ("given", "refused"),
    [
        ({"input_audio": -20}, "input_audio="),
        ({"output_audio": cast("int", 2.5)}, "output_audio="),
        ({"output_text": True}, "output_text="),
        ({"input_text": 10, "cached": 20}, "cached=20 with input_text=10"),
        ({"input_audio": 5, "cached_audio": 8}, "cached_audio=8 with input_audio=5"),
        ({"by_modality": cast("bool", "no")}, "by_modality="),
    ],
    ids=[
        "negative",
        "float",
        "bool",
        "cached-past-the-text",
        "cached-past-the-audio",
        "by-modality",
    ],
)
def test_a_scripted_usage_that_no_api_reports_is_refused(
    given: dict[str, Any], refused: str
) -> None:
    # (was: taken as given and told on the wire: a test meaning to script a real reply's
    # usage could script one no API sends, and pass on the link's checks of misreports)
    with pytest.raises(FakeLLMServerError, match=re.escape(refused)) as caught:
        LiveUsage(**given)
    assert str(caught.value).startswith("LiveUsage() ")


def test_a_gemini_usage_with_a_negative_count_leaves_it_unknown() -> None:
    # (was: the link passed -5 on, as a count: only the session's check caught it)
    from google.genai import types

    given = types.UsageMetadata(
        prompt_token_count=-5,
        response_token_count=7,
        response_tokens_details=[
            types.ModalityTokenCount(modality=types.MediaModality.AUDIO, token_count=-3)
        ],
    )
    usage = gemini_usage(given)
    assert (usage.input_tokens, usage.output_tokens, usage.output_audio_tokens) == (None, 7, None)


async def test_a_geminis_turn_transcribed_during_its_answer_is_told_before_that_answer_ends(
    fake_llm: FakeLLMServer,
) -> None:
    # (was: the late transcription waited for the next reply, to be shown as its turn's
    # words; with no next reply, as here, it was never shown)
    gemini = APIS[1]
    fake_llm.speak(["Hello ", "there."], heard="Hi.", heard_after=1)
    async with MiniAgents():
        found = await pieces(gemini.voice(fake_llm).inquire(streamed(question(gemini))))
    told = [
        f"{piece.role}: {piece.text}" if isinstance(piece, Transcript) else "end"
        for piece in found
        if isinstance(piece, TurnEnd | Transcript)
    ]
    assert told == ["assistant: Hello there.", "user: Hi.", "end"]  # (the answer began first)


@dataclass(frozen=True, kw_only=True)
class _UsersOptions(RealtimeOptions):
    """A user's realtime provider's options, in a module that imports none of what
    RealtimeOptions names."""

    depth: int = 1


def test_the_init_of_a_users_realtime_options_class_has_annotations_that_resolve() -> None:
    """``typing.get_type_hints`` reads the ``__init__`` a dataclass makes in the module of the
    subclass: RealtimeOptions' fields used to be strings there (``Literal``), a ``NameError``."""
    hints = typing.get_type_hints(_UsersOptions.__init__)
    assert hints == {**typing.get_type_hints(RealtimeOptions), "depth": int, "return": type(None)}
