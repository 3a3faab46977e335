"""The console: talk with an agent at a terminal.

- :mod:`~miniagents.ext.console.agents`: the console agents (the user at a terminal, reading
  one message, printing a stream) and ``create_console_user_agent``;
- :mod:`~miniagents.ext.console.chat_cli`: the ``miniagents chat`` command line.

How a terminal is read and written (prompt_toolkit when it is installed, extra ``console``)
is the private module beside them. ``miniagents.ext.console_user_agent`` and
``miniagents.ext.misc_agents`` are former homes that the seeds import (supported);
``miniagents.ext.console_agents`` and ``miniagents.ext.chat_cli`` are deprecated ones.
"""

from miniagents.ext.console.agents import console_input_agent as console_input_agent
from miniagents.ext.console.agents import console_output_agent as console_output_agent
from miniagents.ext.console.agents import console_user_agent as console_user_agent
from miniagents.ext.console.agents import create_console_user_agent as create_console_user_agent

__all__ = [
    "console_input_agent",
    "console_output_agent",
    "console_user_agent",
    "create_console_user_agent",
]
