"""Where the manager hooks into a python-socketio server.

python-socketio tells a client manager about connections and rooms, but not
what a client sent with its CONNECT (its ``auth``) nor when the server shuts
down; the manager needs both. The few server methods involved are wrapped
on the server instance, once, when the manager is attached.
"""
from __future__ import annotations

import functools
from typing import Any, Callable


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
