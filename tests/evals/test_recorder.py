"""The reply tree of a case: every agent, tool call and model call, nested, timed, in order.

The agents are offline models with a token delay on the virtual clock, so every time in
the trees is exact.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from miniagents import InteractionContext, MiniAgents, miniagent
from miniagents.evals import (
    AgentStep,
    Case,
    CaseRun,
    EvalReportError,
    Evaluator,
    LLMJudge,
    ModelCall,
    ReplyTree,
    Score,
    ToolStep,
    aevaluate,
    evaluator,
)
from miniagents.evals._recorder import _RECORDER, CaseRecording, _ModelNode, _Recorder, recording
from miniagents.evals.tree import check_amounts, step_from_dict
from miniagents.ext.llm.messages import TokenUsage
from miniagents.ext.llm.observing import observe_llm_calls
from miniagents.ext.llm.offline import CallTool, offline_agent
from miniagents.ext.llm.pricing import cost_usd, finish_usage, modal_cost_usd, reported_count
from miniagents.ext.llm.provider import AudioTokens, Finish, LLMCall, LLMEvent, ToolCallStart
from miniagents.ext.llm.routing import install_llm_route
from miniagents.ext.llm.usage import UsageTotals
from miniagents.ext.otel import instrument, uninstrument
from miniagents.ext.studio import Recorder, RunStore, RunTree
from miniagents.ext.tools.observing import observe_tool_calls
from miniagents.miniagents.lowlevel import observe_interactions
from miniagents.testing import FakeLLMServer, LiveUsage, VirtualClock, scripted_agent
from tests.evals.agents import DELAY, LIBRARIAN_SPANS, editor, forecaster, librarian, poet
from tests.ext.realtime.kit import APIS
from tests.fakes.fixtures import virtual_clock  # noqa: F401
from tests.fakes.tracing import Traces, parent_of, plugged_observers, traces  # noqa: F401


async def _tree(agent: object, text: str = "Write about rivers.") -> ReplyTree:
    report = await aevaluate(agent, [Case(text)], keep_trees=True)  # type: ignore[arg-type]
    result = report.results[0]
    assert result.error is None, result.error_message
    assert result.tree is not None
    return result.tree


async def test_the_tree_names_every_agent_model_call_and_tool_with_exact_times(
    virtual_clock: VirtualClock,  # noqa: F811
) -> None:
    tree = await _tree(editor)
    assert tree.agents() == ["EDITOR", "POET", "FORECASTER"]
    assert tree.tools() == ["get_weather"]
    root = tree.root
    assert root is not None
    assert (root.agent, root.error) == ("EDITOR", None)
    assert root.started == 0.0
    assert root.ended == pytest.approx(5 * DELAY)
    poet_step, forecaster_step = root.children
    assert isinstance(poet_step, AgentStep)
    assert isinstance(forecaster_step, AgentStep)
    (poem_call,) = poet_step.children
    assert isinstance(poem_call, ModelCall)
    assert (poem_call.model, poem_call.provider) == ("offline", "offline")
    assert poem_call.first_token == pytest.approx(DELAY)  # "Rivers " after one delay
    assert poem_call.ended == pytest.approx(3 * DELAY)
    assert (poem_call.input_tokens, poem_call.output_tokens) == (3, 3)
    assert poem_call.cost_usd is None  # the offline model has no price
    first_call, tool_call, answer_call = forecaster_step.children
    assert isinstance(tool_call, ToolStep)
    assert (tool_call.tool, dict(tool_call.arguments)) == ("get_weather", {"city": "Paris"})
    assert tool_call.result == "Sunny in Paris."
    assert tool_call.error is None
    assert isinstance(first_call, ModelCall)
    assert isinstance(answer_call, ModelCall)
    assert first_call.ended == pytest.approx(2 * DELAY)  # the call's arguments: 2 pieces
    assert answer_call.started == pytest.approx(2 * DELAY)
    assert answer_call.ended == pytest.approx(5 * DELAY)
    # the order the steps started in, across the branches
    assert [step.order for step in tree.steps()] == list(range(7))
    assert [step.name for step in tree.steps()] == [
        "EDITOR",
        "POET",
        "offline",
        "FORECASTER",
        "offline",
        "get_weather",
        "offline",
    ]


async def test_the_case_usage_sums_the_model_calls_of_the_whole_tree(
    virtual_clock: VirtualClock,  # noqa: F811
) -> None:
    report = await aevaluate(editor, [Case("Write about rivers.")], keep_trees=True)
    result = report.results[0]
    assert result.tree is not None
    calls = result.tree.model_calls()
    assert len(calls) == 3
    assert result.usage == result.tree.usage()
    assert result.usage.requests == 3
    assert result.usage.input_tokens == sum(call.input_tokens or 0 for call in calls)
    assert result.usage.output_tokens == 3 + 2 + 3
    assert result.usage.unpriced_requests == 3
    assert result.duration == pytest.approx(0.5)
    assert result.first_token == pytest.approx(0.0)


async def test_an_agent_called_as_a_tool_nests_under_the_tool_call(
    virtual_clock: VirtualClock,  # noqa: F811
) -> None:
    tree = await _tree(librarian, "A poem about rivers, please.")
    assert tree.agents() == ["LIBRARIAN", "POEM", "POET"]
    root = tree.root
    assert root is not None
    (call,) = [step for step in root.children if isinstance(step, ToolStep)]
    assert (call.tool, dict(call.arguments)) == ("POEM", {"topic": "rivers"})
    (poem,) = call.children
    assert isinstance(poem, AgentStep)
    assert poem.agent == "POEM"
    (poet_step,) = poem.children
    assert isinstance(poet_step, AgentStep)
    assert poet_step.agent == "POET"
    assert call.result == "Rivers run on."
    assert tree.render().splitlines()[:4] == [
        "agent LIBRARIAN (0.000 .. 0.800 s)",
        "  model offline [offline] (0.000 .. 0.200 s, 5 + 2 tokens)",
        "  tool POEM(topic='rivers') (0.200 .. 0.500 s)",
        "    agent POEM (0.200 .. 0.500 s)",
    ]


async def test_a_tool_that_raises_is_a_failed_step_and_the_agent_goes_on(
    virtual_clock: VirtualClock,  # noqa: F811
) -> None:
    def explode(city: str) -> str:
        """Fails."""
        raise RuntimeError(f"no weather for {city}")

    answers: list[CallTool | str] = [CallTool("explode", {"city": "Oslo"}), "Sorry."]
    agent = offline_agent.fork(
        alias="UNLUCKY",
        reply=iter(answers),
        tools=[explode],
    )
    tree = await _tree(agent)
    (call,) = tree.tool_calls()
    assert call.error == "RuntimeError"
    assert call.result is not None
    assert "no weather for Oslo" in call.result
    assert tree.root is not None
    assert tree.root.error is None


async def test_parallel_sub_agents_are_in_the_order_they_started(
    virtual_clock: VirtualClock,  # noqa: F811
) -> None:
    @miniagent
    async def fan_out(ctx: InteractionContext) -> None:
        later = forecaster.fork(start_asap=False).inquire("What is the weather in Rome?")
        ctx.reply(poet.inquire("Go."))
        await asyncio.sleep(1)  # the lazy one starts when its replies are read, below
        ctx.reply(later)

    tree = await _tree(fan_out)
    assert tree.agents() == ["FAN_OUT", "POET", "FORECASTER"]
    steps = {step.name: step for step in tree.steps() if isinstance(step, AgentStep)}
    assert steps["FORECASTER"].started == pytest.approx(1.0)
    assert steps["FORECASTER"].order > steps["POET"].order
    root = tree.root
    assert root is not None
    assert [child.name for child in root.children] == ["POET", "FORECASTER"]


async def test_the_evaluators_model_calls_are_not_in_the_tree(
    virtual_clock: VirtualClock,  # noqa: F811
) -> None:
    judge = LLMJudge(offline_agent.fork(alias="JUDGE"), "Any answer will do.")
    trees: list[ReplyTree] = []

    @evaluator
    def keep(run: CaseRun[str, object]) -> bool:
        trees.append(run.tree)
        return True

    report = await aevaluate(poet, [Case("Go.")], [judge, keep], keep_trees=True)
    assert trees[0].agents() == ["POET"]
    assert report.results[0].tree is not None
    assert report.results[0].tree.agents() == ["POET"]
    assert report.results[0].usage.requests == 1
    assert report.evaluation_usage.requests == 1  # the judge's call, counted apart


async def test_the_steps_round_trip_through_their_json_data(
    virtual_clock: VirtualClock,  # noqa: F811
) -> None:
    tree = await _tree(librarian, "A poem about rivers, please.")
    again = ReplyTree.from_dict(tree.to_dict())
    assert again == tree
    assert again.render() == tree.render()
    assert ReplyTree.from_dict(None) == ReplyTree()
    with pytest.raises(ValueError, match="kind is agent, tool or model"):
        step_from_dict({"kind": "planet"})
    with pytest.raises(ValueError, match="fields it does not have"):
        step_from_dict({"kind": "model", "order": 0, "colour": "red"})


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("input_tokens", -5),
        ("output_tokens", 2.5),
        ("cached_input_tokens", "200"),
        ("cache_write_tokens", True),
        ("reasoning_tokens", [1]),
        ("input_audio_tokens", -1),
        ("output_audio_tokens", 0.5),
        ("cached_audio_tokens", "3"),
        ("cost_usd", -0.01),
        ("cost_usd", "0.01"),
        ("cost_usd", float("inf")),
    ],
)
def test_a_reports_model_call_with_counts_that_are_none_is_refused_naming_the_field(
    field: str, value: object
) -> None:
    # A hand-edited report: its bad counts went into the tree as they came (a string summed
    # into usage() failed there, a negative one was a credit of tokens); they are refused.
    step = {"kind": "model", "order": 4, "model": "gpt-4o", "provider": "openai", "started": 0.0}
    with pytest.raises(EvalReportError, match=rf"order 4 has {field} "):
        step_from_dict({**step, field: value})
    with pytest.raises(EvalReportError, match=rf"order 4 has {field} "):
        ReplyTree.from_dict(
            {
                "kind": "agent",
                "order": 0,
                "agent": "A",
                "started": 0.0,
                "children": [{**step, field: value}],
            }
        )
    counted = step_from_dict({**step, "input_tokens": 10, "output_tokens": 0, "cost_usd": 0})
    assert isinstance(counted, ModelCall)
    assert (counted.input_tokens, counted.output_tokens, counted.cost_usd) == (10, 0, 0)


async def test_tracing_sees_every_span_while_the_recorder_runs_and_gets_its_hooks_back(
    traces: Traces,  # noqa: F811
) -> None:
    before = observe_interactions(None)
    observe_interactions(before)  # (the instrumentation's: the traces fixture set it)
    async with MiniAgents():
        report = await aevaluate(librarian.fork(token_delay=0), [Case("A poem about rivers?")])
    assert report.results[0].error is None
    assert (
        traces.tree() == LIBRARIAN_SPANS
    )  # the run's own agent (one try of a case) has no span: the case's is made instead
    assert observe_interactions(before) is before  # put back as the recorder found them
    calls = observe_llm_calls(None)
    observe_llm_calls(calls)
    tools = observe_tool_calls(None)
    observe_tool_calls(tools)
    assert type(calls).__name__ == type(tools).__name__ == "Telemetry"


async def test_uninstrument_during_a_run_holds_during_it_and_after_it(
    traces: Traces,  # noqa: F811
) -> None:
    asked, go_on = asyncio.Event(), asyncio.Event()

    @miniagent
    async def asks_later(ctx: InteractionContext) -> None:
        asked.set()
        await go_on.wait()  # (the run's recorder holds tracing's observer meanwhile)
        ctx.reply(poet.fork(token_delay=0).inquire("Rivers."))

    run = asyncio.create_task(aevaluate(asks_later, [Case("Go.")], keep_trees=True))
    await asked.wait()
    uninstrument()
    assert plugged_observers() == (_RECORDER,) * 3  # the recorder alone: no dead tracing left
    go_on.set()
    report = await run
    assert report.results[0].error is None
    assert report.results[0].tree is not None
    assert report.results[0].tree.agents() == ["ASKS_LATER", "POET"]
    assert plugged_observers() == (None,) * 3  # nothing left plugged in
    async with MiniAgents():
        await poet.fork(alias="AFTER", token_delay=0).inquire("Seas.")
    # the case's agent started before uninstrument() (its span ends); nothing after has one
    assert traces.tree() == ["invoke_agent ASKS_LATER"]


async def test_instrument_during_a_run_traces_beside_the_recorder_and_stays_after_it(
    traces: Traces,  # noqa: F811
) -> None:
    uninstrument()  # (instrumented again during the run, with the fixture's providers)
    asked, go_on = asyncio.Event(), asyncio.Event()

    @miniagent
    async def asks_later(ctx: InteractionContext) -> None:
        asked.set()
        await go_on.wait()
        ctx.reply(librarian.fork(token_delay=0).inquire("A poem about rivers?"))

    run = asyncio.create_task(aevaluate(asks_later, [Case("Go.")], keep_trees=True))
    await asked.wait()
    instrument(traces.tracer_provider, meter_provider=traces.meter_provider)
    go_on.set()
    report = await run
    tree = report.results[0].tree
    assert tree is not None  # the recorder kept recording beside the tracing
    assert tree.agents() == ["ASKS_LATER", "LIBRARIAN", "POEM", "POET"]
    assert tree.tools() == ["POEM"]
    assert (
        traces.tree() == LIBRARIAN_SPANS
    )  # the case's agent started before instrument(): it has no span
    plugged = plugged_observers()
    assert type(plugged[0]).__name__ == "Telemetry"
    assert plugged == (plugged[0],) * 3  # the tracing alone stays after the run
    uninstrument()
    assert plugged_observers() == (None,) * 3


async def test_an_observer_set_during_a_run_stays_after_it() -> None:
    class Quiet:
        def interaction_started(self, agent: object) -> None:
            return None

        def carrier(self) -> dict[str, str]:
            return {}

    quiet = Quiet()

    @miniagent
    async def sets_one(ctx: InteractionContext) -> None:
        observe_interactions(quiet)
        ctx.reply("set")

    try:
        await aevaluate(sets_one, [Case("Go.")])
        assert observe_interactions(None) is quiet
    finally:
        observe_interactions(None)


async def test_what_runs_outside_the_cases_is_not_recorded() -> None:
    started = asyncio.Event()

    @miniagent
    async def background(ctx: InteractionContext) -> None:
        started.set()
        ctx.reply("done")

    async with MiniAgents():
        outside = background.fork(start_asap=False).inquire()
        report = await aevaluate(poet.fork(token_delay=0), [Case("Go.")], keep_trees=True)
        await outside  # started now, while the recorder is still not installed or is: either way
    assert started.is_set()
    tree = report.results[0].tree
    assert tree is not None
    assert tree.agents() == ["POET"]


async def test_a_failing_observer_before_the_recorder_is_logged_once_and_the_case_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Broken:
        def interaction_started(self, agent: object) -> None:
            raise RuntimeError("broken observer")

        def carrier(self) -> dict[str, str]:
            return {}

    observe_interactions(Broken())
    try:
        with caplog.at_level(logging.WARNING, logger="miniagents"):
            report = await aevaluate(
                poet.fork(token_delay=0), [Case("Go."), Case("Again.")], keep_trees=True
            )
    finally:
        observe_interactions(None)
    assert [result.error for result in report.results] == [None, None]
    assert [result.tree.agents() for result in report.results if result.tree] == [
        ["POET"],
        ["POET"],
    ]
    warnings = [record for record in caplog.records if "broken observer" in record.getMessage()]
    assert len(warnings) == 1


class _Depth(Evaluator[object, object]):
    """How deep the tree goes (a custom trajectory evaluator: 1 for at least 3 levels)."""

    name = "depth"

    def score(self, run: CaseRun[object, object]) -> Score:
        def depth(step: AgentStep | ToolStep | ModelCall) -> int:
            return 1 + max((depth(child) for child in step.children), default=0)

        found = 0 if run.tree.root is None else depth(run.tree.root)
        return Score.of(found >= 3, reason=f"{found} levels")


async def test_a_custom_evaluator_walks_the_tree(virtual_clock: VirtualClock) -> None:  # noqa: F811
    report = await aevaluate(librarian, [Case("A poem about rivers, please.")], [_Depth()])
    assert report.results[0].scores["depth"] == Score(1.0, True, "5 levels")


async def test_a_model_calls_first_token_is_its_first_event_that_says_something() -> None:
    # a sign of life ("") is no token, nor is a Finish; a tool call's start is one. The
    # clock ticks at each reading, so the reading tells which event set the time.
    ticks = iter(range(100))
    recording = CaseRecording(lambda: float(next(ticks)))  # reads 0 (the case's start)
    call = LLMCall(model="m", stream=True, system=None, messages=())
    early = Finish("stop", 3, 0)
    last = Finish("stop", 3, 2)

    async def provided(events: list[LLMEvent]) -> AsyncIterator[LLMEvent]:
        for event in events:
            yield event

    node = _ModelNode(recording, ("p", None), call)  # reads 1 (its start)
    given: list[LLMEvent] = ["", "", "Hel", "", "lo", last]
    passed = [event async for event in node.events(provided(given))]
    assert passed == given  # passed on as they are
    assert (node.started, node.first_token, node.finish) == (1.0, 2.0, last)

    node = _ModelNode(recording, ("p", None), call)  # reads 3
    tool = ToolCallStart("id-1", "get_weather")
    passed = [event async for event in node.events(provided(["", tool, "x"]))]
    assert passed == ["", tool, "x"]
    assert node.first_token == 4.0

    node = _ModelNode(recording, ("p", None), call)  # reads 5
    passed = [event async for event in node.events(provided(["", early]))]
    assert passed == ["", early]
    assert (node.first_token, node.finish) == (None, early)  # no token came


async def test_closing_a_model_calls_events_closes_the_providers() -> None:
    closed: list[bool] = []

    async def provided() -> AsyncIterator[LLMEvent]:
        try:
            yield "a"
            yield "b"
        finally:
            closed.append(True)

    recording = CaseRecording(lambda: 0.0)
    call = LLMCall(model="m", stream=True, system=None, messages=())
    node = _ModelNode(recording, ("p", None), call)
    events = node.events(provided())
    assert await anext(events) == "a"
    await events.aclose()  # type: ignore[attr-defined]  # (an async generator's)
    assert closed == [True]


def test_a_providers_names_are_looked_up_once_per_run_and_forgotten_after() -> None:
    class Named:
        def __init__(self, name: str) -> None:
            self.provider_name = name
            self.lookups = 0

        def __getattribute__(self, attribute: str) -> object:
            if attribute == "provider_name":
                object.__setattr__(self, "lookups", object.__getattribute__(self, "lookups") + 1)
            return object.__getattribute__(self, attribute)

    first, second = Named("first"), Named("second")
    recorder = _Recorder()
    with recording():  # (the recorder of the runs: its names are forgotten when they end)
        names = [recorder.provider_names(p) for p in (first, second, first, second)]  # type: ignore[arg-type]
        assert names == [("first", None), ("second", None)] * 2
        assert (first.lookups, second.lookups) == (1, 1)  # once each, however many calls
        _RECORDER.provider_names(first)  # type: ignore[arg-type]
        assert _RECORDER.names
    assert not _RECORDER.names  # (the providers are let go of with the last run)


def test_a_model_calls_usage_is_its_steps_whether_it_ended_reported_or_not() -> None:
    # One constructor (ModelCall.usage) makes a call's UsageTotals: a recorded call's step
    # says it for a priced model's call still running, ended without counts, or counted, and
    # the tree sums them.
    recording = CaseRecording(lambda: 0.0)
    call = LLMCall(model="gpt-4o", stream=True, system=None, messages=())
    running = _ModelNode(recording, ("openai", "openai"), call)
    unreported = _ModelNode(recording, ("openai", "openai"), call)
    unreported.finish = Finish("stop")
    counted = _ModelNode(recording, ("openai", "openai"), call)
    counted.finish = Finish("stop", 1000, 10, cached_input_tokens=200)
    for node in (running, unreported):
        assert node.step().usage() == UsageTotals(requests=1, unpriced_requests=1)
    usage = counted.step().usage()
    assert (usage.input_tokens, usage.output_tokens, usage.cached_input_tokens) == (1000, 10, 200)
    assert (usage.unpriced_requests, usage.cost_usd > 0) == (0, True)
    steps = tuple(node.step() for node in (running, unreported, counted))
    tree = ReplyTree(AgentStep(3, "AGENT", 0.0, children=steps))
    assert tree.usage() == UsageTotals.summed((usage, UsageTotals(requests=2, unpriced_requests=2)))


def _rendered(step: ModelCall) -> str:
    return ReplyTree(AgentStep(0, "AGENT", 0.0, children=(step,))).render()


def test_a_model_call_of_a_reply_that_splits_its_audio_keeps_the_split() -> None:
    # (was: the step's cost priced the audio, its token counts said totals only)
    recording = CaseRecording(lambda: 0.0)
    call = LLMCall(model="gpt-realtime", stream=True, system=None, messages=())
    node = _ModelNode(recording, ("openai", "openai"), call)
    audio = AudioTokens(input_tokens=600, output_tokens=300, cached_input_tokens=100)
    node.finish = Finish("stop", 1000, 400, cached_input_tokens=200, audio=audio)
    step = node.step()
    split = (step.input_audio_tokens, step.output_audio_tokens, step.cached_audio_tokens)
    assert split == (600, 300, 100)
    priced = finish_usage(node.finish, "gpt-realtime", "openai").cost_usd
    assert priced is not None
    assert step.cost_usd == priced
    assert "1000 + 400 tokens (of audio 600 + 300)" in _rendered(step)
    again = step_from_dict(step.to_dict())
    assert again == step
    # a tree saved before the split loads, its audio unknown; a text reply's is unknown too
    saved = {key: value for key, value in step.to_dict().items() if "audio" not in key}
    old = step_from_dict(saved)
    assert isinstance(old, ModelCall)
    assert (old.input_audio_tokens, old.output_audio_tokens, old.cached_audio_tokens) == (
        None,
        None,
        None,
    )
    assert old.input_tokens == 1000
    assert "of audio" not in _rendered(old)
    node.finish = Finish("stop", 1000, 400)
    assert node.step().input_audio_tokens is None


def test_the_tree_usage_sums_the_audio_split_of_its_model_calls() -> None:
    # (was: UsageTotals had no audio fields, the totals dropped the split the calls keep)
    recording = CaseRecording(lambda: 0.0)
    call = LLMCall(model="gpt-realtime", stream=True, system=None, messages=())
    spoken, typed = (_ModelNode(recording, ("openai", "openai"), call) for _ in range(2))
    audio = AudioTokens(input_tokens=600, output_tokens=300, cached_input_tokens=100)
    spoken.finish = Finish("stop", 1000, 400, cached_input_tokens=200, audio=audio)
    typed.finish = Finish("stop", 50, 5)
    steps = (spoken.step(), spoken.step(), typed.step())
    usage = ReplyTree(AgentStep(3, "AGENT", 0.0, children=steps)).usage()
    split = (usage.input_audio_tokens, usage.output_audio_tokens, usage.cached_audio_tokens)
    assert split == (1200, 600, 200)
    assert (usage.input_tokens, usage.cached_input_tokens) == (2050, 400)
    assert usage.since(steps[0].usage()).input_audio_tokens == 600


def test_a_count_that_is_no_count_is_unknown_in_the_tree_as_in_its_price(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # A misbehaving server's negative count: the price (and the budgets) take it as unknown;
    # so does the tree, which took it as it came and summed it (a credit of tokens).
    recording = CaseRecording(lambda: 0.0)
    call = LLMCall(model="gpt-4o", stream=True, system=None, messages=())
    node = _ModelNode(recording, ("openai", "openai"), call)
    node.finish = Finish("stop", -5, 3, reasoning_tokens=-1)
    with caplog.at_level(logging.WARNING):
        step = node.step()
    assert (step.input_tokens, step.output_tokens, step.reasoning_tokens) == (None, 3, None)
    assert step.cost_usd is None  # (its prompt's count unknown: no price)
    assert "-5 tokens" in caplog.text
    assert step.usage() == UsageTotals(requests=1, output_tokens=3, unpriced_requests=1)


class _Tokens(int):
    """An ``int`` of a class of its own (an SDK's type of count, say)."""


@pytest.mark.parametrize("value", [0, 7, -5, True, 2.5, 1.0, "3", _Tokens(3)], ids=repr)
def test_a_report_refuses_the_counts_a_price_takes_as_unknown_and_no_other(
    value: object, caplog: pytest.LogCaptureFixture
) -> None:
    # One predicate (pricing.is_token_count) tells a count, for a provider's and a report's:
    # the report took an int of a class of its own, which the price took as unknown.
    with caplog.at_level(logging.WARNING):
        unknown = reported_count(value) is None
    assert ("tokens; the count is taken as unknown" in caplog.text) == unknown
    try:
        check_amounts({"input_tokens": value}, ["input_tokens"], "The model call of order 1")
    except EvalReportError:
        refused = True
    else:
        refused = False
    assert refused == unknown


class _Served:
    """A route that answers every call itself, as a call cache or a batch would have."""

    rank = 0

    def __init__(self, finish: Finish) -> None:
        self.finish = finish

    def llm_call(
        self, provider: object, call: LLMCall, options: object, proceed: object
    ) -> AsyncIterator[LLMEvent]:
        return self._events()

    async def _events(self) -> AsyncIterator[LLMEvent]:
        yield "served"
        yield self.finish


@pytest.mark.parametrize(
    ("served", "cost"),
    [
        (Finish("stop", 1000, 100, replayed=True), 0.0),  # a call cache's: no request made
        (Finish("stop", 1000, 100, batch_id="batch-1"), 0.00175),  # gpt-4o's batch price
    ],
    ids=["replayed", "batch"],
)
async def test_a_replayed_or_batch_calls_cost_in_the_tree_is_the_cases_usage(
    served: Finish, cost: float
) -> None:
    # The tree prices a finished call as the budgets do (one pricing: pricing.finish_usage):
    # a replayed reply costs nothing, a batch one the batch price, not the live price (0.0035).
    remove = install_llm_route(_Served(served))
    try:
        report = await aevaluate(
            scripted_agent("unused", model="gpt-4o"), [Case("Hi.")], keep_trees=True
        )
    finally:
        remove()
    result = report.results[0]
    assert result.error is None, result.error_message
    assert result.tree is not None
    (call,) = result.tree.model_calls()
    assert call.cost_usd == pytest.approx(cost)
    assert result.tree.usage().cost_usd == pytest.approx(result.usage.cost_usd)
    assert result.usage.cost_usd == pytest.approx(cost)


async def test_a_call_answered_by_a_dated_model_costs_the_same_in_the_budget_tree_and_studio(
    tmp_path: Path,
) -> None:
    # Asked for "gpt-4o", the API answers as "gpt-4o-2024-05-13", a dated model with prices
    # of its own: the budgets priced the asked model, the tree and the studio the answered
    # one. One choice now (pricing.priced_model): the answered model, which the table knows.
    usage = TokenUsage(input_tokens=1000, output_tokens=100)
    dated = cost_usd("gpt-4o-2024-05-13", usage)
    assert dated is not None
    assert dated != pytest.approx(cost_usd("gpt-4o", usage))  # (else the test shows nothing)
    remove = install_llm_route(_Served(Finish("stop", 1000, 100, model="gpt-4o-2024-05-13")))
    store = RunStore(tmp_path / "runs.sqlite")
    try:
        with Recorder(store, name="dated", command=()) as studio:
            report = await aevaluate(
                scripted_agent("unused", model="gpt-4o"), [Case("Hi.")], keep_trees=True
            )
        studio_call = RunTree.of(store, studio.run_id).call_with("served")
    finally:
        remove()
        store.close()
    result = report.results[0]
    assert result.error is None, result.error_message
    assert result.tree is not None
    (call,) = result.tree.model_calls()
    assert result.usage.cost_usd == pytest.approx(dated)  # the case's budget
    assert call.cost_usd == pytest.approx(dated)  # the eval's tree
    assert studio_call.cost_usd == pytest.approx(dated)  # the studio's record


async def test_a_realtime_reply_with_audio_costs_the_same_in_the_session_tree_and_studio(
    tmp_path: Path,
) -> None:
    # The session prices its reply's audio at the audio rates; its Finish said no audio, so
    # the tree and the studio priced the reply at the text rates, about 8x under for
    # gpt-realtime's audio input. The Finish says its audio now (Finish.audio): one price.
    usage = LiveUsage(input_text=10, input_audio=200, output_text=4, output_audio=30)
    session = modal_cost_usd(
        "gpt-realtime",
        "openai",
        input_tokens=210,
        output_tokens=34,
        input_audio_tokens=200,
        output_audio_tokens=30,
    )
    text = cost_usd("gpt-realtime", TokenUsage(input_tokens=210, output_tokens=34), "openai")
    assert session is not None
    assert text is not None
    assert session > 4 * text  # (else the test shows nothing)
    store = RunStore(tmp_path / "runs.sqlite")
    try:
        with FakeLLMServer() as server:
            server.speak(["Hello."], usage=usage)
            with Recorder(store, name="voice", command=()) as studio:
                report = await aevaluate(APIS[0].voice(server), [Case("Hi.")], keep_trees=True)
        (studio_call,) = RunTree.of(store, studio.run_id).calls.values()
    finally:
        store.close()
    result = report.results[0]
    assert result.error is None, result.error_message
    assert result.tree is not None
    (call,) = result.tree.model_calls()
    assert result.usage.cost_usd == pytest.approx(session)  # the session's (its budget)
    assert call.cost_usd == pytest.approx(session)  # the eval's tree
    assert studio_call.cost_usd == pytest.approx(session)  # the studio's record
