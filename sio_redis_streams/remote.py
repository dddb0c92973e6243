"""Sockets of the whole cluster, as ``fetch_sockets`` returns them."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Protocol, Union


Room = Union[str, int]


class SocketOperations(Protocol):
    """What a :class:`RemoteSocket` needs of the manager that fetched it."""

    def emit(self, event: str, data: Any, namespace: Optional[str] = None,
             room: Any = None, skip_sid: Any = None,
             callback: Optional[Callable[..., Any]] = None,
             to: Any = None, **kwargs: Any) -> Any: ...

    def call_socket(self, event: str, args: tuple, sid: str,
                    namespace: str, timeout: float) -> Any: ...

    def sockets_join(self, rooms: Any, namespace: str = '/', to: Any = None,
                     skip: Any = None) -> Any: ...

    def sockets_leave(self, rooms: Any, namespace: str = '/',
                      to: Any = None, skip: Any = None) -> Any: ...

    def disconnect_sockets(self, namespace: str = '/', to: Any = None,
                           skip: Any = None, close: bool = False) -> Any: ...


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
    _operations: SocketOperations = field(repr=False, compare=False)

    @classmethod
    def from_wire(cls, operations: SocketOperations, namespace: str,
                  server: str, socket: Dict[str, Any]) -> 'RemoteSocket':
        rooms = socket.get('rooms')
        handshake = socket.get('handshake')
        return cls(socket['id'], namespace,
                   rooms if isinstance(rooms, list) else [],
                   socket.get('data'),
                   handshake if isinstance(handshake, dict) else {},
                   server, operations)

    def emit(self, event: str, *args: Any,
             callback: Optional[Callable[..., Any]] = None) -> Any:
        """Send an event to this socket, wherever it is connected;
        ``callback`` runs on this server with the client's answer."""
        return self._operations.emit(event, tuple(args), to=self.sid,
                                     namespace=self.namespace,
                                     callback=callback)

    def call(self, event: str, *args: Any, timeout: float = 60) -> Any:
        """Send an event to this socket and return the client's answer, as
        ``sio.call()`` does.

        :raises socketio.exceptions.TimeoutError: when the client did not
                                                  answer within
                                                  ``timeout`` seconds.
        :raises RuntimeError: on a write-only manager, which cannot hear
                              the answer.
        """
        return self._operations.call_socket(event, tuple(args), self.sid,
                                            self.namespace, timeout)

    def join(self, rooms: Union[Room, List[Room]]) -> Any:
        """Add this socket to one or more rooms."""
        return self._operations.sockets_join(rooms, namespace=self.namespace,
                                             to=self.sid)

    def leave(self, rooms: Union[Room, List[Room]]) -> Any:
        """Remove this socket from one or more rooms."""
        return self._operations.sockets_leave(rooms,
                                              namespace=self.namespace,
                                              to=self.sid)

    def disconnect(self, close: bool = False) -> Any:
        """Disconnect this socket from its namespace; with ``close``, close
        its whole connection."""
        return self._operations.disconnect_sockets(
            namespace=self.namespace, to=self.sid, close=close)
