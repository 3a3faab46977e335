"""DBOS under durable agents: launching it, the one workflow and the one step they run as.

Every durable interaction is one DBOS workflow (``miniagents.durable``): its inputs are the
agent's alias, its input messages and its arguments; its output, its reply messages. Its
model and tool calls are steps of one DBOS step function (``miniagents.durable.step``),
each named by its key inside the step's result (see :mod:`._recording`)::

    inquire(workflow_id="w1")  ->  status of w1?
        none:      start w1 here; the caller reads its reply as it streams
        running:   (here, e.g. recovered at launch) read its reply as it streams
        done:      its recorded reply
        running, other agent version: DurableVersionError (see :mod:`._versions`)

On recovery the workflow first replays its recorded steps in their order (DBOS returns
their results without running them), which gives the results by key, and then runs the
agent again: a call whose key has a result replays it, the others run (and are recorded).
DBOS is launched once per process and event loop, on the loop of the first durable run,
so that the workflows it recovers at launch run on that loop too. They run in a
``MiniAgents`` context of the engine's own, not in the context of the run that happened to
launch DBOS (``arecover`` gives its caller's instead)::

    launch (by a run of context A)  ->  recovered runs: in the engine's context E (each
                                        queued again by DBOS: one that another process
                                        sharing the database takes runs there instead)
    A ends                          ->  they go on (A does not wait for them)
    B asks for one by its id        ->  B reads its reply as it streams
    the loop ends (asyncio.run)     ->  E ends: runs still running stop unrecorded, runs
                                        waiting for their agent are released (one warning
                                        names them): all stay pending for the next process
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
import logging
import pickle
import sqlite3
import weakref
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar, cast

from miniagents.ext.dbos._approvals import (
    APPROVAL_MARK,
    approval_id,
    approval_running,
    awaited_decision,
    register_approvals,
    withdraw,
    withdraw_orphans,
)
from miniagents.ext.dbos._database_errors import database_failure, first_line, sqlite_failure
from miniagents.ext.dbos._recording import (
    DurableRun,
    InteractionNumbers,
    LLMRecorder,
    StepFunction,
    ToolRecorder,
    current_run,
    run_path,
)
from miniagents.ext.dbos._sqlite import (
    CONNECT_TIMEOUT,
    close_client,
    engine_options,
    new_client,
    sqlite_path,
)
from miniagents.ext.dbos._versions import APPLICATION_VERSION, DurableAgents, fingerprint
from miniagents.ext.dbos.errors import (
    DurableConfigurationError,
    DurableDatabaseError,
    DurableError,
    DurableRecordError,
    DurableRunCancelledError,
    DurableRunStoppedError,
    DurableVersionError,
)
from miniagents.ext.errors import MissingExtraError
from miniagents.ext.llm.recording import record_llm_calls
from miniagents.ext.tools.approval import ToolApprovalRequest, ToolDecision
from miniagents.ext.tools.recording import record_tool_calls
from miniagents.messages.message import Message
from miniagents.messages.sequence import MessageSequencePromise
from miniagents.miniagents.agent import MiniAgent
from miniagents.miniagents.context import MiniAgents, current_context
from miniagents.miniagents.lowlevel import at_exit, prepare_interactions, start_task
from miniagents.promising.errors import StreamCancelledError
from miniagents.promising.lowlevel import CancelReason, core_of

if TYPE_CHECKING:
    import sqlalchemy
    from dbos import DBOS, DBOSClient, WorkflowStatus

__all__ = [
    "DEFAULT_DATABASE_URL",
    "KEPT_CLIENT_THREAD",
    "Engine",
    "aengine_for",
    "check_alias_of_ids",
    "check_run_id",
    "checked_url",
    "configured_url",
    "current_engine",
    "dbos_class",
    "other_code_error",
    "redacted",
    "register_agent",
    "set_default_url",
]

T = TypeVar("T")
P = ParamSpec("P")

DEFAULT_DATABASE_URL = "sqlite:///miniagents_durable.sqlite"
"""A SQLite file in the current folder."""

_HINT = 'Durable agents need DBOS Transact: pip install "miniagents[dbos]".'
STOPPED_KEPT = 10_000
"""How many ids of the runs stopped in this process an engine keeps (the oldest go first)."""
UNCLAIMED_WAIT = 10.0
"""Seconds a run of this process's executor, not running here, is waited for when asked."""
_WORKFLOW = "miniagents.durable"
_UNENDED = ("PENDING", "ENQUEUED")
_STEP = "miniagents.durable.step"

_agents = DurableAgents()
_logger = logging.getLogger(__name__)


class _Process:
    """What this process holds of DBOS (one DBOS per process, as DBOS has it).

    Attributes:
        default_url: The database of the runs not given one (``use_database``'s).
        engine: The engine launched (on its last loop), if any.
    """

    __slots__ = ("default_url", "engine")

    def __init__(self) -> None:
        self.default_url: str | None = None
        self.engine: Engine | None = None


_process = _Process()


def set_default_url(url: str) -> None:
    """Make ``url`` the database of the durable runs not given one (see ``use_database``).

    Raises:
        DurableConfigurationError: if ``url`` is not a sqlite:/// or postgresql:// URL.
    """
    _process.default_url = checked_url(url)


def checked_url(url: object) -> str:
    """``url``, if it can hold durable runs: a SQLite file or a PostgreSQL database.

    Raises:
        DurableConfigurationError: for another scheme, or an in-memory SQLite database
            (DBOS's connections would each see another, empty one).
    """
    if not isinstance(url, str) or not url.startswith(("sqlite:///", "postgresql", "postgres")):
        raise DurableConfigurationError(
            f"The database of durable runs must be a sqlite:/// file path or a "
            f"postgresql:// URL; got {redacted(url) if isinstance(url, str) else repr(url)}."
        )
    if url.startswith("sqlite") and sqlite_path(url) in ("", ":memory:"):
        raise DurableConfigurationError(
            f"The database of durable runs cannot be an in-memory SQLite database ({url!r}): "
            "runs are recorded to outlive the process. Name a file, e.g. "
            "sqlite:///miniagents_durable.sqlite."
        )
    return url


def check_run_id(workflow_id: str) -> None:
    """Refuse ``workflow_id`` as a new run's id if it holds what marks an approval's id.

    Raises:
        DurableRecordError: if it holds ``::approval`` (the ids of the approvals of a run's
            calls are ``<run id>::approval<key>``: a run so named would be taken for one).
    """
    if APPROVAL_MARK in workflow_id:
        raise DurableRecordError(_marked(f"The workflow id {workflow_id!r}", "Give the run an id"))


def check_alias_of_ids(alias: str) -> None:
    """Refuse ``alias`` for a durable agent whose runs are named by their input.

    Such a run's id begins with its agent's alias (``<alias>:<hash of the input>``), so
    the alias is refused as a run's id would be, when the agent is made.

    Raises:
        DurableRecordError: if it holds ``::approval`` (see :func:`check_run_id`).
    """
    if APPROVAL_MARK in alias:
        raise DurableRecordError(
            _marked(
                f"The alias {alias!r} of a durable agent whose runs are named by their input "
                "(ids_by_input=True: each run's id begins with the alias)",
                "Give the agent an alias",
            )
        )


def _marked(named: str, fix: str) -> str:
    """The sentences that refuse ``named`` for holding the mark of an approval's id."""
    return (
        f"{named} holds {APPROVAL_MARK!r}, which marks the ids of the approvals of durable "
        f"runs (<run id>{APPROVAL_MARK}<key>): a run so named would be taken for an "
        f"approval of another run. {fix} without {APPROVAL_MARK!r} (e.g. with '-approval' "
        "instead)."
    )


def configured_url() -> str:
    """The database of the runs not given one: ``use_database``'s, else the default."""
    return _process.default_url or DEFAULT_DATABASE_URL


