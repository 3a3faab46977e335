r"""What the offline model says: scripted texts, scripted tool calls, and tool rules.

A :data:`Script` gives each reply: a text, a tool call (:class:`CallTool`) or several (a
list: they run concurrently), a refusal (:class:`Refuse`), one reply per turn of the model
(:func:`one_per_call`), the next item of an iterator (one per call of the model in the
process), or what a function of the :class:`~miniagents.ext.llm.provider.LLMCall`
returns. With tools, the agent runs the calls and calls the model again, the results now
in ``call.messages``::

    offline_agent.fork(
        tools=[add],
        reply=one_per_call(CallTool("add", {"a": 2, "b": 3}), "2 + 3 = 5."),
    )

:func:`one_per_call` picks the reply by the call itself, not by how many calls the process
made before: the call whose conversation holds ``n`` turns of the model (its earlier
answers, its runs of tool calls) gets the ``n``-th reply (from 0), so the same call gets
the same reply, whatever ran before it. A durable run recovered after a crash replays its
recorded calls without asking the model, then asks it the call that was running: that
call gets the reply it would have got, not the first one (an iterator, which only the
calls made in this process advance, would give the first one, and a side effect already
recorded would run again)::

    turns in the conversation:   0               1                        2
    reply:                       CallTool(add)   "2 + 3 = 5."             (none left: an error)

:class:`ToolRule` s script the usual case in one line each: when the user's last message
matches a rule's pattern, the model calls the rule's tool, with the pattern's named groups
as arguments; once the results are in, it answers with them (or with ``reply``)::

    weather = ToolRule(r"weather in (?P<city>\w+)", "get_weather")
    offline_agent.fork(tools=[get_weather], tool_rules=[weather])
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypeAlias, cast

from miniagents.ext.llm.errors import LLMConfigurationError
from miniagents.ext.llm.prompt import PromptItem, PromptText
from miniagents.ext.llm.provider import LLMCall
from miniagents.ext.tools.messages import ToolCallMessage, ToolResultMessage

__all__ = [
    "CallTool",
    "Refuse",
    "RepliesByTurn",
    "Script",
    "ScriptedReply",
    "ToolRule",
    "answer_from_results",
    "call_count",
    "in_order",
    "model_turns",
    "offline_reply",
    "one_per_call",
    "scripted_calls",
    "scripted_reply",
]


def _check_tool_name(name: object, where: str) -> None:
    if isinstance(name, str):
        return
    known = next(
        (
            found
            for attribute in ("name", "alias", "__name__")
            if isinstance(found := getattr(name, attribute, None), str)
        ),
        None,
    )
    example = f" (here: {known!r})" if isinstance(known, str) else ""
    raise LLMConfigurationError(
        f"{where} takes the name of the tool, a str, but got {name!r}. "
        f"Give the tool's name instead{example}."
    )


@dataclass(frozen=True)
class CallTool:
    """A tool call the offline model makes (in a ``reply`` script).

    Attributes:
        name: The name of the tool to call.
        arguments: The arguments the model gives it.
    """

    name: str
    arguments: Mapping[str, object] = field(default_factory=dict)

    def __post_init__(self) -> None:
        """Refuse a tool given in place of its name, and arguments that are not a mapping.

        Raises:
            LLMConfigurationError: if ``name`` is not a str, or ``arguments`` not a mapping
                (e.g. their JSON text).
        """
        _check_tool_name(self.name, "CallTool(name, ...)")
        given: object = self.arguments
        if not isinstance(given, Mapping):
            raise LLMConfigurationError(
                f"CallTool({self.name!r}, ...) takes the arguments as a dict by name, but got "
                f"{given!r:.80}. Give a dict, e.g. CallTool({self.name!r}, {{'a': 2}})"
                f"{' (json.loads its JSON text)' if isinstance(given, str) else ''}."
            )


@dataclass(frozen=True)
class Refuse:
    """The offline model refuses to answer, saying ``text`` (in a ``reply`` script).

    The reply fails with an ``LLMRefusalError`` carrying ``text``, as with a real model's
    refusal; a structured answer is not retried.

    Attributes:
        text: What the model says when it refuses.
    """

    text: str = "I can't help with that."


@dataclass(frozen=True)
class ToolRule:
    r"""When the user's last message matches ``pattern``, the offline model calls ``tool``.

    Every rule that matches makes one call, so several rules make concurrent calls. The
    rules act on the model's first call of a turn only (before any tool result); after
    that the model answers with ``reply``, by default with the results.

    Attributes:
        pattern: A regular expression searched for in the last user message, ignoring case.
        tool: The name of the tool to call.
        arguments: The arguments: the pattern's named groups that matched, updated with these.

    Example:
        >>> rule = ToolRule(r"weather in (?P<city>\w+)", "get_weather")
        >>> rule.call("What is the weather in Paris?")
        CallTool(name='get_weather', arguments={'city': 'Paris'})
    """

    pattern: str
    tool: str
    arguments: Mapping[str, object] = field(default_factory=dict)

    def __post_init__(self) -> None:
        """Refuse a tool given in place of its name.

        Raises:
            LLMConfigurationError: if ``tool`` is not a str.
        """
        _check_tool_name(self.tool, "ToolRule(pattern, tool)")

    def call(self, text: str) -> CallTool | None:
        """The call this rule makes for a user message, if the message matches."""
        match = re.search(self.pattern, text, re.IGNORECASE)
        if match is None:
            return None
        found = {name: value for name, value in match.groupdict().items() if value is not None}
        return CallTool(self.tool, {**found, **self.arguments})


ScriptedReply: TypeAlias = str | CallTool | Refuse | Sequence[CallTool]
"""One reply of the offline model: a text, a tool call, several calls at once, or a refusal."""

Script: TypeAlias = ScriptedReply | Iterator[ScriptedReply] | Callable[[LLMCall], ScriptedReply]
"""The offline model's replies: one for every call, one per turn of the model
(:func:`one_per_call`), an iterator of them (the next one at each call of the process,
e.g. :func:`in_order`'s, bound with ``fork``), or a function of the call."""


class RepliesByTurn:
    """The offline model's replies, one per turn of the model: what :func:`one_per_call` makes.

    Called with a call of the model, it gives the reply of the call's turn (how many turns
    of the model its conversation holds: :func:`model_turns`), so the same call gets the
    same reply, made now or after a recovery that replayed the calls before it.

    Attributes:
        replies: The replies, the first for the call of a conversation without a turn of
            the model.
    """

    __slots__ = ("replies",)

    def __init__(self, replies: Sequence[ScriptedReply]) -> None:
        """Keep ``replies``, in order."""
        self.replies = tuple(replies)

    def __call__(self, call: LLMCall) -> ScriptedReply:
        """The reply of ``call``'s turn.

        Raises:
            LLMConfigurationError: if the conversation holds as many turns as there are
                replies, or more.
        """
        turn = model_turns(call.messages)
        if turn >= len(self.replies):
            raise LLMConfigurationError(
                f"The offline agent has {len(self.replies)} scripted repl"
                f"{'y' if len(self.replies) == 1 else 'ies'}, one per turn of the model, but "
                f"this call's conversation holds {turn} turn(s) of the model already, so it "
                f"asks for reply {turn + 1}. Give one_per_call(...) one more reply per turn "
                "(with tools, a turn is the model's calls, then its answer once the results "
                "are in)."
            )
        return self.replies[turn]

    def __repr__(self) -> str:
        """``one_per_call(...)`` with the replies."""
        return f"one_per_call({', '.join(map(repr, self.replies))})"


def one_per_call(*replies: ScriptedReply) -> RepliesByTurn:
    """The offline model's replies, one per turn of the model, the first for the first turn.

    The reply of a call is picked by its conversation: the call whose conversation holds
    ``n`` turns of the model (answers, runs of tool calls: see :func:`model_turns`) gets
    ``replies[n]``. So a tool loop gets them in order, a dialog that passes its history
    too, and a durable run recovered after a crash gets, for the call that was running,
    the reply it would have got (its recorded calls replayed without asking the model).

    Example:
        >>> script = one_per_call(CallTool("add", {"a": 2, "b": 3}), "It is 5.")
        >>> script(LLMCall("offline", False, None, (PromptText("user", "2 + 3?"),)))
        CallTool(name='add', arguments={'a': 2, 'b': 3})
    """
    return RepliesByTurn(replies)


def in_order(*replies: ScriptedReply) -> Iterator[ScriptedReply]:
    """The offline model's replies, the next one at each call of the model in the process.

    ``iter([...])`` typed: mypy joins a list of a ``CallTool`` and a text to
    ``list[object]``, which ``reply=`` refuses, while each argument here is checked as a
    :data:`ScriptedReply`. (An iterator is advanced by the calls made in this process: for
    a reply per turn of the model, whatever ran before, see :func:`one_per_call`.)

    Example:
        >>> script = in_order(CallTool("add", {"a": 2, "b": 3}), "It is 5.")
        >>> next(script), next(script)
        (CallTool(name='add', arguments={'a': 2, 'b': 3}), 'It is 5.')
    """
    return iter(replies)


def model_turns(messages: Sequence[PromptItem]) -> int:
    """How many turns of the model a conversation holds.

    A turn is the model's side of the conversation between two others' messages: its
    answer (an ``assistant`` message), its run of tool calls, or both (a text said before
    its calls); a tool result, a user's or another role's message ends it.
    """
    turns = 0
    in_turn = False
    for item in messages:
        model = isinstance(item, ToolCallMessage) or (
            isinstance(item, PromptText) and item.role == "assistant"
        )
        if model and not in_turn:
            turns += 1
        in_turn = model
    return turns


def offline_reply(call: LLMCall) -> str:
    """The default reply: deterministic, and it shows what the model was asked."""
    last = (call.messages[-1].text or "") if call.messages else ""
    shown = last if len(last) <= 200 else last[:200] + "..."
    return f"{_intro(call)} You said: {shown}"


def answer_from_results(call: LLMCall, results: Sequence[ToolResultMessage]) -> str:
    """The default answer once tools have answered: each tool's result, one per line."""
    lines = [f"- {result.tool_name}: {result.text}" for result in results]
    return "\n".join([f"{_intro(call)} The tools answered:", *lines])


def _intro(call: LLMCall) -> str:
    return f'(offline model "{call.model}", {len(call.messages)} message(s) in the prompt)'


def scripted_reply(
    script: Script | None, rules: Sequence[ToolRule], call: LLMCall
) -> ScriptedReply:
    """What the offline model replies to ``call``.

    Raises:
        LLMConfigurationError: if an iterator script has no reply left, or a reply
            function is async.
    """
    user_text, results = _this_turn(call.messages)
    if not results and rules:
        calls = [made for rule in rules if (made := rule.call(user_text)) is not None]
        if calls:
            return calls
    if script is None:
        return answer_from_results(call, results) if results else offline_reply(call)
    if isinstance(script, (str, CallTool, Refuse, Sequence)):
        return script
    if isinstance(script, Iterator):
        try:
            return next(script)
        except StopIteration:
            raise LLMConfigurationError(
                "The offline agent has used up its scripted replies. Give it more, "
                "e.g. fork(reply=in_order(...)) with one reply per call."
            ) from None
    given: object = script  # typed as a function by now, but it may be anything at run time
    if not callable(given):
        raise LLMConfigurationError(
            f"The reply of the offline agent is {given!r}, which is neither a text nor a "
            "CallTool: give a text, a CallTool (or a list of them), an iterator of those, "
            "or a function of the call."
        )
    said: object = script(call)
    if inspect.iscoroutine(said):  # an async def: its coroutine would never be awaited
        said.close()
        name = getattr(given, "__name__", repr(given))
        raise LLMConfigurationError(
            f"The reply function of the offline agent, {name}, is async (it returned a "
            "coroutine), but the offline model calls it as a plain function of the call: "
            "make it a plain def that returns the reply; for a reply that awaits something, "
            "write an agent with @miniagent."
        )
    return cast(ScriptedReply, said)


def scripted_calls(reply: ScriptedReply) -> list[CallTool]:
    """The calls of a scripted reply (none for a text or a refusal).

    Raises:
        LLMConfigurationError: for a reply that is neither a text nor calls.
    """
    if isinstance(reply, (str, Refuse)):
        return []
    if isinstance(reply, CallTool):
        return [reply]
    given: list[object] = list(reply) if isinstance(reply, Sequence) else [reply]
    calls = [call for call in given if isinstance(call, CallTool)]
    if len(calls) < len(given):
        odd = next(call for call in given if not isinstance(call, CallTool))
        raise LLMConfigurationError(
            f"A reply of the offline agent holds {odd!r}, which is neither a text nor a "
            "CallTool. A list in a reply is calls made at once; for one reply per call, "
            "give each reply as an argument of its own, one_per_call(first, second, ...) "
            "or in_order(...), not one list."
        )
    return calls


def _this_turn(messages: Sequence[PromptItem]) -> tuple[str, list[ToolResultMessage]]:
    """The last user message's text, and the tool results that came after it."""
    results: list[ToolResultMessage] = []
    for item in reversed(messages):
        if isinstance(item, PromptText) and item.role == "user":
            return item.text, results[::-1]
        if isinstance(item, ToolResultMessage):
            results.append(item)
    return "", results[::-1]


def call_count(messages: Sequence[PromptItem]) -> int:
    """How many tool calls the conversation holds (to number new ones)."""
    return sum(isinstance(item, ToolCallMessage) for item in messages)
