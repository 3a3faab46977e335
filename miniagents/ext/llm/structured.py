"""Structured output: an LLM agent that answers with a validated ``Message`` subclass.

Declare the answer as a ``Message`` subclass with typed fields, and give it to an LLM agent
with :func:`structured` (typed), or as ``output_type=`` to one call, ``inquire(...,
output_type=Weather)``, of any agent made by ``make_llm_agent`` (bound with ``fork`` it is
refused: the forked agent would be typed with the provider's replies)::

    class Weather(Message):
        city: str
        celsius: float

    weather_agent = structured(openai_agent.fork(model="gpt-4o-mini"), Weather)
    weather = (await weather_agent.inquire("Weather in Paris?"))[0]  # a Weather, to mypy too

``structured`` makes an agent that replies with the answer only (a ``StructuredAgent``);
``inquire(..., output_type=Weather)`` keeps the whole reply (tool calls and results, then
the answer).

The model is asked for JSON of those fields through its API's own mechanism (OpenAI Chat
Completions: ``response_format``, strict ``json_schema``; the Responses API: ``text.format``;
Anthropic: ``output_config.format``; the offline model: its script, or a sample of the
schema). The answer is an instance of the type: its fields validated by the type itself
(validators included), its text the JSON, with the reply's metadata (``role``, ``model``,
``finish_reason``, ``usage``, ...) as extra fields (typed fields for a type that extends
:class:`~miniagents.ext.llm.LLMMessage`, which the model is not asked to write). An answer
that does not validate goes back to the model with the errors, ``output_retries`` times
(default 1); then the reply fails with an
:class:`~miniagents.ext.llm.errors.LLMOutputValidationError`.

**Partial objects.** The answer's message enters the reply as soon as the model starts
writing it, but its text comes whole, once it has validated. Meanwhile
:func:`partial_outputs` gives the objects parsed so far (pydantic's partial JSON), each an
instance of the type, whenever one more field validates or a string grows::

    tokens:    '{"city": "Pa'   'ris", "celsius": 2'   '1.5}'
    partials:  (none: celsius missing)  Weather(city='Paris', celsius=2.0)  Weather(..., 21.5)
    message:                                                             Weather(...) |

An answer that did not validate had partials too: a retry's partials follow them. The JSON
so far is parsed at each token only once someone asked for the partials.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Callable
from typing import (
    TYPE_CHECKING,
    Any,
    Generic,
    ParamSpec,
    Protocol,
    Self,
    TypeVar,
    cast,
    overload,
)
from weakref import WeakKeyDictionary

from reactivex import Observable, operators

from miniagents.arguments import a_class, check_count
from miniagents.ext.llm._output_schema import PartialParser, output_format_of
from miniagents.ext.llm.errors import LLMConfigurationError
from miniagents.ext.llm.messages import LLMMessage
from miniagents.messages.message import Message
from miniagents.messages.message_promise import MessagePromise
from miniagents.messages.sequence import MessageSequencePromise
from miniagents.miniagents import InteractionContext
from miniagents.miniagents.agent import MiniAgent
from miniagents.miniagents.errors import AgentArgumentError
from miniagents.promising.lowlevel import ReplayCore, core_of, stream_on
from miniagents.promising.streamed_promise import StreamedPromise

if TYPE_CHECKING:
    from miniagents.messages.sequence import MessageType
    from miniagents.miniagents.agent import AgentCall

__all__ = ["PartialOutputs", "StructuredAgent", "partial_outputs", "structured"]

P = ParamSpec("P")
OutputT = TypeVar("OutputT", bound=Message)
OutputT_co = TypeVar("OutputT_co", bound=Message, covariant=True)
AgentT = TypeVar("AgentT", bound=MiniAgent[..., Any])
AgentT_co = TypeVar("AgentT_co", covariant=True)
SelfT = TypeVar("SelfT")
SelfT_co = TypeVar("SelfT_co", covariant=True)


class LivePartials:
    """The partial objects of an answer being written, parsed only once someone asks.

    Attributes:
        core: The partials' record.
        wanted: Whether anyone asked for them (until then, no token is parsed: parsing
            the JSON so far at every token is the costly part).
    """

    __slots__ = ("core", "wanted")

    def __init__(self) -> None:
        """Open, unwanted."""
        self.core: ReplayCore[Any] = ReplayCore(open_ended=True)
        self.wanted = False


_LIVE: WeakKeyDictionary[ReplayCore[Any], LivePartials] = WeakKeyDictionary()
"""The partials of each structured answer still known, by the core of its message."""


class PartialOutputs(StreamedPromise[OutputT, OutputT]):
    """The partial objects of a structured answer: ``async for`` them, or observe them.

    Replayable like every stream here: each consumer gets every partial from the first.
    ``await`` it for the answer itself (the message, complete). Make one with
    :func:`partial_outputs`.
    """

    __slots__ = ("_answer",)

    _answer: MessagePromise[Message]

    async def _resolve_whole(self, pieces: tuple[OutputT, ...]) -> OutputT:
        return cast(OutputT, await self._answer)


if TYPE_CHECKING:  # (what types a StructuredAgent's methods: nothing of it runs)

    class _Inquire(Protocol[P, OutputT_co]):
        def __call__(
            self, messages: MessageType | None = None, /, *args: P.args, **kwargs: P.kwargs
        ) -> MessageSequencePromise[OutputT_co]: ...

    class _Initiate(Protocol[P, OutputT_co]):
        def __call__(self, *args: P.args, **kwargs: P.kwargs) -> AgentCall[OutputT_co]: ...

    class _Bind(Protocol[P, SelfT_co]):
        def __call__(self, *args: P.args, **kwargs: P.kwargs) -> SelfT_co: ...

    class _Operator(Protocol[P, OutputT_co]):
        def __call__(
            self, *args: P.args, **kwargs: P.kwargs
        ) -> Callable[[Observable[MessageType]], Observable[OutputT_co]]: ...

    class _Forkable(Protocol[P]):
        """An agent whose ``fork`` takes the arguments ``P`` (its own, and ``alias``, ...)."""

        def fork(self, *args: P.args, **kwargs: P.kwargs) -> object: ...

    class _Inquirable(Protocol[P]):
        """An agent whose ``inquire`` takes the arguments ``P``.

        A ``MiniAgent[P, R]``, or an ``AnyLLMAgent``: what agents of several providers join to.
        """

        def inquire(
            self, messages: MessageType | None = None, /, *args: P.args, **kwargs: P.kwargs
        ) -> object: ...

    # Each method is a descriptor whose owner, ``type[StructuredAgent[A, O]]``, gives the
    # arguments ``P`` of the agent asked (``A``'s ``inquire``'s) and the answer ``O``.

    class _TypedInquire:
        @overload
        def __get__(self, agent: None, owner: object) -> _TypedInquire: ...
        @overload
        def __get__(
            self, agent: object, owner: type[StructuredAgent[_Inquirable[P], OutputT]]
        ) -> _Inquire[P, OutputT]: ...
        def __get__(self, agent: object, owner: object) -> object: ...

    class _TypedInitiate:
        @overload
        def __get__(self, agent: None, owner: object) -> _TypedInitiate: ...
        @overload
        def __get__(
            self, agent: object, owner: type[StructuredAgent[_Inquirable[P], OutputT]]
        ) -> _Initiate[P, OutputT]: ...
        def __get__(self, agent: object, owner: object) -> object: ...

    class _TypedBind:
        @overload
        def __get__(self, agent: None, owner: object) -> _TypedBind: ...
        @overload
        def __get__(
            self, agent: SelfT, owner: type[StructuredAgent[_Inquirable[P], Any]]
        ) -> _Bind[P, SelfT]: ...
        def __get__(self, agent: object, owner: object) -> object: ...

    class _TypedFork:
        @overload
        def __get__(self, agent: None, owner: object) -> _TypedFork: ...
        @overload
        def __get__(
            self, agent: SelfT, owner: type[StructuredAgent[_Forkable[P], Any]]
        ) -> _Bind[P, SelfT]: ...
        def __get__(self, agent: object, owner: object) -> object: ...

    class _TypedOperator:
        @overload
        def __get__(self, agent: None, owner: object) -> _TypedOperator: ...
        @overload
        def __get__(
            self, agent: object, owner: type[StructuredAgent[_Inquirable[P], OutputT]]
        ) -> _Operator[P, OutputT]: ...
        def __get__(self, agent: object, owner: object) -> object: ...


# -- StructuredAgent: typed by the agent it asks -------------------------------------------


class StructuredAgent(MiniAgent[..., OutputT_co], Generic[AgentT_co, OutputT_co]):
    """The agent that :func:`structured` makes: ``AgentT_co`` answering with ``OutputT_co``.

    Its ``inquire``, ``initiate_inquiry``, ``bind`` and ``as_operator`` take the arguments
    of the agent it asks (``AgentT_co``'s, checked by name and type), its ``fork`` what that
    agent's ``fork`` takes (its arguments, ``alias``, ``description``, ...), giving a
    structured agent of the same type (its ``fork`` and ``bind`` refuse an ``output_type``
    at once: make another with :func:`structured`), and its replies are ``OutputT_co`` s.
    The agent it asks is a parameter of its type, not its arguments, so that mypy joins a list of
    structured agents of different providers, e.g.
    ``[structured(openai_agent, Weather), structured(anthropic_agent, Weather)]``, to
    ``list[StructuredAgent[AnyLLMAgent[AssistantMessage], Weather]]``, whose methods take the
    arguments every LLM agent takes (:class:`~miniagents.ext.llm.LLMAgentOptions`). (Its
    methods are the ``MiniAgent``'s; this class only types them.)
    """

    __slots__ = ()

    if TYPE_CHECKING:
        inquire = _TypedInquire()
        """Start the agent with ``messages`` as its input (see ``MiniAgent.inquire``)."""
        initiate_inquiry = _TypedInitiate()
        """Start the agent now and send it its input later (``MiniAgent``'s)."""
        fork = _TypedFork()  # type: ignore[assignment]  # (MiniAgent's takes any keyword)
        """An agent of the same type with more arguments bound (``MiniAgent.fork``)."""
        bind = _TypedBind()
        """``fork`` with the arguments typed (``MiniAgent.bind``)."""
        as_operator = _TypedOperator()
        """The agent as a reactive operator (``MiniAgent.as_operator``)."""
    else:

        def fork(self, *args: object, **kwargs: object) -> Self:
            """``MiniAgent.fork``, refusing an ``output_type`` now (see :func:`_no_output_type`)."""
            _no_output_type(self, kwargs, "fork")
            return super().fork(*args, **kwargs)

        def bind(self, *args: object, **kwargs: object) -> Self:
            """``MiniAgent.bind``, refusing an ``output_type`` now (see :func:`_no_output_type`)."""
            _no_output_type(self, kwargs, "bind")
            return super().bind(*args, **kwargs)


def _no_output_type(agent: MiniAgent[..., Any], arguments: dict[str, object], method: str) -> None:
    """Refuse an ``output_type`` bound to a structured agent, where it is bound.

    Its answer's type is its own (a type of its replies): another would be refused at each
    of its calls, so the fork or bind that binds one is refused instead.

    Raises:
        LLMConfigurationError: if ``arguments`` has an ``output_type``.
    """
    if "output_type" in arguments:
        raise LLMConfigurationError(
            f"The structured agent {agent.alias} answers with the type it was made with: its "
            f"{method}() takes no output_type (got {arguments['output_type']!r:.60}). Make "
            "another with structured(agent, OtherType) from the LLM agent instead."
        )


def structured(
    agent: AgentT, output_type: type[OutputT], *, output_retries: int | None = None
) -> StructuredAgent[AgentT, OutputT]:
    """``agent`` answering with an ``output_type``, and only with it: typed for mypy.

    The new agent takes ``agent``'s arguments (those bound stay bound) and replies with
    exactly one message, the answer, typed ``OutputT``. Tool calls and results (with
    ``tools=[...]``) run as usual but stay out of its reply; for the whole reply, calls
    and results first, use ``agent.inquire(..., output_type=...)`` (typed as ``agent``'s
    replies). An ``output_type`` bound with ``agent.fork(...)`` or ``agent.bind(...)`` is
    refused at the agent's first call: mypy would type its replies as the provider's
    messages, not ``OutputT`` s; this function is the typed way.

    Args:
        agent: An LLM agent (made by ``make_llm_agent``: ``openai_agent``,
            ``anthropic_agent``, ``offline_agent``, ...), forked or not.
        output_type: A ``Message`` subclass with typed fields: what the answer is.
        output_retries: How many times an answer that does not validate goes back to the
            model with the errors, before the reply fails. ``None`` (the default): as
            ``agent`` has it (bound with ``agent.fork(output_retries=...)``, else 1).

    Raises:
        LLMConfigurationError: if ``output_type`` is not a ``Message`` subclass with fields,
            or ``output_retries`` is not a whole number of at least 0 (nor ``None``).
        AgentArgumentError: if ``agent`` is not an LLM agent (not an agent at all, or one
            that takes no ``output_type``).
    """
    output_format_of(output_type)  # refuse a bad type now rather than at the first call
    if output_retries is not None:  # (now, and naming this call rather than a fork)
        check_count(
            output_retries,
            "output_retries",
            least=0,
            owner="structured",
            fix="E.g. structured(agent, Weather, output_retries=2), or None for the agent's.",
            error=LLMConfigurationError,
        )
    given: object = agent  # (typed so; code mypy does not check may pass anything)
    if not isinstance(given, MiniAgent):
        raise AgentArgumentError(
            f"structured takes an LLM agent, not {given!r}: pass one made by make_llm_agent, "
            "e.g. structured(openai_agent.fork(model='gpt-4o-mini'), Weather)."
        )
    # refuses an agent that takes no output_type now; the type itself goes with each call
    try:
        inner: MiniAgent[..., Message] = agent.fork(output_type=None)
    except AgentArgumentError as error:  # a plain @miniagent: a parameter is not the fix
        raise AgentArgumentError(
            f"structured takes an LLM agent, and {agent.alias} is not one (it takes no "
            "output_type): pass one made by make_llm_agent, e.g. "
            "structured(openai_agent.fork(model='gpt-4o-mini'), Weather)."
        ) from error
    if output_retries is not None:
        try:
            inner = inner.fork(output_retries=output_retries)
        except AgentArgumentError as error:  # (said of fork(), which the user did not call)
            raise AgentArgumentError(
                f"structured(..., output_retries=...) got {agent.alias}, which takes no "
                "output_retries: leave it out, or pass an agent made by make_llm_agent."
            ) from error

    async def run(ctx: InteractionContext, /, **arguments: object) -> None:
        if "output_type" in arguments:
            raise LLMConfigurationError(
                f"This agent answers with {a_class(output_type)}: it takes no output_type "
                f"(leave it out: the answers are {output_type.__name__}s already). For another "
                "type, make another with structured(agent, OtherType)."
            )
        given = {**arguments, "output_type": output_type}
        ctx.reply(_answers(inner.inquire(ctx.messages, **given), output_type))

    run.__signature__ = inspect.signature(agent.func)  # type: ignore[attr-defined]
    run.__name__ = run.__qualname__ = getattr(agent.func, "__name__", "structured")
    run.__module__ = agent.func.__module__
    answering: StructuredAgent[AgentT, Message] = StructuredAgent(
        run, alias=agent.alias, description=agent.description
    )
    return cast("StructuredAgent[AgentT, OutputT]", answering)


async def _answers(
    replies: MessageSequencePromise, output_type: type[Message]
) -> AsyncIterator[MessagePromise]:
    """The answers among an LLM agent's replies (its tool calls and results left out)."""
    async for promise in replies:
        if issubclass(promise.message_class, output_type):
            yield promise


@overload
def partial_outputs(promise: MessagePromise[OutputT], /) -> PartialOutputs[OutputT]: ...


@overload
def partial_outputs(
    promise: MessagePromise[Message], output_type: type[OutputT], /
) -> PartialOutputs[OutputT]: ...


def partial_outputs(
    promise: MessagePromise[Message], output_type: type[Message] | None = None, /
) -> PartialOutputs[Any]:
    """The partial objects of a structured answer, as they stream.

    For the answer of an LLM agent with an ``output_type``, the partials of every try of
    the model, live from when they are first asked for (the JSON is parsed at each token
    only then); for an answer complete before that, or any other message promise of
    ``output_type`` (e.g. one read back from a history), the partials of its text.

    Args:
        promise: The answer's message promise (from the agent's reply): typed by its class
            (a ``structured`` agent's replies are), or give ``output_type``.
        output_type: The output type, for a promise typed ``MessagePromise[Message]`` (its
            message class, or a base class of it).

    Raises:
        LLMConfigurationError: if ``promise`` is not a message promise (e.g. the message
            itself), or its messages are not ``output_type`` s, or, with no ``output_type``,
            if it is not a structured answer (e.g. the text answer of an agent asked for
            no output type, or a tool call).
    """
    given: object = promise  # (typed so; code mypy does not check may pass anything)
    if not isinstance(given, MessagePromise):
        raise LLMConfigurationError(
            f"partial_outputs takes the promise of a structured answer, not {given!r}: pass "
            "the promise as it comes from the agent's reply, e.g. `async for promise in "
            "weather_agent.inquire(...): partial_outputs(promise)`."
        )
    expected = promise.message_class if output_type is None else output_type
    if not (isinstance(expected, type) and issubclass(expected, Message)):
        raise LLMConfigurationError(
            f"partial_outputs takes a Message subclass as output_type, not {expected!r}: "
            "e.g. partial_outputs(promise, Weather)."
        )
    if issubclass(expected, LLMMessage) and _of_the_library(expected):  # (a provider's text)
        raise LLMConfigurationError(
            f"This message is {a_class(expected)}, an LLM agent's reply as text (or a tool "
            "call or result), not a structured answer: partial objects are those of an "
            "agent asked for an output type. Make it with structured(agent, Weather), or "
            "give output_type=Weather to inquire(), then pass its answers to partial_outputs."
        )
    if not issubclass(promise.message_class, expected) or expected is Message:
        raise LLMConfigurationError(
            f"This message is {a_class(promise.message_class)}, not "
            f"{a_class(expected)} with fields: partial objects are those of a structured "
            "answer (structured(agent, Weather) or output_type=Weather)."
        )
    live = _LIVE.get(core_of(promise))
    if live is not None and (live.wanted or not live.core.done):
        live.wanted = True
        core = live.core
    else:  # not an LLM's answer, or one complete before anyone asked: from its text
        core = ReplayCore(promise.as_observable().pipe(_partials_of(expected)))
    stream: PartialOutputs[Message] = stream_on(PartialOutputs, core)
    stream._answer = promise
    return stream


def _of_the_library(message_class: type[Message]) -> bool:
    """Whether ``message_class`` is one of MiniAgents' own (a provider's, a tool call's, ...).

    An output type of the user's may extend ``LLMMessage`` (for its typed metadata); the
    library's reply classes are no structured answers.
    """
    return message_class.__module__.partition(".")[0] == "miniagents"


def _register_partials(promise: MessagePromise, partials: LivePartials) -> None:
    """Make ``partials`` the live partial objects of the answer ``promise`` (the agents do)."""
    _LIVE[core_of(promise)] = partials


def _partials_of(output_type: type[Message]) -> Callable[[Observable[str]], Observable[Message]]:
    """An operator: the tokens of a JSON object in, its partial objects out."""
    parser = PartialParser(output_type)

    def operator(tokens: Observable[str]) -> Observable[Message]:
        partials = tokens.pipe(operators.map(parser.feed))
        return cast("Observable[Message]", partials.pipe(operators.filter(_is_partial)))

    return operator


def _is_partial(partial: Message | None) -> bool:
    return partial is not None
