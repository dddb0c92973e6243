"""Requests sent to the other servers, and the bookkeeping of their answers.

A request lives until it is complete or its deadline passes, whichever comes
first; an answer to a request that already ended is dropped quietly. How many
servers should answer is known once the request is published: PUBLISH
returns how many subscribers got it, this server included when its own
subscription was already in place. Whether it was is not a guess: a server
that was counted also receives its own request back (its "echo"), and the
echo stands for that server's share of the answers.

Nothing here waits or does I/O: a driver waits with whatever its world has
(an event of a thread, a future of asyncio) through :meth:`Request.on_done`.
The short internal lock only keeps the counters right when answers and the
requester run on different threads.
"""
from __future__ import annotations

import secrets
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Set

from .messages import BroadcastAck, BroadcastClientCount, Message, Response


def new_request_id() -> str:
    """A random id in the format of the Node adapter (16 hex digits)."""
    return secrets.token_hex(8)


class Request:
    """One request; subclasses decide what an answer means and when the
    request is complete.

    :param timeout: seconds after which the request is forgotten.
    :param uid: the requesting server (its echo is recognised by it).
    """

    def __init__(self, timeout: float, uid: str = '',
                 now: Optional[float] = None) -> None:
        self.id = new_request_id()
        self.deadline = (time.monotonic() if now is None else now) + timeout
        self.uid = uid
        self._lock = threading.Lock()
        self._servers_expected: Optional[int] = None
        self._done = False
        self._callbacks: List[Callable[[], None]] = []

    @property
    def done(self) -> bool:
        """Whether every expected answer arrived."""
        return self._done

    def on_done(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` once the request is complete (now, if it
        already is)."""
        with self._lock:
            if not self._done:
                self._callbacks.append(callback)
                return
        callback()

    def expect_servers(self, count: int) -> bool:
        """Say how many subscribers PUBLISH reached (this server's own
        subscription included); ``True`` if the request is complete."""
        return self._update(lambda: setattr(self, '_servers_expected',
                                            count))

    def on_response(self, message: Message) -> bool:
        """Take an answer, or this server's own echo of the request; return
        ``True`` once the request is complete."""
        if message.uid == self.uid:
            return self._update(self._take_echo)
        return self._update(lambda: self._take(message))

    def _update(self, change: Callable[[], None]) -> bool:
        with self._lock:
            change()
            if self._done or self._servers_expected is None or \
                    not self._complete():
                return self._done
            self._done = True
            callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            callback()
        return True

    def _take(self, message: Message) -> None:
        raise NotImplementedError

    def _take_echo(self) -> None:
        raise NotImplementedError

    def _complete(self) -> bool:
        raise NotImplementedError


class CollectRequest(Request):
    """A request each other server answers once (FETCH_SOCKETS,
    SERVER_SIDE_EMIT with an acknowledgement).

    :param collect: turns one answer into the items it contributes.
    """

    def __init__(self, timeout: float,
                 collect: Callable[[Any], List[Any]], uid: str = '',
                 now: Optional[float] = None) -> None:
        super().__init__(timeout, uid, now)
        self._collect = collect
        self._answered: Set[str] = set()
        self.responses: List[Any] = []

    @property
    def expected(self) -> int:
        """How many other servers were expected to answer."""
        expected = self._servers_expected or 0
        return expected - 1 if self.uid in self._answered else expected

    @property
    def received(self) -> int:
        """How many other servers answered."""
        return len(self._answered - {self.uid})

    def _take(self, message: Message) -> None:
        if message.uid in self._answered or (
                self._servers_expected is not None and
                len(self._answered) >= self._servers_expected):
            return  # one answer a server, and no more servers than asked
        self._answered.add(message.uid)
        self.responses.extend(self._collect(message))

    def _take_echo(self) -> None:
        self._answered.add(self.uid)

    def _complete(self) -> bool:
        return len(self._answered) >= self._servers_expected


class AckRequest(Request):
    """A broadcast with acknowledgements: ``callback`` is called with the
    arguments of every client's answer (from whichever task delivers the
    answer: the driver keeps that off its subscriber).

    Each server that got the request says how many of its clients it asked
    (BROADCAST_CLIENT_COUNT); once every server has said so and every
    client has answered, the request is complete.
    """

    def __init__(self, callback: Callable[..., Any], timeout: float,
                 uid: str = '', now: Optional[float] = None) -> None:
        super().__init__(timeout, uid, now)
        self._callback = callback
        self._servers_counted = 0
        self.clients_expected = 0
        self.acks = 0

    def expect_local_clients(self, count: int) -> None:
        """Count the clients of this server that were asked too."""
        with self._lock:
            self.clients_expected += count

    def local_ack(self, *args: Any) -> None:
        """The answer of a client of this server."""
        self._callback(*args)
        self._update(self._count_ack)

    def on_response(self, message: Message) -> bool:
        if isinstance(message, BroadcastAck) and message.uid != self.uid:
            self._callback(*message.args)
        return super().on_response(message)

    def _count_ack(self) -> None:
        self.acks += 1

    def _take(self, message: Message) -> None:
        if isinstance(message, BroadcastClientCount):
            self._servers_counted += 1
            self.clients_expected += message.client_count
        elif isinstance(message, BroadcastAck):
            self.acks += 1

    def _take_echo(self) -> None:
        self._servers_counted += 1  # its clients were counted locally

    def _complete(self) -> bool:
        return self._servers_counted >= self._servers_expected and \
            self.acks >= self.clients_expected


class PendingRequests:
    """The requests of one server that still wait for answers."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: Dict[str, Request] = {}

    def __len__(self) -> int:
        return len(self._requests)

    def add(self, request: Request) -> None:
        """Start waiting for answers to ``request``."""
        with self._lock:
            self._requests[request.id] = request

    def discard(self, request: Request) -> None:
        """Stop waiting for answers to ``request``."""
        with self._lock:
            self._requests.pop(request.id, None)

    def get(self, request_id: Optional[str]) -> Optional[Request]:
        """The request ``request_id``, if it still waits."""
        with self._lock:
            return self._requests.get(request_id)  # type: ignore[arg-type]

    def on_response(self, message: Response) -> None:
        """Route an answer to its request, if that is still waiting."""
        request = self.get(message.request_id)
        if request is not None and request.on_response(message):
            self.discard(request)

    def on_echo(self, message: Message, request_id: str) -> None:
        """This server heard its own request ``request_id``."""
        request = self.get(request_id)
        if request is not None and request.on_response(message):
            self.discard(request)

    def expire(self, now: Optional[float] = None) -> int:
        """Forget the requests whose deadline passed; how many there were."""
        now = time.monotonic() if now is None else now
        with self._lock:
            expired = [r for r in self._requests.values()
                       if r.deadline <= now]
            for request in expired:
                del self._requests[request.id]
        return len(expired)
