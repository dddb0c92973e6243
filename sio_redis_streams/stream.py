"""The Redis stream: a writer that appends every entry exactly once, in
order, and a reader that follows a stream without losing or repeating one.
"""
from __future__ import annotations

import collections
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Deque, Dict, List, Optional, Tuple

from . import codec
from .connection import Backoff, RedisConnector, describe_error
from .options import Options
from .stats import Stats

#: How many entries one XRANGE call of the writer's reconciliation reads.
_RECONCILE_PAGE = 1000


@dataclass
class OutgoingEntry:
    """An entry waiting in the outbox; ``entry_id`` is set once written."""
    stream: str
    fields: Dict[str, str]
    entry_id: Optional[str] = None
    dropped: bool = False


class StreamWriter:
    """Appends entries to the streams from a single background task.

    :meth:`submit` only puts the entry in a bounded, in-order outbox, so a
    slow or unreachable Redis never holds up the caller (beyond
    ``outbox_timeout`` when the outbox is full). The task sends what is
    waiting in batches of ``XADD ... MAXLEN ~ maxlen``, one MULTI/EXEC
    each, so that a batch is written whole or not at all. When a
    batch fails in a way that leaves its outcome unknown (the connection
    broke after the commands were sent), the writer reads back, after
    reconnecting, the entries its own ``uid`` appended since the last
    confirmed one: those were written, the rest are sent again. Nothing is
    lost and nothing is appended twice.
    """

    def __init__(self, connector: RedisConnector, client: Any,
                 options: Options, uid: str, stats: Stats,
                 logger: logging.Logger, stopping: threading.Event) -> None:
        self._connector = connector
        self._client = client
        self._options = options
        self._uid = uid.encode()
        self._stats = stats
        self._logger = logger
        self._stopping = stopping
        self._outbox: Deque[OutgoingEntry] = collections.deque()
        self._lock = threading.Lock()
        self._not_empty = threading.Condition(self._lock)
        self._not_full = threading.Condition(self._lock)
        self._drained = threading.Condition(self._lock)
        self._last_written: Dict[str, str] = {}
        self._outcome_unknown = False
        self._down_since: Optional[float] = None
        self._warned_full = False

    @property
    def connected(self) -> bool:
        """``False`` while the last attempt to write failed."""
        return self._down_since is None

    @property
    def depth(self) -> int:
        """How many entries wait in the outbox (including those in
        flight)."""
        return len(self._outbox)

    def submit(self, stream: str, fields: Dict[str, str]) -> bool:
        """Queue an entry; ``False`` if it was dropped because the outbox is
        full (Redis has been unreachable for long, or is too slow)."""
        entry = OutgoingEntry(stream, fields)
        with self._lock:
            if len(self._outbox) >= self._options.outbox_size and \
                    self.connected and self._options.outbox_timeout:
                # the writer is working: give it the chance to make room
                self._not_full.wait_for(
                    lambda: len(self._outbox) < self._options.outbox_size,
                    self._options.outbox_timeout)
            if len(self._outbox) >= self._options.outbox_size:
                self._stats.incr('outbox_dropped')
                if not self._warned_full:
                    self._warned_full = True
                    self._logger.error(
                        'outbox full (%d entries, Redis %s): dropping new '
                        'messages until it drains',
                        self._options.outbox_size,
                        'unreachable' if not self.connected else 'too slow')
                return False
            self._warned_full = False
            self._outbox.append(entry)
            self._not_empty.notify()
        return True

    def flush(self, timeout: Optional[float]) -> bool:
        """Wait until the outbox is empty; ``False`` on timeout."""
        with self._lock:
            return self._drained.wait_for(lambda: not self._outbox, timeout)

    def wake(self) -> None:
        """Make the task notice that the manager is stopping."""
        with self._lock:
            self._not_empty.notify_all()
            self._not_full.notify_all()

    def run(self) -> None:
        """The body of the writer task."""
        while not self._stopping.is_set():
            with self._lock:
                self._not_empty.wait_for(
                    lambda: self._outbox or self._stopping.is_set())
                if self._stopping.is_set():
                    return
                batch = list(_head(self._outbox,
                                   self._options.write_batch_size))
            self._write(batch)
            with self._lock:
                while self._outbox and (self._outbox[0].entry_id or
                                        self._outbox[0].dropped):
                    self._outbox.popleft()
                self._not_full.notify_all()
                if not self._outbox:
                    self._drained.notify_all()

    def _write(self, batch: List[OutgoingEntry]) -> None:
        backoff = Backoff()
        while not self._stopping.is_set():
            try:
                if self._outcome_unknown:
                    self._reconcile(batch)
                    self._outcome_unknown = False
                pending = [e for e in batch
                           if e.entry_id is None and not e.dropped]
                if pending:
                    pending = self._send(pending)
                if not pending:
                    self._mark_up()
                    return
            except Exception as exc:  # the connection, or the client, broke
                if not isinstance(exc, self._connector.connection_errors):
                    self._logger.exception('unexpected error writing to '
                                           'Redis')
                self._mark_down(exc)
                self._client.connection_pool.disconnect()
            self._stopping.wait(backoff.next_delay())

    def _send(self, entries: List[OutgoingEntry]) -> List[OutgoingEntry]:
        """Append ``entries``; return those to try again later.

        One MULTI/EXEC carries the batch, so that it is written whole or
        not at all: were Redis to refuse an entry for a while (out of
        memory, loading, failing over) and take the next, the entries of a
        batch could land out of order.
        """
        self._outcome_unknown = True
        try:
            results = self._xadd(entries)
        except self._connector.response_error as exc:
            self._outcome_unknown = False  # refused: nothing was written
            if self._connector.is_transient(exc):
                self._mark_down(exc)
                return entries
            self._drop(entries, exc)
            return []
        self._outcome_unknown = False
        return self._record(entries, results)

    def _xadd(self, entries: List[OutgoingEntry]) -> List[Any]:
        pipe = self._client.pipeline(transaction=True)
        for entry in entries:
            pipe.xadd(entry.stream, entry.fields,
                      maxlen=self._options.maxlen, approximate=True)
        return pipe.execute(raise_on_error=False)

    def _record(self, entries: List[OutgoingEntry],
                results: List[Any]) -> List[OutgoingEntry]:
        """Note what was written; return the entries to try again."""
        retry = []
        written = 0
        for entry, result in zip(entries, results):
            if not isinstance(result, Exception):
                self._written(entry, result)
                written += 1
            elif self._connector.is_transient(result):
                retry.append(entry)
            else:
                self._drop([entry], result)
        if written:
            self._stats.incr('entries_written', written)
            self._stats.incr('write_batches')
        if retry:
            self._logger.warning('Redis asked to retry %d entries later: %s',
                                 len(retry), results[entries.index(retry[0])])
        return retry

    def _drop(self, entries: List[OutgoingEntry],
              error: BaseException) -> None:
        for entry in entries:
            entry.dropped = True
        self._stats.incr('write_errors', len(entries))
        self._logger.error('Redis refused %d entries (stream %s), '
                           'dropping them: %s', len(entries),
                           ', '.join(dict.fromkeys(e.stream
                                                   for e in entries)),
                           error)

    def _written(self, entry: OutgoingEntry, entry_id: Any) -> None:
        entry.entry_id = entry_id.decode() if isinstance(entry_id, bytes) \
            else str(entry_id)
        self._last_written[entry.stream] = entry.entry_id

    def _reconcile(self, batch: List[OutgoingEntry]) -> None:
        """After a failed batch, find which of its entries reached Redis.

        Only this writer appends entries with this ``uid``, one batch at a
        time and in order, so the entries it finds after the last confirmed
        one are exactly the first entries of the batch (per stream).
        """
        found = 0
        for stream in dict.fromkeys(e.stream for e in batch):
            pending = [e for e in batch if e.stream == stream
                       and e.entry_id is None and not e.dropped]
            ours = self._own_entries_since(stream,
                                           self._last_written.get(stream))
            for entry, entry_id in zip(pending, ours):
                self._written(entry, entry_id)
                found += 1
            resent = len(pending) - min(len(pending), len(ours))
            if resent:
                self._stats.incr('resent_after_reconnect', resent)
        if found:
            self._stats.incr('entries_written', found)
            self._logger.info('%d entries of the interrupted batch had '
                              'reached Redis; not sending them again', found)

    def _own_entries_since(self, stream: str,
                           last_id: Optional[str]) -> List[bytes]:
        start = codec.next_entry_id(last_id) if last_id else '-'
        ours = []
        while True:
            page = self._client.xrange(stream, start, '+',
                                       count=_RECONCILE_PAGE)
            ours.extend(entry_id for entry_id, fields in page
                        if fields.get(b'uid') == self._uid)
            if len(page) < _RECONCILE_PAGE:
                return ours
            start = codec.next_entry_id(page[-1][0].decode())

    def _mark_down(self, exc: BaseException) -> None:
        if self._down_since is None:
            self._down_since = time.monotonic()
            self._stats.incr('writer_reconnects')
            self._logger.warning(
                'cannot write to Redis (%s); keeping %d entries in the '
                'outbox until it is back', describe_error(exc),
                self.depth)

    def _mark_up(self) -> None:
        if self._down_since is not None:
            self._logger.info(
                'writing to Redis again after %.1f s; %d entries waiting',
                time.monotonic() - self._down_since, self.depth)
            self._down_since = None


