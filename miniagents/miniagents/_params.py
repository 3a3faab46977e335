"""Which keyword arguments an agent function takes, and clear errors for the others."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import cast

from miniagents.miniagents.errors import AgentArgumentError, AgentDefinitionError

__all__ = ["AgentParameters"]

_NAMED = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)


@dataclass(frozen=True)
class AgentParameters:
    """The parameters of an agent function after its interaction context."""

    agent: str
    names: frozenset[str]
    required: frozenset[str]
    takes_any: bool
    signature: inspect.Signature
    positional: tuple[str, ...]
    """The parameters after the context that a positional argument can fill, in order."""
    shipped: bool = False
    """Whether the function is MiniAgents' own (an LLM agent, ``fallback_agent``'s, ...):
    one whose user cannot add a parameter to it."""

    @classmethod
    def of(cls, func: Callable[..., object], agent: str) -> AgentParameters:
        """Read the parameters of ``func``, the function of the agent ``agent``."""
        parameters = list(inspect.signature(func).parameters.values())
        if not parameters or parameters[0].kind not in (
            inspect.Parameter.POSITIONAL_ONLY,
            inspect.Parameter.POSITIONAL_OR_KEYWORD,
        ):
            raise AgentDefinitionError(
                f"The function of the agent {agent} must take the interaction context as "
                "its first positional parameter: `async def agent(ctx: InteractionContext, ...)`."
            )
        first = parameters[0]
        if first.name in ("self", "cls") and first.annotation is inspect.Parameter.empty:
            name = getattr(func, "__name__", "agent")
            raise AgentDefinitionError(
                f"The function of the agent {agent} takes {first.name!r} first: @miniagent "
                "decorated a method in its class, but an agent's function takes the "
                "interaction context first. Make the agent of an instance's method instead, "
                f"e.g. `self.{name} = miniagent(self._{name})` in __init__ (with "
                f"`async def _{name}(self, ctx: InteractionContext, ...)`), or define the "
                "agent function outside the class."
            )
        rest = parameters[1:]
        for parameter in rest:
            if parameter.kind is inspect.Parameter.POSITIONAL_ONLY:
                raise AgentDefinitionError(
                    f"The parameter {parameter.name!r} of the agent {agent} is positional-only, "
                    "but an agent's arguments are passed by keyword: move the `/` right "
                    "after the interaction context, or remove it."
                )
        named = [p for p in rest if p.kind in _NAMED]
        return cls(
            agent=agent,
            names=frozenset(p.name for p in named),
            required=frozenset(p.name for p in named if p.default is inspect.Parameter.empty),
            takes_any=any(p.kind is inspect.Parameter.VAR_KEYWORD for p in rest),
            signature=inspect.Signature(parameters),
            positional=tuple(
                p.name for p in rest if p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
            ),
            shipped=str(getattr(func, "__module__", "")).startswith("miniagents."),
        )

    def check_known(self, arguments: Mapping[str, object], where: str) -> None:
        """Reject arguments the function does not take (``where``: the method given them).

        Raises:
            AgentArgumentError: naming the agent, the argument and what it takes.
        """
        self.check_call((), arguments, where, complete=False)

    def check_call(
        self,
        args: tuple[object, ...],
        arguments: Mapping[str, object],
        where: str = "inquire",
        *,
        complete: bool = True,
    ) -> None:
        """Reject unknown arguments and, if the call is ``complete``, missing required ones.

        Raises:
            AgentArgumentError: naming the agent, the argument and the fix.
        """
        if not args and not arguments and not (complete and self.required):
            return  # the common case: nothing given, nothing needed
        if args:  # positional arguments: let Python's own binding judge them
            self._bind(args, arguments)
            return
        given = arguments.keys()
        if not (self.takes_any or given <= self.names):  # (a set comparison: no set made)
            unknown = sorted(set(arguments) - self.names)
            takes = ", ".join(sorted(self.names)) or "no arguments"
            fix = f"Check the spelling, or add a parameter {unknown[0]!r} to the agent function."
            if self.shipped:  # MiniAgents' own agent: the user cannot add one
                fix = (
                    "Check the spelling; an argument that only another agent takes (one this "
                    "agent asks, as fallback_agent's agents, or an agent of another provider) "
                    "is given to that agent, e.g. bound with its fork()."
                )
            if unknown[0] == "messages" and where == "inquire":  # the input by keyword
                fix = "Pass the input messages first, by position: inquire(messages, ...)."
            raise AgentArgumentError(
                f"The agent {self.agent} got an unexpected keyword argument {unknown[0]!r} "
                f"in {where}(); it takes: {takes}. {fix}"
            )
        if not complete or self.required <= given:
            return
        missing = sorted(self.required - set(arguments))
        raise AgentArgumentError(
            f"The agent {self.agent} needs the argument {missing[0]!r}: pass it to "
            f"inquire({missing[0]}=...) or bind it with fork({missing[0]}=...)."
        )

    def over_bound(
        self, args: tuple[object, ...], given: dict[str, object]
    ) -> tuple[tuple[object, ...], dict[str, object]]:
        """A call's positional arguments as keywords, so that they override bound ones.

        Arguments given to ``inquire`` override those bound with ``fork`` or ``bind``,
        by position as by keyword. Positional arguments that reach past the named
        parameters (into ``*args``) are left as they are, with those before them.

        Returns:
            The positional arguments left, and the keyword arguments.
        """
        if len(args) > len(self.positional):
            self._bind(args, {})  # too many, unless the function takes *args
            return args, given
        named = dict(zip(self.positional, args, strict=False))  # args may be fewer
        if named.keys() & given.keys():
            return args, given  # given twice: Python's own binding says so (check_call)
        named.update(given)
        return (), named

    def _bind(self, args: tuple[object, ...], arguments: Mapping[str, object]) -> None:
        """Bind a call's arguments as Python would (``partial``: without the bound ones).

        Raises:
            AgentArgumentError: with Python's reason.
        """
        try:
            if arguments:
                self.signature.bind(None, *args, **arguments)
            else:
                self.signature.bind_partial(None, *args)
        except TypeError as error:
            raise AgentArgumentError(
                f"The agent {self.agent} cannot take these arguments: {error}. Pass the "
                "agent's arguments by keyword, e.g. inquire(messages, name=value)."
            ) from None

    def by_name(
        self, args: tuple[object, ...], arguments: Mapping[str, object]
    ) -> dict[str, object]:
        """The arguments of a call, positional ones given their parameter's name.

        Raises:
            AgentArgumentError: if the function does not take them.
        """
        if not args:
            self.check_known(arguments, "bind")
            return dict(arguments)
        try:
            bound = self.signature.bind_partial(None, *args, **arguments)
        except TypeError as error:
            raise AgentArgumentError(
                f"The agent {self.agent} cannot take these arguments: {error}. Pass the "
                "agent's arguments by keyword, e.g. bind(name=value)."
            ) from None
        named: dict[str, object] = {}
        for name, value in list(bound.arguments.items())[1:]:  # the context comes first
            kind = self.signature.parameters[name].kind
            if kind is inspect.Parameter.VAR_KEYWORD:
                named.update(cast(Mapping[str, object], value))
            elif kind is inspect.Parameter.VAR_POSITIONAL:
                raise AgentArgumentError(
                    f"The agent {self.agent} cannot bind extra positional arguments "
                    f"({name}); pass its arguments by keyword."
                )
            else:
                named[name] = value
        return named
