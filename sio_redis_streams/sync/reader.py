"""The reader task of one stream: ``XREAD BLOCK`` from the last id read,
across reconnections, so that no entry is missed or read twice; what was
lost meanwhile is accounted for by
:class:`~sio_redis_streams.core.position.StreamPosition`."""
from __future__ import annotations

import socket
import threading
import time
from typing import Any, Callable, Dict, List, Optional, TypeVar

from ..core import codec, commands
from ..core.commands import Entry
from ..core.messages import MalformedMessage, Message
from ..core.position import StreamPosition
from .context import Context, Supervisor

T = TypeVar('T')


class StreamReader:
    """Follows one stream from a background task.

    :param handle: called with ``(message, entry_id)`` for every valid entry
                   (of this server too, unless ``skip_own``), in stream
                   order, from the reader's task.
    """

    def __init__(self, context: Context, stream: str, json_module: Any,
                 handle: Callable[[Message, str], None],
                 skip_own: bool = True) -> None:
        options = context.options
        self.stream = stream
        self.position = StreamPosition(
            stream, options.maxlen, min(options.read_count, options.maxlen))
        # held while an entry is handled: whoever holds it sees the position
        # as the last entry whose handling is complete
        self._lock = threading.Lock()
        self._context = context
        self._json = json_module
        self._handle = handle
        self._skip_own = context.uid.encode() if skip_own else None
        self._client_id: Optional[int] = None
        # the socket must outlive the server-side block, or every quiet
        # period would look like a dead connection. On a cluster, the
        # client also connects to other nodes (to learn the slot map): no
        # connection id is known to be the reader's, and :meth:`interrupt`
        # shuts the socket down
        connector = context.connector
        self._redis = connector.direct(
            f'reader:{stream}', options.block_time + options.socket_timeout,
            on_connect=None if connector.cluster else self._connected)
        self._supervisor = Supervisor(
            context, f'reading stream {stream}', 'reader_reconnects',
            self._redis.disconnect, self._resume)

    def at_position(self, action: Callable[[Optional[str]], T]) -> T:
        """Run ``action(last_id)`` while no entry is being handled, so that
        every entry up to ``last_id`` has been handled and none after
        (``None``: the reader has not found its starting point yet)."""
        with self._lock:
            return action(self.position.last_id)

    def start_at_tail(self) -> None:
        """Take the current end of the stream as the starting point, so that
        every entry appended from now on is read. Without Redis, the task
        does it when Redis is back."""
        try:
            self.position.at_tail(self._stream_info())
        except self._context.connector.error as exc:
            self._context.logger.warning(
                'cannot find the end of stream %s yet: %s', self.stream, exc)

    def run(self) -> None:
        """The body of the reader task."""
        self._supervisor.run(self._step, self._failed)

    def interrupt(self, commands: Optional[Any]) -> None:
        """Make a blocked XREAD return now (the manager is stopping).

        ``CLIENT UNBLOCK`` with the id the connection had when it connected
        (sent with ``commands``) works in every async mode; where it cannot
        be used (Redis unreachable, the command disabled, the reader not
        blocked), shutting the socket down wakes the read: an end of file
        wakes a green thread too, where closing the socket does not.
        """
        client_id = self._client_id
        if commands is not None and client_id is not None:
            try:
                if commands.client_unblock(client_id):
                    return
            except Exception:  # unreachable, or not allowed: shut it down
                pass
        sock = self._redis.socket
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:  # already closed
                pass

    def _connected(self, connection: Any) -> None:
        """A new connection of the reader: do the usual hand-shake, then
        learn its id for :meth:`interrupt` (no CLIENT LIST needed)."""
        connection.on_connect()
        connection.send_command('CLIENT', 'ID')
        self._client_id = int(connection.read_response())

    def _resume(self) -> str:
        last_id = self.position.last_id
        if last_id is None:
            return 'will start at the end of the stream when it is back'
        return f'will resume after {last_id}'

    def _failed(self, error: BaseException) -> None:
        self.position.interrupted()
        self._client_id = None

    def _step(self) -> None:
        position = self.position
        if position.last_id is None:
            position.at_tail(self._stream_info())
        entries = self._verified_read() if position.verify else self._read()
        position.read(len(entries), time.monotonic())
        self._dispatch(entries)

    def _read(self) -> List[Entry]:
        options = self._context.options
        return commands.entries(self._redis.call(commands.xread(
            self.stream, self.position.last_id, options.read_count,
            options.block_time_ms), key=self.stream))

    def _verified_read(self) -> List[Entry]:
        """Read the next batch and the stream's state at the same instant,
        and account for any entry lost since the last one read."""
        connector = self._context.connector
        try:
            info, response = self._info_and_read(transaction=True)
        except connector.response_error as exc:
            if not connector.is_transient(exc):
                raise
            # out of memory, Redis refuses MULTI but still serves reads; two
            # commands written at once are in practice also served together
            info, response = self._info_and_read(transaction=False)
        if isinstance(response, Exception):
            raise response
        if isinstance(info, Exception):
            if not commands.no_such_key(info):
                raise info
            info = None
        else:
            info = commands.stream_info(info)
        entries = commands.entries(response)
        gap = self.position.verified(info, len(entries),
                                     self._context.options.read_count,
                                     time.monotonic())
        if gap:
            self._context.stats.incr('gaps')
            self._context.logger.warning('gap in stream %s: %s', self.stream,
                                         gap)
        return entries

    def _info_and_read(self, transaction: bool) -> List[Any]:
        """The replies of XINFO STREAM and XREAD (not blocking), errors as
        instances."""
        both = (commands.xinfo_stream(self.stream),
                commands.xread(self.stream, self.position.last_id,
                               self._context.options.read_count))
        if not transaction:
            return self._redis.execute(*both, key=self.stream)
        return commands.transaction_replies(
            self._redis.execute(*commands.transaction(*both),
                                key=self.stream),
            self._context.connector.response_error)

    def _dispatch(self, entries: List[Entry]) -> None:
        stats = self._context.stats
        read = bad = 0
        for raw_id, fields in entries:
            entry_id = raw_id.decode()
            with self._lock:
                self.position.last_id = entry_id
                if self._skip_own and fields.get(b'uid') == self._skip_own:
                    continue
                read += 1
                try:
                    message = codec.decode_entry(
                        fields, self._json,
                        self._context.options.max_message_size)
                except MalformedMessage as exc:
                    bad += 1
                    self._context.logger.warning(
                        'skipping malformed entry %s of stream %s: %s',
                        entry_id, self.stream, exc)
                    continue
                self._run_handler(message, entry_id)
        if read - bad:
            stats.incr('entries_read', read - bad)
        if bad:
            stats.incr('bad_entries', bad)

    def _run_handler(self, message: Message, entry_id: str) -> None:
        try:
            self._handle(message, entry_id)
        except Exception:
            self._context.stats.incr('handler_errors')
            self._context.logger.exception(
                'error handling entry %s of stream %s', entry_id, self.stream)

    def _stream_info(self) -> Optional[Dict[str, Any]]:
        try:
            return commands.stream_info(self._redis.call(
                commands.xinfo_stream(self.stream), key=self.stream))
        except self._context.connector.response_error as exc:
            if commands.no_such_key(exc):
                return None
            raise
