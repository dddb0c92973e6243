"""Where the manager hooks into a python-socketio server.

python-socketio tells a client manager about connections and rooms, but not
what a client sent with its CONNECT (its ``auth``, and for connection state
recovery its ``pid`` and ``offset``), what the server answers, when a
client's connection drops, nor when the server shuts down; the manager needs
all of these. The few server methods involved are wrapped on the server
instance, once, when the manager is attached.
"""
from __future__ import annotations

import functools
from typing import Any, Callable

from socketio.manager import Manager

#: python-socketio >= 5.18 connects a client in two steps: the manager's
#: pre_connect(eio_sid) before the connect handler, then connect(sid) once
#: the handler accepted it (and until then is_connected(sid) is False).
TWO_STEP_CONNECT = hasattr(Manager, 'pre_connect')


def on_shutdown(server: Any, callback: Callable[[], None]) -> None:
    """Call ``callback`` after ``server.shutdown()``."""
    shutdown = server.shutdown

    @functools.wraps(shutdown)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return shutdown(*args, **kwargs)
        finally:
            callback()

    server.shutdown = wrapper


def on_connect(server: Any,
               before: Callable[[str, str, Any], None],
               after: Callable[[str, str], None]) -> None:
    """Call ``before(eio_sid, namespace, data)`` when a client asks to
    connect to a namespace (``data`` is its ``auth``), and
    ``after(eio_sid, namespace)`` once the server has handled it."""
    handle_connect = server._handle_connect

    @functools.wraps(handle_connect)
    def wrapper(eio_sid: str, namespace: str, data: Any) -> Any:
        before(eio_sid, namespace or '/', data)
        try:
            return handle_connect(eio_sid, namespace, data)
        finally:
            after(eio_sid, namespace or '/')

    server._handle_connect = wrapper


def on_send_packet(server: Any,
                   around: Callable[[Callable[[], None], str, Any],
                                    None]) -> None:
    """Route every packet the server sends through
    ``around(send, eio_sid, packet)``, which must call ``send()``."""
    send_packet = server._send_packet

    @functools.wraps(send_packet)
    def wrapper(eio_sid: str, packet: Any) -> None:
        around(lambda: send_packet(eio_sid, packet), eio_sid, packet)

    server._send_packet = wrapper


def on_connection_lost(server: Any, before: Callable[[str], None]) -> None:
    """Call ``before(eio_sid)`` when a client's connection (transport) ends,
    while its namespaces are still connected."""
    handle_disconnect = server._handle_eio_disconnect

    @functools.wraps(handle_disconnect)
    def wrapper(eio_sid: str, *args: Any) -> Any:
        before(eio_sid)
        return handle_disconnect(eio_sid, *args)

    server._handle_eio_disconnect = wrapper
    # the Engine.IO server was given the method itself at construction
    server.eio.on('disconnect', wrapper)
