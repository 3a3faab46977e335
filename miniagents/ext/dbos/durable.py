"""Durable agents: each interaction a DBOS workflow, each model and tool call a recorded step.

::

    agent = durable(openai_agent.fork(model="gpt-4o-mini", tools=[add]))
    with workflow_id("order-42"):
        reply = agent.inquire("2 + 3?")

    run 1:    llm.0 (recorded) | tool add (recorded) | llm.1 ...  (kill -9)
    run 2:    llm.0 (replayed) | tool add (replayed) | llm.1 (again, recorded) | reply
    reader:   every message and token of the reply, from the first, in order

A run that ended gives its recorded reply again (the same workflow id runs once); a run
that a crash stopped is recovered when its process starts again (its first durable run
launches DBOS, which recovers it): the caller that asks for it by its id reads its reply.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import hashlib
import pickle
import uuid
from collections.abc import Iterator, Mapping, Sequence
from typing import TypeVar, cast

from miniagents.arguments import check_seconds
from miniagents.ext.dbos import _engine
from miniagents.ext.dbos._engine import DEFAULT_DATABASE_URL
from miniagents.ext.dbos._recording import current_run
from miniagents.ext.dbos._versions import fingerprint
from miniagents.ext.dbos.errors import DurableRecordError
from miniagents.ext.dbos.llm_records import SQLRunJournal
from miniagents.ext.dbos.runs import ELSEWHERE_TIMEOUT, _mark_durable
from miniagents.messages import MessageTuple
from miniagents.messages.message import Message
from miniagents.messages.sequence import MessageType
from miniagents.miniagents import InteractionContext
from miniagents.miniagents.agent import MiniAgent
from miniagents.pipeline.durability import DurableItems, set_durable_items

__all__ = ["DEFAULT_DATABASE_URL", "durable", "use_database", "workflow_id"]

AgentT = TypeVar("AgentT", bound="MiniAgent[..., Message]")

_chosen_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "miniagents_durable_workflow_id", default=None
)
_started: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar(
    "miniagents_durable_started", default=None
)
"""Where the durable interactions inquired here note the ids of their runs, if anywhere."""


@contextlib.contextmanager
def workflow_id(value: str) -> Iterator[str]:
    """Give the durable interactions inquired inside the block the workflow id ``value``.

    A durable run is known by its id: inquired again with the same id, it runs once (a
    finished run gives its recorded reply; a run a crash stopped is recovered). Without
    one, each interaction gets a new random id.

    Raises:
        DurableRecordError: if ``value`` is not a non-empty string, or holds ``::approval``
            (what marks the ids of the approvals of runs' calls).
    """
    if not isinstance(value, str) or not value:
        raise DurableRecordError(f"A workflow id must be a non-empty string, got {value!r}.")
    _engine.check_run_id(value)
    token = _chosen_id.set(value)
    try:
        yield value
    finally:
        _chosen_id.reset(token)


def durable(
    agent: AgentT,
    *,
    database_url: str | None = None,
    ids_by_input: bool = False,
    elsewhere_timeout: float | None = ELSEWHERE_TIMEOUT,
) -> AgentT:
    """``agent``, each of its interactions run as a DBOS workflow (a durable run).

    Every call of a model and every tool call inside the run, at any depth (nested agents,
    the tool loop, the retries of a structured answer), is a step recorded once complete.
    After a crash, the run is recovered when the process starts again: recorded calls are
    not made again (their recorded tokens stream into the reply), the rest run.

    Args:
        agent: The agent to make durable (its alias names its runs: keep it stable).
        database_url: Where runs are recorded: a ``sqlite:///path`` file (the default is
            ``miniagents_durable.sqlite`` in the current folder) or a ``postgresql://``
            URL. One database per process.
        ids_by_input: Name each run that ``workflow_id`` does not name by its input (a
            hash of the alias, the input messages and the arguments) instead of a random
            id: the same input runs once. Over a pipeline (``pipeline(durable(agent,
            ids_by_input=True), items)``), each item is a durable run: run again after a
            crash, the pipeline gives the finished items' recorded replies at once and
            recovers the items that were running.
        elsewhere_timeout: The most seconds an interaction waits for the end of its run
            when another process's DBOS executor holds it pending (another server sharing
            the database, maybe dead, asked under the same workflow id); then its reply
            fails with a ``DurableError`` that names the executor and what to do
            (``None``: as long as it takes). The agent's replays (``replay(agent, id)``,
            a web app's follow or resume of a run after a restart) wait as long.

    Raises:
        MissingExtraError: if DBOS is not installed (``pip install "miniagents[dbos]"``).
        DurableConfigurationError: if another agent of that alias is durable already, or
            ``database_url`` cannot hold durable runs (another scheme, an in-memory SQLite).
        ArgumentError: if ``elsewhere_timeout`` is not a number of seconds above 0 (or
            ``None``).
        DurableRecordError: if ``ids_by_input`` is set and the alias holds ``::approval``
            (what marks the ids of the approvals of runs' calls; its runs' ids begin with it).
    """
    if database_url is not None:
        _engine.checked_url(database_url)
    if elsewhere_timeout is not None:
        check_seconds(
            elsewhere_timeout,
            "elsewhere_timeout",
            owner="durable",
            fix="give the seconds to wait for the end of a run of another process, or None",
        )
    if ids_by_input:
        _engine.check_alias_of_ids(agent.alias)
    _engine.register_agent(cast("MiniAgent[..., Message]", agent))
    inner = cast("MiniAgent[..., Message]", agent)

    async def durable_interaction(ctx: InteractionContext, /, **kwargs: object) -> None:
        if current_run.get() is not None:  # inside another durable run: its steps are ours
            ctx.reply(inner.inquire(ctx.messages, **kwargs))
            return
        messages = tuple(await ctx.messages)
        _check_recordable(inner.alias, messages, kwargs)
        engine = await _engine.aengine_for(database_url)
        chosen = _chosen_id.get() or (
            _input_id(inner.alias, messages, kwargs) if ids_by_input else str(uuid.uuid4())
        )
        started = _started.get()
        if started is not None:
            started.append(chosen)
        ctx.reply(
            await engine.areply(
                chosen, inner.alias, messages, kwargs, elsewhere_timeout=elsewhere_timeout
            )
        )

    _mark_durable(durable_interaction, database_url, elsewhere_timeout, inner.alias)
    return type(agent)(  # of the agent's class (a GeminiAgent's durable twin is one)
        durable_interaction,
        alias=agent.alias,
        description=agent.description,
        start_asap=agent.start_asap,
    )


def _input_id(alias: str, messages: tuple[Message, ...], kwargs: Mapping[str, object]) -> str:
    """A workflow id made of the run's input: the same input, the same id."""
    digest = hashlib.sha256(alias.encode())
    for message in messages:
        digest.update(type(message).__qualname__.encode())
        digest.update(message.model_dump_json().encode())
    digest.update(repr(sorted((name, _stable(value)) for name, value in kwargs.items())).encode())
    return f"{alias}:{digest.hexdigest()[:32]}"


