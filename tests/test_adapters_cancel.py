"""Cancelling asyncio and trio consumer calls at every await point loses and repeats nothing.

Each test consumes a topic written by confluent-kafka while cancelling
``poll`` (and the record iterator) at varied points: before its first wait,
after 1, 2, ... loop turns, and on timers of a few milliseconds, so that the
cancellation lands while a fetch is in flight, while an answer is half read,
and while records sit in the buffer.  Every record must still arrive exactly
once, in order per partition.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import trio
from confluent_kafka import Producer
from kafka_sansio.transports import asyncio as kaio
from kafka_sansio.transports import trio as ktrio

from kafka_sansio import TopicPartition

pytestmark = pytest.mark.timeout(180)

PARTITIONS = 3
COUNT = 3000
#: Loop turns to let pass before cancelling (0: cancelled before the call starts waiting).
TURNS = list(range(12))
#: Timer cancellations, seconds.
DELAYS = [0.0, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02]


@pytest.fixture(scope="module")
def written(kafka: Any) -> tuple[str, dict[int, int]]:
    name = kafka.create_topic(partitions=PARTITIONS, prefix="cancel")
    producer = Producer({**kafka.client_config(), "linger.ms": 2, "batch.num.messages": 50})
    for i in range(COUNT):
        producer.produce(name, f"{i}".encode(), partition=i % PARTITIONS)
    assert producer.flush(60) == 0
    return name, {p: len(range(p, COUNT, PARTITIONS)) for p in range(PARTITIONS)}


def _check(seen: list[tuple[int, int]], ends: dict[int, int]) -> None:
    for p, end in ends.items():
        offsets = [o for q, o in seen if q == p]
        assert offsets == list(range(end)), f"partition {p}: lost, repeated or out of order"


def test_asyncio_poll_cancelled_at_every_await_point(kafka: Any, written: Any) -> None:
    name, ends = written
    tps = [TopicPartition(name, p) for p in range(PARTITIONS)]

    async def main() -> tuple[list[tuple[int, int]], int, int]:
        seen: list[tuple[int, int]] = []
        cancelled = completed = 0
        async with kaio.Consumer(
            kafka.bootstrap, auto_offset_reset="earliest", max_partition_fetch_bytes=4096
        ) as consumer:
            consumer.assign(tps)
            i = 0
            while len(seen) < COUNT and i < 5000:
                i += 1
                if i % 2:
                    task = asyncio.ensure_future(consumer.poll(timeout=1.0, max_records=23))
                    for _ in range(TURNS[i // 2 % len(TURNS)]):
                        await asyncio.sleep(0)
                    task.cancel()
                    try:
                        batch = await task
                    except asyncio.CancelledError:
                        cancelled += 1
                        continue
                else:
                    delay = DELAYS[i // 2 % len(DELAYS)]
                    try:
                        batch = await asyncio.wait_for(
                            consumer.poll(timeout=1.0, max_records=23), delay
                        )
                    except asyncio.TimeoutError:
                        cancelled += 1
                        continue
                    seen += [(tp.partition, r.offset) for tp, r in batch]
                    batch = None
                    if i % 6 == 0:
                        # The iterator too: cancel while it waits for its next record.
                        iterator = consumer.records(timeout=1.0)
                        try:
                            record = await asyncio.wait_for(anext(iterator), delay)
                            seen.append((record.partition, record.offset))
                        except (asyncio.TimeoutError, StopAsyncIteration):
                            cancelled += 1
                        await iterator.aclose()
                completed += 1
                if batch is not None:
                    seen += [(tp.partition, r.offset) for tp, r in batch]
        return seen, cancelled, completed

    seen, cancelled, completed = asyncio.run(main())
    assert cancelled > 20 and completed > 20, (cancelled, completed)
    _check(seen, ends)


def test_trio_poll_cancelled_at_every_await_point(kafka: Any, written: Any) -> None:
    name, ends = written
    tps = [TopicPartition(name, p) for p in range(PARTITIONS)]

    async def main() -> tuple[list[tuple[int, int]], int, int]:
        seen: list[tuple[int, int]] = []
        cancelled = completed = 0
        async with ktrio.Consumer(
            kafka.bootstrap, auto_offset_reset="earliest", max_partition_fetch_bytes=4096
        ) as consumer:
            consumer.assign(tps)
            i = 0
            while len(seen) < COUNT and i < 5000:
                i += 1
                if i % 2:
                    # Cancel after a number of scheduling turns of a sibling task.
                    turns = TURNS[i // 2 % len(TURNS)]
                    result: list[Any] = []
                    async with trio.open_nursery() as nursery:
                        scope = trio.CancelScope()

                        async def poller(
                            scope: trio.CancelScope = scope, result: list[Any] = result
                        ) -> None:
                            with scope:
                                result.append(await consumer.poll(timeout=1.0, max_records=23))

                        nursery.start_soon(poller)
                        for _ in range(turns):
                            await trio.lowlevel.checkpoint()
                        scope.cancel()
                    if not result:
                        cancelled += 1
                        continue
                    batch = result[0]
                else:
                    delay = DELAYS[i // 2 % len(DELAYS)]
                    with trio.move_on_after(delay) as timer:
                        batch = await consumer.poll(timeout=1.0, max_records=23)
                    if timer.cancelled_caught:
                        cancelled += 1
                        continue
                    seen += [(tp.partition, r.offset) for tp, r in batch]
                    batch = None
                    if i % 6 == 0:
                        iterator = consumer.records(timeout=1.0)
                        with trio.move_on_after(delay) as timer:
                            try:
                                record = await anext(iterator)
                                seen.append((record.partition, record.offset))
                            except StopAsyncIteration:
                                pass
                        cancelled += timer.cancelled_caught
                        await iterator.aclose()
                completed += 1
                if batch is not None:
                    seen += [(tp.partition, r.offset) for tp, r in batch]
        return seen, cancelled, completed

    seen, cancelled, completed = trio.run(main)
    assert cancelled > 20 and completed > 20, (cancelled, completed)
    _check(seen, ends)
