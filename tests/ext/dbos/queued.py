"""Runs and approvals written straight into a database of durable runs, as if they waited.

Some tests need a record that the library no longer makes (a run whose id it now refuses)
or one that no process will run (an approval whose run is gone): :func:`queued_nowhere`
enqueues such workflows through a ``DBOSClient``, in one transaction, in a queue that no
process reads, so that they wait until the test decides or recovers them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Waiting:
    """One workflow to record as waiting: its registered name, its id and its arguments."""

    workflow_name: str
    workflow_id: str
    arguments: tuple[object, ...] = ()


def queued_nowhere(url: str, workflows: Iterable[Waiting]) -> None:
    """Record each of ``workflows`` in the database ``url``, in a queue that nobody reads.

    Args:
        url: The database of durable runs (SQLite's or PostgreSQL's URL).
        workflows: What to enqueue, in order, in one transaction.
    """
    import sqlalchemy

    from miniagents.ext.dbos._sqlite import close_client, new_client, shim_arguments

    client = new_client(url)
    engine = sqlalchemy.create_engine(url, connect_args=shim_arguments(url))
    try:
        with engine.begin() as connection:
            for workflow in workflows:
                client.enqueue_in_transaction(
                    connection,
                    {
                        "queue_name": "nobody",
                        "workflow_name": workflow.workflow_name,
                        "workflow_id": workflow.workflow_id,
                    },
                    *workflow.arguments,
                )
    finally:
        engine.dispose()
        close_client(client)
