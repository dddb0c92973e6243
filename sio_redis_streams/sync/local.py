"""The sockets of this server, seen the way cluster messages address them:
``opts`` select sockets by rooms, and operations apply to the selection.

Everything here acts on python-socketio's own bookkeeping (the rooms of
``socketio.Manager`` and the server's sessions), so a socket is the same
whether the app or the cluster touches it.
"""
from __future__ import annotations

import logging
import time
from typing import Any, Callable, Dict, Iterable, List, Optional, Set
from urllib.parse import parse_qsl

import msgpack
from socketio.manager import Manager

from ..core.arguments import emit_data
from ..core.addressing import BroadcastOptions, Room

#: Sets aside the packets for sockets being recovered: called with
#: ``(namespace, opts, packet)``, returns the sids it kept the packet for.
Divert = Callable[[str, BroadcastOptions, List[Any]], Set[str]]


def reaches(manager: Manager, namespace: str, room: Any) -> bool:
    """Whether an emit to ``room`` (one name, ``None`` for every socket, or
    a list, as python-socketio reads them) has a recipient on this server.
    python-socketio encodes a packet before it looks for recipients, and in
    a cluster an emit often has none on a given server."""
    rooms = manager.rooms.get(namespace)
    if not rooms:
        return False
    if hasattr(room, '__len__') and not isinstance(room, str):
        return any(rooms.get(name) for name in room)
    return bool(rooms.get(room))


def _divert_nothing(namespace: str, opts: BroadcastOptions,
                    packet: List[Any]) -> Set[str]:
    return set()