def dbos_class() -> type[DBOS]:
    """DBOS's class.

    Raises:
        MissingExtraError: if DBOS is not installed.
    """
    return _dbos()


def _dbos() -> type[DBOS]:
    try:
        from dbos import DBOS
    except ImportError as error:
        raise MissingExtraError(f"{_HINT} ({error})") from error
    return DBOS


def register_agent(agent: MiniAgent[..., Message]) -> None:
    """Make ``agent`` the one its alias names in durable runs (to recover them).

    Raises:
        MissingExtraError: if DBOS is not installed.
        DurableConfigurationError: if another agent of that alias is durable already.
    """
    _registered_functions()
    known = _agents.get(agent.alias)
    if known is not None and known is not agent and fingerprint(known) != fingerprint(agent):
        raise DurableConfigurationError(
            f"Two different durable agents are named {agent.alias}: a durable run is "
            "recovered by its agent's alias, so each durable agent needs its own. Give one "
            f"another alias, e.g. durable(agent.fork(alias='{agent.alias}_2'))."
        )
    _agents.add(agent)


@functools.cache
def _registered_functions() -> tuple[
    Callable[..., Awaitable[object]], Callable[[str], Awaitable[object]]
]:
    """The workflow and step functions, registered with DBOS once (and the recorders set)."""
    dbos = _dbos()
    workflow = dbos.workflow(name=_WORKFLOW)(_interaction_workflow)
    preemptible = "preemptible" in inspect.signature(dbos.step).parameters
    if preemptible:
        # a step of a run cancelled meanwhile is stopped (a model's stream closed), not
        # run to its end: DBOS watches for the cancel and cancels the step's task
        step = dbos.step(name=_STEP, preemptible=True)(_step)
    else:  # (a DBOS before preemptible steps: a step runs to its end)
        step = dbos.step(name=_STEP)(_step)
    register_approvals(dbos, preemptible=preemptible)  # the decisions of calls that wait
    record_llm_calls(LLMRecorder())
    prepare_interactions(InteractionNumbers())
    record_tool_calls(ToolRecorder())
    return workflow, step


# -- the engine: DBOS launched on one loop, for one database ----------------------------------


