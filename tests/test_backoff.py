from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kafka_sansio._backoff import Backoff


def test_grows_then_caps() -> None:
    b = Backoff(initial=0.1, maximum=1.0, multiplier=2.0, jitter=0.0)
    assert [b.delay(n, 0.5) for n in range(6)] == [0.1, 0.2, 0.4, 0.8, 1.0, 1.0]


@given(st.integers(0, 10_000), st.floats(0, 1, exclude_max=True))
def test_jitter_stays_within_bounds(attempts: int, r: float) -> None:
    b = Backoff(initial=0.05, maximum=1.0, jitter=0.2)
    d = b.delay(attempts, r)
    cap = min(1.0, 0.05 * 2.0 ** min(attempts, 64))
    assert cap * 0.8 - 1e-12 <= d <= cap * 1.2 + 1e-12


def test_rejects_nonsense() -> None:
    with pytest.raises(ValueError):
        Backoff(initial=2, maximum=1)
    with pytest.raises(ValueError):
        Backoff(jitter=1.5)
