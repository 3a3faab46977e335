"""Where a client of a durable app's run is, and where it resumes after a restart.

Each event of a durable agent's run has an SSE id that says where it leaves its client:
between items (its position), or inside an item (a text message, a call's input, a tool's
output) with the item's start, names and a digest of its events so far. A run made again
after a restart holds the replayed items as they were, and the items of the calls made
again as those calls streamed them this time. These tests log two runs of one job in
memory, the one a client followed before a "restart" and the one made again after it, and
resume the client on the second: exactly where the second holds its item as it saw it,
else with its item ended (the protocol's way) and the second's item sent whole, renamed.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from typing import Literal

import pytest
from starlette.responses import JSONResponse

from miniagents.ext.llm.offline import offline_agent
from miniagents.ext.web import NoAuthentication, agui_app, ai_sdk_app
from miniagents.ext.web._event_log import (
    EventLog,
    EventPlace,
    EventPlaces,
    Rename,
    ResumePoint,
    event_id,
    parse_event_id,
)
from miniagents.ext.web._protocol import Item, WebProtocol


def _agui(kind: str, **fields: object) -> str:
    return json.dumps({"type": kind, **fields}, separators=(",", ":"))


def _ai_sdk(kind: str, **fields: object) -> str:
    return json.dumps({"type": kind, **fields})


def _protocol(name: Literal["ag-ui", "ai-sdk"]) -> WebProtocol:
    """The protocol an app of ``name`` serves its runs in (its events, its items)."""
    app = (
        agui_app(offline_agent, authentication=NoAuthentication())
        if name == "ag-ui"
        else ai_sdk_app(offline_agent, authentication=NoAuthentication())
    )
    protocol: WebProtocol = app.state.runs.protocol
    assert protocol.name == name
    return protocol


async def _logged(
    protocol: Literal["ag-ui", "ai-sdk"], events: Sequence[str], *, recovered: bool, tag: str
) -> EventLog:
    """A durable job's run log that logged ``events`` and ended (``recovered``: made again)."""
    log = EventLog("r1", EventPlaces(_protocol(protocol)), tag, recovered=recovered)
    for data in events:
        log.append(data)
    log.end()
    return log


async def _followed(run: EventLog, start: int) -> list[tuple[str, str | None]]:
    """The (data, SSE id) of the events a client resuming at ``start`` gets."""
    return [(str(event.data), event.id) async for event in run.follow(start)]


def _ids(run: EventLog) -> list[str]:
    return [run.id_of(position) for position in range(len(run.events))]


def _point(run: EventLog, last: str | None) -> ResumePoint:
    point = run.resume_point(last or "")
    assert isinstance(point, ResumePoint), point.body if isinstance(point, JSONResponse) else ""
    return point


AGUI_CALL_BEFORE = [
    _agui("RUN_STARTED", threadId="t1", runId="r1"),
    _agui("TOOL_CALL_START", toolCallId="call_a", toolCallName="remove"),
    _agui("TOOL_CALL_ARGS", toolCallId="call_a", delta='{"na'),
]
AGUI_CALL_AFTER = [
    _agui("RUN_STARTED", threadId="t1", runId="r1"),
    _agui("TOOL_CALL_START", toolCallId="call_b", toolCallName="note"),
    _agui("TOOL_CALL_ARGS", toolCallId="call_b", delta='{"text": "x"}'),
    _agui("TOOL_CALL_END", toolCallId="call_b"),
    _agui("RUN_FINISHED", threadId="t1", runId="r1"),
]


async def test_an_agui_call_made_again_ends_the_clients_call_then_streams_the_new_one() -> None:
    before = await _logged("ag-ui", AGUI_CALL_BEFORE, recovered=False, tag="aaaa")
    after = await _logged("ag-ui", AGUI_CALL_AFTER, recovered=True, tag="bbbb")
    point = _point(after, before.id_of(len(before.events) - 1))
    got = await _followed(after, point)
    assert (
        [data for data, _ in got]
        == [
            _agui("TOOL_CALL_END", toolCallId="call_a"),  # the client's call, ended
            *AGUI_CALL_AFTER[1:],  # the call made again, whole (its id is the model's)
        ]
    )
    assert got[0][1] == "0~bbbb@1"  # between items, after event 0: a reconnect goes on at 1
    assert [id_.split(".")[0] for _, id_ in got[1:] if id_] == [f"{n}~bbbb@1" for n in range(1, 5)]


