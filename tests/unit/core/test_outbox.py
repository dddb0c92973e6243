"""The writer's state: the bounded outbox, and the ledger's decisions after
each attempt at a batch (written, retried, dropped, reconciled after an
unknown outcome)."""
import pytest

from sio_redis_streams.core.outbox import MAX_UNEXPECTED_FAILURES, \
    OutgoingEntry, Outbox, WriteLedger


class Transient(Exception):
    pass


class Permanent(Exception):
    pass


def is_transient(error):
    return isinstance(error, Transient)


def entries(*streams):
    return [OutgoingEntry(stream, {'n': str(i)})
            for i, stream in enumerate(streams)]


def test_entry_settled():
    entry = OutgoingEntry('s', {})
    assert not entry.settled
    assert OutgoingEntry('s', {}, entry_id='1-0').settled
    assert OutgoingEntry('s', {}, dropped=True).settled


def test_outbox_is_bounded():
    outbox = Outbox(3)
    assert len(outbox) == 0 and not outbox.full
    batch = entries('s', 's', 's', 's')
    assert [outbox.add(e) for e in batch] == [True, True, True, False]
    assert outbox.full and len(outbox) == 3


def test_outbox_batch_leaves_entries_in_place():
    outbox = Outbox(10)
    batch = entries('a', 'b', 'c')
    for entry in batch:
        outbox.add(entry)
    assert outbox.batch(2) == batch[:2]
    assert outbox.batch(2) == batch[:2]
    assert outbox.batch(10) == batch
    assert outbox.batch(0) == []
    assert len(outbox) == 3


def test_pop_settled_stops_at_first_unsettled():
    outbox = Outbox(2)
    first, second = entries('a', 'b')
    outbox.add(first)
    outbox.add(second)
    assert outbox.pop_settled() == 0
    second.entry_id = '1-0'
    assert outbox.pop_settled() == 0
    first.dropped = True
    assert outbox.pop_settled() == 2
    assert len(outbox) == 0 and outbox.pop_settled() == 0
    assert outbox.add(OutgoingEntry('c', {}))


def test_replied_with_ids_and_errors():
    ledger = WriteLedger()
    batch = entries('a', 'b', 'a', 'b', 'a')
    transient, permanent = Transient('OOM'), Permanent('WRONGTYPE')
    ledger.sending()
    assert ledger.outcome_unknown
    outcome = ledger.replied(batch, [b'1-0', transient, permanent, '2-5',
                                     b'3-0'], is_transient)
    assert not ledger.outcome_unknown
    assert outcome.written == 3
    assert outcome.retry == [batch[1]]
    assert outcome.dropped == [(batch[2], permanent)]
    assert [e.entry_id for e in batch] == ['1-0', None, None, '2-5', '3-0']
    assert [e.dropped for e in batch] == [False, False, True, False, False]
    assert ledger.pending(batch) == [batch[1]]
    assert ledger.last_written == {'a': '3-0', 'b': '2-5'}


def test_last_written_follows_each_stream():
    ledger = WriteLedger()
    first, second = entries('a', 'b')
    ledger.written(first, b'5-1')
    ledger.written(second, '7-0')
    assert ledger.last_written == {'a': '5-1', 'b': '7-0'}
    third = OutgoingEntry('a', {})
    ledger.written(third, b'9-0')
    assert ledger.last_written == {'a': '9-0', 'b': '7-0'}
    assert third.entry_id == '9-0'


@pytest.mark.parametrize('transient', [True, False])
def test_refused(transient):
    ledger = WriteLedger()
    batch = entries('a', 'b')
    error = Permanent('EXECABORT')
    ledger.sending()
    outcome = ledger.refused(batch, error, transient)
    assert not ledger.outcome_unknown
    assert outcome.written == 0
    if transient:
        assert outcome.retry == batch and outcome.dropped == []
        assert ledger.pending(batch) == batch
    else:
        assert outcome.retry == []
        assert outcome.dropped == [(batch[0], error), (batch[1], error)]
        assert ledger.pending(batch) == []
    assert ledger.last_written == {}


def test_unexpected_failures_drop_the_batch_in_the_end():
    ledger = WriteLedger()
    batch = entries('a', 'a', 'a')
    ledger.written(batch[0], '1-0')
    error = RuntimeError('bug')
    for _ in range(MAX_UNEXPECTED_FAILURES - 1):
        ledger.sending()
        outcome = ledger.failed_unexpectedly(batch, error)
        assert outcome.retry == batch[1:] and outcome.dropped == []
        assert ledger.outcome_unknown
    ledger.sending()
    outcome = ledger.failed_unexpectedly(batch, error)
    assert outcome.retry == []
    assert outcome.dropped == [(batch[1], error), (batch[2], error)]
    assert ledger.pending(batch) == []
    assert not ledger.outcome_unknown
    assert batch[0].entry_id == '1-0' and not batch[0].dropped
    # the count starts again for the next batch
    other = entries('a')
    assert ledger.failed_unexpectedly(other, error).retry == other


def test_reply_resets_unexpected_failures():
    ledger = WriteLedger()
    batch = entries('a', 'a')
    for _ in range(MAX_UNEXPECTED_FAILURES - 1):
        ledger.failed_unexpectedly(batch, RuntimeError())
    ledger.replied(batch, [Transient(), Transient()], is_transient)
    for _ in range(MAX_UNEXPECTED_FAILURES - 1):
        assert ledger.failed_unexpectedly(batch, RuntimeError()).retry


