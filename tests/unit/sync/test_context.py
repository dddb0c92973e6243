"""The one supervised loop of the writer, the readers and the subscriber:
one warning when Redis goes, one line when it is back, counted once per
outage, the client's connections reset, backoff that starts over."""
import logging
import threading

import redis

from sio_redis_streams.sync.context import Supervisor
from tests.unit.sync.fakes import context


class Client:
    def __init__(self):
        self.resets = 0

    def disconnect(self):
        self.resets += 1


def run_steps(supervisor, ctx, outcomes):
    """Run the loop over ``outcomes`` (an exception to raise, or None),
    then stop it."""
    outcomes = list(outcomes)

    def step():
        if not outcomes:  # stop, as the manager does: no success, no error
            ctx.stopping.set()
            raise redis.exceptions.ConnectionError('closed')
        outcome = outcomes.pop(0)
        if outcome is not None:
            raise outcome

    supervisor._backoff.base = supervisor._backoff.cap = 0.001
    thread = threading.Thread(target=supervisor.run, args=(step,))
    thread.start()
    thread.join(5)
    assert not thread.is_alive()


def test_an_outage_is_logged_and_counted_once(caplog):
    ctx = context()
    client = Client()
    supervisor = Supervisor(ctx, 'reading stream s', 'reader_reconnects',
                            client.disconnect, lambda: 'will resume after 1-0')
    lost = redis.exceptions.ConnectionError('gone')
    with caplog.at_level(logging.INFO, logger='test'):
        run_steps(supervisor, ctx, [lost, lost, lost, None, lost, None])
    lines = [r.getMessage() for r in caplog.records]
    assert [line.split(' (')[0] for line in lines
            if line.startswith('lost')] == ['lost Redis reading stream s'] * 2
    assert lines[0].endswith('; will resume after 1-0')
    assert sum('is back for reading stream s after' in line
               for line in lines) == 2
    assert lines[-1].startswith('Redis is back')
    assert ctx.stats.snapshot()['reader_reconnects'] == 2
    assert client.resets == 4
    assert not any(r.exc_info for r in caplog.records)


def test_an_unexpected_error_shows_its_traceback(caplog):
    ctx = context()
    supervisor = Supervisor(ctx, 'writing', 'writer_reconnects')
    with caplog.at_level(logging.INFO, logger='test'):
        run_steps(supervisor, ctx, [KeyError('bug')])
    assert any(r.exc_info and 'unexpected error writing' in r.getMessage()
               for r in caplog.records)


def test_a_refusal_is_no_crash(caplog):
    ctx = context()
    supervisor = Supervisor(ctx, 'writing', 'writer_reconnects')
    refused = redis.exceptions.ResponseError('OOM command not allowed')
    with caplog.at_level(logging.INFO, logger='test'):
        run_steps(supervisor, ctx, [refused])
    assert not any(r.exc_info for r in caplog.records)
    assert 'ResponseError: OOM' in caplog.text


def test_the_backoff_starts_over_after_a_success():
    ctx = context()
    supervisor = Supervisor(ctx, 'writing', 'writer_reconnects')
    lost = redis.exceptions.ConnectionError('gone')
    run_steps(supervisor, ctx, [lost, lost, lost])
    assert supervisor._backoff.attempts == 3
    ctx.stopping.clear()
    run_steps(supervisor, ctx, [None])
    assert supervisor._backoff.attempts == 0
    assert supervisor.up


def test_on_failure_hears_each_error():
    ctx = context()
    supervisor = Supervisor(ctx, 'reading', 'reader_reconnects')
    heard = []
    supervisor._backoff.base = supervisor._backoff.cap = 0.001
    errors = [redis.exceptions.TimeoutError('slow'), None]

    def step():
        if not errors:
            ctx.stopping.set()
            return
        error = errors.pop(0)
        if error:
            raise error

    supervisor.run(step, heard.append)
    assert [type(e).__name__ for e in heard] == ['TimeoutError']
