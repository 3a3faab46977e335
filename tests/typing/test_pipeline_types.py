"""Static typing tests for ``pipeline``, ``Pipeline``, ``ItemResult`` and ``map_agent``.

The ``check_*`` functions are never called: they exist to be type-checked by mypy
(``mypy.ini`` is strict, with ``warn_unused_ignores``). ``assert_type`` pins the exact
inferred types, and each line that must be rejected carries a precise
``# type: ignore[code]``. :func:`test_pipeline_types_pass_mypy` runs mypy on this file.
"""

from __future__ import annotations

import random
from collections.abc import AsyncGenerator, AsyncIterator, Iterator
from typing import assert_type

from reactivex import Observable
from reactivex import operators as ops

from miniagents import (
    InteractionContext,
    ItemResult,
    Message,
    MessageTuple,
    miniagent,
    pipeline,
)
from miniagents.ext.llm import LLMReply
from miniagents.ext.llm.openai import OpenAIMessage, openai_agent
from miniagents.ext.ray import ItemResult as RayItemResult
from miniagents.operators import map_agent
from miniagents.pipeline import Pipeline
from tests.fakes.typecheck import assert_passes_mypy


@miniagent
async def plain_agent(ctx: InteractionContext) -> None:
    ctx.reply("Hello")


def check_pipeline_types(texts: list[str], stream: AsyncIterator[str]) -> None:
    run = pipeline(plain_agent, texts, max_concurrency=4, ordered=False, retries=2)
    assert_type(run, Pipeline[str, Message])
    assert_type(run, Pipeline[str])  # the reply class defaults to Message
    assert_type(iter(run), Iterator[ItemResult[str, Message]])
    assert_type(run.__aiter__(), AsyncGenerator[ItemResult[str, Message], None])
    assert_type(pipeline([plain_agent, plain_agent], stream), Pipeline[str, Message])
    for result in run:
        assert_type(result, ItemResult[str])
        assert_type(result.index, int)
        assert_type(result.ok, bool)
        assert_type(result.item, str)
        assert_type(result.get(), MessageTuple[Message])
        assert_type(result.replies, MessageTuple[Message])
        assert_type(result.error, BaseException | None)
        assert_type(result.attempts, int)
    assert RayItemResult is ItemResult


def check_durable_pipelines_keep_their_types(texts: list[str]) -> None:
    assert_type(pipeline(plain_agent, texts, durable=True), Pipeline[str, Message])
    assert_type(pipeline(plain_agent, texts, durable="nightly"), Pipeline[str, Message])
    llm = pipeline(openai_agent.fork(model="gpt-4o-mini"), texts, durable="nightly")
    assert_type(llm, Pipeline[str, LLMReply[OpenAIMessage]])
    pipeline(plain_agent, texts, durable=1.0)  # type: ignore[arg-type]
    pipeline(plain_agent, texts, durable=None)  # type: ignore[arg-type]


def check_the_reply_class_is_kept(observable: Observable[Message]) -> None:
    llm = pipeline(openai_agent.fork(model="gpt-4o-mini"), ["Hi"], timeout=30.0, progress=False)
    assert_type(llm, Pipeline[str, LLMReply[OpenAIMessage]])
    for result in llm:
        assert_type(result.get(), MessageTuple[LLMReply[OpenAIMessage]])
    chain = pipeline([plain_agent, openai_agent.fork(model="gpt-4o-mini")], observable)
    assert_type(chain, Pipeline[Message, Message])  # a chain: the join of its reply classes


def check_pipeline_errors(texts: list[str]) -> None:
    pipeline(plain_agent, [1, 2])  # type: ignore[type-var]
    pipeline(plain_agent, texts, timeout="1")  # type: ignore[arg-type]
    pipeline(plain_agent, texts, ordered="yes")  # type: ignore[arg-type]
    pipeline(plain_agent, texts, overflow="spill")  # type: ignore[arg-type]
    pipeline("agent", texts)  # type: ignore[arg-type]
    pipeline(plain_agent, texts, jitter=0.5)  # type: ignore[arg-type]
    assert_type(pipeline(plain_agent, texts, jitter=random.Random(7)), Pipeline[str, Message])
    assert_type(pipeline(plain_agent, texts, jitter=False), Pipeline[str, Message])


def check_map_agent_types(texts: Observable[str], messages: Observable[Message]) -> None:
    operator = map_agent(plain_agent, max_concurrency=4, ordered=False, max_in_flight=8)
    results = texts.pipe(map_agent(plain_agent, max_concurrency=4))
    assert_type(results, Observable[ItemResult[str, Message]])
    llm = messages.pipe(map_agent(openai_agent.fork(model="gpt-4o-mini")))
    assert_type(llm, Observable[ItemResult[Message, LLMReply[OpenAIMessage]]])
    assert operator is not None
    # map_agent's docstring example: the replies of each item, typed (a lambda is not)
    replies = texts.pipe(map_agent(plain_agent, max_concurrency=16), ops.map(ItemResult.get))
    assert_type(replies, Observable[MessageTuple[Message]])
    map_agent(plain_agent, max_in_flight="8")  # type: ignore[arg-type]
    map_agent(plain_agent)(Observable[int]())  # type: ignore[type-var]


def test_pipeline_types_pass_mypy() -> None:
    """Type-check this file with the project's mypy.ini (the one run: tests/fakes/typecheck.py)."""
    assert_passes_mypy(__file__)
