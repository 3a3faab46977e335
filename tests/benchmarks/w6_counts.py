"""W6 measured by what the load does not change: function calls per pipeline item.

Run by hand from the repository root (pytest never collects it); ``PYTHONPATH`` chooses the
library measured (a folder holding a ``miniagents`` package, e.g. a ``git archive`` export)::

    python tests/benchmarks/w6_counts.py                       # this checkout
    PYTHONPATH=/tmp/lib python tests/benchmarks/w6_counts.py   # another library
    python tests/benchmarks/w6_counts.py --n 400 --dump /tmp/w6.prof

W6 of ``llm_pipeline.py`` (one chat completion of 200 streamed tokens per item with the real
OpenAI SDK against ``FakeLLMServer``, at most 64 at once): the raw variant and ``pipeline``
(as ``llm_pipeline.py`` runs it, but for a stall timeout of an hour: the stall watch is on,
as by default, and a machine loaded enough to starve the server for a minute does not fail
the run), each counted under ``cProfile`` (Python and builtin calls) in a run of 2N items
less one of N, over N, so that a run's fixed cost (the client, the context) cancels. The
server runs in a process of its own (``llm_pipeline.py --serve``), so its calls are not
counted; how the network splits the replies into reads moves the counts by a fraction of a
percent.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

_ROOT = str(Path(__file__).resolve().parents[2])
if _ROOT not in sys.path:  # run as a script: make the `tests` package importable
    sys.path.append(_ROOT)  # after PYTHONPATH: the library measured is the one found first

from tests.benchmarks import llm_pipeline  # noqa: E402
from tests.benchmarks.counting import count_calls  # noqa: E402

Variant = Callable[[int, str, bool], Coroutine[Any, Any, int]]


async def library(n: int, base_url: str, progress: bool) -> int:
    """``llm_pipeline.library``, with a stall timeout of an hour."""
    import openai

    from miniagents import MiniAgents, pipeline
    from miniagents.ext.llm.openai import openai_agent

    characters = 0
    async with openai.AsyncOpenAI(
        base_url=base_url, api_key="bench", max_retries=0, timeout=llm_pipeline.TIMEOUT
    ) as client:
        agent = openai_agent.fork(model=llm_pipeline.MODEL, async_client=client)
        async with MiniAgents(llm_stall_timeout=3600):
            async for result in pipeline(
                agent, llm_pipeline.prompts(n), max_concurrency=64, progress=progress, total=n
            ):
                characters += len(str(result.get()))
    return characters


def main() -> None:
    """Start the server, then count each variant's calls per item."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--n", type=int, default=200, help="items of the smaller run")
    parser.add_argument("--dump", help="save the profile of pipeline's larger run to this file")
    options = parser.parse_args()
    import miniagents

    print(f"library: {miniagents.__file__}")
    n = options.n
    server = subprocess.Popen(
        [sys.executable, llm_pipeline.__file__, "--serve", str(8 * n + 50)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        url = server.stdout.readline().strip()
        variants: dict[str, Variant] = {"raw": llm_pipeline.raw, "pipeline": library}
        for name, variant in variants.items():
            asyncio.run(variant(10, url, False))  # warm-up

            def run(items: int, variant: Variant = variant) -> Coroutine[Any, Any, int]:
                return variant(items, url, False)

            smaller = count_calls(lambda: run(n))
            dump = options.dump if name == "pipeline" else None
            larger = count_calls(lambda: run(2 * n), dump)
            print(f"W6 {name}: {(larger - smaller) / n:,.1f} calls per item", flush=True)
    finally:
        if server.stdin is not None:
            server.stdin.close()
        server.wait()


if __name__ == "__main__":
    main()
