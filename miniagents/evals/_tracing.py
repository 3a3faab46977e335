"""OpenTelemetry spans of a run: one for the run, one per case, one per evaluator.

::

    eval capitals                          the run (INTERNAL)
    ├── eval case france                   one try of a case: its scores, time, cost
    │   ├── invoke_agent ASSISTANT         the agent's own spans (with instrument())
    │   ├── eval evaluator contains        an evaluator: its score, passed or not
    │   └── eval evaluator judge
    │       └── invoke_agent JUDGE         a judge's spans (with instrument())
    └── eval case peru ...

The case's span is current where the agent is inquired, and an evaluator's where it
scores, so that the spans of ``miniagents.ext.otel`` (``instrument()``) nest under them.
Every call into OpenTelemetry is guarded: a failure is logged once and the run goes on.
The attributes are MiniAgents' own (``miniagents.eval.*``), besides ``error.type`` and the
GenAI conventions' token counts.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, TypeAlias

from miniagents.evals.case import Score
from miniagents.ext.errors import MissingExtraError
from miniagents.ext.llm.usage import UsageTotals
from miniagents.miniagents.logged_once import LoggedOnce

if TYPE_CHECKING:
    from opentelemetry.context import Context
    from opentelemetry.trace import Span, Tracer, TracerProvider
    from opentelemetry.util.types import AttributeValue

__all__ = ["EvalTracing", "StartedSpan", "case_attributes", "evaluator_attributes"]

_SCOPE = "miniagents.evals"

StartedSpan: TypeAlias = "tuple[Span, Context] | None"
"""A span started (with the context that makes it current), or ``None`` if none could be."""


class EvalTracing:
    """The spans of one run (see the module docstring).

    Args:
        tracer_provider: Where the spans go (``None``: OpenTelemetry's global one).

    Raises:
        MissingExtraError: if ``opentelemetry-api`` is not installed (``pip install
            "miniagents[otel]"``).
    """

    def __init__(self, tracer_provider: TracerProvider | None) -> None:
        try:
            from opentelemetry import trace
        except ImportError as error:
            raise MissingExtraError(
                'The spans of an eval need OpenTelemetry\'s API: pip install "miniagents[otel]".'
            ) from error
        provider = tracer_provider if tracer_provider is not None else trace.get_tracer_provider()
        self.tracer: Tracer = provider.get_tracer(_SCOPE)
        self._failures = LoggedOnce(
            "The spans of an eval failed (%s: %s): the eval goes on, and some spans may be "
            "missing. This is logged once."
        )

    def _failed(self, error: Exception) -> None:
        self._failures.failed(error)

    def _start(
        self, name: str, parent: Context | None = None, **attributes: AttributeValue
    ) -> StartedSpan:
        """Start the span ``name`` with ``attributes`` (as ``miniagents.eval.*``)."""
        attributes = {f"miniagents.eval.{key}": value for key, value in attributes.items()}
        try:
            from opentelemetry import context as otel_context
            from opentelemetry import trace

            base = parent if parent is not None else otel_context.get_current()
            span = self.tracer.start_span(name, context=base, attributes=attributes)
            return span, trace.set_span_in_context(span, base)
        except Exception as error:
            self._failed(error)
            return None

    @contextmanager
    def current(self, started: StartedSpan) -> Iterator[None]:
        """Make the span ``started`` current in this task while the block runs."""
        if started is None:
            yield
            return
        from opentelemetry import context as otel_context

        try:
            token = otel_context.attach(started[1])
        except Exception as error:
            self._failed(error)
            yield
            return
        try:
            yield
        finally:
            try:
                otel_context.detach(token)
            except Exception as error:
                self._failed(error)

    def end(
        self,
        started: StartedSpan,
        attributes: Mapping[str, AttributeValue],
        error: BaseException | str | None = None,
    ) -> None:
        """End a span with ``attributes`` (and, if it failed, the error's class)."""
        if started is None:
            return
        try:
            from opentelemetry.trace import Status, StatusCode

            span = started[0]
            span.set_attributes(attributes)
            if error is not None:
                kind = error if isinstance(error, str) else type(error).__qualname__
                span.set_attribute("error.type", kind)
                span.set_status(Status(StatusCode.ERROR))
            span.end()
        except Exception as failure:
            self._failed(failure)

    # -- the three kinds of span ---------------------------------------------------------

    def start_run(self, dataset: str, agent: str, name: str) -> StartedSpan:
        """Start the run's span."""
        return self._start(f"eval {dataset}", dataset=dataset, agent=agent, run=name)

    def start_case(self, case: str, repetition: int, attempt: int) -> StartedSpan:
        """Start a try of a case (a child of the span current here: the run's)."""
        return self._start(f"eval case {case}", case=case, repetition=repetition, attempt=attempt)

    def start_evaluator(self, name: str, case: StartedSpan) -> StartedSpan:
        """Start an evaluator's span, a child of the case's."""
        return self._start(
            f"eval evaluator {name}", parent=None if case is None else case[1], evaluator=name
        )


def case_attributes(
    *,
    passed: bool,
    duration: float | None,
    first_token: float | None,
    usage: UsageTotals,
    scores: Mapping[str, Score],
) -> dict[str, AttributeValue]:
    """The attributes a case's span ends with."""
    attributes: dict[str, AttributeValue] = {
        "miniagents.eval.passed": passed,
        "gen_ai.usage.input_tokens": usage.input_tokens,
        "gen_ai.usage.output_tokens": usage.output_tokens,
        "miniagents.eval.cost_usd": usage.cost_usd,
    }
    if duration is not None:
        attributes["miniagents.eval.duration"] = duration
    if first_token is not None:
        attributes["miniagents.eval.first_token"] = first_token
    for name, score in scores.items():
        attributes[f"miniagents.eval.score.{name}"] = score.value
    return attributes


def evaluator_attributes(score: Score | None) -> dict[str, AttributeValue]:
    """The attributes an evaluator's span ends with (none if it did not score the case).

    An evaluator's error is the span's ``error.type`` and error status, as ``end`` gives
    them (never the reason: it may quote the output, as content may not be).
    """
    if score is None:
        return {"miniagents.eval.scored": False}
    return {
        "miniagents.eval.scored": True,
        "miniagents.eval.score": score.value,
        "miniagents.eval.passed": score.passed,
    }
