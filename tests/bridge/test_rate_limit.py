"""`SenderRateLimit`: token buckets per sender host, checked against hand-counted budgets."""

from __future__ import annotations

from visage.bridge.rate_limit import SenderRateLimit


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_exhausted_looks_without_spending_and_refills_at_the_rate() -> None:
    clock = _Clock()
    limit = SenderRateLimit(rate_per_s=0.5, burst=3, max_senders=8, clock=clock)
    assert not limit.exhausted("a")  # never seen: a full bucket
    for _ in range(10):
        assert not limit.exhausted("a")  # looking spends nothing
    assert [limit.check("a").allowed for _ in range(4)] == [True, True, True, False]
    assert limit.exhausted("a") and not limit.exhausted("b")
    clock.now += 1.9  # 0.95 of a token back
    assert limit.exhausted("a")
    clock.now += 0.1  # one whole token
    assert not limit.exhausted("a")
    assert limit.check("a").allowed and limit.exhausted("a")
