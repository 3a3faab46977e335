"""The budgets' live link, opened by the Ray agents: when it is, and what it costs when it is not.

(The link at work, across a real cluster's workers, is in ``test_budgets.py``.)
"""

from __future__ import annotations

import asyncio
import pickle
import subprocess
import sys
from types import SimpleNamespace

import pytest

import miniagents.ext.ray  # noqa: F401  # registers the budgets' link opener
from miniagents import MiniAgents
from miniagents.ext.llm import Budget, charged_to, with_budget
from miniagents.ext.llm.charging import CallCharge
from miniagents.ext.llm.errors import LLMError
from miniagents.ext.llm.usage import REMOTE_PIECES_AHEAD
from miniagents.ext.ray._budgets import _VERDICT, _AwayEnd, open_link
from miniagents.ext.ray._wire import Call
from miniagents.ext.ray._worker import _read_links
from miniagents.ext.ray.errors import RayAgentError, RayWorkerDiedError
from miniagents.miniagents.lowlevel import outgoing_links


async def test_without_a_budget_no_link_is_opened_and_with_one_it_is() -> None:
    async with MiniAgents():
        assert outgoing_links() == []  # the context's own meter needs none
        with charged_to(Budget()):
            assert len(outgoing_links()) == 1
    async with with_budget(MiniAgents(), Budget()):
        assert len(outgoing_links()) == 1
    assert len(outgoing_links([Budget()])) == 1  # one travelling in the call's arguments


