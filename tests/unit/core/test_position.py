"""A reader's position in its stream, and the exact accounting of the
entries it lost: trimmed (reported at the first verified read after the
loss, full batch or not), or gone with a deleted or recreated stream."""
import pytest

from sio_redis_streams.core.position import VERIFY_EVERY, StreamPosition, \
    text

NOW = 1000.0


def position(last_id='10-0', added=10, lag_threshold=100):
    pos = StreamPosition('socket.io', maxlen=1000,
                         lag_threshold=lag_threshold)
    pos.last_id, pos.added = last_id, added
    return pos


def info(last='30-0', added=None, first=None, length=5):
    value = {'last-generated-id': last.encode(), 'length': length}
    if added is not None:
        value['entries-added'] = added
    if first is not None:
        value['first-entry'] = (first.encode(), {b'uid': b'x'})
    return value


def verify(pos, value, batch, read_count=100):
    return pos.verified(value, batch, read_count, NOW)


def test_new_position():
    pos = StreamPosition('s', 1000, 100)
    assert (pos.last_id, pos.added, pos.verify) == (None, None, False)


def test_at_tail_of_existing_stream():
    pos = StreamPosition('s', 1000, 100)
    pos.at_tail(info('17-3', added=42))
    assert (pos.last_id, pos.added) == ('17-3', 42)


def test_at_tail_before_redis_7():
    pos = StreamPosition('s', 1000, 100)
    pos.at_tail({'last-generated-id': '17-3'})
    assert (pos.last_id, pos.added) == ('17-3', None)
    pos.read(5, NOW)
    assert pos.added is None


def test_at_tail_without_stream():
    pos = StreamPosition('s', 1000, 100)
    pos.at_tail(None)
    assert (pos.last_id, pos.added) == ('0-0', 0)


@pytest.mark.parametrize('count,verify_next', [
    (0, False), (99, False), (100, True), (150, True),
])
def test_a_full_batch_asks_for_verification(count, verify_next):
    pos = position(lag_threshold=100)
    verify(pos, info(added=10, first='5-0'), 0)  # just verified
    pos.read(count, NOW)
    assert pos.verify is verify_next
    assert pos.added == 10 + count


def test_entries_flowing_are_verified_every_second():
    """A paused process does not know it was paused: while entries flow,
    a read is verified at least every VERIFY_EVERY seconds."""
    pos = position()
    verify(pos, info(added=10, first='5-0'), 0)
    pos.read(1, NOW + VERIFY_EVERY / 2)
    assert not pos.verify
    pos.read(1, NOW + VERIFY_EVERY)
    assert pos.verify
    pos.read(0, NOW + 10 * VERIFY_EVERY)
    assert not pos.verify, 'nothing read, nothing to verify'


def test_interrupted_asks_for_verification():
    pos = position()
    pos.interrupted()
    assert pos.verify


def test_no_gap_when_counts_match():
    pos = position(added=10)
    assert verify(pos, info(added=13, first='5-0'), 3) is None
    assert pos.added == 10


def test_exact_count_of_entries_trimmed_behind_a_short_batch():
    pos = position(added=10)
    gap = verify(pos, info(added=25, first='8-0'), 5)
    assert gap.startswith('10 entries after 10-0 were trimmed')
    assert 'entries-added' in gap
    assert pos.added == 20
    pos.read(5, NOW)
    assert pos.added == 25


def test_a_gap_is_reported_at_once_even_with_a_full_batch():
    """Before, a reader behind the trimming reported the loss only once it
    had caught up (a batch that was not full)."""
    pos = position(last_id='10-0', added=10)
    gap = verify(pos, info('5000-0', added=5000, first='4001-0',
                           length=1000), 100)
    assert gap.startswith('3990 entries after 10-0 were trimmed')
    assert pos.added == 4000
    pos.read(100, NOW)
    assert pos.added == 4100


def test_a_full_batch_inside_the_stream_is_counted_later():
    pos = position(last_id='10-0', added=10)
    assert verify(pos, info('5000-0', added=5000, first='9-0',
                            length=4991), 100) is None
    assert pos.added == 10


