"""``fallback_agent``: answer with the first of several LLM agents that can.

The fallback agent inquires its first agent; if a call of its model fails **before its
first token** with an error that ``when`` accepts (by default a provider failure: see
:func:`is_provider_failure`), it inquires the next agent, and so on. Its reply is the
reply of the agents that answered, whose messages stream as usual and say who answered
(``model``, ``agent_alias``)::

    first (OpenAI):     ----X                           LLMServerError, before any token
    second (Anthropic):      -"Hel"-"lo"-|
    fallback's reply:        -"Hel"-"lo"-|              ANTHROPIC_AGENT, claude-haiku-4-5

    first (OpenAI):     -"Hel"-X                        LLMConnectionError after a token
    fallback's reply:   -"Hel"-X                        the same error: no fallback

**Per call of the model.** In a tool loop, each round calls the model again; a round
whose call fails before its first token goes on with the next agent, given the input and
the messages of the reply so far (the calls and results of the rounds before), so that it
answers from there (with its own ``max_tool_rounds``)::

    first:     call c1 | result c1 | X                  round 2 fails before its first token
    second:                          "It is 5."         given the input, c1 and its result
    reply:     call c1 | result c1 | "It is 5."

**Once a token of a call has streamed, there is no fallback**: the reply's consumers may
have read it, and a message cannot take back its tokens; a failure then ends the reply
with the error, as it would without the fallback. A call's first token is the first
piece of its first message: a text token, or the first piece of a tool call's arguments
(each message of the model enters the fallback's reply when its first token has come).
That holds when the message has ended well before the failure too: a text said before a
tool call whose first token never came, or a whole message of an agent that delivers its
messages whole (a remote agent, an agent of your own). The next agent would answer anew
after it, so that a reader got two starts of one answer (and the next model the first
one's words as if the user had said them)::

    first (your own):   -"Let me check."|--X            LLMServerError after a message
    fallback's reply:   -"Let me check."|--X            the same error: no fallback

The messages of a call are those after the tool loop's last result (or the reply's
start): the calls and results of the rounds before are a conversation that the next
agent goes on with, as above.
The tool loop's own messages, a call's approval request and its result, enter at once:
they come after the call of their round ended and never fail for the provider's sake,
and a result waiting for a person's decision has no token until then (a web app pauses
its run on it, as without the fallback). When every agent failed, the reply fails with
the last agent's error, which notes (Python 3.11+) how the ones before failed.

**Usage.** The answer's ``usage`` counts every call of the reply's tool loop, whichever
agent made it, as one agent's answer counts the calls of its loop: the rounds that the
agents which failed had finished, and the answering agent's own. Like an agent's answer,
it leaves out the calls of the agents its tools ask (a ``Budget`` counts those)::

    first:     call c1 (100 in, 20 out) | result c1 | X
    second:                                            "It is 5." (300 in, 3 out)
    answer:    usage 400 in, 23 out

Set the SDK's own retries low on the agents that have a fallback, so that a provider
that is down is left quickly: ``openai_agent.fork(model=..., max_retries=0, timeout=10)``.

The fallback agent takes the arguments every LLM agent takes, except ``model`` and
``extra_options`` (``system``, ``tools``, ``output_type``, ...), and gives those it is
given to whichever agent it inquires; each agent's own arguments (its model, client,
``max_tokens``, ...) are bound with ``fork`` before. Its replies are typed as its agents'
replies together: ``fallback_agent(openai_agent, anthropic_agent)`` is a
``MiniAgent[..., LLMReply[OpenAIMessage | AnthropicMessage]]``. So an ``output_type``
bound to it (``fork`` or ``bind``) is refused at its first interaction, as for an LLM
agent: ``structured(fallback_agent(...), Weather)`` is the typed way.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import nullcontext
from typing import TYPE_CHECKING, Literal, ParamSpec, Protocol, TypeAlias, TypeVar, cast

from miniagents.ext.llm._call import refuse_bound_output_type
from miniagents.ext.llm._metered import added_usage
from miniagents.ext.llm.charging import _loops_counted
from miniagents.ext.llm.errors import (
    LLMConfigurationError,
    LLMConnectionError,
    LLMRateLimitError,
    LLMResponseError,
    LLMServerError,
)
from miniagents.ext.llm.messages import TokenUsage
from miniagents.ext.llm.provider import DEFAULT_MAX_TOOL_CALLS, DEFAULT_MAX_TOOL_ROUNDS
from miniagents.ext.llm.usage import Budget
from miniagents.ext.tools.approval import ToolApprovalRequest
from miniagents.ext.tools.messages import ToolCallMessage, ToolResultMessage
from miniagents.ext.tools.tool_like import ToolLike
from miniagents.frozen.model import FrozenDict
from miniagents.messages.message import Message
from miniagents.messages.message_promise import MessagePromise
from miniagents.messages.sequence import MessageType
from miniagents.miniagents import InteractionContext
from miniagents.miniagents.agent import MiniAgent
from miniagents.promising.lowlevel import core_of
from miniagents.promising.sentinels import DEFAULT, Sentinel

if TYPE_CHECKING:
    from miniagents.ext.llm.llm_agent import ForkArguments, TypedFork

__all__ = [
    "FallbackAgent",
    "FallbackAgentFactory",
    "FallbackWhen",
    "fallback_agent",
    "is_provider_failure",
]

P = ParamSpec("P")
ReplyT = TypeVar("ReplyT", bound=Message)
ReplyT_co = TypeVar("ReplyT_co", bound=Message, covariant=True)

FallbackWhen: TypeAlias = Callable[[BaseException], bool]
"""Whether an error that ended an agent's reply before its first token calls for the next."""

