"""A Python function as an evaluator: ``evaluator(function)``, or ``@evaluator`` on it.

The function takes the :class:`~miniagents.evals.case.CaseRun` and returns a ``bool`` (a
check), a number from 0 to 1 (passing from ``threshold`` on), a
:class:`~miniagents.evals.case.Score`, or ``None`` (the case is not scored); a coroutine
function is awaited::

    @evaluator
    def polite(run: CaseRun[str, str]) -> bool:
        return "please" in run.output.lower()

    @evaluator(threshold=0.5)
    async def relevant(run: CaseRun[str, str]) -> float:
        return await my_relevance_model(run.input, run.output)
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import TypeAlias, overload

from typing_extensions import TypeVar

from miniagents.arguments import check_number
from miniagents.evals.case import CaseRun, Evaluator, Score
from miniagents.evals.errors import EvaluatorDefinitionError

__all__ = ["FunctionEvaluator", "ScoreLike", "evaluator"]

InputT = TypeVar("InputT", contravariant=True)
ExpectedT = TypeVar("ExpectedT", contravariant=True)
I = TypeVar("I")  # noqa: E741
E = TypeVar("E")

ScoreLike: TypeAlias = Score | bool | float | None
"""What an evaluating function returns: a score, a check's outcome, a value from 0 to 1,
or ``None`` (the case is not scored)."""


class FunctionEvaluator(Evaluator[InputT, ExpectedT]):
    """An evaluator that calls a function of the run (see the module docstring).

    Args:
        function: The function (or coroutine function) of the run.
        name: The evaluator's name in the reports (default: the function's name).
        threshold: The value from which a number it returns passes.

    Raises:
        EvaluatorDefinitionError: if ``function`` is not callable, cannot be called with
            the run alone, or ``threshold`` is not from 0 to 1.
    """

    def __init__(
        self,
        function: Callable[[CaseRun[InputT, ExpectedT]], ScoreLike | Awaitable[ScoreLike]],
        *,
        name: str | None = None,
        threshold: float = 1.0,
    ) -> None:
        if not callable(function):
            raise EvaluatorDefinitionError(
                f"evaluator() takes a function of the run, not {function!r}."
            )
        _check_takes_the_run(function)
        self.function = function
        self.threshold = check_number(
            threshold, "threshold", most=1, owner="evaluator()", error=EvaluatorDefinitionError
        )
        self.name = name if name is not None else getattr(function, "__name__", "function")

    async def ascore(self, run: CaseRun[InputT, ExpectedT]) -> Score | None:
        """The function's verdict on ``run``, as a score."""
        result = self.function(run)
        if inspect.isawaitable(result):
            result = await result
        return self._score(result)

    def score(self, run: CaseRun[InputT, ExpectedT]) -> Score | None:
        """The function's verdict on ``run`` (a coroutine function's needs :meth:`ascore`).

        Raises:
            EvaluatorDefinitionError: if the function is a coroutine function.
        """
        result = self.function(run)
        if inspect.isawaitable(result):
            close = getattr(result, "close", None)
            if close is not None:
                close()  # never awaited: no warning about it
            raise EvaluatorDefinitionError(
                f"The evaluator {self.name} is a coroutine function: await ascore(run)."
            )
        return self._score(result)

    def _score(self, result: object) -> Score | None:
        if result is None or isinstance(result, Score):
            return result
        if isinstance(result, (bool, int, float)):
            return Score.of(result, threshold=self.threshold)
        raise EvaluatorDefinitionError(
            f"The evaluator {self.name} returned {result!r}; return a bool, a number from "
            "0 to 1, a Score, or None (not scored)."
        )


def _check_takes_the_run(function: Callable[..., object]) -> None:
    """Refuse a function that cannot be called with the run alone (one positional argument).

    Raises:
        EvaluatorDefinitionError: naming its parameters and the one it should have.
    """
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):  # (a builtin without a signature: called as it is)
        return
    try:
        signature.bind(None)
    except TypeError:
        name = getattr(function, "__name__", "the function")
        parameters = ", ".join(signature.parameters)
        raise EvaluatorDefinitionError(
            f"evaluator() calls its function with the run alone, but {name}({parameters}) "
            f"cannot be called so: give it one parameter, the run (def {name}(run: CaseRun) "
            "-> bool; read run.output, run.expected, run.replies, run.tree)."
        ) from None


@overload
def evaluator(
    function: Callable[[CaseRun[I, E]], ScoreLike | Awaitable[ScoreLike]], /
) -> FunctionEvaluator[I, E]: ...


@overload
def evaluator(
    *, name: str | None = None, threshold: float = 1.0
) -> Callable[
    [Callable[[CaseRun[I, E]], ScoreLike | Awaitable[ScoreLike]]], FunctionEvaluator[I, E]
]: ...


def evaluator(
    function: Callable[[CaseRun[I, E]], ScoreLike | Awaitable[ScoreLike]] | None = None,
    /,
    *,
    name: str | None = None,
    threshold: float = 1.0,
) -> (
    FunctionEvaluator[I, E]
    | Callable[
        [Callable[[CaseRun[I, E]], ScoreLike | Awaitable[ScoreLike]]], FunctionEvaluator[I, E]
    ]
):
    """Make an evaluator of a function: ``evaluator(f)``, ``@evaluator`` or ``@evaluator(...)``.

    Args:
        function: The function (or coroutine function) of the run.
        name: The evaluator's name (default: the function's name).
        threshold: The value from which a number it returns passes (default 1).
    """
    if function is not None:
        return FunctionEvaluator(function, name=name, threshold=threshold)

    def wrap(
        given: Callable[[CaseRun[I, E]], ScoreLike | Awaitable[ScoreLike]],
    ) -> FunctionEvaluator[I, E]:
        return FunctionEvaluator(given, name=name, threshold=threshold)

    return wrap
