"""A realtime session's tools and handoffs, over both APIs of the fake server.

A sub-agent called as a tool streams its tokens into the session's reply while it runs, and
the session goes on meanwhile (the user asks again, the model answers); once the tool is
done, its output goes back to the model, which answers it as soon as it is not speaking
(never while a reply is under way: the fake refuses that as the API does). A handoff gives
a text agent the whole conversation so far; its answer streams into the reply and goes back
to the realtime model, which speaks on from it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Sequence

import pytest

from miniagents import InteractionContext, MessagePromise, MiniAgents, miniagent
from miniagents.ext.llm.cache import CallCache, MemoryCallStore
from miniagents.ext.llm.errors import LLMCacheMissError
from miniagents.ext.llm.messages import (
    AssistantMessage,
    LLMToolCallMessage,
    LLMToolResultMessage,
    UserMessage,
)
from miniagents.ext.realtime import AudioChunk, HandoffResult, SessionEnd, Transcript, TurnEnd
from miniagents.ext.realtime.errors import (
    RealtimeConnectionError,
    RealtimeError,
    RealtimeServerError,
)
from miniagents.ext.realtime.provider import (
    RealtimeEvent,
    ReplyEnded,
    ReplyStarted,
    ServerFailed,
    TextOut,
    ToolCalled,
    ToolCancelled,
)
from miniagents.ext.tools import ToolResultMessage
from miniagents.messages import ImagePart, Message
from miniagents.testing import FakeLLMServer, ToolCall, manual_time, virtual_time
from tests.ext.realtime.kit import (
    APIS,
    Api,
    ScriptedLink,
    of,
    pieces_then_error,
    planner,
    question,
    scripted_agent,
    silence,
    speech,
)
from tests.subprocesses import ROOT, run_python


def output_of(api: Api, record_output: str) -> str:
    """The tool's output as the fake got it (Gemini's is the function's ``{"output": ...}``)."""
    return record_output if api.name == "openai" else str(json.loads(record_output)["output"])


async def test_a_sub_agents_tokens_stream_live_while_the_session_goes_on_and_its_result_returns(
    api: Api, fake_llm: FakeLLMServer
) -> None:
    notes: asyncio.Queue[str | None] = asyncio.Queue()

    @miniagent
    async def researcher(ctx: InteractionContext, topic: str) -> None:
        """Researches a topic."""

        async def tokens() -> AsyncIterator[str]:
            while (token := await notes.get()) is not None:
                yield token

        ctx.reply(MessagePromise.from_async_iterable(tokens()))

    fake_llm.speak(["Let me ", "look."], tool_calls=[ToolCall("RESEARCHER", {"topic": "rivers"})])
    fake_llm.speak(["Still ", "here."], pause_after=1)  # the model speaks when the tool is done
    fake_llm.speak(["Rivers meander, ", "it says."])
    async with MiniAgents():
        call = api.voice(fake_llm, tools=[researcher]).initiate_inquiry()
        call.send_message(question(api))
        reply = call.reply_sequence(finish_call=False)
        pieces = aiter(reply)
        while not issubclass((result := await anext(pieces)).message_class, ToolResultMessage):
            pass
        tokens = aiter(result)
        notes.put_nowait("Rivers ")
        assert await anext(tokens) == "Rivers "  # live, while the tool still runs
        call.send_message("Are you there?")  # the session goes on: the model answers
        record = await fake_llm.wait_realtime_async(0, lambda record: len(record.replies) == 2)
        notes.put_nowait("meander.")
        notes.put_nowait(None)  # the tool is done while the model speaks (its reply held)
        assert (await result).text == "Rivers meander."
        await fake_llm.wait_realtime_async(0, lambda record: bool(record.tool_outputs))
        record.resume()
        call.finish()
        rest = [await each async for each in pieces]
    said = [piece.text for piece in of(Transcript, rest) if piece.role == "assistant"]
    assert said == ["Still here.", "Rivers meander, it says."]
    assert [turn.status for turn in of(TurnEnd, rest)] == ["completed"] * 3
    record = fake_llm.realtime_sessions[0]
    (output,) = record.tool_outputs.values()
    assert output_of(api, output) == "Rivers meander."
    assert record.errors == []  # never asked for a reply while one was under way


async def _handed_off(
    api: Api,
    fake_llm: FakeLLMServer,
    heard_after: int | None = None,
    heard: str | Sequence[str] = "Plan my trip.",
) -> Sequence[Message]:
    """A trip planned by a handoff to the planner: the session's pieces, once the planner
    was given the conversation (the user's turn, the model's words, the request)."""
    given: list[list[Message]] = []
    voice = api.voice(fake_llm, handoffs=[planner(given, "Go at dawn.")])
    fake_llm.speak(
        ["One ", "moment."],
        heard=heard,
        heard_after=heard_after,
        tool_calls=[ToolCall("transfer_to_planner", {"request": "A plan for the trip."})],
    )
    fake_llm.speak(["Go at dawn, ", "says the planner."])
    async with MiniAgents():
        found = [await piece async for piece in voice.inquire(question(api))]
    (seen,) = given
    assert [(type(message), message.text) for message in seen] == [
        (UserMessage, "Plan my trip."),
        (AssistantMessage, "One moment."),
        (UserMessage, "A plan for the trip."),
    ]
    return found


async def test_a_handoff_gives_the_text_agent_the_conversation_and_its_answer_goes_back(
    api: Api, fake_llm: FakeLLMServer
) -> None:
    found = await _handed_off(api, fake_llm)
    (handed,) = of(HandoffResult, found)
    assert (handed.handed_to, handed.text, handed.tool_name) == (
        "PLANNER",
        "Go at dawn.",
        "transfer_to_planner",
    )
    (called,) = of(LLMToolCallMessage, found)
    assert called.arguments == {"request": "A plan for the trip."}
    said = [piece.text for piece in of(Transcript, found) if piece.role == "assistant"]
    assert said == ["One moment.", "Go at dawn, says the planner."]
    record = fake_llm.realtime_sessions[0]
    (output,) = record.tool_outputs.values()
    assert output_of(api, output) == "Go at dawn."
    tools = record.config.get("tools") or []
    names = json.dumps(tools)
    assert "transfer_to_planner" in names
    assert "Plans trips" in names


