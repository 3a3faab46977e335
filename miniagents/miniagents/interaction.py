"""``InteractionContext`` (what an agent function gets) and ``AgentCall`` (incremental input)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Generic

from typing_extensions import Self

from miniagents.messages.appender import MessageSequenceAppender
from miniagents.messages.errors import MessageTypeError
from miniagents.messages.message_promise import MessageT_co
from miniagents.messages.sequence import MessageSequencePromise, MessageType
from miniagents.miniagents.errors import AgentFinishedError

if TYPE_CHECKING:
    from miniagents.miniagents.agent import MiniAgent
    from miniagents.miniagents.context import MiniAgents

__all__ = ["AgentCall", "InteractionContext"]


class InteractionContext:
    """One interaction of an agent: its input messages and the way to reply.

    Attributes:
        this_agent: The agent being run.
        message_promises: The input messages, as a ``MessageSequencePromise`` (they may
            still be streaming); :attr:`messages` is the same sequence. Iterating it takes
            each message only when the agent's replies are less than the high-water mark
            ahead of their consumers (see :mod:`miniagents.promising.limits`).
    """

    __slots__ = ("_finished", "_replies", "message_promises", "this_agent")

    def __init__(
        self,
        this_agent: MiniAgent[...],
        message_promises: MessageSequencePromise,
        replies: MessageSequenceAppender,
    ) -> None:
        """Create the context of one interaction (the agent machinery does this)."""
        self.this_agent = this_agent
        self.message_promises = message_promises
        self._replies = replies
        self._finished = False

    @property
    def messages(self) -> MessageSequencePromise:
        """The input messages (the same as :attr:`message_promises`)."""
        return self.message_promises

    def reply(self, messages: MessageType) -> None:
        """Send messages to the caller, after everything replied before.

        ``messages`` may be anything a ``MessageType`` allows, e.g. a list mixing strings,
        messages and other agents' reply sequences (those agents run in parallel; their
        messages appear here in place). The caller gets them as soon as they stream.

        Raises:
            MessageTypeError: if ``messages`` (or a synchronous part of it) is not a
                ``MessageType``.
            AgentFinishedError: if the interaction has finished.
        """
        if self._finished:
            raise AgentFinishedError(
                f"The agent {self.this_agent.alias} replied after its interaction had "
                "finished (its function returned, or it called finish_early()). Reply "
                "before then, e.g. by awaiting the work that produces the reply."
            )
        try:
            self._replies.append(messages)
        except MessageTypeError as error:
            raise MessageTypeError(
                f"The agent {self.this_agent.alias} replied with something that is not "
                f"a message. {error}"
            ) from error

    async def areply(self, messages: MessageType) -> None:
        """Reply like :meth:`reply`, then wait until the replies' consumers have room.

        ``reply`` never waits: an agent that reads its input (``async for`` over
        :attr:`message_promises`) is slowed at its next input pull when its replies run
        the high-water mark ahead of their consumers. An agent that replies in a loop
        without reading input uses ``await ctx.areply(...)`` to be slowed there instead.

        Raises:
            MessageTypeError: if ``messages`` (or a synchronous part of it) is not a
                ``MessageType``.
            AgentFinishedError: if the interaction has finished.
        """
        self.reply(messages)
        await self._replies.wait_for_room()

    def finish_early(self) -> None:
        """End the reply sequence now; the agent function may go on, but not reply."""
        self._finished = True
        self._replies.complete()

    def _finish(self) -> None:
        self._finished = True


class AgentCall(Generic[MessageT_co]):
    """An inquiry whose input messages are sent one by one (``agent.initiate_inquiry()``).

    The type parameter is the class of the agent's reply messages (see ``MiniAgent``).

    The agent starts at once and sees the messages as they are sent; its input ends at
    :meth:`finish` (or :meth:`reply_sequence`, or at the end of the ``MiniAgents``
    context, whichever comes first).
    """

    __slots__ = ("_agent", "_context", "_input", "_replies")

    def __init__(
        self,
        agent: MiniAgent[...],
        inputs: MessageSequenceAppender,
        replies: MessageSequencePromise[MessageT_co],
        context: MiniAgents,
    ) -> None:
        """Wrap a started interaction (``MiniAgent.initiate_inquiry`` makes it)."""
        self._agent = agent
        self._input = inputs
        self._replies = replies
        self._context = context
        context._track_input(inputs)  # its input is finished on exit if the caller does not

    def send_message(self, messages: MessageType) -> Self:
        """Send more input messages to the agent; returns the call, for chaining.

        Raises:
            AgentFinishedError: if the call's input has been finished.
        """
        if self._input.closed:
            raise AgentFinishedError(
                f"This call to the agent {self._agent.alias} is finished, so it takes no "
                "more messages. Send every message before finish() or reply_sequence()."
            )
        self._input.append(messages)
        return self

    def finish(self) -> None:
        """End the agent's input (doing it again does nothing)."""
        self._input.complete()
        self._context._untrack_input(self._input)

    def reply_sequence(self, finish_call: bool = True) -> MessageSequencePromise[MessageT_co]:
        """The agent's replies; by default this also finishes the call's input."""
        if finish_call:
            self.finish()
        return self._replies
