"""``make_llm_agent``: the one way to declare an LLM agent, from a provider and its options.

The OpenAI, Anthropic and offline agents are all made here, and so is yours::

    openai_agent = make_llm_agent(
        OpenAIOptions, OpenAIProvider(), alias="OPENAI_AGENT", summary="An OpenAI chat model."
    )

An LLM agent is an :class:`LLMAgent` (a ``MiniAgent`` whose parameters are its options'),
and every LLM agent, whatever its provider, is an :class:`AnyLLMAgent`: what mypy joins a
list of agents of different providers to, with ``inquire``, ``fork``, ``bind`` typed by
the options every LLM agent takes (:class:`LLMAgentOptions`) and the replies typed::

    for agent in [gemini_agent, bedrock_agent]:   # list[AnyLLMAgent[AssistantMessage]]
        replies = agent.inquire("Hi", model="...")  # MessageSequencePromise[LLMReply[...]]

Each built-in provider's agents are of a class of its own (``OpenAIAgent``,
``GeminiAgent``, ...: ``class GeminiAgent(LLMAgent[P, GeminiMessage],
AnyLLMAgent[GeminiMessage])``, made with ``GeminiAgent.of(...)``), since mypy joins two
agents of one generic class with different parameters to ``object``; give the agents of
a provider of yours a class so too, to mix them with the others in a list.

The agent's parameters are exactly the fields of the options class (typed for mypy, and
checked by name at run time: a misspelled one is an ``AgentArgumentError``). Each call
builds the prompt from the input messages, replies with messages whose ``role``, ``model``
and ``agent_alias`` are known before their first token, streams the provider's tokens and
tool calls into them, runs the tools the model calls (``tools=[...]``) until it answers,
stops a stalled reply (``stall_timeout``), translates the SDK's errors, and logs each call
of the model (``MiniAgents(llm_logger_agent=...)``): see :mod:`miniagents.ext.llm._call`.
"""

from __future__ import annotations

import dataclasses
import inspect
import operator
from collections.abc import Callable, Mapping, Sequence
from types import MethodType
from typing import (
    TYPE_CHECKING,
    Any,
    Generic,
    Literal,
    ParamSpec,
    Self,
    TypedDict,
    TypeVar,
    Unpack,
    cast,
    overload,
)
from weakref import WeakKeyDictionary

from miniagents.ext.llm._call import refuse_bound_output_type, run_call
from miniagents.ext.llm.errors import LLMConfigurationError
from miniagents.ext.llm.messages import AssistantMessage, LLMReply
from miniagents.ext.llm.provider import LLMOptions, LLMProvider
from miniagents.ext.llm.usage import Budget
from miniagents.ext.tools.tool_like import ToolLike
from miniagents.messages.message import Message
from miniagents.miniagents import InteractionContext
from miniagents.miniagents.agent import AgentFunction, MiniAgent
from miniagents.promising.sentinels import Sentinel

if TYPE_CHECKING:
    from reactivex import Observable

    from miniagents.messages.sequence import MessageSequencePromise, MessageType
    from miniagents.miniagents.agent import AgentCall

__all__ = [
    "AnyLLMAgent",
    "ForkArguments",
    "LLMAgent",
    "LLMAgentOptions",
    "TypedFork",
    "describe_options_agent",
    "make_llm_agent",
]

P = ParamSpec("P")
OptionsT = TypeVar("OptionsT", bound=LLMOptions)
AnswerT = TypeVar("AnswerT", bound=AssistantMessage)
AnswerT_co = TypeVar("AnswerT_co", bound=AssistantMessage, covariant=True)


class _ProviderFreeOptions(TypedDict, total=False):
    """The arguments every LLM agent takes but the provider's own (``model``, ``extra_options``).

    Those a fallback agent's agents all take alike (see :mod:`miniagents.ext.llm.fallback`).
    """

    stream: bool | None
    system: str | None
    stall_timeout: float | Literal[Sentinel.DEFAULT] | None
    tools: Sequence[ToolLike] | None
    max_tool_rounds: int
    max_tool_calls: int
    output_type: type[Message] | None
    output_retries: int
    budget: Budget | None


