"""Preparing interactions: the hook told of each interaction where it is inquired.

An :class:`InteractionPreparer`, once set with :func:`prepare_interactions`, is told of
each interaction as it is inquired: in its caller's task, synchronously, in the order the
caller's code inquires them (a lazy start too, where it is inquired, not where it is first
read). What it returns, if anything, is called in the interaction's own context before its
task starts, so that the context variables it sets there are what the agent and everything
it starts see, and nothing changes for the caller::

    caller:    inquire(A) ......... inquire(A) .........
    preparer:  interaction_inquired(A) -> set    interaction_inquired(A) -> set'
    tasks:                 [set() | A runs ...]           [set'() | A runs ...]

A durable run numbers the interactions so (``miniagents.ext.dbos``): the calls of one agent
started at once keep their numbers whatever the order they first call their model in. It is
a slot of its own, beside the interaction observer of tracing. With no preparer set (the
default) an interaction costs one attribute lookup that finds none.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from miniagents.miniagents._hooks import Hook
from miniagents.miniagents._observing import ObservedAgent

__all__ = ["InteractionPreparer", "prepare_interactions", "prepared_interaction"]


class InteractionPreparer(Protocol):
    """Told of every interaction inquired while it is set (see the module docstring).

    Its method must be quick and must not raise: an error it raises fails the inquiry.
    """

    def interaction_inquired(self, agent: ObservedAgent) -> Callable[[], object] | None:
        """``agent`` is inquired; return what to call in its interaction's context, or ``None``."""
        ...


_preparer: Hook[InteractionPreparer] = Hook("the interaction preparer")


def prepare_interactions(preparer: InteractionPreparer | None) -> InteractionPreparer | None:
    """Set the preparer of the interactions inquired from now on; return the one before."""
    return _preparer.set(preparer)


def prepared_interaction(agent: ObservedAgent) -> Callable[[], object] | None:
    """What the preparer returns for an interaction of ``agent`` inquired now (or ``None``)."""
    preparer = _preparer.current
    return None if preparer is None else preparer.interaction_inquired(agent)
