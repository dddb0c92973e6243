"""Where a reader stands in its stream, and the exact accounting of entries
it lost.

Entries a reader had not read yet can be lost: trimmed by ``maxlen`` while
the server was away, paused or too slow, or gone with a stream deleted or
recreated (Redis restarted without persistence). A :class:`StreamPosition`
keeps, beside the id of the last entry read, how many entries the stream
had received when that entry was appended (``entries-added`` of ``XINFO
STREAM``, Redis 7+). Some reads are verified: the driver sends ``XINFO
STREAM`` with the ``XREAD`` in one transaction and hands both here. That
happens after a reconnection, after a full batch (a sign of falling
behind), and at least every :data:`VERIFY_EVERY` seconds while entries
flow (a paused process does not know it was paused). Redis's count,
compared with the reader's own plus what is left after its position, tells
exactly how many entries were lost, at the first verified read after the
loss. A stream that lost entries it had (deleted, recreated by a Redis
restarted empty, or a replica promoted before it got the last writes)
shows as a count that went backwards or ids that end before the position:
that is reported as a loss of unknown size.

Reading always goes on after the last entry read: every entry of a new
stream has a later id, and a promoted replica holds nothing after it that
this reader has seen, so nothing is read twice. Nothing here does I/O.
"""
from __future__ import annotations

from typing import Any, Dict, Optional

from .codec import entry_id_key

#: While entries flow, at least one read in this many seconds is verified.
VERIFY_EVERY = 1.0


class StreamPosition:
    """The reading position of one stream.

    :param maxlen: the stream's trimming length (for the messages).
    :param lag_threshold: a batch this long means the reader may be falling
                          behind the trimming: the next read is verified.
    """

    def __init__(self, stream: str, maxlen: int, lag_threshold: int) -> None:
        self.stream = stream
        self.maxlen = maxlen
        self.lag_threshold = lag_threshold
        #: the id of the last entry read (``None``: not positioned yet)
        self.last_id: Optional[str] = None
        #: the stream's ``entries-added`` when ``last_id`` was appended
        #: (``None``: unknown, Redis < 7)
        self.added: Optional[int] = None
        #: the next read must come with ``XINFO STREAM``
        self.verify = False
        self._verified_at = float('-inf')

    def at_tail(self, info: Optional[Dict[str, Any]]) -> None:
        """Start after the current last entry (``info``: ``XINFO STREAM``,
        ``None`` if the stream does not exist yet)."""
        if info is None:
            self.last_id, self.added = '0-0', 0
        else:
            self.last_id = text(info['last-generated-id'])
            self.added = info.get('entries-added')

    def interrupted(self) -> None:
        """Reading failed: what happened meanwhile must be accounted for."""
        self.verify = True

    def read(self, count: int, now: float) -> None:
        """A batch of ``count`` entries was read (and is being handled) at
        ``now`` (``time.monotonic()``)."""
        self.verify = count >= self.lag_threshold or (
            count > 0 and now - self._verified_at >= VERIFY_EVERY)
        if self.added is not None:
            self.added += count

    def verified(self, info: Optional[Dict[str, Any]], batch_size: int,
                 read_count: int, now: float) -> Optional[str]:
        """Account for ``info`` (``XINFO STREAM`` taken with the batch of
        ``batch_size`` entries read from ``last_id``; ``None``: no such key)
        and say what was lost, as a sentence for the log (``None``:
        nothing)."""
        self._verified_at = now
        last = self.last_id or '0-0'
        if info is None:
            if not self.added:
                return None  # not created yet, or already reported
            self.added = 0
            return (f'the stream no longer exists (XINFO STREAM: no such '
                    f'key){_UNREAD_LOST}')
        added = info.get('entries-added')
        if added is None:
            return self._first_entry_check(info)  # Redis < 7
        generated = text(info.get('last-generated-id')) or '0-0'
        if entry_id_key(generated) < entry_id_key(last):
            self.added = added  # every entry left is before the position
            return (f'the stream lost entries this server had read (XINFO '
                    f'STREAM last-generated-id {generated} is before {last}):'
                    f' a replica promoted before it got them, or the stream '
                    f'recreated{_UNREAD_LOST}')
        remaining = self._remaining(info, batch_size, read_count)
        known, self.added = self.added, \
            None if remaining is None else added - remaining
        if known is None:
            return None  # the count is known again from here on
        if added < known or (remaining is not None and
                             added - known - remaining < 0):
            return (f'the stream was recreated (XINFO STREAM entries-added '
                    f'{added} is below the count of this server, {known} up '
                    f'to {last}){_UNREAD_LOST}')
        if remaining is None:
            self.added = known  # counted at a later verified read
            return None
        lost = added - known - remaining
        if lost == 0:
            return None
        return (f'{lost} entries after {last} were trimmed '
                f'(maxlen={self.maxlen}) before this server could read them: '
                f'Redis added {lost + remaining} entries since then and only '
                f'{remaining} remain (XINFO STREAM entries-added)')

    def _remaining(self, info: Dict[str, Any], batch_size: int,
                   read_count: int) -> Optional[int]:
        """How many entries the stream holds after the position (``None``:
        not known from this read)."""
        first_id = _first_id(info)
        if first_id is None or entry_id_key(first_id) > \
                entry_id_key(self.last_id or '0-0'):
            return int(info.get('length') or 0)  # all of them
        if batch_size < read_count:
            return batch_size  # the batch is all that is left after it
        return None

    def _first_entry_check(self, info: Dict[str, Any]) -> Optional[str]:
        first_id = _first_id(info)
        if first_id and self.last_id and \
                entry_id_key(first_id) > entry_id_key(self.last_id):
            return (f'the oldest entry left ({first_id}) is newer than the '
                    f'last one read ({self.last_id}): entries in between '
                    f'may have been trimmed (maxlen={self.maxlen})')
        return None


#: How each report of a stream that lost its entries ends.
_UNREAD_LOST = ('; the entries this server had not read are lost; reading '
                'goes on with what the stream holds after the last entry '
                'read')


def _first_id(info: Dict[str, Any]) -> Optional[str]:
    """The id of the oldest entry of ``XINFO STREAM`` (``None``: empty)."""
    first = info.get('first-entry')
    return text(first[0]) if first else None


def text(value: Any) -> Optional[str]:
    """A reply value as text (``None`` stays ``None``)."""
    if value is None:
        return None
    return value.decode() if isinstance(value, bytes) else str(value)
