"""Durable runs found and read again by their ids: what a server needs to outlive a restart.

A web app (``miniagents.ext.web``) that serves a durable agent names each run it starts
with a workflow id of its own; after a restart, a client that comes back for the run makes
the app find it by that id and read its reply again, from the first token::

    is_durable(agent)                    made by durable(...)? (a fork of one is too)
    arecover(agent)                      launch DBOS now, in this context: the runs a
                                         crash stopped are recovered (they run on here)
    afind_runs(agent, "chat-7/")         the runs whose ids start so, newest first
    acancel_run(agent, "chat-7/turn-2")  a run given up on: not recovered at the next start
    acancelled_runs(agent, ["chat-7/turn-2", "chat-7/turn-3"])
                                         those of the runs that were cancelled ({"chat-7/turn-2"})
    anote_run(agent, "chat-7/turn-3", {"pause.0": {...}})
                                         JSON notes of the app's, kept with the run (each
                                         key written at once; afind_runs gives them back)
    arun_notes(agent, "chat-7/turn-3")   the run's notes alone ({"pause.0": {...}}; None:
                                         no such run), one query, no step read
    aname_run(agent, "r2", "chat-7/turn-3")
                                         another name of the run (the first one kept);
    arun_named(agent, "r2")              the run it names ("chat-7/turn-3"), or None
    aapprovals_open("chat-7/turn-3", requests)
                                         wait until the approvals of the requests a run
                                         of this process waits on are in the database
    replay(agent, "chat-7/turn-3")       the run's reply, every message and token as it
                                         streamed: a run still running streams on (recovered
                                         steps replayed, the rest live); an ended run
                                         replays its recorded steps (no model or tool call);
                                         one another process runs, once it ends there

The reply that ``replay`` gives is the same stream as the run's first reader saw (the same
messages, the same tokens, in the same order), so a reader that had read part of it can
skip what it had.

These functions read and write the database through a client of their own that does not
wait for a server that is down (DBOS's own calls retry a lost or refused connection until
the server answers, with no bound): a database that cannot be reached, or a connection
lost meanwhile, is a ``DurableDatabaseError`` at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import json
import weakref
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Collection,
    Coroutine,
    Mapping,
    Sequence,
)
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar, cast

from miniagents.ext.dbos._approvals import (
    APPROVAL_WORKFLOW,
    IDS_PER_QUERY,
    aopened,
    approval_id,
    is_approval_of,
    withdraw,
)
from miniagents.ext.dbos._engine import (
    _WORKFLOW,
    Engine,
    _agents,
    _Database,
    _dbos,
    _outside,
    _status_of,
    aengine_for,
    current_engine,
    other_code_error,
)
from miniagents.ext.dbos._recording import DurableRun, current_run, run_path
from miniagents.ext.dbos.errors import (
    DurableConfigurationError,
    DurableError,
    DurableRecordError,
    DurableVersionError,
)
from miniagents.ext.tools.approval import ToolApprovalRequest
from miniagents.messages.message import Message
from miniagents.messages.sequence import MessageSequencePromise
from miniagents.miniagents import InteractionContext
from miniagents.miniagents.agent import MiniAgent

if TYPE_CHECKING:
    from dbos import DBOSClient, StepInfo, WorkflowStatus

__all__ = [
    "APPROVALS_OPEN_SECONDS",
    "ELSEWHERE_TIMEOUT",
    "DurableRunInfo",
    "aapprovals_open",
    "acancel_run",
    "acancelled_runs",
    "afind_runs",
    "aname_run",
    "anote_run",
    "arecover",
    "arun_named",
    "arun_notes",
    "is_durable",
    "replay",
]

ReplyT = TypeVar("ReplyT", bound=Message)
T = TypeVar("T")

ELSEWHERE_TIMEOUT = 300.0
"""Seconds a durable agent waits for the end of a run that another process runs, unless
``durable(..., elsewhere_timeout=...)`` says otherwise (its replays wait as long)."""


@dataclass(frozen=True)
class _DurableSettings:
    """What ``durable(...)`` was given: where the runs are recorded, how long to wait.

    ``alias``: the alias its runs are recorded under (the agent's that ``durable`` made
    durable: a fork of the durable agent under another alias records its runs so too).
    """

    database_url: str | None
    elsewhere_timeout: float | None
    alias: str


_durable_functions: weakref.WeakKeyDictionary[Callable[..., Awaitable[None]], _DurableSettings] = (
    weakref.WeakKeyDictionary()
)


def _mark_durable(
    function: Callable[..., Awaitable[None]],
    database_url: str | None,
    elsewhere_timeout: float | None,
    alias: str,
) -> None:
    """(For ``durable``.) The agents running ``function`` are durable, as they were made.

    Their runs are recorded in ``database_url`` under the agent ``alias``, and a run of
    another process is waited for at most ``elsewhere_timeout`` seconds.
    """
    _durable_functions[function] = _DurableSettings(database_url, elsewhere_timeout, alias)


def is_durable(agent: MiniAgent[..., Message]) -> bool:
    """Whether ``agent`` was made by ``durable(...)`` (or is a fork of such an agent)."""
    return agent.func in _durable_functions


def _settings_of(agent: MiniAgent[..., Message]) -> _DurableSettings:
    if agent.func not in _durable_functions:
        raise DurableConfigurationError(
            f"The agent {agent.alias} is not durable: make it with durable(agent) to find "
            "or replay its runs."
        )
    return _durable_functions[agent.func]


def _database_of(agent: MiniAgent[..., Message]) -> str | None:
    return _settings_of(agent).database_url


async def arecover(agent: MiniAgent[..., Message]) -> None:
    """Launch DBOS for ``agent``'s database now, as its first durable run would.

    The runs a crash stopped are recovered at launch and run on in the current
    ``MiniAgents`` context (a server calls this at its start, in a context of its own, so
    that they do not belong to the first request's). DBOS queues them again to recover
    them, on a queue every process sharing the database reads: one that another process
    takes first runs there, in that process's context. Nothing happens if DBOS runs already.

    Raises:
        DurableConfigurationError: if ``agent`` is not durable, or another database is in
            use in this process.
        DurableDatabaseError: if the database cannot be reached, opened or written.
    """
    await _alaunched(_database_of(agent), recover_here=True)


async def acancel_run(agent: MiniAgent[..., Message], workflow_id: str) -> None:
    """Cancel the durable run ``workflow_id`` of ``agent``'s database, if it has not ended.

    A cancelled run is not recovered at the next start (a run given up on is not run on);
    its record stays, and :func:`replay` replays it up to where it stopped. The calls that
    waited for a decision in it no longer wait: their approvals end withdrawn, as at the
    end of a run (a decision sent later is refused, and the process that runs the run, if
    one does, stops it at its next step: the readers of its reply there get a
    ``DurableRunCancelledError``). An id that names no run changes nothing, nor does a run
    whose agent has returned in this process (its reply has ended: the run has ended, and
    DBOS is writing its record). A run whose agent has returned in another process, and
    whose record is not written yet, is cancelled (DBOS then writes no record over the
    cancel): cancel from the process that runs the run to be sure to leave an ended run alone.

    Raises:
        DurableConfigurationError: if ``agent`` is not durable, or ``workflow_id`` names
            another workflow than a durable run of ``agent`` (another agent's run, an
            approval's workflow, a name's): nothing is cancelled.
        DurableDatabaseError: if the database cannot be reached (or its connection is lost
            meanwhile): the run may or may not be cancelled; call again once it is back.
    """

    def cancel(client: DBOSClient) -> list[str]:
        client.cancel_workflow(workflow_id)
        return _undecided(client.list_workflows(**_approvals_of(workflow_id)), workflow_id)

    async with _adatabase(agent) as database:
        status = await database.astatus(workflow_id)
        _check_ours(agent, workflow_id, status, "cancel", "cancelled")
        engine = current_engine()
        if status is None or (engine is not None and workflow_id in engine.returned):
            return  # (no run; or its agent returned here: it has ended, its record coming)
        waiting = await database.run(cancel)
    # (each ends with a message, not cancelled: a live server waiting on it stays quiet;
    # one whose server is down reads it when it is recovered, and ends at once)
    await withdraw(database.url, set(waiting))


@contextlib.asynccontextmanager
async def _adatabase(agent: MiniAgent[..., Message]) -> AsyncIterator[_Database]:
    """``agent``'s database of runs (DBOS launched for it), through its engine's kept client."""
    yield (await _aengine(agent)).database


def _check_ours(
    agent: MiniAgent[..., Message],
    workflow_id: str,
    status: WorkflowStatus | None,
    doing: str,
    done: str,
) -> None:
    """Refuse to ``doing`` (``done``: what is not) ``workflow_id`` unless it is a run of ``agent``.

    An id that names no workflow (``status`` ``None``) passes (there is nothing to act on).

    Raises:
        DurableConfigurationError: if it names another workflow (another agent's run,
            an approval's or a name's workflow).
    """
    if status is None:
        return
    alias = _settings_of(agent).alias
    if status.name != _WORKFLOW:
        raise DurableConfigurationError(
            f"The workflow id {workflow_id!r} names a DBOS workflow {status.name!r}, not a "
            f"durable run of the agent {alias}, so it is not {done} here: give the id of "
            "a run (its workflow_id), not of a run's approval or name."
        )
    recorded = _alias_of(status.input)
    if recorded != alias:
        raise DurableConfigurationError(
            f"The workflow id {workflow_id!r} names a durable run of the agent {recorded}, "
            f"not of {alias}, so it is not {done} here: {doing} it with its own durable "
            f"agent ({recorded}'s)."
        )


def _alias_of(recorded: object) -> str | None:
    """The alias of the agent a run's recorded input (its workflow's arguments) is of."""
    args = recorded.get("args") if isinstance(recorded, dict) else None
    if isinstance(args, (tuple, list)) and args and isinstance(args[0], str):
        return args[0]
    return None


_NAME_WORKFLOW = "miniagents.durable.name"


@functools.cache
def _name_workflow() -> Callable[[str], Coroutine[Any, Any, str]]:
    """The workflow that records a name (registered with DBOS once, before its launch)."""
    return _dbos().workflow(name=_NAME_WORKFLOW)(_named_run)


async def _named_run(workflow_id: str) -> str:
    """A name's record: it ends at once with the id of the run it names (its input)."""
    return workflow_id