def test_the_ray_agents_do_not_load_the_llm_agents_to_open_no_link() -> None:
    """No budget can apply before ``miniagents.ext.llm.usage`` is loaded: it is not loaded."""
    code = (
        "import sys, miniagents.ext.ray\n"
        "from miniagents.miniagents.lowlevel import outgoing_links\n"
        "links = outgoing_links()\n"
        "loaded = [name for name in sys.modules if name.startswith('miniagents.ext.llm')]\n"
        "print(links, sorted(loaded))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert result.stdout.strip() == "[] []"


def _budget_of_another_process() -> Budget:
    """A budget pickled by another process: here, its stand-in."""
    code = (
        "import pickle, sys\n"
        "from miniagents.ext.llm import Budget\n"
        "sys.stdout.buffer.write(pickle.dumps(Budget(max_requests=5)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, check=True, timeout=120
    )
    budget = pickle.loads(result.stdout)
    assert isinstance(budget, Budget)
    return budget


async def test_a_closed_link_leaves_no_admission_running() -> None:
    """A nested call's admission waits for the caller's caller: closing the link ends it."""
    far = _budget_of_another_process()

    async def interaction() -> None:  # (a task: the links set are its context's)
        caller = open_link([Budget(max_requests=5)])  # a limit there: calls wait for it
        assert caller is not None
        caller.away().open(lambda: None)  # this process, as a worker: its link to its caller
        home = open_link([Budget()])  # the link of a nested call from here
        assert home is not None
        away = home.away()
        away.open(lambda: None)  # (the nested call's far end, here too)
        away.start((far,), "nested", "gpt-4o-mini", None)
        home.open(lambda: None)
        home.receive(away.drain())  # the call asks to start: its admission waits for the caller
        assert len(asyncio.all_tasks() - before) == 2  # (this task, and the admission)
        home.close()
        await home.asettled()
        assert asyncio.all_tasks() - before == {asyncio.current_task()}

    async with MiniAgents():
        before = asyncio.all_tasks()
        await asyncio.create_task(interaction())


@pytest.mark.parametrize("admits", [False, True])
async def test_a_call_asking_a_closed_link_fails_with_its_error_limit_or_none(admits: bool) -> None:
    """What a call uses once the link has closed could reach no budget: it does not start.

    (With no limit there, it started and ran, and what it used was dropped: the caller's
    budget undercounted.)
    """
    far = _budget_of_another_process()
    ended = _AwayEnd((far,), admits)
    ended.close()  # the interaction has ended
    call = ended.start((far,), "late", "gpt-4o-mini", None)
    with pytest.raises(LLMError, match="the interaction that made it has ended"):
        await call.averdict()
    broken = _AwayEnd((far,), admits)
    broken.close(RayWorkerDiedError("The mailbox actor died."))  # the link broke
    call = broken.start((far,), "late", "gpt-4o-mini", None)
    with pytest.raises(RayWorkerDiedError, match="The mailbox actor died"):
        await call.averdict()
    assert ended.drain() is None
    assert broken.drain() == (1, [], [], "RayWorkerDiedError: The mailbox actor died.")
    assert broken.drain() is None  # (its last report told the caller's end why it broke)


@pytest.mark.parametrize("admits", [False, True])
async def test_a_call_still_running_when_its_link_closes_stops_at_its_next_piece(
    admits: bool,
) -> None:
    """A call outliving its interaction (in the background) stops: nothing would charge it."""
    far = _budget_of_another_process()
    for error, expected in [
        (None, "An LLM call was stopped: the interaction that made it has ended"),
        (RayWorkerDiedError("The mailbox actor died."), "The mailbox actor died"),
    ]:
        link = _AwayEnd((far,), admits)
        call = link.start((far,), "background", "gpt-4o-mini", None)
        link.receive([(_VERDICT, 1, REMOTE_PIECES_AHEAD if admits else 0)])
        await call.averdict()
        assert call.piece(0.0) is None
        link.close(error)
        # on main: it streamed on, and what it used was dropped (the budget undercounted)
        with pytest.raises(LLMError if error is None else RayWorkerDiedError, match=expected):
            call.piece(0.0)
        assert not call.behind  # (a call waiting for the count is let go, to stop so)


async def test_a_count_that_comes_after_the_last_report_is_logged_as_not_charged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A call's count once the link has closed rides its last report; after it, a warning.

    (On main a count that came once the link had closed was logged as not charged even
    when the worker's last batch, drained after the close, would still have carried it.)
    """
    far = _budget_of_another_process()
    link = _AwayEnd((far,), False)
    link.open(lambda: None)
    call = link.start((far,), "background", "gpt-4o-mini", None)
    late = link.start((far,), "background", "gpt-4o-mini", None)
    await call.averdict()
    await late.averdict()
    assert call.piece(0.5) is None
    link.close()
    with caplog.at_level("WARNING", logger="miniagents"):
        call.add(
            (12, 3, 0, 0, 0, 0, 0, 0, 0.25, 0, 1)
        )  # the provider's count, right after the close
        assert caplog.records == []
        report = link.drain()  # the last report: it carries that count too
        late.add((0, 0, 0, 0, 0, 0, 0, 0, 0.0, 1, 1))  # the end alone: the caller's end charged it
        assert caplog.records == []
        late.add((7, 2, 0, 0, 0, 0, 0, 0, 0.125, 0, 1))  # a count after the last report
    assert isinstance(report, tuple)
    assert report[2] == [(1, (12, 4, 0, 0, 0, 0, 0, 0, 0.75, 0, 1))]
    assert [record.getMessage() for record in caplog.records] == [
        "The agent background's LLM call of the model 'gpt-4o-mini' counted 7 input and 2 "
        "more output tokens ($0.125000) after the interaction that made it had ended: its "
        "caller's budgets were not charged them, as the link to them had closed. Await the "
        "LLM calls an agent makes before its interaction ends."
    ]
    assert link.drain() is None  # nothing goes after the last report


async def test_a_call_that_ends_without_a_count_once_the_link_closed_reports_its_end() -> None:
    """``CallCharge.end`` once the link has closed: its end rides the last report.

    (On main it was dropped, unlogged: the caller's end charged an end of its own guess.)
    """
    far = _budget_of_another_process()
    link = _AwayEnd((far,), False)

    async def interaction() -> object:  # (a task: the link set is its context's)
        link.open(lambda: None)  # the calls made here are charged through it, to ``far``
        charge = CallCharge("background", "gpt-4o-mini", None)
        await charge.aadmit()
        assert link.drain() is not None  # its start
        link.close()
        charge.end()  # failed or stopped, after the close
        return link.drain()

    report = await asyncio.create_task(interaction())
    assert isinstance(report, tuple)
    assert report[2] == [(1, (0, 0, 0, 0, 0, 0, 0, 0, 0.0, 1, 1))]


async def test_a_count_after_the_link_broke_is_logged_with_the_error_that_broke_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A link broken while the interaction runs on: its next drain is its last, for that error.

    (On main the count was logged as coming after the interaction had ended, which it had not.)
    """
    far = _budget_of_another_process()
    link = _AwayEnd((far,), False)
    call = link.start((far,), "busy", "gpt-4o-mini", None)
    await call.averdict()
    link.close(RayWorkerDiedError("The mailbox actor died."))  # mid-interaction
    assert link.drain() is not None  # the worker's next batch: the call's start
    with caplog.at_level("WARNING", logger="miniagents"):
        call.add((7, 2, 0, 0, 0, 0, 0, 0, 0.125, 0, 1))
    assert [record.getMessage() for record in caplog.records] == [
        "The agent busy's LLM call of the model 'gpt-4o-mini' counted 7 input and 2 more "
        "output tokens ($0.125000) after the link to its caller's budgets broke, while its "
        "interaction ran on: they were not charged them. The link broke with this error: "
        "RayWorkerDiedError: The mailbox actor died."
    ]
    assert link.drain() is None


async def test_a_link_message_that_cannot_be_taken_fails_the_waiting_calls_with_a_ray_error() -> (
    None
):
    """The calls waiting on a link that broke get a ``RayAgentError`` naming what happened.

    (On main they got the unpickling error itself, which said nothing of the link.)
    """
    link = _AwayEnd((), True)  # a limit there: a call waits for its verdict
    call = link.start((), "waiting", "gpt-4o-mini", None)

    async def take(key: str) -> list[tuple[int, bytes]]:
        return [(0, b"not a pickle")]  # a message of the driver that cannot be read here

    mailbox = SimpleNamespace(take=SimpleNamespace(remote=take))
    await _read_links(Call(b"", [], mailbox, "key", b""), [link], "BUSY")
    with pytest.raises(
        RayAgentError, match="The live links of the agent BUSY to its caller"
    ) as raised:
        await call.averdict()
    assert isinstance(raised.value.__cause__, pickle.UnpicklingError)


@pytest.mark.parametrize("how", ["ended", "told by the worker", "transport failed"])
async def test_the_driver_ends_the_calls_of_a_broken_link_with_a_warning_naming_its_error(
    how: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The calls a link leaves open end unpriced; if it broke, a warning names its error.

    (On main the driver's end closed them as after a normal end: the break went unsaid.)
    """
    budget = Budget()
    error = RayWorkerDiedError("The mailbox actor died.")
    with caplog.at_level("WARNING", logger="miniagents"):
        async with MiniAgents():
            home = open_link([budget])
            assert home is not None
            home.open(lambda: None)
            away = home.away()
            call = away.start((budget,), "busy", "gpt-4o-mini", None)
            await call.averdict()
            assert call.piece(0.0) is None
            home.receive(away.drain())  # its start and its first piece
            if how == "told by the worker":  # its link to the driver broke: its last batch
                away.close(error)
                home.receive(away.drain())
            home.close(error if how == "transport failed" else None)
            await home.asettled()
    usage = budget.usage
    assert (usage.requests, usage.output_tokens, usage.unpriced_requests) == (1, 1, 1)
    expected = [
        "The link to the budgets of an interaction run in another process broke "
        "(RayWorkerDiedError: The mailbox actor died.): its 1 LLM call(s) still open were "
        "charged what they had reported, unpriced, and the rest of what they used was not "
        "charged."
    ]
    assert [record.getMessage() for record in caplog.records] == (
        [] if how == "ended" else expected
    )
