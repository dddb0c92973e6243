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
import logging
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional

import msgpack
import socketio

from . import codec
from .codec import BroadcastOptions, MessageType, Room
from .connection import RedisConnector
from .hooks import TWO_STEP_CONNECT
from .local import LocalSockets
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
        except Exception as exc:  # binascii.Error, or any msgpack error
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


class Recovery:
    """Connection state recovery for the sockets of one server: gives each
    socket a private ``pid``, stores the sessions of the dropped ones, and
    brings a returning client back as the socket it was.

    :param manager: the python-socketio manager that keeps the sockets.
    :param reader_of: the reader of the stream of a namespace.
    """

    def __init__(self, manager: Any, local: LocalSockets,
                 store: SessionStore,
                 reader_of: Callable[[str], StreamReader],
                 logger: logging.Logger) -> None:
        self._manager = manager
        self._local = local
        self._store = store
        self._reader_of = reader_of
        self._logger = logger
        self._pids: Dict[tuple, str] = {}
        self._restoring: Dict[tuple, Restored] = {}
        self._restored: Dict[tuple, Restored] = {}
        self._closing = False

    def is_recovered(self, sid: str, namespace: str) -> bool:
        return (namespace, sid) in self._restored

    def before_connect(self, eio_sid: str, namespace: str,
                       auth: Any) -> None:
        """A client asks to connect: if it brings a ``pid`` and an
        ``offset``, try to take its session back."""
        if not isinstance(auth, dict) or 'pid' not in auth or \
                'offset' not in auth:
            return
        reader = self._reader_of(namespace)
        restored = self._store.restore(
            namespace, auth['pid'], auth['offset'], reader.stream, reader,
            lambda session: self._local.hold(namespace, session.sid))
        if restored is not None:
            self._restoring[(eio_sid, namespace)] = restored

    def after_connect(self, eio_sid: str, namespace: str) -> None:
        """The server handled the CONNECT: drop a session it did not use
        (the namespace was refused)."""
        restored = self._restoring.pop((eio_sid, namespace), None)
        if restored is not None:
            self._local.release(namespace, restored.session.sid)

    def admit(self, eio_sid: str, namespace: str,
              allocate: Callable[[str, str], Optional[str]]
              ) -> Optional[str]:
        """The sid of a connecting client: its old one when its session was
        taken back, else a new one from ``allocate``, with a new pid."""
        restored = self._restoring.pop((eio_sid, namespace), None)
        if restored is not None:
            sid = self._reconnect(eio_sid, namespace, restored)
            if sid is not None:
                return sid
        sid = allocate(eio_sid, namespace)
        if sid is not None:
            self._pids[(namespace, sid)] = \
                self._manager.server.eio.generate_id()
        return sid

    def send_packet(self, send: Callable[[], None], eio_sid: str,
                    pkt: Any) -> None:
        """Add the ``pid`` to CONNECT answers; right after the answer to a
        recovered client, send what it missed, then what was held back."""
        if pkt.packet_type != socketio.packet.CONNECT or \
                not isinstance(pkt.data, dict) or 'sid' not in pkt.data:
            return send()
        key = (pkt.namespace or '/', pkt.data['sid'])
        if key in self._pids:
            pkt.data['pid'] = self._pids[key]
        send()
        restored = self._restored.get(key)
        if restored is not None and restored.missed is not None:
            namespace, sid = key
            with self._reader_of(namespace).lock:
                for packet in restored.missed + \
                        self._local.release(namespace, sid):
                    self._local.send(namespace, sid, packet)
            restored.missed = None

    def connection_lost(self, eio_sid: str) -> None:
        """A client's connection dropped: store the sessions of its sockets
        (in the background: the server is handling the disconnection)."""
        if self._closing:
            return  # save_all() stored them already
        manager = self._manager
        sessions = [self._session_of(namespace, sid)
                    for namespace in list(manager.rooms)
                    for sid in [manager.sid_from_eio_sid(eio_sid, namespace)]
                    if sid is not None]
        if any(sessions):
            manager.server.start_background_task(self._save, sessions)

    def save_all(self) -> None:
        """The server shuts down: store the session of every socket, so
        that its clients recover on another server."""
        self._closing = True
        manager = self._manager
        self._save([self._session_of(namespace, sid)
                    for namespace in list(manager.rooms)
                    for sid, _ in manager.get_participants(namespace, None)])

    def forget(self, namespace: str, sid: str) -> None:
        """A socket is gone for good."""
        self._pids.pop((namespace, sid), None)
        self._restored.pop((namespace, sid), None)
        self._local.release(namespace, sid)

    def _reconnect(self, eio_sid: str, namespace: str,
                   restored: Restored) -> Optional[str]:
        """Connect a client as the socket it was; ``None`` if that socket
        cannot be brought back here."""
        manager, session = self._manager, restored.session
        if manager.sid_from_eio_sid(eio_sid, namespace) is not None or \
                manager.eio_sid_from_sid(session.sid, namespace) is not None:
            self._local.release(namespace, session.sid)
            return None
        for room in [None, session.sid, *session.rooms]:
            manager.basic_enter_room(session.sid, namespace, room,
                                     eio_sid=eio_sid)
        if TWO_STEP_CONNECT:  # connect(sid) completes the connection
            manager.pending_connect.setdefault(namespace, []).append(
                session.sid)
        if session.data is not None:
            manager.server.save_session(session.sid, session.data,
                                        namespace=namespace)
        self._pids[(namespace, session.sid)] = session.pid
        self._restored[(namespace, session.sid)] = restored
        self._logger.info('recovered session of %s in %s: %d missed '
                          'packets', session.sid, namespace,
                          len(restored.missed))
        return session.sid

    def _session_of(self, namespace: str, sid: str) -> Optional[Session]:
        pid = self._pids.get((namespace, sid))
        if pid is None:
            return None
        rooms = self._manager.get_rooms(sid, namespace)
        return Session(sid, pid, [r for r in rooms if r is not None],
                       self._local.get_data(sid, namespace))

    def _save(self, sessions: List[Optional[Session]]) -> None:
        for session in sessions:
            if session is not None:
                self._store.save(session)
