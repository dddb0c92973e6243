"""The options of the managers, declared once: each with its default, its
check and its one-line documentation. The managers take them as keyword
arguments, their docstrings list them from here, and a unit test holds the
README's options table against this declaration.

Everything is validated up front, so that a wrong value fails at
construction with a :class:`ValueError` that names the option.
"""
from __future__ import annotations

import logging
from dataclasses import MISSING, Field, dataclass, field, fields
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, \
    Tuple
from urllib.parse import unquote, urlparse

URL_SCHEMES = ('redis', 'rediss', 'unix', 'valkey', 'valkeys',
               'redis+sentinel', 'valkey+sentinel', 'redis+cluster',
               'rediss+cluster', 'valkey+cluster', 'valkeys+cluster')

Check = Callable[[str, Any], None]


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


def _count_or_zero(name: str, value: Any) -> None:
    if value != 0 or isinstance(value, bool):
        _count(name, value)


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


def _client(name: str, value: Any) -> None:
    if value is not None and not hasattr(value, 'connection_pool') and \
            not hasattr(value, 'nodes_manager'):
        raise ValueError(f'{name}: expected a redis.Redis or '
                         f'redis.cluster.RedisCluster (or valkey) client '
                         f'object')


def _option(default: Any, check: Check, doc: str,
            shown: Optional[str] = None) -> Any:
    """Declare an option. ``shown`` is how the documentation writes the
    default, when not as the value itself."""
    metadata = {'check': check, 'doc': doc, 'shown': shown}
    if isinstance(default, dict):
        return field(default_factory=dict, metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass(frozen=True)
class Options:
    """Every setting of a manager."""
    url: str = _option(
        'redis://localhost:6379/0', _text,
        'where Redis is (see "Connecting to Redis")')
    redis_client: Any = _option(
        None, _client,
        'a ready client to take the settings from, instead of `url`')
    stream_name: str = _option(
        'socket.io', _text,
        'the stream (the prefix of the streams when `stream_count` > 1)')
    stream_count: int = _option(
        1, _count,
        'spread namespaces over this many streams, as the Node adapter does')
    channel_prefix: str = _option(
        'socket.io', _text, 'prefix of the PUB/SUB channels')
    use_sharded_pubsub: bool = _option(
        False, _flag, 'SSUBSCRIBE/SPUBLISH (Redis 7+)')
    maxlen: int = _option(
        10_000, _count,
        'the stream is trimmed to about this many entries (`MAXLEN ~`)')
    read_count: int = _option(100, _count, 'most entries one XREAD returns')
    block_time_ms: int = _option(
        5_000, _count, 'how long one XREAD waits, in milliseconds')
    session_key_prefix: str = _option(
        'sio:session:', _prefix, 'prefix of the keys of stored sessions')
    heartbeat_interval: float = _option(
        5.0, _seconds, 'seconds between heartbeats')
    heartbeat_timeout: float = _option(
        10.0, _seconds,
        'seconds of silence after which a server is forgotten')
    write_only: bool = _option(
        False, _flag, 'an emitter only: no reader, no server tasks')
    logger: Optional[logging.Logger] = _option(
        None, _logger, 'where to log', shown='`sio_redis_streams` logger')
    json: Any = _option(
        None, _json_module, 'JSON module for stream entries',
        shown="the server's")
    redis_options: Dict[str, Any] = _option(
        {}, _mapping, 'more keyword arguments for the Redis client')
    outbox_size: int = _option(
        10_000, _count, 'most messages waiting for Redis')
    outbox_timeout: float = _option(
        5.0, _seconds_or_zero,
        'how long an emit may wait for room in a full outbox while Redis is '
        'reachable (back-pressure); with Redis unreachable a full outbox '
        'drops at once')
    write_batch_size: int = _option(
        100, _count, 'most entries written in one round trip')
    replica_acks: int = _option(
        0, _count_or_zero,
        'a batch counts as written once this many replicas have it (WAIT); '
        'until then it stays in the outbox, so that a failover loses '
        'nothing (see "Redis Cluster")')
    replica_ack_timeout: float = _option(
        1.0, _seconds,
        'how long one WAIT for `replica_acks` lasts before it is asked '
        'again')
    request_timeout: float = _option(
        5.0, _seconds,
        'default timeout of `fetch_sockets`, `server_side_call`, '
        '`emit_with_ack`')
    ack_timeout: float = _option(
        60.0, _seconds,
        'how long the callback of an emit to clients of other servers stays '
        'registered')
    socket_timeout: float = _option(
        5.0, _seconds,
        'socket timeout of commands (XREAD adds its block time) and connect '
        'timeout')
    max_message_size: int = _option(
        16 * 1024 * 1024, _count,
        'larger stream entries and PUB/SUB payloads are skipped',
        shown='`16 MiB`')
    close_timeout: float = _option(
        5.0, _seconds,
        'how long shutting down may take for writing what waits in the '
        'outbox and storing sessions')
    connection_state_recovery: bool = _option(
        False, _flag,
        'recover the sessions of dropped clients (Socket.IO 4.6+ clients): '
        'same sid, rooms, data and every broadcast they missed')
    max_disconnection_duration: float = _option(
        120.0, _seconds, 'seconds a dropped session can be recovered')
    recovery_max_packets: int = _option(
        1000, _count,
        'a client that missed more packets gets a new session')

    def __post_init__(self) -> None:
        for f in fields(self):
            f.metadata['check'](f.name, getattr(self, f.name))
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

    @classmethod
    def of(cls, url: str, given: Mapping[str, Any]) -> 'Options':
        """Options from a manager's keyword arguments.

        :raises ValueError: naming an unknown option, or a wrong value.
        """
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(given) - known)
        if unknown:
            raise ValueError(f'{unknown[0]}: no such option (the options '
                             f'are {", ".join(sorted(known))})')
        values = {name: value for name, value in given.items()
                  if not (name == 'redis_options' and value is None)}
        return cls(url=url, **values)

    @property
    def block_time(self) -> float:
        """The XREAD block time, in seconds."""
        return self.block_time_ms / 1000.0


