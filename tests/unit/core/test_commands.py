"""The hot paths' commands and the shapes of their raw replies."""
import pytest
import redis

from sio_redis_streams.core import commands

Error = redis.exceptions.ResponseError


def test_xadd_trims_approximately_and_lets_redis_pick_the_id():
    assert commands.xadd('s', {'uid': 'a', 'type': '2'}, 500) == (
        'XADD', 's', 'MAXLEN', '~', 500, '*', 'uid', 'a', 'type', '2')


def test_xread_blocks_only_when_asked():
    assert commands.xread('s', '1-0', 10) == (
        'XREAD', 'COUNT', 10, 'STREAMS', 's', '1-0')
    assert commands.xread('s', '1-0', 10, 5000) == (
        'XREAD', 'COUNT', 10, 'BLOCK', 5000, 'STREAMS', 's', '1-0')


def test_a_transaction_is_its_commands_between_multi_and_exec():
    assert commands.transaction(('A',), ('B',)) == [
        ('MULTI',), ('A',), ('B',), ('EXEC',)]


def test_transaction_replies_are_those_of_exec():
    replies = [b'OK', b'QUEUED', b'QUEUED', [b'1-0', Error('WRONGTYPE')]]
    result = commands.transaction_replies(replies, Error)
    assert result[0] == b'1-0' and isinstance(result[1], Error)


def test_a_command_refused_when_queued_is_the_error_raised():
    refused = redis.exceptions.OutOfMemoryError('OOM command not allowed')
    replies = [b'OK', b'QUEUED', refused,
               redis.exceptions.ExecAbortError('EXECABORT')]
    with pytest.raises(Error) as raised:
        commands.transaction_replies(replies, Error)
    assert raised.value is refused


def test_a_refused_or_aborted_exec_raises():
    with pytest.raises(Error, match='NOREPLICAS'):
        commands.transaction_replies([b'OK', Error('NOREPLICAS')], Error)
    with pytest.raises(Error, match='aborted'):
        commands.transaction_replies([b'OK', None], Error)


def test_entries_of_an_xread_reply():
    reply = [[b's', [[b'1-0', [b'uid', b'a', b'type', b'2']],
                     [b'2-0', []]]]]
    assert commands.entries(reply) == [
        (b'1-0', {b'uid': b'a', b'type': b'2'}), (b'2-0', {})]
    assert commands.entries(None) == []
    assert commands.entries([]) == []


def test_stream_info_has_text_keys_and_raw_values():
    info = commands.stream_info([
        b'length', 2, b'last-generated-id', b'5-0', b'entries-added', 7,
        b'first-entry', [b'4-0', [b'uid', b'a']]])
    assert info == {'length': 2, 'last-generated-id': b'5-0',
                    'entries-added': 7,
                    'first-entry': [b'4-0', [b'uid', b'a']]}