def run_writer(ledger, batch, found_ids, fail):
    """The writer's loop, as :mod:`sio_redis_streams.sync.writer` runs it:
    reconcile after an unknown outcome, send what is pending, record how
    it failed. Returns how many sends were attempted."""
    attempts = 0
    for _ in range(100):
        if ledger.outcome_unknown:
            for stream, _since in ledger.to_reconcile(batch):
                ledger.reconcile(batch, stream, found_ids.pop(stream, []))
            ledger.reconciled()
        if not ledger.pending(batch):
            return attempts
        attempts += 1
        ledger.sending()
        fail(ledger, batch)
    raise AssertionError('the batch is retried forever')


def test_an_unexpected_error_never_retries_forever():
    ledger = WriteLedger()
    batch = entries('a', 'b')
    error = TypeError('bug')
    attempts = run_writer(ledger, batch, {},
                          lambda ld, b: ld.failed_unexpectedly(b, error))
    assert attempts == MAX_UNEXPECTED_FAILURES
    assert all(e.dropped for e in batch)


def test_unexpected_error_after_a_partial_write():
    """The first attempt wrote the first entry before failing: it is found
    when reconciling, and only the rest is dropped in the end."""
    ledger = WriteLedger()
    batch = entries('a', 'a')
    attempts = run_writer(ledger, batch, {'a': [b'4-0']},
                          lambda ld, b: ld.failed_unexpectedly(b, 'bug'))
    assert attempts == MAX_UNEXPECTED_FAILURES
    assert batch[0].entry_id == '4-0' and not batch[0].dropped
    assert batch[1].dropped


def test_to_reconcile_lists_pending_streams_in_order():
    ledger = WriteLedger()
    ledger.last_written['s1'] = '5-0'
    batch = entries('s2', 's1', 's2', 's3')
    batch[3].dropped = True
    assert ledger.to_reconcile(batch) == [('s2', None), ('s1', '5-0')]
    assert ledger.to_reconcile([]) == []


def test_reconcile_a_batch_over_two_streams():
    ledger = WriteLedger()
    ledger.last_written.update({'s1': '5-0', 's2': '1-0'})
    a1, b1, a2, b2, a3 = batch = entries('s1', 's2', 's1', 's2', 's1')
    ledger.sending()
    assert ledger.to_reconcile(batch) == [('s1', '5-0'), ('s2', '1-0')]
    assert ledger.reconcile(batch, 's1', [b'6-0', b'6-1']) == (2, 1)
    assert ledger.reconcile(batch, 's2', []) == (0, 2)
    ledger.reconciled()
    assert not ledger.outcome_unknown
    assert (a1.entry_id, a2.entry_id, a3.entry_id) == ('6-0', '6-1', None)
    assert (b1.entry_id, b2.entry_id) == (None, None)
    assert ledger.pending(batch) == [b1, b2, a3]
    assert ledger.last_written == {'s1': '6-1', 's2': '1-0'}
    assert ledger.to_reconcile(batch) == [('s2', '1-0'), ('s1', '6-1')]


def test_reconcile_skips_settled_entries():
    ledger = WriteLedger()
    a1, a2, a3 = batch = entries('s', 's', 's')
    a1.entry_id = '1-0'
    a2.dropped = True
    assert ledger.reconcile(batch, 's', ['2-0']) == (1, 0)
    assert a3.entry_id == '2-0' and a2.entry_id is None


def test_reconcile_takes_no_more_ids_than_pending():
    ledger = WriteLedger()
    batch = entries('s', 's')
    assert ledger.reconcile(batch, 's', ['1-0', '2-0', '3-0']) == (2, 0)
    assert [e.entry_id for e in batch] == ['1-0', '2-0']
    assert ledger.last_written == {'s': '2-0'}
    assert ledger.reconcile(batch, 'other', ['9-0']) == (0, 0)


def test_unexpected_failures_are_counted_per_batch():
    ledger = WriteLedger()
    first = entries('s', 's')
    for _ in range(MAX_UNEXPECTED_FAILURES - 1):
        ledger.sending()
        assert ledger.failed_unexpectedly(first, RuntimeError()).retry
    # the failed attempts had reached Redis after all
    for stream, _since in ledger.to_reconcile(first):
        ledger.reconcile(first, stream, ['1-0', '1-1'])
    ledger.reconciled()
    assert ledger.pending(first) == []
    second = entries('s')
    ledger.sending()
    outcome = ledger.failed_unexpectedly(second, RuntimeError())
    assert outcome.retry == second and outcome.dropped == []


def test_a_batch_can_be_kept_to_one_stream():
    outbox = Outbox(10)
    for n, stream in enumerate('abab'):
        outbox.add(OutgoingEntry(stream, {'n': str(n)}))
    first = outbox.batch(10, one_stream=True)
    assert [e.fields['n'] for e in first] == ['0', '2']
    assert [e.stream for e in outbox.batch(1, one_stream=True)] == ['a']
    assert len(outbox.batch(10)) == 4
    for entry in first:  # written: the next batch is b's
        entry.entry_id = '1-0'
    assert [e.fields['n'] for e in outbox.batch(10, one_stream=True)] == \
        ['1', '3']
    assert outbox.pop_settled() == 1 and len(outbox) == 3
