"""The Producer and the Admin on each adapter against the real broker.

What the producer writes is read back by confluent-kafka (librdkafka), never
by this project; where a keyed record lands is compared with librdkafka's
``murmur2_random`` partitioner, which is the Java client's.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from _adapters import ADAPTERS, run_client
from confluent_kafka import Consumer as CKConsumer
from confluent_kafka import Producer as CKProducer
from confluent_kafka import TopicPartition as CKTopicPartition
from kafka_sansio.transports import ClosedError

from kafka_sansio import (
    NewTopic,
    ProducerClosedError,
    RecordTooLargeError,
    TopicPartition,
    murmur2,
)
from kafka_sansio.errors import TopicAlreadyExistsError, UnknownTopicOrPartitionError

pytestmark = pytest.mark.timeout(240)

PARTITIONS = 6
COUNT = 100_000


def _read_all(kafka: Any, topic: str, partitions: int, count: int) -> list[Any]:
    consumer = CKConsumer(
        {
            **kafka.client_config(),
            "group.id": f"check-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
        }
    )
    consumer.assign([CKTopicPartition(topic, p, 0) for p in range(partitions)])
    out: list[Any] = []
    idle = 0
    while len(out) < count and idle < 30:
        batch = consumer.consume(10_000, timeout=1.0)
        idle = 0 if batch else idle + 1
        for msg in batch:
            assert msg.error() is None, msg.error()
            out.append(msg)
    extra = consumer.consume(1000, timeout=1.0)
    consumer.close()
    assert not extra, f"{len(extra)} records more than were produced"
    return out


def _java_partitions(kafka: Any, keys: list[bytes], partitions: int) -> dict[bytes, int]:
    """Where librdkafka's murmur2_random (Java's partitioner) puts each key."""
    name = kafka.create_topic(partitions=partitions, prefix="javapart")
    placed: dict[bytes, int] = {}

    def report(err: Any, msg: Any) -> None:
        assert err is None
        placed[msg.key()] = msg.partition()

    producer = CKProducer({**kafka.client_config(), "partitioner": "murmur2_random"})
    for key in keys:
        producer.produce(name, b"", key, on_delivery=report)
    assert producer.flush(30) == 0
    return placed


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_keyed_records_land_once_in_order_on_javas_partition(adapter: str, kafka: Any) -> None:
    name = kafka.create_topic(partitions=PARTITIONS, prefix=f"produce-{adapter}")
    keys = [f"key-{i % 5000}".encode() for i in range(COUNT)]

    async def scenario(producer: Any) -> list[Any]:
        futures = [
            await producer.send(name, f"{i:07d}".encode() + b"." * 92, key=keys[i])
            for i in range(COUNT)
        ]
        await producer.flush()
        assert all(f.done() for f in futures)
        return [await futures[0], await futures[-1]]

    first, last = run_client(adapter, "Producer", kafka.bootstrap, scenario, linger=0.01)
    assert first.topic == name and first.offset >= 0 and last.offset >= 0

    records = _read_all(kafka, name, PARTITIONS, COUNT)
    assert len(records) == COUNT
    java = _java_partitions(kafka, sorted(set(keys))[:500], PARTITIONS)
    per_partition: dict[int, list[int]] = {}
    for msg in records:
        seq = int(msg.value()[:7])
        assert msg.key() == keys[seq]
        assert msg.partition() == (murmur2(keys[seq]) & 0x7FFFFFFF) % PARTITIONS
        if msg.key() in java:
            assert msg.partition() == java[msg.key()]
        per_partition.setdefault(msg.partition(), []).append(seq)
    seen = sorted(s for seqs in per_partition.values() for s in seqs)
    assert seen == list(range(COUNT)), "a record is missing or written twice"
    for seqs in per_partition.values():
        assert seqs == sorted(seqs), "order within a partition was not kept"


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_producer_bad_input_is_a_typed_error_and_loses_nothing(adapter: str, kafka: Any) -> None:
    name = kafka.create_topic(partitions=1, prefix="badprod")
    missing = f"missing-{uuid.uuid4().hex[:8]}"

    async def scenario(producer: Any) -> dict[str, Any]:
        ok = await producer.send(name, b"before")
        with pytest.raises(RecordTooLargeError):
            await producer.send(name, b"x" * 20_000)
        lost = await producer.send(missing, b"nowhere")
        with pytest.raises(UnknownTopicOrPartitionError):
            await lost
        after = await producer.send(name, b"after", headers=[("h", b"1")], timestamp_ms=1234)
        await producer.flush()
        return {"ok": await ok, "after": await after}

    got = run_client(
        adapter, "Producer", kafka.bootstrap, scenario, max_request_size=10_000, max_block=2.0
    )
    assert (got["ok"].offset, got["after"].offset) == (0, 1)
    records = _read_all(kafka, name, 1, 2)
    assert [m.value() for m in records] == [b"before", b"after"]
    assert records[1].timestamp()[1] == 1234 and records[1].headers() == [("h", b"1")]

    async def closed(producer: Any) -> None:
        await producer.close()
        with pytest.raises((ClosedError, ProducerClosedError)):
            await producer.send(name, b"late")

    run_client(adapter, "Producer", kafka.bootstrap, closed)


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_a_full_buffer_waits_for_room_and_then_fails_typed(adapter: str, kafka: Any) -> None:
    from kafka_sansio import BufferFullError

    name = kafka.create_topic(partitions=1, prefix="buffer")

    async def waits(producer: Any) -> int:
        futures = [await producer.send(name, b"v" * 1000) for _ in range(300)]
        await producer.flush()
        return sum(1 for f in futures if f.done())

    # 300 kB through a 20 kB buffer: sends wait for deliveries to free room.
    assert run_client(adapter, "Producer", kafka.bootstrap, waits, buffer_memory=20_000) == 300

    # A long linger keeps records in the buffer; max_block ends the wait for room.
    async def fails(producer: Any) -> int:
        futures = []
        with pytest.raises(BufferFullError):
            for _ in range(100):
                futures.append(await producer.send(name, b"w" * 1000))
        assert 10 <= len(futures) < 30
        await producer.flush()
        for future in futures:
            await future
        return len(futures)

    queued = run_client(
        adapter,
        "Producer",
        kafka.bootstrap,
        fails,
        buffer_memory=20_000,
        batch_size=1_000_000,
        linger=60.0,
        max_block=1.0,
    )
    records = _read_all(kafka, name, 1, 300 + queued)
    assert [m.value() for m in records[300:]] == [b"w" * 1000] * queued


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_admin_topic_lifecycle(adapter: str, kafka: Any) -> None:
    name = f"admin-{adapter}-{uuid.uuid4().hex[:8]}"

    async def scenario(admin: Any) -> None:
        created = await admin.create_topics([NewTopic(name, 2, 1)])
        assert created[name].partitions == 2
        with pytest.raises(TopicAlreadyExistsError):
            await admin.create_topics([NewTopic(name, 2, 1)])
        cluster = await admin.describe_cluster()
        assert cluster.cluster_id == kafka.cluster_id or kafka.cluster_id is None
        assert [b.node_id for b in cluster.brokers]
        await admin.create_partitions({name: 4})
        for _ in range(100):  # brokers learn of new partitions a moment after the controller
            described = await admin.describe_topics([name])
            if len(described[name].partitions) == 4:
                break
        assert len(described[name].partitions) == 4
        assert name in await admin.list_topics()
        offsets = await admin.list_offsets({TopicPartition(name, 3): -1})
        assert offsets[TopicPartition(name, 3)].offset == 0
        await admin.delete_topics([name])
        for _ in range(100):  # as above: a broker may still list it for a moment
            try:
                await admin.describe_topics([name])
            except UnknownTopicOrPartitionError:
                break
        with pytest.raises(UnknownTopicOrPartitionError):
            await admin.describe_topics([name])

    run_client(adapter, "Admin", kafka.bootstrap, scenario)


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_acks_0_records_queued_before_close_all_arrive(adapter: str, kafka: Any) -> None:
    """With acks=0 a record is done once its bytes are queued; closing must still send them."""
    name = kafka.create_topic(partitions=1, prefix="acks0")
    count = 20_000

    async def scenario(producer: Any) -> None:
        for i in range(count):
            await producer.send(name, f"{i:06d}".encode() + b"." * 200)
        await producer.close()

    run_client(adapter, "Producer", kafka.bootstrap, scenario, acks=0, linger=0.001)
    records = _read_all(kafka, name, 1, count)
    assert [int(m.value()[:6]) for m in records] == list(range(count))


@pytest.mark.parametrize("adapter", ["asyncio", "trio"])
def test_async_producers_deliver_while_the_task_does_something_else(
    adapter: str, kafka: Any
) -> None:
    """No call after send: the event loop alone sends the batch and resolves its future."""
    import asyncio

    import trio

    name = kafka.create_topic(partitions=1, prefix="idle")

    async def scenario(producer: Any) -> bool:
        future = await producer.send(name, b"alone")
        for _ in range(100):  # sleep in small steps, never calling the producer
            await (asyncio.sleep(0.05) if adapter == "asyncio" else trio.sleep(0.05))
            if future.done():
                break
        return bool(future.done())

    assert run_client(adapter, "Producer", kafka.bootstrap, scenario, linger=0.01)
    assert [m.value() for m in _read_all(kafka, name, 1, 1)] == [b"alone"]


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_delivery_callbacks_get_metadata_or_the_error(adapter: str, kafka: Any) -> None:
    from kafka_sansio.transports import RecordMetadata

    name = kafka.create_topic(partitions=1, prefix="callbacks")
    missing = f"missing-{uuid.uuid4().hex[:8]}"
    seen: list[tuple[Any, Any]] = []

    async def scenario(producer: Any) -> None:
        for i in range(3):
            await producer.send(name, b"%d" % i, on_delivery=lambda m, e: seen.append((m, e)))
        await producer.send(missing, b"x", on_delivery=lambda m, e: seen.append((m, e)))
        await producer.flush()

    run_client(adapter, "Producer", kafka.bootstrap, scenario, max_block=1.0)
    good = [m for m, e in seen if e is None]
    assert good == [RecordMetadata(name, 0, i, -1) for i in range(3)]
    [(meta, error)] = [(m, e) for m, e in seen if e is not None]
    assert meta is None and isinstance(error, UnknownTopicOrPartitionError)


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_futures_dropped_or_kept_all_get_their_outcome_once(adapter: str, kafka: Any) -> None:
    """The producer keeps outcomes per 256 tokens, not a future per record.

    1,000 records over two partitions: a callback on every third, every
    seventh future kept, the rest dropped at once.  Each callback runs once
    with its record's offset, each kept future gives its record's metadata,
    and the producer holds nothing for resolved records afterwards.
    """
    name = kafka.create_topic(partitions=2, prefix=f"cells-{adapter}")
    calls: dict[int, list[Any]] = {}
    kept: dict[int, Any] = {}

    def on_delivery(i: int) -> Any:
        return lambda meta, error: calls.setdefault(i, []).append((meta, error))

    async def scenario(producer: Any) -> list[Any]:
        for i in range(1000):
            future = await producer.send(
                name,
                b"%d" % i,
                partition=i % 2,
                on_delivery=on_delivery(i) if i % 3 == 0 else None,
            )
            if i % 7 == 0:
                kept[i] = future
        await producer.flush()
        state = producer._state
        # Only the cell still taking tokens (1,000 of 1,024) is left.
        left = [cell is state.cell for cell in state.cells.values()]
        return [left, [await kept[i] for i in sorted(kept)]]

    left, metas = run_client(adapter, "Producer", kafka.bootstrap, scenario, linger=0.005)
    assert left == [True]
    assert sorted(calls) == list(range(0, 1000, 3))
    for i, got in calls.items():
        [(meta, error)] = got
        assert error is None and meta.partition == i % 2 and meta.offset == i // 2
    assert [m.offset for m in metas] == [i // 2 for i in sorted(kept)]
    assert [m.partition for m in metas] == [i % 2 for i in sorted(kept)]
