"""Agents: ``MiniAgent``, ``@miniagent``, the context an agent function gets, and its runs.

An agent is an async function run once per interaction. This module holds the whole idea,
in sections:

* **the interaction context** (``InteractionContext``: the input, ``reply``) and
  ``AgentCall`` (an inquiry whose input is sent message by message);
* **running an interaction**: ``inquire`` makes a reply sequence (its core tracked by the
  context) and a task that runs the agent function. The task starts at once, or, for a
  lazy interaction (``start_asap=False``), when the replies are first consumed, in the
  context captured at ``inquire``; either way it joins the
  :class:`~miniagents.miniagents._scope.InteractionScope` current at ``inquire``, if any.
  Inside the task, the agent first takes a slot of its concurrency limit (if it has one),
  then runs (outside every scope) with an :class:`InteractionContext` whose input waits for
  room in the replies before each message (see :mod:`miniagents.promising.limits`).
  With an interaction observer set (tracing: :mod:`miniagents.miniagents._observing`), the
  task tells it first, and the replies tell its watch when they have ended;
* **the agent** (``MiniAgent``) and the ``@miniagent`` decorator.

It uses the ``MiniAgents`` context through the functions that name its machinery
(``agents_tracker``, whose tracker names the context's tasks and reply hook too,
``track_input``): no private attribute of another module.

The names along an interaction's streams, from ``inquire`` to the agent function (the same
in :mod:`miniagents.messages.appender`):

* ``messages``: what ``inquire`` is given (any ``MessageType``, or ``None``: no input);
* ``inputs``: the interaction's **input**, a ``MessageSequencePromise`` (``input_of``; the
  shared empty ``_NO_MESSAGES`` without input; ``from_observable`` for an observable). An
  input of its **own** (``own``) was opened for this interaction alone. The agent reads it
  **paced** (``replies.paced(inputs)``: a view whose iterators take each message only when
  the replies have room), as ``ctx.message_promises`` (also ``ctx.messages``);
* ``input_core``: the input's replay core, **held** as read by the interaction from its
  start until its run ends (``_hold_input``; a ``_HeldInput`` keeps it while the run has
  not started, and weakly once it has ended with its replies streaming on, to give it up
  with them);
* ``replies``: the interaction's ``MessageSequenceAppender``; ``reply_sequence``: what
  ``inquire`` returns; ``reply_core``: their replay core (the **gate** of the paced input);
* ``input_appender``: what an ``AgentCall`` sends its input messages to.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import weakref
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from functools import partial
from types import CoroutineType, MappingProxyType
from typing import (
    TYPE_CHECKING,
    Any,
    Concatenate,
    Generic,
    Literal,
    Never,
    NoReturn,
    ParamSpec,
    Protocol,
    Self,
    TypeAlias,
    cast,
    overload,
)

from reactivex import Observable
from typing_extensions import TypeVar

from miniagents.arguments import a_class, check_text
from miniagents.messages.appender import MessageSequenceAppender
from miniagents.messages.errors import AppenderClosedError, MessageTypeError
from miniagents.messages.message import Message
from miniagents.messages.message_promise import MessagePromise, MessageT_co
from miniagents.messages.sequence import (
    MessageObservable,
    MessageSequencePromise,
    MessageType,
    as_message_sequence,
)
from miniagents.miniagents._awaitables import called_function, docstring_of, surely_not_async
from miniagents.miniagents._limiter import ConcurrencyLimit
from miniagents.miniagents._observing import InteractionEnding, interaction_ending
from miniagents.miniagents._params import AgentParameters
from miniagents.miniagents._preparing import prepared_interaction
from miniagents.miniagents._scope import current_scope
from miniagents.miniagents._tracking import StreamTracker
from miniagents.miniagents.context import (
    MiniAgents,
    agents_tracker,
    is_active,
    track_input,
    untrack_input,
)
from miniagents.miniagents.errors import (
    AgentArgumentError,
    AgentDefinitionError,
    AgentFinishedError,
    NoActiveContextError,
    NotAwaitableError,
)
from miniagents.promising.errors import StreamCancelledError
from miniagents.promising.lowlevel import (
    ReplayCore,
    ReplayObservable,
    core_of,
    forget_task,
    logger,
    spawn,
)
from miniagents.promising.sentinels import DEFAULT, Sentinel

__all__ = [
    "AgentCall",
    "AgentDecorator",
    "AgentFunction",
    "AnyAgentFunction",
    "InteractionContext",
    "MiniAgent",
    "ReplyT_co",
    "miniagent",
]


# -- the interaction context ------------------------------------------------------------


class InteractionContext:
    """One interaction of an agent: its input messages and the way to reply.

    Attributes:
        this_agent: The agent being run.
        message_promises: The input messages, as a ``MessageSequencePromise`` (they may
            still be streaming); :attr:`messages` is the same sequence. Iterating it takes
            each message only when the agent's replies are less than the high-water mark
            ahead of their consumers (see :mod:`miniagents.promising.limits`).
    """

    __slots__ = ("_finished", "_replies", "message_promises", "this_agent")

    def __init__(
        self,
        this_agent: MiniAgent[...],
        message_promises: MessageSequencePromise,
        replies: MessageSequenceAppender,
    ) -> None:
        """Create the context of one interaction (the agent machinery does this)."""
        self.this_agent = this_agent
        self.message_promises = message_promises
        self._replies = replies
        self._finished = False

    @property
    def messages(self) -> MessageSequencePromise:
        """The input messages (the same as :attr:`message_promises`)."""
        return self.message_promises

    def reply(self, messages: MessageType) -> None:
        """Send messages to the caller, after everything replied before.

        ``messages`` may be anything a ``MessageType`` allows, e.g. a list mixing strings,
        messages and other agents' reply sequences (those agents run in parallel; their
        messages appear here in place). The caller gets them as soon as they stream.
        It never waits, and returns nothing to await (``await ctx.areply(...)`` waits).

        Raises:
            MessageTypeError: if ``messages`` (or a synchronous part of it) is not a
                ``MessageType``.
            AgentFinishedError: if the interaction has finished.
        """
        if self._finished:
            raise AgentFinishedError(
                f"The agent {self.this_agent.alias} replied after its interaction had "
                "finished (its function returned, or it called finish_early()). Reply "
                "before then, e.g. by awaiting the work that produces the reply."
            )
        try:
            self._replies.append(messages)
        except MessageTypeError as error:
            raise MessageTypeError(
                f"The agent {self.this_agent.alias} replied with something that is not "
                f"a message. {error}"
                f"{_not_awaited(messages, 'ctx.reply') or _uncalled(messages, 'ctx.reply')}"
            ) from error
        return _REPLIED  # type: ignore[return-value]  # (None to type checkers: see _Replied)

    def areply(self, messages: MessageType) -> Coroutine[Any, Any, None]:
        """Reply like :meth:`reply` at once, and return a wait until the consumers have room.

        ``reply`` never waits: an agent that reads its input (``async for`` over
        :attr:`message_promises`) is slowed at its next input pull when its replies run
        the high-water mark ahead of their consumers. An agent that replies in a loop
        without reading input uses ``await ctx.areply(...)`` to be slowed there instead.
        The reply is made by the call itself, so an ``areply`` whose ``await`` was
        forgotten still replies (only the wait, and so the slowing, is lost).

        Raises:
            MessageTypeError: if ``messages`` (or a synchronous part of it) is not a
                ``MessageType``.
            AgentFinishedError: if the interaction has finished.
        """
        self.reply(messages)
        return self._replies.wait_for_room()

    def finish_early(self) -> None:
        """End the reply sequence now; the agent function may go on, but not reply."""
        self._finished = True
        self._replies.complete()


class _Replied:
    """What ``ctx.reply(...)`` returns at run time: nothing (``None`` to type checkers).

    It is false, as ``None`` is, but awaiting it says what to write, where ``await None``
    would fail with Python's bare "object NoneType can't be used in 'await' expression"
    (``reply`` never waits: ``areply`` does). An agent function may return it, as it may
    return ``None``. Only an identity test tells it from ``None`` (``ctx.reply(x) is None``
    is false): nobody tests a call that returns nothing so, and ``if ctx.reply(x):``,
    ``print(ctx.reply(x))`` and returning it all read as nothing.
    """

    __slots__ = ()

    def __bool__(self) -> bool:
        return False

    def __repr__(self) -> str:
        return "<nothing: what ctx.reply() returns>"

    def __await__(self) -> NoReturn:
        """Refuse ``await ctx.reply(...)``.

        Raises:
            NotAwaitableError: always, naming ``ctx.reply`` without ``await`` and ``areply``.
        """
        raise NotAwaitableError(
            "ctx.reply(...) is not awaitable: it sends the messages at once and returns None "
            "(nothing to wait for). Call it without await, `ctx.reply(...)`, or write `await "
            "ctx.areply(...)` to also wait until the replies' consumers have room."
        )


_REPLIED = _Replied()


class AgentCall(Generic[MessageT_co]):
    """An inquiry whose input messages are sent one by one (``agent.initiate_inquiry()``).

    The type parameter is the class of the agent's reply messages (see ``MiniAgent``).

    The agent starts at once and sees the messages as they are sent; its input ends at
    :meth:`finish` (or :meth:`reply_sequence`, or when the call is dropped and collected,
    as nobody can send more, or at the end of the ``MiniAgents`` context, whichever comes
    first).
    """

    __slots__ = ("_agent", "_context", "_input_appender", "_loop", "_reply_sequence")

    def __init__(
        self,
        agent: MiniAgent[...],
        input_appender: MessageSequenceAppender,
        reply_sequence: MessageSequencePromise[MessageT_co],
        context: MiniAgents,
    ) -> None:
        """Wrap a started interaction (``MiniAgent.initiate_inquiry`` makes it)."""
        self._agent = agent
        self._input_appender = input_appender
        self._reply_sequence = reply_sequence
        self._context = context
        self._loop = asyncio.get_running_loop()  # (initiate_inquiry runs in the context's)
        track_input(context, input_appender)  # finished on exit if the caller does not

    def __del__(self) -> None:
        # dropped unfinished: nobody can send more, so the input ends (the context would
        # keep it, and the agent waiting for it, until its exit); on the loop, in a turn of
        # its own, not inside whatever code the collector interrupted
        input_appender = getattr(self, "_input_appender", None)
        if input_appender is not None and not input_appender.closed and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(_finish_input, self._context, input_appender)

    def send_message(self, messages: MessageType) -> Self:
        """Send more input messages to the agent; returns the call, for chaining.

        Raises:
            AgentFinishedError: if the call's input has been finished.
        """
        if self._input_appender.closed:
            raise AgentFinishedError(
                f"This call to the agent {self._agent.alias} is finished, so it takes no "
                "more messages. Send every message before finish() or reply_sequence()."
            )
        self._input_appender.append(messages)
        return self

    def finish(self) -> None:
        """End the agent's input (doing it again does nothing)."""
        self._input_appender.complete()
        untrack_input(self._context, self._input_appender)

    if not TYPE_CHECKING:  # (mypy refuses `await call` already: a call is not awaitable)

        def __await__(self) -> NoReturn:
            """Refuse ``await call``: its replies are ``call.reply_sequence()``.

            Raises:
                NotAwaitableError: always, naming ``await call.reply_sequence()``.
            """
            raise NotAwaitableError(
                "An AgentCall is not awaitable: it is where the input is sent. Write `await "
                "call.reply_sequence()`, which finishes its input and gives the replies."
            )

    def reply_sequence(self, finish_call: bool = True) -> MessageSequencePromise[MessageT_co]:
        """The agent's replies; by default this also finishes the call's input."""
        if finish_call:
            self.finish()
        return self._reply_sequence


