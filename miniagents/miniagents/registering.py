"""Plugging a part into a list the process keeps (routes, meters), with a way to unplug it."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import TypeVar

__all__ = ["register"]

T = TypeVar("T")


def register(registry: list[T], item: T) -> Callable[[], None]:
    """Add ``item`` to ``registry`` (once: added again, it is still there once).

    Returns:
        A function that removes ``item`` again (if it is still there: calling it twice, or
        after another's removal, does nothing).
    """
    if item not in registry:
        registry.append(item)
    return partial(_unregister, registry, item)


def _unregister(registry: list[T], item: T) -> None:
    if item in registry:
        registry.remove(item)
