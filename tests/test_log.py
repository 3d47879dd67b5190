"""Logging set up by a CLI command run in-process must not aim later lines at a stream that has been closed."""

from __future__ import annotations

import io
import sys

import pytest
import structlog

from phonebank import log


def test_lines_go_to_the_current_stderr_not_the_one_at_configure_time(monkeypatch: pytest.MonkeyPatch) -> None:
    first = io.StringIO()
    monkeypatch.setattr(sys, "stderr", first)
    log.configure()
    structlog.get_logger().info("first", call_id="pbc-1")
    assert '"call_id": "pbc-1"' in first.getvalue()
    first.close()  # as pytest's capture does after a test

    second = io.StringIO()
    monkeypatch.setattr(sys, "stderr", second)
    structlog.get_logger().info("second")  # raised "I/O operation on closed file" before
    assert '"event": "second"' in second.getvalue()