_PROVIDER_FAILURES = (LLMConnectionError, LLMServerError, LLMRateLimitError, LLMResponseError)


def is_provider_failure(error: BaseException) -> bool:
    """Whether ``error`` says the provider failed, not the request: ``fallback_agent``'s default.

    These are, after the SDK's own retries: ``LLMConnectionError`` (no connection, or it
    broke), ``LLMTimeoutError`` (a request timed out, HTTP 408 too, or the reply stalled),
    ``LLMServerError`` (HTTP 5xx, overloaded, 409), ``LLMRateLimitError`` (HTTP 429) and
    ``LLMResponseError`` (an error event instead of the reply, a malformed stream). Errors
    that another agent would meet too, or that need a fix, are not: a missing setting or
    SDK, a refused key or request, a runaway tool loop, an invalid structured answer.
    To fall back when a budget runs out too::

        when=lambda error: is_provider_failure(error) or isinstance(error, BudgetExceededError)
    """
    return isinstance(error, _PROVIDER_FAILURES)


@dataclasses.dataclass(frozen=True, kw_only=True)
class _FallbackArguments:
    """The arguments of a fallback agent: those of every LLM agent but the model's own.

    Its fields are the agent's parameters (never made: ``fallback_agent`` gives the agent
    the signature of this class, and mypy its parameters).

    Attributes:
        stream: Whether to stream the reply token by token.
        system: A system prompt, before the texts of any ``SystemMessage``.
        stall_timeout: Seconds to wait for each next event of a reply (see the agents).
        tools: The tools the model may call.
        max_tool_rounds: How many rounds of tool calls a reply may run.
        max_tool_calls: How many tool calls of one turn run (those past it are answered
            with an error result, not run).
        output_type: The class of a structured answer.
        output_retries: How many times an answer that does not validate goes back.
        budget: A ``Budget`` charged for every call of whichever agent answers (see
            :mod:`miniagents.ext.llm.usage`).
    """

    stream: bool | None = None
    system: str | None = None
    stall_timeout: float | Literal[Sentinel.DEFAULT] | None = DEFAULT
    tools: Sequence[ToolLike] | None = None
    max_tool_rounds: int = DEFAULT_MAX_TOOL_ROUNDS
    max_tool_calls: int = DEFAULT_MAX_TOOL_CALLS
    output_type: type[Message] | None = None
    output_retries: int = 1
    budget: Budget | None = None


if TYPE_CHECKING:  # (what types a fallback agent's ``fork``: nothing of it runs)

    @dataclasses.dataclass(frozen=True, kw_only=True)
    class _FallbackFork(_FallbackArguments, ForkArguments):
        """What ``FallbackAgent.fork`` takes: the fallback agent's arguments and fork's own."""


class FallbackAgent(MiniAgent[P, ReplyT_co]):
    """The agent that :data:`fallback_agent` makes: a ``MiniAgent`` whose ``fork`` is typed.

    Its parameters ``P`` are the arguments every LLM agent takes but ``model`` and
    ``extra_options``; ``fork`` takes them too (checked by name and type, as an LLM
    agent's), beside its own ``alias``, ``description``, ``max_concurrency`` and
    ``start_asap``, and gives a ``FallbackAgent`` of the same type. (Its methods are the
    ``MiniAgent``'s; this class only types ``fork``.)
    """

    __slots__ = ()

    if TYPE_CHECKING:
        fork = TypedFork(_FallbackFork)  # type: ignore[assignment]  # (see TypedFork)
        """An agent of the same class with more arguments bound (``MiniAgent.fork``)."""


class FallbackAgentFactory(Protocol[P]):
    """The type of :data:`fallback_agent` (``P``: the arguments its agents take in common)."""

    def __call__(
        self,
        first: MiniAgent[..., ReplyT],
        /,
        *others: MiniAgent[..., ReplyT],
        when: FallbackWhen = ...,
    ) -> FallbackAgent[P, ReplyT]:
        """An agent that answers with ``first``, and with the next agent if it fails."""
        ...


