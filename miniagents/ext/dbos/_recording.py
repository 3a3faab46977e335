"""The calls of a durable run, each a step: recorded once complete, replayed on recovery.

Every call of a model and every tool call that runs inside a durable run is a DBOS step
named by where it is in the run (a key), not by when it started, so that concurrent tools
and nested agents find their own results again whatever the order they start in. A nested
agent's interaction is numbered where its caller inquires it (``InteractionNumbers``, the
agents' interaction preparer), so the calls of one agent started at once keep their keys
whatever the order they first call their model in::

    run:      AGENT.0/llm.0 | AGENT.0/tool.c1.0 | AGENT.0/tool.c1.0/HELPER.0/llm.0 | AGENT.0/llm.1
    first:    live, recorded  live, recorded      live, recorded                   (killed)
    recovery: replayed        replayed            replayed                         live, recorded

A replayed call streams its recorded events (the model's tokens, the tool's pieces) into
the reply as the live call did, so a reader of the reply sees the same stream. A call that
failed is a step that ended too: its events before the failure are recorded with its error
(a model call's translated into its ``LLMError``), and the replayed call streams the events
then raises the error, without running::

    live:     tokens "Par" "tial" | X LLMResponseError   -> recorded: (events, error)
    replay:   tokens "Par" "tial" | X LLMResponseError      (no request)

The caller gets a failure once its step is recorded, so code that handles it (asks another
agent) starts after the failure is in the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import logging
import pickle
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from miniagents.ext.dbos._database_errors import first_line
from miniagents.ext.dbos.errors import DurableFailedCallError
from miniagents.ext.llm.provider import LLMCall, LLMEvent, LLMProvider
from miniagents.ext.tools.approval import ToolApprovalRequest, ToolDecision
from miniagents.ext.tools.messages import ToolCallMessage
from miniagents.ext.tools.running import carry_error_reference
from miniagents.ext.tools.tool import Tool
from miniagents.miniagents import InteractionContext
from miniagents.miniagents.lowlevel import ObservedAgent

__all__ = [
    "DurableRun",
    "InteractionNumbers",
    "LLMRecorder",
    "StepFunction",
    "ToolRecorder",
    "current_run",
    "run_path",
]

_logger = logging.getLogger(__name__)

StepFunction = Callable[[str], Awaitable[object]]

current_run: contextvars.ContextVar[DurableRun | None] = contextvars.ContextVar(
    "miniagents_durable_run", default=None
)
"""The durable run the current task works for (``None``: not a durable run)."""

run_path: contextvars.ContextVar[str] = contextvars.ContextVar(
    "miniagents_durable_path", default=""
)
"""Where the current task is in its run: the key of its interaction or tool call."""

_inquired_path: contextvars.ContextVar[tuple[DurableRun, str] | None] = contextvars.ContextVar(
    "miniagents_durable_inquired", default=None
)
"""The key an interaction was given where it was inquired (set in its own context), and its run."""

_END = object()

ItemT = TypeVar("ItemT")


@dataclass
class DurableRun:
    """One run of a durable interaction in this process: its recorded steps and new ones.

    Args:
        workflow_id: The DBOS workflow the run is.
        step_context: A context whose DBOS variable is the workflow's: steps run in it.
        step: The DBOS step function (it runs the body given for its key).
        recorded: The results of the steps recorded before (by key).
        approvals: What waits for the decision on a call (by its key): given to its
            request here or sent from another process (``None``: the request's only).
    """

    workflow_id: str
    step_context: contextvars.Context
    step: StepFunction
    recorded: dict[str, object]
    approvals: Callable[[str, ToolApprovalRequest], Awaitable[ToolDecision]] | None = None
    bodies: dict[str, Callable[[], Awaitable[object]]] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)

    def next_key(self, name: str) -> str:
        """``{name}.{n}``: ``n``, how many times ``name`` was counted before (then once more)."""
        index = self.counts.get(name, 0)
        self.counts[name] = index + 1
        return f"{name}.{index}"

    def start_step(self, key: str, body: Callable[[], Awaitable[object]]) -> asyncio.Task[object]:
        """Run ``body`` as the step ``key`` of the workflow, in a task; its result is recorded.

        The task runs in the current task's context (the agents' context variables, the
        run's path), with the DBOS variable of the workflow's.
        """
        self.bodies[key] = body
        context = contextvars.copy_context()
        for variable, value in self.step_context.items():
            if type(value).__name__ == "DBOSContext":  # DBOS's: the workflow's, for its steps
                context.run(variable.set, value)
        name = f"miniagents:durable step {key}"
        return context.run(asyncio.create_task, _stepped(self.step, key), name=name)

    def take_body(self, key: str) -> Callable[[], Awaitable[object]] | None:
        """The body of the step ``key`` (once); ``None`` for a step only replayed."""
        return self.bodies.pop(key, None)


async def _stepped(step: StepFunction, key: str) -> object:
    """Run the step ``key``: its awaitable is made here, in the task, once the task runs (a
    task cancelled before it starts leaves no awaitable never awaited)."""
    return await step(key)


async def _streamed(
    run: DurableRun,
    key: str,
    start: Callable[[], AsyncIterator[ItemT]],
    record: Callable[[tuple[ItemT, ...], Exception | None], object],
    recordable: Callable[[Exception], Exception],
    *,
    not_recorded: object = _END,
) -> AsyncGenerator[ItemT, None]:
    """The items of ``start()``'s stream, live, as it runs as the step ``key``.

    The step records ``record(items, error)``: the items (those equal to ``not_recorded``
    aside, signs of life) and the error the stream ended with, made ``recordable``. That
    error is raised after the last item, once the step (and so its failure) is recorded.
    """
    queue: asyncio.Queue[object] = asyncio.Queue()

    async def body() -> object:
        items: list[ItemT] = []
        stream = start()
        error: Exception | None = None
        try:
            async for item in stream:
                if item != not_recorded:
                    items.append(item)
                queue.put_nowait(item)
        except Exception as failure:  # the call's outcome: recorded, so it is not made again
            error = recordable(failure)
            queue.put_nowait(_Failed(error))
        finally:
            try:
                close = getattr(stream, "aclose", None)
                if close is not None:
                    await close()
            finally:
                queue.put_nowait(_END)
        return record(tuple(items), error)

    task = run.start_step(key, body)
    task.add_done_callback(lambda _: queue.put_nowait(_END))  # a step that ran no body ends too
    failed: Exception | None = None
    awaited = False
    try:
        while (item := await queue.get()) is not _END:
            if isinstance(item, _Failed):
                failed = item.error
            else:
                yield item  # type: ignore[misc]  # (the queue holds the stream's items)
        awaited = True
        await task  # its error, if it failed
    finally:
        if not awaited:  # (its reader left: nobody awaits the step, whatever its end)
            task.cancel()
            task.add_done_callback(functools.partial(_left_behind, run.workflow_id, key))
    if failed is not None:
        raise failed


def _left_behind(workflow_id: str, key: str, task: asyncio.Task[object]) -> None:
    """Tell the failure of the step ``key`` whose reader left before its end (nobody reads it).

    (Else asyncio logs it as "never retrieved".) A step's task fails only where DBOS could
    not record it (the call's own error is part of its record): that record is lost, so it
    is told at ``WARNING``, in one line that names the run and the step. DBOS's stop of a
    cancelled run (no ``Exception``) loses nothing the run wants: it is told at ``DEBUG``.
    """
    if task.cancelled() or (error := task.exception()) is None:
        return
    if not isinstance(error, Exception):
        _logger.debug("The step %s failed after its reader left.", task.get_name(), exc_info=error)
        return
    _logger.warning(
        "The step %s of the durable run %r was not recorded: it failed after its reader left "
        "(%s: %s). If the run is recovered, its call is made again.",
        key,
        workflow_id,
        type(error).__name__,
        first_line(error),
    )


# -- the calls of the model -------------------------------------------------------------------


class LLMRecorder:
    """Each call of a model in a durable run is a step: its events recorded, then replayed."""

    def llm_call(
        self,
        ctx: InteractionContext,
        provider: LLMProvider[Any, Any],
        call: LLMCall,
        start: Callable[[], AsyncIterator[LLMEvent]],
    ) -> AsyncIterator[LLMEvent] | None:
        """The events of the call: recorded ones if the run has them, else live and recorded.

        A call made outside any durable run is declined (``None``): it runs as in a process
        without a recorder, so registering DBOS costs nothing to the other agents.
        """
        run = current_run.get()
        if run is None:
            return None
        inquired = _inquired_path.get()  # the interaction's key, set in its own context
        if inquired is not None and inquired[0] is run:
            path = inquired[1]
        else:  # (inquired outside this run: numbered now, under its caller's path, once)
            path = _numbered(run, run_path.get(), ctx.this_agent.alias)
            _inquired_path.set((run, path))  # in the agent's task: its next calls find it
            run_path.set(path)  # its tools are under it
        return _llm_events(run, run.next_key(f"{path}/llm"), provider, start)


class InteractionNumbers:
    """Each interaction inquired in a durable run is numbered there, in its caller's order.

    The calls of one agent started at once (``asyncio.gather``, a fan-out) keep the keys
    they were given when inquired, whatever the order they first call their model in::

        parent:    inquire(HELPER, "a") -> PARENT.0/HELPER.0   inquire(HELPER, "b") -> .../HELPER.1
        recorded:  HELPER.0's model call first, then HELPER.1's
        recovery:  HELPER.1's first: it still replays its own record (HELPER.1/llm.0)
    """

    def interaction_inquired(self, agent: ObservedAgent) -> Callable[[], object] | None:
        """The key of the interaction, set in its context (``None``: not in a durable run).

        It is the path of everything the interaction starts too (the agents it inquires,
        its model and tool calls), whether its agent calls a model or not.
        """
        run = current_run.get()
        if run is None:
            return None
        return functools.partial(_entered, run, _numbered(run, run_path.get(), agent.alias))


def _entered(run: DurableRun, path: str) -> None:
    """(In an interaction's context, before its task starts.) Its key is ``path``."""
    _inquired_path.set((run, path))
    run_path.set(path)


def _numbered(run: DurableRun, parent: str, alias: str) -> str:
    """The key of the next interaction of ``alias`` under ``parent``: ``{parent}/{alias}.{n}``."""
    return run.next_key(f"{parent}/{alias}")


async def _llm_events(
    run: DurableRun,
    key: str,
    provider: LLMProvider[Any, Any],
    start: Callable[[], AsyncIterator[LLMEvent]],
) -> AsyncIterator[LLMEvent]:
    recorded = run.recorded.get(key)
    if isinstance(recorded, list):  # a call that ended (as recorded before failures were)
        recorded = _LLMRecord(tuple(recorded), None)
    if isinstance(recorded, _LLMRecord):
        for event in recorded.events:
            yield event
        if recorded.error is not None:
            raise recorded.error  # the call failed: it fails again, the model is not called
        return

    def recordable(failure: Exception) -> Exception:
        return _recordable_call_error(provider.translate(failure), failure)

    streamed = _streamed(run, key, start, _LLMRecord, recordable, not_recorded="")
    async with contextlib.aclosing(streamed):  # (its step cancelled here if its reader left)
        async for event in streamed:
            yield event  # (a failure: raised once it is recorded)


@dataclass(frozen=True)
class _LLMRecord:
    """What a model call streamed, and the error it ended with (``None``: it ended well)."""

    events: tuple[LLMEvent, ...]
    error: Exception | None


# -- the tool calls ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _ToolRecord:
    """What a tool call replied, and the error it ended with (the model gets its text)."""

    pieces: tuple[str, ...]
    error: BaseException | None


class ToolRecorder:
    """Each tool call in a durable run is a step: its pieces recorded, then replayed."""

    def tool_call(
        self, tool: Tool, call: ToolCallMessage, start: Callable[[], AsyncIterator[str]]
    ) -> AsyncIterator[str]:
        """The pieces of the call: recorded ones if the run has them, else live and recorded."""
        run = current_run.get()
        if run is None:
            return start()
        key = run.next_key(f"{run_path.get()}/tool.{call.call_id}")
        run_path.set(key)  # in the call's task: the agents the tool asks are under it
        return _tool_pieces(run, key, start)

    def decision(
        self, tool: Tool, call: ToolCallMessage, request: ToolApprovalRequest
    ) -> Awaitable[ToolDecision]:
        """The person's decision, recorded once made; on recovery, the recorded one."""
        run = current_run.get()
        if run is None:
            return request.adecision()
        return _decided(run, run.next_key(f"{run_path.get()}/approval.{call.call_id}"), request)


async def _tool_pieces(
    run: DurableRun, key: str, start: Callable[[], AsyncIterator[str]]
) -> AsyncIterator[str]:
    recorded = run.recorded.get(key)
    if isinstance(recorded, _ToolRecord):
        for piece in recorded.pieces:
            yield piece
        if recorded.error is not None:
            raise recorded.error
        return

    streamed = _streamed(run, key, start, _ToolRecord, _recordable)
    async with contextlib.aclosing(streamed):  # (its step cancelled here if its reader left)
        async for piece in streamed:
            yield piece  # (a failure: raised once it is recorded)


async def _decided(run: DurableRun, key: str, request: ToolApprovalRequest) -> ToolDecision:
    recorded = run.recorded.get(key)
    if isinstance(recorded, ToolDecision):
        if request.pending:  # asked again by the replayed call: decided as it was (who, when)
            request.decide(recorded)
        return recorded
    approvals = run.approvals
    wait = request.adecision if approvals is None else functools.partial(approvals, key, request)
    step = run.start_step(key, wait)  # waits, maybe across restarts
    try:
        result = await step
    finally:
        if not step.done():
            step.cancel()
    if not isinstance(result, tuple) or not isinstance(result[1], ToolDecision):
        return await request.adecision()  # not recorded (the step was only replayed)
    return result[1]


@dataclass(frozen=True)
class _Failed:
    error: Exception


def _recordable_call_error(error: BaseException, failure: Exception) -> Exception:
    """The error a model call failed with (translated), or a ``DurableFailedCallError`` for it.

    The error itself if it can be recorded (pickled and read back), so that the replayed
    call raises an error of the same class, with the same message and fields.
    """
    if isinstance(error, Exception) and _round_trips(error):
        return error
    kind = type(error)
    name = f"{kind.__module__}.{kind.__qualname__}"
    substitute = DurableFailedCallError(
        f"A model call of a durable run failed with {name}: {error}. That error cannot be "
        "recorded (pickled) as itself, so this one stands for it, now and when the run is "
        "recovered; catch DurableFailedCallError (or DurableError) to handle it.",
        name,
        str(error),
    )
    substitute.__cause__ = failure if error is failure else error
    return substitute


def _recordable(error: Exception) -> Exception:
    """``error``, or a ``DurableFailedCallError`` naming it, if it cannot be pickled.

    Not a ``ToolCallError``: a web app passes such a text to its client as written, and this
    text is the exception's (a path, a query, a key), for the model alone. It is told as
    ``error`` would be (``carry_error_reference``): under its reference, or, for an error
    told as written (a ``ToolError``'s sentence), as written, as a run that is not durable
    tells it.
    """
    if _round_trips(error):
        return error
    kind = type(error)
    name = f"{kind.__module__}.{kind.__qualname__}"
    substitute = DurableFailedCallError(f"{name}: {error}", name, str(error))
    carry_error_reference(substitute, error)  # (a read of the run again tells the same)
    return substitute


def _round_trips(error: Exception) -> bool:
    """Whether ``error`` can be recorded as itself: pickled, and read back."""
    try:
        pickle.loads(pickle.dumps(error))
    except Exception:
        return False
    return True
