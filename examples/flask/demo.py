"""The one-command demo: a Flask-SocketIO chat cluster on one Redis that
loses no message while Redis goes away and comes back.

    python examples/flask/demo.py [--keep-running]

It starts two ``gunicorn`` gevent servers of ``app.py`` and the sticky
``balancer.py`` in front of them, on loopback, with Redis behind: the local
Redis if one answers on 127.0.0.1:6379 (then the demo cuts the servers'
connections to it, as a network failure would, since it does not own it),
else, or with ``--own-redis``, a ``redis-server`` it launches with an
append-only file (then it really kills it with SIGKILL and restarts it).
Two chat clients connect through the balancer and land on different
servers; they chat before, during and after the outage; a report follows.
With ``--keep-running`` the cluster stays up for a browser until Ctrl-C.
"""
import argparse
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
LOCAL_REDIS = ('127.0.0.1', 6379)
GUNICORN_WORKER = 'geventwebsocket.gunicorn.workers.GeventWebSocketWorker'
MESSAGES_PER_PHASE = 20

REQUIREMENTS = [
    ('flask_socketio', 'flask-socketio'),
    ('socketio', 'python-socketio[client]'),
    ('websocket', 'websocket-client'),
    ('requests', 'requests'),
    ('gunicorn', 'gunicorn'),
    ('gevent', 'gevent'),
    ('geventwebsocket', 'gevent-websocket'),
    ('sio_redis_streams', 'sio-redis-streams'),
]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--servers', type=int, default=2)
    parser.add_argument('--port', type=int, default=0,
                        help='port of the balancer (default: any free one)')
    parser.add_argument('--outage', type=float, default=3.0,
                        help='seconds Redis stays away (default 3)')
    parser.add_argument('--own-redis', action='store_true',
                        help='launch a redis-server even if one runs')
    parser.add_argument('--keep-running', action='store_true',
                        help='leave the cluster up for a browser')
    args = parser.parse_args()
    # stop everything on Ctrl-C or SIGTERM, even when started in the
    # background (where a shell ignores SIGINT for it)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    own_redis = args.own_redis or not redis_answers(*LOCAL_REDIS)
    check_requirements(own_redis, args.keep_running)
    import socketio  # the check above explains a missing package

    workdir = tempfile.mkdtemp(prefix='sio-redis-streams-demo-')
    processes = Processes()
    stream = f'sio-demo-{os.getpid()}'
    ok = False
    redis = None
    try:
        if own_redis:
            step('starting a redis-server (append-only file on)')
            redis = OwnRedis(workdir, processes)
        else:
            step('using the local Redis on 127.0.0.1:6379, through a relay '
                 'the demo can cut')
            redis = LocalRedis()
        redis.start()
        names = [chr(ord('A') + i) for i in range(args.servers)]
        servers = {name: start_server(name, redis.url, stream, workdir,
                                      processes) for name in names}
        balancer = start_balancer(args.port, servers, workdir, processes)
        clients = [ChatClient(socketio, user, balancer)
                   for user in ('alice', 'bob')]
        for client in clients:
            client.join('lobby')
            step(f'  {client.user} is connected to server {client.server}')
        expected = []

        step(f'phase 1: {MESSAGES_PER_PHASE} messages each, Redis up')
        expected += chat(clients, 'before', MESSAGES_PER_PHASE)
        wait_all(clients, expected)

        step(f'phase 2: {redis.outage_verb}, chatting on')
        down_at = time.monotonic()
        redis.go_away()
        expected += chat(clients, 'during', MESSAGES_PER_PHASE)
        time.sleep(max(0.0, args.outage - (time.monotonic() - down_at)))
        step(f'phase 3: {redis.return_verb}, chatting on')
        redis.come_back()
        down_for = time.monotonic() - down_at
        expected += chat(clients, 'after', MESSAGES_PER_PHASE)
        wait_all(clients, expected)

        ok = report(clients, expected, down_for, redis)
        if args.keep_running:
            keep_running(balancer, servers)
    except KeyboardInterrupt:
        pass
    finally:
        step('stopping everything')
        processes.stop_all()
        if isinstance(redis, LocalRedis):
            redis.stop(stream)
        shutil.rmtree(workdir, ignore_errors=True)
    sys.exit(0 if ok else 1)


