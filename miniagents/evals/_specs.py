"""The built-in evaluators by name, as a dataset file names them.

A file (``load_dataset``) names an evaluator by its default name, alone or with its
arguments: one value (its first argument) or a mapping of them (by keyword)::

    evaluators:
      - contains                       # Contains(): the case's expected text
      - regex: "^[A-Z]"                # Regex("^[A-Z]")
      - fuzzy: {threshold: 0.7}        # FuzzyMatch(threshold=0.7)
      - tools: {tools: [search], order: exact}
      - max_duration: 2.5              # MaxDuration(2.5)

A file names no code: an evaluator of yours, or a judge (it needs an agent), is given in
code, or to ``miniagents eval`` as an import path.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from miniagents.evals.case import Evaluator
from miniagents.evals.errors import EvaluatorDefinitionError
from miniagents.evals.matching import Contains, ExactMatch, FuzzyMatch, MatchesJSONSchema, Regex
from miniagents.evals.performance import MaxCost, MaxDuration, MaxFirstTokenTime, MaxTokens
from miniagents.evals.trajectory import AgentsCalled, NoFailedSteps, ToolCalledWith, ToolsCalled

__all__ = ["BUILT_IN", "evaluator_of"]

BUILT_IN: dict[str, Callable[..., Evaluator[object, object]]] = {
    "exact": ExactMatch,
    "fuzzy": FuzzyMatch,
    "contains": Contains,
    "regex": Regex,
    "json_schema": MatchesJSONSchema,
    "max_duration": MaxDuration,
    "max_first_token": MaxFirstTokenTime,
    "max_tokens": MaxTokens,
    "max_cost": MaxCost,
    "agents": AgentsCalled,
    "tools": ToolsCalled,
    "tool_args": ToolCalledWith,
    "no_failed_steps": NoFailedSteps,
}
"""The evaluators a file may name, by their default names."""


def evaluator_of(spec: object) -> Evaluator[object, object]:
    """The evaluator a file's entry names (see the module docstring).

    Raises:
        EvaluatorDefinitionError: for an unknown name, arguments it does not take, or an
            entry that is neither a name nor a one-key mapping.
    """
    if isinstance(spec, str):
        name, arguments = spec, None
    elif isinstance(spec, Mapping) and len(spec) == 1:
        ((name, arguments),) = spec.items()
    else:
        raise EvaluatorDefinitionError(
            f"An evaluator is named alone (contains) or with its arguments ({{regex: "
            f"'^Paris'}}, {{fuzzy: {{threshold: 0.7}}}}), not {spec!r}."
        )
    make = BUILT_IN.get(name) if isinstance(name, str) else None
    if make is None:
        raise EvaluatorDefinitionError(
            f"There is no evaluator {name!r}; the ones a file may name: "
            f"{', '.join(BUILT_IN)} (others are given in code)."
        )
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = {}
    if isinstance(arguments, Mapping):
        kwargs = {str(key): value for key, value in arguments.items()}
    elif arguments is not None:
        args = (arguments,)
    try:
        return make(*args, **kwargs)
    except TypeError as error:
        raise EvaluatorDefinitionError(
            f"The evaluator {name} cannot take {arguments!r}: {error}."
        ) from None
