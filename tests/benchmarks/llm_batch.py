"""Benchmark: a pipeline of N items in batch mode, its memory flat (issue 54).

Run it by hand from the repository root (it is not a test; pytest never collects it)::

    python tests/benchmarks/llm_batch.py              # N = 1,000 and 10,000
    python tests/benchmarks/llm_batch.py --sizes 10000 100000 --concurrency 2000

Every item is one call of ``openai_agent`` (the real OpenAI SDK) in batch mode
(``pipeline(agent, items, batch=BatchMode(...), max_concurrency=C)``), against the fake LLM
server in a process of its own on 127.0.0.1 (its files and batches are its memory, not
this one's): the calls go in batches of up to C requests (each flushed once every running
item waits), the server runs each batch as it is made, and the run looks at it every
50 ms. Each size runs in a fresh Python process (RSS from ``/proc/self/status``); the
figures are the wall and CPU time, the batches made, and the peak RSS growth of the
process over the run (VmHWM at the end less VmRSS at the start). The target: at N =
10,000, growth of at most 50 MB, and about the same as at N = 1,000 (flat: the items in
flight, not the items, hold the memory).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

MODEL = "gpt-4o-mini"


def rss_kb(field: str) -> int:
    """A memory figure of this process from /proc/self/status (VmRSS, VmHWM), in kB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise LookupError(field)


def prompts(n: int) -> Iterator[str]:
    """The items, made as they are read."""
    for index in range(n):
        yield f"Classify review {index}: positive or negative?"


async def run(n: int, concurrency: int, base_url: str) -> dict[str, float]:
    """One run of ``n`` items; its results counted, and the batch mode's figures."""
    import openai

    from miniagents import MiniAgents, pipeline
    from miniagents.ext.llm.batch import BatchMode
    from miniagents.ext.llm.openai import openai_agent

    mode = BatchMode(poll_interval=0.05, max_wait=3600, journal=None)
    async with (
        openai.AsyncOpenAI(base_url=base_url, api_key="test", timeout=600) as client,
        MiniAgents(),
    ):
        agent = openai_agent.fork(model=MODEL, async_client=client)
        done = 0
        results = pipeline(
            agent,
            prompts(n),
            batch=mode,
            max_concurrency=concurrency,
            max_in_flight=concurrency,
            progress=False,
        )
        async for result in results:
            result.get()
            done += 1
    if done != n:
        raise AssertionError(f"{done} results of {n} items")
    progress = mode.progress
    return {"batches": progress.batches_done, "answered": progress.answered}


def child(n: int, concurrency: int, base_url: str) -> dict[str, float]:
    """Run one size in this (fresh) process; return its figures."""
    import openai  # noqa: F401  # imported before the clock starts

    import miniagents.ext.llm.batch  # noqa: F401

    before = rss_kb("VmRSS")
    started = time.perf_counter()
    cpu_started = time.process_time()
    figures = asyncio.run(run(n, concurrency, base_url))
    return {
        **figures,
        "wall": time.perf_counter() - started,
        "cpu": time.process_time() - cpu_started,
        "rss_growth_mb": (rss_kb("VmHWM") - before) / 1e3,
    }


def serve() -> None:
    """Start the fake server (its replies echo the prompts); print its URL; wait for EOF."""
    from miniagents.testing import FakeLLMServer

    with FakeLLMServer() as server:
        print(server.openai_base_url, flush=True)
        sys.stdin.read()


def main(argv: Sequence[str] | None = None) -> None:
    """Parse the arguments; run each size in a fresh process; print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000])
    parser.add_argument("--concurrency", type=int, default=1_000)
    parser.add_argument("--child", type=int)
    parser.add_argument("--url")
    parser.add_argument("--serve", action="store_true")
    args = parser.parse_args(argv)
    if args.serve:
        serve()
        return
    if args.child is not None:
        print(json.dumps(child(args.child, args.concurrency, args.url)))
        return
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    server = subprocess.Popen(
        [sys.executable, __file__, "--serve"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert server.stdout is not None
    assert server.stdin is not None
    base_url = server.stdout.readline().strip()
    rows: list[tuple[int, dict[str, float]]] = []
    try:
        for n in args.sizes:
            command = [sys.executable, __file__, "--child", str(n), "--url", base_url]
            command += ["--concurrency", str(args.concurrency)]
            done = subprocess.run(command, capture_output=True, text=True, check=False, env=env)
            if done.returncode != 0:
                raise RuntimeError(f"N = {n} failed:\n{done.stderr[-3000:]}")
            figures = json.loads(done.stdout.strip().splitlines()[-1])
            print(json.dumps({"n": n, "load": os.getloadavg()[0], **figures}), file=sys.stderr)
            rows.append((n, figures))
    finally:
        server.stdin.close()
        server.wait(timeout=60)
    print("| N | batches | wall | CPU | peak RSS growth |")
    print("|---|---|---|---|---|")
    for n, figures in rows:
        print(
            f"| {n:,} | {figures['batches']:.0f} | {figures['wall']:.1f} s | "
            f"{figures['cpu']:.1f} s | {figures['rss_growth_mb']:.0f} MB |"
        )
    largest = max(rows, key=lambda row: row[0])
    growth = largest[1]["rss_growth_mb"]
    verdict = "MET" if growth <= 50 else "MISSED"
    print(f"N = {largest[0]:,}: peak RSS growth {growth:.0f} MB ({verdict}: at most 50 MB)")


if __name__ == "__main__":
    main()
