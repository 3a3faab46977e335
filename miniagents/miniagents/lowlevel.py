"""The low level of the agents layer: the hooks that extensions of the agents use.

**Who should use it.** Extension authors (and the extensions of :mod:`miniagents.ext`):
code that runs work an agent started, that must know when the interactions it started have
stopped, or that keeps settings in the ``MiniAgents`` context. Application code needs none
of it: agents, ``MiniAgents`` and the utilities are the API.

**What is stable.** Every name in ``__all__`` keeps its name and meaning.

- :func:`start_task`: run a coroutine in a task that the current context waits for on exit
  (and cancels after an error), as agents and tools run;
- :func:`at_exit`: have the current context call a function as its exit begins, to stop
  work that nobody can use once its block has ended (a pipeline left open), so that the
  exit, which waits for every task of the context, does not wait for it forever;
- :class:`InteractionScope`: the interactions some code started, lazy ones included, to
  wait until they have stopped (the agent loops of :mod:`miniagents.utils` use one) or to
  give up on them from plain code (``cancel()``: ``Pipeline.stop()`` does, for each try);
- :func:`extension_settings`: an extension's typed section of the settings of the current
  context (``miniagents.ext.llm.settings.llm_settings`` reads ``LLMSettings`` with it);
  :func:`with_settings` gives a context settings (``MiniAgents(...)`` takes those of the LLM
  agents itself), and :func:`context_settings` gives those of the current one, to carry
  them elsewhere (the Ray workers of :mod:`miniagents.ext.ray` run in a context with the
  caller's settings);
- :func:`observe_interactions`: the one hook of tracing (``miniagents.ext.otel`` uses it):
  an :class:`InteractionObserver` told when each interaction starts (in its task) and, by
  the :class:`InteractionWatch` it returns, when its replies have ended to the last token
  (an :class:`InteractionMessagesWatch` is also given the input and each reply message);
  :func:`outgoing_carrier`, :func:`adopt_carrier` and :func:`incoming_carrier` carry the
  trace to another process (a Ray worker). Without an observer, an interaction pays one
  call that finds none. :data:`interaction_observers` is its hook: its ``add`` and
  ``remove`` plug an observer in and out beside the others (the evals' recorder and
  tracing observe at once). See :mod:`miniagents.miniagents._observing`;
- :func:`prepare_interactions`: a hook of its own beside tracing's: an
  :class:`InteractionPreparer` told of each interaction where it is inquired (in its
  caller's task, in the caller's order), which may give what to call in the interaction's
  own context before its task starts (durable runs number interactions so). See
  :mod:`miniagents.miniagents._preparing`;
- :class:`Hook`: a declared extension point (one implementation of a protocol, set for
  the process); the hooks of the layers above (the LLM and tool calls' observers and
  recorders of :mod:`miniagents.ext.llm` and :mod:`miniagents.ext.tools`) are hooks,
  set through the functions of their public modules and read where the work is done (see
  :mod:`miniagents.miniagents._hooks`); :class:`Fanout` makes several implementations of
  an observer hook one, and :func:`observer_hook` such a hook, with what logs its
  observers' errors once;
- :func:`called_function`: what a call of a callable calls (the function of a
  ``functools.partial``, of a partial ...), the one that names and describes it (an agent
  made of a partial, a tool function of :mod:`miniagents.ext.tools`), and
  :func:`docstring_of`, the docstring that describes it (an agent's ``description``, a
  tool's: a callable object's ``__call__``'s, else its class's);
- :func:`enclosing_contexts`: the current context and those around it, innermost first
  (the usage totals of :mod:`miniagents.ext.llm` count a call in each of them);
- :func:`add_link_opener` and :func:`outgoing_links`: *live links*, for state of the caller
  that must stay one while an interaction runs in another process (the budgets of
  :mod:`miniagents.ext.llm`, across the Ray workers of :mod:`miniagents.ext.ray`): an
  extension opens a link, a transport carries its messages (:class:`LinkEnd`,
  :class:`CallerEnd`), and pickles its calls in a :func:`sending` block, where such state
  notes itself (:func:`note_sent`). See :mod:`miniagents.miniagents._links`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Mapping
from typing import Any, TypeVar

from miniagents.miniagents._awaitables import called_function as called_function
from miniagents.miniagents._awaitables import docstring_of as docstring_of
from miniagents.miniagents._hooks import Fanout as Fanout
from miniagents.miniagents._hooks import Hook as Hook
from miniagents.miniagents._hooks import observer_hook as observer_hook
from miniagents.miniagents._links import CallerEnd as CallerEnd
from miniagents.miniagents._links import LinkEnd as LinkEnd
from miniagents.miniagents._links import LinkOpener as LinkOpener
from miniagents.miniagents._links import add_link_opener as add_link_opener
from miniagents.miniagents._links import note_sent as note_sent
from miniagents.miniagents._links import outgoing_links as outgoing_links
from miniagents.miniagents._links import sending as sending
from miniagents.miniagents._observing import (
    InteractionMessagesWatch as InteractionMessagesWatch,
)
from miniagents.miniagents._observing import InteractionObserver as InteractionObserver
from miniagents.miniagents._observing import InteractionWatch as InteractionWatch
from miniagents.miniagents._observing import ObservedAgent as ObservedAgent
from miniagents.miniagents._observing import adopt_carrier as adopt_carrier
from miniagents.miniagents._observing import incoming_carrier as incoming_carrier
from miniagents.miniagents._observing import interaction_observers as interaction_observers
from miniagents.miniagents._observing import observe_interactions as observe_interactions
from miniagents.miniagents._observing import outgoing_carrier as outgoing_carrier
from miniagents.miniagents._preparing import InteractionPreparer as InteractionPreparer
from miniagents.miniagents._preparing import prepare_interactions as prepare_interactions
from miniagents.miniagents._scope import InteractionScope as InteractionScope
from miniagents.miniagents.context import (
    MiniAgents,
    at_exit_in,
    current_context,
    outer_context,
    settings_of,
    start_task_in,
)

__all__ = [
    "CallerEnd",
    "Fanout",
    "Hook",
    "InteractionMessagesWatch",
    "InteractionObserver",
    "InteractionPreparer",
    "InteractionScope",
    "InteractionWatch",
    "LinkEnd",
    "LinkOpener",
    "ObservedAgent",
    "add_link_opener",
    "adopt_carrier",
    "at_exit",
    "called_function",
    "context_settings",
    "docstring_of",
    "enclosing_contexts",
    "extension_settings",
    "incoming_carrier",
    "interaction_observers",
    "note_sent",
    "observe_interactions",
    "observer_hook",
    "outgoing_carrier",
    "outgoing_links",
    "prepare_interactions",
    "sending",
    "start_task",
    "with_settings",
]

S = TypeVar("S")


def start_task(coroutine: Coroutine[Any, Any, None], what: str) -> asyncio.Task[None]:
    """Run ``coroutine`` in a task that the current ``MiniAgents`` context waits for on exit.

    After an error in the context, the context cancels it instead (on exit); one started
    while that exit runs is cancelled at once.

    Args:
        coroutine: The work, e.g. a tool's run or a stream's pump.
        what: Names the task (``miniagents:<what>``) and the work in error messages.

    Raises:
        NoActiveContextError: outside of every ``MiniAgents`` context.
    """
    try:
        context = MiniAgents.get_current()
    except BaseException:
        coroutine.close()  # never awaited: no warning about it
        raise
    return start_task_in(context, coroutine, what)


def at_exit(callback: Callable[[], object]) -> Callable[[], None]:
    """Have the current ``MiniAgents`` context call ``callback()`` as its exit begins.

    The context calls it once its block has ended without an error, before it waits for
    its tasks (at once if it is exiting already): work that nobody can use after the block
    stops there, so that the exit does not wait for it forever (a pipeline left open, its
    results no longer read, is closed). After an error the context cancels its tasks
    instead, and calls none. A callback's error is logged (logger ``miniagents``), not
    raised.

    Args:
        callback: Called with no arguments, on the context's loop; what it returns is
            ignored (to wait for something, start it with :func:`start_task`).

    Returns:
        A function that forgets the callback: call it when the work has ended, so that a
        long-lived context does not keep a callback for every piece of work it ever ran.

    Raises:
        NoActiveContextError: outside of every ``MiniAgents`` context.
    """
    return at_exit_in(MiniAgents.get_current(), callback)


def extension_settings(section: type[S]) -> S:
    """The section ``section`` of the current context's extension settings.

    ``section`` is an extension's frozen dataclass, every field of it with a default; the
    result holds the values given to this context (``MiniAgents(...)``, :func:`with_settings`)
    or to one around it, by field name, and the defaults for the others. Outside every
    context: the defaults.
    """
    context = current_context()
    return section() if context is None else settings_of(context).section(section)


def context_settings() -> dict[str, object]:
    """Every extension setting of the current context, given or inherited, by name."""
    context = current_context()
    return {} if context is None else settings_of(context).values()


def with_settings(context: MiniAgents, settings: Mapping[str, object]) -> MiniAgents:
    """Give ``context`` extension settings, by field name; return it.

    They win over those given before (to its constructor too), and inner contexts entered
    from now on inherit them, e.g. ``async with with_settings(MiniAgents(), {"colour":
    "blue"}):``. An extension wraps it in a function with typed parameters.
    """
    settings_of(context).give(settings)
    return context


def enclosing_contexts() -> list[MiniAgents]:
    """The current ``MiniAgents`` context and the active ones around it, innermost first.

    Empty outside every context.
    """
    contexts: list[MiniAgents] = []
    context = current_context()
    while context is not None:
        contexts.append(context)
        context = outer_context(context)
    return contexts
