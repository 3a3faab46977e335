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
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from miniagents import MessagePromise, MiniAgents
from miniagents.ext.a2a import a2a_agent
from miniagents.ext.llm.offline import CallTool, offline_agent, one_per_call
from miniagents.ext.otel import instrument, uninstrument
from miniagents.ext.tools import ToolResultMessage
from tests.fakes.fixtures import WAIT
from tests.subprocesses import python_env

CHILD = Path(__file__).with_name("researcher_server.py")
TOKENS = 40
"""Tokens released before the caller cancels (half-way: the researcher would say more)."""

LATENCY_BOUND_MS = 50.0
"""What the test holds each median to (generous: the machine is shared); the issue asks 5 ms,
which the figure this test prints (``-s``) and ``tests/benchmarks/a2a_latency.py`` report."""


class Researcher:
    """The researcher's process, and its URL once it listens."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(CHILD)],
            env=python_env(None),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line.startswith("PORT "):
            _, err = self.process.communicate(timeout=60)
            raise AssertionError(f"the researcher did not start: {line!r}\n{err[-4000:]}")
        self.url = f"http://127.0.0.1:{int(line.split()[1])}"

    def stop(self) -> str:
        self.process.terminate()
        _, err = self.process.communicate(timeout=60)
        return err


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


def orchestrator(url: str) -> Any:
    remote = a2a_agent(url, alias="RESEARCHER")
    return offline_agent.fork(
        alias="ORCHESTRATOR",
        tools=[remote],
        reply=one_per_call(CallTool("RESEARCHER", {"message": "rivers"}), "Thanks."),
        token_delay=0,
    )


async def tool_result(replies: Any) -> MessagePromise[Any]:
    async for promise in replies:
        if issubclass(promise.message_class, ToolResultMessage):
            return promise  # type: ignore[no-any-return]
    raise AssertionError("the orchestrator's reply had no tool result")


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
