"""Connection state recovery, the protocol half: stored sessions in the Node
adapter's format, and which stream entries a returning client missed.

The replay is complete or does not happen: a :class:`Replay` takes the
stream's entries after the client's offset page by page, up to the position
of the server's reader, with no fixed limit on the number of pages, and
gives up (the client then gets a new session) as soon as more than
``max_packets`` were missed. Nothing here does I/O; the driver reads the
pages.
"""
from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple

import msgpack

from .addressing import BroadcastOptions, Room, rooms_of
from .codec import ENTRY_ID_RE, decode_entry, entry_id_key, \
    next_entry_id, unpack
from .errors import MalformedMessage
from .messages import Broadcast, MessageType

#: A private session id as the Node server and this package make them.
PID_RE = re.compile(r'\A[A-Za-z0-9_-]{1,64}\Z')

#: How many entries one XRANGE of a replay reads.
REPLAY_PAGE = 1000

_BROADCAST_TYPE = b'%d' % MessageType.BROADCAST


@dataclass
class Session:
    """What is kept of a socket while its client is away."""
    sid: str
    pid: str
    rooms: List[Room]
    data: Any = None

    def to_wire(self) -> str:
        """The stored value: base64 of msgpack, as the Node adapter."""
        packed = msgpack.packb({'sid': self.sid, 'pid': self.pid,
                                'rooms': list(self.rooms),
                                'data': self.data}, use_bin_type=True)
        return base64.b64encode(packed).decode('ascii')

    @classmethod
    def from_wire(cls, raw: bytes) -> 'Session':
        try:
            value = unpack(base64.b64decode(raw, validate=True))
        except (ValueError, TypeError) as exc:  # binascii, or MalformedMessage
            raise MalformedMessage(f'session is not base64 msgpack: '
                                   f'{exc}') from None
        if not isinstance(value, dict) or \
                not isinstance(value.get('sid'), str) or \
                not isinstance(value.get('pid'), str):
            raise MalformedMessage('session lacks sid or pid')
        return cls(value['sid'], value['pid'],
                   list(rooms_of(value.get('rooms'), 'session rooms')),
                   value.get('data'))


def restore_request(auth: Any) -> Optional[Tuple[str, str]]:
    """The ``(pid, offset)`` a connecting client brings, if well formed."""
    if not isinstance(auth, dict):
        return None
    pid, offset = auth.get('pid'), auth.get('offset')
    if not isinstance(pid, str) or not PID_RE.match(pid) or \
            not isinstance(offset, str) or not ENTRY_ID_RE.match(offset):
        return None
    return pid, offset


def receives(rooms: Sequence[Room], opts: BroadcastOptions) -> bool:
    """Whether a socket in ``rooms`` is addressed by ``opts``."""
    joined = set(rooms)
    if opts.rooms and joined.isdisjoint(opts.rooms):
        return False
    return joined.isdisjoint(opts.except_rooms)


class Replay:
    """The packets a session missed in one stream, between ``offset`` and
    ``end`` (the reader's position when the session was taken).

    :param json_module: the JSON module of stream entries.
    :param max_packets: more missed packets than this: no recovery.
    """

    def __init__(self, namespace: str, rooms: Sequence[Room], offset: str,
                 end: str, json_module: Any, max_packets: int,
                 max_message_size: Optional[int] = None) -> None:
        self.namespace = namespace.encode()
        self.rooms = list(rooms)
        self.end = end
        self.json = json_module
        self.max_packets = max_packets
        self.max_message_size = max_message_size
        self.packets: List[List[Any]] = []
        #: where the next page starts (``None``: the replay is complete)
        self.next_start: Optional[str] = None
        #: more than ``max_packets`` were missed
        self.too_long = False
        if entry_id_key(end) > entry_id_key(offset):
            self.next_start = next_entry_id(offset)

    def feed(self, page: List[Tuple[bytes, Dict[bytes, bytes]]],
             page_size: int = REPLAY_PAGE) -> bool:
        """Take one page of ``XRANGE next_start end COUNT page_size``;
        ``True`` if another page is needed."""
        for raw_id, fields in page:
            packet = self._packet_for(fields)
            if packet is not None:
                self.packets.append([*packet, raw_id.decode()])
        if len(self.packets) > self.max_packets:
            self.too_long = True
            self.next_start = None
        elif len(page) < page_size:
            self.next_start = None
        else:
            self.next_start = next_entry_id(page[-1][0].decode())
        return self.next_start is not None

    def _packet_for(self, fields: Dict[bytes, bytes]) -> Optional[List[Any]]:
        if fields.get(b'nsp') != self.namespace or \
                fields.get(b'type') != _BROADCAST_TYPE:
            return None
        try:
            message = decode_entry(fields, self.json, self.max_message_size)
        except MalformedMessage:
            return None  # the readers log it when they meet it
        if not isinstance(message, Broadcast) or \
                message.request_id is not None or message.opts.volatile or \
                not receives(self.rooms, message.opts):
            return None
        return [message.event, *message.args]
