"""ConsumerCore against Apache Kafka: what confluent-kafka wrote is what the core reads.

Every test drives a :class:`ConsumerCore` over real sockets (``SocketPump``)
and compares, record by record, with what the broker acknowledged to
confluent-kafka (librdkafka): offsets, keys, values, headers, timestamps.
Offset resets, out-of-range positions, pause/resume, timestamp lookups,
read_committed, late topic creation and leader failover on a three-node
cluster each get their exact expected events.
"""

from __future__ import annotations

import itertools
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from _consumer_helpers import LiveConsumer, Produced, produce, produced_view, record_view
from confluent_kafka import Producer

from kafka_sansio._consumer import ConsumerCore
from kafka_sansio._events import (
    FetchError,
    LogTruncation,
    NoOffsetForPartition,
    OffsetOutOfRange,
    OffsetReset,
    OffsetsResult,
    ResetReason,
)
from kafka_sansio._messages.delete_records import (
    DeleteRecordsPartition,
    DeleteRecordsRequest,
    DeleteRecordsResponse,
    DeleteRecordsTopic,
)
from kafka_sansio._messages.fetch import FetchRequest
from kafka_sansio._messages.metadata import MetadataRequest
from kafka_sansio._subscription import FetchState
from kafka_sansio._types import (
    IsolationLevel,
    OffsetAndTimestamp,
    OffsetResetPolicy,
    TopicPartition,
)

EARLIEST = OffsetResetPolicy.EARLIEST
LATEST = OffsetResetPolicy.LATEST
NONE = OffsetResetPolicy.NONE
NO_POSITION = ResetReason.NO_POSITION
OUT_OF_RANGE = ResetReason.OUT_OF_RANGE


@pytest.fixture
def consumers(kafka: Any) -> Iterator[list[LiveConsumer]]:
    """Consumers made by a test; closed afterwards."""
    made: list[LiveConsumer] = []
    yield made
    for consumer in made:
        consumer.close()


def _consumer(
    made: list[LiveConsumer], cluster: Any, policy: OffsetResetPolicy = EARLIEST, **config: Any
) -> LiveConsumer:
    consumer = LiveConsumer(cluster.bootstrap, policy, **config)
    made.append(consumer)
    return consumer


def _producer(cluster: Any, **config: Any) -> Any:
    return Producer({"bootstrap.servers": cluster.bootstrap, "linger.ms": 0, **config})


def _plain(topic_producer: Any, topic: str, partition: int, values: list[bytes]) -> list[Produced]:
    return produce(topic_producer, topic, [(partition, None, v, (), None) for v in values])


def _delete_records(cluster: Any, topic: str, before: dict[int, int]) -> None:
    """Move the log start of each partition (single-node cluster: node 1 leads all)."""
    from kafka_wire import KafkaWire

    request = DeleteRecordsRequest(
        topics=[
            DeleteRecordsTopic(
                name=topic,
                partitions=[
                    DeleteRecordsPartition(partition_index=p, offset=o) for p, o in before.items()
                ],
            )
        ],
        timeout_ms=30_000,
    )
    with KafkaWire(cluster.host, cluster.port) as wire:
        response = wire.request(request, 2)
    assert isinstance(response, DeleteRecordsResponse)
    got = {
        r.partition_index: (r.error_code, r.low_watermark) for r in response.topics[0].partitions
    }
    assert got == {p: (0, o) for p, o in before.items()}


def _no_trouble(consumer: LiveConsumer) -> None:
    """No event other than the initial resets was reported."""
    unexpected = [
        e
        for e in consumer.events
        if not (isinstance(e, OffsetReset) and e.reason is NO_POSITION and e.from_offset is None)
    ]
    assert unexpected == []


# ---------------------------------------------------------------------- 1. every codec


@pytest.mark.parametrize(
    ("codec", "driver"),
    [
        ("none", "socket"),
        ("gzip", "socket"),
        ("snappy", "blocking"),
        ("lz4", "socket"),
        ("zstd", "blocking"),
    ],
)
def test_consumes_exactly_what_was_produced(
    kafka: Any, consumers: list[LiveConsumer], codec: str, driver: str
) -> None:
    partitions, per_partition = 4, 2000
    topic = kafka.create_topic(partitions=partitions, prefix=f"codec-{codec}")
    base_ts = 1_700_000_000_000

    def items() -> Iterator[tuple[int, bytes | None, bytes | None, list[Any], int]]:
        for i in range(per_partition):
            for p in range(partitions):
                key = f"key-{p}-{i}".encode()
                value: bytes | None = (f"value {p}/{i} " * (1 + i % 13)).encode()
                if i % 97 == 5:
                    value = None  # a tombstone
                elif i % 89 == 3:
                    value = b""
                headers: list[Any] = []
                if i % 3 == 0:
                    headers = [("trace", f"{i}".encode()), ("dup", b"a"), ("dup", b"\x00\xff")]
                elif i % 11 == 1:
                    headers = [("empty", b"")]
                yield p, key, value, headers, base_ts + i * 7 + p

    producer = _producer(kafka, **{"compression.type": codec, "linger.ms": 20})
    acked = produce(producer, topic, items())
    assert len(acked) == partitions * per_partition

    consumer = _consumer(consumers, kafka, EARLIEST, driver=driver)
    tps = [TopicPartition(topic, p) for p in range(partitions)]
    consumer.core.assign(tps, consumer.now())
    consumer.consume({tp: per_partition for tp in tps}, timeout=90)
    consumer.settle(0.5)  # nothing beyond what was produced may arrive

    for tp in tps:
        expected = [produced_view(a) for a in acked if a.partition == tp.partition]
        assert [e[0] for e in expected] == list(range(per_partition))
        assert [record_view(r) for r in consumer.records[tp]] == expected
        assert consumer.core.position(tp) == per_partition
        assert consumer.core.highwater(tp) == per_partition
    assert sorted(consumer.events, key=str) == sorted(
        (OffsetReset(tp, None, 0, NO_POSITION) for tp in tps), key=str
    )


# ---------------------------------------------------------------------- 2. reset policies


@pytest.mark.parametrize("policy", [EARLIEST, LATEST, NONE], ids=lambda p: p.value)
def test_reset_on_empty_topic(
    kafka: Any, consumers: list[LiveConsumer], policy: OffsetResetPolicy
) -> None:
    topic = kafka.create_topic(partitions=2, prefix="empty")
    tps = [TopicPartition(topic, 0), TopicPartition(topic, 1)]
    consumer = _consumer(consumers, kafka, policy)
    consumer.core.assign(tps, consumer.now())
    if policy is NONE:
        # Reported at once, without asking the broker.
        assert consumer.core.events() == [NoOffsetForPartition(tuple(tps))]
        consumer.settle(1.0)
        assert consumer.events == []
        assert [consumer.core.position(tp) for tp in tps] == [None, None]
        assert {consumer.core.fetch_state(tp) for tp in tps} == {FetchState.AWAITING_SEEK}
        consumer.core.seek(tps[1], 0, consumer.now())
    else:
        consumer.wait_event(OffsetReset, 2)
        assert sorted(consumer.events, key=str) == [
            OffsetReset(tp, None, 0, NO_POSITION) for tp in tps
        ]
        assert [consumer.position(tp) for tp in tps] == [0, 0]
    _plain(_producer(kafka), topic, 1, [b"a", b"b"])
    consumer.consume({tps[1]: 2})
    assert [r.value for r in consumer.records[tps[1]]] == [b"a", b"b"]
    assert consumer.offsets(tps[1]) == [0, 1]
    assert tps[0] not in consumer.records


