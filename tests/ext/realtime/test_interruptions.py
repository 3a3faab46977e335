"""The user's speech cuts the model short, over both APIs of the fake server.

The model's reply is held after two pieces (``pause_after``); the player says how much of
it it played (``PlaybackPosition``); the user speaks: the API cancels the reply (OpenAI's
VAD, Gemini's ``interrupted``), the session cuts the item where it was heard (OpenAI:
``conversation.item.truncate``, which the API confirms), and the reply says where, and what
was heard and what was not; the conversation a later handoff reads keeps only what was
heard.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import pytest

from miniagents import MessagePromise, MiniAgents
from miniagents.ext.llm.messages import AssistantMessage
from miniagents.ext.realtime import (
    AudioChunk,
    Interruption,
    PlaybackPosition,
    RealtimePiece,
    Transcript,
    TurnEnd,
    gemini,
)
from miniagents.ext.realtime.provider import ReplyStarted, SpeechStopped, UserTranscribed
from miniagents.messages import Message
from miniagents.testing import FakeLLMServer, LiveRecord, ToolCall
from tests.ext.realtime.kit import APIS, Api, of, planner, question, silence, speech
from tests.fakes.fixtures import WAIT


async def test_the_users_speech_cuts_the_reply_where_it_was_heard(
    api: Api, fake_llm: FakeLLMServer
) -> None:
    given: list[list[Message]] = []

    voice = api.voice(fake_llm, handoffs=[planner(given, "Noted.")])

    fake_llm.speak(["Hello ", "there, ", "my ", "friend."], heard="Hi.", pause_after=2)
    fake_llm.speak(["Yes?"], heard="Wait!", tool_calls=[ToolCall("transfer_to_planner")])
    fake_llm.speak(["Done."])
    async with MiniAgents():
        call = voice.initiate_inquiry()
        call.send_message(question(api))
        reply = call.reply_sequence(finish_call=False)
        pieces = aiter(reply)
        heard: list[RealtimePiece] = []
        first: list[MessagePromise[RealtimePiece]] = []
        while len(heard) < 2:
            piece = await anext(pieces)
            if piece.message_class is AudioChunk:
                heard.append(await piece)
            else:
                first.append(piece)
        assert isinstance(heard[0], AudioChunk)
        item_id = heard[0].item_id
        assert item_id is not None
        call.send_message(PlaybackPosition(item_id=item_id, played_ms=150))
        call.send_message([*speech(api), *silence(api)])  # the user speaks over the model
        call.finish()
        rest = [await piece async for piece in pieces]
        made = [await piece for piece in first if piece.message_class is Transcript]
    (cut,) = of(Interruption, rest)
    assert (cut.item_id, cut.played_ms, cut.generated_ms) == (item_id, 150, 200)
    assert (cut.heard, cut.unheard) == ("Hello ", "there, ")
    assert [turn.status for turn in of(TurnEnd, rest)][:1] == ["cancelled"]
    said = [piece.text for piece in of(Transcript, made) if piece.role == "assistant"]
    assert said == ["Hello there, "]  # the transcript of what was made; the cut says the rest
    record = fake_llm.realtime_sessions[0]
    if api.name == "openai":
        assert record.truncations == [(item_id, 150)]
    assert [each.transcript for each in record.replies][:1] == [
        ("Hello ", "there, ", "my ", "friend.")
    ]
    (conversation,) = given
    assistant = [message.text for message in conversation if isinstance(message, AssistantMessage)]
    assert assistant[0] == "Hello "  # the record keeps what was heard, not what was made
    assert record.errors == []


async def _gemini_turn_over_a_reply(
    fake_llm: FakeLLMServer, *, interrupt: bool
) -> tuple[list[RealtimePiece], str]:
    """A Gemini session with ``vad=False``: a typed question, then audio over its reply.

    The reply is held after two pieces; the user's audio (its ``activity_start``) and the end
    of the input (its ``activity_end``) follow; once the fake has read the end, the reply
    held is let go (for a reply not cut short). The pieces after the audio, and the item
    of the reply's first chunk.
    """
    gemini = APIS[1]
    fake_llm.speak(["Hello ", "there, ", "my ", "friend."], pause_after=2)
    fake_llm.speak(["Yes?"], heard="Wait!")
    async with MiniAgents():
        call = gemini.voice(fake_llm, vad=False, interrupt=interrupt).initiate_inquiry()
        call.send_message("Hi.")
        reply = call.reply_sequence(finish_call=False)
        pieces = aiter(reply)
        heard: list[RealtimePiece] = []
        while len(heard) < 2:  # (both pieces before the hold)
            piece = await anext(pieces)
            if piece.message_class is AudioChunk:
                heard.append(await piece)
        chunk = heard[0]
        assert isinstance(chunk, AudioChunk)
        assert chunk.item_id is not None
        call.send_message(PlaybackPosition(item_id=chunk.item_id, played_ms=150))
        call.send_message(speech(gemini))  # a new turn, typed nothing: the user speaks
        call.finish()

        def ended(record: LiveRecord) -> bool:  # (the SDK writes its key snake_case)
            return any("activityEnd" in each.get("realtime_input", {}) for each in record.received)

        record = await fake_llm.wait_realtime_async(0, ended)
        record.resume()
        rest = [await each async for each in pieces]
    return rest, chunk.item_id


async def test_without_vad_a_new_turn_cuts_geminis_reply_short(fake_llm: FakeLLMServer) -> None:
    # (was: the fake ignored activity_start, so Gemini's default activity handling,
    # START_OF_ACTIVITY_INTERRUPTS, was never seen: the reply went on over the user's turn)
    rest, item_id = await _gemini_turn_over_a_reply(fake_llm, interrupt=True)
    (cut,) = of(Interruption, rest)
    assert (cut.item_id, cut.played_ms, cut.generated_ms) == (item_id, 150, 200)
    assert (cut.heard, cut.unheard) == ("Hello ", "there, ")
    assert [turn.status for turn in of(TurnEnd, rest)] == ["cancelled", "completed"]
    said = [piece.text for piece in of(Transcript, rest) if piece.role == "assistant"]
    assert said[-1] == "Yes?"
    record = fake_llm.realtime_sessions[0]
    assert record.sent_types().count("toolCallCancellation") == 0
    assert any(each.get("serverContent", {}).get("interrupted") for each in record.sent)
    told = [each.get("serverContent", {}) for each in record.sent]
    cut = next(index for index, each in enumerate(told) if each.get("interrupted"))
    marks = [mark for each in told[cut:] for mark in each if mark.endswith("Complete")]
    assert marks[:1] == ["turnComplete"]  # (was: none, the interrupted turn never completed)
    assert record.errors == []


async def test_without_vad_geminis_reply_goes_on_over_a_new_turn_with_interrupt_false(
    fake_llm: FakeLLMServer,
) -> None:
    # (was: the fake answered the turn's activity_end at once, refusing it while the reply
    # that NO_INTERRUPTION let go on was under way: the turn went unanswered)
    rest, _ = await _gemini_turn_over_a_reply(fake_llm, interrupt=False)
    assert of(Interruption, rest) == []
    assert [turn.status for turn in of(TurnEnd, rest)] == ["completed", "completed"]
    said = [piece.text for piece in of(Transcript, rest) if piece.role == "assistant"]
    assert said[-1] == "Yes?"
    record = fake_llm.realtime_sessions[0]
    assert not any(each.get("serverContent", {}).get("interrupted") for each in record.sent)
    assert record.errors == []


async def test_with_vad_geminis_reply_goes_on_and_answers_the_turn_with_interrupt_false(
    fake_llm: FakeLLMServer,
) -> None:
    # (was: the end of the user's speech over the reply NO_INTERRUPTION let go on asked for
    # a second reply at once, refused and told to nobody: the turn went unanswered)
    gemini = APIS[1]
    fake_llm.speak(["Hello ", "there, ", "my ", "friend."], heard="Hi.", pause_after=2)
    fake_llm.speak(["Yes?"], heard="Wait!")
    async with MiniAgents():
        call = gemini.voice(fake_llm, interrupt=False).initiate_inquiry()
        call.send_message(question(gemini))
        pieces = aiter(call.reply_sequence(finish_call=False))
        chunks = 0
        while chunks < 2:  # (both pieces before the hold)
            if (await anext(pieces)).message_class is AudioChunk:
                chunks += 1
        call.send_message(question(gemini))  # the user speaks over the model, and stops
        call.finish()

        def heard(record: LiveRecord) -> bool:  # (the turn's end: its transcription told)
            return any(
                each.get("serverContent", {}).get("inputTranscription", {}).get("text") == "Wait!"
                for each in record.sent
            )

        record = await fake_llm.wait_realtime_async(0, heard)
        record.resume()
        rest = [await each async for each in pieces]
    assert of(Interruption, rest) == []
    assert [turn.status for turn in of(TurnEnd, rest)] == ["completed", "completed"]
    said = [piece.text for piece in of(Transcript, rest) if piece.role == "assistant"]
    assert said[-1] == "Yes?"
    assert not any(each.get("serverContent", {}).get("interrupted") for each in record.sent)
    assert record.errors == []


async def test_a_text_typed_during_geminis_reply_cuts_it_short_and_is_answered(
    fake_llm: FakeLLMServer,
) -> None:
    # (was: the fake took client content during the model's turn as an item and let the
    # turn go on, while Gemini interrupts any generation under way on client content; the
    # text itself reaches the API at once, only the ask for its answer waits for the turn)
    gemini = APIS[1]
    fake_llm.speak(["Hello ", "there, ", "my ", "friend."], pause_after=2)
    async with MiniAgents():
        call = gemini.voice(fake_llm).initiate_inquiry()
        call.send_message("Hi.")
        pieces = aiter(call.reply_sequence(finish_call=False))
        heard: list[RealtimePiece] = []
        while len(heard) < 2:  # (both pieces before the hold)
            piece = await anext(pieces)
            if piece.message_class is AudioChunk:
                heard.append(await piece)
        chunk = heard[0]
        assert isinstance(chunk, AudioChunk)
        assert chunk.item_id is not None
        call.send_message(PlaybackPosition(item_id=chunk.item_id, played_ms=150))
        call.send_message("Also this.")  # typed while the reply is held

        def typed(record: LiveRecord) -> bool:  # (the SDK writes its key snake_case)
            return any(
                turn["parts"] == [{"text": "Also this."}]
                for each in record.received
                for turn in each.get("client_content", {}).get("turns", [])
            )

        record = await fake_llm.wait_realtime_async(0, typed)
        record.resume()  # (a reply the text did not cut short: let go, to be seen going on)
        call.finish()
        rest = [await each async for each in pieces]
    (cut,) = of(Interruption, rest)
    assert (cut.item_id, cut.played_ms, cut.heard) == (chunk.item_id, 150, "Hello ")
    assert [turn.status for turn in of(TurnEnd, rest)] == ["cancelled", "completed"]
    said = [piece.text for piece in of(Transcript, rest) if piece.role == "assistant"]
    assert said[-1] == "You said: Also this."
    contents = [each["client_content"] for each in record.received if "client_content" in each]
    assert [(each.get("turns"), each["turnComplete"]) for each in contents] == [
        ([{"parts": [{"text": "Hi."}], "role": "user"}], False),
        (None, True),
        ([{"parts": [{"text": "Also this."}], "role": "user"}], False),
        (None, True),  # (its answer asked once the turn it cut short had ended)
    ]
    assert record.errors == []


async def test_each_voice_turn_over_geminis_reply_is_transcribed_before_its_own_answer(
    fake_llm: FakeLLMServer,
) -> None:
    # (was: the two turns' transcriptions were joined into one transcript, with no
    # separator, before the first answer, and the second answer came with none)
    gemini = APIS[1]
    fake_llm.speak(["Hello ", "there, ", "my ", "friend."], heard="Hi.", pause_after=2)
    async with MiniAgents():
        call = gemini.voice(fake_llm, interrupt=False).initiate_inquiry()
        call.send_message(question(gemini))
        pieces = aiter(call.reply_sequence(finish_call=False))
        chunks = 0
        while chunks < 2:  # (both pieces before the hold)
            if (await anext(pieces)).message_class is AudioChunk:
                chunks += 1
        call.send_message([*speech(gemini, 300), *silence(gemini)])  # two turns over it
        call.send_message([*speech(gemini, 500), *silence(gemini)])
        call.finish()

        def heard(record: LiveRecord) -> bool:  # (both turns' ends: their transcriptions)
            told = [
                each["serverContent"]["inputTranscription"]
                for each in record.sent
                if "inputTranscription" in each.get("serverContent", {})
            ]
            return len(told) == 3

        record = await fake_llm.wait_realtime_async(0, heard)
        record.resume()
        rest = [await each async for each in pieces]
    told = [  # (the user's transcripts among the turns' ends)
        piece.text if isinstance(piece, Transcript) else "end"
        for piece in rest
        if isinstance(piece, TurnEnd) or (isinstance(piece, Transcript) and piece.role == "user")
    ]
    assert told == ["end", "(300 ms of speech)", "end", "(500 ms of speech)", "end"]
    assert [turn.status for turn in of(TurnEnd, rest)] == ["completed"] * 3
    assert record.errors == []


async def _two_turns_over_geminis_reply(fake_llm: FakeLLMServer) -> tuple[list[Any], LiveRecord]:
    """Two turns spoken over Gemini's held reply (NO_INTERRUPTION), once all three ended.

    Returns:
        The pieces after the hold, and the session's record.
    """
    gemini = APIS[1]
    turns = [question(gemini), [*speech(gemini, 300), *silence(gemini)]]
    turns.append([*speech(gemini, 500), *silence(gemini)])
    async with MiniAgents():
        call = gemini.voice(fake_llm, interrupt=False).initiate_inquiry()
        call.send_message(turns[0])
        pieces = aiter(call.reply_sequence(finish_call=False))
        chunks = 0
        while chunks < 2:  # (both pieces before the hold)
            if (await anext(pieces)).message_class is AudioChunk:
                chunks += 1
        call.send_message(turns[1])
        call.send_message(turns[2])
        call.finish()
        spoken = sum(len(chunk.audio) for turn in turns for chunk in turn)
        record = await fake_llm.wait_realtime_async(
            0, lambda record: record.input_audio_bytes >= spoken
        )
        record.resume()
        return [await each async for each in pieces], record


async def test_each_turn_over_geminis_reply_is_heard_as_its_own_answers_script(
    fake_llm: FakeLLMServer,
) -> None:
    # (was: the fake peeked only at the next script, so both turns were heard as "One.")
    fake_llm.speak(["Hello ", "there, ", "my ", "friend."], heard="Hi.", pause_after=2)
    fake_llm.speak(["Yes?"], heard="One.")
    fake_llm.speak(["Sure."], heard="Two.")
    rest, record = await _two_turns_over_geminis_reply(fake_llm)
    told = [
        piece.text if isinstance(piece, Transcript) else "end"
        for piece in rest
        if isinstance(piece, TurnEnd) or (isinstance(piece, Transcript) and piece.role == "user")
    ]
    assert told == ["end", "One.", "end", "Two.", "end"]
    assert [reply.heard for reply in record.replies] == ["Hi.", "One.", "Two."]
    assert record.errors == []


async def test_each_late_transcription_over_geminis_reply_waits_for_its_own_answer(
    fake_llm: FakeLLMServer,
) -> None:
    # (was: the fake held one late transcription, so the second turn's replaced the first's)
    fake_llm.speak(["Hello ", "there, ", "my ", "friend."], heard="Hi.", pause_after=2)
    fake_llm.speak(["Yes ", "indeed."], heard="One.", heard_after=1)
    fake_llm.speak(["Sure ", "thing."], heard="Two.", heard_after=1)
    _, record = await _two_turns_over_geminis_reply(fake_llm)
    told = [
        content["inputTranscription"]["text"] if "inputTranscription" in content else "end"
        for content in (each.get("serverContent", {}) for each in record.sent)
        if "inputTranscription" in content or "turnComplete" in content
    ]
    assert told == ["Hi.", "end", "One.", "end", "Two.", "end"]
    answers = [each.get("serverContent", {}).get("outputTranscription") for each in record.sent]
    first, second = answers.index({"text": "Yes "}), answers.index({"text": "Sure "})
    one = next(i for i, each in enumerate(record.sent) if "One." in str(each))
    two = next(i for i, each in enumerate(record.sent) if "Two." in str(each))
    assert first < one < second < two  # (each after its answer's first piece)
    assert record.errors == []


class _HeardSession:
    """A Gemini Live session of the SDK's shape that says ``messages``, then waits."""

    def __init__(self, messages: list[SimpleNamespace]) -> None:
        self.messages = messages

    async def send_realtime_input(self, **sent: object) -> None:
        return None

    async def receive(self) -> AsyncIterator[SimpleNamespace]:
        for message in self.messages:
            yield message
        await asyncio.Event().wait()


