"""``ray_agent``: the same agent, each interaction of it run in a Ray worker.

The driver keeps a local agent with the same alias, parameters and types; each of its
interactions starts a Ray task (a streaming generator) that runs the original agent in its
own ``MiniAgents`` context on a worker. The input messages follow the task as they resolve
(through the mailbox, :mod:`miniagents.ext.ray._mailbox`), and the replies come back
message by message and token by token while the worker produces them (the wire protocol
is :mod:`miniagents.ext.ray._wire`)::

    driver:   inquire --> [task starts] .. input m1 .. m2 .. end
    worker:                  agent runs, replies "Hel" "lo" ...
    driver:   replies  --------------------- "Hel" --- "lo" --- | (same types, same errors)

When tracing is on (:mod:`miniagents.ext.otel`), the call carries the caller's trace context,
and the worker's spans continue that trace (if the worker process is instrumented too).
When a budget of :mod:`miniagents.ext.llm` applies (or travels in the arguments), the call
carries *live links* (:func:`miniagents.miniagents.lowlevel.outgoing_links`): their messages
ride with the reply events to the driver and come back through the mailbox, so that the
worker's LLM calls are admitted, charged and stopped by the driver's budgets (see
:mod:`miniagents.ext.llm.usage`); without one, nothing more crosses.

What travels is bounded on both sides: the worker holds at most ``OUTBOX_EVENTS`` reply
events for the driver (then it reads no further into its agent's replies), Ray carries at most
``REPLY_BATCHES_IN_FLIGHT`` batches ahead of the driver's reading, and a mailbox box
``BOX_EVENTS`` input messages (then the driver's sending waits). What has arrived lives in
the driver's reply streams, as the replies of a local agent do.
"""

from __future__ import annotations

import asyncio
import copy
import functools
import sys
import uuid
from collections.abc import Awaitable, Iterator, Mapping, Sequence
from typing import Any, TypedDict, TypeVar

from typing_extensions import Unpack

from miniagents.arguments import check_count, check_seconds
from miniagents.ext.ray import _wire
from miniagents.ext.ray._cancel import InThread, cancel_running, log_late_failure
from miniagents.ext.ray._failures import (
    mailbox_died_error,
    ray_failure,
    worker_died,
    worker_died_error,
)
from miniagents.ext.ray._import import require_ray
from miniagents.ext.ray._mailbox import (
    forget_mailbox,
    known_inputs,
    mailbox_actor,
    mailbox_died,
    send_inputs,
)
from miniagents.ext.ray._worker import close_links, serve_interaction
from miniagents.ext.ray._worker_loop import CANCEL_TIMEOUT as _WORKER_CANCEL_TIMEOUT
from miniagents.ext.ray._worker_loop import in_worker_loop
from miniagents.ext.ray.errors import (
    MessageSerializationError,
    RayAgentArgumentError,
    RayAgentError,
    RayCancelTimeoutError,
    RayWorkerDiedError,
)
from miniagents.messages import MessageSequencePromise
from miniagents.messages.appender import MessageTokenAppender
from miniagents.miniagents import InteractionContext, MiniAgent
from miniagents.miniagents.lowlevel import (
    CallerEnd,
    add_link_opener,
    context_settings,
    outgoing_carrier,
    outgoing_links,
    sending,
    start_task,
)
from miniagents.promising.lowlevel import core_of, logger

__all__ = [
    "CANCEL_TIMEOUT",
    "REPLY_BATCHES_IN_FLIGHT",
    "SCHEDULING_WARNING",
    "RayOptions",
    "function_hint",
    "own_options",
    "ray_agent",
]

AgentT = TypeVar("AgentT", bound="MiniAgent[...]")

REPLY_BATCHES_IN_FLIGHT = 8
"""How many batches of reply events a worker sends ahead of the driver's reading (Ray's
``_generator_backpressure_num_objects``)."""

CANCEL_TIMEOUT = _WORKER_CANCEL_TIMEOUT
"""The default ``cancel_timeout`` of :func:`ray_agent`, in seconds (10)."""

SCHEDULING_WARNING = 30.0
"""Seconds after which a ray agent called by an agent on a Ray worker (a nested call) whose
task has not started logs a warning: the interactions waiting for it may hold the CPUs it
needs (see :func:`ray_agent`)."""


