"""``kafka-sansio demo``: the core end to end, on the embedded model or a real cluster.

By default everything runs in memory: an in-memory Kafka cluster (the
project's broker model) answers the real wire protocol and a fake clock
moves time, so the demo needs no Java and no network.  With ``--bootstrap``
the very same core talks to a real cluster through the blocking driver.

The demo writes records with three codecs, consumes them from the
beginning, seeks past the end to show an automatic reset, and shows what a
consumer without a reset policy reports instead.
"""

from __future__ import annotations

import random
import sys
import time
import uuid
from collections.abc import Callable
from typing import Any, TextIO

from kafka_sansio import (
    ClientConfig,
    ClientCore,
    ConsumerConfig,
    ConsumerCore,
    Event,
    NoOffsetForPartition,
    OffsetOutOfRange,
    OffsetReset,
    OffsetResetPolicy,
    OffsetsResult,
    RequestFailed,
    Response,
    TopicPartition,
    parse_bootstrap,
)
from kafka_sansio._messages.create_topics import CreatableTopic, CreateTopicsRequest
from kafka_sansio._messages.produce import (
    PartitionProduceData,
    ProduceRequest,
    ProduceResponse,
    TopicProduceData,
)
from kafka_sansio.errors import error_for_code
from kafka_sansio.records import Record, codec_available, encode_batch

PARTITIONS = 3
PER_BATCH = 10
TIMEOUT = 60.0


class DemoFailed(Exception):
    """Something the demo expected did not happen."""


def _codecs() -> list[str]:
    wanted = ["none", "gzip", "zstd", "lz4", "snappy"]
    return [c for c in wanted if codec_available(c)][:3]


def _records(partition: int, batch: int) -> list[tuple[bytes, bytes, list[tuple[str, bytes]]]]:
    out = []
    for i in range(PER_BATCH):
        key = f"key-{partition}-{batch}-{i}".encode()
        value = f'{{"partition": {partition}, "batch": {batch}, "n": {i}}}'.encode()
        headers = [("source", b"demo"), ("source", b"duplicate keys are kept")]
        out.append((key, value, headers))
    return out


class _Side:
    """How the demo reaches a cluster: create, produce, and pump a core."""

    label = ""

    def bootstrap(self) -> tuple[tuple[str, int], ...]:
        raise NotImplementedError

    def now(self) -> float:
        """The clock the cores are driven with."""
        return time.monotonic()

    def prepare(self, topic: str, codecs: list[str]) -> int:
        raise NotImplementedError

    timeout = TIMEOUT

    def until(self, core: Any, condition: Callable[[], object]) -> None:
        raise NotImplementedError

    def close(self) -> None:
        pass


class _Embedded(_Side):
    label = "the embedded in-memory Kafka model (3 brokers, fake clock, no network)"

    def __init__(self) -> None:
        from kafka_sansio.testing import ModelCluster, Pump

        self.cluster = ModelCluster(brokers=3)
        self._pump_class = Pump
        self._pumps: dict[int, Any] = {}
        self.clock = 0.0

    def now(self) -> float:
        return self.clock

    def bootstrap(self) -> tuple[tuple[str, int], ...]:
        info = self.cluster.brokers[1]
        return ((info.host, info.port),)

    def prepare(self, topic: str, codecs: list[str]) -> int:
        self.cluster.create_topic(topic, partitions=PARTITIONS)
        count = 0
        for p in range(PARTITIONS):
            for b, codec in enumerate(codecs):
                records = _records(p, b)
                stamp = int(time.time() * 1000)
                self.cluster.append(topic, p, records, compression=codec, timestamp=stamp)
                count += len(records)
        return count

    def until(self, core: Any, condition: Callable[[], object]) -> None:
        pump = self._pumps.get(id(core))
        if pump is None:
            pump = self._pumps[id(core)] = self._pump_class(core, self.cluster, now=self.clock)
        pump.now = max(pump.now, self.clock)
        pump.until(condition, self.timeout)
        self.clock = pump.now


