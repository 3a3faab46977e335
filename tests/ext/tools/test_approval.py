"""Tools that need a person's approval: the pending request in the reply, approve and deny."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from miniagents import Message, MessagePromise, MessageSequencePromise, MiniAgent, MiniAgents
from miniagents.errors import ArgumentError
from miniagents.ext.llm import LLMToolApprovalRequest, LLMToolCallMessage, LLMToolResultMessage
from miniagents.ext.llm.offline import CallTool, offline_agent, one_per_call
from miniagents.ext.tools import (
    FunctionTool,
    MemoryApprovals,
    PendingApproval,
    Tool,
    ToolApprovalError,
    ToolApprovalRequest,
    ToolCallMessage,
    ToolDecision,
    ToolResultMessage,
    ToolSet,
    request_approval,
)
from miniagents.ext.tools.observing import observe_tool_calls
from miniagents.ext.tools.tool import ApprovalRule

deleted: list[str] = []


def delete_file(path: str) -> str:
    """Delete a file."""
    deleted.append(path)
    return f"Deleted {path}"


def shout(text: str) -> str:
    """Say it louder."""
    return text.upper()


def guarded(rule: ApprovalRule = True) -> FunctionTool:
    return FunctionTool(delete_file, requires_approval=rule)


def agent(*calls: CallTool, rule: ApprovalRule = True) -> MiniAgent[..., Message]:
    return offline_agent.fork(
        tools=[guarded(rule)],
        reply=one_per_call(list(calls) if len(calls) > 1 else calls[0], "Finished."),
        token_delay=0,
    )


@pytest.fixture(autouse=True)
def _nothing_deleted() -> None:
    deleted.clear()


async def read_until_request(
    reply: MessageSequencePromise[Message],
) -> tuple[list[Message], LLMToolApprovalRequest]:
    seen: list[Message] = []
    async for promise in reply:
        message = await promise
        seen.append(message)
        if isinstance(message, LLMToolApprovalRequest):
            return seen, message
    raise AssertionError(f"no approval request in {seen}")


async def test_an_approved_call_runs_after_the_request_and_the_model_gets_its_result() -> None:
    llm = agent(CallTool("delete_file", {"path": "a.txt"}))
    async with MiniAgents():
        reply = llm.inquire("Delete a.txt")
        before, request = await read_until_request(reply)
        assert [type(m).__name__ for m in before] == [
            "LLMToolCallMessage",
            "LLMToolApprovalRequest",
        ]
        assert (request.tool_name, dict(request.arguments), request.pending) == (
            "delete_file",
            {"path": "a.txt"},
            True,
        )
        assert isinstance(before[0], LLMToolCallMessage)
        assert request.call_id == before[0].call_id
        assert str(request) == 'Approve the call of delete_file with {"path": "a.txt"}?'
        assert deleted == []  # nothing ran before the decision
        request.approve()
        assert not request.pending
        messages = await reply
    result = next(m for m in messages if isinstance(m, LLMToolResultMessage))
    assert (result.text, result.is_error) == ("Deleted a.txt", False)
    assert deleted == ["a.txt"]
    assert str(messages[-1]) == "Finished."


async def test_a_denied_call_does_not_run_and_the_model_reads_the_denial() -> None:
    llm = agent(CallTool("delete_file", {"path": "a.txt"}))
    async with MiniAgents():
        reply = llm.inquire("Delete a.txt")
        _before, request = await read_until_request(reply)
        request.deny("Keep that file.")
        messages = await reply
    result = next(m for m in messages if isinstance(m, LLMToolResultMessage))
    assert result.is_error
    assert result.text == (
        "The user denied the call of the tool delete_file; it did not run. "
        "Their reason: Keep that file."
    )
    assert deleted == []


async def test_an_approval_with_edited_arguments_runs_with_them_validated() -> None:
    llm = agent(CallTool("delete_file", {"path": "a.txt"}), CallTool("delete_file", {"path": "b"}))
    async with MiniAgents():
        reply = llm.inquire("Delete two")
        requests = []
        async for promise in reply:
            message = await promise
            if isinstance(message, LLMToolApprovalRequest):
                requests.append(message)
                if len(requests) == 2:
                    break
        requests[0].approve({"path": "copy-of-a.txt"})
        with pytest.raises(ToolApprovalError) as refused:  # the tool's check, there and then
            requests[1].approve({"path": 42, "extra": True})
        assert requests[1].pending  # nothing was decided: the person answers again
        requests[1].approve({"path": "copy-of-b.txt"})
        messages = await reply
    said = str(refused.value)
    assert said.startswith(
        f"The edited arguments of the call {requests[1].call_id!r} of delete_file do not fit "
        "the tool's argument schema, so the call was not decided and still waits: approve it with "
        "arguments that fit the schema (or with none, to run it with the model's), or deny it."
    )
    assert "Invalid arguments for the tool delete_file: 'path': " in said
    assert "'extra': Extra inputs are not permitted" in said
    results = [m for m in messages if isinstance(m, LLMToolResultMessage)]
    assert [(r.text, r.is_error) for r in results] == [
        ("Deleted copy-of-a.txt", False),
        ("Deleted copy-of-b.txt", False),
    ]
    assert sorted(deleted) == ["copy-of-a.txt", "copy-of-b.txt"]  # (run in threads, side by side)


async def test_a_request_made_without_its_tool_takes_any_edit_and_the_run_checks_it() -> None:
    tools = ToolSet([guarded()])
    call = ToolCallMessage(tool_name="delete_file", arguments={"path": "a"}, call_id="c1")
    async with MiniAgents():
        request = request_approval(call)  # no tool= : nothing to check the edit with
        request.check_arguments({"path": 42})
        result = tools.run(call, approval=request)
        request.approve({"path": 42})
        refused = await result
    assert refused.is_error
    assert "Invalid arguments for the tool delete_file" in str(refused)
    assert deleted == []


async def test_a_refused_edit_of_a_decided_request_says_it_is_decided_first() -> None:
    tools = ToolSet([guarded()])
    call = ToolCallMessage(tool_name="delete_file", arguments={"path": "a"}, call_id="c1")
    async with MiniAgents():
        request = tools.approval_request(call)
        assert request is not None
        result = tools.run(call, approval=request)
        request.deny()
        with pytest.raises(ToolApprovalError, match="was denied already"):
            request.approve({"path": 42})
        assert (await result).is_error
    assert deleted == []


async def test_a_predicate_on_the_arguments_decides_which_calls_ask() -> None:
    def outside_tmp(arguments: Mapping[str, object]) -> bool:
        return not str(arguments.get("path", "")).startswith("/tmp/")

    llm = agent(
        CallTool("delete_file", {"path": "/tmp/x"}),
        CallTool("delete_file", {"path": "/etc/passwd"}),
        rule=outside_tmp,
    )
    async with MiniAgents():
        reply = llm.inquire("Delete two")
        _before, request = await read_until_request(reply)
        assert request.arguments == {"path": "/etc/passwd"}
        request.deny()
        messages = await reply
    assert sum(isinstance(m, LLMToolApprovalRequest) for m in messages) == 1
    assert sum(isinstance(m, LLMToolCallMessage) for m in messages) == 2
    assert deleted == ["/tmp/x"]


async def test_a_failing_predicate_asks_rather_than_running_unapproved() -> None:
    def broken(arguments: Mapping[str, object]) -> bool:
        raise KeyError("oops")

    assert guarded(broken).needs_approval({"path": "x"}) is True
    assert guarded(False).needs_approval({"path": "x"}) is False


async def test_a_request_whose_reply_was_cancelled_is_no_longer_pending() -> None:
    llm = agent(CallTool("delete_file", {"path": "a.txt"}))
    async with MiniAgents():
        reply = llm.inquire("Delete a.txt")
        _before, request = await read_until_request(reply)
        assert [request.pending, request.withdrawn] == [True, False]  # (not narrowed by
        reply.cancel()  # mypy: it changes below)
    # the context has waited for the agent's tasks, the tool's among them, to end
    assert not request.pending  # nobody is to be asked any more
    assert request.withdrawn  # (undecided: told apart from a decided call)
    with pytest.raises(ToolApprovalError, match="no longer waits for a decision"):
        request.approve()
    assert deleted == []


async def test_a_request_is_decided_once_and_a_rebuilt_one_is_not_pending() -> None:
    tools = ToolSet([guarded()])
    call = ToolCallMessage(tool_name="delete_file", arguments={"path": "a"}, call_id="c1")
    async with MiniAgents():
        request = tools.approval_request(call)
        assert request is not None
        result = tools.run(call, approval=request)
        request.approve()
        assert not request.withdrawn  # (decided)
        with pytest.raises(ToolApprovalError, match="'c1' of delete_file was approved already"):
            request.deny()
        assert (await result).text == "Deleted a"
        rebuilt = ToolApprovalRequest.model_validate(request.model_dump())
        assert rebuilt == request
        assert not rebuilt.pending
        assert not rebuilt.withdrawn
        with pytest.raises(ToolApprovalError, match="is not pending"):
            rebuilt.approve()


@pytest.mark.parametrize("request_class", [ToolApprovalRequest, LLMToolApprovalRequest])
def test_a_request_rebuilt_with_arguments_that_are_no_mapping_is_the_fields_error(
    request_class: type[ToolApprovalRequest],
) -> None:
    # (was: a bare TypeError from dict() in the validator that writes the request's text)
    with pytest.raises(ValidationError, match=r"arguments\n  Input should be a valid dictionary"):
        request_class.model_validate({"tool_name": "delete", "call_id": "c1", "arguments": [1, 2]})


async def test_running_a_tool_that_needs_approval_without_a_request_does_not_run_it() -> None:
    tools = ToolSet([guarded(), shout])
    call = ToolCallMessage(tool_name="delete_file", arguments={"path": "a"}, call_id="c1")
    async with MiniAgents():
        result = await tools.run(call)
        free = ToolCallMessage(tool_name="shout", arguments={"text": "abc"}, call_id="c2")
        assert tools.approval_request(free) is None
    assert result.is_error
    assert "needs a person's approval" in str(result)
    assert deleted == []


# -- one concept: who decided and when, the memory store, a schema-only tool, the watch --------


class Remover(Tool):
    """A tool that checks nothing itself (as an MCP server's): only its schema says."""

    async def run(self, arguments: Mapping[str, object]) -> AsyncIterator[str]:
        yield f"removed {arguments['name']}"


def remover_call() -> ToolCallMessage:
    return ToolCallMessage(tool_name="remove", arguments={"name": "a.txt"}, call_id="c1")


REMOVER_SCHEMA = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "keep": {"type": "integer"}},
    "required": ["name"],
    "additionalProperties": False,
}


