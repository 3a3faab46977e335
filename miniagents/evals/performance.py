"""Evaluators of how fast and how cheap a run was: total time, first token, tokens, money.

Each passes while its figure stays within its limit (score 1, else 0); the figure is in
the reason either way, and in the report's columns::

    MaxDuration(2.0)        the last token within 2 s of the inquiry
    MaxFirstTokenTime(0.5)  the first token within 0.5 s
    MaxTokens(2_000)        the model calls of the whole tree used at most 2,000 tokens
    MaxCost(0.01)           ... and cost at most $0.01

Times are seconds on the event loop's clock from the inquiry (virtual time in tests);
tokens and cost are those of every model call of the tree (sub-agents' and tools' too).
A cost with calls of unknown price is a lower bound: ``MaxCost`` says so in its reason.
"""

from __future__ import annotations

from miniagents.arguments import check_number
from miniagents.evals.case import CaseRun, Evaluator, Score
from miniagents.evals.errors import EvaluatorDefinitionError

__all__ = ["MaxCost", "MaxDuration", "MaxFirstTokenTime", "MaxTokens"]


def _limit(value: object, who: str, name: str, unit: str) -> float:
    return check_number(value, name, unit=unit, owner=who, error=EvaluatorDefinitionError)


def _within(figure: float, limit: float, shown: str, limit_shown: str) -> Score:
    """1 if ``figure`` is at most ``limit``, else 0; the reason compares them as shown."""
    ok = figure <= limit
    return Score.of(ok, reason=f"{shown} {'<=' if ok else '>'} {limit_shown}")


class MaxDuration(Evaluator[object, object]):
    """The reply ended (its last token) within ``seconds`` of the inquiry.

    Args:
        seconds: The limit.
        name: The evaluator's name in the reports.
    """

    def __init__(self, seconds: float, *, name: str = "max_duration") -> None:
        self.seconds = _limit(seconds, "MaxDuration", "seconds", "seconds")
        self.name = name

    def score(self, run: CaseRun[object, object]) -> Score:
        """1 within the limit, else 0."""
        return _within(run.duration, self.seconds, f"{run.duration:.3f} s", f"{self.seconds:g} s")


class MaxFirstTokenTime(Evaluator[object, object]):
    """The first token of the reply came within ``seconds`` of the inquiry.

    Args:
        seconds: The limit.
        name: The evaluator's name in the reports.
    """

    def __init__(self, seconds: float, *, name: str = "max_first_token") -> None:
        self.seconds = _limit(seconds, "MaxFirstTokenTime", "seconds", "seconds")
        self.name = name

    def score(self, run: CaseRun[object, object]) -> Score:
        """1 within the limit, else 0 (a reply without text never had a first token)."""
        first = run.first_token
        if first is None:
            return Score(0.0, False, "no token came")
        return _within(first, self.seconds, f"{first:.3f} s", f"{self.seconds:g} s")


class MaxTokens(Evaluator[object, object]):
    """The model calls of the tree used at most ``tokens`` tokens (input and output).

    Args:
        tokens: The limit.
        name: The evaluator's name in the reports.
    """

    def __init__(self, tokens: int, *, name: str = "max_tokens") -> None:
        self.tokens = int(_limit(tokens, "MaxTokens", "tokens", "tokens"))
        self.name = name

    def score(self, run: CaseRun[object, object]) -> Score:
        """1 within the limit, else 0."""
        used = run.usage.total_tokens
        return _within(used, self.tokens, f"{used:,} tokens", f"{self.tokens:,}")


class MaxCost(Evaluator[object, object]):
    """The model calls of the tree cost at most ``usd`` US dollars.

    Args:
        usd: The limit.
        name: The evaluator's name in the reports.
    """

    def __init__(self, usd: float, *, name: str = "max_cost") -> None:
        self.usd = _limit(usd, "MaxCost", "usd", "US dollars")
        self.name = name

    def score(self, run: CaseRun[object, object]) -> Score:
        """1 within the limit, else 0 (a cost with unpriced calls is a lower bound)."""
        usage = run.usage
        bound = ""
        if usage.unpriced_requests:
            bound = f" (at least: {usage.unpriced_requests} call(s) of unknown price)"
        return _within(usage.cost_usd, self.usd, f"${usage.cost_usd:.6f}", f"${self.usd:g}{bound}")
