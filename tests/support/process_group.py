"""Child processes in their own process groups, with a last-resort reaper."""

from __future__ import annotations

import atexit
import os
import signal
import subprocess
import threading
from pathlib import Path
from typing import IO, ClassVar, Mapping, Sequence


class ProcessGroup:
    """A child process started in a new session so that it and anything it
    forks can be signalled together.

    Every started group is remembered until it is stopped, so that
    :meth:`kill_all` (run by the test session and at interpreter exit) can reap
    whatever an interrupted test left behind.
    """

    _live: ClassVar[set[ProcessGroup]] = set()
    _live_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(
        self,
        argv: Sequence[str],
        *,
        stdout_path: Path,
        stderr_path: Path,
        cwd: Path | None = None,
        env: Mapping[str, str] | None = None,
        interactive: bool = False,
    ) -> None:
        self.argv = list(argv)
        #: stdin and stdout are pipes to the caller (``stdout_path`` is then
        #: unused): for a child driven by requests, one line each
        self.interactive = interactive
        self.stdout_path = stdout_path
        self.stderr_path = stderr_path
        self.cwd = cwd
        self.env = dict(env) if env is not None else None
        self._popen: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        """Pid of the group leader (also the process group id), if started."""
        return self._popen.pid if self._popen else None

    @property
    def stdin(self) -> IO[bytes] | None:
        """The pipe to the child's stdin, if ``interactive``."""
        return self._popen.stdin if self._popen else None

    @property
    def stdout(self) -> IO[bytes] | None:
        """The pipe from the child's stdout, if ``interactive``."""
        return self._popen.stdout if self._popen else None

    @property
    def is_running(self) -> bool:
        """Whether the group leader has been started and has not exited yet."""
        return self._popen is not None and self._popen.poll() is None

    @property
    def returncode(self) -> int | None:
        """Exit status of the leader (negative signal number if killed)."""
        return self._popen.poll() if self._popen else None

    def start(self) -> None:
        """Launch the process (output is appended: restarts keep old logs)."""
        if self.is_running:
            raise RuntimeError(
                f'already running: {self.argv[0]} (pid {self.pid})'
            )
        with (
            open(self.stdout_path, 'ab') as out,
            open(self.stderr_path, 'ab') as err,
        ):
            self._popen = subprocess.Popen(
                self.argv,
                stdin=subprocess.PIPE if self.interactive
                else subprocess.DEVNULL,
                stdout=subprocess.PIPE if self.interactive else out,
                stderr=err,
                cwd=self.cwd,
                env=self.env,
                start_new_session=True,
            )
        with self._live_lock:
            self._live.add(self)

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the leader to exit; return False if it is still running."""
        if self._popen is None:
            return True
        try:
            self._popen.wait(timeout)
        except subprocess.TimeoutExpired:
            return False
        return True

    def terminate(self, timeout: float = 10.0) -> int | None:
        """SIGTERM the group, SIGKILL it after ``timeout``; return the exit
        status."""
        if self.is_running:
            self.send_signal(signal.SIGTERM)
            # A group a test froze with SIGSTOP must run to handle SIGTERM.
            self.send_signal(signal.SIGCONT)
            if not self.wait(timeout):
                self.send_signal(signal.SIGKILL)
                self.wait()
        return self._reap()

    def kill(self) -> int | None:
        """SIGKILL the group, wait for the leader; return the exit status."""
        if self.is_running:
            self.send_signal(signal.SIGKILL)
            self.wait()
        return self._reap()

    def _reap(self) -> int | None:
        # Grandchildren may outlive the leader; the group id stays valid
        # while they exist.
        self.send_signal(signal.SIGKILL)
        with self._live_lock:
            self._live.discard(self)
        return self.returncode

    def send_signal(self, sig: signal.Signals) -> None:
        """Send ``sig`` to the whole group (no-op if it is gone)."""
        if self._popen is None:
            return
        try:
            os.killpg(self._popen.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    @classmethod
    def kill_all(cls) -> None:
        """SIGKILL every group that was started and not stopped yet."""
        with cls._live_lock:
            leftovers = list(cls._live)
        for group in leftovers:
            group.kill()


atexit.register(ProcessGroup.kill_all)
