"""The runs of a durable agent's app: found again, and replayed, after the app restarts.

When the served agent is durable (``durable(agent)`` of ``miniagents.ext.dbos``), each job
the app starts is a durable run whose workflow id names the job: the protocol, the
principal who started it (when the app knows who asks), then the job's key (the AG-UI run
id, the AI SDK chat id) and its group (the AG-UI thread, the AI SDK message id), as a JSON
list, so that the key can be found by the id's prefix::

    ag-ui:["r1","t1"]                  the run r1 of the thread t1 (an app that knows nobody)
    ai-sdk:"ada":["chat-7","msg-0a"]   ada's assistant message msg-0a of her chat chat-7

So a run keeps its owner across a restart: a principal finds only their own runs, and the
same key used by two principals names two runs that never meet.

After a restart, a request for a job the app does not know finds its run by the key (or
the thread), and the job is made again from the run's replay: the same events, in the same
order, so a client's ``Last-Event-ID`` keeps its place (see
:mod:`miniagents.ext.web._event_log`). Where a job paused for approvals and was resumed,
the app notes with the run, before the decisions are given, where the pause was and the
run the job went on in (``web.pause.<n>``, see :class:`PausePoint`; noted by the one that
took the pause, its resume or its expiry, see ``RunManager.aresume_run``): the replay pauses
there too and goes on at once in that run, so each run (the paused one, the one that
resumed it) has its events numbered as they were. A note lost (one written in a task of its
own, cut by the app's stop past ``STOP_WRITES_GRACE``, or by a crash) leaves a gap in the
indices: the notes after it are read all the same, in the order of their indices. The
replay does not pause where the lost note's pause was (the decisions given there are
recorded: it goes on through it in the run before, as if it had not paused there), and the
job's pauses after the replay are noted past the highest index noted, never over a note.
A note of a pause given back (its resume refused after the note, or the run's name not
recorded, see :meth:`DurableJobs.anote_pause`), or of a job that ended while it was written,
is withdrawn: it holds no point then, read as a lost one, and the pause's next resume notes
it again. A replay that reaches the call of a later note first skips the notes before it
(their calls never come: the notes are in the order the run reached their calls), counted
as lost too; so does one that waits, live, at a call no note names, with the notes left
after it.
The AG-UI run that resumed a job is recorded as a name of the durable run
(``ag-ui:<runId>``, after the owner), so that it is found by its own id, while a note of
its pause names it (a name stays once recorded: a withdrawn note's run is not found by
it). A job that fails
notes with its run the reference its client is told (``web.failure``, see
:meth:`DurableJobs.anote_failure`): read again, however often and after however many
restarts, the run's failure is told under that reference, the one the log has it under,
and is not logged again. The app launches DBOS at its start in a
``MiniAgents`` context of its own, in which the runs that the restart stopped are recovered
(not in the first request's). At its end, its jobs and the recovered runs nobody came back
for are stopped, as at a crash: their tasks are cancelled, but not their durable runs,
which stay pending in the database with the steps they recorded, and the next start
recovers them again (only a run given up on, :meth:`DurableJobs.abandon`, is cancelled in
the database: no start recovers it). DBOS's recovery queues those runs again, on a queue
every server sharing the database reads: a run another live server takes first runs in that
server's app context, and this one replays it once it has ended there (waiting at most the
agent's ``elsewhere_timeout``).

``miniagents.ext.dbos`` is imported only for a durable agent (which it made).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import hashlib
import json
import logging
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from miniagents.ext.told_errors import told_error, told_reference
from miniagents.ext.tools.approval import ToolApprovalRequest
from miniagents.messages.message import Message
from miniagents.messages.sequence import MessageSequencePromise
from miniagents.miniagents.agent import MiniAgent
from miniagents.miniagents.context import MiniAgents
from miniagents.promising.lowlevel import core_of, spawn

if TYPE_CHECKING:
    from miniagents.ext.dbos import DurableRunInfo

__all__ = ["STOP_WRITES_GRACE", "DurableJobs", "FoundRun", "PausePoint"]

STOP_WRITES_GRACE = 10.0
"""Seconds an app that stops waits for the durable writes its jobs left going (cancels, notes)."""


_PAUSE_NOTE = "web.pause."
_FAILURE_NOTE = "web.failure"


@dataclass(frozen=True)
class PausePoint:
    """Where a job paused (at the call ``at``, ``waiting`` listed) and the run it went on in."""

    run: str
    at: str
    waiting: tuple[str, ...]

    def note(self) -> dict[str, object]:
        """The point as a JSON note."""
        return {"run": self.run, "at": self.at, "waiting": list(self.waiting)}

    @classmethod
    def of_note(cls, note: object) -> PausePoint | None:
        """The point a note holds (``None`` if it holds none)."""
        if not isinstance(note, dict):
            return None
        run, at, waiting = note.get("run"), note.get("at"), note.get("waiting")
        if not (isinstance(run, str) and isinstance(at, str) and isinstance(waiting, list)):
            return None
        return cls(run, at, tuple(str(call) for call in waiting))


@dataclass(frozen=True)
class FoundRun:
    """A job's durable run, found by its key or group (``owner``: the principal's, if any)."""

    workflow_id: str
    owner: str | None
    key: str
    group: str
    ended: bool
    decided: frozenset[str]  # the calls whose decisions are recorded (replayed, never asked)
    pauses: tuple[PausePoint, ...] = ()  # the pauses it was resumed from, in order
    lost_pauses: int = 0  # the pauses between those whose notes are missing (see _pauses)
    cancelled: bool = False  # given up on (its replay stops where it was cancelled)
    here: bool = False  # run by this process's DBOS executor (started or recovered here)
    waiting: bool = False  # a call of it waits for a person's decision now


def _pauses(notes: Mapping[str, object]) -> tuple[tuple[PausePoint, ...], int]:
    """The pause points noted with a run, in the order of their indices, and how many of the
    indices below the last one have no point (their notes lost: see the module docstring).

    Every ``web.pause.<n>`` note is read (``n`` a non-negative int, as written), not only
    those up to the first index missing.
    """
    points: dict[int, PausePoint] = {}
    top = -1  # (the highest index noted, whether its note holds a point or not)
    for name, note in notes.items():
        index = name.removeprefix(_PAUSE_NOTE)
        if index == name or not (index.isascii() and index.isdigit()) or str(int(index)) != index:
            continue
        top = max(top, int(index))
        if (point := PausePoint.of_note(note)) is not None:
            points[int(index)] = point
    return tuple(points[index] for index in sorted(points)), top + 1 - len(points)


def _fingerprint(error: BaseException) -> str:
    """What tells ``error`` from another (a digest of its class and text), for a note."""
    kind = type(error)
    return hashlib.sha256(f"{kind.__module__}.{kind.__qualname__}: {error}".encode()).hexdigest()


class _AppStopped(Exception):
    """Ends the app's recovery context with its recovered runs' tasks cancelled, not awaited.

    Their durable runs stay pending in the database: the next start recovers them.
    """


class DurableJobs:
    """The durable runs of one app's jobs (see the module docstring)."""

    __slots__ = ("_agent", "_keeper", "_launched", "_protocol", "_ready", "_writes")

    def __init__(self, agent: MiniAgent[..., Message], protocol: str) -> None:
        self._agent = agent
        self._protocol = protocol
        self._launched = False  # in the app's context (its lifespan's, or its own task's)
        self._keeper: asyncio.Task[None] | None = None  # that task, for a mounted app
        self._ready: asyncio.Future[None] | None = None
        # (its writes that outlive who started them: see abandon, note_pause_later, awritten,
        # withdraw_pause_later)
        self._writes: set[asyncio.Task[None]] = set()

    @classmethod
    def of(cls, agent: MiniAgent[..., Message], protocol: str) -> DurableJobs | None:
        """The durable runs of ``agent``'s jobs, or ``None`` if it is not durable."""
        if "miniagents.ext.dbos" not in sys.modules:  # only it makes durable agents
            return None
        from miniagents.ext.dbos import is_durable

        return cls(agent, protocol) if is_durable(agent) else None

    def _prefix(self, owner: str | None, key: str | None = None) -> str:
        """The start of the workflow ids of ``owner``'s jobs (no owner: the app knows nobody).

        With ``key``, of its jobs of that key (of any group).
        """
        start = f"{self._protocol}:" if owner is None else f"{self._protocol}:{json.dumps(owner)}:"
        return start if key is None else start + json.dumps([key])[:-1] + ","

    def workflow_id(self, owner: str | None, key: str, group: str) -> str:
        """The workflow id of ``owner``'s job ``key`` of ``group``."""
        return self._prefix(owner) + json.dumps([key, group])

    def _parsed(self, owner: str | None, workflow_id: str) -> tuple[str, str] | None:
        prefix = self._prefix(owner)
        if not workflow_id.startswith(prefix):
            return None
        try:
            parts = json.loads(workflow_id.removeprefix(prefix))
        except ValueError:
            return None
        if isinstance(parts, list) and len(parts) == 2 and all(isinstance(p, str) for p in parts):
            return parts[0], parts[1]
        return None

    def started(
        self, workflow_id: str, messages: list[Message], kwargs: Mapping[str, object]
    ) -> MessageSequencePromise[Message]:
        """A new job's reply: the agent's durable run named ``workflow_id``."""
        from miniagents.ext.dbos import workflow_id as named

        with named(workflow_id):
            return self._agent.inquire(messages, **kwargs)

    def replayed(self, workflow_id: str) -> MessageSequencePromise[Message]:
        """A found job's reply again, from its first token (see ``miniagents.ext.dbos.replay``).

        A run another server's executor holds is waited for at most the agent's
        ``elsewhere_timeout`` (``durable(..., elsewhere_timeout=...)``).
        """
        from miniagents.ext.dbos import replay

        return replay(self._agent, workflow_id)

    def abandon(self, workflow_id: str) -> None:
        """Cancel the run of a job given up on: the next start does not recover it.

        The cancel is a task of its own (see :meth:`awritten`): never of the ``MiniAgents``
        block current where the job is given up on, its own (its expiry's timer, its cut),
        whose exit, as the job's cancellation ends it, would cancel the cancel before it starts.
        """
        from miniagents.ext.dbos import acancel_run

        what = f"cancel the durable run {workflow_id}"
        spawn(acancel_run(self._agent, workflow_id), what, self._writes)

    def note_pause_later(
        self, owner: str | None, workflow_id: str, index: int, point: PausePoint
    ) -> None:
        """Note a pause as :meth:`anote_pause` does, in a task of its own (see :meth:`awritten`).

        For a job that goes on at once (its pause expired, its run went on without it: see
        ``Job``).
        """
        what = f"note the pause {index} of the durable run {workflow_id}"
        spawn(self.anote_pause(owner, workflow_id, index, point, named=False), what, self._writes)

    def withdraw_pause_later(
        self,
        workflow_id: str,
        index: int,
        run: str,
        logger: logging.Logger,
        then: Callable[[], None],
    ) -> asyncio.Task[None]:
        """Withdraw a pause's note as :meth:`awithdraw_pause_logged` does, in a task of its
        own (see :meth:`awritten`); ``then()`` is called once that task has ended, however.

        For a resume that never went on after its note: one cut (its note may land all the
        same: the withdrawal is written after it, the database's writes being one at a
        time), or one that awaits the task (shielded: cut as it waits, the withdrawal goes
        on). The answer is the task.
        """
        what = f"withdraw the note of the pause {index} of the durable run {workflow_id}"
        withdrawal = self.awithdraw_pause_logged(workflow_id, index, run, logger)
        task = spawn(withdrawal, what, self._writes)
        task.add_done_callback(lambda _: then())
        return task

    async def awritten(self) -> None:
        """Wait, as the app stops, for the writes that outlive who started them.

        Those :meth:`abandon`, :meth:`note_pause_later` and :meth:`withdraw_pause_later`
        started, ``STOP_WRITES_GRACE`` seconds at most; those still going then are cancelled
        (a run whose cancel is cut so is recovered at the next start).
        """
        if not self._writes:
            return
        _, late = await asyncio.wait(set(self._writes), timeout=STOP_WRITES_GRACE)
        for task in late:
            task.cancel()
        if late:
            await asyncio.wait(late)

    async def afind(
        self,
        owner: str | None,
        *,
        key: str | None = None,
        group: str | None = None,
        running_only: bool = False,
    ) -> FoundRun | None:
        """``owner``'s newest job's run of ``key`` (and of ``group``, if given), if any.

        With a key, only the newest run whose id starts as the job's do (is the job's, with
        a group) is read: not every run of the key, each with its steps.
        """
        from miniagents.ext.dbos import afind_runs

        if key is not None:
            prefix = (
                self._prefix(owner, key) if group is None else self.workflow_id(owner, key, group)
            )
            runs = await afind_runs(self._agent, prefix, running_only=running_only, limit=1)
            if not runs:
                return None
            newest = self._found(owner, runs[0])
            if newest is not None:
                return newest
            # (an id of another's make, that only starts as the job's, came first: read all)
        found = await self.afind_all(owner, key=key, group=group, running_only=running_only)
        return found[0] if found else None

    async def afind_all(
        self,
        owner: str | None,
        *,
        key: str | None = None,
        group: str | None = None,
        running_only: bool = False,
    ) -> list[FoundRun]:
        """``owner``'s jobs' runs of ``key`` (and of ``group``, if given), newest first."""
        from miniagents.ext.dbos import afind_runs

        def ours(workflow_id: str) -> bool:  # (the others' steps are not read)
            parsed = self._parsed(owner, workflow_id)
            return parsed is not None and (group is None or parsed[1] == group)

        runs = await afind_runs(
            self._agent,
            self._prefix(owner, key),
            running_only=running_only,
            which=ours,
        )
        return [found for run in runs if (found := self._found(owner, run)) is not None]

    def _found(self, owner: str | None, run: DurableRunInfo) -> FoundRun | None:
        """``run`` as ``owner``'s job's, if it is one (its id parses as a job's).

        Its key and group are those asked for: ``afind_runs`` gives only the ids that
        start exactly (in their case too) as the prefix, which holds the key (and, with a
        group, is the whole id), and the group of the others was checked by ``which``.
        """
        parsed = self._parsed(owner, run.workflow_id)
        if parsed is None:
            return None
        pauses, lost = _pauses(run.notes)
        return FoundRun(
            run.workflow_id,
            owner,
            parsed[0],
            parsed[1],
            run.ended,
            run.decided,
            pauses,
            lost,
            run.cancelled,
            run.here,
            run.waiting,
        )

    async def aabandon_all(
        self,
        owner: str | None,
        key: str | None = None,
        *,
        group: str | None = None,
        but: Collection[str | None] = (),
        paused_elsewhere: bool = False,
    ) -> None:
        """Cancel the runs of ``owner``'s job ``key`` (or of its jobs of ``group``) that have
        not ended (``but`` those: the jobs here), of this process's DBOS executor, and, with
        ``paused_elsewhere``, those of another executor that wait for a decision.

        A new turn of a chat (a new AG-UI run of a thread, without ``resume``) replaces
        what waited there: so its runs that paused before a restart and were not made again
        since (recovered here, at the start) are given up on too, not left pending (and
        resumable). A run of another executor sharing the database (another server, with
        its own ``DBOS__VMID``) that streams is that server's: it is left alone. One whose
        call waits for a decision is paused there (``paused_elsewhere``: the app's jobs
        pause at such a wait, as its approvals are the protocol's), so the new turn
        replaces it as it would here; a decision given there later finds it cancelled.
        """
        from miniagents.ext.dbos import acancel_run

        runs = await self.afind_all(owner, key=key, group=group, running_only=True)
        for found in runs:
            replaced = found.here or (paused_elsewhere and found.waiting)
            if replaced and found.workflow_id not in but:
                await acancel_run(self._agent, found.workflow_id)

    async def acancelled(self, workflow_ids: Collection[str]) -> set[str]:
        """Those of ``workflow_ids`` whose runs were cancelled (by another server, say)."""
        from miniagents.ext.dbos import acancelled_runs

        return await acancelled_runs(self._agent, workflow_ids)

    async def afind_named(self, owner: str | None, name: str) -> FoundRun | None:
        """``owner``'s job's run that went on in the run ``name`` after a pause, if recorded.

        The name is recorded after the pause's note (:meth:`anote_pause`) and stays when that
        note is withdrawn (names are only added): a run whose notes hold no pause that went
        on in ``name`` is not found by it, as ``name`` never went on.
        """
        from miniagents.ext.dbos import arun_named

        workflow_id = await arun_named(self._agent, self._prefix(owner) + name)
        parsed = None if workflow_id is None else self._parsed(owner, workflow_id)
        if parsed is None:
            return None
        found = await self.afind(owner, key=parsed[0], group=parsed[1])
        if found is None or found.workflow_id != workflow_id:
            return None
        return found if any(point.run == name for point in found.pauses) else None

    async def anote_pause(
        self, owner: str | None, workflow_id: str, index: int, point: PausePoint, *, named: bool
    ) -> None:
        """Note that ``owner``'s job paused (its ``index``-th pause) at ``point``, and goes on.

        ``named``: the run it goes on in is recorded as a name of the durable run too; if
        that record fails, the note is withdrawn (:meth:`awithdraw_pause`) before the
        failure is raised, as the pause is given back and never goes on in that run (a
        withdrawal that fails too leaves the note: the first failure is raised).
        """
        from miniagents.ext.dbos import DurableError, aname_run, anote_run

        await anote_run(self._agent, workflow_id, {f"{_PAUSE_NOTE}{index}": point.note()})
        if named:
            try:
                await aname_run(self._agent, self._prefix(owner) + point.run, workflow_id)
            except Exception:
                with contextlib.suppress(DurableError):
                    await self.awithdraw_pause(workflow_id, index)
                raise

    async def awithdraw_pause(self, workflow_id: str, index: int) -> None:
        """Withdraw the note of the pause ``index`` (:meth:`anote_pause`'s) of a pause given
        back, whose resume never went on: the note then holds no point, read as a lost one
        (see the module docstring), and the pause's next resume notes it again."""
        from miniagents.ext.dbos import anote_run

        await anote_run(self._agent, workflow_id, {f"{_PAUSE_NOTE}{index}": None})

    async def awithdraw_pause_logged(
        self, workflow_id: str, index: int, run: str, logger: logging.Logger
    ) -> None:
        """:meth:`awithdraw_pause`, for a resume that never went on after its note (refused,
        its job ended, or cut): a withdrawal the database does not take is logged
        (``logger``), not raised, so that the refusal is answered all the same; the note then
        stays, naming ``run``, until the pause's next resume notes it again."""
        from miniagents.ext.dbos import DurableError

        try:
            await self.awithdraw_pause(workflow_id, index)
        except DurableError as failure:
            logger.warning(
                "The note of the pause %d of the durable run %r could not be withdrawn "
                "(%s: %s): it names the run %r, which never went on; read after a restart, "
                "the durable run goes on in it, unless a resume of the pause notes it again.",
                index,
                workflow_id,
                type(failure).__name__,
                failure,
                run,
            )

    async def aapprovals_open(
        self, workflow_id: str, requests: Sequence[ToolApprovalRequest], logger: logging.Logger
    ) -> None:
        """Wait until the approvals of ``requests`` (calls the job's run ``workflow_id`` waits
        on) are in the database, so that a client told the run waits finds it waiting there
        (another server, ``apending_approvals``). Past ``APPROVALS_OPEN_SECONDS``, logged, and
        the wait ends: the pause is told all the same."""
        from miniagents.ext.dbos import APPROVALS_OPEN_SECONDS, aapprovals_open

        if not await aapprovals_open(workflow_id, requests):
            logger.warning(
                "The approvals of the durable run %r were not in its database %g s after its "
                "calls asked for them; the run's pause is told all the same (another server "
                "may not see it wait until they are).",
                workflow_id,
                APPROVALS_OPEN_SECONDS,
            )

    async def alogged_failure(self, workflow_id: str, error: Exception) -> str:
        """The reference the log has the run's failure ``error`` under, if noted with it.

        ``""`` if none is (or the database cannot say): a failure told for the first time,
        or another error than the one noted (a replay refused by newer code, say).
        """
        from miniagents.ext.dbos import DurableError, arun_notes

        try:  # (the notes alone: not the run's steps, each with its recorded result)
            notes = await arun_notes(self._agent, workflow_id)
        except DurableError:  # (told under a new reference, as if it were not noted)
            return ""
        note = notes.get(_FAILURE_NOTE) if notes is not None else None
        if not isinstance(note, dict) or note.get("error") != _fingerprint(error):
            return ""
        reference = note.get("reference")
        return reference if isinstance(reference, str) else ""

    async def anote_failure(
        self, workflow_id: str, error: Exception, reference: str, logger: logging.Logger
    ) -> None:
        """Note with the run that it failed with ``error``, logged under ``reference``.

        Read again (:meth:`alogged_failure`), its failure is told under that reference. A
        note the database does not take is logged (``logger``): the run's failure read
        again is then told under a new reference.
        """
        from miniagents.ext.dbos import DurableError, anote_run

        note = {"reference": reference, "error": _fingerprint(error)}
        try:
            await anote_run(self._agent, workflow_id, {_FAILURE_NOTE: note})
        except DurableError as failure:
            logger.warning(
                "The reference %s of the durable run %r's failure could not be noted with "
                "the run (%s: %s): read again, its failure will be told under a new reference.",
                reference,
                workflow_id,
                type(failure).__name__,
                failure,
            )

    @staticmethod
    def stopped_by_dbos(error: BaseException) -> bool:
        """Whether DBOS stopped the job's live run with ``error``, one of its own.

        DBOS stops a run cancelled underneath it (``DBOS.cancel_workflow``, an operator,
        another process), or no longer this process's, with an error that is no
        ``Exception`` (so that no code of the run catches it): nothing else would.
        """
        return not isinstance(error, Exception | asyncio.CancelledError) and (
            type(error).__module__.partition(".")[0] == "dbos"
        )

    async def astopped(
        self, workflow_id: str, error: BaseException, logger: logging.Logger
    ) -> Exception | None:
        """The error a live job ends with whose run ``workflow_id`` DBOS stopped (``error``).

        ``None`` if the run's record says it was cancelled: the job ends as a cancelled
        run's replay does (and as a job given up on), with the protocol's cancelled
        events. Another run ends with a sentence of the library's, which says what happened
        and what to do, then where the log has the error, as every error told by reference
        ends (:func:`~miniagents.ext.told_errors.told_reference`): DBOS's own error (an
        internal detail, not written for the client) is logged whole under the reference
        (``logger``, an ``ERROR`` with its traceback, as
        :func:`~miniagents.ext.told_errors.told_error` logs), for the operator.
        """
        from miniagents.ext.dbos import DurableError, afind_runs

        try:
            runs = await afind_runs(self._agent, workflow_id, which=workflow_id.__eq__)
        except DurableError:  # (its database cannot say: the run ends as stopped)
            runs = []
        if any(run.cancelled for run in runs):
            return None
        told = told_error(
            error,
            logger,
            f"The durable run {workflow_id!r}, stopped by DBOS before its end,",
            error_texts=False,
        )
        return DurableError(
            f"The durable run {workflow_id!r} was stopped by DBOS before its end, so its "
            "reply stops here: ask again in a new run (a new run id, or a new message of the "
            f"chat). {told_reference(told.reference)}"
        )

    @staticmethod
    def cancelled_there(
        error: Exception, found: FoundRun | None, reply: MessageSequencePromise | None
    ) -> bool:
        """Whether ``error`` ends the run as cancelled: the replay's of ``found`` where its
        record stops (it was cancelled), or any error of a live run cancelled meanwhile,
        whose ``reply`` ended with a ``DurableRunCancelledError`` (the streams its agent fed
        end after it: cancelled as it stops, their errors tell no more than that)."""
        from miniagents.ext.dbos import DurableError, DurableRunCancelledError

        if found is not None and found.cancelled and type(error) is DurableError:
            return True
        return reply is not None and isinstance(core_of(reply).error, DurableRunCancelledError)

    @asynccontextmanager
    async def recovering(
        self, context: Callable[[], MiniAgents], before_stop: Callable[[], Awaitable[None]]
    ) -> AsyncIterator[None]:
        """The app's life: DBOS launched in a context of the app's own, which ends with it.

        ``before_stop`` runs first at the end (the app's jobs are stopped; their durable
        runs, as the recovered ones, stay pending for the next start).
        """
        from miniagents.ext.dbos import arecover

        try:
            async with context():
                await arecover(self._agent)
                self._launched = True
                try:
                    yield
                finally:
                    self._launched = False
                await before_stop()
                raise _AppStopped
        except _AppStopped:
            pass

    async def aready(
        self, context: Callable[[], MiniAgents], before_stop: Callable[[], Awaitable[None]]
    ) -> None:
        """(For each request.) DBOS launched in the app's context, by the first if need be.

        A mounted app's first request launches it, as :meth:`recovering` does, in a task of
        the app's own (see the module docstring).

        Raises:
            DurableDatabaseError: if DBOS cannot be launched (the next request tries again).
        """
        if self._launched:
            return
        if self._keeper is None or self._ready is None:
            ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()

            async def own() -> None:
                async with self.recovering(context, before_stop):
                    ready.set_result(None)
                    await asyncio.get_running_loop().create_future()  # until the loop ends

            what = f"the durable runs of the mounted {self._protocol} app"
            self._keeper = contextvars.Context().run(spawn, own(), what)  # (no request's)
            self._ready = ready
        keeper, ready = self._keeper, self._ready
        await asyncio.wait({keeper, ready}, return_when=asyncio.FIRST_COMPLETED)
        if not ready.done():  # the launch failed: the next request tries again
            self._keeper = self._ready = None
            await keeper  # its error
