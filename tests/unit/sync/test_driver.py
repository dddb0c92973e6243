"""The sync driver's plumbing, with the I/O boundary replaced: what runs on
which task, how requests count their answers, and the lifecycle."""
import threading
import time

import pytest

from sio_redis_streams import RedisStreamsManager, RemoteSocket
from sio_redis_streams.core.messages import BroadcastAck, \
    BroadcastOptions, FetchSockets, FetchSocketsResponse
from sio_redis_streams.core.requests import AckRequest, CollectRequest
from sio_redis_streams.sync.driver import ManagerClosed
from tests.unit.sync.fakes import NOWHERE, manager

OTHER = 'b' * 16


@pytest.fixture
def driver():
    """The driver of a manager that is attached but not started, with its
    work queue running, and that never connects anywhere."""
    mgr = manager()
    driver = mgr._driver
    driver.start = lambda: None
    worker = threading.Thread(target=driver._work.run,
                              args=(driver.context.stopping,), daemon=True)
    worker.start()
    yield driver
    driver.context.stopping.set()
    driver._work.stop()
    worker.join(5)


def test_the_subscriber_hands_requests_over_without_waiting(driver):
    """Answering a request (a Redis round trip, user data to pack) runs on
    the work queue: a stalled answer cannot stall the subscriber."""
    answering, release = threading.Event(), threading.Event()
    tasks = []

    def respond(requester, message):
        tasks.append(threading.current_thread())
        answering.set()
        release.wait(5)

    driver.respond = respond
    started = time.monotonic()
    driver._on_pubsub_message(FetchSockets(OTHER, '/', 'r1',
                                           BroadcastOptions()))
    assert time.monotonic() - started < 0.5
    assert answering.wait(2)
    assert tasks[0] is not threading.current_thread()
    release.set()


def test_user_ack_callbacks_do_not_run_on_the_subscriber(driver):
    called, release = threading.Event(), threading.Event()

    def slow_callback(*args):
        called.set()
        release.wait(5)

    request = AckRequest(slow_callback, 10, driver.context.uid)
    driver.protocol.requests.add(request)
    started = time.monotonic()
    driver._on_pubsub_message(BroadcastAck(OTHER, '/', request.id, (1,)))
    assert time.monotonic() - started < 0.5
    assert called.wait(2)
    release.set()


def ask_in_background(driver, request, message, receivers):
    """Publish ``message`` as if Redis counted ``receivers`` subscribers."""
    driver.pubsub.wait_subscribed = lambda namespaces, timeout: True
    driver.pubsub.publish = lambda message: receivers
    result = {}
    thread = threading.Thread(target=lambda: result.update(
        complete=driver.ask(request, message, 3)))
    thread.start()
    return thread, result


def test_a_request_waits_for_every_server_that_got_it(driver):
    """PUBLISH counted only B (this server's subscription came a moment
    too late); the confirmation of that subscription arrives meanwhile.
    Before, the request then expected one answer too few and finished at
    once, without B's."""
    request = CollectRequest(3, lambda m: list(m.sockets), driver.context.uid)
    message = driver.protocol.fetch_sockets('/', BroadcastOptions(),
                                            request.id)
    thread, result = ask_in_background(driver, request, message, 1)
    thread.join(0.3)
    assert thread.is_alive(), 'finished without the answer of B'
    driver._on_pubsub_message(FetchSocketsResponse(OTHER, '/', request.id,
                                                   ({'id': 's1'},)))
    thread.join(3)
    assert result == {'complete': True}
    assert request.responses == [{'id': 's1'}]


def test_a_request_counts_this_server_by_its_echo(driver):
    request = CollectRequest(3, lambda m: list(m.sockets), driver.context.uid)
    message = driver.protocol.fetch_sockets('/', BroadcastOptions(),
                                            request.id)
    thread, result = ask_in_background(driver, request, message, 2)
    driver._on_pubsub_message(FetchSocketsResponse(OTHER, '/', request.id,
                                                   ({'id': 's1'},)))
    thread.join(0.3)
    assert thread.is_alive(), 'finished before hearing its own request'
    driver._on_pubsub_message(message)  # the echo
    thread.join(3)
    assert result == {'complete': True}
    assert (request.expected, request.received) == (1, 1)


def test_operations_after_close_raise_a_clear_error():
    mgr = manager()
    mgr.close()
    for operation in (mgr.fetch_sockets, mgr.server_count,
                      lambda: mgr.server_side_emit('e'),
                      lambda: mgr.server_side_call('e'),
                      lambda: mgr.emit_with_ack('e', 1)):
        with pytest.raises(ManagerClosed, match='closed'):
            operation()
    mgr.emit('late', 1)  # dropped with a warning, as python-socketio may
    assert mgr.stats()['outbox_depth'] == 0


def test_close_racing_start_leaves_no_task_running():
    for _ in range(10):
        mgr = manager(block_time_ms=100, socket_timeout=0.2,
                      close_timeout=0.5)
        threads = [threading.Thread(target=mgr.start),
                   threading.Thread(target=mgr.close)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)
        mgr.close()
        assert mgr._driver.tasks_stopped()
        mgr.start()  # never again after close
        assert mgr._driver.tasks_stopped()


@pytest.mark.parametrize('attached', [False, True])
def test_remote_socket_call_on_a_write_only_manager_says_why(attached):
    """Before, it failed with AttributeError (no server to call with)."""
    mgr = manager(write_only=True) if attached else \
        RedisStreamsManager(NOWHERE, write_only=True)
    socket = RemoteSocket.from_wire(mgr, '/', OTHER, {'id': 's1'})
    with pytest.raises(RuntimeError, match='write-only'):
        socket.call('ask', 1, timeout=0.1)
