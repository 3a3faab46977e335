"""Tools: agents and typed functions that a model can call, and their calls' results.

A tool is a :class:`Tool`: a ``name`` (valid for every provider:
``^[a-zA-Z0-9_-]{1,64}$``), a ``description`` and a JSON schema of its ``parameters``,
with a way to ``validate`` the model's arguments and ``run``. Anything :data:`ToolLike`
becomes one with :func:`as_tool`:

- a ``MiniAgent`` (:class:`AgentTool`): its alias, its docstring, the parameters after
  ``ctx`` not bound with ``fork``/``bind``; it runs with the arguments as its keyword
  arguments and **no input messages**, and its reply streams into the result;
- a typed function, sync or async, or an async generator (:class:`FunctionTool`): its name,
  docstring and parameters; a sync function runs in a worker thread, which a cancelled
  call cannot stop: it runs to its end, unless the function reads its call's flag,
  :func:`tool_cancellation` (``.cancelled``, ``.wait(seconds)``), and returns early;
- a ``Tool`` subclass of your own, or the tools of an MCP server
  (:mod:`miniagents.ext.mcp`).

A model's call is a :class:`ToolCallMessage` (``tool_name``, ``arguments``, ``call_id``);
:func:`run_tool_call` (or :meth:`ToolSet.run`) starts it and returns a ``MessagePromise`` of
its :class:`ToolResultMessage` (``tool_name``, ``call_id``, ``is_error``) whose tokens
stream while the tool produces them. Invalid arguments and the tool's exceptions become
error results (``is_error=True``) that tell the model what went wrong; nothing raises.

**For a provider's tool loop** (how the LLM agents use this package: ``tools=[...]``, see
:mod:`miniagents.ext.llm._call`)::

    tool_set = ToolSet(tools)              # once per agent: checks every tool and name
    # 1. describe the tools to the model, in the provider's format, from
    #    tool.name, tool.description and tool.parameters (a JSON schema), for tool in tool_set
    # 2. stream the model's reply; each tool call becomes a ToolCallMessage, e.g. a
    #    MessageTokenAppender(message_class=ToolCallMessage, tool_name=..., call_id=...)
    #    fed the argument deltas (its message parses them when complete; malformed JSON
    #    gives `arguments_error`, which running the call turns into an error result)
    # 3. results = tool_set.run_all(calls)  # all of the round's calls start at once
    #    ctx.reply([*calls, results])       # the caller sees calls and results stream
    # 4. send the round's calls and `await results` back to the model (OpenAI: tool_calls
    #    and `tool` messages; Anthropic: tool_use and tool_result blocks with is_error),
    #    and repeat until the model answers without calls.

Cancelling a result cancels its tool; a result nobody has read yet is not cancelled by
its consumers giving up (they never started), so a loop that gives up on a round cancels
each of its results (as the LLM agents do).
**Approval by a person**: a tool made with ``requires_approval=True`` (or a predicate on
the arguments) does not run when the model calls it: ``ToolSet.approval_request(call)``
makes a pending :class:`ToolApprovalRequest` (the LLM agents put it in the reply, before
the results), and the call's result waits until someone calls ``approve()`` (optionally
with edited arguments) or ``deny(reason)`` on it; a denial is the tool's error result.

Tool messages carry a ``role`` (``assistant`` for calls, ``tool`` for results), so that
histories show them in the right turn; a provider translates them by their class
(``isinstance``) before looking at the role, since their wire format is not plain text.
"""

from miniagents.ext.tools.agent_tool import AgentTool as AgentTool
from miniagents.ext.tools.approval import ApprovalStore as ApprovalStore
from miniagents.ext.tools.approval import MemoryApprovals as MemoryApprovals
from miniagents.ext.tools.approval import PendingApproval as PendingApproval
from miniagents.ext.tools.approval import ToolApprovalRequest as ToolApprovalRequest
from miniagents.ext.tools.approval import ToolDecision as ToolDecision
from miniagents.ext.tools.approval import request_approval as request_approval
from miniagents.ext.tools.cancellation import ToolCancellation as ToolCancellation
from miniagents.ext.tools.cancellation import tool_cancellation as tool_cancellation
from miniagents.ext.tools.errors import ToolApprovalError as ToolApprovalError
from miniagents.ext.tools.errors import ToolCallError as ToolCallError
from miniagents.ext.tools.errors import ToolDefinitionError as ToolDefinitionError
from miniagents.ext.tools.errors import ToolError as ToolError
from miniagents.ext.tools.errors import ToolNameConflictError as ToolNameConflictError
from miniagents.ext.tools.function_tool import FunctionTool as FunctionTool
from miniagents.ext.tools.messages import ToolCallMessage as ToolCallMessage
from miniagents.ext.tools.messages import ToolResultMessage as ToolResultMessage
from miniagents.ext.tools.running import run_tool_call as run_tool_call
from miniagents.ext.tools.tool import DEFAULT_MAX_ARGUMENT_CHARS as DEFAULT_MAX_ARGUMENT_CHARS
from miniagents.ext.tools.tool import Tool as Tool
from miniagents.ext.tools.tool_like import ToolLike as ToolLike
from miniagents.ext.tools.tool_like import as_tool as as_tool
from miniagents.ext.tools.tool_set import ToolSet as ToolSet

__all__ = [
    "DEFAULT_MAX_ARGUMENT_CHARS",
    "AgentTool",
    "ApprovalStore",
    "FunctionTool",
    "MemoryApprovals",
    "PendingApproval",
    "Tool",
    "ToolApprovalError",
    "ToolApprovalRequest",
    "ToolCallError",
    "ToolCallMessage",
    "ToolCancellation",
    "ToolDecision",
    "ToolDefinitionError",
    "ToolError",
    "ToolLike",
    "ToolNameConflictError",
    "ToolResultMessage",
    "ToolSet",
    "as_tool",
    "request_approval",
    "run_tool_call",
    "tool_cancellation",
]
