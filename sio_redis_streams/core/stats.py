"""Counters an operator can read from a running manager."""
from __future__ import annotations

import threading
from typing import Dict

#: Every counter, with what it counts.
COUNTERS = {
    'entries_read': 'stream entries read and decoded (of other servers; '
                    'this one\'s too with connection state recovery)',
    'entries_written': 'stream entries this server appended',
    'write_batches': 'round trips that appended entries',
    'messages_published': 'PUB/SUB messages this server published',
    'messages_received': 'PUB/SUB messages of other servers acted on',
    'reader_reconnects': 'times a stream reader lost Redis',
    'writer_reconnects': 'times the writer lost Redis',
    'subscriber_reconnects': 'times the PUB/SUB subscriber lost Redis',
    'resent_after_reconnect': 'entries resent after a write whose outcome '
                              'was unknown (none of them twice)',
    'outbox_dropped': 'entries dropped because the outbox was full',
    'write_errors': 'entries Redis refused for good (logged)',
    'gaps': 'times entries were lost before this server read them '
            '(trimmed by maxlen, the stream vanished, or a failover '
            'lost them)',
    'writes_lost': 'times entries this server had written were gone from '
                   'Redis after a failure (logged)',
    'replica_ack_waits': 'times a written batch waited longer than '
                         'replica_ack_timeout for its replicas (WAIT)',
    'bad_entries': 'malformed stream entries skipped',
    'bad_messages': 'malformed PUB/SUB payloads skipped',
    'messages_dropped': 'PUB/SUB messages dropped because too many waited '
                        'to be handled',
    'handler_errors': 'messages whose handling raised (logged)',
}


class Stats:
    """Thread-safe counters, named as in :data:`COUNTERS`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: Dict[str, int] = dict.fromkeys(COUNTERS, 0)

    def incr(self, name: str, amount: int = 1) -> None:
        """Add ``amount`` to counter ``name``."""
        with self._lock:
            self._values[name] += amount

    def snapshot(self) -> Dict[str, int]:
        """The current value of every counter."""
        with self._lock:
            return dict(self._values)
