"""Errors of the local pipelines; the whole hierarchy is drawn in :mod:`miniagents.errors`."""

from __future__ import annotations

from miniagents.promising.errors import MiniAgentsError

__all__ = ["PipelineArgumentError", "PipelineRerunError", "PipelineTimeoutError"]


class PipelineArgumentError(MiniAgentsError, ValueError):
    """``pipeline()`` was given arguments it cannot work with (no agents, a limit below 1)."""


class PipelineRerunError(MiniAgentsError, RuntimeError):
    """A ``Pipeline`` was iterated a second time (each runs once)."""


class PipelineTimeoutError(MiniAgentsError, TimeoutError):
    """An item's interaction took longer than the pipeline's ``timeout``."""
