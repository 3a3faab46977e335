"""Naming conventions (CONTRIBUTING.md), enforced where a test can see them.

A public coroutine function or method is named with the ``a`` prefix, as the seeds name
theirs (``achain_loop``, ``adialog_loop``, ``aresolve``, ``arun``, ``areply``), with two
documented exceptions: the methods of an interface users implement whose names are the
interface's (``ChatHistory.load``, ``append``, ``store``, and the same methods of its
subclasses), and the testing kit's waits, named ``<name>_async`` after their blocking twins
(``wait_requests`` / ``wait_requests_async``). A few older names are kept for
compatibility, listed below.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import pkgutil
import warnings
from collections.abc import Iterator

import miniagents
from miniagents.ext.history import ChatHistory

KEPT_FOR_COMPATIBILITY: dict[str, str] = {
    "miniagents.messages.appender.MessageSequenceAppender.wait_for_room": "documented since "
    "backpressure came (issue 10), and used by agents",
    "miniagents.ext.mcp.serving.serve_stdio": "named after the MCP SDK's own entry point",
}
"""Public coroutine functions named without the prefix, kept for compatibility."""

INTERFACE_METHODS: dict[type, frozenset[str]] = {
    ChatHistory: frozenset({"load", "append", "store"}),
    # asyncio's own methods, overridden by the testing kit's VirtualTimeLoop
    asyncio.AbstractEventLoop: frozenset(
        name
        for name in dir(asyncio.AbstractEventLoop)
        if inspect.iscoroutinefunction(getattr(asyncio.AbstractEventLoop, name))
    ),
}


def public_modules() -> Iterator[object]:
    yield miniagents
    for info in pkgutil.walk_packages(miniagents.__path__, "miniagents."):
        if not any(part.startswith("_") for part in info.name.split(".")):
            with warnings.catch_warnings():  # (the deprecated former homes warn)
                warnings.simplefilter("ignore", DeprecationWarning)
                yield importlib.import_module(info.name)


def coroutine_functions() -> Iterator[tuple[str, str, object]]:
    """``(qualified name, own name, owner class or None)`` of each public coroutine function."""
    for module in public_modules():
        for name in getattr(module, "__all__", ()):
            value = getattr(module, name)
            if getattr(value, "__module__", "").split(".")[0] != "miniagents":
                continue
            if inspect.iscoroutinefunction(value):
                yield f"{value.__module__}.{value.__qualname__}", value.__name__, None
            elif inspect.isclass(value):
                for klass in value.__mro__:  # its own methods and those it inherits from ours
                    if klass.__module__.split(".")[0] != "miniagents":
                        continue
                    for attribute, member in vars(klass).items():
                        if not attribute.startswith("_") and inspect.iscoroutinefunction(member):
                            yield f"{klass.__module__}.{member.__qualname__}", attribute, value


def follows_the_convention(qualified: str, name: str, owner: object) -> bool:
    if name.startswith("a") or qualified in KEPT_FOR_COMPATIBILITY:
        return True
    if name.endswith("_async") and qualified.startswith("miniagents.testing."):
        return True  # the testing kit's waits: `wait_requests` blocks, `wait_requests_async`...
    return any(
        isinstance(owner, type) and issubclass(owner, interface) and name in names
        for interface, names in INTERFACE_METHODS.items()
    )


def test_public_coroutine_functions_are_named_with_the_a_prefix() -> None:
    found = sorted(set(coroutine_functions()), key=lambda item: item[0])
    assert any(name == "achain_loop" for _, name, _ in found)  # the check sees them
    wrong = [
        qualified
        for qualified, name, owner in found
        if not follows_the_convention(qualified, name, owner)
    ]
    assert not wrong, (
        f"Public coroutine functions are named with the `a` prefix (see CONTRIBUTING.md): {wrong}"
    )


def test_every_name_kept_for_compatibility_still_exists() -> None:
    found = {qualified for qualified, _, _ in coroutine_functions()}
    stale = [name for name in KEPT_FOR_COMPATIBILITY if name not in found]
    assert not stale, f"remove these from KEPT_FOR_COMPATIBILITY: {stale}"
