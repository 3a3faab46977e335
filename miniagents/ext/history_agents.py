"""The former home of the history agents; kept so that old imports (the seeds') still work.

The history agents are in :mod:`miniagents.ext.history.agents`.
"""

from miniagents.ext.history.agents import history_agent as history_agent
from miniagents.ext.history.agents import in_memory_history_agent as in_memory_history_agent
from miniagents.ext.history.agents import markdown_history_agent as markdown_history_agent

__all__ = ["history_agent", "in_memory_history_agent", "markdown_history_agent"]
