"""The reply tree of a case: which agents, tools and model calls ran, with what, and when.

While a case runs, every interaction, tool call and model call it causes (at any depth: a
sub-agent's, a tool's, an agent called as a tool) is recorded as a *step*, under the step
that started it::

    AgentStep ORCHESTRATOR            0.000 .. 0.412 s
    ├── ModelCall offline             0.001 .. 0.050 s  (first token 0.010 s, 12 + 5 tokens)
    ├── ToolStep search {"q": "..."}  0.051 .. 0.300 s
    │   └── AgentStep SEARCHER        0.052 .. 0.299 s
    │       └── ModelCall offline     ...
    └── ModelCall offline             0.301 .. 0.410 s

Times are seconds from the case's start, on the event loop's clock (so virtual time in
tests gives exact figures). Steps are numbered in the order they started (``order``), so
that trajectory checks see the order in which agents and tools ran, across branches too.
A :class:`ReplyTree` is frozen: evaluators read it, the report can keep it (as JSON too).

What runs in another process (the worker of a ``ray_agent``) is not in the tree: the ray
agent's own interaction is, as a leaf.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TypeAlias

from miniagents.evals.errors import EvalReportError
from miniagents.ext.llm.pricing import is_token_count
from miniagents.ext.llm.usage import UsageTotals

__all__ = [
    "AgentStep",
    "ModelCall",
    "ReplyTree",
    "Step",
    "ToolStep",
    "check_amounts",
    "step_from_dict",
]


@dataclass(frozen=True)
class ModelCall:
    """One call of a model by an LLM agent (each round of a tool loop is one).

    Attributes:
        order: Its place among the case's steps, in the order they started (from 0).
        model: The model asked.
        provider: Who serves it (``openai``, ``anthropic``, ``offline``, ...).
        started: When it started (seconds from the case's start).
        first_token: When its first token (or tool call) came, if one did.
        ended: When it ended, if it had by the time the case was evaluated.
        input_tokens: The prompt's tokens, as the provider reported them (the cached
            ones included).
        output_tokens: The reply's tokens, as the provider reported them (the reasoning
            ones included).
        cached_input_tokens: Prompt tokens read from the provider's cache.
        cache_write_tokens: Prompt tokens written to the provider's cache.
        reasoning_tokens: Output tokens spent reasoning.
        cost_usd: What it cost, if the model's price is known (and the tokens reported).
        error: The class name of the error it failed with, if it failed.
        input_audio_tokens: The prompt's tokens of audio, part of ``input_tokens``, if the
            reply split its audio (``Finish.audio``: a realtime reply's, priced as such).
        output_audio_tokens: The reply's tokens of audio, part of ``output_tokens``.
        cached_audio_tokens: Prompt tokens of audio read from the cache, part of
            ``cached_input_tokens``.
    """

    order: int
    model: str
    provider: str
    started: float
    first_token: float | None = None
    ended: float | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cached_input_tokens: int | None = None
    cache_write_tokens: int | None = None
    reasoning_tokens: int | None = None
    cost_usd: float | None = None
    error: str | None = None
    input_audio_tokens: int | None = field(default=None, kw_only=True)
    output_audio_tokens: int | None = field(default=None, kw_only=True)
    cached_audio_tokens: int | None = field(default=None, kw_only=True)

    @property
    def name(self) -> str:
        """The model (as the other steps' ``name``: the agent's alias, the tool's name)."""
        return self.model

    @property
    def children(self) -> tuple[Step, ...]:
        """None: a model call starts no step."""
        return ()

    def usage(self) -> UsageTotals:
        """What the call used, as a ``UsageTotals`` to sum (``ReplyTree.usage`` sums them).

        A count not reported adds none; a call without a known cost adds none to
        ``cost_usd`` and counts in ``unpriced_requests``.
        """
        return UsageTotals(
            requests=1,
            input_tokens=self.input_tokens or 0,
            output_tokens=self.output_tokens or 0,
            cached_input_tokens=self.cached_input_tokens or 0,
            cache_write_tokens=self.cache_write_tokens or 0,
            reasoning_tokens=self.reasoning_tokens or 0,
            cost_usd=self.cost_usd or 0.0,
            unpriced_requests=int(self.cost_usd is None),
            input_audio_tokens=self.input_audio_tokens or 0,
            output_audio_tokens=self.output_audio_tokens or 0,
            cached_audio_tokens=self.cached_audio_tokens or 0,
        )

    def to_dict(self) -> dict[str, object]:
        """The step as JSON-ready data (``step_from_dict`` reads it back)."""
        return _as_dict(self, "model")


@dataclass(frozen=True)
class ToolStep:
    """One tool call an LLM agent made, with its arguments and result.

    Attributes:
        order: Its place among the case's steps, in the order they started (from 0).
        tool: The tool's name.
        call_id: The model's id of the call.
        arguments: The arguments the model gave it.
        started: When it started (seconds from the case's start).
        ended: When its result ended, if it had by the time the case was evaluated.
        result: The result's text, once it ended.
        error: The class name of what the tool raised (or ``ToolResultError`` for an error
            result, such as invalid arguments), if it failed.
        children: The steps it started (an agent called as a tool).
    """

    order: int
    tool: str
    call_id: str
    arguments: Mapping[str, object]
    started: float
    ended: float | None = None
    result: str | None = None
    error: str | None = None
    children: tuple[Step, ...] = ()

    @property
    def name(self) -> str:
        """The tool's name."""
        return self.tool

    def to_dict(self) -> dict[str, object]:
        """The step as JSON-ready data (``step_from_dict`` reads it back)."""
        return _as_dict(self, "tool")


@dataclass(frozen=True)
class AgentStep:
    """One interaction of an agent: its alias, its time, its error, what it started.

    Attributes:
        order: Its place among the case's steps, in the order they started (from 0).
        agent: The agent's alias.
        started: When it started (seconds from the case's start).
        ended: When its replies ended to the last token, if they had by the time the case
            was evaluated.
        error: The class name of the error that ended its replies, if one did.
        children: The steps it started, in that order: the agents it asked, its model
            calls, its tool calls.
    """

    order: int
    agent: str
    started: float
    ended: float | None = None
    error: str | None = None
    children: tuple[Step, ...] = ()

    @property
    def name(self) -> str:
        """The agent's alias."""
        return self.agent

    def to_dict(self) -> dict[str, object]:
        """The step as JSON-ready data (``step_from_dict`` reads it back)."""
        return _as_dict(self, "agent")


Step: TypeAlias = AgentStep | ToolStep | ModelCall
"""A step of a reply tree."""


class ReplyTree:
    """What ran for one case: the agent asked, and everything it caused, as steps.

    Frozen: made of its root step (``ReplyTree(root)``), or, for a run, recorded and made
    the first time it is read (an eval reads it only when an evaluator or the report asks).

    Args:
        root: The interaction of the agent the case asked (``None``: it never started).
    """

    __slots__ = ("_build", "_root", "_steps")

    def __init__(self, root: AgentStep | None = None) -> None:
        self._root = root
        self._build: Callable[[], AgentStep | None] | None = None
        self._steps: tuple[Step, ...] | None = None

    @classmethod
    def _deferred(cls, build: Callable[[], AgentStep | None]) -> ReplyTree:
        """A tree whose root ``build`` makes when it is first read (the recorder's)."""
        tree = cls()
        tree._build = build
        return tree

    @property
    def root(self) -> AgentStep | None:
        """The interaction of the agent the case asked (``None``: it never started)."""
        build = self._build
        if build is not None:
            self._build = None
            self._root = build()
        return self._root

    def __eq__(self, other: object) -> bool:
        """Trees are equal when their roots are."""
        return isinstance(other, ReplyTree) and self.root == other.root

    def __hash__(self) -> int:
        """The hash of the root."""
        return hash(self.root)

    def __repr__(self) -> str:
        return f"ReplyTree({self.root!r})"

    def _numbered(self) -> tuple[Step, ...]:
        """Every step, in the order they started (found once)."""
        steps = self._steps
        if steps is None:
            found: list[Step] = []
            root = self.root
            if root is not None:
                stack: list[Step] = [root]
                while stack:
                    step = stack.pop()
                    found.append(step)
                    stack.extend(reversed(step.children))
            found.sort(key=lambda step: step.order)
            steps = self._steps = tuple(found)
        return steps

    def steps(self) -> tuple[Step, ...]:
        """Every step, at every depth, in the order they started."""
        return self._numbered()

    def agents(self) -> list[str]:
        """The aliases of the agents that ran, the root's first, in the order they started."""
        return [step.agent for step in self._numbered() if isinstance(step, AgentStep)]

    def tool_calls(self) -> list[ToolStep]:
        """The tool calls, at every depth, in the order they started."""
        return [step for step in self._numbered() if isinstance(step, ToolStep)]

    def tools(self) -> list[str]:
        """The names of the tools called, in the order the calls started."""
        return [step.tool for step in self.tool_calls()]

    def model_calls(self) -> list[ModelCall]:
        """The calls of models, at every depth, in the order they started."""
        return [step for step in self._numbered() if isinstance(step, ModelCall)]

    def usage(self) -> UsageTotals:
        """What the model calls of the tree used and cost, summed.

        A call without a known cost (a model without a price, or tokens not reported)
        adds none and counts in ``unpriced_requests``: ``cost_usd`` is then a lower bound.
        """
        return UsageTotals.summed(call.usage() for call in self.model_calls())

    def render(self) -> str:
        """The tree as indented lines, one per step (for a report or a failing test)."""
        lines: list[str] = []

        def walk(step: Step, depth: int) -> None:
            lines.append("  " * depth + _line(step))
            for child in step.children:
                walk(child, depth + 1)

        root = self.root
        if root is not None:
            walk(root, 0)
        return "\n".join(lines)

    def to_dict(self) -> dict[str, object] | None:
        """The tree as JSON-ready data (``None`` without a root); :meth:`from_dict` reads it."""
        root = self.root
        return None if root is None else root.to_dict()

    @classmethod
    def from_dict(cls, data: object) -> ReplyTree:
        """The tree :meth:`to_dict` gave (``None``: an empty tree).

        Raises:
            EvalReportError: if ``data`` is not such a tree (a ``ValueError``).
        """
        if data is None:
            return cls()
        root = step_from_dict(data)
        if not isinstance(root, AgentStep):
            raise EvalReportError(f"The root of a reply tree is an agent's step, not {data!r}.")
        return cls(root)


def step_from_dict(data: object) -> Step:
    """The step that ``to_dict()`` gave.

    Raises:
        EvalReportError: if ``data`` is not a step (a ``ValueError``), or is a model call
            with a token count that is no count (negative, fractional, a string) or a cost
            that is no cost (negative, not finite, a string): the error names the field.
    """
    if not isinstance(data, Mapping):
        raise EvalReportError(f"A step is a JSON object, not {data!r}.")
    fields = dict(data)
    kind = fields.pop("kind", None)
    try:
        if kind == "model":
            check_amounts(fields, _COUNTS, f"The model call of order {fields.get('order')!r}")
            return ModelCall(**fields)
        children = tuple(step_from_dict(child) for child in fields.pop("children", ()))
        if kind == "tool":
            return ToolStep(**fields, children=children)
        if kind == "agent":
            return AgentStep(**fields, children=children)
    except TypeError as error:
        raise EvalReportError(
            f"A step of kind {kind!r} with fields it does not have: {error}"
        ) from None
    raise EvalReportError(f"A step's kind is agent, tool or model, not {kind!r}.")


_COUNTS = (
    "input_tokens",
    "output_tokens",
    "cached_input_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
    "input_audio_tokens",
    "output_audio_tokens",
    "cached_audio_tokens",
)
"""A model call's token counts: each a whole number of at least 0, or ``None``."""


def check_amounts(
    fields: Mapping[str, object], counts: Iterable[str], owner: str, *, unknown: bool = True
) -> None:
    """Refuse token counts and a cost read from a report that are none (a hand-edited one's).

    Each of ``counts`` present in ``fields`` must be a whole number of at least 0 (``True``,
    ``2.5``, ``-5`` and ``"200"`` are none), and ``cost_usd``, if present, a finite number
    of dollars of at least 0; with ``unknown``, either may also be ``None`` (not reported,
    not known: a model call's), else not (a usage's sums).

    Args:
        fields: The fields read (a model call's, a case's ``usage``).
        counts: The names of the fields that count tokens or requests.
        owner: Whose fields they are, as a sentence starts (``"The model call of order 3"``).
        unknown: Whether a field may be ``None``.

    Raises:
        EvalReportError: naming ``owner`` and the field, if one is not.
    """
    unknown_said = ", or null if not reported" if unknown else ""
    for name in counts:
        if name in fields and _not_amount(fields[name], _not_count, unknown):
            raise EvalReportError(
                f"{owner} has {name} {fields[name]!r}: a count is a whole number of at least"
                f" 0{unknown_said}; fix it in the report."
            )
    if "cost_usd" in fields and _not_amount(fields["cost_usd"], _not_cost, unknown):
        unknown_said = ", or null if unknown" if unknown else ""
        raise EvalReportError(
            f"{owner} has cost_usd {fields['cost_usd']!r}: a cost is a finite number of dollars"
            f" of at least 0{unknown_said}; fix it in the report."
        )


def _not_amount(value: object, is_none: Callable[[object], bool], unknown: bool) -> bool:
    """Whether ``value`` is no amount (``None``: one only if ``unknown`` amounts are taken)."""
    return not unknown if value is None else is_none(value)


def _not_cost(value: object) -> bool:
    """Whether ``value`` is no cost in dollars (``True``, ``-0.01``, ``inf``, a text are none)."""
    return (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value < 0
    )


def _not_count(value: object) -> bool:
    """Whether ``value`` is no count of tokens, as a provider's is told (``is_token_count``)."""
    return not is_token_count(value)


def _as_dict(step: Step, kind: str) -> dict[str, object]:
    """A step's kind and fields as JSON-ready data (its children's, and its arguments, too)."""
    data: dict[str, object] = {"kind": kind}
    for name in step.__dataclass_fields__:
        value = getattr(step, name)
        if name == "children":
            value = [child.to_dict() for child in value]
        elif name == "arguments":
            value = dict(value)
        data[name] = value
    return data


def _line(step: Step) -> str:
    span = f"{step.started:.3f} .. " + ("?" if step.ended is None else f"{step.ended:.3f}") + " s"
    error = f" failed: {step.error}" if step.error else ""
    if isinstance(step, AgentStep):
        return f"agent {step.agent} ({span}){error}"
    if isinstance(step, ToolStep):
        arguments = ", ".join(f"{key}={value!r}" for key, value in step.arguments.items())
        return f"tool {step.tool}({arguments}) ({span}){error}"
    tokens = ""
    if step.input_tokens is not None or step.output_tokens is not None:
        tokens = f", {step.input_tokens or 0} + {step.output_tokens or 0} tokens"
        if step.input_audio_tokens is not None or step.output_audio_tokens is not None:
            audio = f"{step.input_audio_tokens or 0} + {step.output_audio_tokens or 0}"
            tokens += f" (of audio {audio})"
    return f"model {step.model} [{step.provider}] ({span}{tokens}){error}"
