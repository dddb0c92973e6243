"""Stored sessions of connection state recovery: saving them in batches,
and taking one back with the packets its client missed."""
from __future__ import annotations

import itertools
import threading
import time
from typing import Any, Callable, Dict, List, Optional

from ..core.messages import MalformedMessage
from ..core.recovery import Restored
from ..core.replay import REPLAY_PAGE, Replay, Session
from .context import Context
from .reader import StreamReader

#: The most sessions one round trip stores.
SAVE_BATCH = 500


class SessionStore:
    """Stores the sessions of dropped sockets, and restores them.

    Saving only queues: one task stores what is queued in pipelined
    batches, so that a thousand sockets dropping at the same instant cost a
    few round trips on one connection, not a thousand connections.

    :param commands: the client used for the GET/SET/XRANGE commands.
    """

    def __init__(self, context: Context, commands: Any,
                 json_module: Any) -> None:
        self._context = context
        self._options = context.options
        self._commands = commands
        self._json = json_module
        self._lock = threading.Lock()
        self._queued = threading.Condition(self._lock)
        # by pid, oldest first
        self._waiting: Dict[str, Session] = {}

    def save(self, sessions: List[Session]) -> None:
        """Keep ``sessions`` for ``max_disconnection_duration`` (queued)."""
        if sessions:
            with self._lock:
                self._waiting.update((s.pid, s) for s in sessions)
                self._queued.notify()

    def run(self) -> None:
        """The body of the task that stores queued sessions."""
        stopping = self._context.stopping
        while not stopping.is_set():
            with self._lock:
                self._queued.wait_for(
                    lambda: self._waiting or stopping.is_set())
            self.store_queued()

    def wake(self) -> None:
        with self._lock:
            self._queued.notify_all()

    def store_queued(self, deadline: Optional[float] = None) -> None:
        """Store what is queued now, in batches; by ``deadline``
        (``time.monotonic()``) if given, dropping what is left then."""
        while True:
            with self._lock:
                if deadline is not None and time.monotonic() >= deadline \
                        and self._waiting:
                    self._context.logger.error(
                        'closing: no time left to store %d sessions, they '
                        'will not be recovered', len(self._waiting))
                    self._waiting.clear()
                batch = [self._waiting.pop(pid) for pid in
                         list(itertools.islice(self._waiting, SAVE_BATCH))]
            if not batch:
                return
            self._store(batch)

    def _store(self, sessions: List[Session]) -> None:
        ttl = int(self._options.max_disconnection_duration * 1000)
        pipe = self._commands.pipeline(transaction=False)
        stored = []
        for session in sessions:
            try:
                pipe.set(self._key(session.pid), session.to_wire(), px=ttl)
                stored.append(session)
            except (TypeError, ValueError) as exc:  # data msgpack refuses
                self._context.logger.warning(
                    'cannot store the session of %s, it will not be '
                    'recovered: %s', session.sid, exc)
        try:
            pipe.execute()
        except self._context.connector.error as exc:
            self._context.logger.warning(
                'cannot store %d sessions, they will not be recovered: %s',
                len(stored), exc)

    def restore(self, namespace: str, pid: str, offset: str,
                reader: StreamReader, hold: Callable[[Session], None],
                release: Callable[[Session], None]) -> Optional[Restored]:
        """Take the session ``pid`` and find what its client missed since
        ``offset``; ``None`` if it cannot be recovered (then the client
        gets a new session).

        ``hold(session)`` is called, with no Redis command in between, at
        the position where the replay ends: from then on, the reader holds
        the packets for that socket back until the replay has been sent.
        The replay itself is read afterwards, while the reader goes on;
        ``release(session)`` undoes ``hold`` if the session cannot be
        recovered after all.
        """
        logger = self._context.logger
        try:
            session = self._take(pid)
            if session is None:
                return None
            if not self._commands.xrange(reader.stream, offset, offset,
                                         count=1):
                logger.info('not recovering session %s: offset %s is no '
                            'longer in stream %s', pid, offset,
                            reader.stream)
                return None
        except self._context.connector.error as exc:
            logger.warning('cannot recover session %s: %s', pid, exc)
            return None

        def hold_at(last_id: Optional[str]) -> Optional[str]:
            if last_id is not None:
                hold(session)
            return last_id

        end = reader.at_position(hold_at)
        if end is None:
            logger.info('not recovering session %s: the reader of %s has not '
                        'started', pid, reader.stream)
            return None
        missed = self._missed(namespace, session, offset, end, reader.stream)
        if missed is None:
            release(session)
            return None
        return Restored(session, missed)

    def _missed(self, namespace: str, session: Session, offset: str,
                end: str, stream: str) -> Optional[List[List[Any]]]:
        """The packets of the replay; ``None`` if there are too many, or
        Redis cannot be read."""
        replay = Replay(namespace, session.rooms, offset, end, self._json,
                        self._options.recovery_max_packets,
                        self._options.max_message_size)
        try:
            while replay.next_start is not None:
                replay.feed(self._commands.xrange(
                    stream, replay.next_start, end, count=REPLAY_PAGE))
        except self._context.connector.error as exc:
            self._context.logger.warning('cannot recover session %s: %s',
                                         session.pid, exc)
            return None
        if replay.too_long:
            self._context.logger.info(
                'not recovering a session: it missed more than '
                'recovery_max_packets=%d packets',
                self._options.recovery_max_packets)
            return None
        return replay.packets

    def _take(self, pid: str) -> Optional[Session]:
        """GET and DEL at once: a session can be recovered only once. A
        client back before its session was stored takes it from the
        queue."""
        with self._lock:
            queued = self._waiting.pop(pid, None)
        if queued is not None:
            return queued
        if self._context.connector.cluster:
            # one command (Redis 6.2+, as a cluster needs 7 anyway): not
            # every cluster client library can send a transaction
            raw = self._commands.execute_command('GETDEL', self._key(pid))
        else:
            pipe = self._commands.pipeline(transaction=True)
            pipe.get(self._key(pid))
            pipe.delete(self._key(pid))
            raw, _ = pipe.execute()
        if raw is None:
            self._context.logger.info('no session %s (expired, already '
                                      'recovered, or never stored)', pid)
            return None
        try:
            session = Session.from_wire(raw)
        except MalformedMessage as exc:
            self._context.logger.warning('skipping malformed session %s: %s',
                                         pid, exc)
            return None
        return session if session.pid == pid else None

    def _key(self, pid: str) -> str:
        return self._options.session_key_prefix + pid