class _Real(_Side):
    def __init__(self, bootstrap: str) -> None:
        from ._blocking import BlockingDriver

        self._servers = parse_bootstrap(bootstrap)
        self.label = f"the Kafka cluster at {bootstrap}"
        self._driver_class = BlockingDriver
        self._drivers: dict[int, Any] = {}

    def bootstrap(self) -> tuple[tuple[str, int], ...]:
        return self._servers

    def until(self, core: Any, condition: Callable[[], object]) -> None:
        driver = self._drivers.get(id(core))
        if driver is None:
            driver = self._drivers[id(core)] = self._driver_class(core)
        if not driver.run_until(condition, self.timeout):
            raise DemoFailed(f"timed out after {self.timeout:g}s waiting for the cluster")

    def prepare(self, topic: str, codecs: list[str]) -> int:
        client = ClientCore(ClientConfig(bootstrap_servers=self._servers), random.random)
        results: list[Response | RequestFailed] = []

        def collect(result: Response | RequestFailed, now: float) -> None:
            results.append(result)

        create = CreateTopicsRequest(
            topics=[CreatableTopic(name=topic, num_partitions=PARTITIONS, replication_factor=-1)],
            timeout_ms=30_000,
        )
        self.until(client, lambda: client.send_any(create, self.now(), collect))
        self.until(client, lambda: results)
        client.set_topics([topic], self.now())
        client.request_metadata(self.now())

        def leaders_known() -> bool:
            client.request_metadata(self.now())
            tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
            return all(client.metadata.leader(tp) is not None for tp in tps)

        self.until(client, leaders_known)
        batches: dict[tuple[int, int], bytes] = {}
        count = 0
        for p in range(PARTITIONS):
            for b, codec in enumerate(codecs):
                records = _records(p, b)
                stamp = int(time.time() * 1000)
                batches[(p, b)] = encode_batch(
                    [Record(i, stamp, 0, k, v, tuple(h)) for i, (k, v, h) in enumerate(records)],
                    compression=codec,
                )
                count += len(records)
        # Send every batch in order per partition; a fresh topic's leader may still be
        # settling, so retriable errors are retried after a metadata refresh.
        for attempt in range(20):
            pending = sorted(batches)
            if not pending:
                break
            if attempt:
                resume = time.monotonic() + 0.2 * attempt
                client.request_metadata(self.now())
                self.until(client, lambda resume=resume: time.monotonic() >= resume)
            for p, b in pending:
                if (p, b) not in batches:
                    continue
                results.clear()
                leader = client.metadata.leader(TopicPartition(topic, p))
                if leader is None:
                    break
                request = ProduceRequest(
                    acks=-1,
                    timeout_ms=30_000,
                    topic_data=[
                        TopicProduceData(
                            name=topic,
                            partition_data=[PartitionProduceData(index=p, records=batches[(p, b)])],
                        )
                    ],
                )
                client.send(leader, request, self.now(), collect)
                self.until(client, lambda: results)
                code = _produce_error(results[0])
                if code == 0:
                    del batches[(p, b)]
                elif code is not None and not error_for_code(code).retriable:
                    raise DemoFailed(f"produce to partition {p}: error {code}")
                else:
                    break  # keep the order: retry this partition's batches later
        if batches:
            raise DemoFailed(f"could not produce {len(batches)} batches")
        client.close()
        self.until(client, lambda: True)
        return count

    def close(self) -> None:
        for driver in self._drivers.values():
            driver.close()


def _produce_error(result: Response | RequestFailed) -> int | None:
    """The partition error code of a one-partition Produce answer (None: no answer)."""
    response = result.response if isinstance(result, Response) else None
    if not isinstance(response, ProduceResponse):
        return None
    return response.responses[0].partition_responses[0].error_code


def _consumer(side: _Side, policy: OffsetResetPolicy) -> ConsumerCore:
    config = ConsumerConfig(
        client=ClientConfig(bootstrap_servers=side.bootstrap(), client_id="kafka-sansio-demo"),
        auto_offset_reset=policy,
    )
    return ConsumerCore(config, random.Random(1).random)


def run(bootstrap: str | None = None, out: TextIO = sys.stdout, timeout: float = TIMEOUT) -> int:
    """Run the demo; 0 when everything behaved as expected, 1 otherwise."""
    side: _Side = _Real(bootstrap) if bootstrap else _Embedded()
    side.timeout = timeout
    try:
        _run(side, out)
    except DemoFailed as exc:
        print(f"demo failed: {exc}", file=sys.stderr)
        return 1
    finally:
        side.close()
    return 0


