"""A task's held connection: several commands in one write, error replies
as values, and nothing left unread after a failure."""
import pytest
import redis

from sio_redis_streams.sync.direct import DirectConnection

Error = redis.exceptions.ResponseError


class FakeConnection:
    def __init__(self, replies):
        self.replies = list(replies)
        self.sent = []
        self.disconnects = 0
        self._sock = object()

    def pack_commands(self, commands):
        return [repr(c).encode() for c in commands]

    def send_packed_command(self, packed, check_health=True):
        self.sent.append(packed)

    def read_response(self):
        reply = self.replies.pop(0)
        if isinstance(reply, BaseException):
            raise reply
        return reply

    def disconnect(self):
        self.disconnects += 1


class FakePool:
    def __init__(self, connection, wants_name=False):
        self.connection = connection
        self.wants_name = wants_name
        self.checkouts = 0

    def get_connection(self, *command_name):
        if self.wants_name and not command_name:
            raise TypeError('missing command_name')
        self.checkouts += 1
        return self.connection


def direct(replies, wants_name=False):
    connection = FakeConnection(replies)
    pool = FakePool(connection, wants_name)
    client = type('Client', (), {'connection_pool': pool})()
    return DirectConnection(client, Error), connection, pool


def test_commands_go_out_in_one_write_and_error_replies_come_back():
    conn, connection, pool = direct([b'OK', Error('WRONGTYPE'), 3])
    replies = conn.execute(('A',), ('B',), ('C',))
    assert replies[0] == b'OK' and isinstance(replies[1], Error)
    assert replies[2] == 3
    assert len(connection.sent) == 1 and len(connection.sent[0]) == 3
    conn.execute()
    assert pool.checkouts == 1  # held, not checked out again
    assert connection.disconnects == 0


def test_call_raises_the_error_reply():
    conn, _, _ = direct([Error('no such key')])
    with pytest.raises(Error, match='no such key'):
        conn.call(('XINFO', 'STREAM', 's'))


def test_a_broken_connection_is_disconnected_so_no_reply_is_left():
    lost = redis.exceptions.ConnectionError('gone')
    conn, connection, _ = direct([b'OK', lost])
    with pytest.raises(redis.exceptions.ConnectionError):
        conn.execute(('A',), ('B',))
    assert connection.disconnects == 1


def test_older_clients_get_a_command_name_at_checkout():
    conn, _, pool = direct([b'PONG'], wants_name=True)
    assert conn.call(('PING',)) == b'PONG'
    assert pool.checkouts == 1
    assert conn.socket is not None
