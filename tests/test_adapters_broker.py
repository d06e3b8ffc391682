"""The user-facing Consumer on each adapter (blocking, asyncio, trio) against the real broker.

Every test runs the same scenario on the three adapters; data is written by
confluent-kafka (librdkafka), never by this project.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from _adapters import ADAPTERS, consume, run_consumer
from confluent_kafka import Producer
from kafka_sansio.transports import ConsumerRecord, PartitionEventError, TlsError

from kafka_sansio import (
    Event,
    NoOffsetForPartition,
    OffsetOutOfRange,
    OffsetReset,
    ResetReason,
    TopicPartition,
)
from kafka_sansio.errors import InvalidTopicExceptionError, OffsetOutOfRangeError
from kafka_sansio.records import codec_available

pytestmark = pytest.mark.timeout(180)

CODECS = [c for c in ("none", "gzip", "snappy", "lz4", "zstd") if codec_available(c)]
PER_CODEC = 150


def produce(config: dict[str, Any], topic: str, rows: list[tuple[int, bytes, bytes]], **kw: Any):
    """Write (partition, key, value) rows with confluent-kafka; return what it acknowledged."""
    acked: list[ConsumerRecord] = []

    def report(err: Any, msg: Any) -> None:
        assert err is None, err
        acked.append(
            ConsumerRecord(
                msg.topic(),
                msg.partition(),
                msg.offset(),
                msg.timestamp()[1],
                0,
                msg.key(),
                msg.value(),
                (("h", msg.key()),),  # as written below
            )
        )

    producer = Producer({**config, "linger.ms": 5, **kw})
    for partition, key, value in rows:
        producer.produce(
            topic, value, key, partition=partition, headers=[("h", key)], on_delivery=report
        )
    assert producer.flush(60) == 0
    return acked


def _same(record: ConsumerRecord, expected: ConsumerRecord) -> bool:
    return (record.topic, record.partition, record.offset, record.key, record.value) == (
        expected.topic,
        expected.partition,
        expected.offset,
        expected.key,
        expected.value,
    ) and record.headers == expected.headers


@pytest.fixture(scope="module")
def mixed_topic(kafka: Any) -> tuple[str, list[ConsumerRecord]]:
    """3 partitions; batches in every available codec, written by confluent-kafka."""
    name = kafka.create_topic(partitions=3, prefix="adapters")
    acked: list[ConsumerRecord] = []
    for codec in CODECS:
        rows = [
            (i % 3, f"{codec}-{i}".encode(), f"value {codec} {i}".encode() * 3)
            for i in range(PER_CODEC)
        ]
        acked += produce(kafka.client_config(), name, rows, **{"compression.codec": codec})
    return name, acked


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_consumes_exactly_what_confluent_kafka_produced(
    adapter: str, kafka: Any, mixed_topic: Any
) -> None:
    name, acked = mixed_topic
    tps = [TopicPartition(name, p) for p in range(3)]

    async def scenario(consumer: Any) -> list[ConsumerRecord]:
        consumer.assign(tps)
        consumer.seek_to_beginning()
        got = await consume(consumer, len(acked))
        extra = await consumer.poll(timeout=0.3)
        assert not extra, "records beyond what was produced"
        return got

    got = run_consumer(adapter, kafka.bootstrap, scenario, auto_offset_reset="latest")
    by_partition: dict[int, list[ConsumerRecord]] = {}
    for record in got:
        by_partition.setdefault(record.partition, []).append(record)
    for p in range(3):
        want = sorted((r for r in acked if r.partition == p), key=lambda r: r.offset)
        have = by_partition.get(p, [])
        assert [r.offset for r in have] == [r.offset for r in want]
        for h, w in zip(have, want, strict=True):
            assert _same(h, w), (h, w)


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_seek_positions_and_offset_lookups(adapter: str, kafka: Any, mixed_topic: Any) -> None:
    name, acked = mixed_topic
    tp = TopicPartition(name, 1)
    end = max(r.offset for r in acked if r.partition == 1) + 1
    middle = next(r for r in acked if r.partition == 1 and r.offset == end // 2)

    async def scenario(consumer: Any) -> None:
        consumer.assign([tp])
        assert await consumer.position(tp) == end  # latest: the end of the log
        assert await consumer.end_offsets([tp]) == {tp: end}
        assert await consumer.beginning_offsets([tp]) == {tp: 0}
        consumer.seek(tp, middle.offset)
        assert await consumer.position(tp) == middle.offset
        first = (await consume(consumer, 1))[0]
        assert first.offset == middle.offset and first.value == middle.value
        assert await consumer.position(tp) == middle.offset + 1
        found = await consumer.offsets_for_times({tp: middle.timestamp})
        assert found[tp] is not None and found[tp].offset <= middle.offset
        future = await consumer.offsets_for_times({tp: middle.timestamp + 10**9})
        assert future == {tp: None}
        consumer.seek_to_end(tp)
        assert await consumer.position(tp) == end
        consumer.seek_to_beginning(tp)
        assert await consumer.position(tp) == 0

    run_consumer(adapter, kafka.bootstrap, scenario)


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_reset_policies_and_out_of_range(adapter: str, kafka: Any, mixed_topic: Any) -> None:
    name, acked = mixed_topic
    tp = TopicPartition(name, 2)
    end = max(r.offset for r in acked if r.partition == 2) + 1

    async def earliest(consumer: Any) -> None:
        consumer.assign([tp])
        assert (await consume(consumer, 1))[0].offset == 0
        consumer.seek(tp, end + 1000)  # past the end: the policy moves it back
        record = (await consume(consumer, 1))[0]
        assert record.offset == 0

    events: list[Event] = []
    run_consumer(
        adapter, kafka.bootstrap, earliest, auto_offset_reset="earliest", on_event=events.append
    )
    resets = [e for e in events if isinstance(e, OffsetReset)]
    assert [r.reason for r in resets] == [ResetReason.NO_POSITION, ResetReason.OUT_OF_RANGE]
    assert resets[1].from_offset == end + 1000 and resets[1].to_offset == 0

    async def none_raises(consumer: Any) -> None:
        consumer.assign([tp])
        with pytest.raises(PartitionEventError) as no_offset:
            await consumer.poll(timeout=10)
        assert isinstance(no_offset.value.event, NoOffsetForPartition)
        consumer.seek(tp, end + 5)
        with pytest.raises(OffsetOutOfRangeError) as out:
            for _ in range(100):
                await consumer.poll(timeout=0.2)
        assert out.value.event.offsets == {tp: end + 5}
        consumer.seek(tp, end - 1)
        record = (await consume(consumer, 1))[0]
        assert record.offset == end - 1

    run_consumer(adapter, kafka.bootstrap, none_raises, auto_offset_reset="none")

    seen: list[Event] = []

    async def none_callback(consumer: Any) -> None:
        consumer.assign([tp])
        consumer.seek(tp, end + 7)
        for _ in range(100):
            if any(isinstance(e, OffsetOutOfRange) for e in seen):
                break
            assert not await consumer.poll(timeout=0.2)

    run_consumer(
        adapter, kafka.bootstrap, none_callback, auto_offset_reset="none", on_event=seen.append
    )
    assert [e for e in seen if isinstance(e, OffsetOutOfRange)] == [OffsetOutOfRange({tp: end + 7})]


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_pause_and_resume(adapter: str, kafka: Any, mixed_topic: Any) -> None:
    name, acked = mixed_topic
    tps = [TopicPartition(name, p) for p in range(3)]
    paused = tps[0]
    others = sum(1 for r in acked if r.partition != 0)

    async def scenario(consumer: Any) -> None:
        consumer.assign(tps)
        consumer.seek_to_beginning()
        consumer.pause(paused)
        assert consumer.paused() == {paused}
        got = await consume(consumer, others)
        assert all(r.partition != 0 for r in got)
        assert not await consumer.poll(timeout=1.0), "a paused partition was fetched"
        consumer.resume(paused)
        rest = await consume(consumer, len(acked) - others)
        assert {r.partition for r in rest} == {0}
        assert [r.offset for r in rest] == sorted(r.offset for r in rest)

    run_consumer(adapter, kafka.bootstrap, scenario)


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_iterator_left_early_loses_nothing(adapter: str, kafka: Any, mixed_topic: Any) -> None:
    name, acked = mixed_topic
    tps = [TopicPartition(name, p) for p in range(3)]

    async def scenario(consumer: Any) -> list[tuple[int, int]]:
        consumer.assign(tps)
        consumer.seek_to_beginning()
        seen: list[tuple[int, int]] = []
        while len(seen) < len(acked):
            async for record in consumer.records(timeout=30):
                seen.append((record.partition, record.offset))
                if len(seen) % 7 == 0:
                    break  # leave mid-batch
            batch = await consumer.poll(timeout=0.0, max_records=3)
            seen += [(tp.partition, r.offset) for tp, r in batch]
        return seen

    seen = run_consumer(adapter, kafka.bootstrap, scenario)
    assert sorted(seen) == sorted((r.partition, r.offset) for r in acked)
    assert len(seen) == len(set(seen))


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_topic_created_after_the_consumer_started(adapter: str, kafka: Any) -> None:
    import uuid

    name = f"late-{uuid.uuid4().hex[:10]}"
    tp = TopicPartition(name, 0)

    async def scenario(consumer: Any) -> list[ConsumerRecord]:
        consumer.assign([tp])
        assert not await consumer.poll(timeout=1.0)
        kafka.admin().create_topics([_new_topic(name)])[name].result(30)
        produce(kafka.client_config(), name, [(0, b"k", b"first"), (0, b"k", b"second")])
        return await consume(consumer, 2)

    got = run_consumer(adapter, kafka.bootstrap, scenario, auto_offset_reset="earliest")
    assert [r.value for r in got] == [b"first", b"second"]


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_an_invalid_topic_name_raises_and_the_other_partitions_go_on(
    adapter: str, kafka: Any, mixed_topic: Any
) -> None:
    """The broker refuses the name (INVALID_TOPIC_EXCEPTION): poll raises it once, as Java's does."""
    name, acked = mixed_topic
    good = TopicPartition(name, 1)
    bad = TopicPartition("not a valid name!", 0)
    wanted = sorted(r.offset for r in acked if r.partition == 1)

    async def scenario(consumer: Any) -> list[tuple[int, int]]:
        consumer.assign([good, bad])
        seen: list[tuple[int, int]] = []
        with pytest.raises(InvalidTopicExceptionError) as refused:
            for _ in range(50):
                seen += [(tp.partition, r.offset) for tp, r in await consumer.poll(timeout=0.2)]
        assert refused.value.event.partition == bad
        rest = await consume(consumer, len(wanted) - len(seen))  # not raised again
        return seen + [(r.partition, r.offset) for r in rest]

    got = run_consumer(adapter, kafka.bootstrap, scenario, auto_offset_reset="earliest")
    assert got == [(1, o) for o in wanted]


