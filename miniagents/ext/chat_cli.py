"""The former home of the ``miniagents chat`` command line; kept so that old imports work.

The command line is in :mod:`miniagents.ext.console.chat_cli`.
"""

from miniagents.ext.console.chat_cli import DEFAULT_SYSTEM_PROMPT as DEFAULT_SYSTEM_PROMPT
from miniagents.ext.console.chat_cli import PROVIDERS as PROVIDERS
from miniagents.ext.console.chat_cli import main as main

__all__ = ["DEFAULT_SYSTEM_PROMPT", "PROVIDERS", "main"]
