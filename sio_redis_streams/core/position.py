"""Where a reader stands in its stream, and the exact accounting of entries
it lost.

Entries a reader had not read yet can be lost: trimmed by ``maxlen`` while
the server was away or too slow, or gone with a Redis restarted without
persistence. A :class:`StreamPosition` keeps, beside the id of the last
entry read, how many entries the stream had received when that entry was
appended (``entries-added`` of ``XINFO STREAM``, Redis 7+). After a
reconnection, and after a full batch (a sign that the reader fell behind),
the driver reads the next batch together with ``XINFO STREAM`` in one
transaction and hands both here: Redis's count, compared with the reader's
own plus what is left after its position, tells exactly how many entries
were lost. Nothing here does I/O.
"""
from __future__ import annotations

from typing import Any, Dict, NamedTuple, Optional

from .codec import entry_id_key


class Verdict(NamedTuple):
    """What a verified read found."""
    #: what was lost, as a sentence for the log (``None``: nothing)
    gap: Optional[str]
    #: the stream was recreated: drop the batch, read the new one from
    #: its start
    restart: bool = False


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

    def read(self, count: int) -> None:
        """A batch of ``count`` entries was read (and is being handled)."""
        self.verify = count >= self.lag_threshold
        if self.added is not None:
            self.added += count

    def verified(self, info: Optional[Dict[str, Any]], batch_size: int,
                 read_count: int) -> Verdict:
        """Account for ``info`` (``XINFO STREAM`` taken with the batch read
        from ``last_id``; ``None``: no such key) and say what was lost."""
        vanished = self._vanished(info)
        if vanished:
            self.last_id, self.added = '0-0', 0
            return Verdict(vanished, restart=True)
        if info is not None and batch_size < read_count:
            return Verdict(self._lost(info, batch_size))
        return Verdict(None)

    def _vanished(self, info: Optional[Dict[str, Any]]) -> Optional[str]:
        last = self.last_id or '0-0'
        if info is None:
            if last == '0-0':
                return None
            detail = 'the stream no longer exists (XINFO STREAM: no such key)'
        else:
            generated = text(info.get('last-generated-id')) or '0-0'
            if entry_id_key(generated) >= entry_id_key(last):
                return None
            detail = (f'the stream was recreated (XINFO STREAM '
                      f'last-generated-id {generated} is before {last})')
        return (f'{detail}: Redis lost its data (restarted without '
                f'persistence?) or the key was deleted; the entries written '
                f'after {last} that this server had not read are lost; '
                f'reading the new stream from its start')

    def _lost(self, info: Dict[str, Any], remaining: int) -> Optional[str]:
        """Compare Redis's count of entries added with this reader's: what
        it read, plus the ``remaining`` entries after its position (all of
        them, since the batch was not full)."""
        added = info.get('entries-added')
        if added is None or self.added is None:
            return self._first_entry_check(info)  # Redis < 7 counts nothing
        lost = added - self.added - remaining
        self.added = added - remaining
        if lost <= 0:
            return None
        return (f'{lost} entries after {self.last_id} were trimmed '
                f'(maxlen={self.maxlen}) before this server could read '
                f'them: Redis added {lost + remaining} entries since then '
                f'and only {remaining} remain (XINFO STREAM entries-added)')

    def _first_entry_check(self, info: Dict[str, Any]) -> Optional[str]:
        first = info.get('first-entry')
        first_id = text(first[0]) if first else None
        if first_id and self.last_id and \
                entry_id_key(first_id) > entry_id_key(self.last_id):
            return (f'the oldest entry left ({first_id}) is newer than the '
                    f'last one read ({self.last_id}): entries in between '
                    f'may have been trimmed (maxlen={self.maxlen})')
        return None


def text(value: Any) -> Optional[str]:
    """A reply value as text (``None`` stays ``None``)."""
    if value is None:
        return None
    return value.decode() if isinstance(value, bytes) else str(value)
