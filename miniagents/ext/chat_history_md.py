"""The former home of ``ChatHistoryMD``; kept so that old imports (the seeds') still work.

The markdown history is in :mod:`miniagents.ext.history.markdown`.
"""

from miniagents.ext.history.markdown import ChatHistoryMD as ChatHistoryMD

__all__ = ["ChatHistoryMD"]
