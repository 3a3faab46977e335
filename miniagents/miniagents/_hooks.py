"""``Hook``: one declared extension point, where another layer plugs in its implementation.

A layer that lets an extension take part in its work (tracing observes the interactions
and the LLM calls, a durable run records them) holds a ``Hook`` for it, in a public module
that declares the protocol the extension implements. The extension sets its implementation
with :meth:`Hook.set` (through the function that module gives it, such as
``observe_interactions``); the layer reads :attr:`Hook.current` where it does the work. No
module reads or rebinds another module's globals to meet another layer::

    extension (ext.otel):  observe_llm_calls(tracer)  ->  hook.set(tracer)
    layer (ext.llm):       observer = hook.current    (None: nobody plugged in, the default)
"""

from __future__ import annotations

from typing import Generic, TypeVar

__all__ = ["Hook"]

T = TypeVar("T")


class Hook(Generic[T]):
    """One implementation of a protocol, set for the whole process (or none, the default).

    Args:
        name: What plugs in here, for ``repr`` (e.g. ``"the LLM call observer"``).

    Attributes:
        current: The implementation set, or ``None``. Read it where the work is done: a
            read is an attribute lookup, cheap enough for a hot path.
    """

    __slots__ = ("current", "name")

    def __init__(self, name: str) -> None:
        self.name = name
        self.current: T | None = None

    def set(self, implementation: T | None) -> T | None:
        """Plug ``implementation`` in (``None``: unplug); return the one it replaces."""
        previous, self.current = self.current, implementation
        return previous

    def __repr__(self) -> str:
        return f"Hook({self.name!r}, current={self.current!r})"
