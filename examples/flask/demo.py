"""The one-command demo: a chat cluster of two Flask-SocketIO servers on one
Redis, which loses no message while Redis is killed and restarted.

    python examples/flask/demo.py

It starts its own ``redis-server`` (with an append-only file, on a free
loopback port), two servers of ``app.py``, and two chat clients, one per
server. Alice (server A) and Bob (server B) chat; halfway through, Redis is
killed with SIGKILL and they keep talking; Redis comes back and every
message reaches both of them, once and in order. A report follows.
"""
import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
MESSAGES_PER_PHASE = 20


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--async-mode', default='threading',
                        choices=['threading', 'gevent', 'eventlet'])
    parser.add_argument('--outage', type=float, default=3.0,
                        help='seconds Redis stays down (default 3)')
    args = parser.parse_args()
    check_requirements()
    import socketio  # after the check, which explains a missing package

    workdir = tempfile.mkdtemp(prefix='sio-redis-streams-demo-')
    processes = Processes()
    try:
        step('starting redis-server (append-only file on)')
        redis = RedisProcess(workdir, processes)
        redis.start()
        step(f'starting servers A and B ({args.async_mode})')
        servers = {name: start_server(name, redis.url, args.async_mode,
                                      workdir, processes)
                   for name in ('A', 'B')}
        clients = {user: ChatClient(socketio, user, servers[server])
                   for user, server in (('alice', 'A'), ('bob', 'B'))}
        for client in clients.values():
            client.join('lobby')
        expected = []

        step(f'phase 1: {MESSAGES_PER_PHASE} messages each, Redis up')
        expected += chat(clients, 'up', MESSAGES_PER_PHASE)
        wait_all(clients, expected)

        step('phase 2: killing Redis (SIGKILL), chatting on')
        redis.kill()
        down_at = time.monotonic()
        expected += chat(clients, 'down', MESSAGES_PER_PHASE)
        time.sleep(max(0.0, args.outage - (time.monotonic() - down_at)))
        step('restarting Redis')
        redis.start()
        down_for = time.monotonic() - down_at
        expected += chat(clients, 'back', MESSAGES_PER_PHASE)
        wait_all(clients, expected)

        ok = report(clients, expected, down_for)
    finally:
        step('stopping everything')
        processes.stop_all()
        shutil.rmtree(workdir, ignore_errors=True)
    sys.exit(0 if ok else 1)


def check_requirements():
    missing = []
    if shutil.which('redis-server') is None:
        missing.append('redis-server (Debian: sudo apt-get install '
                       'redis-server)')
    for module, package in (('flask_socketio', 'flask-socketio'),
                            ('socketio', 'python-socketio[client]'),
                            ('websocket', 'websocket-client'),
                            ('requests', 'requests'),
                            ('sio_redis_streams', 'sio-redis-streams')):
        try:
            __import__(module)
        except ImportError:
            missing.append(f'{module} (pip install {package})')
    if missing:
        sys.exit('the demo needs: ' + '; '.join(missing) +
                 "\n(or run: pip install -e '.[test]' from the project)")


def step(text):
    print(f'[{time.strftime("%H:%M:%S")}] {text}', flush=True)


def free_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


class Processes:
    """Every process the demo starts, so that all of them are stopped."""

    def __init__(self):
        self.running = []

    def spawn(self, argv, log_path, env=None):
        log = open(log_path, 'ab')
        process = subprocess.Popen(argv, stdout=log, stderr=log, env=env,
                                   start_new_session=True)
        log.close()
        self.running.append(process)
        return process

    def stop(self, process, sig=signal.SIGTERM):
        if process.poll() is None:
            os.killpg(process.pid, sig)
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        self.running.remove(process)

    def stop_all(self):
        for process in list(self.running):
            self.stop(process)


