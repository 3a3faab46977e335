"""OpenTelemetry spans of a run, its cases and their evaluators (the SDK's in-memory exporter)."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from miniagents import InteractionContext, miniagent
from miniagents.errors import MissingExtraError
from miniagents.evals import (
    Case,
    CaseRun,
    Contains,
    Dataset,
    Evaluator,
    ExactMatch,
    LLMJudge,
    Score,
    aevaluate,
)
from miniagents.ext.llm.offline import offline_agent
from tests.evals.agents import LIBRARIAN_SPANS, librarian
from tests.fakes.tracing import Traces, parent_of, traces  # noqa: F401

DATASET = Dataset([Case("A poem about rivers, please.", "Here", name="rivers")], name="poems")


@pytest.fixture
def exporter() -> Iterator[tuple[InMemorySpanExporter, TracerProvider]]:
    spans = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    yield spans, provider
    provider.shutdown()


async def test_a_span_per_run_case_and_evaluator_with_their_figures(
    exporter: tuple[InMemorySpanExporter, TracerProvider],
) -> None:
    spans, provider = exporter
    agent = librarian.fork(token_delay=0)
    report = await aevaluate(agent, DATASET, [Contains(), ExactMatch()], tracer_provider=provider)
    finished = {span.name: span for span in spans.get_finished_spans()}
    assert set(finished) == {
        "eval poems",
        "eval case rivers",
        "eval evaluator contains",
        "eval evaluator exact",
    }  # the agents' own spans come with instrument() (miniagents.ext.otel): below
    run, case = finished["eval poems"], finished["eval case rivers"]
    assert parent_of(case, run)
    assert parent_of(finished["eval evaluator contains"], case)
    assert parent_of(finished["eval evaluator exact"], case)
    assert dict(run.attributes or {}) == {
        "miniagents.eval.dataset": "poems",
        "miniagents.eval.agent": "LIBRARIAN",
        "miniagents.eval.run": "LIBRARIAN",
        "miniagents.eval.cases": 1,
    }
    attributes = dict(case.attributes or {})
    result = report.results[0]
    assert attributes["miniagents.eval.case"] == "rivers"
    assert attributes["miniagents.eval.passed"] is False  # exact: "Here it is." != "Here"
    assert attributes["miniagents.eval.score.contains"] == 1.0
    assert attributes["miniagents.eval.score.exact"] == 0.0
    assert attributes["gen_ai.usage.input_tokens"] == result.usage.input_tokens
    assert attributes["miniagents.eval.duration"] == result.duration
    evaluated = dict(finished["eval evaluator exact"].attributes or {})
    assert evaluated == {
        "miniagents.eval.evaluator": "exact",
        "miniagents.eval.scored": True,
        "miniagents.eval.score": 0.0,
        "miniagents.eval.passed": False,
    }  # never the reason: it quotes the output


async def test_an_evaluator_that_raises_has_an_error_span(
    exporter: tuple[InMemorySpanExporter, TracerProvider],
) -> None:
    """Its ``error.type`` with an error status, as every failed span of the run has."""
    spans, provider = exporter

    class Broken(Evaluator[object, object]):
        name = "broken"

        def score(self, run: CaseRun[object, object]) -> Score:
            raise KeyError("the secret is 42")

    report = await aevaluate(
        librarian.fork(token_delay=0), DATASET, [Broken(), Contains()], tracer_provider=provider
    )
    assert report.results[0].scores["broken"].error == "KeyError"
    finished = {span.name: span for span in spans.get_finished_spans()}
    broken, fine = finished["eval evaluator broken"], finished["eval evaluator contains"]
    assert dict(broken.attributes or {})["error.type"] == "KeyError"
    assert broken.status.status_code == StatusCode.ERROR
    assert "42" not in str(broken.status.description)  # never the error's message
    assert fine.status.status_code == StatusCode.UNSET
    assert "error.type" not in dict(fine.attributes or {})


async def test_with_instrument_the_agents_spans_nest_under_the_cases_and_the_judges_under_its(
    traces: Traces,  # noqa: F811
) -> None:
    judge = LLMJudge(
        offline_agent.fork(alias="JUDGE", reply='{"score": 1, "reason": "Fine."}', token_delay=0),
        "Any poem.",
    )
    await aevaluate(
        librarian.fork(token_delay=0),
        DATASET,
        [judge],
        tracer_provider=traces.tracer_provider,
    )
    assert traces.tree() == [
        "eval poems",
        "  eval case rivers",
        *("    " + line for line in LIBRARIAN_SPANS),
        "    eval evaluator judge",
        "      invoke_agent JUDGE",
        "        invoke_agent JUDGE",
        "          chat offline",
    ]  # (the structured judge asks the judge's LLM agent: two interactions of one alias)


async def test_a_failed_case_ends_its_span_with_the_errors_class(
    exporter: tuple[InMemorySpanExporter, TracerProvider],
) -> None:
    spans, provider = exporter

    @miniagent
    async def broken(ctx: InteractionContext) -> None:
        raise ValueError("the secret is 42")

    await aevaluate(
        broken,
        [Case("Go.", name="go")],
        tracer_provider=provider,
        retries=1,
        retry_on=(ValueError,),
        backoff=0,
    )
    cases = [span for span in spans.get_finished_spans() if span.name == "eval case go"]
    assert [dict(span.attributes or {})["miniagents.eval.attempt"] for span in cases] == [1, 2]
    for span in cases:
        assert dict(span.attributes or {})["error.type"] == "ValueError"
        assert span.status.status_code == StatusCode.ERROR
        assert "42" not in str(span.status.description)  # never the error's message


async def test_spans_without_opentelemetry_give_the_install_hint(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "opentelemetry", None)
    with pytest.raises(MissingExtraError, match=r'pip install "miniagents\[otel\]"'):
        await aevaluate(librarian, DATASET, trace=True)


async def test_a_run_cancelled_while_an_evaluator_scores_ends_its_case_and_evaluator_spans(
    exporter: tuple[InMemorySpanExporter, TracerProvider],
) -> None:
    spans, provider = exporter
    scoring = asyncio.Event()

    class Waiting(Evaluator):
        name = "waiting"

        async def ascore(self, run: CaseRun[object, object]) -> Score | None:
            scoring.set()
            await asyncio.Event().wait()
            return None

    task = asyncio.ensure_future(
        aevaluate(librarian.fork(token_delay=0), DATASET, [Waiting()], tracer_provider=provider)
    )
    await scoring.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    finished = {span.name: span for span in spans.get_finished_spans()}
    assert set(finished) == {"eval poems", "eval case rivers", "eval evaluator waiting"}
    for name in ("eval case rivers", "eval evaluator waiting"):
        assert dict(finished[name].attributes or {})["error.type"] == "CancelledError"
        assert finished[name].status.status_code == StatusCode.ERROR


async def test_an_output_function_that_raises_fails_the_case_and_ends_its_span(
    exporter: tuple[InMemorySpanExporter, TracerProvider],
) -> None:
    spans, provider = exporter

    def unreadable(replies: object) -> str:
        raise ValueError("no text here")

    report = await aevaluate(
        librarian.fork(token_delay=0), DATASET, output=unreadable, tracer_provider=provider
    )
    assert report.results[0].error == "ValueError"
    cases = [span for span in spans.get_finished_spans() if span.name == "eval case rivers"]
    assert [dict(span.attributes or {}).get("error.type") for span in cases] == ["ValueError"]
