"""Who a cluster operation addresses: room names and
:class:`BroadcastOptions`, checked once at the edge, and shared where a
stream repeats the same few."""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any, Dict, Mapping, Optional, Tuple, Union

from .errors import MalformedMessage

Room = Union[str, int]

_NO_FLAGS: Mapping[str, Any] = MappingProxyType({})


@dataclass(frozen=True)
class BroadcastOptions:
    """Who a cluster operation addresses: ``rooms`` (empty: the whole
    namespace) minus any socket in one of the ``except_rooms``. Immutable:
    :meth:`with_flags` makes a changed copy."""
    rooms: Tuple[Room, ...] = ()
    except_rooms: Tuple[Room, ...] = ()
    flags: Mapping[str, Any] = field(default_factory=lambda: _NO_FLAGS)

    @classmethod
    def of(cls, rooms: Any = None, except_rooms: Any = None,
           flags: Optional[Mapping[str, Any]] = None) -> 'BroadcastOptions':
        """Options from what an API call takes: ``None``, one room, or
        several."""
        if rooms is None and except_rooms is None and not flags:
            return EVERYONE
        return cls(as_tuple(rooms), as_tuple(except_rooms),
                   MappingProxyType(dict(flags)) if flags else _NO_FLAGS)

    def with_flags(self, **flags: Any) -> 'BroadcastOptions':
        return replace(self, flags=MappingProxyType({**self.flags, **flags}))

    @property
    def volatile(self) -> bool:
        return bool(self.flags.get('volatile'))

    def to_wire(self) -> Dict[str, Any]:
        return {'rooms': list(self.rooms), 'except': list(self.except_rooms),
                'flags': dict(self.flags)}

    @classmethod
    def from_wire(cls, value: Any) -> 'BroadcastOptions':
        if not isinstance(value, dict):
            raise MalformedMessage('opts is not a map')
        rooms = value.get('rooms', _NONE)
        except_rooms = value.get('except', _NONE)
        flags = value.get('flags')
        if except_rooms == [] and (flags is None or flags == {}) and \
                type(rooms) is list:
            # the most common cases (everyone, or a few rooms) are shared
            return _plain_options(rooms)
        if flags is None:
            flags = {}
        if not isinstance(flags, dict):
            raise MalformedMessage('opts.flags is not a map')
        return cls(rooms_of(rooms, 'opts.rooms'),
                   rooms_of(except_rooms, 'opts.except'),
                   MappingProxyType(dict(flags)) if flags else _NO_FLAGS)


#: Options that address every socket of a namespace.
EVERYONE = BroadcastOptions()
_NONE: list = []

#: Bounds of the cache of :func:`_plain_options` (lists, characters a list)
PLAIN_OPTIONS_CACHED, PLAIN_OPTIONS_MAX_CHARS = 1024, 256
_plain_cache: Dict[Tuple[str, ...], 'BroadcastOptions'] = {}


def _plain_options(rooms: list) -> 'BroadcastOptions':
    """Options with ``rooms`` only, checked and built once per short list
    of names: a stream repeats a few (they are immutable: shared safely).
    Only text is looked up: ``1``, ``1.0`` and ``True`` are equal keys."""
    if not rooms:
        return EVERYONE
    if not all(type(room) is str for room in rooms):
        return BroadcastOptions(rooms_of(rooms, 'opts.rooms'))
    key = tuple(rooms)
    options = _plain_cache.get(key)
    if options is None:
        options = BroadcastOptions(key)
        if sum(map(len, key)) <= PLAIN_OPTIONS_MAX_CHARS:
            if len(_plain_cache) >= PLAIN_OPTIONS_CACHED:
                _plain_cache.clear()
            _plain_cache[key] = options
    return options


def as_tuple(value: Any) -> Tuple[Any, ...]:
    """``None`` as no item, a list, tuple or set as its items, anything else
    as one item."""
    if value is None:
        return ()
    if isinstance(value, (list, tuple, set)):
        return tuple(value)
    return (value,)


def rooms_of(value: Any, what: str) -> Tuple[Room, ...]:
    if not isinstance(value, list) or not all(
            isinstance(r, (str, int)) and not isinstance(r, bool)
            for r in value):
        raise MalformedMessage(f'{what} is not a list of room names')
    return tuple(value)
