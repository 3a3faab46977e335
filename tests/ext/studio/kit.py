"""Runs for the studio's tests, written into a store as a recorder writes them."""

from __future__ import annotations

from miniagents.ext.studio import RunStore
from miniagents.ext.studio.events import encode_batch
from miniagents.ext.studio.store import RunInfo


def many_calls(store: RunStore, calls: int) -> str:
    """A run of ``calls`` calls of a model, numbered 1 to ``calls``; its id.

    It is written as a recorder writes it.
    """
    run_id = "20261127-000000-many00"
    store.open_run(
        RunInfo(run_id, "many", ("python",), ".", 0.0, None, "running", None, None, None)
    )
    request = {"provider": "openai", "model": "m", "key": "k", "request": {"messages": []}}
    events = [("call", number, None, 0, request) for number in range(1, calls + 1)]
    store.append(run_id, [(1, calls, encode_batch(events))])
    store.end_run(run_id, "ok", None)
    return run_id
