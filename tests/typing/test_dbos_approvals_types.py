"""Static typing tests for the approvals of ``miniagents.ext.dbos``: ``approve``, ``deny``.

The ``check_*`` functions are never called: they exist to be type-checked by mypy
(``mypy.ini`` is strict, with ``warn_unused_ignores``). ``assert_type`` pins the exact
inferred types, and each line that must be rejected carries a precise
``# type: ignore[code]``. :func:`test_dbos_approvals_types_pass_mypy` runs mypy on this file.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import assert_type

from miniagents.ext.dbos import (
    DurableApprovals,
    PendingApproval,
    aapprove,
    adeny,
    apending_approvals,
)
from miniagents.ext.tools import ApprovalStore, MemoryApprovals, ToolDecision
from tests.fakes.typecheck import assert_passes_mypy

URL = "sqlite:///runs.sqlite"


async def check_apending_approvals() -> None:
    waiting = await apending_approvals(database_url=URL)
    assert_type(waiting, list[PendingApproval])
    assert_type(await apending_approvals("order-42"), list[PendingApproval])
    call = waiting[0]
    assert_type(call.workflow_id, str)
    assert_type(call.call_id, str)
    assert_type(call.tool_name, str)
    assert_type(call.arguments, Mapping[str, object])
    await apending_approvals(42)  # type: ignore[arg-type]
    await apending_approvals("order-42", URL)  # type: ignore[call-arg]


async def check_the_stores_are_approval_stores() -> None:
    stores: list[ApprovalStore] = [MemoryApprovals(), DurableApprovals(URL, decided_by="ada")]
    for store in stores:
        assert_type(await store.apending(), list[PendingApproval])
        assert_type(await store.adecide("run", "call", ToolDecision(True, decided_by="ada")), None)
    assert_type(await aapprove("order-42", "call_1", decided_by="ada"), None)
    assert_type(await adeny("order-42", "call_1", decided_by="ada"), None)
    assert_type(PendingApproval("r", "c", "t", {}).run_id, str)
    await adeny("order-42", "call_1", decided_by=7)  # type: ignore[arg-type]


async def check_approve_and_deny() -> None:
    assert_type(await aapprove("order-42", "call_1", database_url=URL), None)
    assert_type(await aapprove("order-42", "call_1", arguments={"name": "b.txt"}), None)
    assert_type(await adeny("order-42", "call_1", reason="Not now."), None)
    assert_type(await adeny("order-42", "call_1"), None)
    await aapprove("order-42")  # type: ignore[call-arg]
    await aapprove("order-42", "call_1", {"name": "b.txt"})  # type: ignore[call-arg]
    await aapprove("order-42", "call_1", arguments=["b.txt"])  # type: ignore[arg-type]
    await adeny("order-42", "call_1", reason=1)  # type: ignore[arg-type]
    await adeny("order-42", "call_1", "Not now.")  # type: ignore[call-arg]


def test_dbos_approvals_types_pass_mypy() -> None:
    assert_passes_mypy(__file__)