async def test_a_decision_says_who_decided_and_when() -> None:
    request = request_approval(remover_call())
    before = datetime.now(UTC)
    request.approve(by="ada")
    decision = await request.adecision()
    assert (decision.approved, decision.decided_by) == (True, "ada")
    assert decision.decided_at is not None
    assert before <= decision.decided_at <= datetime.now(UTC)
    denied = request_approval(remover_call())
    denied.deny("No.", by="bob")
    assert (await denied.adecision()).decided_by == "bob"


@pytest.mark.parametrize(
    ("decide", "refused"),
    [
        # (was: ValueError: dictionary update sequence element #0 has length 1; 2 is required)
        (
            lambda request: request.approve(arguments='{"path": "a.txt"}'),
            "ToolApprovalRequest.approve needs arguments to be a mapping of the tool's arguments",
        ),
        # (was: taken, and kept in the decision as it was)
        (
            lambda request: request.approve(by=3),
            "A tool call's decision needs decided_by to be a str, or None; got 3.",
        ),
        (
            lambda request: request.deny(["no"]),
            "A tool call's decision needs reason to be a str, or None; got ['no'].",
        ),
    ],
)
async def test_a_decision_of_the_wrong_kind_is_refused_and_the_request_still_waits(
    decide: Callable[[Any], None], refused: str
) -> None:
    request = request_approval(remover_call())
    with pytest.raises(ArgumentError) as raised:
        decide(request)
    assert str(raised.value).startswith(refused)
    assert request.pending
    request.approve()
    assert (await request.adecision()).approved