@pytest.mark.parametrize("policy", [EARLIEST, LATEST, NONE], ids=lambda p: p.value)
def test_reset_on_topic_with_data(
    kafka: Any, consumers: list[LiveConsumer], policy: OffsetResetPolicy
) -> None:
    topic = kafka.create_topic(partitions=3, prefix="reset")
    tps = [TopicPartition(topic, p) for p in range(3)]
    producer = _producer(kafka)
    counts = [5, 0, 12]
    for p, n in enumerate(counts):
        _plain(producer, topic, p, [f"old-{p}-{i}".encode() for i in range(n)])
    consumer = _consumer(consumers, kafka, policy)
    consumer.core.assign(tps, consumer.now())
    if policy is NONE:
        assert consumer.core.events() == [NoOffsetForPartition(tuple(tps))]
        consumer.settle(1.0)
        assert consumer.events == [] and consumer.records == {}
        return
    consumer.wait_event(OffsetReset, 3)
    start = [0, 0, 0] if policy is EARLIEST else counts
    assert sorted(consumer.events, key=str) == sorted(
        (OffsetReset(tp, None, s, NO_POSITION) for tp, s in zip(tps, start, strict=True)), key=str
    )
    for p in range(3):
        _plain(producer, topic, p, [f"new-{p}-{i}".encode() for i in range(3)])
    consumer.consume({tp: counts[tp.partition] - s + 3 for tp, s in zip(tps, start, strict=True)})
    consumer.settle(0.5)
    for tp, s in zip(tps, start, strict=True):
        assert consumer.offsets(tp) == list(range(s, counts[tp.partition] + 3))
        assert [r.value for r in consumer.records[tp]][-3:] == [
            f"new-{tp.partition}-{i}".encode() for i in range(3)
        ]
        assert consumer.core.position(tp) == counts[tp.partition] + 3


@pytest.mark.parametrize("policy", [EARLIEST, LATEST, NONE], ids=lambda p: p.value)
def test_several_partitions_out_of_range_at_once(
    kafka: Any, consumers: list[LiveConsumer], policy: OffsetResetPolicy
) -> None:
    """Past the end, exactly at the end and before the log start, in one fetch."""
    topic = kafka.create_topic(partitions=4, prefix="oor")
    tps = [TopicPartition(topic, p) for p in range(4)]
    producer = _producer(kafka)
    for p in range(4):
        _plain(producer, topic, p, [f"{p}-{i}".encode() for i in range(10)])
    _delete_records(kafka, topic, {2: 4, 3: 6})
    consumer = _consumer(consumers, kafka, policy)
    core = consumer.core
    core.assign(tps, consumer.now())
    initial = core.events()
    # Before any I/O, so the first fetch carries all four partitions.
    seeks = {tps[0]: 50, tps[1]: 10, tps[2]: 1, tps[3]: 11}
    for tp, offset in seeks.items():
        core.seek(tp, offset, consumer.now())
    assert [core.position(tp) for tp in tps] == [50, 10, 1, 11]
    bad = {tps[0]: 50, tps[2]: 1, tps[3]: 11}
    if policy is NONE:
        assert initial == [NoOffsetForPartition(tuple(tps))]
        [event] = consumer.wait_event(OffsetOutOfRange)
        assert event == OffsetOutOfRange(bad)
        consumer.settle(1.0)
        assert consumer.events == [event] and consumer.records == {}
        assert [core.fetch_state(tp) for tp in tps] == [
            FetchState.AWAITING_SEEK,
            FetchState.FETCHING,
            FetchState.AWAITING_SEEK,
            FetchState.AWAITING_SEEK,
        ]
        # The stopped partitions stay where they were until the user seeks.
        assert [core.position(tp) for tp in tps] == [50, 10, 1, 11]
        core.seek(tps[0], 7, consumer.now())
        core.seek_to_beginning([tps[2]], consumer.now())
        core.seek_to_end([tps[3]], consumer.now())
        assert core.position(tps[2]) is None
        assert consumer.position(tps[2]) == 4 and consumer.position(tps[3]) == 10
        consumer.consume({tps[0]: 3, tps[2]: 6})
        expected = {tps[0]: [7, 8, 9], tps[2]: [4, 5, 6, 7, 8, 9]}
    else:
        assert initial == []
        consumer.wait_event(OffsetReset, 3)
        target = {tps[0]: 0, tps[2]: 4, tps[3]: 6} if policy is EARLIEST else dict.fromkeys(bad, 10)
        assert sorted(consumer.events, key=str) == sorted(
            (OffsetReset(tp, bad[tp], target[tp], OUT_OF_RANGE) for tp in bad), key=str
        )
        expected = {tp: list(range(target[tp], 10)) for tp in bad if target[tp] < 10}
        consumer.consume({tp: len(o) for tp, o in expected.items()})
    consumer.settle(0.5)
    assert {tp: consumer.offsets(tp) for tp in consumer.records} == expected
    assert [core.position(tp) for tp in tps] == [10, 10, 10, 10]
    if policy is NONE:
        assert consumer.of_type(OffsetReset) == []


def test_seek_to_beginning_and_end_after_new_data(
    kafka: Any, consumers: list[LiveConsumer]
) -> None:
    topic = kafka.create_topic(partitions=2, prefix="seekto")
    p0, p1 = TopicPartition(topic, 0), TopicPartition(topic, 1)
    producer = _producer(kafka)
    for tp in (p0, p1):
        _plain(producer, topic, tp.partition, [b"first"] * 5)
    consumer = _consumer(consumers, kafka, EARLIEST)
    core = consumer.core
    core.assign([p0, p1], consumer.now())
    consumer.consume({p0: 5, p1: 5})
    assert consumer.offsets(p0) == consumer.offsets(p1) == [0, 1, 2, 3, 4]

    # New data arrives while the consumer is not pumped; seek_to_end skips it.
    for tp in (p0, p1):
        _plain(producer, topic, tp.partition, [b"second"] * 3)
    core.seek_to_end([p0], consumer.now())
    assert core.position(p0) is None
    assert core.fetch_state(p0) in (FetchState.NEEDS_RESET, FetchState.RESETTING)
    assert consumer.position(p0) == 8
    consumer.consume({p1: 8})
    consumer.settle(0.5)
    assert consumer.offsets(p0) == [0, 1, 2, 3, 4]
    assert consumer.offsets(p1) == list(range(8))

    # seek_to_beginning after the log start moved: the new log start.
    _delete_records(kafka, topic, {1: 6})
    core.seek_to_beginning([p1], consumer.now())
    assert core.position(p1) is None
    assert consumer.position(p1) == 6
    consumer.consume({p1: 10})
    assert consumer.offsets(p1) == [*range(8), 6, 7]

    # And seek_to_beginning of p0 re-reads everything.
    core.seek_to_beginning([p0], consumer.now())
    consumer.consume({p0: 13})
    assert consumer.offsets(p0) == [*range(5), *range(8)]
    _plain(producer, topic, 0, [b"third"] * 2)
    consumer.consume({p0: 15})
    assert consumer.offsets(p0)[-2:] == [8, 9]
    assert [r.value for r in consumer.records[p0][-2:]] == [b"third"] * 2
    # Seeking to the beginning or end is the user's move, never a policy reset.
    _no_trouble(consumer)
    assert len(consumer.of_type(OffsetReset)) == 2


@pytest.mark.parametrize("policy", [EARLIEST, NONE], ids=lambda p: p.value)
def test_seek_with_a_leader_epoch_is_validated(
    kafka: Any, consumers: list[LiveConsumer], policy: OffsetResetPolicy
) -> None:
    """A position that names its leader epoch is checked with the leader first (KIP-320).

    Offset 3 read in the partition's current epoch 0 is fine; the same offset
    claimed for epoch 7, which this log never had, is out of range, as the
    Java consumer treats a seek to a committed offset whose epoch the leader
    does not know.
    """
    topic = kafka.create_topic(prefix="seekepoch")
    tp = TopicPartition(topic, 0)
    _plain(_producer(kafka), topic, 0, [f"v{i}".encode() for i in range(6)])
    consumer = _consumer(consumers, kafka, policy)
    core = consumer.core
    core.assign([tp], consumer.now())
    core.seek(tp, 3, consumer.now(), leader_epoch=0)
    consumer.consume({tp: 3})
    assert consumer.offsets(tp) == [3, 4, 5]
    consumer.events.clear()

    core.seek(tp, 2, consumer.now(), leader_epoch=7)
    if policy is NONE:
        assert consumer.wait_event(OffsetOutOfRange) == [OffsetOutOfRange({tp: 2})]
        assert core.fetch_state(tp) is FetchState.AWAITING_SEEK
        consumer.settle(0.3)
        assert consumer.offsets(tp) == [3, 4, 5]
    else:
        assert consumer.wait_event(OffsetReset) == [OffsetReset(tp, 2, 0, OUT_OF_RANGE)]
        consumer.consume({tp: 9})
        consumer.settle(0.3)
        assert consumer.offsets(tp) == [3, 4, 5, *range(6)]


