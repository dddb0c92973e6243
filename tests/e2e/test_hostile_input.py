"""Hostile input from Redis, at volume: tens of thousands of poison entries
among a numbered sequence, and a flood of heartbeats naming thousands of
servers and namespaces. Nothing may knock a reader over, make a server
reconnect, or grow its memory without bound."""
from __future__ import annotations

import base64
import json

import msgpack
import pytest

from sio_redis_streams.core import codec
from sio_redis_streams.core.addressing import EVERYONE
from sio_redis_streams.core.messages import Broadcast, Heartbeat
from tests.e2e.test_faults import connect, no_task_crashed, options, stats
from tests.support.waiting import eventually, settle

pytestmark = pytest.mark.cluster

__all__ = ['connect']  # a fixture

PEER = 'f' * 16
LIMIT = 65536  # max_message_size of the servers here


def entry(fields):
    return {k.encode(): v if isinstance(v, bytes) else v.encode()
            for k, v in fields.items()}


def broadcast(n):
    return entry(codec.encode_entry(Broadcast(PEER, '/', None, 'seq',
                                              ({'n': n},), EVERYONE)))


def poison(data=b'{}', **fields):
    value = {'uid': PEER, 'nsp': '/', 'type': '3', 'data': data}
    value.update(fields)
    return entry({k: v for k, v in value.items() if v is not None})


def b64msgpack(value):
    return base64.b64encode(msgpack.packb(value, use_bin_type=True))


GOOD_PACKET = {'packet': {'type': 2, 'data': ['seq', {'n': -1}]},
               'opts': {'rooms': [], 'except': [], 'flags': {}}}
POISON = [
    poison(type='²'), poison(type='9' * 5000), poison(type='-3'),
    poison(type='３'), poison(type='99'), poison(uid=None),
    poison(nsp='no-slash'), poison(uid=b'\xff\xfe'),
    poison(b'[' * 100_000), poison(b'{"a":' * 3000),
    poison(b'{"packet":{"type":2,"data":["seq",1' + b'0' * 5000 + b']}}'),
    poison(json.dumps({**GOOD_PACKET, 'pad': 'x' * LIMIT}).encode()),
    poison(b64msgpack({**GOOD_PACKET, 'packet': {
        'type': 2, 'data': ['seq', msgpack.ExtType(42, b'boom')]}})),
    poison(b64msgpack(GOOD_PACKET)[:-8] + b'!!!!!!!!'),
    poison(base64.b64encode(b'\x91' * 2000 + b'\xc0')),
    poison(json.dumps({**GOOD_PACKET, 'opts': {'rooms': [[1]]}}).encode()),
    poison(json.dumps({**GOOD_PACKET, 'opts': {'flags': []}}).encode()),
    poison(b'{"packet":{"type":2,"data":[7]},"opts":{}}'),
    poison(type='4', data=b'{"opts":{},"rooms":{"r":1}}'),
    poison(type='6', data=b'{"opts":{},"close":"yes"}'),
]


def rss_mb(server) -> float:
    with open(f'/proc/{server.pid}/status') as status:
        for line in status:
            if line.startswith('VmRSS:'):
                return int(line.split()[1]) / 1024
    raise AssertionError('no VmRSS')


def test_poison_entries_among_a_sequence_cost_nothing(
        redis_server, server_factory, connect, async_mode):
    """Before, an entry whose type was a non-ASCII digit or a 5,000-digit
    number raised out of the decoder: the reader reconnected and re-read,
    once for each such entry."""
    b, = server_factory(redis_url=redis_server.url, async_mode=async_mode,
                        options=options(max_message_size=LIMIT,
                                        maxlen=1_000_000))
    bob = connect(b.url, 'bob')
    settle(bob)
    raw = redis_server.client()
    total, per_entry = 1000, 20
    injected = 0
    rss = []
    for first in (1, total // 2 + 1):  # two rounds: memory must level off
        for start in range(first, first + total // 2, 50):
            pipe = raw.pipeline(transaction=False)
            for n in range(start, start + 50):
                for k in range(per_entry):
                    pipe.xadd('socket.io', POISON[(n + k) % len(POISON)])
                    injected += 1
                pipe.xadd('socket.io', broadcast(n))
            pipe.execute()
        bob.wait_for(first + total // 2 - 1, event='seq', timeout=120)
        rss.append(rss_mb(b))
    assert [e[0]['n'] for e in bob.events('seq')] == \
        list(range(1, total + 1))
    eventually(lambda: stats(bob)['bad_entries'] == injected, timeout=30,
               what='every poison entry counted')
    b_stats = stats(bob)
    assert b_stats['reader_reconnects'] == 0, b_stats
    assert b_stats['handler_errors'] == 0, b_stats
    # the second round of 10,000 poison entries costs no more memory than
    # allocator noise
    assert rss[1] - rss[0] < 20, rss
    no_task_crashed(b)


def heartbeat(uid, nsp, channel_nsp='/'):
    return (codec.public_channel('socket.io', channel_nsp),
            codec.encode_pubsub(Heartbeat(uid, nsp)))


def test_a_heartbeat_flood_leaves_bounded_tables(
        redis_server, server_factory, connect, async_mode):
    """Before, a message naming a namespace in ``nsp`` made an entry in the
    table of live servers that was never removed, even for namespaces the
    server does not serve."""
    b, = server_factory(redis_url=redis_server.url, async_mode=async_mode,
                        options=options(heartbeat_interval=0.5,
                                        heartbeat_timeout=2))
    bob = connect(b.url, 'bob')
    settle(bob)
    raw = redis_server.client()
    # big, but under what Redis lets a subscriber fall behind by (8 MB)
    big = '/' + 'n' * 20_000
    rss_before = rss_mb(b)
    pipe = raw.pipeline(transaction=False)
    for i in range(300):  # foreign namespaces on the channel of '/'
        pipe.publish(*heartbeat(PEER, f'{big}{i}'))
    for i in range(3000):  # thousands of server ids, as one attacker can
        pipe.publish(*heartbeat(f'{i:016x}', '/'))
    pipe.execute()
    eventually(lambda: stats(bob)['bad_messages'] == 300, timeout=20,
               what='the foreign namespaces refused')
    eventually(lambda: stats(bob)['tracked_servers'] >= 3000, timeout=20,
               what='the flood heard')
    assert bob.cmd('live_servers') >= 3000
    # the servers that went silent are forgotten: the table shrinks back
    eventually(lambda: stats(bob)['tracked_servers'] == 0, timeout=20,
               what='silent servers forgotten')
    assert bob.cmd('live_servers') == 1
    assert rss_mb(b) - rss_before < 40
    no_task_crashed(b)
