"""Connection state recovery (Socket.IO 4.6+) on a python-socketio server,
and its stand-in when recovery is off.

When a client's connection drops without a clean disconnect, its session
(``sid``, private ``pid``, rooms and data) is stored in Redis in the Node
adapter's format. When the client comes back, on any server, with its
``pid`` and the ``offset`` (stream entry id) of the last packet it got, the
session is taken (once) and every broadcast it missed is sent to it, in
order, before anything newer. The protocol half (sessions, replay
selection, bookkeeping) is in :mod:`sio_redis_streams.core`; this module
ties it to the server's hooks.
"""
from __future__ import annotations

import logging
from typing import Any, Callable, List, Optional

import socketio

from ..core.recovery import RecoveryBook, Restored
from ..core.replay import Session, restore_request
from ..hooks import TWO_STEP_CONNECT
from .local import LocalSockets
from .reader import StreamReader
from .sessions import SessionStore

Allocate = Callable[[str, str], Optional[str]]


class NoRecovery:
    """Recovery off: sockets are new at every connection, and broadcasts
    reach this server's clients at once, not through the stream."""
    #: this server delivers its own broadcasts when it sends them
    delivers_own_broadcasts = True

    def admit(self, eio_sid: str, namespace: str,
              allocate: Allocate) -> Optional[str]:
        return allocate(eio_sid, namespace)

    def before_connect(self, eio_sid: str, namespace: str,
                       auth: Any) -> None:
        pass

    def after_connect(self, eio_sid: str, namespace: str) -> None:
        pass

    def send_packet(self, send: Callable[[], None], eio_sid: str,
                    pkt: Any) -> None:
        send()

    def connection_lost(self, eio_sid: str) -> None:
        pass

    def save_all(self, deadline: float) -> None:
        pass

    def forget(self, namespace: str, sid: str) -> None:
        pass

    def is_recovered(self, sid: str, namespace: str) -> bool:
        return False


class Recovery(NoRecovery):
    """Connection state recovery for the sockets of one server: gives each
    socket a private ``pid``, stores the sessions of the dropped ones, and
    brings a returning client back as the socket it was.

    :param manager: the python-socketio manager that keeps the sockets.
    :param reader_of: the reader of the stream of a namespace.
    """
    #: broadcasts reach this server's clients from the stream, so that each
    #: carries its offset
    delivers_own_broadcasts = False

    def __init__(self, manager: Any, local: LocalSockets,
                 store: SessionStore,
                 reader_of: Callable[[str], StreamReader],
                 logger: logging.Logger) -> None:
        self._manager = manager
        self._local = local
        self._store = store
        self._reader_of = reader_of
        self._logger = logger
        self._book = RecoveryBook()
        self._closing = False
        local.divert = self._book.divert

    def is_recovered(self, sid: str, namespace: str) -> bool:
        return self._book.is_recovered(namespace, sid)

    def before_connect(self, eio_sid: str, namespace: str,
                       auth: Any) -> None:
        """A client asks to connect: if it brings a ``pid`` and an
        ``offset``, try to take its session back."""
        request = restore_request(auth)
        if request is None:
            if isinstance(auth, dict) and ('pid' in auth or
                                           'offset' in auth):
                self._logger.info('not recovering a session: malformed pid '
                                  'or offset')
            return
        restored = self._store.restore(
            namespace, *request, self._reader_of(namespace),
            lambda session: self._book.hold(namespace, session),
            lambda session: self._book.release(namespace, session.sid))
        if restored is not None:
            self._book.restoring(eio_sid, namespace, restored)

    def after_connect(self, eio_sid: str, namespace: str) -> None:
        """The server handled the CONNECT: drop a session it did not use
        (the namespace was refused)."""
        restored = self._book.take_restoring(eio_sid, namespace)
        if restored is not None:
            self._book.release(namespace, restored.session.sid)

    def admit(self, eio_sid: str, namespace: str,
              allocate: Allocate) -> Optional[str]:
        """The sid of a connecting client: its old one when its session was
        taken back, else a new one from ``allocate``, with a new pid."""
        restored = self._book.take_restoring(eio_sid, namespace)
        if restored is not None:
            sid = self._reconnect(eio_sid, namespace, restored)
            if sid is not None:
                return sid
        sid = allocate(eio_sid, namespace)
        if sid is not None:
            self._book.set_pid(namespace, sid,
                               self._manager.server.eio.generate_id())
        return sid

    def send_packet(self, send: Callable[[], None], eio_sid: str,
                    pkt: Any) -> None:
        """Add the ``pid`` to CONNECT answers; right after the answer to a
        recovered client, send what it missed, then what was held back."""
        if pkt.packet_type != socketio.packet.CONNECT or \
                not isinstance(pkt.data, dict) or 'sid' not in pkt.data:
            return send()
        namespace, sid = pkt.namespace or '/', pkt.data['sid']
        pid = self._book.pid_of(namespace, sid)
        if pid is not None:
            pkt.data['pid'] = pid
        send()
        missed = self._book.take_replay(namespace, sid)
        if missed is not None:
            self._book.flush(namespace, sid,
                             lambda packet: self._local.send(namespace, sid,
                                                             packet),
                             first=missed)

    def connection_lost(self, eio_sid: str) -> None:
        """A client's connection dropped: store the sessions of its sockets
        (queued: the server is handling the disconnection)."""
        if self._closing:
            return  # save_all() stored them already
        manager = self._manager
        self._store.save(self._sessions(
            (namespace, manager.sid_from_eio_sid(eio_sid, namespace))
            for namespace in list(manager.rooms)))

    def save_all(self, deadline: float) -> None:
        """The server shuts down: store the session of every socket, so
        that its clients recover on another server, before ``deadline``
        (``time.monotonic()``)."""
        self._closing = True
        manager = self._manager
        self._store.save(self._sessions(
            (namespace, sid) for namespace in list(manager.rooms)
            for sid, _ in manager.get_participants(namespace, None)))
        self._store.store_queued(deadline)

    def forget(self, namespace: str, sid: str) -> None:
        """A socket is gone for good."""
        self._book.forget(namespace, sid)

    def _reconnect(self, eio_sid: str, namespace: str,
                   restored: Restored) -> Optional[str]:
        """Connect a client as the socket it was; ``None`` if that socket
        cannot be brought back here."""
        manager, session = self._manager, restored.session
        if manager.sid_from_eio_sid(eio_sid, namespace) is not None or \
                manager.eio_sid_from_sid(session.sid, namespace) is not None:
            self._book.release(namespace, session.sid)
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
        self._book.restored(namespace, session.sid, restored)
        self._logger.info('recovered session of %s in %s: %d missed '
                          'packets', session.sid, namespace,
                          len(restored.missed or []))
        return session.sid

    def _sessions(self, sockets: Any) -> List[Session]:
        sessions = []
        for namespace, sid in sockets:
            pid = None if sid is None else self._book.pid_of(namespace, sid)
            if pid is not None:
                sessions.append(Session(
                    sid, pid, self._local.rooms_of(sid, namespace),
                    self._local.get_data(sid, namespace)))
        return sessions
