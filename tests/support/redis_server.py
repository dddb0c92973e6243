"""A throw-away ``redis-server`` on a free loopback port."""

from __future__ import annotations

import shutil
import signal
import tempfile
import time
from pathlib import Path
from typing import Any, Sequence

import redis

from tests.support.ports import LOOPBACK, free_port
from tests.support.process_group import ProcessGroup

_START_ATTEMPTS = 5


class RedisServer:
    """Runs ``redis-server`` in a private directory on 127.0.0.1.

    Persistence is off except for the AOF when ``appendonly`` is set, which
    then fsyncs every write so that ``kill()`` loses nothing acknowledged and
    ``restart()`` (same port, same directory) reloads it.
    """

    def __init__(
        self,
        *,
        appendonly: bool = False,
        extra_args: Sequence[str] = (),
        workdir: Path | None = None,
        port: int | None = None,
        binary: str = 'redis-server',
        start_timeout: float = 20.0,
    ) -> None:
        self.appendonly = appendonly
        self.extra_args = list(extra_args)
        self.binary = binary
        self.start_timeout = start_timeout
        self._owns_workdir = workdir is None
        self.workdir = (
            Path(tempfile.mkdtemp(prefix='redis-'))
            if workdir is None
            else workdir
        )
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.logfile = self.workdir / 'redis.log'
        self._port = port
        # A caller-chosen port, or one a previous start bound, must survive
        # restarts.
        self._port_pinned = port is not None
        self._process: ProcessGroup | None = None

    def __enter__(self) -> RedisServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def port(self) -> int:
        """The TCP port (allocated by the first ``start()``)."""
        if self._port is None:
            raise RuntimeError('redis-server has not been started yet')
        return self._port

    @property
    def host(self) -> str:
        """Always the loopback address."""
        return LOOPBACK

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:<port>/0``."""
        return f'redis://{LOOPBACK}:{self.port}/0'

    @property
    def name(self) -> str:
        """Label used in failure reports."""
        return f'redis-server :{self._port}'

    @property
    def is_running(self) -> bool:
        """Whether the server process is alive."""
        return self._process is not None and self._process.is_running

    def client(self, **kwargs: Any) -> redis.Redis:
        """A new ``redis.Redis`` connected straight to this server (the
        caller closes it)."""
        return redis.Redis.from_url(self.url, **kwargs)

    def start(self) -> None:
        """Start the server; wait until it answers PING with its dataset
        loaded."""
        if self.is_running:
            raise RuntimeError(f'{self.name} is already running')
        if shutil.which(self.binary) is None:
            raise RuntimeError(
                f'{self.binary} is not installed: the tests start their own '
                f'Redis servers (Debian: sudo apt-get install redis-server)'
            )
        for _ in range(_START_ATTEMPTS):
            if not self._port_pinned:
                self._port = free_port()
            self._launch()
            if self._wait_ready():
                self._port_pinned = True
                return
            # Lost the race for a fresh port, or the old socket is still
            # lingering.
            self._process.kill()
            time.sleep(0.2)
        raise RuntimeError(
            f'{self.name} did not start; log tail:\n{self.logs()}'
        )

    def stop(self, timeout: float = 10.0) -> None:
        """Graceful shutdown (SIGTERM: Redis flushes the AOF); SIGKILL after
        ``timeout``."""
        if self._process is not None:
            self._process.terminate(timeout)

    def kill(self) -> None:
        """SIGKILL the server and wait until it is gone."""
        if self._process is not None:
            self._process.kill()

    def pause(self) -> None:
        """SIGSTOP the server: it keeps its sockets open but answers nothing,
        like a hung host (``stop()`` and ``kill()`` still work)."""
        if self._process is not None:
            self._process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT a paused server."""
        if self._process is not None:
            self._process.send_signal(signal.SIGCONT)

    def restart(self) -> None:
        """Stop if running, then start on the same port and directory
        (reloading the AOF)."""
        self.stop()
        self.start()

    def close(self) -> None:
        """Stop the server; delete the working directory if this object
        created it."""
        self.stop()
        if self._owns_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def logs(self, max_chars: int = 20_000) -> str:
        """Tail of the Redis log file."""
        try:
            return self.logfile.read_text(errors='replace')[-max_chars:]
        except FileNotFoundError:
            return ''

    def _argv(self) -> list[str]:
        persistence = (
            ['--appendonly', 'yes', '--appendfsync', 'always']
            if self.appendonly
            else ['--appendonly', 'no']
        )
        return [
            self.binary,
            '--port',
            str(self._port),
            '--bind',
            LOOPBACK,
            '--protected-mode',
            'no',
            '--daemonize',
            'no',
            '--save',
            '',
            '--dir',
            str(self.workdir),
            '--logfile',
            str(self.logfile),
            *persistence,
            *self.extra_args,
        ]

    def _launch(self) -> None:
        self._process = ProcessGroup(
            self._argv(),
            stdout_path=self.workdir / 'stdout.log',
            stderr_path=self.workdir / 'stderr.log',
            cwd=self.workdir,
        )
        self._process.start()

    def _wait_ready(self) -> bool:
        deadline = time.monotonic() + self.start_timeout
        probe = redis.Redis(
            host=LOOPBACK,
            port=self._port,
            socket_timeout=1,
            socket_connect_timeout=1,
        )
        try:
            while time.monotonic() < deadline and self._process.is_running:
                try:
                    # PING alone is not enough: while the AOF loads, commands
                    # fail with LOADING.
                    # The pid check guards against another server that
                    # grabbed a freshly chosen port.
                    if (
                        probe.ping()
                        and probe.info('persistence')['loading'] == 0
                        and probe.info('server')['process_id']
                        == self._process.pid
                    ):
                        return True
                except (
                    redis.ConnectionError,
                    redis.TimeoutError,
                    redis.BusyLoadingError,
                ):
                    pass
                time.sleep(0.05)
            return False
        finally:
            probe.close()