def _run(side: _Side, out: TextIO) -> None:
    def say(text: str) -> None:
        print(text, file=out, flush=True)

    topic = f"demo-{uuid.uuid4().hex[:8]}"
    codecs = _codecs()
    say(f"kafka-sansio demo on {side.label}")
    total = side.prepare(topic, codecs)
    say(
        f"1. wrote {total} records to topic {topic!r}: {PARTITIONS} partitions, one batch each "
        f"compressed with {', '.join(codecs)}"
    )

    consumer = _consumer(side, OffsetResetPolicy.EARLIEST)
    tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
    consumer.assign(tps, side.now())
    got: dict[TopicPartition, list[int]] = {tp: [] for tp in tps}
    events: list[Event] = []
    sample: list[Any] = []

    def poll_until(count: int) -> Callable[[], bool]:
        def done() -> bool:
            batch = consumer.poll(side.now())
            for tp, record in batch:
                got[tp].append(record.offset)
                if not sample:
                    sample.append(record)
            events.extend(consumer.events())
            return sum(map(len, got.values())) >= count

        return done

    side.until(consumer, poll_until(total))
    resets = [e for e in events if isinstance(e, OffsetReset)]
    say(f"2. consumed all {total} records from the beginning (auto_offset_reset=earliest):")
    for e in resets:
        say(f"     reset {e.partition}: no position -> offset {e.to_offset} ({e.reason.value})")
    for tp, offsets in got.items():
        say(f"     {tp}: {len(offsets)} records, offsets {offsets[0]}..{offsets[-1]}, in order")
    record = sample[0]
    say(
        f"     first record: key={record.key!r} value={record.value!r} "
        f"headers={list(record.headers)} timestamp={record.timestamp}"
    )

    tp0 = tps[0]
    events.clear()
    consumer.seek(tp0, 1_000_000, side.now())
    side.until(
        consumer,
        lambda: events.extend(consumer.events()) or any(isinstance(e, OffsetReset) for e in events),
    )
    reset = next(e for e in events if isinstance(e, OffsetReset))
    say(
        f"3. seek({tp0}, 1000000) is past the end: the consumer reset itself and said so:\n"
        f"     OffsetReset {reset.partition}: {reset.from_offset} -> {reset.to_offset} "
        f"({reset.reason.value})"
    )
    before = len(got[tp0])
    side.until(consumer, poll_until(total + PER_BATCH * len(codecs)))
    say(f"     and read partition 0 again: {len(got[tp0]) - before} records")
    consumer.close()

    strict = _consumer(side, OffsetResetPolicy.NONE)
    tp1 = tps[1]
    strict.assign([tp1], side.now())
    seen: list[Event] = []

    def wait_for(kind: type) -> Callable[[], bool]:
        def done() -> bool:
            strict.poll(side.now())
            seen.extend(strict.events())
            return any(isinstance(e, kind) for e in seen)

        return done

    side.until(strict, wait_for(NoOffsetForPartition))
    say("4. with auto_offset_reset=none nothing moves by itself:")
    say(f"     NoOffsetForPartition {tp1}: waiting for the user to seek")
    strict.seek(tp1, 1_000_000, side.now())
    side.until(strict, wait_for(OffsetOutOfRange))
    oor = next(e for e in seen if isinstance(e, OffsetOutOfRange))
    for tp, offset in oor.offsets.items():
        say(f"     OffsetOutOfRange {tp}: offset {offset}; fetching stopped until the next seek")
    token = strict.list_offsets({tp1: -2}, side.now())
    side.until(strict, wait_for(OffsetsResult))
    result = next(e for e in seen if isinstance(e, OffsetsResult) and e.token == token)
    start = result.offsets[tp1]
    token = strict.list_offsets({tp1: -1}, side.now())
    seen.clear()
    side.until(strict, wait_for(OffsetsResult))
    end = next(e for e in seen if isinstance(e, OffsetsResult)).offsets[tp1]
    say(
        f"     beginning/end offsets of {tp1}: {start.offset if start else None}"
        f"..{end.offset if end else None}"
    )
    strict.close()
    say("done.")