def _finish_input(context: MiniAgents, input_appender: MessageSequenceAppender) -> None:
    """End the input of a call that was dropped unfinished (see ``AgentCall.__del__``)."""
    input_appender.complete()
    untrack_input(context, input_appender)


# -- running one interaction ------------------------------------------------------------


ReplyT = TypeVar("ReplyT", bound=Message)
"""The class of the reply messages of the agent an interaction runs (see ``ReplyT_co``)."""


_NO_MESSAGES = MessageSequencePromise()  # finished and empty, so one serves every call


def input_of(agent: MiniAgent[...], messages: MessageType) -> MessageSequencePromise:
    """The input of an interaction of ``agent``: ``messages`` as a sequence.

    (An interaction without input has the shared empty sequence, ``_NO_MESSAGES``.)

    Raises:
        MessageTypeError: naming the agent, if ``messages`` is not a ``MessageType``.
    """
    try:
        inputs = as_message_sequence(messages)
    except MessageTypeError as error:
        hint = _not_awaited(messages, "inquire") or _misplaced(agent, messages)
        raise MessageTypeError(
            f"The input of the agent {agent.alias} is invalid. {error}{hint}"
        ) from error
    if inputs is not messages:  # made here, for this interaction only
        input_core = core_of(inputs)
        # it follows streams: given up on, it is cancelled, and gives them up in turn if
        # nobody else reads them (one never read is not started for it: that would start
        # what it holds, lazy agents and async generators, only to stop them); a view of
        # one stream (``[reply]``) shares that stream's core: its own giving up stays
        if not input_core.done and input_core.on_abandoned is None:
            input_core.on_abandoned = input_core.cancel
    return inputs


