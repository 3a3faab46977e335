"""The report: its figures, its table for the terminal, its JSON and back."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from miniagents import InteractionContext, miniagent
from miniagents.evals import (
    Case,
    CaseResult,
    Contains,
    EvalReport,
    EvalReportError,
    ExactMatch,
    Score,
    aevaluate,
)
from miniagents.evals.report import usage_sum
from miniagents.ext.llm import UsageTotals
from miniagents.testing import VirtualClock
from tests.evals.agents import librarian
from tests.fakes.fixtures import virtual_clock  # noqa: F401


def _result(case: str, value: float, *, error: str | None = None, cost: float = 0.0) -> CaseResult:
    return CaseResult(
        case=case,
        repetition=0,
        input=f"about {case}",
        expected="yes",
        output=None if error else "yes" if value else "no",
        error=error,
        error_message=None if error is None else "it broke",
        scores={} if error else {"exact": Score(value, value == 1.0)},
        duration=None if error else 1.0 + value,
        first_token=None if error else 0.5,
        usage=UsageTotals(requests=1, input_tokens=10, output_tokens=5, cost_usd=cost),
    )


REPORT = EvalReport(
    name="baseline",
    agent="ASSISTANT",
    dataset="yesno",
    results=(
        _result("alpha", 1.0, cost=0.001),
        _result("beta", 0.0, cost=0.002),
        _result("gamma", 0.0, error="LLMTimeoutError"),
    ),
    evaluators=("exact",),
)


def test_the_figures_count_a_failed_run_as_zero() -> None:
    summary = REPORT.summary("exact")
    assert (summary.mean, summary.passed, summary.scored, summary.errors) == (1 / 3, 1, 3, 0)
    assert summary.pass_rate == 1 / 3
    assert (REPORT.passed, REPORT.errors) == (1, 1)
    assert REPORT.usage.requests == 3
    assert REPORT.usage.cost_usd == pytest.approx(0.003)
    assert REPORT.durations() == [2.0, 1.0]
    assert REPORT.headline() == (
        "baseline: ASSISTANT on yesno (3 case(s): 1 passed, 1 failed, 1 error(s))"
    )


def test_the_table_shows_each_run_and_the_summaries() -> None:
    assert REPORT.table().splitlines() == [
        "baseline: ASSISTANT on yesno (3 case(s): 1 passed, 1 failed, 1 error(s))",
        "case                     exact     duration  first token  tokens       cost",
        "alpha                   ✓ 1.00      2.000 s      0.500 s      15  $0.001000",
        "beta                    ✗ 0.00      1.000 s      0.500 s      15  $0.002000",
        "gamma   error: LLMTimeoutError            -            -      15  $0.000000",
        "------  ----------------------  -----------  -----------  ------  ---------",
        "mean                      0.33  p50 1.500 s  p50 0.500 s      45  $0.003000",
        "passed                     1/3  p95 1.950 s  p95 0.500 s",
    ]
    assert REPORT.table(timing=False, cost=False).splitlines()[1:4] == [
        "case                     exact",
        "alpha                   ✓ 1.00",
        "beta                    ✗ 0.00",
    ]
    assert str(REPORT) == REPORT.table()


def test_a_report_round_trips_through_json(tmp_path: Path) -> None:
    path = REPORT.write_json(tmp_path / "baseline.json")
    again = EvalReport.read_json(path)
    assert again == REPORT
    data = json.loads(path.read_text(encoding="utf-8"))
    assert (data["format"], data["version"]) == ("miniagents.evals.report", 1)
    assert data["results"][2]["error"] == "LLMTimeoutError"


async def test_a_run_with_its_trees_round_trips_through_json(
    virtual_clock: VirtualClock,  # noqa: F811
) -> None:
    report = await aevaluate(
        librarian,
        [Case("A poem about rivers, please.", "Here", metadata={"tags": ("a", "b")})],
        [Contains(), ExactMatch()],
        keep_trees=True,
        metadata={"prompt": {"version": 2}},
    )
    again = EvalReport.from_json(report.to_json())
    assert again.results[0].tree == report.results[0].tree
    assert dict(again.results[0].metadata) == {"tags": ["a", "b"]}
    assert dict(again.metadata) == {"prompt": {"version": 2}}
    assert again.results[0].scores == report.results[0].scores
    assert again.results[0].usage == report.results[0].usage


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("nope", "A report is JSON; this is not"),
        ('{"results": []}', "This is not an eval report"),
        ('{"format": "miniagents.evals.report", "version": 9}', "of version 9"),
        ('{"format": "miniagents.evals.report", "version": 1}', "lacks or mistypes a field"),
        (
            '{"format": "miniagents.evals.report", "version": 1, "name": "n", "agent": "a", '
            '"dataset": "d", "results": [{"case": "x"}]}',
            "A case result of the report is not one",
        ),
    ],
)
def test_what_is_not_a_report_is_refused_with_why(text: str, message: str) -> None:
    with pytest.raises(EvalReportError, match=message):
        EvalReport.from_json(text)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("input_tokens", -5),
        ("output_tokens", 2.5),
        ("requests", "1"),
        ("unpriced_requests", True),
        ("reasoning_tokens", None),
        ("cost_usd", "x"),
        ("cost_usd", -0.01),
        ("cost_usd", float("nan")),
        ("cost_usd", None),
    ],
)
def test_a_cases_usage_with_a_count_or_cost_that_is_none_is_refused_naming_case_and_field(
    field: str, value: object
) -> None:
    # A hand-edited report: its case's usage was read as it came (UsageTotals checks nothing),
    # so a negative count or a string cost went into the report's sums and tables.
    data = REPORT.to_dict()
    results: list[dict[str, object]] = data["results"]  # type: ignore[assignment]
    usage: dict[str, object] = results[1]["usage"]  # type: ignore[assignment]
    usage[field] = value
    with pytest.raises(
        EvalReportError, match=rf"usage of the case 'beta' \(repetition 0\) has {field} "
    ):
        EvalReport.from_dict(data)
    data = REPORT.to_dict()
    data["evaluation_usage"] = {field: value}
    with pytest.raises(EvalReportError, match=rf"The report's evaluation_usage has {field} "):
        EvalReport.from_dict(data)
    data["evaluation_usage"] = [1]
    with pytest.raises(EvalReportError, match="not a JSON object of counts"):
        EvalReport.from_dict(data)
    assert EvalReport.from_dict(REPORT.to_dict()).results == REPORT.results


@pytest.mark.parametrize(
    ("value", "error"),
    [
        (["abc"], "ValueError"),  # (dict(["abc"]): a ValueError, not a TypeError)
        (5, "TypeError"),
    ],
)
def test_a_reports_own_field_that_is_none_is_refused_naming_the_report(
    value: object, error: str
) -> None:
    # (was: a ValueError of the report's own fields escaped as it was, with no word of the
    # report: only KeyError and TypeError were wrapped)
    data = REPORT.to_dict()
    data["metadata"] = value
    with pytest.raises(EvalReportError, match=rf"field of its own \(.*{error}: .*write_json"):
        EvalReport.from_dict(data)


def test_a_case_results_error_keeps_its_own_words_through_the_report() -> None:
    data = REPORT.to_dict()
    results: list[dict[str, object]] = data["results"]  # type: ignore[assignment]
    results[0]["metadata"] = ["abc"]
    with pytest.raises(EvalReportError, match=r"A case result of the report is not one \(Value"):
        EvalReport.from_dict(data)


def test_a_missing_baseline_file_says_it_cannot_be_read(tmp_path: Path) -> None:
    with pytest.raises(EvalReportError, match=r"none\.json: cannot be read") as info:
        EvalReport.read_json(tmp_path / "none.json")
    assert "; give the path of a report that write_json saved (a relative path" in str(info.value)


async def test_a_run_without_evaluators_still_reports_errors_in_its_table() -> None:
    @miniagent
    async def broken(ctx: InteractionContext) -> None:
        raise ValueError("broken")

    report = await aevaluate(broken, [Case("x")])
    assert "case-1 (error: ValueError)" in report.table()


def test_usage_sum_is_deprecated_and_still_sums_as_usage_totals_summed() -> None:
    usages = [
        UsageTotals(requests=1, input_tokens=10, output_tokens=5, cost_usd=0.25),
        UsageTotals(requests=2, output_tokens=7, unpriced_requests=1),
    ]
    with pytest.warns(DeprecationWarning, match=r"call UsageTotals\.summed\(usages\)") as caught:
        summed = usage_sum(iter(usages))
    assert summed == UsageTotals.summed(usages)
    assert (summed.requests, summed.output_tokens, summed.unpriced_requests) == (3, 12, 1)
    (warning,) = caught
    assert warning.filename == __file__  # it points at the call
    assert str(warning.message).endswith("instead.")
