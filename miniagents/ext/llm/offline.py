"""The offline model: an LLM agent with the same interface that needs no network and no key.

For demos and for your own tests. It streams a scripted reply (see
:mod:`miniagents.ext.llm.offline_script`: a text, tool calls, an iterator of them, or a
function of the call) or, by default, a deterministic reply built from the prompt, token by
token with a configurable delay. Given ``tools``, it calls them as its script or its
``tool_rules`` say, and then answers with their results.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ParamSpec

from miniagents.arguments import check_seconds, refused_argument
from miniagents.ext.llm.errors import LLMConfigurationError
from miniagents.ext.llm.llm_agent import AnyLLMAgent, LLMAgent
from miniagents.ext.llm.messages import AssistantMessage
from miniagents.ext.llm.offline_script import (
    CallTool,
    Refuse,
    RepliesByTurn,
    Script,
    ScriptedReply,
    ToolRule,
    call_count,
    in_order,
    offline_reply,
    one_per_call,
    scripted_calls,
    scripted_reply,
)
from miniagents.ext.llm.provider import (
    Finish,
    LLMCall,
    LLMEvent,
    LLMOptions,
    Refusal,
    ToolCallDelta,
    ToolCallStart,
    call_option,
    check_sampling,
)

if TYPE_CHECKING:
    from miniagents.ext.llm.llm_agent import ForkArguments, TypedFork

__all__ = [
    "CallTool",
    "OfflineAgent",
    "OfflineMessage",
    "OfflineOptions",
    "OfflineProvider",
    "Refuse",
    "RepliesByTurn",
    "Script",
    "ScriptedReply",
    "ToolRule",
    "create_offline_agent",
    "in_order",
    "offline_agent",
    "offline_reply",
    "one_per_call",
]


class OfflineMessage(AssistantMessage):
    """A reply of the offline model."""


@dataclass(frozen=True, kw_only=True)
class OfflineOptions(LLMOptions):
    """The arguments of ``offline_agent``: those of every LLM agent, and its own.

    Attributes:
        model: A name for the model, shown in the reply's metadata.
        system: A system prompt (part of the call the reply function sees).
        stall_timeout: Seconds to wait for each next token (default: the context's
            ``MiniAgents(llm_stall_timeout=...)``, 60 seconds unless set; ``None``: no
            limit). A ``token_delay`` longer than it ends the reply with an
            ``LLMTimeoutError``, which lets you test how your code handles one.
        extra_options: Anything else; a reply function sees it in ``call.options``.
        reply: The reply: a text, a tool call (``CallTool``) or a list of them, a
            refusal (``Refuse``: the reply fails with an ``LLMRefusalError``), an
            iterator of those (one per call), or a function of the ``LLMCall``; by
            default a deterministic reply built from the prompt (with tool results: the
            results, one per line), or, with an ``output_type``, a sample of its JSON
            schema (texts "offline" or a sample of their format, a date, a URL, ...;
            numbers 0, else the nearest their bounds allow; lists as short as allowed;
            the first of each choice).
        token_delay: Seconds to wait before each token.
        max_tokens: The most tokens (words) the reply may have: a longer one is cut, with
            the finish reason "length".
        temperature: Taken, so the offline agent can stand in for another, and shown to a
            reply function in ``call.options``; the reply does not depend on it.
        tool_rules: Tool calls for user messages that match a pattern (``ToolRule``),
            made on the first call of a turn, before ``reply`` is used.
    """

    model: str | None = "offline"
    reply: Script | None = None
    token_delay: float = 0.02
    max_tokens: int | None = call_option(None)
    temperature: float | None = call_option(None)
    tool_rules: Sequence[ToolRule] | None = None

    def check(self, alias: str) -> None:
        """Refuse an argument of the wrong kind: every LLM agent's, and the offline model's.

        The agent checks the arguments bound to it so as it is made (``bind``, ``fork``,
        ``create_offline_agent``: see ``LLMAgent.check_bound_arguments``), and those of
        each call.

        Raises:
            LLMConfigurationError: for one of the wrong kind, naming it and the fix.
        """
        super().check(alias)
        owner, agent = f"The agent {alias}", alias.lower()
        check_seconds(
            self.token_delay,
            "token_delay",
            zero=True,
            owner=owner,
            fix=f"Pass it as a number, e.g. {agent}.fork(token_delay=0.1), or 0 for no wait.",
            error=LLMConfigurationError,
        )
        check_sampling(alias, temperature=self.temperature, max_tokens=self.max_tokens)
        rules: object = self.tool_rules  # (as given: a str is a Sequence too)
        if rules is not None and (
            isinstance(rules, str)
            or not isinstance(rules, Sequence)
            or not all(isinstance(rule, ToolRule) for rule in rules)
        ):
            raise refused_argument(
                rules,
                "tool_rules",
                "a list of ToolRule",
                owner=owner,
                fix=f'E.g. {agent}.fork(tool_rules=[ToolRule(r"weather in (?P<city>\\w+)", '
                '"get_weather")]).',
                error=LLMConfigurationError,
            )


class OfflineProvider:
    """Streams the offline model's replies (see ``LLMProvider``)."""

    message_class = OfflineMessage
    in_process = True
    """Its model runs in this process: no request to a remote service (tracing: its ``chat``
    spans are INTERNAL, not CLIENT)."""

    async def reply(self, call: LLMCall, options: OfflineOptions) -> AsyncIterator[LLMEvent]:
        """Stream the reply word by word (or as one token), then one ``Finish``."""
        said = scripted_reply(options.reply, options.tool_rules or (), call)
        if call.output_format is not None and options.reply is None and isinstance(said, str):
            said = json.dumps(_sample(call.output_format.schema), ensure_ascii=False)
        prompt_words = sum(len((item.text or "").split()) for item in call.messages)
        delay = options.token_delay  # (before each token; none: no wait at all)
        calls = scripted_calls(said)
        if calls:
            first = call_count(call.messages) + 1
            written = 0
            for number, called in enumerate(calls, first):
                call_id = f"offline_call_{number}"
                yield ToolCallStart(call_id, called.name)
                text = json.dumps(dict(called.arguments), ensure_ascii=False, default=str)
                for piece in _pieces(text, call.stream):
                    if delay:
                        await asyncio.sleep(delay)
                    written += 1
                    yield ToolCallDelta(call_id, piece)
            yield Finish("tool_calls", prompt_words, written, model=call.model)
            return
        if isinstance(said, Refuse):
            for piece in _pieces(said.text, call.stream):
                if delay:
                    await asyncio.sleep(delay)
                yield Refusal(piece)
            yield Finish("refusal", prompt_words, len(said.text.split()), model=call.model)
            return
        text = said if isinstance(said, str) else ""
        words = _WORDS.findall(text)
        reason = "stop"
        if options.max_tokens is not None and len(words) > options.max_tokens:
            words, reason = words[: options.max_tokens], "length"
            text = "".join(words)
        for token in words if call.stream else [text]:  # (the words are _pieces' of text)
            if delay:
                await asyncio.sleep(delay)
            yield token
        # (the words of the text: a token each, but for spaces alone before the first)
        written = len(words) - (1 if words and words[0].isspace() else 0)
        yield Finish(reason, prompt_words, written, model=call.model)

    def translate(self, error: BaseException) -> BaseException:
        """Errors of the offline model are already what they should be."""
        return error


