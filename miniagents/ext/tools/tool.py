"""``Tool``: what a model can call — a name, a description, a JSON schema and a way to run."""

from __future__ import annotations

import copy
import logging
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable, Mapping
from typing import TypeAlias

from miniagents.arguments import check_count, check_flag, check_seconds
from miniagents.ext.tools._names import tool_name
from miniagents.ext.tools.errors import ToolDefinitionError

__all__ = ["DEFAULT_MAX_ARGUMENT_CHARS", "ApprovalRule", "Tool"]

logger = logging.getLogger(__name__)

ApprovalRule: TypeAlias = bool | Callable[[Mapping[str, object]], bool]
"""Whether a tool's calls need a person's approval: always, never, or by their arguments."""

DEFAULT_MAX_ARGUMENT_CHARS = 1_000_000
"""The default ``max_argument_chars`` of a tool: the most characters of one call's arguments."""


class Tool(ABC):
    """A tool a model can call: subclass it (implement :meth:`run`) for full control.

    Agents and typed functions become tools without this (see ``as_tool``); a subclass
    is for tools whose schema you write yourself, or that wrap another system (MCP tools
    are ``Tool`` subclasses too).

    Args:
        name: The name the model calls the tool by; made valid for the providers
            (``^[a-zA-Z0-9_-]{1,64}$``: other characters become ``_``).
        description: What the tool does, for the model.
        parameters: The JSON schema of the arguments (an ``object`` schema); by default,
            no arguments.
        requires_approval: Whether a call waits for a person's approval before it runs
            (``True``), or a predicate on the call's arguments that says so (see
            ``ToolApprovalRequest``); by default, never.
        timeout: The most seconds a call may run (``None``, the default: no limit). Past
            it, the call's run is cancelled and the model gets an error result saying it
            timed out (the time waiting for an approval does not count).
        max_argument_chars: The most characters the JSON text of one call's arguments may
            have (default ``DEFAULT_MAX_ARGUMENT_CHARS``, a million). A longer call does not
            run (nor ask for approval): the model gets an error result that says so. A
            model's arguments are untrusted input (a prompt injection writes them); raise
            it for a tool that takes long texts.

    Attributes:
        name: The tool's name, valid for every provider.
        description: What the tool does ("" when nothing was said).
        parameters: The JSON schema of the arguments (a new copy at each access: plain
            dicts and lists, ready for an SDK).
        requires_approval: Whether (or for which arguments) a call needs approval.
        timeout: The most seconds a call may run, or ``None`` for no limit.
        max_argument_chars: The most characters of one call's arguments.

    Example:
        >>> class Clock(Tool):
        ...     async def run(self, arguments: Mapping[str, object]) -> AsyncIterator[str]:
        ...         yield "12:00"
        >>> Clock(name="clock", description="The time now.").parameters
        {'type': 'object', 'properties': {}}
    """

    __slots__ = (
        "_parameters",
        "description",
        "max_argument_chars",
        "name",
        "requires_approval",
        "timeout",
    )

    def __init__(
        self,
        *,
        name: str,
        description: str = "",
        parameters: Mapping[str, object] | None = None,
        requires_approval: ApprovalRule = False,
        timeout: float | None = None,
        max_argument_chars: int = DEFAULT_MAX_ARGUMENT_CHARS,
    ) -> None:
        """Describe the tool (see the class docstring).

        Raises:
            ArgumentError: for a ``timeout`` that is not a positive, finite number, a
                ``requires_approval`` that is neither a bool nor a predicate, or a
                ``max_argument_chars`` that is not a whole number of at least 1.
            ToolDefinitionError: for a ``description`` that is not a ``str``, or
                ``parameters`` that are not a mapping (a JSON schema as a ``dict``).
        """
        self.name = tool_name(name, f"The tool {type(self).__name__}")
        if not isinstance(description, str):
            raise ToolDefinitionError(
                f"The description of the tool {self.name} must be a str, not {description!r}."
                ' Pass e.g. description="Get the weather in a city.", or nothing for none.'
            )
        if parameters is not None and not isinstance(parameters, Mapping):
            raise ToolDefinitionError(
                f"The parameters of the tool {self.name} must be a JSON schema as a dict, "
                f'not {parameters!r}. Pass e.g. {{"type": "object", "properties": '
                '{"city": {"type": "string"}}}, or a pydantic model\'s model_json_schema().'
            )
        self.description = description
        self.requires_approval = (
            requires_approval
            if callable(requires_approval)
            else check_flag(
                requires_approval,
                "requires_approval",
                owner=f"The tool {self.name}",
                fix="Pass True, False, or a predicate on the call's arguments, e.g. "
                "requires_approval=lambda arguments: arguments['amount'] > 100.",
            )
        )
        self.timeout = (
            None
            if timeout is None
            else check_seconds(
                timeout,
                "timeout",
                owner=f"The tool {self.name}",
                fix="Pass e.g. timeout=30 (seconds), or timeout=None for no limit.",
            )
        )
        self.max_argument_chars = check_count(
            max_argument_chars,
            "max_argument_chars",
            owner=f"The tool {self.name}",
            fix="Pass a whole number of characters, e.g. max_argument_chars=10_000_000.",
        )
        self._parameters: dict[str, object] = (
            {"type": "object", "properties": {}}
            if parameters is None
            else copy.deepcopy(dict(parameters))
        )

    @property
    def parameters(self) -> dict[str, object]:
        """The JSON schema of the arguments (a copy: changing it changes nothing)."""
        return copy.deepcopy(self._parameters)

    def needs_approval(self, arguments: Mapping[str, object]) -> bool:
        """Whether a call with ``arguments`` waits for a person's approval.

        A predicate that fails counts as a yes: a call is never run unapproved by mistake.
        """
        rule = self.requires_approval
        if not callable(rule):
            return bool(rule)
        try:
            return bool(rule(arguments))
        except Exception:
            logger.warning(
                "The approval predicate of the tool %s failed; the call waits for approval.",
                self.name,
                exc_info=True,
            )
            return True

    def validate(self, arguments: Mapping[str, object]) -> Mapping[str, object]:
        """Check the model's arguments before :meth:`run`; return the ones to run with.

        The default accepts them as they are; function and agent tools validate them with
        pydantic.

        Raises:
            ToolCallError: telling the model what is wrong with them.
        """
        return arguments

    @abstractmethod
    def run(self, arguments: Mapping[str, object]) -> AsyncIterator[str]:
        """Run the tool with validated ``arguments``; yield its reply, piece by piece.

        Raise ``ToolCallError`` to answer with an error result of exactly its message;
        any other exception also becomes an error result. The pieces reach the caller
        as they are yielded.
        """

    def __repr__(self) -> str:
        """Show the class and the name."""
        return f"<{type(self).__name__} {self.name}>"
