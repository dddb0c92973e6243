"""The writer's conversation with Redis, driven by hand: what it sends,
and what it decides from the replies."""
import logging

import pytest
import redis

from sio_redis_streams.core.outbox import OutgoingEntry
from sio_redis_streams.core.stats import Stats
from sio_redis_streams.core.writing import WriteRound


def write_round(acks=0, stopping=False):
    return WriteRound('a' * 16, 100, acks, 0.5, Stats(),
                      logging.getLogger('test'),
                      lambda e: str(e).startswith('LOADING'),
                      redis.ResponseError, lambda: stopping)


def entries(*streams):
    return [OutgoingEntry(s, {'uid': 'a' * 16, 'n': str(i)})
            for i, s in enumerate(streams)]


def test_a_batch_is_one_transaction_to_its_first_stream():
    attempt = write_round().attempt(entries('s', 's'))
    commands, key = next(attempt)
    assert key == 's'
    assert [c[0] for c in commands] == ['MULTI', 'XADD', 'XADD', 'EXEC']
    with pytest.raises(StopIteration):
        attempt.send([b'OK', b'QUEUED', b'QUEUED', [b'1-0', b'1-1']])


def test_with_replica_acks_the_batch_waits_for_its_replicas():
    batch = entries('s')
    rnd = write_round(acks=1)
    attempt = rnd.attempt(batch)
    commands, _ = next(attempt)
    assert commands[-1] == ('WAIT', 1, 500)
    again, _ = attempt.send([b'OK', b'QUEUED', [b'1-0'], 0])
    assert again == [('WAIT', 1, 500)]  # not written yet
    assert rnd.ledger.outcome_unknown and not batch[0].settled
    with pytest.raises(StopIteration):
        attempt.send([1])
    assert batch[0].entry_id == '1-0' and not rnd.ledger.outcome_unknown


def test_an_unknown_outcome_is_read_back_before_anything_is_sent():
    batch = entries('s', 's')
    rnd = write_round()
    rnd.ledger.sending()  # the last attempt broke before its reply
    attempt = rnd.attempt(batch)
    commands, key = next(attempt)
    assert commands == [('XRANGE', 's', '-', '+', 'COUNT', 1000)]
    mine = [b'uid', b'a' * 16]
    commands, _ = attempt.send([[[b'7-0', mine]]])  # the first is in
    assert [c[0] for c in commands] == ['MULTI', 'XADD', 'EXEC']
    assert batch[0].entry_id == '7-0'


def test_after_a_failure_entries_gone_from_redis_are_reported():
    rnd = write_round()
    rnd.ledger.last_written['s'] = '9-0'
    rnd.check_written = True
    attempt = rnd.attempt([])
    commands, key = next(attempt)
    assert commands == [('XINFO', 'STREAM', 's')] and key == 's'
    with pytest.raises(StopIteration):
        attempt.send([[b'last-generated-id', b'5-0']])
    assert rnd._stats.snapshot()['writes_lost'] == 1
    assert rnd.ledger.last_written['s'] == '5-0' and not rnd.check_written