def _sample(schema: Mapping[str, Any], defs: Mapping[str, Any] | None = None) -> object:
    """A value that follows a JSON schema: the offline model's structured answer.

    The first of each choice; texts "offline" (a sample of their ``format``: a date, an
    e-mail address, ...); numbers 0, else the nearest that their bounds and ``multipleOf``
    allow; lists as short as ``minItems`` allows; every property of an object.
    """
    defs = defs if defs is not None else schema.get("$defs", {})
    ref = schema.get("$ref")
    if isinstance(ref, str):
        return _sample(defs.get(ref.rsplit("/", 1)[-1], {}), defs)
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    options = schema.get("anyOf") or schema.get("oneOf") or schema.get("allOf")
    if options:
        usable = [option for option in options if option.get("type") != "null"] or options
        return _sample(usable[0], defs)
    kind = schema.get("type")
    kind = kind[0] if isinstance(kind, list) and kind else kind
    if kind == "object":
        properties = schema.get("properties", {})
        return {name: _sample(value, defs) for name, value in properties.items()}
    if kind == "array":
        items = [_sample(item, defs) for item in schema.get("prefixItems", ())]
        each = schema.get("items")
        more = schema.get("minItems", 0) - len(items)
        return items + [_sample(each, defs)] * more if isinstance(each, Mapping) else items
    if kind in ("number", "integer"):
        return _number(schema, kind == "integer")
    if kind == "string":
        given = _FORMATS.get(str(schema.get("format")))
        if given is not None:
            return given
        text = "offline".ljust(schema.get("minLength", 0), "e")
        return text[: schema.get("maxLength", len(text))]
    return False if kind == "boolean" else None


