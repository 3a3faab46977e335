"""The provider interface: what an LLM provider is given, and what it streams back.

A provider (OpenAI, Anthropic, the offline model, or your own) is two small things:

- an **options class**, a keyword-only dataclass extending :class:`LLMOptions` with the
  provider's own arguments; its fields become the agent's exact, typed parameters;
- a **provider object** (:class:`LLMProvider`): the class of its replies, ``reply`` (turn
  one :class:`LLMCall` into a stream of :data:`LLMEvent`: text tokens and tool calls,
  ending with a :class:`Finish`) and ``translate`` (its SDK's errors into subclasses of
  :class:`~miniagents.ext.llm.errors.LLMError`).

:func:`~miniagents.ext.llm.llm_agent.make_llm_agent` makes the agent of the two, and does
everything else: the prompt, streaming, the reply's metadata, the tool loop, the stall
timeout, usage, cost and budgets, errors and logs. A provider may name whose prices it
pays with a ``price_provider`` attribute (see :mod:`miniagents.ext.llm.pricing`), and say
with ``in_process = True`` that its model runs in this process, sending no request to a
remote service (as the offline model: tracing then makes its calls' ``chat`` spans
INTERNAL, not CLIENT), and, if it speaks more than one API, name the one a call is sent
to with ``request_api(options)`` (a str, or ``None`` for its default: a call cache keys
the call by it, see :mod:`miniagents.ext.llm.cache.keys`); its
``Finish`` reports the tokens, with the cached and reasoning ones when it knows them. A
provider that supports tools sends ``call.tools`` to its
model, translates the tool calls and results of ``call.messages`` into its wire format
(by their class), and streams the model's calls as a :class:`ToolCallStart` followed by
:class:`ToolCallDelta` events; the agent runs them and calls the provider again::

    reply:  "Let me check." | ToolCallStart(c1, get_weather) | ToolCallDelta(c1, '{"ci')
            | ToolCallDelta(c1, 'ty": "Paris"}') | Finish("tool_calls")

Every other event of the provider's stream (the model's thinking, a block's start or end)
is an empty text, ``""``: nothing for the reply, but a sign that it has not stalled (the
agent's ``stall_timeout`` counts the time between two events).

A model that refuses to answer sends :class:`Refusal` pieces (or ends with the finish
reason ``"refusal"``); the reply then fails with an ``LLMRefusalError``::

    reply:  Refusal("I can't ") | Refusal("help with that.") | Finish("stop")
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import AsyncIterator, Container, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any, Literal, Protocol, TypeAlias

from typing_extensions import TypeVar

from miniagents.arguments import check_count, check_number, refused_argument
from miniagents.ext.llm._tool_sets import tool_set_of
from miniagents.ext.llm.errors import LLMConfigurationError
from miniagents.ext.llm.messages import AssistantMessage
from miniagents.ext.llm.prompt import PromptItem
from miniagents.ext.llm.usage import Budget
from miniagents.ext.tools.tool import Tool
from miniagents.ext.tools.tool_like import ToolLike
from miniagents.messages.message import Message
from miniagents.promising.sentinels import DEFAULT, Sentinel
from miniagents.reexports import resolve_own_annotations

__all__ = [
    "DEFAULT_MAX_TOOL_CALLS",
    "DEFAULT_MAX_TOOL_ROUNDS",
    "AudioTokens",
    "CallIds",
    "Finish",
    "LLMCall",
    "LLMEvent",
    "LLMOptions",
    "LLMProvider",
    "OutputFormat",
    "Refusal",
    "ToolCallDelta",
    "ToolCallStart",
    "aclose_events",
    "call_option",
    "check_kind",
    "check_sampling",
    "unused_id",
]

DEFAULT_MAX_TOOL_ROUNDS = 10
"""How many rounds of tool calls an LLM agent runs, by default, before it gives up."""

DEFAULT_MAX_TOOL_CALLS = 100
"""How many tool calls of one turn an LLM agent runs, by default (the rest are refused)."""

T = TypeVar("T")
OptionsT = TypeVar("OptionsT", bound="LLMOptions", contravariant=True)
AnswerT_co = TypeVar("AnswerT_co", bound=AssistantMessage, default=AssistantMessage, covariant=True)

_CALL_OPTION = "miniagents.call_option"
_RESERVED = frozenset({"messages", "input"})  # set by the agent from the input messages


@dataclass(frozen=True)
class OutputFormat:
    """A JSON schema that the model's answer must follow (structured output).

    A provider that supports it asks its API for it natively (OpenAI Chat Completions:
    ``response_format``; the Responses API: ``text.format``, both of type ``json_schema``);
    one that cannot honour it refuses the call with an ``LLMConfigurationError``.

    Attributes:
        name: The schema's name for the API (``^[a-zA-Z0-9_-]{1,64}$``), e.g. "Weather".
        schema: The JSON schema of the answer (an object schema).
        strict: Whether the API must follow the schema exactly (OpenAI's strict mode,
            which needs every property required and ``additionalProperties: false``).
        description: What the answer is, for the model.
    """

    name: str
    schema: Mapping[str, object]
    strict: bool = True
    description: str | None = None


@dataclass(frozen=True, slots=True)
class LLMCall:
    """One request to a model, in the provider-neutral terms of every LLM agent.

    Attributes:
        model: The model name.
        stream: Whether to stream the reply token by token.
        system: The system prompt (``system=`` and the texts of ``SystemMessage``s), if any.
        messages: The conversation, system messages excluded: a ``PromptText(role, text)``
            pair per message (``role, text = item`` works), with the ``images`` of a user
            message as its ``images``, and, when the agent has tools, the
            ``ToolCallMessage`` s and ``ToolResultMessage`` s of earlier turns, each call
            followed by its result (see :func:`~miniagents.ext.llm.prompt.prompt_of`).
            Every item has a ``role`` and a ``text``.
        options: The options of the call that were given: the typed ones (e.g.
            ``max_tokens``, ``temperature``) that are not ``None``, then ``extra_options``.
        tools: The tools the model may call (their ``name``, ``description`` and
            ``parameters`` JSON schema), in order; empty for an agent without tools.
        output_format: The JSON schema the answer must follow, if any (see
            :class:`OutputFormat`).
    """

    model: str
    stream: bool
    system: str | None
    messages: tuple[PromptItem, ...]
    options: Mapping[str, object] = field(default_factory=dict)
    tools: tuple[Tool, ...] = ()
    output_format: OutputFormat | None = None


def _new_call(
    model: str,
    stream: bool,
    system: str | None,
    messages: tuple[PromptItem, ...],
    options: Mapping[str, object],
    tools: tuple[Tool, ...],
    output_format: OutputFormat | None,
) -> LLMCall:
    """``LLMCall(model, stream, ...)``, every field given, made without the frozen ``__init__``.

    A frozen dataclass's ``__init__`` sets each field with ``object.__setattr__`` through
    its own ``__setattr__`` check; an agent makes an ``LLMCall`` before each request, so the
    fields are set here by their slots' own setters (about half the time). This restates
    the dataclass's ``__init__`` (every field, no ``__post_init__``):
    ``tests/ext/llm/test_llm_agent.py`` checks that the two agree. (Slots, not a
    ``__dict__``: one object fewer held by each call while it streams.)
    """
    call: LLMCall = object.__new__(LLMCall)
    _SET_MODEL(call, model)
    _SET_STREAM(call, stream)
    _SET_SYSTEM(call, system)
    _SET_MESSAGES(call, messages)
    _SET_OPTIONS(call, options)
    _SET_TOOLS(call, tools)
    _SET_OUTPUT_FORMAT(call, output_format)
    return call


# the slots' setters, in the order of the fields (``vars`` gives each slot's descriptor)
(
    _SET_MODEL,
    _SET_STREAM,
    _SET_SYSTEM,
    _SET_MESSAGES,
    _SET_OPTIONS,
    _SET_TOOLS,
    _SET_OUTPUT_FORMAT,
) = (vars(LLMCall)[each.name].__set__ for each in fields(LLMCall))


@dataclass(frozen=True)
class AudioTokens:
    """The tokens of audio a reply used, as reported (``None``: not said); a part of ``Finish``.

    Each count is part of the ``Finish``'s own (``input_tokens`` counts the audio prompt
    tokens too), as the realtime APIs report them.

    Attributes:
        input_tokens: Prompt tokens of audio (the cached ones included).
        output_tokens: Reply tokens of audio.
        cached_input_tokens: Prompt tokens of audio read from the provider's cache.
    """

    input_tokens: int | None = None
    output_tokens: int | None = None
    cached_input_tokens: int | None = None


@dataclass(frozen=True)
class Finish:
    """The end of a reply: why the model stopped, and the tokens it used (as reported).

    ``input_tokens`` counts every prompt token, the cached ones included (for Anthropic,
    its ``input_tokens`` plus the cache reads and writes); ``output_tokens`` every reply
    token, the reasoning ones included. The details are ``None`` when not reported.
    ``model`` is the model that answered, as the API named it (``None``: not said); it
    may differ from the one asked for (e.g. a dated version of it). ``response_id`` is
    the API's id of the reply (``chatcmpl-...``, ``resp_...``, ``msg_...``; ``None``: not
    said), for tracing.

    Two fields say how the reply was paid for (a provider leaves them out: they are set
    by :mod:`miniagents.ext.llm.routing`'s routes): ``batch_id`` is the provider's batch
    the reply came from (batch mode, :mod:`miniagents.ext.llm.batch`: priced at the batch
    price), ``replayed`` that a call cache replayed it (:mod:`miniagents.ext.llm.cache`:
    no request was made, so it costs nothing; its tokens are the recorded call's).

    ``audio`` splits the tokens of a reply with audio (a realtime reply): ``None`` for a
    text call, priced at the model's text rates; given, each audio count is priced at its
    own rate, and a reply with an audio count unknown has no price (see
    :func:`miniagents.ext.llm.pricing.finish_usage`).
    """

    reason: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cached_input_tokens: int | None = None
    cache_write_tokens: int | None = None
    reasoning_tokens: int | None = None
    model: str | None = field(default=None, kw_only=True)
    response_id: str | None = field(default=None, kw_only=True)
    batch_id: str | None = field(default=None, kw_only=True)
    replayed: bool = field(default=False, kw_only=True)
    audio: AudioTokens | None = field(default=None, kw_only=True)


@dataclass(frozen=True)
class ToolCallStart:
    """The model starts a call of a tool; :class:`ToolCallDelta` events bring its arguments.

    Attributes:
        call_id: The provider's id of the call, as the model or the API gave it; its
            deltas name it too. One that the conversation (or the turn) has already is
            renamed on the call's message (``call_1_2``), which then goes back to the API.
        tool_name: The name of the tool the model calls.
        thought_signature: What the API asks to be sent back with the call (Gemini's
            thought signature, base64; Anthropic's thinking blocks before it, or Bedrock's
            reasoning blocks, as JSON), kept on the call's message; ``None``: nothing.
    """

    call_id: str
    tool_name: str
    thought_signature: str | None = field(default=None, kw_only=True)


@dataclass(frozen=True)
class ToolCallDelta:
    """A piece of the arguments of a call started by a :class:`ToolCallStart` (JSON text).

    Attributes:
        call_id: The id of the call (of two started with one id, the later one's: give a
            call's deltas before another call with its id starts).
        text: The piece, to be joined to the pieces before it.
    """

    call_id: str
    text: str


class CallIds:
    """The ids a reply's tool calls go on with, as the model's next turn sees them.

    Each call's id is the model's, unless the conversation or the reply has it already, or it
    is longer than 40 characters: then it is renamed (see :func:`unused_id`). The LLM agent's
    turn and the tracing of its call (the ``chat`` span's output) take them from here alike.

    Args:
        used: The ids of the conversation's calls so far (the set itself: each started call
            adds its own to it).
    """

    __slots__ = ("_renamed", "_used")

    def __init__(self, used: set[str]) -> None:
        self._used = used
        self._renamed: dict[str, str] | None = None  # a model's id -> its last call's

    def start(self, given: str) -> str:
        """The id of a call the model started with the id ``given`` (kept as used)."""
        call_id = unused_id(given, self._used)
        if call_id != given:
            if self._renamed is None:
                self._renamed = {}
            self._renamed[given] = call_id  # its arguments: the last call of the id's
        self._used.add(call_id)
        return call_id

    def of(self, given: str) -> str:
        """The id of the call whose arguments a delta naming ``given`` brings."""
        renamed = self._renamed
        return given if renamed is None else renamed.get(given, given)


def unused_id(call_id: str, used: Container[str]) -> str:
    """``call_id`` if it is not in ``used`` and within 40 characters, else renamed so.

    Some models (Ollama's: ``call_0``) number the calls of each round from the start, and a
    model on an OpenAI-compatible server may write one id for two calls of a turn; a
    conversation whose calls share an id is refused by other APIs (Anthropic's ``tool_use``
    ids must be unique), e.g. after a fallback, and its results could not be told apart.
    The turn renames such a call (its message, its result and the next request carry the
    new id, which the provider's API takes as any other: the model wrote the old one) with
    the first suffix (``_2``, ``_3``, ...) that makes it unused. Every id keeps within 40
    characters (OpenAI's APIs refuse a longer one): a longer one is cut to them (the first
    cut not used, ``_2`` and on giving way to the end of the id as well).
    """
    number = 1
    while (renamed := _numbered(call_id, number)) in used:
        number += 1
    return renamed


_MAX_ID = 40  # the longest call id OpenAI's APIs take


def _numbered(call_id: str, number: int) -> str:
    """``call_id`` with the suffix ``_number`` (none for 1), cut to stay within ``_MAX_ID``."""
    if number == 1:
        return call_id[:_MAX_ID]
    suffix = f"_{number}"
    return call_id[: _MAX_ID - len(suffix)] + suffix


@dataclass(frozen=True)
class Refusal:
    """A piece of the model's refusal to answer, sent apart from its text (as OpenAI does).

    A reply with a refusal (or whose :class:`Finish` reason is ``"refusal"``, as Anthropic
    ends one) fails with an :class:`~miniagents.ext.llm.errors.LLMRefusalError` carrying
    the refusal's text (else the reply's text), and is not retried.

    Attributes:
        text: The piece, to be joined to the pieces before it.
    """

    text: str


LLMEvent: TypeAlias = str | ToolCallStart | ToolCallDelta | Refusal | Finish
"""What a provider's ``reply`` streams: text tokens, tool calls and refusals, then one
:class:`Finish`. An empty text is a sign of life: an event of the provider's stream with
nothing for the reply (thinking, reasoning, a block's start or end), which shows that the
reply has not stalled (see ``stall_timeout``)."""


def call_option(default: T) -> T:
    """Declare a field of an options class as an option of the call itself.

    Such a field (e.g. ``temperature``) is sent to the provider's API under its own name
    when it is not ``None``, and is listed in :attr:`LLMCall.options`; the other fields
    (e.g. ``async_client``) only configure the agent.

    Example:
        >>> @dataclass(frozen=True, kw_only=True)
        ... class MyOptions(LLMOptions):
        ...     temperature: float | None = call_option(None)
    """
    return field(default=default, metadata={_CALL_OPTION: True})


@dataclass(frozen=True, kw_only=True)
class LLMOptions:
    """The arguments every LLM agent takes; a provider's options class adds its own.

    Attributes:
        model: The model, e.g. "gpt-4o-mini" (required, unless the agent has a default).
        stream: Stream token by token (default: the ``MiniAgents`` setting, on).
        system: A system prompt, put before the texts of any ``SystemMessage``.
        stall_timeout: Seconds to wait for each next event of the reply (for a call that
            does not stream, for the whole reply) before the call is stopped with an
            ``LLMTimeoutError``; ``None`` waits as long as it takes. Default: the
            context's ``MiniAgents(llm_stall_timeout=...)``, 60 seconds unless set.
        extra_options: Any other argument of the provider's API call, by the name the SDK
            gives it, sent unchanged (e.g. ``{"extra_headers": {...}}``).
        tools: What the model may call: agents, typed functions (sync or async) and
            ``Tool`` objects (e.g. MCP tools). The agent runs each round of the model's
            calls concurrently and sends the results back, until the model answers; the
            reply streams every call, every result, then the answer.
        max_tool_rounds: The most rounds of tool calls in one reply (default 10): a model
            that asks for tools once more ends the reply with an ``LLMToolRoundsError``.
        max_tool_calls: The most tool calls of one turn that run (default 100): the calls
            after them are not run (nor asked approval for), each answered with an error
            result that names the bound, and the loop goes on with the model.
        output_type: Structured output: a ``Message`` subclass with typed fields (e.g.
            ``class Weather(Message): city: str``). The model is asked for JSON of those
            fields (its API's own structured output), and the answer is an instance of
            it, its fields validated and its text the JSON; see
            :mod:`miniagents.ext.llm.structured` (``structured(agent, Weather)`` types it).
            Give it to ``inquire``; bound with ``fork`` or ``bind`` it is refused (the
            agent would be typed with the provider's replies): use ``structured``.
        output_retries: How many times an answer that does not validate goes back to the
            model with the errors (default 1); after that the reply fails with an
            ``LLMOutputValidationError``.
        budget: A ``Budget`` charged for every call of the model the interaction makes,
            and for everything it causes (the agents it calls as tools, their tools): a
            call past a limit is not made, and a stream that crosses one stops, with a
            ``BudgetExceededError`` (see :mod:`miniagents.ext.llm.usage`). The same budget
            given to many interactions adds them up; ``Budget()`` only counts.
    """

    model: str | None = None
    stream: bool | None = None
    system: str | None = None
    stall_timeout: float | Literal[Sentinel.DEFAULT] | None = DEFAULT
    extra_options: Mapping[str, object] | None = None
    tools: Sequence[ToolLike] | None = None
    max_tool_rounds: int = DEFAULT_MAX_TOOL_ROUNDS
    max_tool_calls: int = DEFAULT_MAX_TOOL_CALLS
    output_type: type[Message] | None = None
    output_retries: int = 1
    budget: Budget | None = None

    def check(self, alias: str) -> None:
        """Refuse an argument of the wrong kind, before the first call of the model.

        The agent calls it on the arguments bound to it as it is made (``fork``, ``bind``),
        and once per options instance (and context) of its calls, so a call pays nothing
        for it. A provider's options class that takes arguments of its own extends
        it: ``super().check(alias)``, then its own checks (see :func:`check_kind`).

        Args:
            alias: The agent's alias, for the message (e.g. "OPENAI_AGENT").

        Raises:
            LLMConfigurationError: for an argument of the wrong kind, naming it and how to
                give it.
            ToolDefinitionError: for ``tools`` that hold what is no tool, or a tool that
                cannot be described (a parameter without an annotation): the tools are
                described here, as the first call would (and kept for it).
        """
        if self.tools is not None:  # (was: refused only at the first call)
            tool_set_of(self.tools, alias)
        check_kind(self.model, str, alias, "model", "a str (the model's name)", "model=...")
        check_kind(self.system, str, alias, "system", "a str", 'system="Be brief."')
        check_kind(self.stream, bool, alias, "stream", "True or False", "stream=False")
        check_kind(
            self.extra_options,
            Mapping,
            alias,
            "extra_options",
            "a mapping of the SDK's argument names to their values",
            'extra_options={"user": "u-1"}',
        )

    def typed_call_options(self) -> dict[str, object]:
        """The typed call options given (see :func:`call_option`), those not ``None``."""
        memo = _memo_of(self)
        typed = memo.get("typed_call_options")
        if typed is None:
            typed = memo["typed_call_options"] = {
                name: value
                for name in _field_names(type(self))[1]
                if (value := getattr(self, name)) is not None
            }
        return dict(typed)

    def call_options(self) -> dict[str, object]:
        """Every call option given: the typed ones, then ``extra_options``.

        Raises:
            LLMConfigurationError: if ``extra_options`` names an argument of the agent,
                or one the agent sets itself (``messages``).
        """
        if not self.extra_options:
            return self.typed_call_options()
        extra = dict(self.extra_options)
        names = _field_names(type(self))[0]
        for name in extra:
            if name in names:
                raise LLMConfigurationError(
                    f"extra_options has {name!r}, which is an argument of the agent "
                    f"itself: pass {name}=... instead."
                )
            if name in _RESERVED:
                raise LLMConfigurationError(
                    f"extra_options has {name!r}, which the agent makes from its input "
                    "messages: send the messages as the input of the call instead."
                )
        return {**self.typed_call_options(), **extra}

    def __getstate__(self) -> dict[str, object]:
        """The fields, for pickling (what :func:`_memo_of` worked out is left out)."""
        return {name: value for name, value in self.__dict__.items() if name != _MEMO}


# A provider's options class, in its own module, makes an __init__ that reads these fields'
# types there (which does not import what they name): give it the types themselves.
resolve_own_annotations(LLMOptions)


def check_kind(
    value: object, kind: type | tuple[type, ...], alias: str, name: str, wanted: str, example: str
) -> None:
    """Refuse ``value``, the argument ``name`` of an agent, unless it is ``None`` or a ``kind``.

    Args:
        value: The argument's value.
        kind: What it must be an instance of.
        alias: The agent's alias.
        name: The argument's name.
        wanted: What it must be, in words (e.g. "a str").
        example: The argument as it may be given, e.g. ``stream=False``.

    Raises:
        LLMConfigurationError: if ``value`` is neither, naming the argument (its
            ``parameter``) and the fix.
    """
    if value is not None and not isinstance(value, kind):
        raise refused_argument(
            value,
            name,
            wanted,
            owner=f"The agent {alias}",
            fix=f"Pass e.g. {alias.lower()}.fork({example}).",
            error=LLMConfigurationError,
        )


def check_sampling(
    alias: str,
    *,
    temperature: object = None,
    top_p: object = None,
    max_tokens: object = None,
    max_completion_tokens: object = None,
    top_k: object = None,
    presence_penalty: object = None,
    frequency_penalty: object = None,
    hottest: tuple[str, float] = ("", math.inf),
    penalties_below_2: bool = False,
) -> None:
    """Refuse a sampling option that many providers take, given but of the wrong kind.

    The one check of these options for every provider's options class that takes them
    (in its ``check``); ``None`` is not given. The bounds that differ by provider are its
    arguments, given by its options class.

    Args:
        alias: The agent's alias.
        temperature: Must be a finite number from 0 to the top of ``hottest``.
        top_p: Must be a number from 0 to 1.
        max_tokens: Must be a whole number of at least 1.
        max_completion_tokens: Must be a whole number of at least 1.
        top_k: Must be a whole number of at least 1.
        presence_penalty: Must be a number from -2 to 2 (2 excluded if
            ``penalties_below_2``).
        frequency_penalty: Must be a number from -2 to 2 (2 excluded if
            ``penalties_below_2``).
        hottest: The provider's name and the highest temperature its API takes, e.g.
            ``("Anthropic", 1)`` (by default none: any finite number is taken).
        penalties_below_2: Whether the API takes the penalties up to, but not including, 2.

    Raises:
        LLMConfigurationError: for one of the wrong kind, naming it (its ``parameter``)
            and the fix.
    """
    owner, agent = f"The agent {alias}", alias.lower()
    provider, most_temperature = hottest
    for name, value, most, example in (
        ("temperature", temperature, most_temperature, 0.7),
        ("top_p", top_p, 1, 0.9),
    ):
        if value is not None:
            takes = (
                f"{provider} takes a temperature from 0 to {most:g}: pass"
                if provider and name == "temperature" and most < math.inf
                else "Pass it as a number,"
            )
            check_number(
                value,
                name,
                most=most,
                finite=True,
                owner=owner,
                fix=f"{takes} e.g. {agent}.fork({name}={example}), or None.",
                error=LLMConfigurationError,
            )
    for name, value, example, unset in (
        ("max_tokens", max_tokens, 100, "no limit"),
        ("max_completion_tokens", max_completion_tokens, 100, "no limit"),
        ("top_k", top_k, 40, "the model's default"),
    ):
        if value is not None:
            check_count(
                value,
                name,
                owner=owner,
                fix=f"E.g. {agent}.fork({name}={example}), or None for {unset}.",
                error=LLMConfigurationError,
            )
    for name, value in (
        ("presence_penalty", presence_penalty),
        ("frequency_penalty", frequency_penalty),
    ):
        if value is not None:
            check_number(
                value,
                name,
                least=-2,
                most=2,
                below_most=penalties_below_2,
                owner=owner,
                fix=f"E.g. {agent}.fork({name}=0.5), or None for the model's default.",
                error=LLMConfigurationError,
            )


_MEMO = "_miniagents_memo"


def _memo_of(options: LLMOptions) -> dict[object, Any]:
    """What is worked out from ``options`` once per instance (its fields are frozen).

    The agent reuses an options instance for the calls made with the same arguments (see
    :mod:`miniagents.ext.llm.llm_agent`), so each call reads what the first one worked out.
    """
    state = options.__dict__
    memo: dict[object, Any] | None = state.get(_MEMO)
    if memo is None:
        memo = state[_MEMO] = {}
    return memo


_FIELD_NAMES: dict[type[LLMOptions], tuple[frozenset[str], tuple[str, ...]]] = {}


def _field_names(options: type[LLMOptions]) -> tuple[frozenset[str], tuple[str, ...]]:
    """The names of the fields of an options class, and of its typed call options (once)."""
    names = _FIELD_NAMES.get(options)
    if names is None:
        fields = dataclasses.fields(options)
        typed = tuple(option.name for option in fields if option.metadata.get(_CALL_OPTION))
        names = _FIELD_NAMES[options] = (frozenset(option.name for option in fields), typed)
    return names


class LLMProvider(Protocol[OptionsT, AnswerT_co]):
    """What a provider implements (see :mod:`miniagents.ext.llm.openai` for an example).

    ``OptionsT`` is its options class (an :class:`LLMOptions` subclass); ``AnswerT_co`` the
    class of its answers (``AssistantMessage`` unless it says more), which the agent's
    type keeps: ``MiniAgent[P, LLMReply[AnswerT_co]]``.
    """

    @property
    def message_class(self) -> type[AnswerT_co]:
        """The class of the replies (an ``AssistantMessage`` subclass)."""
        ...

    def reply(self, call: LLMCall, options: OptionsT) -> AsyncIterator[LLMEvent]:
        """Stream the reply's tokens and tool calls, then one :class:`Finish`.

        Args:
            call: The request: the model, the prompt, the call options given.
            options: The agent's arguments, as its options class.
        """
        ...

    def translate(self, error: BaseException) -> BaseException:
        """The MiniAgents error for an SDK error (with it as ``__cause__``), else ``error``."""
        ...


async def aclose_events(events: AsyncIterator[LLMEvent]) -> None:
    """Close a provider's stream of events, as a stream wrapping it does when it is closed.

    An async generator (a provider's ``reply``, a wrapper of it) is closed with its
    ``aclose``, which ends the SDK's request and gives its connection back now; an iterator
    without ``aclose`` holds nothing to close.
    """
    close = getattr(events, "aclose", None)
    if close is not None:
        await close()
