"""The former home of the console agents; deprecated, it warns when imported.

Import them from :mod:`miniagents.ext.console`. This module goes in the first release after
:data:`miniagents.reexports.FORMER_HOMES_GO_AFTER`.
"""

from miniagents.ext.console.agents import console_input_agent as console_input_agent
from miniagents.ext.console.agents import console_output_agent as console_output_agent
from miniagents.ext.console.agents import console_user_agent as console_user_agent
from miniagents.reexports import warn_former_home

__all__ = ["console_input_agent", "console_output_agent", "console_user_agent"]

warn_former_home(__name__, "miniagents.ext.console")
