"""Benchmark: an eval of 1,000 cases against the same agent in a plain pipeline.

Run it by hand from the repository root (it is not a test; pytest never collects it)::

    python tests/benchmarks/evals.py            # the full run (a few minutes)
    python tests/benchmarks/evals.py --quick    # 200 cases, 3 runs: a smoke check
    python tests/benchmarks/evals.py --runs 9   # more timed runs per variant (default 5)
    python tests/benchmarks/evals.py --only llm # one agent (the memory table is the llm's)
    python tests/benchmarks/evals.py --peers    # and pydantic-evals beside ours (see below)

``--peers`` needs pydantic-evals, installed for this benchmark only (it is no dependency
of MiniAgents, nor in any of its extras): ``pip install pydantic-evals``.

Issue 55's targets: a dataset of 1,000 cases runs with memory flat, and an overhead per case
within 10 % of calling the agent in a plain pipeline. Two agents, each with its two
variants, interleaved run by run, each run on a fresh event loop after ``gc.collect()``:

* ``plain``: ``pipeline(agent, inputs, max_concurrency=16, max_in_flight=32)``, every
  item's replies awaited (what an application does with the agent);
* ``eval``: ``aevaluate(agent, dataset, [Contains()], max_concurrency=16)``: each case's
  replies read (its first token noted), its reply tree recorded, its tokens and cost
  metered, one evaluator, a ``CaseResult`` kept in the report.

With ``--peers`` (issue 64), two more variants run the same cases against the same agent
with pydantic-evals, so that the two eval libraries' own cost per case is measured side by
side, each over the same plain baseline:

* ``task``: the task pydantic-evals is given, run without it: ``reply_text(await
  agent.inquire(question))`` for each case, at most 16 at once (an ``asyncio.Semaphore``),
  every case's output kept;
* ``pydantic-evals``: ``Dataset(cases=[Case(inputs=question, expected_output="France")],
  evaluators=[Contains("France")]).evaluate(task, max_concurrency=16, progress=False)``,
  the task the same, in one ``MiniAgents`` context.

The overhead of ours is ``eval`` less ``plain``; pydantic-evals' is ``pydantic-evals`` less
``task``.

The agents: ``llm``, the offline model answering 14 words (14 tokens, no delay: a pure
measure of overhead, the worst case for the ratio; a real model's second of latency would
hide it); ``two agents``, an orchestrator that asks the offline model and a tool-calling
forecaster (4 interactions, 3 model calls and a tool call per case); ``llm 1 ms``, the
offline model with 1 ms between tokens (a fast model, still a hundred times faster than a
real one); and ``openai http``, the OpenAI agent with the real SDK against the testing
kit's fake server over real HTTP on 127.0.0.1 (it echoes the 14 words of the question).

The table shows, for each, CPU microseconds per case (``time.process_time``: the machine
may be shared) and wall milliseconds per run (``time.perf_counter``), the medians of the
runs, the eval's overhead per case, and the ratios eval / plain; for memory,
``tracemalloc``'s peak over a run of ``2 x`` the cases against a run of the cases (memory
flat: the peak does not grow with the cases, beyond the report's results, measured apart
as the bytes a ``CaseResult`` holds).

**Results** (2026-11-26, branch ``evals-cost``, 1,000 cases, 5 runs; the code before
(``main`` at 5f75aba) and after, run one after the other; 2 cores shared with other jobs:
load average 9 to 16, so the wall times are rough and the CPU times the figures; CPU per
case, wall per run):

| agent | plain CPU µs | eval CPU µs | overhead | CPU ratio | plain ms | eval ms | wall ratio |
|---|---|---|---|---|---|---|---|
| llm, before | 173 | 340 | +167 µs | 1.96 | 367 | 1158 | 3.16 |
| llm, after | 177 | 267 | +91 µs | 1.51 | 377 | 591 | 1.57 |
| two agents, before | 558 | 922 | +364 µs | 1.65 | 1055 | 2560 | 2.43 |
| two agents, after | 640 | 784 | +143 µs | 1.22 | 1068 | 1362 | 1.28 |
| llm 1 ms, before | 547 | 818 | +270 µs | 1.49 | 3784 | 4075 | 1.08 |
| llm 1 ms, after | 568 | 769 | +201 µs | 1.35 | 2308 | 2676 | 1.16 |
| openai http, before | 7813 | 8069 | +255 µs | 1.03 | 23249 | 20785 | 0.89 |
| openai http, after | 7887 | 8438 | +551 µs | 1.07 | 16878 | 17676 | 1.05 |

A second pair of runs (``--only``, a few minutes later) of the rows that vary most:

| agent | plain CPU µs | eval CPU µs | overhead | CPU ratio | plain ms | eval ms | wall ratio |
|---|---|---|---|---|---|---|---|
| llm 1 ms, before | 432 | 625 | +193 µs | 1.45 | 1613 | 1868 | 1.16 |
| llm 1 ms, after | 346 | 462 | +116 µs | 1.34 | 1510 | 1642 | 1.09 |
| openai http, before | 5549 | 6573 | +1024 µs | 1.18 | 8223 | 9922 | 1.21 |
| openai http, after | 6474 | 6512 | +38 µs | 1.01 | 22605 | 15897 | 0.70 |

Over HTTP the SDK's 6 to 8 ms of CPU a case swing by more than the eval's cost from run
to run at this load: its rows say the eval is within a few percent, no more.

Memory: the plain pipeline's peak stays at 0.27 MB for 1,000 and 2,000 cases; the eval's
grows by 1.16 kB per extra case (1.40 kB before), of which 1.18 kB are the
report's ``CaseResult`` (kept by design: the rest is transient), so a run's memory is flat
but for its report.

**Calls per case** (cProfile, load-independent: the calls of a run of 400 cases less those
of 200, per case; ``llm``: a plain pipeline makes 794 a case, ``two agents`` 2,140):

| eval's extra calls per case | llm | two agents |
|---|---|---|
| before (one more interaction per case, the recorder, the first token, ...) | 404 | 728 |
| after: each try a coroutine in its pipeline item's task (no interaction of its own) | 170 | 359 |
| ... of which: recording the tree (the recorder, the core's observing) | 63 | 228 |
| ... the first token (a cursor over the replies, a wait on the first message's record) | 30 | 19 |
| ... the case's meter scope (``charged_to``, and each call's budgets looked up past it) | 17 | 45 |
| ... the rest: a ``Budget``, the evaluator's score, ``CaseRun``, ``CaseResult``, output | 60 | 67 |

**The floor, and why the 10 % is missed for the offline stand-ins.** What a plain
pipeline does not do and an eval must: observe every interaction, model call and tool
call of the case (the core's ``InteractionEnding`` per interaction and reply message, the
recorder's step per start and end, and one generator step per event of a model call, for
its first token and its ``Finish``: per model call a layer over the provider's events that
the watch protocol requires), wait for the first token of the replies' text, meter the
case (a ``Budget`` in scope: each model call then looks its budgets up past the fast
path), and build the run, the scores and the result. At 0.4 to 0.6 µs a call on this
machine, 170 calls are the +60 to +90 µs measured: about a third of the offline model's
own 150 to 180 µs a case, so 1.10x cannot be reached for it without removing one of
these. The agent over real HTTP costs 7 to 8 ms of CPU a case: there the eval's share is
1 to 3 %. Against a real model's hundreds of milliseconds a case, below 0.1 %.

Tried and left: following the first token with observers of the reply sequence and of the
first text message (no wait, no cursor) made more calls a case (+184 against +172 for
``llm``, +380 against +338 for two agents) and was not faster in CPU on this loaded machine.
What would go further (hooks outside ``miniagents.evals``, not made): a watch of LLM calls
told the ``Finish`` and the first token by the turn that takes the events (no generator
layer: ``llm`` 18 steps a case, two agents 28), and an interaction watch told the reply
messages as they enter (the first token without a cursor or a wait).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import time
import tracemalloc
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import openai

from miniagents import InteractionContext, Message, MiniAgent, MiniAgents, miniagent, pipeline
from miniagents.evals import Case, Contains, Dataset, aevaluate, reply_text
from miniagents.ext.llm.offline import ToolRule, offline_agent
from miniagents.ext.llm.openai import openai_agent
from miniagents.testing import FakeLLMServer

ANSWER = "Paris is the capital of France and its largest city by far, of course, and old."

QUESTION = "Question {}: what is the capital of France, and why is it so large?"
"""The input of each case (14 words: the fake server's echo is as long as ANSWER)."""


def get_weather(city: str) -> str:
    """The weather in a city."""
    return f"Sunny in {city}."


def _agents(delay: float) -> dict[str, MiniAgent[..., Message]]:
    llm = offline_agent.fork(reply=ANSWER, token_delay=delay)
    forecaster = offline_agent.fork(
        alias="FORECASTER",
        tool_rules=[ToolRule(r"weather in (?P<city>\w+)", "get_weather")],
        tools=[get_weather],
        reply="It is sunny.",
        token_delay=delay,
    )

    @miniagent
    async def orchestrator(ctx: InteractionContext) -> None:
        ctx.reply(llm.inquire(ctx.message_promises))
        ctx.reply(forecaster.inquire("What is the weather in Paris?"))

    return {"llm": llm, "two agents": orchestrator}


def _dataset(cases: int) -> Dataset[str, str]:
    return Dataset([Case(QUESTION.format(number), "France") for number in range(cases)])


Workload = Callable[[], AbstractAsyncContextManager[MiniAgent[..., Message]]]
"""The agent of a workload, made in the run's event loop (an SDK client belongs to one)."""


def _offline(agent: MiniAgent[..., Message]) -> Workload:
    @asynccontextmanager
    async def made() -> AsyncIterator[MiniAgent[..., Message]]:
        yield agent

    return made


def _over_http(server: FakeLLMServer) -> Workload:
    @asynccontextmanager
    async def made() -> AsyncIterator[MiniAgent[..., Message]]:
        async with openai.AsyncOpenAI(base_url=server.openai_base_url, api_key="bench") as client:
            yield openai_agent.fork(model="gpt-4o-mini", async_client=client)

    return made


_INPUTS: dict[int, list[str]] = {}
_DATASETS: dict[int, Dataset[str, str]] = {}


async def _plain(workload: Workload, cases: int) -> None:
    inputs = _INPUTS.get(cases) or _INPUTS.setdefault(
        cases, [QUESTION.format(number) for number in range(cases)]
    )  # (made once, before the runs, as the dataset is)
    async with MiniAgents(), workload() as agent:
        async for result in pipeline(
            agent, inputs, max_concurrency=16, max_in_flight=32, progress=False
        ):
            result.get()


async def _eval(workload: Workload, cases: int) -> None:
    dataset = _DATASETS.get(cases) or _DATASETS.setdefault(cases, _dataset(cases))
    async with MiniAgents(), workload() as agent:
        report = await aevaluate(agent, dataset, [Contains()], progress=False)
        assert report.passed == cases, report.table()


async def _task(workload: Workload, cases: int) -> None:
    inputs = _INPUTS.get(cases) or _INPUTS.setdefault(
        cases, [QUESTION.format(number) for number in range(cases)]
    )
    async with MiniAgents(), workload() as agent:
        room = asyncio.Semaphore(16)

        async def task(question: str) -> str:
            async with room:
                return reply_text(await agent.inquire(question))

        outputs = await asyncio.gather(*(task(question) for question in inputs))
        assert all("France" in output for output in outputs)


def _peer_dataset(cases: int) -> Any:
    """pydantic-evals' dataset of ``cases`` cases (made once)."""
    import pydantic_evals  # (pip install pydantic-evals: see the docstring)
    from pydantic_evals.evaluators import Contains as PeerContains

    peer_dataset = _PEER_DATASETS.get(cases)
    if peer_dataset is None:
        peer_dataset = _PEER_DATASETS[cases] = pydantic_evals.Dataset(
            name="capitals",
            cases=[
                pydantic_evals.Case(inputs=QUESTION.format(number), expected_output="France")
                for number in range(cases)
            ],
            evaluators=[PeerContains("France")],
        )
    return peer_dataset


async def _pydantic_evals(workload: Workload, cases: int) -> None:
    peer_dataset = _peer_dataset(cases)
    async with MiniAgents(), workload() as agent:

        async def task(question: str) -> str:
            return reply_text(await agent.inquire(question))

        report = await peer_dataset.evaluate(task, max_concurrency=16, progress=False)
        assert len(report.cases) == cases
        assert all(case.assertions["Contains"].value for case in report.cases)


_PEER_DATASETS: dict[int, Any] = {}

VARIANTS: dict[str, Callable[[Workload, int], Coroutine[Any, Any, None]]] = {
    "plain": _plain,
    "eval": _eval,
}

PEERS: dict[str, Callable[[Workload, int], Coroutine[Any, Any, None]]] = {
    "task": _task,
    "pydantic-evals": _pydantic_evals,
}
"""The variants of ``--peers``: pydantic-evals over the same agent, and its plain baseline."""


def _timed(variant: str, agent: Workload, cases: int) -> tuple[float, float]:
    """CPU microseconds per case, and wall milliseconds, of one run."""
    gc.collect()
    start, wall = time.process_time(), time.perf_counter()
    asyncio.run({**VARIANTS, **PEERS}[variant](agent, cases))
    cpu = (time.process_time() - start) / cases * 1e6
    return cpu, (time.perf_counter() - wall) * 1e3


def _peak(variant: str, agent: Workload, cases: int) -> int:
    """``tracemalloc``'s peak (bytes) over one run (its inputs made before: not counted)."""
    run = {**VARIANTS, **PEERS}[variant]
    asyncio.run(run(agent, 1))  # (nothing left to make of the module's)
    _INPUTS.setdefault(cases, [QUESTION.format(number) for number in range(cases)])
    _DATASETS.setdefault(cases, _dataset(cases))
    if variant == "pydantic-evals":
        _peer_dataset(cases)
    gc.collect()
    tracemalloc.start()
    try:
        asyncio.run(run(agent, cases))
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def _result_bytes(workload: Workload, cases: int) -> float:
    """The bytes a report keeps per case (its CaseResults), measured by what stays after."""

    async def run() -> object:
        async with MiniAgents(), workload() as agent:
            return await aevaluate(agent, _dataset(cases), [Contains()], progress=False)

    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        report = asyncio.run(run())
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    del report
    return (after - before) / cases


def _row(name: str, times: dict[str, list[tuple[float, float]]], base: str, it: str) -> str:
    """A table row: ``it`` against ``base`` (CPU per case, wall per run: medians)."""
    (base_cpu, base_wall), (cpu, wall) = (
        (
            statistics.median(cpu for cpu, _ in times[variant]),
            statistics.median(wall for _, wall in times[variant]),
        )
        for variant in (base, it)
    )
    return (
        f"| {name} | {base_cpu:.0f} | {cpu:.0f} | {cpu - base_cpu:+.0f} µs | "
        f"{cpu / base_cpu:.2f} | {base_wall:.0f} | {wall:.0f} | {wall / base_wall:.2f} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="200 cases, 3 runs")
    parser.add_argument("--runs", type=int, default=5, help="timed runs per variant")
    parser.add_argument("--cases", type=int, default=1000, help="cases per run")
    parser.add_argument("--only", help="one agent: llm, two agents, llm 1 ms, openai http")
    parser.add_argument("--peers", action="store_true", help="pydantic-evals beside ours")
    options = parser.parse_args()
    cases = 200 if options.quick else options.cases
    runs = 3 if options.quick else options.runs
    variants = [*VARIANTS, *(PEERS if options.peers else ())]
    rows: list[str] = []
    peer_rows: list[str] = []
    with FakeLLMServer() as server:
        workloads = {
            **{name: _offline(agent) for name, agent in _agents(0.0).items()},
            "llm 1 ms": _offline(_agents(0.001)["llm"]),
            "openai http": _over_http(server),
        }
        for name, agent in workloads.items():
            if options.only is not None and name != options.only:
                continue
            for variant in variants:  # warm-up (and a check)
                asyncio.run({**VARIANTS, **PEERS}[variant](agent, 20))
            times: dict[str, list[tuple[float, float]]] = {variant: [] for variant in variants}
            for _ in range(runs):
                for variant in variants:  # interleaved
                    times[variant].append(_timed(variant, agent, cases))
            rows.append(_row(name, times, "plain", "eval"))
            if options.peers:
                peer_rows.append(_row(name, times, "task", "pydantic-evals"))
    print(f"{cases} cases, {runs} runs per variant (medians)\n")
    header = (
        " CPU µs/case | {it} CPU µs/case | CPU overhead per case | CPU ratio "
        "| {base} wall ms | {it} wall ms | wall ratio |"
    )
    print("| agent | plain" + header.format(base="plain", it="eval"))
    print("|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    if options.peers:
        print("\npydantic-evals, over the same agent (its task alone as the baseline):\n")
        print("| agent | task" + header.format(base="task", it="pydantic-evals"))
        print("|---|---|---|---|---|---|---|---|")
        print("\n".join(peer_rows))
    if options.only is not None and options.only != "llm":
        return
    print("\nMemory (tracemalloc peak, MB), llm agent:\n")
    print("| variant | cases | 2 x cases | growth per extra case |")
    print("|---|---|---|---|")
    agent = workloads["llm"]
    for variant in variants:
        one, two = _peak(variant, agent, cases), _peak(variant, agent, 2 * cases)
        print(
            f"| {variant} | {one / 1e6:.2f} | {two / 1e6:.2f} | "
            f"{(two - one) / cases / 1e3:.2f} kB |"
        )
    print(f"\nA report keeps {_result_bytes(agent, cases) / 1e3:.2f} kB per case (its results).")


if __name__ == "__main__":
    main()
