"""``MiniAgent`` and the ``@miniagent`` decorator: agents are async functions."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Mapping
from types import MappingProxyType
from typing import Concatenate, Generic, ParamSpec, Protocol, TypeAlias, cast, overload

from reactivex import Observable
from typing_extensions import TypeVar

from miniagents.messages.appender import MessageSequenceAppender
from miniagents.messages.message import Message
from miniagents.messages.sequence import MessageObservable, MessageSequencePromise, MessageType
from miniagents.miniagents._limiter import ConcurrencyLimit
from miniagents.miniagents._params import AgentParameters
from miniagents.miniagents._running import input_of, start
from miniagents.miniagents.context import MiniAgents
from miniagents.miniagents.errors import AgentDefinitionError
from miniagents.miniagents.interaction import AgentCall, InteractionContext

__all__ = [
    "AgentDecorator",
    "AgentFunction",
    "AnyAgentFunction",
    "MiniAgent",
    "ReplyT_co",
    "miniagent",
]

P = ParamSpec("P")

ReplyT_co = TypeVar("ReplyT_co", bound=Message, default=Message, covariant=True)
"""The class of an agent's reply messages (``Message`` unless the agent's type says more)."""

AgentFunction: TypeAlias = Callable[Concatenate[InteractionContext, P], Awaitable[None]]
"""``async def agent(ctx: InteractionContext, ...) -> None``, its parameters kept as ``P``."""

AnyAgentFunction: TypeAlias = "Callable[Concatenate[InteractionContext, ...], Awaitable[None]]"
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
        description: What the agent does (its function's docstring by default).
        start_asap: Whether an interaction starts at ``inquire`` (``True``) or when its
            replies are first consumed (``False``); ``None`` follows the context's
            ``start_everything_asap_by_default``.
        concurrency_limit: The limit on interactions running at once, shared with the forks
            and bindings that set no limit of their own; ``None`` for no limit.
    """

    __slots__ = (
        "_bound",
        "_parameters",
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
        start_asap: bool | None = None,
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
            AgentDefinitionError: if ``func`` is not an ``async def`` function taking the
                interaction context first.
            AgentArgumentError: if ``bound`` names an argument ``func`` does not take.
            ConcurrencyLimitError: if ``max_concurrency`` is not a positive int.
        """
        name = getattr(func, "__name__", repr(func))
        if not inspect.iscoroutinefunction(func):
            raise AgentDefinitionError(
                f"@miniagent needs an async function, but {name!r} is not one. "
                f"Define it as `async def {name}(ctx: InteractionContext, ...) -> None`."
            )
        self.func = func
        self.alias: str = alias if alias is not None else str(name).upper()
        self.description: str | None = (
            description if description is not None else inspect.getdoc(func)
        )
        self.concurrency_limit: ConcurrencyLimit | None = (
            ConcurrencyLimit(max_concurrency)
            if isinstance(max_concurrency, int)
            else max_concurrency
        )
        self.start_asap = start_asap
        self._parameters = AgentParameters.of(func, self.alias)
        self._bound: dict[str, object] = dict(bound or {})
        self._parameters.check_known(self._bound, bound_in)

    @property
    def bound_arguments(self) -> Mapping[str, object]:
        """The arguments bound with ``fork``, ``bind`` or ``@miniagent(...)`` (read-only)."""
        return MappingProxyType(self._bound)

    def inquire(
        self, messages: MessageType | None = None, /, *args: P.args, **kwargs: P.kwargs
    ) -> MessageSequencePromise[ReplyT_co]:
        """Start the agent with ``messages`` as its input and return its replies.

        The agent starts soon, in the background (or, with ``start_asap=False``, when its
        replies are first consumed), and its replies stream as it produces them; the
        result can be iterated, awaited (giving a ``MessageTuple``) or passed on as input
        to other agents. ``start_asap`` is a reserved keyword (unless the agent function
        takes it); mypy checks ``inquire`` against the agent function exactly, so typed
        code says ``agent.fork(start_asap=False).inquire(...)`` instead.

        Raises:
            NoActiveContextError: outside of a ``MiniAgents`` context.
            AgentArgumentError: for positional, unknown or missing arguments.
            MessageTypeError: if ``messages`` is not a ``MessageType``.
        """
        # typed by the reply class, as in _typed (inline: the hot path)
        return start(self, input_of(self, messages), args, kwargs)  # type: ignore[return-value]

    def initiate_inquiry(self, *args: P.args, **kwargs: P.kwargs) -> AgentCall[ReplyT_co]:
        """Start the agent now and send it its input later, with ``send_message``."""
        context = MiniAgents.get_current()
        inputs = MessageSequenceAppender()
        replies = self._typed(start(self, inputs.sequence, args, kwargs))
        return AgentCall(self, inputs, replies, context)

    @staticmethod
    def _typed(replies: MessageSequencePromise) -> MessageSequencePromise[ReplyT_co]:
        """The replies, typed by the agent's reply class (which its maker vouches for)."""
        return replies  # type: ignore[return-value]

    def fork(
        self,
        *,
        alias: str | None = None,
        description: str | None = None,
        max_concurrency: int | None = None,
        start_asap: bool | None = None,
        **kwargs: object,
    ) -> MiniAgent[P, ReplyT_co]:
        """A new agent running the same function with more arguments bound.

        Arguments given later to ``inquire`` override the bound ones. Without a
        ``max_concurrency`` of its own, the fork shares this agent's limit.
        """
        return MiniAgent(
            self.func,
            alias=alias if alias is not None else self.alias,
            description=description if description is not None else self.description,
            max_concurrency=max_concurrency or self.concurrency_limit,
            start_asap=start_asap if start_asap is not None else self.start_asap,
            bound={**self._bound, **kwargs},
        )

    def bind(self, *args: P.args, **kwargs: P.kwargs) -> MiniAgent[P, ReplyT_co]:
        """``fork`` with the arguments typed: mypy checks them against the agent function.

        ``create_openai_agent = openai_agent.bind`` is how the ``create_*_agent``
        functions are made: they take the agent's own parameters, with their types.

        Raises:
            AgentArgumentError: if the agent function does not take these arguments.
        """
        return MiniAgent(
            self.func,
            alias=self.alias,
            description=self.description,
            max_concurrency=self.concurrency_limit,
            start_asap=self.start_asap,
            bound={**self._bound, **self._parameters.by_name(args, kwargs)},
        )

    def as_operator(
        self, *args: P.args, **kwargs: P.kwargs
    ) -> Callable[[Observable[Message]], Observable[ReplyT_co]]:
        """The agent as a reactive operator: its input is the source, its output the replies.

        Each subscription is one interaction, e.g.
        ``source.pipe(agent_a.as_operator(), agent_b.as_operator(), ops.to_list())``; the
        result emits each reply message, in order, as soon as it is complete. An agent
        piped after another reads that agent's replies directly, with backpressure and no
        copy (see :class:`~miniagents.messages.sequence.MessageObservable`). The marble
        diagram is in :func:`miniagents.operators.agent_operator`.
        """

        def operator(source: Observable[Message]) -> Observable[ReplyT_co]:
            return MessageObservable(lambda: self._typed(start(self, source, args, kwargs)))

        return operator

    def __repr__(self) -> str:
        """Show the alias and the bound arguments."""
        return f"<MiniAgent {self.alias} bound={self._bound!r}>"


class AgentDecorator(Protocol):
    """What ``@miniagent(alias=..., ...)`` returns: the decorator proper."""

    @overload
    def __call__(self, func: AgentFunction[P], /) -> MiniAgent[P]: ...

    @overload
    def __call__(  # type: ignore[overload-cannot-match]
        self, func: AnyAgentFunction, /
    ) -> MiniAgent[...]: ...


@overload
def miniagent(func: AgentFunction[P], /) -> MiniAgent[P]: ...


@overload
def miniagent(func: AnyAgentFunction, /) -> MiniAgent[...]: ...  # type: ignore[overload-cannot-match]


@overload
def miniagent(
    *,
    alias: str | None = None,
    description: str | None = None,
    max_concurrency: int | None = None,
    start_asap: bool | None = None,
    **kwargs: object,
) -> AgentDecorator: ...


def miniagent(
    func: AnyAgentFunction | None = None,
    /,
    *,
    alias: str | None = None,
    description: str | None = None,
    max_concurrency: int | None = None,
    start_asap: bool | None = None,
    **kwargs: object,
) -> MiniAgent[...] | AgentDecorator:
    """Make an agent of an ``async def agent(ctx: InteractionContext, ...)`` function.

    Use it bare (``@miniagent``) or with arguments
    (``@miniagent(alias="ECHO", description="...", greeting="Hi")``); keyword arguments
    other than ``alias``, ``description``, ``max_concurrency`` (at most this many
    interactions at once) and ``start_asap`` (see :attr:`MiniAgent.start_asap`) are bound
    into the agent, like ``fork``.

    Example:
        >>> @miniagent
        ... async def echo(ctx: InteractionContext) -> None:
        ...     async for message in ctx.message_promises:
        ...         ctx.reply(f"You said: {await message}")
    """
    if func is not None:
        return MiniAgent(func, alias=alias, description=description, bound=kwargs)

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

    return cast(AgentDecorator, decorate)
