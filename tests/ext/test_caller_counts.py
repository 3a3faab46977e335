"""``CallerCounts``: a count per caller, and no caller kept once their count is back to 0."""

from __future__ import annotations

from miniagents.ext.caller_counts import CallerCounts


def test_a_caller_is_counted_up_and_down_and_forgotten_at_zero() -> None:
    counts = CallerCounts()
    assert (counts["ada"], len(counts)) == (0, 0)
    counts.add("ada")
    counts.add("ada")
    counts.add(None)  # (an app that knows nobody: every caller is one)
    assert (counts["ada"], counts[None], counts["bob"], len(counts)) == (2, 1, 0, 2)
    counts.remove("ada")
    assert (counts["ada"], len(counts)) == (1, 2)
    counts.remove("ada")
    counts.remove(None)
    assert (counts["ada"], counts[None], len(counts)) == (0, 0, 0)  # none kept at 0


def test_many_callers_that_came_and_went_leave_nothing() -> None:
    counts = CallerCounts()
    for index in range(1000):
        counts.add(f"caller-{index}")
        counts.remove(f"caller-{index}")
    counts.add("ada")
    counts.clear()
    assert (len(counts), counts["ada"]) == (0, 0)
