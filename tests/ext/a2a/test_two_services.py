"""Two services: an orchestrator here calls a researcher in another process, over A2A, as a tool.

The researcher (``researcher_server.py``, a child process) streams the tokens the test
releases one at a time; the orchestrator (an LLM agent of this process, its tool the
researcher as ``a2a_agent``) must see each one in its tool's result before the next one is
produced: live across the hop. Each token's latency is measured from its production there
(the monotonic clock, the same in both processes) to its arrival in the orchestrator's
reply here, one token at a time (never two in flight, no sleeps: the next is released once
the last has arrived). The caller cancels half-way: the researcher's reply is cancelled and
nothing is left running on either side. Both processes trace (OpenTelemetry's in-memory
exporter): the researcher's spans continue the caller's trace, under its span of the call.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterator

import httpx2
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from miniagents import MiniAgents
from miniagents.ext.otel import instrument, uninstrument
from tests.ext.a2a.two_services import Researcher, orchestrator, tool_result
from tests.fakes.fixtures import WAIT

TOKENS = 40
"""Tokens released before the caller cancels (half-way: the researcher would say more)."""

LATENCY_BOUND_MS = 50.0
"""What the test holds each median to (generous: the machine is shared); the issue asks 5 ms,
which the figure this test prints (``-s``) and ``tests/benchmarks/a2a_latency.py`` report."""


@pytest.fixture
def researcher() -> Iterator[Researcher]:
    service = Researcher()
    try:
        yield service
    finally:
        err = service.stop()
    assert "Traceback" not in err, err[-4000:]


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    instrument(provider)
    try:
        yield exporter
    finally:
        uninstrument()


@pytest.mark.timeout(120)
async def test_the_callers_sees_each_remote_token_live_and_cancelling_stops_both_sides(
    researcher: Researcher,
) -> None:
    async with httpx2.AsyncClient(base_url=researcher.url, timeout=WAIT) as control:
        arrived: list[int] = []
        async with MiniAgents():
            replies = orchestrator(researcher.url).inquire("Research rivers")
            streamed = aiter(await tool_result(replies))
            for number in range(TOKENS):
                await control.post("/control/token", json={"token": f"t{number} "})
                assert await anext(streamed) == f"t{number} "  # before the next is produced
                arrived.append(time.monotonic_ns())
            replies.cancel()  # the caller gives up half-way
        await control.post("/control/idle")  # (answers once no task is live there)
        state = (await control.get("/control/state")).json()
    assert [token for token, _ in state["produced"]] == [f"t{n} " for n in range(TOKENS)]
    assert state["cancelled"]
    assert state["live"] == 0
    latencies = [
        (got - made) / 1e6 for (_, made), got in zip(state["produced"], arrived, strict=True)
    ]
    median, worst = statistics.median(latencies), max(latencies)
    print(
        f"\nfirst-remote-token latency over {TOKENS} tokens: median {median:.2f} ms, "
        f"first {latencies[0]:.2f} ms, max {worst:.2f} ms"
    )
    assert median < LATENCY_BOUND_MS


@pytest.mark.timeout(120)
async def test_one_trace_shows_both_sides_of_the_hop(
    researcher: Researcher, spans: InMemorySpanExporter
) -> None:
    async with httpx2.AsyncClient(base_url=researcher.url, timeout=WAIT) as control:
        async with MiniAgents():
            replies = orchestrator(researcher.url).inquire("Research rivers")
            streamed = aiter(await tool_result(replies))
            await control.post("/control/token", json={"token": "Rivers."})
            assert await anext(streamed) == "Rivers."
            await control.post("/control/token", json={"token": None})
            assert str(await replies).endswith("Thanks.")
        await control.post("/control/idle")
        remote_spans = (await control.get("/control/state")).json()["spans"]
    local = {span.name: span for span in spans.get_finished_spans()}
    call = local["invoke_agent RESEARCHER"]  # the a2a_agent's interaction, here
    assert call.context is not None
    assert local["execute_tool RESEARCHER"].context.span_id == call.parent.span_id  # type: ignore[union-attr]
    [there] = [span for span in remote_spans if span["name"] == "invoke_agent RESEARCHER"]
    assert there["trace"] == f"{call.context.trace_id:032x}"  # one trace, both sides
    assert there["parent"] == f"{call.context.span_id:016x}"  # under the caller's span
