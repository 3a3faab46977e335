"""``LoggedOnce``: the first failure at each place is logged, the later ones are not."""

from __future__ import annotations

import pytest

from miniagents.miniagents.logged_once import LoggedOnce


def _fails(text: str) -> int:
    raise ValueError(text)


def test_a_failure_is_logged_once_per_place_and_the_call_gives_none(
    caplog: pytest.LogCaptureFixture,
) -> None:
    failures = LoggedOnce("The observer failed in %s (%s: %s). This is logged once.")
    assert failures.call("started", _fails, "first") is None
    assert failures.call("started", _fails, "second") is None
    assert failures.call("ended", _fails, "third") is None
    assert failures.call("ended", len, "four") == 4
    assert [record.getMessage() for record in caplog.records] == [
        "The observer failed in started (ValueError: first). This is logged once.",
        "The observer failed in ended (ValueError: third). This is logged once.",
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
