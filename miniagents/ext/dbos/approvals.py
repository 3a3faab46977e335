"""Approvals given from another process: decide a call that waits in a durable run, by its ids.

A durable run's call that waits for a person's approval can be decided where the run
runs (``approve()`` on the request its reply carries) or from any other process that
reaches the run's database (a web server, an admin script, a queue consumer)::

    await apending_approvals(database_url=url)  # what waits: runs, calls, tools, arguments
    await aapprove("order-42", "call_1", database_url=url, decided_by="ada")  # or adeny(...)

:class:`DurableApprovals` is the same as an ``ApprovalStore`` (the one interface of
``miniagents.ext.tools.approval``, which the requests of this process have as
``MemoryApprovals``). Who decided and when is kept with the decision, in the run's record.

The decision is a DBOS message (see :mod:`._approvals`): durable once sent. Sent while
the run waits, it resumes the run at once; sent while the run's process is down, it waits
in the database and resumes the run when the run is recovered. The first decision on a
call is the one recorded (each claims the call atomically, see :mod:`._approvals`); a
later one, or one given at the same instant, here or there, raises an error that says so.

These functions only read and write the database (through a ``DBOSClient``): they launch
nothing, and recover no run, in the process that calls them.
"""

from __future__ import annotations

import asyncio
import pickle
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from miniagents.ext.dbos import _engine
from miniagents.ext.dbos._approvals import (
    APPROVAL_WORKFLOW,
    CLAIM_CONNECT_WAIT,
    CLAIM_LOCK_WAIT,
    SENT_MARK,
    Claim,
    approval_id,
    claimed_send,
    decision_message,
    decision_of,
    is_approval_of,
)
from miniagents.ext.dbos._database_errors import database_failure, first_line
from miniagents.ext.dbos._sqlite import CONNECT_TIMEOUT, close_client, new_client, sqlite_path
from miniagents.ext.dbos.errors import (
    DurableApprovalError,
    DurableDatabaseError,
    DurableRecordError,
)
from miniagents.ext.tools.approval import PendingApproval, ToolDecision

if TYPE_CHECKING:
    from dbos import DBOSClient, WorkflowStatus

__all__ = ["DurableApprovals", "PendingApproval", "aapprove", "adeny", "apending_approvals"]

T = TypeVar("T")

_WAITING = ("PENDING", "ENQUEUED")


async def apending_approvals(
    workflow_id: str | None = None, *, database_url: str | None = None
) -> list[PendingApproval]:
    """The calls that wait for a decision: of every run, or of the run ``workflow_id``.

    Oldest first. A call is listed while its run waits for it, whether the run's process
    runs now or not (a run stopped by a crash waits until it is recovered).

    Args:
        workflow_id: Only the calls of this run.
        database_url: The database of the runs (the default: as ``durable``'s, the one
            ``use_database`` chose, else ``miniagents_durable.sqlite`` in the current folder).

    Raises:
        DurableDatabaseError: if the database cannot be reached or holds no durable runs.
    """
    async with _Client(database_url) as client:
        waiting = await client.waiting(workflow_id)
        return [call for call, approval in waiting if _sent_decision(approval) is None]


async def aapprove(
    workflow_id: str,
    call_id: str,
    *,
    arguments: Mapping[str, object] | None = None,
    database_url: str | None = None,
    decided_by: str | None = None,
) -> None:
    """Let the call ``call_id`` of the run ``workflow_id`` run (with ``arguments`` instead).

    Edited arguments are validated as the model's are (invalid ones give the model an
    error result that says so). The decision is recorded at once, with ``decided_by`` and
    the time; the run resumes now if it waits, else when it is recovered.

    Raises:
        DurableApprovalError: if the run does not exist or has ended, or the call does
            not wait for a decision (unknown, or decided already: of two decisions given
            at the same instant, the database keeps one, and the other raises this).
        DurableDatabaseError: if the database cannot be reached or holds no durable runs.
    """
    if arguments is not None:
        if not isinstance(arguments, Mapping) or not all(isinstance(k, str) for k in arguments):
            raise DurableRecordError(
                f"The arguments of an approval must be a mapping of names (str) to values, "
                f"got {arguments!r:.80}."
            )
        arguments = dict(arguments)
        try:
            pickle.dumps(arguments)
        except Exception as error:
            raise DurableRecordError(
                f"The arguments of the approval of the call {call_id!r} cannot be recorded "
                f"(they cannot be pickled: {type(error).__name__}: {error}); give values "
                "that can (text, numbers, lists, dicts)."
            ) from error
    decision = ToolDecision(True, arguments, decided_by=decided_by, decided_at=_now())
    await _decide(workflow_id, call_id, decision, database_url)


