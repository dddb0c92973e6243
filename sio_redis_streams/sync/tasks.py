"""Background tasks that work the same under threading, gevent and eventlet.

Under gevent and eventlet the manager relies on the standard library being
monkey-patched: redis-py then blocks only its own greenlet, and the
``threading`` primitives used here become cooperative. That is checked once,
when the manager is attached to a server, rather than discovered later as a
frozen server.
"""
from __future__ import annotations

import logging
import queue
import sys
import threading
import time
from typing import Any, Callable, List, Optional

GREEN_MODES = ('gevent', 'gevent_uwsgi', 'eventlet')


def check_monkey_patched(async_mode: str) -> None:
    """Raise :class:`RuntimeError` when ``async_mode`` needs a
    monkey-patched standard library that is not patched."""
    if async_mode == 'eventlet':
        from eventlet.patcher import is_monkey_patched
        missing = [m for m in ('socket', 'thread')
                   if not is_monkey_patched(m)]
        fix = ('call eventlet.monkey_patch() at the very top of your main '
               'module, before any other import')
    elif async_mode.startswith('gevent'):
        from gevent.monkey import is_module_patched
        missing = [m for m in ('socket', 'threading')
                   if not is_module_patched(m)]
        fix = ('call gevent.monkey.patch_all() at the very top of your '
               'main module, before any other import (gunicorn -k gevent '
               'does it for you)')
    else:
        return
    if missing:
        if async_mode == 'eventlet' and _gevent_patched():
            raise RuntimeError(
                "python-socketio chose async_mode='eventlet' (eventlet is "
                "installed) but this process is monkey-patched by gevent "
                "(gunicorn -k gevent?): pass async_mode='gevent' to the "
                "Server / SocketIO")
        raise RuntimeError(
            f'sio_redis_streams needs the standard library monkey-patched '
            f'under async_mode={async_mode!r}, but {", ".join(missing)} '
            f'{"is" if len(missing) == 1 else "are"} not: {fix}; or use '
            f'async_mode="threading"')


def _gevent_patched() -> bool:
    monkey = sys.modules.get('gevent.monkey')
    return bool(monkey and monkey.is_module_patched('socket'))


class Tasks:
    """Starts the background tasks of one manager and waits for them to end.

    :param server: the python-socketio server whose async mode the tasks
                   use; ``None`` (a write-only manager) runs them as daemon
                   threads, which are greenlets if the process is patched.
    :param logger: where a task that dies of an unexpected error is logged.
    """

    def __init__(self, server: Any, logger: logging.Logger) -> None:
        self._server = server
        self._logger = logger
        self._done: List[threading.Event] = []

    def start(self, name: str, target: Callable[[], None]) -> None:
        """Run ``target`` in the background."""
        done = threading.Event()
        self._done.append(done)

        def run() -> None:
            try:
                target()
            except Exception:
                self._logger.exception('background task %s crashed', name)
            finally:
                done.set()

        if self._server is not None:
            self._server.start_background_task(run)
        else:
            threading.Thread(target=run, name=f'sio-redis-streams-{name}',
                             daemon=True).start()

    def join(self, timeout: Optional[float]) -> bool:
        """Wait until every task has returned, all of them within one
        ``timeout``; ``False`` if some had not by then."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for done in self._done:
            left = None if deadline is None else \
                max(0.0, deadline - time.monotonic())
            if not done.wait(left):
                return False
        return True


class WorkQueue:
    """Work handed over by a task that must not wait (the subscriber), done
    in order by one background task of its own.

    :param size: the most jobs waiting; more are dropped and counted, so
                 that a flood of messages cannot grow memory without bound.
    :param dropped: called when a job is dropped.
    """

    def __init__(self, size: int, dropped: Callable[[], None],
                 logger: logging.Logger) -> None:
        self._jobs: 'queue.Queue[Optional[Callable[[], None]]]' = \
            queue.Queue(size)
        self._dropped = dropped
        self._logger = logger

    def submit(self, job: Callable[[], None]) -> None:
        try:
            self._jobs.put_nowait(job)
        except queue.Full:
            self._dropped()

    def stop(self) -> None:
        """Wake the task so that it ends; the manager is closing, and the
        jobs still queued (answers to other servers) are dropped."""
        try:
            self._jobs.put_nowait(None)
        except queue.Full:  # it ends at the next check anyway
            pass

    def run(self, stopping: threading.Event) -> None:
        """The body of the task."""
        while not stopping.is_set():
            try:
                job = self._jobs.get(timeout=0.5)
            except queue.Empty:
                continue
            if job is None:
                return
            try:
                job()
            except Exception:
                self._logger.exception('error handling a cluster message')