async def test_a_handoff_reads_the_users_turn_before_the_answer_it_got_when_transcribed_late(
    fake_llm: FakeLLMServer,
) -> None:
    # OpenAI transcribes the user's speech apart from the reply: its transcription may come
    # after the reply's first events (was: the conversation a handoff reads put the user's
    # words after the model's answer to them)
    api = APIS[0]
    found = await _handed_off(api, fake_llm, heard_after=1)
    user = [piece for piece in of(Transcript, found) if piece.role == "user"]
    assert [piece.text for piece in user] == ["Plan my trip."]
    sent = [event["type"] for event in fake_llm.realtime_sessions[0].sent]
    transcribed = sent.index("conversation.item.input_audio_transcription.completed")
    assert sent.index("response.output_audio.delta") < transcribed  # (it came late)


async def test_a_handoff_reads_the_users_words_told_in_pieces_whole_before_their_answer(
    api: Api, fake_llm: FakeLLMServer
) -> None:
    # Gemini may transcribe the user's turn in pieces (unfinished ones, then a finished one):
    # the session tells the words once, whole, before the model's answer to them, and the
    # conversation a handoff reads has them so (OpenAI tells them whole, joined)
    found = await _handed_off(api, fake_llm, heard=["Plan ", "my ", "trip."])
    told = [f"{piece.role}: {piece.text}" for piece in of(Transcript, found)]
    assert told == [
        "user: Plan my trip.",
        "assistant: One moment.",
        "assistant: Go at dawn, says the planner.",
    ]
    if api.name == "gemini":  # (told on the wire in pieces, the last one finished)
        sent = fake_llm.realtime_sessions[0].sent
        words = [
            event["serverContent"]["inputTranscription"]
            for event in sent
            if "inputTranscription" in event.get("serverContent", {})
        ]
        assert words == [
            {"text": "Plan "},
            {"text": "my "},
            {"text": "trip.", "finished": True},
        ]


async def test_the_calls_of_a_reply_the_user_cut_short_are_stopped_and_never_answered(
    api: Api, fake_llm: FakeLLMServer
) -> None:
    # (was: OpenAI's calls of a reply that ended "cancelled", and the calls Gemini withdrew
    # with a toolCallCancellation, ran on, and their outputs were sent to the model)
    started, release = asyncio.Event(), asyncio.Event()
    stopped: list[BaseException] = []

    async def lookup(city: str) -> str:
        """Looks the weather up."""
        started.set()
        try:
            await release.wait()
        except BaseException as error:
            stopped.append(error)
            raise
        return f"Sunny in {city}."

    fake_llm.speak(
        ["Let me ", "check."],
        tool_calls=[ToolCall("lookup", {"city": "Oslo"}, id="call_1")],
        calls_first=True,
        pause_after=1,
    )
    fake_llm.speak(["Yes?"], heard="Wait!")
    async with MiniAgents():
        call = api.voice(fake_llm, tools=[lookup]).initiate_inquiry()
        call.send_message(question(api))
        pieces = aiter(call.reply_sequence(finish_call=False))
        while not issubclass((piece := await anext(pieces)).message_class, ToolResultMessage):
            pass
        result = piece
        await started.wait()
        call.send_message([*speech(api), *silence(api)])  # the user speaks over the model
        while (piece := await anext(pieces)).message_class is not TurnEnd:
            pass
        release.set()  # (a call run on would finish now, and its output go to the model)
        call.finish()
        rest = [await each async for each in pieces]
        withdrawn = await result
    assert [type(error) for error in stopped] == [asyncio.CancelledError]
    assert isinstance(withdrawn, LLMToolResultMessage)
    assert withdrawn.is_error
    assert "withdrew the call" in (withdrawn.text or "")
    assert [turn.status for turn in of(TurnEnd, [await piece, *rest])] == [
        "cancelled",
        "completed",
    ]
    assert isinstance(rest[-1], SessionEnd)
    record = fake_llm.realtime_sessions[0]
    assert record.tool_outputs == {}
    assert record.errors == []


async def test_a_callers_tool_result_is_answered_once(api: Api, fake_llm: FakeLLMServer) -> None:
    # (was, on Gemini: the session also asked for a reply, turn_complete, after the output it
    # sent, which Gemini answers by itself: a second reply, or a refusal while one was under
    # way); the session's own output of a call it cannot run comes first, answered once too
    fake_llm.speak(["Let me ", "check."], tool_calls=[ToolCall("lookup", id="call_1")])
    fake_llm.speak(["I have no such tool."])
    fake_llm.speak(["Sunny, ", "they say."])
    async with MiniAgents():
        call = api.voice(fake_llm).initiate_inquiry()
        call.send_message(question(api))
        pieces = aiter(call.reply_sequence(finish_call=False))
        turns = 0
        while turns < 2:
            turns += (await anext(pieces)).message_class is TurnEnd
        call.send_message(ToolResultMessage(tool_name="lookup", call_id="call_1", text="Sunny."))
        call.finish()
        rest = [await each async for each in pieces]
    said = [piece.text for piece in of(Transcript, rest) if piece.role == "assistant"]
    assert said == ["Sunny, they say."]
    assert [turn.status for turn in of(TurnEnd, rest)] == ["completed"]
    record = fake_llm.realtime_sessions[0]
    assert len(record.replies) == 3
    assert record.errors == []
    assert output_of(api, record.tool_outputs["call_1"]) == "Sunny."
    if api.name == "gemini":
        assert "clientContent" not in record.received_types()


