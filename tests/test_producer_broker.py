"""ProducerCore against Apache Kafka, read back by confluent-kafka (librdkafka).

The core is driven by the package's :class:`BlockingDriver` over real
sockets.  Every record it reports written is read back by a confluent-kafka
consumer at the reported partition and offset, exactly once, in send order
per partition, with its key, value, headers and timestamp; keyed records sit
on the partition the Java client picks.  Bad input fails at once or per
record with a typed error, and nothing is lost.  On the three-node cluster a
partition leader is SIGKILLed during an acks=all idempotent run: afterwards
every acknowledged record is present exactly once and in order.
"""

from __future__ import annotations

import random
import threading
import time
from typing import Any

import pytest
from confluent_kafka import Consumer
from confluent_kafka import TopicPartition as CTopicPartition
from kafka_sansio.transports._blocking import BlockingDriver

from kafka_sansio._client import ClientConfig, parse_bootstrap
from kafka_sansio._partitioner import murmur2_partition
from kafka_sansio._producer import ProducerConfig, ProducerCore
from kafka_sansio._producer_events import (
    BufferFullError,
    Delivered,
    ProducerClosedError,
    RecordTooLargeError,
)
from kafka_sansio._types import TopicPartition as KTopicPartition
from kafka_sansio.errors import UnknownTopicOrPartitionError


class LiveProducer:
    """A ProducerCore on a BlockingDriver; outcomes collected per token."""

    def __init__(self, bootstrap: str, **settings: Any) -> None:
        client = ClientConfig(bootstrap_servers=parse_bootstrap(bootstrap), request_timeout=10.0)
        config = ProducerConfig(client=settings.pop("client", client), **settings)
        self.core = ProducerCore(config, random.random, wall_offset=time.time() - time.monotonic())
        self.driver = BlockingDriver(self.core)
        #: token -> (partition, offset, error)
        self.outcome: dict[int, tuple[int, int, Any]] = {}
        self.maybe_written: set[int] = set()
        self._sends = 0

    def send(self, topic: str, value: bytes, **kw: Any) -> int:
        while True:
            try:
                token = self.core.send(topic, value, time.monotonic(), **kw)
                break
            except BufferFullError:
                self.driver.run_once(0.05)
                self.collect()
        self._sends += 1
        if self._sends % 64 == 0:
            self.driver.run_once(0)
            self.collect()
        return token

    def collect(self) -> bool:
        for event in self.core.events():
            if isinstance(event, Delivered):
                for i, token in enumerate(event.tokens):
                    assert token not in self.outcome, "a token was reported twice"
                    offset = event.base_offset + i if event.base_offset >= 0 else -1
                    self.outcome[token] = (event.partition.partition, offset, event.error)
                    if event.maybe_written:
                        self.maybe_written.add(token)
        return self.core.pending() == 0

    def wait(self, timeout: float = 60.0) -> None:
        self.core.flush(time.monotonic())
        assert self.driver.run_until(self.collect, timeout), "records still pending"

    def close(self) -> None:
        if not self.core.closed:
            self.core.close(time.monotonic())
            self.driver.run_until(self.collect, 10)
            if not self.core.closed:
                self.core.abort(time.monotonic())
        self.driver.flush()
        self.driver.close()