class RedisProcess:
    """A private redis-server that can be killed and started again on the
    same port, with its data kept in an append-only file."""

    def __init__(self, workdir, processes):
        self.port = free_port()
        self.url = f'redis://127.0.0.1:{self.port}/0'
        self.workdir = workdir
        self.processes = processes
        self.process = None

    def start(self):
        self.process = self.processes.spawn(
            ['redis-server', '--port', str(self.port), '--bind', '127.0.0.1',
             '--dir', self.workdir, '--appendonly', 'yes',
             '--appendfsync', 'always', '--save', ''],
            os.path.join(self.workdir, 'redis.log'))
        wait_until(lambda: self.ping(), 10, 'redis-server did not start')

    def kill(self):
        self.processes.stop(self.process, signal.SIGKILL)

    def ping(self):
        try:
            with socket.create_connection(('127.0.0.1', self.port), 1) as s:
                s.sendall(b'PING\r\n')
                return s.recv(16).startswith(b'+PONG')
        except OSError:
            return False


def start_server(name, redis_url, async_mode, workdir, processes):
    port = free_port()
    env = dict(os.environ, REDIS_URL=redis_url, ASYNC_MODE=async_mode,
               SERVER_NAME=name)
    processes.spawn([sys.executable, os.path.join(HERE, 'app.py'),
                     '--port', str(port)],
                    os.path.join(workdir, f'server-{name}.log'), env=env)
    url = f'http://127.0.0.1:{port}'

    def healthy():
        try:
            return urllib.request.urlopen(url + '/health', timeout=1).read() \
                == b'ok'
        except OSError:
            return False

    wait_until(healthy, 20, f'server {name} did not start (see its log in '
                            f'{workdir})')
    step(f'  server {name} listening on {url}')
    return url


def wait_until(predicate, timeout, error):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError(error)
        time.sleep(0.05)


class ChatClient:
    """A real Socket.IO client that records the chat messages it gets."""

    def __init__(self, socketio, user, url):
        self.user = user
        self.server_url = url
        self.received = []
        self.reconnects = 0
        self._lock = threading.Lock()
        self.sio = socketio.Client()
        self.sio.on('message', self._on_message)
        self.sio.connect(url, transports=['websocket'])

    def _on_message(self, data):
        with self._lock:
            self.received.append((data['user'], data['text']))

    def join(self, room):
        self.room = room
        self.sio.emit('join', {'room': room, 'user': self.user})

    def say(self, text):
        self.sio.emit('say', {'room': self.room, 'user': self.user,
                              'text': text})

    def stats(self):
        return self.sio.call('stats', timeout=5)['stats']


def chat(clients, phase, count):
    sent = []
    for i in range(1, count + 1):
        for client in clients.values():
            text = f'{phase} #{i}'
            client.say(text)
            sent.append((client.user, text))
        time.sleep(0.02)
    return sent


def wait_all(clients, expected, timeout=30):
    def complete():
        return all(len(c.received) >= len(expected)
                   for c in clients.values())
    try:
        wait_until(complete, timeout, 'timeout')
    except RuntimeError:
        pass  # the report says what is missing
    time.sleep(0.5)  # a duplicate would arrive now


def report(clients, expected, down_for):
    print()
    print('=' * 64)
    print(f'Redis was down for {down_for:.1f} s (killed with SIGKILL)')
    ok = True
    for client in clients.values():
        got = client.received
        in_order = all([m for m in got if m[0] == user] ==
                       [m for m in expected if m[0] == user]
                       for user in clients)
        duplicates = len(got) - len(set(got))
        missing = len(set(expected) - set(got))
        good = not missing and not duplicates and in_order
        ok = ok and good
        stats = client.stats()
        print(f'{client.user:>6} on {client.server_url}: '
              f'{len(set(got) & set(expected))}/{len(expected)} delivered, '
              f'{missing} missing, {duplicates} duplicates, '
              f'{"in order" if in_order else "OUT OF ORDER"}')
        print(f'        its server: writer lost Redis '
              f'{stats["writer_reconnects"]}x, reader '
              f'{stats["reader_reconnects"]}x, entries written '
              f'{stats["entries_written"]}, read {stats["entries_read"]}, '
              f'outbox now {stats["outbox_depth"]}')
    print('RESULT:', 'every message delivered once, in order' if ok
          else 'MESSAGES LOST OR DUPLICATED')
    print('=' * 64)
    return ok


if __name__ == '__main__':
    main()