# ---------------------------------------------------------------------- 3. pause / resume


def test_pause_and_resume(kafka: Any, consumers: list[LiveConsumer]) -> None:
    topic = kafka.create_topic(partitions=2, prefix="pause")
    p0, p1 = TopicPartition(topic, 0), TopicPartition(topic, 1)
    producer = _producer(kafka, **{"linger.ms": 5})
    acked0 = _plain(producer, topic, 0, [f"a{i}".encode() for i in range(1500)])
    _plain(producer, topic, 1, [f"b{i}".encode() for i in range(10)])
    consumer = _consumer(consumers, kafka, EARLIEST, max_poll_records=50)
    core = consumer.core

    # Pause p0 with records buffered: they are dropped and fetched again on resume.
    core.assign([p0, p1], consumer.now())
    consumer.max_records = 7
    consumer.until(lambda: len(consumer.records.get(p0, [])) >= 20 and core.buffered() > 0)
    core.pause([p0], consumer.now())
    assert core.paused() == {p0}
    handed = len(consumer.records[p0])
    assert core.position(p0) == handed
    consumer.max_records = None
    consumer.consume({p1: 10})

    # While paused nothing of p0 comes, however much is written to it.
    acked0 += _plain(producer, topic, 0, [f"late{i}".encode() for i in range(300)])
    _plain(producer, topic, 1, [f"b{i}".encode() for i in range(10, 15)])
    consumer.consume({p1: 15})
    consumer.settle(1.5)
    assert len(consumer.records[p0]) == handed
    assert core.position(p0) == handed
    assert consumer.offsets(p1) == list(range(15))

    core.resume([p0], consumer.now())
    assert core.paused() == set()
    consumer.consume({p0: 1800})
    consumer.settle(0.5)
    assert consumer.offsets(p0) == list(range(1800))
    assert [r.value for r in consumer.records[p0]] == [a.value for a in acked0]
    assert core.position(p0) == 1800
    _no_trouble(consumer)


def test_pause_and_resume_churn(kafka: Any, consumers: list[LiveConsumer]) -> None:
    """Random pauses and resumes of many partitions while data keeps coming.

    Each pause forgets the partition in the incremental fetch session and each
    resume adds it back; whatever the broker's session sees, every record
    arrives once, in order.
    """
    import random

    rng = random.Random(2024)
    partitions = 8
    topic = kafka.create_topic(partitions=partitions, prefix="churn")
    tps = [TopicPartition(topic, p) for p in range(partitions)]
    producer = _producer(kafka, **{"linger.ms": 2})
    consumer = _consumer(consumers, kafka, EARLIEST, max_poll_records=37)
    core = consumer.core
    core.assign(tps, consumer.now())
    acked: list[Produced] = []
    for round_ in range(40):
        items = [
            (rng.randrange(partitions), None, f"r{round_}-{i}".encode(), (), None)
            for i in range(rng.randrange(5, 60))
        ]
        acked += produce(producer, topic, items)
        for _ in range(rng.randrange(1, 4)):
            consumer.pump.step(0.05)
            consumer.drain()
        flip = rng.sample(tps, rng.randrange(0, 4))
        core.pause([tp for tp in flip if tp not in core.paused()], consumer.now())
        core.resume([tp for tp in flip if tp in core.paused()], consumer.now())
        for tp in core.paused():
            assert core.position(tp) == len(consumer.records.get(tp, []))
    core.resume(tps, consumer.now())
    acked.sort(key=lambda a: (a.partition, a.offset))
    _check_exactly_once(consumer, topic, acked, partitions)
    _no_trouble(consumer)


@pytest.mark.parametrize("policy", [EARLIEST, LATEST, NONE], ids=lambda p: p.value)
def test_log_start_passes_a_paused_position(
    kafka: Any, consumers: list[LiveConsumer], policy: OffsetResetPolicy
) -> None:
    topic = kafka.create_topic(prefix="pausedoor")
    tp = TopicPartition(topic, 0)
    producer = _producer(kafka)
    _plain(producer, topic, 0, [f"a{i}".encode() for i in range(10)])
    consumer = _consumer(consumers, kafka, policy)
    core = consumer.core
    core.assign([tp], consumer.now())
    if policy is not EARLIEST:
        core.seek(tp, 0, consumer.now())
    consumer.consume({tp: 10})
    core.pause([tp], consumer.now())
    _plain(producer, topic, 0, [f"b{i}".encode() for i in range(10)])
    _delete_records(kafka, topic, {0: 15})
    consumer.settle(0.5)
    assert consumer.offsets(tp) == list(range(10)) and core.position(tp) == 10
    before = list(consumer.events)
    core.resume([tp], consumer.now())
    if policy is NONE:
        assert consumer.wait_event(OffsetOutOfRange) == [OffsetOutOfRange({tp: 10})]
        assert core.fetch_state(tp) is FetchState.AWAITING_SEEK
        assert core.position(tp) == 10
        return
    [reset] = consumer.wait_event(OffsetReset, 1 + len(before))[len(before) :]
    target = 15 if policy is EARLIEST else 20
    assert reset == OffsetReset(tp, 10, target, OUT_OF_RANGE)
    _plain(producer, topic, 0, [b"c0"])
    consumer.consume({tp: 10 + 21 - target})
    consumer.settle(0.3)
    assert consumer.offsets(tp) == [*range(10), *range(target, 21)]


def test_log_start_passes_buffered_records(kafka: Any, consumers: list[LiveConsumer]) -> None:
    """DeleteRecords while fetched records wait in the buffer and the next fetch is out.

    Records already fetched are handed out; then the position jumps to the
    new log start with one OUT_OF_RANGE reset from exactly where it stood.
    """
    topic = kafka.create_topic(prefix="bufoor")
    tp = TopicPartition(topic, 0)
    producer = _producer(kafka, **{"linger.ms": 50})
    produce(
        producer, topic, [(0, None, f"{i:05}".encode() * 20, (), None) for i in range(2000)], 50
    )
    consumer = _consumer(
        consumers, kafka, EARLIEST, max_partition_fetch_bytes=8192, fetch_max_bytes=8192
    )
    core = consumer.core
    consumer.max_records = 10
    core.assign([tp], consumer.now())
    consumer.until(lambda: len(consumer.records.get(tp, [])) >= 100 and core.buffered() > 0)
    handed = len(consumer.records[tp])
    _delete_records(kafka, topic, {0: 1500})
    consumer.max_records = None
    consumer.consume({tp: 600}, timeout=60)
    consumer.settle(0.5)
    offsets = consumer.offsets(tp)
    k = offsets.index(1500)
    assert k >= handed
    assert offsets == [*range(k), *range(1500, 2000)]
    assert consumer.of_type(OffsetReset) == [
        OffsetReset(tp, None, 0, NO_POSITION),
        OffsetReset(tp, k, 1500, OUT_OF_RANGE),
    ]
    assert [e for e in consumer.events if not isinstance(e, OffsetReset)] == []


def test_records_larger_than_the_partition_fetch_size(
    kafka: Any, consumers: list[LiveConsumer]
) -> None:
    """A batch bigger than max_partition_fetch_bytes still comes, one per fetch (KIP-74)."""
    import os

    topic = kafka.create_topic(partitions=2, prefix="big")
    tps = [TopicPartition(topic, 0), TopicPartition(topic, 1)]
    producer = _producer(kafka)
    acked = produce(
        producer, topic, [(i % 2, None, os.urandom(200_000), (), None) for i in range(10)], 1
    )
    consumer = _consumer(consumers, kafka, EARLIEST, max_partition_fetch_bytes=65_536)
    consumer.core.assign(tps, consumer.now())
    consumer.consume({tp: 5 for tp in tps}, timeout=60)
    consumer.settle(0.3)
    for tp in tps:
        assert [record_view(r) for r in consumer.records[tp]] == [
            produced_view(a) for a in acked if a.partition == tp.partition
        ]
    _no_trouble(consumer)


