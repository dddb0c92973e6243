"""Where the manager hooks into a python-socketio server.

python-socketio tells a client manager about connections and rooms, but not
what a client sent with its CONNECT (its ``auth``, and for connection state
recovery its ``pid`` and ``offset``), what the server answers, when a
client's connection drops, nor when the server shuts down; the manager needs
all of these. The few server methods involved, some of them private, are
wrapped on the server instance, once, when the manager is attached; each is
checked first, so that a python-socketio release that renamed or changed
one fails at start with a clear error instead of breaking recovery quietly.
"""
from __future__ import annotations

import functools
import inspect
from typing import Any, Callable, List, Optional

from socketio.manager import Manager

#: The python-socketio releases this package is tested with.
SUPPORTED = 'python-socketio 5.11 to 5.18'

#: python-socketio >= 5.18 connects a client in two steps: the manager's
#: pre_connect(eio_sid) before the connect handler, then connect(sid) once
#: the handler accepted it (and until then is_connected(sid) is False).
TWO_STEP_CONNECT = hasattr(Manager, 'pre_connect')

# server member: the names of the arguments the wrapper passes on
_EXPECTED = {
    'shutdown': (),
    '_handle_connect': ('eio_sid', 'namespace', 'data'),
    '_send_packet': ('eio_sid', 'pkt'),
    '_handle_eio_disconnect': ('eio_sid',),
}


class UnsupportedServer(RuntimeError):
    """The python-socketio server lacks a member the manager hooks into."""


def check(server: Any, name: str) -> Callable[..., Any]:
    """The server's method ``name``, checked against what the wrapper
    expects.

    :raises UnsupportedServer: naming the member and the supported
                               python-socketio releases.
    """
    method = getattr(server, name, None)
    expected = _EXPECTED[name]
    if not callable(method):
        _unsupported(server, f'has no {name}()')
    try:
        parameters = list(inspect.signature(method).parameters.values())
    except (TypeError, ValueError):  # a builtin: cannot be checked
        return method
    names = tuple(p.name for p in parameters[:len(expected)])
    if names != expected or any(
            p.default is inspect.Parameter.empty and
            p.kind is not p.VAR_POSITIONAL and p.kind is not p.VAR_KEYWORD
            for p in parameters[len(expected):]
            if p.name not in ('reason',)):
        _unsupported(server, f'{name}({", ".join(p.name for p in parameters)})'
                             f' is not {name}({", ".join(expected)})')
    return method


def _unsupported(server: Any, problem: str) -> None:
    version = getattr(__import__('socketio'), '__version__', None)
    raise UnsupportedServer(
        f'sio_redis_streams supports {SUPPORTED}: this '
        f'{type(server).__name__}{f" ({version})" if version else ""} '
        f'{problem}, which the manager hooks into')


def attach(server: Any, on_shutdown: Callable[[], None],
           before_connect: Optional[Callable[[str, str, Any], None]] = None,
           after_connect: Optional[Callable[[str, str], None]] = None,
           send_packet: Optional[Callable[[Callable[[], None], str, Any],
                                          None]] = None,
           connection_lost: Optional[Callable[[str], None]] = None) -> None:
    """Hook into ``server``: every member is checked before any is wrapped.

    :param on_shutdown: called after ``server.shutdown()``.
    :param before_connect: called with ``(eio_sid, namespace, auth)`` when a
                           client asks to connect to a namespace.
    :param after_connect: called with ``(eio_sid, namespace)`` once the
                          server has handled that.
    :param send_packet: every packet the server sends goes through
                        ``send_packet(send, eio_sid, packet)``, which must
                        call ``send()``.
    :param connection_lost: called with ``eio_sid`` when a client's
                            connection (transport) ends, while its
                            namespaces are still connected.
    """
    wanted: List[str] = ['shutdown']
    if before_connect is not None:
        wanted += ['_handle_connect']
    if send_packet is not None:
        wanted += ['_send_packet']
    if connection_lost is not None:
        wanted += ['_handle_eio_disconnect']
        if not callable(getattr(getattr(server, 'eio', None), 'on', None)):
            _unsupported(server, 'has no eio.on()')
    methods = {name: check(server, name) for name in wanted}
    _after(server, 'shutdown', methods['shutdown'], on_shutdown)
    if before_connect is not None:
        _wrap_connect(server, methods['_handle_connect'], before_connect,
                      after_connect or (lambda eio_sid, namespace: None))
    if send_packet is not None:
        send = methods['_send_packet']

        @functools.wraps(send)
        def send_wrapper(eio_sid: str, packet: Any) -> None:
            send_packet(lambda: send(eio_sid, packet), eio_sid, packet)

        server._send_packet = send_wrapper
    if connection_lost is not None:
        handle = methods['_handle_eio_disconnect']

        @functools.wraps(handle)
        def lost_wrapper(eio_sid: str, *args: Any) -> Any:
            connection_lost(eio_sid)
            return handle(eio_sid, *args)

        server._handle_eio_disconnect = lost_wrapper
        # the Engine.IO server was given the method itself at construction
        server.eio.on('disconnect', lost_wrapper)


def _after(server: Any, name: str, method: Callable[..., Any],
           callback: Callable[[], None]) -> None:
    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return method(*args, **kwargs)
        finally:
            callback()

    setattr(server, name, wrapper)


def _wrap_connect(server: Any, handle_connect: Callable[..., Any],
                  before: Callable[[str, str, Any], None],
                  after: Callable[[str, str], None]) -> None:
    @functools.wraps(handle_connect)
    def wrapper(eio_sid: str, namespace: str, data: Any) -> Any:
        before(eio_sid, namespace or '/', data)
        try:
            return handle_connect(eio_sid, namespace, data)
        finally:
            after(eio_sid, namespace or '/')

    server._handle_connect = wrapper