async def test_a_tool_still_running_when_the_session_ends_ends_with_a_result_saying_so(
    api: Api, fake_llm: FakeLLMServer
) -> None:
    # (was: its result in the reply failed with a StreamCancelledError, so a reader that
    # awaited every piece failed at the session's end)
    started = asyncio.Event()

    async def lookup(city: str) -> str:
        """Looks the weather up."""
        started.set()
        await asyncio.Event().wait()  # (never done)
        return city

    fake_llm.speak(["Let me ", "check."], tool_calls=[ToolCall("lookup", {"city": "Oslo"})])
    async with MiniAgents():
        call = api.voice(fake_llm, tools=[lookup], drain_timeout=0).initiate_inquiry()
        call.send_message("The weather in Oslo?")
        pieces = aiter(call.reply_sequence(finish_call=False))
        while not issubclass((piece := await anext(pieces)).message_class, ToolResultMessage):
            pass
        await started.wait()
        call.finish()
        rest = [await each async for each in pieces]
        result = await piece
    assert isinstance(result, LLMToolResultMessage)
    assert result.is_error
    assert result.text == "The session ended before the tool finished."
    assert isinstance(rest[-1], SessionEnd)
    assert fake_llm.realtime_sessions[0].tool_outputs == {}


def test_a_tools_sys_exit_ends_the_program_with_its_code() -> None:
    # (was: the session's delivery of the result caught the SystemExit, logged it at DEBUG
    # and went on: the program ended as if the tool had failed, with 0). In a child process:
    # a SystemExit let out of this test's loop would reach pytest's plugins.
    child = ROOT / "tests" / "ext" / "realtime" / "exiting_child.py"
    ran = run_python([str(child)], ROOT)
    assert ran.returncode == 3, ran.stderr
    # (was: asyncio logged the SystemExit again as the program stopped, as lost)
    assert "never retrieved" not in ran.stderr, ran.stderr


def test_a_sys_exit_in_the_input_ends_the_program_with_its_code() -> None:
    # (was: the session's reader of its input caught the SystemExit and ended only the
    # session with it: a program that did not read the reply ended with 0)
    child = ROOT / "tests" / "ext" / "realtime" / "exiting_child.py"
    ran = run_python([str(child), "input"], ROOT)
    assert ran.returncode == 4, ran.stderr
    assert "never retrieved" not in ran.stderr, ran.stderr


def test_a_sys_exit_sending_a_tools_output_ends_the_program_with_its_code() -> None:
    # (was: the session's sending of the output caught the SystemExit and ended only the
    # session with it, as it does any other error: a program that did not read the reply
    # ended with 0)
    child = ROOT / "tests" / "ext" / "realtime" / "exiting_child.py"
    ran = run_python([str(child), "output"], ROOT)
    assert ran.returncode == 5, ran.stderr
    assert "never retrieved" not in ran.stderr, ran.stderr


class _Halted(BaseException):
    """A ``BaseException`` that is neither an exit nor a cancellation (as DBOS's refusal)."""


async def test_a_tools_base_exception_ends_the_session_with_it(
    api: Api, fake_llm: FakeLLMServer
) -> None:
    # (was: it was raised out of the task that delivers the result, stored there and never
    # read: the session went on without the tool's output, and asyncio logged it as lost)
    def halt() -> str:
        """Stops everything."""
        raise _Halted("stop")

    fake_llm.speak(["Let me ", "stop."], tool_calls=[ToolCall("halt", {})])
    async with MiniAgents():
        call = api.voice(fake_llm, tools=[halt]).initiate_inquiry()
        call.send_message("Stop, please.")
        pieces = aiter(call.reply_sequence(finish_call=False))
        while not issubclass((await anext(pieces)).message_class, ToolResultMessage):
            pass
        call.finish()
        with pytest.raises(_Halted):
            await _read_to_the_end(pieces)


async def _read_to_the_end(pieces: AsyncIterator[MessagePromise[Message]]) -> None:
    async for piece in pieces:
        await piece


async def test_a_gemini_turn_spoken_before_the_answer_to_a_tools_output_is_answered_after_it(
    fake_llm: FakeLLMServer,
) -> None:
    # (was: the model's turn answering the tool's output was taken as the answer of the
    # audio sent before it, so the input's end ended no turn: the session closed once that
    # turn ended, the user's words never transcribed nor answered)
    gemini = APIS[1]
    release = asyncio.Event()

    async def lookup(city: str) -> str:
        """Looks the weather up."""
        await release.wait()
        return f"Sunny in {city}."

    fake_llm.speak(["Let me ", "check."], tool_calls=[ToolCall("lookup", {"city": "Oslo"})])
    fake_llm.speak(["Sunny ", "there."])
    fake_llm.speak(["Rainy ", "tomorrow."], heard="And tomorrow?", heard_after=0)
    with manual_time() as clock:  # (no timer fires: the session closes on its events alone)
        async with MiniAgents():
            call = gemini.voice(fake_llm, tools=[lookup]).initiate_inquiry()
            call.send_message("The weather in Oslo?")
            pieces = aiter(call.reply_sequence(finish_call=False))
            while not issubclass((await anext(pieces)).message_class, ToolResultMessage):
                pass
            spoken = speech(gemini)  # (the user speaks as the tool runs, then the input ends)
            call.send_message(spoken)
            size = sum(len(chunk.audio) for chunk in spoken)
            await fake_llm.wait_realtime_async(0, lambda record: record.input_audio_bytes >= size)
            release.set()  # (its output answered first: the model's next turn)
            while (await anext(pieces)).message_class is not AudioChunk:
                pass
            call.finish()
            rest = [await each async for each in pieces]
    told = [
        f"{piece.role}: {piece.text}" if isinstance(piece, Transcript) else type(piece).__name__
        for piece in rest
        if isinstance(piece, TurnEnd | Transcript | SessionEnd)
    ]
    assert told == [
        "assistant: Sunny there.",
        "TurnEnd",
        "user: And tomorrow?",
        "assistant: Rainy tomorrow.",
        "TurnEnd",
        "SessionEnd",
    ]
    assert clock.elapsed == 0.0
    assert fake_llm.realtime_sessions[0].errors == []


