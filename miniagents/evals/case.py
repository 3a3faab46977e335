"""A case, what the agent did with it, and how it is scored: ``Case``, ``CaseRun``, ``Evaluator``.

A :class:`Case` is one input for the agent, with what is expected of its reply (optional)
and metadata. Run, it gives a :class:`CaseRun`: the replies, their text (``output``), the
reply tree (which agents, tools and models ran: :mod:`miniagents.evals.tree`), the time
to the first token and to the last, and what the model calls used. An :class:`Evaluator`
turns a run into a :class:`Score`: a value from 0 to 1, whether it passed, and why::

    Case(input="Capital of France?", expected="Paris")
      -> agent -> CaseRun(output="Paris.", duration=0.41, ...)
      -> Contains()     -> Score(1.0, passed=True)
      -> MaxLatency(2)  -> Score(1.0, passed=True, reason="0.41 s <= 2 s")

The three belong together (a case names its own evaluators, an evaluator reads the case
in its run), so they share this module.
"""

from __future__ import annotations

from abc import ABC
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Generic

from typing_extensions import TypeVar

from miniagents.arguments import check_number
from miniagents.evals.errors import DatasetError, EvaluatorDefinitionError
from miniagents.evals.tree import ReplyTree
from miniagents.ext.llm.usage import UsageTotals
from miniagents.messages import Message, MessageTuple

__all__ = ["Case", "CaseRun", "Evaluator", "Score"]

InputT_co = TypeVar("InputT_co", covariant=True)
ExpectedT_co = TypeVar("ExpectedT_co", covariant=True, default=object)
InputT_contra = TypeVar("InputT_contra", contravariant=True, default=object)
ExpectedT_contra = TypeVar("ExpectedT_contra", contravariant=True, default=object)


@dataclass(frozen=True)
class Case(Generic[InputT_co, ExpectedT_co]):
    """One input of a dataset, with what is expected of the agent's reply.

    Attributes:
        input: What the agent is inquired with (a ``str``, a ``Message``, ...).
        expected: What the reply should be (evaluators such as ``ExactMatch`` and
            ``Contains`` compare the output with it); ``None``: nothing said.
        name: The case's name, unique in its dataset (``""``: the dataset names it
            ``case-1``, ``case-2``, ... by its place).
        metadata: Anything else about the case (its source, its difficulty, ...): shown
            in the reports, and there for your evaluators.
        evaluators: Evaluators of this case alone, besides the dataset's and the run's.
    """

    input: InputT_co
    expected: ExpectedT_co | None = None
    name: str = ""
    metadata: Mapping[str, object] = field(default_factory=dict)
    evaluators: Sequence[Evaluator[InputT_co, ExpectedT_co]] = ()

    def __post_init__(self) -> None:
        """Keep the metadata read-only, and the evaluators a tuple.

        Raises:
            DatasetError: if the metadata is not a mapping, or the evaluators not a list.
        """
        whose = f"The case {self.name!r}" if self.name else "A case"
        given: object = self.metadata  # (typed so; code mypy does not check may pass anything)
        if not isinstance(given, Mapping):
            raise DatasetError(
                f"{whose} needs its metadata as a mapping (e.g. {{'source': 'faq'}}); got "
                f"{given!r}."
            )
        object.__setattr__(self, "metadata", MappingProxyType(dict(given)))
        object.__setattr__(self, "evaluators", _evaluators_tuple(self.evaluators, whose))