async def _aengine(agent: MiniAgent[..., Message]) -> Engine:
    """DBOS launched for ``agent``'s database (see :func:`_alaunched`)."""
    return await _alaunched(_database_of(agent))


async def _alaunched(database_url: str | None, *, recover_here: bool = False) -> Engine:
    """DBOS launched for ``database_url``, the workflow of names registered before.

    ``recover_here``: the runs recovered at this launch run in the caller's context (see
    :func:`aengine_for`).
    """
    _name_workflow()
    return await aengine_for(database_url, recover_here=recover_here)


def _name_id(alias: str, name: str) -> str:
    """The id of the record of ``name``, a name of a run of the agent ``alias``.

    The alias's length comes first, so that no alias and name make another's id; ids of
    this form never begin as those of :func:`_shared_name_id` do.
    """
    return f"{_NAME_WORKFLOW}@{len(alias)}:{alias}:{name}"


def _shared_name_id(name: str) -> str:
    """The id a name was recorded under before names were per agent (one for all agents)."""
    return f"{_NAME_WORKFLOW}:{name}"


async def aname_run(agent: MiniAgent[..., Message], name: str, workflow_id: str) -> None:
    """Record ``name`` as another name of ``agent``'s durable run ``workflow_id``.

    The record is one row, written at once: after a crash it is there whole or not at
    all. A name names one run of the agent: the first recorded is kept (naming another run
    with it again changes nothing), and :func:`arun_named` finds it. Each agent has names
    of its own: another agent of the database may use the same name for its runs.

    The run and the names are read through a client that does not wait for a server that
    is down; the name's record is then written by DBOS, which retries a connection lost
    during that write until the server answers.

    Raises:
        DurableConfigurationError: if ``agent`` is not durable, or ``workflow_id`` names
            another workflow than a durable run of ``agent`` (another agent's run): nothing
            is named.
        DurableDatabaseError: if the database cannot be reached (or its connection is lost
            meanwhile), at once (see the module's docstring).
    """
    from dbos import SetWorkflowID

    async with _adatabase(agent) as database:
        status = await database.astatus(workflow_id)
        _check_ours(agent, workflow_id, status, "name", "named")
        if await _anamed_before(database, agent, name) is not None:
            return  # (recorded before names were per agent: the first is kept)
    workflow = _name_workflow()  # (registered by _adatabase's launch)
    alias = _settings_of(agent).alias

    async def record() -> None:
        with SetWorkflowID(_name_id(alias, name)):
            handle = await _dbos().start_workflow_async(workflow, workflow_id)
        await handle.get_result()

    await _outside(record())


