"""One server's side of the cluster protocol: the streams it reads and
writes, the messages its operations become, and the action each incoming
stream entry or PUB/SUB message means for it."""
import pytest

from sio_redis_streams.core.messages import AdapterClose, Broadcast, \
    BroadcastAck, BroadcastClientCount, BroadcastOptions, \
    DisconnectSockets, FetchSockets, FetchSocketsResponse, Heartbeat, \
    InitialHeartbeat, ServerSideEmit, ServerSideEmitResponse, SocketsJoin, \
    SocketsLeave
from sio_redis_streams.core.protocol import AskClients, CallHandler, \
    ChangeRooms, ClusterProtocol, DescribeSockets, Deliver, Disconnect
from sio_redis_streams.core.requests import AckRequest, CollectRequest

ME, OTHER = 'me', 'other'
OPTS = BroadcastOptions.of('r1', 'x')
VOLATILE = OPTS.with_flags(volatile=True)


def protocol(recovery=False, stream_count=1):
    return ClusterProtocol(ME, 'socket.io', stream_count, recovery)


def test_one_stream():
    proto = protocol()
    assert proto.read_streams() == ['socket.io']
    assert proto.stream_of('/') == proto.stream_of('/chat') == 'socket.io'


def test_streams_of_namespaces_include_negative_ones():
    proto = protocol(stream_count=3)
    assert proto.read_streams() == [
        'socket.io--2', 'socket.io--1', 'socket.io-0', 'socket.io-1',
        'socket.io-2']
    assert proto.stream_of('/') == 'socket.io-2'
    assert proto.stream_of('/chat') == 'socket.io-1'
    assert proto.stream_of('/abcdefghijkl') == 'socket.io--1'
    assert proto.stream_of('/négatif-namespace-with-a-long-name') == \
        'socket.io--2'
    namespaces = ['/', '/chat', '/admin', '/é', '/😀', '/abcdefghijkl'] + \
        [f'/ns{i}' for i in range(200)]
    assert {proto.stream_of(n) for n in namespaces} <= \
        set(proto.read_streams())


def test_outgoing_messages():
    proto = protocol()
    assert proto.broadcast('/c', 'ev', [1, 'a'], OPTS) == \
        Broadcast(ME, '/c', None, 'ev', (1, 'a'), OPTS)
    assert proto.broadcast('/c', 'ev', [], OPTS, 'req') == \
        Broadcast(ME, '/c', 'req', 'ev', (), OPTS)
    join = proto.sockets_rooms('/c', OPTS, ('a', 'b'), join=True)
    assert type(join) is SocketsJoin
    assert join == SocketsJoin(ME, '/c', OPTS, ('a', 'b'))
    leave = proto.sockets_rooms('/c', OPTS, ('a',), join=False)
    assert type(leave) is SocketsLeave
    assert leave == SocketsLeave(ME, '/c', OPTS, ('a',))
    assert proto.disconnect_sockets('/c', OPTS, True) == \
        DisconnectSockets(ME, '/c', OPTS, True)
    assert proto.fetch_sockets('/c', OPTS, 'req') == \
        FetchSockets(ME, '/c', 'req', OPTS)
    assert proto.server_side_emit('/c', 'hi', [1]) == \
        ServerSideEmit(ME, '/c', None, 'hi', (1,))
    assert proto.server_side_emit('/c', 'hi', [], 'req').request_id == 'req'


def test_answers():
    proto = protocol()
    fetch = FetchSockets(OTHER, '/c', 'r1', OPTS)
    assert proto.fetch_response(fetch, [{'id': 's'}]) == \
        FetchSocketsResponse(ME, '/c', 'r1', ({'id': 's'},))
    ask = Broadcast(OTHER, '/c', 'r2', 'e')
    assert proto.client_count(ask, 3) == \
        BroadcastClientCount(ME, '/c', 'r2', 3)
    assert proto.ack(ask, ['a', 1]) == BroadcastAck(ME, '/c', 'r2',
                                                    ('a', 1))
    emit = ServerSideEmit(OTHER, '/c', 'r3', 'e')
    assert proto.handler_response(emit, 'pong') == \
        ServerSideEmitResponse(ME, '/c', 'r3', 'pong')


