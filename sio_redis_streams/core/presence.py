"""Which servers of the cluster are alive, from what is heard on PUB/SUB.

Every ``heartbeat_interval`` each server publishes a HEARTBEAT on the public
channel of every namespace it serves; a server that has been silent for
``heartbeat_timeout`` is forgotten. Node 0.3.x peers ignore these message
types, and they never enter the stream. A server also hears its own
heartbeats: when they stop coming back while Redis still accepts them, its
subscription was lost silently and must be made again. Nothing here does
I/O; the driver publishes and asks.
"""
from __future__ import annotations

import threading
import time
from typing import Dict, Optional

from .messages import AdapterClose, Heartbeat, InitialHeartbeat, Message

#: The most (namespace, server) pairs tracked: a peer that announces
#: endless server ids cannot grow the table past it.
MAX_TRACKED = 10_000


class Presence:
    """The table of live servers, and the check of this server's own
    heartbeats.

    :param uid: this server.
    :param interval: ``heartbeat_interval``, in seconds.
    :param timeout: ``heartbeat_timeout``, in seconds.
    """

    def __init__(self, uid: str, interval: float, timeout: float) -> None:
        self.uid = uid
        self.interval = interval
        self.timeout = timeout
        self._lock = threading.Lock()
        self._last_seen: Dict[str, Dict[str, float]] = {}
        self._own_seen = 0.0
        self._published_at: Optional[float] = None
        self._missed = 0
        self._tracked = 0
        #: messages of servers not tracked because the table was full
        self.untracked = 0

    def heard(self, message: Message, now: Optional[float] = None) -> bool:
        """Note a PUB/SUB message: its sender is alive (or leaving). Returns
        ``True`` when the sender asks for a heartbeat at once (it just
        joined)."""
        now = time.monotonic() if now is None else now
        if message.uid == self.uid:
            if isinstance(message, Heartbeat):
                self._own_seen = now
            return False
        with self._lock:
            servers = self._last_seen.get(message.nsp)
            if isinstance(message, AdapterClose):
                if servers and servers.pop(message.uid, None) is not None:
                    self._tracked -= 1
                    if not servers:
                        del self._last_seen[message.nsp]
            elif servers is not None and message.uid in servers:
                servers[message.uid] = now
            elif self._tracked >= MAX_TRACKED:
                self.untracked += 1
                return False
            else:
                self._last_seen.setdefault(message.nsp, {})[message.uid] = \
                    now
                self._tracked += 1
        return isinstance(message, InitialHeartbeat)

    def live_count(self, namespace: str = '/',
                   now: Optional[float] = None) -> int:
        """How many servers of ``namespace`` were heard from within the
        timeout, this one included."""
        horizon = (time.monotonic() if now is None else now) - self.timeout
        with self._lock:
            servers = self._last_seen.get(namespace, {})
            return 1 + sum(1 for seen in servers.values() if seen > horizon)

    def expire(self, now: Optional[float] = None) -> None:
        """Forget the servers silent for longer than the timeout, and the
        namespaces left without any."""
        horizon = (time.monotonic() if now is None else now) - self.timeout
        with self._lock:
            for namespace, servers in list(self._last_seen.items()):
                for uid in [u for u, seen in servers.items()
                            if seen <= horizon]:
                    del servers[uid]
                    self._tracked -= 1
                if not servers:
                    del self._last_seen[namespace]

    @property
    def namespaces_tracked(self) -> int:
        """How many namespaces the table holds."""
        with self._lock:
            return len(self._last_seen)

    @property
    def servers_tracked(self) -> int:
        """How many (namespace, server) pairs the table holds."""
        return self._tracked

    def check_own(self, published: bool, subscribed: bool,
                  now: Optional[float] = None) -> bool:
        """Called at every beat, after publishing (``published``: Redis
        took at least one heartbeat); ``True`` when this server has not
        heard its own heartbeats for the timeout although Redis takes them:
        its subscription is lost and must be made again."""
        now = time.monotonic() if now is None else now
        previous, self._published_at = self._published_at, \
            (now if published else None)
        if previous is None or not subscribed or self._own_seen >= previous:
            self._missed = 0
            return False
        self._missed += 1
        if self._missed * self.interval < self.timeout:
            return False
        self._missed = 0
        return True
