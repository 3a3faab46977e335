"""Approvals that wait: the decision on each waiting call is a small DBOS workflow of its own.

A call of a durable run that waits for a person's approval starts (once) the workflow
``miniagents.durable.approval`` named ``<run id>::approval<key>`` (its *approval*). It
waits for one DBOS message (``DBOS.recv``), the decision, then publishes it (an event the
run waits on) and ends with it. Whoever decides first *claims* the approval and sends that
message, in one transaction: the claim is a row keyed by the approval's id (a table of our
own, ``miniagents_decisions``, next to DBOS's), so of two deciders at the same instant the
database lets exactly one in, and the other learns which decision won (and is refused)::

    run (its approval step)   start A | wait for A's event ............... | decision recorded
    approval A                 recv ..........................| set_event | ends with it
    request.approve() here     -------- claim A + send to A --^
    aapprove(run, call) elsewhere ------ claim A: taken -> DurableApprovalError (who won)

The approval is a workflow of its own (not steps of the run) so that the run's recorded
steps keep their numbering, and a message sent while the run's process is down waits in
the database: DBOS recovers the approval at launch, and it reads the message at once.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
import uuid
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from miniagents.ext.dbos._bounds import bounded_url, lock_timed_out
from miniagents.ext.dbos._database_errors import first_line
from miniagents.ext.dbos._sqlite import close_client, new_client, shim_arguments
from miniagents.ext.dbos.errors import DurableDatabaseError, DurableError
from miniagents.ext.tools.approval import ToolApprovalRequest, ToolDecision

if TYPE_CHECKING:
    import sqlalchemy
    from dbos import DBOS, DBOSClient, WorkflowStatus

__all__ = [
    "APPROVAL_MARK",
    "APPROVAL_WORKFLOW",
    "CLAIM_CONNECT_WAIT",
    "CLAIM_LOCK_WAIT",
    "DECISION_TOPIC",
    "IDS_PER_QUERY",
    "SENT_MARK",
    "Claim",
    "RunsDatabase",
    "aopened",
    "approval_id",
    "approval_running",
    "awaited_decision",
    "awith_client",
    "claimed_send",
    "decision_message",
    "decision_of",
    "is_approval_of",
    "register_approvals",
    "run_of_approval",
    "withdraw",
    "withdraw_orphans",
]

T = TypeVar("T")


class RunsDatabase(Protocol):
    """The database of runs, read through a client that fails at once in an outage (DBOS's
    own calls retry a lost connection with no bound): the engine's."""

    async def astatus(self, workflow_id: str) -> WorkflowStatus | None:
        """The status of the workflow ``workflow_id`` (``None``: there is none)."""

    async def awhile_reachable(
        self, workflow_id: str, work: Coroutine[Any, Any, T], *, waited: str | None = None
    ) -> T:
        """``work``'s result (a wait through DBOS's calls), unless the database stops
        answering first: then a ``DurableDatabaseError`` that begins with ``waited``."""


_logger = logging.getLogger(__name__)

APPROVAL_MARK = "::approval"
"""What the workflow id of an approval holds between its run's id and its call's key (a
new run's own id never holds it: refused at its start; an old one's may, so an approval's
run is read from its recorded input, see :func:`run_of_approval`)."""

APPROVAL_WORKFLOW = "miniagents.durable.approval"
"""The DBOS name of the workflow that waits for one call's decision."""

DECISION_TOPIC = "miniagents.decision"
"""The topic of the message that carries a decision to an approval."""

SENT_MARK = "miniagents_decision_sent"
"""The attribute of an approval that says a decision was sent to it (and what it said)."""

IDS_PER_QUERY = 500
"""The most workflow ids one query names: a database bounds the parameters of a statement
(SQLite: 999 on older builds, 32,766 on newer ones)."""

_EVENT = "miniagents.decision"
_WAIT_SECONDS = 24 * 3600.0  # each DBOS wait is bounded; an approval waits again after one


class _Registration:
    """The approval workflow as DBOS registered it (once a process, before DBOS's launch)."""

    __slots__ = ("preemptible", "workflow")

    def __init__(self) -> None:
        self.workflow: Callable[..., Coroutine[Any, Any, dict[str, object]]] | None = None
        self.preemptible = False
        """Whether DBOS stops a run's step that waits for a decision once the run is cancelled."""