_FORMATS = {
    "date": "2025-01-01",
    "date-time": "2025-01-01T00:00:00Z",
    "time": "00:00:00",
    "duration": "P1D",
    "email": "offline@example.com",
    "uri": "https://example.com/offline",
    "uuid": "00000000-0000-4000-8000-000000000000",
    "ipv4": "127.0.0.1",
    "ipv6": "::1",
    "ipvanyaddress": "127.0.0.1",
    "hostname": "example.com",
}
"""A sample of each string format (pydantic's ``date``, ``AnyUrl``, ``UUID``, ...)."""


def _number(schema: Mapping[str, Any], integer: bool) -> int | float:
    """0, else the number nearest 0 inside the bounds (a multiple of ``multipleOf``)."""
    step = schema.get("multipleOf") or (1 if integer else None)
    low, low_open = _bound(schema, "minimum", "exclusiveMinimum", below=True)
    high, high_open = _bound(schema, "maximum", "exclusiveMaximum", below=False)

    def inside(value: float) -> bool:
        return (low is None or value > low or (value == low and not low_open)) and (
            high is None or value < high or (value == high and not high_open)
        )

    candidates: list[float] = [0]
    for bound, is_open, other, way in ((low, low_open, high, 1), (high, high_open, low, -1)):
        if bound is None:
            continue
        if step:  # the first multiple past the bound, going inwards
            value = (math.ceil(bound / step) if way > 0 else math.floor(bound / step)) * step
            candidates.append(value + way * step if is_open and value == bound else value)
        elif is_open:  # strictly inside: halfway to the other bound, or one past
            candidates.append((bound + other) / 2 if other is not None else bound + way)
        else:
            candidates.append(bound)
    number = next((value for value in candidates if inside(value)), candidates[-1])
    return int(number) if integer else float(number)


def _bound(
    schema: Mapping[str, Any], inclusive: str, exclusive: str, *, below: bool
) -> tuple[float | None, bool]:
    """A side's tighter bound, and whether it is exclusive (``None``: no bound)."""
    given, strict = schema.get(inclusive), schema.get(exclusive)
    if strict is None:
        return given, False
    if given is None or (strict >= given if below else strict <= given):
        return strict, True
    return given, False


_WORDS = re.compile(r"\S+\s*|\s+")
"""A word with the spaces after it (or spaces alone, before the first word): a token."""


def _pieces(text: str, stream: bool) -> list[str]:
    """``text`` word by word (each with the spaces after it), or whole."""
    return _WORDS.findall(text) if stream else [text]


P = ParamSpec("P")


if TYPE_CHECKING:

    @dataclass(frozen=True, kw_only=True)
    class _OfflineFork(OfflineOptions, ForkArguments):
        """What ``offline_agent.fork`` takes: its arguments, and a fork's name and limits."""


class OfflineAgent(LLMAgent[P, OfflineMessage], AnyLLMAgent[OfflineMessage]):
    """The class of ``offline_agent`` and its forks, an ``AnyLLMAgent`` (see ``llm_agent``)."""

    __slots__ = ()

    if TYPE_CHECKING:
        fork = TypedFork(_OfflineFork)  # type: ignore[assignment]  # (see TypedFork)


offline_agent = OfflineAgent.of(
    OfflineOptions,
    OfflineProvider(),
    alias="OFFLINE_AGENT",
    summary="An offline LLM stand-in: same interface as the OpenAI and Anthropic agents.",
)
"""An offline LLM stand-in, for demos and tests: no network, no key."""

create_offline_agent = offline_agent.bind
"""An offline agent with arguments bound: ``offline_agent.fork(...)``, with the arguments typed."""