def start(
    agent: MiniAgent[..., ReplyT],
    inputs: MessageSequencePromise | Observable[MessageType],
    args: tuple[object, ...],
    kwargs: Mapping[str, object],
) -> MessageSequencePromise[ReplyT]:
    """Check the call's arguments and start (or prepare) an interaction; return its replies.

    The replies are typed by the agent's reply class, which its maker vouches for (see
    :class:`MiniAgent`).

    Raises:
        NoActiveContextError: outside of a ``MiniAgents`` context.
        AgentArgumentError: for unknown, missing or extra positional arguments.
    """
    given = _given(kwargs)  # a keyword given ``DEFAULT`` is as if it were not given
    if agent._bound:
        if args:  # they override bound arguments too, as keywords do
            args, given = agent._parameters.over_bound(args, given)
        # (the bound ones alone are shared, only read: no copy per interaction)
        arguments = {**agent._bound, **given} if given else agent._bound
    else:
        arguments = given
    start_asap: bool | None = None
    if "start_asap" in arguments and "start_asap" not in agent._parameters.names:
        start_asap = cast("bool | None", arguments.pop("start_asap"))
    context = MiniAgents.get_current()  # outside a context: the clear error, at once
    tracker = agents_tracker(context)  # (from another thread: no loop would run the agent)
    agent._parameters.check_call(args, arguments)
    # the common cases, tested first (no input; a sequence): a miss of the ABC below costs
    # three calls
    if inputs is _NO_MESSAGES or isinstance(inputs, MessageSequencePromise):
        reply_sequence = start_interaction(
            context, tracker, agent, inputs, args, arguments, start_asap
        )
    else:
        if isinstance(inputs, MessageObservable):  # another agent's replies: read them directly
            own = inputs.own  # an agent operator's: a new interaction, read by this one alone
            inputs = MessageSequencePromise.from_observable(inputs)
        else:
            observable = inputs
            inputs = MessageSequencePromise.from_observable(observable)
            inputs.start()  # a hot source must not emit before the agent listens
            # its own record of the observable, unless it is a view of a stream the library
            # keeps (which others may read: the interaction gives it up as any input, see _run)
            own = (
                not isinstance(observable, ReplayObservable)
                or core_of(inputs) is not observable.core
            )
        reply_sequence = start_interaction(
            context, tracker, agent, inputs, args, arguments, start_asap
        )
        if own:
            _stop_input_when_done(core_of(reply_sequence), core_of(inputs))
    return reply_sequence  # type: ignore[return-value]  # (typed by the reply class: see above)


def _stop_input_when_done(
    reply_core: ReplayCore[MessagePromise], input_core: ReplayCore[MessagePromise]
) -> None:
    """Stop an interaction's own input when the interaction is over.

    Its own input is its record of an outside observable, or the new interaction of the
    agent operator piped before it, opened for it: nobody else reads it (unless the agent
    handed it on). Once the replies are cancelled (``cancel()``, every consumer gave up, a
    reactive subscription disposed), it is cancelled at once, as a disposed reactive
    operator unsubscribes from its source (and the interaction before it is cancelled in
    turn). Once they end otherwise (the agent returned or failed), it is given up on when
    the interaction has stopped, unless someone else consumes it then. So an operator's
    subscription lets go of its source whether it is disposed before its replies end (an
    ``ops.take(1)`` inside the first reply) or after (an agent that never waits, run to its
    end by an eager task factory inside the subscription; one that read only part of its
    input); one that ``finish_early()``s keeps it while it reads.

    (Not for a view of a stream that others may read, such as the observable of a sequence:
    cancelling it stopped that stream under them. The interaction gives such an input up as
    any other, when it is given up on.)
    """

    def stop() -> None:
        if isinstance(reply_core.error, (StreamCancelledError, asyncio.CancelledError)):
            input_core.cancel(reply_core.why_cancelled())
        else:
            input_core.get_audience().check_abandoned_at_release(input_core)

    reply_core.when_done(stop)


def _keywords(
    agent: MiniAgent[...], arguments: dict[str, object]
) -> tuple[tuple[str, ...], tuple[object, ...]]:
    """An interaction's keyword arguments as their names and their values.

    A run waiting to start holds them (10,000 runs in a fan-out of 10,000 agents): a tuple of
    values is about a third of the size of a dict of them, and the names are one tuple for
    every interaction of the agent given the same ones (its bound arguments' are made once).
    """
    if arguments is agent._bound:
        return agent._bound_keywords
    names = tuple(arguments)
    if names == agent._keyword_names:
        names = agent._keyword_names
    else:
        agent._keyword_names = names
    return names, tuple(arguments.values())


def _given(kwargs: Mapping[str, object]) -> dict[str, object]:
    """The keyword arguments without those given ``DEFAULT`` (which means "the default")."""
    for name in kwargs:  # (no comprehension unless one is DEFAULT)
        if kwargs[name] is DEFAULT:
            return {name: value for name, value in kwargs.items() if value is not DEFAULT}
    return dict(kwargs)


def start_interaction(
    context: MiniAgents,
    tracker: StreamTracker,
    agent: MiniAgent[...],
    inputs: MessageSequencePromise,
    args: tuple[object, ...],
    arguments: dict[str, object],
    start_asap: bool | None,
) -> MessageSequencePromise:
    """Start (or prepare, for a lazy start) one interaction; return its replies.

    ``tracker`` is the context's (see :func:`~miniagents.miniagents.context.agents_tracker`).
    """
    hook = tracker.adopt_hook
    ending = interaction_ending(hook)  # None unless an observer is set (tracing)
    prepare = prepared_interaction(agent)  # None unless a preparer is set (durable runs)
    if start_asap is None:
        start_asap = agent.start_asap
    if start_asap is None:
        start_asap = context.start_everything_asap_by_default
    relay: _Relay | None = None
    if ending is not None:
        on_message: Callable[[MessagePromise], None] = ending.adopt
    elif start_asap:
        on_message = hook
    else:  # an observer set before the lazy start (instrument() in between) observes it
        on_message = relay = _Relay(hook)
    named = agent._replies_named  # (made once per alias: no string per interaction)
    if named[0] is not agent.alias:
        named = agent._replies_named = (agent.alias, f"the replies of the agent {agent.alias}")
    replies = MessageSequenceAppender(
        on_message,
        name=named[1],
        ready_too=on_message is not hook,  # the context's hook tracks streaming messages only
    )
    reply_sequence = replies.sequence
    reply_core = core_of(reply_sequence)
    names, values = _keywords(agent, arguments)
    launching = (tracker, agent, inputs, args, names, values, replies, reply_core, ending)
    if start_asap:
        _launch(*launching, None, None, prepare)
    else:  # started where it was inquired (a partial: no closure cells made per inquire)
        tracker.track_lazy(reply_core)
        replies.start_lazily(
            partial(_launch, *launching, contextvars.copy_context(), relay, prepare, context)
        )
    return reply_sequence


