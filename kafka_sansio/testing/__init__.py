"""Test helpers for code built on kafka_sansio.

``kafka_sansio.testing.strategies`` holds hypothesis strategies for every
generated message at every version; it is the only part of the package that
imports hypothesis, and importing ``kafka_sansio.testing`` alone does not.
"""

from __future__ import annotations

__all__: list[str] = []
