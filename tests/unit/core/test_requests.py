"""Request bookkeeping: when a request is complete (PUBLISH's receiver
count, this server's echo, the others' answers), the counts it reports, its
callbacks, acknowledgements, and the table of pending requests."""
import pytest

from sio_redis_streams.core.messages import Broadcast, BroadcastAck, \
    BroadcastClientCount, FetchSockets, FetchSocketsResponse, \
    ServerSideEmit, ServerSideEmitResponse
from sio_redis_streams.core.requests import AckRequest, CollectRequest, \
    PendingRequests, new_request_id

ME = 'me'


def collect_request(timeout=5.0, now=0.0):
    return CollectRequest(timeout, lambda m: list(m.sockets), ME, now=now)


def answer(request, uid, *ids):
    return FetchSocketsResponse(uid, '/', request.id,
                                tuple({'id': i} for i in ids))


def echo(request):
    return FetchSockets(ME, '/', request.id)


def test_request_ids():
    ids = {new_request_id() for _ in range(100)}
    assert len(ids) == 100
    assert all(len(i) == 16 and int(i, 16) >= 0 for i in ids)


def test_deadline():
    assert collect_request(timeout=3, now=10).deadline == 13


def test_subscribed_request_needs_echo_and_answers():
    """Counted by PUBLISH (3 = this server + A + B): complete after its
    echo and both answers, in any order."""
    request = collect_request()
    assert not request.expect_servers(3)
    assert not request.on_response(answer(request, 'A', 'a1', 'a2'))
    assert not request.on_response(answer(request, 'B', 'b1'))
    assert not request.done
    assert request.on_response(echo(request))
    assert request.done
    assert request.responses == [{'id': 'a1'}, {'id': 'a2'}, {'id': 'b1'}]
    assert (request.expected, request.received) == (2, 2)


def test_subscribed_request_echo_first():
    request = collect_request()
    assert not request.on_response(echo(request))
    assert not request.expect_servers(2)
    assert request.on_response(answer(request, 'A'))
    assert (request.expected, request.received) == (1, 1)
    assert request.responses == []


def test_unsubscribed_request_completes_with_others_only():
    """Published before the subscription was in place: PUBLISH did not
    count this server (2 = A + B) and no echo comes."""
    request = collect_request()
    assert not request.expect_servers(2)
    assert not request.on_response(answer(request, 'A', 'a'))
    assert request.on_response(answer(request, 'B', 'b'))
    assert (request.expected, request.received) == (2, 2)


def test_answers_before_expect_servers():
    request = collect_request()
    assert not request.on_response(answer(request, 'A', 'a'))
    assert not request.on_response(echo(request))
    assert not request.done
    assert request.expect_servers(2)
    assert request.done


def test_no_receiver_completes_at_once():
    request = collect_request()
    assert request.expect_servers(0)
    assert (request.expected, request.received) == (0, 0)


def test_duplicate_answers_count_once():
    request = collect_request()
    request.expect_servers(3)
    request.on_response(echo(request))
    assert not request.on_response(answer(request, 'A', 'a'))
    assert not request.on_response(answer(request, 'A', 'again'))
    assert not request.on_response(echo(request))
    assert (request.expected, request.received) == (2, 1)
    assert request.responses == [{'id': 'a'}]
    assert request.on_response(answer(request, 'B', 'b'))
    assert request.responses == [{'id': 'a'}, {'id': 'b'}]


def test_expected_and_received_exclude_the_echo():
    request = collect_request()
    request.expect_servers(4)
    request.on_response(echo(request))
    request.on_response(answer(request, 'A'))
    assert (request.expected, request.received) == (3, 1)
    assert not request.done


def test_on_done_called_exactly_once():
    request = collect_request()
    calls = []
    request.on_done(lambda: calls.append('first'))
    request.on_done(lambda: calls.append('second'))
    request.expect_servers(1)
    assert calls == []
    assert request.on_response(answer(request, 'A'))
    assert calls == ['first', 'second']
    assert request.on_response(answer(request, 'B'))
    assert request.on_response(echo(request))
    assert request.expect_servers(1)
    assert calls == ['first', 'second']
    request.on_done(lambda: calls.append('late'))
    assert calls == ['first', 'second', 'late']


def test_server_side_emit_answers():
    request = CollectRequest(5, lambda m: [m.answer], ME)
    request.expect_servers(3)
    request.on_response(ServerSideEmit(ME, '/', request.id, 'ping'))
    request.on_response(ServerSideEmitResponse('A', '/', request.id, 'a'))
    assert request.on_response(ServerSideEmitResponse('B', '/', request.id,
                                                      ['b', 1]))
    assert request.responses == ['a', ['b', 1]]