async def adeny(
    workflow_id: str,
    call_id: str,
    *,
    reason: str | None = None,
    database_url: str | None = None,
    decided_by: str | None = None,
) -> None:
    """Refuse the call ``call_id`` of the run ``workflow_id``: the model gets the denial.

    The decision is recorded with ``decided_by`` and the time.

    Raises:
        DurableApprovalError: if the run does not exist or has ended, or the call does
            not wait for a decision (unknown, or decided already: of two decisions given
            at the same instant, the database keeps one, and the other raises this).
        DurableDatabaseError: if the database cannot be reached or holds no durable runs.
    """
    if reason is not None and not isinstance(reason, str):
        raise DurableRecordError(f"The reason of a denial must be a str, got {reason!r:.80}.")
    decision = ToolDecision(False, reason=reason, decided_by=decided_by, decided_at=_now())
    await _decide(workflow_id, call_id, decision, database_url)


def _now() -> datetime:
    return datetime.now(UTC)


class DurableApprovals:
    """The calls of durable runs that wait for a decision, in their database: an ``ApprovalStore``.

    Args:
        database_url: The database of the runs (the default: as ``durable``'s).
        decided_by: Who decides through this store (kept with each decision), if known.
    """

    def __init__(self, database_url: str | None = None, *, decided_by: str | None = None) -> None:
        self.database_url = database_url
        self.decided_by = decided_by

    async def apending(self, run_id: str | None = None) -> list[PendingApproval]:
        """The calls that wait (see :func:`apending_approvals`)."""
        return await apending_approvals(run_id, database_url=self.database_url)

    async def adecide(self, run_id: str, call_id: str, decision: ToolDecision) -> None:
        """Decide the call ``call_id`` of the durable run ``run_id`` (see :func:`aapprove`).

        Raises:
            DurableApprovalError: if the call does not wait.
            DurableDatabaseError: if the database cannot be reached.
        """
        by = decision.decided_by or self.decided_by
        if decision.approved:
            await aapprove(
                run_id,
                call_id,
                arguments=decision.arguments,
                database_url=self.database_url,
                decided_by=by,
            )
        else:
            await adeny(
                run_id,
                call_id,
                reason=decision.reason,
                database_url=self.database_url,
                decided_by=by,
            )


async def _decide(
    workflow_id: str, call_id: str, decision: ToolDecision, database_url: str | None
) -> None:
    for name, value in (("workflow_id", workflow_id), ("call_id", call_id)):
        if not isinstance(value, str) or not value:
            raise DurableRecordError(f"The {name} must be a non-empty str, got {value!r}.")
    async with _Client(database_url) as client:
        run = await client.status(workflow_id)
        if run is None:
            raise DurableApprovalError(
                f"There is no durable run {workflow_id!r} in {client.shown}: check the "
                "workflow id and the database_url (apending_approvals() lists what waits)."
            )
        if run.status not in _WAITING:
            raise DurableApprovalError(
                f"The durable run {workflow_id!r} has ended ({run.status}): none of its calls "
                "waits for a decision any more."
            )
        waiting = [
            approval
            for pending, approval in await client.waiting(workflow_id)
            if pending.call_id == call_id
        ]
        if not waiting:
            raise DurableApprovalError(await client.not_waiting(workflow_id, call_id))
        if len(waiting) > 1:
            raise DurableApprovalError(
                f"{len(waiting)} calls of the durable run {workflow_id!r} have the id "
                f"{call_id!r} and wait for a decision (nested agents' calls): decide them "
                "where the run runs, on the requests its reply carries."
            )
        name = waiting[0].workflow_id
        sent = _sent_decision(waiting[0])
        if sent is not None:  # sent before, not read yet by the run
            raise DurableApprovalError(
                f"The call {call_id!r} of the durable run {workflow_id!r} was {sent} already; "
                "a call is decided once."
            )
        message = decision_message(decision, by="approvals")
        first = await client.claimed_send(name, message)  # atomic: one decider wins
        if first is not None:
            raise DurableApprovalError(_claimed_already(workflow_id, call_id, first))
        said = "approved" if decision.approved else "denied"
        await client.mark(name, said)  # not listed as waiting any more
        kept = await client.output(name)
        if isinstance(kept, Mapping) and kept.get("id") != message["id"]:
            raise DurableApprovalError(_decided_already(workflow_id, call_id, kept))