async def arun_named(agent: MiniAgent[..., Message], name: str) -> str | None:
    """The id of ``agent``'s durable run that :func:`aname_run` named ``name``, if any.

    Each agent has names of its own (another agent's run of the same name is not found),
    and those recorded before names were per agent are found too.

    Raises:
        DurableConfigurationError: if ``agent`` is not durable.
        DurableDatabaseError: if the database cannot be reached (or its connection is lost
            meanwhile), at once (see the module's docstring).
    """
    async with _adatabase(agent) as database:
        named = await _anamed(database, _name_id(_settings_of(agent).alias, name))
        return named if named is not None else await _anamed_before(database, agent, name)


async def _anamed_before(
    database: _Database, agent: MiniAgent[..., Message], name: str
) -> str | None:
    """The run of ``agent`` that ``name`` named when names were one for all agents, if any."""
    named = await _anamed(database, _shared_name_id(name))
    if named is None:
        return None
    aliases = await _aliases_of(database, [named])
    return named if aliases.get(named) == _settings_of(agent).alias else None


async def _anamed(database: _Database, record: str) -> str | None:
    """The id of the run that the name's record ``record`` names, if there is that record."""
    status = await database.astatus(record)
    if status is None or status.name != _NAME_WORKFLOW:
        return None
    args = status.input.get("args") if isinstance(status.input, dict) else None
    if not (isinstance(args, tuple) and len(args) == 1 and isinstance(args[0], str)):
        return None
    named: str = args[0]
    return named


