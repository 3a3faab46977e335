"""``Hook``: one declared extension point, where another layer plugs in its implementation.

A layer that lets an extension take part in its work (tracing observes the interactions
and the LLM calls, a durable run records them) holds a ``Hook`` for it, in a public module
that declares the protocol the extension implements. The extension sets its implementation
with :meth:`Hook.set` (through the function that module gives it, such as
``observe_interactions``); the layer reads :attr:`Hook.current` where it does the work. No
module reads or rebinds another module's globals to meet another layer::

    extension (ext.otel):  observe_llm_calls(tracer)  ->  hook.set(tracer)
    layer (ext.llm):       observer = hook.current    (None: nobody plugged in, the default)

A hook whose module can fan one event out to several implementations (the observers: the
evals' recorder and tracing observe at once) is made with ``combine``, and takes them with
:meth:`Hook.add` and :meth:`Hook.remove` (such a module exports its hook, such as
``interaction_observers``): ``current`` is then ``None``, the one implementation plugged
in, or what ``combine`` makes of them all, so that the layer's read stays one attribute
lookup however many are plugged in::

    add(recorder)  ->  current = recorder
    add(tracer)    ->  current = combine((recorder, tracer))
    remove(recorder) -> current = tracer

A module's ``combine`` (and the watches it hands out) are made on :class:`Fanout`, which
calls each implementation in turn, logging an error of one once and going on with the
others; :func:`observer_hook` makes such a hook of observers, with what logs their errors.

Plugging in and out is safe from any thread, and at once from several: a change is made
of what is plugged in when it is made (``combine`` is called with no lock held, and called
again if another change came first), so none is lost. Reading ``current`` takes no lock.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

from miniagents.miniagents.logged_once import LoggedOnce

__all__ = ["Fanout", "Hook", "observer_hook"]

T = TypeVar("T")
R = TypeVar("R")


class Hook(Generic[T]):
    """The implementations of a protocol, set for the whole process (or none, the default).

    Args:
        name: What plugs in here, for ``repr`` (e.g. ``"the LLM call observer"``).
        combine: What makes one implementation of several (given them in the order they
            were added); ``None``: one implementation at a time (the newest one added).
            What it makes is best a :class:`Fanout`: given back to :meth:`set`, its parts
            are plugged in again.

    Attributes:
        current: The implementation in use, or ``None``. Read it where the work is done: a
            read is an attribute lookup, cheap enough for a hot path.
    """

    __slots__ = ("_combine", "_lock", "_plugged", "current", "name")

    def __init__(self, name: str, combine: Callable[[tuple[T, ...]], T] | None = None) -> None:
        self.name = name
        self.current: T | None = None
        self._combine = combine
        self._plugged: tuple[T, ...] = ()
        self._lock = threading.Lock()  # (held to change what is plugged in, never to read)

    def set(self, implementation: T | None) -> T | None:
        """Plug ``implementation`` in alone (``None``: unplug all); return what it replaces.

        What it returns may be given back to ``set`` later: the implementations a
        :class:`Fanout` combined are then plugged in again, each one removable on its own.
        """
        if implementation is None:
            plugged: tuple[T, ...] = ()
        else:  # (given back a combination: the same ones again)
            plugged = (
                implementation.plugged if isinstance(implementation, Fanout) else (implementation,)
            )
        with self._lock:
            previous, self._plugged, self.current = self.current, plugged, implementation
        return previous

    def add(self, implementation: T) -> None:
        """Plug ``implementation`` in beside those plugged in already (once: again, no-op).

        Implementations are told apart by identity: one equal to another plugged in (``==``)
        is another one, plugged in beside it.
        """
        self._change(
            lambda plugged: None if _holds(plugged, implementation) else (*plugged, implementation)
        )

    def remove(self, implementation: T) -> None:
        """Unplug ``implementation``, leaving the others plugged in (not plugged in: no-op).

        Only ``implementation`` itself is unplugged, not another one equal to it.
        """
        self._change(
            lambda plugged: (
                tuple(other for other in plugged if other is not implementation)
                if _holds(plugged, implementation)
                else None
            )
        )

    def _change(self, change: Callable[[tuple[T, ...]], tuple[T, ...] | None]) -> None:
        """Plug in what ``change`` makes of what is plugged in (``None``: no change)."""
        while True:
            before = self._plugged
            plugged = change(before)
            if plugged is None:
                return
            current = self._one_of(plugged)  # (no lock held: combine may take its time)
            with self._lock:
                if self._plugged is before:
                    self._plugged, self.current = plugged, current
                    return
            # (another change came first: made again, of what that one plugged in)

    def _one_of(self, plugged: tuple[T, ...]) -> T | None:
        """``plugged`` as one implementation: ``None``, the one, or what ``combine`` makes."""
        if len(plugged) < 2 or self._combine is None:
            return plugged[-1] if plugged else None
        return self._combine(plugged)

    def __repr__(self) -> str:
        return f"Hook({self.name!r}, current={self.current!r})"


def _holds(plugged: tuple[T, ...], implementation: T) -> bool:
    """Whether ``implementation`` itself is one of ``plugged`` (not one equal to it)."""
    return any(other is implementation for other in plugged)


class Fanout(Generic[T]):
    """Several implementations of one protocol as one: the base of a hook's ``combine``.

    Args:
        plugged: The implementations, in the order they are told.
        failures: What logs an implementation's error once per its class and place: the
            hook's module's own, shared by every combination it makes and the watches made
            with them (so that an error is logged once however often the observers are
            plugged in and out, and once whether its observer was alone or beside others).
    """

    __slots__ = ("failures", "plugged")

    def __init__(self, plugged: Sequence[T], failures: LoggedOnce) -> None:
        self.plugged = tuple(plugged)
        self.failures = failures

    def each(self, where: str, call: Callable[[T], R | None]) -> list[R]:
        """``call(implementation)`` for each in turn: what they return that is not ``None``.

        An error is logged once (as the implementation's, failed at ``where``) and the
        others are called all the same.
        """
        results = []
        for implementation in self.plugged:
            result = self.failures.call(where, implementation, call, implementation)
            if result is not None:
                results.append(result)
        return results

    def watch(
        self,
        where: str,
        call: Callable[[T], R | None],
        combine: Callable[[list[R], LoggedOnce], R],
    ) -> R | None:
        """The watches :meth:`each` returns as one: ``None``, the one, or ``combine``'s of all.

        ``combine`` is given the watches and this fan-out's ``failures``.
        """
        watches = self.each(where, call)
        if len(watches) < 2:
            return watches[0] if watches else None
        return combine(watches, self.failures)


def observer_hook(
    observer: str, work: str, fanout: Callable[[tuple[T, ...], LoggedOnce], T]
) -> tuple[Hook[T], LoggedOnce]:
    """A hook of observers made one by ``fanout``, and what logs their errors once.

    ``observer`` names them, with its article (``"an LLM call observer"``); ``work`` is what
    goes on unobserved by one that failed (``"the calls"``).
    """
    failures = LoggedOnce(
        f"{observer[0].upper()}{observer[1:]} (%s) failed in %s (%s: %s); {work} go on "
        "unobserved by it there. This is logged once for its class."
    )
    named = f"the {observer.partition(' ')[2]}"
    return Hook(named, lambda observers: fanout(observers, failures)), failures
