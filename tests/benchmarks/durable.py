"""Benchmark: what durability (``miniagents.ext.dbos``) costs per LLM call, SQLite and Postgres.

Run it by hand from the repository root (it is not a test; pytest never collects it)::

    python tests/benchmarks/durable.py            # the full run (a few minutes)
    python tests/benchmarks/durable.py --quick    # fewer interactions, a smoke check

Each variant runs in a fresh process (DBOS keeps one database per process): ``runs``
interactions of the offline model, one after the other in one ``MiniAgents`` context, each
a tool loop of ``calls`` model calls (``calls - 1`` rounds of one instant tool call, then
an answer of 20 tokens, ``token_delay=0``), read by the caller to its end. The first
interaction (DBOS's launch, the warm-up) is not timed. The variants:

* ``plain``: the agent as it is;
* ``sqlite``: ``durable(agent)`` on a SQLite file (the default);
* ``postgres``: ``durable(agent, database_url=...)`` on a local PostgreSQL (Debian's
  ``postgresql`` binaries; skipped if they are not installed).

Then each variant runs a pipeline of ``5 * runs`` items (one instant model call each, 8 at
a time; durable: ``ids_by_input=True``, each item a run) and reports the wall time per item.

It prints the wall time per LLM call (median over the interactions), the overhead of
durability per call (``durable - plain``), and the ratio ``durable / plain`` for this
instant model and for a model that would take 0.5 s a call (the overhead over 0.5 s + the
plain time): the ratio a real model sees.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MODEL_SECONDS = 0.5  # a typical call of a real model, for the second ratio


def _variant(database_url: str | None, runs: int, calls: int) -> dict[str, float]:
    """Run one variant in this process; the seconds per call, and per pipeline item."""
    from miniagents import MiniAgents
    from miniagents.ext.llm.offline import CallTool, offline_agent
    from miniagents.ext.llm.provider import LLMCall
    from miniagents.ext.tools.messages import ToolResultMessage
    from miniagents.pipeline import pipeline

    def tick() -> str:
        """Say tick."""
        return "tick"

    def script(call: LLMCall) -> str | CallTool:
        done = sum(isinstance(item, ToolResultMessage) for item in call.messages)
        return CallTool("tick") if done < calls - 1 else " ".join(["word"] * 20)

    agent = offline_agent.fork(
        alias=f"BENCH_{uuid.uuid4().hex[:8]}", reply=script, tools=[tick], token_delay=0
    )
    answerer = offline_agent.fork(alias=f"ITEMS_{uuid.uuid4().hex[:8]}", token_delay=0)
    if database_url is not None:
        from miniagents.ext.dbos import durable

        agent = durable(agent, database_url=database_url)
        answerer = durable(answerer, database_url=database_url, ids_by_input=True)
    items = [f"item {index}" for index in range(runs * 5)]

    async def main() -> list[float]:
        times: list[float] = []
        async with MiniAgents():
            launch = time.perf_counter()
            await agent.inquire("Go.")
            launched = time.perf_counter() - launch
            for _ in range(runs):
                began = time.perf_counter()
                await agent.inquire("Go.")
                times.append((time.perf_counter() - began) / calls)
            began = time.perf_counter()
            async for result in pipeline(answerer, items, max_concurrency=8):
                assert result.error is None, result.error
            times.append((time.perf_counter() - began) / len(items))
        times.insert(0, launched)
        return times

    times = asyncio.run(main())
    return {
        "first": times[0],
        "per_call": statistics.median(times[1:-1]),
        "per_item": times[-1],
    }


def _run_child(variant: str, url: str | None, runs: int, calls: int) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, __file__, "--child", json.dumps([url, runs, calls])],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=1800,
    )
    if done.returncode != 0:
        raise SystemExit(f"the {variant} variant failed:\n{done.stderr[-3000:]}")
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer interactions")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.child:
        url, runs, calls = json.loads(arguments.child)
        print(json.dumps(_variant(url, runs, calls)))
        return
    runs, calls = (5, 3) if arguments.quick else (40, 5)
    sys.path.insert(0, str(ROOT))
    from tests.fakes.postgres import postgres_binaries, postgres_server

    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as folder:
        results["plain"] = _run_child("plain", None, runs, calls)
        results["sqlite"] = _run_child("sqlite", f"sqlite:///{folder}/runs.sqlite", runs, calls)
        if postgres_binaries() is not None:
            with postgres_server() as server:
                url = server.create_database("bench")
                results["postgres"] = _run_child("postgres", url, runs, calls)
    plain = results["plain"]["per_call"]
    print(f"{runs} interactions of {calls} model calls each (median per call)\n")
    print(f"a pipeline of {runs * 5} items of one model call each, 8 at a time\n")
    print(
        "| variant | first interaction | per call | overhead per call | ratio (instant "
        f"model) | ratio ({MODEL_SECONDS:g} s model) | per item | ratio per item |"
    )
    print("|---|---|---|---|---|---|---|---|")
    plain_item = results["plain"]["per_item"]
    for name, result in results.items():
        per_call = result["per_call"]
        overhead = per_call - plain
        print(
            f"| {name} | {result['first'] * 1000:.0f} ms | {per_call * 1000:.1f} ms | "
            f"{overhead * 1000:+.1f} ms | {per_call / plain:.1f} | "
            f"{(MODEL_SECONDS + per_call) / (MODEL_SECONDS + plain):.3f} | "
            f"{result['per_item'] * 1000:.1f} ms | {result['per_item'] / plain_item:.1f} |"
        )


if __name__ == "__main__":
    main()
