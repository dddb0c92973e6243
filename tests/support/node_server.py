"""``tests/interop/node_server.mjs`` (Socket.IO 4.8 with the official
``@socket.io/redis-streams-adapter``) run as a separate process, with the same
interface as :class:`tests.support.processes.ServerProcess`."""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from pathlib import Path
from typing import Any

import pytest

from tests.support.ports import LOOPBACK
from tests.support.process_group import ProcessGroup

INTEROP_DIR = Path(__file__).resolve().parent.parent / 'interop'
NODE_SERVER = INTEROP_DIR / 'node_server.mjs'
REQUIRE_NODE_VARIABLE = 'SIO_REQUIRE_NODE'
_READY = re.compile(rb'^READY (\d+)$', re.MULTILINE)


def node_binary() -> str | None:
    """Path of ``node``, if installed."""
    return shutil.which('node')


def _pinned_packages() -> dict[str, str]:
    manifest = json.loads((INTEROP_DIR / 'package.json').read_text())
    return manifest['dependencies']


def _missing_packages() -> list[str]:
    missing = []
    for package, version in _pinned_packages().items():
        manifest = INTEROP_DIR / 'node_modules' / package / 'package.json'
        try:
            installed = json.loads(manifest.read_text())['version']
        except (OSError, ValueError, KeyError):
            installed = None
        if installed != version:
            missing.append(f'{package}@{version} (found: {installed})')
    return missing


def node_modules_ready() -> bool:
    """Whether tests/interop/node_modules holds the pinned packages."""
    return not _missing_packages()


def require_node() -> None:
    """Skip the calling test when Node.js or the pinned packages are missing;
    fail it instead when ``SIO_REQUIRE_NODE=1`` (CI), so that a broken Node
    setup cannot pass as a run of skipped tests."""
    problems = []
    if node_binary() is None:
        problems.append('no `node` on PATH')
    missing = _missing_packages()
    if missing:
        problems.append(
            f'missing npm packages {", ".join(missing)};'
            f' run `npm ci --prefix {INTEROP_DIR}`'
        )
    if not problems:
        return
    message = 'Node.js interop side unavailable: ' + '; '.join(problems)
    if os.environ.get(REQUIRE_NODE_VARIABLE) == '1':
        pytest.fail(f'{message} ({REQUIRE_NODE_VARIABLE}=1)', pytrace=False)
    pytest.skip(message)


class NodeServerProcess:
    """One Node.js Socket.IO server in its own process group, running in and
    logging to ``workdir``.

    ``options`` are the adapter options (``streamName``, ``maxLen``...);
    ``recovery``, when given, turns on ``connectionStateRecovery`` with it.
    The first start takes any free port (the server reports it); later starts
    reuse it so reconnecting clients find the server again.
    """

    def __init__(
        self,
        port: int | None = None,
        *,
        redis_url: str,
        name: str = 'node',
        options: dict[str, Any] | None = None,
        recovery: dict[str, Any] | None = None,
        workdir: Path,
    ) -> None:
        self.redis_url = redis_url
        self._name = name
        self.options = dict(options or {})
        self.recovery = recovery
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.stdout_path = self.workdir / f'{name}.stdout.log'
        self.stderr_path = self.workdir / f'{name}.stderr.log'
        self._port = port
        self._process: ProcessGroup | None = None
        self._stdout_offset = 0

    @property
    def name(self) -> str:
        """The server name (also the ``name`` in ``ping`` replies)."""
        return self._name

    @property
    def port(self) -> int:
        """The port the server listens on."""
        if self._port is None:
            raise RuntimeError(
                f'server {self.name} has not reported its port yet'
            )
        return self._port

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f'http://{LOOPBACK}:{self.port}'

    @property
    def pid(self) -> int | None:
        """Pid of the server process, if started."""
        return self._process.pid if self._process else None

    @property
    def is_running(self) -> bool:
        """Whether the process is alive."""
        return self._process is not None and self._process.is_running

    def argv(self) -> list[str]:
        """The command line."""
        argv = [
            node_binary() or 'node',
            str(NODE_SERVER),
            '--port',
            str(self._port or 0),
            '--redis-url',
            self.redis_url,
            '--name',
            self.name,
            '--options',
            json.dumps(self.options),
        ]
        if self.recovery is not None:
            argv += ['--recovery', json.dumps(self.recovery)]
        return argv

    def start(self, timeout: float = 30.0) -> None:
        """Launch and wait until the server has joined the cluster."""
        self.launch()
        self.wait_ready(timeout)

    def launch(self) -> None:
        """Start the process without waiting (to start servers in parallel)."""
        if self.is_running:
            raise RuntimeError(f'server {self.name} is already running')
        # Only READY lines written by this launch count.
        self._stdout_offset = (
            self.stdout_path.stat().st_size if self.stdout_path.exists() else 0
        )
        self._process = ProcessGroup(
            self.argv(),
            stdout_path=self.stdout_path,
            stderr_path=self.stderr_path,
            # Node resolves the packages from the script's folder; the cwd
            # only keeps stray files out of the repository.
            cwd=self.workdir,
        )
        self._process.start()

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Wait for the ``READY <port>`` line; raise with the logs if it does
        not come."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            match = _READY.search(self._new_stdout())
            if match:
                self._port = int(match.group(1))
                return
            if not self.is_running:
                raise RuntimeError(
                    f'server {self.name} exited before READY:\n{self.logs()}'
                )
            time.sleep(0.05)
        self.kill()
        raise TimeoutError(
            f'server {self.name} not READY after {timeout}s:\n{self.logs()}'
        )

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM the group, SIGKILL after ``timeout``; return the status."""
        return self._process.terminate(timeout) if self._process else None

    def kill(self) -> int | None:
        """SIGKILL the group; return the exit status."""
        return self._process.kill() if self._process else None

    def restart(self, timeout: float = 30.0) -> None:
        """Stop, then start again on the same port."""
        self.stop()
        self.start(timeout)

    def logs(self, max_chars: int = 20_000) -> str:
        """Tails of the captured stdout and stderr (of every start)."""
        parts = []
        for label, path in (
            ('stdout', self.stdout_path),
            ('stderr', self.stderr_path),
        ):
            text = path.read_text(errors='replace') if path.exists() else ''
            parts.append(
                f'--- {self.name} {label} ({path}) ---\n{text[-max_chars:]}'
            )
        return '\n'.join(parts)

    def _new_stdout(self) -> bytes:
        if not self.stdout_path.exists():
            return b''
        with open(self.stdout_path, 'rb') as stream:
            stream.seek(self._stdout_offset)
            return stream.read()
