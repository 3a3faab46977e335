"""Durable agents on DBOS Transact: a crash mid-run resumes without repeating a finished call.

``durable(agent)`` runs each interaction of ``agent`` as a DBOS workflow whose model and
tool calls are recorded steps (SQLite by default, Postgres by URL); ``workflow_id(...)``
names a run, so that asking again for it runs it once; ``aapprove``, ``adeny`` and
``apending_approvals`` decide, from any process, the calls its runs wait on (``approvals``);
``is_durable``, ``afind_runs``, ``arecover``, ``replay`` and ``acancel_run`` find a run again
by its id, e.g. after a restart of the web app that serves it, and ``anote_run``,
``aname_run`` and ``arun_named`` keep what the app needs for that with the run (``runs``).
``ChatHistorySQL`` keeps chat histories in the same kind of store (``history``). Needs
``pip install "miniagents[dbos]"``.
See ``docs/durability.md`` and ``docs/history-sql.md``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from miniagents.ext.dbos.approvals import DurableApprovals as DurableApprovals
from miniagents.ext.dbos.approvals import PendingApproval as PendingApproval
from miniagents.ext.dbos.approvals import aapprove as aapprove
from miniagents.ext.dbos.approvals import adeny as adeny
from miniagents.ext.dbos.approvals import apending_approvals as apending_approvals
from miniagents.ext.dbos.durable import DEFAULT_DATABASE_URL as DEFAULT_DATABASE_URL
from miniagents.ext.dbos.durable import durable as durable
from miniagents.ext.dbos.durable import use_database as use_database
from miniagents.ext.dbos.durable import workflow_id as workflow_id
from miniagents.ext.dbos.errors import DurableApprovalError as DurableApprovalError
from miniagents.ext.dbos.errors import DurableConfigurationError as DurableConfigurationError
from miniagents.ext.dbos.errors import DurableDatabaseError as DurableDatabaseError
from miniagents.ext.dbos.errors import DurableError as DurableError
from miniagents.ext.dbos.errors import DurableFailedCallError as DurableFailedCallError
from miniagents.ext.dbos.errors import DurableRecordError as DurableRecordError
from miniagents.ext.dbos.errors import DurableVersionError as DurableVersionError
from miniagents.ext.dbos.runs import DurableRunInfo as DurableRunInfo
from miniagents.ext.dbos.runs import acancel_run as acancel_run
from miniagents.ext.dbos.runs import afind_runs as afind_runs
from miniagents.ext.dbos.runs import aname_run as aname_run
from miniagents.ext.dbos.runs import anote_run as anote_run
from miniagents.ext.dbos.runs import arecover as arecover
from miniagents.ext.dbos.runs import arun_named as arun_named
from miniagents.ext.dbos.runs import is_durable as is_durable
from miniagents.ext.dbos.runs import replay as replay

__all__ = [
    "DEFAULT_DATABASE_URL",
    "ChatHistorySQL",
    "DurableApprovalError",
    "DurableApprovals",
    "DurableConfigurationError",
    "DurableDatabaseError",
    "DurableError",
    "DurableFailedCallError",
    "DurableRecordError",
    "DurableRunInfo",
    "DurableVersionError",
    "PendingApproval",
    "aapprove",
    "acancel_run",
    "adeny",
    "afind_runs",
    "aname_run",
    "anote_run",
    "apending_approvals",
    "arecover",
    "arun_named",
    "durable",
    "is_durable",
    "replay",
    "use_database",
    "workflow_id",
]

if TYPE_CHECKING:
    from miniagents.ext.dbos.history import ChatHistorySQL as ChatHistorySQL

else:  # mypy sees the import above, and no catch-all attribute

    def __getattr__(name: str) -> object:
        """Load ``ChatHistorySQL`` (and SQLAlchemy with it) at its first use."""
        if name == "ChatHistorySQL":
            from miniagents.ext.dbos.history import ChatHistorySQL

            return ChatHistorySQL
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
