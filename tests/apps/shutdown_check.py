"""Start a manager under an async mode, then shut its server down, and
report as JSON what was left behind.

    python tests/apps/shutdown_check.py <async_mode> <redis_url> [unpatched]

With ``unpatched``, gevent/eventlet are imported but the standard library
is not monkey-patched: creating the server must fail with RuntimeError.
"""
import sys

MODE, REDIS_URL = sys.argv[1], sys.argv[2]
PATCH = 'unpatched' not in sys.argv[3:]

if MODE == 'gevent':
    from gevent import monkey
    if PATCH:
        monkey.patch_all()
elif MODE == 'eventlet':
    import warnings
    warnings.filterwarnings('ignore', message=r'\s*Eventlet is deprecated')
    import eventlet
    if PATCH:
        eventlet.monkey_patch()

import json
import os
import time

import redis
import socketio

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))
from sio_redis_streams import RedisStreamsManager  # noqa: E402


def our_connections(raw, uid):
    return [c for c in raw.client_list()
            if c.get('name', '').startswith(f'sio-redis-streams:{uid}:')]


def main():
    manager = RedisStreamsManager(REDIS_URL, block_time_ms=30_000)
    try:
        server = socketio.Server(client_manager=manager, async_mode=MODE)
    except RuntimeError as exc:
        print(json.dumps({'error': str(exc)}))
        return
    raw = redis.Redis.from_url(REDIS_URL.replace('app:secret@', ''))
    manager.initialize()
    manager.emit('hello', 1)  # the writer's connection opens on first use
    assert manager.flush(10)
    deadline = time.monotonic() + 10
    while not any(c['cmd'] == 'xread' for c in
                  our_connections(raw, manager.uid)):
        assert time.monotonic() < deadline, 'the reader never blocked'
        server.sleep(0.05)
    before = sorted({c['name'].rsplit(':', 2)[-2] if 'reader' in c['name']
                    else c['name'].rsplit(':', 1)[-1]
                     for c in our_connections(raw, manager.uid)})
    started = time.monotonic()
    server.shutdown()
    elapsed = time.monotonic() - started
    server.sleep(0.2)
    print(json.dumps({
        'roles_before': before,
        'shutdown_seconds': elapsed,
        'connections_after': len(our_connections(raw, manager.uid)),
        'tasks_stopped': manager._driver.tasks_stopped(),
    }))


main()
