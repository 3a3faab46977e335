"""``MiniAgents``: the context that agents run in, and that waits for them all."""

from __future__ import annotations

import asyncio
import contextvars
import logging
import threading
from collections.abc import Awaitable, Callable, Collection, Coroutine, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, NoReturn, Protocol, Self, TypeVar, cast

from miniagents.arguments import check_count, check_flag, check_seconds, coroutine_refusal
from miniagents.messages.appender import MessageSequenceAppender
from miniagents.messages.message_promise import MessagePromise, message_listener
from miniagents.miniagents._awaitables import surely_not_async
from miniagents.miniagents._persist import (
    MessageEvents,
    MessageHandler,
    Persisting,
    PersistMemory,
)
from miniagents.miniagents._resources import Resources
from miniagents.miniagents._settings import ExtensionSettings
from miniagents.miniagents._tracking import StreamTracker
from miniagents.miniagents.errors import (
    ContextArgumentError,
    ContextReenteredError,
    LoopAlreadyRunningError,
    NoActiveContextError,
)
from miniagents.promising.limits import StreamLimits, stream_limits
from miniagents.promising.lowlevel import (
    CancelReason,
    EndOf,
    cancel_task,
    loop_runs,
    park,
    spawn,
    task_owner,
    unpark,
)
from miniagents.promising.sentinels import DEFAULT, Sentinel
from miniagents.promising.streamed_promise import StreamedPromise

__all__ = [
    "AgentLike",
    "MessageHandler",
    "MiniAgents",
    "adopt_hook",
    "agents_tracker",
    "at_exit_in",
    "check_thread",
    "current_context",
    "is_active",
    "outer_context",
    "settings_of",
    "start_task_in",
    "stream_tracker",
    "track_input",
    "track_stream",
    "untrack_input",
]

T = TypeVar("T")


_current: contextvars.ContextVar[MiniAgents | None] = contextvars.ContextVar(
    "miniagents_context", default=None
)


class AgentLike(Protocol):
    """An agent, as a context setting names one (``llm_logger_agent``): a ``MiniAgent`` is one."""

    alias: str

    def inquire(self, messages: Any = None, /, *args: Any, **kwargs: Any) -> object:
        """Start an interaction with ``messages`` as its input; return its replies."""
        ...


def _handlers(given: object, option: str) -> tuple[MessageHandler, ...]:
    """The handlers given as ``option`` (one, or a list), each checked to be one.

    A handler is any callable that returns an awaitable (what ``MessageHandler`` says, and
    mypy checks); one that surely returns none is refused now, any other one that returns
    none fails at its first call (logged, as every handler's error is).

    Raises:
        ContextArgumentError: for a handler that is not callable, or surely not async.
    """
    handlers = tuple(given) if isinstance(given, Sequence) else (given,)
    for handler in handlers:
        if not callable(handler):
            raise ContextArgumentError(
                f"MiniAgents({option}=...) takes a handler, async def handler(promise, "
                f"message) -> None, or a list of them, not {handler!r:.60}: pass the function "
                "itself."
            )
        if surely_not_async(handler):
            name = getattr(handler, "__name__", "")
            name = name if name.isidentifier() else "handler"
            raise ContextArgumentError(
                f"MiniAgents({option}=...) takes async handlers (it awaits what each one "
                f"returns), but {handler!r:.60} is not async: make it `async def {name}"
                "(promise, message) -> None`."
            )
    return cast("tuple[MessageHandler, ...]", handlers)


