"""Signal-driven shutdown of the test server."""

from __future__ import annotations

import logging
import os
import signal
import socket
import sys
from types import FrameType

import socketio

logger = logging.getLogger(__name__)


class GracefulExit:
    """On SIGTERM/SIGINT: ``server.shutdown()``, then exit 0 (hard exit after
    ``grace_seconds``).

    The signal handler only writes a byte to a socket pair; a background task
    waiting on the other end does the work. A handler cannot do it itself:
    under gevent/eventlet it may run inside the hub, which must not block, and
    a task it spawned would wait until the hub's current poll times out,
    whereas the byte wakes that poll at once.
    """

    def __init__(
        self, server: socketio.Server, grace_seconds: int = 10
    ) -> None:
        self._server = server
        self._grace_seconds = grace_seconds
        self._triggered = False
        self._reader, self._writer = socket.socketpair()
        # Non-blocking, a send never waits and so never switches greenlets,
        # which is what a signal handler running inside a hub requires.
        self._writer.setblocking(False)

    def install(self) -> None:
        """Start the waiting task; install the SIGTERM and SIGINT handlers."""
        self._server.start_background_task(self._wait_and_exit)
        for signum in (signal.SIGTERM, signal.SIGINT):
            if self._server.async_mode == 'gevent':
                # a Python-level handler would only run once gevent's hub
                # (C code) hands control back, which an idle server may not
                # do for a long time; gevent's own handler runs at once
                import gevent
                gevent.signal_handler(signum, self._on_signal, signum, None)
            else:
                signal.signal(signum, self._on_signal)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        # Only the first signal counts: re-arming the alarm would postpone
        # the hard exit.
        if self._triggered:
            return
        self._triggered = True
        # SIGALRM's default action kills the process even if the event loop
        # is stuck.
        signal.alarm(self._grace_seconds)
        self._writer.send(b'x')

    def _wait_and_exit(self) -> None:
        self._reader.recv(1)
        status = 0
        try:
            self._server.shutdown()
        except Exception:
            logger.exception('Socket.IO shutdown failed')
            status = 1
        sys.stdout.flush()
        sys.stderr.flush()
        # Serving loops and manager tasks differ per async mode; a direct exit
        # ends all of them at once without waiting on any.
        os._exit(status)
