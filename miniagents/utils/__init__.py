"""Utilities: agent loops, and (re-exported from :mod:`miniagents.operators`) reshaping messages.

``achain_loop`` and ``adialog_loop`` run agents in cycles; ``join_messages`` and
``split_messages`` reshape messages while they stream (every stream operator is in
:mod:`miniagents.operators`).
"""

from miniagents.operators import join_messages as join_messages
from miniagents.operators import split_messages as split_messages
from miniagents.utils.errors import ChainDefinitionError as ChainDefinitionError
from miniagents.utils.loops import ChainStep as ChainStep
from miniagents.utils.loops import achain_loop as achain_loop
from miniagents.utils.loops import adialog_loop as adialog_loop

__all__ = [
    "ChainDefinitionError",
    "ChainStep",
    "achain_loop",
    "adialog_loop",
    "join_messages",
    "split_messages",
]