async def anote_run(
    agent: MiniAgent[..., Message], workflow_id: str, notes: Mapping[str, object]
) -> None:
    """Keep ``notes`` (JSON values, by key) with ``agent``'s durable run ``workflow_id``.

    Each key is written at once, with the run's other notes kept (a key noted again is
    replaced); :func:`afind_runs` gives them back with the run, :func:`arun_notes` alone.
    An app notes there what it needs to serve the run again after a restart.

    Raises:
        DurableConfigurationError: if ``agent`` is not durable, or ``workflow_id`` names
            another workflow than a durable run of ``agent`` (nothing is written).
        DurableRecordError: if a note is not a JSON value (nothing is written).
        DurableDatabaseError: if the database cannot be reached (or its connection is lost
            meanwhile), at once (see the module's docstring).
    """
    try:
        json.dumps(dict(notes), allow_nan=False)
    except (TypeError, ValueError) as error:
        raise DurableRecordError(
            f"The notes of the durable run {workflow_id!r} must be JSON values (dicts, lists, "
            f"strings, numbers, booleans, None): {error}. Convert them before noting them."
        ) from error

    def note(client: DBOSClient) -> None:
        _check_ours(agent, workflow_id, _status_of(client, workflow_id), "note", "noted")
        client.update_workflow_attributes(workflow_id, dict(notes), merge=True)

    async with _adatabase(agent) as database:
        await database.run(note)


