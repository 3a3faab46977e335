"""Agent loops: ``achain_loop`` (a cycle of agents) and ``adialog_loop`` (user and assistant).

A loop starts its agents in an :class:`~miniagents.miniagents.lowlevel.InteractionScope`, so
that when it ends (the user is done, or pressed Ctrl+C) it can wait until every interaction
it started, lazy ones included, has stopped: a reply cut short has ended its line before the
code after the loop runs.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Coroutine, Iterable, Sequence
from typing import Any, Literal, TypeAlias, cast

from miniagents.arguments import a_class
from miniagents.messages.sequence import MessageSequencePromise, MessageType, as_message_sequence
from miniagents.miniagents.agent import MiniAgent
from miniagents.miniagents.lowlevel import InteractionScope
from miniagents.promising.lowlevel import core_of, mark_received
from miniagents.promising.sentinels import AWAIT, CLEAR, Sentinel
from miniagents.utils._ctrl_c import ctrl_c_ends_the_loop
from miniagents.utils.errors import ChainDefinitionError

__all__ = ["ChainStep", "achain_loop", "adialog_loop"]

ChainStep: TypeAlias = MiniAgent[...] | Literal[Sentinel.AWAIT, Sentinel.CLEAR]
"""One step of an agent chain: an agent, ``AWAIT`` or ``CLEAR``."""

_ENDS_A_LOOP = (KeyboardInterrupt, EOFError)


def _chain_of(agents: object) -> tuple[ChainStep, ...]:
    """The steps of ``agents`` (any iterable: it is read once, here), checked.

    Raises:
        ChainDefinitionError: if ``agents`` is no iterable of steps, as ``achain_loop`` says.
    """
    if isinstance(agents, MiniAgent) or not isinstance(agents, Iterable):
        raise ChainDefinitionError(
            f"achain_loop() takes a list of agents, AWAIT and CLEAR, not {_a_value(agents)}. "
            "Put the agents in a list, e.g. achain_loop([user_agent, AWAIT, assistant_agent])."
        )
    steps = tuple(agents)
    _check_chain(steps)
    return cast("tuple[ChainStep, ...]", steps)


def _a_value(value: object) -> str:
    """``value`` as an error shows it: its type, and its ``repr`` cut short."""
    return f"{a_class(type(value))} ({value!r:.60})"


def _undecorated(where: str, value: object) -> None:
    """Refuse a plain function given ``where`` an agent goes (say to decorate it).

    Raises:
        ChainDefinitionError: if ``value`` is a function or a method, not an agent.
    """
    if inspect.isfunction(value) or inspect.ismethod(value):
        name = value.__name__
        raise ChainDefinitionError(
            f"{where} is the function {name}, not an agent: decorate it with @miniagent (the "
            f"line @miniagent above its async def), or pass miniagent({name})."
        )


def _check_chain(agents: Sequence[object]) -> None:
    for step in agents:
        _undecorated("An item of the list of achain_loop()", step)
    shown = ", ".join(
        type(step).__name__ if not isinstance(step, (MiniAgent, Sentinel)) else repr(step)
        for step in agents
    )
    if not any(isinstance(step, MiniAgent) for step in agents):
        raise ChainDefinitionError(
            f"achain_loop() needs agents in its list, but got [{shown}]. Pass the agents "
            "themselves, not the replies of agent.inquire(), e.g. "
            "achain_loop([user_agent, AWAIT, assistant_agent])."
        )
    if not any(step is AWAIT for step in agents):
        raise ChainDefinitionError(
            f"achain_loop() needs AWAIT in its list, but got [{shown}]. Without AWAIT the "
            "loop would start new agents forever without waiting for any reply. Put AWAIT "
            "where the chain should wait, e.g. achain_loop([user_agent, AWAIT, assistant_agent])."
        )
    for step in agents:
        if not isinstance(step, MiniAgent) and step is not AWAIT and step is not CLEAR:
            raise ChainDefinitionError(
                f"achain_loop() takes agents, AWAIT and CLEAR, but got {_a_value(step)}. "
                "Remove it, e.g. achain_loop([user_agent, AWAIT, assistant_agent])."
            )


async def achain_loop(
    agents: Iterable[ChainStep], initial_messages: MessageType | None = None
) -> None:
    """Run ``agents`` in a cycle, each one's replies being the next one's input, forever.

    ``AWAIT`` waits until the replies so far are complete before the chain goes on;
    ``CLEAR`` drops them, so the next agent starts with no input. The loop ends cleanly
    when an agent raises ``KeyboardInterrupt`` or ``EOFError`` (the user is done), or
    when the user presses Ctrl+C while it runs (in the main thread): it then returns once
    the agents it started have stopped, so whatever they print is out before the code
    after the loop runs. Any other error from an agent is raised here at once.

    ``agents`` is a list (or any iterable, read once) of agents, ``AWAIT`` and ``CLEAR``.

    Raises:
        ChainDefinitionError: if ``agents`` is not an iterable (an agent alone), or holds no
            agent, or no ``AWAIT``, or something that is neither an agent, ``AWAIT`` nor
            ``CLEAR`` (a ``ValueError`` too).
    """
    await _until_the_user_is_done(_chain(_chain_of(agents), initial_messages))


async def _chain(agents: tuple[ChainStep, ...], messages: MessageType | None) -> None:
    while True:
        for step in agents:
            if step is AWAIT:
                if messages is not None:
                    messages = await as_message_sequence(messages)
            elif step is CLEAR:
                messages = None
            else:
                messages = step.inquire(messages)


async def adialog_loop(
    user_agent: MiniAgent[...],
    assistant_agent: MiniAgent[...],
    history_agent: MiniAgent[...] | None = None,
) -> None:
    """Let a user agent and an assistant agent talk, turn after turn, until the user is done.

    The user agent gets the assistant's last replies (none at first) and replies with
    the user's message; the assistant gets that message or, with a ``history_agent``,
    the whole history, which the history agent replies with after storing what it gets
    (it also stores the assistant's replies). The loop ends cleanly when an agent raises
    ``KeyboardInterrupt`` or ``EOFError`` (the console agents do at the end of input, or
    when the user types ``exit``), or when the user presses Ctrl+C while it runs (in the
    main thread): the replies under way are then given up on, which cancels them. Either
    way it returns once the agents it started have stopped, so a reply cut short has
    ended its line before the code after the loop prints anything.

    A failed assistant reply (an LLM error) goes to the user agent like any other: the
    console user agent shows its error in one line and the user goes on, and the history
    agent does not store it. A user agent that does not handle it ends the loop with it.

    Raises:
        ChainDefinitionError: if an argument is not an agent (a ``ValueError`` too).
    """
    agents = {"user_agent": user_agent, "assistant_agent": assistant_agent}
    if history_agent is not None:
        agents["history_agent"] = history_agent
    for name, agent in agents.items():
        _undecorated(f"The {name} of adialog_loop()", agent)
        if not isinstance(agent, MiniAgent):
            raise ChainDefinitionError(
                f"adialog_loop() takes agents, but its {name} is {_a_value(agent)}. Pass the "
                "agents themselves (made with @miniagent), e.g. adialog_loop(console_user_agent, "
                "assistant, history_agent=in_memory_history_agent)."
            )
    await _until_the_user_is_done(_dialog(user_agent, assistant_agent, history_agent))


async def _dialog(
    user_agent: MiniAgent[...],
    assistant_agent: MiniAgent[...],
    history_agent: MiniAgent[...] | None,
) -> None:
    assistant_reply: MessageSequencePromise | None = None
    stored: MessageSequencePromise | None = None
    user_reply: MessageSequencePromise | None = None
    try:
        while True:
            user_reply = user_agent.inquire(assistant_reply)
            await user_reply
            if stored is not None and assistant_reply is not None:
                await _stored(stored, assistant_reply)
            if history_agent is None:
                assistant_reply = assistant_agent.inquire(user_reply)
            else:
                history = history_agent.inquire(user_reply)
                assistant_reply = assistant_agent.inquire(history)
                stored = history_agent.inquire(assistant_reply)
    except asyncio.CancelledError:
        if stored is not None and assistant_reply is not None and not assistant_reply.done:
            stored.cancel()  # a reply cut short is not kept, and nobody waits for it
        if user_reply is not None:
            _take_the_users_end(user_reply)
        raise


def _take_the_users_end(user_reply: MessageSequencePromise) -> None:
    """Take the user's end (Ctrl+D, ``exit``) that came with the loop's cancellation (Ctrl+C).

    Both can land in the same step of the loop: the reply then ended with the error that
    ends the loop, which the loop, cancelled first, never awaited (and which would be
    reported as an error nobody received).
    """
    error = core_of(user_reply).error
    if isinstance(error, _ENDS_A_LOOP):
        mark_received(error)


async def _stored(stored: MessageSequencePromise, assistant_reply: MessageSequencePromise) -> None:
    """Wait for the history agent to store the assistant's reply.

    When the reply itself failed, the history agent fails with the reply's error, which
    the user agent has handled already (it took its turn): that is no error of the loop.
    """
    try:
        await stored
    except Exception as error:
        if not await _failed_with(assistant_reply, error):
            raise


async def _failed_with(replies: MessageSequencePromise, error: BaseException) -> bool:
    try:
        await replies
    except Exception as own_error:
        return own_error is error
    return False


async def _until_the_user_is_done(loop: Coroutine[Any, Any, None]) -> None:
    """Run ``loop`` until an agent raises ``EOFError``/``KeyboardInterrupt`` or Ctrl+C.

    Then wait for the interactions the loop started to stop (the replies it gave up on
    cancel theirs), out of the Ctrl+C block: a second Ctrl+C interrupts this wait as usual.
    """
    scope = InteractionScope()
    with ctrl_c_ends_the_loop() as ctrl_c:
        try:
            with scope:
                await loop
        except _ENDS_A_LOOP:
            pass
        except asyncio.CancelledError:
            if not ctrl_c.ended():
                raise
    await scope.astopped()