def _launch(
    tracker: StreamTracker,
    agent: MiniAgent[...],
    inputs: MessageSequencePromise,
    args: tuple[object, ...],
    names: tuple[str, ...],
    values: tuple[object, ...],
    replies: MessageSequenceAppender,
    reply_core: ReplayCore[MessagePromise],
    ending: InteractionEnding | None,
    captured: contextvars.Context | None = None,
    relay: _Relay | None = None,
    prepared: Callable[[], object] | None = None,
    lazy_in: MiniAgents | None = None,
) -> None:
    """Start an interaction's run, in a task of its own (in ``captured``, for a lazy start).

    Its replies are tracked from now on (one never started, its replies dropped unread, is
    not kept), and its input held (see :func:`_hold_input`); it joins the interaction scope
    current where it was inquired, if any. ``relay``: the reply hook of a lazy start that
    had no observer when inquired (an observer set since observes it). ``prepared``: what
    the interaction preparer gave where it was inquired, called in the run's context.
    ``lazy_in``: the context a lazy start was inquired in; once it has exited, nothing
    would wait for the run (nor cancel it), so the run does not start and the replies fail
    with a ``NoActiveContextError`` instead.
    """
    if lazy_in is not None and not is_active(lazy_in):
        replies.fail(NoActiveContextError(_exited_before_read(agent)))
        return
    if relay is not None:
        ending = interaction_ending(relay.target)  # the observer now, if there is one
        if ending is not None:
            relay.target = ending.adopt  # no reply has entered yet: it sees all
    # tracked before the run starts: under an eager task factory (Python 3.12's
    # ``asyncio.eager_task_factory``) the run may end, and tell the tracker, right here
    tracker.track_replies(reply_core, agent.alias)
    held = None if inputs is _NO_MESSAGES else _hold_input(inputs, reply_core)
    if prepared is not None:  # (its context variables are the run's, not its caller's)
        if captured is None:
            captured = contextvars.copy_context()
        captured.run(prepared)
    scope = current_scope.get() if captured is None else captured.get(current_scope)
    if scope is not None:  # its task runs outside it: what the agent starts is not its caller's
        if captured is None:
            captured = contextvars.copy_context()
        captured.run(current_scope.set, None)  # (a lazy start's copy is this interaction's)
    coroutine = _run(agent, inputs, args, names, values, replies, reply_core, tracker, held, ending)
    task = (
        spawn(coroutine, agent.alias, tracker.tasks)
        if captured is None
        else captured.run(spawn, coroutine, agent.alias, tracker.tasks)
    )
    replies.cancel_when_abandoned(task, held)  # (given up on: it gives its input up too)
    if held is not None:
        held.task = task
    if scope is not None:
        scope.add(task, reply_core)


def _exited_before_read(agent: MiniAgent[...]) -> str:
    """Why a lazy agent whose replies were first read after its context's exit cannot run."""
    return (
        f"The agent {agent.alias} was inquired lazily (start_asap=False) in a MiniAgents "
        "context that has exited since, before anything read its replies: it cannot run "
        "now, as nothing would wait for it. Read the replies inside the block of the "
        "`async with MiniAgents():` it was inquired in (or inquire it with start_asap=True)."
    )


class _HeldInput:
    """The input an interaction holds as read, and its giving up with the interaction's replies.

    The interaction's input (``core``) is held as read from the interaction's start (see
    :func:`_hold_input`). Until its run starts, ``unread`` keeps it: replies given up on
    before then give it up for the run, which will never read it. Once the run has ended
    with its replies still streaming (another agent's replies, an operator's output over
    its input), ``read`` keeps it weakly: replies given up on then give it up too, unless
    someone else reads it. The replies' appender calls it when they are given up on (the
    ``then`` of :meth:`~MessageSequenceAppender.cancel_when_abandoned`).

    It is also the holder of an input passed on before the agent reads it: the stream keeps
    every piece for it (``Flow.hold``), until the agent's reader follows it (its ``gate``,
    the interaction's reply core, is this one's) or the interaction ends. For the deadlock
    watch, the interaction's task is who ends the hold.
    """

    __slots__ = ("gate", "read", "task", "unread")

    def __init__(
        self, input_core: ReplayCore[MessagePromise], reply_core: ReplayCore[MessagePromise]
    ) -> None:
        self.unread: ReplayCore[MessagePromise] | None = input_core
        self.read: weakref.ref[ReplayCore[MessagePromise]] | None = None
        self.gate = reply_core  # (the holder's gate, as the flow asks: see let_go_reader)
        self.task: asyncio.Task[None] | None = None  # the interaction's, once it has one

    def producers(self) -> tuple[object, ...]:
        """The interaction's task (``None`` before it has one)."""
        return (self.task,)

    def __call__(self) -> None:
        """The replies were given up on: give the input up for the interaction."""
        input_core, self.unread = self.unread, None
        if input_core is not None:  # the run never started: give its input up for it
            _release_input(input_core, self.gate, gave_up=True)
        read, self.read = self.read, None
        input_core = None if read is None else read()
        if input_core is not None:  # the run has ended: give its input up for it
            input_core.check_abandoned()


def _release_input(
    input_core: ReplayCore[MessagePromise], reply_core: ReplayCore[MessagePromise], gave_up: bool
) -> None:
    """Release an interaction's input as its reader, ending first any hold (see _HeldInput)."""
    flow = input_core.flow
    if flow is not None and flow.queued:
        flow.let_go_reader(input_core, reply_core)
    audience = input_core.audience  # (none: an ended stream of its own pieces let go of it)
    if audience is not None:
        audience.release_reader(input_core, gave_up)
    elif gave_up:
        input_core.check_abandoned()


