"""Who an operation addresses: BroadcastOptions are immutable, share no
state, and plain ones read from the wire are built once (a bounded
cache)."""
from types import MappingProxyType

import pytest

from sio_redis_streams.core import addressing
from sio_redis_streams.core.addressing import BroadcastOptions, as_tuple
from sio_redis_streams.core.errors import MalformedMessage
from tests.unit.core.test_messages import NO_OPTS


@pytest.mark.parametrize('rooms,expected', [
    (None, ()), ('a', ('a',)), (3, (3,)), (['a', 'b'], ('a', 'b')),
    (('a',), ('a',)), ({'a'}, ('a',)),
])
def test_as_tuple(rooms, expected):
    assert as_tuple(rooms) == expected
    assert BroadcastOptions.of(rooms).rooms == expected
    assert BroadcastOptions.of(except_rooms=rooms).except_rooms == expected


def test_options_are_immutable():
    flags = {'timeout': 5}
    opts = BroadcastOptions.of('r', 'x', flags)
    flags['volatile'] = True
    assert dict(opts.flags) == {'timeout': 5}
    assert isinstance(opts.flags, MappingProxyType)
    with pytest.raises(TypeError):
        opts.flags['volatile'] = True
    with pytest.raises(AttributeError):
        opts.rooms = ('y',)
    changed = opts.with_flags(volatile=True)
    assert dict(opts.flags) == {'timeout': 5}
    assert not opts.volatile
    assert dict(changed.flags) == {'timeout': 5, 'volatile': True}
    assert changed.volatile
    assert (changed.rooms, changed.except_rooms) == (('r',), ('x',))
    with pytest.raises(TypeError):
        changed.flags['timeout'] = 1


def test_default_options_share_no_mutable_state():
    first = BroadcastOptions.of()
    second = first.with_flags(volatile=True)
    assert dict(BroadcastOptions().flags) == {} == dict(first.flags)
    assert BroadcastOptions.of(flags={}).flags == {}
    assert second.volatile and not BroadcastOptions().volatile
    assert first.to_wire() == NO_OPTS
    wire = second.to_wire()
    wire['flags']['x'] = 1
    assert dict(second.flags) == {'volatile': True}


def test_plain_options_are_shared_and_their_cache_is_bounded():
    def wire(rooms):
        return {'rooms': rooms, 'except': [], 'flags': {}}

    first = BroadcastOptions.from_wire(wire(['a', 'b']))
    assert BroadcastOptions.from_wire(wire(['a', 'b'])) is first
    assert first.rooms == ('a', 'b')
    assert BroadcastOptions.from_wire(wire([])) is addressing.EVERYONE
    # equal keys of other types are neither taken from nor put in the cache
    assert BroadcastOptions.from_wire(wire([1])).rooms == (1,)
    with pytest.raises(MalformedMessage):
        BroadcastOptions.from_wire(wire([True]))
    with pytest.raises(MalformedMessage):
        BroadcastOptions.from_wire(wire([['a']]))
    long = ['x' * (addressing.PLAIN_OPTIONS_MAX_CHARS + 1)]
    assert BroadcastOptions.from_wire(wire(long)).rooms == tuple(long)
    assert tuple(long) not in addressing._plain_cache
    for n in range(addressing.PLAIN_OPTIONS_CACHED * 3):
        BroadcastOptions.from_wire(wire([f'room-{n}']))
    assert len(addressing._plain_cache) <= addressing.PLAIN_OPTIONS_CACHED