@dataclass(frozen=True)
class Score:
    """What an evaluator made of one run of a case.

    Attributes:
        value: From 0 (worst) to 1 (best); a check that passes or fails is 1 or 0.
        passed: Whether it passed the evaluator's threshold.
        reason: Why, in a few words (shown in the reports).
        error: The class name of the error the evaluator itself failed with, if it did
            (the score is then 0, not passed, and ``reason`` is the error's message).
    """

    value: float
    passed: bool
    reason: str | None = None
    error: str | None = None

    def __post_init__(self) -> None:
        """Check the value.

        Raises:
            EvaluatorDefinitionError: if ``value`` is not a number from 0 to 1.
        """
        fix = "Scale it (e.g. a ratio of checks passed), or return a bool for a pass or a fail."
        check_number(
            self.value, "value", most=1, owner="A score", fix=fix, error=EvaluatorDefinitionError
        )

    @classmethod
    def of(cls, value: bool | float, *, threshold: float = 1.0, reason: str | None = None) -> Score:
        """A score of ``value``: a bool is 1 or 0; a number passes from ``threshold`` on."""
        if isinstance(value, bool):
            return cls(1.0 if value else 0.0, value, reason)
        return cls(float(value), value >= threshold, reason)

    @classmethod
    def failed_with(cls, error: BaseException) -> Score:
        """The score of an evaluator that raised ``error``: 0, not passed."""
        return cls(0.0, False, str(error) or type(error).__name__, type(error).__qualname__)


@dataclass(frozen=True)
class CaseRun(Generic[InputT_co, ExpectedT_co]):
    """One run of a case: what the agent replied, and how (what evaluators read).

    Attributes:
        case: The case.
        repetition: Which repetition of the case this is (from 0; see ``repetitions=``).
        attempts: How many tries it took (more than 1 after a retry).
        replies: The agent's reply messages, complete.
        output: Their text: the texts of the replies joined by blank lines, without the
            tool calls and results of an LLM agent's tool loop (what the user reads).
        tree: Which agents, tools and models ran, in what order, with what.
        duration: Seconds from the inquiry to the last token of the replies.
        first_token: Seconds from the inquiry to the first token of the replies' text
            (tool calls and results aside, as in ``output``; ``None`` for a reply without
            text).
        usage: What the model calls of the run used and cost, at every depth.
    """

    case: Case[InputT_co, ExpectedT_co]
    repetition: int
    attempts: int
    replies: MessageTuple[Message]
    output: str
    tree: ReplyTree
    duration: float
    first_token: float | None
    usage: UsageTotals

    @property
    def input(self) -> InputT_co:
        """The case's input."""
        return self.case.input

    @property
    def expected(self) -> ExpectedT_co | None:
        """What the case expects of the reply (``None``: nothing said)."""
        return self.case.expected


class Evaluator(ABC, Generic[InputT_contra, ExpectedT_contra]):
    """Scores the runs of cases: implement :meth:`score`, or :meth:`ascore` if it awaits.

    An evaluator that does not apply to a case (e.g. one comparing with ``expected`` for a
    case that expects nothing) returns ``None``: the case is left out of its averages. An
    error it raises is its score for that run (``Score.failed_with``): the run goes on.

    ``Evaluator`` (``Evaluator[object, object]``: the built-in ones) reads any case; one
    of yours that reads typed inputs or expectations says so (``Evaluator[str, Weather]``).
    ``Case("...")`` without an expectation is a ``Case[str, object]``.

    Attributes:
        name: The evaluator's name in the reports (unique among a run's evaluators).
    """

    name: str = "evaluator"

    def score(self, run: CaseRun[InputT_contra, ExpectedT_contra]) -> Score | None:
        """The score of ``run`` (or ``None``: the evaluator does not apply to it).

        Raises:
            EvaluatorDefinitionError: if the evaluator implements neither this nor
                :meth:`ascore`.
        """
        raise EvaluatorDefinitionError(
            f"The evaluator {type(self).__name__} scores nothing: implement score(run) (or "
            "the coroutine ascore(run), for one that awaits, e.g. a model)."
        )

    async def ascore(self, run: CaseRun[InputT_contra, ExpectedT_contra]) -> Score | None:
        """The score of ``run``, awaited (by default :meth:`score`'s)."""
        return self.score(run)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


def _evaluators_tuple(given: object, whose: str) -> tuple[Evaluator[object, object], ...]:
    """``given`` (a case's or a dataset's evaluators) as a tuple.

    Raises:
        DatasetError: if it is an evaluator alone, or not an iterable.
    """
    if isinstance(given, (Evaluator, str, Mapping)) or not isinstance(given, Iterable):
        raise DatasetError(
            f"{whose} needs its evaluators as a list of evaluators, not {given!r}; pass "
            f"[{given!r}]."
        )
    return tuple(given)
