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

        return RedisStreamsManager(redis_url, **options)
    if kind == 'pubsub':
        return socketio.RedisManager(redis_url, **options)
    if kind == 'local':
        return socketio.Manager()
    raise ValueError(f'unknown manager kind {kind!r}')