def _hold_input(
    inputs: MessageSequencePromise, reply_core: ReplayCore[MessagePromise]
) -> _HeldInput | None:
    """Hold ``inputs`` as read by the interaction from its start (see ``hold_reader``).

    Its run takes the hold over and gives it up at its end; an interaction given up on
    before its run started gives it up then (the ``_HeldInput`` returned, which its
    replies' giving up calls): another agent reading the same input keeps it either way.
    ``None``: no hold (an ended input of ready messages needs none; an ended reply may still
    have messages streaming, which the interaction will read, and gives them up with it).
    """
    input_core = core_of(inputs)
    if input_core.done and input_core.flow is None:
        return None
    input_core.get_audience().hold_reader()
    held = _HeldInput(input_core, reply_core)
    if not input_core.done and input_core.flow is not None:  # kept from its first piece
        input_core.flow.hold(input_core, held)
    return held


class _Relay:
    """The reply hook of a lazy interaction, which an observer set before its start takes."""

    __slots__ = ("target",)

    def __init__(self, target: Callable[[MessagePromise], None]) -> None:
        self.target = target

    def __call__(self, promise: MessagePromise) -> None:
        self.target(promise)


async def _run(
    agent: MiniAgent[...],
    inputs: MessageSequencePromise,
    args: tuple[object, ...],
    names: tuple[str, ...],
    values: tuple[object, ...],
    replies: MessageSequenceAppender,
    reply_core: ReplayCore[MessagePromise],
    tracker: StreamTracker,
    held: _HeldInput | None,
    ending: InteractionEnding | None,
) -> None:
    """Run one interaction of ``agent``; ``tracker`` tracks its replies' core, ``reply_core``.

    ``held``: the input it holds as read (see :func:`_hold_input`), ``None`` if none.
    ``ending``: the interaction's observed ending (see
    :mod:`miniagents.miniagents._observing`), told first, in the interaction's task.
    """
    if ending is not None:
        ending.start(agent, reply_core, None if inputs is _NO_MESSAGES else inputs)
    if replies.task is None:  # started eagerly, inside create_task: see
        _bind_eager_task(replies, held)  # _bind_eager_task
    # held as read for the whole run (see _hold_input), by the run now; None: not held
    input_core = None
    if held is not None:
        input_core, held.unread = held.unread, None
    # the input as the agent reads it: paced by the replies (a view of it whose iterators
    # take each message only when the replies have room); an interaction without input
    # (the shared empty sequence) has nothing to read, so nothing to pace (nor to hold)
    if inputs is not _NO_MESSAGES:
        inputs = replies.paced(inputs)
    interaction = InteractionContext(agent, inputs, replies)  # made here: fewer objects wait
    del inputs  # (the interaction holds it)
    # (the fewer locals, the smaller the frame each waiting run keeps: the function, the
    # limit and the handling of an error are read or done where they are needed)
    try:
        keywords = dict(zip(names, values, strict=True)) if names else {}
        running = agent.func(interaction, *args, **keywords)
        del args, values, keywords  # (the function has its own: held no longer)
        if type(running) is not CoroutineType:  # a plain function's awaitable, or none
            running = _awaiting(running, agent)
        if agent.concurrency_limit is None:
            # (a jump where dropping the result was a pop: no more work per interaction)
            if (returned := await running) is not None:
                _returned(agent, returned)
        elif (returned := await _run_limited(agent.concurrency_limit, running)) is not None:
            _returned(agent, returned)
    except BaseException as error:  # it travels through the replies, even Ctrl+C
        if _failed(agent, interaction, replies, error) and input_core is not None:
            _release_input(input_core, reply_core, gave_up=True)  # given up on: its input too
            input_core = None
        if isinstance(error, asyncio.CancelledError):
            raise
    else:
        interaction._finished = True
        replies.complete()
    finally:
        if input_core is not None:
            _release_input(input_core, reply_core, gave_up=False)
            if held is not None and not reply_core.done:  # its replies stream on (another
                # agent's replies, an operator's output over its input): giving them up
                # gives its input up too
                held.read = weakref.ref(input_core)
        tracker.ended(reply_core)  # (the replies have ended, or it follows them to their end)
        # the task's last step (see forget_task): it leaves the context's tasks now, with no
        # done callback scheduled; one cancelled before its first step never gets here, and
        # its done callback forgets it (the task was given to the replies before it started)
        if replies.task is not None:
            forget_task(replies.task)


def _not_awaited(given: object, fix: str) -> str:
    """A hint if ``given`` is a coroutine (not awaited), closed: never to run, nor to warn."""
    if not inspect.iscoroutine(given):
        return ""
    given.close()
    return f" A coroutine is not a message: await it first, {fix}(await ...)."


def _uncalled(given: object, fix: str) -> str:
    """A hint if ``given`` is a generator function, not called: ``fix(given())``."""
    if inspect.isfunction(given) and (
        inspect.isasyncgenfunction(given) or inspect.isgeneratorfunction(given)
    ):
        return (
            f" {given.__name__} is a generator function: call it, "
            f"{fix}({given.__name__}()), to pass what it yields."
        )
    return ""


def _misplaced(agent: MiniAgent[...], given: object) -> str:
    """A hint if ``given`` is an agent's argument passed as its input, or a function uncalled."""
    if uncalled := _uncalled(given, "inquire"):
        return uncalled
    names = sorted(agent._parameters.names)
    if not (isinstance(given, int | float) and 0 < len(names) <= 4):
        return ""  # (an LLM agent's many options: too many to guess which was meant)
    example = f"inquire({names[0]}={given!r})" if len(names) == 1 else ", ".join(names)
    return (
        " inquire()'s first argument is the input messages; the agent's own arguments go "
        f"by name ({'e.g. ' if len(names) == 1 else 'it takes: '}{example})."
    )


def _not_an_agent_function(given: object) -> str:
    """Why ``given`` (not callable, or an async generator function) is no agent function."""
    if inspect.isasyncgenfunction(given):
        name = getattr(given, "__name__", "agent")
        return (
            f"{name!r} is an async generator function (it yields), but an agent replies "
            f"through its context: replace each `yield x` with `ctx.reply(x)` in `async def "
            f"{name}(ctx: InteractionContext, ...) -> None`."
        )
    if isinstance(given, MiniAgent):
        fix = "it is an agent already: use it as it is (or its fork(...))"
    elif inspect.iscoroutine(given):
        fix = "pass the async function itself, without calling it: `miniagent(my_agent)`"
    else:
        fix = "define one as `async def agent(ctx: InteractionContext, ...) -> None`"
    return (
        f"@miniagent takes an agent function, but got {a_class(type(given))} ({given!r}), "
        f"which cannot be called: {fix}."
    )


