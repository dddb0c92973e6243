"""One Redis connection held by one task for its hot path.

Through a client's command methods, every command checks a connection out
of the pool (polling its socket for stray data), runs inside the retry
machinery and has its reply converted: measured on a 2-core machine, an
``XREAD`` of one entry took 182 µs that way under gevent and 32 µs sent
packed on a held connection; a one-entry MULTI/XADD/EXEC 189 µs against
55 µs. The stream reader and the writer each have a client of their own,
so they can hold its one connection and send several commands in one
write. The connection's class still does the connecting (Sentinel
discovery, TLS, AUTH, the hand-shake hooks) and the reply parsing (hiredis
where installed).
"""
from __future__ import annotations

from typing import Any, List, Optional, Sequence

from ..core.commands import Command


class DirectSender:
    """What a task sends its commands through: one held connection
    (:class:`DirectConnection`), or one per primary of a Redis Cluster
    (:class:`~sio_redis_streams.sync.cluster.ClusterDirectConnection`)."""

    _response_error: type

    def execute(self, *commands: Command, key: Optional[str] = None
                ) -> List[Any]:
        """Send ``commands`` (which touch ``key`` only) in one write; their
        replies in order, an error reply as an instance, not raised."""
        raise NotImplementedError

    def call(self, command: Command, key: Optional[str] = None) -> Any:
        """One command's reply.

        :raises: the error reply, as the client library's class of it.
        """
        reply, = self.execute(command, key=key)
        if isinstance(reply, self._response_error):
            raise reply
        return reply

    def disconnect(self) -> None:
        """Close the held connections, as a task does after a failure."""
        raise NotImplementedError

    @property
    def socket(self) -> Optional[Any]:
        """The socket of the connection used last, while connected."""
        raise NotImplementedError


class DirectConnection(DirectSender):
    """Sends commands on one connection of ``client`` and reads their
    replies raw.

    :param client: a client (redis-py or valkey) used by this task only.
    :param response_error: the client library's class of error replies.
    """

    def __init__(self, client: Any, response_error: type) -> None:
        self._pool = client.connection_pool
        self._response_error = response_error
        self._connection: Any = None

    def execute(self, *commands: Command, key: Optional[str] = None
                ) -> List[Any]:
        """Send ``commands`` in one write; their replies in order, an error
        reply as an instance of the error class, not raised. (``key``, the
        key the commands touch, matters on a Redis Cluster only.)

        Anything else (a lost connection, a timeout) disconnects, so that
        no reply of this call is left to be read by the next one, and is
        raised; the next call connects again.
        """
        connection = self._connection
        if connection is None:
            connection = self._connection = checkout(self._pool)
        return exchange(connection, commands, self._response_error)

    def disconnect(self) -> None:
        """Close the held connection (and any other of the client's), as
        a task does after a failure."""
        self._pool.disconnect()

    @property
    def socket(self) -> Optional[Any]:
        """The connection's socket, while connected."""
        return getattr(self._connection, '_sock', None)


def exchange(connection: Any, commands: Sequence[Command],
             response_error: type) -> List[Any]:
    """Write ``commands`` on ``connection`` at once and read every reply,
    error replies as instances; on any other failure, disconnect (no reply
    is left for the next exchange to read by mistake) and raise."""
    try:
        connection.send_packed_command(
            connection.pack_commands(commands), check_health=False)
        replies = []
        for _ in commands:
            try:
                replies.append(connection.read_response())
            except response_error as error:
                replies.append(error)
        return replies
    except BaseException:
        connection.disconnect()
        raise


def checkout(pool: Any) -> Any:
    """A connection of ``pool``, held until the caller disconnects it."""
    try:
        return pool.get_connection()
    except TypeError:  # redis-py < 5.3 and valkey want a command name
        return pool.get_connection('_')