# ---------------------------------------------------------------------- 4. offsets by time


def test_offsets_for_times_and_beginning_end(kafka: Any, consumers: list[LiveConsumer]) -> None:
    topic = kafka.create_topic(partitions=3, prefix="times")
    p0, p1, p2 = (TopicPartition(topic, p) for p in range(3))
    base = 1_600_000_000_000
    producer = _producer(kafka)
    produce(producer, topic, [(0, b"k", b"v", (), base + 1000 * i) for i in range(10)], 1)
    produce(producer, topic, [(1, b"k", b"v", (), base + 500 + 1000 * i) for i in range(3)], 1)
    consumer = _consumer(consumers, kafka, EARLIEST)
    # A lookup needs no assignment.
    lookup = consumer.list_offsets

    assert lookup({p0: base + 2500, p1: base + 2500, p2: base}) == {
        p0: OffsetAndTimestamp(3, base + 3000, 0),
        p1: OffsetAndTimestamp(2, base + 2500, 0),
        p2: None,  # empty partition
    }
    assert lookup({p0: base, p1: 0}) == {
        p0: OffsetAndTimestamp(0, base, 0),
        p1: OffsetAndTimestamp(0, base + 500, 0),
    }
    assert lookup({p0: base + 9000}) == {p0: OffsetAndTimestamp(9, base + 9000, 0)}
    # Past the last record's timestamp: no answer.
    assert lookup({p0: base + 9001, p1: base + 2501}) == {p0: None, p1: None}
    beginning = lookup({p0: -2, p1: -2, p2: -2})
    end = lookup({p0: -1, p1: -1, p2: -1})
    assert {tp: o.offset if o else None for tp, o in beginning.items()} == {p0: 0, p1: 0, p2: 0}
    assert {tp: o.offset if o else None for tp, o in end.items()} == {p0: 10, p1: 3, p2: 0}

    _delete_records(kafka, topic, {0: 4})
    assert lookup({p0: -2})[p0] is not None and lookup({p0: -2})[p0].offset == 4  # type: ignore[union-attr]
    # The first record at or after the timestamp among those still in the log.
    assert lookup({p0: base}) == {p0: OffsetAndTimestamp(4, base + 4000, 0)}
    assert lookup({p0: base + 5000}) == {p0: OffsetAndTimestamp(5, base + 5000, 0)}
    assert lookup({}) == {}
    # The answers agree with the records themselves.
    consumer.core.assign([p0], consumer.now())
    consumer.consume({p0: 6})
    assert [(r.offset, r.timestamp) for r in consumer.records[p0]] == [
        (i, base + 1000 * i) for i in range(4, 10)
    ]


# ---------------------------------------------------------------------- 5. transactions


@pytest.mark.parametrize("fetch_bytes", [1_048_576, 1], ids=["default", "one-batch-per-fetch"])
def test_read_committed_skips_aborted_transactions(
    kafka: Any, consumers: list[LiveConsumer], fetch_bytes: int
) -> None:
    topic = kafka.create_topic(partitions=2, prefix="txn")
    p0, p1 = TopicPartition(topic, 0), TopicPartition(topic, 1)
    plain = _producer(kafka)
    txp = _producer(kafka, **{"transactional.id": f"tx-{uuid.uuid4().hex[:8]}"})
    txp.init_transactions(60)

    def tx(label: str, n: int) -> list[Produced]:
        # Each transaction writes to both partitions; p1 sees transactional data only.
        return produce(
            txp, topic, [(i % 2, None, f"{label}-{i}".encode(), (), None) for i in range(n)]
        )

    written: list[tuple[str, list[Produced]]] = []
    written.append(("plain", _plain(plain, topic, 0, [b"plain-0", b"plain-1", b"plain-2"])))
    txp.begin_transaction()
    written.append(("commit", tx("c1", 6)))
    txp.commit_transaction(30)
    txp.begin_transaction()
    written.append(("abort", tx("a1", 5)))
    # Non-transactional records interleaved with the open (later aborted) transaction.
    written.append(("plain", _plain(plain, topic, 0, [b"plain-mid-0", b"plain-mid-1"])))
    written.append(("abort", tx("a1b", 3)))
    txp.abort_transaction(30)
    txp.begin_transaction()
    written.append(("commit", tx("c2", 4)))
    txp.commit_transaction(30)
    written.append(("plain", _plain(plain, topic, 0, [b"plain-end"])))

    def values(tp: TopicPartition, keep: set[str]) -> list[tuple[int, bytes | None]]:
        out = [
            (a.offset, a.value)
            for kind, acked in written
            if kind in keep
            for a in acked
            if a.partition == tp.partition
        ]
        return sorted(out)

    probe = _consumer(consumers, kafka, EARLIEST)
    end = probe.list_offsets({p0: -1, p1: -1})
    end_offsets = {tp: o.offset for tp, o in end.items() if o is not None}
    # p1 ends with the commit marker of c2: one offset past its last record.
    assert end_offsets[p1] == values(p1, {"commit"})[-1][0] + 2

    for level, keep in [
        (IsolationLevel.READ_COMMITTED, {"plain", "commit"}),
        (IsolationLevel.READ_UNCOMMITTED, {"plain", "commit", "abort"}),
    ]:
        consumer = _consumer(
            consumers,
            kafka,
            EARLIEST,
            isolation_level=level,
            max_partition_fetch_bytes=fetch_bytes,
            fetch_max_bytes=fetch_bytes,
        )
        consumer.core.assign([p0, p1], consumer.now())
        expected = {tp: values(tp, keep) for tp in (p0, p1)}
        consumer.consume({tp: len(v) for tp, v in expected.items()})
        # The position moves past the final markers even though no record follows them.
        consumer.until(
            lambda c=consumer: all(c.core.position(tp) == end_offsets[tp] for tp in (p0, p1))
        )
        consumer.settle(0.5)
        for tp in (p0, p1):
            assert [(r.offset, r.value) for r in consumer.records[tp]] == expected[tp], level
        _no_trouble(consumer)


def test_seek_to_end_stops_at_the_last_stable_offset(
    kafka: Any, consumers: list[LiveConsumer]
) -> None:
    topic = kafka.create_topic(partitions=1, prefix="lso")
    tp = TopicPartition(topic, 0)
    _plain(_producer(kafka), topic, 0, [b"before-0", b"before-1"])
    txp = _producer(kafka, **{"transactional.id": f"tx-{uuid.uuid4().hex[:8]}"})
    txp.init_transactions(60)
    txp.begin_transaction()
    open_tx = produce(txp, topic, [(0, None, f"open-{i}".encode(), (), None) for i in range(3)])
    assert [a.offset for a in open_tx] == [2, 3, 4]

    committed = _consumer(consumers, kafka, LATEST, isolation_level=IsolationLevel.READ_COMMITTED)
    uncommitted = _consumer(consumers, kafka, LATEST)
    for c in (committed, uncommitted):
        c.core.assign([tp], c.now())
    assert committed.position(tp) == 2  # the LSO: the open transaction's first offset
    assert uncommitted.position(tp) == 5  # the high watermark
    committed.core.seek(tp, 0, committed.now())
    committed.consume({tp: 2})
    committed.core.seek_to_end([tp], committed.now())
    assert committed.position(tp) == 2
    assert [o.offset if o else None for o in committed.list_offsets({tp: -1}).values()] == [2]
    committed.settle(1.0)
    assert committed.offsets(tp) == [0, 1]
    assert committed.core.position(tp) == 2

    txp.commit_transaction(30)
    committed.consume({tp: 5})
    committed.until(lambda: committed.core.position(tp) == 6)
    assert [r.value for r in committed.records[tp]] == [
        b"before-0",
        b"before-1",
        b"open-0",
        b"open-1",
        b"open-2",
    ]
    assert committed.offsets(tp) == [0, 1, 2, 3, 4]
    assert [e for e in committed.events if not isinstance(e, (OffsetReset, OffsetsResult))] == []
    assert committed.of_type(OffsetReset) == [OffsetReset(tp, None, 2, NO_POSITION)]
    assert uncommitted.of_type(OffsetReset) == [OffsetReset(tp, None, 5, NO_POSITION)]