async def test_a_turn_with_two_tool_calls_closes_at_once_once_their_answers_have_ended(
    api: Api, fake_llm: FakeLLMServer
) -> None:
    # (was, on Gemini: the session owed a reply for each tool's output sent, but the API
    # answers all of a turn's outputs in one reply, so one reply stayed owed and the
    # session waited its drain_timeout, 10 s by default, after the last reply; OpenAI is
    # asked for a reply for each output sent while the model is idle)
    both, release = asyncio.Event(), asyncio.Event()
    started: list[str] = []

    async def lookup(city: str) -> str:
        """Looks the weather up."""
        started.append(city)
        if len(started) == 2:
            both.set()
        await (both if city == "Oslo" else release).wait()  # (Oslo's output is sent first)
        return f"Sunny in {city}."

    calls = [ToolCall("lookup", {"city": "Oslo"}), ToolCall("lookup", {"city": "Bergen"})]
    fake_llm.speak(["Let me ", "check."], tool_calls=calls)
    answers = ["Sunny in Oslo.", "Bergen too."] if api.name == "openai" else ["Sunny in both."]
    for answer in answers:  # (OpenAI answers each output; Gemini both at once, once all sent)
        fake_llm.speak([answer])
    with manual_time() as clock:  # (no timer fires: the session closes on its events alone)
        async with MiniAgents():
            call = api.voice(fake_llm, tools=[lookup]).initiate_inquiry()
            call.send_message("The weather in Oslo and Bergen?")
            call.finish()  # (the input ends at once: the session closes once nothing is owed)
            pieces = aiter(call.reply_sequence())
            first: list[MessagePromise[Message]] = []  # (Bergen's result streams on: unread)
            await fake_llm.wait_realtime_async(0, lambda record: len(record.tool_outputs) == 1)
            ends = 0
            while api.name == "openai" and ends < 2:  # (its answer to Oslo's output ends first)
                first.append(piece := await anext(pieces))
                ends += issubclass(piece.message_class, TurnEnd)
            release.set()
            reading = asyncio.ensure_future(_pieces(pieces))
            try:  # (a guard: on the defect, the session never closes on the stopped clock)
                await fake_llm.wait_realtime_async(0, lambda r: r.outcome != "open", 10)
            except BaseException:
                reading.cancel()
                raise
            found = [await piece for piece in first] + await reading
    said = [piece.text for piece in of(Transcript, found)]
    assert said == ["Let me check.", *answers]
    assert [turn.status for turn in of(TurnEnd, found)] == ["completed"] * len(said)
    assert isinstance(found[-1], SessionEnd)
    assert clock.elapsed == 0.0
    record = fake_llm.realtime_sessions[0]
    assert record.outcome == "closed"
    assert [output_of(api, output) for output in record.tool_outputs.values()] == [
        "Sunny in Oslo.",
        "Sunny in Bergen.",
    ]
    assert record.errors == []


async def _pieces(pieces: AsyncIterator[MessagePromise[Message]]) -> list[Message]:
    return [await piece async for piece in pieces]


async def test_a_gemini_turn_spoken_between_two_tool_outputs_is_answered_and_the_session_closes(
    fake_llm: FakeLLMServer,
) -> None:
    # (was: the user's turn answered between the two outputs of one turn's calls cleared the
    # session's flag of an owed reply, so the second output owed one more, which never came:
    # the session waited its drain_timeout; and the link took that turn as the answer of the
    # first output, so the user's words were told last, at the close)
    gemini = APIS[1]
    release = asyncio.Event()

    async def lookup(city: str) -> str:
        """Looks the weather up."""
        if city == "Bergen":
            await release.wait()
        return f"Sunny in {city}."

    calls = [ToolCall("lookup", {"city": "Oslo"}), ToolCall("lookup", {"city": "Bergen"})]
    fake_llm.speak(["Let me ", "check."], tool_calls=calls)
    fake_llm.speak(["Still ", "checking."], heard="Any news?")
    fake_llm.speak(["Sunny in both."])
    with manual_time() as clock:  # (no timer fires: the session closes on its events alone)
        async with MiniAgents():
            call = gemini.voice(fake_llm, tools=[lookup]).initiate_inquiry()
            call.send_message("The weather in Oslo and Bergen?")
            pieces = aiter(call.reply_sequence(finish_call=False))
            found: list[MessagePromise[Message]] = []
            await fake_llm.wait_realtime_async(0, lambda record: len(record.tool_outputs) == 1)
            call.send_message(question(gemini))  # (the user speaks between the two outputs)
            ends = 0
            while ends < 2:  # (the turn with the calls, then the answer to the user's turn)
                found.append(piece := await anext(pieces))
                ends += issubclass(piece.message_class, TurnEnd)
            release.set()
            call.finish()
            reading = asyncio.ensure_future(_pieces(pieces))
            try:  # (a guard: on the defect, the session never closes on the stopped clock)
                await fake_llm.wait_realtime_async(0, lambda r: r.outcome != "open", 10)
            except BaseException:
                reading.cancel()
                raise
            rest = [await piece for piece in found] + await reading
    told = [
        f"{piece.role}: {piece.text}" if isinstance(piece, Transcript) else type(piece).__name__
        for piece in rest
        if isinstance(piece, TurnEnd | Transcript | SessionEnd)
    ]
    assert told == [
        "assistant: Let me check.",
        "TurnEnd",
        "user: Any news?",
        "assistant: Still checking.",
        "TurnEnd",
        "assistant: Sunny in both.",
        "TurnEnd",
        "SessionEnd",
    ]
    assert clock.elapsed == 0.0
    record = fake_llm.realtime_sessions[0]
    assert record.outcome == "closed"
    assert record.errors == []
    assert len(record.replies) == 3


