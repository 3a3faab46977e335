"""Summarise a few hundred documents on a local Ray cluster, with a progress bar.

Each document goes through a chain of two agents on a Ray worker: ``outline`` does the CPU
work (it counts the words and finds the keywords), then the LLM writes a one-line summary.
At most 32 documents are on their way at once, however many there are, and the results come
back in the documents' order. Run it with ``python examples/ray_pipeline.py`` (the progress
bar shows on a terminal). It starts a local Ray cluster of 2 CPUs, and uses the offline
model unless ``OPENAI_API_KEY`` (or ``ANTHROPIC_API_KEY`` or ``ANTHROPIC_AUTH_TOKEN``) is
set; on a real cluster, connect with ``ray.init(address="auto")`` instead (see the README).
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections import Counter
from collections.abc import Iterator

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # Ray sends no usage statistics

import ray  # after the setting above: Ray reads it when it starts

from miniagents import InteractionContext, Message, miniagent
from miniagents.ext.llm import LLMCall
from miniagents.ext.llm.from_env import llm_agent_from_env
from miniagents.ext.ray import ray_pipeline

SUBJECTS = ["river", "market", "library", "harbour", "orchard", "railway", "bridge"]
QUALITIES = ["quiet", "busy", "ancient", "flooded", "forgotten", "restored"]
DETAILS = [
    "Visitors arrive early in the morning and leave before noon.",
    "The local council debated its future for several months.",
    "Photographs from the last century show how little it has changed.",
    "Children from the nearby school come here every spring.",
    "Its maintenance costs have doubled over the past decade.",
]


def documents(count: int) -> Iterator[str]:
    """Generated documents: a title sentence, then a few sentences of detail."""
    for index in range(count):
        subject = SUBJECTS[index % len(SUBJECTS)]
        quality = QUALITIES[(index * 5) % len(QUALITIES)]
        details = " ".join(DETAILS[(index + k) % len(DETAILS)] for k in range(1 + index % 4))
        yield f"The {quality} {subject} of district {index}. {details}"


@miniagent
async def outline(ctx: InteractionContext) -> None:
    """The CPU work before the LLM call: the document's length and its keywords."""
    text = str(await ctx.messages)
    words = re.findall(r"[a-z]+", text.lower())
    keywords = [word for word, _ in Counter(w for w in words if len(w) > 6).most_common(3)]
    ctx.reply(
        Message(
            text=f"Summarise in one sentence (keywords: {', '.join(keywords)}): {text}",
            role="user",
            words=len(words),
        )
    )


def offline_summary(call: LLMCall) -> str:
    """What the offline model answers: the document's first sentence, as a summary."""
    document = (call.messages[-1].text or "").split("): ", 1)[1]
    return f"A note on {document.split('.')[0].removeprefix('The ')}."


summarizer = llm_agent_from_env(
    system="You summarise documents in one short sentence.",
    offline_reply=offline_summary,
    token_delay=0,
    max_tokens=60,
)


def main(count: int = 300) -> None:
    """Start a local Ray cluster, summarise ``count`` documents on it, and stop it."""
    ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.ERROR)
    try:
        started = time.perf_counter()
        summaries: list[str] = []
        failed = 0
        for result in ray_pipeline(
            [outline, summarizer],
            documents(count),
            max_in_flight=32,
            batch_size=8,
            total=count,
            description="summarising",
            num_cpus=0.5,
        ):
            if result.ok:
                summaries.append(str(result.get()))
            else:
                failed += 1
                print(f"document {result.index} failed: {result.error!r}")
        seconds = time.perf_counter() - started
    finally:
        ray.shutdown()
    for index, summary in enumerate(summaries[:3]):
        print(f"document {index}: {summary}")
    print(f"Summarised {len(summaries)} of {count} documents on Ray ({failed} failed).")
    print(f"That took {seconds:.1f} s with at most 32 documents in flight.")


if __name__ == "__main__":
    main()