class LLMAgentOptions(_ProviderFreeOptions, total=False):
    """The arguments every LLM agent takes (the fields of ``LLMOptions``), by keyword.

    What :class:`AnyLLMAgent`'s ``inquire``, ``bind`` and ``as_operator`` take: an agent of
    any provider takes them (each provider's agent takes its own besides).
    """

    model: str | None
    extra_options: Mapping[str, object] | None


F = ParamSpec("F")
AgentT = TypeVar("AgentT")


@dataclasses.dataclass(frozen=True, kw_only=True)
class ForkArguments:
    """The keywords ``MiniAgent.fork`` takes besides the agent's own arguments.

    A base of the dataclass that types a class of agents' ``fork`` (see
    :class:`TypedFork`), beside the options class: its fields are ``fork``'s name and
    limits, with their types and defaults.
    """

    alias: str | None = None
    description: str | None = None
    max_concurrency: int | None = None
    start_asap: bool | Literal[Sentinel.DEFAULT] | None = None


class TypedFork(Generic[F]):
    """A class of agents' ``fork``, typed as the dataclass ``F`` is made: by name and type.

    ``MiniAgent.fork`` takes any keyword (``**kwargs: object``), since a ``ParamSpec``
    takes no keywords besides its own: a class of LLM agents types its forks by giving
    ``fork`` a dataclass of its options class and :class:`ForkArguments`::

        if TYPE_CHECKING:

            @dataclass(frozen=True, kw_only=True)
            class _MyFork(MyOptions, ForkArguments): ...

        class MyAgent(LLMAgent[P, MyMessage], AnyLLMAgent[MyMessage]):
            __slots__ = ()

            if TYPE_CHECKING:
                fork = TypedFork(_MyFork)  # type: ignore[assignment]

    mypy then checks each keyword of a fork by name and type and gives the fork the
    agent's own type. The ``type: ignore[assignment]`` is asked because this ``fork``
    refuses the keywords ``MiniAgent.fork``'s signature takes and the options class lacks
    (the agent refuses them at run time too). Under ``TYPE_CHECKING`` nothing of it runs;
    outside, the attribute is ``MiniAgent.fork`` itself.
    """

    __slots__ = ("arguments",)

    def __init__(self, arguments: Callable[F, object]) -> None:
        self.arguments = arguments

    @overload
    def __get__(self, agent: None, owner: type[object]) -> Self: ...

    @overload
    def __get__(self, agent: AgentT, owner: type[object]) -> Callable[F, AgentT]: ...

    def __get__(self, agent: object, owner: type[object]) -> object:
        """This descriptor on the class, else ``MiniAgent.fork`` bound to ``agent``."""
        if agent is None:
            return self
        return MethodType(MiniAgent.fork, agent)


if TYPE_CHECKING:  # (what types AnyLLMAgent's ``fork``: nothing of it runs)

    @dataclasses.dataclass(frozen=True, kw_only=True)
    class _AnyLLMFork(LLMOptions, ForkArguments):
        """What ``AnyLLMAgent.fork`` takes: the arguments every LLM agent takes."""


class AnyLLMAgent(Generic[AnswerT_co]):
    """An LLM agent of any provider, its answers ``AnswerT_co``: what a list of them is.

    mypy joins a list (or tuple) of agents of different providers, e.g. ``[gemini_agent,
    bedrock_agent.fork(model=...)]``, to ``AnyLLMAgent[AssistantMessage]``, whose
    ``inquire``, ``bind`` and ``as_operator`` take the arguments every LLM agent takes
    (:class:`LLMAgentOptions`, checked by name and type) and whose replies are typed
    (``LLMReply[AssistantMessage]``); ``fork`` takes them too, beside its own ``alias``,
    ``description``, ``max_concurrency`` and ``start_asap``, and gives one of the same
    class (each built-in provider's class types its ``fork`` by its own options). Every
    :class:`LLMAgent` is one. (Its methods are the ``MiniAgent``'s; this class only types
    them.)
    """

    __slots__ = ()

    if TYPE_CHECKING:
        alias: str
        description: str | None
        start_asap: bool | None

        def inquire(
            self, messages: MessageType | None = None, /, **options: Unpack[LLMAgentOptions]
        ) -> MessageSequencePromise[LLMReply[AnswerT_co]]:
            """Start the agent with ``messages`` as its input (see ``MiniAgent.inquire``)."""
            ...

        def initiate_inquiry(
            self, **options: Unpack[LLMAgentOptions]
        ) -> AgentCall[LLMReply[AnswerT_co]]:
            """Start the agent now and send it its input later (``MiniAgent``'s)."""
            ...

        fork = TypedFork(_AnyLLMFork)
        """An agent of the same class with more arguments bound (``MiniAgent.fork``)."""

        def bind(self, **options: Unpack[LLMAgentOptions]) -> Self:
            """``fork`` with the arguments typed (``MiniAgent.bind``)."""
            ...

        def as_operator(
            self, **options: Unpack[LLMAgentOptions]
        ) -> Callable[[Observable[MessageType]], Observable[LLMReply[AnswerT_co]]]:
            """The agent as a reactive operator (``MiniAgent.as_operator``)."""
            ...