AGUI_OUTPUT_BEFORE = [
    _agui("RUN_STARTED", threadId="t1", runId="r1"),
    _agui("SUBAGENT_STARTED", subagentRunId="c1-run", name="HELPER", parentToolCallId="c1"),
    _agui("TEXT_MESSAGE_START", messageId="r1-2-output", role="assistant", subagentRunId="c1-run"),
    _agui("TEXT_MESSAGE_CONTENT", messageId="r1-2-output", delta="Half", subagentRunId="c1-run"),
]
AGUI_OUTPUT_AFTER = [
    *AGUI_OUTPUT_BEFORE[:3],
    _agui("TEXT_MESSAGE_CONTENT", messageId="r1-2-output", delta="Other", subagentRunId="c1-run"),
    _agui("TEXT_MESSAGE_END", messageId="r1-2-output", subagentRunId="c1-run"),
    _agui("SUBAGENT_FINISHED", subagentRunId="c1-run"),
    _agui("TOOL_CALL_RESULT", messageId="r1-2", toolCallId="c1", content="Other", role="tool"),
    _agui("RUN_FINISHED", threadId="t1", runId="r1"),
]


async def test_an_agui_tool_output_made_again_is_a_new_nested_run_and_message() -> None:
    before = await _logged("ag-ui", AGUI_OUTPUT_BEFORE, recovered=False, tag="aaaa")
    after = await _logged("ag-ui", AGUI_OUTPUT_AFTER, recovered=True, tag="bbbb")
    got = await _followed(after, _point(after, before.id_of(len(before.events) - 1)))
    kinds = [json.loads(data) for data, _ in got]
    assert kinds[:2] == [
        {"type": "TEXT_MESSAGE_END", "messageId": "r1-2-output", "subagentRunId": "c1-run"},
        {"type": "SUBAGENT_FINISHED", "subagentRunId": "c1-run"},
    ]
    assert [event["type"] for event in kinds[2:]] == [
        json.loads(data)["type"] for data in AGUI_OUTPUT_AFTER[1:]
    ]
    renamed = {event.get("subagentRunId") for event in kinds[2:-2]}
    assert renamed == {"c1-run~bbbb"}  # the new output: another nested run
    assert kinds[3]["messageId"] == kinds[4]["messageId"] == "r1-2-output~bbbb"
    assert kinds[-2]["messageId"] == "r1-2"  # the tool's result: its own message, as logged
    assert [id_ for _, id_ in got[:2]] == [None, "0~bbbb@1"]  # the prelude's last has an id


async def test_a_client_inside_an_item_the_log_holds_alike_goes_on_exactly() -> None:
    # a replayed call, or one made again that said the same: the same events at the same places
    before = await _logged("ag-ui", AGUI_OUTPUT_BEFORE, recovered=False, tag="aaaa")
    after = await _logged(
        "ag-ui", [*AGUI_OUTPUT_BEFORE, *AGUI_OUTPUT_AFTER[4:]], recovered=True, tag="bbbb"
    )
    point = _point(after, before.id_of(len(before.events) - 1))
    assert (int(point), point.prelude, point.rename) == (4, (), None)
    assert [after.id_of(n) for n in range(4)] == _ids(before)  # the same places
    got = await _followed(after, point)
    assert [data for data, _ in got] == AGUI_OUTPUT_AFTER[4:]


AI_SDK_BEFORE = [
    _ai_sdk("start", messageId="msg-1"),
    _ai_sdk("start-step"),
    _ai_sdk("text-start", id="msg-1-0"),
    _ai_sdk("text-delta", id="msg-1-0", delta="Removing"),
    _ai_sdk("text-end", id="msg-1-0"),
    _ai_sdk("tool-input-start", toolCallId="call_a", toolName="remove"),
    _ai_sdk("tool-input-delta", toolCallId="call_a", inputTextDelta='{"na'),
]
AI_SDK_AFTER = [
    *AI_SDK_BEFORE[:5],
    _ai_sdk("text-start", id="msg-1-1"),
    _ai_sdk("text-delta", id="msg-1-1", delta="Nothing to remove."),
    _ai_sdk("text-end", id="msg-1-1"),
    _ai_sdk("finish-step"),
    _ai_sdk("finish"),
    "[DONE]",
]


