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

_WAITING = {
    "poll",
    "position",
    "offsets_for_times",
    "beginning_offsets",
    "end_offsets",
    # producer
    "send_and_wait",
    "flush",
    "close",
    "commit",
    "committed",
    "init_transactions",
    "send_offsets_to_transaction",
    "commit_transaction",
    "abort_transaction",
    # admin
    "create_topics",
    "delete_topics",
    "create_partitions",
    "list_offsets",
    "describe_cluster",
    "describe_topics",
    "list_topics",
}


class _AwaitableFuture:
    """A blocking RecordFuture that can be awaited (``result()`` blocks, as it does for users)."""

    def __init__(self, future: blocking.RecordFuture) -> None:
        self.future = future

    def __await__(self) -> Any:
        return self._wait().__await__()

    async def _wait(self) -> Any:
        return self.future.result(60)

    def done(self) -> bool:
        return self.future.done()


class SyncShim:
    """A blocking client with awaitable waiting calls."""

    def __init__(self, client: Any) -> None:
        self._consumer = client

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._consumer, name)
        if name in _WAITING:

            async def call(*args: Any, **kwargs: Any) -> Any:
                return attr(*args, **kwargs)

            return call
        if name == "send":

            async def send(*args: Any, **kwargs: Any) -> Any:
                return _AwaitableFuture(attr(*args, **kwargs))

            return send
        return attr

    async def records(self, timeout: float | None = None) -> AsyncIterator[Any]:
        for record in self._consumer.records(timeout):
            yield record

    def __aiter__(self) -> AsyncIterator[Any]:
        return self.records()


Scenario = Callable[[Any], Awaitable[Any]]


def run_client(
    adapter: str, kind: str, bootstrap: str, scenario: Scenario, **options: Any
) -> Any:
    """Run ``scenario(client)`` with a ``kind`` ("Consumer", "Producer", "Admin") of ``adapter``."""
    if adapter == "blocking":

        async def main_blocking() -> Any:
            with getattr(blocking, kind)(bootstrap, **options) as client:
                return await scenario(SyncShim(client))

        return asyncio.run(main_blocking())
    if adapter == "asyncio":

        async def main_asyncio() -> Any:
            async with getattr(kaio, kind)(bootstrap, **options) as client:
                return await scenario(client)

        return asyncio.run(main_asyncio())
    if adapter == "trio":

        async def main_trio() -> Any:
            async with getattr(ktrio, kind)(bootstrap, **options) as client:
                return await scenario(client)

        return trio.run(main_trio)
    raise ValueError(adapter)


def run_consumer(adapter: str, bootstrap: str, scenario: Scenario, **options: Any) -> Any:
    """Run ``scenario(consumer)`` with a consumer of ``adapter`` connected to ``bootstrap``."""
    return run_client(adapter, "Consumer", bootstrap, scenario, **options)


async def consume(consumer: Any, count: int, timeout: float = 60.0) -> list[Any]:
    """Exactly ``count`` records through ``records()`` (fails if they do not come)."""
    out = []
    async for record in consumer.records(timeout=timeout):
        out.append(record)
        if len(out) == count:
            break
    assert len(out) == count, f"got {len(out)} of {count} records"
    return out