async def arun_notes(agent: MiniAgent[..., Message], workflow_id: str) -> dict[str, object] | None:
    """The notes kept with ``agent``'s durable run ``workflow_id`` (:func:`anote_run`'s).

    One query of the run's status and input (whose agent's run it is): unlike
    :func:`afind_runs`, neither its steps (the recorded calls, each with its result) nor its
    output are read.

    Returns:
        The notes, by key (empty if none were noted); ``None`` if ``agent`` has no such run
        (none in the database, or another agent's, as :func:`afind_runs` finds none).

    Raises:
        DurableConfigurationError: if ``agent`` is not durable.
        DurableDatabaseError: if the database cannot be reached (or its connection is lost
            meanwhile), at once (see the module's docstring).
    """
    async with _adatabase(agent) as database:
        statuses = await database.run(
            lambda client: client.list_workflows(
                workflow_ids=[workflow_id], name=_WORKFLOW, load_input=True, load_output=False
            )
        )
    if not statuses or _alias_of(statuses[0].input) != _settings_of(agent).alias:
        return None
    attributes = statuses[0].attributes
    return dict(attributes) if isinstance(attributes, dict) else {}


APPROVALS_OPEN_SECONDS = 10.0
"""Seconds :func:`aapprovals_open` waits, by default, for the approvals to be started."""


