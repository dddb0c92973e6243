"""Redis PUB/SUB: the ephemeral half of the protocol (requests, responses,
heartbeats), with a subscriber that always comes back.

Every server listens on two channels per namespace: the public one, where
requests are sent to everyone, and a private one named after its ``uid``,
where answers come. The subscriber task owns its connection; after any
error it reconnects and subscribes to every channel again, and it can be
told to do so when the heartbeat shows that messages stopped arriving
although Redis takes them.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable, Dict, Iterable, Optional, Set

from . import codec
from .connection import Backoff, RedisConnector, describe_error
from .options import Options
from .stats import Stats

#: How long the subscriber waits for a message before it looks for new
#: channels to subscribe to, or for the order to stop.
_POLL_SECONDS = 0.2


class PubSub:
    """Publishes cluster messages and runs the subscriber task.

    :param commands: the client used to publish and to count subscribers
                     (not the writer's, so that a publish never waits
                     behind a batch of entries).
    :param handle: called with every valid message received, from the
                   subscriber task.
    """

    def __init__(self, connector: RedisConnector, commands: Any,
                 options: Options, uid: str,
                 handle: Callable[[codec.ClusterMessage], None],
                 stats: Stats, logger: logging.Logger,
                 stopping: threading.Event) -> None:
        self._connector = connector
        self._commands = commands
        self._options = options
        self._uid = uid
        self._handle = handle
        self._stats = stats
        self._logger = logger
        self._stopping = stopping
        self._client = connector.client('subscriber', options.socket_timeout)
        self._sharded = options.use_sharded_pubsub
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._wanted: Set[str] = set()
        self._confirmed: Set[str] = set()
        self._reconnect = False
        self._down_since: Optional[float] = None
        self.connected = False

    def public_channel(self, namespace: str) -> str:
        """Where requests to every server of ``namespace`` go."""
        return codec.public_channel(self._options.channel_prefix, namespace)

    def private_channel(self, namespace: str, uid: str) -> str:
        """Where answers to server ``uid`` go."""
        return codec.private_channel(self._options.channel_prefix,
                                     namespace, uid)

    def watch(self, namespace: str) -> None:
        """Listen to the channels of ``namespace`` from now on."""
        channels = {self.public_channel(namespace),
                    self.private_channel(namespace, self._uid)}
        with self._lock:
            if not channels <= self._wanted:
                self._wanted |= channels

    def wait_subscribed(self, namespaces: Iterable[str],
                        timeout: float) -> bool:
        """Wait until Redis confirmed the subscriptions of ``namespaces``."""
        channels = set()
        for namespace in namespaces:
            channels |= {self.public_channel(namespace),
                         self.private_channel(namespace, self._uid)}
        with self._lock:
            return self._changed.wait_for(
                lambda: channels <= self._confirmed, timeout)

    def is_subscribed(self, namespace: str) -> bool:
        """Whether Redis confirmed that this server listens to the public
        channel of ``namespace`` (so a PUBLISH there counts it)."""
        with self._lock:
            return self.public_channel(namespace) in self._confirmed

    def reconnect(self, reason: str) -> None:
        """Ask the subscriber to drop its connection and subscribe again."""
        self._logger.warning('re-subscribing to PUB/SUB: %s', reason)
        self._reconnect = True

    def publish(self, message: codec.ClusterMessage) -> int:
        """Send ``message`` to every server of its namespace; returns how
        many subscribers got it."""
        return self._publish(self.public_channel(message.nsp), message)

    def publish_response(self, requester: str,
                         message: codec.ClusterMessage) -> int:
        """Send ``message`` to server ``requester`` only."""
        return self._publish(self.private_channel(message.nsp, requester),
                             message)

    def server_count(self, namespace: str) -> int:
        """How many servers listen to ``namespace`` (this one included), as
        Redis counts the subscribers of its public channel."""
        channel = self.public_channel(namespace)
        if self._sharded:
            reply = self._commands.pubsub_shardnumsub(channel)
        else:
            reply = self._commands.pubsub_numsub(channel)
        return int(reply[0][1]) if reply else 0

    def run(self) -> None:
        """The body of the subscriber task."""
        backoff = Backoff()
        while not self._stopping.is_set():
            pubsub = self._client.pubsub(ignore_subscribe_messages=False)
            try:
                self._listen(pubsub)
                backoff.reset()
            except Exception as exc:  # the connection, or the client, broke
                if self._stopping.is_set():
                    return
                if not isinstance(exc, self._connector.connection_errors):
                    self._logger.exception('unexpected error in the PUB/SUB '
                                           'subscriber')
                if self._down_since is None:
                    self._down_since = time.monotonic()
                    self._stats.incr('subscriber_reconnects')
                    self._logger.warning('lost Redis PUB/SUB (%s); '
                                         'subscribing again when it is back',
                                         describe_error(exc))
                self._stopping.wait(backoff.next_delay())
            finally:
                self._set_disconnected()
                try:
                    pubsub.close()
                except Exception:  # closing a broken connection may fail
                    pass

    def _listen(self, pubsub: Any) -> None:
        subscribed: Set[str] = set()
        self._reconnect = False
        while not self._stopping.is_set() and not self._reconnect:
            with self._lock:
                new = self._wanted - subscribed
            if new:
                if self._sharded:
                    pubsub.ssubscribe(*sorted(new))
                else:
                    pubsub.subscribe(*sorted(new))
                subscribed |= new
            if not subscribed:
                self._stopping.wait(_POLL_SECONDS)
                continue
            if self._sharded:
                raw = pubsub.get_sharded_message(timeout=_POLL_SECONDS)
            else:
                raw = pubsub.get_message(timeout=_POLL_SECONDS)
            if raw is not None:
                self._on_raw(raw)

    def _on_raw(self, raw: Dict[str, Any]) -> None:
        kind = raw.get('type')
        if kind in ('subscribe', 'ssubscribe'):
            channel = raw['channel']
            with self._lock:
                self._confirmed.add(channel.decode()
                                    if isinstance(channel, bytes)
                                    else channel)
                self.connected = True
                self._changed.notify_all()
            if self._down_since is not None:
                self._logger.info(
                    'PUB/SUB subscriptions restored after %.1f s',
                    time.monotonic() - self._down_since)
                self._down_since = None
            return
        if kind not in ('message', 'smessage'):
            return
        try:
            message = codec.decode_pubsub(raw.get('data'),
                                          self._options.max_message_size)
        except codec.MalformedMessage as exc:
            self._stats.incr('bad_messages')
            self._logger.warning('skipping malformed PUB/SUB message on %s: '
                                 '%s', raw.get('channel'), exc)
            return
        try:
            self._handle(message)
        except Exception:
            self._stats.incr('handler_errors')
            self._logger.exception('error handling PUB/SUB message of type '
                                   '%s', message.type)

    def _set_disconnected(self) -> None:
        with self._lock:
            self._confirmed.clear()
            self.connected = False

    def _publish(self, channel: str, message: codec.ClusterMessage) -> int:
        payload = codec.encode_pubsub(message)
        if self._sharded:
            receivers = self._commands.spublish(channel, payload)
        else:
            receivers = self._commands.publish(channel, payload)
        self._stats.incr('messages_published')
        return receivers
