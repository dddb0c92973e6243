"""Creation of the client manager under test."""

from __future__ import annotations

from typing import Any

import socketio


def create_manager(
    kind: str, redis_url: str, options: dict[str, Any]
) -> socketio.Manager:
    """``streams``: the project's RedisStreamsManager, ``pubsub``:
    python-socketio's RedisManager, ``local``: python-socketio's default
    in-process Manager (one server alone, no Redis; ``redis_url`` and
    ``options`` are ignored), the benchmark's ceiling."""
    if kind == 'streams':
        # Imported lazily so that the pub/sub stand-in works without the
        # project package.
        from sio_redis_streams import RedisStreamsManager

        return RedisStreamsManager(redis_url, **_with_address_remap(options))
    if kind == 'pubsub':
        return socketio.RedisManager(redis_url, **options)
    if kind == 'local':
        return socketio.Manager()
    raise ValueError(f'unknown manager kind {kind!r}')


def _with_address_remap(options: dict[str, Any]) -> dict[str, Any]:
    """A Redis Cluster client's ``address_remap`` given in JSON as
    ``{"host:port": "host:port"}`` becomes the function the client wants
    (the tests put TCP proxies in front of every node this way)."""
    redis_options = dict(options.get('redis_options') or {})
    table = redis_options.get('address_remap')
    if not isinstance(table, dict):
        return options
    pairs = {tuple(_address(k)): _address(v) for k, v in table.items()}
    redis_options['address_remap'] = \
        lambda address: pairs.get(tuple(address), address)
    return {**options, 'redis_options': redis_options}


def _address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(':')
    return host, int(port)
