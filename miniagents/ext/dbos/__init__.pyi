# Made from the table of miniagents.ext.dbos (Reexports.stub): do not edit.

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
from miniagents.ext.dbos.errors import DurableDataError as DurableDataError
from miniagents.ext.dbos.errors import DurableError as DurableError
from miniagents.ext.dbos.errors import DurableFailedCallError as DurableFailedCallError
from miniagents.ext.dbos.errors import DurableRecordError as DurableRecordError
from miniagents.ext.dbos.errors import DurableRunCancelledError as DurableRunCancelledError
from miniagents.ext.dbos.errors import DurableRunStoppedError as DurableRunStoppedError
from miniagents.ext.dbos.errors import DurableVersionError as DurableVersionError
from miniagents.ext.dbos.history import ChatHistorySQL as ChatHistorySQL
from miniagents.ext.dbos.llm_records import SQLCallStore as SQLCallStore
from miniagents.ext.dbos.llm_records import SQLRunJournal as SQLRunJournal
from miniagents.ext.dbos.runs import APPROVALS_OPEN_SECONDS as APPROVALS_OPEN_SECONDS
from miniagents.ext.dbos.runs import DurableRunInfo as DurableRunInfo
from miniagents.ext.dbos.runs import aapprovals_open as aapprovals_open
from miniagents.ext.dbos.runs import acancel_run as acancel_run
from miniagents.ext.dbos.runs import acancelled_runs as acancelled_runs
from miniagents.ext.dbos.runs import afind_runs as afind_runs
from miniagents.ext.dbos.runs import aname_run as aname_run
from miniagents.ext.dbos.runs import anote_run as anote_run
from miniagents.ext.dbos.runs import arecover as arecover
from miniagents.ext.dbos.runs import arun_named as arun_named
from miniagents.ext.dbos.runs import arun_notes as arun_notes
from miniagents.ext.dbos.runs import is_durable as is_durable
from miniagents.ext.dbos.runs import replay as replay

__all__ = [
    "DurableApprovals", "PendingApproval", "aapprove", "adeny", "apending_approvals",
    "DEFAULT_DATABASE_URL", "durable", "use_database", "workflow_id",
    "DurableApprovalError", "DurableConfigurationError", "DurableDatabaseError", "DurableDataError",
    "DurableError", "DurableFailedCallError", "DurableRecordError", "DurableRunCancelledError",
    "DurableRunStoppedError", "DurableVersionError",
    "ChatHistorySQL",
    "SQLCallStore", "SQLRunJournal",
    "APPROVALS_OPEN_SECONDS", "DurableRunInfo", "aapprovals_open", "acancel_run", "acancelled_runs",
    "afind_runs", "aname_run", "anote_run", "arecover", "arun_named", "arun_notes", "is_durable",
    "replay",
]
