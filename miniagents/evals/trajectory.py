"""Evaluators of the reply tree: which agents and tools ran, with what arguments, in what order.

They read ``run.tree`` (:mod:`miniagents.evals.tree`), so they see inside a multi-agent
reply: the sub-agents at every depth, the tools an LLM agent called and their arguments,
what failed. The agents checked are those the case's agent asked (the root itself is not
one of them); the order is the order in which they started::

    tree:  ORCHESTRATOR -> search(q="rivers") -> SEARCHER, then WRITER
    AgentsCalled(["SEARCHER", "WRITER"], order="in_order")     passed
    ToolsCalled(["search"], order="exact")                      passed
    ToolCalledWith("search", {"q": "rivers"})                   passed
    NoFailedSteps()                                             passed

``order``: ``"any"`` (each ran, in any order: the score is the share that did),
``"in_order"`` (they ran in this order, others may run between them) or ``"exact"`` (these
ran, in this order, and nothing else).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

from miniagents.evals.case import CaseRun, Evaluator, Score
from miniagents.evals.errors import EvaluatorDefinitionError
from miniagents.evals.tree import AgentStep, ModelCall, ToolStep

__all__ = ["AgentsCalled", "NoFailedSteps", "Order", "ToolCalledWith", "ToolsCalled"]

Order = Literal["any", "in_order", "exact"]
"""How the names are checked against what ran (see the module docstring)."""

_ORDERS = ("any", "in_order", "exact")

_KINDS = {AgentStep: "agent", ToolStep: "tool", ModelCall: "model"}


def _checked_names(names: Sequence[str], order: str, who: str) -> tuple[str, ...]:
    if isinstance(names, str) or not all(isinstance(name, str) for name in names):
        raise EvaluatorDefinitionError(
            f"{who} takes a list of names, e.g. {who}(['search', 'summarize']); got {names!r}."
        )
    if order not in _ORDERS:
        raise EvaluatorDefinitionError(
            f"{who} takes order='any', 'in_order' or 'exact', not {order!r}."
        )
    return tuple(names)


def _match(wanted: tuple[str, ...], ran: list[str], order: str) -> Score:
    """How ``ran`` (names in the order they started) meets ``wanted`` in ``order``."""
    shown = ", ".join(ran) or "nothing"
    if order == "exact":
        if list(wanted) == ran:
            return Score(1.0, True)
        return Score(0.0, False, f"ran {shown}; expected exactly {', '.join(wanted) or 'nothing'}")
    if order == "in_order":
        position = 0
        for name in ran:
            if position < len(wanted) and name == wanted[position]:
                position += 1
        if position == len(wanted):
            return Score(1.0, True)
        return Score(
            position / len(wanted),
            False,
            f"ran {shown}; expected {', '.join(wanted)} in this order "
            f"({wanted[position]} missing or out of order)",
        )
    missing = [name for name in wanted if name not in ran]
    if not wanted:
        return Score(1.0, True)
    value = 1 - len(missing) / len(wanted)
    if not missing:
        return Score(value, True)
    return Score(value, False, f"ran {shown}; never ran {', '.join(missing)}")


class AgentsCalled(Evaluator[object, object]):
    """The case's agent asked these agents (at any depth), checked in the ``order`` given.

    Args:
        agents: The agents' aliases.
        order: ``"any"``, ``"in_order"`` or ``"exact"`` (see the module docstring).
        name: The evaluator's name in the reports.

    Raises:
        EvaluatorDefinitionError: for names that are not a list of strings, or an
            unknown ``order``.
    """

    def __init__(
        self, agents: Sequence[str], *, order: Order = "any", name: str = "agents"
    ) -> None:
        self.agents = _checked_names(agents, order, "AgentsCalled")
        self.order = order
        self.name = name

    def score(self, run: CaseRun[object, object]) -> Score:
        """How the agents that ran (the root aside) meet the names."""
        root, *asked = run.tree.agents() or [""]
        score = _match(self.agents, asked, self.order)
        if score.passed or root not in self.agents:
            return score
        return Score(
            score.value,
            False,
            f"{score.reason}; {root} is the case's own agent, which is not counted: name "
            "the agents it asks",
        )


class ToolsCalled(Evaluator[object, object]):
    """These tools were called (by any agent of the tree), checked in the ``order`` given.

    Args:
        tools: The tools' names.
        order: ``"any"``, ``"in_order"`` or ``"exact"`` (see the module docstring).
        name: The evaluator's name in the reports.

    Raises:
        EvaluatorDefinitionError: for names that are not a list of strings, or an
            unknown ``order``.
    """

    def __init__(self, tools: Sequence[str], *, order: Order = "any", name: str = "tools") -> None:
        self.tools = _checked_names(tools, order, "ToolsCalled")
        self.order = order
        self.name = name

    def score(self, run: CaseRun[object, object]) -> Score:
        """How the tools called meet the names."""
        return _match(self.tools, run.tree.tools(), self.order)


class ToolCalledWith(Evaluator[object, object]):
    """A call of the tool had these arguments (those given; others may come with them).

    Args:
        tool: The tool's name.
        arguments: The arguments that must be there, with their values.
        name: The evaluator's name in the reports (default: ``tool_args:<tool>``).
    """

    def __init__(
        self, tool: str, arguments: Mapping[str, object], *, name: str | None = None
    ) -> None:
        if not isinstance(tool, str) or not isinstance(arguments, Mapping):
            raise EvaluatorDefinitionError(
                "ToolCalledWith takes the tool's name and a mapping of arguments, e.g. "
                f"ToolCalledWith('search', {{'q': 'rivers'}}); got {tool!r}, {arguments!r}."
            )
        self.tool = tool
        self.arguments = dict(arguments)
        self.name = name if name is not None else f"tool_args:{tool}"

    def score(self, run: CaseRun[object, object]) -> Score:
        """1 if a call of the tool had every argument given, with its value, else 0."""
        calls = [step for step in run.tree.tool_calls() if step.tool == self.tool]
        for call in calls:
            if all(
                key in call.arguments and _same(call.arguments[key], value)
                for key, value in self.arguments.items()
            ):
                return Score(1.0, True)
        if not calls:
            return Score(0.0, False, f"{self.tool} was never called")
        seen = "; ".join(
            ", ".join(f"{key}={value!r}" for key, value in call.arguments.items()) for call in calls
        )
        return Score(0.0, False, f"{self.tool} was called with {seen}")


class NoFailedSteps(Evaluator[object, object]):
    """No step of the tree failed: no agent, tool call (error results too) or model call.

    Args:
        name: The evaluator's name in the reports.
    """

    def __init__(self, *, name: str = "no_failed_steps") -> None:
        self.name = name

    def score(self, run: CaseRun[object, object]) -> Score:
        """1 if no step failed, else 0 with the failed steps named."""
        failed = [
            f"{_KINDS[type(step)]} {step.name}: {step.error}"
            for step in run.tree.steps()
            if step.error is not None
        ]
        if not failed:
            return Score(1.0, True)
        return Score(0.0, False, "; ".join(failed))


def _same(found: object, wanted: object) -> bool:
    """Whether a recorded argument equals the one wanted (mappings and sequences by content)."""
    if isinstance(found, Mapping) and isinstance(wanted, Mapping):
        return found.keys() == wanted.keys() and all(
            _same(found[key], wanted[key]) for key in wanted
        )
    if (
        isinstance(found, Sequence)
        and isinstance(wanted, Sequence)
        and not isinstance(found, str)
        and not isinstance(wanted, str)
    ):
        return len(found) == len(wanted) and all(map(_same, found, wanted))
    return found == wanted
