"""The former home of the console and file agents; kept so that old imports still work.

The console agents are in :mod:`miniagents.ext.console`, the file agent in
:mod:`miniagents.ext.file_agents`.
"""

from miniagents.ext.console.agents import console_input_agent as console_input_agent
from miniagents.ext.console.agents import console_output_agent as console_output_agent
from miniagents.ext.console.agents import console_user_agent as console_user_agent
from miniagents.ext.file_agents import file_output_agent as file_output_agent

__all__ = [
    "console_input_agent",
    "console_output_agent",
    "console_user_agent",
    "file_output_agent",
]
