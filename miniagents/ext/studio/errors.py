"""Errors of the studio (runs, forks); the whole hierarchy is drawn in :mod:`miniagents.errors`.

A store that cannot be read or written (:class:`StudioStoreError`), a run or a call that
is not in it (:class:`StudioNotFoundError`), a run whose record in it is damaged
(:class:`StudioDamagedRunError`), a run longer than a reader takes
(:class:`StudioRunTooLargeError`), a fork that cannot be made as asked
(:class:`StudioForkError`), or a recorder or studio given options it cannot use
(:class:`StudioConfigurationError`).
"""

from __future__ import annotations

from typing import TypeVar

from miniagents.arguments import a_class, refused_argument
from miniagents.promising.errors import MiniAgentsError
from miniagents.root_error import ArgumentError

__all__ = [
    "StudioConfigurationError",
    "StudioDamagedRunError",
    "StudioError",
    "StudioForkError",
    "StudioNotFoundError",
    "StudioRunTooLargeError",
    "StudioStoreError",
]

_T = TypeVar("_T")


class StudioError(MiniAgentsError):
    """Recording runs, showing them or forking them failed."""


class StudioStoreError(StudioError, OSError):
    """The store of recorded runs cannot be opened, read or written (the message says why)."""


class StudioDamagedRunError(StudioStoreError):
    """A run whose row in the store cannot be read (its command or fork is damaged)."""


class StudioNotFoundError(StudioError, LookupError):
    """A run (or a call of a run) that the store does not hold."""


class StudioRunTooLargeError(StudioError, ValueError):
    """A run with more events than its reader was let read (the message says how many)."""


class StudioForkError(StudioError, ValueError):
    """A fork that cannot be made as asked (no command recorded, no edit, no program)."""


class StudioConfigurationError(StudioError, ArgumentError):
    """A recorder or a studio given options it cannot use (the message names them)."""


def _checked(value: object, cls: type[_T], name: str, owner: str, do: str, example: str) -> _T:
    """``value`` if a ``cls``; else a ``StudioConfigurationError`` naming ``owner``, raised."""
    if isinstance(value, cls):
        return value
    fix = f"{do} first, e.g. {owner}({example}, ...)."
    raise refused_argument(
        value, name, a_class(cls), owner=owner, fix=fix, error=StudioConfigurationError
    )
