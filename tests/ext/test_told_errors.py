"""What a client is told of an error by reference: one sentence for every server's words."""

from __future__ import annotations

import logging
import re

import pytest

from miniagents.ext.told_errors import told_error, told_reference


def test_told_reference_says_where_the_log_has_the_error_and_whom_to_ask() -> None:
    assert told_reference("3f2a", "the studio's operator") == (
        "The server's log has the error under the reference 3f2a: ask the studio's operator "
        "to look it up there."
    )
    assert told_reference("3f2a") == (
        "The server's log has the error under the reference 3f2a: ask the agent's operator "
        "to look it up there."
    )


def test_told_error_ends_its_text_with_told_reference_and_logs_the_error_under_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A server that says what failed in its own words (the studio's damaged run, its
    store's failure) adds :func:`told_reference` to them: the same sentence as
    :func:`told_error` ends with. (Was: a private builder, the studio's copy written out by
    hand beside it.)"""
    logger = logging.getLogger("tests.told_errors")
    error = ValueError("the key sk-123 is wrong")
    with caplog.at_level(logging.ERROR, logger=logger.name):
        told = told_error(
            error, logger, "The job 7", error_texts=False, who="The job", operator="Ada"
        )
    assert re.fullmatch("[0-9a-f]{32}", told.reference)
    assert told.text == f"The job failed with ValueError. {told_reference(told.reference, 'Ada')}"
    assert [record.getMessage() for record in caplog.records] == [
        f"The job 7 failed with ValueError (reference {told.reference})."
    ]
    assert caplog.records[0].exc_info is not None
    assert caplog.records[0].exc_info[1] is error
