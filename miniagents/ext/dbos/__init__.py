"""Durable agents on DBOS Transact: a crash mid-run resumes without repeating a finished call.

``durable(agent)`` runs each interaction of ``agent`` as a DBOS workflow whose model and
tool calls are recorded steps (SQLite by default, Postgres by URL); ``workflow_id(...)``
names a run, so that asking again for it runs it once; ``aapprove``, ``adeny`` and
``apending_approvals`` decide, from any process, the calls its runs wait on (``approvals``);
``is_durable``, ``afind_runs``, ``arecover``, ``replay`` and ``acancel_run`` find a run again
by its id, e.g. after a restart of the web app that serves it, and ``anote_run``,
``arun_notes``, ``aname_run`` and ``arun_named`` keep what the app needs for that with the
run (``runs``).
``ChatHistorySQL`` keeps chat histories in the same kind of store (``history``), and
``SQLCallStore`` and ``SQLRunJournal`` a call cache's recordings and a batch run's journal
(``llm_records``). Needs
``pip install "miniagents[dbos]"``.
See ``docs/durability.md`` and ``docs/history-sql.md``.
"""

from __future__ import annotations

from miniagents.reexports import Reexports

_REEXPORTS = Reexports(
    __name__,
    {
        "miniagents.ext.dbos.approvals": (
            "DurableApprovals PendingApproval aapprove adeny apending_approvals"
        ),
        "miniagents.ext.dbos.durable": "DEFAULT_DATABASE_URL durable use_database workflow_id",
        "miniagents.ext.dbos.errors": (
            "DurableApprovalError DurableConfigurationError DurableDatabaseError DurableDataError "
            "DurableError "
            "DurableFailedCallError DurableRecordError DurableRunCancelledError "
            "DurableRunStoppedError DurableVersionError"
        ),
        "miniagents.ext.dbos.llm_records": "SQLCallStore SQLRunJournal",
        "miniagents.ext.dbos.runs": (
            "APPROVALS_OPEN_SECONDS DurableRunInfo aapprovals_open acancel_run acancelled_runs "
            "afind_runs aname_run anote_run arecover arun_named arun_notes is_durable replay"
        ),
        "miniagents.ext.dbos.history": "ChatHistorySQL",
    },
    eager=["miniagents.ext.dbos.durable"],  # it makes pipeline(..., durable=...) record runs
)
"""The package's names by module, the others imported at their first use (``ChatHistorySQL``
loads SQLAlchemy); type checkers read ``__init__.pyi``, made of this table."""
globals().update(_REEXPORTS.imported())  # (the function durable, not its module)

__all__ = _REEXPORTS.names
__getattr__ = _REEXPORTS.attribute
__dir__ = _REEXPORTS.dir