def read_all(
    bootstrap: str, topic: str, partitions: int, expected: int, timeout: float = 60.0
) -> dict[int, list[Any]]:
    """Every record of the topic, per partition, read by confluent-kafka."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"check-{topic}",
            "enable.auto.commit": False,
            "fetch.queue.backoff.ms": 10,
        }
    )
    consumer.assign([CTopicPartition(topic, p, 0) for p in range(partitions)])
    out: dict[int, list[Any]] = {p: [] for p in range(partitions)}
    count = 0
    deadline = time.monotonic() + timeout
    quiet_until = None
    try:
        while time.monotonic() < deadline:
            batch = consumer.consume(10_000, timeout=0.5)
            for msg in batch:
                if msg.error():
                    continue
                out[msg.partition()].append(msg)
                count += 1
            if count >= expected:
                # Keep reading a little: a duplicate would show up after the expected count.
                if quiet_until is None:
                    quiet_until = time.monotonic() + 1.0
                elif time.monotonic() >= quiet_until and not batch:
                    break
    finally:
        consumer.close()
    return out


@pytest.fixture
def producers() -> Any:
    made: list[LiveProducer] = []
    yield made
    for p in made:
        p.close()


def test_100k_keyed_records_exactly_once_in_order_on_the_java_partition(
    kafka: Any, producers: list[LiveProducer]
) -> None:
    topic = kafka.create_topic(partitions=6, prefix="prod100k")
    producer = LiveProducer(kafka.bootstrap)
    producers.append(producer)
    sent: dict[int, tuple[bytes, bytes]] = {}
    for i in range(100_000):
        key = b"key-%d" % (i % 5000)
        value = b"%d" % i
        sent[producer.send(topic, value, key=key)] = (key, value)
    producer.wait(120)
    assert set(producer.outcome) == set(sent)
    assert all(error is None for _, _, error in producer.outcome.values())
    logs = read_all(kafka.bootstrap, topic, 6, len(sent))
    assert sum(len(records) for records in logs.values()) == 100_000
    at = {(p, m.offset()): m for p, records in logs.items() for m in records}
    for token, (key, value) in sent.items():
        partition, offset, _ = producer.outcome[token]
        assert partition == murmur2_partition(key, 6)
        msg = at[(partition, offset)]
        assert (msg.key(), msg.value()) == (key, value)
    for records in logs.values():
        numbers = [int(m.value()) for m in records]
        assert numbers == sorted(numbers)


@pytest.mark.parametrize("codec", ["none", "gzip", "snappy", "lz4", "zstd"])
def test_codecs_headers_and_timestamps(
    kafka: Any, producers: list[LiveProducer], codec: str
) -> None:
    topic = kafka.create_topic(partitions=2, prefix=f"prod-{codec}")
    producer = LiveProducer(kafka.bootstrap, compression=codec, linger=0.02)
    producers.append(producer)
    base_ts = 1_700_000_000_000
    sent = {}
    for i in range(2000):
        headers = [("n", b"%d" % i), ("empty", b""), ("none", None)] if i % 3 == 0 else []
        kwargs: dict[str, Any] = {"headers": headers}
        if i % 2 == 0:
            kwargs["timestamp_ms"] = base_ts + i
        token = producer.send(topic, b"value-%d" % i * (1 + i % 7), key=b"k%d" % i, **kwargs)
        sent[token] = (i, headers, kwargs.get("timestamp_ms"))
    before = int(time.time() * 1000)
    producer.wait()
    assert all(error is None for _, _, error in producer.outcome.values())
    logs = read_all(kafka.bootstrap, topic, 2, len(sent))
    at = {(p, m.offset()): m for p, records in logs.items() for m in records}
    assert len(at) == len(sent)
    for token, (i, headers, ts) in sent.items():
        partition, offset, _ = producer.outcome[token]
        msg = at[(partition, offset)]
        assert msg.key() == b"k%d" % i
        assert msg.value() == b"value-%d" % i * (1 + i % 7)
        assert list(msg.headers() or []) == headers
        if ts is not None:
            assert msg.timestamp()[1] == ts
        else:
            # The wall clock at send time (the driver passes the offset to it).
            assert before - 120_000 <= msg.timestamp()[1] <= before + 5_000


def test_bad_input_each_gets_a_typed_error_and_nothing_is_lost(
    kafka: Any, producers: list[LiveProducer]
) -> None:
    topic = kafka.create_topic(partitions=1, prefix="prod-bad")
    producer = LiveProducer(
        kafka.bootstrap, max_request_size=10_000, buffer_memory=50_000, max_block=3.0
    )
    producers.append(producer)
    good: list[int] = []
    with pytest.raises(RecordTooLargeError):
        producer.core.send(topic, b"x" * 20_000, time.monotonic())
    # A full buffer: the error says how much room is needed; nothing was queued.
    full = None
    while full is None:
        try:
            good.append(producer.core.send(topic, b"y" * 1000, time.monotonic()))
        except BufferFullError as exc:
            full = exc
    assert full.needed > full.available == producer.core.buffer_available()
    pending = producer.core.pending()
    assert pending == len(good)
    producer.wait()
    good.append(producer.send(topic, b"after the buffer drained"))
    # An unknown topic (auto-creation is off in the test broker): a typed error per record.
    missing = [producer.send(f"{topic}-missing", b"%d" % i) for i in range(3)]
    producer.wait(30)
    assert all(producer.outcome[t][2] is None for t in good)
    for token in missing:
        assert isinstance(producer.outcome[token][2], UnknownTopicOrPartitionError)
    producer.core.close(time.monotonic())
    with pytest.raises(ProducerClosedError):
        producer.core.send(topic, b"late", time.monotonic())
    producer.driver.run_until(lambda: producer.core.closed, 10)
    logs = read_all(kafka.bootstrap, topic, 1, len(good))
    assert len(logs[0]) == len(good)
    assert [m.offset() for m in logs[0]] == sorted(producer.outcome[t][1] for t in good)


def test_acks_one_and_zero_without_idempotence(kafka: Any, producers: list[LiveProducer]) -> None:
    topic = kafka.create_topic(partitions=3, prefix="prod-acks")
    total = 0
    for acks in (1, 0):
        producer = LiveProducer(kafka.bootstrap, acks=acks, enable_idempotence=False)
        producers.append(producer)
        for i in range(3000):
            producer.send(topic, b"%d-%d" % (acks, i), key=b"%d" % i)
        producer.wait()
        total += 3000
        assert all(e is None for _, _, e in producer.outcome.values())
        if acks == 0:
            # "Delivered" means handed to the driver: give it time to write the bytes.
            assert all(offset == -1 for _, offset, _ in producer.outcome.values())
            producer.driver.run_until(lambda: False, 1.0)
    logs = read_all(kafka.bootstrap, topic, 3, total)
    assert sum(len(r) for r in logs.values()) == total


def test_idempotence_survives_a_sigkilled_leader(
    kafka_cluster3: Any, producers: list[LiveProducer]
) -> None:
    cluster = kafka_cluster3
    cluster.wait_broker_count(3)
    partitions = 3
    topic = cluster.create_topic(
        partitions=partitions,
        replication_factor=3,
        config={"min.insync.replicas": "2"},
        prefix="prod-kill",
    )
    producer = LiveProducer(cluster.bootstrap, delivery_timeout=120.0, linger=0.01)
    producers.append(producer)
    victim = cluster.leader_of(topic, 0)
    sent: dict[int, bytes] = {}
    killed = threading.Event()
    count = 0
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and (count < 60_000 or not killed.is_set()):
            value = b"%d" % count
            sent[producer.send(topic, value, key=b"%d" % (count % 997))] = value
            count += 1
            if count == 20_000:
                cluster.kill(victim)
                killed.set()
        producer.wait(150)
        assert killed.is_set()
        # The records after the kill went to a new leader.
        meta = producer.core.client.metadata
        assert meta.leader(KTopicPartition(topic, 0)) not in (None, victim)
    finally:
        if killed.is_set():
            cluster.start(victim)
    assert set(producer.outcome) == set(sent)
    acked = {t for t, (_, _, e) in producer.outcome.items() if e is None}
    assert len(acked) >= len(sent) * 0.9
    cluster.wait_broker_count(3)
    logs = read_all(cluster.bootstrap, topic, partitions, len(acked), timeout=120)
    seen: dict[bytes, list[tuple[int, int]]] = {}
    for p, records in logs.items():
        numbers = [int(m.value()) for m in records]
        assert numbers == sorted(numbers), "a partition's order was broken"
        for m in records:
            seen.setdefault(m.value(), []).append((p, m.offset()))
    assert all(len(v) == 1 for v in seen.values()), "a record was written twice"
    for token, value in sent.items():
        partition, offset, error = producer.outcome[token]
        if error is None:
            assert seen[value] == [(partition, offset)]
        elif value in seen:
            assert token in producer.maybe_written