async def test_a_gemini_turn_whose_call_was_withdrawn_owes_no_answer_to_its_other_output(
    fake_llm: FakeLLMServer,
) -> None:
    # (was: the output of the call that finished owed a reply, but Gemini withdrew the other
    # call of its turn, cut short by the user, and answers the user's turn alone: the session
    # waited its drain_timeout for a reply that never came)
    gemini = APIS[1]
    release = asyncio.Event()

    async def lookup(city: str) -> str:
        """Looks the weather up."""
        if city == "Bergen":
            await release.wait()
        return f"Sunny in {city}."

    calls = [ToolCall("lookup", {"city": "Oslo"}), ToolCall("lookup", {"city": "Bergen"})]
    fake_llm.speak(["Let me ", "check."], tool_calls=calls, calls_first=True, pause_after=1)
    fake_llm.speak(["Yes?"], heard="Wait!")
    with manual_time() as clock:
        async with MiniAgents():
            call = gemini.voice(fake_llm, tools=[lookup]).initiate_inquiry()
            call.send_message("The weather in Oslo and Bergen?")
            pieces = aiter(call.reply_sequence(finish_call=False))
            await fake_llm.wait_realtime_async(0, lambda record: len(record.tool_outputs) == 1)
            call.send_message(question(gemini))  # (the user speaks over the model)
            call.finish()
            reading = asyncio.ensure_future(_pieces(pieces))
            try:  # (a guard: on the defect, the session never closes on the stopped clock)
                await fake_llm.wait_realtime_async(0, lambda r: r.outcome != "open", 10)
            except BaseException:
                reading.cancel()
                raise
            found = await reading
    results = [piece for piece in found if isinstance(piece, LLMToolResultMessage)]
    assert [result.is_error for result in results] == [False, True]  # (Bergen's: withdrawn)
    assert results[0].text == "Sunny in Oslo."
    assert [turn.status for turn in of(TurnEnd, found)] == ["cancelled", "completed"]
    assert isinstance(found[-1], SessionEnd)
    assert clock.elapsed == 0.0
    record = fake_llm.realtime_sessions[0]
    assert [output_of(gemini, output) for output in record.tool_outputs.values()] == [
        "Sunny in Oslo."
    ]
    told = [
        event for event in record.sent if "toolCall" in event or "toolCallCancellation" in event
    ]
    assert [list(event) for event in told] == [["toolCall"], ["toolCallCancellation"]]
    assert told[1]["toolCallCancellation"]["ids"] == [
        each["id"] for each in told[0]["toolCall"]["functionCalls"][1:]
    ]
    assert record.errors == []
    release.set()


async def test_the_fake_gemini_sends_a_turns_calls_in_one_message_and_answers_them_once(
    fake_llm: FakeLLMServer,
) -> None:
    # (was: each call in a toolCall message of its own, as the real API never sends them)
    gemini = APIS[1]
    calls = [ToolCall("lookup", {"city": "Oslo"}), ToolCall("lookup", {"city": "Bergen"})]
    fake_llm.speak(["Let me ", "check."], tool_calls=calls)
    fake_llm.speak(["Sunny in both."])

    async def lookup(city: str) -> str:
        """Looks the weather up."""
        return f"Sunny in {city}."

    async with MiniAgents():
        found = await gemini.voice(fake_llm, tools=[lookup]).inquire("The weather?")
    record = fake_llm.realtime_sessions[0]
    [told] = [event["toolCall"] for event in record.sent if "toolCall" in event]
    assert [call["args"] for call in told["functionCalls"]] == [
        {"city": "Oslo"},
        {"city": "Bergen"},
    ]
    assert [piece.text for piece in of(Transcript, found)] == ["Let me check.", "Sunny in both."]
    assert len(record.replies) == 2
    assert record.errors == []


class _EachTurnAnsweredLink(ScriptedLink):
    """An API that answers tools' outputs by itself, the calls of each of its replies apart:
    asked, two replies call a tool each, and once both outputs are sent it answers each."""

    replies_to_tool_outputs = True

    def __init__(self) -> None:
        super().__init__()
        self.outputs: list[str] = []
        self.both = asyncio.Event()
        self.asked = asyncio.Event()

    async def asend_text(self, text: str, images: Sequence[ImagePart] = ()) -> None:
        return None

    async def arespond(self) -> None:
        self.asked.set()

    async def asend_tool_output(self, call_id: str, name: str, output: str) -> None:
        self.outputs.append(call_id)
        if len(self.outputs) == 2:
            self.both.set()

    async def events(self) -> AsyncIterator[RealtimeEvent]:
        await self.asked.wait()
        for number in (1, 2):
            yield ReplyStarted(f"r{number}")
            yield ToolCalled(f"call_{number}", "clock", "{}")
            yield ReplyEnded(f"r{number}", "completed")
        await self.both.wait()
        for number in (3, 4):
            yield ReplyStarted(f"r{number}")
            yield TextOut(f"item_{number}", f"Answer {number}.")
            yield ReplyEnded(f"r{number}", "completed")
            await asyncio.sleep(1)  # (the loop's clock: the session closes here if it owes none)
            if self.closed.is_set():
                return
        await self.closed.wait()


async def test_an_api_answering_each_replys_calls_apart_is_owed_each_answer() -> None:
    # (was: the outputs sent before the next reply started owed one reply together, so the
    # session closed after the first answer, the second one lost)
    def clock() -> str:
        """Tells the time."""
        return "Noon."

    link = _EachTurnAnsweredLink()
    voice = scripted_agent(lambda: link, "EACH").fork(tools=[clock])
    with virtual_time() as time:
        async with MiniAgents():
            found = await voice.inquire("What time is it, twice?")
    assert [piece.text for piece in of(Transcript, found)] == ["Answer 3.", "Answer 4."]
    assert isinstance(found[-1], SessionEnd)
    assert time.elapsed == 2.0  # (closed after the second answer, not at its drain_timeout)


class _WithdrawingAsItEndsLink(ScriptedLink):
    """An API whose reply calls a slow tool, withdraws the call once it runs, and ends."""

    def __init__(self, running: asyncio.Event) -> None:
        super().__init__()
        self.asked = asyncio.Event()
        self.running = running

    async def asend_text(self, text: str, images: Sequence[ImagePart] = ()) -> None:
        return None

    async def arespond(self) -> None:
        self.asked.set()

    async def events(self) -> AsyncIterator[RealtimeEvent]:
        await self.asked.wait()
        yield ReplyStarted("r1")
        yield ToolCalled("c1", "slow", "{}")
        await self.running.wait()
        yield ToolCancelled("c1")  # (the events end at once: the session closes meanwhile)