class LLMAgent(MiniAgent[P, LLMReply[AnswerT]], AnyLLMAgent[AnswerT]):
    """An LLM agent: a ``MiniAgent`` whose parameters ``P`` are the fields of its options.

    :func:`make_llm_agent` makes one; a provider whose agents should join with the other
    providers' in a list gives them a class of their own (see the module), made with
    :meth:`of`. It is an :class:`AnyLLMAgent` too.
    """

    __slots__ = ()

    if TYPE_CHECKING:  # (the MiniAgent's methods, typed by P: they take its own options)

        def inquire(  # type: ignore[override]  # (P: the options AnyLLMAgent's take, and more)
            self, messages: MessageType | None = None, /, *args: P.args, **kwargs: P.kwargs
        ) -> MessageSequencePromise[LLMReply[AnswerT]]:
            """Start the agent with ``messages`` as its input (see ``MiniAgent.inquire``)."""
            ...

        def initiate_inquiry(  # type: ignore[override]  # (the same)
            self, *args: P.args, **kwargs: P.kwargs
        ) -> AgentCall[LLMReply[AnswerT]]:
            """Start the agent now and send it its input later (``MiniAgent``'s)."""
            ...

        def bind(self, *args: P.args, **kwargs: P.kwargs) -> Self:  # type: ignore[override]
            """``fork`` with the arguments typed (``MiniAgent.bind``)."""
            ...

        def as_operator(  # type: ignore[override]  # (the same)
            self, *args: P.args, **kwargs: P.kwargs
        ) -> Callable[[Observable[MessageType]], Observable[LLMReply[AnswerT]]]:
            """The agent as a reactive operator (``MiniAgent.as_operator``)."""
            ...

    @classmethod
    def of(
        cls,
        options: Callable[P, OptionsT],
        provider: LLMProvider[OptionsT, AnswerT],
        *,
        alias: str,
        summary: str,
    ) -> Self:
        """An agent of this class whose parameters are the fields of ``options``.

        What :func:`make_llm_agent` does, for a class of agents of one's own, e.g.
        ``GeminiAgent.of(GeminiOptions, GeminiProvider(), alias=..., summary=...)``.

        Raises:
            LLMConfigurationError: for an options class that does not extend ``LLMOptions``
                or declares fields without being a dataclass, or a provider that is a class
                (not an instance), has no ``reply`` method, or whose ``message_class`` is not
                an ``AssistantMessage`` subclass.
        """
        _check_definition(options, provider, alias)
        function = _AgentFunction(cast(Callable[..., OptionsT], options), provider, alias, summary)
        return cls(cast("AgentFunction[P]", function), alias=alias)

    def check_bound_arguments(self) -> None:
        """Refuse an argument bound to the agent of the wrong kind, as the agent is made.

        ``fork``, ``bind`` and the ``create_*_agent`` functions check so what they bind
        with the options class's ``check`` (each call checks its own arguments too).

        Raises:
            LLMConfigurationError: for a bound argument of the wrong kind (a
                ``temperature`` that is not a number, a ``max_tokens`` that is not a whole
                number, ...), naming it (its ``parameter``) and the fix.
        """
        function: object = self.func
        if isinstance(function, _AgentFunction):
            function.check(self.bound_arguments, self.alias)


