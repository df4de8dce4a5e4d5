"""Waiting for SQLite's write lock: agentstate's busy handler, and the pause long jobs take
between their transactions so waiting writers get in."""

from __future__ import annotations

import time

# SQLite's own busy handler sleeps 1, 2, 5, 10, 15, 20, 25, 25, 25, 50, 50, 100 ms between tries.
_BUSY_SLEEPS_S = (0.001, 0.002, 0.005, 0.010)


class PatientBusyHandler:
    """Wait for another connection's lock up to ``timeout_ms``, trying again after 1, 2, 5, then
    every 10 ms.

    SQLite's own handler backs off to 100 ms between tries, so a waiter can sleep through every
    moment the lock is free: a writer that commits batch after batch (retention, say) starved
    another process's append for 1.6 s (scripts/bench_retention.py). Polling finer than 10 ms
    cost four executors a third of their claim rate (measured with 0.1-1 ms); 10 ms keeps it.
    """

    def __init__(self, timeout_ms: int) -> None:
        self.timeout = timeout_ms / 1000
        self.already_waited = 0.0
        """Seconds this transaction already waited at the writer gate: the wait here is the rest."""
        self._started = 0.0

    def __call__(self, prior_calls: int) -> bool:
        now = time.monotonic()
        if prior_calls == 0:
            self._started = now - self.already_waited
        if now - self._started >= self.timeout:
            return False  # SQLite then raises BUSY, which becomes DatabaseBusyError
        time.sleep(_BUSY_SLEEPS_S[min(prior_calls, len(_BUSY_SLEEPS_S) - 1)])
        return True


def patient_busy_handler(timeout_ms: int) -> PatientBusyHandler:
    """The busy handler agentstate installs (see :class:`PatientBusyHandler`)."""
    return PatientBusyHandler(timeout_ms)
