"""A reader's position in its stream, and the exact accounting of the
entries it lost (trimmed, or gone with a deleted or recreated stream)."""
import pytest

from sio_redis_streams.core.position import StreamPosition, Verdict, text


def position(last_id='10-0', added=10, lag_threshold=100):
    pos = StreamPosition('socket.io', maxlen=1000,
                         lag_threshold=lag_threshold)
    pos.last_id, pos.added = last_id, added
    return pos


def info(last='30-0', added=None, first=None):
    value = {'last-generated-id': last.encode(), 'length': 5}
    if added is not None:
        value['entries-added'] = added
    if first is not None:
        value['first-entry'] = (first.encode(), {b'uid': b'x'})
    return value


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
    pos.read(5)
    assert pos.added is None


def test_at_tail_without_stream():
    pos = StreamPosition('s', 1000, 100)
    pos.at_tail(None)
    assert (pos.last_id, pos.added) == ('0-0', 0)


@pytest.mark.parametrize('count,verify', [
    (0, False), (99, False), (100, True), (150, True),
])
def test_read_advances_and_asks_for_verification(count, verify):
    pos = position(lag_threshold=100)
    pos.read(count)
    assert pos.verify is verify
    assert pos.added == 10 + count
    pos.read(1)
    assert pos.verify is False


def test_interrupted_asks_for_verification():
    pos = position()
    pos.interrupted()
    assert pos.verify
    pos.read(0)
    assert not pos.verify


def test_no_gap_when_counts_match():
    pos = position(added=10)
    verdict = pos.verified(info(added=15), batch_size=5, read_count=100)
    assert verdict == Verdict(None, restart=False)
    assert pos.added == 10 and pos.last_id == '10-0'


def test_exact_count_of_trimmed_entries():
    """The reader had counted 10 entries; Redis has added 25 and 5 remain
    after the position: 10 were trimmed before they could be read."""
    pos = position(added=10)
    verdict = pos.verified(info(added=25), batch_size=5, read_count=100)
    assert not verdict.restart
    assert verdict.gap.startswith('10 entries after 10-0 were trimmed')
    assert 'maxlen=1000' in verdict.gap
    assert 'Redis added 15 entries since then and only 5 remain' in \
        verdict.gap
    assert pos.added == 20  # the count at the position, as Redis has it
    pos.read(5)
    assert pos.added == 25
    assert pos.verified(info(added=25), 0, 100) == Verdict(None)


def test_redis_behind_the_reader_counts_no_loss():
    pos = position(added=10)
    assert pos.verified(info(added=12), batch_size=5, read_count=100) == \
        Verdict(None)
    assert pos.added == 7


def test_a_full_batch_counts_no_loss():
    pos = position(added=10)
    assert pos.verified(info(added=500), batch_size=100,
                        read_count=100) == Verdict(None)
    assert pos.added == 10


@pytest.mark.parametrize('last_generated', ['9-99', '0-0', '9-0'])
def test_recreated_stream_restarts(last_generated):
    pos = position(last_id='10-0', added=10)
    verdict = pos.verified(info(last_generated, added=3), batch_size=0,
                           read_count=100)
    assert verdict.restart
    assert 'the stream was recreated' in verdict.gap
    assert f'last-generated-id {last_generated} is before 10-0' in \
        verdict.gap
    assert (pos.last_id, pos.added) == ('0-0', 0)


def test_deleted_stream_restarts():
    pos = position(last_id='10-0', added=10)
    verdict = pos.verified(None, batch_size=0, read_count=100)
    assert verdict.restart
    assert 'no longer exists' in verdict.gap
    assert (pos.last_id, pos.added) == ('0-0', 0)


def test_missing_stream_at_the_start_is_no_gap():
    pos = StreamPosition('s', 1000, 100)
    pos.at_tail(None)
    assert pos.verified(None, 0, 100) == Verdict(None)
    pos.last_id = None
    assert pos.verified(None, 0, 100) == Verdict(None)


def test_same_last_generated_id_is_not_recreated():
    pos = position(last_id='10-0', added=10)
    assert pos.verified(info('10-0', added=10), 0, 100) == Verdict(None)


@pytest.mark.parametrize('first,gap', [
    ('10-0', False), ('5-0', False), ('10-1', True), ('12-0', True),
    (None, False),
])
def test_first_entry_check_before_redis_7(first, gap):
    pos = position(last_id='10-0', added=None)
    verdict = pos.verified(info(first=first), batch_size=3, read_count=100)
    assert not verdict.restart
    assert (verdict.gap is not None) is gap
    if gap:
        assert verdict.gap.startswith(
            f'the oldest entry left ({first}) is newer than the last one '
            f'read (10-0): entries in between may have been trimmed')


def test_first_entry_check_when_own_count_unknown():
    pos = position(last_id='10-0', added=None)
    verdict = pos.verified(info(added=99, first='20-0'), 1, 100)
    assert 'oldest entry left (20-0)' in verdict.gap
    assert pos.added is None


def test_text():
    assert text(None) is None
    assert text(b'1-0') == '1-0'
    assert text('1-0') == '1-0'
    assert text(5) == '5'
