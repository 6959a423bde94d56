"""A job's failures, logged once per change of state and then reminded (monitor.runtime.trouble),
with the test's clock."""

from __future__ import annotations

import logging

import pytest

from monitor.runtime.trouble import Trouble, summary

log = logging.getLogger("tests.trouble")


def test_a_failing_job_is_logged_at_each_change_and_reminded(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [0.0]
    trouble = Trouble("claiming", log, clock=lambda: now[0], remind_every=300)
    caplog.set_level(logging.INFO, logger="tests.trouble")
    steps: list[tuple[float, BaseException | None]] = [
        (0, None),  # works: nothing said
        (1, ConnectionRefusedError("refused")),  # starts failing: said
        (2, ConnectionRefusedError("refused")),  # the same: quiet
        (250, ConnectionRefusedError("refused")),
        (301, ConnectionRefusedError("refused")),  # a reminder
        (302, TimeoutError("no answer")),  # another way: said
        (303, TimeoutError("no answer")),
        (310, None),  # works again: said
        (311, None),
    ]
    for moment, error in steps:
        now[0] = moment
        if error is None:
            trouble.succeeded()
        else:
            trouble.failed(error)
    said = [(r.levelname, r.getMessage()) for r in caplog.records]
    assert said == [
        (
            "ERROR",
            "claiming failed (ConnectionRefusedError: refused); retrying, reminded every 300s "
            "while it lasts",
        ),
        ("ERROR", "claiming still failing, for 300s (4 times): ConnectionRefusedError: refused"),
        ("ERROR", "claiming now fails another way (TimeoutError: no answer)"),
        ("WARNING", "claiming works again, after 6 failures over 309s"),
    ]


def test_a_database_error_is_summed_up_by_the_driver_s_first_line() -> None:
    class DriverError(Exception):
        pass

    class WrappedError(Exception):
        orig = DriverError('connection to server at "db" failed\nIs the server running?')

    wrapped = WrappedError("(DriverError) … [SQL: SELECT feeds.url …] [parameters: …]")
    assert summary(wrapped) == 'DriverError: connection to server at "db" failed'
    assert summary(OSError()) == "OSError"