def _factory_of(arguments: Callable[P, object]) -> FallbackAgentFactory[P]:
    """``fallback_agent``, its agents taking the parameters of ``arguments``."""

    def fallback_agent(
        first: MiniAgent[..., ReplyT] | None = None,
        /,
        *others: MiniAgent[..., ReplyT],
        when: FallbackWhen = is_provider_failure,
    ) -> FallbackAgent[P, ReplyT]:
        """An agent that answers with ``first``, and with the next agent if it fails first.

        See :mod:`miniagents.ext.llm.fallback`: when a call of an agent's model fails
        before its first token, with an error ``when`` accepts, the next agent goes on
        (same input and arguments, and the messages of the reply so far: in a tool loop,
        the calls and results of the rounds before); once a token of the call has
        streamed, a failure ends the reply with the error. When every agent failed, the
        reply fails with the last error.

        Args:
            first: The agent to ask first (an LLM agent, forked with its model and
                options, e.g. ``openai_agent.fork(model="gpt-4o-mini", max_retries=0)``).
            *others: The agents to ask next, in order.
            when: Whether an error calls for the next agent (default:
                :func:`is_provider_failure`: connection errors, timeouts, HTTP 5xx and
                429 after the SDK's retries, error events).

        Returns:
            The agent (alias ``FALLBACK_AGENT``): a ``FallbackAgent[P, ReplyT]``, ``P`` being the
            arguments every LLM agent takes but ``model`` and ``extra_options``, given to
            the agent it inquires, and ``ReplyT`` its agents' replies together (e.g.
            ``LLMReply[OpenAIMessage | AnthropicMessage]``).

        Raises:
            LLMConfigurationError: without an agent, for something that is not an agent,
                or for a ``when`` that is not callable.
        """
        agents = _checked(first, others, when)

        async def run(ctx: InteractionContext, /, **given: object) -> None:
            refuse_bound_output_type(  # (its replies are typed as its agents' together)
                ctx.this_agent.bound_arguments.get("output_type"),
                "FALLBACK_AGENT",
                typed_as="its agents' replies",
                made_with="fallback_agent(...)",
            )
            ctx.reply(_fallback_replies(ctx.messages, agents, when, given))

        run.__signature__ = _with_context(arguments)  # type: ignore[attr-defined]
        run.__name__ = run.__qualname__ = "fallback_agent"
        names = ", ".join(agent.alias for agent in agents)
        made: FallbackAgent[..., Message] = FallbackAgent(
            run,
            alias="FALLBACK_AGENT",
            description=f"Answers with the first of {names} whose reply does not fail first.",
        )
        return cast("FallbackAgent[P, ReplyT]", made)

    fallback_agent.__qualname__ = "fallback_agent"
    return fallback_agent


def _with_context(arguments: Callable[..., object]) -> inspect.Signature:
    """The signature of an agent function taking ``arguments``' parameters after ``ctx``."""
    context = inspect.Parameter("ctx", inspect.Parameter.POSITIONAL_ONLY)
    return inspect.Signature([context, *inspect.signature(arguments).parameters.values()])


def _checked(
    first: MiniAgent[..., ReplyT] | None,
    others: tuple[MiniAgent[..., ReplyT], ...],
    when: object,
) -> tuple[MiniAgent[..., ReplyT], ...]:
    """The agents, checked.

    Raises:
        LLMConfigurationError: without an agent, for something that is not an agent, or
            for a ``when`` that is not callable.
    """
    if first is None:
        raise LLMConfigurationError(
            "fallback_agent() needs at least one agent to answer with: e.g. "
            "fallback_agent(openai_agent.fork(model=...), anthropic_agent.fork(model=...))."
        )
    agents = (first, *others)
    for agent in agents:
        given: object = agent  # typed, but it may be anything at run time
        if not isinstance(given, MiniAgent):
            raise LLMConfigurationError(
                f"fallback_agent() takes agents, not {given!r:.60}: e.g. "
                "fallback_agent(openai_agent.fork(model=...), anthropic_agent.fork(model=...))."
            )
    if not callable(when):
        raise LLMConfigurationError(
            f"The when= of fallback_agent() must be a function of the error that says "
            f"whether to ask the next agent, not {when!r:.60}: e.g. the default, "
            "is_provider_failure."
        )
    return agents


