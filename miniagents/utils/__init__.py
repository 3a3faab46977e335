"""Utilities: agent loops and reshaping message streams.

``achain_loop`` and ``adialog_loop`` run agents in cycles; ``join_messages`` and
``split_messages`` reshape messages while they stream.
"""

from miniagents.utils.join_split import join_messages as join_messages
from miniagents.utils.join_split import split_messages as split_messages
from miniagents.utils.loops import ChainStep as ChainStep
from miniagents.utils.loops import achain_loop as achain_loop
from miniagents.utils.loops import adialog_loop as adialog_loop

__all__ = ["ChainStep", "achain_loop", "adialog_loop", "join_messages", "split_messages"]
