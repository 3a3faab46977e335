"""The progress bar of a pipeline (``pipeline``, ``ray_pipeline``): tqdm on a terminal.

It shows the items done out of the total (when known), their rate, the time left, the
failures so far, and what the *meters* add (the tokens and the cost of the LLM calls made
since the bar started, once ``miniagents.ext.llm`` is imported); it draws on stderr, and
only when stderr is a terminal unless asked::

    classify: 40%|████      | 800/2000 [00:04<00:06, 190.2item/s, failed=1, tokens=96,000, $0.0144]

**Meters** are how a layer above adds its figures without this layer importing it: a meter
is a function called when a bar starts (in the run's ``MiniAgents`` context), returning a
reading (a function giving the text to show, or ``None`` for nothing yet), or ``None`` if it
has nothing to show for this run. :func:`add_progress_meter` registers one; the bar reads
its meters at most every ``POSTFIX_INTERVAL`` seconds, and once more when it closes.

tqdm is an optional dependency (``pip install "miniagents[progress]"``): without it, a bar
that was not asked for shows nothing, and one that was raises
:class:`~miniagents.pipeline.errors.ProgressBarMissingError` with the install hint.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sized
from typing import Protocol, TypeAlias

from miniagents.arguments import check_count, check_flag, refused_argument
from miniagents.miniagents.registering import register
from miniagents.pipeline.errors import ProgressBarMissingError
from miniagents.root_error import ArgumentError

__all__ = [
    "POSTFIX_INTERVAL",
    "ProgressBar",
    "ProgressMeter",
    "ProgressReading",
    "add_progress_meter",
    "check_progress_options",
    "known_total",
    "progress_bar",
]

ProgressReading: TypeAlias = Callable[[], "str | None"]
"""A meter's reading for one bar: the text to show now (``None``: nothing yet)."""

ProgressMeter: TypeAlias = Callable[[], "ProgressReading | None"]
"""Called when a bar starts, in the run's context: its reading, or ``None`` to show nothing."""

POSTFIX_INTERVAL = 0.1
"""Seconds between two readings of the meters by a bar (tqdm redraws at most this often)."""

_METERS: list[ProgressMeter] = []


def add_progress_meter(meter: ProgressMeter) -> Callable[[], None]:
    """Show what ``meter`` reads on every progress bar started from now on.

    Args:
        meter: Called when a bar starts (see the module); a meter added twice counts once.

    Returns:
        A function that removes the meter again (bars already started keep it).
    """
    return register(_METERS, meter)


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

    __slots__ = ("_bar", "_next_reading", "_readings", "done", "failed")

    def __init__(self, bar: _Bar | None = None) -> None:
        """Count on ``bar`` (a tqdm bar), or only count with ``None``.

        A bar that is drawn starts the registered meters (see :func:`add_progress_meter`).
        """
        self._bar = bar
        self.done = 0
        self.failed = 0
        self._readings: list[ProgressReading] = []
        if bar is not None:
            for meter in list(_METERS):
                reading = meter()
                if reading is not None:
                    self._readings.append(reading)
        self._next_reading = time.monotonic() + POSTFIX_INTERVAL

    @property
    def shown(self) -> bool:
        """Whether the bar is drawn (on stderr)."""
        return self._bar is not None

    def advance(self, failed: bool = False) -> None:
        """Count one more item done (``failed=True``: an item that failed)."""
        self.done += 1
        if failed:
            self.failed += 1
        if self._bar is None:
            return
        now = time.monotonic()
        if failed or (self._readings and now >= self._next_reading):
            self._bar.set_postfix_str(self.postfix(), refresh=False)
            self._next_reading = now + POSTFIX_INTERVAL
        self._bar.update(1)

    def postfix(self) -> str:
        """The text after the figures: the failures, then what the meters read now."""
        parts = [f"failed={self.failed}"] if self.failed else []
        for reading in self._readings:
            text = reading()
            if text:
                parts.append(text)
        return ", ".join(parts)

    def close(self) -> None:
        """Stop drawing the bar (it stays on the screen as it ended, the meters read last)."""
        if self._bar is not None:
            if self._readings:
                self._bar.set_postfix_str(self.postfix(), refresh=True)
            self._bar.close()
            self._bar = None


def known_total(items: object) -> int | None:
    """The number of ``items`` for a progress bar's total, or ``None`` if it is not known.

    Items that are not ``Sized`` (a generator, an async iterable) have no total, nor have
    items whose ``__len__`` fails: a user's ``__len__`` may refuse (a lazy query that knows
    its length only once run), and the run goes on with the total unknown. Both pipelines
    (``pipeline`` and ``ray_pipeline``) read their total with it.

    Args:
        items: The items of a run, as given to the pipeline.
    """
    if not isinstance(items, Sized):
        return None
    try:
        return len(items)
    except Exception:  # (any error of a user's __len__: no total, no failure)
        return None


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


def check_progress_options(
    progress: object, total: object, description: object, *, owner: str, error: type[ArgumentError]
) -> None:
    """Check a pipeline's ``progress``, ``total`` and ``description`` (as it is called).

    Args:
        progress: ``True``, ``False`` or ``None``.
        total: A whole number >= 0, or ``None``.
        description: A ``str``, or ``None``.
        owner: The caller, as its messages name it (``"pipeline()"``).
        error: The caller's error for a bad argument.

    Raises:
        ArgumentError: (``error``) for anything else, naming the fix.
    """
    if progress is not None:
        check_flag(
            progress, "progress", owner=owner, fix="Or None: shown on a terminal.", error=error
        )
    if total is not None:  # (read by the progress bar, as it starts: checked before)
        check_count(total, "total", least=0, owner=owner, fix="Or None: len(items).", error=error)
    if description is not None and not isinstance(description, str):
        raise refused_argument(
            description,
            "description",
            "a str (the text before the progress bar), or None for the last agent's alias",
            owner=owner,
            error=error,
        )
