"""Static typing tests for the class parameters of the operators and the tools.

The ``check_*`` functions are never called: mypy checks them (strict, with
``warn_unused_ignores``), and :func:`test_class_param_types_pass_mypy` runs it on this file.
``assert_type`` pins each inferred type; each line that must be rejected carries a precise
``# type: ignore[code]``.

A class given as ``message_class=`` (``join_messages``, ``split_messages``),
``result_class=`` (``ToolSet.run``, ``run_tool_call``, ``error_result``) or
``request_class=`` (``ToolSet.approval_request``) is the class of what they make, and their
type says so, as ``MessagePromise.from_async_iterable(..., message_class=...)`` does:
``join_messages(texts, message_class=Note)`` is a ``MessagePromise[Note]``, so ``note.author``
type-checks. Without the class, they are typed with the default class (``Message``,
``ToolResultMessage``, ``ToolApprovalRequest``), as before.
"""

from __future__ import annotations

from typing import assert_type

from pydantic import BaseModel

from miniagents import Message, MessagePromise, MessageSequencePromise, MessageTuple
from miniagents.ext.llm import LLMToolApprovalRequest, LLMToolResultMessage
from miniagents.ext.tools import (
    Tool,
    ToolApprovalRequest,
    ToolCallMessage,
    ToolResultMessage,
    ToolSet,
    run_tool_call,
)
from miniagents.ext.tools.running import error_result
from miniagents.operators import join_messages, split_messages
from tests.fakes.typecheck import assert_passes_mypy


class Note(Message):
    """A message class with a field of its own."""

    author: str


class Row(BaseModel):
    """A pydantic model that is not a ``Message``."""

    text: str | None = None


async def check_join_messages(message_class: type[Message]) -> None:
    note = join_messages(["a", "b"], message_class=Note, author="me")
    assert_type(note, MessagePromise[Note])
    assert_type((await note).author, str)  # was an error: "Message" has no attribute "author"
    assert_type(
        join_messages("a", "|", strip_leading_newlines=True, message_class=Note, author="me"),
        MessagePromise[Note],
    )
    # Without a class, or with a Message class held in a variable: a MessagePromise[Message].
    assert_type(join_messages(["a", "b"]), MessagePromise[Message])
    assert_type(join_messages(["a", "b"], role="user"), MessagePromise[Message])
    assert_type(join_messages("a", message_class=message_class), MessagePromise[Message])
    # A class that is no Message is refused.
    join_messages("a", message_class=Row)  # type: ignore[type-var]
    join_messages("a", message_class=str)  # type: ignore[type-var]


async def check_split_messages(message_class: type[Message]) -> None:
    parts = split_messages("a\n\nb", message_class=Note, author="me")
    assert_type(parts, MessageSequencePromise[Note])
    async for part in parts:
        assert_type(part, MessagePromise[Note])
        assert_type((await part).author, str)
    assert_type(await parts, MessageTuple[Note])
    assert_type(split_messages("a|b", "|", message_class=Note), MessageSequencePromise[Note])
    # Without a class, or with a Message class held in a variable: a sequence of Message.
    assert_type(split_messages("a\n\nb"), MessageSequencePromise[Message])
    assert_type(split_messages("a\n\nb", role="user"), MessageSequencePromise[Message])
    assert_type(split_messages("a", message_class=message_class), MessageSequencePromise[Message])
    split_messages("a", message_class=Row)  # type: ignore[type-var]


async def check_tool_results(tools: ToolSet, tool: Tool, call: ToolCallMessage) -> None:
    result = tools.run(call, result_class=LLMToolResultMessage, model="m")
    assert_type(result, MessagePromise[LLMToolResultMessage])
    assert_type((await result).model, str | None)  # a field of LLMToolResultMessage only
    assert_type(
        run_tool_call(tool, call, result_class=LLMToolResultMessage, model="m"),
        MessagePromise[LLMToolResultMessage],
    )
    assert_type(
        error_result(call, "No such tool.", result_class=LLMToolResultMessage),
        MessagePromise[LLMToolResultMessage],
    )
    # Without a class: a ToolResultMessage, as before.
    assert_type(tools.run(call), MessagePromise[ToolResultMessage])
    assert_type(tools.run(call, approval=None, model="m"), MessagePromise[ToolResultMessage])
    assert_type(run_tool_call(tool, call), MessagePromise[ToolResultMessage])
    assert_type(error_result(call, "No such tool."), MessagePromise[ToolResultMessage])
    # A class that is no ToolResultMessage is refused (a Message among them).
    tools.run(call, result_class=Note)  # type: ignore[type-var]
    run_tool_call(tool, call, result_class=Message)  # type: ignore[type-var]
    error_result(call, "x", result_class=Row)  # type: ignore[type-var]


def check_approval_requests(tools: ToolSet, call: ToolCallMessage) -> None:
    request = tools.approval_request(call, request_class=LLMToolApprovalRequest, model="m")
    assert_type(request, LLMToolApprovalRequest | None)
    if request is not None:
        assert_type(request.model, str | None)
        assert_type(tools.run(call, approval=request), MessagePromise[ToolResultMessage])
    assert_type(tools.approval_request(call), ToolApprovalRequest | None)
    tools.approval_request(call, request_class=ToolResultMessage)  # type: ignore[type-var]


# --- The test that pytest runs --------------------------------------------------------


def test_class_param_types_pass_mypy() -> None:
    """Type-check this file with the project's mypy.ini (the one run: tests/fakes/typecheck.py)."""
    assert_passes_mypy(__file__)
