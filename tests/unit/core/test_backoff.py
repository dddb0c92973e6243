"""Delays before trying Redis again: exponential, capped, jittered, and
reset once Redis is back."""
import random

import pytest

from sio_redis_streams.core.backoff import Backoff


@pytest.fixture
def jitter(monkeypatch):
    """Make the jitter pick its lowest or highest value."""
    def pick(which):
        monkeypatch.setattr(random, 'uniform',
                            lambda low, high: low if which == 'low'
                            else high)
    return pick


@pytest.mark.parametrize('which,factor', [('high', 1.0), ('low', 0.5)])
def test_delays_double_up_to_the_cap(jitter, which, factor):
    jitter(which)
    backoff = Backoff(base=0.1, cap=2.0)
    delays = [backoff.next_delay() for _ in range(8)]
    ceilings = [0.1, 0.2, 0.4, 0.8, 1.6, 2.0, 2.0, 2.0]
    assert delays == pytest.approx([c * factor for c in ceilings])
    assert backoff.attempts == 8


def test_many_attempts_do_not_overflow(jitter):
    jitter('high')
    backoff = Backoff(base=0.5, cap=30.0)
    backoff.attempts = 10 ** 6
    assert backoff.next_delay() == 30.0


def test_delays_are_capped_and_jittered():
    random.seed(1234)
    backoff = Backoff(base=0.1, cap=2.0)
    delays = [backoff.next_delay() for _ in range(40)]
    assert all(0.05 <= d <= 2.0 for d in delays)
    assert all(1.0 <= d <= 2.0 for d in delays[5:])
    assert len(set(delays)) == 40


def test_reset_starts_from_the_shortest_delay(jitter):
    jitter('high')
    backoff = Backoff(base=0.25, cap=4.0)
    for _ in range(10):
        backoff.next_delay()
    backoff.reset()
    assert backoff.attempts == 0
    assert backoff.next_delay() == 0.25
    assert backoff.next_delay() == 0.5


def test_defaults():
    backoff = Backoff()
    assert (backoff.base, backoff.cap, backoff.attempts) == (0.1, 2.0, 0)
    assert 0.05 <= backoff.next_delay() <= 0.1