def _new_topic(name: str) -> Any:
    from confluent_kafka.admin import NewTopic

    return NewTopic(name, num_partitions=1, replication_factor=1)


@pytest.fixture(scope="module")
def tls_topic(kafka_tls: Any) -> tuple[str, list[ConsumerRecord]]:
    name = kafka_tls.create_topic(partitions=2, prefix="tls")
    rows = [(i % 2, f"k{i}".encode(), b"x" * 3000 + str(i).encode()) for i in range(400)]
    return name, produce(kafka_tls.client_config(tls=True), name, rows)


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_tls_with_a_self_signed_ca(adapter: str, kafka_tls: Any, tls_topic: Any) -> None:
    name, acked = tls_topic
    tps = [TopicPartition(name, p) for p in range(2)]

    async def scenario(consumer: Any) -> list[ConsumerRecord]:
        consumer.assign(tps)
        return await consume(consumer, len(acked))

    got = run_consumer(
        adapter,
        kafka_tls.tls_bootstrap,
        scenario,
        auto_offset_reset="earliest",
        ssl=kafka_tls.tls_cafile,
    )
    assert sorted((r.partition, r.offset, r.value) for r in got) == sorted(
        (r.partition, r.offset, r.value) for r in acked
    )


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_tls_refuses_an_unverified_broker(adapter: str, kafka_tls: Any, tls_topic: Any) -> None:
    name, _ = tls_topic

    async def scenario(consumer: Any) -> None:
        consumer.assign([TopicPartition(name, 0)])
        with pytest.raises(TlsError):
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                assert not await consumer.poll(timeout=0.5)

    # The system's default CAs do not know the session's self-signed CA.
    run_consumer(adapter, kafka_tls.tls_bootstrap, scenario, ssl=True)


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_sasl_scram_sha_512(adapter: str, kafka_sasl: Any) -> None:
    name = kafka_sasl.create_topic(partitions=1, prefix="sasl")
    acked = produce(
        kafka_sasl.client_config(), name, [(0, b"k", f"v{i}".encode()) for i in range(50)]
    )
    user = "alice"

    async def scenario(consumer: Any) -> list[ConsumerRecord]:
        consumer.assign([TopicPartition(name, 0)])
        return await consume(consumer, len(acked))

    got = run_consumer(
        adapter,
        kafka_sasl.sasl_bootstrap,
        scenario,
        auto_offset_reset="earliest",
        sasl_mechanism="SCRAM-SHA-512",
        sasl_username=user,
        sasl_password=kafka_sasl.users[user],
    )
    assert [r.value for r in got] == [r.value for r in acked]
