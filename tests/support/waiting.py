"""Waiting for a cluster to get somewhere, without fixed sleeps."""
from __future__ import annotations

import time
from typing import Any, Callable

from tests.support.clients import RecordingClient


def eventually(condition: Callable[[], Any], timeout: float = 15.0,
               what: str = 'condition') -> Any:
    """Poll ``condition`` until it is truthy; return its value."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, \
            f'{what}: never held within {timeout} s (last value {value!r})'
        time.sleep(0.05)


def settle(*clients: RecordingClient, namespace: str = '/',
           timeout: float = 20.0) -> None:
    """Wait until every earlier message of ``namespace`` has arrived.

    The stream keeps the order of the messages of one server in a
    namespace, so once a marker emitted to all through the server of each
    client has reached every client, so has everything sent before.
    """
    markers = []
    for client in clients:
        marker = f'settle-{client.name}-{time.monotonic_ns()}'
        assert client.cmd('emit', event='settled', args=[marker],
                          namespace=namespace) == {'ok': True}
        markers.append((marker,))
    for client in clients:
        client.wait_for(
            lambda c: all(m in c.events('settled', namespace)
                          for m in markers), timeout=timeout)
