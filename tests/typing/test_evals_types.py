"""Static typing tests for ``miniagents.evals``: cases, datasets, evaluators, runs, reports.

The ``check_*`` functions are never called: they exist to be type-checked by mypy
(``mypy.ini`` is strict, with ``warn_unused_ignores``). ``assert_type`` pins the exact
inferred types, and each line that must be rejected carries a precise
``# type: ignore[code]``. :func:`test_evals_types_pass_mypy` runs mypy on this file.
"""

from __future__ import annotations

from pathlib import Path
from typing import assert_type

from miniagents import InteractionContext, Message, MessageTuple, miniagent
from miniagents.evals import (
    Case,
    CaseResult,
    CaseRun,
    Contains,
    Dataset,
    EvalReport,
    Evaluator,
    ExactMatch,
    FunctionEvaluator,
    LLMJudge,
    ReplyTree,
    Score,
    aevaluate,
    evaluate,
    evaluator,
    load_dataset,
)
from miniagents.evals.assertions import assert_eval
from miniagents.evals.compare import CaseComparison, Change, Comparison, compare
from miniagents.evals.html import write_html
from miniagents.evals.tree import AgentStep, ModelCall, Step, ToolStep
from miniagents.ext.llm import UsageTotals
from miniagents.ext.llm.offline import offline_agent
from tests.fakes.typecheck import assert_passes_mypy


class Weather(Message):
    city: str
    celsius: float


@miniagent
async def assistant(ctx: InteractionContext) -> None:
    ctx.reply("Paris.")


def check_cases_and_datasets(path: Path) -> None:
    assert_type(Case("Capital of France?", "Paris"), Case[str, str])
    assert_type(Case("Hello!"), Case[str, object])  # no expectation: anything
    assert_type(Case(Weather(city="Oslo", celsius=3)), Case[Weather, object])
    dataset = Dataset([Case("a", "1"), Case("b", "2")], name="numbers")
    assert_type(dataset, Dataset[str, str])
    assert_type(dataset.cases[0].expected, str | None)
    assert_type(load_dataset(path), Dataset[str, str])
    assert_type(load_dataset(path, input_type=Weather), Dataset[Weather, str])
    assert_type(load_dataset(path, expected_type=int), Dataset[str, int])
    assert_type(
        load_dataset(path, input_type=Weather, expected_type=float), Dataset[Weather, float]
    )
    load_dataset(path, input_type="str")  # type: ignore[call-overload]


def check_evaluators() -> None:
    @evaluator
    def polite(run: CaseRun[str, str]) -> bool:
        assert_type(run.output, str)
        assert_type(run.expected, str | None)
        assert_type(run.input, str)
        assert_type(run.tree, ReplyTree)
        assert_type(run.replies, MessageTuple[Message])
        assert_type(run.usage, UsageTotals)
        assert_type(run.first_token, float | None)
        return "please" in run.output

    assert_type(polite, FunctionEvaluator[str, str])

    @evaluator(threshold=0.5)
    async def relevant(run: CaseRun[str, object]) -> float:
        return 0.5

    assert_type(relevant, FunctionEvaluator[str, object])

    @evaluator
    def weather(run: CaseRun[Weather, Weather]) -> Score:
        return Score.of(run.input.city == (run.expected.city if run.expected else ""))

    cases = [Case("Capital of France?", "Paris")]
    built_in: Evaluator = Contains()
    assert_type(built_in, Evaluator[object, object])
    evaluate(assistant, cases, [Contains(), ExactMatch(), polite])  # any and typed mix
    evaluate(assistant, cases, [weather])  # type: ignore[misc]
    evaluate(
        assistant,
        [Case(Weather(city="Oslo", celsius=3), Weather(city="Oslo", celsius=3))],
        [weather],
    )
    evaluator(42)  # type: ignore[call-overload]

    def wrong(run: CaseRun[str, str]) -> str:
        return "yes"

    evaluator(wrong)  # type: ignore[arg-type]

    judge = LLMJudge(offline_agent.fork(model="judge"), "A good answer.")
    assert_type(judge, LLMJudge)
    LLMJudge(offline_agent, 42)  # type: ignore[arg-type]


def check_the_tree(tree: ReplyTree) -> None:
    assert_type(tree.root, AgentStep | None)
    assert_type(tree.steps(), tuple[AgentStep | ToolStep | ModelCall, ...])
    assert_type(tree.tool_calls(), list[ToolStep])
    assert_type(tree.model_calls(), list[ModelCall])
    assert_type(tree.agents(), list[str])
    assert_type(tree.usage(), UsageTotals)
    assert_type(tree.model_calls()[0].usage(), UsageTotals)
    for step in tree.steps():
        step_: Step = step
        assert_type(step_.children, tuple[Step, ...])


async def check_runs_and_reports(path: Path) -> None:
    cases = [Case("Capital of France?", "Paris")]
    report = await aevaluate(assistant, cases, [Contains()], repetitions=3, max_concurrency=4)
    assert_type(report, EvalReport)
    assert_type(evaluate(assistant, load_dataset(path)), EvalReport)
    assert_type(report.results, tuple[CaseResult, ...])
    assert_type(report.mean("contains"), float | None)
    assert_type(report.results[0].scores["contains"], Score)
    comparison = compare(report, EvalReport.read_json(path))
    assert_type(comparison, Comparison)
    assert_type(comparison.cases, tuple[CaseComparison, ...])
    assert_type(comparison.scores["contains"], Change)
    assert_type(assert_eval(report, min_scores={"contains": 0.9}, baseline=path), Comparison | None)
    assert_type(write_html(comparison, path), Path)
    assert_type(write_html(report, path, max_text=2000), Path)
    write_html(report, path, max_text="2000")  # type: ignore[arg-type]
    await aevaluate(assistant, cases, repetitions="3")  # type: ignore[arg-type]
    await aevaluate(assistant, [Case(3)])  # type: ignore[type-var]
    await aevaluate("assistant", cases)  # type: ignore[arg-type]
    assert_type(await aevaluate(assistant, cases, evaluator_timeout=30), EvalReport)
    assert_type(evaluate(assistant, cases, evaluator_timeout=None), EvalReport)
    await aevaluate(assistant, cases, evaluator_timeout="30")  # type: ignore[arg-type]


def test_evals_types_pass_mypy() -> None:
    """Type-check this file with the project's mypy.ini (the one run: tests/fakes/typecheck.py)."""
    assert_passes_mypy(__file__)