async def _fallback_replies(
    messages: MessageType,
    agents: tuple[MiniAgent[..., Message], ...],
    when: FallbackWhen,
    given: dict[str, object],
) -> AsyncIterator[MessagePromise]:
    """The replies of the first agent whose call of the model does not fail before its first token.

    Each message of the model (text, tool call, answer) is passed on once its first token
    came (or it ended without one); the tools' messages (approval requests, results) at
    once. A failure that ``when`` accepts, with nothing of the failed call in the reply (no
    message of the model passed on since the last of the tools' messages, and every
    message passed on so far complete), goes on with the next agent, its input being
    ``messages`` and those messages (a tool loop's calls and results); the usage of the
    answer of an agent asked after others counts their calls too (see :class:`_Carried`).
    """
    failed: list[tuple[MiniAgent[..., Message], Exception]] = []
    said: list[MessagePromise] = []
    in_call = False  # whether a message of the model's current call was passed on
    earlier: TokenUsage | None = None  # the usage of the calls of the agents that failed
    last = len(agents) - 1
    for number, agent in enumerate(agents):
        usages: list[TokenUsage] = []  # the calls of its loop that ended with their usage
        with _loops_counted(usages) if number < last else nullcontext(usages):
            replies = aiter(agent.inquire([messages, *said] if said else messages, **given))
        try:
            while True:
                try:
                    promise = await anext(replies)
                except StopAsyncIteration:
                    return
                kind = promise.message_class
                tools_message = issubclass(kind, _TOOLS_MESSAGES)
                if not tools_message:  # the model's: does its call fail before its first
                    async for _ in promise:  # token?
                        break
                in_call = not tools_message  # (a result ends its round's call)
                said.append(promise)
                if earlier is None or issubclass(kind, _WITHOUT_USAGE):
                    yield promise
                else:  # it may be the answer, whose usage counts the calls before
                    yield _Carried.of(promise, earlier)
        except Exception as error:
            if (
                number == last
                or in_call  # a message of the failed call was passed on: no fallback
                or not when(error)
                or not all(map(_succeeded, said))
            ):
                _note_failures(error, failed)
                raise
            failed.append((agent, error))
            for usage in usages:
                earlier = added_usage(earlier, usage)


_TOOLS_MESSAGES = (ToolApprovalRequest, ToolResultMessage)
"""The classes of the messages a tool loop adds to the model's: an approval request, and the
result of a call, which waits for the decision and the tool. The loop adds them after the
call of the model of their round ended, and they never fail for the provider's sake (a tool
that fails gives an error result), so the fallback does not wait for their first token: a
consumer sees a call waiting for approval as it would without the fallback (the web apps
pause their run on it)."""

_WITHOUT_USAGE = (ToolCallMessage, *_TOOLS_MESSAGES)
"""The classes of the messages of a tool loop that never carry a ``usage`` (the model's other
messages are the answer and the text it says before a round's calls)."""


class _Carried(MessagePromise[Message]):
    """A message of an agent asked after others failed: its usage counts their calls too.

    A view of the message (the same tokens, the same record: partial objects, cancellation)
    whose metadata is the message's, its ``usage`` (if it has one: the answer's, of every
    call of the agent's tool loop) added to the usage of the calls of the agents before
    (their loops' rounds that ended), so that the answer's usage counts every call of the
    reply's loop, whichever agent made it.
    """

    __slots__ = ("_answered", "_earlier", "_fields")

    _answered: MessagePromise[Message]
    _earlier: TokenUsage
    _fields: Mapping[str, object] | None

    @classmethod
    def of(cls, answered: MessagePromise[Message], earlier: TokenUsage) -> _Carried:
        """A view of ``answered``, its usage (if any) counting ``earlier`` too."""
        carried = cast(
            "_Carried",
            cls.from_observable(answered.as_observable(), message_class=answered.message_class),
        )
        carried._answered = answered
        carried._earlier = earlier
        carried._fields = None
        return carried

    @property
    def metadata(self) -> Mapping[str, object]:
        """The message's metadata, its ``usage`` counting the calls of the agents before."""
        fields = self._fields
        if fields is not None:
            return fields
        own = self._answered.metadata
        usage = own.get("usage")
        fields = own
        if isinstance(usage, TokenUsage):
            fields = FrozenDict({**own, "usage": added_usage(self._earlier, usage)})
        if self._answered.done:  # its metadata is final: kept
            self._fields = fields
        return fields


def _succeeded(promise: MessagePromise) -> bool:
    """Whether the message is complete, without an error."""
    core = core_of(promise)
    return core.done and core.error is None


def _note_failures(
    error: Exception, failed: list[tuple[MiniAgent[..., Message], Exception]]
) -> None:
    """Note on ``error`` (the last one) how the agents asked before failed."""
    add_note = getattr(error, "add_note", None)  # Python 3.11+
    if add_note is None:
        return
    for agent, earlier in failed:
        add_note(f"{agent.alias} failed first: {type(earlier).__name__}: {earlier}")


fallback_agent = _factory_of(_FallbackArguments)
"""An agent that answers with its first agent, and with the next if it fails before its
first token (see :mod:`miniagents.ext.llm.fallback`): ``fallback_agent(first, *others,
when=is_provider_failure)``."""