def _budget_link(sent: Sequence[object]) -> CallerEnd | None:
    """The link to the budgets of :mod:`miniagents.ext.llm` an interaction run here needs.

    None can apply, nor travel, until that module is loaded (it makes every ``Budget``):
    until then a ray agent does not import the LLM agents for them.
    """
    if "miniagents.ext.llm.usage" not in sys.modules:
        return None
    from miniagents.ext.ray._budgets import open_link

    return open_link(sent)


add_link_opener(_budget_link)


class RayOptions(TypedDict, total=False):
    """Ray's options for the task that runs each interaction (see ``ray.remote``)."""

    num_cpus: float
    """CPUs reserved per interaction (Ray's default: 1; an LLM agent mostly waits: 0.1)."""
    num_gpus: float
    memory: float
    resources: dict[str, float] | dict[str, int]
    """Custom resources reserved per interaction; a ``dict``, as Ray takes (a union: a
    ``dict`` is invariant, so a ``dict[str, int]`` is no ``dict[str, float]``)."""
    accelerator_type: str
    runtime_env: dict[str, Any]
    """The interaction's runtime environment: a ``dict``, as Ray takes (``Any`` values,
    as in Ray's own types: ``{"pip": [...]}``, ``{"env_vars": {...}}``, ...)."""
    scheduling_strategy: object
    max_retries: int
    """How often an interaction whose worker died is started again, on another worker, as
    long as none of its replies has reached the driver yet (default: 3). The death of the
    mailbox actor that carries its input messages counts as one too (a new mailbox is made):
    either way, the agent runs again from the start."""
    name: str
    """The task's name in Ray's logs and dashboard (default: ``miniagents:<alias>``)."""
    cancel_timeout: float
    """Seconds that stopping an interaction ended early may take, in all (default:
    ``CANCEL_TIMEOUT``, 10 s): see :func:`ray_agent`."""


def ray_agent(agent: AgentT, /, **options: Unpack[RayOptions]) -> AgentT:
    """The same agent, with each interaction run in a Ray worker.

    The result is an agent of the same type, with the same alias, description, bound
    arguments and parameter types.
    Each interaction runs the original agent in its own ``MiniAgents`` context on a
    worker: its input messages are sent as they resolve, its replies stream back message
    by message and token by token, an error it raises reaches every consumer with its own
    type and message, and when every consumer of the replies gives up, the Ray task is
    cancelled (the agent gets ``asyncio.CancelledError`` in the worker). Messages,
    arguments and errors travel pickled: a value that cannot be pickled raises a
    :class:`MessageSerializationError` naming its field.

    Stopping an interaction that ends early (its consumers gave up, or its agent failed)
    is bounded: the driver's steps (Ray's cancel of the task, the end of the input sender,
    the close of the mailbox box, the drop of the task's reply stream) take at most
    ``cancel_timeout`` seconds in all (10 by default), and the worker waits as long for
    the cancelled agent to end. A step that hangs becomes a
    :class:`~miniagents.ext.ray.errors.RayCancelTimeoutError` (a ``TimeoutError``) naming
    it: the interaction ends with it (logged, when its replies had ended already), and the
    worker's task fails with it; the step itself may still end later in the background.

    A ray agent called by an agent on a Ray worker (a nested call) waits for a worker as
    any task does, and the calling interaction keeps the resources it reserved meanwhile:
    if the callers hold all the CPUs, the nested calls never start. Give the calling
    agent ``num_cpus=0`` (or a custom resource that bounds how many of its interactions
    run at once). A nested call not started after ``SCHEDULING_WARNING`` seconds (30)
    logs a warning.

    Example:
        >>> remote_echo = ray_agent(echo, num_cpus=0.5)
        >>> # `await remote_echo.inquire("Hi")` runs echo in a Ray worker.

    Args:
        agent: The agent to run remotely (the workers must be able to import its code).
        **options: Ray's task options (:class:`RayOptions`).

    Raises:
        MissingExtraError: if Ray is not installed (with the install hint; an ``ImportError``).
        RayAgentArgumentError: if ``agent`` is not an agent, or ``max_retries`` or
            ``cancel_timeout`` is of a type or value it cannot use (a ``ValueError``).
        MessageSerializationError: if ``agent`` cannot be pickled to reach the workers
            (e.g. a durable agent of ``miniagents.ext.dbos``).
        ValueError: Ray's own error, for an option Ray does not know.
        TypeError: Ray's own error, for an option of the wrong type.
    """
    require_ray()
    given: object = agent  # (typed so; code mypy does not check may pass anything)
    if not isinstance(given, MiniAgent):
        raise RayAgentArgumentError(
            "ray_agent() needs an agent (made with @miniagent, or from one with fork() or "
            f"ray_agent()) to run on Ray; got {given!r}.{function_hint(given)}"
        )
    runner = _Runner(agent, dict(options))

    # (its name, docstring and __wrapped__, so inspect.signature() gives the agent's
    # parameters; not the agent function's own attributes, its __dict__)
    @functools.wraps(agent.func, updated=())
    async def remote_interaction(ctx: InteractionContext, /, *args: Any, **kwargs: Any) -> None:
        await runner.run(ctx, args, kwargs)

    remote = copy.copy(agent)  # the same class, alias, description and bound arguments
    remote.func = remote_interaction
    return remote


