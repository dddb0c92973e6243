"""The writer's state and decisions, without the writing.

Entries wait in a bounded, in-order :class:`Outbox`; a driver takes them in
batches, appends each batch in one MULTI/EXEC and reports what came of it to
a :class:`WriteLedger`. When a batch fails in a way that leaves its outcome
unknown (the connection broke after the commands were sent), the ledger says
which streams to read back, and from where; only this writer appends
entries with its ``uid``, one batch at a time and in order, so the entries
found after the last confirmed one are exactly the first entries of the
batch. Nothing is lost and nothing is appended twice.
"""
from __future__ import annotations

import collections
from dataclasses import dataclass, field
from typing import Any, Callable, Deque, Dict, List, Optional, Tuple

#: How many times in a row a batch may fail with an error that is neither a
#: lost connection nor a reply of Redis before it is dropped: retrying a
#: bug forever would fill the outbox and drop every new message instead.
MAX_UNEXPECTED_FAILURES = 3


@dataclass
class OutgoingEntry:
    """An entry waiting in the outbox; ``entry_id`` is set once written."""
    stream: str
    fields: Dict[str, str]
    entry_id: Optional[str] = None
    dropped: bool = False

    @property
    def settled(self) -> bool:
        return self.entry_id is not None or self.dropped


class Outbox:
    """The entries waiting for Redis, oldest first, at most ``size``."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._entries: Deque[OutgoingEntry] = collections.deque()

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def full(self) -> bool:
        return len(self._entries) >= self.size

    def add(self, entry: OutgoingEntry) -> bool:
        """Queue ``entry``; ``False`` if the outbox is full."""
        if self.full:
            return False
        self._entries.append(entry)
        return True

    def batch(self, count: int,
              one_stream: bool = False) -> List[OutgoingEntry]:
        """The oldest ``count`` entries not settled yet (they stay until
        settled); with ``one_stream``, the oldest of the oldest entry's
        stream only (on a Redis Cluster, a transaction touches one slot).
        Passing over the other streams' entries keeps each stream's order,
        which is the only order readers see; stopping at them instead
        would make batches of one entry when namespaces of different
        streams emit in turn."""
        batch: List[OutgoingEntry] = []
        for entry in self._entries:
            if len(batch) == count:
                break
            if entry.settled or (one_stream and batch and
                                 entry.stream != batch[0].stream):
                continue
            batch.append(entry)
        return batch

    def pop_settled(self) -> int:
        """Remove the written or dropped entries at the head (those
        behind an entry still waiting are removed with it)."""
        removed = 0
        while self._entries and self._entries[0].settled:
            self._entries.popleft()
            removed += 1
        return removed


@dataclass
class BatchOutcome:
    """What one attempt at a batch came to."""
    written: int = 0
    retry: List[OutgoingEntry] = field(default_factory=list)
    dropped: List[Tuple[OutgoingEntry, Any]] = field(default_factory=list)


class WriteLedger:
    """Where each stream stands for this writer, and what to do with a batch
    after each attempt."""

    def __init__(self) -> None:
        self.last_written: Dict[str, str] = {}
        #: the last attempt may have written some entries of the batch
        self.outcome_unknown = False
        # the head entry of the batch that failed unexpectedly, and how many
        # times in a row
        self._failing: Optional[OutgoingEntry] = None
        self._unexpected_failures = 0

    @staticmethod
    def pending(batch: List[OutgoingEntry]) -> List[OutgoingEntry]:
        """The entries of ``batch`` still to be written."""
        return [e for e in batch if not e.settled]

    def sending(self) -> None:
        """A batch is about to be sent: until a reply says otherwise, its
        outcome is unknown."""
        self.outcome_unknown = True

    def refused(self, entries: List[OutgoingEntry], error: Any,
                transient: bool) -> BatchOutcome:
        """Redis refused the whole transaction: nothing was written."""
        self.outcome_unknown = False
        if transient:
            return BatchOutcome(retry=list(entries))
        return self._drop(entries, error)

    def replied(self, entries: List[OutgoingEntry], results: List[Any],
                is_transient: Callable[[Any], bool]) -> BatchOutcome:
        """Redis answered the transaction: one result per entry, an id or an
        error reply."""
        self.outcome_unknown = False
        self._unexpected_failures = 0
        outcome = BatchOutcome()
        for entry, result in zip(entries, results):
            if not isinstance(result, Exception):
                self.written(entry, result)
                outcome.written += 1
            elif is_transient(result):
                outcome.retry.append(entry)
            else:
                entry.dropped = True
                outcome.dropped.append((entry, result))
        return outcome

    def failed_unexpectedly(self, batch: List[OutgoingEntry],
                            error: Any) -> BatchOutcome:
        """An attempt raised an error that is no lost connection: after
        :data:`MAX_UNEXPECTED_FAILURES` in a row, the batch is dropped."""
        head = batch[0] if batch else None
        if head is not self._failing:  # another batch: count afresh
            self._failing, self._unexpected_failures = head, 0
        self._unexpected_failures += 1
        if self._unexpected_failures < MAX_UNEXPECTED_FAILURES:
            return BatchOutcome(retry=self.pending(batch))
        self._unexpected_failures = 0
        self.outcome_unknown = False
        return self._drop(self.pending(batch), error)

    def written(self, entry: OutgoingEntry, entry_id: Any) -> None:
        entry.entry_id = entry_id.decode() if isinstance(entry_id, bytes) \
            else str(entry_id)
        self.last_written[entry.stream] = entry.entry_id

    def to_reconcile(self, batch: List[OutgoingEntry]
                     ) -> List[Tuple[str, Optional[str]]]:
        """After an unknown outcome: each stream of the batch with entries
        pending, and the id after which this writer's entries are to be
        read back (``None``: from the start)."""
        streams = dict.fromkeys(e.stream for e in self.pending(batch))
        return [(stream, self.last_written.get(stream)) for stream in streams]

    def reconcile(self, batch: List[OutgoingEntry], stream: str,
                  own_ids: List[Any]) -> Tuple[int, int]:
        """Take ``own_ids``, the ids of this writer's entries found in
        ``stream`` after the last confirmed one, as the first pending
        entries of the batch in that stream. Returns how many were found
        written, and how many will be sent again."""
        pending = [e for e in self.pending(batch) if e.stream == stream]
        for entry, entry_id in zip(pending, own_ids):
            self.written(entry, entry_id)
        found = min(len(pending), len(own_ids))
        return found, len(pending) - found

    def reconciled(self) -> None:
        self.outcome_unknown = False

    @staticmethod
    def _drop(entries: List[OutgoingEntry], error: Any) -> BatchOutcome:
        for entry in entries:
            entry.dropped = True
        return BatchOutcome(dropped=[(entry, error) for entry in entries])
