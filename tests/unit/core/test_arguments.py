"""Event arguments between python-socketio's ``data`` and the protocol's
argument lists, both ways."""
import pytest

from sio_redis_streams.core.arguments import answer_of, arguments, \
    emit_data


@pytest.mark.parametrize('data,args', [
    (None, []), (1, [1]), ('a', ['a']), ([1, 2], [[1, 2]]),
    ((1, 2), [1, 2]), ((), []), ({'k': 1}, [{'k': 1}]),
])
def test_arguments(data, args):
    assert arguments(data) == args


@pytest.mark.parametrize('args,data', [
    ([], ()), ([1], 1), ([None], (None,)), ([[1, 2]], [1, 2]),
    ([1, 'b'], (1, 'b')),
])
def test_emit_data(args, data):
    assert emit_data(args) == data


@pytest.mark.parametrize('data', [1, 'a', [1, 2], (1, 2), {'k': 1}])
def test_round_trip(data):
    assert emit_data(arguments(data)) == data


@pytest.mark.parametrize('args,answer', [
    ((), None), ((1,), 1), ((None,), None), (([1, 2],), [1, 2]),
    ((1, 'b'), (1, 'b')),
])
def test_answer_of(args, answer):
    assert answer_of(args) == answer