@pytest.mark.parametrize('recovery,opts,offset', [
    (False, OPTS, None),
    (True, OPTS, '5-1'),
    (True, VOLATILE, None),
    (False, VOLATILE, None),
])
def test_other_servers_broadcast_entry(recovery, opts, offset):
    message = Broadcast(OTHER, '/', None, 'e', (1,), opts)
    assert protocol(recovery).on_entry(message, '5-1') == \
        Deliver(message, offset)


OWN_ENTRIES = [
    Broadcast(ME, '/', None, 'e', (), OPTS),
    DisconnectSockets(ME, '/', OPTS, False),
    SocketsJoin(ME, '/', OPTS, ('a',)),
    SocketsLeave(ME, '/', OPTS, ('a',)),
]


@pytest.mark.parametrize('message', OWN_ENTRIES)
def test_own_entries_skipped_without_recovery(message):
    proto = protocol(recovery=False)
    assert not proto.applies_own_entries(message)
    assert proto.on_entry(message, '1-0') is None


def test_own_entries_with_recovery():
    proto = protocol(recovery=True)
    broadcast, disconnect, join, leave = OWN_ENTRIES
    assert proto.on_entry(broadcast, '1-0') == Deliver(broadcast, '1-0')
    volatile = Broadcast(ME, '/', None, 'e', (), VOLATILE)
    assert proto.on_entry(volatile, '1-1') == Deliver(volatile, None)
    assert proto.on_entry(disconnect, '1-2') == Disconnect(disconnect)
    assert proto.on_entry(join, '1-3') is None
    assert proto.on_entry(leave, '1-4') is None
    assert [proto.applies_own_entries(m) for m in OWN_ENTRIES] == \
        [True, True, False, False]


@pytest.mark.parametrize('recovery', [False, True])
def test_other_servers_commands_from_the_stream(recovery):
    proto = protocol(recovery)
    join = SocketsJoin(OTHER, '/', OPTS, ('a',))
    leave = SocketsLeave(OTHER, '/', OPTS, ('a',))
    disconnect = DisconnectSockets(OTHER, '/', OPTS, True)
    assert proto.on_entry(join, '1-0') == ChangeRooms(join, join=True)
    assert proto.on_entry(leave, '1-1') == ChangeRooms(leave, join=False)
    assert proto.on_entry(disconnect, '1-2') == Disconnect(disconnect)
    assert proto.on_entry(Heartbeat(OTHER, '/'), '1-3') is None


def test_fetch_sockets_answers_complete_the_request():
    """PUBLISH counted this server and one other: the echo and the other's
    answer complete the request, which leaves the pending table."""
    proto = protocol()
    request = CollectRequest(5, lambda m: list(m.sockets), ME)
    proto.requests.add(request)
    request.expect_servers(2)
    fetch = proto.fetch_sockets('/', OPTS, request.id)
    assert proto.on_pubsub(fetch) is None  # the echo
    assert not request.done
    response = FetchSocketsResponse(OTHER, '/', request.id, ({'id': 's'},))
    assert proto.on_pubsub(response) is None
    assert request.done
    assert request.responses == [{'id': 's'}]
    assert len(proto.requests) == 0


def test_ack_answers_reach_the_request():
    proto = protocol()
    answers = []
    request = AckRequest(lambda *a: answers.append(a), 5, ME)
    proto.requests.add(request)
    request.expect_local_clients(0)
    request.expect_servers(2)
    assert proto.on_pubsub(proto.broadcast('/', 'e', [], OPTS,
                                           request.id)) is None
    proto.on_pubsub(BroadcastClientCount(OTHER, '/', request.id, 1))
    assert not request.done
    proto.on_pubsub(BroadcastAck(OTHER, '/', request.id, ('ok',)))
    assert request.done and answers == [('ok',)]
    assert len(proto.requests) == 0