async def test_a_withdrawn_call_says_so_though_the_session_closes_before_its_tool_stops() -> None:
    # (was: which sentence ended the result was told by the timing: a withdrawal whose
    # cancellation reached the tool after the session began closing said the session ended)
    running = asyncio.Event()

    async def slow() -> str:
        """Takes its time."""
        running.set()
        await asyncio.Event().wait()
        return "Never."

    link = _WithdrawingAsItEndsLink(running)
    voice = scripted_agent(lambda: link, "WITHDRAWN").fork(tools=[slow])
    async with MiniAgents():
        found = await voice.inquire("Do the slow thing.")
    [result] = of(LLMToolResultMessage, found)
    assert result.is_error
    assert "withdrew the call" in (result.text or ""), result.text


class _TakingTextLink(ScriptedLink):
    """A scripted API that takes a text turn and the ask for a reply (and says nothing)."""

    async def asend_text(self, text: str, images: Sequence[ImagePart] = ()) -> None:
        return None

    async def arespond(self) -> None:
        return None


class _AskedLink(_TakingTextLink):
    """A scripted API whose script waits for the session's asks for a reply: ``asks[n]`` is
    set by the n-th ask, or by the close (a script waiting for one that never comes ends)."""

    def __init__(self, asks: int) -> None:
        super().__init__()
        self.asks = [asyncio.Event() for _ in range(asks)]

    async def arespond(self) -> None:
        next(ask for ask in self.asks if not ask.is_set()).set()

    async def aclose(self) -> None:
        await super().aclose()
        for ask in self.asks:
            ask.set()

    async def answered_last(self, reply: str) -> AsyncIterator[RealtimeEvent]:
        """The reply ``reply`` to the last ask (unless the close came first), then the end."""
        await self.asks[-1].wait()
        if not self.closed.is_set():
            yield ReplyStarted(reply)
            yield ReplyEnded(reply, "completed")
            await self.closed.wait()


class _CallOutsideAReplyLink(_TakingTextLink):
    """A defective link: it says a tool's call with no reply under way."""

    async def events(self) -> AsyncIterator[RealtimeEvent]:
        yield ReplyStarted("r1")
        yield ReplyEnded("r1", "completed")
        yield ToolCalled("c1", "clock", "{}")
        await self.closed.wait()


async def test_a_call_outside_any_reply_is_refused_as_the_links_defect() -> None:
    # (was: taken as a call of the previous reply, grouped with its calls)
    def clock() -> str:
        """Tells the time."""
        return "Noon."

    link = _CallOutsideAReplyLink()
    voice = scripted_agent(lambda: link, "DEFECT").fork(tools=[clock])
    async with MiniAgents():
        found, error = await pieces_then_error(voice.inquire("What time is it?"))
    assert isinstance(error, RealtimeError)
    assert "outside any reply" in str(error)
    assert "_CallOutsideAReplyLink" in str(error)
    assert of(LLMToolCallMessage, found) == []


class _FailingAsItCallsLink(_TakingTextLink):
    """An API whose reply calls a tool and fails at once, before the call's delivery runs."""

    async def events(self) -> AsyncIterator[RealtimeEvent]:
        yield ReplyStarted("r1")
        yield ToolCalled("c1", "clock", "{}")
        yield ServerFailed("The server fell over.")  # (no await between: the task never ran)


async def test_a_calls_result_ends_though_the_session_fails_before_its_delivery_runs() -> None:
    # (was: the delivery's task, cancelled before it first ran, never ended the result in the
    # reply: its reader waited for it for ever)
    def clock() -> str:
        """Tells the time."""
        return "Noon."

    voice = scripted_agent(_FailingAsItCallsLink, "FAILING").fork(tools=[clock])
    async with MiniAgents():
        found, error = await pieces_then_error(voice.inquire("What time is it?"))
    assert isinstance(error, RealtimeServerError)
    [result] = of(LLMToolResultMessage, found)
    assert result.is_error
    assert "The session ended before the tool finished." in (result.text or ""), result.text


class _WithdrawingWhileSentLink(_AskedLink):
    """An API that withdraws a call while its output is being sent (its tool had finished),
    then, in its next reply, calls another tool under the same call's id; its events end
    while that tool runs."""

    def __init__(self, running: asyncio.Event) -> None:
        super().__init__(asks=2)
        self.sending = asyncio.Event()
        self.withdrawn = asyncio.Event()
        self.running = running

    async def asend_tool_output(self, call_id: str, name: str, output: str) -> None:
        self.sending.set()
        await self.withdrawn.wait()

    async def events(self) -> AsyncIterator[RealtimeEvent]:
        await self.asks[0].wait()
        yield ReplyStarted("r1")
        yield ToolCalled("c1", "fast", "{}")
        await self.sending.wait()
        yield ToolCancelled("c1")
        self.withdrawn.set()
        yield ReplyEnded("r1", "completed")
        await self.asks[1].wait()  # (asked for by the output sent: its delivery is over)
        yield ReplyStarted("r2")
        yield ToolCalled("c1", "slow", "{}")
        await self.running.wait()


async def test_a_call_withdrawn_as_its_output_is_sent_leaves_no_mark_on_a_later_call() -> None:
    # (was: its id was kept as withdrawn for the rest of the session, one more a withdrawal,
    # so a later call of that id stopped by the session's end said the API withdrew it)
    running = asyncio.Event()

    def fast() -> str:
        """Answers at once."""
        return "Done."

    async def slow() -> str:
        """Takes its time."""
        running.set()
        await asyncio.Event().wait()
        return "Never."

    async def asked() -> AsyncIterator[str]:  # (open till the end: the session drains not)
        yield "Do both things."
        await link.closed.wait()

    link = _WithdrawingWhileSentLink(running)
    voice = scripted_agent(lambda: link, "REUSED").fork(tools=[fast, slow])
    async with MiniAgents():
        found = await voice.inquire(asked())
    first, second = of(LLMToolResultMessage, found)
    assert first.text == "Done."
    assert second.is_error
    assert "The session ended before the tool finished." in (second.text or ""), second.text


