"""A ``fallback_agent`` whose model calls a tool that needs approval pauses the web run.

The fallback passes the call's pending result on at once (it has no token until a person
decides), so the apps see the call waiting and pause as they do for the LLM agent alone:
AG-UI's run finishes with an interrupt, the AI SDK's stream ends at the approval request.
Each request is bounded by ``WAIT``: a run that hangs fails the test.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from miniagents import Message, MiniAgent
from miniagents.ext.llm import fallback_agent
from miniagents.ext.llm.errors import LLMServerError
from miniagents.ext.llm.offline import CallTool
from miniagents.ext.tools import FunctionTool
from miniagents.ext.web import NoAuthentication, agui_app, ai_sdk_app
from miniagents.testing import scripted_agent
from tests.ext.web.serving import agui_input, event_types, post_events, served, unmetered
from tests.fakes.fixtures import WAIT

refunded: list[str] = []


def refund(order_id: str) -> str:
    """Refund an order."""
    refunded.append(order_id)
    return f"Refunded {order_id}"


@pytest.fixture(autouse=True)
def _nothing_refunded() -> None:
    refunded.clear()


def fallback(after_a_failure: bool) -> MiniAgent[..., Message]:
    """A fallback agent whose answering model calls ``refund``, which needs approval."""
    llm = scripted_agent(
        CallTool("refund", {"order_id": "A-7"}),
        "Finished.",
        tools=[FunctionTool(refund, requires_approval=True)],
    )
    if after_a_failure:  # the first agent's provider is down: the second one calls
        return fallback_agent(scripted_agent(LLMServerError("down")), llm)
    return fallback_agent(llm)


def run_input(run_id: str, resume: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return agui_input(run_id, text="Refund A-7", resume=resume)


@pytest.mark.parametrize("after_a_failure", [False, True])
async def test_an_agui_run_of_a_fallback_agent_pauses_at_the_approval(
    after_a_failure: bool,
) -> None:
    async with served(
        agui_app(fallback(after_a_failure), authentication=NoAuthentication())
    ) as client:
        _response, first = await asyncio.wait_for(post_events(client, run_input("r1")), WAIT)
        assert event_types(first)[0] == "RUN_STARTED"
        assert event_types(first)[-2:] == ["TOOL_CALL_END", "RUN_FINISHED"]
        assert first[-1].json["outcome"]["type"] == "interrupt"
        [interrupt] = first[-1].json["outcome"]["interrupts"]
        assert interrupt["metadata"] == {"toolName": "refund", "arguments": {"order_id": "A-7"}}
        assert refunded == []
        entry = {
            "interruptId": interrupt["id"],
            "status": "resolved",
            "payload": {"approved": True},
        }
        _response, second = await asyncio.wait_for(
            post_events(client, run_input("r2", [entry])), WAIT
        )
    result = next(e.json for e in second if e.type == "TOOL_CALL_RESULT")
    assert result["content"] == "Refunded A-7"
    text = "".join(e.json["delta"] for e in second if e.type == "TEXT_MESSAGE_CONTENT")
    assert text.endswith("Finished.")
    assert unmetered(second[-1].json) == {"type": "RUN_FINISHED", "threadId": "t1", "runId": "r2"}
    assert refunded == ["A-7"]


async def test_an_ai_sdk_stream_of_a_fallback_agent_ends_at_the_approval_request() -> None:
    user = {"id": "u1", "role": "user", "parts": [{"type": "text", "text": "Refund A-7"}]}
    async with served(
        ai_sdk_app(fallback(after_a_failure=False), authentication=NoAuthentication())
    ) as client:
        _response, first = await asyncio.wait_for(
            post_events(client, {"id": "c1", "messages": [user]}), WAIT
        )
    assert event_types(first)[-4:] == ["tool-approval-request", "finish-step", "finish", "[DONE]"]
    assert refunded == []
