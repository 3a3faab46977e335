"""Compatibility: ``Frozen`` and its kin moved to :mod:`miniagents.frozen`.

Deeply frozen values are a concept of their own, beside the streams; this module re-exports
them so that ``from miniagents.promising.frozen import Frozen`` keeps working (as does
``from miniagents.promising import Frozen``). New code imports ``miniagents.frozen``.
"""

from __future__ import annotations

from miniagents.frozen.model import Frozen as Frozen
from miniagents.frozen.model import FrozenDict as FrozenDict
from miniagents.frozen.model import freeze as freeze

__all__ = ["Frozen", "FrozenDict", "freeze"]