_registration = _Registration()


def approval_id(run_id: str, key: str) -> str:
    """The workflow id of the approval of the call at ``key`` of the run ``run_id``."""
    return f"{run_id}{APPROVAL_MARK}{key}"


def run_of_approval(workflow_id: str, recorded: object) -> str | None:
    """The id of the run whose approval the workflow ``workflow_id`` is (``None``: no approval).

    Read from ``recorded``, the workflow's recorded input (DBOS's ``input``: an approval's
    arguments begin with its run's id and its call's key, see :func:`_approval_workflow`),
    and checked against the id: the workflow is that run's approval only if its id is
    exactly ``<run id>::approval<key>``. The id alone cannot say: a run recorded before ids
    holding :data:`APPROVAL_MARK` were refused may hold it anywhere (``a::approval/b``, whose
    approvals' ids, ``a::approval/b::approval/approval.c1.0``, read as ``a``'s too).
    """
    args = recorded.get("args") if isinstance(recorded, Mapping) else None
    if not isinstance(args, (tuple, list)) or len(args) < 2:
        return None
    run_id, key = args[0], args[1]
    if not isinstance(run_id, str) or not isinstance(key, str):
        return None
    return run_id if workflow_id == approval_id(run_id, key) else None


def is_approval_of(workflow_id: str, recorded: object, run_id: str) -> bool:
    """Whether the workflow ``workflow_id`` (its recorded input ``recorded``) is the approval
    of a call of the run ``run_id``: exactly, by :func:`run_of_approval`, not a run whose id
    only begins with it and the mark (as a lookup of the prefix finds, or SQL ``LIKE`` lets
    through)."""
    return run_of_approval(workflow_id, recorded) == run_id


_approving: contextvars.ContextVar[tuple[str, str] | None] = contextvars.ContextVar(
    "miniagents_approving", default=None
)
"""The approval the current task runs, and its run (set in its own task, as it starts)."""


def approval_running() -> tuple[str, str] | None:
    """The id of the approval workflow that the current task runs, and its run's id.

    Exact where the id alone is not (see :func:`run_of_approval`): set by the approval's
    own body, so a run's task (whatever its id holds) is never taken for one.
    """
    return _approving.get()


def decision_message(decision: ToolDecision | None, *, by: str) -> dict[str, object]:
    """The message that carries ``decision`` (``None``: the run ended, nobody decides).

    Each message has its own id, so that a sender can tell whether its decision was kept.
    """
    message: dict[str, object] = {"id": uuid.uuid4().hex, "by": by}
    if decision is None:
        message["withdrawn"] = True
        return message
    message["approved"] = decision.approved
    message["arguments"] = None if decision.arguments is None else dict(decision.arguments)
    message["reason"] = decision.reason
    message["decided_by"] = decision.decided_by  # who, and when: kept in the run's record
    at = decision.decided_at
    message["decided_at"] = None if at is None else at.isoformat()
    return message


def decision_of(message: object) -> ToolDecision | None:
    """The decision a message carries (``None``: withdrawn, or not a decision)."""
    if not isinstance(message, Mapping) or not isinstance(message.get("approved"), bool):
        return None
    arguments = message.get("arguments")
    reason, by, at = message.get("reason"), message.get("decided_by"), message.get("decided_at")
    return ToolDecision(
        approved=message["approved"],
        arguments=dict(arguments) if isinstance(arguments, Mapping) else None,
        reason=reason if isinstance(reason, str) else None,
        decided_by=by if isinstance(by, str) else None,
        decided_at=_time_of(at),
    )


