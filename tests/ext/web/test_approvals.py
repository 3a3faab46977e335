"""A person approves tool calls from the page: the protocols' asks, the decision URLs, bad ones."""

from __future__ import annotations

from typing import Any

import pytest

from miniagents import Message, MiniAgent
from miniagents.ext.llm.offline import CallTool, offline_agent, one_per_call
from miniagents.ext.tools import FunctionTool
from miniagents.ext.web import agui_app, ai_sdk_app
from tests.ext.web.serving import SSEReader, get_events, served, until

deleted: list[str] = []


def delete_file(path: str) -> str:
    """Delete a file."""
    deleted.append(path)
    return f"Deleted {path}"


@pytest.fixture(autouse=True)
def _nothing_deleted() -> None:
    deleted.clear()


def assistant() -> MiniAgent[..., Message]:
    return offline_agent.fork(
        tools=[FunctionTool(delete_file, requires_approval=True)],
        reply=one_per_call(CallTool("delete_file", {"path": "a.txt"}), "Finished."),
        token_delay=0,
    )


RUN: dict[str, Any] = {
    "threadId": "t1",
    "runId": "r1",
    "messages": [{"id": "u1", "role": "user", "content": "Delete a.txt"}],
}
CHAT: dict[str, Any] = {
    "id": "c1",
    "messages": [{"id": "u1", "role": "user", "parts": [{"type": "text", "text": "Delete"}]}],
}


async def test_an_agui_page_is_asked_and_its_approval_with_edited_arguments_resumes_the_run() -> (
    None
):
    async with (
        served(agui_app(assistant())) as client,
        client.stream("POST", "/", json=RUN) as response,
    ):
        reader = SSEReader(response)
        before = await reader.until("CUSTOM")
        ask = before[-1].json
        assert ask["name"] == "tool_approval_request"
        call_id = ask["value"]["toolCallId"]
        assert ask["value"]["id"] == call_id
        assert ask["value"]["reason"] == "tool_approval"
        assert ask["value"]["metadata"] == {
            "toolName": "delete_file",
            "arguments": {"path": "a.txt"},
        }
        assert ask["value"]["responseSchema"]["required"] == ["approved"]
        assert deleted == []  # it waits
        decided = await client.post(
            f"/runs/r1/approvals/{call_id}",
            json={"approved": True, "arguments": {"path": "b.txt"}},
        )
        assert decided.status_code == 200
        assert decided.json() == {"toolCallId": call_id, "approved": True}
        again = await client.post(f"/runs/r1/approvals/{call_id}", json={"approved": False})
        assert again.status_code == 409
        assert again.json()["error"]["code"] == "not_pending"
        rest = await reader.rest()
    result = next(e.json for e in rest if e.type == "TOOL_CALL_RESULT")
    assert result["content"] == "Deleted b.txt"
    assert rest[-1].type == "RUN_FINISHED"
    assert deleted == ["b.txt"]


async def test_an_ai_sdk_page_is_asked_and_its_denial_reaches_the_model() -> None:
    async with (
        served(ai_sdk_app(assistant())) as client,
        client.stream("POST", "/", json=CHAT) as response,
    ):
        reader = SSEReader(response)
        before = await reader.until("tool-approval-request")
        ask = before[-1].json
        call_id = ask["toolCallId"]
        assert ask == {
            "type": "tool-approval-request",
            "approvalId": call_id,
            "toolCallId": call_id,
        }
        decided = await client.post(
            f"/c1/approvals/{call_id}", json={"approved": False, "reason": "Keep it."}
        )
        assert decided.status_code == 200
        rest = await reader.rest()
    error = next(e.json for e in rest if e.type == "tool-output-error")
    assert error["errorText"] == (
        "The user denied the call of the tool delete_file; it did not run. Their reason: Keep it."
    )
    assert rest[-1].data == "[DONE]"
    assert deleted == []


@pytest.mark.parametrize(
    ("path", "body", "status", "code"),
    [
        ("/runs/nope/approvals/x", {"approved": True}, 404, "unknown_run"),
        ("/runs/r1/approvals/not-a-call", {"approved": True}, 404, "unknown_approval"),
        ("/runs/r1/approvals/{call}", {"approved": "yes"}, 422, "invalid_decision"),
        ("/runs/r1/approvals/{call}", {"approved": True, "extra": 1}, 422, "invalid_decision"),
        ("/runs/r1/approvals/{call}", b"{", 400, "invalid_json"),
    ],
)
async def test_a_bad_decision_is_a_4xx_and_changes_nothing(
    path: str, body: object, status: int, code: str
) -> None:
    async with (
        served(agui_app(assistant())) as client,
        client.stream("POST", "/", json=RUN) as response,
    ):
        reader = SSEReader(response)
        call = (await reader.until("CUSTOM"))[-1].json["value"]["toolCallId"]
        url = path.format(call=call)
        if isinstance(body, bytes):
            refused = await client.post(url, content=body)
        else:
            refused = await client.post(url, json=body)
        assert refused.status_code == status
        assert refused.json()["error"]["code"] == code
        assert deleted == []
        decided = await client.post(f"/runs/r1/approvals/{call}", json={"approved": True})
        assert decided.status_code == 200  # still pending: the bad one changed nothing
        rest = await reader.rest()
    assert rest[-1].type == "RUN_FINISHED"
    assert deleted == ["a.txt"]


async def test_a_decision_after_the_run_was_cancelled_is_a_409() -> None:
    app = agui_app(assistant(), grace_period=0)
    async with served(app) as client:
        async with client.stream("POST", "/", json=RUN) as response:
            call = (await SSEReader(response).until("CUSTOM"))[-1].json["value"]["toolCallId"]
        await until(lambda: app.state.runs.get("r1").done)  # the last client left: cancelled
        refused = await client.post(f"/runs/r1/approvals/{call}", json={"approved": True})
        assert refused.status_code == 409
        assert "ended or was cancelled" in refused.json()["error"]["message"]
        _response, events = await get_events(client, "/runs/r1")
    assert events[-1].json["outcome"] == {"type": "cancelled"}
    assert deleted == []
