"""The fake LLM server's realtime APIs, as the raw SDKs see them: what it refuses, as the APIs do.

OpenAI Realtime: a reply asked for while one is under way, a truncation past the audio, the
output of a call never made are each an ``error`` event (the session goes on), recorded in
``LiveRecord.errors``; a text-only session streams ``output_text`` deltas. Gemini Live: a
first message that is not the setup closes the connection (code 1007). The record keeps
what each side sent, the input audio and the truncations.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import openai
import pytest

from miniagents.testing import FakeLLMServer, LiveRecord, tone


async def events_until(connection: Any, kind: str) -> list[dict[str, Any]]:
    """The server's events, up to the first of ``kind``."""
    found: list[dict[str, Any]] = []
    while not found or found[-1]["type"] != kind:
        found.append(json.loads(await asyncio.wait_for(connection.recv_bytes(), 10)))
    return found


async def test_the_fake_refuses_what_the_openai_realtime_api_refuses(
    fake_llm: FakeLLMServer,
) -> None:
    fake_llm.speak(["One ", "two."], pause_after=1)
    client = openai.AsyncOpenAI(base_url=fake_llm.openai_base_url, api_key="test")
    async with client.realtime.connect(model="gpt-realtime") as connection:
        await connection.send_raw(json.dumps({"type": "response.create"}))
        first = await events_until(connection, "response.output_audio_transcript.delta")
        item = next(e["item"]["id"] for e in first if e["type"] == "response.output_item.added")
        await connection.send_raw(json.dumps({"type": "response.create", "event_id": "e1"}))
        refused = (await events_until(connection, "error"))[-1]["error"]
        assert (refused["code"], refused["event_id"]) == (
            "conversation_already_has_active_response",
            "e1",
        )
        truncate = {"type": "conversation.item.truncate", "item_id": item, "audio_end_ms": 500}
        await connection.send_raw(json.dumps({**truncate, "content_index": 0}))
        refused = (await events_until(connection, "error"))[-1]["error"]
        assert "shorter than 500ms" in refused["message"]
        output = {"type": "function_call_output", "call_id": "nope", "output": "x"}
        await connection.send_raw(json.dumps({"type": "conversation.item.create", "item": output}))
        refused = (await events_until(connection, "error"))[-1]["error"]
        assert "nope" in refused["message"]
        await connection.send_raw(json.dumps({**truncate, "audio_end_ms": 60, "content_index": 0}))
        cut = (await events_until(connection, "conversation.item.truncated"))[-1]
        assert cut["audio_end_ms"] == 60
    record = await fake_llm.wait_realtime_async(0, lambda record: record.outcome != "open")
    assert [error.code for error in record.errors] == [
        "conversation_already_has_active_response",
        "invalid_value",
        "invalid_value",
    ]
    assert record.truncations == [(item, 60)]
    assert record.outcome == "closed"


async def test_a_text_only_session_streams_text(fake_llm: FakeLLMServer) -> None:
    fake_llm.speak(["Hello ", "there."])
    client = openai.AsyncOpenAI(base_url=fake_llm.openai_base_url, api_key="test")
    async with client.realtime.connect(model="gpt-realtime") as connection:
        session = {"type": "realtime", "output_modalities": ["text"]}
        await connection.send_raw(json.dumps({"type": "session.update", "session": session}))
        await connection.send_raw(json.dumps({"type": "response.create"}))
        found = await events_until(connection, "response.done")
    deltas = [event["delta"] for event in found if event["type"] == "response.output_text.delta"]
    assert deltas == ["Hello ", "there."]
    assert not any("audio" in event["type"] for event in found)


async def test_the_fake_hears_speech_by_its_loudness_and_ends_the_turn_on_quiet(
    fake_llm: FakeLLMServer,
) -> None:
    import base64

    client = openai.AsyncOpenAI(base_url=fake_llm.openai_base_url, api_key="test")
    async with client.realtime.connect(model="gpt-realtime") as connection:
        for chunk in [tone(100, 440, 24000)] * 2 + [bytes(4800)] * 5:
            audio = base64.b64encode(chunk).decode()
            await connection.send_raw(
                json.dumps({"type": "input_audio_buffer.append", "audio": audio})
            )
        found = await events_until(connection, "response.done")
    kinds = [event["type"] for event in found]
    started = kinds.index("input_audio_buffer.speech_started")
    assert kinds.index("input_audio_buffer.speech_stopped") > started
    stopped = next(e for e in found if e["type"] == "input_audio_buffer.speech_stopped")
    assert stopped["audio_end_ms"] == 700  # 500 ms of quiet after the speech
    said = [e["delta"] for e in found if e["type"] == "response.output_audio_transcript.delta"]
    assert "".join(said) == "You said: (200 ms of speech)"


