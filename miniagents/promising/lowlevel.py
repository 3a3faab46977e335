"""The low level of the streams layer: the replay core, as the layers above build on it.

**Who should use it.** The other layers of MiniAgents (messages, agents, extensions) and
authors of extensions that make their own kind of stream: a promise that computes its whole
itself, a source that feeds a core directly, a component that starts tasks or reports lost
errors the way the library does. Application code needs none of it: ``Promise``,
``StreamedPromise``, messages and agents are the API.

**What is stable.** Every name in ``__all__`` keeps its name and meaning; so do the members
of :class:`ReplayCore` listed here. Anything else on a core (its slots, its flow's fields
other than those named) is internal and may change.

What the layers above need, and where it is:

- **the record**: :class:`ReplayCore` records a stream once and replays it to every
  consumer: ``ReplayCore(source, prefill, error=..., validator=..., piece_type=...,
  open_ended=..., paced=..., overflow=...)`` or ``ReplayCore.finished(pieces, piece_type)``;
  :func:`core_of` gives the core a promise, a stream or an observable shows
  (:func:`paced_core_of`, of any object, that core if it has a flow), :func:`stream_on` a
  new ``StreamedPromise`` (subclass) over a core, :func:`pieces_are` whether every piece of
  a core is known to be of one type (to mypy too);
- **producing** into an open core: ``accept(piece)``, ``complete()``, ``fail(error)``,
  ``cancel(reason)`` (``on_abandoned`` first; a reason given is the error's text, kept in
  ``reason``: ``why_cancelled()`` tells it, or a holder's; a producer task cancelled with a
  :class:`CancelReason` message tells that), ``cancel_now()``,
  ``defer(starter)`` (the producer starts at the first consumer); **pacing**:
  ``has_room()``, ``await await_room()``, ``unpace()``, and ``flow`` (``None`` for a core
  that keeps everything and never makes a producer wait; the rules:
  :mod:`miniagents.promising.limits`), whose ``hold(core, holder)``, ``let_go(core,
  holder)``, ``let_go_reader(core, gate)``, ``queued``, ``backlog``, ``credit``,
  ``blocked``, ``recheck(core)`` and ``released_error(core)`` a flattening and an agent's
  input use;
- **consuming**: ``start()``, ``add_observer(on_next, on_error, on_completed, consumer=...,
  sink=...)`` (returns its disposer; ``observe(observer)`` takes an :data:`Observer` whole,
  which ``stop_observing(observer)`` stops), ``add_end_observer(on_error, on_completed)`` (the end
  only; returns its disposer), ``observable()``, ``await acollect()``, ``await await_done()``,
  ``await await_change()`` (the next piece or the end; a hot reader waits without this
  coroutine: ``get_waits().start(core)`` gives the future and the task, the same waits'
  ``end(core, task, error)`` ends the wait), ``raise_if_failed()``, ``consumed()``;
- **a snapshot**: ``pieces`` (the record kept, from piece number ``base``), ``count``,
  ``done``, ``started``, ``error``, ``released()``; a core of ``str`` that keeps every piece
  (a message's tokens) packs the front of a long record, below ``base``, into ``packed``:
  ``record()`` gives every piece kept, ``piece(index)`` one of them, and :func:`joined_text`
  the text of a core of ``str``;
- **"when done"**: ``when_done(callback)``; **"on abandoned"**: the ``on_abandoned``
  callback, called once when every consumer of a running stream has given up
  (``check_abandoned()`` checks); its **audience**, ``get_audience()`` (made at the first;
  ``audience``: it, if made): ``hold_reader()`` and ``release_reader(core, gave_up)`` count
  an interaction that reads the stream, ``check_abandoned_at_release(core)`` checks now or,
  while interactions read it, when the last of them stops; ``wanted_by``, the streams that
  hold this one as a piece; **handles** (what keeps a stream reachable): its flow's
  ``count_handle()`` / ``handle_gone(core)``;
- **sources**: :class:`DirectSource` (feeds a core by calling it), :func:`pull` (an async
  iterable pulled in a task, no further than its gate has room), :func:`follow_outside`
  (an observable of any thread, followed on the loop's thread);
- **handing pieces to readers**: :func:`handoffs` counts the ``async for`` readers woken
  by a piece; a producer whose source gives many pieces without suspending (an SDK's
  stream) yields to the loop when it changed, so that readers see each piece at once;
  :func:`run_first` (a :class:`RunFirst`, on asyncio's own loop) lets what a piece woke run
  next, and the producer right after it, instead of at the back of the loop's ready queue
  (a producer that leads, :meth:`RunFirst.lead`, has the streams do it as they wake);
- **tasks**: :func:`spawn` (how the streams and agents start tasks: none is lost or left behind),
  :func:`running_tasks`, :func:`forget_task` (a task's last step, instead of its done
  callback), :func:`start_owned` (start something whose tasks go to an owner's set),
  :data:`task_owner` (the owner of the tasks started with none: a ``MiniAgents`` block's),
  :func:`cancel_task` (a cancel whose message, a :class:`CancelReason`, the streams the
  task feeds tell even if the task catches the cancel and goes on);
- **the deadlock watch**: :func:`park` (the current task waits on the library, for a future
  of ours or for other tasks of ours, saying what it waits *on*: a core, :class:`EndOf`
  some tasks, or a :class:`Producer` naming who can end the wait) and :func:`unpark` when
  the wait ends; :func:`parked` lists the waits of a loop. A core's ``producer`` names who
  makes its next piece (a task, the core it follows, or a :class:`Producer`), so that the
  watch can follow a wait from one stream to the next (see
  :mod:`miniagents.promising._deadlock`: waits that nothing but each other can end are
  relieved, if a bounded buffer holds them, or fail with ``DeadlockError``);
  :func:`fed_by` walks those links to tell whether one stream feeds another (reading it
  would close a cycle that never ends);
  :func:`set_deadlock_check_interval` sets how often a loop is checked (``None``: never);
- **errors that must not be lost**: :func:`mark_received`, :func:`was_received`,
  :func:`report_lost_error`, :func:`report_broken_observer` and the ``miniagents``
  :data:`logger`; ``handed_over`` on a core whose error went on to another stream;
- **reading on demand**: :func:`read_on_demand` (an ``async for`` iterator of a stream
  lets its producer make only the pieces it asked for, not the high-water mark ahead);
- **the loop**: :func:`loop_runs` (whether an event loop runs in this thread: where code
  that would block it refuses, or hands its wait to a thread);
- **limits**: the :data:`stream_limits` context variable, :class:`StreamLimits` and
  :data:`Overflow` (from :mod:`miniagents.promising.limits`).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeGuard, TypeVar

from miniagents.promising._cursor import PieceIterator
from miniagents.promising._deadlock import park as park
from miniagents.promising._deadlock import parked as parked
from miniagents.promising._deadlock import set_check_interval as set_deadlock_check_interval
from miniagents.promising._deadlock import unpark as unpark
from miniagents.promising._outside import follow_outside as follow_outside
from miniagents.promising._replay import CancelReason as CancelReason
from miniagents.promising._replay import DirectSource as DirectSource
from miniagents.promising._replay import Observer as Observer
from miniagents.promising._replay import ReplayCore as ReplayCore
from miniagents.promising._replay import ReplayObservable as ReplayObservable
from miniagents.promising._replay import joined_text as joined_text
from miniagents.promising._reporting import logger as logger
from miniagents.promising._reporting import mark_received as mark_received
from miniagents.promising._reporting import report_broken_observer as report_broken_observer
from miniagents.promising._reporting import report_lost_error as report_lost_error
from miniagents.promising._reporting import was_received as was_received
from miniagents.promising._run_first import RunFirst as RunFirst
from miniagents.promising._run_first import run_first as run_first
from miniagents.promising._shared import core_of as core_of
from miniagents.promising._shared import paced_core_of as _paced_core_of
from miniagents.promising._sources import PieceObserver as PieceObserver
from miniagents.promising._sources import pull as pull
from miniagents.promising._tasks import TASK_NAME_PREFIX as TASK_NAME_PREFIX
from miniagents.promising._tasks import cancel_task as cancel_task
from miniagents.promising._tasks import forget_task as forget_task
from miniagents.promising._tasks import running_tasks as running_tasks
from miniagents.promising._tasks import spawn as spawn
from miniagents.promising._tasks import start_owned as start_owned
from miniagents.promising._tasks import task_owner as task_owner
from miniagents.promising._waitfor import EndOf as EndOf
from miniagents.promising._waitfor import Producer as Producer
from miniagents.promising._waitfor import fed_by as fed_by
from miniagents.promising._waiting import handoffs as handoffs
from miniagents.promising.limits import Overflow as Overflow
from miniagents.promising.limits import StreamLimits as StreamLimits
from miniagents.promising.limits import stream_limits as stream_limits
from miniagents.promising.streamed_promise import stream_on as stream_on

__all__ = [
    "TASK_NAME_PREFIX",
    "CancelReason",
    "DirectSource",
    "EndOf",
    "Observer",
    "Overflow",
    "PieceObserver",
    "Producer",
    "ReplayCore",
    "ReplayObservable",
    "RunFirst",
    "StreamLimits",
    "cancel_task",
    "core_of",
    "fed_by",
    "follow_outside",
    "forget_task",
    "handoffs",
    "joined_text",
    "keeps_monotonic_time",
    "logger",
    "loop_runs",
    "mark_received",
    "paced_core_of",
    "park",
    "parked",
    "pieces_are",
    "pull",
    "read_on_demand",
    "report_broken_observer",
    "report_lost_error",
    "run_first",
    "running_tasks",
    "set_deadlock_check_interval",
    "spawn",
    "start_owned",
    "stream_limits",
    "stream_on",
    "task_owner",
    "unpark",
    "was_received",
]

T = TypeVar("T")


def keeps_monotonic_time(loop: asyncio.AbstractEventLoop) -> bool:
    """Whether ``loop``'s ``time()`` is asyncio's own, which returns ``time.monotonic()``.

    A reader of the clock on every event may then call ``time.monotonic`` itself (a call
    fewer each time); a loop with a clock of its own (a virtual one, uvloop's) is asked.
    (The method of the loop's class, not one patched on the instance, is what counts.)
    """
    return getattr(loop.time, "__func__", None) is asyncio.BaseEventLoop.time


def loop_runs() -> bool:
    """Whether an event loop runs in this thread (code called from a coroutine, or a callback).

    Blocking code asks it before it waits: in a loop's thread a wait would stop every task
    of the loop, so it refuses there (naming its ``async`` twin) or hands the wait to a
    thread instead.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


paced_core_of: Callable[[object], ReplayCore[Any] | None] = _paced_core_of
"""The core that a stream, or a stream's observable, shows, if it has a flow (else ``None``).

``None`` for anything else (a message's promise, whose core has no flow; an outside
observable; any other object): what can be held for a consumer to come (see ``Flow.hold``).
"""


def pieces_are(core: ReplayCore[Any], piece_type: type[T]) -> TypeGuard[ReplayCore[T]]:
    """Whether every piece of ``core`` is known to be a ``piece_type`` (it was made so)."""
    return core.piece_type is piece_type


def read_on_demand(iterator: AsyncIterator[Any], count: int) -> None:
    """Let the producer of the stream ``iterator`` reads make ``count`` pieces in all for it.

    ``iterator`` is an ``async for`` iterator of a stream (``aiter(stream)``). From the
    first call on it reads *on demand*: the producer (an async iterable the library pulls,
    an agent at its next input pull) makes no piece past ``count`` for it, whatever the
    high-water mark, and waits until a later call raises ``count``; so, to read one more
    piece, call it with the pieces read so far plus one, then ``await anext(iterator)``.
    A hot source cannot be slowed (its overflow follows the high-water mark), and an
    iterator of anything else than a stream is left as it is.
    """
    if isinstance(iterator, PieceIterator):
        iterator.read_until(count)