def _time_of(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def _is_message(message: object) -> bool:
    return isinstance(message, Mapping) and (
        decision_of(message) is not None or message.get("withdrawn") is True
    )


async def _approval_workflow(
    run_id: str,
    key: str,
    tool_name: str,
    call_id: str,
    arguments: dict[str, object],
    decided: dict[str, object] | None = None,
) -> dict[str, object]:
    """Wait for the first decision (or withdrawal) sent to this approval; end with it.

    Its inputs are what ``apending_approvals`` shows of the call. ``decided``: the
    decision given on the request before this approval started, which it ends with at
    once (it never waits, so it is never listed as waiting).
    """
    from dbos import DBOS

    _approving.set((approval_id(run_id, key), run_id))  # (this task's: see approval_running)
    message: object = decided
    while not _is_message(message):
        message = await DBOS.recv_async(DECISION_TOPIC, timeout_seconds=_WAIT_SECONDS)
    assert isinstance(message, Mapping)
    await DBOS.set_event_async(_EVENT, message)
    return dict(message)


def register_approvals(dbos: type[DBOS], *, preemptible: bool) -> None:
    """Register the approval workflow with DBOS (once, before DBOS is launched).

    ``preemptible``: whether the runs' steps that wait for decisions are preemptible (DBOS
    stops such a step once its run is cancelled).
    """
    _registration.preemptible = preemptible
    if _registration.workflow is None:
        _registration.workflow = dbos.workflow(name=APPROVAL_WORKFLOW)(_approval_workflow)


async def _outside(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a DBOS call outside of the run's workflow and steps (in an empty context)."""
    return await contextvars.Context().run(asyncio.create_task, coroutine)


async def _started(
    run_id: str,
    key: str,
    request: ToolApprovalRequest,
    decided: dict[str, object] | None,
    database: RunsDatabase,
) -> bool:
    """Start the approval of the call (once: after a restart, DBOS has recovered it).

    ``decided``: the message of a decision given on the request already, which the
    approval starts with; ``database`` reads whether it is started. Returns whether it was
    started here (else it was there).

    Raises:
        DurableDatabaseError: if the database of runs cannot be read (see
            :func:`_outage_told`).
    """
    workflow = _registration.workflow
    if workflow is None:  # registered with the run's workflow, before DBOS was launched
        raise DurableError(
            "A durable run waited for an approval before DBOS was launched for durable runs."
        )
    name = approval_id(run_id, key)
    if await database.astatus(name) is not None:
        return False
    inputs = (run_id, key, request.tool_name, request.call_id, dict(request.arguments))
    started = _start(name, workflow, *inputs, *(() if decided is None else (decided,)))
    await _outage_told(database, name, started)
    return True


async def _start(
    name: str, workflow: Callable[..., Coroutine[Any, Any, object]], *inputs: object
) -> None:
    """Start ``workflow`` (an approval) under the id ``name`` (set in this task's own context)."""
    from dbos import DBOS, SetWorkflowID

    with SetWorkflowID(name):
        await DBOS.start_workflow_async(workflow, *inputs)


async def _outage_told(database: RunsDatabase, name: str, work: Coroutine[Any, Any, T]) -> T:
    """``work`` (a call of DBOS's on the approval ``name``), bounded by the database's answers.

    Raises:
        DurableDatabaseError: if the database of runs stops answering meanwhile (DBOS's
            call would retry until it answers again): the call is not decided here.
    """
    run_id = name.rpartition(APPROVAL_MARK)[0]
    waited = (
        f"The approval {name!r} of a call of the durable run {run_id!r} was waited on, but "
        "the database of durable runs could not be read meanwhile (an outage, not a decision "
        "that is slow to come), so whether the call is decided is not known here."
    )
    return await database.awhile_reachable(name, work, waited=waited)


async def _published(name: str) -> object:
    """The message the approval ``name`` ended with (waits for it)."""
    from dbos import DBOS

    while True:
        message = await DBOS.get_event_async(name, _EVENT, timeout_seconds=_WAIT_SECONDS)
        if message is not None:
            return message


_opened: dict[tuple[str, int], asyncio.Event] = {}
"""The approvals of this process's runs, by run and request, set once started in the database
(or found started there), while the run waits on them: see :func:`aopened`.

A request is its own key (its ``id``: each entry is kept only while a wait holds the
request, so the id is not another's meanwhile), not its call's id: calls of nested agents
of one run may share a call id, and each has its own approval."""


def _opened_key(run_id: str, request: ToolApprovalRequest) -> tuple[str, int]:
    return run_id, id(request)


async def aopened(run_id: str, request: ToolApprovalRequest, seconds: float) -> bool:
    """Wait until the approval of ``request``, a call of this process's run ``run_id``, is
    started in the database (``apending_approvals`` lists it, another server sees the run
    wait), or the request is no longer pending; whether that came within ``seconds``.

    The request is visible in the run's reply before its call asks for the decision, which
    starts the approval (a thread's database write): a web app waits for it before it tells
    its client that the run waits.
    """
    key = _opened_key(run_id, request)
    opened = _opened.setdefault(key, asyncio.Event())
    decided: asyncio.Future[ToolDecision] | None = None
    opening = asyncio.ensure_future(opened.wait())
    try:
        if request.pending and not opened.is_set():
            decided = asyncio.ensure_future(request.adecision())
            both = {opening, decided}
            await asyncio.wait(both, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        return opened.is_set() or not request.pending
    finally:
        for waiting in (opening, decided):
            if waiting is not None and not waiting.done():
                waiting.cancel()
        if not opened.is_set() and _opened.get(key) is opened:
            del _opened[key]  # (never opened here: kept by nobody)


async def awaited_decision(
    url: str, run_id: str, key: str, request: ToolApprovalRequest, database: RunsDatabase
) -> ToolDecision:
    """The first decision on the call: given to ``request`` here, or sent from elsewhere.

    ``url`` is the database of the run (where a decision given here is claimed), which
    ``database`` reads; DBOS's calls that wait are bounded by its answers. Once its
    approval is started in the database, :func:`aopened` of the call returns.

    The request is decided too when the decision came from elsewhere (it is no longer
    pending, and deciding it again raises ``ToolApprovalError``).
    """
    opening = _opened_key(run_id, request)
    opened = _opened.setdefault(opening, asyncio.Event())
    try:
        return await _awaited_decision(url, run_id, key, request, opened, database)
    finally:
        opened.set()  # (the run waits no more: nothing is to wait for its approval)
        if _opened.get(opening) is opened:
            del _opened[opening]


async def _awaited_decision(
    url: str,
    run_id: str,
    key: str,
    request: ToolApprovalRequest,
    opened: asyncio.Event,
    database: RunsDatabase,
) -> ToolDecision:
    name = approval_id(run_id, key)
    # Decided here before anyone else could see the call wait: its approval starts decided,
    # so it is never listed as waiting (an aapprove/adeny is told it was decided already).
    early = None if request.pending else decision_message(await request.adecision(), by="request")
    if await _outside(_started(run_id, key, request, early, database)) and early is not None:
        return await request.adecision()
    opened.set()  # (started, or found started: it waits in the database now)
    here = asyncio.ensure_future(request.adecision())
    kept = asyncio.ensure_future(_outside(_outage_told(database, name, _published(name))))
    try:
        await asyncio.wait({here, kept}, return_when=asyncio.FIRST_COMPLETED)
        if not kept.done() and not here.cancelled() and here.exception() is None:
            await _outside(_sent_from_here(url, name, here.result(), database))
        message = await kept
    finally:
        for waiting in (here, kept):
            if not waiting.done():
                waiting.cancel()
    decision = decision_of(message)
    if decision is None:  # withdrawn: the run has ended (it does not read this), or was
        if _registration.preemptible and await _outside(_cancelled(run_id, database)):  # cancelled:
            # DBOS stops this step at once (and the run), recording nothing: wait for it
            await asyncio.get_running_loop().create_future()
        return ToolDecision(False, reason="The run ended before the call was decided.")
    if request.pending:  # (decided elsewhere: as it was decided there, who and when)
        request.decide(decision)
    return decision


async def _cancelled(run_id: str, database: RunsDatabase) -> bool:
    """Whether the run ``run_id`` was cancelled (``acancel_run``, or DBOS's own cancel)."""
    found = await database.astatus(run_id)
    return found is not None and found.status == "CANCELLED"


async def _sent_from_here(
    url: str, name: str, decision: ToolDecision, database: RunsDatabase
) -> None:
    """Claim the approval for the decision given to the request here, and send it.

    If a decision was claimed first (from elsewhere), this one is not sent: the approval
    reads the first, and so does the run.
    """
    from dbos import DBOS

    said = "approved" if decision.approved else "denied"
    if await _claimed_here(url, name, decision_message(decision, by="request")) is None:
        marked = DBOS.update_workflow_attributes_async(name, {SENT_MARK: said}, merge=True)
        await _outage_told(database, name, marked)


async def _claimed_here(url: str, name: str, message: dict[str, object]) -> Claim | None:
    """:func:`claimed_send` on ``url``, the database of the runs of this process."""
    return await awith_client(url, lambda client: claimed_send(client, url, name, message))


async def awith_client(url: str, work: Callable[[DBOSClient], T]) -> T:
    """``work`` done in a thread with a client of ``url`` of its own, closed after.

    The client does not wait for a server that is down (DBOS's own calls retry a lost
    connection with no bound): ``work`` fails at once with the driver's error.
    """

    def done() -> T:
        client = new_client(url)
        try:
            return work(client)
        finally:
            close_client(client)

    return await asyncio.to_thread(done)


async def withdraw(url: str, names: set[str]) -> None:
    """End the approvals ``names`` that still wait (their run has ended).

    Best effort: an approval left waiting is harmless (its run has ended, so it is not
    listed and cannot be decided), so a failure is logged, not raised over the run's end.
    """
    for name in sorted(names):
        try:
            await _claimed_here(url, name, decision_message(None, by="run"))
        except Exception:
            _logger.warning("The approval %s of an ended durable run is left waiting.", name)


async def withdraw_orphans(url: str) -> None:
    """End the approvals that still wait though their runs have ended (at DBOS's launch).

    A run cancelled by DBOS while no process ran it (its server down: an operator's
    cancel) left its approvals waiting, and DBOS recovers them at every launch: each is
    withdrawn now, and ends at once. They are looked for through a client that does not
    wait for a server that is down (the launch goes on). Best effort, as :func:`withdraw`:
    a failure to look for them is logged (``INFO``, one line: the database's damage, if
    that is why, is the error of what the launch was for, and a program's stderr is not
    written twice).
    """
    try:
        orphans = await awith_client(url, _orphans)
    except Exception as error:  # (a damaged database: what the launch was for says so)
        _logger.info(
            "The approvals of ended durable runs could not be looked for (%s: %s); any that "
            "wait are looked for again at the next launch.",
            type(error).__name__,
            first_line(error),
        )
        return
    await withdraw(url, orphans)


def _orphans(client: DBOSClient) -> set[str]:
    """The ids of the approvals that have not ended whose runs have (or are gone).

    Read through ``client`` (blocking); the runs are asked in queries of at most
    :data:`IDS_PER_QUERY` ids each.
    """
    approvals = client.list_workflows(
        name=APPROVAL_WORKFLOW, status=["PENDING", "ENQUEUED"], load_output=False
    )
    runs = {
        approval.workflow_id: run_of_approval(approval.workflow_id, approval.input)
        for approval in approvals
    }
    asked = sorted({run for run in runs.values() if run is not None})
    live: set[str] = set()
    for start in range(0, len(asked), IDS_PER_QUERY):
        statuses = client.list_workflows(
            workflow_ids=asked[start : start + IDS_PER_QUERY],
            status=["PENDING", "ENQUEUED"],
            load_input=False,
            load_output=False,
        )
        live.update(status.workflow_id for status in statuses)
    return {approval for approval, run in runs.items() if run is not None and run not in live}


# -- the claims: the first decision of each approval, atomically -----------------------------


@dataclass(frozen=True)
class Claim:
    """The decision that claimed an approval first (the one its call runs with).

    Attributes:
        message_id: The id of its message (see :func:`decision_message`).
        said: ``"approved"``, ``"denied"`` or ``"withdrawn"`` (its run ended).
        by: Who gave it: ``"request"`` (on the request, where the run runs),
            ``"approvals"`` (``aapprove``/``adeny``) or ``"run"`` (withdrawn at its end).
    """

    message_id: str
    said: str
    by: str


_CLAIMS = "miniagents_decisions"

CLAIM_LOCK_WAIT = 30.0
"""The most seconds a decision's claim waits for a lock another session holds on it.

(A SQLite file's lock, its connection's ``timeout``; a PostgreSQL row's or table's, the
session's ``lock_timeout``.)"""

CLAIM_CONNECT_WAIT = 30.0
"""The most seconds a decision waits for a PostgreSQL server to answer (``connect_timeout``)."""


def _said(message: Mapping[str, object]) -> str:
    if message.get("withdrawn") is True:
        return "withdrawn"
    return "approved" if message.get("approved") is True else "denied"


def claimed_send(
    client: DBOSClient, url: str, name: str, message: dict[str, object]
) -> Claim | None:
    """Claim the approval ``name`` for ``message`` and send it, in one transaction (blocking).

    Returns:
        ``None`` if ``message`` claimed the approval (it is sent), else the claim that
        was there first (nothing was sent).

    Raises:
        DurableDatabaseError: if the claim stayed locked by another session for
            :data:`CLAIM_LOCK_WAIT` seconds (nothing was sent).
    """
    import sqlalchemy

    try:
        engine, table = _claims(url)
        try:
            return _claimed(client, engine, table, name, message)
        finally:
            engine.dispose()
    except sqlalchemy.exc.DBAPIError as error:
        if not lock_timed_out(error):
            raise
        raise DurableDatabaseError(
            f"The decision on the approval {name!r} was not sent: its claim stayed locked "
            f"for {CLAIM_LOCK_WAIT:g} s ({first_line(error.orig or error)}). Another process or "
            "session holds a transaction open on the table of claims, "
            f"{_CLAIMS}: end that transaction, then decide again."
        ) from error


def _claimed(
    client: DBOSClient,
    engine: sqlalchemy.Engine,
    table: sqlalchemy.Table,
    name: str,
    message: dict[str, object],
) -> Claim | None:
    import sqlalchemy

    row = {
        "approval_id": name,
        "message_id": str(message["id"]),
        "said": _said(message),
        "decided_by": str(message.get("by", "")),
        "claimed_at": int(time.time() * 1000),
    }
    try:
        with engine.begin() as connection:
            connection.execute(table.insert().values(**row))
            client.send_in_transaction(
                connection, name, message, DECISION_TOPIC, idempotency_key=name
            )
    except sqlalchemy.exc.IntegrityError:
        with engine.connect() as connection:
            first = connection.execute(
                sqlalchemy.select(table.c.message_id, table.c.said, table.c.decided_by).where(
                    table.c.approval_id == name
                )
            ).first()
        if first is None:  # not a clash with another claim: the send failed
            raise
        return Claim(str(first[0]), str(first[1]), str(first[2]))
    return None


def _claims(url: str) -> tuple[sqlalchemy.Engine, sqlalchemy.Table]:
    """An engine of the database ``url`` (to dispose of) and its table of claims (made if missing).

    Decisions are rare: an engine per decision, with no pool, holds nothing between them.
    """
    import sqlalchemy

    made, connect_args = bounded_url(
        sqlalchemy.make_url(url), CLAIM_LOCK_WAIT, connect_seconds=CLAIM_CONNECT_WAIT
    )
    postgres = made.get_backend_name() != "sqlite"
    engine = sqlalchemy.create_engine(
        made,
        poolclass=sqlalchemy.pool.NullPool,
        # SQLite: DBOS's notifications are written with it, through the shim where needed
        connect_args=connect_args if postgres else {**connect_args, **shim_arguments(url)},
    )
    table = sqlalchemy.Table(
        _CLAIMS,
        sqlalchemy.MetaData(schema="dbos" if postgres else None),  # DBOS's schema: writable
        sqlalchemy.Column("approval_id", sqlalchemy.Text, primary_key=True),
        sqlalchemy.Column("message_id", sqlalchemy.Text, nullable=False),
        sqlalchemy.Column("said", sqlalchemy.Text, nullable=False),
        sqlalchemy.Column("decided_by", sqlalchemy.Text, nullable=False),
        sqlalchemy.Column("claimed_at", sqlalchemy.BigInteger, nullable=False),
    )
    try:
        table.create(engine, checkfirst=True)
    except sqlalchemy.exc.DBAPIError:  # made at the same instant by another process
        if not sqlalchemy.inspect(engine).has_table(_CLAIMS, schema=table.schema):
            raise
    return engine, table
