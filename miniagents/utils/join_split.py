"""The former home of ``join_messages`` and ``split_messages``; deprecated, it warns when imported.

Import them from :mod:`miniagents.operators` (or :mod:`miniagents.utils`, which re-exports
them). This module goes in the first release after
:data:`miniagents.reexports.FORMER_HOMES_GO_AFTER`.
"""

from miniagents.operators import join_messages as join_messages
from miniagents.operators import split_messages as split_messages
from miniagents.reexports import warn_former_home

__all__ = ["join_messages", "split_messages"]

warn_former_home(__name__, "miniagents.operators")