def _its_arguments(agent: MiniAgent[...]) -> str:
    """The agent function's own arguments, for a sentence (``fork``'s refusal): or none."""
    names = sorted(agent._parameters.names)
    if not names:
        return ""
    shown = ", ".join(f"{name}=..." for name in names[:4]) + (", ..." if names[4:] else "")
    return f", or one of the agent function's own arguments ({shown})"


def _returned(agent: MiniAgent[...], value: object) -> None:
    """The agent function returned ``value``, which no one would see: fail its interaction.

    (Unless it is what ``ctx.reply`` returns: ``return ctx.reply(...)`` returns nothing.)

    Raises:
        AgentDefinitionError: for any other value (the interaction's replies fail with it).
    """
    if value is _REPLIED:
        return
    raise AgentDefinitionError(
        f"The agent {agent.alias} returned a value other than None, but an agent's return "
        "value is dropped: reply it instead, with ctx.reply(...), and return nothing."
    )


async def _awaited(awaitable: Awaitable[None]) -> None:
    return await awaitable  # (a value is refused by the run: see _returned)


def _awaiting(given: object, agent: MiniAgent[...]) -> Coroutine[Any, Any, None]:
    """What a plain agent function returned, as a coroutine to run (see ``MiniAgent``).

    Raises:
        AgentDefinitionError: if it returned no awaitable (its replies fail with it).
    """
    if given is _REPLIED or not inspect.isawaitable(given):  # (typed Awaitable: code mypy
        # does not check; `return ctx.reply(...)` in a plain def returns nothing to await)
        name = getattr(agent.func, "__name__", "")
        name = name if name.isidentifier() else "agent"
        raise AgentDefinitionError(
            f"The agent function of {agent.alias} must return an awaitable (the agent awaits "
            f"it), but it returned {type(None if given is _REPLIED else given).__name__}: "
            f"make it `async def {name}(ctx: InteractionContext, ...) -> None`."
        )
    return _awaited(given)


async def _run_limited(limit: ConcurrencyLimit, running: Coroutine[Any, Any, object]) -> object:
    """Run an agent function's coroutine once ``limit`` has a slot for it; what it returned.

    (``None``, as its type says; code mypy does not check may return a value: see
    ``_returned``.)
    """
    try:
        await limit.acquire()  # it may wait here for a slot
    except BaseException:
        running.close()  # never to run
        raise
    try:  # (not async with: its bound __aexit__ would be held while the agent runs)
        return await running  # (a value is refused by the run: see _returned)
    finally:
        limit.release()


def _failed(
    agent: MiniAgent[...],
    interaction: InteractionContext,
    replies: MessageSequenceAppender,
    error: BaseException,
) -> bool:
    """An interaction's run failed with ``error``: its replies carry it (else it is logged).

    Returns:
        Whether the interaction was given up on (so it gives its input up in turn).
    """
    finished_early = interaction._finished
    interaction._finished = True
    given_up = isinstance(error, asyncio.CancelledError)
    if not replies.closed:
        replies.fail(error)
    elif not given_up:
        _report_late_error(agent, replies, error, finished_early)
        # its replies were given up on (cancelled) before it ended with what that caused
        # (a reply refused, an input cancelled with them), not with its task's cancellation
        given_up = isinstance(replies.error, (StreamCancelledError, asyncio.CancelledError))
    return given_up


def _bind_eager_task(replies: MessageSequenceAppender, held: _HeldInput | None) -> None:
    """Let a run that an eager task factory started inside ``create_task`` cancel itself.

    Under Python 3.12's ``asyncio.eager_task_factory`` a task's first step runs before
    ``create_task`` returns, so before its starter can hand the task to
    :meth:`~MessageSequenceAppender.cancel_when_abandoned`: the run hands it over itself, so
    that what it replies is adopted from its first message on (the starter's own call, after
    ``create_task``, then changes nothing).
    """
    task = cast("asyncio.Task[None] | None", asyncio.current_task())
    if task is not None:
        replies.cancel_when_abandoned(task, held)
        if held is not None:
            held.task = task


def _report_late_error(
    agent: MiniAgent[...],
    replies: MessageSequenceAppender,
    error: BaseException,
    finished_early: bool,
) -> None:
    """Log an agent's error that its replies, already ended, cannot carry any more."""
    if isinstance(replies.error, (StreamCancelledError, asyncio.CancelledError)):
        if isinstance(error, (StreamCancelledError, AppenderClosedError)):
            # what giving up did to it (its input cancelled with it, a reply refused)
            logger.debug("The agent %s stopped after its replies were given up.", agent.alias)
        else:
            logger.error(
                "The agent %s failed after its replies were given up (cancelled); this "
                "error reaches nobody else.",
                agent.alias,
                exc_info=error,
            )
    elif finished_early:
        logger.error("The agent %s failed after finish_early().", agent.alias, exc_info=error)
    elif replies.error is not error:
        logger.error(
            "The agent %s failed after its replies had ended with the error of a stream it "
            "replied with; its consumers got that error, and this one reaches nobody else.",
            agent.alias,
            exc_info=error,
        )


# -- the agent ------------------------------------------------------------------------


P = ParamSpec("P")

ReplyT_co = TypeVar("ReplyT_co", bound=Message, default=Message, covariant=True)
"""The class of an agent's reply messages (``Message`` unless the agent's type says more)."""

AgentFunction: TypeAlias = Callable[Concatenate[InteractionContext, P], Awaitable[None]]
"""``async def agent(ctx: InteractionContext, ...) -> None``, its parameters kept as ``P``.

Any callable that returns an awaitable is one, as the type says: an ``async def``
function, an object whose ``__call__`` is ``async def``, a ``functools.partial`` of either,
or a plain function that returns an awaitable (``lambda ctx: other(ctx)``). ``@miniagent``
refuses one that surely returns none (a plain function annotated ``-> None``) at once; any
other one that returns none fails its interaction with an ``AgentDefinitionError``."""

AnyAgentFunction: TypeAlias = Callable[Concatenate[InteractionContext, ...], Awaitable[None]]
"""An agent function whose parameters typing cannot keep (e.g. ``ctx`` then ``**kwargs``)."""