def make_llm_agent(
    options: Callable[P, OptionsT],
    provider: LLMProvider[OptionsT, AnswerT],
    *,
    alias: str,
    summary: str,
) -> LLMAgent[P, AnswerT]:
    """An LLM agent whose parameters are the fields of ``options``.

    Args:
        options: The options class: a keyword-only dataclass extending ``LLMOptions``.
        provider: What streams the replies (see ``LLMProvider``).
        alias: The agent's alias (its replies' ``agent_alias``), e.g. "OPENAI_AGENT".
        summary: The first paragraph of the agent's docstring; the fields' descriptions
            (the ``Attributes:`` of the options classes) follow as its ``Args:``.

    Returns:
        The agent: an ``LLMAgent[P, AnswerT]`` (a ``MiniAgent[P, LLMReply[AnswerT]]``),
        ``P`` being the options class's keyword arguments and ``AnswerT`` the provider's
        ``message_class``: its replies are typed, e.g. ``reply[0].model`` needs no cast.
    """
    return LLMAgent.of(options, provider, alias=alias, summary=summary)


def _check_definition(options: object, provider: object, alias: str) -> None:
    """Refuse an options class or a provider an LLM agent cannot be made of, as it is made."""
    made = f"the LLM agent {alias}"
    if isinstance(options, type) and not issubclass(options, LLMOptions):
        raise LLMConfigurationError(
            f"The options class of {made}, {options.__name__}, does not extend LLMOptions: "
            f"declare it `@dataclass(frozen=True, kw_only=True) class {options.__name__}"
            "(LLMOptions): ...` (from miniagents.ext.llm), so that it has the arguments every "
            "LLM agent takes."
        )
    if (
        isinstance(options, type)
        and "__dataclass_fields__" not in vars(options)
        and inspect.get_annotations(options)
    ):
        declared = ", ".join(inspect.get_annotations(options))
        raise LLMConfigurationError(
            f"The options class of {made}, {options.__name__}, declares {declared} but is not "
            "a dataclass itself, so the agent would not take them: decorate it with "
            "`@dataclass(frozen=True, kw_only=True)` (from dataclasses)."
        )
    if isinstance(provider, type):
        raise LLMConfigurationError(
            f"The provider of {made} is the class {provider.__name__}, not a provider: pass "
            f"an instance of it, e.g. make_llm_agent(..., {provider.__name__}(), ...)."
        )
    if not callable(getattr(provider, "reply", None)):
        raise LLMConfigurationError(
            f"The provider of {made}, {provider!r}, has no reply(call, options) method: an "
            "LLMProvider streams each reply's tokens and tool calls from it (see "
            "miniagents.ext.llm.LLMProvider)."
        )
    message_class = getattr(provider, "message_class", None)
    if not (isinstance(message_class, type) and issubclass(message_class, AssistantMessage)):
        raise LLMConfigurationError(
            f"The provider of {made} has {message_class!r} for its message_class, which must "
            "be AssistantMessage or a subclass of it (from miniagents.ext.llm): the replies "
            "are the assistant's, with a role, a model and a usage."
        )


class _AgentFunction(Generic[OptionsT, AnswerT]):
    """The agent function of an LLM agent: it builds the options, then runs the call.

    An object rather than a closure, so that the agent and its forks pickle (it pickles
    as its options class, its provider, alias and summary), and so that the agent checks
    the arguments bound to it with its options class (see ``LLMAgent.check_bound_arguments``).
    """

    def __init__(
        self,
        options: Callable[..., OptionsT],
        provider: LLMProvider[OptionsT, AnswerT],
        alias: str,
        summary: str,
    ) -> None:
        self._made = (options, provider, alias, summary)
        self._provider = provider
        self._build = options
        self._reusable = _reusable(options)
        describe_options_agent(self, options, alias=alias, summary=summary)

    async def __call__(self, ctx: InteractionContext, /, **arguments: object) -> None:
        """Run one call of the agent: its options made of ``arguments``, then the call."""
        provider = self._provider
        made = _options(ctx, provider, self._build, self._reusable, arguments)
        running = run_call(ctx, provider, made)
        del arguments  # (made into the options: not held while the call runs)
        await running

    def __reduce__(self) -> tuple[type[Self], tuple[object, ...]]:
        """Pickle as what made it (the options class and the provider pickle by reference)."""
        return type(self), self._made

    def check(self, bound: Mapping[str, object], alias: str) -> None:
        """Refuse a bound argument of the wrong kind (the options' ``check``)."""
        self._build(**bound).check(alias)


