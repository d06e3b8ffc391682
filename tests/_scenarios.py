"""Consumer scenarios that run unchanged against the model broker and the real one.

A harness gives a scenario the same handful of moves on either side:
create a topic, produce records, move the log start (retention), and make a
consumer core with a driver.  The scenario returns a trace of what the
consumer reported (events and delivered offsets), normalised so that the two
sides can be compared exactly.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable
from typing import Any, Protocol

from _socket_pump import SocketPump

from kafka_sansio._client import ClientConfig, parse_bootstrap
from kafka_sansio._consumer import ConsumerConfig, ConsumerCore
from kafka_sansio._events import (
    Event,
    LogTruncation,
    NoOffsetForPartition,
    OffsetOutOfRange,
    OffsetReset,
    OffsetsResult,
)
from kafka_sansio._types import OffsetResetPolicy, TopicPartition
from kafka_sansio.testing._model import ModelCluster
from kafka_sansio.testing._pump import Pump

Trace = list[tuple[Any, ...]]


class Driver(Protocol):
    core: ConsumerCore

    def until(self, condition: Callable[[], Any], timeout: float = ...) -> None: ...
    def now(self) -> float: ...
    def settle(self, seconds: float) -> None: ...


class Harness(Protocol):
    name: str

    def create_topic(self, partitions: int = 1) -> str: ...
    def produce(self, topic: str, partition: int, values: list[bytes]) -> None: ...
    def truncate(self, topic: str, partition: int, before: int) -> None: ...
    def consumer(self, policy: OffsetResetPolicy) -> Driver: ...


# ---------------------------------------------------------------------- model side


class ModelDriver:
    def __init__(self, core: ConsumerCore, pump: Pump) -> None:
        self.core = core
        self.pump = pump

    def until(self, condition: Callable[[], Any], timeout: float = 30.0) -> None:
        self.pump.until(condition, timeout)

    def now(self) -> float:
        return self.pump.now

    def settle(self, seconds: float) -> None:
        self.pump.advance(seconds)


class ModelHarness:
    name = "model"

    def __init__(self) -> None:
        self.cluster = ModelCluster(brokers=1)
        self.clock = 1000.0

    def create_topic(self, partitions: int = 1) -> str:
        name = f"t-{uuid.uuid4().hex[:8]}"
        self.cluster.create_topic(name, partitions=partitions)
        return name

    def produce(self, topic: str, partition: int, values: list[bytes]) -> None:
        for value in values:  # one batch per record, as the real side produces them
            self.cluster.append(topic, partition, [value])

    def truncate(self, topic: str, partition: int, before: int) -> None:
        self.cluster.truncate_start(topic, partition, before)

    def consumer(self, policy: OffsetResetPolicy) -> ModelDriver:
        info = self.cluster.brokers[1]
        config = ConsumerConfig(
            client=ClientConfig(bootstrap_servers=((info.host, info.port),)),
            auto_offset_reset=policy,
        )
        core = ConsumerCore(config, random=random.Random(7).random)
        return ModelDriver(core, Pump(core, self.cluster, now=self.clock))


# ---------------------------------------------------------------------- real side


class BrokerDriver:
    def __init__(self, core: ConsumerCore) -> None:
        self.core = core
        self.pump = SocketPump(core)

    def until(self, condition: Callable[[], Any], timeout: float = 30.0) -> None:
        self.pump.until(condition, timeout)

    def now(self) -> float:
        return time.monotonic()

    def settle(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.pump.step(min(0.1, max(0.0, end - time.monotonic())))


class BrokerHarness:
    name = "broker"

    def __init__(self, kafka: Any) -> None:
        from confluent_kafka import Producer

        self.kafka = kafka
        self.producer = Producer({"bootstrap.servers": kafka.bootstrap, "linger.ms": 0})
        self.drivers: list[BrokerDriver] = []

    def create_topic(self, partitions: int = 1) -> str:
        name: str = self.kafka.create_topic(partitions=partitions, prefix="diff")
        return name

    def produce(self, topic: str, partition: int, values: list[bytes]) -> None:
        errors: list[Any] = []
        for value in values:
            self.producer.produce(
                topic, value=value, partition=partition, on_delivery=lambda e, m: errors.append(e)
            )
            self.producer.flush(30)  # one batch per record
        assert errors == [None] * len(values), errors

    def truncate(self, topic: str, partition: int, before: int) -> None:
        from kafka_wire import KafkaWire

        from kafka_sansio._messages.delete_records import (
            DeleteRecordsPartition,
            DeleteRecordsRequest,
            DeleteRecordsResponse,
            DeleteRecordsTopic,
        )

        request = DeleteRecordsRequest(
            topics=[
                DeleteRecordsTopic(
                    name=topic,
                    partitions=[DeleteRecordsPartition(partition_index=partition, offset=before)],
                )
            ],
            timeout_ms=30_000,
        )
        with KafkaWire(self.kafka.host, self.kafka.port) as wire:
            response = wire.request(request, 2)
        assert isinstance(response, DeleteRecordsResponse)
        [result] = response.topics[0].partitions
        assert (result.error_code, result.low_watermark) == (0, before)

    def consumer(self, policy: OffsetResetPolicy) -> BrokerDriver:
        config = ConsumerConfig(
            client=ClientConfig(bootstrap_servers=parse_bootstrap(self.kafka.bootstrap)),
            auto_offset_reset=policy,
        )
        driver = BrokerDriver(ConsumerCore(config, random=random.Random(7).random))
        self.drivers.append(driver)
        return driver

    def close(self) -> None:
        for driver in self.drivers:
            driver.core.close()
            driver.pump.close()


# ---------------------------------------------------------------------- helpers


class Recorder:
    """Collects what a consumer reports, as a comparable trace."""

    def __init__(self, driver: Driver) -> None:
        self.driver = driver
        self.trace: Trace = []
        self.delivered: dict[int, list[int]] = {}
        self.claimed: dict[int, int] = {}

    def _drain(self) -> None:
        core = self.driver.core
        for event in core.events():
            self.trace.append(normalise(event))
        batch = core.poll(self.driver.now())
        for tp, records in batch.by_partition.items():
            offsets = [r.offset for r in records]
            self.delivered.setdefault(tp.partition, []).extend(offsets)

    def records(self, partition: int, count: int, timeout: float = 30.0) -> list[int]:
        """The next ``count`` delivered offsets of ``partition`` (waiting for them)."""
        start = self.claimed.get(partition, 0)

        def done() -> bool:
            self._drain()
            return len(self.delivered.get(partition, [])) >= start + count

        self.driver.until(done, timeout)
        self.claimed[partition] = start + count
        return self.delivered[partition][start : start + count]

    def event(self, kind: type[Event], timeout: float = 30.0) -> tuple[Any, ...]:
        """Wait for the next event of ``kind``; its normalised form."""
        seen = len(self.trace)

        def done() -> bool:
            self._drain()
            return any(t[0] == kind.__name__ for t in self.trace[seen:])

        self.driver.until(done, timeout)
        return next(t for t in self.trace[seen:] if t[0] == kind.__name__)

    def quiet(self, seconds: float = 1.5) -> tuple[Trace, int]:
        """Let time pass; the events and the number of records reported meanwhile."""
        seen = len(self.trace)
        records = sum(map(len, self.delivered.values()))
        self.driver.settle(seconds)
        self._drain()
        return self.trace[seen:], sum(map(len, self.delivered.values())) - records

    def result(self) -> Trace:
        """Events in order, then every partition's delivered offsets.

        How records are split across fetches depends on timing, so only the
        sequence of offsets per partition is compared, not the split.
        """
        return self.trace + [("delivered", p, o) for p, o in sorted(self.delivered.items())]

    def position(self, tp: TopicPartition, timeout: float = 30.0) -> int:
        self.driver.until(lambda: self.driver.core.position(tp) is not None, timeout)
        position = self.driver.core.position(tp)
        assert position is not None
        return position


def normalise(event: Event) -> tuple[Any, ...]:
    if isinstance(event, OffsetReset):
        return (
            "OffsetReset",
            event.partition.partition,
            event.from_offset,
            event.to_offset,
            event.reason.value,
        )
    if isinstance(event, OffsetOutOfRange):
        return ("OffsetOutOfRange", sorted((tp.partition, o) for tp, o in event.offsets.items()))
    if isinstance(event, NoOffsetForPartition):
        return ("NoOffsetForPartition", sorted(tp.partition for tp in event.partitions))
    if isinstance(event, LogTruncation):
        return ("LogTruncation", event.partition.partition, event.position, event.diverging_offset)
    if isinstance(event, OffsetsResult):
        return (
            "OffsetsResult",
            sorted((tp.partition, None if o is None else o.offset) for tp, o in event.offsets.items()),
            type(event.error).__name__ if event.error else None,
        )
    return (type(event).__name__,)


# ---------------------------------------------------------------------- scenarios


def empty_topic_latest(h: Harness) -> Trace:
    topic = h.create_topic()
    tp = TopicPartition(topic, 0)
    rec = Recorder(h.consumer(OffsetResetPolicy.LATEST))
    rec.driver.core.assign([tp], rec.driver.now())
    rec.event(OffsetReset)
    h.produce(topic, 0, [b"a", b"b", b"c"])
    assert rec.records(0, 3) == [0, 1, 2]
    return rec.result()


def earliest_then_latest(h: Harness) -> Trace:
    topic = h.create_topic(partitions=2)
    h.produce(topic, 0, [b"x"] * 5)
    h.produce(topic, 1, [b"y"] * 3)
    rec = Recorder(h.consumer(OffsetResetPolicy.EARLIEST))
    rec.driver.core.assign([TopicPartition(topic, 0), TopicPartition(topic, 1)], rec.driver.now())
    assert rec.records(0, 5) == [0, 1, 2, 3, 4]
    assert rec.records(1, 3) == [0, 1, 2]
    late = Recorder(h.consumer(OffsetResetPolicy.LATEST))
    late.driver.core.assign([TopicPartition(topic, 0)], late.driver.now())
    assert late.position(TopicPartition(topic, 0)) == 5
    h.produce(topic, 0, [b"z"] * 2)
    assert late.records(0, 2) == [5, 6]
    return sorted(rec.result()) + late.result()


def seek_past_end(h: Harness, policy: OffsetResetPolicy) -> Trace:
    topic = h.create_topic()
    tp = TopicPartition(topic, 0)
    h.produce(topic, 0, [b"v"] * 5)
    rec = Recorder(h.consumer(policy))
    core = rec.driver.core
    core.assign([tp], rec.driver.now())
    if policy is OffsetResetPolicy.NONE:
        rec.event(NoOffsetForPartition)
        assert core.position(tp) is None
        core.seek(tp, 0, rec.driver.now())
    elif policy is OffsetResetPolicy.LATEST:
        assert rec.position(tp) == 5
        core.seek(tp, 0, rec.driver.now())
    assert rec.records(0, 5) == [0, 1, 2, 3, 4]
    core.seek(tp, 5, rec.driver.now())  # exactly the end: valid, nothing to read
    assert rec.quiet() == ([], 0)
    core.seek(tp, 100, rec.driver.now())
    if policy is OffsetResetPolicy.NONE:
        rec.event(OffsetOutOfRange)
        assert rec.quiet() == ([], 0)
        core.seek(tp, 2, rec.driver.now())
        assert rec.records(0, 3) == [2, 3, 4]
    elif policy is OffsetResetPolicy.EARLIEST:
        rec.event(OffsetReset)
        assert rec.records(0, 5) == [0, 1, 2, 3, 4]
    else:
        rec.event(OffsetReset)
        h.produce(topic, 0, [b"w"])
        assert rec.records(0, 1) == [5]
    return rec.result()


def seek_before_log_start(h: Harness, policy: OffsetResetPolicy) -> Trace:
    topic = h.create_topic()
    tp = TopicPartition(topic, 0)
    h.produce(topic, 0, [b"v"] * 10)
    h.truncate(topic, 0, 4)
    rec = Recorder(h.consumer(policy))
    core = rec.driver.core
    core.assign([tp], rec.driver.now())
    core.seek(tp, 1, rec.driver.now())
    if policy is OffsetResetPolicy.NONE:
        rec.event(OffsetOutOfRange)
        core.seek_to_beginning([tp], rec.driver.now())
        assert rec.position(tp) == 4
    else:
        rec.event(OffsetReset)
    expected = list(range(4, 10)) if policy is not OffsetResetPolicy.LATEST else []
    if expected:
        assert rec.records(0, len(expected)) == expected
    else:
        assert rec.position(tp) == 10
    token = core.list_offsets({tp: -2}, rec.driver.now())
    result = rec.event(OffsetsResult)
    assert token == 1 and result[1] == [(0, 4)]
    return rec.result()


SCENARIOS: dict[str, Callable[[Harness], Trace]] = {
    "empty_topic_latest": empty_topic_latest,
    "earliest_then_latest": earliest_then_latest,
    "seek_past_end_earliest": lambda h: seek_past_end(h, OffsetResetPolicy.EARLIEST),
    "seek_past_end_latest": lambda h: seek_past_end(h, OffsetResetPolicy.LATEST),
    "seek_past_end_none": lambda h: seek_past_end(h, OffsetResetPolicy.NONE),
    "before_log_start_earliest": lambda h: seek_before_log_start(h, OffsetResetPolicy.EARLIEST),
    "before_log_start_latest": lambda h: seek_before_log_start(h, OffsetResetPolicy.LATEST),
    "before_log_start_none": lambda h: seek_before_log_start(h, OffsetResetPolicy.NONE),
}
