"""What every part of the sync driver shares: one :class:`Context`, and the
one supervised loop that keeps a background task working while Redis comes
and goes."""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Optional

from ..core.backoff import Backoff
from ..core.stats import Stats
from ..options import Options
from .connection import RedisConnector, describe_error


@dataclass(frozen=True)
class Context:
    """The manager-wide things each task needs."""
    options: Options
    uid: str
    stats: Stats
    logger: logging.Logger
    connector: RedisConnector
    #: set once when the manager stops: every loop ends
    stopping: threading.Event


class Supervisor:
    """Runs one step of a task after the other until the manager stops, and
    deals with Redis going away the same way for every task: one warning
    when it goes (counted in ``counter``), a traceback only for errors that
    are neither a lost connection nor a reply of Redis, the client's
    connections reset, waits with jittered backoff, and one line when it is
    back, saying how long it was gone.

    :param what: what the task does, for the log ("reading stream x").
    :param counter: the :class:`Stats` counter of times Redis was lost.
    :param reset: closes the task's connections after a failure.
    :param resume: what will happen when Redis is back, for the warning.
    """

    def __init__(self, context: Context, what: str, counter: str,
                 reset: Callable[[], None] = lambda: None,
                 resume: Callable[[], str] = lambda: '') -> None:
        self._context = context
        self._what = what
        self._counter = counter
        self._reset = reset
        self._resume = resume
        self._backoff = Backoff()
        self.down_since: Optional[float] = None

    @property
    def up(self) -> bool:
        """``False`` from a failure until the next step that succeeds."""
        return self.down_since is None

    def run(self, step: Callable[[], Any],
            on_failure: Callable[[BaseException], None] = lambda e: None
            ) -> None:
        """Call ``step()`` until the manager stops; after a failure, call
        ``on_failure(error)`` and wait before the next step."""
        stopping = self._context.stopping
        while not stopping.is_set():
            try:
                step()
            except Exception as exc:
                if stopping.is_set():
                    return
                self.failed(exc)
                on_failure(exc)
                stopping.wait(self._backoff.next_delay())
            else:
                self.succeeded()

    def failed(self, error: BaseException) -> None:
        """Redis failed this task (or the task failed)."""
        context = self._context
        connector = context.connector
        if not isinstance(error, connector.expected_errors):
            context.logger.error('unexpected error %s', self._what,
                                 exc_info=error)
        if self.down_since is None:
            self.down_since = time.monotonic()
            context.stats.incr(self._counter)
            resume = self._resume()
            context.logger.warning(
                'lost Redis %s (%s)%s', self._what, describe_error(error),
                f'; {resume}' if resume else '')
        self._reset()

    def succeeded(self, detail: str = '') -> None:
        """A step worked: if Redis was away, say that it is back."""
        if self.down_since is None:
            return
        self._context.logger.info(
            'Redis is back for %s after %.1f s%s', self._what,
            time.monotonic() - self.down_since,
            f'; {detail}' if detail else '')
        self.down_since = None
        self._backoff.reset()