def check_requirements(own_redis, browser):
    missing = []
    if own_redis and shutil.which('redis-server') is None:
        missing.append('Redis: no Redis answers on 127.0.0.1:6379 and '
                       'redis-server is not installed (Debian: sudo apt-get '
                       'install redis-server)')
    for module, package in REQUIREMENTS:
        try:
            __import__(module)
        except ImportError:
            missing.append(f'the Python module {module} (pip install '
                           f'{package})')
    if missing:
        sys.exit('the demo needs:\n  - ' + '\n  - '.join(missing) +
                 "\n(from the project: pip install -e '.[test]')")
    js = os.path.join(HERE, 'node_modules', 'socket.io-client')
    if browser and not os.path.isdir(js):
        print('note: the chat page needs the Socket.IO JS client: npm ci '
              '--prefix examples/flask', flush=True)


def step(text):
    print(f'[{time.strftime("%H:%M:%S")}] {text}', flush=True)


def free_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def redis_answers(host, port):
    try:
        with socket.create_connection((host, port), 1) as sock:
            sock.sendall(b'PING\r\n')
            return sock.recv(16).startswith(b'+PONG')
    except OSError:
        return False


def wait_until(predicate, timeout, error):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError(error)
        time.sleep(0.05)


class Processes:
    """Every process the demo starts, so that all of them are stopped."""

    def __init__(self):
        self.running = []

    def spawn(self, argv, log_path, env=None, cwd=None):
        with open(log_path, 'ab') as log:
            process = subprocess.Popen(argv, stdout=log, stderr=log,
                                       env=env, cwd=cwd,
                                       start_new_session=True)
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
        for process in reversed(list(self.running)):
            self.stop(process)


class OwnRedis:
    """A private redis-server, really killed (SIGKILL) and restarted on the
    same port; its append-only file keeps the stream."""
    outage_verb = 'killing Redis (SIGKILL)'
    return_verb = 'restarting Redis'

    def __init__(self, workdir, processes):
        self.port = free_port()
        self.url = f'redis://127.0.0.1:{self.port}/0'
        self.workdir = workdir
        self.processes = processes
        self.process = None
        self.restarts = 0

    def start(self):
        self.process = self.processes.spawn(
            ['redis-server', '--port', str(self.port), '--bind', '127.0.0.1',
             '--dir', self.workdir, '--appendonly', 'yes',
             '--appendfsync', 'always', '--save', ''],
            os.path.join(self.workdir, 'redis.log'))
        wait_until(lambda: redis_answers('127.0.0.1', self.port), 15,
                   'redis-server did not start')

    def go_away(self):
        self.processes.stop(self.process, signal.SIGKILL)

    def come_back(self):
        self.start()
        self.restarts += 1


class LocalRedis:
    """The local Redis, reached through a relay that can be cut: the servers
    see their connections reset and refused, as in a network failure."""
    outage_verb = "cutting the servers' connections to Redis"
    return_verb = 'reconnecting them'

    def __init__(self):
        self.relay = Relay(LOCAL_REDIS)
        self.url = f'redis://127.0.0.1:{self.relay.port}/0'
        self.restarts = 0

    def start(self):
        self.relay.start()

    def go_away(self):
        self.relay.cut(True)

    def come_back(self):
        self.relay.cut(False)

    def stop(self, stream):
        self.relay.stop()
        import redis
        client = redis.Redis(*LOCAL_REDIS)
        client.delete(stream)
        client.close()


class Relay:
    """A TCP relay; ``cut(True)`` resets every connection and refuses new
    ones until ``cut(False)``."""

    def __init__(self, target):
        self.target = target
        self.listener = socket.create_server(('127.0.0.1', 0))
        self.port = self.listener.getsockname()[1]
        self.links = set()
        self.refusing = False
        self.lock = threading.Lock()

    def start(self):
        threading.Thread(target=self._accept, daemon=True).start()

    def cut(self, refusing):
        with self.lock:
            self.refusing = refusing
            links = list(self.links) if refusing else []
        for sock in links:
            self._reset(sock)

    def stop(self):
        self.listener.close()
        self.cut(True)

    def _accept(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            with self.lock:
                refusing = self.refusing
            if refusing:
                self._reset(client)
                continue
            try:
                upstream = socket.create_connection(self.target, 5)
                upstream.settimeout(None)
            except OSError:
                self._reset(client)
                continue
            with self.lock:
                self.links.update((client, upstream))
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink),
                                 daemon=True).start()

    def _pump(self, source, sink):
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        for sock in (source, sink):
            self._reset(sock)

    def _reset(self, sock):
        with self.lock:
            self.links.discard(sock)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                            struct.pack('ii', 1, 0))
            # unlike close(), shutdown() wakes the thread blocked in recv()
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        sock.close()


