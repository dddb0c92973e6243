"""A small Flask-SocketIO chat, meant to run as several servers of one
cluster linked by sio-redis-streams.

Run one server with::

    REDIS_URL=redis://localhost:6379/0 python examples/flask/app.py --port 5001

``ASYNC_MODE`` picks ``threading`` (the default), ``gevent`` or
``eventlet``; with gunicorn use ``gunicorn -k gevent -w 1 app:app``.
"""
import os

ASYNC_MODE = os.environ.get('ASYNC_MODE', 'threading')
if ASYNC_MODE == 'gevent':
    from gevent import monkey
    monkey.patch_all()
elif ASYNC_MODE == 'eventlet':
    import eventlet
    eventlet.monkey_patch()

import argparse
import logging
import socket

from flask import Flask, request
from flask_socketio import SocketIO, emit, join_room, leave_room

import sio_redis_streams

SERVER_NAME = os.environ.get('SERVER_NAME', socket.gethostname())

app = Flask(__name__)
manager = sio_redis_streams.RedisStreamsManager(
    os.environ.get('REDIS_URL', 'redis://localhost:6379/0'))
socketio = SocketIO(app, client_manager=manager, async_mode=ASYNC_MODE)


@app.route('/')
def index():
    return f'sio-redis-streams chat example: server {SERVER_NAME}\n'


@app.route('/health')
def health():
    return 'ok'


@socketio.on('join')
def on_join(data):
    room = data['room']
    join_room(room)
    emit('joined', {'user': data['user'], 'room': room,
                    'server': SERVER_NAME}, to=room)


@socketio.on('leave')
def on_leave(data):
    leave_room(data['room'])


@socketio.on('say')
def on_say(data):
    # every server of the cluster delivers this to its members of the room
    emit('message', {'room': data['room'], 'user': data['user'],
                     'text': data['text'], 'server': SERVER_NAME},
         to=data['room'])


@socketio.on('stats')
def on_stats():
    return {'server': SERVER_NAME, 'sid': request.sid,
            'stats': manager.stats()}


if __name__ == '__main__':
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--host', default='127.0.0.1')
    parser.add_argument('--port', type=int, default=5000)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    socketio.run(app, host=args.host, port=args.port,
                 allow_unsafe_werkzeug=True)