class _ReusingWhileSentLink(_AskedLink):
    """An API that calls a tool again under the id of a call whose output is being sent, and
    answers that output (by itself, or asked): the sending lasts until its reply has ended."""

    def __init__(self, answers_itself: bool) -> None:
        super().__init__(asks=2)
        self.replies_to_tool_outputs = answers_itself
        self.sending = asyncio.Event()
        self.go = asyncio.Event()
        self.sent = asyncio.Event()
        self.outputs: list[tuple[str, str]] = []

    async def asend_tool_output(self, call_id: str, name: str, output: str) -> None:
        self.outputs.append((call_id, output))
        self.sending.set()
        await self.go.wait()
        self.sent.set()  # (the session counts what it is owed before the events go on)

    async def events(self) -> AsyncIterator[RealtimeEvent]:
        await self.asks[0].wait()
        yield ReplyStarted("r1")
        yield ToolCalled("c1", "fast", "{}")
        await self.sending.wait()
        yield ToolCalled("c1", "later", "{}")
        yield ReplyEnded("r1", "completed")
        self.go.set()
        if not self.replies_to_tool_outputs:
            async for event in self.answered_last("r2"):  # (asked for by the output sent)
                yield event
            return
        await self.sent.wait()
        yield ReplyStarted("r2")  # (the API's answer to the output, by itself)
        yield ReplyEnded("r2", "completed")
        await self.closed.wait()


@pytest.mark.parametrize("answers_itself", [False, True], ids=["asked", "by_itself"])
async def test_a_call_under_the_id_of_an_output_being_sent_is_refused(
    answers_itself: bool,
) -> None:
    # (was: a call of the id whose output was being sent ran: its output was sent too, and
    # an API answering outputs by itself was owed a reply too many: the drain's timeout)
    def fast() -> str:
        """Answers at once."""
        return "Done."

    def later() -> str:
        """Answers at once too."""
        return "Later."

    link = _ReusingWhileSentLink(answers_itself)
    voice = scripted_agent(lambda: link, "REUSING").fork(tools=[fast, later])
    with virtual_time() as time:
        async with MiniAgents():
            found = await voice.inquire("Do both things.")
    assert link.outputs == [("c1", "Done.")]
    first, refused = of(LLMToolResultMessage, found)
    assert first.text == "Done."
    assert refused.is_error
    assert "being sent" in (refused.text or ""), refused.text
    assert isinstance(found[-1], SessionEnd)
    assert time.elapsed == 0  # (closed once answered, owing no reply: not at drain_timeout)


class _WithdrawingAsSentLink(_AskedLink):
    """An API that withdraws a call while its output is being sent (which takes a second of
    the loop's clock), and ends its reply; the input has ended by then."""

    def __init__(self) -> None:
        super().__init__(asks=2)
        self.sending = asyncio.Event()
        self.sent: list[tuple[str, str]] = []

    async def asend_tool_output(self, call_id: str, name: str, output: str) -> None:
        self.sending.set()
        await asyncio.sleep(1)  # (the loop's clock)
        self.sent.append((call_id, output))

    async def events(self) -> AsyncIterator[RealtimeEvent]:
        await self.asks[0].wait()
        yield ReplyStarted("r1")
        yield ToolCalled("c1", "fast", "{}")
        await self.sending.wait()
        yield ToolCancelled("c1")
        yield ReplyEnded("r1", "completed")
        async for event in self.answered_last("r2"):  # (asked for by the output sent)
            yield event


async def test_the_drain_waits_for_a_withdrawn_calls_output_being_sent() -> None:
    # (was: with the input ended, the session closed as soon as the call was withdrawn: the
    # send under way was cancelled, cut mid-way, or failed the session as the link closed)
    def fast() -> str:
        """Answers at once."""
        return "Done."

    link = _WithdrawingAsSentLink()
    voice = scripted_agent(lambda: link, "SENDING").fork(tools=[fast])
    with virtual_time() as time:
        async with MiniAgents():
            found = await voice.inquire("Do the thing.")
    assert link.sent == [("c1", "Done.")]
    assert isinstance(found[-1], SessionEnd)
    assert time.elapsed == 1.0


class _CallingTwiceLink(_AskedLink):
    """An API whose reply calls a slow tool, then, while it runs, another tool under the
    same call's id; the slow tool finishes once the reply has ended."""

    def __init__(self, running: asyncio.Event) -> None:
        super().__init__(asks=2)
        self.running = running
        self.release = asyncio.Event()
        self.outputs: list[tuple[str, str, str]] = []

    async def asend_tool_output(self, call_id: str, name: str, output: str) -> None:
        self.outputs.append((call_id, name, output))

    async def events(self) -> AsyncIterator[RealtimeEvent]:
        await self.asks[0].wait()
        yield ReplyStarted("r1")
        yield ToolCalled("c1", "slow", "{}")
        await self.running.wait()
        yield ToolCalled("c1", "fast", "{}")
        yield ReplyEnded("r1", "completed")
        self.release.set()
        async for event in self.answered_last("r2"):  # (asked for by the output sent)
            yield event


