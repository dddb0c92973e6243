"""Option parsing: a wrong value fails at construction, naming the option."""
from pathlib import Path

import pytest

from sio_redis_streams import RedisStreamsManager
from sio_redis_streams.sync.connection import parse_sentinel_url
from sio_redis_streams import options as options_module
from sio_redis_streams.options import Options, shown_default


@pytest.mark.parametrize('name,value', [
    ('stream_name', ''),
    ('stream_name', 5),
    ('stream_count', 0),
    ('stream_count', 1.5),
    ('stream_count', True),
    ('channel_prefix', ''),
    ('use_sharded_pubsub', 'yes'),
    ('maxlen', 0),
    ('maxlen', -10),
    ('read_count', 0),
    ('block_time_ms', 0),
    ('block_time_ms', '5000'),
    ('session_key_prefix', None),
    ('heartbeat_interval', 0),
    ('heartbeat_interval', float('nan')),
    ('heartbeat_timeout', -1),
    ('write_only', 1),
    ('json', object()),
    ('logger', 'log'),
    ('redis_options', ['a']),
    ('outbox_size', 0),
    ('outbox_timeout', -1),
    ('outbox_timeout', False),
    ('write_batch_size', 0),
    ('replica_acks', -1),
    ('replica_acks', 1.0),
    ('replica_acks', False),
    ('replica_ack_timeout', 0),
    ('redis_client', object()),
    ('request_timeout', 0),
    ('ack_timeout', float('inf')),
    ('socket_timeout', 0),
    ('max_message_size', 0),
    ('close_timeout', 0),
])
def test_bad_option_names_itself(name, value):
    with pytest.raises(ValueError, match=f'^{name}: '):
        RedisStreamsManager('redis://127.0.0.1:1/0', **{name: value})


def test_heartbeat_timeout_must_exceed_interval():
    with pytest.raises(ValueError, match='heartbeat_timeout'):
        Options(heartbeat_interval=5, heartbeat_timeout=5)


@pytest.mark.parametrize('url', ['http://localhost', 'localhost:6379', ''])
def test_bad_url(url):
    with pytest.raises(ValueError, match='^url: '):
        RedisStreamsManager(url)


def test_redis_client_must_be_a_client():
    with pytest.raises(ValueError, match='^redis_client: '):
        RedisStreamsManager(redis_client='redis://localhost')


@pytest.mark.parametrize('url', [
    'redis://localhost:6379/0', 'rediss://h:1/2', 'unix:///tmp/r.sock',
    'valkey://localhost', 'valkeys://localhost',
    'redis+sentinel://h1:26379,h2:26380/0/mymaster',
    'redis+cluster://h1:7000,h2:7001', 'rediss+cluster://h1:7000/',
    'valkey+cluster://h1:7000'])
def test_good_urls(url):
    assert RedisStreamsManager(url).options.url == url


def test_outbox_timeout_zero_is_allowed():
    assert Options(outbox_timeout=0).outbox_timeout == 0


def test_defaults_match_the_node_adapter():
    options = Options()
    assert (options.stream_name, options.stream_count,
            options.channel_prefix, options.use_sharded_pubsub,
            options.maxlen, options.read_count, options.block_time_ms,
            options.session_key_prefix, options.heartbeat_interval,
            options.heartbeat_timeout) == (
        'socket.io', 1, 'socket.io', False, 10_000, 100, 5_000,
        'sio:session:', 5.0, 10.0)


def test_parse_sentinel_url():
    sentinels, service, kwargs = parse_sentinel_url(
        'redis+sentinel://user:p%40ss@h1:26379,h2:26380/3/cache')
    assert sentinels == [('h1', 26379), ('h2', 26380)]
    assert service == 'cache'
    assert kwargs == {'username': 'user', 'password': 'p@ss', 'db': 3}
    assert parse_sentinel_url('redis+sentinel://h:1')[1] == 'mymaster'
    with pytest.raises(ValueError, match='^url: '):
        parse_sentinel_url('redis+sentinel://h1/0')


README = Path(__file__).resolve().parents[2] / 'README.md'


def readme_options_table():
    """The rows of the README's options table: {name: (default, meaning)}."""
    lines = README.read_text().splitlines()
    start = lines.index('| option | default | meaning |')
    rows = {}
    for line in lines[start + 2:]:
        if not line.startswith('|'):
            break
        name, default, meaning = [cell.strip() for cell in
                                  line.strip('|').split(' | ')]
        rows[name.strip('`')] = (default, meaning)
    return rows


def test_readme_options_table_is_the_declaration():
    declared = {f.name: (shown_default(f), f.metadata['doc'])
                for f in options_module.declared()}
    assert readme_options_table() == declared


def test_every_option_is_documented_in_the_docstring():
    doc = RedisStreamsManager.__doc__
    for f in options_module.declared():
        if f.name != 'url':
            assert f':param {f.name}: {f.metadata["doc"]}' in doc


def test_unknown_option_names_itself():
    with pytest.raises(ValueError, match='^stream_nmae: no such option'):
        RedisStreamsManager('redis://127.0.0.1:1/0', stream_nmae='x')
