"""The Python side of ``receiver.mjs``: N clients of one server in a Node
process of their own, asked over a pipe what they received."""
from __future__ import annotations

import json
import queue
import signal
import threading
import time
from pathlib import Path
from typing import Any, Iterable

from tests.support.node_server import node_binary
from tests.support.process_group import ProcessGroup

RECEIVER = Path(__file__).resolve().parent / 'receiver.mjs'
#: how often a wait asks the receivers how far they got; the figures come
#: from the receivers' own timestamps, so this only bounds the overhead
POLL_SECONDS = 0.05


class Receivers:
    """``clients`` sockets of the server at ``url``, all in ``room`` of
    each of ``namespaces`` (one WebSocket each, multiplexed).

    A run is one numbered sequence (its ``run`` field); :meth:`wait` polls
    until every client has all of it, or nothing new came for ``stall``
    seconds (then what is missing is lost).
    """

    def __init__(self, url: str, clients: int, room: str, log_dir: Path,
                 name: str, timeout: float = 120.0,
                 namespaces: tuple[str, ...] = ('/',)) -> None:
        self.clients = clients
        log_dir.mkdir(parents=True, exist_ok=True)
        self._process = ProcessGroup(
            [node_binary() or 'node', str(RECEIVER), '--url', url,
             '--clients', str(clients), '--room', room,
             '--namespaces', ','.join(namespaces)],
            stdout_path=log_dir / f'{name}.stdout.log',
            stderr_path=log_dir / f'{name}.stderr.log',
            interactive=True)
        self._stderr = self._process.stderr_path
        self._lines: queue.Queue = queue.Queue()
        self._process.start()
        # a thread, so that a read can time out
        threading.Thread(target=self._read, daemon=True).start()
        try:
            hello = self._next(timeout)
            if not hello.get('ready'):
                raise RuntimeError(f'receivers not ready: {hello}')
        except BaseException:
            self.close()
            raise
        self.sids: list[str] = hello['sids']

    @property
    def pid(self) -> int | None:
        return self._process.pid

    def progress(self, runs: Iterable[str]) -> dict:
        """How many messages of ``runs`` the clients got (all together, and
        the fewest any client got)."""
        return self._ask({'op': 'progress', 'runs': list(runs)})

    def report(self, runs: Iterable[str], forget: bool = False) -> dict:
        """What the clients got of ``runs``, with receipt times, latency
        and CPU (see receiver.mjs); ``forget`` frees the runs."""
        return self._ask({'op': 'report', 'runs': list(runs),
                          'forget': forget})

    def wait(self, runs: Iterable[str], expected: int, stall: float = 10.0,
             timeout: float = 900.0, forget: bool = False) -> dict:
        """Poll until each client has ``expected`` unique messages of
        ``runs`` (together), or nothing new came for ``stall`` s; then
        :meth:`report`."""
        runs = list(runs)
        deadline = time.monotonic() + timeout
        received, progressed = -1, time.monotonic()
        while True:
            got = self.progress(runs)
            if got['fewest'] >= expected:
                break
            if got['received'] != received:
                received, progressed = got['received'], time.monotonic()
            now = time.monotonic()
            if now - progressed > stall or now > deadline:
                break
            time.sleep(POLL_SECONDS)
        return self.report(runs, forget)

    def _ask(self, request: dict) -> dict:
        self._process.stdin.write(json.dumps(request).encode() + b'\n')
        self._process.stdin.flush()
        return self._next(30.0)

    def freeze(self) -> None:
        """Stop the process (its clients stop reading, as a frozen
        browser tab would)."""
        self._process.send_signal(signal.SIGSTOP)

    def close(self) -> None:
        """Stop the process and its clients."""
        self._process.terminate(5.0)

    def _read(self) -> None:
        for line in self._process.stdout:
            self._lines.put(line)
        self._lines.put(b'')  # end of output

    def _next(self, timeout: float) -> dict[str, Any]:
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            line = b''
        if not line:
            raise RuntimeError(
                f'receiver.mjs gave no answer; stderr: '
                f'{self._stderr.read_text(errors="replace")[-2000:]}')
        return json.loads(line)
