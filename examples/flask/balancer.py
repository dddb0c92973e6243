"""A small load balancer with sticky sessions, for the example cluster.

Socket.IO's HTTP long-polling transport sends each client's requests as
separate HTTP requests, which must all reach the server that holds the
client's session: the balancer must be sticky. nginx's ``ip_hash`` (or
``hash $remote_addr``) is the usual answer, but on one machine every browser
and test client comes from 127.0.0.1 and would land on the same server. So
this balancer sticks by cookie: a new client is sent to the next server in
turn and told, in a ``sio_server`` cookie, which one it got; its following
requests carry the cookie and go there. A WebSocket, once upgraded, is one
TCP connection and stays where it was accepted.

    python balancer.py --port 8000 --backend A=127.0.0.1:5001 \\
        --backend B=127.0.0.1:5002
"""
import argparse
import asyncio
import itertools
import re
import sys

COOKIE = 'sio_server'
_COOKIE_RE = re.compile(rb'(?:^|;\s*)' + COOKIE.encode() + rb'=([\w.-]+)')
_MAX_HEAD = 64 * 1024


class Balancer:
    """Forwards each client connection to one backend, chosen by cookie or
    in turn.

    :param backends: ``{name: (host, port)}``.
    """

    def __init__(self, backends):
        self.backends = dict(backends)
        self._turn = itertools.cycle(self.backends)

    async def handle(self, client_reader, client_writer):
        try:
            head = await client_reader.readuntil(b'\r\n\r\n')
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                ConnectionError):
            client_writer.close()
            return
        name = self._chosen(head)
        sticky = name is not None
        if not sticky:
            name = next(self._turn)
        try:
            backend_reader, backend_writer = await asyncio.open_connection(
                *self.backends[name])
        except OSError:
            client_writer.write(b'HTTP/1.1 502 Bad Gateway\r\n'
                                b'Content-Length: 0\r\n\r\n')
            client_writer.close()
            return
        backend_writer.write(head)
        if not sticky:
            # tell the client where it landed, in the first response
            try:
                response = await backend_reader.readuntil(b'\r\n\r\n')
            except (asyncio.IncompleteReadError, ConnectionError):
                client_writer.close()
                backend_writer.close()
                return
            client_writer.write(response[:-2] + b'Set-Cookie: ' +
                                f'{COOKIE}={name}; Path=/; '
                                f'SameSite=Lax'.encode() + b'\r\n\r\n')
        await asyncio.gather(self._pipe(client_reader, backend_writer),
                             self._pipe(backend_reader, client_writer))

    def _chosen(self, head):
        for line in head.split(b'\r\n'):
            if line.lower().startswith(b'cookie:'):
                match = _COOKIE_RE.search(line[7:].strip())
                if match and match.group(1).decode() in self.backends:
                    return match.group(1).decode()
        return None

    @staticmethod
    async def _pipe(reader, writer):
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            try:
                writer.close()
            except (ConnectionError, OSError):  # pragma: no cover
                pass


def parse_backend(text):
    name, _, address = text.partition('=')
    host, _, port = address.rpartition(':')
    if not name or not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f'expected NAME=HOST:PORT, got '
                                         f'{text!r}')
    return name, (host, int(port))


async def serve(host, port, backends):
    balancer = Balancer(backends)
    server = await asyncio.start_server(balancer.handle, host, port,
                                        limit=_MAX_HEAD)
    print(f'READY {server.sockets[0].getsockname()[1]}', flush=True)
    async with server:
        await server.serve_forever()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--host', default='127.0.0.1')
    parser.add_argument('--port', type=int, default=8000)
    parser.add_argument('--backend', type=parse_backend, action='append',
                        required=True, help='NAME=HOST:PORT (repeat)')
    args = parser.parse_args()
    try:
        asyncio.run(serve(args.host, args.port, args.backend))
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == '__main__':
    main()
