"""``ray_pipeline``: an agent (or a chain of agents) over many items, on a Ray cluster.

Each item is one interaction: the chain's first agent gets the item as its input, each
next agent the replies of the one before, in a ``MiniAgents`` context of its own on a
worker; the item's result is the last agent's replies, complete. Items go to Ray in
batches (``batch_size``, run concurrently on their worker); at most ``max_in_flight``
items are on their way at any time (sent and not yet handed to you), so the driver's
memory does not grow with the number of items::

    items:     i0 i1 i2 i3 i4 ...            (read lazily, as room frees up)
    in flight: [i0 i1 i2 i3]                 (max_in_flight = 4)
    results:   r0 r1 r2 ...                  (ordered=True: the input's order)

A batch whose worker died is sent again, up to ``max_retries`` times; an item whose agent
failed gives a result holding the error, and the other items go on.

When tracing is on (:mod:`miniagents.ext.otel`), each batch carries the trace of the code
that iterates the pipeline (an agent's span, say), and the items' spans in the worker
continue that trace under it (if the worker process is instrumented too), as with
``ray_agent``.

Budgets (:mod:`miniagents.ext.llm.usage`) do not cross to the pipeline's workers: a batch
has no live link back to the caller while it runs. Iterating a pipeline where a budget
applies (``charged_to``, ``with_budget``, or a ``Budget`` bound in one of its agents)
raises :class:`RayPipelineLinkError` instead of letting the budget silently not hold. A
context's ``usage_totals`` does not count the items' calls either: each item counts in its
own context on the worker. For budgets that hold, run the agents with
``ray_agent`` in ``miniagents.pipeline.pipeline``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import queue
from collections.abc import AsyncGenerator, Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Generic, overload

from typing_extensions import TypeVar, Unpack

from miniagents.arguments import a_class, check_count, check_flag, check_seconds
from miniagents.ext.ray._import import require_ray
from miniagents.ext.ray._pipeline_run import ItemResult, PipelineRun, Settings, is_dataset
from miniagents.ext.ray._wire import check_sendable_agent
from miniagents.ext.ray._worker import run_items
from miniagents.ext.ray.agent import RayOptions, function_hint, own_options
from miniagents.ext.ray.errors import (
    RayAgentArgumentError,
    RayPipelineArgumentError,
    RayPipelineLinkError,
    RayPipelineRerunError,
)
from miniagents.messages import Message
from miniagents.messages.sequence import MessageType
from miniagents.miniagents import MiniAgent
from miniagents.miniagents.lowlevel import outgoing_carrier, outgoing_links, sending
from miniagents.pipeline.errors import PipelineArgumentError
from miniagents.pipeline.local import agent_chain, refuse_blocking_a_context
from miniagents.pipeline.progress import check_progress_options

if TYPE_CHECKING:
    from ray.data import Dataset

__all__ = ["ItemResult", "RayPipeline", "ray_pipeline"]  # ItemResult: re-exported

T = TypeVar("T", bound=MessageType)
ReplyT = TypeVar("ReplyT", bound=Message, default=Message)


class RayPipeline(Generic[T, ReplyT]):
    """The results of :func:`ray_pipeline`: iterate it with ``for`` or ``async for``, once.

    ``RayPipeline[T]`` is ``RayPipeline[T, Message]``: the second parameter is the class of
    the last agent's reply messages, as for the local ``Pipeline``.

    Nothing runs before the iteration starts; leaving the loop early cancels the items
    still running and closes the items' iterator (a generator's clean-up runs), as the
    local pipeline does (an ``async for`` loop left early stops when the async generator
    is closed, e.g. with ``contextlib.aclosing``). The pipeline lets go of its items as
    its run starts: only the run holds them.
    """

    def __init__(
        self,
        agents: Sequence[MiniAgent[...]],
        items: Iterable[T],
        settings: Settings,
        options: dict[str, Any],
    ) -> None:
        """Prepare the run (:func:`ray_pipeline` makes pipelines)."""
        import ray

        chain = tuple(agents)
        for agent in chain:
            check_sendable_agent(agent.alias, agent)
        self._chain = chain
        self._items = items
        self._settings = settings
        self._used = False

        cancel_timeout, timeout = settings.cancel_timeout, settings.timeout

        def pipeline_items(
            batch: list[bytes], carrier: tuple[tuple[str, str], ...] = ()
        ) -> list[tuple[bool, bytes]]:
            return run_items(chain, batch, carrier, cancel_timeout, timeout)

        pipeline_items.__name__ = pipeline_items.__qualname__ = "pipeline_items"
        options.setdefault("name", f"miniagents:{chain[-1].alias}")
        remote: Any = ray.remote  # Ray's overloads type no option given as **options
        self._remote: Any = remote(max_retries=0, **options)(pipeline_items)

    def _run(
        self, ended: Callable[[Any, concurrent.futures.Future[Any]], None]
    ) -> PipelineRun[T, ReplyT]:
        if self._used:
            raise RayPipelineRerunError(
                "A RayPipeline runs once; call ray_pipeline(...) again to rerun."
            )
        self._used = True
        from ray import cloudpickle

        with sending() as sent:  # as Ray will pickle them: a Budget bound in an agent notes itself
            cloudpickle.dumps(self._chain)  # type: ignore[no-untyped-call]
        if sent or outgoing_links():
            raise RayPipelineLinkError(
                "ray_pipeline() was run where a budget of miniagents.ext.llm applies "
                "(charged_to, with_budget, a Budget bound in one of its agents, or a Budget "
                "in the arguments of the agent that runs it): its items run on the workers "
                "in batches, with no live link back here, so the budget would not hold "
                "there. Run the pipeline outside the budget's scope, or run the items' "
                "agents with ray_agent (its calls are charged to the caller's budgets) in "
                "miniagents.pipeline.pipeline(...)."
            )
        carrier = tuple(outgoing_carrier().items())  # the workers' spans continue this trace
        items, self._items = self._items, ()  # the run's alone: let go of when it ends
        run: PipelineRun[T, ReplyT] = PipelineRun(
            self._remote, items, self._settings, ended, carrier
        )
        return run

    def __iter__(self) -> Iterator[ItemResult[T, ReplyT]]:
        """Run the pipeline, giving each item's result (blocking between results).

        Each batch's end is put in a queue as it comes (the run watches each batch once, as
        it is sent), so the work per result does not grow with the batches in flight.

        Raises:
            LoopAlreadyRunningError: inside an active ``MiniAgents`` context, in async code
                (its event loop would stop until the run ended: ``async for`` is the way).
        """
        refuse_blocking_a_context("ray_pipeline")
        ended: queue.SimpleQueue[tuple[Any, concurrent.futures.Future[Any]]] = queue.SimpleQueue()
        run = self._run(lambda ref, future: ended.put((ref, future)))
        try:
            while True:
                result = run.next_result()
                if result is not None:
                    yield result
                elif not run.pending:
                    run.raise_read_error()
                    return
                else:
                    run.finish(*ended.get())
        finally:
            run.close()

    async def __aiter__(self) -> AsyncGenerator[ItemResult[T, ReplyT], None]:
        """Run the pipeline, giving each item's result (awaiting between results).

        Each batch's end is put in a queue that the loop awaits, as :meth:`__iter__`'s loop
        blocks on its own, so the work per result does not grow with the batches in flight.
        """
        loop = asyncio.get_running_loop()
        ended: asyncio.Queue[tuple[Any, concurrent.futures.Future[Any]]] = asyncio.Queue()

        def put(ref: Any, future: concurrent.futures.Future[Any]) -> None:
            # In Ray's thread. A batch cancelled as the run closed may end after the loop has
            # closed, even between a look at the loop and the call: its end is nobody's then.
            with contextlib.suppress(RuntimeError):  # ("Event loop is closed")
                loop.call_soon_threadsafe(ended.put_nowait, (ref, future))

        run = self._run(put)
        try:
            while True:
                result = run.next_result()
                if result is not None:
                    yield result
                    continue
                if not run.pending:
                    run.raise_read_error()
                    return
                run.finish(*await ended.get())
        finally:
            await run.aclose()  # (Ray's cancel waited for in a thread: the loop goes on)


_ON_RAY = (
    " For every option of pipeline(), run pipeline(ray_agent(agent), items, ...) instead: "
    "each item's interaction then runs on a Ray worker, and the pipeline here."
)

_LOCAL_ONLY = {
    "retries": "it runs an item again only when its worker died (max_retries=, 3 by "
    "default), not when its agent failed." + _ON_RAY,
    "retry_on": "it retries no errors of the agents, only items whose worker died "
    "(max_retries=)." + _ON_RAY,
    "backoff": "it retries no errors of the agents, only items whose worker died "
    "(max_retries=), at once." + _ON_RAY,
    "max_backoff": "it retries no errors of the agents, only items whose worker died "
    "(max_retries=), at once." + _ON_RAY,
    "jitter": "it retries no errors of the agents, only items whose worker died "
    "(max_retries=), at once." + _ON_RAY,
    "max_concurrency": "how many items run at once is bounded by max_in_flight= and by the "
    "cluster's resources (num_cpus= per batch of batch_size= items)." + _ON_RAY,
    "fail_fast": "a failed item gives a result holding its error; to stop at the first "
    "one, call result.get() in the loop, which raises it (leaving the loop cancels the "
    "items still running)." + _ON_RAY,
    "overflow": "its items are an iterable or a ray.data.Dataset, never an observable "
    "that could outrun it." + _ON_RAY,
    "durable": "durable runs (miniagents.ext.dbos) are recorded by the process that runs "
    "them: use pipeline(agents, items, durable=...).",
}
"""The options of ``pipeline()`` that ``ray_pipeline`` does not take, with what to do."""


@overload
def ray_pipeline(
    agents: MiniAgent[..., ReplyT] | Sequence[MiniAgent[..., ReplyT]],
    items: Dataset,
    /,
    *,
    max_in_flight: int = ...,
    batch_size: int = ...,
    timeout: float | None = ...,
    ordered: bool = ...,
    progress: bool | None = ...,
    description: str | None = ...,
    total: int | None = ...,
    **options: Unpack[RayOptions],
) -> RayPipeline[dict[str, Any], ReplyT]: ...


@overload
def ray_pipeline(
    agents: MiniAgent[..., ReplyT] | Sequence[MiniAgent[..., ReplyT]],
    items: Iterable[T],
    /,
    *,
    max_in_flight: int = ...,
    batch_size: int = ...,
    timeout: float | None = ...,
    ordered: bool = ...,
    progress: bool | None = ...,
    description: str | None = ...,
    total: int | None = ...,
    **options: Unpack[RayOptions],
) -> RayPipeline[T, ReplyT]: ...


def ray_pipeline(
    agents: MiniAgent[..., ReplyT] | Sequence[MiniAgent[..., ReplyT]],
    items: Iterable[Any] | Dataset,
    /,
    *,
    max_in_flight: int = 64,
    batch_size: int = 1,
    timeout: float | None = None,
    ordered: bool = True,
    progress: bool | None = None,
    description: str | None = None,
    total: int | None = None,
    **options: Unpack[RayOptions],
) -> RayPipeline[Any, ReplyT]:
    """Run an agent, or a chain of agents, over every item, on Ray.

    Example:
        >>> for result in ray_pipeline(summarizer, documents, max_in_flight=32):
        ...     print(result.index, result.get())

    Args:
        agents: The agent, or the agents of a chain (each gets the replies of the one
            before; the first gets the item).
        items: The items: any iterable of ``MessageType`` values (read lazily), or a
            ``ray.data.Dataset`` (each row, a dict, is one item: a message with the row's
            columns as its fields). An item that cannot be one (an ``int``, ``bytes``)
            ends the run with a ``MessageTypeError`` in its place (see below).
        max_in_flight: At most this many items are on their way at once (sent, and
            their results not yet handed out); at least ``batch_size``.
        batch_size: How many items go to a worker together (they run there concurrently).
        timeout: The longest an item may take on its worker, in seconds (from the start of
            its batch there): it is then cancelled, and its result holds a
            :class:`~miniagents.pipeline.errors.PipelineTimeoutError`; ``None`` for no limit.
        ordered: Give the results in the input's order (``True``) or as they complete.
        progress: Show a progress bar (tqdm, on stderr): ``None`` shows it on a terminal.
        description: The text before the progress bar (default: the last agent's alias).
        total: The number of items, for the progress bar (default: ``len(items)`` if it
            has one).
        **options: Ray's task options (:class:`RayOptions`); ``max_retries`` (default 3) is
            how often a batch whose worker died is sent again; ``cancel_timeout`` (10 s by
            default) how long a cancelled batch's task waits for its agents to end, and
            how long leaving the loop early waits for Ray's cancel of the batches still
            running (then either fails with ``RayCancelTimeoutError``).

    When tracing is on, the items' spans in the workers are children of the span current
    where the iteration starts.

    Raises:
        MissingExtraError: if Ray is not installed (with the install hint; an ``ImportError``).
        RayPipelineArgumentError: for an option of ``pipeline()`` that it does not take
            (``retries``, ``max_concurrency``, ``fail_fast``...: the message says what to
            use instead), no agents (or something that is not an agent), items that are
            neither iterable nor a ``Dataset``, a ``batch_size`` or ``max_in_flight`` that
            is not a positive int, a ``max_in_flight`` below ``batch_size``, an ``ordered``
            that is not a bool, a ``progress`` that is neither a bool nor ``None``, a
            ``total`` that is not a whole number >= 0, a ``description`` that is not a
            ``str``, a ``timeout`` that is not positive, a ``max_retries`` that is not an
            int >= 0 or a ``cancel_timeout`` that is not a positive number (a
            ``ValueError``).
        MessageSerializationError: for an agent that cannot be pickled to reach the
            workers (e.g. a durable agent of ``miniagents.ext.dbos``).

    Iterating the pipeline raises :class:`RayPipelineLinkError` where a budget of
    :mod:`miniagents.ext.llm` applies (``charged_to``, ``with_budget``, a ``Budget`` bound in
    one of its agents): it could not hold
    on the workers (see the module); and a ``MessageTypeError`` for an item that cannot be
    an agent's input at all (an ``int``, say: its index and type named), in its place, as
    ``pipeline()`` does: after the results of every item before it (those on their way
    awaited), and no item after it is read or sent.
    """
    require_ray()
    try:  # the local pipeline's check of the agents
        chain = agent_chain(agents, "ray_pipeline")
    except PipelineArgumentError as failure:
        told = str(failure)  # (it names @miniagent for a function given: said once)
        hint = "" if "@miniagent" in told else function_hint(agents)
        raise RayPipelineArgumentError(f"{told}{hint}") from None
    owner, error = "ray_pipeline()", RayPipelineArgumentError
    fix = "Pass e.g. max_in_flight=64 (the default), at least batch_size."  # (was: no fix)
    check_count(max_in_flight, "max_in_flight", owner=owner, fix=fix, error=error)
    if timeout is not None:
        fix = "Or pass None for no timeout."
        check_seconds(timeout, "timeout", forever=True, owner=owner, fix=fix, error=error)
    fix = "Pass e.g. batch_size=8 (items sent to a worker at once), or leave it out for 1."
    check_count(batch_size, "batch_size", owner=owner, fix=fix, error=error)
    fix = "Pass True or False, or leave it out for True (the items' order)."
    check_flag(ordered, "ordered", owner=owner, fix=fix, error=error)
    check_progress_options(progress, total, description, owner=owner, error=error)
    if max_in_flight < batch_size:
        raise RayPipelineArgumentError(
            f"ray_pipeline() needs batch_size <= max_in_flight (a batch is sent whole); got "
            f"batch_size={batch_size} and max_in_flight={max_in_flight}: lower batch_size or "
            "raise max_in_flight."
        )
    given: object = items  # (typed so; code mypy does not check may pass anything)
    if not isinstance(given, Iterable) and not is_dataset(given):
        raise RayPipelineArgumentError(
            "ray_pipeline() needs its items as an iterable (e.g. a list) or a ray.data.Dataset; "
            f"got {a_class(type(given))} ({given!r:.80}). For one item, pass [item]."
        )
    if isinstance(given, str):  # (an Iterable[str]: each character would be an item)
        raise RayPipelineArgumentError(
            f"ray_pipeline() needs its items as an iterable of items, not the string "
            f"{given[:40]!r} (each of its characters would be an item). For one item, pass "
            "[item]."
        )
    ray_options: dict[str, Any] = dict(options)
    local_only = sorted(ray_options.keys() & _LOCAL_ONLY.keys())
    if local_only:  # (the first one, by name)
        name = local_only[0]
        raise RayPipelineArgumentError(
            f"ray_pipeline() has no {name}= option (pipeline() has): {_LOCAL_ONLY[name]}"
        )
    try:
        retries, cancel_timeout = own_options(ray_options, "ray_pipeline")
    except RayAgentArgumentError as error:
        raise RayPipelineArgumentError(str(error)) from None
    settings = Settings(
        max_in_flight=max_in_flight,
        batch_size=batch_size,
        ordered=ordered,
        retries=retries,
        show_progress=progress,
        description=chain[-1].alias if description is None else description,
        total=total,
        cancel_timeout=cancel_timeout,
        timeout=timeout,
    )
    return RayPipeline(chain, items, settings, ray_options)
