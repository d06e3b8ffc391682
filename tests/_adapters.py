"""Run one test scenario on each of the three adapters.

A scenario is an ``async def scenario(consumer)`` that uses only the
consumer's own methods (no framework calls), so the same body runs on
asyncio, on trio, and on the blocking consumer (wrapped so its waiting calls
can be awaited; they still block, which is what they do for users).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import trio
from kafka_sansio.transports import asyncio as kaio
from kafka_sansio.transports import blocking
from kafka_sansio.transports import trio as ktrio

ADAPTERS = ("blocking", "asyncio", "trio")

_WAITING = ("poll", "position", "offsets_for_times", "beginning_offsets", "end_offsets")


class SyncShim:
    """The blocking Consumer with awaitable waiting calls."""

    def __init__(self, consumer: blocking.Consumer) -> None:
        self._consumer = consumer

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._consumer, name)
        if name in _WAITING:

            async def call(*args: Any, **kwargs: Any) -> Any:
                return attr(*args, **kwargs)

            return call
        return attr

    async def records(self, timeout: float | None = None) -> AsyncIterator[Any]:
        for record in self._consumer.records(timeout):
            yield record

    def __aiter__(self) -> AsyncIterator[Any]:
        return self.records()


Scenario = Callable[[Any], Awaitable[Any]]


def run_consumer(adapter: str, bootstrap: str, scenario: Scenario, **options: Any) -> Any:
    """Run ``scenario(consumer)`` with a consumer of ``adapter`` connected to ``bootstrap``."""
    if adapter == "blocking":

        async def main_blocking() -> Any:
            with blocking.Consumer(bootstrap, **options) as consumer:
                return await scenario(SyncShim(consumer))

        return asyncio.run(main_blocking())
    if adapter == "asyncio":

        async def main_asyncio() -> Any:
            async with kaio.Consumer(bootstrap, **options) as consumer:
                return await scenario(consumer)

        return asyncio.run(main_asyncio())
    if adapter == "trio":

        async def main_trio() -> Any:
            async with ktrio.Consumer(bootstrap, **options) as consumer:
                return await scenario(consumer)

        return trio.run(main_trio)
    raise ValueError(adapter)


async def consume(consumer: Any, count: int, timeout: float = 60.0) -> list[Any]:
    """Exactly ``count`` records through ``records()`` (fails if they do not come)."""
    out = []
    async for record in consumer.records(timeout=timeout):
        out.append(record)
        if len(out) == count:
            break
    assert len(out) == count, f"got {len(out)} of {count} records"
    return out
