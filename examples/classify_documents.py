"""Classify 2,000 documents with an LLM, one call per document, 16 at a time, into a CSV.

Each document is one interaction of a chain of two agents: ``check`` refuses a document
it cannot classify (one of them is empty, on purpose, to show a failure), then the LLM
answers with the document's topic. ``pipeline`` runs 16 documents at once, reads them
lazily (at most 64 between being read and being written out), and gives the results in
the documents' order; a failed document is a result holding its error, and the others go
on. The results are written to a CSV file: the path given as the first argument, or
``topics.csv`` in a temporary folder. Run it with ``python examples/classify_documents.py
[out.csv]``: a progress bar shows on a terminal. It uses the offline model unless
``OPENAI_API_KEY`` (or ``ANTHROPIC_API_KEY`` or ``ANTHROPIC_AUTH_TOKEN``) is set; with a real
model, keep the count small (``COUNT`` below) unless you mean to pay for 2,000 calls.
"""

from __future__ import annotations

import csv
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from miniagents import InteractionContext, Message, miniagent, pipeline
from miniagents.ext.llm import LLMCall
from miniagents.ext.llm.from_env import llm_agent_from_env

COUNT = 2_000
TOPICS = ["sports", "science", "finance", "cooking", "travel"]
OPENINGS = {
    "sports": "The home team won the final after a late goal in extra time.",
    "science": "Researchers measured the decay of the isotope in a new experiment.",
    "finance": "The central bank kept its interest rate unchanged this quarter.",
    "cooking": "Simmer the onions in butter until they turn golden, then add the stock.",
    "travel": "The night train crosses the mountains and reaches the coast at dawn.",
}
EMPTY = 1_234
"""The document that is empty, on purpose: ``check`` refuses it."""


def documents(count: int) -> Iterator[str]:
    """Generated documents, one topic each (read lazily: nothing is held in a list)."""
    for index in range(count):
        yield "" if index == EMPTY else f"{OPENINGS[TOPICS[index % 5]]} (Report {index}.)"


@miniagent
async def check(ctx: InteractionContext) -> None:
    """Pass the document on as the prompt, or refuse an empty one."""
    text = str(await ctx.messages).strip()
    if not text:
        raise ValueError("the document is empty: there is nothing to classify")
    ctx.reply(Message(text=f"Topic of this document: {text}", role="user"))


def offline_topic(call: LLMCall) -> str:
    """What the offline model answers: the topic whose sentence the document starts with."""
    prompt = call.messages[-1].text or ""
    return next(topic for topic, opening in OPENINGS.items() if opening in prompt)


classifier = llm_agent_from_env(
    system=f"Answer with the document's topic, one word of: {', '.join(TOPICS)}.",
    offline_reply=offline_topic,
    token_delay=0,
    max_tokens=5,
)


def main(out: Path) -> None:
    """Classify the documents, write ``out`` and print a summary."""
    started = time.perf_counter()
    topics: Counter[str] = Counter()
    failures: list[str] = []
    with out.open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(["document", "topic", "error"])
        for result in pipeline(
            [check, classifier],
            documents(COUNT),
            max_concurrency=16,
            ordered=True,
            total=COUNT,
            description="classifying",
        ):
            if result.ok:
                topic = str(result.get()).strip().lower()
                topics[topic] += 1
                writer.writerow([result.index, topic, ""])
            else:
                failures.append(f"document {result.index}: {result.error}")
                writer.writerow([result.index, "", str(result.error)])
    seconds = time.perf_counter() - started
    print(f"Classified {sum(topics.values())} of {COUNT} documents, 16 at a time.")
    print("Topics: " + ", ".join(f"{topic} {topics[topic]}" for topic in sorted(topics)))
    print(f"{len(failures)} failed:")
    for failure in failures:
        print(f"- {failure}")
    with out.open(encoding="utf-8") as file:
        rows = list(csv.reader(file))
    print(f"The CSV has {len(rows) - 1} rows, in the documents' order: {rows[1]}, {rows[2]}, ...")
    print(f"(written to {out.name}, in {seconds:.1f} s)")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp()) / "topics.csv")