def test_a_gap_jumped_over_unverified_is_counted_at_the_next_short_batch():
    pos = position(last_id='10-0', added=10)
    pos.read(100, NOW)  # these 100 came after 3000 trimmed ones
    pos.last_id = '3110-0'
    gap = verify(pos, info('3120-0', added=3120, first='3011-0',
                           length=110), 10)
    assert gap.startswith('3000 entries after 3110-0')


@pytest.mark.parametrize('value,added_after', [
    (info('40-0', added=50, first='35-0', length=50), 0),
    (info('40-0', added=8, first='35-0', length=8), 0),
], ids=['loss-below-zero', 'count-backwards'])
def test_a_new_stream_under_the_same_name_is_reported(value, added_after):
    """Redis restarted empty, and new entries got later ids than the last
    one read: only the counts show it. Before, this went unreported.
    Reading goes on after the last entry read: the new entries all come
    after it."""
    pos = position(last_id='10-0', added=10)
    gap = verify(pos, value, 50 if value['length'] == 50 else 8)
    assert 'recreated' in gap and 'entries-added' in gap
    assert 'had not read are lost' in gap
    assert (pos.last_id, pos.added) == ('10-0', added_after)
    pos.read(value['length'], NOW)
    pos.last_id = '40-0'
    assert verify(pos, value, 0) is None


def test_a_promoted_replica_that_lacks_what_was_read_is_reported():
    """The replica got entries up to 8-0; this reader had read up to 10-0
    from the old master. Nothing is read twice: reading goes on after
    10-0."""
    pos = position(last_id='10-0', added=10)
    gap = verify(pos, info('8-0', added=8, first='1-0', length=8), 0)
    assert 'last-generated-id 8-0 is before 10-0' in gap
    assert (pos.last_id, pos.added) == ('10-0', 8)
    # new writes on the promoted replica come after 10-0
    pos.read(2, NOW)
    pos.last_id = '12-0'
    assert verify(pos, info('12-0', added=10, first='1-0', length=10), 0) \
        is None


def test_a_replica_that_got_new_writes_before_the_check_is_reported():
    pos = position(last_id='10-0', added=10)
    # it lacked 2 of the entries read, then took 3 new ones (11-0...)
    gap = verify(pos, info('13-0', added=11, first='1-0', length=11), 3)
    assert 'recreated' in gap
    assert pos.added == 8


def test_a_deleted_stream_is_reported_once():
    pos = position()
    gap = verify(pos, None, 0)
    assert 'no longer exists' in gap
    assert (pos.last_id, pos.added) == ('10-0', 0)
    assert verify(pos, None, 0) is None
    # its successor is read from after the last id, all of it counted
    assert verify(pos, info('20-0', added=3, first='18-0', length=3), 3) \
        is None
    assert pos.added == 0


def test_a_missing_stream_at_the_start_is_no_gap():
    pos = position(last_id='0-0', added=0)
    assert verify(pos, None, 0) is None


def test_same_last_generated_id_is_no_loss():
    pos = position()
    assert verify(pos, info('10-0', added=10, first='1-0'), 0) is None


def test_an_unknown_count_is_known_again_at_a_short_batch():
    pos = position(added=None)
    assert verify(pos, info('20-0', added=40, first='5-0'), 100) is None
    assert pos.added is None
    assert verify(pos, info('20-0', added=40, first='5-0'), 7) is None
    assert pos.added == 33


@pytest.mark.parametrize('first,gap', [
    ('10-0', False), ('5-0', False), ('10-1', True), ('12-0', True),
    (None, False),
])
def test_first_entry_check_before_redis_7(first, gap):
    pos = position(added=None)
    found = verify(pos, info(first=first), 0)
    assert bool(found) is gap
    if gap:
        assert 'may have been trimmed' in found


def test_text():
    assert text(b'1-0') == '1-0'
    assert text('1-0') == '1-0'
    assert text(None) is None