# ---------------------------------------------------------------------- 6. late topic


def test_topic_created_after_assignment(kafka: Any, consumers: list[LiveConsumer]) -> None:
    from confluent_kafka.admin import NewTopic

    name = f"late-{uuid.uuid4().hex[:10]}"
    tps = [TopicPartition(name, 0), TopicPartition(name, 1)]
    consumer = _consumer(consumers, kafka, EARLIEST)
    consumer.core.assign(tps, consumer.now())
    consumer.settle(1.5)
    assert consumer.records == {}
    assert [consumer.core.position(tp) for tp in tps] == [None, None]
    before = list(consumer.events)

    futures = kafka.admin().create_topics([NewTopic(name, num_partitions=2, replication_factor=1)])
    futures[name].result(timeout=60)
    kafka.wait_topic(name, 2)
    acked = produce(
        _producer(kafka),
        name,
        [(i % 2, f"k{i}".encode(), f"v{i}".encode(), [("h", b"x")], None) for i in range(20)],
    )
    consumer.consume({tp: 10 for tp in tps}, timeout=60)
    consumer.settle(0.5)
    for tp in tps:
        assert [record_view(r) for r in consumer.records[tp]] == [
            produced_view(a) for a in acked if a.partition == tp.partition
        ]
    assert before == []
    assert sorted(consumer.events, key=str) == sorted(
        (OffsetReset(tp, None, 0, NO_POSITION) for tp in tps), key=str
    )


def _count_metadata_requests(core: ConsumerCore) -> list[float]:
    """Record the time of every Metadata request the core's client sends from now on."""
    sent: list[float] = []
    client = core.client
    original = client.send_any

    def send_any(request: Any, now: float, *args: Any, **kwargs: Any) -> Any:
        if isinstance(request, MetadataRequest):
            sent.append(now)
        return original(request, now, *args, **kwargs)

    client.send_any = send_any  # type: ignore[method-assign]
    return sent


def _count_requests(core: ConsumerCore, kind: type) -> list[float]:
    """Record the time of every request of ``kind`` sent to a given node from now on."""
    sent: list[float] = []
    client = core.client
    original = client.send

    def send(node_id: int, request: Any, now: float, *args: Any, **kwargs: Any) -> Any:
        if isinstance(request, kind):
            sent.append(now)
        return original(node_id, request, now, *args, **kwargs)

    client.send = send  # type: ignore[method-assign]
    return sent


def test_partition_created_after_assignment(kafka: Any, consumers: list[LiveConsumer]) -> None:
    """The topic exists, the assigned partition not yet: wait calmly, then read it."""
    from confluent_kafka.admin import NewPartitions

    topic = kafka.create_topic(partitions=2, prefix="latepart")
    tp = TopicPartition(topic, 3)
    consumer = _consumer(consumers, kafka, EARLIEST)
    sent = _count_metadata_requests(consumer.core)
    consumer.core.assign([tp], consumer.now())
    consumer.settle(2.0)
    assert consumer.records == {} and consumer.events == []
    # Metadata is asked for again and again, but with a pause in between
    # (the retry backoff starts at 0.1 s), not in a tight loop.
    assert 1 <= len(sent) <= 25, len(sent)
    gaps = [b - a for a, b in itertools.pairwise(sent)]
    assert all(g >= 0.09 for g in gaps), min(gaps)

    kafka.admin().create_partitions([NewPartitions(topic, 4)])[topic].result(60)
    kafka.wait_topic(topic, 4)
    acked = produce(_producer(kafka), topic, [(3, b"k", b"v", (), None)])
    consumer.consume({tp: 1}, timeout=60)
    assert [record_view(r) for r in consumer.records[tp]] == [produced_view(a) for a in acked]
    assert consumer.events == [OffsetReset(tp, None, 0, NO_POSITION)]


def test_topic_deleted_and_created_again(kafka: Any, consumers: list[LiveConsumer]) -> None:
    """The same name under a new topic id (KIP-516): the consumer follows the new topic.

    The broker's fetch session still names the old id; the consumer must not
    keep asking it (a tight loop of error answers) but fetch the new topic,
    find its position out of range there, and reset by the policy.
    """
    from confluent_kafka.admin import NewTopic

    topic = kafka.create_topic(prefix="recreate")
    tp = TopicPartition(topic, 0)
    producer = _producer(kafka)
    _plain(producer, topic, 0, [f"old-{i}".encode() for i in range(10)])
    consumer = _consumer(consumers, kafka, EARLIEST)
    consumer.core.assign([tp], consumer.now())
    consumer.consume({tp: 10})
    old_id = consumer.core.client.metadata.topic_ids[topic]
    kafka.delete_topic(topic)
    consumer.settle(1.0)
    kafka.admin().create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])[
        topic
    ].result(60)
    kafka.wait_topic(topic, 1)
    fetches = _count_requests(consumer.core, FetchRequest)
    acked = _plain(producer, topic, 0, [f"new-{i}".encode() for i in range(3)])
    consumer.consume({tp: 13}, timeout=30)
    consumer.settle(1.0)
    assert consumer.core.client.metadata.topic_ids[topic] != old_id
    assert [(r.offset, r.value) for r in consumer.records[tp][10:]] == [
        (a.offset, a.value) for a in acked
    ]
    assert consumer.events == [
        OffsetReset(tp, None, 0, NO_POSITION),
        OffsetReset(tp, 10, 0, OUT_OF_RANGE),
    ]
    # Long polls, not a storm of immediate error answers.
    assert len(fetches) < 100, len(fetches)


def test_missing_partition_does_not_spin_metadata_on_the_model() -> None:
    """The same wait under a fake clock: a bounded number of Metadata requests."""
    from kafka_sansio._client import ClientConfig
    from kafka_sansio._consumer import ConsumerConfig
    from kafka_sansio.testing._model import ModelCluster
    from kafka_sansio.testing._pump import Pump

    cluster = ModelCluster(brokers=1)
    cluster.create_topic("t", partitions=2)
    info = cluster.brokers[1]
    core = ConsumerCore(
        ConsumerConfig(client=ClientConfig(bootstrap_servers=((info.host, info.port),))),
        random=lambda: 0.5,
    )
    pump = Pump(core, cluster, now=100.0)
    sent = _count_metadata_requests(core)
    core.assign([TopicPartition("t", 3)], pump.now)
    pump.advance(3.0)
    assert 10 <= len(sent) <= 32, len(sent)


def test_topic_created_again_on_the_model() -> None:
    """The recreated-topic case under a fake clock (the model also keys sessions by id)."""
    from kafka_sansio._client import ClientConfig
    from kafka_sansio._consumer import ConsumerConfig
    from kafka_sansio.testing._model import ModelCluster
    from kafka_sansio.testing._pump import Pump

    cluster = ModelCluster(brokers=1)
    cluster.create_topic("t", partitions=1)
    cluster.append("t", 0, [b"old"] * 10)
    info = cluster.brokers[1]
    core = ConsumerCore(
        ConsumerConfig(
            client=ClientConfig(bootstrap_servers=((info.host, info.port),)),
            auto_offset_reset=EARLIEST,
        ),
        random=lambda: 0.5,
    )
    pump = Pump(core, cluster, now=100.0)
    tp = TopicPartition("t", 0)
    core.assign([tp], pump.now)
    got: list[int] = []
    events: list[Any] = []

    def drain() -> None:
        events.extend(core.events())
        got.extend(r.offset for r in core.poll(pump.now).by_partition.get(tp, []))

    pump.until(lambda: (drain(), len(got) >= 10)[1])
    cluster.delete_topic("t", now=pump.now)
    pump.advance(1.0)
    cluster.create_topic("t", partitions=1)
    cluster.append("t", 0, [b"new"] * 3)
    fetches = _count_requests(core, FetchRequest)
    pump.until(lambda: (drain(), len(got) >= 13)[1], timeout=30)
    pump.advance(2.0)
    drain()
    assert got == [*range(10), 0, 1, 2]
    assert events == [OffsetReset(tp, None, 0, NO_POSITION), OffsetReset(tp, 10, 0, OUT_OF_RANGE)]
    assert len(fetches) < 30, len(fetches)


