"""Errors of the stream operators; the whole hierarchy is drawn in :mod:`miniagents.errors`."""

from __future__ import annotations

from miniagents.root_error import ArgumentError

__all__ = ["OperatorArgumentError"]


class OperatorArgumentError(ArgumentError):
    """An operator was given an argument it cannot work with (e.g. an empty delimiter)."""