def _gemini_said(transcribed: str | None = None, model: str | None = None) -> SimpleNamespace:
    """A message of Gemini Live: a user's turn transcribed whole, or the model's words."""
    heard = None if transcribed is None else SimpleNamespace(text=transcribed, finished=True)
    turn = (
        None
        if model is None
        else SimpleNamespace(parts=[SimpleNamespace(inline_data=None, text=model)])
    )
    content = SimpleNamespace(
        input_transcription=heard,
        model_turn=turn,
        output_transcription=None,
        interrupted=False,
        turn_complete=False,
    )
    return SimpleNamespace(
        server_content=content,
        tool_call=None,
        tool_call_cancellation=None,
        usage_metadata=None,
        go_away=None,
    )


async def test_geminis_turns_waiting_for_an_answer_are_bounded_the_oldest_told_unanswered(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # (each user's turn transcribed whole waited for its answer in a queue with no bound: a
    # model that answered none kept every one for the session's whole life)
    caplog.set_level(logging.DEBUG, logger="miniagents.ext.realtime.gemini")
    most, over = gemini._MAX_UNANSWERED_TURNS, 3
    turns = [f"Turn {number}." for number in range(most + over)]
    messages = [_gemini_said(transcribed=turn) for turn in turns]
    session = _HeardSession([*messages, _gemini_said(model="An answer.")])
    link = gemini._GeminiLink(None, session, SimpleNamespace(Blob=dict), vad=True)
    await link.asend_audio(b"\0\0")  # (a turn to answer)
    events = link.events()

    async def taken() -> list[Any]:
        return [await anext(events) for _ in range(1 + over + 2)]

    told = await asyncio.wait_for(taken(), WAIT)  # (was: the oldest turn held, the wait ran out)
    assert told[0] == SpeechStopped(None)
    assert told[1 : 1 + over] == [UserTranscribed(None, turn) for turn in turns[:over]]
    assert told[1 + over] == UserTranscribed(None, turns[over])  # (the answer's: the oldest left)
    assert isinstance(told[2 + over], ReplyStarted)  # (then its words)
    assert (
        sum("the oldest is told as unanswered" in one.getMessage() for one in caplog.records)
        == over
    )
