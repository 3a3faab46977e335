"""Approvals: a tool call that waits for a person to approve or deny it, wherever it waits.

One concept, used by the tools, the web apps, the console and durable runs alike:

- :class:`ToolApprovalRequest`, the request a reply carries for a call that waits;
- :class:`ToolDecision`, what a person decided (approved with these arguments, or denied
  with a reason), who decided (``decided_by``) and when (``decided_at``);
- :class:`PendingApproval`, a call that waits, as a store lists it (its run, its call, its
  tool and arguments);
- :class:`ApprovalStore`, where pending approvals are listed and decided by their ids: the
  requests of the replies of this process (:class:`MemoryApprovals`, as the web apps keep
  them), or the database of durable runs (``DurableApprovals`` of
  ``miniagents.ext.dbos``, from any process).


A tool made with ``requires_approval=True`` (or a predicate on its arguments that says
so) does not run as soon as the model calls it: the reply carries a
``ToolApprovalRequest`` first, and the call's result waits (a future: no thread blocked,
no LLM call held open) until someone calls :meth:`~ToolApprovalRequest.approve` (with the
model's arguments, or edited ones) or :meth:`~ToolApprovalRequest.deny` (the model then
gets the denial as the tool's error result). Edited arguments are checked against the tool
when they are given: arguments the tool refuses are a ``ToolApprovalError`` there and
then, and the request stays pending, so the person can answer again::

    reply:    call(delete "a.txt") -- approval request -----------(approve)-- result "deleted"
    result:   .......................... waits ..........................-----"deleted"|
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Protocol

from pydantic import Field, PrivateAttr, model_validator

from miniagents.arguments import refused_argument
from miniagents.ext.tools.errors import ToolApprovalError, ToolCallError
from miniagents.ext.tools.messages import ToolCallMessage
from miniagents.ext.tools.tool import Tool
from miniagents.messages.message import Message
from miniagents.root_error import ArgumentError

__all__ = [
    "ApprovalStore",
    "MemoryApprovals",
    "PendingApproval",
    "ToolApprovalRequest",
    "ToolDecision",
    "request_approval",
    "withdraw_request",
]


@dataclass(frozen=True)
class ToolDecision:
    """What a person decided about a call: approved (with these arguments) or denied.

    Attributes:
        approved: Whether the call may run.
        arguments: The arguments to run it with, if the person edited them.
        reason: Why it was denied, if the person said (the model reads it).
        decided_by: Who decided (a web app's principal, ``"console"``, ...), if known.
        decided_at: When the decision was given (UTC; set when a request is decided).
    """

    approved: bool
    arguments: Mapping[str, object] | None = None
    reason: str | None = None
    decided_by: str | None = None
    decided_at: datetime | None = None


@dataclass(frozen=True)
class PendingApproval:
    """A call that waits for a person's decision, as an :class:`ApprovalStore` lists it.

    Attributes:
        run_id: The run whose call it is (a durable run's workflow id, a web run's id).
        call_id: The id of the model's call of the tool.
        tool_name: The tool called.
        arguments: The model's arguments.
    """

    run_id: str
    call_id: str
    tool_name: str
    arguments: Mapping[str, object]

    @property
    def workflow_id(self) -> str:
        """The run's id (the name durable runs know it by)."""
        return self.run_id


class ToolApprovalRequest(Message):
    """A call of a tool that needs a person's approval: :meth:`approve` or :meth:`deny` it.

    The request made for a call in a reply is *pending*: deciding it once lets the call
    run (or answers the model with the denial). A request rebuilt from its fields (e.g. read
    back from a history) is not pending: its decision was made where it was asked.

    Attributes:
        tool_name: The tool the model called.
        call_id: The id of the call (its result carries the same id).
        arguments: The model's arguments.
        role: ``assistant``: the call is part of the model's turn.
    """

    role: str = "assistant"
    tool_name: str
    call_id: str
    arguments: Mapping[str, object] = Field(default_factory=dict)

    _decision: asyncio.Future[ToolDecision] | None = PrivateAttr(default=None)
    _tool: Tool | None = PrivateAttr(default=None)  # checks edited arguments, if known

    @model_validator(mode="before")
    @classmethod
    def _default_text(cls, data: Any) -> Any:
        """Say what waits for approval when no text is given."""
        if (
            isinstance(data, Mapping)
            and data.get("text") is None
            and "tool_name" in data
            and isinstance(data.get("arguments") or {}, Mapping)  # (else the field's error)
        ):
            arguments = json.dumps(dict(data.get("arguments") or {}), default=str)
            return {**data, "text": f"Approve the call of {data['tool_name']} with {arguments}?"}
        return data

    @property
    def pending(self) -> bool:
        """Whether the call waits for this request's decision."""
        return self._decision is not None and not self._decision.done()

    @property
    def withdrawn(self) -> bool:
        """Whether the call stopped waiting undecided (it was cancelled, and did not run)."""
        return self._decision is not None and self._decision.cancelled()

    def approve(
        self, arguments: Mapping[str, object] | None = None, *, by: str | None = None
    ) -> None:
        """Let the call run, with the model's arguments or with ``arguments`` instead.

        Edited arguments are checked first, as :meth:`check_arguments` does: arguments the
        tool refuses decide nothing (the request stays pending, to be decided again).
        ``by``: who decided (kept in the decision, with the time).

        Raises:
            ToolApprovalError: if the request is not pending (decided already, or not
                made for a call that waits), or if the tool refuses ``arguments`` (the
                message says what is wrong with them; the request stays pending).
            ArgumentError: if ``arguments`` is not a mapping (e.g. a JSON text), or ``by``
                is not a ``str``; nothing is decided.
        """
        if arguments is not None and not isinstance(arguments, Mapping):
            raise refused_argument(
                arguments,
                "arguments",
                "a mapping of the tool's arguments (a dict), or None",
                owner="ToolApprovalRequest.approve",
                fix="Parse a JSON text first, e.g. approve(arguments=json.loads(text)).",
                error=ArgumentError,
            )
        edited = None if arguments is None else dict(arguments)
        self.decide(ToolDecision(True, edited, decided_by=by))

    def decide(self, decision: ToolDecision) -> None:
        """Decide the call as ``decision`` says (``decided_at`` is now, unless it says when).

        Raises:
            ToolApprovalError: if the request is not pending, or if the tool refuses the
                decision's edited arguments (the request stays pending).
            ArgumentError: if its ``reason`` or ``decided_by`` is not a ``str`` (nor
                ``None``); nothing is decided.
        """
        for name, value in (("reason", decision.reason), ("decided_by", decision.decided_by)):
            if value is not None and not isinstance(value, str):
                raise refused_argument(
                    value,
                    name,
                    "a str, or None",
                    owner="A tool call's decision",
                    error=ArgumentError,
                )
        if decision.approved and decision.arguments is not None and self.pending:
            self.check_arguments(decision.arguments)
        if decision.decided_at is None:
            decision = replace(decision, decided_at=datetime.now(UTC))
        self._decide(decision)

    def check_arguments(self, arguments: Mapping[str, object]) -> None:
        """Check edited ``arguments`` as the tool checks a call's before it runs; decide nothing.

        A request that knows its tool (made by ``ToolSet.approval_request``, as the LLM
        agents' are, or by ``request_approval(call, tool=...)``) checks them with the tool's
        ``validate``, then against its parameter schema (with ``jsonschema``, when it is
        installed: the ``web`` extra brings it); any other takes them as they are
        (the tool checks them when the call runs, and the model gets an error result if it
        refuses them).

        Raises:
            ToolApprovalError: if the tool refuses them; the message says what is wrong,
                and its ``problems`` list each problem found.
        """
        tool = self._tool
        if tool is None:
            return
        try:
            tool.validate(arguments)
        except Exception as error:
            found = [str(error) if isinstance(error, ToolCallError) else repr(error)]
        else:  # (a tool that validates nothing itself, as an MCP server's)
            found = _schema_problems(tool.parameters, arguments)
        if found:
            raise ToolApprovalError(
                f"The edited arguments of the call {self.call_id!r} of {self.tool_name} do "
                f"not fit the tool's argument schema, so the call was not decided and still "
                f"waits: approve it with arguments that fit the schema (or with none, to run "
                f"it with the model's), or deny it. The tool's check said: {'; '.join(found)}",
                problems=found,
            ) from None

    def deny(self, reason: str | None = None, *, by: str | None = None) -> None:
        """Refuse the call: the model gets an error result that says so (with ``reason``).

        ``by``: who decided (kept in the decision, with the time).

        Raises:
            ToolApprovalError: if the request is not pending.
            ArgumentError: if ``reason`` or ``by`` is not a ``str``; nothing is decided.
        """
        self.decide(ToolDecision(False, reason=reason, decided_by=by))

    async def adecision(self) -> ToolDecision:
        """Wait for the decision (the call's result does).

        Raises:
            ToolApprovalError: if the request was not made for a call that waits.
        """
        if self._decision is None:
            raise ToolApprovalError(self._not_pending())
        return await asyncio.shield(self._decision)

    def _decide(self, decision: ToolDecision) -> None:
        if not self.pending or self._decision is None:
            raise ToolApprovalError(self._not_pending())
        self._decision.set_result(decision)

    def _not_pending(self) -> str:
        if self._decision is None:
            return (
                f"The approval request of the call {self.call_id!r} of {self.tool_name} is not "
                "pending: it was not made for a call that waits here (e.g. it was read back "
                "from a history). Decide the request the reply carried."
            )
        if self.withdrawn:
            return (
                f"The call {self.call_id!r} of {self.tool_name} no longer waits for a "
                "decision: it was cancelled (e.g. its reply was given up on) and did not run."
            )
        decided = self._decision.result()
        said = "approved" if decided.approved else "denied"
        return (
            f"The call {self.call_id!r} of {self.tool_name} was {said} already; a call is "
            "decided once."
        )


def request_approval(
    call: ToolCallMessage,
    *,
    tool: Tool | None = None,
    request_class: type[ToolApprovalRequest] = ToolApprovalRequest,
    **metadata: object,
) -> ToolApprovalRequest:
    """A pending approval request for ``call`` (a ``request_class``, with ``metadata``).

    ``tool``: the tool called, which checks the arguments a person edits when they approve
    (see :meth:`ToolApprovalRequest.check_arguments`). Call it in the event loop the call
    runs in: the decision is a future of that loop.
    """
    request = request_class.model_validate(
        {
            **metadata,
            "tool_name": call.tool_name,
            "call_id": call.call_id,
            "arguments": call.arguments,
        }
    )
    object.__setattr__(request, "_decision", asyncio.get_running_loop().create_future())
    object.__setattr__(request, "_tool", tool)
    return request


def withdraw_request(request: ToolApprovalRequest) -> None:
    """The call of ``request`` no longer waits (it was cancelled): nothing is left to decide.

    The request stops being pending, and deciding it raises ``ToolApprovalError``.
    """
    decision = request._decision
    if decision is not None and not decision.done():
        decision.cancel()


def _schema_problems(schema: Mapping[str, object], arguments: Mapping[str, object]) -> list[str]:
    """What ``arguments`` break of the JSON ``schema`` (none if ``jsonschema`` is missing)."""
    try:
        import jsonschema
    except ImportError:  # the tool's own validate still checks them
        return []
    given: Any = schema  # (any JSON schema a tool declares, any JSON arguments)
    instance: Any = dict(arguments)
    try:
        validator = jsonschema.validators.validator_for(given)(given)
        found = [
            f"{'.'.join(str(step) for step in error.path) or 'the arguments'}: {error.message}"
            for error in validator.iter_errors(instance)
        ]
    except Exception:  # a schema jsonschema cannot read: the tool's validate decides
        return []
    return sorted(found)[:10]


# -- the stores of pending approvals ---------------------------------------------------------


class ApprovalStore(Protocol):
    """Where calls that wait for a decision are listed, and decided by their ids."""

    async def apending(self, run_id: str | None = None) -> list[PendingApproval]:
        """The calls that wait: of every run, or of the run ``run_id``; oldest first."""
        ...

    async def adecide(self, run_id: str, call_id: str, decision: ToolDecision) -> None:
        """Decide the call ``call_id`` of the run ``run_id``.

        Raises:
            MiniAgentsError: if the call does not wait (unknown, or decided already), or
                the tool refuses the decision's edited arguments: ``ToolApprovalError``
                here, ``DurableApprovalError`` for durable runs.
        """
        ...


class MemoryApprovals:
    """The approval requests of the replies of this process, by run and call id.

    Its requests are the ones the replies carried (deciding one here decides the call);
    it forgets a run's requests with :meth:`forget`.
    """

    __slots__ = ("_requests",)

    def __init__(self) -> None:
        self._requests: dict[tuple[str, str], ToolApprovalRequest] = {}

    def add(self, run_id: str, request: ToolApprovalRequest) -> None:
        """Keep ``request``, a call of the run ``run_id``."""
        self._requests[run_id, request.call_id] = request

    def get(self, run_id: str, call_id: str) -> ToolApprovalRequest | None:
        """The request of the call ``call_id`` of the run ``run_id``, if it asked."""
        return self._requests.get((run_id, call_id))

    def of(self, run_id: str) -> list[ToolApprovalRequest]:
        """The requests of the run ``run_id``, in the order they came."""
        return [request for (run, _), request in self._requests.items() if run == run_id]

    def forget(self, run_id: str) -> None:
        """Forget the requests of the run ``run_id``."""
        for key in [key for key in self._requests if key[0] == run_id]:
            del self._requests[key]

    async def apending(self, run_id: str | None = None) -> list[PendingApproval]:
        """The calls that wait: of every run, or of the run ``run_id``."""
        return [
            PendingApproval(run, request.call_id, request.tool_name, request.arguments)
            for (run, _), request in self._requests.items()
            if request.pending and run_id in (None, run)
        ]

    async def adecide(self, run_id: str, call_id: str, decision: ToolDecision) -> None:
        """Decide the call ``call_id`` of the run ``run_id`` (see :class:`ApprovalStore`)."""
        request = self._requests.get((run_id, call_id))
        if request is None:
            raise ToolApprovalError(
                f"The run {run_id!r} has no call {call_id!r} that asked for approval; "
                "check the ids (apending() lists what waits)."
            )
        request.decide(decision)