async def test_gemini_live_wants_its_setup_first(fake_llm: FakeLLMServer) -> None:
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosedError

    url = fake_llm.gemini_base_url.replace("http://", "wss://")
    path = "/ws/google.ai.generativelanguage.v1beta.GenerativeService.BidiGenerateContent"
    async with connect(url + path, ssl=fake_llm.tls_context) as socket:
        await socket.send(json.dumps({"realtimeInput": {"text": "Hi"}}))
        with pytest.raises(ConnectionClosedError) as closed:
            await socket.recv()
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1007
    record = fake_llm.realtime_sessions[0]
    assert record.outcome == "failed"


async def test_a_change_noted_on_a_session_record_wakes_a_wait_for_it(
    fake_llm: FakeLLMServer,
) -> None:
    # (was: the wires and the server changed a record through its private _note, which no
    # other module may call; LiveRecord.note is the record's public way, under its lock)
    client = openai.AsyncOpenAI(base_url=fake_llm.openai_base_url, api_key="test")
    async with client.realtime.connect(model="gpt-realtime") as connection:
        await events_until(connection, "session.created")
        record = fake_llm.realtime_sessions[0]
        waited = asyncio.ensure_future(
            fake_llm.wait_realtime_async(0, lambda found: ("noted", 1) in found.truncations)
        )
        await asyncio.to_thread(record.note, lambda: record.truncations.append(("noted", 1)))
        assert await waited is record
        update = {"type": "session.update", "session": {"instructions": "Be brief."}}
        await connection.send_raw(json.dumps(update))
        await events_until(connection, "session.updated")
    assert record.config["instructions"] == "Be brief."  # (the wire's note, made so)


async def test_the_fake_refuses_an_unknown_gemini_setup_field_closing_the_session(
    fake_llm: FakeLLMServer,
) -> None:
    # (was: taken silently, as the OpenAI fake took an unknown session.update field; and
    # labels, which google-genai writes into the Gemini API's setup, was refused)
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosedError

    url = fake_llm.gemini_base_url.replace("http://", "wss://")
    path = "/ws/google.ai.generativelanguage.v1beta.GenerativeService.BidiGenerateContent"
    known = {
        "model": "models/gemini-live",
        "generation_config": {"temperature": 0.2},
        "labels": {"team": "voice"},
    }
    async with connect(url + path, ssl=fake_llm.tls_context) as socket:
        await socket.send(json.dumps({"setup": known}))  # (snake_case, as a raw client's)
        assert json.loads(await socket.recv()) == {"setupComplete": {}}
    async with connect(url + path, ssl=fake_llm.tls_context) as socket:
        await socket.send(json.dumps({"setup": {**known, "temprature": 0.2}}))
        with pytest.raises(ConnectionClosedError) as closed:
            await socket.recv()
    said = (
        "Invalid JSON payload received. Unknown name \"temprature\" at 'setup': Cannot find field."
    )
    assert closed.value.rcvd is not None
    assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (1007, said)
    record = await fake_llm.wait_realtime_async(1, lambda record: record.outcome != "open")
    assert record.outcome == "failed"
    assert [(error.code, error.message) for error in record.errors] == [("invalid_argument", said)]
    assert record.config == {}  # (the setup refused: not taken)