def declared() -> Iterator[Field]:
    """The declared options, in order."""
    return iter(fields(Options))


def shown_default(f: Field) -> str:
    """An option's default as the documentation writes it."""
    if f.metadata['shown']:
        return f.metadata['shown']
    value = {} if f.default is MISSING else f.default
    if isinstance(value, int) and not isinstance(value, bool) and \
            value >= 10_000:
        return f'`{value:_}`'
    return f'`{value}`'


def param_docs() -> str:
    """The ``:param:`` lines of every option, for the managers' docstrings
    (``url`` is their positional argument)."""
    return '\n'.join(f'    :param {f.name}: {f.metadata["doc"]}.'
                     for f in declared() if f.name != 'url')


def url_servers(url: str, what: str
                ) -> Tuple[List[Tuple[str, int]], Dict[str, Any]]:
    """The servers of a URL that names several (``scheme://[user:pass@]
    h1:p1,h2:p2...``: Sentinel, a Redis Cluster) as ``(host, port)``, and
    its credentials as client arguments.

    :raises ValueError: naming ``url`` and the bad ``what`` address.
    """
    parsed = urlparse(url)
    servers = []
    for host_port in parsed.netloc.rsplit('@', 1)[-1].split(','):
        host, _, port = host_port.rpartition(':')
        if not host or not port.isdigit():
            raise ValueError(f'url: bad {what} address {host_port!r}')
        servers.append((host.strip('[]'), int(port)))
    credentials: Dict[str, Any] = {}
    if parsed.username:
        credentials['username'] = unquote(parsed.username)
    if parsed.password:
        credentials['password'] = unquote(parsed.password)
    return servers, credentials
