"""The writer task: appends what the outbox holds to the streams."""
from __future__ import annotations

import threading
from typing import Dict, List, Optional

from ..core.outbox import OutgoingEntry, Outbox
from ..core.writing import Attempt, WriteRound
from .context import Context, Supervisor
from .direct import DirectSender

#: How long (seconds) the writer lets entries gather when several came
#: while the last batch was out (a burst): without it, an emitter that
#: yields after each emit (any I/O, ``sio.sleep(0)``) meets a writer that
#: takes one or two entries per round trip, and the round trips are the
#: limit (measured under threading: 1.8 entries per batch, 3,200 emits/s).
#: One entry alone does not wait: at a steady rate, that is the latency.
COALESCE_WAIT = 0.0005
COALESCE_FROM = 2


class StreamWriter:
    """Appends entries to the streams from a single background task.

    :meth:`submit` only puts the entry in the bounded, in-order outbox, so a
    slow or unreachable Redis never holds up the caller (beyond
    ``outbox_timeout`` when the outbox is full). The task sends what waits
    in batches of ``XADD ... MAXLEN ~ maxlen``, one MULTI/EXEC each, so
    that a batch is written whole or not at all; what to resend after a
    failure is the :class:`~sio_redis_streams.core.outbox.WriteLedger`'s
    decision.

    :param connection: the writer's own connection to Redis.
    """

    def __init__(self, context: Context,
                 connection: DirectSender) -> None:
        self._context = context
        self._options = context.options
        self._connection = connection
        self._outbox = Outbox(self._options.outbox_size)
        self._round = WriteRound(
            context.uid, self._options.maxlen, self._options.replica_acks,
            self._options.replica_ack_timeout, context.stats, context.logger,
            context.connector.is_transient, context.connector.response_error,
            context.stopping.is_set)
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._warned_full = False
        self._supervisor = Supervisor(
            context, 'writing to the streams', 'writer_reconnects',
            connection.disconnect,
            lambda: f'keeping {self.depth} entries in the outbox until it '
                    f'is back')
        self._batch: List[OutgoingEntry] = []

    @property
    def connected(self) -> bool:
        """``False`` while the last attempt to write failed."""
        return self._supervisor.up

    @property
    def depth(self) -> int:
        """How many entries wait in the outbox (those in flight too)."""
        return len(self._outbox)

    def submit(self, stream: str, fields: Dict[str, str]) -> bool:
        """Queue an entry; ``False`` if it was dropped because the outbox is
        full (Redis has been unreachable for long, or is too slow)."""
        with self._lock:
            if self._outbox.full and self.connected and \
                    self._options.outbox_timeout:
                # the writer is working: give it the chance to make room
                self._changed.wait_for(
                    lambda: not self._outbox.full or not self.connected or
                    self._context.stopping.is_set(),
                    self._options.outbox_timeout)
            if not self._outbox.add(OutgoingEntry(stream, fields)):
                self._context.stats.incr('outbox_dropped')
                if not self._warned_full:
                    self._warned_full = True
                    self._context.logger.error(
                        'outbox full (%d entries, Redis %s): dropping new '
                        'messages until it drains', self._outbox.size,
                        'unreachable' if not self.connected else 'too slow')
                return False
            self._warned_full = False
            self._changed.notify_all()
        return True

    def flush(self, timeout: Optional[float]) -> bool:
        """Wait until the outbox is empty; ``False`` on timeout."""
        with self._lock:
            return self._changed.wait_for(lambda: not len(self._outbox),
                                          timeout)

    def wake(self) -> None:
        """Make the task, and emits waiting for room, notice a change (the
        manager stops, or Redis went away)."""
        with self._lock:
            self._changed.notify_all()

    def run(self) -> None:
        """The body of the writer task."""
        self._supervisor.run(self._step, self._failed)

    def _failed(self, error: BaseException) -> None:
        self._round.check_written = True
        self.wake()

    def _step(self) -> None:
        if not self._batch:
            self._take_batch()
            if not self._batch:
                return  # stopping
        try:
            self._attempt(self._batch)
        finally:
            if not self._round.ledger.pending(self._batch):
                self._settled()

    def _take_batch(self) -> None:
        """Wait for entries and take the next batch. An entry that finds
        the writer idle goes out at once, and so does one that came alone
        while the last batch was out; several (:data:`COALESCE_FROM`) wait
        :data:`COALESCE_WAIT` for others to join them, unless they fill a
        batch already."""
        stopping = self._context.stopping
        size = self._options.write_batch_size
        with self._lock:
            waiting = len(self._outbox)
        if COALESCE_FROM <= waiting < size:
            stopping.wait(COALESCE_WAIT)
        with self._lock:
            self._changed.wait_for(
                lambda: len(self._outbox) or stopping.is_set())
            if not stopping.is_set():
                self._batch = self._outbox.batch(
                    size, one_stream=self._context.connector.cluster)

    def _attempt(self, batch: List[OutgoingEntry]) -> None:
        try:
            self._converse(self._round.attempt(batch))
        except Exception as exc:
            if not isinstance(exc, self._context.connector.expected_errors):
                self._round.failed_unexpectedly(batch, exc)
            raise

    def _converse(self, attempt: Attempt) -> None:
        """Carry the attempt's exchanges over the writer's connection."""
        try:
            commands, key = next(attempt)
            while True:
                replies = self._connection.execute(*commands, key=key)
                commands, key = attempt.send(replies)
        except StopIteration:
            return

    def _settled(self) -> None:
        with self._lock:
            self._batch = []
            self._outbox.pop_settled()
            self._changed.notify_all()
