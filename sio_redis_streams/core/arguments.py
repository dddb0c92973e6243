"""Event arguments: python-socketio's ``data`` (one value, a tuple for
several, ``None`` for none) and the protocol's argument lists."""
from __future__ import annotations

from typing import Any, List, Tuple


def emit_data(args: List[Any]) -> Any:
    """python-socketio's ``data`` for the event arguments ``args``: one
    argument as is, several (or none) as a tuple (a lone ``None`` stays one
    argument)."""
    if len(args) == 1 and args[0] is not None:
        return args[0]
    return tuple(args)


def arguments(data: Any) -> List[Any]:
    """The event arguments of python-socketio's ``data``: a tuple is several
    arguments, ``None`` none, anything else one."""
    if isinstance(data, tuple):
        return list(data)
    if data is None:
        return []
    return [data]


def answer_of(args: Tuple[Any, ...]) -> Any:
    """A client's acknowledgement as ``sio.call()`` returns it: one argument
    as is, several as a tuple, none as ``None``."""
    if not args:
        return None
    return args[0] if len(args) == 1 else args
