"""The former home of the console agents; kept so that old imports still work.

The console agents are in :mod:`miniagents.ext.console.agents`.
"""

from miniagents.ext.console.agents import console_input_agent as console_input_agent
from miniagents.ext.console.agents import console_output_agent as console_output_agent
from miniagents.ext.console.agents import console_user_agent as console_user_agent

__all__ = ["console_input_agent", "console_output_agent", "console_user_agent"]