@pytest.mark.parametrize(
    ("setup", "name", "where"),
    [
        ({"generationConfig": {"temprature": 0.2}}, "temprature", "setup.generation_config"),
        (
            {
                "generation_config": {
                    "speech_config": {"voice_config": {"prebuilt_voice_config": {"voiceNam": "P"}}}
                }
            },
            "voiceNam",
            "setup.generation_config.speech_config.voice_config.prebuilt_voice_config",
        ),
        (
            {
                "tools": [
                    {"googleSearch": {}},
                    {
                        "functionDeclarations": [
                            {"name": "f", "parameters": {"type": "object", "any": 1}},
                            {"name": "g", "strict": True},
                        ]
                    },
                ]
            },
            "strict",
            "setup.tools[1].function_declarations[1]",
        ),
        (
            {"realtimeInputConfig": {"automaticActivityDetection": {"silenceMs": 400}}},
            "silenceMs",
            "setup.realtime_input_config.automatic_activity_detection",
        ),
    ],
    ids=["generation", "voice", "tool", "detection"],
)
async def test_the_fake_refuses_an_unknown_field_inside_a_gemini_setup_naming_where(
    fake_llm: FakeLLMServer, setup: dict[str, Any], name: str, where: str
) -> None:
    # (was: only the setup's own fields were checked, so that a misspelt field in its
    # generation config, its voice, a tool or its activity detection was taken silently;
    # a tool's parameters, a free JSON schema, are still not looked into)
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosedError

    url = fake_llm.gemini_base_url.replace("http://", "wss://")
    path = "/ws/google.ai.generativelanguage.v1beta.GenerativeService.BidiGenerateContent"
    async with connect(url + path, ssl=fake_llm.tls_context) as socket:
        await socket.send(json.dumps({"setup": {"model": "models/gemini-live", **setup}}))
        with pytest.raises(ConnectionClosedError) as closed:
            await socket.recv()
    said = (
        f"Invalid JSON payload received. Unknown name \"{name}\" at '{where}': Cannot find field."
    )
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1007
    assert said.startswith(closed.value.rcvd.reason)  # (a close's reason: 123 bytes at most)
    record = await fake_llm.wait_realtime_async(0, lambda record: record.outcome != "open")
    assert [(error.code, error.message) for error in record.errors] == [("invalid_argument", said)]


@pytest.mark.parametrize(
    ("session", "param"),
    [
        (
            {"type": "realtime", "audio": {"output": {"voice": "nope"}}},
            "session.audio.output.voice",
        ),
        (
            {"audio": {"input": {"turn_detection": {"type": "vad"}}}},
            "session.audio.input.turn_detection.type",
        ),
        ({"audio": {"input": {"turn_detection": "on"}}}, "session.audio.input.turn_detection"),
        ({"output_modalities": ["video"]}, "session.output_modalities"),
        ({"type": "transcript"}, "session.type"),
    ],
)
async def test_the_fake_refuses_a_session_update_the_openai_api_refuses_and_goes_on(
    fake_llm: FakeLLMServer, session: dict[str, Any], param: str
) -> None:
    client = openai.AsyncOpenAI(base_url=fake_llm.openai_base_url, api_key="test")
    async with client.realtime.connect(model="gpt-realtime") as connection:
        update = {"type": "session.update", "session": session, "event_id": "e1"}
        await connection.send_raw(json.dumps(update))
        refused = (await events_until(connection, "error"))[-1]["error"]
        assert (refused["type"], refused["code"]) == ("invalid_request_error", "invalid_value")
        assert (refused["param"], refused["event_id"]) == (param, "e1")
        assert refused["message"].startswith(f"Invalid value for '{param}': ")
        good = {"type": "realtime", "audio": {"output": {"voice": "marin"}}}
        await connection.send_raw(json.dumps({"type": "session.update", "session": good}))
        updated = (await events_until(connection, "session.updated"))[-1]["session"]
        assert updated["audio"]["output"]["voice"] == "marin"  # (the session went on)
        assert updated["output_modalities"] == ["audio"]  # (nothing of the refused one taken)
    record = await fake_llm.wait_realtime_async(0, lambda record: record.outcome != "open")
    assert [(error.code, error.param) for error in record.errors] == [("invalid_value", param)]


