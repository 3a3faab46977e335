"""Deeply frozen values: ``Frozen`` pydantic models, ``FrozenDict``, ``freeze``, ``hash_key``.

The ground floor beside :mod:`miniagents.promising` (streams): a value that cannot change
and has a stable content key. Messages are ``Frozen`` models. The errors of this package
(``FrozenFieldError``, ``FrozenInstanceError``, ``HashKeyError``) are defined in
:mod:`miniagents.frozen.errors`, under the root of every MiniAgents error
(:mod:`miniagents.root_error`), and re-exported here: the package imports nothing of
:mod:`miniagents.promising`.
"""

from __future__ import annotations

from miniagents.frozen.errors import FrozenFieldError as FrozenFieldError
from miniagents.frozen.errors import FrozenInstanceError as FrozenInstanceError
from miniagents.frozen.errors import HashKeyError as HashKeyError
from miniagents.frozen.model import Frozen as Frozen
from miniagents.frozen.model import FrozenDict as FrozenDict
from miniagents.frozen.model import freeze as freeze

__all__ = [
    "Frozen",
    "FrozenDict",
    "FrozenFieldError",
    "FrozenInstanceError",
    "HashKeyError",
    "freeze",
]