def function_hint(given: object) -> str:
    """A sentence for a function given (or in a list given) where an agent was needed."""
    candidates = given if isinstance(given, (list, tuple)) else [given]
    if any(callable(one) and not isinstance(one, MiniAgent) for one in candidates):
        return " Decorate an agent function with @miniagent to make an agent of it."
    return ""


def own_options(options: dict[str, Any], caller: str) -> tuple[int, float]:
    """Take the options that are ours, not Ray's, out of ``options``: checked, with defaults.

    Returns:
        ``max_retries`` (3 by default) and ``cancel_timeout`` (``CANCEL_TIMEOUT``).

    Raises:
        RayAgentArgumentError: naming the option (``caller`` names the function).
    """
    owner, error = f"{caller}()", RayAgentArgumentError
    fix = "It is how many more times to run what a worker that died was running (0: none)."
    retries = check_count(
        options.pop("max_retries", 3), "max_retries", least=0, owner=owner, fix=fix, error=error
    )
    fix = "It is how long stopping what was cancelled may take."
    timeout = check_seconds(
        options.pop("cancel_timeout", CANCEL_TIMEOUT),
        "cancel_timeout",
        owner=owner,
        fix=fix,
        error=error,
    )
    return retries, timeout


class _Runner:
    """Runs the interactions of one ``ray_agent`` (it makes the Ray remote function once)."""

    def __init__(self, agent: MiniAgent[...], options: dict[str, Any]) -> None:
        import ray

        _wire.check_sendable_agent(agent.alias, agent)
        self.agent = agent
        self.retries, self.cancel_timeout = own_options(options, "ray_agent")
        self.options = options
        options.setdefault("name", f"miniagents:{agent.alias}")

        def interaction(call: _wire.Call) -> Iterator[list[_wire.ReplyEvent]]:
            yield from serve_interaction(agent, call)

        remote: Any = ray.remote  # Ray's overloads type no option given as **options
        self.remote: Any = remote(
            max_retries=0,  # retried here, only while nothing has reached the driver
            _generator_backpressure_num_objects=REPLY_BATCHES_IN_FLIGHT,
            **options,
        )(interaction)

    def __reduce__(self) -> tuple[type[_Runner], tuple[MiniAgent[...], dict[str, Any]]]:
        options = {**self.options, "max_retries": self.retries}
        return (_Runner, (self.agent, {**options, "cancel_timeout": self.cancel_timeout}))

    async def run(
        self, ctx: InteractionContext, args: tuple[Any, ...], kwargs: Mapping[str, Any]
    ) -> None:
        alias = self.agent.alias
        with sending() as sent:  # e.g. a budget in the arguments: it needs a live link
            arguments = _wire.dumps_arguments(args, kwargs, alias)
        settings = _wire.dumps_settings(context_settings())
        carrier = tuple(outgoing_carrier().items())  # the trace goes on in the worker
        attempt = 0
        while True:
            interaction = _Attempt(self, ctx)
            try:
                await interaction.run(arguments, settings, carrier, sent)
                return
            except _WorkerDied as died:
                # A dead worker or a dead mailbox (a new one is made) costs one retry of the
                # same budget: either way the agent runs again from the start.
                attempt += 1
                retry = died.may_retry and attempt <= self.retries
                # a retry sends the input again from its first message: is it still kept?
                released = core_of(ctx.message_promises).released() if retry else 0
                if retry and not released:
                    continue
                raise self._gave_up(died, attempt, released) from died.cause

    def _gave_up(self, died: _WorkerDied, attempt: int, released: int) -> RayWorkerDiedError:
        """The error of an interaction not run again after ``died`` (``attempt`` tries).

        ``released``: how many input messages its input had released (its replay window
        passed), which a retry could not send again.
        """
        what = f"the agent {self.agent.alias}"
        fix = None
        if released:
            note = (
                "it was not run again: its input had passed its replay window, which released "
                f"its first {released} message(s), so they could not be sent to a worker again"
            )
            fix = (
                "To keep the input for a retry, run the call in MiniAgents(replay_window=None) "
                "(or a replay_window larger than the input), which holds it in memory until "
                "the interaction ends; ray_agent(..., max_retries=0) retries nothing."
            )
        elif not died.may_retry:
            note = "it was not run again, as some of its replies had reached the caller"
        else:
            note = f"it was tried {attempt} time(s)"
        if died.mailbox:
            return mailbox_died_error(what, died.cause, note, "ray_agent", fix)
        return worker_died_error(what, died.cause, note, "ray_agent", fix)


