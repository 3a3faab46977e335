"""The user's speech cuts the model short, over both APIs of the fake server.

The model's reply is held after two pieces (``pause_after``); the player says how much of
it it played (``PlaybackPosition``); the user speaks: the API cancels the reply (OpenAI's
VAD, Gemini's ``interrupted``), the session cuts the item where it was heard (OpenAI:
``conversation.item.truncate``, which the API confirms), and the reply says where, and what
was heard and what was not; the conversation a later handoff reads keeps only what was
heard.
"""

from __future__ import annotations

from miniagents import MessagePromise, MiniAgents
from miniagents.ext.llm.messages import AssistantMessage
from miniagents.ext.realtime import (
    AudioChunk,
    Interruption,
    PlaybackPosition,
    RealtimePiece,
    Transcript,
    TurnEnd,
)
from miniagents.messages import Message
from miniagents.testing import FakeLLMServer, ToolCall
from tests.ext.realtime.kit import Api, of, planner, question, silence, speech


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