async def aapprovals_open(
    workflow_id: str,
    requests: Sequence[ToolApprovalRequest],
    *,
    seconds: float = APPROVALS_OPEN_SECONDS,
) -> bool:
    """Wait until the approvals of ``requests`` are in the database, or the requests decided.

    ``requests``: approval requests of calls of the durable run ``workflow_id``, which runs
    in this process. A request is in the run's reply before its call asks for the decision,
    which starts its approval in the database (a write in a thread): until then,
    ``apending_approvals`` does not list it, and another server sharing the database does
    not see the run wait (a new run of its thread there would not replace it). A server
    waits for this before it tells its client that the run waits for a decision.

    Returns:
        Whether they all were, within ``seconds`` (in all).
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    for request in requests:
        if not await aopened(workflow_id, request, max(0.0, deadline - loop.time())):
            return False
    return True


@dataclass(frozen=True)
class DurableRunInfo:
    """A durable run found by :func:`afind_runs`.

    Attributes:
        workflow_id: Its id.
        ended: Whether it has ended (its reply recorded, or it failed or was cancelled);
            otherwise it runs, waits for a person's decision, or was stopped by a crash.
        decided: The ids of the tool calls whose approval (or denial) is recorded in it: a
            replay decides them at once, as they were decided, and asks nobody.
        notes: What :func:`anote_run` kept with it.
        cancelled: Whether it was cancelled (:func:`acancel_run`): given up on.
        here: Whether this process's DBOS executor runs it (its executor id,
            ``DBOS__VMID``): it started or recovered it.
        waiting: Whether a call of it waits for a person's decision now (one not yet
            given, see ``apending_approvals``): it has not ended, and goes on only once
            the call is decided.
    """

    workflow_id: str
    ended: bool
    decided: frozenset[str]
    notes: Mapping[str, object] = field(default_factory=dict)
    cancelled: bool = False
    here: bool = False
    waiting: bool = False


async def afind_runs(
    agent: MiniAgent[..., Message],
    prefix: str,
    *,
    running_only: bool = False,
    here_only: bool = False,
    which: Callable[[str], bool] | None = None,
    limit: int | None = None,
) -> list[DurableRunInfo]:
    """The durable runs of ``agent``'s database whose ids start with ``prefix``, newest first.

    Only ``agent``'s own runs (not those of other durable agents sharing the database, nor
    the workflows of their approvals and names).

    Args:
        agent: A durable agent (its database is searched).
        prefix: The start of the ids (an id is found by itself).
        running_only: Only the runs that have not ended.
        here_only: Only the runs of this process's DBOS executor (its executor id,
            ``DBOS__VMID``): those it started or recovered, not those another process
            sharing the database runs.
        which: Only the runs whose ids it accepts; the others' steps are not read (a
            run's steps are one query more each).
        limit: The most runs to give.

    Raises:
        DurableConfigurationError: if ``agent`` is not durable.
        DurableDatabaseError: if the database cannot be reached (or its connection is lost
            meanwhile), at once (see the module's docstring).
    """
    async with _adatabase(agent) as database:
        return await _afound(database, agent, prefix, running_only, here_only, which, limit)


async def _afound(
    database: _Database,
    agent: MiniAgent[..., Message],
    prefix: str,
    running_only: bool,
    here_only: bool,
    which: Callable[[str], bool] | None,
    limit: int | None,
) -> list[DurableRunInfo]:
    """What :func:`afind_runs` finds, read through ``database``."""
    alias = _settings_of(agent).alias
    executor_id = _dbos().executor_id
    engine = current_engine()
    returned = engine.returned if engine is not None else set()
    found: list[DurableRunInfo] = []
    offset = 0
    while True:
        # (DBOS matches the prefix with SQL LIKE, which SQLite compares regardless of
        # case: the ids are checked again here, and the rows it let through in excess do
        # not count towards ``limit``)
        statuses = await database.run(
            functools.partial(
                _listed,
                workflow_id_prefix=prefix,
                name=_WORKFLOW,
                status=["PENDING", "ENQUEUED"] if running_only else None,
                executor_id=executor_id if here_only else None,
                sort_desc=True,
                limit=limit,
                offset=offset or None,
                load_input=False,
                load_output=False,
            )
        )
        accepted = [
            status
            for status in statuses
            if status.workflow_id.startswith(prefix)
            and (which is None or which(status.workflow_id))
        ]
        aliases = await _aliases_of(database, [status.workflow_id for status in accepted])
        for status in accepted:
            if aliases.get(status.workflow_id) != alias:  # (another agent's run)
                continue
            ended = status.workflow_id in returned  # (its agent returned here, record coming)
            if running_only and ended:
                continue
            found.append(await _run_info(database, status, executor_id, ended=ended))
            if len(found) == limit:
                return found
        if limit is None or len(statuses) < limit:
            return found
        offset += len(statuses)


def _listed(client: DBOSClient, **arguments: Any) -> list[WorkflowStatus]:
    """The client's ``list_workflows(**arguments)``."""
    return client.list_workflows(**arguments)


async def _aliases_of(database: _Database, workflow_ids: list[str]) -> dict[str, str | None]:
    """The alias of the agent of each run of ``workflow_ids``, from their recorded inputs.

    A run without a recorded input has none.
    """
    runs = await _aruns_of(database, workflow_ids)
    return {status.workflow_id: _alias_of(status.input) for status in runs}


async def _aruns_of(
    database: _Database, workflow_ids: Sequence[str], status: str | None = None
) -> list[WorkflowStatus]:
    """The durable runs of ``workflow_ids`` (in ``status``, if given), their inputs loaded.

    One query per ``IDS_PER_QUERY`` ids (a database bounds the parameters of a statement).
    """
    runs: list[WorkflowStatus] = []
    for start in range(0, len(workflow_ids), IDS_PER_QUERY):
        runs += await database.run(
            functools.partial(
                _listed,
                workflow_ids=list(workflow_ids[start : start + IDS_PER_QUERY]),
                name=_WORKFLOW,
                status=status,
                load_input=True,  # (whose run each is)
                load_output=False,
            )
        )
    return runs


async def _run_info(
    database: _Database, status: WorkflowStatus, executor_id: str, *, ended: bool
) -> DurableRunInfo:
    """What :func:`afind_runs` tells of the run ``status`` describes.

    ``ended``: whether it has ended though its record does not say so yet.
    """
    workflow_id = status.workflow_id
    recorded = await _arecorded_steps(database, workflow_id)
    decided = frozenset(
        key.rpartition("/approval.")[2].rpartition(".")[0]
        for key in recorded
        if "/approval." in key
    )
    ended = ended or status.status not in ("PENDING", "ENQUEUED")
    notes = dict(status.attributes) if isinstance(status.attributes, dict) else {}
    cancelled = status.status == "CANCELLED"
    here = status.executor_id == executor_id
    waiting = not ended and bool(
        await database.run(
            lambda client: _undecided(
                client.list_workflows(**_approvals_of(workflow_id)), workflow_id
            )
        )
    )
    return DurableRunInfo(status.workflow_id, ended, decided, notes, cancelled, here, waiting)


async def acancelled_runs(
    agent: MiniAgent[..., Message], workflow_ids: Collection[str]
) -> set[str]:
    """Those of ``workflow_ids`` that name durable runs of ``agent`` that were cancelled.

    A server asks it of its paused runs: another server may have cancelled them (see
    :func:`acancel_run`). Only ``agent``'s own runs count, as in :func:`afind_runs`:
    another agent's run, or another workflow, is not said cancelled. One query per
    ``IDS_PER_QUERY`` ids (a database bounds the parameters of a statement).

    Raises:
        DurableConfigurationError: if ``agent`` is not durable.
        DurableDatabaseError: if the database cannot be reached (or its connection is lost
            meanwhile), at once (see the module's docstring).
    """
    if not workflow_ids:
        return set()
    alias = _settings_of(agent).alias
    async with _adatabase(agent) as database:
        cancelled = await _aruns_of(database, sorted(set(workflow_ids)), "CANCELLED")
    return {status.workflow_id for status in cancelled if _alias_of(status.input) == alias}


def _approvals_of(workflow_id: str) -> dict[str, Any]:
    """The arguments of DBOS's ``list_workflows`` for the run's approvals that have not ended."""
    return {
        "workflow_id_prefix": approval_id(workflow_id, ""),
        "name": APPROVAL_WORKFLOW,
        "status": ["PENDING", "ENQUEUED"],
        "load_output": False,
    }


def _undecided(approvals: Sequence[WorkflowStatus], workflow_id: str) -> list[str]:
    """The ids of those of ``approvals`` (listed by :func:`_approvals_of`) of ``workflow_id``.

    (DBOS matches the prefix with SQL LIKE, which SQLite compares regardless of case, and
    the approvals of a run recorded before ids holding ``::approval`` were refused, e.g.
    ``refund::approval1``'s or ``a::approval/b``'s, begin with the prefix of ``refund``'s
    or ``a``'s: each is checked again here, exactly, against its recorded input.)
    """
    return [
        approval.workflow_id
        for approval in approvals
        if is_approval_of(approval.workflow_id, approval.input, workflow_id)
    ]


async def _arecorded_steps(database: _Database, workflow_id: str) -> dict[str, object]:
    """The results of the run's recorded steps, by key, read through ``database``."""
    return _recorded(await database.run(lambda client: client.list_workflow_steps(workflow_id)))


def _recorded(steps: Sequence[StepInfo]) -> dict[str, object]:
    """The results of the recorded steps ``steps`` (a run's), by key."""
    recorded: dict[str, object] = {}
    for step in steps:
        output = step["output"]
        if isinstance(output, tuple) and len(output) == 2 and isinstance(output[0], str):
            recorded[output[0]] = output[1]
    return recorded


def replay(agent: MiniAgent[..., ReplyT], workflow_id: str) -> MessageSequencePromise[ReplyT]:
    """The reply of ``agent``'s durable run ``workflow_id``, from its first message and token.

    Call it inside a ``MiniAgents`` context. A run still running here streams on; a run a
    crash stopped is recovered (its recorded calls replayed, the rest live); a run that has
    ended replays its recorded model and tool calls, and the decisions recorded in it, in a
    new reply, without calling a model or running a tool: the same stream as its first
    reader saw. A run that another process's DBOS executor runs (another server sharing
    the database) is replayed once it has ended there, if it ends within the agent's
    ``elsewhere_timeout`` (``durable(..., elsewhere_timeout=...)``: the one setting of that
    wait, for the agent's interactions and its replays alike).

    The reply fails with ``DurableError`` if there is no such run, or if it runs in
    another process and does not end in time (that process may have died, or the run
    waits there for a decision: the error says what to do), with
    ``DurableVersionError`` if other code started it (and has ended); a run that failed
    fails again where its record stops (the call that failed has no recorded result), with
    the error it failed with; a run that was cancelled fails there with a ``DurableError``
    (the call that was running has no recorded result to replay). It fails with a
    ``DurableDatabaseError`` at once if the database cannot be reached (see the module's
    docstring).

    Raises:
        DurableConfigurationError: if ``agent`` is not durable.
    """
    settings = _settings_of(agent)
    replies = _REPLAYER.inquire(
        workflow_id=workflow_id,
        database_url=settings.database_url,
        elsewhere_timeout=settings.elsewhere_timeout,
    )
    return cast("MessageSequencePromise[ReplyT]", replies)


async def _replay_interaction(
    ctx: InteractionContext,
    /,
    *,
    workflow_id: str,
    database_url: str | None,
    elsewhere_timeout: float | None,
) -> None:
    engine = await _alaunched(database_url)
    ctx.reply(await _areplayed(engine, engine.database, workflow_id, elsewhere_timeout))


_REPLAYER: MiniAgent[..., Message] = MiniAgent(
    _replay_interaction,
    alias="DURABLE_REPLAY",
    description="The reply of a durable run, read again by its workflow id.",
)


async def _areplayed(
    engine: Engine, database: _Database, workflow_id: str, elsewhere_timeout: float | None
) -> MessageSequencePromise:
    """The run's reply as it streamed: live if it runs (or is recovered), else replayed.

    Its record is read through ``database``: a server that is down is an error at once.
    """
    dbos = _dbos()
    # (a run running here is PENDING: engine.areply gives its live reply, or the recorded
    # one if it ends meanwhile, never waiting on a reply nobody will publish)
    status = await database.astatus(workflow_id, load_output=True)  # (with its error)
    if status is None:
        raise DurableError(
            f"There is no durable run {workflow_id!r} in the database of durable runs."
        )
    alias, messages, kwargs, version = _inputs_of(workflow_id, status.input)
    if status.status in ("PENDING", "ENQUEUED"):
        reply = await engine.areply(  # (its waits through DBOS are checked: see _aresult)
            workflow_id,
            alias,
            messages,
            kwargs,
            elsewhere_timeout=elsewhere_timeout,
            status=status,  # (just read: not read again)
        )
        if isinstance(reply, MessageSequencePromise):
            return reply
        # it ended meanwhile: replayed below, as a run that had ended
    elif status.app_version != dbos.application_version:
        raise other_code_error(workflow_id, status.app_version, "replayed")
    agent = _agent_of(alias, workflow_id)
    if _agents.version(alias) != version:
        raise DurableVersionError(
            f"The durable run {workflow_id!r} was recorded by another version of its agent "
            f"{alias} ({version}, a hash of its code and settings) than the one made now "
            f"({_agents.version(alias)}): its recorded steps may not match what this code "
            "does, so it is not replayed. Replay it with the code that recorded it."
        )
    run = DurableRun(
        workflow_id,
        contextvars.copy_context(),
        _unrecorded(workflow_id, status.status, status.error),
        await _arecorded_steps(database, workflow_id),
    )

    def start() -> MessageSequencePromise:
        current_run.set(run)
        run_path.set("")
        return agent.inquire(messages, **kwargs)

    return contextvars.copy_context().run(start)


def _inputs_of(
    workflow_id: str, recorded: object
) -> tuple[str, tuple[Message, ...], dict[str, object], str]:
    """The alias, input messages and arguments a run was started with, and its agent's version."""
    args = recorded.get("args") if isinstance(recorded, dict) else None
    if (
        isinstance(args, tuple)
        and len(args) == 4
        and isinstance(args[0], str)
        and isinstance(args[1], tuple)
        and isinstance(args[2], dict)
        and isinstance(args[3], str)
    ):
        return args[0], args[1], args[2], args[3]
    raise DurableError(f"The durable run {workflow_id!r} has no recorded input to replay it by.")


def _agent_of(alias: str, workflow_id: str) -> MiniAgent[..., Message]:
    agent = _agents.get(alias)
    if agent is None:
        raise DurableConfigurationError(
            f"The durable run {workflow_id!r} is of the agent {alias}, and no durable agent of "
            "that alias was made in this process: make it (durable(...)) to replay its runs."
        )
    return agent


def _unrecorded(workflow_id: str, status: str, error: object) -> Callable[[str], Awaitable[object]]:
    """The step function of a replay: every step of an ended run is recorded.

    A step that is not was cancelled, or failed: with ``error``, the run's (raised again).
    """
    why = "it was cancelled there" if status == "CANCELLED" else "it failed there"

    async def step(key: str) -> object:
        if status == "ERROR" and isinstance(error, Exception):
            raise error
        raise DurableError(
            f"The durable run {workflow_id!r} has no recorded result for its call {key!r}, so "
            f"it cannot be replayed without calling it again ({why})."
        )

    return step
