"""Deeply frozen values: ``Frozen`` pydantic models, ``FrozenDict``, ``freeze``, ``hash_key``.

The ground floor beside :mod:`miniagents.promising` (streams): a value that cannot change
and has a stable content key. Messages are ``Frozen`` models. The errors of this package
(``FrozenFieldError``, ``FrozenInstanceError``, ``HashKeyError``) are defined with the root
of every MiniAgents error, in :mod:`miniagents.promising.errors`, and re-exported here.
"""

from __future__ import annotations

from miniagents.frozen.model import Frozen as Frozen
from miniagents.frozen.model import FrozenDict as FrozenDict
from miniagents.frozen.model import freeze as freeze
from miniagents.promising.errors import FrozenFieldError as FrozenFieldError
from miniagents.promising.errors import FrozenInstanceError as FrozenInstanceError
from miniagents.promising.errors import HashKeyError as HashKeyError

__all__ = [
    "Frozen",
    "FrozenDict",
    "FrozenFieldError",
    "FrozenInstanceError",
    "HashKeyError",
    "freeze",
]