_BUILT: WeakKeyDictionary[
    MiniAgent[...], tuple[Callable[..., Any], tuple[str, ...], tuple[object, ...], Any]
]
_BUILT = WeakKeyDictionary()
"""By agent: the options class and arguments of its last call, and the options made. (Read here, not
in the agent function, which pickles: a Ray worker gets a copy of the agent.)"""


def _options(
    ctx: InteractionContext,
    provider: LLMProvider[OptionsT, Any],
    build: Callable[..., OptionsT],
    reusable: bool,
    arguments: dict[str, object],
) -> OptionsT:
    """The options of a call: those of the agent's last call if its arguments are the same.

    The same means the very same objects (``is``), not equal ones (``1`` and ``True``).

    Raises:
        LLMConfigurationError: for an ``output_type`` bound to the agent.
    """
    agent = ctx.this_agent
    names, values = tuple(arguments), tuple(arguments.values())
    last = _BUILT.get(agent) if reusable else None
    if (
        last is not None
        and last[0] is build
        and last[1] == names
        and all(map(operator.is_, last[2], values))
    ):
        made: OptionsT = last[3]
        return made
    refuse_bound_output_type(
        agent.bound_arguments.get("output_type"),
        agent.alias,
        typed_as=f"{provider.message_class.__name__}s",
        made_with=f"{agent.alias.lower()}.fork(...)",
    )
    made = build(**arguments)
    if reusable:
        _BUILT[agent] = (build, names, values, made)
    return made


def _reusable(options: Callable[..., object]) -> bool:
    """Whether one instance of ``options`` may serve every call given the same arguments.

    It may when making one does nothing but store the arguments and the defaults: a
    dataclass with no ``__post_init__`` and no ``default_factory`` (which would give each
    call a fresh object). The options are frozen, so what is worked out from them once
    (the call options, the SDK's arguments) serves each call too.
    """
    if not isinstance(options, type) or not dataclasses.is_dataclass(options):
        return False
    if hasattr(options, "__post_init__"):
        return False
    return all(item.default_factory is dataclasses.MISSING for item in dataclasses.fields(options))


# -- the agent's docstring -------------------------------------------------------------------


def describe_options_agent(
    run: Callable[..., object], options: Callable[..., object], *, alias: str, summary: str
) -> None:
    """Give ``run``, an agent function taking ``**arguments``, the face of ``options``.

    For agents whose parameters are an options class's fields (the LLM agents, the
    realtime agents of :mod:`miniagents.ext.realtime`): ``run``'s signature becomes the
    context then the fields, its name the alias in lower case, its module the options', and
    its docstring ``summary`` then ``Args:`` made of the options classes' ``Attributes:`` (a
    subclass's description of a field replaces its base's).
    """
    parameters = inspect.signature(options).parameters.values()
    context = inspect.Parameter("ctx", inspect.Parameter.POSITIONAL_ONLY)
    run.__signature__ = inspect.Signature([context, *parameters])  # type: ignore[attr-defined]
    run.__name__ = run.__qualname__ = alias.lower()
    run.__module__ = getattr(options, "__module__", __name__)
    run.__doc__ = _docstring(summary, options)


def _docstring(summary: str, options: Callable[..., object]) -> str:
    """``summary``, then ``Args:``: the fields described by the options classes' docstrings.

    A class's ``Attributes:`` section describes its own fields; a subclass's description of
    a field replaces its base class's.
    """
    described: dict[str, str] = {}
    for cls in reversed(getattr(options, "__mro__", ())):
        described.update(_attributes(cls.__dict__.get("__doc__")))
    lines = [inspect.cleandoc(summary), "", "Args:", "    ctx: The interaction."]
    lines += [f"    {text}" for text in described.values()]
    return "\n".join(lines)


def _attributes(docstring: str | None) -> dict[str, str]:
    """The entries of a Google-style ``Attributes:`` section, by name, lines kept."""
    if not docstring:
        return {}
    entries: dict[str, str] = {}
    section = False
    name = ""
    for line in inspect.cleandoc(docstring).splitlines():
        if line.strip() == "Attributes:":
            section = True
        elif section and line.startswith("        ") and name:
            entries[name] += "\n" + line
        elif section and line.startswith("    ") and ":" in line:
            name = line.strip().split(":")[0]
            entries[name] = line.strip()
        elif section and line.strip():
            section = False
    return entries
