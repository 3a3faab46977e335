"""Sentinels: unique markers that are never mistaken for real values.

``AWAIT`` and ``CLEAR`` steer agent chains (see ``miniagents.utils.achain_loop``);
``DEFAULT`` means "use the default"; ``NO_VALUE`` means "nothing was given".
Sentinels are members of the :class:`Sentinel` enum, so mypy narrows them with ``is``.
Using one in a boolean context (``if NO_VALUE:``) raises :class:`SentinelMisuseError`,
because such a test is almost always a bug.
"""

from __future__ import annotations

import enum
from typing import Final

from miniagents.promising.errors import SentinelMisuseError

__all__ = ["AWAIT", "CLEAR", "DEFAULT", "NO_VALUE", "Sentinel"]


class Sentinel(enum.Enum):
    """A unique marker value; compare sentinels with ``is``, never by truth."""

    AWAIT = "AWAIT"
    CLEAR = "CLEAR"
    DEFAULT = "DEFAULT"
    NO_VALUE = "NO_VALUE"

    def __bool__(self) -> bool:
        """Refuse to be used as a boolean.

        Raises:
            SentinelMisuseError: always.
        """
        raise SentinelMisuseError(
            f"The sentinel {self.name} has no truth value. "
            f"Compare it by identity instead, e.g. `if value is {self.name}:`."
        )

    def __repr__(self) -> str:
        """Show the sentinel by its bare name, e.g. ``AWAIT``."""
        return self.name

    __str__ = __repr__


AWAIT: Final = Sentinel.AWAIT
CLEAR: Final = Sentinel.CLEAR
DEFAULT: Final = Sentinel.DEFAULT
NO_VALUE: Final = Sentinel.NO_VALUE
