"""Connection state recovery (Socket.IO 4.6+), for the whole cluster.

When a client's connection drops without a clean disconnect, its session
(``sid``, private ``pid``, rooms and data) is stored in Redis in the Node
adapter's format. When the client comes back, on any server, with its
``pid`` and the ``offset`` (stream entry id) of the last packet it got, the
session is taken (once) and every broadcast it missed is found in the
stream and sent to it, in order, before anything newer.

The replay is complete or does not happen: it reads the stream up to the
reader's position without any fixed limit on the number of reads, and when
more packets were missed than ``recovery_max_packets``, or the offset was
trimmed away, the client gets a fresh session instead of a partial one.
"""
from __future__ import annotations

import base64
import binascii
import logging
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional

import msgpack

from . import codec
from .codec import BroadcastOptions, MessageType, Room
from .connection import RedisConnector
from .options import Options
from .stream import StreamReader

#: A private session id as the Node server and this package make them.
PID_RE = re.compile(r'^[A-Za-z0-9_-]{1,64}$')

#: How many entries one XRANGE of a replay reads.
_REPLAY_PAGE = 1000


@dataclass
class Session:
    """What is kept of a socket while its client is away."""
    sid: str
    pid: str
    rooms: List[Room]
    data: Any = None

    def to_wire(self) -> str:
        """The stored value: base64 of msgpack, as the Node adapter."""
        packed = msgpack.packb({'sid': self.sid, 'pid': self.pid,
                                'rooms': list(self.rooms),
                                'data': self.data}, use_bin_type=True)
        return base64.b64encode(packed).decode('ascii')

    @classmethod
    def from_wire(cls, raw: bytes) -> 'Session':
        try:
            value = msgpack.unpackb(base64.b64decode(raw, validate=True),
                                    raw=False)
        except (binascii.Error, ValueError, Exception) as exc:
            raise codec.MalformedMessage(f'session is not base64 msgpack: '
                                         f'{exc}') from None
        if not isinstance(value, dict) or \
                not isinstance(value.get('sid'), str) or \
                not isinstance(value.get('pid'), str) or \
                not isinstance(value.get('rooms'), list):
            raise codec.MalformedMessage('session lacks sid, pid or rooms')
        return cls(value['sid'], value['pid'], value['rooms'],
                   value.get('data'))


@dataclass
class Restored:
    """A session taken back, with the packets its client missed (each
    ``[event, *args, offset]``; ``None`` once they were sent)."""
    session: Session
    missed: Optional[List[List[Any]]] = field(default_factory=list)


def receives(rooms: List[Room], opts: BroadcastOptions) -> bool:
    """Whether a socket in ``rooms`` is addressed by ``opts``."""
    joined = set(rooms)
    if opts.rooms and joined.isdisjoint(opts.rooms):
        return False
    return joined.isdisjoint(opts.except_rooms)


class SessionStore:
    """Stores the sessions of dropped sockets, and restores them.

    :param commands: the client used for the GET/SET/XRANGE commands.
    """

    def __init__(self, connector: RedisConnector, commands: Any,
                 options: Options, json_module: Any,
                 logger: logging.Logger) -> None:
        self._connector = connector
        self._commands = commands
        self._options = options
        self._json = json_module
        self._logger = logger

    def save(self, session: Session) -> None:
        """Keep ``session`` for ``max_disconnection_duration``."""
        try:
            self._commands.set(
                self._key(session.pid), session.to_wire(),
                px=int(self._options.max_disconnection_duration * 1000))
        except (self._connector.error, TypeError, ValueError) as exc:
            self._logger.warning('cannot store the session of %s, it will '
                                 'not be recovered: %s', session.sid, exc)

    def restore(self, namespace: str, pid: Any, offset: Any,
                stream: str, reader: StreamReader,
                hold: Callable[[Session], None]) -> Optional[Restored]:
        """Take the session ``pid`` and find what its client missed since
        ``offset``; ``None`` if it cannot be recovered (then the client
        gets a new session).

        ``hold(session)`` is called while the reader is held, at the point
        where the replay ends: from then on, packets for that socket must be
        held back until the replay has been sent.
        """
        if not isinstance(pid, str) or not PID_RE.match(pid) or \
                not isinstance(offset, str) or \
                not codec.ENTRY_ID_RE.match(offset):
            self._logger.info('not recovering a session: malformed pid or '
                              'offset')
            return None
        try:
            session = self._take(pid)
            if session is None:
                return None
            if not self._commands.xrange(stream, offset, offset, count=1):
                self._logger.info('not recovering session %s: offset %s is '
                                  'no longer in stream %s', pid, offset,
                                  stream)
                return None
            with reader.lock:
                end = reader.last_id or self._tail(stream)
                missed = self._missed(namespace, stream, offset, end,
                                      session.rooms)
                if missed is None:
                    return None
                hold(session)
            return Restored(session, missed)
        except self._connector.error as exc:
            self._logger.warning('cannot recover session %s: %s', pid, exc)
            return None

    def _take(self, pid: str) -> Optional[Session]:
        """GET and DEL at once: a session can be recovered only once."""
        pipe = self._commands.pipeline(transaction=True)
        pipe.get(self._key(pid))
        pipe.delete(self._key(pid))
        raw, _ = pipe.execute()
        if raw is None:
            self._logger.info('no session %s (expired, already recovered, '
                              'or never stored)', pid)
            return None
        try:
            session = Session.from_wire(raw)
        except codec.MalformedMessage as exc:
            self._logger.warning('skipping malformed session %s: %s', pid,
                                 exc)
            return None
        return session if session.pid == pid else None

    def _missed(self, namespace: str, stream: str, offset: str, end: str,
                rooms: List[Room]) -> Optional[List[List[Any]]]:
        if codec.entry_id_key(end) <= codec.entry_id_key(offset):
            return []
        missed: List[List[Any]] = []
        start = codec.next_entry_id(offset)
        while True:
            page = self._commands.xrange(stream, start, end,
                                         count=_REPLAY_PAGE)
            for raw_id, fields in page:
                packet = self._packet_for(namespace, fields, rooms)
                if packet is not None:
                    missed.append([*packet, raw_id.decode()])
            if len(missed) > self._options.recovery_max_packets:
                self._logger.info(
                    'not recovering a session: it missed more than '
                    'recovery_max_packets=%d packets',
                    self._options.recovery_max_packets)
                return None
            if len(page) < _REPLAY_PAGE:
                return missed
            start = codec.next_entry_id(page[-1][0].decode())

    def _packet_for(self, namespace: str, fields: Dict[bytes, bytes],
                    rooms: List[Room]) -> Optional[List[Any]]:
        if fields.get(b'nsp') != namespace.encode() or \
                fields.get(b'type') != b'%d' % MessageType.BROADCAST:
            return None
        try:
            message = codec.decode_entry(fields, self._json,
                                         self._options.max_message_size)
        except codec.MalformedMessage:
            return None  # the readers log it when they meet it
        opts = codec.options_of(message)
        if 'requestId' in message.data or opts.flags.get('volatile') or \
                not receives(rooms, opts):
            return None
        return list(message.data['packet']['data'])

    def _tail(self, stream: str) -> str:
        last = self._commands.xrevrange(stream, '+', '-', count=1)
        return last[0][0].decode() if last else '0-0'

    def _key(self, pid: str) -> str:
        return self._options.session_key_prefix + pid
