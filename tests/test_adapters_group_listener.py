"""Rebalance listeners on each adapter: seek in assigned, commit in revoked, errors reach poll.

The listeners of the asyncio and trio consumers are ``async`` (and awaited);
the blocking consumer's are plain functions.  Against the real broker.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from _adapters import ADAPTERS, consume, run_consumer
from confluent_kafka import Producer

from kafka_sansio import TopicPartition

pytestmark = pytest.mark.timeout(180)

OPTIONS = {
    "auto_offset_reset": "earliest",
    "session_timeout": 6.0,
    "heartbeat_interval": 0.5,
    "enable_auto_commit": False,
}


@pytest.fixture(scope="module")
def ten_each(kafka: Any) -> str:
    topic = kafka.create_topic(partitions=2, prefix="listen")
    producer = Producer(kafka.client_config())
    for i in range(20):
        producer.produce(topic, f"{i}".encode(), partition=i % 2)
    assert producer.flush(30) == 0
    return topic


def _listener(adapter: str, consumer: Any, calls: list[str], seek_to: int, fail: bool) -> Any:
    real = getattr(consumer, "_consumer", consumer)  # the blocking consumer behind the shim

    if adapter == "blocking":

        class Sync:
            def on_partitions_assigned(self, partitions: set[TopicPartition]) -> None:
                calls.append(f"assigned {sorted(p.partition for p in partitions)}")
                if fail:
                    raise ValueError("listener failed")
                for tp in partitions:
                    real.seek(tp, seek_to)

            def on_partitions_revoked(self, partitions: set[TopicPartition]) -> None:
                calls.append(f"revoked {sorted(p.partition for p in partitions)}")
                real.commit()

        return Sync()

    class Async:
        async def on_partitions_assigned(self, partitions: set[TopicPartition]) -> None:
            calls.append(f"assigned {sorted(p.partition for p in partitions)}")
            if fail:
                raise ValueError("listener failed")
            for tp in partitions:
                consumer.seek(tp, seek_to)

        async def on_partitions_revoked(self, partitions: set[TopicPartition]) -> None:
            calls.append(f"revoked {sorted(p.partition for p in partitions)}")
            await consumer.commit()

    return Async()


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_seek_in_assigned_and_commit_in_revoked(adapter: str, kafka: Any, ten_each: str) -> None:
    group = f"listen-{uuid.uuid4().hex[:8]}"
    calls: list[str] = []
    tps = [TopicPartition(ten_each, p) for p in range(2)]

    async def scenario(consumer: Any) -> Any:
        consumer.subscribe([ten_each], listener=_listener(adapter, consumer, calls, 6, False))
        got = await consume(consumer, 8)  # offsets 6..9 of both partitions
        assert not await consumer.poll(timeout=0.5)
        consumer.unsubscribe()  # revokes: the listener commits the positions
        for _ in range(20):
            if any(c.startswith("revoked") for c in calls):
                break
            await consumer.poll(timeout=0.2)
        return got

    got = run_consumer(adapter, kafka.bootstrap, scenario, group_id=group, **OPTIONS)
    assert sorted((r.partition, r.offset) for r in got) == [
        (p, o) for p in (0, 1) for o in range(6, 10)
    ]
    assert calls == ["assigned [0, 1]", "revoked [0, 1]"]

    async def check(consumer: Any) -> Any:
        return await consumer.committed(tps)

    committed = run_consumer(adapter, kafka.bootstrap, check, group_id=group, **OPTIONS)
    assert {tp: c.offset for tp, c in committed.items()} == {tps[0]: 10, tps[1]: 10}


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_a_listener_error_reaches_poll_and_the_group_goes_on(
    adapter: str, kafka: Any, ten_each: str
) -> None:
    group = f"listen-err-{uuid.uuid4().hex[:8]}"
    calls: list[str] = []

    async def scenario(consumer: Any) -> Any:
        consumer.subscribe([ten_each], listener=_listener(adapter, consumer, calls, 0, True))
        with pytest.raises(ValueError, match="listener failed"):
            for _ in range(100):
                await consumer.poll(timeout=0.2)
        # The rebalance went on: with no seek, the partitions start from the reset policy.
        return await consume(consumer, 20)

    got = run_consumer(adapter, kafka.bootstrap, scenario, group_id=group, **OPTIONS)
    assert calls == ["assigned [0, 1]", "revoked [0, 1]"]  # revoked: by close
    assert sorted((r.partition, r.offset) for r in got) == [
        (p, o) for p in (0, 1) for o in range(10)
    ]
