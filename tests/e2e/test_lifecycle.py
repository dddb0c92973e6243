"""Starting and stopping: nothing leaks, a wrong setup fails early and
clearly, and a blocking XREAD never blocks the server."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import requests
import socketio

from sio_redis_streams import RedisStreamsManager

pytestmark = pytest.mark.cluster

APPS = Path(__file__).resolve().parents[1] / 'apps'


def run_check(*args: str) -> dict:
    result = subprocess.run(
        [sys.executable, str(APPS / 'shutdown_check.py'), *args],
        capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_shutdown_stops_every_task_and_closes_every_connection(
        redis_server, async_mode):
    report = run_check(async_mode, redis_server.url)
    roles = set(report['roles_before'])
    assert {'reader', 'subscriber', 'writer'} <= roles
    assert roles <= {'commands', 'reader', 'subscriber', 'writer'}
    # the reader was blocked in a 30 s XREAD; shutdown does not wait for it
    assert report['shutdown_seconds'] < 5
    assert report['tasks_stopped'] is True
    assert report['connections_after'] == 0


@pytest.mark.parametrize('denied', [
    ['-client|list'], ['-client|list', '-client|unblock']],
    ids=['no-client-list', 'no-client-list-or-unblock'])
def test_shutdown_stays_short_where_client_commands_are_denied(
        redis_server, async_mode, denied):
    """Managed Redis services often deny CLIENT LIST (and sometimes CLIENT
    UNBLOCK): the reader's connection keeps its own CLIENT ID, and without
    CLIENT UNBLOCK its socket is shut down, which wakes a green thread
    too. Before, the reader was only woken through CLIENT LIST."""
    redis_server.client().execute_command(
        'ACL', 'SETUSER', 'app', 'on', '>secret', '~*', '&*', '+@all',
        *denied)
    url = redis_server.url.replace('redis://', 'redis://app:secret@')
    report = run_check(async_mode, url)
    assert report['shutdown_seconds'] < 5
    assert report['tasks_stopped'] is True
    assert report['connections_after'] == 0


def test_a_new_server_is_known_at_once(redis_server):
    """A server that starts announces itself (INITIAL_HEARTBEAT) and the
    others answer at once; before, each learnt of the other only at its
    next heartbeat (5 s here)."""
    managers = []
    try:
        for _ in range(2):
            manager = RedisStreamsManager(redis_server.url,
                                          heartbeat_interval=5,
                                          heartbeat_timeout=12)
            socketio.Server(client_manager=manager, async_mode='threading')
            manager.start()
            managers.append(manager)
        deadline = time.monotonic() + 2
        while not all(m.live_server_count() == 2 for m in managers):
            assert time.monotonic() < deadline, \
                [m.live_server_count() for m in managers]
            time.sleep(0.05)
    finally:
        for manager in managers:
            manager.close()


@pytest.mark.parametrize('async_mode', ['gevent', 'eventlet'])
def test_green_modes_without_monkey_patching_fail_at_start(redis_server,
                                                           async_mode):
    report = run_check(async_mode, redis_server.url, 'unpatched')
    assert 'monkey' in report['error']
    assert f"async_mode='{async_mode}'" in report['error']
    assert 'async_mode="threading"' in report['error']


def test_the_server_answers_while_the_reader_blocks(
        redis_server, server_factory, client_factory):
    a, b = server_factory(2, redis_url=redis_server.url,
                          async_mode='gevent',
                          options={'block_time_ms': 60_000})
    alice = client_factory(a.url, name='alice')
    bob = client_factory(b.url, name='bob')
    raw = redis_server.client()

    def blocked_readers():
        return [c for c in raw.client_list()
                if ':reader:' in c['name'] and c['cmd'] == 'xread'
                and 'b' in c['flags']]

    deadline = time.monotonic() + 10
    while len(blocked_readers()) < 2:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    for _ in range(20):
        # generous bound: a server frozen by the XREAD would take 60 s
        assert requests.get(f'{a.url}/health', timeout=3).text == 'ok'
        assert alice.cmd('ping', wait=3)['name'] == 'A'
    assert len(blocked_readers()) == 2
    # and a blocked reader still wakes up for a new entry at once
    bob.cmd('emit', event='wake', args=[1])
    assert alice.wait_for(1, event='wake', timeout=3) == [(1,)]


def test_write_only_close_sends_what_is_queued(redis_server):
    emitter = RedisStreamsManager(redis_server.url, write_only=True)
    for i in range(500):
        emitter.emit('n', i)
    emitter.close()
    assert redis_server.client().xlen('socket.io') == 500
    stats = emitter.stats()
    assert stats['entries_written'] == 500 and stats['outbox_depth'] == 0
    # after close, nothing is queued any more
    emitter.emit('late', 1)
    assert emitter.stats()['outbox_depth'] == 0


def test_a_script_that_exits_without_close_still_sends(redis_server):
    script = textwrap.dedent(f'''
        from sio_redis_streams import RedisStreamsManager
        emitter = RedisStreamsManager({redis_server.url!r}, write_only=True)
        for i in range(200):
            emitter.emit('cron', {{'i': i}}, to='room', namespace='/jobs')
    ''')
    subprocess.run([sys.executable, '-c', script], check=True, timeout=60)
    entries = redis_server.client().xrange('socket.io')
    assert len(entries) == 200
    last = json.loads(entries[-1][1][b'data'])
    assert last['packet']['data'] == ['cron', {'i': 199}]
    assert last['opts']['rooms'] == ['room']
