"""Runs of a dataset against an agent: concurrency, retries, timeouts, budgets, repetitions."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import pytest

from miniagents import InteractionContext, Message, MiniAgents, miniagent, pipeline
from miniagents.evals import (
    Case,
    CaseRun,
    CaseTimeoutError,
    Contains,
    Dataset,
    EvalArgumentError,
    Evaluator,
    EvaluatorTimeoutError,
    ExactMatch,
    MaxDuration,
    MaxFirstTokenTime,
    Score,
    aevaluate,
    evaluate,
    evaluator,
)
from miniagents.ext.llm import Budget, BudgetExceededError
from miniagents.ext.llm.offline import CallTool, offline_agent
from miniagents.messages import MessageTuple
from miniagents.testing import VirtualClock
from tests.evals.agents import DELAY, forecaster, get_weather, poet
from tests.fakes.fixtures import virtual_clock  # noqa: F401

CAPITALS = Dataset(
    [
        Case("What is the capital of France?", "Paris", name="france"),
        Case("What is the capital of Peru?", "Lima", name="peru"),
    ],
    name="capitals",
)


def _answer(text: str) -> str:
    return "Paris." if "France" in text else "Lima, I think."


@miniagent
async def geographer(ctx: InteractionContext) -> None:
    """Answers the capitals (Peru's with doubt)."""
    question = (await ctx.message_promises)[0]
    ctx.reply(_answer(str(question)))


async def test_each_case_is_run_scored_and_reported_in_the_datasets_order() -> None:
    report = await aevaluate(geographer, CAPITALS, [ExactMatch(), Contains()])
    assert (report.name, report.agent, report.dataset) == ("GEOGRAPHER", "GEOGRAPHER", "capitals")
    assert report.evaluators == ("exact", "contains")
    france, peru = report.results
    assert (france.case, france.output, france.input) == (
        "france",
        "Paris.",
        "What is the capital of France?",
    )
    assert france.scores["exact"] == Score(0.0, False, "'Paris.' != 'Paris'")
    assert france.scores["contains"] == Score(1.0, True)
    assert peru.scores["contains"].passed
    assert report.mean("contains") == 1.0
    assert report.mean("exact") == 0.0
    assert (report.passed, report.errors) == (0, 0)


async def test_times_are_those_of_the_replies_first_and_last_tokens(
    virtual_clock: VirtualClock,  # noqa: F811
) -> None:
    slow = poet.fork(token_delay=0.25)  # "Rivers " "run " "on.": at 0.25, 0.5, 0.75 s
    report = await aevaluate(
        slow, [Case("Go.", "Rivers")], [MaxDuration(0.8), MaxFirstTokenTime(0.2)]
    )
    result = report.results[0]
    assert result.first_token == pytest.approx(0.25)
    assert result.duration == pytest.approx(0.75)
    assert result.scores["max_duration"] == Score(1.0, True, "0.750 s <= 0.8 s")
    assert result.scores["max_first_token"] == Score(0.0, False, "0.250 s > 0.2 s")


async def test_the_first_token_is_the_texts_not_a_tool_calls(
    virtual_clock: VirtualClock,  # noqa: F811
) -> None:
    answers: list[CallTool | str] = [CallTool("get_weather", {"city": "Oslo"}), "Sunny, it says."]
    agent = offline_agent.fork(
        reply=iter(answers),
        tools=[get_weather],
        token_delay=DELAY,
    )
    report = await aevaluate(agent, [Case("Weather?")])
    result = report.results[0]
    assert result.output == "Sunny, it says."  # the call and the result are not its text
    assert result.first_token == pytest.approx(3 * DELAY)  # after the call's 2 pieces


async def test_repetitions_run_each_case_again(virtual_clock: VirtualClock) -> None:  # noqa: F811
    calls = 0

    @miniagent
    async def counting(ctx: InteractionContext) -> None:
        nonlocal calls
        calls += 1
        ctx.reply(f"Paris, answer {calls}")

    report = await aevaluate(counting, CAPITALS, [Contains()], repetitions=3)
    assert calls == 6
    assert [(result.case, result.repetition) for result in report.results] == [
        ("france", 0),
        ("france", 1),
        ("france", 2),
        ("peru", 0),
        ("peru", 1),
        ("peru", 2),
    ]
    assert report.mean("contains") == 0.5
    assert "(2 case(s) x 3:" in report.headline()


async def test_at_most_max_concurrency_cases_run_at_once(
    virtual_clock: VirtualClock,  # noqa: F811
) -> None:
    running = most = 0

    @miniagent
    async def busy(ctx: InteractionContext) -> None:
        nonlocal running, most
        running += 1
        most = max(most, running)
        await asyncio.sleep(1)
        running -= 1
        ctx.reply("done")

    cases = [Case(f"task {number}") for number in range(10)]
    report = await aevaluate(busy, cases, max_concurrency=3)
    assert most == 3
    assert len(report.results) == 10
    assert report.duration == pytest.approx(4.0)  # ceil(10 / 3) rounds of one second


async def test_a_failed_case_is_retried_and_its_attempts_counted(
    virtual_clock: VirtualClock,  # noqa: F811
) -> None:
    tries: dict[str, int] = {}

    @miniagent
    async def flaky(ctx: InteractionContext) -> None:
        text = str((await ctx.message_promises)[0])
        tries[text] = tries.get(text, 0) + 1
        if tries[text] < 3:
            raise ConnectionError(f"try {tries[text]} of {text!r} failed")
        ctx.reply(_answer(text))

    report = await aevaluate(flaky, CAPITALS, [Contains()], retries=1, backoff=0.5)
    france, _peru = report.results
    assert (france.error, france.attempts) == ("ConnectionError", 2)
    assert france.error_message == "try 2 of 'What is the capital of France?' failed"
    assert france.output is None
    assert dict(france.scores) == {}
    assert france.value("contains") == 0.0  # a failed run scores 0
    assert report.errors == 2
    again = await aevaluate(flaky, CAPITALS, [Contains()], retries=3, backoff=0.5)
    assert [result.attempts for result in again.results] == [1, 1]  # (third tries, counted on)
    tries.clear()
    third = await aevaluate(flaky, CAPITALS, [Contains()], retries=2, backoff=0.5)
    assert [(result.error, result.attempts) for result in third.results] == [
        (None, 3),
        (None, 3),
    ]
    assert third.passed == 2


async def test_a_retried_cases_usage_counts_its_failed_tries_too(
    virtual_clock: VirtualClock,  # noqa: F811
) -> None:
    # (was: the last try's usage alone: the calls of the tries that failed, paid for, were
    # left out of the case's and the report's cost)
    tries, failures = 0, 1  # (the first try fails)
    runs: list[CaseRun[Any, Any]] = []

    @miniagent
    async def poet_then_fails_once(ctx: InteractionContext) -> None:
        nonlocal tries
        tries += 1
        poem = await poet.inquire(ctx.message_promises)
        if tries <= failures:
            raise ConnectionError("the connection dropped after the poem")
        ctx.reply(poem)

    @evaluator
    def seen(run: CaseRun[Any, Any]) -> bool:
        runs.append(run)
        return True

    report = await aevaluate(poet_then_fails_once, [Case("Go.")], [seen], retries=1)
    result = report.results[0]
    assert (result.error, result.attempts) == (None, 2)
    assert result.usage.requests == 2  # (one call a try)
    assert report.usage.requests == 2
    assert [run.usage.requests for run in runs] == [1]  # (an evaluator sees its try's)
    tries = 0
    failing = await aevaluate(poet_then_fails_once, [Case("Go.")], retries=0)
    assert failing.results[0].usage.requests == 1
    tries, failures = 0, 2  # (both tries fail: both counted in the failed case)
    twice = await aevaluate(poet_then_fails_once, [Case("Go.")], retries=1)
    assert (twice.results[0].error, twice.results[0].attempts) == ("ConnectionError", 2)
    assert twice.results[0].usage.requests == 2


async def test_a_case_past_the_timeout_fails_with_a_case_timeout_error_and_is_retried(
    virtual_clock: VirtualClock,  # noqa: F811
) -> None:
    slow = poet.fork(token_delay=1.0)
    report = await aevaluate(slow, [Case("Go.", name="slow")], timeout=2.5, retries=1)
    result = report.results[0]
    assert (result.error, result.attempts) == ("CaseTimeoutError", 2)
    assert result.error_message == (
        "The case 'slow' took longer than the timeout of 2.5 s; raise timeout= if it needs "
        "more time."
    )
    assert result.duration == pytest.approx(2.5)
    assert result.first_token == pytest.approx(1.0)
    assert issubclass(CaseTimeoutError, TimeoutError)


class _Hangs(Evaluator[object, object]):
    """Waits forever on its first run (a service that never answers), scores the others."""

    name = "hangs"

    def __init__(self) -> None:
        self.cancelled = 0

    async def ascore(self, run: CaseRun[object, object]) -> Score:
        if run.case.name == "france":
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                self.cancelled += 1
                raise
        return Score(1.0, True)


async def test_an_evaluator_past_the_evaluator_timeout_is_cancelled_and_scored_so(
    virtual_clock: VirtualClock,  # noqa: F811
) -> None:
    hangs = _Hangs()
    started = virtual_clock.time()
    report = await aevaluate(
        geographer, CAPITALS, [hangs, Contains()], evaluator_timeout=30, max_concurrency=1
    )
    assert virtual_clock.time() - started == pytest.approx(30)
    france, peru = report.results
    assert france.error is None  # the case ran: only its evaluator failed
    assert france.scores["hangs"] == Score(
        0.0,
        False,
        "The evaluator hangs took longer than the evaluator_timeout of 30 s on the case "
        "'france'; raise evaluator_timeout= if it needs more time.",
        "EvaluatorTimeoutError",
    )
    assert france.scores["contains"] == Score(1.0, True)  # the other evaluators went on
    assert peru.scores["hangs"] == Score(1.0, True)  # and the other cases
    assert hangs.cancelled == 1
    assert issubclass(EvaluatorTimeoutError, TimeoutError)


async def test_an_evaluators_own_timeout_error_is_not_the_evaluator_timeout() -> None:
    @evaluator
    async def times_out(run: CaseRun[object, object]) -> Score:
        raise TimeoutError("the service's own")

    report = await aevaluate(geographer, CAPITALS, [times_out], evaluator_timeout=100)
    score = report.results[0].scores["times_out"]
    assert (score.error, score.reason) == ("TimeoutError", "the service's own")


async def test_an_agents_own_timeout_error_is_not_the_cases() -> None:
    @miniagent
    async def times_out(ctx: InteractionContext) -> None:
        raise TimeoutError("the agent's own")

    report = await aevaluate(times_out, [Case("Go.")], timeout=100)
    assert report.results[0].error == "TimeoutError"


async def test_the_runs_budget_fails_the_cases_past_its_limit() -> None:
    agent = poet.fork(token_delay=0)
    cases = [Case(f"Poem {number}.") for number in range(4)]
    budget = Budget(max_requests=2)
    report = await aevaluate(agent, cases, budget=budget, max_concurrency=1)
    assert [result.error for result in report.results] == [
        None,
        None,
        "BudgetExceededError",
        "BudgetExceededError",
    ]
    assert budget.usage.requests == 2


async def test_a_case_budget_limits_each_case_on_its_own() -> None:
    agent = forecaster.fork(token_delay=0)  # a tool call, then the answer: two calls
    cases = [Case(f"What is the weather in {city}?", name=city) for city in ("Oslo", "Rome")]
    report = await aevaluate(agent, cases, case_budget=lambda: Budget(max_requests=1))
    assert [result.error for result in report.results] == [
        "BudgetExceededError",
        "BudgetExceededError",
    ]  # each case needs two calls
    assert [result.usage.requests for result in report.results] == [1, 1]
    assert issubclass(BudgetExceededError, Exception)
    roomy = await aevaluate(agent, cases, case_budget=lambda: Budget(max_requests=2))
    assert roomy.errors == 0


async def test_an_evaluator_that_fails_scores_that_run_as_its_error_and_the_others_go_on() -> None:
    @evaluator
    def broken(run: CaseRun[str, str]) -> bool:
        raise KeyError("no such thing")

    class Wrong(Evaluator[object, object]):
        name = "wrong"

        async def ascore(self, run: CaseRun[object, object]) -> Score:
            return "great"  # type: ignore[return-value]

    report = await aevaluate(geographer, CAPITALS, [broken, Contains(), Wrong()])
    scores = report.results[0].scores
    assert scores["broken"] == Score(0.0, False, "'no such thing'", "KeyError")
    assert scores["wrong"].error == "EvaluatorDefinitionError"
    assert scores["contains"].passed
    assert report.summary("broken").errors == 2
    assert report.results[0].error is None


async def test_an_evaluator_that_does_not_apply_leaves_the_case_unscored() -> None:
    cases = [Case("What is the capital of France?", "Paris"), Case("Hello!")]
    report = await aevaluate(geographer, cases, [Contains()])
    assert "contains" in report.results[0].scores
    assert "contains" not in report.results[1].scores  # it expects nothing
    assert report.summary("contains").scored == 1


async def test_the_case_and_the_dataset_and_the_run_evaluators_add_up_and_names_are_unique() -> (
    None
):
    cases = [Case("What is the capital of France?", "Paris", evaluators=[ExactMatch()])]
    dataset = Dataset(cases, evaluators=[MaxDuration(60)])
    report = await aevaluate(geographer, dataset, [Contains()])
    assert report.evaluators == ("contains", "max_duration", "exact")
    with pytest.raises(EvalArgumentError, match="Every case has two evaluators named 'contains'"):
        await aevaluate(geographer, dataset, [Contains(), Contains()])
    twice = [Case("What is the capital of Peru?", evaluators=[Contains()])]
    with pytest.raises(EvalArgumentError, match="The case 'case-1' has two evaluators named"):
        await aevaluate(geographer, twice, [Contains()])
    with pytest.raises(EvalArgumentError, match="is not an Evaluator"):
        await aevaluate(geographer, dataset, [len])  # type: ignore[list-item]


@pytest.mark.parametrize(
    ("argument", "value", "message"),
    [
        ("repetitions", 0, "repetitions to be a whole number of at least 1"),
        ("max_concurrency", 1.5, "max_concurrency to be a whole number of at least 1"),
        ("timeout", -1, "timeout to be a positive number of seconds"),
        ("evaluator_timeout", 0, "evaluator_timeout to be a positive number of seconds"),
        ("retries", -1, r"aevaluate\(\) needs retries to be a whole number of at least 0; got -1"),
        ("backoff", -0.5, r"aevaluate\(\) needs backoff to be a number of seconds of at least 0"),
        ("retry_on", ValueError, r"aevaluate\(\) needs retry_on to be a tuple"),
        ("evaluators", Contains(), r"a list of evaluators.*\[Contains\(name='contains'\)\]"),
        ("metadata", ["model"], r"aevaluate\(\) needs metadata to be a mapping"),
        ("case_budget", Budget(), r"case_budget to be a function that makes a new Budget"),
        ("output", "text", r"aevaluate\(\) needs output to be a function of the replies"),
        # (were: taken: a report named 7, not a str; keep_trees="no" kept the trees)
        ("name", 7, r"aevaluate\(\) needs name to be a non-empty str; got 7\. Or pass None"),
        ("name", " ", r"aevaluate\(\) needs name to be a non-empty str"),
        ("keep_trees", "no", r"aevaluate\(\) needs keep_trees to be True or False; got 'no'"),
        ("trace", 1, r"aevaluate\(\) needs trace to be True or False; got 1\. Pass trace=True"),
    ],
)
async def test_bad_arguments_are_refused_with_what_to_give(
    argument: str, value: object, message: str
) -> None:
    with pytest.raises(EvalArgumentError, match=message):
        await aevaluate(geographer, CAPITALS, **{argument: value})  # type: ignore[arg-type]
    with pytest.raises(EvalArgumentError, match="takes a Dataset, or a list of Case"):
        await aevaluate(geographer, ["What?"])  # type: ignore[arg-type]


async def test_a_case_budget_that_makes_no_budget_fails_each_case_saying_so() -> None:
    report = await aevaluate(geographer, CAPITALS, case_budget=lambda: 0.05)  # type: ignore[arg-type,return-value]
    assert [result.error for result in report.results] == ["EvalArgumentError"] * 2
    assert "case_budget made 0.05, not a Budget" in str(report.results[0].error_message)


async def test_it_runs_in_the_current_context_or_in_one_of_its_own() -> None:
    outside = await aevaluate(geographer, CAPITALS, [Contains()])
    async with MiniAgents():
        inside = await aevaluate(geographer, CAPITALS, [Contains()])
    assert outside.mean("contains") == inside.mean("contains") == 1.0


def test_evaluate_blocks_on_a_loop_of_its_own() -> None:
    report = evaluate(geographer, CAPITALS, [Contains()])
    assert report.passed == 2


async def test_evaluate_on_a_running_loop_says_to_await_aevaluate() -> None:
    with pytest.raises(EvalArgumentError, match="await aevaluate"):
        evaluate(geographer, CAPITALS)


async def test_the_progress_bar_counts_the_cases(capsys: pytest.CaptureFixture[str]) -> None:
    report = await aevaluate(geographer, CAPITALS, [Contains()], progress=True)
    assert report.passed == 2
    shown = capsys.readouterr().err
    assert "capitals" in shown
    assert "2/2" in shown


async def test_the_trees_are_kept_only_when_asked(virtual_clock: VirtualClock) -> None:  # noqa: F811
    without = await aevaluate(poet, [Case("Go.")])
    kept = await aevaluate(poet, [Case("Go.")], keep_trees=True)
    assert without.results[0].tree is None
    assert kept.results[0].tree is not None
    assert kept.results[0].tree.agents() == ["POET"]


async def test_a_failed_case_keeps_its_tree_and_usage_so_far(
    virtual_clock: VirtualClock,  # noqa: F811
) -> None:
    @miniagent
    async def fails_after_a_poem(ctx: InteractionContext) -> None:
        ctx.reply(poet.inquire("Go."))
        await asyncio.sleep(1)
        raise ValueError("no second poem")

    report = await aevaluate(fails_after_a_poem, [Case("Go.")], keep_trees=True)
    result = report.results[0]
    assert (result.error, result.error_message) == ("ValueError", "no second poem")
    assert result.tree is not None
    assert result.tree.agents() == ["FAILS_AFTER_A_POEM", "POET"]
    assert result.usage.requests == 1
    assert result.first_token == pytest.approx(DELAY)


async def test_a_case_whose_output_function_fails_keeps_its_time_cost_and_tree(
    virtual_clock: VirtualClock,  # noqa: F811
) -> None:
    # the agent ran (and was paid for) before output= failed: the case was reported with no
    # duration, no usage and no tree, and the run's cost left it out
    def first_line(replies: MessageTuple[Message]) -> str:
        raise ValueError("no line to take")

    report = await aevaluate(poet, [Case("Go.")], keep_trees=True, output=first_line)
    result = report.results[0]
    assert (result.error, result.error_message) == ("ValueError", "no line to take")
    assert result.usage.requests == 1
    assert result.duration == pytest.approx(3 * DELAY)
    assert result.first_token == pytest.approx(DELAY)
    assert result.tree is not None
    assert result.tree.agents() == ["POET"]


async def test_an_output_function_that_gives_no_text_fails_each_case_saying_what_to_return() -> (
    None
):
    # (its Message was handed to every evaluator, each failing on it, and to the HTML page)
    report = await aevaluate(
        geographer,
        CAPITALS,
        [Contains()],
        output=lambda replies: replies[-1],  # type: ignore[arg-type,return-value]
    )
    assert [result.error for result in report.results] == ["EvalArgumentError"] * 2
    assert "output= returned Message(" in str(report.results[0].error_message)
    assert "not a str" in str(report.results[0].error_message)


async def test_the_output_function_gives_what_the_evaluators_compare() -> None:
    report = await aevaluate(
        geographer,
        CAPITALS,
        [ExactMatch()],
        output=lambda replies: str(replies[-1]).split(",")[0].rstrip("."),
    )
    assert report.mean("exact") == 1.0


async def test_metadata_and_the_name_of_the_run_are_kept() -> None:
    report = await aevaluate(
        geographer, CAPITALS, name="candidate", metadata={"model": "offline", "prompt": 2}
    )
    assert report.name == "candidate"
    assert dict(report.metadata) == {"model": "offline", "prompt": 2}
    assert report.started.endswith("+00:00")


@pytest.mark.skipif(sys.version_info < (3, 11), reason="asyncio.timeout is Python 3.11's")
async def test_leaving_the_run_early_cancels_the_cases_and_leaves_no_task() -> None:
    entered = asyncio.Event()

    @miniagent
    async def endless(ctx: InteractionContext) -> None:
        entered.set()
        await asyncio.Event().wait()

    task = asyncio.ensure_future(aevaluate(endless, [Case("Go.")]))
    await entered.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_a_case_starts_no_more_tasks_than_the_agent_does_in_a_plain_pipeline() -> None:
    # each try of a case runs in the pipeline's task of its item, around the agent's own
    # interaction (no interaction of the eval's own): its cost per case is the agent's, the
    # recording of its tree, and the scores
    loop = asyncio.get_running_loop()
    started = 0
    factory = loop.get_task_factory()

    def counted(
        loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, Any], **kwargs: Any
    ) -> asyncio.Future[Any]:
        nonlocal started
        started += 1
        if factory is not None:
            return factory(loop, coro, **kwargs)
        return asyncio.Task(coro, loop=loop, **kwargs)

    async def tasks(run: Callable[[list[str]], Awaitable[object]], cases: int) -> int:
        nonlocal started
        started = 0
        async with MiniAgents():
            await run([f"Question {number} about France?" for number in range(cases)])
        return started

    async def plain(inputs: list[str]) -> None:
        async for result in pipeline(geographer, inputs, max_concurrency=4):
            result.get()

    async def evaluated(inputs: list[str]) -> None:
        report = await aevaluate(geographer, [Case(text, "Paris") for text in inputs])
        assert report.passed == len(inputs)

    loop.set_task_factory(counted)  # type: ignore[arg-type]
    try:
        per_plain = await tasks(plain, 20) - await tasks(plain, 10)
        per_eval = await tasks(evaluated, 20) - await tasks(evaluated, 10)
    finally:
        loop.set_task_factory(factory)
    assert per_plain >= 20  # (10 cases more: an item's task and its interaction's each)
    assert per_eval == per_plain


