"""Errors of the local pipelines; the whole hierarchy is drawn in :mod:`miniagents.errors`."""

from __future__ import annotations

from miniagents.promising.errors import MiniAgentsError
from miniagents.root_error import ArgumentError

__all__ = [
    "DurablePipelineUnavailableError",
    "PipelineArgumentError",
    "PipelineRerunError",
    "PipelineTimeoutError",
    "ProgressBarMissingError",
]


class DurablePipelineUnavailableError(MiniAgentsError, ImportError):
    """``pipeline(..., durable=...)`` was asked for and ``miniagents.ext.dbos`` is not loaded."""


class PipelineArgumentError(ArgumentError):
    """``pipeline()`` or ``map_agent()`` was given arguments it cannot work with."""


class PipelineRerunError(MiniAgentsError, RuntimeError):
    """A ``Pipeline`` was iterated a second time (each runs once)."""


class PipelineTimeoutError(MiniAgentsError, TimeoutError):
    """An item's interaction took longer than the pipeline's ``timeout``."""


class ProgressBarMissingError(MiniAgentsError, ImportError):
    """A progress bar was asked for and tqdm is not installed (the message has the hint)."""