async def test_an_ai_sdk_call_input_made_again_ends_with_an_input_error() -> None:
    before = await _logged("ai-sdk", AI_SDK_BEFORE, recovered=False, tag="aaaa")
    after = await _logged("ai-sdk", AI_SDK_AFTER, recovered=True, tag="bbbb")
    got = await _followed(after, _point(after, before.id_of(len(before.events) - 1)))
    ended = json.loads(got[0][0])
    assert ended["type"] == "tool-input-error"
    assert (ended["toolCallId"], ended["toolName"], ended["input"]) == ("call_a", "remove", {})
    assert "restarted" in ended["errorText"]
    assert [json.loads(data)["type"] if data != "[DONE]" else data for data, _ in got[1:]] == [
        "text-start",
        "text-delta",
        "text-end",
        "finish-step",
        "finish",
        "[DONE]",
    ]
    assert {json.loads(data)["id"] for data, _ in got[1:4]} == {"msg-1-1~bbbb"}
    # the text that the client had whole (replayed: the same) is not sent again
    assert _ids(before)[:5] == _ids(after)[:5]
    assert _point(after, before.id_of(4)) == 5


async def test_a_bare_position_inside_an_item_of_a_run_made_again_gets_the_item_whole() -> None:
    after = await _logged("ai-sdk", AI_SDK_AFTER, recovered=True, tag="bbbb")
    point = _point(after, "6")  # (a client that kept no place: the second text's token)
    assert (int(point), point.prelude) == (5, ())
    got = await _followed(after, point)
    assert json.loads(got[0][0]) == {"type": "text-start", "id": "msg-1-1~bbbb"}
    # in the log it was made by, a bare position goes on after its event
    same = await _logged("ai-sdk", AI_SDK_AFTER, recovered=False, tag="cccc")
    assert _point(same, "6") == 7


async def test_a_client_of_a_resent_item_reconnects_inside_it_and_keeps_its_names() -> None:
    before = await _logged("ai-sdk", AI_SDK_BEFORE[:4], recovered=False, tag="aaaa")
    made_again = [
        *AI_SDK_BEFORE[:3],
        _ai_sdk("text-delta", id="msg-1-0", delta="Kept"),
        *AI_SDK_AFTER[4:],
    ]
    after = await _logged("ai-sdk", made_again, recovered=True, tag="bbbb")
    got = await _followed(after, _point(after, before.id_of(len(before.events) - 1)))
    assert json.loads(got[0][0]) == {"type": "text-end", "id": "msg-1-0"}
    assert json.loads(got[1][0]) == {"type": "text-start", "id": "msg-1-0~bbbb"}
    # it loses the stream after the renamed text's token, and comes back: the same names
    again = await _followed(after, _point(after, got[2][1]))
    assert again == got[3:]
    # and so after one more restart, where the run has ended (its text replayed alike)
    last = await _logged("ai-sdk", made_again, recovered=True, tag="cccc")
    assert await _followed(last, _point(last, got[2][1])) == got[3:]


class _OddEvent(Exception):
    """A protocol's failure to read an event (a bug of its own) for its item."""


