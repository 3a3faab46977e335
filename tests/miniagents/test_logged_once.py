"""``LoggedOnce``: the first failure of each class at each place is logged, no later one."""

from __future__ import annotations

import pytest

from miniagents.miniagents.logged_once import LoggedOnce


def _fails(text: str) -> int:
    raise ValueError(text)


class _Observer:
    pass


class _Other:
    pass


def test_a_failure_is_logged_once_per_class_and_place_and_the_call_gives_none(
    caplog: pytest.LogCaptureFixture,
) -> None:
    failures = LoggedOnce("An observer (%s) failed in %s (%s: %s). This is logged once.")
    assert failures.call("started", _Observer(), _fails, "first") is None
    assert failures.call("started", _Observer(), _fails, "second") is None  # (its class)
    assert failures.call("started", _Other(), _fails, "another's") is None
    assert failures.call("ended", _Observer(), _fails, "third") is None
    assert failures.call("ended", _Observer(), len, "four") == 4
    assert [record.getMessage() for record in caplog.records] == [
        f"An observer ({__name__}._Observer) failed in started (ValueError: first). "
        "This is logged once.",
        f"An observer ({__name__}._Other) failed in started (ValueError: another's). "
        "This is logged once.",
        f"An observer ({__name__}._Observer) failed in ended (ValueError: third). "
        "This is logged once.",
    ]
    assert {record.levelname for record in caplog.records} == {"WARNING"}


def test_a_failure_with_no_place_is_logged_once_without_one(
    caplog: pytest.LogCaptureFixture,
) -> None:
    failures = LoggedOnce("Tracing failed (%s: %s). This is logged once.")
    failures.failed(RuntimeError("down"))
    failures.failed(RuntimeError("down again"))
    assert [record.getMessage() for record in caplog.records] == [
        "Tracing failed (RuntimeError: down). This is logged once."
    ]