@pytest.mark.parametrize(
    ("session", "param"),
    [
        ({"type": "realtime", "temperature": 0.8}, "session.temperature"),
        ({"audio": {"output": {"voice": "marin", "volume": 2}}}, "session.audio.output.volume"),
        (
            {"audio": {"input": {"transcription": {"lang": "en"}}}},
            "session.audio.input.transcription.lang",
        ),
        (
            {"audio": {"input": {"turn_detection": {"type": "server_vad", "x": 1}}}},
            "session.audio.input.turn_detection.x",
        ),
        ({"audio": {"speaker": {}}}, "session.audio.speaker"),
    ],
)
async def test_the_fake_refuses_an_unknown_session_field_naming_it_as_the_openai_api_does(
    fake_llm: FakeLLMServer, session: dict[str, Any], param: str
) -> None:
    # (was: taken silently, where the API refuses the update)
    client = openai.AsyncOpenAI(base_url=fake_llm.openai_base_url, api_key="test")
    async with client.realtime.connect(model="gpt-realtime") as connection:
        update = {"type": "session.update", "session": session, "event_id": "e1"}
        await connection.send_raw(json.dumps(update))
        refused = (await events_until(connection, "error"))[-1]["error"]
        assert refused == {
            "type": "invalid_request_error",
            "code": "unknown_parameter",
            "message": f"Unknown parameter: '{param}'.",
            "param": param,
            "event_id": "e1",
        }
    record = await fake_llm.wait_realtime_async(0, lambda record: record.outcome != "open")
    assert record.config == {}  # (nothing of it taken)


async def test_the_fake_refuses_a_voice_once_the_model_has_spoken_as_the_openai_api_does(
    fake_llm: FakeLLMServer,
) -> None:
    client = openai.AsyncOpenAI(base_url=fake_llm.openai_base_url, api_key="test")
    voice = {"type": "realtime", "audio": {"output": {"voice": "marin"}}}
    async with client.realtime.connect(model="gpt-realtime") as connection:
        await connection.send_raw(json.dumps({"type": "session.update", "session": voice}))
        await events_until(connection, "session.updated")  # (before any reply: taken)
        await connection.send_raw(json.dumps({"type": "response.create"}))
        await events_until(connection, "response.done")
        again = {"type": "realtime", "audio": {"output": {"voice": "marin"}}}
        update = {"type": "session.update", "session": again, "event_id": "e2"}
        await connection.send_raw(json.dumps(update))
        refused = (await events_until(connection, "error"))[-1]["error"]
        assert refused == {
            "type": "invalid_request_error",
            "code": "cannot_update_voice",
            "message": "Cannot update a conversation's voice if assistant audio is present.",
            "param": None,
            "event_id": None,
        }
        other = {"type": "realtime", "instructions": "Be brief."}
        await connection.send_raw(json.dumps({"type": "session.update", "session": other}))
        updated = (await events_until(connection, "session.updated"))[-1]["session"]
        assert updated["instructions"] == "Be brief."  # (the session went on)
        assert updated["audio"]["output"]["voice"] == "marin"


async def test_the_fake_closes_an_openai_session_after_a_fatal_error_as_the_api_does(
    fake_llm: FakeLLMServer,
) -> None:
    from websockets.exceptions import ConnectionClosed

    expired = "Your session hit the maximum duration of 60 minutes."
    fake_llm.speak(error=expired, error_code="session_expired")
    fake_llm.speak(error="The server had an error.")
    client = openai.AsyncOpenAI(base_url=fake_llm.openai_base_url, api_key="test")
    closes = []
    for _ in range(2):
        async with client.realtime.connect(model="gpt-realtime") as connection:
            await connection.send_raw(json.dumps({"type": "response.create", "event_id": "e1"}))
            closes.append((await events_until(connection, "error"))[-1]["error"])
            with pytest.raises(ConnectionClosed) as closed:
                await asyncio.wait_for(connection.recv_bytes(), 10)
            assert closed.value.rcvd is not None
            closes[-1]["close"] = (closed.value.rcvd.code, closed.value.rcvd.reason)
    expired_error, server_error = closes
    assert (expired_error["type"], expired_error["code"], expired_error["event_id"]) == (
        "invalid_request_error",
        "session_expired",
        None,  # (it refuses no client event: the session is over)
    )
    assert expired_error["close"] == (1001, expired)
    assert (server_error["type"], server_error["code"]) == ("server_error", "server_error")
    assert server_error["close"] == (1011, "The server had an error.")
    assert [record.outcome for record in fake_llm.realtime_sessions] == ["failed", "failed"]
    # (the server's error fails the reply asked for, which began first; an expiry is no reply's)
    expired_sent, failed_sent = (record.sent_types() for record in fake_llm.realtime_sessions)
    assert "response.created" not in expired_sent
    assert failed_sent[-3:] == ["response.created", "response.done", "error"]


