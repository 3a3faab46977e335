"""The engines a process keeps: one let go of closes its connections, lent ones when given back.

Without help, SQLAlchemy's ``Engine.dispose()`` leaves a connection that was lent (checked
out) when it was called open when it is given back: it goes back into the disposed pool,
which only the garbage collector's cycle pass frees (never, with ``gc.disable()``).
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy

from miniagents.ext.dbos._kept_engines import KeptEngines, dispose_engine
from tests.ext.dbos.descriptors import open_files


@pytest.fixture
def no_cycle_collection() -> Iterator[None]:
    """The garbage collector's cycle pass off: what is closed is closed by the code itself."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def test_a_connection_lent_when_its_engine_is_let_go_is_closed_when_given_back(
    tmp_path: Path, no_cycle_collection: None
) -> None:
    first, second = tmp_path / "first.sqlite", tmp_path / "second.sqlite"
    engines: KeptEngines[Path, sqlalchemy.Engine] = KeptEngines(
        lambda path: sqlalchemy.create_engine(f"sqlite:///{path}"), dispose_engine, kept=1
    )
    engine = engines.get(first)
    lent = engine.connect()
    lent.exec_driver_sql("CREATE TABLE kept (x INTEGER)")
    lent.commit()
    pooled = engine.connect()  # another, given back before the engine is let go
    pooled.exec_driver_sql("SELECT 1")
    pooled.close()
    assert open_files(first) == 2
    engines.get(second)  # the first let go of: its pooled connection closed, the lent one not
    assert open_files(first) == 1
    lent.exec_driver_sql("SELECT x FROM kept")  # (still usable while lent)
    lent.close()
    assert open_files(first) == 0  # closed when given back, not left in the disposed pool
    again = engine.connect()  # an engine let go of still works, and pools as before
    again.exec_driver_sql("SELECT x FROM kept")
    again.close()
    assert open_files(first) == 1
    engine.dispose()
    assert open_files(first) == 0
