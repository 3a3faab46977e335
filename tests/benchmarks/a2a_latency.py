"""How long a remote agent's token takes to reach its caller over A2A (issue 56: within 5 ms).

Run by hand (``python tests/benchmarks/a2a_latency.py [--calls 20] [--tokens 50]``), not
collected by pytest. The researcher of ``tests/ext/a2a/researcher_server.py`` runs in a
process of its own and streams the tokens this process releases, one at a time, noting the
monotonic clock (the same clock in every process of the machine) just before it yields each;
this process notes the clock when the token reaches the caller, and releases the next only
then (never two in flight, no sleeps). The caller is the ``a2a_agent`` itself (``direct``)
and an LLM agent that has it as a tool (``as a tool``: the token in the tool's result).

It prints, per caller, the first token's latency of each call (the median and the worst of
``--calls`` calls, each a new task) and every token's (median, 90th percentile, worst), and
``MET`` or ``MISSED`` for a median first-token latency within 5 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from typing import Any

import httpx2

from miniagents import MiniAgents
from miniagents.ext.a2a import a2a_agent
from tests.ext.a2a.two_services import Researcher, orchestrator, tool_result

TARGET_MS = 5.0


async def one_call(url: str, control: httpx2.AsyncClient, tokens: int, tool: bool) -> list[float]:
    """The latency (ms) of each token of one call."""
    arrived: list[int] = []
    async with MiniAgents():
        replies: Any
        if tool:
            replies = orchestrator(url).inquire("Research rivers")
            streamed = aiter(await tool_result(replies))
        else:
            replies = a2a_agent(url).inquire("Research rivers")
            streamed = aiter(await anext(aiter(replies)))
        for number in range(tokens):
            await control.post("/control/token", json={"token": f"t{number} "})
            await anext(streamed)
            arrived.append(time.monotonic_ns())
        replies.cancel()
    await control.post("/control/idle")
    produced = (await control.get("/control/state")).json()["produced"][-tokens:]
    return [(got - made) / 1e6 for (_, made), got in zip(produced, arrived, strict=True)]


async def measure(calls: int, tokens: int) -> None:
    researcher = Researcher()
    try:
        async with httpx2.AsyncClient(base_url=researcher.url, timeout=30) as control:
            await one_call(researcher.url, control, 3, tool=False)  # (a warm-up call)
            print("| caller | first token: median, worst | every token: median, p90, worst |")
            print("|---|---|---|")
            verdicts = []
            for tool in (False, True):
                runs = [await one_call(researcher.url, control, tokens, tool) for _ in range(calls)]
                firsts = [run[0] for run in runs]
                every = sorted(latency for run in runs for latency in run)
                p90 = every[int(0.9 * (len(every) - 1))]
                name = "as a tool" if tool else "direct"
                print(
                    f"| {name} | {statistics.median(firsts):.2f} ms, {max(firsts):.2f} ms | "
                    f"{statistics.median(every):.2f} ms, {p90:.2f} ms, {every[-1]:.2f} ms |"
                )
                verdicts.append((name, statistics.median(firsts) <= TARGET_MS))
            for name, met in verdicts:
                print(f"{name}: first token within {TARGET_MS} ms: {'MET' if met else 'MISSED'}")
    finally:
        researcher.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--calls", type=int, default=20, help="calls per caller (new tasks)")
    parser.add_argument("--tokens", type=int, default=50, help="tokens per call")
    arguments = parser.parse_args()
    asyncio.run(measure(arguments.calls, arguments.tokens))


if __name__ == "__main__":
    main()
