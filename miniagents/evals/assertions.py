"""Evals in a test suite: fail a test when a score falls below its threshold, or regresses.

:func:`assert_eval` checks a report against thresholds of mean scores and against a stored
baseline (a report saved as JSON), and raises an :class:`EvalThresholdError` (an
``AssertionError``: pytest shows it as a failure) that names every problem, the regressed
cases first::

    async def test_the_assistant_knows_its_capitals() -> None:
        report = await aevaluate(assistant, load_dataset("tests/capitals.yaml"), [Contains()])
        assert_eval(
            report,
            min_scores={"contains": 0.9},
            baseline="tests/baselines/capitals.json",  # written by the first run
            max_drop=0.05,
        )

**The baseline.** A baseline file that does not exist yet is written with the report if it
meets its thresholds (and the check passes): commit it. A first run below its thresholds
fails and writes none. To accept a new baseline (the agents got better, or a
change is meant), run the tests with ``MINIAGENTS_UPDATE_BASELINES=1`` (or pass
``update_baseline=True``): the reports are written as the baselines, the thresholds still
checked. Otherwise each evaluator's mean over the cases of both runs may drop by at most
``max_drop`` from the baseline's.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from miniagents.arguments import check_number
from miniagents.evals.compare import Comparison, compare
from miniagents.evals.errors import EvalArgumentError, EvalThresholdError
from miniagents.evals.report import EvalReport

__all__ = ["UPDATE_BASELINES", "assert_eval", "problems_of"]

UPDATE_BASELINES = "MINIAGENTS_UPDATE_BASELINES"
"""The environment variable that, set to ``1``, has :func:`assert_eval` write the baselines."""


def problems_of(
    report: EvalReport,
    *,
    min_scores: Mapping[str, float] | None = None,
    baseline: EvalReport | None = None,
    max_drop: float = 0.0,
) -> tuple[list[str], Comparison | None]:
    """What fails in ``report``: each problem as a sentence, and the comparison made, if any.

    Args:
        report: The run to check.
        min_scores: The lowest mean score of each evaluator, by name.
        baseline: The run to compare with.
        max_drop: How much an evaluator's mean may drop from the baseline's.

    Raises:
        EvalArgumentError: for a threshold or a ``max_drop`` that is not a number from 0
            to 1 (NaN included: no score would fail it).
    """
    _check_thresholds(min_scores, max_drop)
    problems: list[str] = []
    for name, minimum in (min_scores or {}).items():
        if name not in report.evaluators:
            known = ", ".join(report.evaluators) or "none"
            problems.append(f"There is no evaluator {name!r} in the report (it has: {known}).")
            continue
        value = report.mean(name)
        if value is None or value < minimum:
            shown = "nothing scored" if value is None else f"{value:.3f}"
            problems.append(f"{name}: the mean score is {shown}, below its threshold {minimum:g}.")
    comparison = None
    if baseline is not None:
        comparison = compare(baseline, report)
        for name, change in comparison.scores.items():
            if change.delta is None or change.delta >= -max_drop:
                continue
            interval = ""
            if change.low is not None and change.high is not None:
                interval = f", 95% CI [{change.low:+.3f}, {change.high:+.3f}]"
            problems.append(
                f"{name}: the mean score dropped from {change.baseline:.3f} to "
                f"{change.candidate:.3f} ({change.delta:+.3f}{interval}) against the baseline "
                f"{baseline.name!r}, more than the {max_drop:g} allowed."
            )
        if problems and comparison.regressions:
            shown = "; ".join(
                f"{case.case} ({case.what_changed()})" for case in comparison.regressions[:10]
            )
            more = len(comparison.regressions) - 10
            problems.append(
                "Regressed cases: " + shown + (f"; and {more} more." if more > 0 else ".")
            )
    return problems, comparison


def assert_eval(
    report: EvalReport,
    *,
    min_scores: Mapping[str, float] | None = None,
    baseline: str | os.PathLike[str] | EvalReport | None = None,
    max_drop: float = 0.0,
    update_baseline: bool | None = None,
) -> Comparison | None:
    """Fail (raise) if a mean score is below its threshold, or dropped from the baseline.

    Args:
        report: The run to check.
        min_scores: The lowest mean score of each evaluator, by name (e.g.
            ``{"contains": 0.9}``).
        baseline: The baseline: a report, or the JSON file of one (written with this
            report if it does not exist yet and the report meets ``min_scores``; see the
            module docstring).
        max_drop: How much an evaluator's mean score may drop from the baseline's.
        update_baseline: Write the report as the baseline file instead of comparing with
            it (``None``: if ``MINIAGENTS_UPDATE_BASELINES`` is ``1``).

    Returns:
        The comparison with the baseline, if one was made.

    Raises:
        EvalThresholdError: naming every problem (an ``AssertionError``).
        EvalReportError: if the baseline file is not a report.
        EvalArgumentError: for a threshold or a ``max_drop`` that is not a number from 0
            to 1 (NaN included: no score would fail it).
    """
    _check_thresholds(min_scores, max_drop)  # (before a baseline is written)
    if update_baseline is None:
        update_baseline = os.environ.get(UPDATE_BASELINES, "") == "1"
    stored: EvalReport | None = None
    written: Path | None = None  # (the baseline file this report is to be)
    if isinstance(baseline, EvalReport):
        stored = baseline
    elif baseline is not None:
        file = Path(baseline)
        if update_baseline or not file.exists():
            written = file
        else:
            stored = EvalReport.read_json(file)
    problems, comparison = problems_of(
        report, min_scores=min_scores, baseline=stored, max_drop=max_drop
    )
    if written is not None and (update_baseline or not problems):
        written.parent.mkdir(parents=True, exist_ok=True)
        report.write_json(written)
    elif written is not None:  # (a first run that fails its thresholds is no baseline)
        problems.append(
            f"The baseline {str(written)!r} was not written: a run below its thresholds is "
            "no baseline. The first run that meets them writes it (or pass "
            f"update_baseline=True, or set {UPDATE_BASELINES}=1, to write this one)."
        )
    if problems:
        details = report.table(timing=False)
        if comparison is not None:
            details += "\n\n" + comparison.table(timing=False)
        raise EvalThresholdError(
            f"The eval {report.name!r} of {report.dataset!r} failed:\n- "
            + "\n- ".join(problems)
            + "\n\n"
            + details
        )
    return comparison


def _check_thresholds(min_scores: Mapping[str, float] | None, max_drop: float) -> None:
    """Check the thresholds of a check (``miniagents eval`` checks them before its run).

    Raises:
        EvalArgumentError: for one that is not a number from 0 to 1 (NaN, that every mean
            score would meet, included).
    """
    fix = "A mean score is from 0 to 1."
    for name, minimum in (min_scores or {}).items():
        check_number(
            minimum,
            f"min_scores[{name!r}]",
            most=1,
            owner="The eval",
            fix=fix,
            error=EvalArgumentError,
        )
    check_number(max_drop, "max_drop", most=1, owner="The eval", fix=fix, error=EvalArgumentError)