def test_answers_to_unknown_requests_are_dropped():
    proto = protocol()
    for message in [FetchSocketsResponse(OTHER, '/', 'nope'),
                    ServerSideEmitResponse(OTHER, '/', 'nope', 1),
                    BroadcastAck(OTHER, '/', 'nope', ())]:
        assert proto.on_pubsub(message) is None


@pytest.mark.parametrize('message', [
    Broadcast(ME, '/', 'r', 'e'),
    Broadcast(ME, '/', None, 'e'),
    FetchSockets(ME, '/', 'r'),
    ServerSideEmit(ME, '/', None, 'hello'),
    SocketsJoin(ME, '/', OPTS, ('a',)),
    DisconnectSockets(ME, '/'),
    Heartbeat(ME, '/'),
])
def test_own_pubsub_messages_mean_nothing(message):
    proto = protocol()
    proto.on_server_event('/', 'hello', print)
    assert proto.on_pubsub(message) is None


def test_requests_of_other_servers():
    proto = protocol()
    fetch = FetchSockets(OTHER, '/', 'r', OPTS)
    assert proto.on_pubsub(fetch) == DescribeSockets(fetch)
    ask = Broadcast(OTHER, '/', 'r', 'e', (1,), OPTS)
    assert proto.on_pubsub(ask) == AskClients(ask)
    plain = Broadcast(OTHER, '/', None, 'e', (1,), OPTS)
    assert proto.on_pubsub(plain) == Deliver(plain, None)
    leave = SocketsLeave(OTHER, '/', OPTS, ('a',))
    assert proto.on_pubsub(leave) == ChangeRooms(leave, False)


def test_server_side_emit_handlers():
    proto = protocol()

    def handler(*args):
        return args

    proto.on_server_event('/chat', 'hello', handler)
    emit = ServerSideEmit(OTHER, '/chat', 'r', 'hello', (1,))
    assert proto.on_pubsub(emit) == CallHandler(emit, handler)
    no_ack = ServerSideEmit(OTHER, '/chat', None, 'hello')
    assert proto.on_pubsub(no_ack) == CallHandler(no_ack, handler)
    assert proto.on_pubsub(ServerSideEmit(OTHER, '/chat', 'r', 'bye')) is \
        None
    assert proto.on_pubsub(ServerSideEmit(OTHER, '/', 'r', 'hello')) is None


@pytest.mark.parametrize('message', [
    Heartbeat(OTHER, '/'), InitialHeartbeat(OTHER, '/'),
    AdapterClose(OTHER, '/'),
])
def test_heartbeats_mean_nothing(message):
    assert protocol().on_pubsub(message) is None
    assert protocol(True).on_entry(message, '1-0') is None


def test_local_action():
    proto = protocol(recovery=True)
    broadcast = proto.broadcast('/', 'e', [1], OPTS)
    assert proto.local_action(broadcast) == Deliver(broadcast, None)
    ask = proto.broadcast('/', 'e', [1], OPTS, 'req')
    assert proto.local_action(ask) == AskClients(ask)
    join = proto.sockets_rooms('/', OPTS, ('a',), True)
    assert proto.local_action(join) == ChangeRooms(join, True)
    leave = proto.sockets_rooms('/', OPTS, ('a',), False)
    assert proto.local_action(leave) == ChangeRooms(leave, False)
    disconnect = proto.disconnect_sockets('/', OPTS, False)
    assert proto.local_action(disconnect) == Disconnect(disconnect)
    fetch = proto.fetch_sockets('/', OPTS, 'req')
    assert proto.local_action(fetch) == DescribeSockets(fetch)
    assert proto.local_action(Heartbeat(ME, '/')) is None