def _llm_settings(
    stream: bool | None,
    logger: bool | AgentLike | None,
    stall_timeout: float | Literal[Sentinel.DEFAULT] | None,
    in_turn: bool | None,
    max_turn_chars: int | Literal[Sentinel.DEFAULT],
) -> dict[str, object]:
    """The settings of ``miniagents.ext.llm`` given (by name: ``LLMSettings`` reads them).

    Each is checked here, with the checks an LLM call makes of them (:mod:`miniagents.arguments`),
    so that a wrong one is refused where it is given, not at the first LLM call.

    Raises:
        ContextArgumentError: for a flag that is not a bool, a ``stall_timeout`` that is not
            a positive number of seconds (or ``None``), a ``max_turn_chars`` that is not a
            whole number of at least 1, or a logger that is no agent.
    """
    given: dict[str, object] = {}
    fix = "Pass True or False, or leave it out for the outer context's (or the default)."
    if stream is not None:
        given["stream_llm_tokens_by_default"] = check_flag(
            stream,
            "stream_llm_tokens_by_default",
            owner=_OWNER,
            fix=fix,
            error=ContextArgumentError,
        )
    if logger is not None:
        if not isinstance(logger, bool) and not callable(getattr(logger, "inquire", None)):
            raise ContextArgumentError(
                "MiniAgents(llm_logger_agent=...) takes True (write each prompt and response "
                "to llm_logs/), False, or an agent to send them to, not "
                f"{logger!r:.60}: pass the agent itself (a MiniAgent)."
            )
        given["llm_logger_agent"] = logger
    if stall_timeout is not DEFAULT:
        if stall_timeout is not None:  # (None: wait as long as the model takes)
            # (was: taken, and refused only at the first LLM call)
            check_seconds(
                stall_timeout,
                "llm_stall_timeout",
                forever=True,
                owner=_OWNER,
                fix="Pass e.g. llm_stall_timeout=60, or None to wait as long as the model takes.",
                error=ContextArgumentError,
            )
        given["llm_stall_timeout"] = stall_timeout
    if in_turn is not None:
        given["llm_parse_in_turn"] = check_flag(
            in_turn, "llm_parse_in_turn", owner=_OWNER, fix=fix, error=ContextArgumentError
        )
    if max_turn_chars is not DEFAULT:
        given["llm_max_turn_chars"] = check_count(
            max_turn_chars,
            "llm_max_turn_chars",
            owner=_OWNER,
            fix="Pass a whole number of characters, e.g. llm_max_turn_chars=10_000_000, or "
            "leave it out for the outer context's (or the default).",
            error=ContextArgumentError,
        )
    return given


_OWNER = "MiniAgents()"
"""Who takes the LLM settings, in a refusal (as the LLM call's own check says)."""