class _Half(Evaluator[object, object]):
    name = "half"

    def score(self, run: CaseRun[object, object]) -> Score:
        return 0.5  # type: ignore[return-value]  # (not a Score: the mistake tested)


class _HalfAwaited(Evaluator[object, object]):
    name = "half_awaited"

    async def ascore(self, run: CaseRun[object, object]) -> Score:
        await asyncio.sleep(0)
        return 0.5  # type: ignore[return-value]  # (not a Score: the mistake tested)


async def test_an_evaluator_that_returns_no_score_fails_its_score_and_says_what_to_return() -> None:
    # one that only scores (called without a coroutine) and one that awaits: the same score
    report = await aevaluate(geographer, CAPITALS, [_Half(), _HalfAwaited()])
    for result in report.results:
        assert result.error is None
        for name in ("half", "half_awaited"):
            score = result.scores[name]
            assert (score.value, score.passed, score.error) == (
                0.0,
                False,
                "EvaluatorDefinitionError",
            )
            assert score.reason == (
                f"The evaluator {name} returned 0.5; ascore() returns a Score, or None (the "
                "case is not scored)."
            )


def test_a_class_of_agents_given_for_the_agent_names_an_agent_object() -> None:
    from miniagents.ext.llm.offline import OfflineAgent

    fix = r"OfflineAgent is a class of agents, not an agent: .*offline_agent\.fork\(\.\.\.\)"
    with pytest.raises(EvalArgumentError, match=fix):
        evaluate(OfflineAgent, [Case("hi", "hi")])  # type: ignore[arg-type]
