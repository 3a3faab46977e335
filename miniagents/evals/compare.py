"""Comparing two runs: a baseline and a candidate, case by case, the regressions first.

Cases are matched by name. For each evaluator, and for time and cost, the comparison gives
the baseline's figure, the candidate's, the difference and its 95 % confidence interval
(Student's t, see :mod:`miniagents.evals._stats`):

- **over the run**: paired by case, the mean of the per-case differences;
- **per case**: with repetitions (two or more runs of the case on each side), Welch's
  interval of the difference of the means; with one run a side, no interval.

A run whose agent failed counts 0 for every evaluator (a crash is the worst answer). A
case *regressed* when an evaluator's score went down, surely (its interval is below 0) or,
without an interval, at all; it *improved* when one went up so and none went down::

    baseline -> candidate (capitals: 3 cases; 1 regressed, 1 improved, 1 unchanged)
                  baseline  candidate  change   95% CI
    contains          0.67       0.67   +0.00   [-1.43, +1.43]
    exact             0.33       0.67   +0.33   [-1.10, +1.77]
    duration (s)     0.412      0.390  -0.022   [-0.051, +0.007]
    cost ($)      0.000012   0.000010  -0.000002 ...
    case    status     what changed
    peru    regressed  contains 1.00 -> 0.00
    ...

Cases of one run only are listed as ``added`` or ``removed``, after the others. An
evaluator of one run only has no change to show (its figures read ``-``): the comparison
warns of it (:attr:`Comparison.warnings`, in its table and JSON, and on stderr from
``miniagents eval --baseline``)::

    warning: the evaluator 'exact' scored the candidate only, not the baseline: its
    change is not known (shown as -). Run both with the same evaluators to compare it.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from types import MappingProxyType
from typing import Literal

from miniagents.evals._stats import mean, paired_interval, welch_interval
from miniagents.evals.errors import EvalArgumentError
from miniagents.evals.report import CaseResult, EvalReport, _layout, _mean_cell, _seconds, _usd

__all__ = ["CaseComparison", "Change", "Comparison", "Status", "compare"]

Status = Literal["regressed", "improved", "unchanged", "added", "removed"]
"""What happened to a case from the baseline to the candidate."""

_ORDER: dict[str, int] = {"regressed": 0, "improved": 1, "unchanged": 2, "added": 3, "removed": 4}


@dataclass(frozen=True)
class Change:
    """A figure in the baseline and in the candidate, their difference and its interval.

    Attributes:
        baseline: The baseline's figure (``None``: it has none).
        candidate: The candidate's figure.
        delta: ``candidate - baseline`` (``None`` unless both have one).
        low: The low end of the difference's 95 % confidence interval (``None``: no
            interval: fewer than two values a side, or pairs).
        high: Its high end.
        n: How many values (per case: runs a side, the fewer; over the run: cases paired)
            the difference is of.
    """

    baseline: float | None
    candidate: float | None
    delta: float | None = None
    low: float | None = None
    high: float | None = None
    n: int = 0

    @property
    def down(self) -> bool:
        """The figure went down: surely (its interval is below 0) or, without one, at all."""
        if self.delta is None or self.delta >= 0:
            return False
        return self.high is None or self.high < 0

    @property
    def up(self) -> bool:
        """The figure went up: surely (its interval is above 0) or, without one, at all."""
        if self.delta is None or self.delta <= 0:
            return False
        return self.low is None or self.low > 0

    def to_dict(self) -> dict[str, object]:
        """The change as JSON-ready data."""
        return asdict(self)


@dataclass(frozen=True)
class CaseComparison:
    """One case in both runs (or in one: ``added``, ``removed``).

    Attributes:
        case: The case's name.
        status: ``regressed``, ``improved``, ``unchanged``, ``added`` or ``removed``.
        scores: The change of each evaluator's mean score, by name.
        replied: The change of the share of runs whose agent replied (did not fail).
        duration: The change of the mean duration (seconds; runs that replied).
        cost: The change of the mean cost (US dollars).
        baseline: The case's runs in the baseline.
        candidate: The case's runs in the candidate.
    """

    case: str
    status: Status
    scores: Mapping[str, Change]
    replied: Change
    duration: Change
    cost: Change
    baseline: tuple[CaseResult, ...] = ()
    candidate: tuple[CaseResult, ...] = ()

    def __post_init__(self) -> None:
        """Keep the scores read-only."""
        object.__setattr__(self, "scores", MappingProxyType(dict(self.scores)))

    def what_changed(self) -> str:
        """The changes that decided the status, in a few words (empty if unchanged)."""
        parts = [
            f"{name} {_mean_cell(change.baseline)} -> {_mean_cell(change.candidate)}"
            for name, change in self.scores.items()
            if change.down or change.up
        ]
        replied = self.replied
        if replied.down or replied.up:
            parts.append(f"replied {_share(replied.baseline)} -> {_share(replied.candidate)}")
        return "; ".join(parts)

    def to_dict(self) -> dict[str, object]:
        """The case's comparison as JSON-ready data (its runs by their results' data)."""
        return {
            "case": self.case,
            "status": self.status,
            "scores": {name: change.to_dict() for name, change in self.scores.items()},
            "replied": self.replied.to_dict(),
            "duration": self.duration.to_dict(),
            "cost": self.cost.to_dict(),
        }


@dataclass(frozen=True)
class Comparison:
    """A baseline run against a candidate run (see the module docstring).

    Attributes:
        baseline: The baseline's report.
        candidate: The candidate's report.
        scores: The change of each evaluator's mean score over the cases of both runs.
        duration: The change of the mean duration of a case (seconds).
        first_token: The change of the mean time to the first token (seconds).
        cost: The change of the mean cost of a case (US dollars).
        cases: Each case, the regressions first (the worst first), then the
            improvements, the unchanged, the added and the removed.
    """

    baseline: EvalReport
    candidate: EvalReport
    scores: Mapping[str, Change]
    duration: Change
    first_token: Change
    cost: Change
    cases: tuple[CaseComparison, ...] = field(default=())

    def __post_init__(self) -> None:
        """Keep the scores read-only."""
        object.__setattr__(self, "scores", MappingProxyType(dict(self.scores)))

    @property
    def regressions(self) -> tuple[CaseComparison, ...]:
        """The cases that regressed, the worst first."""
        return tuple(case for case in self.cases if case.status == "regressed")

    @property
    def improvements(self) -> tuple[CaseComparison, ...]:
        """The cases that improved."""
        return tuple(case for case in self.cases if case.status == "improved")

    @property
    def warnings(self) -> tuple[str, ...]:
        """What the comparison could not compare: each evaluator that scored one run only.

        Its figures read ``-`` in the table; each warning says which run lacks it.
        """
        before, after = self.baseline.evaluators, self.candidate.evaluators
        return tuple(
            f"the evaluator {name!r} scored the {'candidate' if name in after else 'baseline'} "
            f"only, not the {'baseline' if name in after else 'candidate'}: its change is not "
            "known (shown as -). Run both with the same evaluators to compare it."
            for name in dict.fromkeys([*before, *after])
            if (name in before) != (name in after)
        )

    def count(self, status: Status) -> int:
        """How many cases have ``status``."""
        return sum(case.status == status for case in self.cases)

    def headline(self) -> str:
        """One line: the two runs, and how many cases regressed, improved, stayed."""
        counts = ", ".join(
            f"{self.count(status)} {status}"
            for status in ("regressed", "improved", "unchanged", "added", "removed")
            if self.count(status) or status in ("regressed", "improved", "unchanged")
        )
        return (
            f"{self.baseline.name} -> {self.candidate.name} ({self.candidate.dataset}: "
            f"{len(self.cases)} case(s); {counts})"
        )

    def table(self, *, timing: bool = True, cost: bool = True, width: int = 24) -> str:
        """The comparison as tables for the terminal: the figures, then the cases.

        Args:
            timing: Show the changes of duration and time to the first token.
            cost: Show the change of cost.
            width: The widest the case column may be.
        """
        rows = [["", "baseline", "candidate", "change", "95% CI"]]
        for name, change in self.scores.items():
            rows.append([name, *_cells(change, _mean_cell, _signed)])
        if timing:
            rows.append(["duration (s)", *_cells(self.duration, _plain_seconds, _signed_seconds)])
            rows.append(
                ["first token (s)", *_cells(self.first_token, _plain_seconds, _signed_seconds)]
            )
        if cost:
            rows.append(["cost ($/case)", *_cells(self.cost, _plain_usd, _signed_usd)])
        cases = [["case", "status", "what changed"]]
        for case in self.cases:
            label = case.case if len(case.case) <= width else case.case[: width - 1] + "…"
            cases.append([label, case.status, case.what_changed()])
        figures = _layout(rows[:1], rows[1:]) if len(rows) > 1 else ""
        listed = _left(cases)
        warned = "\n".join(f"warning: {warning}" for warning in self.warnings)
        return "\n".join(part for part in (self.headline(), warned, figures, listed) if part)

    def __str__(self) -> str:
        """The tables."""
        return self.table()

    def to_dict(self) -> dict[str, object]:
        """The comparison as JSON-ready data (the reports by name)."""
        return {
            "format": "miniagents.evals.comparison",
            "baseline": self.baseline.name,
            "candidate": self.candidate.name,
            "dataset": self.candidate.dataset,
            "scores": {name: change.to_dict() for name, change in self.scores.items()},
            "duration": self.duration.to_dict(),
            "first_token": self.first_token.to_dict(),
            "cost": self.cost.to_dict(),
            "cases": [case.to_dict() for case in self.cases],
            "warnings": list(self.warnings),
        }

    def to_json(self, *, indent: int | None = 2) -> str:
        """The comparison as JSON text."""
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)


def compare(baseline: EvalReport, candidate: EvalReport) -> Comparison:
    """Compare ``candidate`` with ``baseline``, case by case (see the module docstring).

    Raises:
        EvalArgumentError: if either is not an ``EvalReport``, or they share no case.
    """
    if not isinstance(baseline, EvalReport) or not isinstance(candidate, EvalReport):
        raise EvalArgumentError(
            "compare() takes two EvalReports (EvalReport.read_json(path) reads a saved one); "
            f"got {type(baseline).__name__} and {type(candidate).__name__}."
        )
    before = _by_case(baseline.results)
    after = _by_case(candidate.results)
    common = [name for name in after if name in before]
    if not common:
        raise EvalArgumentError(
            f"The reports {baseline.name!r} and {candidate.name!r} share no case (cases are "
            "matched by name): compare runs of the same dataset."
        )
    evaluators = list(dict.fromkeys([*baseline.evaluators, *candidate.evaluators]))
    cases: list[CaseComparison] = []
    for name in common:
        cases.append(_case(name, before[name], after[name], evaluators))
    for name in after:
        if name not in before:
            cases.append(_case(name, (), after[name], evaluators, "added"))
    for name in before:
        if name not in after:
            cases.append(_case(name, before[name], (), evaluators, "removed"))
    cases.sort(key=_rank)
    scores = {
        evaluator: _paired([(before[name], after[name]) for name in common], _mean_value(evaluator))
        for evaluator in evaluators
    }
    return Comparison(
        baseline=baseline,
        candidate=candidate,
        scores=scores,
        duration=_paired(
            [(before[name], after[name]) for name in common],
            lambda runs: mean(_durations(runs)),
        ),
        first_token=_paired(
            [(before[name], after[name]) for name in common],
            lambda runs: mean([run.first_token for run in runs if run.first_token is not None]),
        ),
        cost=_paired(
            [(before[name], after[name]) for name in common],
            lambda runs: mean([run.usage.cost_usd for run in runs]),
        ),
        cases=tuple(cases),
    )


def _by_case(results: Sequence[CaseResult]) -> dict[str, list[CaseResult]]:
    grouped: dict[str, list[CaseResult]] = defaultdict(list)
    for result in results:
        grouped[result.case].append(result)
    return dict(grouped)


def _values(runs: Sequence[CaseResult], evaluator: str) -> list[float]:
    return [value for run in runs if (value := run.value(evaluator)) is not None]


def _mean_value(evaluator: str) -> Callable[[list[CaseResult]], float | None]:
    def figure(runs: list[CaseResult]) -> float | None:
        return mean(_values(runs, evaluator))

    return figure


def _durations(runs: Sequence[CaseResult]) -> list[float]:
    return [run.duration for run in runs if run.error is None and run.duration is not None]


def _unpaired(before: list[float], after: list[float]) -> Change:
    first, second = mean(before), mean(after)
    if first is None or second is None:
        return Change(first, second)
    interval = welch_interval(before, after)
    low, high = (None, None) if interval is None else interval
    return Change(first, second, second - first, low, high, min(len(before), len(after)))


def _paired(
    pairs: list[tuple[list[CaseResult], list[CaseResult]]],
    figure: Callable[[list[CaseResult]], float | None],
) -> Change:
    firsts: list[float] = []
    seconds: list[float] = []
    for before, after in pairs:
        first, second = figure(before), figure(after)
        if first is not None and second is not None:
            firsts.append(first)
            seconds.append(second)
    if not firsts:
        return Change(None, None)
    differences = [second - first for first, second in zip(firsts, seconds, strict=True)]
    interval = paired_interval(differences)
    low, high = (None, None) if interval is None else interval
    return Change(
        sum(firsts) / len(firsts),
        sum(seconds) / len(seconds),
        sum(differences) / len(differences),
        low,
        high,
        len(differences),
    )


def _case(
    name: str,
    before: Sequence[CaseResult],
    after: Sequence[CaseResult],
    evaluators: list[str],
    lone: Status | None = None,
) -> CaseComparison:
    """The case compared; ``lone``: its status if one side never ran it (its changes, means).

    (With a side empty, ``_unpaired`` gives the means alone: no delta, nothing up or down.)
    """
    scores = {
        evaluator: _unpaired(_values(before, evaluator), _values(after, evaluator))
        for evaluator in evaluators
        if lone or _values(before, evaluator) or _values(after, evaluator)
    }
    replied = _unpaired(
        [float(run.error is None) for run in before], [float(run.error is None) for run in after]
    )
    changes = [*scores.values(), replied]
    status: Status = lone or "unchanged"
    if any(change.down for change in changes):
        status = "regressed"
    elif any(change.up for change in changes):
        status = "improved"
    return CaseComparison(
        case=name,
        status=status,
        scores=scores,
        replied=replied,
        duration=_unpaired(_durations(before), _durations(after)),
        cost=_unpaired(
            [run.usage.cost_usd for run in before], [run.usage.cost_usd for run in after]
        ),
        baseline=tuple(before),
        candidate=tuple(after),
    )


def _rank(case: CaseComparison) -> tuple[int, float, str]:
    """Regressions first, the worst (the largest drop of a score) first; then by status."""
    deltas = [change.delta for change in (*case.scores.values(), case.replied) if change.delta]
    worst = min(deltas, default=0.0)
    best = -max(deltas, default=0.0)
    return _ORDER[case.status], worst if case.status == "regressed" else best, case.case


# -- rendering ---------------------------------------------------------------------------


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def _signed(value: float) -> str:
    return f"{value:+.2f}"


def _plain_seconds(value: float | None) -> str:
    return _seconds(value).removesuffix(" s")


def _signed_seconds(value: float) -> str:
    return f"{value:+.3f}"


def _plain_usd(value: float | None) -> str:
    return "-" if value is None else _usd(value)


def _signed_usd(value: float) -> str:
    return ("+" if value >= 0 else "-") + _usd(abs(value))


def _cells(
    change: Change, plain: Callable[[float | None], str], signed: Callable[[float], str]
) -> list[str]:
    delta = "-" if change.delta is None else signed(change.delta)
    interval = (
        "-"
        if change.low is None or change.high is None
        else f"[{signed(change.low)}, {signed(change.high)}]"
    )
    return [plain(change.baseline), plain(change.candidate), delta, interval]


def _left(rows: list[list[str]]) -> str:
    """Rows of cells as columns aligned to the left."""
    widths = [max(len(row[index]) for row in rows) for index in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(widths[index]) for index, cell in enumerate(row)).rstrip()
        for row in rows
    )
