"""Redis PUB/SUB: the ephemeral half of the protocol (requests, responses,
heartbeats), with a subscriber that always comes back.

Every server listens on two channels per namespace: the public one, where
requests are sent to everyone, and a private one named after its ``uid``,
where answers come. The subscriber task owns its connection; after any
error it reconnects and subscribes to every channel again, and it can be
told to do so when the heartbeat shows that messages stopped arriving
although Redis takes them. It only decodes and hands over: whatever takes
time is the handler's to run elsewhere.
"""
from __future__ import annotations

import threading
from typing import Any, Callable, Dict, Iterable, Set

from ..core import codec
from ..core.messages import MalformedMessage, Message
from . import cluster
from .context import Context, Supervisor

#: How long the subscriber waits for a message before it looks for new
#: channels to subscribe to, or for the order to stop.
_POLL_SECONDS = 0.2


class PubSub:
    """Publishes cluster messages and runs the subscriber task.

    :param commands: the client used to publish and to count subscribers
                     (not the writer's, so that a publish never waits
                     behind a batch of entries).
    :param handle: called with every valid message received, from the
                   subscriber task: it must return at once.
    :param subscribed: called with a namespace once Redis confirmed the
                       subscription to its public channel.
    """

    def __init__(self, context: Context, commands: Any,
                 handle: Callable[[Message], None],
                 subscribed: Callable[[str], None] = lambda nsp: None
                 ) -> None:
        self._context = context
        self._options = context.options
        self._commands = commands
        self._handle = handle
        self._subscribed = subscribed
        self._sharded = context.options.use_sharded_pubsub
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._wanted: Dict[str, str] = {}  # channel: namespace
        self._confirmed: Set[str] = set()
        self._reconnect = False
        self._client: Any = None
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
        with self._lock:
            self._wanted[self.public_channel(namespace)] = namespace
            self._wanted[self.private_channel(
                namespace, self._context.uid)] = namespace

    def wait_subscribed(self, namespaces: Iterable[str],
                        timeout: float) -> bool:
        """Wait until Redis confirmed the subscriptions of ``namespaces``."""
        channels = set()
        for namespace in namespaces:
            channels |= {self.public_channel(namespace),
                         self.private_channel(namespace, self._context.uid)}
        with self._lock:
            return self._changed.wait_for(
                lambda: channels <= self._confirmed, timeout)

    def reconnect(self, reason: str) -> None:
        """Ask the subscriber to drop its connection and subscribe again."""
        self._context.logger.warning('re-subscribing to PUB/SUB: %s', reason)
        self._reconnect = True

    def publish(self, message: Message) -> int:
        """Send ``message`` to every server of its namespace; returns how
        many subscribers got it."""
        return self._publish(self.public_channel(message.nsp), message)

    def publish_response(self, requester: str, message: Message) -> int:
        """Send ``message`` to server ``requester`` only."""
        return self._publish(self.private_channel(message.nsp, requester),
                             message)

    def publish_request(self, message: Message) -> int:
        """Send a request to every server of its namespace; returns how
        many servers will get it (this one included). A node of a Redis
        Cluster counts only its own subscribers in its reply to PUBLISH, so
        there the servers are counted first."""
        if not self._context.connector.cluster:
            return self.publish(message)
        servers = self.server_count(message.nsp)
        self.publish(message)
        return servers

    def server_count(self, namespace: str) -> int:
        """How many servers listen to ``namespace`` (this one included), as
        Redis counts the subscribers of its public channel (on a cluster,
        summed over every node: a subscription lives on one node, any
        node, and a node counts its own only)."""
        channel = self.public_channel(namespace)
        command = 'PUBSUB SHARDNUMSUB' if self._sharded else 'PUBSUB NUMSUB'
        connector = self._context.connector
        if connector.cluster:
            return cluster.count_subscribers(
                self._commands, command, channel,
                connector.connection_errors)
        reply = self._commands.execute_command(command, channel)
        return int(reply[0][1]) if reply else 0

    def run(self) -> None:
        """The body of the subscriber task."""
        connector = self._context.connector
        self._client = connector.client(
            'subscriber', self._options.socket_timeout)
        supervisor = Supervisor(self._context, 'for PUB/SUB',
                                'subscriber_reconnects',
                                lambda: connector.disconnect(self._client),
                                lambda: 'subscribing again when it is back')
        supervisor.run(lambda: self._session(supervisor))

    def _session(self, supervisor: Supervisor) -> None:
        """One subscribed connection, until it breaks or must be redone."""
        pubsub = self._client.pubsub(ignore_subscribe_messages=False)
        try:
            self._listen(pubsub, supervisor)
        finally:
            with self._lock:
                self._confirmed.clear()
                self.connected = False
            try:
                pubsub.close()
            except Exception:  # closing a broken connection may fail
                pass

    def _listen(self, pubsub: Any, supervisor: Supervisor) -> None:
        subscribed: Set[str] = set()
        self._reconnect = False
        stopping = self._context.stopping
        while not stopping.is_set() and not self._reconnect:
            with self._lock:
                new = set(self._wanted) - subscribed
            if new:
                if self._sharded:
                    pubsub.ssubscribe(*sorted(new))
                else:
                    pubsub.subscribe(*sorted(new))
                subscribed |= new
            if not subscribed:
                stopping.wait(_POLL_SECONDS)
                continue
            if self._sharded:
                raw = pubsub.get_sharded_message(timeout=_POLL_SECONDS)
            else:
                raw = pubsub.get_message(timeout=_POLL_SECONDS)
            if raw is not None:
                self._on_raw(raw, supervisor)

    def _on_raw(self, raw: Dict[str, Any], supervisor: Supervisor) -> None:
        kind = raw.get('type')
        if kind in ('subscribe', 'ssubscribe'):
            self._confirm(raw['channel'], supervisor)
        elif kind in ('message', 'smessage'):
            try:
                message = self._decode(raw)
            except MalformedMessage as exc:
                self._context.stats.incr('bad_messages')
                self._context.logger.warning(
                    'skipping malformed PUB/SUB message on %s: %s',
                    raw.get('channel'), exc)
                return
            self._handle(message)

    def _decode(self, raw: Dict[str, Any]) -> Message:
        """A message, which must name the namespace of its channel: what a
        peer writes in ``nsp`` must not reach tables this server keeps for
        namespaces it does not serve."""
        message = codec.decode_pubsub(raw.get('data'),
                                      self._options.max_message_size)
        with self._lock:
            namespace = self._wanted.get(_channel_name(raw.get('channel')))
        if message.nsp != namespace:
            raise MalformedMessage(f'namespace {message.nsp[:50]!r} on the '
                                   f'channel of {namespace!r}')
        return message

    def _confirm(self, channel: Any, supervisor: Supervisor) -> None:
        channel = _channel_name(channel)
        with self._lock:
            self._confirmed.add(channel)
            self.connected = True
            self._changed.notify_all()
            namespace = self._wanted.get(channel)
        supervisor.succeeded('PUB/SUB subscriptions restored')
        if namespace is not None and \
                channel == self.public_channel(namespace):
            self._subscribed(namespace)

    def _publish(self, channel: str, message: Message) -> int:
        payload = codec.encode_pubsub(message)
        if self._sharded:
            receivers = self._commands.spublish(channel, payload)
        else:
            receivers = self._commands.publish(channel, payload)
        self._context.stats.incr('messages_published')
        return receivers


def _channel_name(channel: Any) -> str:
    """A channel name as Redis sent it (bytes), as text."""
    if isinstance(channel, bytes):
        return channel.decode(errors='replace')
    return channel
