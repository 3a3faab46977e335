"""The former home of ``join_messages`` and ``split_messages``: now :mod:`miniagents.operators`.

Kept so that old imports still work; ``miniagents.utils`` re-exports them too.
"""

from miniagents.operators import join_messages as join_messages
from miniagents.operators import split_messages as split_messages

__all__ = ["join_messages", "split_messages"]
