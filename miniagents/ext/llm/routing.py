"""Routing the calls of the model: the hook that batch mode and the call cache plug into.

A route (:class:`LLMCallRoute`) is given each call of a model that an LLM agent makes
where it is set, right where the agent asks its provider for the reply: after the budgets
admitted the call, inside the call's stall watch and trace. It returns the events the agent
streams from: those of ``proceed(call, options)`` (the next route's, at the end the
provider's), for the call as it is or changed (batch mode asks for a reply that does not
stream, through a client that queues the request into a batch), or events of its own (the
call cache replays a recorded reply, and makes no request)::

    agent:  budgets -> stall watch, span -> cache (rank 0) -> batch (rank 10) -> provider
    hit:                                    recorded events
    miss:                                   recorded as they pass <- queued, then its events

Routes are set for a block of code (:func:`route_llm_calls`): the interactions started in
the block, and everything they cause, are routed (they inherit the block's context
variables, as budgets do), also after the block ends. :func:`add_llm_route` adds one to
the current context (for a run that makes its tasks in a context of its own), and
:func:`install_llm_route` to every call of the process (for a test session). Several
routes nest by their ``rank``, the lowest nearest the agent, whatever order they were set
in. Without a route (the default) a call costs one look at a context variable.
"""

from __future__ import annotations

import contextvars
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from typing import Any, Protocol

from miniagents.ext.llm.provider import LLMCall, LLMEvent, LLMOptions, LLMProvider
from miniagents.miniagents.registering import register

__all__ = [
    "LLMCallRoute",
    "Proceed",
    "add_llm_route",
    "install_llm_route",
    "llm_routes",
    "route_llm_calls",
    "routed_reply",
]

Proceed = Callable[[LLMCall, Any], AsyncIterator[LLMEvent]]
"""Makes a call through the routes after this one, then the provider: ``proceed(call,
options)`` (the options of the agent's provider, as given, or changed)."""


class LLMCallRoute(Protocol):
    """Given each call of a model made where it is set (see the module)."""

    @property
    def rank(self) -> int:
        """Where it goes among the routes set: the lowest rank is nearest the agent."""
        ...

    def llm_call(
        self,
        provider: LLMProvider[Any, Any],
        call: LLMCall,
        options: LLMOptions,
        proceed: Proceed,
    ) -> AsyncIterator[LLMEvent]:
        """The events of ``call`` (made with ``provider`` and its ``options``).

        Args:
            provider: The agent's provider (its ``translate`` makes its SDK's errors
                ``LLMError`` s; its ``price_provider`` names whose prices it pays).
            call: The call: model, prompt, tools, call options.
            options: The agent's arguments, as the provider's options class.
            proceed: Makes the call (changed or not) through the next routes and the
                provider; call it at most once per attempt, or not at all.

        Returns:
            The events the agent streams from, ending with one ``Finish``: the route may
            set the ``Finish``'s ``batch_id`` (a reply of a batch) or ``replayed`` (a
            reply made without a request).
        """
        ...


_ROUTES: contextvars.ContextVar[tuple[LLMCallRoute, ...]] = contextvars.ContextVar(
    "miniagents_llm_routes", default=()
)
_INSTALLED: list[LLMCallRoute] = []


def _ranked(routes: tuple[LLMCallRoute, ...], route: LLMCallRoute) -> tuple[LLMCallRoute, ...]:
    """``routes`` with ``route`` added (once), ordered by rank (stable)."""
    if route in routes:
        return routes
    return tuple(sorted((*routes, route), key=lambda each: each.rank))


@contextmanager
def route_llm_calls(route: LLMCallRoute) -> Iterator[LLMCallRoute]:
    """Route the calls of the model made by what is started inside the block through ``route``.

    Yields:
        ``route``.
    """
    token = _ROUTES.set(_ranked(_ROUTES.get(), route))
    try:
        yield route
    finally:
        _ROUTES.reset(token)


def add_llm_route(route: LLMCallRoute) -> None:
    """Route the calls of the model made in the current context through ``route`` from now on.

    For a run that starts its tasks in a context of its own (``contextvars.Context.run``):
    the tasks started there inherit it.
    """
    _ROUTES.set(_ranked(_ROUTES.get(), route))


def install_llm_route(route: LLMCallRoute) -> Callable[[], None]:
    """Route every call of the model in this process through ``route``, until removed.

    Returns:
        A function that removes the route again.
    """
    return register(_INSTALLED, route)


def llm_routes() -> tuple[LLMCallRoute, ...]:
    """The routes a call made here goes through, nearest the agent first."""
    routes = _ROUTES.get()
    for route in _INSTALLED:
        routes = _ranked(routes, route)
    return routes


def routed_reply(
    provider: LLMProvider[Any, Any], call: LLMCall, options: LLMOptions
) -> AsyncIterator[LLMEvent]:
    """The events of ``call``: through the routes set here, else the provider's own."""
    routes = _ROUTES.get()
    if not routes and not _INSTALLED:
        return provider.reply(call, options)
    return _through(llm_routes(), 0, provider, call, options)


def _through(
    routes: tuple[LLMCallRoute, ...],
    index: int,
    provider: LLMProvider[Any, Any],
    call: LLMCall,
    options: LLMOptions,
) -> AsyncIterator[LLMEvent]:
    if index == len(routes):
        return provider.reply(call, options)

    def proceed(given: LLMCall, with_options: Any) -> AsyncIterator[LLMEvent]:
        return _through(routes, index + 1, provider, given, with_options)

    return routes[index].llm_call(provider, call, options, proceed)
