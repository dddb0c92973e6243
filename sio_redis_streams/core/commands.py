"""The stream commands the hot paths send, and their raw replies.

The reader and the writer talk to Redis over a connection of their own,
with commands given as argument tuples and replies read raw (RESP2, bytes
not decoded): the client library's per-command layers (pool checkout,
retries, reply conversion) cost several times what Redis itself takes to
answer. This module builds those tuples and turns the raw replies into the
shapes the rest of the package uses: an entry is ``(id, {field: value})``
with bytes on both sides, ``XINFO STREAM`` a dict with text keys (as the
client library gives it). Nothing here does I/O.
"""
from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

Command = Tuple[Any, ...]
Entry = Tuple[bytes, Dict[bytes, bytes]]


def xadd(stream: str, fields: Mapping[str, str], maxlen: int) -> Command:
    """Append ``fields`` to ``stream``, trimming it to about ``maxlen``
    entries (``~``: Redis trims whole nodes, which is much cheaper)."""
    command: List[Any] = ['XADD', stream, 'MAXLEN', '~', maxlen, '*']
    for name, value in fields.items():
        command.append(name)
        command.append(value)
    return tuple(command)


def xread(stream: str, after: str, count: int,
          block_ms: Optional[int] = None) -> Command:
    """Up to ``count`` entries of ``stream`` after ``after``; with
    ``block_ms``, wait that long for one to come."""
    if block_ms is None:
        return ('XREAD', 'COUNT', count, 'STREAMS', stream, after)
    return ('XREAD', 'COUNT', count, 'BLOCK', block_ms, 'STREAMS', stream,
            after)


def xrange(stream: str, start: str, count: int) -> Command:
    """Up to ``count`` entries of ``stream`` from ``start`` on."""
    return ('XRANGE', stream, start, '+', 'COUNT', count)


def xinfo_stream(stream: str) -> Command:
    """The state of ``stream`` (length, first entry, last id, count)."""
    return ('XINFO', 'STREAM', stream)


def transaction(*commands: Command) -> List[Command]:
    """``commands`` between MULTI and EXEC: their replies come as the
    reply of the last command (see :func:`transaction_replies`)."""
    return [('MULTI',), *commands, ('EXEC',)]


def transaction_replies(replies: Sequence[Any],
                        error_class: type) -> List[Any]:
    """The replies of the commands of a :func:`transaction`, given the
    replies of all its commands (errors as instances, not raised).

    :raises error_class: Redis refused a command when it was queued (the
                         transaction was discarded: none ran), or refused
                         the transaction itself; the first refusal is the
                         one raised, as it says why.
    """
    for reply in replies[:-1]:
        if isinstance(reply, error_class):
            raise reply
    result = replies[-1]
    if isinstance(result, error_class):
        raise result
    if result is None:  # EXEC of a WATCHed key: never sent here
        raise error_class('transaction aborted')
    return list(result)


def no_such_key(error: BaseException) -> bool:
    """Whether an error reply of ``XINFO STREAM`` says that the stream
    does not exist."""
    return 'no such key' in str(error).lower()


def entries(xread_reply: Any) -> List[Entry]:
    """The entries of an XREAD reply for one stream (``None``: the block
    time passed with nothing new)."""
    if not xread_reply:
        return []
    return range_entries(xread_reply[0][1])


def range_entries(reply: Any) -> List[Entry]:
    """The entries of an XRANGE reply (or of one stream of XREAD)."""
    return [(entry_id, fields_of(flat)) for entry_id, flat in reply]


def fields_of(flat: Optional[Sequence[bytes]]) -> Dict[bytes, bytes]:
    """``[name, value, name, value...]`` as a dict (an entry deleted since
    it was listed has no fields)."""
    if not flat:
        return {}
    values = iter(flat)
    return dict(zip(values, values))


def stream_info(reply: Sequence[Any]) -> Dict[str, Any]:
    """An ``XINFO STREAM`` reply as a dict with text keys."""
    values = iter(reply)
    return {key.decode() if isinstance(key, bytes) else key: value
            for key, value in zip(values, values)}
