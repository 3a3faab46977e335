"""Running a dataset against an agent: ``aevaluate`` (and ``evaluate``, its blocking twin).

Each run of a case is an item of a :func:`~miniagents.pipeline.pipeline`: the cases run
concurrently (``max_concurrency``), a failed one is retried (``retries``, ``retry_on``,
``backoff``), each try may have a ``timeout``, the progress bar shows the cases done and
what the model calls cost so far, and a ``budget`` holds for the whole run (a
``case_budget`` for each case). In each item the case's agent is inquired, its replies
read to the last token (noting the first), its reply tree recorded
(:mod:`miniagents.evals.tree`), and then the evaluators score it::

    dataset:   france  peru  chile ...         (x repetitions)
    pipeline:  [case try: inquire -> read replies (first token, last token) -> evaluators]
    report:    CaseResult per run, in the dataset's order -> EvalReport

A try is a coroutine in the item's own task (the pipeline's item runner,
:class:`~miniagents.pipeline.item_runner.ItemRunner`), around the agent's interaction: an
eval adds no interaction, task or stream of its own to a case, only the recording, the
reading of the first token, the case's meter and the scores (``tests/benchmarks/evals.py``
measures what they cost).

The evaluators run after the agent has replied, outside the timeout and the retries of its
try (an evaluator's own error is its score, never a retry of the agent), outside the
case's tree and its cost (a judge's calls are counted in ``evaluation_usage``), and
inside the run's budget.

**Later options.** The call cache and the batch mode that pipelines are to gain (replayed
model calls; the providers' batch APIs) will be keyword arguments of ``aevaluate`` passed
on to the pipeline as they are; nothing else changes (the recorder sees a replayed call as
any other; in batch mode a case's times measure the batch's turnaround).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import functools
import itertools
import time
from collections.abc import Callable, Coroutine, Iterable, Mapping, Sequence
from dataclasses import KW_ONLY, dataclass
from typing import TYPE_CHECKING, Generic, ParamSpec

from typing_extensions import TypeVar

from miniagents.arguments import check_count, check_flag, check_seconds, check_text
from miniagents.evals._recorder import CaseRecording, current_step, recording
from miniagents.evals._tracing import (
    EvalTracing,
    StartedSpan,
    case_attributes,
    evaluator_attributes,
)
from miniagents.evals.case import Case, CaseRun, Evaluator, Score
from miniagents.evals.dataset import Dataset
from miniagents.evals.errors import (
    CaseTimeoutError,
    EvalArgumentError,
    EvaluatorDefinitionError,
    EvaluatorTimeoutError,
)
from miniagents.evals.matching import expected_text
from miniagents.evals.report import CaseResult, EvalReport
from miniagents.evals.tree import ReplyTree
from miniagents.ext.llm.usage import Budget, UsageTotals, charged_to
from miniagents.ext.tools.approval import ToolApprovalRequest
from miniagents.ext.tools.messages import ToolCallMessage, ToolResultMessage
from miniagents.messages import Message, MessageTuple
from miniagents.messages.sequence import MessageSequencePromise, MessageType
from miniagents.miniagents import MiniAgent, MiniAgents
from miniagents.miniagents.errors import NoActiveContextError
from miniagents.pipeline import ItemResult
from miniagents.pipeline.errors import PipelineArgumentError
from miniagents.pipeline.item_runner import ItemRunner
from miniagents.pipeline.local import Pipeline, PipelineSettings, pipeline_settings
from miniagents.promising.lowlevel import core_of, keeps_monotonic_time

if TYPE_CHECKING:
    from opentelemetry.trace import TracerProvider

__all__ = ["aevaluate", "evaluate", "reply_text"]

InputT = TypeVar("InputT", bound=MessageType)
ExpectedT = TypeVar("ExpectedT")
P = ParamSpec("P")
R = TypeVar("R")


_NOT_TEXT = (ToolCallMessage, ToolResultMessage, ToolApprovalRequest)
"""The messages of an LLM agent's tool loop: not the text of its reply."""


def reply_text(replies: MessageTuple[Message]) -> str:
    """The text of the replies as the user reads it (the default ``output`` of a run).

    The texts of the messages joined by blank lines (as ``str(replies)``), without the
    tool calls, tool results and approval requests of an LLM agent's tool loop.
    """
    return "\n\n".join(str(message) for message in replies if not isinstance(message, _NOT_TEXT))


