"""The progress bar of a pipeline: tqdm on a terminal, nothing elsewhere."""

from __future__ import annotations

import sys
from typing import Protocol

from miniagents.ext.errors import MissingExtraError

__all__ = ["ProgressBar", "progress_bar"]


class ProgressBar(Protocol):
    """What a pipeline needs of a progress bar (tqdm's ``tqdm`` has it)."""

    def update(self, n: float | None = 1) -> bool | None:
        """Count ``n`` more items done."""
        ...

    def close(self) -> None:
        """Stop showing the bar."""
        ...


class _NoBar:
    def update(self, n: float | None = 1) -> bool | None:
        return None

    def close(self) -> None:
        pass


def progress_bar(show: bool | None, total: int | None, description: str) -> ProgressBar:
    """A tqdm bar on stderr, or one that shows nothing.

    Args:
        show: ``True`` to show it, ``False`` not to, ``None`` to show it when stderr is a
            terminal (and tqdm is installed).
        total: How many items there are, if known.
        description: The text before the bar.

    Raises:
        MissingExtraError: if ``show`` is ``True`` and tqdm is not installed (with the hint;
            an ``ImportError``).
    """
    if show is None:
        show = sys.stderr.isatty()
        if not show:
            return _NoBar()
        try:
            import tqdm
        except ImportError:
            return _NoBar()
    if not show:
        return _NoBar()
    try:
        from tqdm import tqdm
    except ImportError as error:
        raise MissingExtraError(
            'The progress bar needs tqdm: pip install "miniagents[ray]" (or tqdm), '
            "or pass progress=False."
        ) from error
    bar: ProgressBar = tqdm(total=total, desc=description, unit="item", file=sys.stderr)
    return bar
