"""The event WebSocket's reconnect delays (bridge.ari.reconnect_delay): capped exponential backoff with jitter."""

from __future__ import annotations

import pytest

from bridge.ari import RECONNECT_BASE_S, reconnect_delay


@pytest.mark.parametrize(
    ("failures", "low", "high"),
    [
        (0, RECONNECT_BASE_S / 2, RECONNECT_BASE_S),  # just lost: retry at once, almost
        (1, 0.2, 0.4),
        (3, 0.8, 1.6),
        (5, 3.2, 6.4),
        (6, 5.0, 10.0),  # the cap: never more than max_backoff
        (60, 5.0, 10.0),  # a long outage does not overflow
    ],
)
def test_delay_doubles_up_to_the_cap_with_jitter(failures: int, low: float, high: float) -> None:
    assert reconnect_delay(failures, 10.0, rand=lambda: 0.0) == pytest.approx(low)
    assert reconnect_delay(failures, 10.0, rand=lambda: 1.0) == pytest.approx(high)
    assert low <= reconnect_delay(failures, 10.0) <= high


def test_jitter_spreads_controllers_that_lost_the_same_asterisk() -> None:
    delays = {round(reconnect_delay(4, 10.0), 3) for _ in range(50)}
    assert len(delays) > 10
