"""Static typing tests for ``ray_pipeline``: the reply class kept, as ``pipeline`` keeps it.

The ``check_*`` functions are never called: they exist to be type-checked by mypy
(``mypy.ini`` is strict, with ``warn_unused_ignores``). ``assert_type`` pins the exact
inferred types, and each line that must be rejected carries a precise
``# type: ignore[code]``. :func:`test_ray_pipeline_types_pass_mypy` runs mypy on this file.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator
from typing import Any, assert_type

from ray.data import Dataset

from miniagents import InteractionContext, Message, MessageTuple, MiniAgents, miniagent
from miniagents.ext.llm import LLMReply
from miniagents.ext.llm.openai import OpenAIMessage, openai_agent
from miniagents.ext.ray import ItemResult, RayPipeline, ray_agent, ray_pipeline
from tests.fakes.typecheck import assert_passes_mypy


@miniagent
async def plain_agent(ctx: InteractionContext) -> None:
    ctx.reply("Hello")


def check_the_reply_class_is_kept(dataset: Dataset) -> None:
    llm = openai_agent.fork(model="gpt-4o-mini")
    run = ray_pipeline(llm, ["Hi"], num_cpus=0.5)
    assert_type(run, RayPipeline[str, LLMReply[OpenAIMessage]])
    for result in run:
        assert_type(result, ItemResult[str, LLMReply[OpenAIMessage]])
        assert_type(result.get(), MessageTuple[LLMReply[OpenAIMessage]])
        assert_type(result.replies[0].model, str | None)
    assert_type(ray_pipeline(ray_agent(llm), ["Hi"]), RayPipeline[str, LLMReply[OpenAIMessage]])
    rows = ray_pipeline(llm, dataset, progress=False)
    assert_type(rows, RayPipeline[dict[str, Any], LLMReply[OpenAIMessage]])
    assert_type(ray_pipeline(plain_agent, ["Hi"]), RayPipeline[str, Message])
    assert_type(ray_pipeline(plain_agent, ["Hi"]), RayPipeline[str])  # Message by default
    chain = ray_pipeline([plain_agent, llm], [Message(text="Hi")])
    assert_type(chain, RayPipeline[Message, Message])  # a chain: the join of its reply classes
    for plain in ray_pipeline(plain_agent, ["Hi"]):
        print(plain.get()[0].model)  # type: ignore[attr-defined]


def check_the_options_of_the_local_pipeline() -> None:
    assert_type(ray_pipeline(plain_agent, ["Hi"], timeout=30.0), RayPipeline[str])
    assert_type(ray_pipeline(plain_agent, ["Hi"], timeout=None), RayPipeline[str])
    ray_pipeline(plain_agent, ["Hi"], timeout="30")  # type: ignore[call-overload]
    ray_pipeline(plain_agent, ["Hi"], retries=2)  # type: ignore[call-overload]
    ray_pipeline(plain_agent, ["Hi"], max_concurrency=8)  # type: ignore[call-overload]
    ray_pipeline(plain_agent, ["Hi"], fail_fast=True)  # type: ignore[call-overload]


async def check_an_async_for_left_early_with_aclosing() -> None:
    """The documented idiom for leaving an ``async for`` early, as with ``pipeline``."""
    run = ray_pipeline(openai_agent.fork(model="gpt-4o-mini"), ["a", "b"])
    results = aiter(run)
    assert_type(results, AsyncGenerator[ItemResult[str, LLMReply[OpenAIMessage]], None])
    async with MiniAgents(), contextlib.aclosing(results) as closing:
        async for result in closing:
            assert_type(result.get()[0].model, str | None)
            break


def test_ray_pipeline_types_pass_mypy() -> None:
    """Type-check this file with the project's mypy.ini (the one run: tests/fakes/typecheck.py)."""
    assert_passes_mypy(__file__)