async def test_a_call_under_the_id_of_a_call_still_running_is_refused() -> None:
    # (was: the second call took the id's place: the first ran on untracked, its output
    # never sent, and neither a withdrawal nor the session's end would have stopped it)
    running = asyncio.Event()

    async def slow() -> str:
        """Takes its time."""
        running.set()
        await link.release.wait()
        return "Slow."

    def fast() -> str:
        """Answers at once."""
        return "Fast."

    link = _CallingTwiceLink(running)
    voice = scripted_agent(lambda: link, "TWICE").fork(tools=[slow, fast])
    async with MiniAgents():
        found = await voice.inquire("Do the thing.")
    assert link.outputs == [("c1", "slow", "Slow.")]
    first, refused = of(LLMToolResultMessage, found)
    assert first.text == "Slow."
    assert refused.is_error
    assert refused.tool_name == "fast"
    assert "still running" in (refused.text or ""), refused.text
    assert [call.tool_name for call in of(LLMToolCallMessage, found)] == ["slow", "fast"]
    assert isinstance(found[-1], SessionEnd)


class _ClosingAsSentLink(_TakingTextLink):
    """An API whose reply calls a tool, and whose sending of its output lasts until the
    link closes, then fails as a closed connection's does; its events end after that."""

    def __init__(self) -> None:
        super().__init__()
        self.asked = asyncio.Event()
        self.send_failed = asyncio.Event()

    async def arespond(self) -> None:
        self.asked.set()

    async def asend_tool_output(self, call_id: str, name: str, output: str) -> None:
        await self.closed.wait()
        self.send_failed.set()
        raise RealtimeConnectionError("The connection closed while the output was sent.")

    async def events(self) -> AsyncIterator[RealtimeEvent]:
        await self.asked.wait()
        yield ReplyStarted("r1")
        yield ToolCalled("c1", "fast", "{}")
        yield ReplyEnded("r1", "completed")
        await self.send_failed.wait()  # (the close's handshake: the events end after it)


async def test_a_drain_that_closes_over_an_output_being_sent_ends_the_session_well() -> None:
    # (was: the send the close cut short failed the session with the connection's error)
    def fast() -> str:
        """Answers at once."""
        return "Done."

    voice = scripted_agent(_ClosingAsSentLink, "CLOSING").fork(tools=[fast], drain_timeout=1)
    with virtual_time() as time:
        async with MiniAgents():
            found = await voice.inquire("Do the thing.")
    [result] = of(LLMToolResultMessage, found)
    assert result.text == "Done."
    assert isinstance(found[-1], SessionEnd)
    assert time.elapsed == 1.0  # (the drain gave up on the send at its timeout)


class _Refused(BaseException):
    """Not an ``Exception``: what a framework raises when it refuses to go on (DBOS's)."""


class _RefusingAsCutLink(_ClosingAsSentLink):
    """An API whose sending of an output lasts until the session cancels it, and then
    refuses to go on (a ``BaseException`` of its own); a close after that takes a second."""

    def __init__(self) -> None:
        super().__init__()
        self.refused = False
        self.sending = asyncio.Event()

    async def asend_tool_output(self, call_id: str, name: str, output: str) -> None:
        self.sending.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.refused = True
            raise _Refused from None

    async def events(self) -> AsyncIterator[RealtimeEvent]:
        await self.asked.wait()
        yield ReplyStarted("r1")
        yield ToolCalled("c1", "fast", "{}")
        yield ReplyEnded("r1", "completed")
        await self.closed.wait()

    async def aclose(self) -> None:
        await super().aclose()
        if self.refused:
            await asyncio.sleep(1)  # (the loop's clock)


async def test_a_task_failing_past_exception_as_the_session_ends_fails_it_leaving_no_task() -> None:
    # (was: the failure started a close of the link as the session's last wait began, which
    # waited only for the tasks it had: the close ran on after the session, nobody's)
    def fast() -> str:
        """Answers at once."""
        return "Done."

    link = _RefusingAsCutLink()
    voice = scripted_agent(lambda: link, "REFUSING").fork(tools=[fast], drain_timeout=1)
    found: list[Message] = []

    async def read() -> None:
        async for piece in voice.inquire("Do the thing."):
            found.append(await piece)

    with virtual_time() as time:
        async with MiniAgents():
            with pytest.raises(_Refused):  # (was: dropped, the session ended as if well)
                await read()
        assert link.refused
        assert isinstance(found[-1], SessionEnd)
        assert asyncio.all_tasks() == {asyncio.current_task()}
        assert time.elapsed == 2.0  # (the drain's timeout, then the close it started)


async def test_a_task_failing_past_exception_as_a_cancelled_session_ends_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # (was: dropped without a word: the session ended with its cancellation)
    def fast() -> str:
        """Answers at once."""
        return "Done."

    link = _RefusingAsCutLink()
    voice = scripted_agent(lambda: link, "REFUSING").fork(tools=[fast])
    with virtual_time():
        async with MiniAgents():
            reply = voice.inquire("Do the thing.")
            await link.sending.wait()
            reply.cancel()
    assert link.refused
    (record,) = [each for each in caplog.records if "no consumer" in each.getMessage()]
    assert "realtime session of REFUSING" in record.getMessage()
    assert record.exc_info is not None
    assert isinstance(record.exc_info[1], _Refused)
    caplog.clear()  # (expected)


async def test_a_session_whose_send_the_drains_close_cut_short_is_not_stored() -> None:
    # (was: the recording kept the session without the cut send, and its replay, where the
    # send is instant, sent an output the recording did not hold: an LLMCacheMissError)
    def fast() -> str:
        """Answers at once."""
        return "Done."

    links: list[_ClosingAsSentLink] = []

    def connect() -> _ClosingAsSentLink:
        links.append(_ClosingAsSentLink())
        return links[-1]

    store = MemoryCallStore()
    voice = scripted_agent(connect, "CUT").fork(tools=[fast], drain_timeout=1)
    with virtual_time():
        async with MiniAgents():
            for _ in range(2):  # (the second, with nothing stored, is made again: not replayed)
                with CallCache(store, mode="read_through").active():
                    found = await voice.inquire("Do the thing.")
                assert isinstance(found[-1], SessionEnd)
            replaying = CallCache(store, mode="replay")
            with replaying.active(), pytest.raises(LLMCacheMissError, match="no recording at all"):
                await voice.inquire("Do the thing.")
    assert len(links) == 2
    assert await store.acandidates("scripted", "scripted-model", 10) == []
