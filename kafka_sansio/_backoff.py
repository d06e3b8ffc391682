"""Exponential backoff with jitter, the way the Java client computes it (KIP-580, KIP-601).

The delay after ``attempts`` consecutive failures is
``initial * multiplier ** attempts`` capped at ``maximum``, then scaled by a
random factor in ``[1 - jitter, 1 + jitter]``.  The random number comes from
the caller (the core never owns a random source), so a test can fix it.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Backoff"]


@dataclass(frozen=True, slots=True)
class Backoff:
    """Backoff policy, in seconds.  Immutable; the attempt count lives with the caller."""

    initial: float = 0.05
    maximum: float = 1.0
    multiplier: float = 2.0
    jitter: float = 0.2

    def __post_init__(self) -> None:
        if not 0 <= self.initial <= self.maximum:
            raise ValueError("backoff needs 0 <= initial <= maximum")
        if self.multiplier < 1 or not 0 <= self.jitter < 1:
            raise ValueError("backoff needs multiplier >= 1 and 0 <= jitter < 1")

    def delay(self, attempts: int, random: float) -> float:
        """Seconds to wait after ``attempts`` failures (0 = first retry).

        ``random`` is a number in ``[0, 1)`` from the caller's random source.
        """
        if self.initial == 0:
            return 0.0
        exponent = max(0, attempts)
        base = self.maximum
        # Avoid float overflow for huge attempt counts: stop growing once capped.
        if exponent < 64:
            base = min(self.maximum, self.initial * self.multiplier**exponent)
        return base * (1 - self.jitter + 2 * self.jitter * random)