class _WorkerDied(Exception):
    """The worker of an attempt died, or the mailbox actor feeding it (``mailbox``)."""

    def __init__(self, cause: BaseException, may_retry: bool, mailbox: bool = False) -> None:
        super().__init__(cause)
        self.cause = cause
        self.may_retry = may_retry
        self.mailbox = mailbox


class _Attempt:
    """One try at running an interaction remotely: the call, the inputs sent, the replies."""

    def __init__(self, runner: _Runner, ctx: InteractionContext) -> None:
        self.runner = runner
        self.ctx = ctx
        self.alias = runner.agent.alias
        self.stopped = f"the Ray task of the agent {self.alias}"
        """What a stop stops (named by the log of a step that fails late)."""
        self.key = uuid.uuid4().hex
        self.delivered = False
        self.appenders: dict[int, MessageTokenAppender] = {}
        self.failures: dict[int, BaseException] = {}
        """The errors of the reply messages that failed, by index (see :meth:`_error`)."""
        self.input_error: BaseException | None = None
        self.mailbox_error: BaseException | None = None
        """Ray's error saying that the mailbox actor died (found when closing its boxes)."""
        self.generator: Any = None
        self.cancelling: asyncio.Future[None] | None = None
        """Ray's cancel of the task, once asked for (see :meth:`_cancel`)."""
        self.reading = False
        """Whether :meth:`_replies` is reading the task's replies."""
        self.cut = False
        """Whether the replies' reading was cancelled as a sender's cancel failed."""
        self.links: list[CallerEnd] = []
        task = asyncio.current_task()
        assert task is not None  # an interaction runs in its agent's task
        self.task = task

    async def run(
        self,
        arguments: bytes,
        settings: bytes,
        carrier: tuple[tuple[str, str], ...],
        sent: Sequence[object],
    ) -> None:
        inputs = self.ctx.message_promises
        events, ended = await known_inputs(inputs, self.alias)
        links = self.links = outgoing_links(sent)  # e.g. budgets: they charge the worker's calls
        mailbox = None if ended and not links else mailbox_actor()
        timeout = self.runner.cancel_timeout
        far_ends = None
        if links:
            far_ends = _wire.dumps([link.away() for link in links], "the live links of the caller")
        nested = in_worker_loop()  # an agent on a worker calls this one: it watches the start
        self.generator = self.runner.remote.remote(
            _wire.Call(
                arguments, events, mailbox, self.key, settings, carrier, timeout, far_ends, nested
            )
        )
        sender = None
        if mailbox is not None and not ended:
            sender = start_task(self._send(mailbox, inputs, len(events)), f"{self.alias} inputs")
        link_sender = None
        if links:
            wake = asyncio.Event()
            for link in links:
                link.open(wake.set)
            link_sender = start_task(self._send_links(mailbox, wake), f"{self.alias} links")
        finished = False
        broken: BaseException | None = None  # the replies' transport failed: the links broke too
        try:
            try:
                failure = await self._replies(watch_start=nested)
                finished = True
            except asyncio.CancelledError:
                if not self.cut or self.task.uncancel() > 0:  # (else cancelled by us alone)
                    raise
                failure = self.input_error  # the stop raises why: Ray's cancel failed
            except Exception as error:  # (a worker that died: Ray's error says how)
                broken = error.cause if isinstance(error, _WorkerDied) else error
                raise
            finally:
                try:
                    await self._stop(not finished, sender, link_sender, mailbox)
                finally:
                    try:  # the calls the worker left open end, and what their close stopped
                        await close_links(links, broken)
                    finally:
                        self._end_open_messages()
        except Exception as error:
            failure = error
        if failure is not None:
            if self.mailbox_error is not None:  # the inputs were lost with it: this is why
                raise _WorkerDied(self.mailbox_error, not self.delivered, mailbox=True)
            raise failure

    async def _replies(self, watch_start: bool) -> BaseException | None:
        """Pass the reply events on as they come; the agent's error, if it failed.

        With ``watch_start`` (the task announces its start), a task not started within
        ``SCHEDULING_WARNING`` seconds is logged.

        Raises:
            BaseException: the error that stopped the input's sender, or what
                :meth:`_failure` makes of Ray's error.
        """
        import ray

        watch = None
        if watch_start:
            watch = asyncio.get_running_loop().call_later(SCHEDULING_WARNING, self._unscheduled)
        self.reading = True
        try:
            async for ref in self.generator:
                if watch is not None:  # the task has started (its first batch is empty)
                    watch.cancel()
                failure = self._apply(await ref)
                if failure is not None:
                    return failure  # the agent failed: its task ends
            if self.input_error is not None:  # stopped by the sender: it may end as if done
                raise self.input_error
        except ray.exceptions.RayError as error:
            raise self._failure(error)  # noqa: B904 - Ray's error is its context
        finally:
            self.reading = False
            if watch is not None:
                watch.cancel()
        return None

    def _unscheduled(self) -> None:
        logger.warning(
            "The remote interaction of the agent %s, called by an agent on a Ray worker, has "
            "not started after %s s: its Ray task waits for resources. If the interactions "
            "waiting for it hold all the CPUs it could get (nested ray agents), it never "
            "will, as a waiting interaction keeps what it reserved. Give the calling agent "
            "num_cpus=0 in ray_agent(...) (or ray_pipeline(...)), or a custom resource that "
            "bounds how many of its interactions run at once; see 'Nested ray agents' in the "
            "docs on Ray.",
            self.alias,
            SCHEDULING_WARNING,
        )

    async def _stop(
        self,
        cancel: bool,
        sender: asyncio.Task[None] | None,
        link_sender: asyncio.Task[None] | None,
        mailbox: Any,
    ) -> None:
        """Stop what is left of this attempt, within ``cancel_timeout`` seconds in all.

        In order: Ray's cancel of the task (unless it finished), the end of the input
        sender, the close of the mailbox box, the same for the live links' sender and box,
        the drop of the task's reply stream. Cut short (its task cancelled again, as by a
        second Ctrl-C, or a step that timed out), it still lets go of what the steps left
        would have, without waiting for the cluster (see :meth:`_let_go`).

        Raises:
            RayCancelTimeoutError: naming the step that did not end in time.
            RayAgentError: if Ray's cancel of the task failed (see :meth:`_cancel_ended`).
        """
        import ray

        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.runner.cancel_timeout
        if cancel:
            self._cancel()
        boxes: list[tuple[asyncio.Task[None], str, str]] = []
        if mailbox is not None:
            boxes = [
                (task, key, what)
                for task, key, what in (
                    (sender, self.key, "input"),
                    (link_sender, self.key + _wire.LINKS_BOX, "link"),
                )
                if task is not None
            ]
        try:
            if self.cancelling is not None:  # (or a sender asked for it)
                await self._cancel_ended(deadline)
            while boxes:
                task, key, what = boxes[0]
                task.cancel()
                await self._bounded(asyncio.wait([task]), f"the end of the {what} sender", deadline)
                try:
                    close = mailbox.close.remote(key)
                    await self._bounded(close, f"the close of the mailbox's {what} box", deadline)
                except ray.exceptions.RayError as error:  # a dead mailbox is closed
                    if mailbox_died(error):
                        forget_mailbox(mailbox)
                        self.mailbox_error = error
                del boxes[0]
            if self.cancelling is not None:  # a sender asked for it while it was stopped
                await self._cancel_ended(deadline)
            generator, self.generator = [self.generator], None  # only `generator` holds it now
            # Ray's generator drop (its finalizer tells Ray) happens in a thread: it may block.
            dropping = InThread(self.stopped, generator.clear).future()
            await self._bounded(dropping, "the drop of the reply stream", deadline)
        except BaseException:
            self._let_go(mailbox, boxes)
            raise

    async def _cancel_ended(self, deadline: float) -> None:
        """Wait for Ray's cancel of the task (asked for), by ``deadline``.

        Raises:
            RayCancelTimeoutError: if it did not end in time.
            RayAgentError: if Ray failed to cancel (e.g. it was shut down meanwhile); if the
                task was to stop as its input could not be sent, it says that error too.
        """
        assert self.cancelling is not None
        try:
            await self._bounded(self.cancelling, "Ray's cancel", deadline)
        except RayCancelTimeoutError:
            raise
        except Exception as error:  # Ray's own: its cancel runs nothing else
            what = f"the agent {self.alias} (cancelling its Ray task)"
            # (and the input's error, if it was why: the caller's to fix)
            raise ray_failure(error, what, self.input_error)  # noqa: B904 - Ray's is its cause

    def _let_go(self, mailbox: Any, boxes: Sequence[tuple[asyncio.Task[None], str, str]]) -> None:
        """Let go of what a stop cut short left, without waiting for anything.

        The senders of ``boxes`` are cancelled and their mailbox boxes closed (Ray runs the
        close; nobody waits for it), and the task's reply stream is dropped in a thread, so
        that a driver that lives on (a notebook) keeps none of them. Ray's cancel of the
        task, if it fails later, is logged (see :class:`~miniagents.ext.ray._cancel.InThread`).
        """
        import ray

        for task, key, _what in boxes:
            task.cancel()
            try:
                mailbox.close.remote(key)
            except ray.exceptions.RayError as error:  # (Ray itself has stopped)
                logger.warning(
                    "The mailbox box of a remote interaction of the agent %s could not be "
                    "closed (%r). Check the Ray cluster (`ray status`).",
                    self.alias,
                    error,
                )
        if self.generator is not None:
            generator, self.generator = [self.generator], None
            InThread(self.stopped, generator.clear)  # (it cannot fail: nobody waits for it)
        if self.cancelling is not None and not self.cancelling.done():  # (asked, not awaited)
            self.cancelling.add_done_callback(self._log_if_failed)

    def _log_if_failed(self, step: asyncio.Future[None]) -> None:
        """Retrieve the outcome of a step of the stop nobody awaits: log it if it failed."""
        if not step.cancelled() and (error := step.exception()) is not None:
            log_late_failure(error, self.stopped)

    async def _bounded(self, step: Awaitable[Any], what: str, deadline: float) -> None:
        timeout = max(0.0, deadline - asyncio.get_running_loop().time())
        try:
            await asyncio.wait_for(step, timeout)
        except TimeoutError:  # (asyncio.TimeoutError is TimeoutError)
            raise RayCancelTimeoutError(
                f"Stopping the remote interaction of the agent {self.alias} took longer than "
                f"{self.runner.cancel_timeout} s, waiting for {what}; the Ray task may go on "
                "running. Check the Ray cluster (`ray status`, the worker's logs), or give "
                "ray_agent(...) a larger cancel_timeout."
            ) from None

    def _apply(self, batch: list[_wire.ReplyEvent]) -> BaseException | None:
        """Pass the events on to the local replies; the agent's error, if it failed.

        Raises:
            RayAgentError: if an event follows the agent's failure (``FAILED`` ends the
                worker's last batch): the worker broke the protocol.
        """
        ctx = self.ctx
        appenders = self.appenders
        for position, (tag, index, payload) in enumerate(batch, 1):
            if tag == _wire.TOKENS:
                appender = appenders[index]
                if not appender.closed:  # else its consumers gave up: the task is ending
                    for token in payload:
                        appender.append(token)
            elif tag == _wire.START:
                message_class, metadata = _wire.loads(payload)
                appender = MessageTokenAppender(message_class=message_class, **metadata)
                appender.cancel_when_abandoned(self.task)
                appenders[index] = appender
                ctx.reply(appender.promise)
            elif tag == _wire.END:
                appender = appenders.pop(index)
                if not appender.closed:
                    appender.update_metadata(**_wire.loads(payload))
                    appender.complete()
            elif tag == _wire.WHOLE:
                ctx.reply(_wire.loads(payload))
            elif tag == _wire.MESSAGE_FAILED:
                error = self.failures[index] = self._error(payload)
                appenders.pop(index).fail(error)
            elif tag == _wire.LINK:  # a message of a live link, not a reply
                self.links[index].receive(_wire.loads(payload))
                continue
            elif tag == _wire.COMPLETE:
                if self.input_error is not None:  # ended in the grace its cancel gives it
                    return self.input_error  # (the inputs it was not sent: the same error)
                ctx.finish_early()  # the replies end now, even if the agent goes on
            else:  # FAILED: the agent's own error, with its own type
                if position < len(batch):  # (dropped unread, they would go unnoticed)
                    raise RayAgentError(
                        f"The Ray worker of the agent {self.alias} sent {len(batch) - position} "
                        "reply event(s) after the agent's failure, which ends its replies: a "
                        "breach of their protocol, as when the driver and the worker run "
                        "different versions of miniagents. Install the same version on both."
                    ) from self._error(payload)
                return self._error(payload)
            self.delivered = True
        return None

    def _error(self, payload: bytes | int) -> BaseException:
        """The error an event carries: decoded, or that of the reply message it names.

        One error of the agent's (its reply message's, which it raised too) is one error
        here, as for a local agent: a consumer that received it anywhere has received it.
        """
        return self.failures[payload] if isinstance(payload, int) else _wire.decode_error(payload)

    def _failure(self, error: BaseException) -> BaseException:
        """The error to raise for a Ray error met while reading the replies."""
        if self.input_error is not None:  # the sender cancelled the task: this is why
            return self.input_error
        if worker_died(error):
            return _WorkerDied(error, not self.delivered)
        return ray_failure(error, f"the agent {self.alias}")

    def _end_open_messages(self) -> None:
        for appender in self.appenders.values():
            appender.fail(asyncio.CancelledError())  # they end with StreamCancelledError
        self.appenders.clear()

    async def _send_links(self, mailbox: Any, wake: asyncio.Event) -> None:
        """Send what the links' ends here have for their far ends, as they have it.

        If that fails, stop the task, saying why.
        """
        import ray

        key = self.key + _wire.LINKS_BOX
        try:
            while True:
                await wake.wait()
                wake.clear()
                events = [
                    (index, _wire.dumps(message, "a message of a live link"))
                    for index, link in enumerate(self.links)
                    if (message := link.drain()) is not None
                ]
                if events and not await mailbox.put.remote(key, events):
                    return  # the interaction has ended
        except MessageSerializationError as error:
            self._stop_sending(error)
        except ray.exceptions.RayError as error:
            self._stop_sending(ray_failure(error, f"the agent {self.alias} (its live links)"))

    async def _send(self, mailbox: Any, inputs: MessageSequencePromise, skip: int) -> None:
        """Send the inputs after the first ``skip``; if that fails, stop the task, saying why."""
        import ray

        try:
            await send_inputs(mailbox, self.key, inputs, skip, self.alias)
        except MessageSerializationError as error:
            self._stop_sending(error)
        except ray.exceptions.RayError as error:
            what = f"the agent {self.alias} (sending its input messages to the worker)"
            self._stop_sending(ray_failure(error, what))

    def _stop_sending(self, error: BaseException) -> None:
        """Stop the task: ``error`` ends the interaction (see :meth:`_failure`).

        If Ray's cancel fails, the task may run on and its replies never end: their reading
        is cancelled then, and the interaction ends with the cancel's failure (see
        :meth:`_stop`).
        """
        self.input_error = error
        self._cancel()
        assert self.cancelling is not None
        self.cancelling.add_done_callback(self._cancel_failed)

    def _cancel_failed(self, cancelling: asyncio.Future[None]) -> None:
        if cancelling.cancelled() or cancelling.exception() is None:
            return
        if self.reading and not self.cut:  # (both senders may have asked for the cancel)
            self.cut = True
            self.task.cancel()

    def _cancel(self) -> None:
        """Start Ray's cancel of the task, once, off the loop; :meth:`_stop` waits for it.

        The task is given :data:`~miniagents.ext.ray._cancel.ENDING_GRACE` seconds to end
        first, in a daemon thread (see :mod:`miniagents.ext.ray._cancel`: Ray's own race).
        """
        if self.cancelling is None:
            stopping = [(self.generator, self.generator.completed())]
            self.cancelling = InThread(self.stopped, cancel_running, stopping).future()
