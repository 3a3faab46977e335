"""Static typing tests for batch mode and the call cache: exact types, wrong arguments refused.

The ``check_*`` functions are never called: mypy checks them (strict, with
``warn_unused_ignores``), and each line that must be rejected carries a precise
``# type: ignore[code]``. :func:`test_batch_cache_types_pass_mypy` runs mypy on this file.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import assert_type

from reactivex import Observable

from miniagents import ItemResult, MessageTuple, pipeline
from miniagents.ext.dbos import SQLCallStore, SQLRunJournal
from miniagents.ext.llm import LLMReply
from miniagents.ext.llm.batch import (
    BatchAPI,
    BatchMode,
    BatchProgress,
    FileJournal,
    OpenAIBatchAPI,
    register_batch_api,
)
from miniagents.ext.llm.cache import (
    CacheStats,
    CallCache,
    CallStore,
    MemoryCallStore,
    RecordedCall,
    SQLiteCallStore,
)
from miniagents.ext.llm.errors import LLMBatchError, LLMCacheMissError
from miniagents.ext.llm.openai import OpenAIMessage, openai_agent
from miniagents.ext.llm.provider import Finish
from miniagents.operators import map_agent
from miniagents.pipeline import Pipeline
from miniagents.pipeline.batching import PipelineBatching, RunJournal
from tests.fakes.typecheck import assert_passes_mypy

agent = openai_agent.fork(model="gpt-4o-mini")


def check_batch_mode(items: list[str], source: Observable[str]) -> None:
    mode = BatchMode(max_requests=1000, max_wait=60, retry="live", retries=2)
    assert_type(pipeline(agent, items, batch=mode), Pipeline[str, LLMReply[OpenAIMessage]])
    assert_type(
        pipeline(agent, items, batch=mode, durable=True), Pipeline[str, LLMReply[OpenAIMessage]]
    )
    operator = map_agent(agent, batch=mode)
    assert_type(operator(source), Observable[ItemResult[str, LLMReply[OpenAIMessage]]])
    assert_type(mode.progress, BatchProgress)
    assert_type(mode.progress.saved_usd, float)
    batching: PipelineBatching = mode
    journal: RunJournal = FileJournal("run.jsonl")
    journal = SQLRunJournal("PIPELINE")
    BatchMode(journal=journal)
    BatchMode(journal=Path("run.jsonl"))
    BatchMode(journal=None)
    api: BatchAPI = OpenAIBatchAPI()
    register_batch_api(api)
    assert_type(Finish(batch_id="b-1").batch_id, str | None)
    assert_type(LLMBatchError("x").reason, str)
    BatchMode(retry="sometimes")  # type: ignore[arg-type]
    BatchMode(max_requests="10")  # type: ignore[arg-type]
    BatchMode(10)  # type: ignore[call-arg]
    pipeline(agent, items, batch=True)  # type: ignore[arg-type]
    del batching


async def check_call_cache() -> None:
    cache = CallCache("calls.sqlite", mode="replay", namespace="v1", max_age=3600)
    assert_type(cache.stats, CacheStats)
    with cache.active() as active:
        assert_type(active, CallCache)
        reply = await agent.inquire("hi")
        assert_type(reply, MessageTuple[LLMReply[OpenAIMessage]])
    remove = cache.install()
    assert_type(remove, Callable[[], None])
    store: CallStore = MemoryCallStore(max_entries=100)
    store = SQLiteCallStore(Path("calls.sqlite"))
    store = SQLCallStore()
    CallCache(store)
    recorded = await store.aget("key")
    assert_type(recorded, RecordedCall | None)
    assert_type(Finish(replayed=True).replayed, bool)
    assert_type(LLMCacheMissError("x").diff, str)
    CallCache(mode="sometimes")  # type: ignore[arg-type]
    CallCache(42)  # type: ignore[arg-type]


# --- The test that pytest runs --------------------------------------------------------


def test_batch_cache_types_pass_mypy() -> None:
    """Type-check this file with the project's mypy.ini (the one run: tests/fakes/typecheck.py)."""
    assert_passes_mypy(__file__)