class StreamReader:
    """Follows one stream with ``XREAD BLOCK`` from a background task.

    It starts at the end of the stream and then always continues from the
    id of the last entry it read, across reconnections, so that no entry is
    missed or read twice.

    Entries it had not read yet can still be lost: trimmed by ``maxlen``
    while the server was away or too slow, or gone with a Redis restarted
    without persistence. The reader keeps count of how many entries the
    stream had received when it read its last one (``entries-added`` of
    ``XINFO STREAM``). After a reconnection, and after a full batch (a sign
    that it fell behind), it reads the next batch together with
    ``XINFO STREAM`` in one transaction: Redis's count, compared with its
    own plus what is left after its position, tells exactly how many
    entries it lost. A gap is logged, with how it was found, and counted.

    :param handle: called with ``(message, entry_id)`` for every valid entry
                   of another server (of this one too, unless
                   ``skip_own``), in stream order.
    """

    def __init__(self, connector: RedisConnector, stream: str,
                 options: Options, uid: str, json_module: Any,
                 handle: Callable[[codec.ClusterMessage, str], None],
                 stats: Stats, logger: logging.Logger,
                 stopping: threading.Event, skip_own: bool = True) -> None:
        self.stream = stream
        #: Held while an entry is handled: whoever holds it sees
        #: ``last_id`` as the last entry whose handling is complete.
        self.lock = threading.Lock()
        self._skip_own = skip_own
        self._connector = connector
        self._options = options
        self._uid = uid.encode()
        self._json = json_module
        self._handle = handle
        self._stats = stats
        self._logger = logger
        self._stopping = stopping
        # the socket must outlive the server-side block, or every quiet
        # period would look like a dead connection
        self._client = connector.client(
            f'reader:{stream}', options.block_time + options.socket_timeout)
        self._name = self._client.connection_pool.connection_kwargs[
            'client_name']
        self.last_id: Optional[str] = None
        #: the stream's ``entries-added`` when ``last_id`` was appended
        #: (``None``: unknown, Redis < 7)
        self._added: Optional[int] = None
        self._verify = False
        self._lag_threshold = min(options.read_count, options.maxlen)

    def interrupt(self, commands: Optional[Any]) -> None:
        """Make a blocked XREAD return now (the task is stopping).

        ``CLIENT UNBLOCK``, sent with ``commands``, works under every async
        mode, where closing the socket under a blocked read does not wake an
        eventlet green thread; closing is what is left when Redis cannot be
        asked (``commands`` is ``None``).
        """
        try:
            if commands is not None:
                for client in commands.client_list():
                    if client.get('name') == self._name:
                        commands.client_unblock(client['id'])
                return
        except Exception:  # Redis unreachable after all
            pass
        self._client.connection_pool.disconnect()

    def start_at_tail(self) -> None:
        """Take the current end of the stream as the starting point, so that
        every entry appended from now on is read. Without Redis, the task
        does it when Redis is back."""
        try:
            self._position_at_tail()
        except self._connector.error as exc:
            self._logger.warning('cannot find the end of stream %s yet: %s',
                                 self.stream, exc)

    def run(self) -> None:
        """The body of the reader task."""
        backoff = Backoff()
        down_since: Optional[float] = None
        while not self._stopping.is_set():
            try:
                if self.last_id is None:
                    self._position_at_tail()
                entries = self._verified_read() if self._verify \
                    else self._read()
                if down_since is not None:
                    self._logger.info('reading stream %s again from %s '
                                      'after %.1f s', self.stream,
                                      self.last_id,
                                      time.monotonic() - down_since)
                    down_since = None
                    backoff.reset()
                # as many entries as the stream keeps (or a full batch):
                # this reader may be falling behind the trimming
                self._verify = len(entries) >= self._lag_threshold
                if self._added is not None:
                    self._added += len(entries)
                self._dispatch(entries)
            except self._connector.response_error as exc:
                # e.g. LOADING after a restart, or the key is not a stream
                if down_since is None:
                    down_since = time.monotonic()
                self._logger.warning('Redis refused to read stream %s: %s',
                                     self.stream, exc)
                self._verify = True
                self._stopping.wait(backoff.next_delay())
            except Exception as exc:  # the connection, or the client, broke
                if self._stopping.is_set():
                    return
                if not isinstance(exc, self._connector.connection_errors):
                    self._logger.exception('unexpected error reading stream '
                                           '%s', self.stream)
                if down_since is None:
                    down_since = time.monotonic()
                    self._stats.incr('reader_reconnects')
                    self._logger.warning(
                        'lost Redis while reading stream %s (%s); will '
                        'resume after %s', self.stream,
                        describe_error(exc), self.last_id)
                self._verify = True
                self._client.connection_pool.disconnect()
                self._stopping.wait(backoff.next_delay())

    def _position_at_tail(self) -> None:
        info = self._stream_info()
        if info is None:
            self.last_id, self._added = '0-0', 0
        else:
            self.last_id = _text(info['last-generated-id'])
            self._added = info.get('entries-added')

    def _read(self) -> List[Tuple[bytes, Dict[bytes, bytes]]]:
        return _entries(self._client.xread(
            {self.stream: self.last_id}, count=self._options.read_count,
            block=self._options.block_time_ms))

    def _verified_read(self) -> List[Tuple[bytes, Dict[bytes, bytes]]]:
        """Read the next batch and the stream's state at the same instant,
        and account for any entry lost since ``last_id``."""
        try:
            info, response = self._info_and_read(transaction=True)
        except self._connector.response_error as exc:
            if not self._connector.is_transient(exc):
                raise
            # out of memory, Redis refuses MULTI but still serves reads; two
            # commands written at once are in practice also served together
            info, response = self._info_and_read(transaction=False)
        if isinstance(response, Exception):
            raise response
        if isinstance(info, Exception):
            if 'no such key' not in str(info).lower():
                raise info
            info = None
        entries = _entries(response)
        if self._stream_vanished(info):
            return []
        if info is not None and len(entries) < self._options.read_count:
            self._count_lost(info, len(entries))
        return entries

    def _info_and_read(self, transaction: bool) -> List[Any]:
        pipe = self._client.pipeline(transaction=transaction)
        pipe.xinfo_stream(self.stream)
        pipe.xread({self.stream: self.last_id},
                   count=self._options.read_count)
        return pipe.execute(raise_on_error=False)

    def _stream_vanished(self, info: Optional[Dict[str, Any]]) -> bool:
        """Notice a stream deleted, or recreated (Redis restarted without
        its data); then start over at its beginning."""
        last = self.last_id
        if info is None:
            gone = last != '0-0'
            detail = ('the stream no longer exists (XINFO STREAM: no such '
                      'key)')
        else:
            generated = _text(info.get('last-generated-id')) or '0-0'
            gone = codec.entry_id_key(generated) < codec.entry_id_key(last)
            detail = (f'the stream was recreated (XINFO STREAM '
                      f'last-generated-id {generated} is before {last})')
        if gone:
            self._gap(f'{detail}: Redis lost its data (restarted without '
                      f'persistence?) or the key was deleted; the entries '
                      f'written after {last} that this server had not read '
                      f'are lost; reading the new stream from its start')
            self.last_id, self._added = '0-0', 0
        return gone

    def _count_lost(self, info: Dict[str, Any], remaining: int) -> None:
        """Compare Redis's count of entries added with this reader's: what
        it read, plus the ``remaining`` entries after its position (all of
        them, since the batch was not full)."""
        added = info.get('entries-added')
        if added is None or self._added is None:
            self._check_first_entry(info)  # Redis < 7 counts nothing
            return
        lost = added - self._added - remaining
        if lost > 0:
            self._gap(f'{lost} entries after {self.last_id} were trimmed '
                      f'(maxlen={self._options.maxlen}) before this server '
                      f'could read them: Redis added {added - self._added} '
                      f'entries since then and only {remaining} remain '
                      f'(XINFO STREAM entries-added)')
        self._added = added - remaining

    def _check_first_entry(self, info: Dict[str, Any]) -> None:
        first = info.get('first-entry')
        first_id = _text(first[0]) if first else None
        if first_id and codec.entry_id_key(first_id) > \
                codec.entry_id_key(self.last_id):
            self._gap(f'the oldest entry left ({first_id}) is newer than '
                      f'the last one read ({self.last_id}): entries in '
                      f'between may have been trimmed '
                      f'(maxlen={self._options.maxlen})')

    def _dispatch(self, entries: List[Tuple[bytes, Dict[bytes, bytes]]]
                  ) -> None:
        handled = 0
        for raw_id, fields in entries:
            entry_id = raw_id.decode()
            with self.lock:
                self.last_id = entry_id
                if self._skip_own and fields.get(b'uid') == self._uid:
                    continue
                handled += self._handle_entry(entry_id, fields)
        if handled:
            self._stats.incr('entries_read', handled)

    def _handle_entry(self, entry_id: str,
                      fields: Dict[bytes, bytes]) -> bool:
        try:
            message = codec.decode_entry(fields, self._json,
                                         self._options.max_message_size)
        except codec.MalformedMessage as exc:
            self._stats.incr('bad_entries')
            self._logger.warning('skipping malformed entry %s of stream '
                                 '%s: %s', entry_id, self.stream, exc)
            return False
        try:
            self._handle(message, entry_id)
            return True
        except Exception:
            self._stats.incr('handler_errors')
            self._logger.exception('error handling entry %s of stream %s',
                                   entry_id, self.stream)
            return False

    def _stream_info(self) -> Optional[Dict[str, Any]]:
        try:
            return self._client.xinfo_stream(self.stream)
        except self._connector.response_error as exc:
            if 'no such key' in str(exc).lower():
                return None
            raise

    def _gap(self, detail: str) -> None:
        self._stats.incr('gaps')
        self._logger.warning('gap in stream %s: %s', self.stream, detail)


def _entries(response: Any) -> List[Tuple[bytes, Dict[bytes, bytes]]]:
    """The entries of an XREAD reply for one stream."""
    if not response:
        return []
    if isinstance(response, dict):  # RESP3
        return next(iter(response.values()))[0]
    return response[0][1]


def _head(items: Deque[OutgoingEntry], count: int):
    for i, item in enumerate(items):
        if i == count:
            return
        yield item


def _text(value: Any) -> Optional[str]:
    if value is None:
        return None
    return value.decode() if isinstance(value, bytes) else str(value)