class LocalSockets:
    """Selects and acts on the sockets connected to this server.

    :param manager: the python-socketio manager that keeps the rooms (the
                    methods of ``socketio.Manager`` are called on it, so
                    that no cluster message is sent from here).
    """

    def __init__(self, manager: Manager, logger: logging.Logger) -> None:
        self._manager = manager
        self._logger = logger
        self._handshakes: Dict[tuple, Dict[str, Any]] = {}
        #: connection state recovery replaces it, to hold packets back
        self.divert: Divert = _divert_nothing

    @property
    def server(self) -> Any:
        return self._manager.server

    def sids_in(self, namespace: str, rooms: Iterable[Optional[Room]]
                ) -> Set[str]:
        """The sockets in any of ``rooms`` (``None``: every socket)."""
        sids: Set[str] = set()
        for room in rooms:
            sids.update(sid for sid, _ in
                        self._manager.get_participants(namespace, room))
        return sids

    def rooms_of(self, sid: str, namespace: str) -> List[Room]:
        """The rooms of a socket, its own sid included. Unlike
        python-socketio's ``get_rooms``, safe while other threads connect
        and disconnect sockets: it reads a snapshot of the namespace's
        rooms (taking it runs no Python code, so no thread interleaves)."""
        rooms = list(self._manager.rooms.get(namespace, {}).items())
        return [name for name, members in rooms
                if name is not None and sid in members]

    def select(self, namespace: str, opts: BroadcastOptions) -> List[str]:
        """The sockets that ``opts`` addresses."""
        sids = self.sids_in(namespace, opts.rooms or [None])
        sids.difference_update(self.sids_in(namespace, opts.except_rooms))
        return sorted(sids)

    def emit(self, namespace: str, event: str, args: List[Any],
             opts: BroadcastOptions, offset: Optional[str] = None) -> None:
        """Send an event to the selected sockets, with ``offset`` (the
        stream entry id) as last argument if given. Packets for sockets
        being recovered are held back."""
        room = list(opts.rooms) or None
        if offset is not None:
            args = [*args, offset]
        skip = self.divert(namespace, opts, [event, *args])
        if not reaches(self._manager, namespace, room):
            return  # held back or not, no socket here is addressed
        skip |= self.sids_in(namespace, opts.except_rooms)
        Manager.emit(self._manager, event, emit_data(args), namespace,
                     room=room, skip_sid=list(skip))

    def send(self, namespace: str, sid: str, packet: List[Any]) -> None:
        """Send ``[event, *args]`` to one socket."""
        event, *args = packet
        Manager.emit(self._manager, event, emit_data(args), namespace,
                     room=sid)

    def emit_with_ack(self, namespace: str, event: str, args: List[Any],
                      opts: BroadcastOptions,
                      ack: Callable[..., None]) -> int:
        """Send an event to each selected socket with an acknowledgement;
        ``ack`` is called with each answer's arguments. Returns how many
        sockets were asked."""
        sids = self.select(namespace, opts)
        for sid in sids:
            Manager.emit(self._manager, event, emit_data(args), namespace,
                         room=sid, callback=ack)
        return len(sids)

    def join(self, namespace: str, opts: BroadcastOptions,
             rooms: List[Room]) -> None:
        for sid in self.select(namespace, opts):
            for room in rooms:
                Manager.enter_room(self._manager, sid, namespace, room)

    def leave(self, namespace: str, opts: BroadcastOptions,
              rooms: List[Room]) -> None:
        for sid in self.select(namespace, opts):
            for room in rooms:
                Manager.leave_room(self._manager, sid, namespace, room)

    def disconnect(self, namespace: str, opts: BroadcastOptions,
                   close: bool) -> None:
        """Disconnect the selected sockets from ``namespace``; with
        ``close``, close their whole connection."""
        for sid in self.select(namespace, opts):
            eio_sid = self._manager.eio_sid_from_sid(sid, namespace)
            self.server.disconnect(sid, namespace=namespace,
                                   ignore_queue=True)
            if close and eio_sid is not None:
                # closing waits until the connection has sent what it has
                # queued: that wait must not hold up the stream reader
                self.server.start_background_task(self.server.eio.disconnect,
                                                  eio_sid)

    def connected(self, eio_sid: str, namespace: str,
                  auth: Any) -> None:
        """Remember how a socket connected, for :meth:`describe`."""
        self._handshakes[(eio_sid, namespace)] = {
            'issued': int(time.time() * 1000),
            'auth': auth if isinstance(auth, dict) else {}}

    def disconnected(self, eio_sid: str, namespace: str) -> None:
        self._handshakes.pop((eio_sid, namespace), None)

    def describe(self, namespace: str, sid: str) -> Dict[str, Any]:
        """A socket as FETCH_SOCKETS_RESPONSE carries it."""
        eio_sid = self._manager.eio_sid_from_sid(sid, namespace)
        return {'id': sid,
                'handshake': self._handshake(eio_sid, namespace),
                'rooms': self.rooms_of(sid, namespace),
                'data': self.get_data(sid, namespace)}

    def get_data(self, sid: str, namespace: str) -> Any:
        """The socket's ``data``: its python-socketio session, if it can
        cross the wire (msgpack); else ``None``, logged."""
        try:
            data = self.server.get_session(sid, namespace=namespace)
        except KeyError:
            return None
        try:
            msgpack.packb(data, use_bin_type=True)
        except (TypeError, ValueError, OverflowError) as exc:
            self._logger.warning('the session of %s cannot be sent to other '
                                 'servers (%s); its data is reported as '
                                 'None', sid, exc)
            return None
        return data

    def set_data(self, sid: str, namespace: str, data: Any) -> None:
        self.server.save_session(sid, data, namespace=namespace)

    def _handshake(self, eio_sid: Optional[str],
                   namespace: str) -> Dict[str, Any]:
        environ = self.server.environ.get(eio_sid, {})
        known = self._handshakes.get((eio_sid, namespace), {})
        issued = known.get('issued', int(time.time() * 1000))
        query = environ.get('QUERY_STRING', '')
        headers = {key[5:].lower().replace('_', '-'): value
                   for key, value in environ.items()
                   if key.startswith('HTTP_') and isinstance(value, str)}
        return {
            'headers': headers,
            'time': time.strftime('%a %b %d %Y %H:%M:%S GMT+0000 '
                                  '(Coordinated Universal Time)',
                                  time.gmtime(issued / 1000)),
            'address': environ.get('REMOTE_ADDR', ''),
            'xdomain': 'HTTP_ORIGIN' in environ,
            'secure': environ.get('wsgi.url_scheme') == 'https',
            'issued': issued,
            'url': environ.get('PATH_INFO', '') + (f'?{query}' if query
                                                   else ''),
            'query': dict(parse_qsl(query)),
            'auth': known.get('auth', {}),
        }