class MiniAgents:
    """The context agents run in: ``async with MiniAgents(): ...`` or ``MiniAgents().run(main())``.

    Agents inquired inside it start at once, in the background; on exit it waits for every
    agent and handler started inside it. Contexts nest: an inner one adds its handlers to
    those of the outer one, and inherits every setting it does not set.

    The exit, once the block has ended well, lets the producers of the streams it tracks
    run freely (nothing waits for room any more), calls the exit callbacks (``at_exit``),
    finishes the call inputs left open, and waits for every task and every started stream,
    those started meanwhile too (and the producers of the streams made in its block). After
    an error (in the block, or while it waits) it cancels them instead, each task once, and
    waits for them to end: work started during that exit (an agent inquired, a task, a
    stream) is cancelled as it starts, so a task that catches its cancellation and then
    starts an agent and awaits it does not keep the exit waiting; only a task that ignores
    its cancellation and never ends does. Either way it then logs each error that no consumer
    received and closes its resources. A context may be entered again once it has exited;
    each entry starts afresh. The replies of a lazy agent (``start_asap=False``) are read
    inside the block: first read after the exit, the agent does not run and they fail with
    a ``NoActiveContextError``.

    Args:
        on_persist_message: Handler(s) called for each complete ``Message`` (nested
            messages included) unless equal content (by ``hash_key``) was passed to them
            within the last 10,000 distinct messages they were passed in this entry of the
            context: so once, however often it is awaited (the handlers of an inner
            context get it too); a context entered again passes it again.
        on_promise_resolved: Handler(s) called for every message promise whose message
            is complete.
        stream_llm_tokens_by_default: Whether LLM agents stream token by token when
            neither the agent nor the call says (default: yes). A setting of
            :mod:`miniagents.ext.llm` (``LLMSettings``), like the other ``llm_`` ones.
        llm_logger_agent: ``True`` to write every LLM prompt and response as a markdown
            file in ``llm_logs/``, or an agent to send them to (default: no logging).
        start_everything_asap_by_default: Whether an agent starts at ``inquire`` (the
            default) or only when its replies are first consumed, when neither the agent
            nor the call says.
        replay_window: Pieces a stream made inside keeps in full before it releases what
            no live consumer needs; ``None`` keeps everything (default:
            ``DEFAULT_REPLAY_WINDOW``, see :mod:`miniagents.promising.limits`).
        high_water_mark: Pieces a pulled producer (an async generator, an agent at its
            next input pull) may run ahead of its slowest consumer; ``None``: no limit
            (default: ``DEFAULT_HIGH_WATER_MARK``).
        llm_stall_timeout: Seconds an LLM agent waits for the next event of a reply before
            it stops the call with an ``LLMTimeoutError``, unless the agent sets its own
            ``stall_timeout`` (default: 60); ``None`` waits as long as it takes.
        llm_parse_in_turn: ``True`` to have LLM replies that arrive together parsed one
            call at a time, in the order they came, as the raw SDK's own loops parse them,
            for a server that takes bursts of calls: memory stays at the raw SDK's level,
            and each call's first token comes when the calls before it have been parsed.
            By default (``False``) every call is parsed up to its first token at once:
            first tokens sooner, and up to three times the raw SDK's memory in a burst. On
            asyncio's own event loop the library orders the loop's ready queue for it; on
            uvloop, calls wait in line at a gate, which costs some CPU per event.
        llm_max_turn_chars: Characters one call of an LLM agent's model may send (its
            text, thinking and tool calls' arguments together) before the agent stops the call with
            an ``LLMResponseError``: a bound on the memory that a broken provider or proxy
            streaming without end takes (default: 10,000,000, far above what any model
            writes in one turn).

    Attributes:
        start_everything_asap_by_default: The setting in force (given or inherited), once
            the context is entered.
        stream_limits: The replay window and high-water mark in force, once entered.
    """

    def __init__(
        self,
        *,
        on_persist_message: MessageHandler | Sequence[MessageHandler] = (),
        on_promise_resolved: MessageHandler | Sequence[MessageHandler] = (),
        stream_llm_tokens_by_default: bool | Literal[Sentinel.DEFAULT] | None = None,
        llm_logger_agent: bool | AgentLike | Literal[Sentinel.DEFAULT] | None = None,
        start_everything_asap_by_default: bool | Literal[Sentinel.DEFAULT] | None = None,
        replay_window: int | Literal[Sentinel.DEFAULT] | None = DEFAULT,
        high_water_mark: int | Literal[Sentinel.DEFAULT] | None = DEFAULT,
        llm_stall_timeout: float | Literal[Sentinel.DEFAULT] | None = DEFAULT,
        llm_parse_in_turn: bool | Literal[Sentinel.DEFAULT] | None = None,
        llm_max_turn_chars: int | Literal[Sentinel.DEFAULT] = DEFAULT,
    ) -> None:
        """Configure the context; nothing runs before it is entered.

        Every keyword given ``DEFAULT`` is as if it were not given.

        Raises:
            StreamLimitError: if ``replay_window`` or ``high_water_mark`` is not a positive
                int (or ``None``).
            ContextArgumentError: if a handler is not callable or surely returns no
                awaitable (a plain function annotated ``-> None``: make it ``async def``),
                ``start_everything_asap_by_default``, ``stream_llm_tokens_by_default`` or
                ``llm_parse_in_turn`` not a ``bool`` (or ``None``), ``llm_stall_timeout``
                not a positive number of seconds (or ``None``), ``llm_max_turn_chars`` not
                a whole number of at least 1, or ``llm_logger_agent`` neither a ``bool``
                nor an agent.
        """
        if stream_llm_tokens_by_default is DEFAULT:
            stream_llm_tokens_by_default = None
        if llm_logger_agent is DEFAULT:
            llm_logger_agent = None
        if llm_parse_in_turn is DEFAULT:
            llm_parse_in_turn = None
        if start_everything_asap_by_default is DEFAULT:
            start_everything_asap_by_default = None
        if not isinstance(start_everything_asap_by_default, bool | None):
            raise ContextArgumentError(
                "MiniAgents(start_everything_asap_by_default=...) takes True, False or None "
                f"(the outer context's setting), not {start_everything_asap_by_default!r:.60}."
            )
        self._own_asap = start_everything_asap_by_default
        self._own_limits = (replay_window, high_water_mark)
        StreamLimits().replaced(*self._own_limits)  # bad limits fail here, not at the entry
        self.start_everything_asap_by_default = True
        self.stream_limits = StreamLimits()
        self._settings = ExtensionSettings(
            _llm_settings(
                stream_llm_tokens_by_default,
                llm_logger_agent,
                llm_stall_timeout,
                llm_parse_in_turn,
                llm_max_turn_chars,
            )
        )
        self._own_persist = _handlers(on_persist_message, "on_persist_message")
        self._own_resolved = _handlers(on_promise_resolved, "on_promise_resolved")
        self._persisted = PersistMemory()  # what was passed to its own persist handlers lately
        self._persist: tuple[Persisting, ...] = ()
        self._resolved: tuple[MessageHandler, ...] = self._own_resolved
        self._tasks: set[asyncio.Task[None]] = set()
        # the tasks started in its block with no owner (a stream's): waited for on exit (or
        # cancelled after an error), as its own are
        self._loose: set[asyncio.Task[None]] = set()
        self._open_inputs: set[MessageSequenceAppender] = set()
        self._streams = StreamTracker(self._tasks)
        self._tokens: tuple[contextvars.Token[Any], ...] | None = None
        self._resources = Resources()
        self._outer: MiniAgents | None = None  # the context around it, while it is active
        self._active = False
        self._thread: int | None = None  # the ident of the thread it is active in
        # called as the exit begins (see at_exit_in); None once they were called
        self._at_exit: dict[object, Callable[[], object]] | None = {}
        self._cancelling: _Cancelling | None = None  # while the exit after an error runs

    @classmethod
    def get_current(cls) -> MiniAgents:
        """The innermost active context.

        Raises:
            NoActiveContextError: outside of every ``MiniAgents`` context.
        """
        context = _current.get()
        if context is None:
            raise NoActiveContextError(_no_context())
        return context

    # -- entering and leaving ----------------------------------------------------------

    if not TYPE_CHECKING:  # (at run time only: a type checker still refuses a plain `with`)

        def __enter__(self) -> NoReturn:
            """Refuse a plain ``with``: the context is entered with ``async with``.

            Raises:
                ContextArgumentError: always, saying how to enter it.
            """
            raise ContextArgumentError(
                "MiniAgents is an async context: write `async with MiniAgents(): ...` inside "
                "an async function, or `MiniAgents().run(main())` from plain code, not `with`."
            )

        def __exit__(self, *exc_info: object) -> None:
            """Never called: :meth:`__enter__` refuses a plain ``with`` (both make the protocol)."""

    async def __aenter__(self) -> Self:
        """Activate the context for the code inside the ``async with`` block.

        Raises:
            ContextReenteredError: if the context is active already.
        """
        if self._active:
            raise ContextReenteredError(
                "This MiniAgents context is active already; make a new one."
            )
        self._active = True
        self._at_exit = {}
        self._streams.reset()  # (a context used again: its last exit unpaced its streams)
        self._thread = threading.get_ident()
        parent = _current.get()
        self._outer = parent
        self._settings.inherit(parent._settings if parent else None)
        inherited_asap = parent.start_everything_asap_by_default if parent else True
        self.start_everything_asap_by_default = (
            inherited_asap if self._own_asap is None else self._own_asap
        )
        self.stream_limits = stream_limits.get().replaced(*self._own_limits)
        self._persisted = PersistMemory()  # (each entry persists afresh: on_persist_message)
        outer = parent._persist if parent is not None else ()
        own = tuple(  # a handler the outer context has gets messages from there, once
            handler
            for handler in self._own_persist
            if not any(handler is known for handlers, _ in outer for known in handlers)
        )
        self._persist = (*outer, (own, self._persisted)) if own else outer
        if parent is not None:
            self._resolved = parent._resolved + self._own_resolved
        listener = (
            MessageEvents(self._start, self._resolved, self._persist)
            if (self._persist or self._resolved)
            else None
        )
        self._tokens = (
            _current.set(self),
            message_listener.set(listener),
            stream_limits.set(self.stream_limits),
            task_owner.set(self._loose),
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Wait for every agent and handler started inside (cancel them after an error)."""
        try:
            if exc is None:
                await self._wait_for_tasks()
            else:
                await self._cancel_tasks(exc)
        except BaseException as error:
            await self._cancel_tasks(error)
            raise
        finally:
            if self._tokens is not None:
                task_owner.reset(self._tokens[3])
                stream_limits.reset(self._tokens[2])
                message_listener.reset(self._tokens[1])
                _current.reset(self._tokens[0])
                self._tokens = None
            self._active = False
            self._outer = None
            self._at_exit = {}  # (after an error: none called, none kept)
            self._streams.report_lost_errors()
            await self._resources.aclose()

    async def arun(self, awaitable: Awaitable[T]) -> T:
        """Await ``awaitable`` inside this context and return its result."""
        async with self:
            return await awaitable

    def run(self, awaitable: Coroutine[Any, Any, T]) -> T:
        """Run ``awaitable`` inside this context with ``asyncio.run`` and return its result.

        Raises:
            ContextArgumentError: if ``awaitable`` is not a coroutine (``run(main)``, not
                ``run(main())``).
            LoopAlreadyRunningError: if an event loop runs in this thread already (in a
                notebook, or in async code): ``await MiniAgents().arun(...)`` there. The
                coroutine ``awaitable`` is closed, not run.
        """
        refusal = coroutine_refusal(awaitable, "MiniAgents().run")
        if refusal is not None:
            raise ContextArgumentError(refusal)
        try:
            asyncio.get_running_loop()
        except RuntimeError:  # no loop runs: the normal case (asyncio.run below, unhandled)
            pass
        else:
            awaitable.close()  # (never to be run: no "never awaited" warning either)
            raise LoopAlreadyRunningError(
                "MiniAgents().run(...) cannot start an event loop here: one runs already (in "
                "a notebook, or in async code). Write await MiniAgents().arun(main()) "
                "instead, or async with MiniAgents(): ... around the code."
            )
        return asyncio.run(self.arun(awaitable))

    async def _wait_for_tasks(self) -> None:
        self._streams.unpace()  # replies nobody reads must not keep their agents waiting
        callbacks, self._at_exit = self._at_exit, None  # (one added from now on: at once)
        if callbacks:
            for callback in callbacks.values():
                _call_at_exit(callback)
        while True:
            self._finish_open_inputs()  # an unfinished call would keep its agent waiting
            tasks = [task for task in self._tasks | self._loose if not task.done()]
            if tasks:
                waiting = park(
                    f"the {len(tasks)} task(s) of its MiniAgents context to end", on=EndOf(tasks)
                )
                try:
                    await asyncio.wait(tasks)
                finally:
                    unpark(waiting)
                continue
            if not await self._streams.wait():
                return

    async def _cancel_tasks(self, error: BaseException) -> None:
        """Cancel the tasks and the streams of this context (after an error), until all end.

        The streams are cancelled with the tasks, not after them: a task that catches its
        cancellation and then waits on one of them (its replies, a message) is released, its
        wait ending with :class:`StreamCancelledError`, instead of keeping the exit waiting.
        Work started meanwhile is cancelled as it starts (a task of :func:`start_task_in`,
        a stream the context tracks), and wakes the exit, which cancels the rest of it (the
        run of an agent inquired then): a task that catches its cancellation and then starts
        an agent and awaits it is released too. Each task is cancelled once, the tasks of
        the streams made in its block with them (a message of an async generator pulled).

        Args:
            error: The error the context exits with, named to the streams' readers.
        """
        self._finish_open_inputs()
        reason = _exit_reason(error)
        cancelling = self._cancelling = _Cancelling(reason)
        self._streams.cancel_from_now(cancelling.wake, reason)
        try:
            while tasks := self._tasks | self._loose:  # (a stream's tasks in its block too)
                cancelling.cancel(tasks)
                self._streams.cancel(reason)
                await cancelling.wait(tasks)
            self._streams.cancel(reason)
        finally:
            self._cancelling = None
            self._streams.cancel_from_now(None)  # (what starts after the exit: not cancelled)

    def _finish_open_inputs(self) -> None:
        for appender in list(self._open_inputs):
            appender.complete()
        self._open_inputs.clear()

    # -- what agents and calls use ---------------------------------------------------------

    def resource(
        self, key: object, make: Callable[[], T], close: Callable[[T], Awaitable[object]]
    ) -> T:
        """A resource shared by the agents of this context (e.g. an SDK client).

        It is made by ``make()`` at the first request for ``key`` and closed by
        ``close(resource)`` when the context ends.
        """
        return self._resources.get(key, make, close)

    # -- the machinery (the functions below are its names for the rest of the layer) ------

    def _start(self, coroutine: Coroutine[Any, Any, None], what: str) -> asyncio.Task[None]:
        """Run ``coroutine`` in a task that this context waits for on exit."""
        return start_task_in(self, coroutine, what)

    def _track_input(self, appender: MessageSequenceAppender) -> None:
        """Remember an unfinished call input, to finish it on exit if its caller did not."""
        self._open_inputs.add(appender)

    def _untrack_input(self, appender: MessageSequenceAppender) -> None:
        """Forget a call input that its caller finished."""
        self._open_inputs.discard(appender)


# -- the context's machinery, for the agents layer ------------------------------------------
#
# Named functions instead of private attributes reached from other modules: the agents
# (miniagents.miniagents.agent) and the low level (miniagents.miniagents.lowlevel) use these,
# and MiniAgents itself shows users only what they use.


def _exit_reason(error: BaseException) -> CancelReason:
    """The text of the error of a stream cancelled by its context's exit with ``error``.

    It is the message of each cancel of the context's tasks too: what a stream one fed says.
    """
    return CancelReason(
        f"This stream was cancelled because its MiniAgents context exited with an error "
        f"({type(error).__name__}), and the exit after an error cancels the agents and streams "
        "started in the context. Read the replies inside the async with MiniAgents(): block, "
        "before the error leaves it (or catch the error inside the block)."
    )


class _Cancelling:
    """The exit of a context after an error: the tasks it cancelled, and its wake-up.

    It cancels each task once (a task that catches its cancellation is not interrupted
    again in its cleanup), and waits until those tasks end or new work starts (with no
    task of its own: none is left behind when the exit ends).
    """

    __slots__ = ("cancelled", "reason", "woken")

    def __init__(self, reason: CancelReason) -> None:
        self.cancelled: set[asyncio.Task[None]] = set()
        self.reason = reason  # the message of each cancel: what a stream its task fed says
        self.woken: asyncio.Future[None] | None = None  # what :meth:`wait` awaits

    def cancel(self, tasks: Collection[asyncio.Task[None]]) -> None:
        """Cancel those of ``tasks`` that were not cancelled yet."""
        for task in tasks:
            if task not in self.cancelled:
                self.cancelled.add(task)
                cancel_task(task, self.reason)

    def wake(self) -> None:
        """End the current :meth:`wait`: work started during the exit (an agent inquired)."""
        woken = self.woken
        if woken is not None and not woken.done():
            woken.set_result(None)

    async def wait(self, tasks: Collection[asyncio.Task[None]]) -> None:
        """Wait until every one of ``tasks`` has ended, or new work has started meanwhile.

        It waits at least one turn of the loop (a task that has ended leaves ``tasks`` then).
        """
        self.cancelled.intersection_update(tasks)  # (those that ended: forgotten)
        woken = self.woken = asyncio.get_running_loop().create_future()
        waiting = list(tasks)
        left = [len(waiting)]

        def ended(_: object) -> None:  # (called soon for a task that has ended already)
            left[0] -= 1
            if not left[0] and not woken.done():
                woken.set_result(None)

        for task in waiting:
            task.add_done_callback(ended)
        try:
            await woken
        finally:
            self.woken = None
            for task in waiting:
                task.remove_done_callback(ended)


def current_context() -> MiniAgents | None:
    """The innermost active context, or ``None`` outside of every one."""
    return _current.get()


def start_task_in(
    context: MiniAgents, coroutine: Coroutine[Any, Any, None], what: str
) -> asyncio.Task[None]:
    """Run ``coroutine`` in a task that ``context`` waits for on exit (cancels after an error).

    Started while the exit after an error runs, the task is cancelled at once.
    """
    task = spawn(coroutine, what, context._tasks)
    if context._cancelling is not None:
        context._cancelling.cancel((task,))
    return task


def is_active(context: MiniAgents) -> bool:
    """Whether ``context`` is entered (its exit, until it ends, included), not exited."""
    return context._active


def at_exit_in(context: MiniAgents, callback: Callable[[], object]) -> Callable[[], None]:
    """Have ``context`` call ``callback()`` as its exit begins; return what forgets it.

    See :func:`miniagents.miniagents.lowlevel.at_exit`: called once the context's block has
    ended without an error, before the context waits for its tasks (at once if it is
    exiting already, or has exited); after an error, not at all.
    """
    callbacks = context._at_exit
    if callbacks is None:  # exiting already
        _call_at_exit(callback)
        return _forget_nothing
    key = object()
    callbacks[key] = callback

    def forget() -> None:
        if context._at_exit is callbacks:  # (the same entry of the context: not another's)
            callbacks.pop(key, None)

    return forget


def _forget_nothing() -> None:
    """What forgets a callback that was called at once."""


def _call_at_exit(callback: Callable[[], object]) -> None:
    """Call an exit callback; its error is logged, not raised (the exit goes on)."""
    try:
        callback()
    except Exception:
        logging.getLogger("miniagents").exception(
            "A MiniAgents context's exit callback %r failed.", callback
        )


def track_stream(context: MiniAgents, stream: StreamedPromise[Any, Any], label: str) -> None:
    """Have ``context`` wait for ``stream`` on exit and log its error if nobody received it.

    Args:
        context: The context of the agent that started ``stream``.
        stream: A stream started by an agent of this context (its replies, a message).
        label: The alias of the agent whose replies ``stream`` is, or "" for a message
            an agent replied with (it names the stream if its error is logged).
    """
    context._streams.track(stream, label)


def stream_tracker(context: MiniAgents) -> StreamTracker:
    """The streams ``context`` waits for on exit (the agents track their replies there)."""
    return context._streams


def adopt_hook(context: MiniAgents) -> Callable[[MessagePromise], None]:
    """What ``context`` calls with each message an agent replies with (one for all agents)."""
    return context._streams.adopt_hook


def agents_tracker(context: MiniAgents) -> StreamTracker:
    """The tracker of ``context``'s streams, for an agent about to start there.

    It names the machinery an agent uses, in one call: its ``adopt_hook`` (what the
    context calls with each message an agent replies with), its ``tasks`` (where the
    agent's run is started) and the tracking of its replies.

    Raises:
        NoActiveContextError: from a thread other than the context's loop's (see
            :func:`check_thread`).
    """
    if context._thread != threading.get_ident():  # (a thread that copied the context)
        raise NoActiveContextError(_not_on_the_loop_thread())
    return context._streams


def track_input(context: MiniAgents, appender: MessageSequenceAppender) -> None:
    """Have ``context`` finish an unfinished call input on exit, if its caller does not."""
    context._track_input(appender)


def untrack_input(context: MiniAgents, appender: MessageSequenceAppender) -> None:
    """Forget a call input that its caller finished."""
    context._untrack_input(appender)


def outer_context(context: MiniAgents) -> MiniAgents | None:
    """The context that was active around ``context`` when it was entered (while it is active)."""
    return context._outer


def settings_of(context: MiniAgents) -> ExtensionSettings:
    """The extensions' settings of ``context``."""
    return context._settings


def check_thread(context: MiniAgents) -> None:
    """Refuse to start an agent of ``context`` from a thread other than its loop's.

    Raises:
        NoActiveContextError: saying contexts hold for their loop's thread.
    """
    if context._thread != threading.get_ident():  # (a thread that copied the context)
        raise NoActiveContextError(_not_on_the_loop_thread())


def _not_on_the_loop_thread() -> str:
    """Why an agent started from a thread that is not its context's loop's cannot run."""
    return (
        f"No MiniAgents context is active in this thread ({threading.current_thread().name}): "
        "a context holds for the code of its event loop's thread, and an agent started from "
        "another thread (a reactivex scheduler's, e.g. ops.subscribe_on(...) placed after an "
        "agent's operator, or a thread pool's, asyncio.to_thread's) could not run there. "
        "Start agents on the loop's thread (put subscribe_on before the agent's operator; "
        "from a thread, asyncio.run_coroutine_threadsafe(coroutine, loop)), inside "
        "`async with MiniAgents(): ...`."
    )


def _no_context() -> str:
    """Why no context is active, and the fix (another thread's code cannot see one)."""
    if threading.current_thread() is not threading.main_thread() and not loop_runs():
        return _not_on_the_loop_thread()
    return (
        "No MiniAgents context is active. Run agents inside one: "
        "`async with MiniAgents(): ...` in async code, or `MiniAgents().run(main())`."
    )
