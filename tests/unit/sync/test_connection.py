"""Which error replies the writer retries, as the client library hands
them over: turned into its own classes, prefixes stripped, and prefixed by
a pipeline with the command that failed."""
import pytest
import redis
from redis._parsers.base import BaseParser

from sio_redis_streams.sync.connection import RedisConnector
from sio_redis_streams.options import Options


@pytest.fixture(scope='module')
def connector() -> RedisConnector:
    return RedisConnector(Options(url='redis://127.0.0.1:1/0'), 'test')


def reply(text: str, in_pipeline: bool) -> Exception:
    error = BaseParser.parse_error(text)
    if in_pipeline:
        redis.client.Pipeline.annotate_exception(
            None, error, 1, ('XADD', 'socket.io', '*', 'uid', 'x'))
    return error


@pytest.mark.parametrize('in_pipeline', [False, True])
@pytest.mark.parametrize('text', [
    "OOM command not allowed when used memory > 'maxmemory'.",
    'LOADING Redis is loading the dataset in memory',
    "READONLY You can't write against a read only replica.",
    'MASTERDOWN Link with MASTER is down',
    'TRYAGAIN Multiple keys request during rehashing of slot',
    'CLUSTERDOWN The cluster is down',
    'BUSY Redis is busy running a script.',
    'NOREPLICAS Not enough good replicas to write.',
])
def test_replies_that_may_go_away_are_retried(connector, text, in_pipeline):
    assert connector.is_transient(reply(text, in_pipeline))


@pytest.mark.parametrize('in_pipeline', [False, True])
@pytest.mark.parametrize('text', [
    'WRONGTYPE Operation against a key holding the wrong kind of value',
    'ERR The ID specified in XADD is equal or smaller than the target',
    "NOPERM this user has no permissions to run the 'xadd' command",
    'ERR an OOM mentioned later is not a prefix',
])
def test_other_replies_are_not(connector, text, in_pipeline):
    assert not connector.is_transient(reply(text, in_pipeline))
