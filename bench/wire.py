"""A Socket.IO client for the benchmark's ``cmd`` requests that costs next
to nothing: the Engine.IO v4 / Socket.IO v5 text protocol over a raw
WebSocket (the receivers are ``receiver.mjs``)."""
from __future__ import annotations

import itertools
import json
import threading

import websocket


class RawClient:
    """A Socket.IO client of one server speaking the Engine.IO/Socket.IO
    text protocol over a raw WebSocket.

    python-socketio's client would cost the servers' machine more than the
    requests themselves. This one sends ``cmd`` requests, reads their
    acknowledgements and answers pings; it ignores everything else.
    """

    def __init__(self, url: str) -> None:
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

    def close(self) -> None:
        self._ws.close()

    def _read(self) -> None:
        while True:
            try:
                frame = self._ws.recv()
            except (websocket.WebSocketException, OSError):
                return
            if frame == '2':  # Engine.IO ping
                self._ws.send('3')
            elif frame.startswith('43'):
                ack_id, _, body = frame[2:].partition('[')
                with self._changed:
                    self._acks[int(ack_id)] = json.loads('[' + body)
                    self._changed.notify_all()
