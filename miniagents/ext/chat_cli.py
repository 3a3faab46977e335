"""The former home of the ``miniagents chat`` command line; deprecated, it warns when imported.

Import it from :mod:`miniagents.ext.console.chat_cli`. This module goes in the first release
after :data:`miniagents.reexports.FORMER_HOMES_GO_AFTER`.
"""

from miniagents.ext.console.chat_cli import DEFAULT_SYSTEM_PROMPT as DEFAULT_SYSTEM_PROMPT
from miniagents.ext.console.chat_cli import PROVIDERS as PROVIDERS
from miniagents.ext.console.chat_cli import main as main
from miniagents.reexports import warn_former_home

__all__ = ["DEFAULT_SYSTEM_PROMPT", "PROVIDERS", "main"]

warn_former_home(__name__, "miniagents.ext.console.chat_cli")
