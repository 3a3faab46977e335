"""How many of something each caller holds at once (runs, event streams, sessions, calls).

The web apps and the MCP server bound what one caller (a principal) holds at once, and count
it per caller as it is taken and given back. A caller whose count is back to 0 is not kept,
so that the count stays as small as the callers holding something now, however many came
and went. The web apps and the MCP server share it (it imports neither's extra).
"""

from __future__ import annotations

__all__ = ["CallerCounts"]


class CallerCounts:
    """A count per caller: a principal's name, or ``None`` (an app that knows nobody).

    ``counts[caller]`` is ``caller``'s count (0 for a caller with none); ``len(counts)`` is
    how many callers hold something.
    """

    __slots__ = ("_counts",)

    def __init__(self) -> None:
        self._counts: dict[str | None, int] = {}
        """Each caller's count (a caller with none: absent)."""

    def __getitem__(self, caller: str | None) -> int:
        return self._counts.get(caller, 0)

    def __len__(self) -> int:
        return len(self._counts)

    def add(self, caller: str | None) -> None:
        """Count one more for ``caller``."""
        self._counts[caller] = self._counts.get(caller, 0) + 1

    def remove(self, caller: str | None) -> None:
        """Count one less for ``caller`` (who holds one at least); at 0, forget them."""
        left = self._counts[caller] - 1
        if left:
            self._counts[caller] = left
        else:
            del self._counts[caller]

    def clear(self) -> None:
        """Forget every count."""
        self._counts.clear()
