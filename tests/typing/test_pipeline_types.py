"""Static typing tests for ``miniagents.pipeline``: ``pipeline``, ``Pipeline`` and ``ItemResult``.

The ``check_*`` functions are never called: they exist to be type-checked by mypy
(``mypy.ini`` is strict, with ``warn_unused_ignores``). ``assert_type`` pins the exact
inferred types, and each line that must be rejected carries a precise
``# type: ignore[code]``. :func:`test_pipeline_types_pass_mypy` runs mypy on this file.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Iterator
from pathlib import Path

import mypy.api
import pytest
from typing_extensions import assert_type

from miniagents import InteractionContext, ItemResult, MessageTuple, miniagent, pipeline
from miniagents.ext.ray import ItemResult as RayItemResult
from miniagents.pipeline import Pipeline

REPO_ROOT = Path(__file__).resolve().parents[2]


@miniagent
async def plain_agent(ctx: InteractionContext) -> None:
    ctx.reply("Hello")


def check_pipeline_types(texts: list[str], stream: AsyncIterator[str]) -> None:
    run = pipeline(plain_agent, texts, max_concurrency=4, ordered=False, retries=2)
    assert_type(run, Pipeline[str])
    assert_type(iter(run), Iterator[ItemResult[str]])
    assert_type(run.__aiter__(), AsyncGenerator[ItemResult[str], None])
    assert_type(pipeline([plain_agent, plain_agent], stream), Pipeline[str])
    for result in run:
        assert_type(result.index, int)
        assert_type(result.ok, bool)
        assert_type(result.item, str)
        assert_type(result.get(), MessageTuple)
        assert_type(result.error, BaseException | None)
    assert RayItemResult is ItemResult
    pipeline(plain_agent, [1, 2])  # type: ignore[type-var]
    pipeline(plain_agent, texts, timeout="1")  # type: ignore[arg-type]


def test_pipeline_types_pass_mypy(monkeypatch: pytest.MonkeyPatch) -> None:
    """Type-check this file with the project's mypy.ini (strict, warn_unused_ignores)."""
    monkeypatch.chdir(REPO_ROOT)
    this_file = str(Path(__file__).resolve().relative_to(REPO_ROOT))
    stdout, stderr, status = mypy.api.run(["--config-file", str(REPO_ROOT / "mypy.ini"), this_file])
    assert status == 0, f"mypy failed on {this_file}:\n{stdout}{stderr}"
