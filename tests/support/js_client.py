"""Official ``socket.io-client`` sockets (tests/node/js_client.mjs) run in
one Node.js process and driven from Python."""
from __future__ import annotations

import base64
import itertools
import json
import queue
import subprocess
import threading
import time
from pathlib import Path
from typing import Any, Callable

from tests.support.node_server import NODE_DIR, node_binary

JS_CLIENT = NODE_DIR / 'js_client.mjs'


def from_json(value: Any) -> Any:
    """Turn ``{"$bytes": base64}`` back into bytes, recursively."""
    if isinstance(value, list):
        return [from_json(v) for v in value]
    if isinstance(value, dict):
        if set(value) == {'$bytes'}:
            return base64.b64decode(value['$bytes'])
        return {k: from_json(v) for k, v in value.items()}
    return value


class JsClients:
    """A Node.js process holding named socket.io-client sockets."""

    def __init__(self, log_path: Path) -> None:
        self._log = open(log_path, 'ab')
        self._process = subprocess.Popen(
            [node_binary(), str(JS_CLIENT)], cwd=NODE_DIR,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=self._log, start_new_session=True)
        self._ids = itertools.count(1)
        self._replies: dict[int, queue.Queue] = {}
        self._lock = threading.Lock()
        self._ready = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()
        if not self._ready.wait(20):
            self.stop()
            raise RuntimeError('the socket.io-client driver did not start')

    def request(self, op: str, timeout: float = 15.0, **args: Any) -> Any:
        """Run ``op`` in the Node process; return its result."""
        request_id = next(self._ids)
        reply: queue.Queue = queue.Queue()
        with self._lock:
            self._replies[request_id] = reply
        line = json.dumps({'id': request_id, 'op': op, 'args': args})
        self._process.stdin.write(line.encode() + b'\n')
        self._process.stdin.flush()
        try:
            answer = reply.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError(f'{op} got no answer in {timeout}s') from None
        finally:
            with self._lock:
                self._replies.pop(request_id, None)
        if 'error' in answer:
            raise RuntimeError(f'{op} failed in Node: {answer["error"]}')
        return from_json(answer['result'])

    def connect(self, name: str, url: str, namespace: str = '/',
                auth: Any = None) -> dict:
        """Connect a socket; return its state (``sid``, ``recovered``...)."""
        return self.request('connect', name=name, url=url,
                            namespace=namespace, auth=auth)

    def state(self, name: str) -> dict:
        return self.request('state', name=name)

    def events(self, name: str) -> list:
        """Every event received, as ``[event, *args]``; ``$connect`` and
        ``$disconnect`` mark the connection's ups and downs."""
        return self.request('events', name=name)

    def emit(self, name: str, event: str, *args: Any) -> Any:
        """Emit with an acknowledgement; return the answer's arguments."""
        return self.request('emit', name=name, event=event, args=list(args))

    def drop(self, name: str) -> None:
        """Close the transport without a Socket.IO disconnect."""
        self.request('drop', name=name)

    def wait_for(self, condition: Callable[[], Any],
                 timeout: float = 15.0) -> Any:
        """Poll ``condition`` until it returns something truthy."""
        deadline = time.monotonic() + timeout
        while True:
            result = condition()
            if result:
                return result
            if time.monotonic() > deadline:
                raise TimeoutError('condition not met')
            time.sleep(0.05)

    def connect_many(self, prefix: str, count: int, url: str,
                     namespace: str = '/') -> None:
        """Connect ``count`` sockets, named ``prefix0``..., at once."""
        self.request('connectMany', timeout=60.0, prefix=prefix,
                     count=count, url=url, namespace=namespace)

    def drop_many(self, prefix: str) -> None:
        """Drop the transports of every socket named ``prefix...``."""
        self.request('dropMany', prefix=prefix)

    def summary(self, prefix: str, event: str) -> dict:
        """Per socket named ``prefix...``: ``sid``, ``firstSid``,
        ``connects``, ``connected``, ``recovered`` (its last connect) and
        ``numbers`` (the ``n`` of each ``event`` received, in order)."""
        return self.request('summary', timeout=60.0, prefix=prefix,
                            event=event)

    def stop(self) -> None:
        """End the Node process and its sockets."""
        if self._process.poll() is None:
            self._process.stdin.close()
            try:
                self._process.wait(5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._log.close()

    def _read(self) -> None:
        for line in self._process.stdout:
            try:
                message = json.loads(line)
            except ValueError:
                continue
            if message.get('ready'):
                self._ready.set()
                continue
            with self._lock:
                reply = self._replies.get(message.get('id'))
            if reply is not None:
                reply.put(message)
