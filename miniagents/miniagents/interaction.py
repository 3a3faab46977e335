"""The former home of ``InteractionContext`` and ``AgentCall``; deprecated, it warns when imported.

Import them from :mod:`miniagents.miniagents` (``InteractionContext`` from :mod:`miniagents`
too); they are defined in :mod:`miniagents.miniagents.agent`. This module goes in the first
release after :data:`miniagents.reexports.FORMER_HOMES_GO_AFTER`.
"""

from miniagents.miniagents.agent import AgentCall as AgentCall
from miniagents.miniagents.agent import InteractionContext as InteractionContext
from miniagents.reexports import warn_former_home

__all__ = ["AgentCall", "InteractionContext"]

warn_former_home(__name__, "miniagents.miniagents")
