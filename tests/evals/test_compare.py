"""Comparing a baseline with a candidate: case by case, with intervals, regressions first."""

from __future__ import annotations

import dataclasses
import json
import math

import pytest

from miniagents import InteractionContext, miniagent
from miniagents.evals import (
    Case,
    CaseResult,
    Contains,
    EvalArgumentError,
    EvalReport,
    Score,
    aevaluate,
)
from miniagents.evals._stats import paired_interval, percentile, t_quantile, welch_interval
from miniagents.evals.compare import compare
from miniagents.ext.llm import UsageTotals


def _runs(case: str, values: list[float | None], *, cost: float = 0.0) -> list[CaseResult]:
    """A run per value (``None``: the agent failed)."""
    return [
        CaseResult(
            case=case,
            repetition=number,
            input=case,
            expected=None,
            output=None if value is None else "out",
            error="RuntimeError" if value is None else None,
            error_message="broke" if value is None else None,
            scores={} if value is None else {"exact": Score(value, value == 1.0)},
            duration=None if value is None else 1.0 + number,
            usage=UsageTotals(cost_usd=cost),
        )
        for number, value in enumerate(values)
    ]


def _report(name: str, *runs: list[CaseResult]) -> EvalReport:
    results = tuple(result for case in runs for result in case)
    return EvalReport(name, "AGENT", "set", results, ("exact",), repetitions=3)


BASELINE = _report(
    "baseline",
    _runs("a", [1, 1, 1], cost=0.002),
    _runs("b", [1, 0, 1], cost=0.002),
    _runs("c", [0, 0, 0], cost=0.002),
    _runs("e", [1, 1, 1]),
    _runs("f", [1, 1, 1], cost=0.002),
)
CANDIDATE = _report(
    "candidate",
    _runs("a", [0, 0, 0], cost=0.001),
    _runs("b", [0, 1, 1], cost=0.001),
    _runs("c", [1, 1, 0], cost=0.001),
    _runs("d", [1, 1, 1]),
    _runs("f", [None, None, None], cost=0.001),
)


def test_the_cases_are_matched_by_name_and_the_regressions_come_first() -> None:
    comparison = compare(BASELINE, CANDIDATE)
    assert [(case.case, case.status) for case in comparison.cases] == [
        ("a", "regressed"),
        ("f", "regressed"),
        ("c", "unchanged"),  # up by 2/3, but its interval holds 0: noise
        ("b", "unchanged"),
        ("d", "added"),
        ("e", "removed"),
    ]
    assert [case.case for case in comparison.regressions] == ["a", "f"]
    assert comparison.improvements == ()
    assert comparison.headline() == (
        "baseline -> candidate (set: 6 case(s); 2 regressed, 0 improved, 2 unchanged, "
        "1 added, 1 removed)"
    )


def test_a_cases_change_has_welchs_interval_over_its_repetitions() -> None:
    cases = {case.case: case for case in compare(BASELINE, CANDIDATE).cases}
    a = cases["a"].scores["exact"]
    assert (a.baseline, a.candidate, a.delta, a.low, a.high, a.n) == (1.0, 0.0, -1.0, -1.0, -1.0, 3)
    assert a.down
    assert not a.up
    c = cases["c"].scores["exact"]
    half = t_quantile(0.975, 2) * math.sqrt(1 / 9)  # var 1/3 over 3 runs; df = 2
    assert c.delta == pytest.approx(2 / 3)
    assert c.low == pytest.approx(2 / 3 - half)
    assert c.high == pytest.approx(2 / 3 + half)
    assert not c.up
    assert not c.down
    f = cases["f"]
    assert f.scores["exact"].candidate == 0.0  # a failed run scores 0
    assert (f.replied.baseline, f.replied.candidate) == (1.0, 0.0)
    assert f.what_changed() == "exact 1.00 -> 0.00; replied 100% -> 0%"
    assert cases["a"].what_changed() == "exact 1.00 -> 0.00"
    assert cases["b"].what_changed() == ""
    assert cases["f"].duration.candidate is None  # no run replied


def test_the_runs_change_is_paired_by_case() -> None:
    comparison = compare(BASELINE, CANDIDATE)
    exact = comparison.scores["exact"]
    differences = [-1.0, 0.0, 2 / 3, -1.0]  # a, b, c, f
    mean = sum(differences) / 4
    spread = math.sqrt(sum((d - mean) ** 2 for d in differences) / 3 / 4)
    half = t_quantile(0.975, 3) * spread
    assert exact.n == 4
    assert exact.delta == pytest.approx(mean)
    assert exact.low == pytest.approx(mean - half)
    assert exact.high == pytest.approx(mean + half)
    assert exact.baseline == pytest.approx((1 + 2 / 3 + 0 + 1) / 4)
    assert comparison.cost.delta == pytest.approx(-0.001)
    assert comparison.cost.low == pytest.approx(-0.001)  # the same difference for every
    assert comparison.cost.high == pytest.approx(-0.001)  # case: no spread
    assert comparison.duration.n == 3  # f never replied in the candidate


def test_one_run_a_side_has_no_interval_and_any_drop_is_a_regression() -> None:
    before = _report("before", _runs("a", [1]), _runs("b", [0]))
    after = _report("after", _runs("a", [0.5]), _runs("b", [1]))
    comparison = compare(before, after)
    cases = {case.case: case for case in comparison.cases}
    assert cases["a"].status == "regressed"
    assert cases["a"].scores["exact"].low is None
    assert cases["b"].status == "improved"
    assert [case.case for case in comparison.cases] == ["a", "b"]