async def test_an_event_whose_item_the_protocol_fails_to_read_leaves_the_log_as_it_was(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # (a pin: the place is read before anything is kept, so a failed append keeps no part)
    protocol = _protocol("ag-ui")
    item = type(protocol).item

    def failing_item(
        self: WebProtocol, event: Mapping[str, object], opened: tuple[str, ...] | None
    ) -> Item:
        if "odd" in event:
            raise _OddEvent("The protocol failed to read the event's item.")
        return item(self, event, opened)

    monkeypatch.setattr(type(protocol), "item", failing_item)
    events = [
        _agui("TEXT_MESSAGE_START", messageId="m1", role="assistant"),
        _agui("TEXT_MESSAGE_CONTENT", messageId="m1", delta="Hi"),
        _agui("TEXT_MESSAGE_END", messageId="m1"),
    ]
    log = EventLog("r1", EventPlaces(protocol), "aaaa")
    log.append(events[0])
    for odd in ("TOOL_CALL_START", "TEXT_MESSAGE_END", "RUN_FINISHED"):
        with pytest.raises(_OddEvent):
            log.append(_agui(odd, toolCallId="c1", messageId="m1", odd=True))
    for data in events[1:]:
        log.append(data)
    alike = EventLog("r1", EventPlaces(protocol), "aaaa")
    for data in events:
        alike.append(data)
    assert (log.events, log.places, log.size) == (alike.events, alike.places, alike.size)
    assert [log.id_of(i) for i in range(3)] == [alike.id_of(i) for i in range(3)]


def test_an_event_id_says_its_place_and_is_read_back() -> None:
    place = EventPlace(3, 0xABCDEF01, "input", ("call_ü", "remove"))
    found = event_id(5, Rename("0a1b2c3d", 3), place)
    assert found.startswith("5~0a1b2c3d@3.3.abcdef01.")
    seen = parse_event_id(found)
    assert seen is not None
    assert (seen.position, seen.rename, seen.place) == (5, Rename("0a1b2c3d", 3), place)
    assert parse_event_id("12") is not None


def test_an_event_id_of_names_nested_past_what_pythons_json_reads_says_no_place() -> None:
    # (a client's Last-Event-ID: was an uncaught RecursionError, a 500, on Python 3.11)
    nested = base64.urlsafe_b64encode(b"[" * 2_999).decode().rstrip("=")
    assert parse_event_id(f"5.3.00000000.{nested}") is None


async def test_an_event_nested_past_what_pythons_json_reads_is_logged_between_items() -> None:
    # (was an uncaught RecursionError from the log's append, on Python 3.11 and 3.13)
    nested = "[" * 100_000
    protocol = _protocol("ag-ui")
    log = EventLog("r1", EventPlaces(protocol), "aaaa")
    log.append(_agui("TEXT_MESSAGE_START", messageId="m1", role="assistant"))
    log.append(nested + '"m1"')
    log.append(_agui("RUN_FINISHED", threadId="t1", runId="r1"))
    assert log.places is not None
    assert log.places[1:] == [None, None]
    assert log.id_of(1) == "1"
    renamed = EventPlaces(protocol).renamed(nested + '"m1"', {"m1": "m1~aaaa"})
    assert renamed == nested + '"m1"'


@pytest.mark.parametrize(
    "value",
    [
        "",
        "x",
        "-1",
        "1.",
        "3.5.00000000.WyJ0ZXh0IiwiYSJd",
        "5.3.0000.WyJ0ZXh0IiwiYSJd",
        "5.3.00000000.e30",
    ],
    ids=["empty", "text", "negative", "dot", "start-after", "short-digest", "not-a-list"],
)
async def test_an_id_that_says_no_place_of_the_run_is_a_400(value: str) -> None:
    run = await _logged("ag-ui", AGUI_CALL_AFTER, recovered=True, tag="bbbb")
    refused = run.resume_point(value)
    assert isinstance(refused, JSONResponse)
    assert refused.status_code == 400
    assert json.loads(bytes(refused.body))["error"]["code"] == "unknown_event_id"


async def test_a_recovered_run_waits_only_until_the_clients_item_ended_before_its_event() -> None:
    # the item made again said less: the client's place is known not to be held at once
    run = EventLog("r1", EventPlaces(_protocol("ag-ui")), "bbbb", recovered=True)
    run.append(AGUI_CALL_AFTER[0])
    run.append(_agui("TEXT_MESSAGE_START", messageId="r1-0", role="assistant"))
    run.append(_agui("TEXT_MESSAGE_END", messageId="r1-0"))  # then a long tool call, say
    text = EventPlace(1, 0, "text", ("r1-0",))
    seen = parse_event_id(event_id(6, None, text))
    assert seen is not None
    reached = run.areached_place(seen)
    with pytest.raises(StopIteration):  # it returns at once, not waiting for event 7
        reached.send(None)
    point = _point(run, event_id(6, None, text))
    assert (int(point), [json.loads(data)["type"] for data in point.prelude]) == (
        1,
        ["TEXT_MESSAGE_END"],
    )
    run.append(AGUI_CALL_AFTER[-1])
    run.end()
