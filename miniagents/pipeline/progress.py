"""The progress bar of a pipeline (``pipeline``, ``ray_pipeline``): tqdm on a terminal.

It shows the items done out of the total (when known), their rate, the time left and the
failures so far; it draws on stderr, and only when stderr is a terminal unless asked::

    classify: 40%|████      | 800/2000 [00:04<00:06, 190.2item/s, failed=1]

tqdm is an optional dependency (``pip install "miniagents[progress]"``): without it, a bar
that was not asked for shows nothing, and one that was raises
:class:`~miniagents.pipeline.errors.ProgressBarMissingError` with the install hint.
"""

from __future__ import annotations

import sys
from typing import Protocol

from miniagents.pipeline.errors import ProgressBarMissingError

__all__ = ["ProgressBar", "progress_bar"]


class _Bar(Protocol):
    """What is used of tqdm's ``tqdm``."""

    def update(self, n: float | None = 1) -> bool | None: ...

    def set_postfix_str(self, s: str = "", refresh: bool = True) -> None: ...

    def close(self) -> None: ...


class ProgressBar:
    """Counts the items done and the failures; shows them if it has a bar to draw on.

    Attributes:
        done: The items done so far (succeeded or failed).
        failed: The items that failed so far.
    """

    __slots__ = ("_bar", "done", "failed")

    def __init__(self, bar: _Bar | None = None) -> None:
        """Count on ``bar`` (a tqdm bar), or only count with ``None``."""
        self._bar = bar
        self.done = 0
        self.failed = 0

    @property
    def shown(self) -> bool:
        """Whether the bar is drawn (on stderr)."""
        return self._bar is not None

    def advance(self, failed: bool = False) -> None:
        """Count one more item done (``failed=True``: an item that failed)."""
        self.done += 1
        if self._bar is None:
            return
        if failed:
            self.failed += 1
            self._bar.set_postfix_str(f"failed={self.failed}", refresh=False)
        self._bar.update(1)

    def close(self) -> None:
        """Stop drawing the bar (it stays on the screen as it ended)."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def progress_bar(show: bool | None, total: int | None, description: str) -> ProgressBar:
    """A progress bar on stderr, or one that only counts.

    Args:
        show: ``True`` to show it, ``False`` not to, ``None`` to show it when stderr is a
            terminal (and tqdm is installed).
        total: How many items there are, if known (for the percentage and the time left).
        description: The text before the bar.

    Raises:
        ProgressBarMissingError: if ``show`` is ``True`` and tqdm is not installed (with
            the install hint; an ``ImportError``).
    """
    if show is None:
        show = sys.stderr.isatty()
        if not show:
            return ProgressBar()
        try:
            import tqdm as _tqdm_module  # noqa: F401  # is it there?
        except ImportError:
            return ProgressBar()
    if not show:
        return ProgressBar()
    try:
        from tqdm import tqdm
    except ImportError as error:
        raise ProgressBarMissingError(
            'The progress bar needs tqdm: pip install "miniagents[progress]" (or tqdm), '
            "or pass progress=False."
        ) from error
    bar: _Bar = tqdm(total=total, desc=description, unit="item", file=sys.stderr)
    return ProgressBar(bar)
