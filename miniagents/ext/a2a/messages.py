"""The messages of a remote A2A agent's reply, as :func:`~miniagents.ext.a2a.a2a_agent` makes them.

A remote agent's texts are :class:`A2AMessage` s: assistant messages (``isinstance(message,
AssistantMessage)``), with the model, the usage and cost, and the agent's alias when the
remote said them (a MiniAgents server does), and the remote task they came from. Its tool
calls, approval requests and tools' results (a MiniAgents server streams them too) are
``LLMToolCallMessage``, ``LLMToolApprovalRequest`` and ``LLMToolResultMessage``, as an LLM
agent's own are: :data:`A2AReply` is the type of such a reply message.
"""

from __future__ import annotations

from typing import TypeAlias

from miniagents.ext.llm.messages import AssistantMessage, LLMReply

__all__ = ["A2AMessage", "A2AReply"]


class A2AMessage(AssistantMessage):
    """A text of a remote A2A agent's reply (an artifact of its task).

    Attributes:
        task_id: The remote task's id.
        context_id: The remote task's context.
        artifact_id: The artifact of the task it is.
    """

    task_id: str | None = None
    context_id: str | None = None
    artifact_id: str | None = None


A2AReply: TypeAlias = LLMReply[A2AMessage]
"""A message of an ``a2a_agent``'s reply: an :class:`A2AMessage` (a text), or one of the remote
agent's tool calls, approval requests and tools' results."""