def test_the_table_and_the_json() -> None:
    comparison = compare(BASELINE, CANDIDATE)
    table = comparison.table()
    lines = table.splitlines()
    assert lines[0] == comparison.headline()
    assert lines[1].split() == ["baseline", "candidate", "change", "95%", "CI"]
    assert lines[3].split()[:4] == ["exact", "0.67", "0.33", "-0.33"]
    assert "case  status     what changed" in table
    assert "a     regressed  exact 1.00 -> 0.00" in table
    data = json.loads(comparison.to_json())
    assert data["format"] == "miniagents.evals.comparison"
    assert [case["status"] for case in data["cases"]][:2] == ["regressed", "regressed"]
    assert str(comparison) == table


def test_reports_without_a_common_case_or_not_reports_are_refused() -> None:
    with pytest.raises(EvalArgumentError, match="share no case"):
        compare(_report("x", _runs("a", [1])), _report("y", _runs("b", [1])))
    with pytest.raises(EvalArgumentError, match="takes two EvalReports"):
        compare(BASELINE, "candidate.json")  # type: ignore[arg-type]


async def test_two_runs_of_a_changed_agent_compare() -> None:
    @miniagent
    async def before(ctx: InteractionContext) -> None:
        ctx.reply("Paris and Lima")

    @miniagent
    async def after(ctx: InteractionContext) -> None:
        ctx.reply("Paris")

    cases = [Case("France?", "Paris", name="france"), Case("Peru?", "Lima", name="peru")]
    baseline = await aevaluate(before, cases, [Contains()], name="baseline")
    candidate = await aevaluate(after, cases, [Contains()], name="candidate")
    comparison = compare(baseline, candidate)
    assert [(case.case, case.status) for case in comparison.cases] == [
        ("peru", "regressed"),
        ("france", "unchanged"),
    ]
    assert comparison.scores["contains"].delta == -0.5


def test_the_statistics() -> None:
    assert t_quantile(0.975, 1) == pytest.approx(12.7062, abs=1e-4)
    assert t_quantile(0.975, 2) == pytest.approx(4.3027, abs=1e-4)
    assert t_quantile(0.975, 10) == pytest.approx(2.2281, abs=1e-3)
    assert t_quantile(0.975, 1e6) == pytest.approx(1.95996, abs=1e-4)
    assert paired_interval([1.0]) is None
    assert welch_interval([1.0], [1.0, 2.0]) is None
    assert welch_interval([1.0, 1.0], [2.0, 2.0]) == (1.0, 1.0)
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5
    assert percentile([], 50) is None


@pytest.mark.parametrize(
    ("df", "quantile"),
    [(1.2, 8.64883), (1.5, 6.01666), (1.8, 4.79488), (2.5, 3.57465), (2.99, 3.18848)],
)
def test_the_t_quantile_between_1_and_3_degrees_of_freedom_is_exact(
    df: float, quantile: float
) -> None:
    """Welch's degrees of freedom, with two repetitions a side, are from 1 to 2: there the
    expansion gave 8.14 for 8.65 (at 1.2), too narrow an interval, and "regressed" cases
    that the noise explains. (The references: the t density integrated numerically.)"""
    assert t_quantile(0.975, df) == pytest.approx(quantile, abs=1e-4)
    assert t_quantile(0.025, df) == pytest.approx(-quantile, abs=1e-4)
    before, after = [0.0, 1.0], [0.5, 0.7]  # Welch's df: 0.26² / (0.25² + 0.01²) = 1.08
    low, high = welch_interval(before, after) or (0.0, 0.0)
    assert (high - low) / 2 == pytest.approx(t_quantile(0.975, 0.0676 / 0.0626) * 0.26**0.5)


def test_an_evaluator_of_one_run_only_is_warned_of_in_the_table_and_the_json() -> None:
    # issue 62, item 6: its figures read "-" without a word of why
    before = EvalReport("before", "AGENT", "set", tuple(_runs("a", [1])), ("exact",))
    runs = [
        dataclasses.replace(result, scores={**result.scores, "short": Score(1.0, True)})
        for result in _runs("a", [1])
    ]
    after = EvalReport("after", "AGENT", "set", tuple(runs), ("exact", "short"))
    comparison = compare(before, after)
    warning = (
        "the evaluator 'short' scored the candidate only, not the baseline: its change is "
        "not known (shown as -). Run both with the same evaluators to compare it."
    )
    assert comparison.warnings == (warning,)
    lines = comparison.table().splitlines()
    assert lines[1] == f"warning: {warning}"
    assert lines[5].split() == ["short", "-", "-", "-", "-"]  # (what it showed, unexplained)
    assert json.loads(comparison.to_json())["warnings"] == [warning]
    backwards = compare(after, before).warnings
    assert backwards == (
        warning.replace("candidate only, not the baseline", "baseline only, not the candidate"),
    )
    assert compare(before, before).warnings == ()


_T_975 = (
    *(12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228),
    *(2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086),
    *(2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042),
)
"""t(0.975, df) for df 1 to 30, as a standard table gives them (3 decimals)."""

_T_995 = {1: 63.657, 2: 9.925, 3: 5.841, 4: 4.604, 5: 4.032, 10: 3.169, 20: 2.845, 30: 2.750}
"""t(0.995, df), from the same table."""


@pytest.mark.parametrize("df", range(1, 31))
def test_the_t_quantile_is_the_tables_to_3_decimals(df: int) -> None:
    """The expansion was 0.004 off at 3 degrees of freedom (3.179 for 3.182)."""
    assert t_quantile(0.975, df) == pytest.approx(_T_975[df - 1], abs=5e-4)
    assert t_quantile(0.025, df) == pytest.approx(-_T_975[df - 1], abs=5e-4)
    if df in _T_995:
        assert t_quantile(0.995, df) == pytest.approx(_T_995[df], abs=5e-4)
