"""The writer's conversation with Redis about one batch, without I/O.

:meth:`WriteRound.attempt` is a generator: it yields what to send (a list
of commands that touch one key, and that key) and is sent the replies
(error replies as instances); it returns the outcome, or raises what the
driver must treat as Redis failing (an error reply worth retrying later,
or the client library's own errors, which come from the driver). The sync
driver runs it over a held connection, an asyncio driver awaits each
exchange: the decisions (what to resend after an unknown outcome, when a
batch counts as written, what a failover took away) are made here once.
"""
from __future__ import annotations

import logging
from typing import Any, Callable, Generator, List, Optional, Sequence, Tuple

from . import commands
from .codec import entry_id_key, next_entry_id
from .outbox import BatchOutcome, OutgoingEntry, WriteLedger
from .position import text
from .stats import Stats

#: What the driver sends: commands that touch one key, and that key.
Exchange = Tuple[Sequence[commands.Command], str]
#: An attempt: yields exchanges, is sent their replies, returns nothing.
Attempt = Generator[Exchange, List[Any], None]

#: How many entries one XRANGE of the reconciliation reads.
RECONCILE_PAGE = 1000


class WriteRound:
    """Writes batches for one writer.

    :param uid: this server's uid, as its entries carry it.
    :param maxlen: the streams' trimming length.
    :param replica_acks: replicas that must have a batch before it counts
                         as written (0: none).
    :param replica_ack_timeout: seconds one WAIT lasts.
    :param is_transient: whether an error reply may go away later.
    :param response_error: the client library's class of error replies.
    :param stopping: ``True`` once the manager stops (a WAIT gives up).
    """

    def __init__(self, uid: str, maxlen: int, replica_acks: int,
                 replica_ack_timeout: float, stats: Stats,
                 logger: logging.Logger,
                 is_transient: Callable[[Any], bool],
                 response_error: type,
                 stopping: Callable[[], bool]) -> None:
        self.ledger = WriteLedger()
        self._uid = uid.encode()
        self._maxlen = maxlen
        self._acks = replica_acks
        self._wait: List[commands.Command] = [
            ('WAIT', replica_acks, int(replica_ack_timeout * 1000))
        ] if replica_acks else []
        self._ack_timeout = replica_ack_timeout
        self._stats = stats
        self._logger = logger
        self._is_transient = is_transient
        self._response_error = response_error
        self._stopping = stopping
        #: after a failure: are the entries written before it still there?
        self.check_written = False

    def attempt(self, batch: List[OutgoingEntry]) -> Attempt:
        """Write what of ``batch`` is not written yet (one stream on a
        Redis Cluster; any mix on a single Redis, the key then being the
        first entry's stream)."""
        if self.check_written:
            yield from self._check_written_entries()
        if self.ledger.outcome_unknown:
            yield from self._reconcile(batch)
        pending = self.ledger.pending(batch)
        if pending:
            yield from self._send(pending)

    def failed_unexpectedly(self, batch: List[OutgoingEntry],
                            error: BaseException) -> None:
        """An attempt raised something that is not Redis going away: a
        bug, or a client gone wrong; retried a few times only."""
        self._record(self.ledger.failed_unexpectedly(batch, error))

    def _send(self, entries: List[OutgoingEntry]) -> Attempt:
        """Append ``entries`` in one MULTI/EXEC: were Redis to refuse an
        entry for a while (out of memory, loading, failing over) and take
        the next, the entries of a batch could land out of order."""
        self.ledger.sending()
        stream = entries[0].stream
        sent = commands.transaction(
            *(commands.xadd(entry.stream, entry.fields, self._maxlen)
              for entry in entries))
        replies = yield [*sent, *self._wait], stream
        try:
            results = commands.transaction_replies(
                replies[:len(sent)], self._response_error)
        except self._response_error as exc:
            transient = self._is_transient(exc)
            self._record(self.ledger.refused(entries, exc, transient))
            if transient:
                raise
            return
        if self._wait:
            # the batch is in: whatever goes wrong from here leaves its
            # outcome unknown, and the next attempt looks for it
            yield from self._replicated(replies[-1], stream)
        outcome = self.ledger.replied(entries, results, self._is_transient)
        self._record(outcome)
        if outcome.retry:  # Redis is short of memory, loading...
            raise next(r for r in results if isinstance(r, Exception) and
                       self._is_transient(r))

    def _replicated(self, acked: Any, stream: str) -> Attempt:
        """Wait until ``replica_acks`` replicas have the batch just written
        (``acked``: the first WAIT's reply). Until then the batch is not
        written as far as the outbox knows: were the primary to fail now,
        the next attempt would look for it on the promoted replica and send
        again what is not there."""
        warned = False
        while True:
            if isinstance(acked, Exception):
                raise acked
            if int(acked) >= self._acks or self._stopping():
                # stopping: the batch is on the primary, which is all the
                # time left allows
                if warned:
                    self._logger.info('replicas caught up with stream %s',
                                      stream)
                return
            self._stats.incr('replica_ack_waits')
            if not warned:
                warned = True
                self._logger.warning(
                    'stream %s: %s of %d replicas have the last batch after '
                    '%g s; keeping it in the outbox until they do', stream,
                    acked, self._acks, self._ack_timeout)
            acked, = yield self._wait, stream

    def _record(self, outcome: BatchOutcome) -> None:
        if outcome.written:
            self._stats.incr('entries_written', outcome.written)
            self._stats.incr('write_batches')
        if outcome.dropped:
            self._stats.incr('write_errors', len(outcome.dropped))
            self._logger.error(
                'Redis refused %d entries (stream %s), dropping them: %s',
                len(outcome.dropped),
                ', '.join(dict.fromkeys(e.stream for e, _ in
                                        outcome.dropped)),
                outcome.dropped[0][1])

    def _reconcile(self, batch: List[OutgoingEntry]) -> Attempt:
        found = 0
        for stream, since in self.ledger.to_reconcile(batch):
            own = yield from self._own_entries_since(stream, since)
            written, resent = self.ledger.reconcile(batch, stream, own)
            found += written
            if resent:
                self._stats.incr('resent_after_reconnect', resent)
        self.ledger.reconciled()
        if found:
            self._stats.incr('entries_written', found)
            self._logger.info('%d entries of the interrupted batch had '
                              'reached Redis; not sending them again', found)

    def _own_entries_since(self, stream: str, last_id: Optional[str]
                           ) -> Generator[Exchange, List[Any], List[bytes]]:
        start = next_entry_id(last_id) if last_id else '-'
        ours = []
        while True:
            reply, = yield [commands.xrange(stream, start,
                                            RECONCILE_PAGE)], stream
            if isinstance(reply, Exception):
                raise reply
            page = commands.range_entries(reply)
            ours.extend(entry_id for entry_id, fields in page
                        if fields.get(b'uid') == self._uid)
            if len(page) < RECONCILE_PAGE:
                return ours
            start = next_entry_id(page[-1][0].decode())

    def _check_written_entries(self) -> Attempt:
        """After a failure, make sure that the last entry written to each
        stream is still there. A primary that fails before its replicas
        have its last writes takes them along (Redis replicates after it
        answers): readers that had not read them yet cannot know, this
        writer can. ``replica_acks`` prevents it."""
        for stream, last_id in list(self.ledger.last_written.items()):
            reply, = yield [commands.xinfo_stream(stream)], stream
            if isinstance(reply, Exception):
                if not commands.no_such_key(reply):
                    raise reply
                end = '0-0'
            else:
                end = text(commands.stream_info(reply).get(
                    'last-generated-id')) or '0-0'
            if entry_id_key(end) < entry_id_key(last_id):
                self._stats.incr('writes_lost')
                self._logger.error(
                    'entries this server wrote to stream %s up to %s are '
                    'gone (the stream now ends at %s): Redis lost them, a '
                    'primary that failed before its replicas had them, or '
                    'a restart without persistence; replica_acks prevents '
                    'the first', stream, last_id, end)
                self.ledger.last_written[stream] = end
        self.check_written = False