class Acks:
    def __init__(self):
        self.args = []

    def __call__(self, *args):
        self.args.append(args)


def test_ack_request_counts_clients_of_every_server():
    """This server asked 2 clients, A asked 1, B asked none; PUBLISH counted
    all three servers."""
    acks = Acks()
    request = AckRequest(acks, 5, ME)
    request.expect_local_clients(2)
    assert not request.expect_servers(3)
    assert not request.on_response(Broadcast(ME, '/', request.id, 'e'))
    assert not request.on_response(
        BroadcastClientCount('A', '/', request.id, 1))
    request.local_ack('x')
    assert not request.on_response(
        BroadcastAck('A', '/', request.id, ('y', 2)))
    assert not request.on_response(
        BroadcastClientCount('B', '/', request.id, 0))
    assert not request.done
    assert (request.clients_expected, request.acks) == (3, 2)
    request.local_ack()
    assert request.done
    assert acks.args == [('x',), ('y', 2), ()]


def test_ack_request_waits_for_every_server_count():
    """All known clients answered, but a server has not said how many it
    asked."""
    request = AckRequest(Acks(), 5, ME)
    request.expect_servers(2)
    request.on_response(BroadcastClientCount('A', '/', request.id, 1))
    request.on_response(BroadcastAck('A', '/', request.id, ('a',)))
    assert not request.done
    assert request.on_response(BroadcastClientCount('B', '/', request.id,
                                                    0))


def test_ack_request_acks_before_counts():
    acks = Acks()
    request = AckRequest(acks, 5, ME)
    request.on_response(BroadcastAck('A', '/', request.id, ('early',)))
    assert not request.expect_servers(1)
    assert request.on_response(BroadcastClientCount('A', '/', request.id,
                                                    1))
    assert acks.args == [('early',)]


def test_ack_request_with_no_client():
    request = AckRequest(Acks(), 5, ME)
    request.expect_local_clients(0)
    request.on_response(Broadcast(ME, '/', request.id, 'e'))
    assert request.expect_servers(1)


def test_ack_request_echo_is_no_ack():
    acks = Acks()
    request = AckRequest(acks, 5, ME)
    request.expect_local_clients(1)
    request.expect_servers(1)
    request.on_response(Broadcast(ME, '/', request.id, 'e'))
    assert not request.done
    assert acks.args == []
    request.local_ack(None)
    assert request.done and acks.args == [(None,)]


def make_pending(*requests):
    pending = PendingRequests()
    for request in requests:
        pending.add(request)
    return pending


def test_pending_routes_answers_and_forgets_complete_requests():
    first, second = collect_request(), collect_request()
    pending = make_pending(first, second)
    assert len(pending) == 2
    assert pending.get(first.id) is first
    assert pending.get(None) is None
    first.expect_servers(2)
    pending.on_response(answer(first, 'A', 'a'))
    assert len(pending) == 2
    pending.on_echo(echo(first), first.id)
    assert first.done
    assert pending.get(first.id) is None
    assert len(pending) == 1
    pending.on_response(answer(first, 'B'))  # ended: dropped quietly
    pending.on_response(FetchSocketsResponse('A', '/', 'unknown', ()))
    pending.on_echo(echo(first), 'unknown')
    assert len(pending) == 1 and not second.done
    assert first.responses == [{'id': 'a'}]


def test_pending_discard():
    request = collect_request()
    pending = make_pending(request)
    pending.discard(request)
    pending.discard(request)
    assert len(pending) == 0
    request.expect_servers(1)
    pending.on_response(answer(request, 'A'))
    assert not request.done


@pytest.mark.parametrize('now,expired,left', [
    (9.9, 0, 3), (10, 1, 2), (15, 2, 1), (100, 3, 0),
])
def test_pending_expire(now, expired, left):
    pending = make_pending(collect_request(timeout=10, now=0),
                           collect_request(timeout=5, now=10),
                           collect_request(timeout=20, now=10))
    assert pending.expire(now=now) == expired
    assert len(pending) == left
    assert pending.expire(now=now) == 0


def test_no_more_answers_than_servers_asked():
    request = CollectRequest(5, lambda m: list(m.sockets), 'me')
    request.expect_servers(2)
    request.on_response(FetchSocketsResponse('a', '/', request.id,
                                             ({'id': 1},)))
    request.on_response(FetchSocketsResponse('b', '/', request.id,
                                             ({'id': 2},)))
    assert request.done
    request.on_response(FetchSocketsResponse('c', '/', request.id,
                                             ({'id': 3},)))
    assert request.responses == [{'id': 1}, {'id': 2}]