def _decided_already(workflow_id: str, call_id: str, kept: Mapping[str, object]) -> str:
    decision = decision_of(kept)
    if decision is None:
        return (
            f"The call {call_id!r} of the durable run {workflow_id!r} no longer waits: its "
            "run ended before it was decided."
        )
    said = "approved" if decision.approved else "denied"
    return (
        f"The call {call_id!r} of the durable run {workflow_id!r} was {said} already; a "
        "call is decided once."
    )


_BY = {
    "request": "on the request in the run's reply",
    "approvals": "by another aapprove/adeny",
}


def _claimed_already(workflow_id: str, call_id: str, first: Claim) -> str:
    """Why a decision was refused: another one claimed the call first."""
    if first.said == "withdrawn":
        return (
            f"The call {call_id!r} of the durable run {workflow_id!r} no longer waits: its "
            "run ended before it was decided."
        )
    by = _BY.get(first.by, "elsewhere")
    return (
        f"The call {call_id!r} of the durable run {workflow_id!r} was already decided: "
        f"{first.said} {by}, first; this decision was not sent. A call is decided once."
    )


class _Client:
    """A ``DBOSClient`` on the database of the runs, for one call of this module."""

    def __init__(self, database_url: str | None) -> None:
        self.url = database_url or _engine.configured_url()
        self.shown = _engine.redacted(self.url)
        self.client: DBOSClient | None = None

    async def __aenter__(self) -> _Client:
        _engine.dbos_class()  # the install hint, if DBOS is missing
        try:
            self.client = await asyncio.to_thread(self._connected)
        except DurableDatabaseError:
            raise
        except Exception as error:  # in one line: not a SQLite database or damaged, locked...
            failure = database_failure(error, self.url, self.shown, CONNECT_TIMEOUT)
            if failure is None:
                failure = DurableDatabaseError(
                    f"The database of durable runs {self.shown} cannot be read "
                    f"({type(error).__name__}: {first_line(error)}): check the database_url: "
                    "it must be the one the durable agents use, where a durable run was made."
                )
            raise failure from None
        return self

    def _connected(self) -> DBOSClient:
        if self.url.startswith("sqlite"):  # a client would make an empty file
            path = sqlite_path(self.url)
            if not path or not Path(path).is_file():
                raise DurableDatabaseError(
                    f"There is no database of durable runs at {self.shown} (no such file): "
                    "give the database_url the durable agents use. It is made when the first "
                    "of their runs starts: a program that polls for approvals while its runs "
                    "start takes this error as no call waiting yet, and asks again."
                )
        client = new_client(self.url)
        try:
            client.list_workflows(limit=1, load_input=False, load_output=False)
        except BaseException:
            close_client(client)
            raise
        return client

    async def __aexit__(self, *exc: object) -> None:
        if self.client is not None:
            await asyncio.to_thread(close_client, self.client)

    async def _run(self, job: Callable[[DBOSClient], T]) -> T:
        client = self.client
        assert client is not None  # entered
        return await asyncio.to_thread(job, client)

    async def status(self, workflow_id: str) -> WorkflowStatus | None:
        """The status of the workflow ``workflow_id`` (``None``: there is none)."""
        found = await self._run(
            lambda client: client.list_workflows(
                workflow_ids=[workflow_id], load_input=False, load_output=False
            )
        )
        return found[0] if found else None

    async def approvals(
        self, workflow_id: str | None, *, waiting: bool
    ) -> list[tuple[PendingApproval, WorkflowStatus]]:
        """The approvals (of the run ``workflow_id``, or all), the waiting ones only or all."""
        found = await self._run(
            lambda client: client.list_workflows(
                name=APPROVAL_WORKFLOW,
                status=list(_WAITING) if waiting else None,
                workflow_id_prefix=None if workflow_id is None else approval_id(workflow_id, ""),
                sort_desc=False,
            )
        )
        approvals = []
        for approval in found:
            if workflow_id is not None and not is_approval_of(
                approval.workflow_id, approval.input, workflow_id
            ):
                continue  # (another run's, whose id begins with this one's and the mark)
            call = _call_of(approval)
            if call is not None and workflow_id in (None, call.workflow_id):
                approvals.append((call, approval))
        return approvals

    async def waiting(
        self, workflow_id: str | None
    ) -> list[tuple[PendingApproval, WorkflowStatus]]:
        """The calls that wait (with their approvals), oldest first, of runs that wait."""
        found = await self.approvals(workflow_id, waiting=True)
        runs = sorted({call.workflow_id for call, _ in found})
        alive: set[str] = set()
        if runs:
            statuses = await self._run(
                lambda client: client.list_workflows(
                    workflow_ids=runs, status=list(_WAITING), load_input=False, load_output=False
                )
            )
            alive = {status.workflow_id for status in statuses}
        return [
            (call, approval)
            for call, approval in found
            if call.workflow_id in alive and _decided_at_start(approval) is None
        ]

    async def not_waiting(self, workflow_id: str, call_id: str) -> str:
        """Why the call does not wait: decided already, or not a call that waited."""
        for call, approval in await self.approvals(workflow_id, waiting=False):
            kept = approval.output if approval.output is not None else _decided_at_start(approval)
            if call.call_id == call_id and isinstance(kept, Mapping):
                return _decided_already(workflow_id, call_id, kept)
        return (
            f"The durable run {workflow_id!r} has no call {call_id!r} that waits for a "
            "decision: check the call id (apending_approvals() lists what waits)."
        )

    async def mark(self, name: str, said: str | None) -> None:
        """Note on the approval ``name`` that a decision was sent (what it said), or none."""
        await self._run(
            lambda client: client.update_workflow_attributes(name, {SENT_MARK: said}, merge=True)
        )

    async def claimed_send(self, name: str, message: dict[str, object]) -> Claim | None:
        """Claim the approval ``name`` and send it ``message``; else the claim before.

        Raises:
            DurableDatabaseError: if the database cannot be reached, or the claim stays
                locked by another session (nothing was sent).
        """
        try:
            return await self._run(lambda client: claimed_send(client, self.url, name, message))
        except Exception as error:  # (a server gone since the client connected: one line)
            # (what a failure here waited for: a SQLite file's lock, or a server's answer)
            waited = CLAIM_LOCK_WAIT if self.url.startswith("sqlite") else CLAIM_CONNECT_WAIT
            failure = database_failure(error, self.url, self.shown, waited)
            if failure is None:
                raise
            raise failure from None

    async def output(self, name: str) -> object:
        """What the approval ``name`` ended with (``None`` while it waits)."""
        found = await self._run(lambda client: client.list_workflows(workflow_ids=[name]))
        return found[0].output if found else None


