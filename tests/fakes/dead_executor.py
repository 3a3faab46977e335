"""A durable run as a dead server left it: pending, held by another DBOS executor.

The tests of ``replay``, of a durable agent asked again under a run's workflow id, and of a
web app's follow of such a run, make one by copying a run recorded in the test's process.
"""

from __future__ import annotations

import sqlite3

DEAD_EXECUTOR = "dead-server"
"""The executor id (``DBOS__VMID``) of the server that ran the copied run and died."""


def pending_elsewhere(database: str, recorded: str, copy: str) -> None:
    """Record ``copy``: the run ``recorded`` as another process's executor left it, pending
    (``dead-server`` ran it and died, and nobody recovered its runs since).

    Args:
        database: The ``sqlite:///`` URL of the database of durable runs.
        recorded: The workflow id of a run recorded in it.
        copy: The workflow id of the copy.
    """
    connection = sqlite3.connect(database.removeprefix("sqlite:///"))
    try:
        with connection:
            connection.execute(
                "CREATE TEMP TABLE copied AS SELECT * FROM workflow_status WHERE workflow_uuid = ?",
                (recorded,),
            )
            connection.execute(
                "UPDATE copied SET workflow_uuid = ?, status = 'PENDING', output = NULL, "
                "executor_id = ?",
                (copy, DEAD_EXECUTOR),
            )
            connection.execute("INSERT INTO workflow_status SELECT * FROM copied")
            connection.execute(
                "INSERT INTO workflow_input SELECT ?, inputs, retention_timestamp "
                "FROM workflow_input WHERE workflow_uuid = ?",
                (copy, recorded),
            )
            connection.execute("DROP TABLE copied")
    finally:
        connection.close()
