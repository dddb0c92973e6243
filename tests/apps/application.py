"""The test application: a plain python-socketio server or Flask-SocketIO."""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from typing import Any, Callable, Iterable

import socketio

from tests.apps.commands import CommandHandler

# /dashboard has a negative Java hash: with several streams it lands on
# '<stream>--<i>' (see codec.stream_for_namespace)
NAMESPACES = ('/', '/chat', '/other', '/dashboard')

Handler = Callable[..., Any]
Register = Callable[[str, str, Handler], None]
WsgiApp = Callable[..., Iterable[bytes]]


@dataclass
class Application:
    """A WSGI application and the ``socketio.Server`` behind it."""

    wsgi_app: WsgiApp
    server: socketio.Server


def build_application(
    *,
    framework: str,
    async_mode: str,
    manager: socketio.PubSubManager,
    name: str,
    logger: logging.Logger,
    server_options: dict[str, Any] | None = None,
) -> Application:
    """Build the application for ``framework`` (``socketio`` or ``flask``);
    ``server_options`` are more keyword arguments of the Socket.IO server
    (``ping_interval``...)."""
    builders = {'socketio': _build_plain, 'flask': _build_flask}
    return builders[framework](async_mode, manager, name, logger,
                               dict(server_options or {}))


def _build_plain(
    async_mode: str,
    manager: socketio.PubSubManager,
    name: str,
    logger: logging.Logger,
    server_options: dict[str, Any],
) -> Application:
    server = socketio.Server(
        async_mode=async_mode, client_manager=manager, logger=logger,
        **server_options
    )

    def register(event: str, namespace: str, handler: Handler) -> None:
        server.on(event, handler, namespace=namespace)

    _register_handlers(register, CommandHandler(server, name))
    return Application(socketio.WSGIApp(server, _health_app), server)


def _build_flask(
    async_mode: str,
    manager: socketio.PubSubManager,
    name: str,
    logger: logging.Logger,
    server_options: dict[str, Any],
) -> Application:
    import flask
    from flask import Flask
    from flask_socketio import SocketIO

    app = Flask(__name__)
    app.add_url_rule('/health', 'health', lambda: 'ok')
    extension = SocketIO(
        app, async_mode=async_mode, client_manager=manager, logger=logger,
        **server_options
    )

    def register(event: str, namespace: str, handler: Handler) -> None:
        # Flask-SocketIO passes no sid (it is in flask.request.sid), and no
        # environ to the connect handler (python-socketio passes both)
        def adapter(*args: Any) -> Any:
            if event == 'connect':
                args = (flask.request.environ, *args)
            return handler(flask.request.sid, *args)

        extension.on(event, namespace=namespace)(adapter)

    _register_handlers(register, CommandHandler(extension.server, name))
    return Application(app, extension.server)


def _register_handlers(register: Register, commands: CommandHandler) -> None:
    """Every handler gets the caller's sid first."""
    for namespace in NAMESPACES:
        register('connect', namespace,
                 functools.partial(commands.on_connect, namespace))
        register('echo', namespace, _echo)
    register('cmd', '/', lambda _sid, request: commands(request))


def _echo(_sid: str, *args: Any) -> tuple[Any, ...]:
    # A tuple return value becomes that many acknowledgement arguments.
    return args


def _health_app(
    environ: dict[str, Any], start_response: Callable[..., Any]
) -> list[bytes]:
    if environ.get('PATH_INFO') == '/health':
        start_response('200 OK', [('Content-Type', 'text/plain')])
        return [b'ok']
    start_response('404 Not Found', [('Content-Type', 'text/plain')])
    return [b'not found']
