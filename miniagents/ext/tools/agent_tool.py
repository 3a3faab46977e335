"""``AgentTool``: a ``MiniAgent`` as a tool, its reply streamed as the tool's result."""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Mapping

from miniagents.ext.input_requests import InputRequest, quoted_question, withdraw_input_request
from miniagents.ext.tools._arguments import ArgumentModel, partial_keywords
from miniagents.ext.tools._docstrings import parse_docstring
from miniagents.ext.tools.approval import ToolApprovalRequest
from miniagents.ext.tools.messages import ToolCallMessage, ToolResultMessage
from miniagents.ext.tools.tool import DEFAULT_MAX_ARGUMENT_CHARS, ApprovalRule, Tool
from miniagents.miniagents.agent import MiniAgent
from miniagents.miniagents.lowlevel import docstring_of

__all__ = ["AgentTool"]

MESSAGE_SEPARATOR = "\n\n"
"""Between two reply messages of an agent tool (as ``str()`` of a ``MessageTuple`` joins them)."""

_NOT_THE_ANSWER = (ToolCallMessage, ToolResultMessage, ToolApprovalRequest)
"""The messages of a sub-agent's own tool loop: in its reply, not in the tool's result."""


class AgentTool(Tool):
    """A ``MiniAgent`` as a tool: the model's arguments are its keyword arguments.

    - **Name**: the agent's alias (or ``name=``), made valid for the providers.
    - **Description**: the agent's description (by default its docstring) without the
      ``Args:`` section (or ``description=``).
    - **Schema**: the agent function's parameters after the interaction context, with the
      descriptions of its docstring's ``Args:`` section (a ``functools.partial``'s: its
      function's; a callable object's: its ``__call__``'s, else its class's), **except the
      arguments bound** with ``fork``, ``bind``, ``@miniagent(...)`` or the keywords of a
      ``functools.partial`` agent: those are fixed by you, hidden from
      the model, and an argument of that name from the model is refused. So
      ``agent.fork(model="...", system="...")`` exposes only what is left. ``**kwargs``
      is left out too.
    - **Input messages**: none. The arguments are the agent's whole input; it does not
      see the calling conversation (pass what it needs as an argument, e.g. ``question``).
    - **Result**: the agent's answer: the tokens of its reply's messages stream into the
      result as the agent produces them (messages separated by a blank line), so a
      sub-agent's tokens reach the top-level caller before it finishes. The messages of
      the sub-agent's own tool loop (its ``ToolCallMessage`` s, ``ToolResultMessage`` s
      and ``ToolApprovalRequest`` s) are left out of the result: they stay in the
      sub-agent's reply, a nested interaction (what tracing and the web page show), not
      in the text the calling model reads. Cancelling the result cancels the agent's
      interaction.
    - **Questions**: a model answers no question, so an ``InputRequest`` in the agent's
      reply (``request_input``, a remote A2A agent's question) is withdrawn at once: the
      agent's ``aanswer()`` raises an ``InputRequestError`` that says so (an ``a2a_agent``
      fails, its remote task cancelled), and the model gets the error result, not a call
      that waits for good.
    - **Approval**: ``requires_approval=True`` (or a predicate on the arguments) makes a
      call wait for a person's decision first (see ``Tool`` and ``ToolApprovalRequest``).
    - **Timeout**: ``timeout=`` seconds (``None``, the default: no limit) bounds a call:
      past it, the agent's interaction is cancelled and the model gets an error result
      saying it timed out.
    - **Arguments' size**: ``max_argument_chars=`` (default a million) bounds the JSON
      text of one call's arguments: a longer call does not run, and the model gets an
      error result that says so.

    Raises:
        ToolDefinitionError: for an unbound parameter without an annotation or of a type
            with no JSON schema (bind it with ``fork`` to hide it from the model).
        ArgumentError: for a ``timeout`` that is not a positive, finite number.
    """

    __slots__ = ("_arguments", "agent")

    def __init__(
        self,
        agent: MiniAgent[...],
        *,
        name: str | None = None,
        description: str | None = None,
        requires_approval: ApprovalRule = False,
        timeout: float | None = None,
        max_argument_chars: int = DEFAULT_MAX_ARGUMENT_CHARS,
    ) -> None:
        """Describe ``agent`` as a tool (see the class docstring)."""
        own = parse_docstring(docstring_of(agent.func))  # (a partial's: its function's)
        if description is None:
            description = parse_docstring(agent.description).description
        super().__init__(
            name=name if name is not None else agent.alias,
            description=description,
            requires_approval=requires_approval,
            timeout=timeout,
            max_argument_chars=max_argument_chars,
        )
        bound = {*agent.bound_arguments, *partial_keywords(agent.func)}  # (a partial's too)
        parameters = [
            parameter
            for parameter in list(inspect.signature(agent.func).parameters.values())[1:]
            if parameter.name not in bound
        ]
        self._arguments = ArgumentModel.of(agent.func, parameters, own.arguments, self.name)
        self._parameters = self._arguments.schema
        self.agent = agent

    def validate(self, arguments: Mapping[str, object]) -> Mapping[str, object]:
        """Validate the model's arguments with pydantic (see ``Tool.validate``)."""
        _args, kwargs = self._arguments.validate(arguments)
        return kwargs

    async def run(self, arguments: Mapping[str, object]) -> AsyncIterator[str]:
        """Inquire the agent (with no input messages); yield the tokens of its answer.

        Its own tool calls, their results and approval requests are left out.
        """
        replies = self.agent.inquire(None, **arguments)
        try:
            first = True
            async for promise in replies:
                if issubclass(promise.message_class, InputRequest):
                    question = await promise
                    assert isinstance(question, InputRequest)
                    withdraw_input_request(question, _why_withdrawn(self.name, question))
                    continue
                if issubclass(promise.message_class, _NOT_THE_ANSWER):
                    continue
                if not first:
                    yield MESSAGE_SEPARATOR
                first = False
                streamed = False
                async for token in promise:
                    streamed = True
                    yield token
                if not streamed:  # a message of no tokens: its fields, as its str() shows
                    text = str(await promise)
                    if text:
                        yield text
        finally:
            replies.cancel()  # ended early (cancelled, failed): stop the agent; else a no-op


def _why_withdrawn(tool: str, question: InputRequest) -> str:
    """Why a question of the agent of the tool ``tool`` is withdrawn (a full sentence).

    Told as written to the model and to every client (an ``InputRequestError``'s), so the
    question, whose words may be a remote agent's (an ``a2a_agent``'s), comes last, said
    to be the agent's, in a quote it cannot close (``quoted_question``): never read as ours.
    """
    return (
        f"The agent of the tool {tool} asked its caller a question, but a tool's caller is a "
        "model, which answers no question: give the agent what it needs in the call's "
        "arguments, or call it where someone answers (for a2a_agent, questions='raise' fails "
        "the call at once). The agent's question, in its own words (at most 200 "
        f"characters): {quoted_question(question)}."
    )
