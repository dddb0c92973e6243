"""How long to wait before trying Redis again."""
from __future__ import annotations

import random


class Backoff:
    """Capped exponential delays with jitter, so that many servers that lost
    Redis together do not all come back in the same instant.

    :param base: the first delay, in seconds.
    :param cap: the longest delay, in seconds.
    """

    def __init__(self, base: float = 0.1, cap: float = 2.0) -> None:
        self.base = base
        self.cap = cap
        self.attempts = 0

    def next_delay(self) -> float:
        """The delay before the next attempt."""
        ceiling = min(self.cap, self.base * 2 ** min(self.attempts, 30))
        self.attempts += 1
        return ceiling / 2 + random.uniform(0, ceiling / 2)

    def reset(self) -> None:
        """Start again from the shortest delay."""
        self.attempts = 0