def _database_failures_told(
    function: Callable[P, Coroutine[Any, Any, T]],
) -> Callable[P, Coroutine[Any, Any, T]]:
    """``function``, a failure of the database of runs it meets raised as one line instead.

    (A :class:`DurableDatabaseError`, see :func:`store_failure`; any other error as it is.)
    """

    @functools.wraps(function)
    async def told(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return await function(*args, **kwargs)
        except Exception as error:
            failure = store_failure(error)
            if failure is None:
                raise
            raise failure from None

    return told


KEPT_CLIENT_THREAD = "miniagents-runs"
"""The name (a prefix) of the one thread in which an engine's kept client reads and writes
its database of runs (the threads of DBOS's own calls are named otherwise)."""

REACHABLE_CHECK = 1.0
"""Seconds before the first check that the database answers while a call waits through
DBOS; each next check comes twice as long after the last, at most
:data:`REACHABLE_CHECK_MOST` seconds."""
REACHABLE_CHECK_MOST = 15.0
"""The most seconds between two checks that the database answers (see :data:`REACHABLE_CHECK`)."""


class _Database:
    """The database of runs ``url``, read and written through a client that does not wait.

    DBOS's own calls retry a lost or refused connection until the server answers, with no
    bound; this one's client (:func:`~._sqlite.new_client`, made at its first call) raises
    it, told as one line. Its calls run one by one in a thread of its own.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix=KEPT_CLIENT_THREAD)
        self._client: DBOSClient | None = None

    @_database_failures_told
    async def run(self, work: Callable[[DBOSClient], T]) -> T:
        """``work`` done with the client, in its thread.

        Raises:
            DurableDatabaseError: for a failure of the database (see :func:`store_failure`).
        """
        return await asyncio.get_running_loop().run_in_executor(self._thread, self._done, work)

    def _done(self, work: Callable[[DBOSClient], T]) -> T:
        if self._client is None:
            self._client = new_client(self.url, lazy=True)  # (its first call connects)
        return work(self._client)

    async def astatus(
        self, workflow_id: str, *, load_output: bool = False
    ) -> WorkflowStatus | None:
        """The status of the run ``workflow_id`` (see :func:`_status_of`), read by :meth:`run`.

        Raises:
            DurableDatabaseError: for a failure of the database (see :func:`store_failure`).
        """
        return await self.run(
            lambda client: _status_of(client, workflow_id, load_output=load_output)
        )

    async def awhile_reachable(
        self, workflow_id: str, work: Coroutine[Any, Any, T], *, waited: str | None = None
    ) -> T:
        """``work``'s result, unless the database stops answering first.

        ``work`` waits through DBOS's calls, which retry a lost connection until the server
        answers, with no bound: meanwhile the workflow ``workflow_id`` is read here, first
        after :data:`REACHABLE_CHECK` seconds, then less and less often (a long wait, for a
        run of another process, costs a read every :data:`REACHABLE_CHECK_MOST` seconds),
        and if that fails, ``work`` is cancelled (DBOS's call goes on in its thread until
        the server answers).

        Raises:
            DurableDatabaseError: if the database cannot be read meanwhile (see
                :meth:`areachable`, which ``waited`` is given to).
        """
        task = asyncio.ensure_future(work)
        wait = REACHABLE_CHECK
        try:
            while not (await asyncio.wait([task], timeout=wait))[0]:
                await self.areachable(workflow_id, waited=waited)
                wait = min(wait * 2, REACHABLE_CHECK_MOST)
            return task.result()
        finally:
            task.cancel()

    async def areachable(self, workflow_id: str, *, waited: str | None = None) -> None:
        """Read the workflow ``workflow_id``, to know that the database answers.

        Raises:
            DurableDatabaseError: if it does not, saying that what was waited for is not
                known (``waited``: that sentence; by default, the end of the run
                ``workflow_id``), the driver's error chained as its cause.
        """
        try:
            await self.astatus(workflow_id)
        except DurableDatabaseError as failure:
            said = waited or (
                f"The durable run {workflow_id!r} was waited for, but the database of durable "
                "runs could not be read meanwhile (an outage, not a run that is slow to end), "
                "so whether it ended is not known here."
            )
            raise DurableDatabaseError(f"{said} {failure}") from (failure.__context__ or failure)

    def close(self) -> None:
        """Close the client once its thread is done with the call it runs, if any."""
        self._thread.submit(self._close)
        self._thread.shutdown(wait=False)

    def _close(self) -> None:
        if self._client is not None:
            close_client(self._client)


def _status_of(
    client: DBOSClient, workflow_id: str, *, load_output: bool = False
) -> WorkflowStatus | None:
    """The status of the workflow ``workflow_id`` (with its input), if there is one.

    ``load_output``: with its output and error too (DBOS's own status of a workflow).
    """
    found = client.list_workflows(workflow_ids=[workflow_id], load_output=load_output)
    return found[0] if found else None


@dataclass
class Engine:
    """DBOS launched on this event loop for ``url``, and the runs it runs here.

    Attributes:
        agents_context: The context the runs recovered at launch run in, if their launcher
            gave its own (``arecover``); else they run in one of the engine's own.
        stopped: The ids of the runs stopped here, unrecorded (asked for again, they run
            on here): the newest ``STOPPED_KEPT``, so that a long-lived server's memory
            stays bounded (one asked for after its id went is told it stopped, see
            :meth:`areply`).
        unclaimed_wait: Seconds a run of this process's DBOS executor that does not run
            here is waited for when asked (see :meth:`areply`).
        resumed: The contexts of the runs stopped here and asked for again, by id (each
            runs on in its asker's).
        inputs: The agent's alias, input messages and arguments of each run whose reply is
            published here, by id (a call under its id gets its reply if they are its own).
        waiting: The runs recovered at launch that wait for their agent: alias by id.
        released: The workflow tasks the engine let go unrecorded on purpose (their
            cancellation is no news: DBOS's log line of it is left out).
        returned: The runs whose agent has returned here (replied, or failed) and whose
            record DBOS is writing: they have ended (``acancel_run`` leaves them alone).
        database: The database of runs read through a client that does not wait for a
            server that is down (see :class:`_Database`): runs' statuses, and whether it
            answers while a call waits for a run's end through DBOS.
    """

    url: str
    loop: asyncio.AbstractEventLoop
    agents_context: contextvars.Context | None
    running: dict[str, asyncio.Future[MessageSequencePromise]] = field(default_factory=dict)
    stopped: _RecentIds = field(default_factory=lambda: _RecentIds(STOPPED_KEPT))
    refused: dict[str, str] = field(default_factory=dict)
    inputs: dict[str, tuple[str, tuple[Message, ...], Mapping[str, object]]] = field(
        default_factory=dict
    )
    bodies: dict[str, asyncio.Task[Any]] = field(default_factory=dict)
    resumed: dict[str, contextvars.Context] = field(default_factory=dict)
    waiting: dict[str, str] = field(default_factory=dict)
    unclaimed_wait: float = UNCLAIMED_WAIT
    released: weakref.WeakSet[asyncio.Task[Any]] = field(default_factory=weakref.WeakSet)
    returned: set[str] = field(default_factory=set)
    _own_context: asyncio.Future[contextvars.Context] | None = None
    _holder: asyncio.Task[None] | None = None
    _warned: bool = False
    database: _Database = field(init=False)

    def __post_init__(self) -> None:
        self.database = _Database(self.url)

    async def arecovery_context(self, workflow_id: str) -> contextvars.Context:
        """The context the run ``workflow_id``, started by DBOS (not by a caller), runs in.

        A run resumed for a caller runs in the caller's; one recovered at launch, in the
        launcher's if ``arecover`` gave it, else in a ``MiniAgents`` context of the
        engine's own (started now, once; it ends when the loop ends).
        """
        resumed = self.resumed.pop(workflow_id, None)
        if resumed is not None:
            return resumed
        if self.agents_context is not None:
            return self.agents_context
        if self._own_context is None:
            self._own_context = self.loop.create_future()
            fresh = contextvars.Context()  # no caller's context around it: none is its parent
            self._holder = fresh.run(
                self.loop.create_task,
                _hold_context(self._own_context),
                name="miniagents:the context of the recovered durable runs",
            )
        return await asyncio.shield(self._own_context)

    async def await_agent(self, workflow_id: str, alias: str) -> MiniAgent[..., Message]:
        """The agent of the recovered run ``workflow_id``, once this process makes it.

        If the loop ends first (``asyncio.run`` cancels its tasks at its end), the run is
        released: it stays pending in the database, for a process that makes its agent,
        and one warning names the runs released so.
        """
        self.waiting[workflow_id] = alias
        try:
            return await _agents.await_agent(alias)
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None:
                self.released.add(task)
            self._warn_unmade()
            raise
        finally:
            self.waiting.pop(workflow_id, None)

    def _warn_unmade(self) -> None:
        if self._warned:
            return
        self._warned = True
        aliases = ", ".join(sorted(set(self.waiting.values())))
        runs = ", ".join(repr(workflow_id) for workflow_id in sorted(self.waiting))
        _logger.warning(
            "The durable runs %s were recovered at launch and waited for their agents %s, "
            "which this process never made (with durable(...)): they stay pending in the "
            "database of durable runs, and the next process that makes those agents "
            "recovers them. If they should run here, import the module that makes them.",
            runs,
            aliases,
        )

    def stop(self, workflow_id: str, why: str = "it was stopped") -> None:
        """Stop the run ``workflow_id`` here, unrecorded, as at a crash; it stays pending.

        Its workflow's body, its agent (and what the agent waits for: a tool call waiting
        for a decision) stop, and a reader still reading its reply gets a
        :class:`DurableRunStoppedError` that says ``why`` and how the run goes on, so that
        nothing waits for the run for ever (neither the reader nor its context's exit).
        """
        body = self.bodies.get(workflow_id)
        if body is None:
            return
        self.released.add(body)  # (on purpose: DBOS's log line of its cancel is no news)
        self.stopped.add(workflow_id)  # (its steps' and approvals' lines neither)
        body.cancel()
        published = self.running.get(workflow_id)
        if published is None or not published.done() or published.cancelled():
            return
        if published.exception() is None:
            _stop_reply(
                published.result(),
                DurableRunStoppedError(
                    f"The durable run {workflow_id!r} stopped in this process before it "
                    f"ended: {why}. It stays pending in the database of durable runs, "
                    "unrecorded from where it stopped: the next launch of durable runs "
                    "recovers it, or ask for it again under the same workflow id to run it on "
                    "here."
                ),
            )

    def published(self, workflow_id: str) -> asyncio.Future[MessageSequencePromise]:
        """The reply of the run ``workflow_id`` in this process, once it has started."""
        future = self.running.get(workflow_id)
        if future is None:
            future = self.running[workflow_id] = self.loop.create_future()
        return future

    @_database_failures_told
    async def areply(
        self,
        workflow_id: str,
        alias: str,
        messages: tuple[Message, ...],
        kwargs: Mapping[str, object],
        *,
        elsewhere_timeout: float | None = None,
        status: WorkflowStatus | None = None,
    ) -> MessageSequencePromise | tuple[Message, ...]:
        """The reply of the run ``workflow_id``: started now, running here, or recorded.

        A run that another process's DBOS executor runs streams there: its recorded reply
        is waited for, at most ``elsewhere_timeout`` seconds if given (``None``: as long
        as it takes), unless this process runs it meanwhile (dequeued here). ``status``:
        the run's status (with its input), if the caller has just read it (not read again).

        Raises:
            DurableVersionError: if the run was started by another application version.
            DurableConfigurationError: if the run ``workflow_id`` is another agent's, or
                had other input messages.
            DurableRecordError: if a new run's id holds ``::approval`` (see
                :func:`check_run_id`).
            DurableRunStoppedError: if the run is this process's executor's, pending, and
                nothing runs it here (see :meth:`_claimed_or_stopped`).
            DurableError: if the run was cancelled or gave up its recovery, or runs in
                another process and did not end within ``elsewhere_timeout`` seconds.
            DurableDatabaseError: if the database of runs failed (not a SQLite database or
                damaged, locked, not writable, unreachable: said in one line).
        """
        dbos = _dbos()
        if workflow_id in self.running:  # its reply published here, or about to be
            return await self._ashared(workflow_id, alias, messages, kwargs, elsewhere_timeout)
        if status is None:  # (not through DBOS's read: it waits for a server that is down)
            status = await self.database.astatus(workflow_id)
        refused = self.refused.get(workflow_id)  # recovered at launch, refused: other code
        if refused is not None and status is not None and status.status not in _UNENDED:
            del self.refused[workflow_id]  # (ended since: run to its end by that code)
        elif refused is not None:
            raise DurableVersionError(refused)
        if status is None and workflow_id in self.running:
            # started here meanwhile, by a call under the same id (ids_by_input: the calls
            # of one input share one run); started again, it would be a second task that
            # only waits for the first's record, still running at the loop's end
            return await self._ashared(workflow_id, alias, messages, kwargs, elsewhere_timeout)
        if status is None:  # a new run: started here
            from dbos import SetWorkflowID

            check_run_id(workflow_id)

            workflow, _ = _registered_functions()
            with SetWorkflowID(workflow_id):
                version = _agents.version(alias)
                task = asyncio.ensure_future(workflow(alias, messages, dict(kwargs), version))
            task.add_done_callback(_retrieved)
            return await self._published_or(workflow_id, task)
        _check_same_run(workflow_id, status.input, alias, messages, kwargs)
        if status.status == "SUCCESS":
            return cast("tuple[Message, ...]", await _outside(self._aresult(workflow_id)))
        if status.status == "ERROR":
            await _outside(self._aresult(workflow_id))  # raises the run's error
        _check_application(workflow_id, status)
        if status.status not in _UNENDED:
            raise DurableError(
                f"The durable run {workflow_id!r} ended as {status.status} and has no reply: "
                "start a new run under another workflow id."
            )
        resumed: contextvars.Context | None = None
        if workflow_id in self.stopped:  # cancelled here, unrecorded: nobody else runs it
            resumed = self.resumed[workflow_id] = contextvars.copy_context()  # the caller's
        elif status.status == "PENDING" and self._unclaimed(workflow_id, status.executor_id):
            return await self._claimed_or_stopped(workflow_id)
        try:
            if resumed is not None:
                self.stopped.discard(workflow_id)
                try:
                    await _outside(  # DBOS runs it again
                        self.database.awhile_reachable(
                            workflow_id, dbos.resume_workflow_async(workflow_id)
                        )
                    )
                except BaseException:  # (not resumed: asked again, it is resumed again, not
                    self.stopped.add(workflow_id)  # waited for with nothing to run it)
                    raise
            # running: recovered here (it streams), or in another process (it ends)
            ended: Awaitable[Any] = self._aresult(workflow_id)
            executor = status.executor_id
            if elsewhere_timeout is not None and executor != dbos.executor_id:
                ended = self._ended_elsewhere(workflow_id, executor, ended, elsewhere_timeout)
            reply = await self._published_or(workflow_id, ended)
        finally:  # (its context taken as it started here, else it ran elsewhere, or the
            # resume failed, or its reader left: the caller's context is not kept for it)
            if resumed is not None and self.resumed.get(workflow_id) is resumed:
                del self.resumed[workflow_id]
        self._wait_for_record(workflow_id)
        return reply

    async def _ashared(
        self,
        workflow_id: str,
        alias: str,
        messages: tuple[Message, ...],
        kwargs: Mapping[str, object],
        elsewhere_timeout: float | None,
    ) -> MessageSequencePromise | tuple[Message, ...]:
        """The reply of the run ``workflow_id``, whose reply is published here (or about to be).

        Another call waits here for the same run (a run of one input, ``ids_by_input``, or
        one id asked twice): this one shares its wait. A run that another process's DBOS
        executor runs is waited for at most ``elsewhere_timeout`` seconds here too, as by
        :meth:`areply` (the other call's own bound ends its wait only).

        Raises:
            DurableConfigurationError: if the run is another agent's, or had other input
                messages or arguments.
            DurableError: if the run runs in another process and did not end within
                ``elsewhere_timeout`` seconds.
        """
        known = self.inputs.get(workflow_id)  # (its inputs, if published here already)
        if known is not None:  # (a call of another agent or input: refused at once)
            _check_same_run(workflow_id, {"args": known}, alias, messages, kwargs)
        running = await self._published_or(workflow_id, self._ended(workflow_id, elsewhere_timeout))
        if known is None:  # (published meanwhile: its inputs are here; else its record's)
            known = self.inputs.get(workflow_id)
            recorded = (
                await self._arecorded_input(workflow_id) if known is None else {"args": known}
            )
            _check_same_run(workflow_id, recorded, alias, messages, kwargs)
        self._wait_for_record(workflow_id)
        return running

    async def _ended(self, workflow_id: str, elsewhere_timeout: float | None) -> Any:
        """The end of the run ``workflow_id``: at most ``elsewhere_timeout`` seconds away if
        another process's executor runs it (see :func:`_ended_elsewhere`).

        Its executor is read through :attr:`database` (DBOS's own read retries a lost
        connection with no bound, past the bound here).

        Raises:
            DurableDatabaseError: if the database of runs cannot be read (one line), or
                stops answering while the run is waited for (see :meth:`_aresult`).
        """
        dbos = _dbos()
        if workflow_id in self.bodies:  # (it runs here: DBOS records it here)
            return await dbos.get_result_async(workflow_id)
        if elsewhere_timeout is None:
            return await self._aresult(workflow_id)
        status = await self.database.astatus(workflow_id)
        ended: Awaitable[Any] = self._aresult(workflow_id)
        if status is not None and status.executor_id != dbos.executor_id:
            ended = self._ended_elsewhere(workflow_id, status.executor_id, ended, elsewhere_timeout)
        return await ended

    async def _aresult(self, workflow_id: str) -> Any:
        """The end of the run ``workflow_id`` (its result, or its error raised), waited for.

        DBOS's wait reads the database again and again, retrying a lost connection with no
        bound: meanwhile the database is read through :attr:`database` (see
        :meth:`_Database.awhile_reachable`), so that an outage is told as one, not waited through.

        Raises:
            DurableDatabaseError: if the database cannot be read meanwhile.
        """
        return await self.database.awhile_reachable(
            workflow_id, _dbos().get_result_async(workflow_id)
        )

    async def _ended_elsewhere(
        self, workflow_id: str, executor: str | None, ended: Awaitable[T], timeout: float
    ) -> T:
        """``ended`` (the end of a run another executor runs), if it comes within ``timeout`` s.

        Raises:
            DurableDatabaseError: if the database of runs cannot be read (what kept the
                run's end from being seen, rather than the run: see :meth:`_Database.areachable`).
            DurableError: if it does not (the executor may have died, or the run waits
                there for a decision that is given there).
        """
        try:
            return await asyncio.wait_for(ended, timeout)
        except TimeoutError:
            await self.database.areachable(workflow_id)  # (an outage is told as one)
            raise DurableError(
                f"The durable run {workflow_id!r} runs in another process (DBOS executor "
                f"{executor!r}), whose reply streams there, and it did not end within "
                f"{timeout:g} seconds. Ask the server that runs it (it may wait there for a "
                "decision); if that server is gone, start it again with the same DBOS__VMID "
                "(its runs are recovered at its start) or recover that executor's runs with "
                "DBOS (its admin server's workflow recovery, or DBOS Conductor), then ask "
                "again; or start a new run."
            ) from None

    async def _arecorded_input(self, workflow_id: str) -> object:
        """The recorded input of the run ``workflow_id`` (DBOS records it as it starts the run)."""
        status = await self.database.astatus(workflow_id)
        return None if status is None else status.input

    def _unclaimed(self, workflow_id: str, executor: str | None) -> bool:
        """Whether the pending run ``workflow_id`` may be one stopped here and forgotten since.

        Its DBOS executor is this process's, so no other process runs it, and it has not
        published its reply here, nor waits here for its agent: it was stopped here (its
        id gone from :attr:`stopped` since), or DBOS is about to start it here. Until the
        engine has forgotten a stopped run, it is the latter (its end is waited for).
        """
        return (
            self.stopped.dropped > 0
            and executor == _dbos().executor_id
            and workflow_id not in self.bodies
            and workflow_id not in self.waiting
        )

    async def _claimed_or_stopped(
        self, workflow_id: str
    ) -> MessageSequencePromise | tuple[Message, ...]:
        """The reply of the unclaimed run ``workflow_id``, if it starts here within a bound.

        Nobody else runs it (see :meth:`_unclaimed`): waiting for its end would wait for
        ever. Its reply is waited for :attr:`unclaimed_wait` seconds (DBOS may be about to
        start it here); past them, the run is taken for one stopped here, as it is: its
        readers are told so, and asked for again, it runs on here.

        Raises:
            DurableRunStoppedError: if it did not start here within the bound.
        """
        published = self.published(workflow_id)
        try:
            reply = await asyncio.wait_for(asyncio.shield(published), self.unclaimed_wait)
        except TimeoutError:
            if published.done():  # (published as the wait ended)
                reply = published.result()
            else:
                return await self._astopped_unclaimed(workflow_id, published)
        finally:  # (a reader that gave up: the next call asks the database again)
            if not published.done() and self.running.get(workflow_id) is published:
                del self.running[workflow_id]
        self._wait_for_record(workflow_id)
        return reply

    async def _astopped_unclaimed(
        self, workflow_id: str, published: asyncio.Future[MessageSequencePromise]
    ) -> tuple[Message, ...]:
        """Tell the readers of the unclaimed run ``workflow_id`` that it stopped here.

        Unless it ended meanwhile (started and ended here within the wait): its record
        then.

        Raises:
            DurableRunStoppedError: if it is still pending (asked again, it runs on here).
        """
        status = await self.database.astatus(workflow_id)
        if status is not None and status.status in ("SUCCESS", "ERROR"):
            return cast("tuple[Message, ...]", await _outside(self._aresult(workflow_id)))
        said = (
            f"The durable run {workflow_id!r} was stopped in this process before it ended, "
            f"and nothing ran it on here within {self.unclaimed_wait:g} seconds of this call. "
            "It stays pending in the database of durable runs, unrecorded from where it "
            "stopped: ask for it again under the same workflow id to run it on here, or the "
            "next launch of durable runs recovers it."
        )
        if self.running.get(workflow_id) is published:
            del self.running[workflow_id]
        if not published.done():  # (another reader that waits for it is told too)
            published.set_exception(DurableRunStoppedError(said))
            published.add_done_callback(_retrieved)
        self.stopped.add(workflow_id)
        raise DurableRunStoppedError(said)

    def _wait_for_record(self, workflow_id: str) -> None:
        """Make the reader's context wait for the end of the run ``workflow_id`` running here.

        A run recovered here runs in a context that is not the reader's (see
        :meth:`arecovery_context`): without this, the reader's context could end (and then
        the loop) after its last token but before DBOS recorded the run as ended, and the
        next start would recover it again.
        """
        body = self.bodies.get(workflow_id)
        if body is not None and not body.done() and current_context() is not None:
            start_task(_until_done(body), f"the record of the durable run {workflow_id!r}")

    async def _published_or(
        self, workflow_id: str, result: Awaitable[Any]
    ) -> MessageSequencePromise | tuple[Message, ...]:
        """The reply of ``workflow_id`` published here if it comes first, else ``result``.

        When ``result`` (the run's end) comes first, or fails, nothing will publish the
        reply here any more (the run has ended, here or in another process, or failed
        before it published, or was waited for long enough): the future waited for is
        dropped, so that the next call under the same id asks the database instead of
        waiting for it forever.
        """
        published = self.published(workflow_id)
        try:
            return await _first(published, result)
        finally:  # (the run's end, or its error: a wait bounded, see _ended_elsewhere)
            if not published.done() and self.running.get(workflow_id) is published:
                del self.running[workflow_id]


def _check_application(workflow_id: str, status: WorkflowStatus) -> None:
    """Refuse to run on the run ``workflow_id`` (of ``status``) if other code started it.

    Raises:
        DurableVersionError: if it has not ended and its application version is not this
            code's.
    """
    if status.status in _UNENDED and status.app_version != _dbos().application_version:
        raise other_code_error(workflow_id, status.app_version, "recovered")


def other_code_error(workflow_id: str, version: str | None, refused: str) -> DurableVersionError:
    """The refusal of the run ``workflow_id``, started by code of application ``version``.

    ``refused``: what is not done with it here, ``"recovered"`` (it has not ended: its
    code runs it to its end) or ``"replayed"`` (it has ended: its code replays it).
    """
    fix = (
        "Run it to its end with the code that started it, or start a new run under another "
        "workflow id."
        if refused == "recovered"
        else "Replay it with the code that started it."
    )
    return DurableVersionError(
        f"The durable run {workflow_id!r} was started by other code (application version "
        f"{version}) than the code running now (version {_dbos().application_version}): its "
        f"recorded steps may not match what this code does, so it is not {refused}. {fix}"
    )


def _check_same_run(
    workflow_id: str,
    recorded: object,
    alias: str,
    messages: tuple[Message, ...],
    kwargs: Mapping[str, object],
) -> None:
    """Refuse to give a run's reply to a call of another agent, or with other input.

    A workflow id names one run: asked again, the run replays as it was recorded. A call
    of another agent, or with other input messages or arguments, under the same id would
    get a reply that is not its own.

    Raises:
        DurableConfigurationError: if the recorded run is another agent's, or had other
            input messages or arguments.
    """
    args = recorded.get("args") if isinstance(recorded, dict) else None
    if not isinstance(args, (tuple, list)) or len(args) < 2:
        return  # not a run of this engine's workflow (nothing to compare)
    recorded_alias, recorded_messages = args[0], args[1]
    if recorded_alias != alias:
        raise DurableConfigurationError(
            f"The workflow id {workflow_id!r} names a run of the agent {recorded_alias}, not "
            f"of {alias}: a workflow id names one run, whose reply is replayed as recorded. "
            "Give this call another workflow id."
        )
    if tuple(recorded_messages) != messages:
        raise DurableConfigurationError(
            f"The workflow id {workflow_id!r} names a run of {alias} with other input "
            "messages than this call's: a workflow id names one run, whose reply is "
            "replayed as recorded, so this call would get another input's reply. Give it "
            "another workflow id (e.g. one made from its input)."
        )
    recorded_kwargs = args[2] if len(args) > 2 else None
    if isinstance(recorded_kwargs, Mapping) and not _same_arguments(recorded_kwargs, kwargs):
        raise DurableConfigurationError(
            f"The workflow id {workflow_id!r} names a run of {alias} with other arguments "
            f"than this call's (recorded: {sorted(recorded_kwargs)!r:.200}, given: "
            f"{sorted(kwargs)!r:.200}): a workflow id names one run, whose reply is replayed "
            "as recorded, so this call would get another call's reply. Give it another "
            "workflow id (e.g. one made from its input and arguments: ids_by_input=True)."
        )


def _same_arguments(recorded: Mapping[str, object], given: Mapping[str, object]) -> bool:
    """Whether a run's recorded arguments are ``given`` (equal, or pickled alike)."""
    if set(recorded) != set(given):
        return False
    for name, value in given.items():
        try:
            if bool(recorded[name] == value):
                continue
        except Exception:  # an == that cannot tell (e.g. arrays'): compare the pickles
            pass
        try:
            if pickle.dumps(recorded[name]) != pickle.dumps(value):
                return False
        except Exception:  # recorded once, so it pickles; given: checked before
            return False
    return True


async def _first(
    reply: asyncio.Future[MessageSequencePromise], result: Awaitable[Any]
) -> MessageSequencePromise | tuple[Message, ...]:
    """The live reply if it comes first, else the recorded one (or the run's error).

    A coroutine ``result`` (a wait for the run's end in the database) is this wait's own:
    it is cancelled once the live reply came, or when this wait is cancelled (the app or
    the reader stopped), so that no poll of DBOS outlives it (one left polling fails once
    DBOS is destroyed: its executor takes no more work). A task ``result`` (the run's
    workflow itself) is the caller's, and runs on.
    """
    owned = not isinstance(result, asyncio.Future)
    ended = asyncio.ensure_future(result)
    try:
        done, _ = await asyncio.wait({reply, ended}, return_when=asyncio.FIRST_COMPLETED)
    except asyncio.CancelledError:
        if owned:
            ended.cancel()
        raise
    if reply in done:
        if not ended.done():
            if owned:
                ended.cancel()
            ended.add_done_callback(_retrieved)
        return reply.result()
    messages: tuple[Message, ...] = ended.result()
    return messages


def _retrieved(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()  # read by the reply's readers: not a lost error


@_database_failures_told
async def _outside(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a DBOS call outside of any workflow (inside one, DBOS would record it as a step).

    Raises:
        DurableDatabaseError: for a failure of the database of runs (one line, see
            :func:`store_failure`), instead of the library's error.
    """
    return await contextvars.Context().run(asyncio.create_task, coroutine)


def store_failure(error: BaseException) -> DurableDatabaseError | None:
    """The one-line error that ``error`` means if the database of runs failed, else ``None``.

    (See :mod:`miniagents.ext.dbos._database_errors`: an error of the agent's own code is
    not one, even an error of a database.)
    """
    engine = _process.engine
    url = engine.url if engine is not None else configured_url()
    return database_failure(error, url, redacted(url), CONNECT_TIMEOUT)


async def aengine_for(url: str | None, *, recover_here: bool = False) -> Engine:
    """DBOS launched for ``url`` on the running loop (once; again for another loop).

    Args:
        url: The database of the runs (``None``: ``use_database``'s, else the default).
        recover_here: The runs recovered at launch run in the caller's ``MiniAgents``
            context (if it has one), not in one of the engine's own. Only the launch
            takes it into account: nothing changes if DBOS runs already.

    Raises:
        DurableConfigurationError: if another database is in use in this process, or the
            database cannot hold durable runs (see :func:`checked_url`).
        DurableDatabaseError: if the database cannot be reached, opened or written.
        MissingExtraError: if the driver that a PostgreSQL URL names is not installed.
    """
    wanted = checked_url(url or _process.default_url or DEFAULT_DATABASE_URL)
    loop = asyncio.get_running_loop()
    engine = _process.engine
    if engine is not None and engine.loop is loop and not loop.is_closed():
        if engine.url != wanted:
            raise DurableConfigurationError(
                f"Durable runs of this process use the database {redacted(engine.url)}; "
                f"one durable agent asked for {redacted(wanted)}. DBOS keeps one database "
                "per process: give every durable agent the same database_url."
            )
        return engine
    dbos = _dbos()
    _registered_functions()
    if engine is not None:  # a new event loop (e.g. a second asyncio.run): launch again
        dbos.destroy(destroy_registry=False)
        engine.database.close()
        _process.engine = None
    await asyncio.to_thread(_check_reachable, wanted)  # bounded: never a hang
    launched = current_engine()
    if launched is not None and launched.loop is loop:  # by another run, meanwhile
        return launched
    try:
        dbos(
            config={
                "name": "miniagents",
                "system_database_url": wanted,
                "db_engine_kwargs": engine_options(wanted),
                "application_version": APPLICATION_VERSION,
                "log_level": "WARNING",
                "notification_listener_polling_interval_sec": 0.05,
            }
        )
        dbos.launch()
    except Exception as error:
        dbos.destroy(destroy_registry=False)
        failure = database_failure(error, wanted, redacted(wanted), CONNECT_TIMEOUT)
        if failure is None:
            failure = DurableDatabaseError(
                f"DBOS could not start on the database {redacted(wanted)} "
                f"({type(error).__name__}: {first_line(error)}): check the database_url (a "
                "sqlite:/// file path or a postgresql:// URL) and that the database accepts "
                "connections."
            )
        raise failure from None
    _released_logs.install()
    here = recover_here and current_context() is not None
    engine = _process.engine = Engine(wanted, loop, contextvars.copy_context() if here else None)
    await withdraw_orphans(wanted)  # (recovered now, with nothing to wait for)
    return engine


async def _hold_context(ready: asyncio.Future[contextvars.Context]) -> None:
    """Hold a ``MiniAgents`` context of the engine's own open until the loop's end."""
    async with MiniAgents():
        ready.set_result(contextvars.copy_context())
        await asyncio.get_running_loop().create_future()  # the loop's end cancels it


class _RecentIds:
    """A set of ids kept in the order they were added, the oldest dropped past ``limit``.

    Attributes:
        limit: How many ids it keeps at most.
        dropped: How many ids it dropped so (to keep ``limit``).
    """

    __slots__ = ("_ids", "dropped", "limit")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.dropped = 0
        self._ids: dict[str, None] = {}

    def add(self, item: str) -> None:
        """Keep ``item`` as the newest id, dropping the oldest ones past the limit."""
        self._ids.pop(item, None)
        self._ids[item] = None
        while len(self._ids) > self.limit:
            del self._ids[next(iter(self._ids))]
            self.dropped += 1

    def discard(self, item: str) -> None:
        """Forget ``item``, if kept."""
        self._ids.pop(item, None)

    def __contains__(self, item: object) -> bool:
        return item in self._ids

    def __len__(self) -> int:
        return len(self._ids)


class _ReleasedRuns(logging.Filter):
    """Leaves out DBOS's log line of a workflow task that the engine released on purpose.

    The line of a task the engine released, and of a run stopped here (its body, its
    steps) or of an approval of one: an approval as its own task says it is one
    (``approval_running``), never by its id, so that a run recorded before ids holding
    ``::approval`` were refused (``refund::approval1``, ``a::approval/b``) is read as
    itself, and its approvals as its own, not as ``refund``'s or ``a``'s.
    """

    installed = False

    def install(self) -> None:
        if not self.installed:
            self.installed = True
            logging.getLogger("dbos").addFilter(self)

    def filter(self, record: logging.LogRecord) -> bool:
        engine = _process.engine
        if engine is None or not str(record.msg).startswith("Asyncio task cancelled"):
            return True
        try:
            task = asyncio.current_task()
        except RuntimeError:  # another thread's record
            return True
        if task is None:
            return True
        if task in engine.released:
            return False
        try:  # a step of a run stopped here, or one of its approvals: stopped on purpose too
            workflow = _dbos().workflow_id
        except Exception:  # (DBOS's own state, unreadable here: the line stays)
            return True
        if workflow is None or workflow in engine.stopped:  # (a run's own id, read first)
            return workflow is None
        approval = approval_running()  # (set by an approval's task: its id and its run's)
        return approval is None or approval[0] != workflow or approval[1] not in engine.stopped


_released_logs = _ReleasedRuns()


def current_engine() -> Engine | None:
    """The engine launched in this process (on its last loop), if any."""
    return _process.engine


def redacted(url: str) -> str:
    """``url`` as errors show it: without its user and password.

    Whatever stands before the host's ``@`` is hidden, also in a URL that lacks its
    ``//`` (``postgresql:/user:secret@host/db`` is shown as ``***@host/db``).
    """
    if "@" not in url:
        return url
    scheme, sep, _ = url.partition("://")
    host = url.rpartition("@")[2]
    return f"{scheme}://***@{host}" if sep else f"***@{host}"


def _check_reachable(url: str) -> None:
    """Fail fast (in bounded time) if the database is locked or cannot be reached.

    Raises:
        DurableDatabaseError: if it cannot.
    """
    if url.startswith("sqlite"):
        path = sqlite_path(url)  # (a file: checked_url refuses an in-memory database)
        if Path(path).is_dir():
            raise DurableDatabaseError(
                f"The SQLite file {path!r} of durable runs is a folder: give database_url "
                f"the path of a file in it, e.g. sqlite:///{Path(path) / 'runs.sqlite'}."
            )
        if not Path(path).parent.is_dir():
            raise DurableDatabaseError(
                f"The folder of the SQLite file {path!r} of durable runs does not exist: "
                "create it, or give database_url another sqlite:/// path."
            )
        try:
            connection = sqlite3.connect(path, timeout=CONNECT_TIMEOUT)
            try:
                connection.execute("BEGIN IMMEDIATE")
                connection.rollback()
            finally:
                connection.close()
        except sqlite3.Error as error:  # locked, not SQLite or damaged, not writable: one line
            raise sqlite_failure(path, error, CONNECT_TIMEOUT) from None
        return
    engine = _server_engine(url)
    try:
        with engine.connect():
            pass
    except Exception as error:
        failure = database_failure(error, url, redacted(url), CONNECT_TIMEOUT)
        if failure is None:  # (not told as the server's: said as it is)
            failure = DurableDatabaseError(
                f"The database of durable runs {redacted(url)} cannot be reached "
                f"({type(error).__name__}: {first_line(error)}): check the URL, and that the "
                "server runs and accepts connections."
            )
        raise failure from None
    finally:
        engine.dispose()


def _server_engine(url: str) -> sqlalchemy.Engine:
    """An engine (no pool) for the server of the PostgreSQL database ``url``, not connected.

    Raises:
        MissingExtraError: if the URL's driver is not installed.
        DurableConfigurationError: if SQLAlchemy cannot read the URL, or knows no such
            driver.
    """
    import sqlalchemy
    from sqlalchemy import exc

    # (a URL without "://" is shown by its scheme alone: what follows may hold a password)
    shown = redacted(url) if "://" in url else f"{url.partition(':')[0]}:***"
    try:
        server = sqlalchemy.make_url(url)
        if server.drivername in ("postgresql", "postgres"):
            server = server.set(drivername="postgresql+psycopg")
        return sqlalchemy.create_engine(
            server.set(database="postgres"),
            connect_args={"connect_timeout": CONNECT_TIMEOUT},
            poolclass=sqlalchemy.pool.NullPool,
        )
    except ImportError as error:  # (the driver, imported as the engine is made)
        missing = error.name or first_line(error)
        install = (
            'pip install "miniagents[dbos]"'
            if missing.partition(".")[0] == "psycopg"
            else f"pip install {missing.partition('.')[0]}, or write the URL as "
            'postgresql://... (psycopg, which pip install "miniagents[dbos]" brings)'
        )
        raise MissingExtraError(
            f"The driver of the database of durable runs {shown} is not installed "
            f"({type(error).__name__}: {first_line(error)}): {install}."
        ) from None
    except exc.NoSuchModuleError as error:  # (a driver's name SQLAlchemy does not know)
        raise DurableConfigurationError(
            f"The database of durable runs {shown} names a driver that SQLAlchemy does not "
            f"know ({first_line(error)}): write postgresql://... (psycopg), or "
            "postgresql+DRIVER://... with a driver SQLAlchemy has."
        ) from None
    except (exc.ArgumentError, ValueError) as error:  # (its port, its brackets, its form)
        raise DurableConfigurationError(
            f"The URL of the database of durable runs {shown} cannot be read "
            f"({type(error).__name__}: {first_line(error)}): write it as "
            "postgresql://USER:PASSWORD@HOST:PORT/DATABASE, its port a number."
        ) from None


# -- the workflow and its step -------------------------------------------------------------------


async def _interaction_workflow(
    alias: str, messages: tuple[Message, ...], kwargs: dict[str, object], version: str
) -> tuple[Message, ...]:
    """One durable interaction (a DBOS workflow): the agent's reply, its calls as steps.

    A run recovered at launch waits for its agent to be made in this process, and is
    refused (left pending, unchanged) if the agent's version is not the one it recorded.
    """
    dbos = _dbos()
    engine = _process.engine
    workflow_id = dbos.workflow_id
    if engine is None or workflow_id is None:
        raise DurableError("A durable run started outside of a durable agent's engine.")
    agent = _agents.get(alias)
    if agent is None:  # recovered at launch, before its agent was made
        agent = await engine.await_agent(workflow_id, alias)
    if _agents.version(alias) != version:
        _refuse(engine, workflow_id, alias, version)
    _, step = _registered_functions()
    step_context = contextvars.copy_context()
    recorded = await _replayed_steps(workflow_id, step)
    undecided = _Undecided(engine, workflow_id)  # the approvals started here that wait
    told = functools.partial(_cancel_told, engine, workflow_id, step)
    run = DurableRun(workflow_id, step_context, told, recorded, approvals=undecided.adecided)
    if current_context() is not None:  # started by its caller: it runs in its context
        work = contextvars.copy_context()
    else:  # started by DBOS (recovered at launch, or resumed for a caller)
        work = (await engine.arecovery_context(workflow_id)).copy()
    for variable, value in work.items():  # the agents run outside DBOS's workflow context
        if type(value).__name__ == "DBOSContext":
            work.run(variable.set, None)

    body = asyncio.current_task()  # DBOS records the reply after this function returns
    if body is not None:
        engine.bodies[workflow_id] = body  # (until the record is written: stop() finds it)
        body.add_done_callback(functools.partial(_forget_body, engine, workflow_id))

    def start() -> MessageSequencePromise:
        current_run.set(run)
        run_path.set("")
        reply = agent.inquire(messages, **kwargs)
        if body is not None:  # the context waits for the run to be recorded, on exit
            start_task(_until_done(body), f"durable run {workflow_id}")
            undecided.forget = at_exit(undecided.exit_began)  # (but not for a decision)
        return reply

    reply = work.run(start)
    inputs = engine.inputs[workflow_id] = (alias, messages, kwargs)
    published = engine.published(workflow_id)
    if not published.done():
        published.set_result(reply)
    try:
        try:
            messages = await reply
        except BaseException as error:
            cancel = error.__cause__ if isinstance(error, DurableRunCancelledError) else error
            if cancel is not None and _cancelled_by_dbos(cancel):  # cancelled (acancel_run,
                # an operator): it is over, and DBOS stops it on its own error
                await withdraw(engine.url, undecided.started)  # (else recovered at starts)
                raise cancel from None
            if isinstance(error, StreamCancelledError) or not isinstance(error, Exception):
                raise
            engine.returned.add(workflow_id)  # (DBOS records its error once this returns)
            await withdraw(engine.url, undecided.started)  # the run ended: nobody decides
            raise
        engine.returned.add(workflow_id)  # (DBOS records its reply once this returns)
        await withdraw(engine.url, undecided.started)
        return tuple(_recordable(message) for message in messages)
    except (asyncio.CancelledError, StreamCancelledError) as error:
        # its reader gave up, or its context ended: not a failure to record. DBOS leaves a
        # cancelled workflow running (PENDING), and asked again, it runs again
        engine.stopped.add(workflow_id)
        if isinstance(error, asyncio.CancelledError):
            raise
        raise asyncio.CancelledError(str(error)) from error
    finally:
        undecided.forget()
        if engine.running.get(workflow_id) is published:
            del engine.running[workflow_id]
        if engine.inputs.get(workflow_id) is inputs:
            del engine.inputs[workflow_id]


def _forget_body(engine: Engine, workflow_id: str, body: asyncio.Task[Any]) -> None:
    """Forget the run's body once its task is done: its record written (or it was stopped).

    Not when the agent returns: DBOS writes the record after, in the same task, and a
    server that is down makes it wait (DBOS retries); :meth:`Engine.stop` stops it then too.
    """
    if engine.bodies.get(workflow_id) is body:
        del engine.bodies[workflow_id]
        engine.returned.discard(workflow_id)


class _Undecided:
    """The calls of one run that wait here for a decision, and the run's stop at its exit.

    Once the run's ``MiniAgents`` context begins its exit (its block has ended: nobody
    there reads the reply, nor decides a request of it), a call that waits for a person's
    decision, then or later, would hold the exit until someone decides, maybe never: the
    run is stopped instead (see :meth:`Engine.stop`), and one warning names it and its
    calls. It stays pending with its approvals, and the next launch recovers it (a
    decision sent meanwhile, with ``aapprove`` or ``adeny``, is read then).

    Attributes:
        started: The ids of the approvals started here and not decided (withdrawn at the
            run's end: nobody decides them any more).
        waiting: The requests whose calls wait for a decision now, by their approval's id.
        forget: What forgets the context's call of :meth:`exit_began` (at the run's end).
    """

    __slots__ = (
        "_engine",
        "_exiting",
        "_stopped",
        "_workflow_id",
        "forget",
        "started",
        "waiting",
    )

    def __init__(self, engine: Engine, workflow_id: str) -> None:
        self._engine = engine
        self._workflow_id = workflow_id
        self._exiting = False
        self._stopped = False
        self.started: set[str] = set()
        self.waiting: dict[str, ToolApprovalRequest] = {}
        self.forget: Callable[[], None] = _nothing

    async def adecided(self, key: str, request: ToolApprovalRequest) -> ToolDecision:
        """The decision on the run's call at ``key`` (see :func:`awaited_decision`)."""
        name = approval_id(self._workflow_id, key)
        self.started.add(name)
        self.waiting[name] = request
        try:
            self.check()  # (its context's exit has begun: nobody there decides it)
            decision = await awaited_decision(
                self._engine.url, self._workflow_id, key, request, self._engine.database
            )
        finally:
            del self.waiting[name]  # (a wait cancelled, e.g. by DBOS's cancel, waits no more)
        self.started.discard(name)
        return decision

    def exit_began(self) -> None:
        """The run's context begins its exit: stop the run if a call waits for a decision."""
        self._exiting = True
        self.check()

    def check(self) -> None:
        """Stop the run if its context is exiting and one of its calls waits undecided."""
        pending = [request for request in self.waiting.values() if request.pending]
        if not self._exiting or self._stopped or not pending:
            return
        self._stopped = True
        calls = ", ".join(f"{request.call_id!r} of {request.tool_name}" for request in pending)
        _logger.warning(
            "The MiniAgents context of the durable run %r ended while its call(s) %s waited "
            "for a decision that nobody there can give any more: the run is stopped here, "
            "unrecorded, and stays pending in the database of durable runs (a decision sent "
            "with aapprove or adeny is kept for it). The next launch of durable runs "
            "recovers it. To decide in this process, read the reply and decide its requests "
            "inside the context's block.",
            self._workflow_id,
            calls,
        )
        self._engine.stop(
            self._workflow_id,
            f"its MiniAgents context ended while its call(s) {calls} waited for a decision",
        )


def _nothing() -> None:
    """Forget nothing (a run whose context's exit was never to be told)."""


def _stop_reply(reply: MessageSequencePromise, error: DurableError) -> None:
    """End the reply of a stopped (or cancelled) run with ``error`` for its readers, and stop
    its agent.

    The reply ends first (its readers get ``error``, not a plain cancellation), then its
    producer is given up on as when every reader leaves: the agent's task is cancelled,
    and what it waits for with it. The reply keeps ``error``'s text as the reason it was
    cancelled for, so that the messages it holds that end with the agent (one it was
    streaming) end with that sentence too, not a plain cancellation's.
    """
    core = core_of(reply)
    if core.done:
        return
    give_up, core.on_abandoned = core.on_abandoned, None  # (the end would drop it)
    core.reason = str(error)
    core.fail(error)
    if give_up is not None:
        give_up()


async def _cancel_told(engine: Engine, workflow_id: str, step: StepFunction, key: str) -> object:
    """The step ``key`` of the run ``workflow_id``; if DBOS stops it, cancelled, the run's
    reply ends for its readers with a :class:`DurableRunCancelledError` saying so, and its
    agent is cancelled, as at :meth:`Engine.stop` (DBOS's own error, that one's cause, is
    raised on by the run's body, so that DBOS stops the run).
    """
    try:
        return await step(key)
    except BaseException as error:
        published = engine.running.get(workflow_id)
        if (
            _cancelled_by_dbos(error)
            and published is not None
            and published.done()
            and not published.cancelled()
            and published.exception() is None
        ):
            cancelled = DurableRunCancelledError(
                f"The durable run {workflow_id!r} was cancelled (acancel_run, or DBOS's own "
                "cancel) before it ended, so it has no reply and is not run on: its record "
                "stays, and replay() replays it up to where it stopped. Start a new run under "
                "another workflow id to do its work again."
            )
            cancelled.__cause__ = error  # (raised on by the run's body: DBOS stops it)
            _stop_reply(published.result(), cancelled)  # its agent stops, as at a stop
            # (not the agent's error: the streams it fed end with the sentence, chained to
            # it, through either of two paths: the reply's reason, set by _stop_reply, and
            # the CancelReason of the step's cancellation raised here)
            raise asyncio.CancelledError(CancelReason(str(cancelled))) from cancelled
        raise


def _cancelled_by_dbos(error: BaseException) -> bool:
    """Whether ``error`` is DBOS's stop of a workflow that was cancelled (its status says so).

    DBOS raises it (no ``Exception``, so that no code of the run catches it) where a
    cancelled run goes on: at its next step, or in a preemptible step that was running.
    """
    return any(
        kind.__name__ == "DBOSWorkflowCancelledError" and kind.__module__.startswith("dbos")
        for kind in type(error).__mro__
    )


def _refuse(engine: Engine, workflow_id: str, alias: str, version: str) -> None:
    """Refuse to run ``workflow_id`` (recorded by another version of ``alias``).

    The run stays pending in the database, as it was: the code that started it may still
    run it to its end. Its callers in this process get a ``DurableVersionError``.

    Raises:
        asyncio.CancelledError: always (DBOS leaves a cancelled workflow pending).
    """
    error = DurableVersionError(
        f"The durable run {workflow_id!r} was started by other code than the code running "
        f"now: its agent {alias} had the version {version} (a hash of its code and "
        f"settings), and has {_agents.version(alias)} now. Its recorded steps may not match "
        "what this code does, so it is not recovered. Run it to its end with the code that "
        "started it, or start a new run under another workflow id."
    )
    engine.refused[workflow_id] = str(error)
    task = asyncio.current_task()
    if task is not None:  # left pending on purpose: DBOS's log of its cancellation is no news
        engine.released.add(task)
    published = engine.published(workflow_id)
    if not published.done():
        published.set_exception(error)
        published.add_done_callback(_retrieved)
    if engine.running.get(workflow_id) is published:
        del engine.running[workflow_id]
    raise asyncio.CancelledError(str(error))


def _recordable(message: Message) -> Message:
    """``message`` as the run's recorded reply: rebuilt from its fields if it holds more.

    An approval request of the reply holds its pending decision (a future of this loop):
    the recorded one is rebuilt from its fields, so it is not pending (as a request read
    back from a history).
    """
    try:
        pickle.dumps(message)
    except Exception:
        return type(message).model_validate(message.model_dump())
    return message


async def _until_done(task: asyncio.Task[Any]) -> None:
    await asyncio.wait({task})


async def _replayed_steps(
    workflow_id: str, step: Callable[[str], Awaitable[object]]
) -> dict[str, object]:
    """The results of the steps recorded before, by key (none on a first run)."""
    dbos = _dbos()
    steps = await _outside(dbos.list_workflow_steps_async(workflow_id, load_output=False))
    last = max((int(s["function_id"]) for s in steps), default=0)
    recorded: dict[str, object] = {}
    for _ in range(last):  # in order: DBOS gives each its result without running it
        try:
            result = await step("")
        except Exception:  # a step that raised (a call's own error is its result): runs again
            continue
        if isinstance(result, tuple) and len(result) == 2 and isinstance(result[0], str):
            recorded[result[0]] = result[1]
    return recorded


async def _step(key: str) -> object:
    """A step of a durable run: runs the body given for ``key``; its result is ``(key, value)``."""
    run = current_run.get()
    body = None if run is None or not key else run.take_body(key)
    if body is None:
        return None  # a step that was running when its process stopped: nothing to replay
    return (key, await body())
