"""The heartbeat task: announces this server on PUB/SUB, keeps the table of
live servers (:class:`~sio_redis_streams.core.presence.Presence`) fresh,
and has the subscription made again when this server stops hearing its own
heartbeats."""
from __future__ import annotations

from typing import Callable, Iterable

from ..core.messages import AdapterClose, Heartbeat, InitialHeartbeat, \
    Message
from ..core.presence import Presence
from .context import Context
from .subscriber import PubSub


class HeartbeatTask:
    """Publishes heartbeats and does the housekeeping that can wait that
    long.

    :param namespaces: returns the namespaces this server serves now.
    :param on_tick: called at every beat (forgetting expired requests).
    """

    def __init__(self, context: Context, pubsub: PubSub, presence: Presence,
                 namespaces: Callable[[], Iterable[str]],
                 on_tick: Callable[[], None]) -> None:
        self._context = context
        self._pubsub = pubsub
        self._presence = presence
        self._namespaces = namespaces
        self._on_tick = on_tick

    def run(self) -> None:
        """The body of the heartbeat task."""
        context = self._context
        while not context.stopping.wait(context.options.heartbeat_interval):
            try:
                self.beat()
            except Exception:  # the beat goes on
                context.logger.exception('heartbeat failed')

    def beat(self) -> None:
        """Publish one heartbeat per namespace and do the housekeeping."""
        published = self._send_all(Heartbeat)
        if self._presence.check_own(published, self._pubsub.connected):
            self._pubsub.reconnect(
                f'this server has not heard its own heartbeats for '
                f'{self._presence.timeout:g} s although Redis accepts them')
        self._presence.expire()
        self._on_tick()

    def announce(self, namespace: str) -> None:
        """Tell the servers of ``namespace`` that this one joined, so that
        they answer with a heartbeat at once."""
        self.send(InitialHeartbeat, namespace)

    def leave(self) -> None:
        """Tell the others that this server is going away."""
        self._send_all(AdapterClose)

    def send(self, kind: Callable[[str, str], Message],
             namespace: str) -> bool:
        """Publish one heartbeat-like message; ``False`` if Redis did not
        take it."""
        try:
            self._pubsub.publish(kind(self._context.uid, namespace))
            return True
        except Exception as exc:  # Redis unreachable, or the link broke
            self._context.logger.debug('heartbeat not sent: %s', exc)
            return False

    def _send_all(self, kind: Callable[[str, str], Message]) -> bool:
        sent = False
        for namespace in list(self._namespaces()):
            sent = self.send(kind, namespace) or sent
        return sent