async def aevaluate(
    agent: MiniAgent[..., Message],
    dataset: Dataset[InputT, ExpectedT] | Sequence[Case[InputT, ExpectedT]],
    evaluators: Sequence[Evaluator[InputT, ExpectedT]] = (),
    *,
    name: str | None = None,
    repetitions: int = 1,
    max_concurrency: int = 16,
    retries: int = 0,
    retry_on: tuple[type[BaseException], ...] = (ConnectionError, TimeoutError),
    backoff: float = 0.5,
    timeout: float | None = None,
    evaluator_timeout: float | None = None,
    budget: Budget | None = None,
    case_budget: Callable[[], Budget] | None = None,
    progress: bool | None = None,
    keep_trees: bool = False,
    output: Callable[[MessageTuple[Message]], str] = reply_text,
    tracer_provider: TracerProvider | None = None,
    trace: bool = False,
    metadata: Mapping[str, object] | None = None,
) -> EvalReport:
    """Run every case of ``dataset`` against ``agent``, score each run, and report.

    Runs in the current ``MiniAgents`` context, or in one of its own if there is none.

    Args:
        agent: The agent under evaluation (any agent: a multi-agent system's entry point).
        dataset: The cases (a :class:`~miniagents.evals.dataset.Dataset`, or a list of
            cases).
        evaluators: Evaluators of every case, besides the dataset's and each case's own.
        name: The run's name in the report (default: the agent's alias).
        repetitions: How many times each case runs (for a noisy agent: the comparison
            of two runs then has a confidence interval per case).
        max_concurrency: At most this many case runs at once.
        retries: How many more times a case whose agent failed with one of ``retry_on``
            is tried.
        retry_on: The errors worth retrying (a ``CaseTimeoutError`` is a
            ``TimeoutError``).
        backoff: The ceiling of the wait before the first retry, in seconds (it doubles at
            each; each wait is drawn at random below it, as in ``pipeline``).
        timeout: The longest a try of a case may take, from the inquiry to the last token,
            in seconds (a ``CaseTimeoutError`` after it); ``None``: no limit. The
            evaluators are not timed by it.
        evaluator_timeout: The longest an evaluator's ``ascore`` may take on a run, in
            seconds: past it, it is cancelled and its score is an
            ``EvaluatorTimeoutError`` (as an evaluator's own error is), and the other
            evaluators and cases go on; ``None``: no limit. (A synchronous ``score``
            cannot be cut short.)
        budget: A budget for the whole run (the agent's calls and the judges'): once it
            is used up, the calls it refuses fail their cases (``BudgetExceededError``).
        case_budget: Makes a new budget for each try of a case (e.g. ``lambda:
            Budget(max_cost_usd=0.05)``): the case's calls are charged to it, and refused
            past its limits.
        progress: Show a progress bar (tqdm, on stderr); ``None``: on a terminal.
        keep_trees: Keep each run's reply tree in the report (and its JSON); the
            evaluators see the trees either way.
        output: The text evaluators compare (``run.output``) from the replies (default:
            :func:`reply_text`). An error it raises fails the case, which keeps its time,
            cost and tree as any failed case does.
        tracer_provider: Make OpenTelemetry spans of the run, its cases and evaluators
            there (see :mod:`miniagents.evals._tracing`).
        trace: Make them with OpenTelemetry's global tracer provider.
        metadata: Anything to say about the run (the model, the prompt's version, ...),
            kept in the report.

    Raises:
        EvalArgumentError: for a bad argument (named), or two evaluators of one case with
            the same name.
        MissingExtraError: for spans without ``opentelemetry-api``.
        ProgressBarMissingError: for ``progress=True`` without tqdm.
    """
    cases, dataset_name, shared = _cases_of(dataset)
    _check(repetitions, max_concurrency, timeout, evaluator_timeout)
    _check_given(evaluators, case_budget, metadata, output)
    _check_report(name, keep_trees, trace)
    every = _evaluators_of(None, (*evaluators, *shared))
    evaluators_of = [_evaluators_of(case, every) if case.evaluators else every for case in cases]
    total = len(cases) * repetitions
    chain, settings = _pipeline_settings(
        agent, max_concurrency, retries, retry_on, backoff, progress, dataset_name, total
    )
    tracing = EvalTracing(tracer_provider) if tracer_provider is not None or trace else None
    run = _Run(
        agent,
        cases,
        evaluators_of,
        repetitions=repetitions,
        timeout=timeout,
        evaluator_timeout=evaluator_timeout,
        case_budget=case_budget,
        keep_trees=keep_trees,
        output=output,
        tracing=tracing,
    )
    # Each try of a case is run by the pipeline's item runner: a coroutine in the item's own
    # task, no interaction around the agent's (the items are placeholders: a try knows its
    # case by its index)
    items = Pipeline(chain, itertools.repeat("", total), settings, ItemRunner(run.atry))
    try:
        MiniAgents.get_current()
    except NoActiveContextError:
        async with MiniAgents():
            return await _arun(run, items, dataset_name, name, metadata, budget)
    return await _arun(run, items, dataset_name, name, metadata, budget)


