"""A call cache: a model call's full request names its recorded reply, replayed at no cost.

::

    from miniagents.ext.llm.cache import CallCache

    with CallCache("recordings.sqlite").active():
        reply = await agent.inquire("...")    # recorded once, replayed after

``CallCache`` (``calls``) replays recorded calls and records the others; a call is named by
its request (``keys``: provider, model, prompt, tools, options, hashed canonically) and
kept in a store (``stores``: memory, a SQLite file; ``miniagents.ext.dbos.SQLCallStore``
for the database of durable runs or Postgres). The testing kit's pytest plugin
(``miniagents.testing.pytest_llm_cache``) makes a test suite replay its recordings.
"""

from miniagents.ext.llm.cache.calls import DEFAULT_CACHE_PATH as DEFAULT_CACHE_PATH
from miniagents.ext.llm.cache.calls import CacheMode as CacheMode
from miniagents.ext.llm.cache.calls import CacheStats as CacheStats
from miniagents.ext.llm.cache.calls import CallCache as CallCache
from miniagents.ext.llm.cache.keys import canonical_request as canonical_request
from miniagents.ext.llm.cache.keys import request_key as request_key
from miniagents.ext.llm.cache.stores import CallStore as CallStore
from miniagents.ext.llm.cache.stores import MemoryCallStore as MemoryCallStore
from miniagents.ext.llm.cache.stores import RecordedCall as RecordedCall
from miniagents.ext.llm.cache.stores import SQLiteCallStore as SQLiteCallStore

__all__ = [
    "DEFAULT_CACHE_PATH",
    "CacheMode",
    "CacheStats",
    "CallCache",
    "CallStore",
    "MemoryCallStore",
    "RecordedCall",
    "SQLiteCallStore",
    "canonical_request",
    "request_key",
]
