"""WSGI serving on 127.0.0.1 for each async mode."""

from __future__ import annotations

import logging
from typing import Callable

HOST = '127.0.0.1'

WsgiApp = Callable[..., object]
ReadyCallback = Callable[[int], None]


def serve(
    app: WsgiApp, async_mode: str, port: int, on_ready: ReadyCallback
) -> None:
    """Bind ``port`` (0: any), report the bound port through ``on_ready``
    and serve forever."""
    servers = {
        'threading': _serve_threading,
        'gevent': _serve_gevent,
        'eventlet': _serve_eventlet,
    }
    servers[async_mode](app, port, on_ready)


def _serve_threading(app: WsgiApp, port: int, on_ready: ReadyCallback) -> None:
    from werkzeug.serving import make_server

    werkzeug_logger = logging.getLogger('werkzeug')
    # Access logs are off in every mode; Werkzeug logs requests at INFO.
    werkzeug_logger.setLevel(logging.WARNING)
    werkzeug_logger.addFilter(_is_not_trailing_websocket_frame)
    # engineio's threading driver upgrades to WebSocket through
    # simple-websocket, which takes the raw socket from Werkzeug's environ.
    server = make_server(HOST, port, app, threaded=True)
    on_ready(server.server_port)
    server.serve_forever()


def _is_not_trailing_websocket_frame(record: logging.LogRecord) -> bool:
    # The python-engineio client can write frames after its WebSocket close
    # frame; Werkzeug then parses them as a new HTTP request and logs a 400
    # at ERROR level for every disconnecting client.
    return 'code 400, message Bad' not in record.getMessage()


def _serve_gevent(app: WsgiApp, port: int, on_ready: ReadyCallback) -> None:
    from gevent import pywsgi
    from geventwebsocket.handler import WebSocketHandler

    server = pywsgi.WSGIServer(
        (HOST, port), app, handler_class=WebSocketHandler, log=None
    )
    server.init_socket()
    on_ready(server.server_port)
    server.serve_forever()


def _serve_eventlet(app: WsgiApp, port: int, on_ready: ReadyCallback) -> None:
    import eventlet
    import eventlet.wsgi

    listener = eventlet.listen((HOST, port))
    on_ready(listener.getsockname()[1])
    eventlet.wsgi.server(listener, app, log_output=False)