def _blocking(afunction: Callable[P, Coroutine[object, object, R]]) -> Callable[P, R]:
    """The blocking twin of ``afunction``, named without its ``a``, with its signature."""
    async_name = afunction.__name__
    name = async_name.removeprefix("a")

    @functools.wraps(afunction)
    def blocking(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(afunction(*args, **kwargs))
        raise EvalArgumentError(
            f"{name}() blocks, and an event loop runs here; use `await {async_name}(...)` "
            "(same arguments) instead."
        )

    blocking.__name__ = blocking.__qualname__ = name
    blocking.__doc__ = f":func:`{async_name}`, blocking: it runs on an event loop of its own."
    return blocking


evaluate = _blocking(aevaluate)
""":func:`aevaluate`, blocking: it runs on an event loop (and a context) of its own.

For scripts and command lines; in async code (a running event loop), ``await
aevaluate(...)`` instead. It takes the same arguments.

Raises:
    EvalArgumentError: when called on a running event loop, or as :func:`aevaluate`.
"""


def _pipeline_settings(
    agent: MiniAgent[..., Message],
    max_concurrency: int,
    retries: int,
    retry_on: tuple[type[BaseException], ...],
    backoff: float,
    progress: bool | None,
    description: str,
    total: int,
) -> tuple[list[MiniAgent[..., Message]], PipelineSettings]:
    """The settings of the run's pipeline, checked.

    Raises:
        EvalArgumentError: for an argument the pipeline cannot use (named).
    """
    try:
        return pipeline_settings(
            agent,
            caller="aevaluate",
            max_in_flight=2 * max_concurrency,
            max_concurrency=max_concurrency,
            ordered=True,
            retries=retries,
            retry_on=retry_on,
            backoff=backoff,
            timeout=None,
            fail_fast=False,
            progress=progress,
            description=description,
            total=total,
            overflow="buffer",
        )
    except PipelineArgumentError as error:
        raise EvalArgumentError(str(error)) from error


async def _arun(
    run: _Run[InputT, ExpectedT],
    items: Pipeline[str, Message],
    dataset_name: str,
    name: str | None,
    metadata: Mapping[str, object] | None,
    budget: Budget | None,
) -> EvalReport:
    loop = asyncio.get_running_loop()
    run.clock = _clock(loop)
    started_at = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    started = loop.time()
    title = name if name is not None else run.agent.alias
    tracing = run.tracing
    span = None if tracing is None else tracing.start_run(dataset_name, run.agent.alias, title)
    results: list[CaseResult] = []
    error: BaseException | None = None
    try:
        with contextlib.ExitStack() as stack:
            stack.enter_context(recording())
            if budget is not None:
                stack.enter_context(charged_to(budget))
            if tracing is not None:
                stack.enter_context(tracing.current(span))
            async with contextlib.aclosing(items.__aiter__()) as handed:
                async for item in handed:
                    results.append(run.result_of(item))
    except BaseException as failure:
        error = failure
        raise
    finally:
        if tracing is not None:
            tracing.end(span, {"miniagents.eval.cases": len(results)}, error)
    return EvalReport(
        name=title,
        agent=run.agent.alias,
        dataset=dataset_name,
        results=tuple(results),
        evaluators=tuple(run.names),
        repetitions=run.repetitions,
        started=started_at,
        duration=loop.time() - started,
        evaluation_usage=run.evaluation_meter.usage,
        metadata=metadata or {},
    )


@dataclass
class _Failure:
    """What a failed try left: its figures (the item's error comes with the pipeline's result).

    Its ``usage`` is of the case's tries so far, this one's included (each was paid for).
    """

    duration: float
    first_token: float | None
    usage: UsageTotals
    tree: ReplyTree | None


@dataclass(eq=False)
class _Run(Generic[InputT, ExpectedT]):
    """One run's cases, options and bookkeeping; its agent runs each try of a case."""

    agent: MiniAgent[..., Message]
    cases: list[Case[InputT, ExpectedT]]
    evaluators_of: list[tuple[Evaluator[InputT, ExpectedT], ...]]
    _: KW_ONLY
    repetitions: int
    timeout: float | None
    evaluator_timeout: float | None
    case_budget: Callable[[], Budget] | None
    keep_trees: bool
    output: Callable[[MessageTuple[Message]], str]
    tracing: EvalTracing | None

    def __post_init__(self) -> None:
        evaluators_of = self.evaluators_of
        self.names = list(
            dict.fromkeys(evaluator.name for ones in evaluators_of for evaluator in ones)
        )
        self.evaluation_meter = Budget()
        plain: dict[int, bool] = {}  # (by the tuple: the cases without their own share one)
        for ones in evaluators_of:
            if id(ones) not in plain:
                plain[id(ones)] = all(type(one).ascore is Evaluator.ascore for one in ones)
        self.plain = [plain[id(ones)] for ones in evaluators_of]
        """Whether each case's evaluators all only score (none awaits: no meter, no task
        switch)."""
        self.clock: Callable[[], float] = time.monotonic
        """The clock of the cases (the event loop's: ``_arun`` sets it)."""
        self.done: dict[int, CaseResult] = {}
        self.failed: dict[int, _Failure] = {}

    async def atry(self, position: int, attempt: int, _: MessageType) -> MessageTuple[Message]:
        """Try ``attempt`` of the run ``position`` (a case's repetition): run it, score it.

        The pipeline's item runner (:class:`~miniagents.pipeline.item_runner.ItemRunner`):
        its result is kept here (the pipeline gets no replies).
        """
        index, repetition = divmod(position, self.repetitions)
        case = self.cases[index]
        recorded = CaseRecording(self.clock)
        tracing = self.tracing
        span = None if tracing is None else tracing.start_case(case.name, repetition, attempt)
        try:
            return await self._atry(case, position, index, repetition, attempt, recorded, span)
        except BaseException as error:
            if tracing is not None:
                tracing.end(span, {}, error)  # (a failed try, or the run cancelled)
            raise

    async def _atry(
        self,
        case: Case[InputT, ExpectedT],
        position: int,
        index: int,
        repetition: int,
        attempt: int,
        recorded: CaseRecording,
        span: StartedSpan,
    ) -> MessageTuple[Message]:
        """The try, in the case's span (which it ends if the try succeeds)."""
        tracing = self.tracing
        meter = self.case_budget() if self.case_budget is not None else Budget()
        if not isinstance(meter, Budget):
            raise EvalArgumentError(
                f"aevaluate()'s case_budget made {meter!r}, not a Budget; make it a function "
                "that returns a new one, e.g. case_budget=lambda: Budget(max_cost_usd=0.05)."
            )
        try:
            step = current_step.set(recorded)
            try:
                with charged_to(meter):
                    if tracing is None:
                        replies = self.agent.inquire(case.input)
                    else:
                        with tracing.current(span):
                            replies = self.agent.inquire(case.input)
            finally:
                current_step.reset(step)
            if self.timeout is None:
                await _first_token(replies, recorded)
                messages = await replies
            else:
                messages = await self._aread(case, replies, recorded)
            duration = recorded.now()
            # (in the try: an output= that fails fails the case, which keeps what it used)
            text = self._output_of(messages)
        except BaseException:
            tree = recorded.tree() if self.keep_trees else None
            spent = self._spent(position, meter.usage)
            self.failed[position] = _Failure(recorded.now(), recorded.first_token, spent, tree)
            raise
        tree = recorded.tree()
        usage = meter.usage  # (this try's, as its tree; the result's has the failed tries too)
        first = recorded.first_token
        run = CaseRun(case, repetition, attempt, messages, text, tree, duration, first, usage)
        scores = await self._ascores(index, run, span)
        result = CaseResult(
            case=case.name,
            repetition=repetition,
            input=_text(case.input),
            expected=expected_text(case.expected),
            output=run.output,
            scores=scores,
            duration=duration,
            first_token=first,
            usage=self._spent(position, usage),
            attempts=attempt,
            tree=self._kept(recorded, tree),
            metadata=case.metadata,
        )
        self.done[position] = result
        if tracing is not None:
            attributes = case_attributes(
                passed=result.passed,
                duration=duration,
                first_token=first,
                usage=usage,
                scores=scores,
            )
            tracing.end(span, attributes)
        return _NO_REPLIES

    def _spent(self, position: int, usage: UsageTotals) -> UsageTotals:
        """``usage`` with that of the earlier tries of the run ``position`` (which failed)."""
        earlier = self.failed.get(position)
        return usage if earlier is None else UsageTotals.summed((earlier.usage, usage))

    def _output_of(self, messages: MessageTuple[Message]) -> str:
        """The text the evaluators compare (``output=``'s).

        Raises:
            EvalArgumentError: if ``output=`` returned something else than a ``str``.
        """
        text = self.output(messages)
        if not isinstance(text, str):
            raise EvalArgumentError(
                f"aevaluate()'s output= returned {_shown(text)}, not a str; make it return the "
                "text the evaluators compare, e.g. output=lambda replies: str(replies[-1])."
            )
        return text

    async def _ascores(
        self, index: int, run: CaseRun[InputT, ExpectedT], span: StartedSpan
    ) -> dict[str, Score]:
        """The scores of the run of the case ``index`` by its evaluators, by name."""
        scores: dict[str, Score] = {}
        evaluators = self.evaluators_of[index]
        if self.tracing is None and self.plain[index]:
            # (evaluators that only score, never await, call no model: no meter, no task
            # switch; each is called as _ascore would, without its coroutine)
            for evaluator in evaluators:
                score = _scored(evaluator, run)
                if score is not None:
                    scores[evaluator.name] = score
        else:
            with charged_to(self.evaluation_meter):
                for evaluator in evaluators:
                    score = await self._ascore(evaluator, run, span)
                    if score is not None:
                        scores[evaluator.name] = score
        return scores

    def _kept(self, recorded: CaseRecording, tree: ReplyTree | None = None) -> ReplyTree | None:
        """The tree the report keeps (made now: the recorder's nodes are let go of), or none."""
        if not self.keep_trees:
            return None
        kept = recorded.tree() if tree is None else tree
        _ = kept.root
        return kept

    async def _aread(
        self,
        case: Case[InputT, ExpectedT],
        replies: MessageSequencePromise,
        recorded: CaseRecording,
    ) -> MessageTuple[Message]:
        """The replies, complete (noting the first token), within the timeout.

        Raises:
            CaseTimeoutError: if the timeout passed first.
        """
        deadline = asyncio.timeout(self.timeout)
        try:
            async with deadline:
                await _first_token(replies, recorded)
                return await replies
        except TimeoutError:
            if not deadline.expired():
                raise  # the agent's own
            raise CaseTimeoutError(
                f"The case {case.name!r} took longer than the timeout of {self.timeout} s; "
                "raise timeout= if it needs more time."
            ) from None

    async def _ascore(
        self,
        evaluator: Evaluator[InputT, ExpectedT],
        run: CaseRun[InputT, ExpectedT],
        case_span: StartedSpan,
    ) -> Score | None:
        tracing = self.tracing
        span = None if tracing is None else tracing.start_evaluator(evaluator.name, case_span)
        try:
            with _current(tracing, span):
                score = await self._atimed(evaluator, run)
            if score is not None and not isinstance(score, Score):
                raise EvaluatorDefinitionError(_not_a_score(evaluator, score))
        except Exception as error:
            score = Score.failed_with(error)
        except BaseException as error:  # (the run cancelled as it scored)
            if tracing is not None:
                tracing.end(span, {}, error)
            raise
        if tracing is not None:
            failure = None if score is None else score.error  # (the class's name)
            tracing.end(span, evaluator_attributes(score), failure)
        return score

    async def _atimed(
        self, evaluator: Evaluator[InputT, ExpectedT], run: CaseRun[InputT, ExpectedT]
    ) -> Score | None:
        """The evaluator's ``ascore`` of ``run``, within the run's ``evaluator_timeout``.

        Raises:
            EvaluatorTimeoutError: if the timeout passed first (the evaluator cancelled).
        """
        if self.evaluator_timeout is None:
            return await evaluator.ascore(run)
        deadline = asyncio.timeout(self.evaluator_timeout)
        try:
            async with deadline:
                return await evaluator.ascore(run)
        except TimeoutError:
            if not deadline.expired():
                raise  # the evaluator's own
            raise EvaluatorTimeoutError(
                f"The evaluator {evaluator.name} took longer than the evaluator_timeout of "
                f"{self.evaluator_timeout} s on the case {run.case.name!r}; raise "
                "evaluator_timeout= if it needs more time."
            ) from None

    def result_of(self, item: ItemResult[str, Message]) -> CaseResult:
        """The result of a run of a case, as the pipeline hands out its item."""
        position = item.index
        done = self.done.pop(position, None)
        failure = self.failed.pop(position, None)
        if item.ok and done is not None:
            return done
        index, repetition = divmod(position, self.repetitions)
        case = self.cases[index]
        error = item.error if item.error is not None else RuntimeError("no result")
        return CaseResult(
            case=case.name,
            repetition=repetition,
            input=_text(case.input),
            expected=expected_text(case.expected),
            output=None,
            error=type(error).__qualname__,
            error_message=str(error),
            duration=None if failure is None else failure.duration,
            first_token=None if failure is None else failure.first_token,
            usage=UsageTotals() if failure is None else failure.usage,
            attempts=item.attempts,
            tree=None if failure is None else failure.tree,
            metadata=case.metadata,
        )


_NO_REPLIES: MessageTuple[Message] = MessageTuple()
"""What a try of a case gives the pipeline (its result is kept by the run)."""


def _scored(
    evaluator: Evaluator[InputT, ExpectedT], run: CaseRun[InputT, ExpectedT]
) -> Score | None:
    """The score of an evaluator that does not await (``ascore`` not its own), as ``_ascore``."""
    try:
        score = evaluator.score(run)
        if score is not None and not isinstance(score, Score):
            raise EvaluatorDefinitionError(_not_a_score(evaluator, score))
    except Exception as error:
        return Score.failed_with(error)
    return score


def _not_a_score(evaluator: Evaluator[InputT, ExpectedT], score: object) -> str:
    return (
        f"The evaluator {evaluator.name} returned {score!r}; ascore() returns a Score, or "
        "None (the case is not scored)."
    )


def _clock(loop: asyncio.AbstractEventLoop) -> Callable[[], float]:
    """The loop's clock: ``time.monotonic`` itself where the loop's ``time`` only calls it."""
    return time.monotonic if keeps_monotonic_time(loop) else loop.time


async def _first_token(replies: MessageSequencePromise, recorded: CaseRecording) -> None:
    """Wait for the first token of the replies' text (tool calls and results aside).

    It waits on each message's record for its first piece, without reading the message
    (the whole replies are awaited after: one wake-up, not one per token).
    """
    async for message in replies:
        if issubclass(message.message_class, _NOT_TEXT):
            continue
        core = core_of(message)
        core.start()
        while not core.count and not core.done:
            await core.await_change()
        if core.count:
            recorded.first_token = recorded.now()
            return


def _current(
    tracing: EvalTracing | None, span: StartedSpan
) -> contextlib.AbstractContextManager[None]:
    if tracing is None or span is None:
        return contextlib.nullcontext()
    return tracing.current(span)


def _shown(value: object) -> str:
    """``value`` as Python writes it, cut short past 60 characters."""
    shown = repr(value)
    return shown if len(shown) <= 60 else shown[:59] + "…"


def _text(value: object) -> str:
    return value if isinstance(value, str) else str(value)


def _cases_of(
    dataset: Dataset[InputT, ExpectedT] | Sequence[Case[InputT, ExpectedT]],
) -> tuple[list[Case[InputT, ExpectedT]], str, tuple[Evaluator[InputT, ExpectedT], ...]]:
    if isinstance(dataset, Dataset):
        return list(dataset.cases), dataset.name, tuple(dataset.evaluators)
    if isinstance(dataset, (str, bytes, Case)):
        raise EvalArgumentError(
            f"aevaluate() takes a Dataset, or a list of Case objects, not {dataset!r}: pass "
            "e.g. [Case(input=..., expected=...)] (a single input is one Case in a list)."
        )
    try:
        made = Dataset(tuple(dataset))
    except Exception as error:
        raise EvalArgumentError(
            f"aevaluate() takes a Dataset, or a list of Case objects: {error}"
        ) from None
    return list(made.cases), made.name, ()


def _evaluators_of(
    case: Case[InputT, ExpectedT] | None, shared: Sequence[Evaluator[InputT, ExpectedT]]
) -> tuple[Evaluator[InputT, ExpectedT], ...]:
    """The evaluators of ``case`` (``None``: of every case), checked.

    Raises:
        EvalArgumentError: for one that is not an evaluator, or two of the same name.
    """
    every = (*shared, *case.evaluators) if case is not None else tuple(shared)
    names: dict[str, Evaluator[InputT, ExpectedT]] = {}
    for evaluator in every:
        if isinstance(evaluator, type) and issubclass(evaluator, Evaluator):
            raise EvalArgumentError(
                f"{evaluator.__name__} is an evaluator's class, not an evaluator: make one "
                f"with {evaluator.__name__}() (and its arguments, if it takes any)."
            )
        if not isinstance(evaluator, Evaluator):
            raise EvalArgumentError(
                f"{evaluator!r} is not an Evaluator; wrap a function of the run with "
                "evaluator(function)."
            )
        if evaluator.name in names:
            whose = "Every case" if case is None else f"The case {case.name!r}"
            raise EvalArgumentError(
                f"{whose} has two evaluators named {evaluator.name!r} "
                f"({names[evaluator.name]!r} and {evaluator!r}); give one another name "
                "(name=...)."
            )
        names[evaluator.name] = evaluator
    return every


def _check(
    repetitions: object, max_concurrency: object, timeout: object, evaluator_timeout: object
) -> None:
    for what, value in (("repetitions", repetitions), ("max_concurrency", max_concurrency)):
        check_count(value, what, owner="aevaluate()", error=EvalArgumentError)
    for what, seconds in (("timeout", timeout), ("evaluator_timeout", evaluator_timeout)):
        if seconds is not None:
            fix = "Or pass None for no timeout."
            check_seconds(
                seconds, what, forever=True, owner="aevaluate()", fix=fix, error=EvalArgumentError
            )


def _check_report(name: object, keep_trees: object, trace: object) -> None:
    """Check the arguments of ``aevaluate`` that say what the report (and its spans) keep.

    Before any case runs: else a ``name`` that is no text was the report's name (typed a
    str), and a flag that is no bool (``keep_trees="no"``) was taken for true.

    Raises:
        EvalArgumentError: for a ``name`` that is not a non-empty str (nor ``None``), or
            a ``keep_trees`` or ``trace`` that is not a bool.
    """
    if name is not None:
        fix = "Or pass None for the agent's alias."
        check_text(name, "name", owner="aevaluate()", fix=fix, error=EvalArgumentError)
    check_flag(
        keep_trees,
        "keep_trees",
        owner="aevaluate()",
        fix="Pass keep_trees=True to keep each run's reply tree in the report.",
        error=EvalArgumentError,
    )
    check_flag(
        trace,
        "trace",
        owner="aevaluate()",
        fix="Pass trace=True for spans made with OpenTelemetry's global tracer provider, "
        "or tracer_provider=... for another one.",
        error=EvalArgumentError,
    )


def _check_given(evaluators: object, case_budget: object, metadata: object, output: object) -> None:
    """Check the arguments of ``aevaluate`` a type checker would have (for a careless caller).

    Raises:
        EvalArgumentError: for a lone evaluator, a ``case_budget`` or an ``output`` that is
            not a function, or ``metadata`` that is not a mapping.
    """
    if not callable(output):  # (else each case failed, its agent run, on "not callable")
        raise EvalArgumentError(
            "aevaluate() needs output to be a function of the replies that returns the text "
            "the evaluators compare, e.g. output=lambda replies: str(replies[-1]); got "
            f"{_shown(output)}."
        )
    if isinstance(evaluators, (Evaluator, str, Mapping)) or not isinstance(evaluators, Iterable):
        raise EvalArgumentError(
            f"aevaluate() takes a list of evaluators, not {evaluators!r}; pass [{evaluators!r}]."
        )
    if case_budget is not None and not callable(case_budget):
        raise EvalArgumentError(
            f"aevaluate() needs case_budget to be a function that makes a new Budget for each "
            f"try of a case, e.g. case_budget=lambda: Budget(max_cost_usd=0.05); got "
            f"{case_budget!r} (for one budget of the whole run, pass budget=)."
        )
    if metadata is not None and not isinstance(metadata, Mapping):
        raise EvalArgumentError(
            f"aevaluate() needs metadata to be a mapping (e.g. {{'model': 'gpt-4o'}}); got "
            f"{metadata!r}."
        )
