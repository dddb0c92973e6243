"""The options of :class:`~sio_redis_streams.RedisStreamsManager`,
validated once, up front, so that a wrong value fails at construction with
a :class:`ValueError` that names the option."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field, fields
from typing import Any, Dict, Optional
from urllib.parse import urlparse

URL_SCHEMES = ('redis', 'rediss', 'unix', 'valkey', 'valkeys',
               'redis+sentinel', 'valkey+sentinel')


@dataclass(frozen=True)
class Options:
    """Every setting of a manager. See the README's options table."""
    url: str = 'redis://localhost:6379/0'
    redis_client: Any = None
    stream_name: str = 'socket.io'
    stream_count: int = 1
    channel_prefix: str = 'socket.io'
    use_sharded_pubsub: bool = False
    maxlen: int = 10_000
    read_count: int = 100
    block_time_ms: int = 5_000
    session_key_prefix: str = 'sio:session:'
    heartbeat_interval: float = 5.0
    heartbeat_timeout: float = 10.0
    write_only: bool = False
    logger: Optional[logging.Logger] = None
    json: Any = None
    redis_options: Dict[str, Any] = field(default_factory=dict)
    outbox_size: int = 10_000
    outbox_timeout: float = 5.0
    write_batch_size: int = 100
    request_timeout: float = 5.0
    ack_timeout: float = 60.0
    socket_timeout: float = 5.0
    max_message_size: int = 16 * 1024 * 1024
    close_timeout: float = 5.0
    connection_state_recovery: bool = False
    max_disconnection_duration: float = 120.0
    recovery_max_packets: int = 1000

    def __post_init__(self) -> None:
        if self.redis_options is None:
            object.__setattr__(self, 'redis_options', {})
        for f in fields(self):
            check = _CHECKS.get(f.name)
            if check is not None:
                check(f.name, getattr(self, f.name))
        if self.heartbeat_timeout <= self.heartbeat_interval:
            raise ValueError(
                f'heartbeat_timeout ({self.heartbeat_timeout}) must be '
                f'longer than heartbeat_interval ({self.heartbeat_interval})')
        if self.redis_client is None:
            scheme = urlparse(self.url).scheme.lower()
            if scheme not in URL_SCHEMES:
                raise ValueError(
                    f'url: unsupported scheme {scheme!r}; use one of '
                    f'{", ".join(s + "://" for s in URL_SCHEMES)}')
        elif not hasattr(self.redis_client, 'connection_pool'):
            raise ValueError('redis_client: expected a redis.Redis (or '
                             'valkey.Valkey) client object')

    @property
    def block_time(self) -> float:
        """The XREAD block time, in seconds."""
        return self.block_time_ms / 1000.0


def _text(name: str, value: Any) -> None:
    if not isinstance(value, str) or not value:
        raise ValueError(f'{name}: expected a non-empty string, '
                         f'got {value!r}')


def _prefix(name: str, value: Any) -> None:
    if not isinstance(value, str):
        raise ValueError(f'{name}: expected a string, got {value!r}')


def _flag(name: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise ValueError(f'{name}: expected True or False, got {value!r}')


def _count(name: str, value: Any) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f'{name}: expected a whole number >= 1, '
                         f'got {value!r}')


def _seconds(name: str, value: Any) -> None:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or \
            not value > 0 or value == float('inf'):
        raise ValueError(f'{name}: expected a number of seconds > 0, '
                         f'got {value!r}')


def _seconds_or_zero(name: str, value: Any) -> None:
    if isinstance(value, bool) or value != 0:
        _seconds(name, value)


def _mapping(name: str, value: Any) -> None:
    if not isinstance(value, dict):
        raise ValueError(f'{name}: expected a dict, got {value!r}')


def _json_module(name: str, value: Any) -> None:
    if value is not None and not (callable(getattr(value, 'dumps', None))
                                  and callable(getattr(value, 'loads', None))):
        raise ValueError(f'{name}: expected a module with dumps() and '
                         f'loads(), got {value!r}')


def _logger(name: str, value: Any) -> None:
    if value is not None and not callable(getattr(value, 'warning', None)):
        raise ValueError(f'{name}: expected a logging.Logger, got {value!r}')


_CHECKS = {
    'url': _text,
    'stream_name': _text,
    'stream_count': _count,
    'channel_prefix': _text,
    'use_sharded_pubsub': _flag,
    'maxlen': _count,
    'read_count': _count,
    'block_time_ms': _count,
    'session_key_prefix': _prefix,
    'heartbeat_interval': _seconds,
    'heartbeat_timeout': _seconds,
    'write_only': _flag,
    'logger': _logger,
    'json': _json_module,
    'redis_options': _mapping,
    'outbox_size': _count,
    'outbox_timeout': _seconds_or_zero,
    'write_batch_size': _count,
    'request_timeout': _seconds,
    'ack_timeout': _seconds,
    'socket_timeout': _seconds,
    'max_message_size': _count,
    'close_timeout': _seconds,
    'connection_state_recovery': _flag,
    'max_disconnection_duration': _seconds,
    'recovery_max_packets': _count,
}