@pytest.mark.parametrize(
    ("setup", "sent", "said"),
    [
        (
            {},
            {"realtimeInput": {"activityStart": {}}},
            "activity_start can only be sent when automatic activity detection is disabled "
            "(realtime_input_config.automatic_activity_detection.disabled).",
        ),
        (
            {"realtimeInputConfig": {"activityHandling": "NO_BARGE_IN"}},
            None,
            "Invalid value at 'setup.realtime_input_config.activity_handling' "
            "(type.googleapis.com/google.ai.generativelanguage.v1beta.ActivityHandling), "
            '"NO_BARGE_IN"',
        ),
    ],
    ids=["mark-with-detection", "handling"],
)
async def test_the_fake_refuses_an_activity_mark_or_handling_gemini_does_not_take(
    fake_llm: FakeLLMServer, setup: dict[str, Any], sent: dict[str, Any] | None, said: str
) -> None:
    # (was: activity_start was ignored, with the API's detection on too, and any
    # activityHandling taken: the fake now does what they say, and refuses what they cannot)
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosedError

    url = fake_llm.gemini_base_url.replace("http://", "wss://")
    path = "/ws/google.ai.generativelanguage.v1beta.GenerativeService.BidiGenerateContent"
    async with connect(url + path, ssl=fake_llm.tls_context) as socket:
        await socket.send(json.dumps({"setup": {"model": "models/gemini-live", **setup}}))
        if sent is not None:
            assert json.loads(await socket.recv()) == {"setupComplete": {}}
            await socket.send(json.dumps(sent))
        with pytest.raises(ConnectionClosedError) as closed:
            await socket.recv()
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1007
    record = await fake_llm.wait_realtime_async(0, lambda record: record.outcome != "open")
    assert [(error.code, error.message) for error in record.errors] == [("invalid_argument", said)]


async def test_a_gemini_text_turn_during_a_reply_is_answered_after_it(
    fake_llm: FakeLLMServer,
) -> None:
    # (was: a realtimeInput text turn started a reply at once, refused while one was under
    # way and told to nobody: the turn went unanswered)
    from websockets.asyncio.client import connect

    fake_llm.speak(["Hello ", "there."], pause_after=1)
    fake_llm.speak(["Yes?"])
    url = fake_llm.gemini_base_url.replace("http://", "wss://")
    path = "/ws/google.ai.generativelanguage.v1beta.GenerativeService.BidiGenerateContent"
    async with connect(url + path, ssl=fake_llm.tls_context) as socket:

        async def until_turn_complete() -> None:
            while "turnComplete" not in json.loads(await asyncio.wait_for(socket.recv(), 10)).get(
                "serverContent", {}
            ):
                pass

        await socket.send(json.dumps({"setup": {"model": "models/gemini-live"}}))
        assert json.loads(await socket.recv()) == {"setupComplete": {}}
        await socket.send(json.dumps({"realtimeInput": {"text": "Hi."}}))
        first = json.loads(await asyncio.wait_for(socket.recv(), 10))
        assert "modelTurn" in first["serverContent"]  # (the reply's first piece: then held)
        await socket.send(json.dumps({"realtimeInput": {"text": "Wait!"}}))
        record = await fake_llm.wait_realtime_async(0, lambda record: len(record.received) >= 3)
        record.resume()
        await until_turn_complete()
        await until_turn_complete()  # the second turn's answer
    assert [each.transcript for each in record.replies] == [("Hello ", "there."), ("Yes?",)]
    assert record.errors == []


