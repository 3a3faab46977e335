"""Micro-benchmark: what tracing with OpenTelemetry costs per LLM call and per token.

Run it by hand from the repository root (it is not a test; pytest never collects it)::

    python tests/benchmarks/otel_cost.py            # the full run (about a minute)
    python tests/benchmarks/otel_cost.py --quick    # fewer calls, a smoke check
    python tests/benchmarks/otel_cost.py --runs 9   # more timed runs per case (default 5)
    python tests/benchmarks/otel_cost.py --tokens 2000  # long replies of 2,000 tokens

Each timed run makes ``calls`` interactions of the offline model, one after the other in one
``MiniAgents`` context (``token_delay=0``; each interaction is one call of the model, whose
reply is ``tokens`` words streamed one token each, read by the caller to its end), after
``gc.collect()``. The variants, interleaved run by run:

* ``off``: not instrumented (the hooks' one check each);
* ``on``: ``instrument()`` with the SDK's ``TracerProvider`` and a ``SimpleSpanProcessor``
  into an exporter that drops the spans, and an SDK ``MeterProvider`` (no reader);
* ``on + content``: the same with ``capture_content=True``.

The table shows the median CPU microseconds (``time.process_time``: the machine may be
shared) per call (an interaction with its one model call),
for replies of 1 and of 200 tokens (``--tokens``; the long replies' runs make
``calls * 200 // tokens`` calls, at least 10); the cost of tracing per call is ``on - off``
at 1 token, and per token the growth of that difference from 1 to 200 tokens, divided by
199.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import time
from collections.abc import Sequence

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

from miniagents import MiniAgents
from miniagents.ext.llm.offline import offline_agent
from miniagents.ext.otel import instrument, uninstrument

VARIANTS = ("off", "on", "on + content")


class _Dropping(SpanExporter):
    """An exporter that drops what it gets (the cost measured is ours and the SDK's)."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


def _set(variant: str) -> None:
    uninstrument()
    if variant == "off":
        return
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(_Dropping()))
    instrument(provider, capture_content=variant == "on + content", meter_provider=MeterProvider())


async def _calls(calls: int, tokens: int) -> None:
    agent = offline_agent.fork(token_delay=0, reply=" ".join(["word"] * tokens))
    async with MiniAgents():
        for _ in range(calls):
            async for message in agent.inquire("Hi"):
                async for _token in message:
                    pass


def _timed(variant: str, calls: int, tokens: int) -> float:
    """CPU microseconds per call of one run."""
    _set(variant)
    gc.collect()
    start = time.process_time()  # CPU time: the machine may be shared
    asyncio.run(_calls(calls, tokens))
    elapsed = time.process_time() - start
    uninstrument()
    return elapsed / calls * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer calls: a smoke check")
    parser.add_argument("--runs", type=int, default=5, help="timed runs per case")
    parser.add_argument("--tokens", type=int, default=200, help="tokens of a long reply")
    options = parser.parse_args()
    calls = 50 if options.quick else 400
    size = options.tokens
    long_calls = max(10, calls * 200 // size)
    medians: dict[tuple[str, int], float] = {}
    for tokens, count in ((1, calls), (size, long_calls)):
        for variant in VARIANTS:  # the warm-up, untimed
            _timed(variant, 10, tokens)
        runs: dict[str, list[float]] = {variant: [] for variant in VARIANTS}
        for _ in range(options.runs):
            for variant in VARIANTS:
                runs[variant].append(_timed(variant, count, tokens))
        for variant in VARIANTS:
            medians[variant, tokens] = statistics.median(runs[variant])
    print(
        f"{calls} calls per run of 1 token, {long_calls} of {size} tokens, "
        f"median of {options.runs} runs, CPU µs per call\n"
    )
    print(f"| variant | 1 token | {size} tokens | tracing per call | tracing per token |")
    print("|---|---:|---:|---:|---:|")
    for variant in VARIANTS:
        short, long = medians[variant, 1], medians[variant, size]
        per_call = short - medians["off", 1]
        per_token = ((long - medians["off", size]) - per_call) / (size - 1)
        print(f"| {variant} | {short:.0f} | {long:.0f} | {per_call:.0f} | {per_token:.2f} |")


if __name__ == "__main__":
    main()
