"""Sockets of the whole cluster, as ``fetch_sockets`` returns them."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, \
    Union

if TYPE_CHECKING:  # pragma: no cover
    from .manager import RedisStreamsManager

Room = Union[str, int]


@dataclass
class RemoteSocket:
    """A socket of any server of the cluster, as it was when fetched.

    :ivar sid: the socket's id in its namespace.
    :ivar namespace: its namespace.
    :ivar rooms: its rooms (its own sid included).
    :ivar data: its ``data`` (a python-socketio session, for sockets of
                Python servers).
    :ivar handshake: how it connected: ``headers``, ``address``, ``query``,
                     ``auth``, ``url``, ``time``, ``issued``, ``secure``,
                     ``xdomain``.
    :ivar server: the ``uid`` of the server it is connected to.
    """
    sid: str
    namespace: str
    rooms: List[Room]
    data: Any
    handshake: Dict[str, Any]
    server: str
    _manager: 'RedisStreamsManager' = field(repr=False, compare=False)

    @classmethod
    def from_wire(cls, manager: 'RedisStreamsManager', namespace: str,
                  server: str, socket: Dict[str, Any]) -> 'RemoteSocket':
        rooms = socket.get('rooms')
        handshake = socket.get('handshake')
        return cls(socket['id'], namespace,
                   rooms if isinstance(rooms, list) else [],
                   socket.get('data'),
                   handshake if isinstance(handshake, dict) else {},
                   server, manager)

    def emit(self, event: str, *args: Any,
             callback: Optional[Callable[..., Any]] = None) -> None:
        """Send an event to this socket, wherever it is connected;
        ``callback`` runs on this server with the client's answer."""
        self._manager.emit(event, tuple(args), to=self.sid,
                           namespace=self.namespace, callback=callback)

    def call(self, event: str, *args: Any, timeout: float = 60) -> Any:
        """Send an event to this socket and return the client's answer, as
        ``sio.call()`` does.

        :raises socketio.exceptions.TimeoutError: when the client did not
                                                  answer within
                                                  ``timeout`` seconds.
        """
        return self._manager.server.call(event, tuple(args), to=self.sid,
                                         namespace=self.namespace,
                                         timeout=timeout)

    def join(self, rooms: Union[Room, List[Room]]) -> None:
        """Add this socket to one or more rooms."""
        self._manager.sockets_join(rooms, namespace=self.namespace,
                                   to=self.sid)

    def leave(self, rooms: Union[Room, List[Room]]) -> None:
        """Remove this socket from one or more rooms."""
        self._manager.sockets_leave(rooms, namespace=self.namespace,
                                    to=self.sid)

    def disconnect(self, close: bool = False) -> None:
        """Disconnect this socket from its namespace; with ``close``, close
        its whole connection."""
        self._manager.disconnect_sockets(namespace=self.namespace,
                                         to=self.sid, close=close)
