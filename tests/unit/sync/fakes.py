"""In-memory stand-ins for what the sync driver talks to: a Redis client
that keeps streams in lists, and a manager attached to a python-socketio
server that never connects anywhere (nothing listens on port 1)."""
from __future__ import annotations

import itertools
import logging
import threading
from typing import Any, Dict, List, Optional, Tuple

import socketio

from sio_redis_streams import RedisStreamsManager
from sio_redis_streams.core.codec import entry_id_key
from sio_redis_streams.core.stats import Stats
from sio_redis_streams.options import Options
from sio_redis_streams.sync.connection import RedisConnector
from sio_redis_streams.sync.context import Context

NOWHERE = 'redis://127.0.0.1:1/0'


def context(url: str = NOWHERE, **options: Any) -> Context:
    """A driver context whose connector knows the client library's errors
    but is never asked to connect."""
    opts = Options(url=url, **options)
    return Context(opts, 'a' * 16, Stats(), logging.getLogger('test'),
                   RedisConnector(opts, 'test'), threading.Event())


def manager(**options: Any) -> RedisStreamsManager:
    """A manager attached to a threading server, not started."""
    mgr = RedisStreamsManager(NOWHERE, **options)
    socketio.Server(client_manager=mgr, async_mode='threading')
    return mgr


class FakeRedis:
    """A :class:`~sio_redis_streams.sync.direct.DirectConnection` to a
    Redis that keeps streams as lists of ``(id, fields)`` and knows the
    writer's commands (MULTI/XADD/EXEC, XRANGE); ``fail`` makes the next
    transactions raise it (``after_write``: once the entries are in, as a
    connection that breaks before the reply does)."""

    def __init__(self) -> None:
        self.streams: Dict[str, List[Tuple[bytes, Dict[bytes, bytes]]]] = {}
        self.fail: Optional[BaseException] = None
        self.after_write = False
        self.transactions = 0
        #: how many entries each transaction carried
        self.batch_sizes: List[int] = []
        #: when set, transactions wait for it
        self.gate: Optional[threading.Event] = None
        self._ids = itertools.count(1)
        #: how many replicas acknowledge each WAIT, one value per WAIT (the
        #: last one stays)
        self.replica_acks: List[Any] = [1]
        #: the keys the calls named
        self.keys: List[Optional[str]] = []

    def execute(self, *commands: Tuple[Any, ...],
                key: Optional[str] = None) -> List[Any]:
        self.keys.append(key)
        wait = [self._wait()] if commands[-1][0] == 'WAIT' else []
        if wait:
            commands = commands[:-1]
        if not commands:
            return wait
        if commands[0] == ('MULTI',):
            adds = [(c[1], dict(zip(c[6::2], c[7::2])))
                    for c in commands[1:-1]]
            return [b'OK'] + [b'QUEUED'] * len(adds) + \
                [self.commit(adds)] + wait
        return [self._info(command[2]) if command[0] == 'XINFO'
                else self._xrange(*command[1:]) for command in commands]

    def call(self, command: Tuple[Any, ...],
             key: Optional[str] = None) -> Any:
        reply, = self.execute(command, key=key)
        return reply

    def disconnect(self) -> None:
        pass

    def _info(self, stream: str) -> List[bytes]:
        entries = self.streams.get(stream)
        return [b'last-generated-id', entries[-1][0] if entries else b'0-0']

    def _wait(self) -> Any:
        if len(self.replica_acks) > 1:
            return self.replica_acks.pop(0)
        return self.replica_acks[0]

    def _xrange(self, stream: str, start: str, end: str, _: str,
                count: int) -> List[Any]:
        low = (0, 0) if start == '-' else entry_id_key(start)
        high = None if end == '+' else entry_id_key(end)
        found = [[i, [x for pair in f.items() for x in pair]]
                 for i, f in self.streams.get(stream, [])
                 if entry_id_key(i.decode()) >= low and
                 (high is None or entry_id_key(i.decode()) <= high)]
        return found[:count]

    def commit(self, commands: List[Tuple[str, Dict[str, str]]]) -> List[Any]:
        self.transactions += 1
        self.batch_sizes.append(len(commands))
        if self.gate is not None:
            self.gate.wait(10)
        if self.fail is not None and not self.after_write:
            raise self.fail
        ids = []
        for stream, fields in commands:
            entry_id = f'{next(self._ids)}-0'.encode()
            self.streams.setdefault(stream, []).append(
                (entry_id, {k.encode(): v.encode()
                            for k, v in fields.items()}))
            ids.append(entry_id)
        if self.fail is not None:
            raise self.fail
        return ids