async def test_edits_of_a_tool_that_validates_nothing_are_checked_against_its_schema() -> None:
    tool = Remover(name="remove", description="Remove a file.", parameters=REMOVER_SCHEMA)
    request = request_approval(remover_call(), tool=tool)
    with pytest.raises(ToolApprovalError) as refused:
        request.approve({"name": 7, "keep": "x", "extra": 1})
    assert refused.value.problems == (
        "keep: 'x' is not of type 'integer'",
        "name: 7 is not of type 'string'",
        "the arguments: Additional properties are not allowed ('extra' was unexpected)",
    )
    assert request.pending  # nothing decided
    request.approve({"name": "b.txt", "keep": 1})
    assert (await request.adecision()).arguments == {"name": "b.txt", "keep": 1}


async def test_the_memory_store_lists_and_decides_the_requests_of_its_runs() -> None:
    store = MemoryApprovals()
    first, second = (
        request_approval(remover_call()),
        request_approval(
            ToolCallMessage(tool_name="remove", arguments={"name": "b"}, call_id="c2")
        ),
    )
    store.add("run-1", first)
    store.add("run-2", second)
    assert await store.apending() == [
        PendingApproval("run-1", "c1", "remove", {"name": "a.txt"}),
        PendingApproval("run-2", "c2", "remove", {"name": "b"}),
    ]
    await store.adecide("run-2", "c2", ToolDecision(False, reason="Keep it.", decided_by="ada"))
    assert await store.apending() == [PendingApproval("run-1", "c1", "remove", {"name": "a.txt"})]
    assert (await second.adecision()).decided_by == "ada"
    with pytest.raises(ToolApprovalError, match="denied already"):
        await store.adecide("run-2", "c2", ToolDecision(True))
    with pytest.raises(ToolApprovalError, match="has no call 'c9'"):
        await store.adecide("run-1", "c9", ToolDecision(True))
    store.forget("run-1")
    assert await store.apending() == []


class DecisionWatch:
    def __init__(self, seen: list[ToolDecision]) -> None:
        self.seen = seen

    def tool_call_ended(self, error: BaseException | None) -> None:
        pass

    def tool_call_decided(self, decision: ToolDecision) -> None:
        self.seen.append(decision)


class DecisionObserver:
    def __init__(self) -> None:
        self.seen: list[ToolDecision] = []

    def tool_call_started(
        self, tool: Tool, call: ToolCallMessage, result: MessagePromise[ToolResultMessage]
    ) -> DecisionWatch:
        return DecisionWatch(self.seen)


async def test_the_calls_watch_is_told_who_decided_before_the_tool_runs() -> None:
    observer = DecisionObserver()
    previous = observe_tool_calls(observer)
    try:
        async with MiniAgents():
            reply = agent(CallTool("delete_file", {"path": "a.txt"})).inquire("Delete")
            _seen, request = await read_until_request(reply)
            request.approve(by="ada")
            await reply
    finally:
        observe_tool_calls(previous)
    assert [(d.approved, d.decided_by) for d in observer.seen] == [(True, "ada")]
    assert deleted == ["a.txt"]