@pytest.mark.parametrize("policy", [EARLIEST, NONE], ids=lambda p: p.value)
def test_skipped_batches_carry_their_epoch_on_the_model(policy: OffsetResetPolicy) -> None:
    """Position moved past an aborted transaction written under a newer leader epoch.

    The position's epoch must be that of the batches it moved past, or the
    next leader change finds "truncation" where there is none (a TRUNCATION
    reset, or with no policy a LogTruncation that stops the partition).
    """
    from kafka_sansio._client import ClientConfig
    from kafka_sansio._consumer import ConsumerConfig
    from kafka_sansio.testing._model import ModelCluster
    from kafka_sansio.testing._pump import Pump

    cluster = ModelCluster(brokers=2)
    cluster.create_topic("t", partitions=1)
    cluster.append("t", 0, [b"a"] * 5)
    info = cluster.brokers[1]
    core = ConsumerCore(
        ConsumerConfig(
            client=ClientConfig(bootstrap_servers=((info.host, info.port),), metadata_max_age=1.0),
            auto_offset_reset=policy,
            isolation_level=IsolationLevel.READ_COMMITTED,
        ),
        random=lambda: 0.5,
    )
    pump = Pump(core, cluster, now=100.0)
    tp = TopicPartition("t", 0)
    core.assign([tp], pump.now)
    core.seek(tp, 0, pump.now)
    got: list[int] = []
    events: list[Any] = []

    def drain() -> None:
        events.extend(core.events())
        got.extend(r.offset for r in core.poll(pump.now).by_partition.get(tp, []))

    pump.until(lambda: (drain(), len(got) >= 5)[1])
    first = cluster.partition("t", 0).leader
    cluster.move_leader("t", 0, 2 if first == 1 else 1, now=pump.now)
    cluster.begin_transaction(77)
    cluster.append("t", 0, [b"x"] * 3, producer_id=77, transactional=True, now=pump.now)
    cluster.abort_transaction(77, now=pump.now)
    pump.until(lambda: (drain(), core.position(tp) == 9)[1])
    cluster.move_leader("t", 0, first, now=pump.now)
    pump.advance(3.0)
    cluster.append("t", 0, [b"z"] * 2, now=pump.now)
    pump.until(lambda: (drain(), len(got) >= 7)[1])
    pump.advance(1.0)
    drain()
    assert got == [0, 1, 2, 3, 4, 9, 10]
    assert core.position(tp) == 11
    initial = [NoOffsetForPartition((tp,))] if policy is NONE else []
    assert events == initial


# ---------------------------------------------------------------------- 7/8. failover


def _no_resets_after_start(consumer: LiveConsumer) -> None:
    bad = [
        e
        for e in consumer.events
        if isinstance(e, (LogTruncation, FetchError, OffsetOutOfRange, NoOffsetForPartition))
        or (isinstance(e, OffsetReset) and e.reason is not NO_POSITION)
    ]
    assert bad == []
    assert not any(
        isinstance(e, OffsetReset) and e.reason is ResetReason.TRUNCATION for e in consumer.events
    )


class _BackgroundProducer:
    """Writes numbered records round-robin to every partition from a thread (acks=all).

    ``acked`` collects what the cluster acknowledged; ``stop()`` flushes and
    asserts that every record was acknowledged. Around a leader change librdkafka
    may report records delivered without an offset: records whose write it infers
    rather than is told (a retried batch answered DUPLICATE_SEQUENCE_NUMBER, or
    records acknowledged implicitly by a later batch's success). Those come back
    with ``offset=None``.
    """

    def __init__(self, cluster: Any, topic: str, partitions: int, rate: float = 300.0) -> None:
        import threading

        self.producer = Producer(
            {
                "bootstrap.servers": cluster.bootstrap,
                "acks": "all",
                "enable.idempotence": True,
                "linger.ms": 5,
                "message.timeout.ms": 120_000,
            }
        )
        self.topic = topic
        self.partitions = partitions
        self.rate = rate
        self.acked: list[Produced] = []
        self.failures: list[Any] = []
        self.sent = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _on_delivery(self, err: Any, msg: Any) -> None:
        if err is not None:
            self.failures.append(err)
        else:
            self.acked.append(
                Produced(
                    msg.partition(),
                    msg.offset(),  # None when librdkafka infers the write (see the class docstring)
                    msg.key(),
                    msg.value(),
                    (),
                    msg.timestamp()[1],
                )
            )

    def _run(self) -> None:
        n = 0
        while not self._stop.is_set():
            p = n % self.partitions
            value = f"seq-{p}-{n // self.partitions}".encode()
            try:
                self.producer.produce(
                    self.topic, value=value, key=b"k", partition=p, on_delivery=self._on_delivery
                )
                n += 1
            except BufferError:
                pass
            self.producer.poll(1.0 / self.rate)
        self.sent = n
        self.producer.flush(120)

    def acked_count(self, partition: int) -> int:
        return sum(1 for a in list(self.acked) if a.partition == partition)

    def stop(self) -> list[Produced]:
        self._stop.set()
        self._thread.join(150)
        assert not self._thread.is_alive()
        assert self.failures == []
        assert len(self.acked) == self.sent
        # In the order written: b"seq-<partition>-<n>" (the idempotent producer keeps it in the log).
        return sorted(self.acked, key=lambda a: (a.partition, int(a.value.split(b"-")[2])))


def _check_exactly_once(
    consumer: LiveConsumer, topic: str, acked: list[Produced], partitions: int
) -> None:
    """Every acknowledged record was consumed once, in the order written, and nothing else.

    ``acked`` is in log order for each partition. A record acknowledged without
    an offset (``None``, see ``_BackgroundProducer``) is checked by its place.
    """
    tps = [TopicPartition(topic, p) for p in range(partitions)]
    want = {tp: [a for a in acked if a.partition == tp.partition] for tp in tps}
    consumer.consume({tp: len(w) for tp, w in want.items()}, timeout=90)
    consumer.settle(1.0)
    for tp in tps:
        got = [(r.offset, r.value) for r in consumer.records[tp]]
        assert [v for _, v in got] == [a.value for a in want[tp]], tp
        # Idempotent producer, no aborted writes: the log holds exactly these, densely.
        assert [o for o, _ in got] == list(range(len(got)))
        pairs = zip(want[tp], got, strict=True)
        assert [(a.offset, o) for a, (o, _) in pairs if a.offset not in (None, o)] == [], tp
        assert consumer.core.position(tp) == len(got)


def _leaders(cluster: Any, topic: str, partitions: int) -> dict[int, int]:
    return {p: cluster.leader_of(topic, p) for p in range(partitions)}


def _preferred(cluster: Any, topic: str, partition: int) -> int:
    """The preferred replica (first in the replica list) of a partition."""
    md = cluster.admin().list_topics(topic=topic, timeout=10)
    return int(md.topics[topic].partitions[partition].replicas[0])


def _elect_preferred(cluster: Any, topic: str, partitions: list[int], leader: int) -> None:
    """Move leadership back to ``leader`` (the preferred replica) once it is in sync again."""
    from confluent_kafka import ElectionType
    from confluent_kafka import TopicPartition as CTopicPartition

    deadline = time.monotonic() + 90
    while True:
        if all(cluster.leader_of(topic, p) == leader for p in partitions):
            return
        try:
            future = cluster.admin().elect_leaders(
                ElectionType.PREFERRED, [CTopicPartition(topic, p) for p in partitions]
            )
            future.result(timeout=30)
        except Exception:  # not in the ISR yet: try again shortly
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"node {leader} did not become leader of {topic} {partitions}")
        time.sleep(0.5)


