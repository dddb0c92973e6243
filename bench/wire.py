"""A Socket.IO client for the benchmarks that costs next to nothing: the
Engine.IO v4 / Socket.IO v5 text protocol over a raw WebSocket.

``bench_broadcast.py`` receives with it; ``run.py`` only sends ``cmd``
requests with it (its receivers are ``receiver.mjs``)."""
from __future__ import annotations

import itertools
import json
import threading
import time

import websocket


class RawClient:
    """A Socket.IO client of one server speaking the Engine.IO/Socket.IO
    text protocol over a raw WebSocket.

    python-socketio's client costs more per message than the servers being
    measured, and would be what the benchmark measures. This one only
    timestamps ``bench`` messages and sends ``cmd`` requests.
    """

    def __init__(self, url: str) -> None:
        self.times: dict[tuple[str, int], tuple[float, float]] = {}
        self._acks: dict[int, list] = {}
        self._ack_ids = itertools.count()
        self._changed = threading.Condition()
        self._ws = websocket.create_connection(
            url.replace('http://', 'ws://') +
            '/socket.io/?EIO=4&transport=websocket')
        self._ws.recv()  # the Engine.IO open packet
        self._ws.send('40')  # connect to the "/" namespace
        self.sid = json.loads(self._ws.recv()[2:])['sid']
        threading.Thread(target=self._read, daemon=True).start()

    def call(self, data: dict, timeout: float = 30) -> list:
        """Send a ``cmd`` event and wait for its acknowledgement."""
        ack_id = next(self._ack_ids)
        self._ws.send(f'42{ack_id}' + json.dumps(['cmd', data]))
        with self._changed:
            if not self._changed.wait_for(lambda: ack_id in self._acks,
                                          timeout):
                raise TimeoutError(f'no answer to {data!r} in {timeout} s')
            return self._acks.pop(ack_id)

    def wait(self, run: str, count: int, timeout: float) -> list:
        """The (sent, received) times of ``run``, once ``count`` arrived."""
        with self._changed:
            self._changed.wait_for(lambda: len(self._of(run)) >= count,
                                   timeout)
            return self._of(run)

    def close(self) -> None:
        self._ws.close()

    def _of(self, run: str) -> list:
        return [v for (r, _), v in self.times.items() if r == run]

    def _read(self) -> None:
        while True:
            try:
                frame = self._ws.recv()
            except (websocket.WebSocketException, OSError):
                return
            received = time.time()
            if frame == '2':  # Engine.IO ping
                self._ws.send('3')
            elif frame.startswith('42["bench"'):
                message = json.loads(frame[2:])[1]
                with self._changed:
                    self.times[(message['run'], message['n'])] = (
                        message['t'], received)
                    self._changed.notify_all()
            elif frame.startswith('43'):
                ack_id, _, body = frame[2:].partition('[')
                with self._changed:
                    self._acks[int(ack_id)] = json.loads('[' + body)
                    self._changed.notify_all()