class MiniAgent(Generic[P, ReplyT_co]):
    """An agent: an async function run once per interaction, replying through its context.

    Make one with ``@miniagent``. ``P`` is the agent function's own parameters (after the
    context), which :meth:`inquire` takes as keyword arguments. ``ReplyT_co`` is the class
    of its reply messages: ``Message`` (the default, so ``MiniAgent[P]`` is
    ``MiniAgent[P, Message]``) for an agent function, whose replies may be anything; an
    agent that knows better says so in its type, e.g. ``openai_agent``'s replies are
    ``LLMReply[OpenAIMessage]``. ``fork``, ``bind`` and ``as_operator`` keep it. A
    ``MiniAgent[P, OpenAIMessage]`` is also a ``MiniAgent[P, Message]``.

    Attributes:
        alias: The agent's name (its function's name upper-cased by default).
        description: What the agent does. By default its function's docstring (a
            ``functools.partial``'s: its function's); an object whose ``__call__`` is the
            agent function: that ``__call__``'s docstring, else its class's. A tool made
            of the agent (``AgentTool``) and one made of the same callable (``FunctionTool``)
            are described alike.
        start_asap: Whether an interaction starts at ``inquire`` (``True``) or when its
            replies are first consumed (``False``); ``None`` follows the context's
            ``start_everything_asap_by_default``.
        concurrency_limit: The limit on interactions running at once, shared with the forks
            and bindings that set no limit of their own; ``None`` for no limit.
    """

    __slots__ = (
        "__weakref__",  # what is worked out once per agent may be kept beside it, weakly
        "_bound",
        "_bound_keywords",
        "_keyword_names",
        "_parameters",
        "_replies_named",
        "alias",
        "concurrency_limit",
        "description",
        "func",
        "start_asap",
    )

    def __init__(
        self,
        func: AgentFunction[P],
        *,
        alias: str | None = None,
        description: str | None = None,
        max_concurrency: int | ConcurrencyLimit | None = None,
        start_asap: bool | Literal[Sentinel.DEFAULT] | None = None,
        bound: Mapping[str, object] | None = None,
        bound_in: str = "fork",
    ) -> None:
        """Wrap ``func``; ``alias`` defaults to its name upper-cased, ``description`` to its doc.

        Args:
            func: The agent function.
            alias: The agent's name.
            description: What the agent does.
            max_concurrency: At most this many interactions of the agent run at once; the
                others wait, first come first served (a ``ConcurrencyLimit`` is shared).
            start_asap: See :attr:`start_asap`.
            bound: Arguments bound into the agent.
            bound_in: Where ``bound`` came from (for error messages).

        Raises:
            AgentDefinitionError: if ``func`` surely returns no awaitable (a plain function
                annotated ``-> None``: make it ``async def``), or does not take the
                interaction context first. A plain function that returns an awaitable is an
                agent function too, as its type (``AgentFunction``) says; one that returns
                none fails its interaction with this error when it is called.
            AgentArgumentError: if ``bound`` names an argument ``func`` does not take.
                (A subclass may refuse a bound argument too: see
                :meth:`check_bound_arguments`.)
            ConcurrencyLimitError: if ``max_concurrency`` is not a positive int.
            ArgumentError: if ``alias`` is not a str with more than spaces in it (an empty
                one would name the agent nowhere: in errors, tool lists, traces).
        """
        if not callable(func) or inspect.isasyncgenfunction(func):
            raise AgentDefinitionError(_not_an_agent_function(func))
        called = called_function(func)  # (a partial is named and described by its function)
        name = getattr(called, "__name__", type(called).__name__)  # (an object: its class)
        if surely_not_async(func):  # (a plain function returning an awaitable is one)
            raise AgentDefinitionError(
                f"@miniagent needs an async function, but {name!r} is not one. "
                f"Define it as `async def {name}(ctx: InteractionContext, ...) -> None`."
            )
        self.func = func
        self.alias: str = (
            str(name).upper()
            if alias is None
            else check_text(
                alias,
                "alias",
                owner=f"The agent of {name!r}",
                fix='Pass a name, e.g. alias="WRITER", or leave it out (the function\'s name, '
                "upper-cased; a fork keeps its agent's).",
            )
        )
        self.description: str | None = (
            description if description is not None else docstring_of(func)
        )
        self.concurrency_limit: ConcurrencyLimit | None = (
            max_concurrency
            if max_concurrency is None or isinstance(max_concurrency, ConcurrencyLimit)
            else ConcurrencyLimit(max_concurrency)  # checks it: a positive int
        )
        self.start_asap: bool | None = None if start_asap is DEFAULT else start_asap
        # how errors name its replies, with the alias it was made for (see start_interaction)
        self._replies_named = ("", "")
        self._parameters = AgentParameters.of(func, self.alias)
        self._bound: dict[str, object] = _given(bound or {})
        self._parameters.check_known(self._bound, bound_in)
        # (see _keywords: the names and values of the bound arguments, and the names given
        # to its last interaction)
        self._bound_keywords = (tuple(self._bound), tuple(self._bound.values()))
        self._keyword_names: tuple[str, ...] = ()
        self.check_bound_arguments()

    @property
    def bound_arguments(self) -> Mapping[str, object]:
        """The arguments bound with ``fork``, ``bind`` or ``@miniagent(...)`` (read-only)."""
        return MappingProxyType(self._bound)

    def check_bound_arguments(self) -> None:
        """Refuse an argument bound to the agent that its class knows to be wrong.

        Called as the agent is made (``fork``, ``bind``, ...), once the names of the bound
        arguments were checked. A ``MiniAgent`` checks nothing more; a subclass that knows
        what its arguments must be overrides it (an ``LLMAgent`` checks them against its
        options class), so that a wrong one is refused where it is bound.
        """

    def inquire(
        self, messages: MessageType | None = None, /, *args: P.args, **kwargs: P.kwargs
    ) -> MessageSequencePromise[ReplyT_co]:
        """Start the agent with ``messages`` as its input and return its replies.

        The agent starts soon, in the background (or, with ``start_asap=False``, when its
        replies are first consumed), and its replies stream as it produces them; the
        result can be iterated, awaited (giving a ``MessageTuple``) or passed on as input
        to other agents. ``start_asap`` is a reserved keyword (unless the agent function
        takes it); mypy checks ``inquire`` against the agent function exactly, so typed
        code says ``agent.fork(start_asap=False).inquire(...)`` instead. A keyword given
        ``DEFAULT`` is as if it were not given (the bound value or the default applies).

        Raises:
            NoActiveContextError: outside of a ``MiniAgents`` context.
            AgentArgumentError: for unknown, missing or extra positional arguments.
            MessageTypeError: if ``messages`` is not a ``MessageType``.
        """
        inputs = _NO_MESSAGES if messages is None else input_of(self, messages)
        return start(self, inputs, args, kwargs)

    def initiate_inquiry(self, *args: P.args, **kwargs: P.kwargs) -> AgentCall[ReplyT_co]:
        """Start the agent now and send it its input later, with ``send_message``."""
        context = MiniAgents.get_current()
        input_appender = MessageSequenceAppender()
        reply_sequence = start(self, input_appender.sequence, args, kwargs)
        return AgentCall(self, input_appender, reply_sequence, context)

    def fork(
        self,
        *positional: Never,
        alias: str | None = None,
        description: str | None = None,
        max_concurrency: int | None = None,
        start_asap: bool | Literal[Sentinel.DEFAULT] | None = None,
        **kwargs: object,
    ) -> Self:
        """A new agent running the same function with more arguments bound.

        Arguments given later to ``inquire`` override the bound ones. Without a
        ``max_concurrency`` of its own, the fork shares this agent's limit. A keyword
        given ``DEFAULT`` is as if it were not given. The fork is of this agent's class
        (e.g. a ``GeminiAgent``'s fork is a ``GeminiAgent``). Every argument is given by
        its name (``positional`` is there only to refuse the others with a sentence).

        Raises:
            AgentArgumentError: for an argument given positionally.
        """
        if positional:
            raise AgentArgumentError(
                f"{type(self).__name__}.fork() got {', '.join(map(repr, positional)):.80} "
                "positionally, but it takes keyword arguments only, so that was taken as "
                f"none of them. Name each one: e.g. `agent.fork(alias={positional[0]!r:.40})` "
                f"for the fork's alias{_its_arguments(self)}."
            )
        if start_asap is DEFAULT:
            start_asap = None
        return type(self)(
            self.func,
            alias=alias if alias is not None else self.alias,
            description=description if description is not None else self.description,
            max_concurrency=(
                self.concurrency_limit if max_concurrency is None else max_concurrency
            ),
            start_asap=start_asap if start_asap is not None else self.start_asap,
            bound={**self._bound, **_given(kwargs)},
        )

    def bind(self, *args: P.args, **kwargs: P.kwargs) -> Self:
        """``fork`` with the arguments typed: mypy checks them against the agent function.

        ``create_openai_agent = openai_agent.bind`` is how the ``create_*_agent``
        functions are made: they take the agent's own parameters, with their types.

        Raises:
            AgentArgumentError: if the agent function does not take these arguments.
        """
        return type(self)(
            self.func,
            alias=self.alias,
            description=self.description,
            max_concurrency=self.concurrency_limit,
            start_asap=self.start_asap,
            bound={**self._bound, **_given(self._parameters.by_name(args, kwargs))},
        )

    def as_operator(
        self, *args: P.args, **kwargs: P.kwargs
    ) -> Callable[[Observable[MessageType]], Observable[ReplyT_co]]:
        """The agent as a reactive operator: its input is the source, its output the replies.

        Each subscription is one interaction, e.g.
        ``source.pipe(agent_a.as_operator(), agent_b.as_operator(), ops.to_list())``; the
        result emits each reply message, in order, as soon as it is complete. An agent
        piped after another reads that agent's replies directly, with backpressure and no
        copy (see :class:`~miniagents.messages.sequence.MessageObservable`). Each
        subscription lets go of its source when it is disposed (an ``ops.take(n)`` after
        it) and when its interaction is over, unless others read that source (the
        observable of a shared sequence). The marble diagram is in
        :func:`miniagents.operators.agent_operator`.

        Raises:
            AgentArgumentError: for a keyword argument the agent function does not take,
                here rather than at each subscription.
        """
        given = _given(kwargs)
        if "start_asap" not in self._parameters.names:
            given.pop("start_asap", None)  # (an option of the interaction, as in inquire)
        self._parameters.check_known(given, "as_operator")

        def operator(source: Observable[MessageType]) -> Observable[ReplyT_co]:
            return MessageObservable(lambda: start(self, source, args, kwargs), own=True)

        return operator

    def __repr__(self) -> str:
        """Show the alias and the bound arguments."""
        return f"<MiniAgent {self.alias} bound={self._bound!r}>"


