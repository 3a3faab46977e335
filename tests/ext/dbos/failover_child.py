"""A program the durable tests run (and kill -9): a durable fallback agent, followed.

``python failover_child.py <workflow id>``, with ``DB_URL`` (the database of runs). The
agent asks the primary model (``primary-model``, one retry of the SDK) and, when its call
fails, the backup model (``backup-model``): ``fallback_agent``. It prints, flushed, one
line per token the reader of the reply sees (``TOKEN <json>``) and ``REPLY <json>`` with
the reply's messages at the end.
"""

from __future__ import annotations

import os

from miniagents.ext.dbos import durable
from miniagents.ext.llm.fallback import fallback_agent
from miniagents.ext.llm.openai import openai_agent
from tests.ext.dbos.followed_run import follow

primary = openai_agent.fork(
    alias="PRIMARY", model="primary-model", max_retries=1, stream=True, stall_timeout=None
)
backup = openai_agent.fork(
    alias="BACKUP", model="backup-model", max_retries=0, stream=True, stall_timeout=None
)
failover = durable(
    fallback_agent(primary, backup).fork(alias="FAILOVER"), database_url=os.environ["DB_URL"]
)


if __name__ == "__main__":
    follow(failover)