def start_server(name, redis_url, stream, workdir, processes):
    port = free_port()
    env = dict(os.environ, REDIS_URL=redis_url, SERVER_NAME=name,
               STREAM_NAME=stream)
    env.pop('ASYNC_MODE', None)
    processes.spawn([sys.executable, '-m', 'gunicorn', '-k', GUNICORN_WORKER,
                     '-w', '1', '-b', f'127.0.0.1:{port}', 'app:app'],
                    os.path.join(workdir, f'server-{name}.log'), env=env,
                    cwd=HERE)
    url = f'http://127.0.0.1:{port}'
    wait_until(lambda: http_ok(url + '/health'), 30,
               f'server {name} did not start (see {workdir})')
    step(f'  server {name}: gunicorn gevent worker on {url}')
    return url


def start_balancer(port, servers, workdir, processes):
    port = port or free_port()
    backends = [f'{name}={url[len("http://"):]}'
                for name, url in servers.items()]
    argv = [sys.executable, os.path.join(HERE, 'balancer.py'), '--port',
            str(port)]
    for backend in backends:
        argv += ['--backend', backend]
    processes.spawn(argv, os.path.join(workdir, 'balancer.log'))
    url = f'http://127.0.0.1:{port}'
    wait_until(lambda: http_ok(url + '/health'), 15,
               'the balancer did not start')
    step(f'  sticky balancer on {url}')
    return url


def http_ok(url):
    try:
        return urllib.request.urlopen(url, timeout=1).status == 200
    except OSError:
        return False


class ChatClient:
    """A real Socket.IO client that records the chat messages it gets."""

    def __init__(self, socketio, user, url):
        self.user = user
        self.received = []
        self.reconnects = 0
        self.people = []
        self._lock = threading.Lock()
        self.sio = socketio.Client()
        self.sio.on('message', self._on_message)
        self.sio.on('presence', self._on_presence)
        self.sio.on('connect', self._on_connect)
        self.sio.connect(url, transports=['websocket'])
        self.server = self.sio.call('stats', timeout=5)['server']

    def _on_connect(self):
        with self._lock:
            self.reconnects += 1

    def _on_message(self, data, *_offset):
        with self._lock:
            self.received.append((data['user'], data['text']))

    def _on_presence(self, data, *_offset):
        self.people = data['people']

    def join(self, room):
        self.sio.call('join', {'room': room, 'user': self.user}, timeout=5)

    def say(self, text):
        self.sio.emit('say', {'text': text})

    def stats(self):
        return self.sio.call('stats', timeout=5)['stats']


def chat(clients, phase, count):
    sent = []
    for i in range(1, count + 1):
        for client in clients:
            text = f'{phase} #{i}'
            client.say(text)
            sent.append((client.user, text))
        time.sleep(0.02)
    return sent


def wait_all(clients, expected, timeout=30):
    def complete():
        return all(len(c.received) >= len(expected) for c in clients)
    try:
        wait_until(complete, timeout, 'timeout')
    except RuntimeError:
        pass  # the report says what is missing
    time.sleep(0.5)  # a duplicate would arrive now


def report(clients, expected, down_for, redis):
    print()
    print('=' * 70)
    what = 'killed with SIGKILL and restarted' if redis.restarts else \
        "unreachable (the servers' connections were cut)"
    print(f'Redis was {what}: away for {down_for:.1f} s')
    ok = True
    for client in clients:
        got = client.received
        in_order = all([m for m in got if m[0] == c.user] ==
                       [m for m in expected if m[0] == c.user]
                       for c in clients)
        duplicates = len(got) - len(set(got))
        missing = len(set(expected) - set(got))
        good = not missing and not duplicates and in_order
        ok = ok and good
        stats = client.stats()
        print(f'{client.user:>6} (on server {client.server}): '
              f'{len(set(got) & set(expected))}/{len(expected)} delivered, '
              f'{missing} missing, {duplicates} duplicates, '
              f'{"in order" if in_order else "OUT OF ORDER"}')
        print(f'        server {client.server} lost Redis: writer '
              f'{stats["writer_reconnects"]}x, reader '
              f'{stats["reader_reconnects"]}x, PUB/SUB '
              f'{stats["subscriber_reconnects"]}x; entries written '
              f'{stats["entries_written"]}, read {stats["entries_read"]}')
    print(f'in the lobby, cluster-wide: {", ".join(clients[0].people)}')
    print('RESULT:', 'every message delivered once, in order' if ok
          else 'MESSAGES LOST OR DUPLICATED')
    print('=' * 70)
    return ok


def keep_running(balancer, servers):
    print()
    print(f'The cluster is running: open {balancer}/ in a browser (through '
          f'the sticky balancer),')
    for name, url in servers.items():
        print(f'  or server {name} directly: {url}/')
    print('Ctrl-C stops everything.', flush=True)
    while True:
        time.sleep(3600)


if __name__ == '__main__':
    main()