class _Shown:
    """A value's stand-in in :func:`_input_id`, shown as ``text``."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


def _stable(value: object) -> object:
    """``value``, shown alike in every process (its repr, unless that changes with the process).

    A set's order follows the process's hash seed: its items are shown sorted. An object
    shown by its address (``object``'s repr) is shown by its pickle. Other values keep
    their repr, so that the ids of the runs made before stay.
    """
    if type(value) is list:
        return [_stable(item) for item in value]
    if type(value) is tuple:
        return tuple(_stable(item) for item in value)
    if type(value) is dict:
        return {key: _stable(item) for key, item in value.items()}
    if isinstance(value, (set, frozenset)):
        if not value:
            return value
        items = "{" + ", ".join(sorted(repr(_stable(item)) for item in value)) + "}"
        return _Shown(items if type(value) is set else f"{type(value).__name__}({items})")
    if type(value).__repr__ is object.__repr__:
        kind = type(value)
        return _Shown(f"<{kind.__module__}.{kind.__qualname__} {pickle.dumps(value).hex()}>")
    return value


def _check_recordable(
    alias: str, messages: tuple[Message, ...], kwargs: Mapping[str, object]
) -> None:
    """Check that the run's inputs can be recorded (pickled), before anything runs.

    Raises:
        DurableRecordError: naming the field or argument that cannot be.
    """
    for number, message in enumerate(messages, 1):
        for name in type(message).model_fields:
            _check_value(
                getattr(message, name),
                f"the field {name!r} of the input message {number} ({type(message).__name__})",
                alias,
            )
        for name, value in (message.model_extra or {}).items():
            _check_value(
                value,
                f"the field {name!r} of the input message {number} ({type(message).__name__})",
                alias,
            )
    for name, value in kwargs.items():
        _check_value(value, f"the argument {name!r}", alias)


def _check_value(value: object, what: str, alias: str) -> None:
    try:
        pickle.dumps(value)
    except Exception as error:
        raise DurableRecordError(
            f"The durable agent {alias} cannot record {what}: its value {value!r:.60} "
            f"cannot be pickled ({type(error).__name__}: {error}). A durable run records "
            "its inputs to recover them: give it values that can be pickled (text, "
            "numbers, lists, dicts, pydantic models), or keep this one out of the run."
        ) from error


def use_database(database_url: str) -> None:
    """Record the durable runs that are not given a database in ``database_url``.

    Those are the runs of durable pipelines (``pipeline(..., durable=True)``) and of the
    durable agents made without a ``database_url``; call it before the first durable run.

    Args:
        database_url: A ``sqlite:///path`` file or a ``postgresql://`` URL.

    Raises:
        DurableConfigurationError: if it is neither.
    """
    _engine.set_default_url(database_url)


async def _chain_of_pipeline(
    ctx: InteractionContext,
    /,
    *,
    chain: tuple[MiniAgent[..., Message], ...],
    agents_version: str,
    item_index: int,
    attempt: int,
) -> None:
    """One item of a durable pipeline: the chain over it (the agent its runs are of)."""
    replies = chain[0].inquire(ctx.messages)
    for agent in chain[1:]:
        replies = agent.inquire(replies)
    ctx.reply(replies)


def _pipeline_items(pipeline_id: str, chain: Sequence[MiniAgent[..., Message]]) -> DurableItems:
    """How a durable pipeline runs its items: one durable run per item and try.

    Ready once DBOS is launched (before any try's timer starts: a launch takes seconds).
    Its runs are of an agent named ``PIPELINE[<pipeline id>]`` that runs the chain; each
    run is named by its input: the item, its position and the try (``ids_by_input``).
    """
    agents = tuple(chain)
    chain_agent: MiniAgent[..., Message] = MiniAgent(
        _chain_of_pipeline,
        alias=f"PIPELINE[{pipeline_id}]",
        description=f"The items of the durable pipeline {pipeline_id!r}.",
        bound={
            "chain": agents,
            "agents_version": "|".join(fingerprint(agent) for agent in agents),
        },
    )
    runs = durable(chain_agent, ids_by_input=True)

    async def run(index: int, attempt: int, item: MessageType) -> MessageTuple[Message]:
        started: list[str] = []
        token = _started.set(started)
        try:
            reply = runs.inquire(item, item_index=index, attempt=attempt)
        finally:
            _started.reset(token)
        try:
            return await reply
        except asyncio.CancelledError:
            # the try was given up (its timeout, or the pipeline's end): its run stops
            # here, unrecorded, as at a crash; a restart runs it again from its steps
            engine = _engine.current_engine()
            for chosen in started:
                if engine is not None:
                    engine.stop(chosen)
            raise

    async def aready() -> None:
        # the database of the runs not given one, as runs' below; the runs recovered at
        # launch run in the pipeline's context (in batch mode, their calls are batched)
        await _engine.aengine_for(None, recover_here=True)

    return DurableItems(run, aready, journal=SQLRunJournal(pipeline_id))


set_durable_items(_pipeline_items)