@pytest.mark.parametrize("how", ["kill", "stop"])
def test_leader_failover_exactly_once(
    kafka_cluster3: Any, consumers: list[LiveConsumer], how: str
) -> None:
    """SIGKILL (or stop) a partition leader under load, bring it back, make it leader again.

    The consumer follows both leader changes, validates its position against
    each new leader epoch (KIP-320) without any reset, and delivers every
    acknowledged record exactly once, in order.
    """
    cluster = kafka_cluster3
    cluster.wait_broker_count(3)
    partitions = 4
    topic = cluster.create_topic(partitions=partitions, replication_factor=3, prefix=f"fo-{how}")
    tps = [TopicPartition(topic, p) for p in range(partitions)]
    # The crash runs on the package's own driver (non-blocking connects to a dead node).
    consumer = _consumer(
        consumers, cluster, EARLIEST, driver="blocking" if how == "kill" else "socket"
    )
    consumer.core.assign(tps, consumer.now())
    meta = consumer.core.client.metadata
    writer = _BackgroundProducer(cluster, topic, partitions)
    victim: int | None = None
    down = False

    def progress(extra_acked: int, extra_read: int) -> None:
        marks = {tp: len(consumer.records.get(tp, [])) for tp in tps}
        acks = {tp: writer.acked_count(tp.partition) for tp in tps}
        consumer.until(
            lambda: all(
                writer.acked_count(tp.partition) >= acks[tp] + extra_acked
                and len(consumer.records.get(tp, [])) >= marks[tp] + extra_read
                for tp in tps
            ),
            timeout=90,
        )

    try:
        consumer.consume({tp: 100 for tp in tps}, timeout=60)
        # The victim leads partition 0 as its preferred replica, so that it can
        # be made leader again at the end (a node restarted by an earlier test
        # may not have been back in time to take its leaderships at creation).
        victim = _preferred(cluster, topic, 0)
        _elect_preferred(cluster, topic, [0], victim)
        leaders = _leaders(cluster, topic, partitions)
        assert leaders[0] == victim
        moved = [tp for tp in tps if leaders[tp.partition] == victim]
        epochs = {tp: meta.partitions[tp].leader_epoch for tp in moved}
        if how == "kill":
            cluster.kill(victim)
        else:
            cluster.stop(victim)
        down = True
        # Both the writer and the reader carry on with the new leaders.
        progress(300, 200)
        for tp in moved:
            assert meta.leader(tp) not in (None, victim)
            assert meta.partitions[tp].leader_epoch > epochs[tp]
            epochs[tp] = meta.partitions[tp].leader_epoch
        # A new consumer whose first bootstrap server is the dead node gets going too.
        nodes = sorted(cluster.nodes, key=lambda n: n["id"] != victim)
        fresh = LiveConsumer(",".join(f"{n['host']}:{n['port']}" for n in nodes), EARLIEST)
        consumers.append(fresh)
        fresh.core.assign([tps[0]], fresh.now())
        fresh.consume({tps[0]: 100}, timeout=60)
        assert [(r.offset, r.value) for r in fresh.records[tps[0]][:100]] == [
            (r.offset, r.value) for r in consumer.records[tps[0]][:100]
        ]
        cluster.start(victim)
        down = False
        cluster.wait_broker_count(3, timeout=90)
        _elect_preferred(cluster, topic, [tp.partition for tp in moved], victim)
        progress(300, 200)
        for tp in moved:
            assert meta.leader(tp) == victim
            assert meta.partitions[tp].leader_epoch > epochs[tp]
    finally:
        acked = writer.stop()
        if victim is not None and down:
            cluster.start(victim)
    _check_exactly_once(consumer, topic, acked, partitions)
    _no_resets_after_start(consumer)
    assert sorted(consumer.events, key=str) == sorted(
        (OffsetReset(tp, None, 0, NO_POSITION) for tp in tps), key=str
    )
    cluster.wait_broker_count(3, timeout=90)


# ---------------------------------------------------------------------- more lookups and stamps


def test_offsets_for_times_out_of_order_in_one_batch(
    kafka: Any, consumers: list[LiveConsumer]
) -> None:
    """Timestamps not in offset order, all in one batch: the first offset at or after."""
    topic = kafka.create_topic(prefix="ooo")
    tp = TopicPartition(topic, 0)
    base = 1_600_000_000_000
    stamps = [5000, 1000, 9000, 3000, 7000]
    acked = produce(
        _producer(kafka, **{"linger.ms": 200}),
        topic,
        [(0, b"k", f"v{i}".encode(), [("n", None)], base + s) for i, s in enumerate(stamps)],
    )
    assert [a.offset for a in acked] == [0, 1, 2, 3, 4]
    consumer = _consumer(consumers, kafka, EARLIEST)
    lookup = consumer.list_offsets
    assert lookup({tp: base + 2000}) == {tp: OffsetAndTimestamp(0, base + 5000, 0)}
    assert lookup({tp: base + 6000}) == {tp: OffsetAndTimestamp(2, base + 9000, 0)}
    assert lookup({tp: base + 9000}) == {tp: OffsetAndTimestamp(2, base + 9000, 0)}
    assert lookup({tp: base + 9001}) == {tp: None}
    # -3: the record with the largest timestamp (KIP-734).
    assert lookup({tp: -3}) == {tp: OffsetAndTimestamp(2, base + 9000, 0)}
    consumer.core.assign([tp], consumer.now())
    consumer.consume({tp: 5})
    assert [record_view(r) for r in consumer.records[tp]] == [produced_view(a) for a in acked]
    assert {r.timestamp_type for r in consumer.records[tp]} == {0}  # CreateTime


@pytest.mark.parametrize("codec", ["none", "lz4"])
def test_log_append_time(kafka: Any, consumers: list[LiveConsumer], codec: str) -> None:
    """The broker stamps the batch; every record reports that time as LogAppendTime."""
    topic = kafka.create_topic(
        partitions=1, prefix="lat", config={"message.timestamp.type": "LogAppendTime"}
    )
    tp = TopicPartition(topic, 0)
    producer = _producer(kafka, **{"compression.type": codec, "linger.ms": 50})
    acked = produce(
        producer, topic, [(0, None, f"v{i}".encode(), (), 1_000 + i) for i in range(300)]
    )
    assert all(a.timestamp > 1_600_000_000_000 for a in acked)  # the broker's clock, not ours
    consumer = _consumer(consumers, kafka, EARLIEST)
    consumer.core.assign([tp], consumer.now())
    consumer.consume({tp: 300})
    assert [record_view(r) for r in consumer.records[tp]] == [produced_view(a) for a in acked]
    assert {r.timestamp_type for r in consumer.records[tp]} == {1}


def test_compacted_topic_with_offset_gaps(kafka: Any, consumers: list[LiveConsumer]) -> None:
    """After log compaction offsets have gaps; every survivor is read, once, as written."""
    topic = kafka.create_topic(
        prefix="compact",
        config={
            "cleanup.policy": "compact",
            "segment.ms": "100",
            "min.cleanable.dirty.ratio": "0.001",
            "delete.retention.ms": "0",
            "min.compaction.lag.ms": "0",
        },
    )
    tp = TopicPartition(topic, 0)
    producer = _producer(kafka, **{"linger.ms": 20})
    acked: list[Produced] = []
    for round_ in range(6):
        acked += produce(
            producer,
            topic,
            [(0, f"k{i}".encode(), f"r{round_}-{i}".encode(), (), None) for i in range(10)],
        )
        time.sleep(0.2)  # let segments roll
    by_offset = {a.offset: a for a in acked}
    deadline = time.monotonic() + 60
    while True:
        consumer = _consumer(consumers, kafka, EARLIEST)
        consumer.core.assign([tp], consumer.now())
        # The partition ends with what was produced last (the "roll" records included).
        end = max(by_offset) + 1
        consumer.until(lambda c=consumer, e=end: c.core.position(tp) == e, timeout=30)
        consumer.settle(0.2)
        offsets = consumer.offsets(tp)
        if len(offsets) < len(by_offset):
            break  # the cleaner has run
        assert time.monotonic() < deadline, "the log cleaner did not run"
        acked += produce(producer, topic, [(0, b"roll", b"x", (), None)])
        by_offset = {a.offset: a for a in acked}
    assert offsets == sorted(set(offsets))
    assert [record_view(r) for r in consumer.records[tp]] == [
        produced_view(by_offset[o]) for o in offsets
    ]
    # Compaction keeps at least the latest record of every key.
    latest = {a.key: a.offset for a in acked}
    assert set(latest.values()) <= set(offsets)
    assert consumer.core.position(tp) == end
    _no_trouble(consumer)