async def test_each_gemini_turn_ended_during_one_reply_is_answered_in_order(
    fake_llm: FakeLLMServer,
) -> None:
    # (was: the fake kept one turn to answer after the reply, so two turns ended during it
    # got a single answer, to the last one's words: the first went unanswered)
    from websockets.asyncio.client import connect

    fake_llm.speak(["Hello ", "there."], pause_after=1)
    url = fake_llm.gemini_base_url.replace("http://", "wss://")
    path = "/ws/google.ai.generativelanguage.v1beta.GenerativeService.BidiGenerateContent"
    async with connect(url + path, ssl=fake_llm.tls_context) as socket:

        async def until_turn_complete() -> None:
            while "turnComplete" not in json.loads(await asyncio.wait_for(socket.recv(), 10)).get(
                "serverContent", {}
            ):
                pass

        await socket.send(json.dumps({"setup": {"model": "models/gemini-live"}}))
        assert json.loads(await socket.recv()) == {"setupComplete": {}}
        await socket.send(json.dumps({"realtimeInput": {"text": "Hi."}}))
        first = json.loads(await asyncio.wait_for(socket.recv(), 10))
        assert "modelTurn" in first["serverContent"]  # (the reply's first piece: then held)
        await socket.send(json.dumps({"realtimeInput": {"text": "One."}}))
        await socket.send(json.dumps({"realtimeInput": {"text": "Two."}}))
        record = await fake_llm.wait_realtime_async(0, lambda record: len(record.received) >= 4)
        record.resume()
        for _ in range(3):  # the held reply, then an answer to each turn
            await until_turn_complete()
    assert [each.transcript for each in record.replies] == [
        ("Hello ", "there."),
        ("You ", "said: ", "One."),
        ("You ", "said: ", "Two."),
    ]
    assert record.errors == []


async def test_a_reply_the_openai_client_cancels_says_so_and_one_cut_by_speech_says_that(
    fake_llm: FakeLLMServer,
) -> None:
    # (was: every cancelled reply said "turn_detected", the client's response.cancel too)
    import base64

    fake_llm.speak(["One ", "two."], pause_after=1)
    fake_llm.speak(["Three ", "four."], pause_after=1)
    client = openai.AsyncOpenAI(base_url=fake_llm.openai_base_url, api_key="test")
    async with client.realtime.connect(model="gpt-realtime") as connection:
        await connection.response.create()
        await events_until(connection, "response.output_audio_transcript.delta")
        await connection.response.cancel()
        cancelled = (await events_until(connection, "response.done"))[-1]["response"]
        await connection.response.create()
        await events_until(connection, "response.output_audio_transcript.delta")
        speech = base64.b64encode(tone(100, 440, 24000)).decode()
        await connection.input_audio_buffer.append(audio=speech)  # (the user cuts it short)
        while (event := await asyncio.wait_for(connection.recv(), 10)).type != "response.done":
            pass
    assert cancelled["status"] == "cancelled"
    assert cancelled["status_details"] == {"type": "cancelled", "reason": "client_cancelled"}
    cut = event.response  # (as the SDK reads it)
    assert cut.status == "cancelled"
    assert cut.status_details is not None
    assert (cut.status_details.type, cut.status_details.reason) == ("cancelled", "turn_detected")
    record = await fake_llm.wait_realtime_async(0, lambda record: record.outcome != "open")
    assert record.errors == []


async def test_a_session_record_says_how_it_ended_before_its_client_hears_the_end(
    fake_llm: FakeLLMServer,
) -> None:
    """The API's error that ends a session and the session's outcome are one change of its
    record: a client that has heard the error finds the session ``failed`` (was: the outcome
    was noted after the error went, and a test quick enough found it ``open``)."""
    fake_llm.speak(error="The model is overloaded.")
    outcomes: list[str] = []  # the outcome when the record first holds the error

    def error_sent(record: LiveRecord) -> bool:
        if "error" not in record.sent_types():
            return False
        outcomes.append(record.outcome)  # (under the server's lock: as the change left it)
        return True

    client = openai.AsyncOpenAI(base_url=fake_llm.openai_base_url, api_key="test")
    async with client.realtime.connect(model="gpt-realtime") as connection:
        await connection.send_raw(json.dumps({"type": "response.create"}))
        record = await fake_llm.wait_realtime_async(0, error_sent)
        heard = (await events_until(connection, "error"))[-1]["error"]
    assert "overloaded" in heard["message"]
    assert outcomes == ["failed"]
    assert record.sent_types()[-1] == "error"
