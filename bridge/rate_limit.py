"""`SenderRateLimit`: a token bucket per sender host, for error replies and refusal log lines.

Why: a refusal answered to a peer that answers refusals (another OSC program, a spoofed source) is a
loop; a client sending garbage as fast as it can would otherwise fill the rotating log in seconds. Each
host may be refused ``burst`` times at once and ``rate_per_s`` times per second after that; beyond it
refusals are counted, not answered and not logged. Keyed by host, not (host, port), so that changing
the source port does not buy a fresh bucket. Pure apart from the clock, which tests may pass in.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class _Bucket:
    tokens: float
    updated: float
    suppressed: int = 0  # refusals not answered since the last allowed one


@dataclass(frozen=True)
class Verdict:
    """Whether to answer and log one refusal.

    Attributes:
        allowed: answer and log it.
        suppressed_before: refusals of this sender dropped since its last allowed one (0 if none),
            reported with an allowed one so the log still says how many were dropped.
        first_suppressed: this is the first dropped refusal of a run (log once that the limit is hit).
    """

    allowed: bool
    suppressed_before: int = 0
    first_suppressed: bool = False


class SenderRateLimit:
    """Token buckets per sender host; see the module docstring. Thread-safe.

    Args:
        rate_per_s: refusals per second a sender may get, sustained.
        burst: refusals a sender may get at once.
        max_senders: most hosts tracked; the least recently seen is forgotten beyond it.
        clock: monotonic seconds.
    """

    def __init__(
        self,
        rate_per_s: float,
        burst: int,
        max_senders: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if rate_per_s <= 0 or burst < 1 or max_senders < 1:
            raise ValueError("rate_per_s must be > 0, burst and max_senders >= 1")
        self._rate = rate_per_s
        self._burst = float(burst)
        self._max_senders = max_senders
        self._clock = clock
        self._lock = threading.Lock()
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def exhausted(self, sender: str) -> bool:
        """Whether ``sender``'s bucket is empty now, without spending from it (a sender never seen has a
        full one): lets a caller refuse before doing what would be limited, e.g. comparing a token."""
        now = self._clock()
        with self._lock:
            bucket = self._buckets.get(sender)
            if bucket is None:
                return False
            return min(self._burst, bucket.tokens + (now - bucket.updated) * self._rate) < 1.0

    def check(self, sender: str) -> Verdict:
        """Spend one token of ``sender``'s bucket if it has one."""
        now = self._clock()
        with self._lock:
            bucket = self._buckets.pop(sender, None)
            if bucket is None:
                bucket = _Bucket(self._burst, now)
            else:
                bucket.tokens = min(self._burst, bucket.tokens + (now - bucket.updated) * self._rate)
                bucket.updated = now
            self._buckets[sender] = bucket  # most recently seen last
            while len(self._buckets) > self._max_senders:
                self._buckets.popitem(last=False)
            if bucket.tokens >= 1.0:
                bucket.tokens -= 1.0
                verdict = Verdict(True, suppressed_before=bucket.suppressed)
                bucket.suppressed = 0
                return verdict
            bucket.suppressed += 1
            return Verdict(False, first_suppressed=bucket.suppressed == 1)
