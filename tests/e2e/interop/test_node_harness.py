"""Self-test of the Node.js side of the interop harness: two Node servers with
the official adapter on one Redis, driven through the ``cmd`` protocol by real
python-socketio clients. No Python server takes part."""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
import requests

from tests.support.node_server import NodeServerProcess, require_node

# cluster: like every test that starts processes (see tests/conftest.py).
pytestmark = [pytest.mark.interop, pytest.mark.cluster]

NodeFactory = Callable[..., list[NodeServerProcess]]


@pytest.fixture
def node_factory(tmp_path: Path) -> Iterator[NodeFactory]:
    """Start Node servers in parallel (named A, B...) and wait until all are
    READY; every one is stopped at teardown."""
    require_node()
    started: list[NodeServerProcess] = []
    names = (chr(ord('A') + i) for i in itertools.count())

    def start(
        count: int, *, redis_url: str, **settings: Any
    ) -> list[NodeServerProcess]:
        batch = [
            NodeServerProcess(
                redis_url=redis_url,
                name=next(names),
                workdir=tmp_path / 'node',
                **settings,
            )
            for _ in range(count)
        ]
        for server in batch:
            started.append(server)
            server.launch()
        for server in batch:
            server.wait_ready()
        return batch

    yield start
    for server in started:
        server.stop()


def _logs(*servers: NodeServerProcess) -> str:
    return '\n'.join(server.logs() for server in servers)


def test_two_node_servers_form_a_cluster(
    redis_factory, node_factory, client_factory
):
    redis_server = redis_factory(appendonly=False)
    server_a, server_b = node_factory(2, redis_url=redis_server.url)
    alice = client_factory(server_a.url, namespaces=('/', '/chat'))
    bob = client_factory(server_b.url, namespaces=('/', '/chat'))

    assert alice.cmd('ping')['name'] == 'A'
    assert bob.cmd('ping')['name'] == 'B'
    assert requests.get(f'{server_a.url}/health', timeout=5).text == 'ok'
    # Several acknowledgement arguments arrive as a tuple.
    echoed = alice.client.call('echo', (1, 'two'), namespace='/chat')
    assert echoed == (1, 'two')

    reply = alice.cmd('emit', event='greeting', args=['hi', {'n': 1}])
    assert reply == {'ok': True}
    assert bob.wait_for(1, event='greeting') == [('hi', {'n': 1})]

    sockets = alice.cmd('fetch_sockets')
    assert [socket['id'] for socket in sockets] == sorted(
        [alice.sid(), bob.sid()]
    ), _logs(server_a, server_b)
    remote = next(socket for socket in sockets if socket['id'] == bob.sid())
    assert remote['rooms'] == [bob.sid()]
    assert remote['handshake']['address'] == '127.0.0.1'

    assert alice.cmd('server_side_call', event='ping-servers', args=[7]) == {
        'responses': ['pong-from-B']
    }, _logs(server_a, server_b)
    assert bob.cmd('server_events') == [{'event': 'ping-servers', 'args': [7]}]
    assert alice.cmd('server_count') == 2
    assert alice.cmd('server_count', namespace='/chat') == 2

    raw = redis_server.client()
    try:
        entries = raw.xrange('socket.io')
    finally:
        raw.close()
    broadcasts = [
        fields
        for _, fields in entries
        if set(fields) == {b'uid', b'nsp', b'type', b'data'}
        and fields[b'type'] == b'3'
    ]
    assert broadcasts, entries
    assert re.fullmatch(rb'[0-9a-f]{16}', broadcasts[0][b'uid'])
    assert broadcasts[0][b'nsp'] == b'/'
    assert json.loads(broadcasts[0][b'data']) == {
        'packet': {'type': 2, 'data': ['greeting', 'hi', {'n': 1}]},
        'opts': {'rooms': [], 'except': [], 'flags': {}},
    }

    # SIGTERM must be handled (exit status 0), not end the process by default.
    alice.close()
    bob.close()
    assert server_a.stop() == 0, _logs(server_a)
    assert server_b.stop() == 0, _logs(server_b)
