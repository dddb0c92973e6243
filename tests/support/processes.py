"""``tests/apps/cluster_app.py`` run as a separate Socket.IO server process."""

from __future__ import annotations

import json
import re
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support.ports import LOOPBACK
from tests.support.process_group import ProcessGroup

CLUSTER_APP = (
    Path(__file__).resolve().parent.parent / 'apps' / 'cluster_app.py'
)
_READY = re.compile(rb'^READY (\d+)$', re.MULTILINE)


@dataclass
class ServerConfig:
    """Command-line settings of one cluster_app process."""

    redis_url: str
    name: str = 'server'
    async_mode: str = 'threading'
    framework: str = 'socketio'
    manager: str = 'streams'
    options: dict[str, Any] = field(default_factory=dict)
    log_level: str = 'WARNING'
    #: the app to run: another checkout's, to compare two versions
    app: Path = CLUSTER_APP
    #: more socketio.Server keyword arguments (only passed when given, so
    #: that an older checkout's app, without the option, still runs)
    server_options: dict[str, Any] = field(default_factory=dict)

    def argv(self, port: int) -> list[str]:
        """The command line, run with the current interpreter."""
        extra = (['--server-options', json.dumps(self.server_options)]
                 if self.server_options else [])
        return [
            sys.executable,
            str(self.app),
            '--port',
            str(port),
            '--redis-url',
            self.redis_url,
            '--name',
            self.name,
            '--async-mode',
            self.async_mode,
            '--framework',
            self.framework,
            '--manager',
            self.manager,
            '--options',
            json.dumps(self.options),
            '--log-level',
            self.log_level,
            *extra,
        ]


class ReadyProcess:
    """A server process in its own process group that prints ``READY
    <port>`` once it accepts connections; its output goes to
    ``<log_dir>/<name>.stdout.log`` and ``.stderr.log``. Subclasses give
    the command line.

    The first start takes any free port (the server reports it); later starts
    reuse it so reconnecting clients find the server again.
    """

    def __init__(self, name: str, log_dir: Path, port: int | None = None,
                 cwd: Path | None = None) -> None:
        self._name = name
        self.log_dir = log_dir
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.stdout_path = log_dir / f'{name}.stdout.log'
        self.stderr_path = log_dir / f'{name}.stderr.log'
        self._cwd = cwd
        self._port = port
        self._process: ProcessGroup | None = None
        self._stdout_offset = 0

    def argv(self) -> list[str]:
        """The command line (``--port`` is ``self._port or 0``)."""
        raise NotImplementedError

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

    def start(self, timeout: float = 30.0) -> None:
        """Launch and wait until the server accepts connections."""
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
            cwd=self._cwd,
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

    def send_signal(self, sig: signal.Signals) -> None:
        """Signal the server's process group, e.g. SIGSTOP/SIGCONT to freeze
        it, or SIGTERM to stop several servers in parallel."""
        if self.is_running:
            self._process.send_signal(sig)

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


class ServerProcess(ReadyProcess):
    """One ``cluster_app.py`` Socket.IO server process."""

    def __init__(self, config: ServerConfig, log_dir: Path) -> None:
        super().__init__(config.name, log_dir)
        self.config = config

    def argv(self) -> list[str]:
        return self.config.argv(self._port or 0)
