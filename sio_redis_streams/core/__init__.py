"""The cluster protocol, with no I/O: wire format, typed messages, request
bookkeeping, stream positions and gap accounting, the writer's decisions,
presence, and the selection of what a recovered client missed.

Nothing in this package opens a socket, starts a thread or waits: the
drivers (:mod:`sio_redis_streams.sync`) do, and share all of this.
"""
from . import codec, messages

__all__ = ['codec', 'messages']
