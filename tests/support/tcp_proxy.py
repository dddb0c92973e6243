"""A threaded loopback TCP proxy that can cut or black-hole its traffic."""

from __future__ import annotations

import enum
import socket
import struct
import threading
from typing import Callable

from tests.support.ports import LOOPBACK

_CHUNK = 65536
_ACCEPT_POLL_SECONDS = 0.2


class _Mode(enum.Enum):
    FORWARD = 'forward'
    CUT = 'cut'
    BLACKHOLE = 'blackhole'


def _abort(sock: socket.socket) -> None:
    """Close with a TCP reset so the peer gets an error at once; wake any
    reader."""
    try:
        sock.setsockopt(
            socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0)
        )
        # shutdown(), unlike close(), wakes a thread blocked in recv().
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()


class _Link:
    """One accepted client connection and, unless black-holed from birth,
    its upstream connection."""

    def __init__(
        self,
        downstream: socket.socket,
        upstream: socket.socket | None,
        on_closed: Callable[[_Link], None],
    ) -> None:
        self.downstream = downstream
        self.upstream = upstream
        self.blackholed = False
        self._on_closed = on_closed
        self._closed = False
        self._lock = threading.Lock()

    def start(self) -> None:
        """Start one pump thread per direction."""
        self._spawn(self.downstream, self.upstream)
        if self.upstream is not None:
            self._spawn(self.upstream, self.downstream)

    def close(self) -> None:
        """Reset both sockets (idempotent)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        for sock in (self.downstream, self.upstream):
            if sock is not None:
                _abort(sock)
        self._on_closed(self)

    def _spawn(
        self, source: socket.socket, sink: socket.socket | None
    ) -> None:
        threading.Thread(
            target=self._pump, args=(source, sink), daemon=True
        ).start()

    def _pump(self, source: socket.socket, sink: socket.socket | None) -> None:
        try:
            while True:
                data = source.recv(_CHUNK)
                if not data:
                    if self.blackholed:
                        # In a partition the other side must not learn
                        # about this close; restore() tears the link down.
                        return
                    break
                if self.blackholed or sink is None:
                    continue
                sink.sendall(data)
        except OSError:
            pass
        self.close()


class TcpProxy:
    """Forwards TCP connections from a free loopback port to
    ``target_host:target_port``.

    ``cut()`` resets every connection and keeps resetting new ones,
    ``blackhole()`` keeps connections open but silently drops every byte in
    both directions (a network partition), and ``restore()`` goes back to
    forwarding; connections that were black-holed are reset at that moment so
    their clients notice and reconnect.
    """

    def __init__(
        self,
        target_host: str,
        target_port: int,
        *,
        connect_timeout: float = 5.0,
    ) -> None:
        self.target_host = target_host
        self.target_port = target_port
        self.connect_timeout = connect_timeout
        self._mode = _Mode.FORWARD
        self._links: set[_Link] = set()
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self._accept_thread: threading.Thread | None = None
        self._stopping = threading.Event()

    def __enter__(self) -> TcpProxy:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The loopback port clients connect to."""
        if self._listener is None:
            raise RuntimeError('proxy has not been started')
        return self._listener.getsockname()[1]

    @property
    def host(self) -> str:
        """Always the loopback address."""
        return LOOPBACK

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:<proxy port>/0``."""
        return f'redis://{LOOPBACK}:{self.port}/0'

    @property
    def connection_count(self) -> int:
        """Number of client connections currently open through the proxy."""
        with self._lock:
            return len(self._links)

    def start(self) -> None:
        """Bind the listening socket and start accepting."""
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((LOOPBACK, 0))
        listener.listen(128)
        # Polling accept() lets stop() end the loop without relying on
        # close() to wake it.
        listener.settimeout(_ACCEPT_POLL_SECONDS)
        self._listener = listener
        self._stopping.clear()
        self._accept_thread = threading.Thread(
            target=self._accept_loop, daemon=True
        )
        self._accept_thread.start()

    def stop(self) -> None:
        """Stop accepting and reset every open connection."""
        self._stopping.set()
        if self._accept_thread is not None:
            self._accept_thread.join()
            self._accept_thread = None
        if self._listener is not None:
            self._listener.close()
        self._close_links(lambda link: True)

    @property
    def http_url(self) -> str:
        """``http://127.0.0.1:<proxy port>``, for a proxied web server."""
        return f'http://{LOOPBACK}:{self.port}'

    def retarget(self, target_port: int,
                 target_host: str = LOOPBACK) -> None:
        """Send new connections to another server (as a load balancer
        would); open ones stay where they are."""
        with self._lock:
            self.target_host = target_host
            self.target_port = target_port

    def cut(self) -> None:
        """Reset all connections now and every new one until ``restore()``."""
        with self._lock:
            self._mode = _Mode.CUT
        self._close_links(lambda link: True)

    def blackhole(self) -> None:
        """Silently drop all traffic; keep connections (old and new) open."""
        with self._lock:
            self._mode = _Mode.BLACKHOLE
            for link in self._links:
                link.blackholed = True

    def restore(self) -> None:
        """Forward again; reset the connections that were black-holed."""
        with self._lock:
            self._mode = _Mode.FORWARD
        self._close_links(lambda link: link.blackholed)

    def _close_links(self, predicate: Callable[[_Link], bool]) -> None:
        with self._lock:
            doomed = [link for link in self._links if predicate(link)]
        for link in doomed:
            link.close()

    def _forget(self, link: _Link) -> None:
        with self._lock:
            self._links.discard(link)

    def _accept_loop(self) -> None:
        assert self._listener is not None
        while not self._stopping.is_set():
            try:
                downstream, _ = self._listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            downstream.setblocking(True)
            self._handle(downstream)

    def _handle(self, downstream: socket.socket) -> None:
        with self._lock:
            mode = self._mode
        if mode is _Mode.CUT:
            _abort(downstream)
            return
        upstream = None
        if mode is _Mode.FORWARD:
            with self._lock:
                target = (self.target_host, self.target_port)
            try:
                upstream = socket.create_connection(
                    target,
                    timeout=self.connect_timeout,
                )
            except OSError:
                _abort(downstream)
                return
            upstream.settimeout(None)
        link = _Link(downstream, upstream, self._forget)
        with self._lock:
            # The mode may have changed while connecting upstream: a link born
            # black-holed has no upstream, so it cannot serve a restored proxy.
            keep = self._mode is _Mode.BLACKHOLE or (
                self._mode is _Mode.FORWARD and upstream is not None
            )
            if keep:
                link.blackholed = self._mode is _Mode.BLACKHOLE
                self._links.add(link)
        if not keep:
            link.close()
            return
        link.start()
