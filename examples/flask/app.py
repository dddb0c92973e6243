"""A chat, as one server of a cluster of Flask-SocketIO servers linked by
sio-redis-streams: rooms, a message box, and who is online in each room
across the whole cluster.

Run it under gunicorn's gevent worker, one worker per process, one process
per server (see the README next to this file)::

    REDIS_URL=redis://127.0.0.1:6379/0 SERVER_NAME=A \\
        gunicorn -k geventwebsocket.gunicorn.workers.GeventWebSocketWorker \\
        -w 1 -b 127.0.0.1:5001 app:app

or, for development, ``python app.py --port 5001`` (``ASYNC_MODE`` picks
``threading`` (default), ``gevent`` or ``eventlet``).
"""
import os

ASYNC_MODE = os.environ.get('ASYNC_MODE')
if ASYNC_MODE == 'eventlet':
    import eventlet
    eventlet.monkey_patch()
elif ASYNC_MODE == 'gevent':
    from gevent import monkey
    monkey.patch_all()
elif ASYNC_MODE is None:
    # under gunicorn's gevent worker the process is already patched; else
    # threads (python-socketio would pick eventlet if it is installed)
    import sys
    gevent_monkey = sys.modules.get('gevent.monkey')
    ASYNC_MODE = 'gevent' if gevent_monkey and \
        gevent_monkey.is_module_patched('socket') else 'threading'

import argparse
import logging
import socket
import time
from pathlib import Path

from flask import Flask, abort, render_template, request, send_file
from flask_socketio import SocketIO, emit, join_room, leave_room

import sio_redis_streams

HERE = Path(__file__).resolve().parent
#: The official JS client, installed from npm (npm ci --prefix
#: examples/flask): no CDN.
JS_CLIENT = HERE / 'node_modules' / 'socket.io-client' / 'dist' / \
    'socket.io.min.js'
SERVER_NAME = os.environ.get('SERVER_NAME', socket.gethostname())

app = Flask(__name__)
manager = sio_redis_streams.RedisStreamsManager(
    os.environ.get('REDIS_URL', 'redis://localhost:6379/0'),
    stream_name=os.environ.get('STREAM_NAME', 'socket.io'),
    connection_state_recovery=os.environ.get('RECOVERY') == '1')
socketio = SocketIO(app, client_manager=manager, async_mode=ASYNC_MODE)


@app.route('/')
def index():
    return render_template('index.html', server=SERVER_NAME)


@app.route('/health')
def health():
    return 'ok'


@app.route('/vendor/socket.io.min.js')
def js_client():
    if not JS_CLIENT.exists():
        abort(404, 'run: npm ci --prefix examples/flask')
    return send_file(JS_CLIENT, mimetype='application/javascript')


@socketio.on('join')
def on_join(data):
    """Enter a room under a name (leaving the previous room)."""
    user = str(data.get('user') or 'anonymous')[:40]
    room = str(data.get('room') or 'lobby')[:40]
    previous = manager.get_data(request.sid) or {}
    if previous.get('room') and previous['room'] != room:
        leave_room(previous['room'])
        announce(previous['room'])
    join_room(room)
    # the session is the socket's data that fetch_sockets reports, on
    # every server of the cluster
    manager.set_data(request.sid, {'user': user, 'room': room,
                                   'server': SERVER_NAME})
    emit('joined', {'room': room, 'server': SERVER_NAME})
    announce(room)


@socketio.on('say')
def on_say(data):
    """Send a message to everyone in the sender's room, on every server."""
    me = manager.get_data(request.sid) or {}
    if 'room' not in me:
        return {'error': 'join a room first'}
    emit('message', {'room': me['room'], 'user': me['user'],
                     'text': str(data.get('text', ''))[:1000],
                     'server': SERVER_NAME, 'time': time.time()},
         to=me['room'])
    return {'ok': True}


@socketio.on('disconnect')
def on_disconnect(*_reason):
    me = manager.get_data(request.sid) or {}
    if 'room' in me:
        socketio.start_background_task(announce, me['room'],
                                       request.sid)


@socketio.on('stats')
def on_stats():
    return {'server': SERVER_NAME, 'stats': manager.stats()}


def announce(room, gone=None):
    """Tell a room who is in it, cluster-wide."""
    try:
        sockets = manager.fetch_sockets(to=room, skip=gone, timeout=2)
    except sio_redis_streams.ClusterTimeoutError as exc:
        sockets = exc.responses  # a server did not answer: show the others
    people = sorted({(s.data or {}).get('user', '?') + ' @ ' +
                     (s.data or {}).get('server', '?') for s in sockets})
    socketio.emit('presence', {'room': room, 'people': people}, to=room)


if __name__ == '__main__':
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--host', default='127.0.0.1')
    parser.add_argument('--port', type=int, default=5000)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    socketio.run(app, host=args.host, port=args.port,
                 allow_unsafe_werkzeug=True)