def _call_of(approval: WorkflowStatus) -> PendingApproval | None:
    """The call an approval waits for (from its inputs); ``None`` if it is not one."""
    arguments = _inputs_of(approval)
    if arguments is None:
        return None
    run_id, key, tool_name, call_id, call_arguments = arguments[:5]
    if approval.workflow_id != approval_id(str(run_id), str(key)):
        return None
    if not isinstance(call_arguments, Mapping):
        return None
    return PendingApproval(str(run_id), str(call_id), str(tool_name), dict(call_arguments))


def _inputs_of(approval: WorkflowStatus) -> tuple[object, ...] | list[object] | None:
    """An approval's inputs: the call's five, then the decision it started with, if any."""
    inputs: Mapping[str, object] = approval.input or {}
    arguments = inputs.get("args")
    if not isinstance(arguments, (tuple, list)) or len(arguments) not in (5, 6):
        return None
    return arguments


def _decided_at_start(approval: WorkflowStatus) -> Mapping[str, object] | None:
    """The decision an approval started with (given on the request before), if any."""
    arguments = _inputs_of(approval)
    decided = arguments[5] if arguments is not None and len(arguments) == 6 else None
    return decided if isinstance(decided, Mapping) else None


def _sent_decision(approval: WorkflowStatus) -> str | None:
    """What a decision sent to the approval said, if one was sent (``None``: none)."""
    said = (approval.attributes or {}).get(SENT_MARK)
    return said if isinstance(said, str) else None