# ---------------------------------------------------------------------- reassignment


def test_reassign_forgets_and_resets(kafka: Any, consumers: list[LiveConsumer]) -> None:
    """A partition dropped from the assignment stops; one added again starts afresh."""
    topic = kafka.create_topic(partitions=3, prefix="reassign")
    p0, p1, p2 = (TopicPartition(topic, p) for p in range(3))
    producer = _producer(kafka)
    for tp in (p0, p1, p2):
        _plain(producer, topic, tp.partition, [f"{tp.partition}-{i}".encode() for i in range(4)])
    consumer = _consumer(consumers, kafka, EARLIEST)
    core = consumer.core
    core.assign([p0, p1], consumer.now())
    consumer.consume({p0: 4, p1: 4})
    core.assign([p1, p2], consumer.now())
    assert core.assignment() == {p1, p2}
    assert core.position(p1) == 4  # kept
    for tp in (p0, p1, p2):
        _plain(producer, topic, tp.partition, [f"{tp.partition}-{i}".encode() for i in range(4, 6)])
    consumer.consume({p1: 6, p2: 6})
    consumer.settle(1.0)
    assert consumer.offsets(p0) == [0, 1, 2, 3]
    assert consumer.offsets(p1) == list(range(6))
    assert consumer.offsets(p2) == list(range(6))
    # Back again: no position, so the policy applies from scratch.
    core.assign([p0], consumer.now())
    consumer.consume({p0: 10})
    assert consumer.offsets(p0) == [0, 1, 2, 3, *range(6)]
    assert consumer.of_type(OffsetReset) == [
        OffsetReset(p0, None, 0, NO_POSITION),
        OffsetReset(p1, None, 0, NO_POSITION),
        OffsetReset(p2, None, 0, NO_POSITION),
        OffsetReset(p0, None, 0, NO_POSITION),
    ]
    _no_trouble(consumer)


def test_positions_checked_against_real_leader_epochs(
    kafka_cluster3: Any, consumers: list[LiveConsumer]
) -> None:
    """Two leader epochs on a real log; positions claimed for the first one (KIP-320).

    Epoch e0 holds offsets 0-9; after a controlled leader change e1 holds
    10-19.  Offset 7 in e0 is valid; offset 15 claimed for e0 is past the
    end of that epoch: a TRUNCATION reset to 10 with a policy, LogTruncation
    without one.  A consumer that simply follows the leader change sees no
    reset at all.
    """
    from confluent_kafka.admin import NewTopic

    cluster = kafka_cluster3
    cluster.wait_broker_count(3)
    # Both partitions prefer the same leader, so one stop moves both.
    ids = sorted(n["id"] for n in cluster.nodes)
    topic = f"epochs-{uuid.uuid4().hex[:10]}"
    new = NewTopic(topic, num_partitions=2, replica_assignment=[ids, [ids[0], ids[2], ids[1]]])
    cluster.admin().create_topics([new])[topic].result(60)
    cluster.wait_topic(topic, 2)
    _elect_preferred(cluster, topic, [0, 1], ids[0])
    tp, tp1 = TopicPartition(topic, 0), TopicPartition(topic, 1)
    producer = _producer(cluster, acks="all")
    _plain(producer, topic, 0, [f"e0-{i}".encode() for i in range(10)])
    _plain(producer, topic, 1, [f"p1-{i}".encode() for i in range(5)])
    follower = _consumer(consumers, cluster, EARLIEST)
    follower.core.assign([tp], follower.now())
    follower.consume({tp: 10})
    # Partition 1: read_committed, no reset policy, so a spurious truncation would stop it.
    committed = _consumer(consumers, cluster, NONE, isolation_level=IsolationLevel.READ_COMMITTED)
    committed.core.assign([tp1], committed.now())
    committed.core.seek(tp1, 0, committed.now())
    committed.consume({tp1: 5})
    meta = follower.core.client.metadata
    e0 = meta.partitions[tp].leader_epoch
    leader = cluster.leader_of(topic, 0)
    assert leader == ids[0] == cluster.leader_of(topic, 1)
    cluster.stop(leader)
    try:
        acked = _plain(producer, topic, 0, [f"e1-{i}".encode() for i in range(10)])
        assert [a.offset for a in acked] == list(range(10, 20))
        follower.consume({tp: 20}, timeout=60)
        # An aborted transaction on partition 1 under the new epoch: the
        # read_committed position moves past it without handing out a record.
        txp = _producer(cluster, **{"transactional.id": f"tx-{uuid.uuid4().hex[:8]}"})
        txp.init_transactions(60)
        txp.begin_transaction()
        produce(txp, topic, [(1, None, f"aborted-{i}".encode(), (), None) for i in range(3)])
        txp.abort_transaction(60)
        committed.until(lambda: committed.core.position(tp1) == 9, timeout=60)
    finally:
        cluster.start(leader)
    assert meta.partitions[tp].leader_epoch > e0
    assert [r.value for r in follower.records[tp]] == [
        *(f"e0-{i}".encode() for i in range(10)),
        *(f"e1-{i}".encode() for i in range(10)),
    ]
    assert follower.events == [OffsetReset(tp, None, 0, NO_POSITION)]

    valid = _consumer(consumers, cluster, NONE)
    valid.core.assign([tp], valid.now())
    valid.core.seek(tp, 7, valid.now(), leader_epoch=e0)
    valid.consume({tp: 13}, timeout=60)
    assert valid.offsets(tp) == list(range(7, 20))
    assert valid.events == [NoOffsetForPartition((tp,))]

    reset = _consumer(consumers, cluster, EARLIEST)
    reset.core.assign([tp], reset.now())
    reset.core.seek(tp, 15, reset.now(), leader_epoch=e0)
    assert reset.wait_event(OffsetReset, timeout=60) == [
        OffsetReset(tp, 15, 10, ResetReason.TRUNCATION)
    ]
    reset.consume({tp: 10})
    assert reset.offsets(tp) == list(range(10, 20))

    strict = _consumer(consumers, cluster, NONE)
    strict.core.assign([tp], strict.now())
    strict.core.seek(tp, 15, strict.now(), leader_epoch=e0)
    assert strict.wait_event(LogTruncation, timeout=60) == [LogTruncation(tp, 15, 10)]
    assert strict.core.fetch_state(tp) is FetchState.AWAITING_SEEK
    strict.settle(0.5)
    assert strict.records == {}
    assert strict.events == [NoOffsetForPartition((tp,)), LogTruncation(tp, 15, 10)]

    # Leadership back to the first node (a third epoch): the read_committed
    # position past the aborted transaction is validated, and it holds.
    cluster.wait_broker_count(3, timeout=90)
    _elect_preferred(cluster, topic, [1], leader)
    _plain(producer, topic, 1, [b"after-0", b"after-1"])
    committed.consume({tp1: 7}, timeout=60)
    committed.settle(0.5)
    assert committed.offsets(tp1) == [0, 1, 2, 3, 4, 9, 10]
    assert committed.core.client.metadata.leader(tp1) == leader
    assert committed.events == [NoOffsetForPartition((tp1,))]
