"""The former home of ``create_console_user_agent``; kept so that the seeds' imports work.

It is in :mod:`miniagents.ext.console.agents`, beside the console user agent it binds.
"""

from miniagents.ext.console.agents import console_user_agent as console_user_agent
from miniagents.ext.console.agents import create_console_user_agent as create_console_user_agent

__all__ = ["console_user_agent", "create_console_user_agent"]
