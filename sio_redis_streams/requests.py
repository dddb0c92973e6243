"""Requests sent to the other servers, waiting for their answers.

A request lives until it is complete or its deadline passes, whichever
comes first; an answer to a request that already ended is dropped quietly.
How many servers should answer is known once the request is published:
PUBLISH returns how many subscribers got it.
"""
from __future__ import annotations

import secrets
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Set

from .codec import ClusterMessage, MessageType


def new_request_id() -> str:
    """A random id in the format of the Node adapter (16 hex digits)."""
    return secrets.token_hex(8)


class Request:
    """One request; subclasses decide what an answer means and when the
    request is complete.

    :param timeout: seconds after which the request is forgotten.
    """

    def __init__(self, timeout: float) -> None:
        self.id = new_request_id()
        self.deadline = time.monotonic() + timeout
        self.done = threading.Event()
        self._lock = threading.Lock()
        self._servers_expected: Optional[int] = None

    def expect_servers(self, count: int) -> bool:
        """Say how many servers got the request; ``True`` if it is already
        complete."""
        with self._lock:
            self._servers_expected = count
            return self._check()

    def on_response(self, message: ClusterMessage) -> bool:
        """Take an answer; return ``True`` once the request is complete."""
        with self._lock:
            self._take(message)
            return self._check()

    def wait(self, timeout: float) -> bool:
        """Wait for completion; ``False`` on timeout."""
        return self.done.wait(timeout)

    def _check(self) -> bool:
        if self._servers_expected is not None and self._complete():
            self.done.set()
        return self.done.is_set()

    def _take(self, message: ClusterMessage) -> None:
        raise NotImplementedError

    def _complete(self) -> bool:
        raise NotImplementedError


class CollectRequest(Request):
    """A request each other server answers once (FETCH_SOCKETS,
    SERVER_SIDE_EMIT with an acknowledgement).

    :param collect: turns one answer into the items it contributes.
    """

    def __init__(self, timeout: float,
                 collect: Callable[[ClusterMessage], List[Any]]) -> None:
        super().__init__(timeout)
        self._collect = collect
        self._answered: Set[str] = set()
        self.responses: List[Any] = []

    @property
    def expected(self) -> int:
        return self._servers_expected or 0

    @property
    def received(self) -> int:
        return len(self._answered)

    def _take(self, message: ClusterMessage) -> None:
        if message.uid not in self._answered:
            self._answered.add(message.uid)
            self.responses.extend(self._collect(message))

    def _complete(self) -> bool:
        return len(self._answered) >= self._servers_expected


class AckRequest(Request):
    """A broadcast with acknowledgements: ``callback`` is called with the
    arguments of every client's answer.

    Each server that got the request says how many of its clients it asked
    (BROADCAST_CLIENT_COUNT); once every server has said so and every
    client has answered, the request is complete.
    """

    def __init__(self, callback: Callable[..., Any], timeout: float) -> None:
        super().__init__(timeout)
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
        with self._lock:
            self.acks += 1
            self._check()

    def on_response(self, message: ClusterMessage) -> bool:
        if message.type == MessageType.BROADCAST_ACK:
            self._callback(*ack_arguments(message.data))
        return super().on_response(message)

    def _take(self, message: ClusterMessage) -> None:
        if message.type == MessageType.BROADCAST_CLIENT_COUNT:
            self._servers_counted += 1
            self.clients_expected += message.data['clientCount']
        elif message.type == MessageType.BROADCAST_ACK:
            self.acks += 1

    def _complete(self) -> bool:
        return self._servers_counted >= self._servers_expected and \
            self.acks >= self.clients_expected


def ack_arguments(data: Dict[str, Any]) -> List[Any]:
    """The arguments of a client's acknowledgement, from a BROADCAST_ACK or
    SERVER_SIDE_EMIT_RESPONSE.

    The Node protocol carries one argument (``packet``). Python servers add
    ``args`` when a client answered with another number of arguments, so
    that a python-socketio callback gets exactly what the client sent.
    """
    args = data.get('args')
    if isinstance(args, list):
        return args
    return [data.get('packet')]


def ack_data(request_id: str, args: List[Any]) -> Dict[str, Any]:
    """The data of a BROADCAST_ACK for a client's answer ``args``."""
    data: Dict[str, Any] = {'requestId': request_id,
                            'packet': args[0] if args else None}
    if len(args) != 1:
        data['args'] = list(args)
    return data


class PendingRequests:
    """The requests of one manager that still wait for answers."""

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

    def on_response(self, message: ClusterMessage) -> None:
        """Route an answer to its request, if that is still waiting."""
        with self._lock:
            request = self._requests.get(message.data['requestId'])
        if request is not None and request.on_response(message):
            self.discard(request)

    def expire(self, now: Optional[float] = None) -> None:
        """Forget the requests whose deadline passed."""
        now = time.monotonic() if now is None else now
        with self._lock:
            for request in [r for r in self._requests.values()
                            if r.deadline <= now]:
                del self._requests[request.id]