class AgentDecorator(Protocol):
    """What ``@miniagent(alias=..., ...)`` returns: the decorator proper.

    Like the bare ``@miniagent``, it keeps the agent function's parameters, and mypy
    refuses a function whose parameters it cannot keep (see :func:`miniagent`).
    """

    def __call__(self, func: AgentFunction[P], /) -> MiniAgent[P]:
        """Make the agent of ``func``, with the decorator's arguments."""
        ...


# No overload takes an agent function whose parameters mypy cannot keep as ``P`` (it would
# type the agent ``MiniAgent[...]`` and check none of its arguments): such a function is a
# mypy error, which tells to make ``ctx`` positional-only (``ctx: InteractionContext, /``).
@overload
def miniagent(func: AgentFunction[P], /) -> MiniAgent[P]: ...


@overload
def miniagent(
    *,
    alias: str | None = None,
    description: str | None = None,
    max_concurrency: int | None = None,
    start_asap: bool | Literal[Sentinel.DEFAULT] | None = None,
    **kwargs: object,
) -> AgentDecorator: ...


def miniagent(
    func: AnyAgentFunction | None = None,
    /,
    *,
    alias: str | None = None,
    description: str | None = None,
    max_concurrency: int | None = None,
    start_asap: bool | Literal[Sentinel.DEFAULT] | None = None,
    **kwargs: object,
) -> MiniAgent[...] | AgentDecorator:
    """Make an agent of an ``async def agent(ctx: InteractionContext, ...)`` function.

    Use it bare (``@miniagent``) or with arguments
    (``@miniagent(alias="ECHO", description="...", greeting="Hi")``); keyword arguments
    other than ``alias``, ``description``, ``max_concurrency`` (at most this many
    interactions at once) and ``start_asap`` (see :attr:`MiniAgent.start_asap`) are bound
    into the agent, like ``fork``.

    The agent's type keeps the function's parameters after the context (``MiniAgent[P]``),
    so mypy checks the arguments of ``inquire``. With ``**kwargs`` after the context, make
    the context positional-only, as in
    ``async def agent(ctx: InteractionContext, /, **tags: str)``: without the ``/`` mypy
    cannot keep the parameters, and it refuses the function ("Consider marking them
    positional-only") rather than check none of its arguments.

    Example:
        >>> @miniagent
        ... async def echo(ctx: InteractionContext) -> None:
        ...     async for message in ctx.message_promises:
        ...         ctx.reply(f"You said: {await message}")
    """

    def decorate(agent_function: AnyAgentFunction, /) -> MiniAgent[...]:
        return MiniAgent(
            agent_function,
            alias=alias,
            description=description,
            max_concurrency=max_concurrency,
            start_asap=start_asap,
            bound=kwargs,
            bound_in="@miniagent",
        )

    # (given the function too, as miniagent(func, ...): was made without max_concurrency
    # and start_asap, silently)
    return decorate(func) if func is not None else cast(AgentDecorator, decorate)
