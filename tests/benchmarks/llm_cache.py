"""Benchmark: the call cache, a hit against the same call live, and W6 replayed (issue 54).

Run it by hand from the repository root (it is not a test; pytest never collects it)::

    python tests/benchmarks/llm_cache.py             # 200 calls each way; W6 at N = 10,000
    python tests/benchmarks/llm_cache.py --n 1000    # W6 at N = 1,000, a smoke check

Against the fake LLM server in a process of its own on 127.0.0.1, every reply 200
streamed tokens (W6's), with the real OpenAI SDK:

* **a hit against the same call live**: ``--calls`` sequential calls of ``openai_agent``
  with one prompt, live (no cache), then the same calls replayed by a ``CallCache`` (one
  recorded first) from memory and from a SQLite file; each figure the median time of one
  call, from ``inquire`` to the reply's last message. The target: a hit at least 10 times
  faster than live;
* **W6 replayed**: W6 (``pipeline`` over N items, one call each, 64 at a time) with a
  ``CallCache`` in read-through mode, recording every call; then again with the cache in
  replay mode and the agent's client pointed at a port where nothing listens: a call that
  was not replayed would fail the run. The target: the replayed run makes no model call
  (every item replayed, none missed), and its wall time.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

TOKENS = 200
MODEL = "gpt-4o-mini"


def prompts(n: int) -> Iterator[str]:
    """W6's items."""
    for index in range(n):
        yield f"Summarise document {index} in one paragraph."


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])  # closed when the block ends: nothing listens


async def one_call(calls: int, base_url: str, path: Path) -> dict[str, float]:
    """The median time of one call: live, replayed from memory, replayed from SQLite."""
    import openai

    from miniagents import MiniAgents
    from miniagents.ext.llm.cache import CallCache, MemoryCallStore, SQLiteCallStore
    from miniagents.ext.llm.openai import openai_agent

    figures: dict[str, float] = {}
    async with (
        openai.AsyncOpenAI(base_url=base_url, api_key="test", timeout=600) as client,
        MiniAgents(),
    ):
        agent = openai_agent.fork(model=MODEL, async_client=client)
        sqlite = SQLiteCallStore(path)
        caches: list[tuple[str, CallCache | None]] = [
            ("live", None),
            ("memory hit", CallCache(MemoryCallStore())),
            ("sqlite hit", CallCache(sqlite)),
        ]
        for name, cache in caches:
            if cache is not None:  # recorded once
                with cache.active():
                    await agent.inquire("The same question.")
            times: list[float] = []
            for _ in range(calls):
                started = time.perf_counter()
                if cache is None:
                    await agent.inquire("The same question.")
                else:
                    with cache.active():
                        await agent.inquire("The same question.")
                times.append(time.perf_counter() - started)
            figures[name] = statistics.median(times)
        sqlite.close()
    return figures


async def w6(n: int, base_url: str, cache: Any) -> float:
    """W6 with ``cache`` active; its wall time (every item's text checked)."""
    import openai

    from miniagents import MiniAgents, pipeline
    from miniagents.ext.llm.openai import openai_agent

    started = time.perf_counter()
    async with (
        openai.AsyncOpenAI(base_url=base_url, api_key="test", max_retries=0, timeout=600) as client,
        MiniAgents(),
    ):
        agent = openai_agent.fork(model=MODEL, async_client=client)
        with cache.active():
            async for result in pipeline(agent, prompts(n), max_concurrency=64, progress=False):
                if len(str(result.get()[-1])) != len(" tok" * TOKENS):
                    raise AssertionError(f"item {result.index}: {result.get()!r:.100}")
    return time.perf_counter() - started


def serve(replies: int) -> None:
    """Start the fake server with ``replies`` of W6's (200 tokens); print its URL; wait."""
    from miniagents.testing import FakeLLMServer

    with FakeLLMServer() as server:
        server.reply(tokens=[" tok"] * TOKENS, usage=(10, TOKENS), times=replies)
        print(server.openai_base_url, flush=True)
        sys.stdin.read()


def main(argv: Sequence[str] | None = None) -> None:
    """Parse the arguments; measure; print the figures and the verdicts."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--serve", type=int)
    args = parser.parse_args(argv)
    if args.serve is not None:
        serve(args.serve)
        return
    from miniagents.ext.llm.cache import CallCache, MemoryCallStore

    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    server = subprocess.Popen(
        [sys.executable, __file__, "--serve", str(3 * args.calls + args.n + 10)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert server.stdout is not None
    assert server.stdin is not None
    base_url = server.stdout.readline().strip()
    try:
        with tempfile.TemporaryDirectory() as folder:
            figures = asyncio.run(one_call(args.calls, base_url, Path(folder) / "calls.sqlite"))
        store = MemoryCallStore(max_entries=None)
        recording = CallCache(store)
        recorded = asyncio.run(w6(args.n, base_url, recording))
    finally:
        server.stdin.close()
        server.wait(timeout=60)
    replaying = CallCache(store, mode="replay")
    nowhere = f"http://127.0.0.1:{_closed_port()}/v1"  # a call made would fail the run
    replayed = asyncio.run(w6(args.n, nowhere, replaying))

    live = figures["live"]
    print("| call | median time | / live |")
    print("|---|---|---|")
    for name, seconds in figures.items():
        print(f"| {name} | {seconds * 1e3:.2f} ms | {seconds / live:.3f}x |")
    speedup = live / max(figures["memory hit"], figures["sqlite hit"])
    print(f"a hit is {speedup:.0f}x faster than live ({_verdict(speedup >= 10)}: at least 10x)")
    stats = replaying.stats
    print(
        f"W6 at N = {args.n:,}: recorded in {recorded:.1f} s ({recording.stats.misses:,} calls "
        f"made), replayed in {replayed:.1f} s ({stats.hits:,} replayed, {stats.misses} calls "
        f"made: {_verdict(stats.misses == 0 and stats.hits == args.n)})"
    )


def _verdict(met: bool) -> str:
    return "MET" if met else "MISSED"


if __name__ == "__main__":
    main()
