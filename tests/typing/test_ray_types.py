"""Static typing tests for ``miniagents.ext.ray``: ``ray_agent`` and ``ray_pipeline``.

The ``check_*`` functions are never called: they exist to be type-checked by mypy
(``mypy.ini`` is strict, with ``warn_unused_ignores``). ``assert_type`` pins the exact
inferred types, and each line that must be rejected carries a precise
``# type: ignore[code]``. :func:`test_ray_types_pass_mypy` runs mypy on this file.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Iterator, Mapping
from typing import Any, TypeAlias, assert_type

from mypy_extensions import Arg, DefaultArg, KwArg
from ray.data import Dataset

from miniagents import InteractionContext, Message, MessageSequencePromise, MessageTuple, miniagent
from miniagents.ext.llm import LLMReply
from miniagents.ext.llm.openai import OpenAIMessage, openai_agent
from miniagents.ext.ray import ItemResult, RayPipeline, ray_agent, ray_pipeline
from miniagents.miniagents import MiniAgent
from tests.fakes.typecheck import assert_passes_mypy

NameCountAgent: TypeAlias = "MiniAgent[[Arg(str, 'name'), DefaultArg(int, 'count')]]"
_EXTENDED_CALLABLE_SYNTAX = (Arg, DefaultArg)


@miniagent
async def named_agent(ctx: InteractionContext, name: str, count: int = 1) -> None:
    ctx.reply(name * count)


@miniagent
async def plain_agent(ctx: InteractionContext) -> None:
    ctx.reply("Hello")


@miniagent
async def loose_agent(ctx: InteractionContext, /, **kwargs: Any) -> None:
    ctx.reply(str(kwargs))


def check_ray_agent_keeps_the_agent_type() -> None:
    assert_type(ray_agent(named_agent), NameCountAgent)
    assert_type(ray_agent(named_agent, num_cpus=0.5, max_retries=1), NameCountAgent)
    assert_type(ray_agent(plain_agent, resources={"llm": 1.0}), MiniAgent[[]])
    assert_type(ray_agent(named_agent.fork(count=2)), NameCountAgent)
    assert_type(ray_agent(loose_agent), MiniAgent[[KwArg(Any)]])
    gradual_agent: MiniAgent[...] = loose_agent  # the gradual form that loops and contexts take
    assert_type(ray_agent(gradual_agent), MiniAgent[...])
    any_agent: MiniAgent[Any] = loose_agent  # as mypy types some agents with Any parameters
    assert_type(ray_agent(any_agent), MiniAgent[Any])  # kept as it is, not made Never


async def check_ray_agent_keeps_the_reply_type() -> None:
    """A remote LLM agent's replies are typed as the local agent's: ``.model`` type-checks."""
    llm = openai_agent.fork(model="m")
    remote = ray_agent(llm, num_cpus=0.5)
    kept: MiniAgent[..., LLMReply[OpenAIMessage]] = remote
    assert_type(kept, MiniAgent[..., LLMReply[OpenAIMessage]])
    replies = await remote.inquire("hi")
    assert_type(replies, MessageTuple[LLMReply[OpenAIMessage]])
    assert_type(replies[0].model, str | None)
    print((await ray_agent(named_agent).inquire("hi", name="x"))[0].model)  # type: ignore[attr-defined]


async def check_ray_agent_inquire() -> None:
    remote = ray_agent(named_agent, num_cpus=0.5)
    assert_type(remote.inquire("hi", name="x"), MessageSequencePromise)
    assert_type(await remote.inquire("hi", name="x", count=2), MessageTuple)
    remote.inquire("hi", name=1)  # type: ignore[arg-type]
    remote.inquire("hi", nam="x")  # type: ignore[call-arg]


def check_ray_agent_options() -> None:
    ray_agent(named_agent, num_cpu=1)  # type: ignore[call-arg]
    ray_agent(named_agent, num_cpus="one")  # type: ignore[arg-type]
    ray_agent(named_agent, max_retries=1.5)  # type: ignore[arg-type]
    assert_type(ray_agent(named_agent, cancel_timeout=2.5), NameCountAgent)
    ray_agent(named_agent, cancel_timeout="10 s")  # type: ignore[arg-type]
    ray_agent(named_agent.inquire)  # type: ignore[type-var]


def check_ray_agent_dict_options(
    runtime_env: dict[str, list[str]],
    env_vars: dict[str, dict[str, str]],
    int_resources: dict[str, int],
    float_resources: dict[str, float],
    frozen_resources: Mapping[str, float],
    text_resources: dict[str, str],
) -> None:
    """``runtime_env`` and ``resources`` take the dicts users build (a dict is invariant)."""
    assert_type(ray_agent(named_agent, runtime_env=runtime_env), NameCountAgent)
    assert_type(ray_agent(named_agent, runtime_env=env_vars), NameCountAgent)
    assert_type(ray_agent(named_agent, resources=int_resources), NameCountAgent)
    assert_type(ray_agent(named_agent, resources=float_resources), NameCountAgent)
    assert_type(ray_agent(named_agent, resources={"GPU_SLOT": 1}), NameCountAgent)
    assert_type(ray_pipeline(plain_agent, ["a"], resources=int_resources), RayPipeline[str])
    assert_type(ray_pipeline(plain_agent, ["a"], runtime_env=runtime_env), RayPipeline[str])
    # Ray takes a dict only (TypeError for another mapping), and numbers of a resource.
    ray_agent(named_agent, resources=frozen_resources)  # type: ignore[arg-type]
    ray_agent(named_agent, resources=text_resources)  # type: ignore[arg-type]
    ray_agent(named_agent, runtime_env=["requests"])  # type: ignore[arg-type]


def check_ray_pipeline_types(dataset: Dataset) -> None:
    texts = ray_pipeline(plain_agent, ["a", "b"], max_in_flight=8, num_cpus=0.5)
    assert_type(texts, RayPipeline[str])
    for result in texts:
        assert_type(result, ItemResult[str])
        assert_type(result.item, str)
        assert_type(result.replies, MessageTuple)
        assert_type(result.get(), MessageTuple)
        assert_type(result.error, BaseException | None)
        assert_type(result.ok, bool)
    messages = ray_pipeline([named_agent.fork(name="x"), plain_agent], [Message(text="a")])
    assert_type(messages, RayPipeline[Message])
    rows = ray_pipeline(plain_agent, dataset, ordered=False, progress=False)
    assert_type(rows, RayPipeline[dict[str, Any]])
    assert_type(iter(rows), Iterator[ItemResult[dict[str, Any]]])
    assert_type(aiter(rows), AsyncGenerator[ItemResult[dict[str, Any]], None])


def check_ray_pipeline_errors() -> None:
    ray_pipeline(plain_agent, [42])  # type: ignore[type-var]
    ray_pipeline(plain_agent, ["a"], max_in_flight="8")  # type: ignore[call-overload]
    ray_pipeline(plain_agent, ["a"], num_cpu=1)  # type: ignore[call-overload]
    ray_pipeline("agent", ["a"])  # type: ignore[arg-type]


def test_ray_types_pass_mypy() -> None:
    """Type-check this file with the project's mypy.ini (the one run: tests/fakes/typecheck.py)."""
    assert_passes_mypy(__file__)
