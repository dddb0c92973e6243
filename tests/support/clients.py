"""A real python-socketio client that records what it receives."""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from typing import Any, Callable, Sequence, Union

import socketio

Args = tuple[Any, ...]
Predicate = Callable[['RecordingClient'], Any]


class RecordingClient:
    """Wraps ``socketio.Client``: connects to several namespaces, records every
    received event per ``(namespace, event)`` as argument tuples (including
    ``connect`` and ``disconnect``, which is how reconnections can be awaited),
    and answers the server's ``ack_me`` with ``("ack", name, *args)`` and
    ``whoami`` with its name (one argument).
    """

    def __init__(
        self,
        name: str,
        *,
        transports: Sequence[str] = ('websocket',),
        reconnection_delay: float = 0.5,
        reconnection_delay_max: float = 2.0,
        auth: Any = None,
    ) -> None:
        self.name = name
        self.auth = auth
        self.transports = list(transports)
        self.client = socketio.Client(
            reconnection=True,
            reconnection_delay=reconnection_delay,
            reconnection_delay_max=reconnection_delay_max,
            # The test process keeps SIGINT for pytest.
            handle_sigint=False,
        )
        self._handle_in_arrival_order()
        self._received: dict[tuple[str, str], list[Args]] = defaultdict(list)
        self._arrivals: dict[tuple[str, str], list[float]] = \
            defaultdict(list)
        self._condition = threading.Condition()
        self.namespaces: list[str] = []

    def connect(
        self,
        url: str,
        namespaces: Sequence[str] = ('/',),
        timeout: float = 10.0,
    ) -> None:
        """Connect to ``url`` and wait until every namespace is connected."""
        self.namespaces = list(namespaces)
        for namespace in self.namespaces:
            self._install_handlers(namespace)
        self.client.connect(
            url,
            namespaces=self.namespaces,
            transports=self.transports,
            wait_timeout=timeout,
            auth=self.auth,
        )

    def close(self) -> None:
        """Disconnect, also stopping a reconnection loop in progress."""
        if hasattr(self.client, 'shutdown'):
            self.client.shutdown()
            return
        # python-socketio < 5.12 has no shutdown(): abort the reconnection
        # loop by hand, then disconnect
        abort = getattr(self.client, '_reconnect_abort', None)
        if abort is not None:
            abort.set()
        self.client.disconnect()

    @property
    def connected(self) -> bool:
        """Whether the Socket.IO connection is up."""
        return self.client.connected

    def sid(self, namespace: str = '/') -> str | None:
        """This client's sid in ``namespace``."""
        return self.client.get_sid(namespace)

    def cmd(self, op: str, *, wait: float = 10.0, **arguments: Any) -> Any:
        """Ask the server to perform ``op`` (see tests/apps/commands.py) with
        ``arguments`` (a ``timeout`` among them is the operation's); return
        its acknowledgement, waiting for it up to ``wait`` seconds."""
        return self.client.call(
            'cmd', {'op': op, **arguments}, namespace='/', timeout=wait
        )

    def events(self, event: str, namespace: str = '/') -> list[Args]:
        """Arguments of each ``event`` received on ``namespace`` so far."""
        with self._condition:
            return list(self._received[(namespace, event)])

    def times(self, event: str, namespace: str = '/') -> list[float]:
        """When each ``event`` arrived (``time.time()``), in order."""
        with self._condition:
            return list(self._arrivals[(namespace, event)])

    def clear(self) -> None:
        """Forget everything recorded so far."""
        with self._condition:
            self._received.clear()
            self._arrivals.clear()

    def wait_for(
        self,
        predicate_or_count: Union[Predicate, int],
        timeout: float = 10.0,
        *,
        event: str | None = None,
        namespace: str = '/',
    ) -> Any:
        """Wait until ``predicate(self)`` is truthy, or until ``event`` has
        been received ``count`` times on ``namespace``; return the predicate's
        value (or the recorded arguments). Raise ``TimeoutError`` otherwise.
        """
        if callable(predicate_or_count):
            predicate = predicate_or_count
            description = getattr(predicate, '__name__', 'predicate')
        else:
            if event is None:
                raise ValueError('a count needs an event name')
            count = predicate_or_count

            def predicate(client: RecordingClient) -> list[Args] | None:
                received = client._received[(namespace, event)]
                return list(received) if len(received) >= count else None

            description = f'{count} x {event!r} on {namespace}'
        deadline = time.monotonic() + timeout
        with self._condition:
            while True:
                result = predicate(self)
                if result:
                    return result
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(
                        f'{self.name}: no {description} within {timeout}s;'
                        f' got {self._summary()}'
                    )
                self._condition.wait(remaining)

    def _handle_in_arrival_order(self) -> None:
        """python-engineio's client hands each received message to a new
        thread, so under load two events that arrived in order could be
        recorded the other way round; the tests check orders, so messages
        are handled in the read loop as they arrive (the handlers here only
        record or answer: they never block it)."""
        eio = self.client.eio
        trigger = eio._trigger_event

        def in_order(event: str, *args: Any, **kwargs: Any) -> Any:
            # events and acks (packet types 2, 3, 5, 6, and binary
            # attachments) only; a DISCONNECT may end the read loop, which
            # cannot be joined from itself
            if event == 'message' and (isinstance(args[0], bytes) or
                                       args[0][:1] in '2356'):
                kwargs['run_async'] = False
            return trigger(event, *args, **kwargs)

        eio._trigger_event = in_order

    def _record(self, namespace: str, event: str, args: Args) -> None:
        with self._condition:
            self._received[(namespace, event)].append(args)
            self._arrivals[(namespace, event)].append(time.time())
            self._condition.notify_all()

    def _summary(self) -> dict[str, int]:
        return {
            f'{namespace} {event}': len(items)
            for (namespace, event), items in self._received.items()
        }

    def _install_handlers(self, namespace: str) -> None:
        def on_any(event: str, *args: Any) -> None:
            self._record(namespace, event, args)

        def on_ack_me(*args: Any) -> Args:
            self._record(namespace, 'ack_me', args)
            return ('ack', self.name, *args)

        def on_connect() -> None:
            self._record(namespace, 'connect', ())

        def on_disconnect(*reason: Any) -> None:
            self._record(namespace, 'disconnect', reason)

        def on_whoami(*args: Any) -> str:
            self._record(namespace, 'whoami', args)
            return self.name

        self.client.on('*', on_any, namespace=namespace)
        self.client.on('ack_me', on_ack_me, namespace=namespace)
        self.client.on('whoami', on_whoami, namespace=namespace)
        self.client.on('connect', on_connect, namespace=namespace)
        self.client.on('disconnect', on_disconnect, namespace=namespace)
