"""Socket.IO server process used by the multi-server tests and the benchmark.

Run it with the project's interpreter, for example::

    python tests/apps/cluster_app.py --redis-url redis://127.0.0.1:7000/0 \
        --async-mode gevent --framework flask --manager streams \
        --options '{"stream_name": "bench"}' --name A --port 0

It prints ``READY <port>`` once it accepts connections (``--port 0`` picks a
free port), answers ``GET /health`` with ``ok``, accepts the namespaces
``/``, ``/chat`` and ``/other`` and executes test commands sent as ``cmd``
events on ``/`` (see ``tests/apps/commands.py``). SIGTERM or SIGINT calls
``shutdown()`` on the Socket.IO server and exits with status 0.
"""

import argparse
import json
import os
import sys

# Only stdlib modules that never touch sockets or threads may be imported
# above this point: gevent and eventlet must patch before anything else loads.

ASYNC_MODES = ('threading', 'gevent', 'eventlet')
FRAMEWORKS = ('socketio', 'flask')
MANAGERS = ('streams', 'pubsub', 'local')
_REPO_ROOT = os.path.dirname(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
)


def parse_args(argv: 'list[str] | None' = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        '--port',
        type=int,
        default=0,
        help='TCP port on 127.0.0.1 (0: any free port)',
    )
    parser.add_argument('--redis-url', required=True)
    parser.add_argument(
        '--async-mode', choices=ASYNC_MODES, default='threading'
    )
    parser.add_argument('--framework', choices=FRAMEWORKS, default='socketio')
    parser.add_argument('--manager', choices=MANAGERS, default='streams')
    parser.add_argument(
        '--options',
        type=json.loads,
        default={},
        help='JSON object of manager keyword arguments',
    )
    parser.add_argument(
        '--server-options',
        type=json.loads,
        default={},
        help='JSON object of socketio.Server keyword arguments '
        '(ping_interval...)',
    )
    parser.add_argument(
        '--name',
        default='server',
        help='server name reported by the ping command',
    )
    parser.add_argument('--log-level', default='WARNING')
    args = parser.parse_args(argv)
    if not isinstance(args.options, dict):
        parser.error('--options must be a JSON object')
    if not isinstance(args.server_options, dict):
        parser.error('--server-options must be a JSON object')
    return args


def monkey_patch(async_mode: str) -> None:
    """Patch the standard library for the green async modes."""
    if async_mode == 'gevent':
        from gevent import monkey

        monkey.patch_all()
    elif async_mode == 'eventlet':
        import warnings

        # Eventlet announces its deprecation on import; users still run it,
        # so it is tested, and the warning would only clutter the logs.
        warnings.filterwarnings('ignore', message=r'\s*Eventlet is deprecated')
        import eventlet

        eventlet.monkey_patch()


def main() -> None:
    """Build the server the command line describes; serve until signalled."""
    args = parse_args()
    monkey_patch(args.async_mode)

    import logging

    # Makes the project package and tests.apps importable however this
    # script is started.
    sys.path.insert(0, _REPO_ROOT)
    from tests.apps.application import build_application
    from tests.apps.lifecycle import GracefulExit
    from tests.apps.managers import create_manager
    from tests.apps.serving import serve

    logging.basicConfig(
        level=args.log_level.upper(),
        stream=sys.stderr,
        format=(
            '%(asctime)s %(levelname)s %(name)s '
            f'[{args.name} pid %(process)d] %(message)s'
        ),
    )
    manager = create_manager(args.manager, args.redis_url, args.options)
    application = build_application(
        framework=args.framework,
        async_mode=args.async_mode,
        manager=manager,
        name=args.name,
        logger=logging.getLogger('cluster_app.socketio'),
        server_options=args.server_options,
    )
    GracefulExit(application.server).install()
    serve(application.wsgi_app, args.async_mode, args.port, on_ready=_announce)


def _announce(port: int) -> None:
    print(f'READY {port}', flush=True)


if __name__ == '__main__':
    main()
