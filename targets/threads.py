"""The default thread count of a compiled model: measured per call, never worse than one.

A parallel region is a fork and a join: every thread of the team must arrive before the
region ends. On a quiet machine two threads halve a large model's time; on a busy one a
worker that waits for a time slice (milliseconds) holds up the whole region, and a small
model never wins back the fork. No fixed thread count is right everywhere, so the default
(`num_threads = 0`, "auto") measures:

    policy = AutoThreads(cores=2)
    n = policy.choose()          # before a call: the thread count to use
    policy.record(n, seconds)    # after it: how long the call took

Each candidate (1 thread, all cores) is first tried `WARMUP` times in turn; then every call
uses the one with the lower median over its last `WINDOW` calls, and the other is tried
again now and then: after 8 calls, then 16, 32, ... up to every `MAX_EXPLORE_GAP` calls
while it keeps losing narrowly, at once every `MAX_EXPLORE_GAP` calls when it loses by more
than 2x (a busy core), and after 8 again when one try beats the best median. A change of
load (another process starts or stops) is noticed, and the exploring calls of a settled
choice are under 0.5 % of the calls.
"""

from __future__ import annotations

import os
import statistics
from collections import deque

__all__ = ["AutoThreads", "available_cores"]

WARMUP = 2
WINDOW = 15
MIN_EXPLORE_GAP = 8
MAX_EXPLORE_GAP = 256


def available_cores() -> int:
    """Cores this process may run on (its affinity mask; `OMP_NUM_THREADS` caps it)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    env = os.environ.get("OMP_NUM_THREADS", "").split(",")[0].strip()
    if env.isdigit() and int(env) > 0:
        cores = min(cores, int(env))
    return max(1, cores)


class AutoThreads:
    """Chooses between one thread and `cores` threads by measured latency (see the
    module docstring). Not thread-safe by itself: concurrent calls only blur the medians."""

    def __init__(self, cores: int | None = None) -> None:
        self.cores = cores if cores is not None else available_cores()
        self.candidates = [1] if self.cores <= 1 else [1, self.cores]
        self.samples: dict[int, deque[float]] = {c: deque(maxlen=WINDOW) for c in self.candidates}
        self.gap = MIN_EXPLORE_GAP
        self.since_explore = 0
        self._exploring: int | None = None

    def _best(self) -> int:
        return min(self.candidates, key=lambda c: statistics.median(self.samples[c]))

    def choose(self) -> int:
        """The thread count for the next call."""
        for c in self.candidates:
            if len(self.samples[c]) < WARMUP:
                return c
        best = self._best()
        self.since_explore += 1
        if len(self.candidates) > 1 and self.since_explore >= self.gap:
            self.since_explore = 0
            self._exploring = next(c for c in self.candidates if c != best)
            return self._exploring
        self._exploring = None
        return best

    def record(self, threads: int, seconds: float) -> None:
        """How long a call with `threads` took."""
        if threads not in self.samples:
            return
        if self._exploring == threads:
            best = statistics.median(self.samples[self._best()])
            if seconds < best:
                self.gap = MIN_EXPLORE_GAP
            elif seconds > 2 * best:  # far behind (a busy core): wait long to try again
                self.gap = MAX_EXPLORE_GAP
            else:
                self.gap = min(2 * self.gap, MAX_EXPLORE_GAP)
            self._exploring = None
        self.samples[threads].append(seconds)

    @property
    def current(self) -> int:
        """The thread count calls use now (the best so far)."""
        if any(len(s) == 0 for s in self.samples.values()):
            return self.candidates[0]
        return self._best()
