"""Static typing tests for ``miniagents.ext.studio``: recording, reading, forking, the app.

The ``check_*`` functions are never called: they exist to be type-checked by mypy
(``mypy.ini`` is strict, with ``warn_unused_ignores``). ``assert_type`` pins the exact
inferred types, and each line that must be rejected carries a precise
``# type: ignore[code]``. :func:`test_studio_types_pass_mypy` runs mypy on this file.
"""

from __future__ import annotations

from pathlib import Path
from typing import assert_type

from starlette.applications import Starlette

from miniagents.ext.studio import (
    Fork,
    ForkResult,
    NodeDiff,
    Recorder,
    RunInfo,
    RunStore,
    RunTree,
    afork,
    diff_runs,
    plan_fork,
    record_runs,
)
from miniagents.ext.studio.app import studio_app
from miniagents.ext.studio.events import RunEvent
from miniagents.ext.studio.tree import CallRecord, NodeRecord
from tests.fakes.typecheck import assert_passes_mypy


def check_recording() -> None:
    assert_type(record_runs(), Recorder)
    assert_type(record_runs("runs.sqlite", name="nightly"), Recorder)
    assert_type(record_runs(RunStore(Path("runs.sqlite"))), Recorder)
    with Recorder("runs.sqlite", name="part", command=(), flush_interval=0.1) as recorder:
        assert_type(recorder, Recorder)
        assert_type(recorder.run_id, str)
        assert_type(recorder.store, RunStore)
    assert_type(Recorder().start(), Recorder)
    assert_type(recorder.close(KeyError("k")), None)
    record_runs(name=3)  # type: ignore[arg-type]
    Recorder(flush_interval="soon")  # type: ignore[arg-type]


def check_reading(store: RunStore) -> None:
    assert_type(store.runs(), list[RunInfo])
    assert_type(store.run("last"), RunInfo)
    assert_type(store.events("r1", after=3), list[RunEvent])
    tree = RunTree.of(store, "last")
    assert_type(tree, RunTree)
    assert_type(tree.roots, list[NodeRecord])
    assert_type(tree.calls[1], CallRecord)
    assert_type(tree.slowest_path(), list[NodeRecord])
    assert_type(tree.call_with("Paris"), CallRecord)
    assert_type(tree.roots[0].cost_usd(), float)
    assert_type(tree.roots[0].tokens(), tuple[int, int])
    assert_type(diff_runs(tree, tree), list[NodeDiff])
    store.run(3)  # type: ignore[arg-type]


async def check_forking(store: RunStore) -> None:
    fork = plan_fork(store, "last", 3, reply="Paris has 3 million people.")
    assert_type(fork, Fork)
    assert_type(await afork(store, fork), ForkResult)
    assert_type(await afork(store, fork, environment={"KEY": "x"}, timeout=60), ForkResult)
    plan_fork(store, "last", "3", reply="x")  # type: ignore[arg-type]
    plan_fork(store, "last", 3, reply=3)  # type: ignore[arg-type]


def check_the_app(store: RunStore) -> None:
    assert_type(studio_app(store, token="t"), Starlette)
    assert_type(studio_app("runs.sqlite", token="t", allowed_hosts=["studio.internal"]), Starlette)
    studio_app(store)  # type: ignore[call-arg]
    studio_app(store, token="t", max_forks="2")  # type: ignore[arg-type]


def test_studio_types_pass_mypy() -> None:
    """Type-check this file with the project's mypy.ini (the one run: tests/fakes/typecheck.py)."""
    assert_passes_mypy(__file__)
