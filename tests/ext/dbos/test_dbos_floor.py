"""The DBOS releases that the ``dbos`` extra allows have every DBOS call the code makes.

``miniagents.ext.dbos`` keeps an app's notes and a decision's mark with a run as its
workflow attributes, merged into those it has (``update_workflow_attributes(..., merge=True)``,
of ``DBOS`` and of ``DBOSClient``). DBOS 3.0 to 3.2 have workflow attributes, but their
update takes no ``merge=``: with them, ``anote_run`` (a web app's pause note) and each
decision on a run's tool call (given to its request, or from another process) failed with a
``TypeError`` (checked in those releases' wheels, and with 3.2.0 installed, on 2026-11-28).
3.3.0 is the first that takes it.
"""

from __future__ import annotations

import inspect
import tomllib
from pathlib import Path

from packaging.requirements import Requirement

PYPROJECT = Path(__file__).resolve().parents[3] / "pyproject.toml"

WITHOUT_MERGE = ("3.0.0", "3.1.0", "3.2.0")
"""The DBOS releases with workflow attributes whose update takes no ``merge=``."""

FIRST_WITH_MERGE = "3.3.0"


def _dbos_requirements() -> list[Requirement]:
    """The requirements of DBOS in the extras that install it (``dbos``, ``all``)."""
    extras = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"][
        "optional-dependencies"
    ]
    found = [
        requirement
        for extra in ("dbos", "all")
        for line in extras[extra]
        if (requirement := Requirement(line)).name == "dbos"
    ]
    assert len(found) == 2, found
    return found


def test_the_installed_dbos_merges_workflow_attributes() -> None:
    from dbos import DBOS, DBOSClient

    for update in (DBOS.update_workflow_attributes_async, DBOSClient.update_workflow_attributes):
        assert "merge" in inspect.signature(update).parameters, update


def test_the_extras_allow_no_dbos_whose_attributes_update_takes_no_merge() -> None:
    for requirement in _dbos_requirements():
        allowed = [version for version in WITHOUT_MERGE if requirement.specifier.contains(version)]
        assert not allowed, (
            f"pyproject.toml's {requirement} allows DBOS {', '.join(allowed)}, whose "
            "update_workflow_attributes takes no merge= (the notes of a run fail there): "
            f"require dbos>={FIRST_WITH_MERGE}."
        )
        assert requirement.specifier.contains(FIRST_WITH_MERGE), requirement
