"""Any text is safe to stream: valid UTF-8, valid SSE, valid JSON, in both protocols.

A model's answer, a tool call's arguments and a tool's output hold what text can hold: a lone
surrogate (which UTF-8 cannot encode), NUL, CR and LF, the line separators some readers
split at (U+2028, U+2029, U+0085), and ``data:`` lines that would end an event early. The
stream is read as raw bytes under a real uvicorn server and parsed as the SSE standard says
(lines end at CR, LF or CRLF only): every byte decodes, every event's data is one JSON
value, and the texts arrive whole (a lone surrogate as U+FFFD, a pair as its character).
"""

from __future__ import annotations

import json
import re

import pytest

from miniagents.ext.llm.offline import CallTool, offline_agent, one_per_call
from miniagents.ext.web import NoAuthentication
from tests.ext.web.serving import AGUI, PROTOCOLS, Protocol, served

ODD = (
    "lone \ud800 surrogate, NUL \x00, CR \r LF \n CRLF \r\n, U+2028 \u2028 U+2029 \u2029 "
    'NEL \x85, data: [DONE]\n\ndata: {"type": "finish"}\n\r\nid: 99\nevent: x\n'
    ": comment\n\n pair \ud83d\ude00 end"
)
SEEN = ODD.replace("\ud800", "\ufffd").replace("\ud83d\ude00", "\U0001f600")


def echo(text: str) -> str:
    """Say the text back."""
    return text


def sse_events(raw: bytes) -> list[tuple[str | None, str]]:
    """The (id, data) of each event of a stream, parsed as the SSE standard says."""
    text = raw.decode("utf-8")  # strict: a byte UTF-8 cannot decode fails here
    events: list[tuple[str | None, str]] = []
    event_id: str | None = None
    data: list[str] = []
    for line in re.split(r"\r\n|\r|\n", text):
        if line == "":
            if data:
                events.append((event_id, "\n".join(data)))
            event_id, data = None, []
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "id":
            event_id = value
        elif name == "data":
            data.append(value)
        else:
            assert name == "", f"a line that is no field of ours: {line!r}"  # (pings)
    assert data == [], "the stream ended inside an event"
    return events


@pytest.mark.parametrize("protocol", PROTOCOLS, ids=str)
async def test_any_text_streams_as_valid_json_in_valid_sse(protocol: Protocol) -> None:
    agent = offline_agent.fork(
        tools=[echo], reply=one_per_call(CallTool("echo", {"text": ODD}), ODD), token_delay=0
    )
    async with (
        served(protocol.app(agent, authentication=NoAuthentication())) as client,
        client.stream("POST", "/", json=protocol.body("k1")) as response,
    ):
        raw = b"".join([chunk async for chunk in response.aiter_raw()])
    events = sse_events(raw)
    assert [event_id for event_id, _ in events] == [str(n) for n in range(len(events))]
    data = [json.loads(text) for _, text in events if text != "[DONE]"]
    if protocol is AGUI:
        texts = [e for e in data if e["type"] == "TEXT_MESSAGE_CONTENT"]
        answer = [e["delta"] for e in texts if "subagentRunId" not in e]
        output = "".join(e["delta"] for e in texts if "subagentRunId" in e)  # (the tool's)
        arguments = [e["delta"] for e in data if e["type"] == "TOOL_CALL_ARGS"]
        [result] = [e["content"] for e in data if e["type"] == "TOOL_CALL_RESULT"]
        assert data[-1]["type"] == "RUN_FINISHED"
    else:
        answer = [e["delta"] for e in data if e["type"] == "text-delta"]
        arguments = [e["inputTextDelta"] for e in data if e["type"] == "tool-input-delta"]
        [result] = [e["output"] for e in data if e["type"] == "tool-output-available"]
        output = "".join(e["data"]["delta"] for e in data if e["type"] == "data-tool-output-delta")
        assert events[-1][1] == "[DONE]"
    assert json.loads("".join(arguments)) == {"text": SEEN}
    assert result == output == SEEN
    assert "".join(answer) == SEEN
