"""Presence of the servers of a cluster, over PUB/SUB.

Every ``heartbeat_interval`` each server publishes a HEARTBEAT on the public
channel of every namespace it serves; a server that has been silent for
``heartbeat_timeout`` is forgotten. Node 0.3.x peers ignore these message
types, and they never enter the stream. A server also hears its own
heartbeats: when they stop coming back while Redis still accepts them, its
subscription was lost silently, and the subscriber is told to start again.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Callable, Dict, Iterable, Optional

from .codec import ClusterMessage, MessageType
from .options import Options
from .pubsub import PubSub


class Heartbeat:
    """The heartbeat task and the table of live servers.

    :param namespaces: returns the namespaces this server serves now.
    :param on_tick: called at every beat, for housekeeping that can wait
                    that long (forgetting expired requests).
    """

    def __init__(self, pubsub: PubSub,
                 options: Options, uid: str,
                 namespaces: Callable[[], Iterable[str]],
                 on_tick: Callable[[], None], logger: logging.Logger,
                 stopping: threading.Event) -> None:
        self._pubsub = pubsub
        self._options = options
        self._uid = uid
        self._namespaces = namespaces
        self._on_tick = on_tick
        self._logger = logger
        self._stopping = stopping
        self._lock = threading.Lock()
        self._last_seen: Dict[str, Dict[str, float]] = {}
        self._own_seen = 0.0
        self._published_at: Optional[float] = None
        self._missed = 0

    def run(self) -> None:
        """The body of the heartbeat task."""
        while not self._stopping.wait(self._options.heartbeat_interval):
            try:
                self.beat()
            except Exception:  # the beat goes on
                self._logger.exception('heartbeat failed')

    def beat(self) -> None:
        """Publish one heartbeat per namespace and do the housekeeping."""
        now = time.monotonic()
        published = self._send_all(MessageType.HEARTBEAT)
        self._check_own_heartbeats(now, published)
        self._expire(now)
        self._on_tick()

    def announce(self, namespace: str) -> None:
        """Tell the servers of ``namespace`` that this one joined, so that
        they answer with a heartbeat at once."""
        self._send(MessageType.INITIAL_HEARTBEAT, namespace)

    def leave(self) -> None:
        """Tell the others that this server is going away."""
        self._send_all(MessageType.ADAPTER_CLOSE)

    def heard(self, message: ClusterMessage) -> None:
        """Note a PUB/SUB message: its sender is alive (or leaving)."""
        if message.uid == self._uid:
            if message.type == MessageType.HEARTBEAT:
                self._own_seen = time.monotonic()
            return
        with self._lock:
            servers = self._last_seen.setdefault(message.nsp, {})
            if message.type == MessageType.ADAPTER_CLOSE:
                servers.pop(message.uid, None)
            else:
                servers[message.uid] = time.monotonic()
        if message.type == MessageType.INITIAL_HEARTBEAT:
            self._send(MessageType.HEARTBEAT, message.nsp)

    def live_count(self, namespace: str = '/') -> int:
        """How many servers of ``namespace`` were heard from within
        ``heartbeat_timeout`` (this one included)."""
        horizon = time.monotonic() - self._options.heartbeat_timeout
        with self._lock:
            servers = self._last_seen.get(namespace, {})
            return 1 + sum(1 for seen in servers.values() if seen > horizon)

    def _send_all(self, type_: MessageType) -> bool:
        sent = False
        for namespace in list(self._namespaces()):
            sent = self._send(type_, namespace) or sent
        return sent

    def _send(self, type_: MessageType, namespace: str) -> bool:
        try:
            self._pubsub.publish(ClusterMessage(type_, self._uid, namespace))
            return True
        except Exception as exc:  # Redis unreachable, or the link broke
            self._logger.debug('heartbeat not sent: %s', exc)
            return False

    def _check_own_heartbeats(self, now: float, published: bool) -> None:
        previous, self._published_at = self._published_at, \
            (now if published else None)
        if previous is None or not self._pubsub.connected:
            self._missed = 0
            return
        if self._own_seen >= previous:
            self._missed = 0
            return
        self._missed += 1
        if self._missed * self._options.heartbeat_interval >= \
                self._options.heartbeat_timeout:
            self._missed = 0
            self._pubsub.reconnect(
                f'this server has not heard its own heartbeats for '
                f'{self._options.heartbeat_timeout:g} s although Redis '
                f'accepts them')

    def _expire(self, now: float) -> None:
        horizon = now - self._options.heartbeat_timeout
        with self._lock:
            for servers in self._last_seen.values():
                for uid in [u for u, seen in servers.items()
                            if seen <= horizon]:
                    del servers[uid]
