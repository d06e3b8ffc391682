"""Side by side: kafka-sansio against kafka-python, aiokafka and confluent-kafka on a real broker.

Three workloads, every client in a fresh process (``--child``) per run:

- **consume**: N records (100-byte values, small keys) from a 4-partition topic, assigned
  from the beginning, once per compression codec; records/s from the first poll call to
  the N-th record;
- **produce**: N records of 100 bytes to a fresh 4-partition topic with acks=all, once per
  codec; records/s from the first send to the end of ``flush``.  The child counts the
  acknowledged records (delivery callbacks) and the parent checks the topic's high
  watermarks: a run that loses or duplicates a record is a failure, not a figure;
- **latency**: a producer and a consumer in the same process; the producer sends at a
  fixed rate with its send time in the value, the consumer notes when each record
  arrives; p50/p99/max of produce-to-consume, after a warm-up.

Peak RSS of every run comes from ``os.wait4``.  Rounds are interleaved (round 1 runs every
client on every workload, then round 2, ..., each round starting with the next client in
turn); the summary is the median with min..max.
kafka-sansio runs on each of its three adapters (blocking, asyncio, trio), with the
``crc32c`` extension of the ``fast`` extra and without it (``-purecrc``).

    python benchmarks/bench_clients.py [--bootstrap HOST:PORT] [--records 1000000]
        [--rounds 3] [--workloads consume,produce,latency] [--codecs none,lz4,zstd]
        [--produce-codecs none,lz4] [--latency-rate 2000] [--latency-seconds 10]
        [--clients ...] [--memory-records 5000000] [--quick] [--out docs] [--profile DIR]

Without ``--bootstrap`` a single-node Apache Kafka broker is started with
``scripts/kafka-cluster`` and stopped at the end.  Results go to ``OUT/benchmarks.json``,
``OUT/benchmarks.md`` (between the result markers; the prose around them is kept) and
``OUT/benchmarks.png``.  The parent process stays small on purpose (it imports no Kafka
client): a child's peak RSS as the kernel reports it includes what it inherited at fork.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shlex
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PARTITIONS = 4
VALUE_SIZE = 100
BATCH = 10_000  # records asked for per poll call, for every client
FETCH_MAX_BYTES = 52_428_800
PARTITION_FETCH_BYTES = 4_194_304  # the peers' max_partition_fetch_bytes, raised for throughput
PRODUCE_BATCH_BYTES = 262_144  # producer batch size, raised for throughput
PRODUCE_LINGER_MS = 20  # producer linger, raised for throughput
POOL = 4099  # distinct values a producer cycles through (400 kB: beyond lz4's 64 kB window)
KEYS = 1000
WARMUP = 1.0  # latency: seconds of records left out of the percentiles

WORKLOADS = ("consume", "produce", "latency")
ADAPTERS = ("blocking", "asyncio", "trio")
PEERS = ("kafka-python", "aiokafka", "confluent-kafka")

# name -> label
CLIENTS: dict[str, str] = {
    "blocking": "kafka-sansio blocking",
    "blocking-purecrc": "kafka-sansio blocking, pure-Python CRC",
    "asyncio": "kafka-sansio asyncio",
    "asyncio-purecrc": "kafka-sansio asyncio, pure-Python CRC",
    "trio": "kafka-sansio trio",
    "trio-purecrc": "kafka-sansio trio, pure-Python CRC",
    "kafka-python": "kafka-python",
    "aiokafka": "aiokafka",
    "confluent-kafka": "confluent-kafka (C ceiling)",
}
BASELINE = "blocking"
PURE = "-purecrc"

_SANSIO_CONSUMER = (
    'Consumer(auto_offset_reset="earliest") with the default fetch sizes '
    "(max_partition_fetch_bytes 1 MiB, fetch_max_bytes 50 MiB; the peers' 4 MiB gave the "
    f"same rate and a higher peak RSS), poll(1.0, max_records={BATCH})"
)
_SANSIO_PRODUCER = (
    f'Producer(acks="all", linger={PRODUCE_LINGER_MS / 1000}, batch_size={PRODUCE_BATCH_BYTES}, '
    "compression=codec) (idempotent: the default with acks=all), "
    "send(..., on_delivery=callback), flush()"
)
# workload -> client (without -purecrc) -> the settings used, as users would write them
SETTINGS: dict[str, dict[str, str]] = {
    "consume": {
        "blocking": _SANSIO_CONSUMER + "; CRC with the `crc32c` extension (`fast` extra)",
        "asyncio": "as blocking, `await consumer.poll(...)` inside `async with`, asyncio.run",
        "trio": "as blocking, `await consumer.poll(...)` inside `async with`, trio.run",
        "kafka-python": (
            f"KafkaConsumer(fetch_max_bytes={FETCH_MAX_BYTES}, "
            f"max_partition_fetch_bytes={PARTITION_FETCH_BYTES}, max_poll_records={BATCH}, "
            "check_crcs=True), poll(timeout_ms=1000)"
        ),
        "aiokafka": (
            f"AIOKafkaConsumer(fetch_max_bytes={FETCH_MAX_BYTES}, "
            f"max_partition_fetch_bytes={PARTITION_FETCH_BYTES}, check_crcs=True), "
            f"getmany(timeout_ms=1000, max_records={BATCH})"
        ),
        "confluent-kafka": (
            f"Consumer(check.crcs=true, fetch.max.bytes={FETCH_MAX_BYTES}, "
            f"max.partition.fetch.bytes={PARTITION_FETCH_BYTES}, fetch.queue.backoff.ms=10), "
            f"consume(num_messages<={BATCH})"
        ),
    },
    "produce": {
        "blocking": _SANSIO_PRODUCER,
        "asyncio": "as blocking, `await producer.send(...)`, `await producer.flush()`",
        "trio": "as blocking, `await producer.send(...)`, `await producer.flush()`",
        "kafka-python": (
            f'KafkaProducer(acks="all", linger_ms={PRODUCE_LINGER_MS}, '
            f"batch_size={PRODUCE_BATCH_BYTES}, compression_type=codec, "
            "enable_idempotence=True), send(...).add_callback/add_errback, flush()"
        ),
        "aiokafka": (
            f'AIOKafkaProducer(acks="all", linger_ms={PRODUCE_LINGER_MS}, '
            f"max_batch_size={PRODUCE_BATCH_BYTES}, compression_type=codec, "
            "enable_idempotence=True), (await send(...)).add_done_callback, flush()"
        ),
        "confluent-kafka": (
            f"Producer(acks=all, enable.idempotence=true, linger.ms={PRODUCE_LINGER_MS}, "
            f"batch.size={PRODUCE_BATCH_BYTES}, compression.type=codec), "
            "produce(..., on_delivery=callback), poll(0) every 1000, flush()"
        ),
    },
    "latency": {
        "blocking": (
            'Producer(acks="all", linger=0) sending from a thread that waits in '
            "producer.poll(...) between sends; "
            'Consumer(auto_offset_reset="earliest") polling with poll(0.1) in the main thread'
        ),
        "asyncio": (
            'Producer(acks="all", linger=0) and Consumer(auto_offset_reset="earliest") '
            "in two tasks; the sender sleeps until each send time"
        ),
        "trio": "as asyncio, on trio",
        "kafka-python": (
            'KafkaProducer(acks="all", linger_ms=0) sending from a thread; '
            "KafkaConsumer poll(timeout_ms=100) in the main thread"
        ),
        "aiokafka": (
            'AIOKafkaProducer(acks="all", linger_ms=0, enable_idempotence=True) and '
            "AIOKafkaConsumer getmany(timeout_ms=100) in two tasks"
        ),
        "confluent-kafka": (
            "Producer(acks=all, enable.idempotence=true, linger.ms=0) sending from a "
            "thread that waits in poll(...); Consumer poll(0.1) (one message each) in the main thread"
        ),
    },
}


def _base(client: str) -> str:
    return client[: -len(PURE)] if client.endswith(PURE) else client


def _describe(workload: str, client: str) -> str:
    text = SETTINGS[workload][_base(client)]
    if client.endswith(PURE):
        text = "as above with `kafka_sansio.records.use_pure_crc32c()`: without the `fast` extra"
    return text


# ---------------------------------------------------------------------------- child side


def _deadline(timeout: float) -> Callable[[], bool]:
    end = time.monotonic() + timeout
    return lambda: time.monotonic() > end


def _value(i: int) -> bytes:
    """A 100-byte JSON-ish value: a counter and a hex digest, about 2:1 compressible."""
    digest = hashlib.blake2b(i.to_bytes(8, "little"), digest_size=40).hexdigest().encode()
    return (b'{"n":%010d,"pad":"' % i + digest)[: VALUE_SIZE - 2] + b'"}'


def _payloads() -> tuple[list[bytes], list[bytes]]:
    return [_value(i) for i in range(POOL)], [b"k%d" % i for i in range(KEYS)]


def _sansio_consumer_options() -> dict[str, Any]:
    return {"auto_offset_reset": "earliest"}


def _sansio_producer_options(codec: str) -> dict[str, Any]:
    return {
        "acks": "all",
        "linger": PRODUCE_LINGER_MS / 1000,
        "batch_size": PRODUCE_BATCH_BYTES,
        "compression": codec,
    }


class _Tally:
    """Counts delivery outcomes; keeps the first error."""

    def __init__(self) -> None:
        self.acked = 0
        self.failed = 0
        self.error: str | None = None

    def outcome(self, error: object) -> None:
        if error is None:
            self.acked += 1
        else:
            self.failed += 1
            if self.error is None:
                self.error = repr(error)[:300]

    def result(self, seconds: float) -> dict[str, Any]:
        return {"count": self.acked, "failed": self.failed, "error": self.error, "seconds": seconds}


# ---- consume: each runner reads `records` records of `topic`, touching every value, and
# returns {"count", "value_bytes", "seconds" (first poll call to last record)}.


def _consumed(count: int, nbytes: int, seconds: float) -> dict[str, Any]:
    return {"count": count, "value_bytes": nbytes, "seconds": seconds}


def consume_blocking(bootstrap: str, topic: str, records: int, timeout: float) -> dict[str, Any]:
    from kafka_sansio.transports.blocking import Consumer

    from kafka_sansio import TopicPartition

    consumer = Consumer(bootstrap, **_sansio_consumer_options())
    tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
    consumer.assign(tps)
    consumer.seek_to_beginning(*tps)
    expired = _deadline(timeout)
    count = nbytes = 0
    start = time.perf_counter()
    while count < records and not expired():
        for _tp, record in consumer.poll(1.0, BATCH):
            count += 1
            nbytes += len(record.value or b"")
    elapsed = time.perf_counter() - start
    consumer.close()
    return _consumed(count, nbytes, elapsed)


async def _consume_async(
    flavour: Any, bootstrap: str, topic: str, records: int, timeout: float
) -> dict[str, Any]:
    from kafka_sansio import TopicPartition

    async with flavour.Consumer(bootstrap, **_sansio_consumer_options()) as consumer:
        tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        expired = _deadline(timeout)
        count = nbytes = 0
        start = time.perf_counter()
        while count < records and not expired():
            for _tp, record in await consumer.poll(1.0, BATCH):
                count += 1
                nbytes += len(record.value or b"")
        elapsed = time.perf_counter() - start
    return _consumed(count, nbytes, elapsed)


def consume_asyncio(bootstrap: str, topic: str, records: int, timeout: float) -> dict[str, Any]:
    import asyncio

    import kafka_sansio.transports.asyncio as flavour

    return asyncio.run(_consume_async(flavour, bootstrap, topic, records, timeout))


def consume_trio(bootstrap: str, topic: str, records: int, timeout: float) -> dict[str, Any]:
    import kafka_sansio.transports.trio as flavour
    import trio

    return trio.run(_consume_async, flavour, bootstrap, topic, records, timeout)  # type: ignore[no-any-return]


def consume_kafka_python(
    bootstrap: str, topic: str, records: int, timeout: float
) -> dict[str, Any]:
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_bytes=FETCH_MAX_BYTES,
        max_partition_fetch_bytes=PARTITION_FETCH_BYTES,
        max_poll_records=BATCH,
        check_crcs=True,
    )
    tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
    consumer.assign(tps)
    consumer.seek_to_beginning(*tps)
    expired = _deadline(timeout)
    count = nbytes = 0
    start = time.perf_counter()
    while count < records and not expired():
        for batch in consumer.poll(timeout_ms=1000).values():
            for record in batch:
                count += 1
                nbytes += len(record.value or b"")
    elapsed = time.perf_counter() - start
    consumer.close()
    return _consumed(count, nbytes, elapsed)


def consume_aiokafka(bootstrap: str, topic: str, records: int, timeout: float) -> dict[str, Any]:
    import asyncio

    from aiokafka import AIOKafkaConsumer, TopicPartition

    async def main() -> dict[str, Any]:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_bytes=FETCH_MAX_BYTES,
            max_partition_fetch_bytes=PARTITION_FETCH_BYTES,
            check_crcs=True,
        )
        await consumer.start()
        try:
            tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            expired = _deadline(timeout)
            count = nbytes = 0
            start = time.perf_counter()
            while count < records and not expired():
                got = await consumer.getmany(timeout_ms=1000, max_records=BATCH)
                for batch in got.values():
                    for record in batch:
                        count += 1
                        nbytes += len(record.value or b"")
            return _consumed(count, nbytes, time.perf_counter() - start)
        finally:
            await consumer.stop()

    return asyncio.run(main())


def consume_confluent(bootstrap: str, topic: str, records: int, timeout: float) -> dict[str, Any]:
    from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, TopicPartition

    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"bench-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
            "check.crcs": True,
            "fetch.max.bytes": FETCH_MAX_BYTES,
            "max.partition.fetch.bytes": PARTITION_FETCH_BYTES,
            # The default (1000 ms) pauses a partition's fetching for a second whenever the
            # local queue passes queued.min.messages: it halves the rate of a fast reader.
            "fetch.queue.backoff.ms": 10,
        }
    )
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(PARTITIONS)])
    expired = _deadline(timeout)
    count = nbytes = 0
    start = time.perf_counter()
    while count < records and not expired():
        for msg in consumer.consume(num_messages=min(BATCH, records - count), timeout=1.0):
            if msg.error():
                raise KafkaException(msg.error())
            count += 1
            nbytes += len(msg.value() or b"")
    elapsed = time.perf_counter() - start
    consumer.close()
    return _consumed(count, nbytes, elapsed)


# ---- produce: each runner sends `records` records to `topic` (partition i % 4, a key out of
# 1000, a value out of POOL) and returns the _Tally result: acknowledged count, failures,
# the first error, seconds from the first send to the end of flush.


def produce_blocking(
    bootstrap: str, topic: str, records: int, codec: str, timeout: float
) -> dict[str, Any]:
    from kafka_sansio.transports.blocking import Producer

    values, keys = _payloads()
    tally = _Tally()

    def delivered(_meta: object, error: object) -> None:
        tally.outcome(error)

    producer = Producer(bootstrap, **_sansio_producer_options(codec))
    start = time.perf_counter()
    send = producer.send
    for i in range(records):
        send(topic, values[i % POOL], key=keys[i % KEYS], partition=i % PARTITIONS,
             on_delivery=delivered)  # fmt: skip
    producer.flush(timeout)
    elapsed = time.perf_counter() - start
    producer.close()
    return tally.result(elapsed)


async def _produce_async(
    flavour: Any, bootstrap: str, topic: str, records: int, codec: str, timeout: float
) -> dict[str, Any]:
    values, keys = _payloads()
    tally = _Tally()

    def delivered(_meta: object, error: object) -> None:
        tally.outcome(error)

    async with flavour.Producer(bootstrap, **_sansio_producer_options(codec)) as producer:
        start = time.perf_counter()
        send = producer.send
        for i in range(records):
            await send(topic, values[i % POOL], key=keys[i % KEYS], partition=i % PARTITIONS,
                       on_delivery=delivered)  # fmt: skip
        await producer.flush(timeout)
        elapsed = time.perf_counter() - start
    return tally.result(elapsed)


def produce_asyncio(
    bootstrap: str, topic: str, records: int, codec: str, timeout: float
) -> dict[str, Any]:
    import asyncio

    import kafka_sansio.transports.asyncio as flavour

    return asyncio.run(_produce_async(flavour, bootstrap, topic, records, codec, timeout))


def produce_trio(
    bootstrap: str, topic: str, records: int, codec: str, timeout: float
) -> dict[str, Any]:
    import kafka_sansio.transports.trio as flavour
    import trio

    return trio.run(_produce_async, flavour, bootstrap, topic, records, codec, timeout)  # type: ignore[no-any-return]


def produce_kafka_python(
    bootstrap: str, topic: str, records: int, codec: str, timeout: float
) -> dict[str, Any]:
    from kafka import KafkaProducer

    values, keys = _payloads()
    tally = _Tally()

    def ok(_meta: object) -> None:
        tally.outcome(None)

    producer = KafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        linger_ms=PRODUCE_LINGER_MS,
        batch_size=PRODUCE_BATCH_BYTES,
        compression_type=None if codec == "none" else codec,
        enable_idempotence=True,
    )
    start = time.perf_counter()
    for i in range(records):
        future = producer.send(topic, values[i % POOL], keys[i % KEYS], partition=i % PARTITIONS)
        future.add_callback(ok)
        future.add_errback(tally.outcome)
    producer.flush(timeout)
    elapsed = time.perf_counter() - start
    producer.close()
    return tally.result(elapsed)


def produce_aiokafka(
    bootstrap: str, topic: str, records: int, codec: str, timeout: float
) -> dict[str, Any]:
    import asyncio

    from aiokafka import AIOKafkaProducer

    values, keys = _payloads()
    tally = _Tally()

    def delivered(future: asyncio.Future[Any]) -> None:
        tally.outcome("cancelled" if future.cancelled() else future.exception())

    async def main() -> dict[str, Any]:
        producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap,
            acks="all",
            linger_ms=PRODUCE_LINGER_MS,
            max_batch_size=PRODUCE_BATCH_BYTES,
            compression_type=None if codec == "none" else codec,
            enable_idempotence=True,
        )
        await producer.start()
        try:
            start = time.perf_counter()
            for i in range(records):
                future = await producer.send(
                    topic, values[i % POOL], keys[i % KEYS], partition=i % PARTITIONS
                )
                future.add_done_callback(delivered)
            await asyncio.wait_for(producer.flush(), timeout)
            await asyncio.sleep(0)  # let the last done-callbacks run
            return tally.result(time.perf_counter() - start)
        finally:
            await producer.stop()

    return asyncio.run(main())


def produce_confluent(
    bootstrap: str, topic: str, records: int, codec: str, timeout: float
) -> dict[str, Any]:
    from confluent_kafka import Producer

    values, keys = _payloads()
    tally = _Tally()

    def delivered(error: object, _msg: object) -> None:
        tally.outcome(error)

    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "acks": "all",
            "enable.idempotence": True,
            "linger.ms": PRODUCE_LINGER_MS,
            "batch.size": PRODUCE_BATCH_BYTES,
            "compression.type": codec,
        }
    )
    start = time.perf_counter()
    for i in range(records):
        while True:
            try:
                producer.produce(topic, values[i % POOL], keys[i % KEYS],
                                 partition=i % PARTITIONS, on_delivery=delivered)  # fmt: skip
                break
            except BufferError:
                producer.poll(0.01)
        if not i % 1000:
            producer.poll(0)
    left = producer.flush(timeout)
    elapsed = time.perf_counter() - start
    if left:
        tally.error = tally.error or f"{left} records still queued after flush"
    return tally.result(elapsed)


# ---- latency: each runner sends `rate` records/s for `warmup + seconds` seconds, each value
# starting with its send time (perf_counter), and reads them back in the same process.


def _stamped(pad: bytes = b"x" * (VALUE_SIZE - 8)) -> bytes:
    return struct.pack(">d", time.perf_counter()) + pad


class _Latencies:
    """Receive times minus send times, of records sent after the warm-up."""

    def __init__(self, total: int, warmup: float) -> None:
        self.total = total
        self.received = 0
        self.start = 0.0  # perf_counter of the first send, set by the sender
        self.warmup = warmup
        self.samples: list[float] = []
        self.unpack = struct.Struct(">d").unpack_from

    def got(self, values: list[bytes]) -> None:
        now = time.perf_counter()
        cutoff = self.start + self.warmup
        for value in values:
            sent = self.unpack(value)[0]
            if sent >= cutoff:
                self.samples.append(now - sent)
        self.received += len(values)

    def result(self) -> dict[str, Any]:
        samples = sorted(self.samples)
        out: dict[str, Any] = {"count": self.received, "sent": self.total, "samples": len(samples)}
        if samples:
            n = len(samples)
            out["p50_ms"] = samples[n // 2] * 1000
            out["p99_ms"] = samples[min(n - 1, int(n * 0.99))] * 1000
            out["max_ms"] = samples[-1] * 1000
        return out


def latency_blocking(
    bootstrap: str, topic: str, rate: float, seconds: float, warmup: float, timeout: float
) -> dict[str, Any]:
    import threading

    from kafka_sansio.transports.blocking import Consumer, Producer

    from kafka_sansio import TopicPartition

    total = int(rate * (seconds + warmup))
    lat = _Latencies(total, warmup)
    consumer = Consumer(bootstrap, auto_offset_reset="earliest")
    consumer.assign([TopicPartition(topic, p) for p in range(PARTITIONS)])
    producer = Producer(bootstrap, acks="all", linger=0)
    failures: list[BaseException] = []

    def sender() -> None:
        try:
            lat.start = start = time.perf_counter()
            for i in range(total):
                target = start + i / rate
                while (now := time.perf_counter()) < target:
                    producer.poll(target - now)
                producer.send(topic, _stamped(), partition=i % PARTITIONS)
                producer.poll(0)
            producer.flush(timeout)
        except BaseException as exc:  # reported by the main thread
            failures.append(exc)

    thread = threading.Thread(target=sender)
    thread.start()
    expired = _deadline(seconds + warmup + timeout)
    while lat.received < total and not expired() and not failures:
        lat.got([record.value for _tp, record in consumer.poll(0.1)])
    thread.join()
    producer.close()
    consumer.close()
    if failures:
        raise failures[0]
    return lat.result()


async def _latency_async(
    flavour: Any,
    sleep_until: Callable[[float], Any],
    spawn: Callable[..., Any],
    bootstrap: str,
    topic: str,
    rate: float,
    seconds: float,
    warmup: float,
    timeout: float,
) -> dict[str, Any]:
    from kafka_sansio import TopicPartition

    total = int(rate * (seconds + warmup))
    lat = _Latencies(total, warmup)
    async with (
        flavour.Consumer(bootstrap, auto_offset_reset="earliest") as consumer,
        flavour.Producer(bootstrap, acks="all", linger=0) as producer,
    ):
        consumer.assign([TopicPartition(topic, p) for p in range(PARTITIONS)])

        async def sender() -> None:
            lat.start = start = time.perf_counter()
            for i in range(total):
                await sleep_until(start + i / rate)
                await producer.send(topic, _stamped(), partition=i % PARTITIONS)
            await producer.flush(timeout)

        async def receiver() -> None:
            expired = _deadline(seconds + warmup + timeout)
            while lat.received < total and not expired():
                lat.got([record.value for _tp, record in await consumer.poll(0.1)])

        await spawn(sender, receiver)
    return lat.result()


def latency_asyncio(
    bootstrap: str, topic: str, rate: float, seconds: float, warmup: float, timeout: float
) -> dict[str, Any]:
    import asyncio

    import kafka_sansio.transports.asyncio as flavour

    async def sleep_until(when: float) -> None:
        await asyncio.sleep(max(0.0, when - time.perf_counter()))

    async def both(*tasks: Callable[[], Any]) -> None:
        await asyncio.gather(*(task() for task in tasks))

    args = (bootstrap, topic, rate, seconds, warmup, timeout)
    return asyncio.run(_latency_async(flavour, sleep_until, both, *args))


def latency_trio(
    bootstrap: str, topic: str, rate: float, seconds: float, warmup: float, timeout: float
) -> dict[str, Any]:
    import kafka_sansio.transports.trio as flavour
    import trio

    async def sleep_until(when: float) -> None:
        await trio.sleep(max(0.0, when - time.perf_counter()))

    async def both(*tasks: Callable[[], Any]) -> None:
        async with trio.open_nursery() as nursery:
            for task in tasks:
                nursery.start_soon(task)

    args = (bootstrap, topic, rate, seconds, warmup, timeout)
    return trio.run(_latency_async, flavour, sleep_until, both, *args)  # type: ignore[no-any-return]


def latency_kafka_python(
    bootstrap: str, topic: str, rate: float, seconds: float, warmup: float, timeout: float
) -> dict[str, Any]:
    import threading

    from kafka import KafkaConsumer, KafkaProducer, TopicPartition

    total = int(rate * (seconds + warmup))
    lat = _Latencies(total, warmup)
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
        auto_offset_reset="earliest",
    )  # fmt: skip
    consumer.assign([TopicPartition(topic, p) for p in range(PARTITIONS)])
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=0)
    failures: list[BaseException] = []

    def sender() -> None:
        try:
            lat.start = start = time.perf_counter()
            for i in range(total):
                wait = start + i / rate - time.perf_counter()
                if wait > 0:
                    time.sleep(wait)
                producer.send(topic, _stamped(), partition=i % PARTITIONS)
            producer.flush(timeout)
        except BaseException as exc:
            failures.append(exc)

    thread = threading.Thread(target=sender)
    thread.start()
    expired = _deadline(seconds + warmup + timeout)
    while lat.received < total and not expired() and not failures:
        for batch in consumer.poll(timeout_ms=100).values():
            lat.got([record.value for record in batch])
    thread.join()
    producer.close()
    consumer.close()
    if failures:
        raise failures[0]
    return lat.result()


def latency_aiokafka(
    bootstrap: str, topic: str, rate: float, seconds: float, warmup: float, timeout: float
) -> dict[str, Any]:
    import asyncio

    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

    total = int(rate * (seconds + warmup))
    lat = _Latencies(total, warmup)

    async def main() -> None:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
            auto_offset_reset="earliest",
        )  # fmt: skip
        producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap, acks="all", linger_ms=0, enable_idempotence=True
        )
        await consumer.start()
        await producer.start()
        try:
            consumer.assign([TopicPartition(topic, p) for p in range(PARTITIONS)])

            async def sender() -> None:
                lat.start = start = time.perf_counter()
                for i in range(total):
                    await asyncio.sleep(max(0.0, start + i / rate - time.perf_counter()))
                    await producer.send(topic, _stamped(), partition=i % PARTITIONS)
                await asyncio.wait_for(producer.flush(), timeout)

            async def receiver() -> None:
                expired = _deadline(seconds + warmup + timeout)
                while lat.received < total and not expired():
                    got = await consumer.getmany(timeout_ms=100)
                    for batch in got.values():
                        lat.got([record.value for record in batch])

            await asyncio.gather(sender(), receiver())
        finally:
            await producer.stop()
            await consumer.stop()

    asyncio.run(main())
    return lat.result()


def latency_confluent(
    bootstrap: str, topic: str, rate: float, seconds: float, warmup: float, timeout: float
) -> dict[str, Any]:
    import threading

    from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, Producer, TopicPartition

    total = int(rate * (seconds + warmup))
    lat = _Latencies(total, warmup)
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"bench-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
        }
    )
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(PARTITIONS)])
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "acks": "all",
            "enable.idempotence": True,
            "linger.ms": 0,
        }
    )
    failures: list[BaseException] = []

    def sender() -> None:
        try:
            lat.start = start = time.perf_counter()
            for i in range(total):
                while (wait := start + i / rate - time.perf_counter()) > 0:
                    producer.poll(wait)
                producer.produce(topic, _stamped(), partition=i % PARTITIONS)
                producer.poll(0)
            if producer.flush(timeout):
                raise RuntimeError("records still queued after flush")
        except BaseException as exc:
            failures.append(exc)

    thread = threading.Thread(target=sender)
    thread.start()
    expired = _deadline(seconds + warmup + timeout)
    while lat.received < total and not expired() and not failures:
        # poll, not consume(num_messages=...): consume waits for the whole batch or the timeout
        msg = consumer.poll(0.1)
        if msg is not None:
            if msg.error():
                raise KafkaException(msg.error())
            lat.got([msg.value()])
    thread.join()
    consumer.close()
    if failures:
        raise failures[0]
    return lat.result()


RUNNERS: dict[str, dict[str, Callable[..., dict[str, Any]]]] = {
    "consume": {
        "blocking": consume_blocking,
        "asyncio": consume_asyncio,
        "trio": consume_trio,
        "kafka-python": consume_kafka_python,
        "aiokafka": consume_aiokafka,
        "confluent-kafka": consume_confluent,
    },
    "produce": {
        "blocking": produce_blocking,
        "asyncio": produce_asyncio,
        "trio": produce_trio,
        "kafka-python": produce_kafka_python,
        "aiokafka": produce_aiokafka,
        "confluent-kafka": produce_confluent,
    },
    "latency": {
        "blocking": latency_blocking,
        "asyncio": latency_asyncio,
        "trio": latency_trio,
        "kafka-python": latency_kafka_python,
        "aiokafka": latency_aiokafka,
        "confluent-kafka": latency_confluent,
    },
}


# ---- jobs that prepare and inspect topics (confluent-kafka's admin client)


def prepare(bootstrap: str, topic: str, records: int, codec: str) -> dict[str, Any]:
    """Create ``topic`` and fill it with ``records`` records compressed with ``codec``."""
    from confluent_kafka import Producer

    create_topics(bootstrap, [topic])
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "compression.type": codec,
            "linger.ms": 100,
            "batch.size": 900_000,
            "batch.num.messages": 100_000,
            "queue.buffering.max.messages": 1_000_000,
            "queue.buffering.max.kbytes": 1_048_576,
            "acks": 1,
        }
    )
    start = time.perf_counter()
    for i in range(records):
        while True:
            try:
                producer.produce(topic, _value(i), b"k%d" % (i % KEYS), partition=i % PARTITIONS)
                break
            except BufferError:
                producer.poll(0.05)
    if producer.flush(120):
        raise RuntimeError("produce did not finish")
    seconds = time.perf_counter() - start
    stored = watermarks(bootstrap, [topic])["stored"][topic]
    if stored != records:
        raise RuntimeError(f"topic {topic} holds {stored} records, expected {records}")
    return {"topic": topic, "codec": codec, "records": records, "produce_seconds": seconds}


def create_topics(bootstrap: str, topics: list[str]) -> dict[str, Any]:
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    new = [NewTopic(topic, PARTITIONS, 1) for topic in topics]
    for future in admin.create_topics(new).values():
        future.result(timeout=60)
    return {"created": topics}


def watermarks(bootstrap: str, topics: list[str]) -> dict[str, Any]:
    """How many records each topic holds (sum of the partitions' high watermarks)."""
    from confluent_kafka import Consumer, TopicPartition

    probe = Consumer({"bootstrap.servers": bootstrap, "group.id": "bench-probe"})
    stored = {
        topic: sum(
            probe.get_watermark_offsets(TopicPartition(topic, p), timeout=30)[1]
            for p in range(PARTITIONS)
        )
        for topic in topics
    }
    probe.close()
    return {"stored": stored}


def delete_topics(bootstrap: str, topics: list[str]) -> dict[str, Any]:
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.delete_topics(topics).values():
        future.result(timeout=60)
    return {"deleted": topics}


JOBS: dict[str, Callable[..., dict[str, Any]]] = {
    "prepare": prepare,
    "create": create_topics,
    "watermarks": watermarks,
    "delete": delete_topics,
}


def _peak_rss_kb() -> int:
    """This process's own high-water RSS (VmHWM), which fork inheritance does not inflate."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def child_main(argv: list[str]) -> int:
    job = json.loads(argv[0])
    kind = job.pop("kind")
    if kind in JOBS:
        result = JOBS[kind](**job)
    else:
        client = job.pop("client")
        if client.endswith(PURE):
            from kafka_sansio.records import use_pure_crc32c

            use_pure_crc32c(True)
        profile = job.pop("profile", None)
        runner = RUNNERS[kind][_base(client)]
        if profile is None:
            result = runner(**job)
        else:  # --profile: the same run under cProfile (slower), its stats to a file
            import cProfile

            profiler = cProfile.Profile()
            result = profiler.runcall(runner, **job)
            profiler.dump_stats(profile)
        result["vmhwm_kb"] = _peak_rss_kb()
    print(json.dumps(result), flush=True)
    return 0


# ---------------------------------------------------------------------------- parent side


def spawn(job: dict[str, Any], timeout: float) -> dict[str, Any]:
    """Run ``job`` in a fresh interpreter; its JSON answer plus the peak RSS from ``wait4``."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        cmd = [sys.executable, str(Path(__file__).resolve()), "--child", json.dumps(job)]
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, cwd=ROOT)
        deadline = time.monotonic() + timeout
        pid = status = 0
        while pid == 0:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid == 0:
                if time.monotonic() > deadline:
                    proc.kill()
                    pid, status, usage = os.wait4(proc.pid, 0)
                    status = -1
                    break
                time.sleep(0.05)
        proc.returncode = 0  # reaped here; keep Popen from waiting again
        out.seek(0)
        err.seek(0)
        text, errors = out.read().decode(), err.read().decode()
    result: dict[str, Any] = {"maxrss_kb": usage.ru_maxrss}
    if status == -1:
        result["error"] = f"timed out after {timeout:.0f}s"
    elif status != 0:
        # the last line of the traceback (librdkafka's log lines start with "%")
        lines = [line for line in errors.strip().splitlines() if not line.startswith("%")]
        tail = lines[-1:] or [f"exit status {status}"]
        result["error"] = tail[0][:300]
    else:
        result.update(json.loads(text.strip().splitlines()[-1]))
        if result.get("error") is None:
            result.pop("error", None)
    return result


def _checked(job: dict[str, Any], timeout: float) -> dict[str, Any]:
    """A preparation job that must succeed."""
    result = spawn(job, timeout)
    if "error" in result:
        raise SystemExit(f"{job['kind']} failed: {result['error']}")
    return result


class Broker:
    """A throwaway single-node broker from ``scripts/kafka-cluster`` (or a given bootstrap)."""

    def __init__(self, bootstrap: str | None) -> None:
        self.bootstrap = bootstrap
        self.dir: str | None = None
        self.kafka_version = "unknown (external cluster)"

    def __enter__(self) -> Broker:
        if self.bootstrap is None:
            self.dir = tempfile.mkdtemp(prefix="bench-clients-kc-")
            tool = [sys.executable, str(ROOT / "scripts" / "kafka-cluster")]
            up = [*tool, "up", "--nodes", "1", "--dir", self.dir, "--owner-pid", str(os.getpid())]
            line = subprocess.run(up, check=True, capture_output=True, text=True).stdout
            info = json.loads(line.strip().splitlines()[-1])
            self.bootstrap = info["bootstrap"]
            self.kafka_version = info["kafka_version"]
        return self

    def __exit__(self, *exc: object) -> None:
        if self.dir is not None:
            tool = [sys.executable, str(ROOT / "scripts" / "kafka-cluster")]
            subprocess.run([*tool, "down", "--dir", self.dir], check=False, capture_output=True)


def _versions() -> dict[str, str]:
    names = ["kafka-sansio", "kafka-python", "aiokafka", "confluent-kafka", "crc32c"]
    names += ["lz4", "zstandard", "cramjam", "trio"]
    found = {}
    for name in names:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def _spread(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def summarize(
    runs: list[dict[str, Any]], clients: list[str], codecs: list[str], metric: str
) -> list[dict[str, Any]]:
    """Per (client, codec): runs, failures, median/min/max of ``metric``, max RSS, ratio.

    ``metric`` is "rate" (records/s, ratio = median / baseline's) or "p99_ms" (latency:
    the p50 and max spread are added too, ratio = baseline's p99 / this p99, so above 1
    is better in both)."""
    rows = []
    for codec in codecs:
        group = []
        for client in clients:
            mine = [r for r in runs if r["client"] == client and r["codec"] == codec]
            good = [r for r in mine if r["ok"]]
            row: dict[str, Any] = {
                "client": client,
                "codec": codec,
                "runs": len(mine),
                "ok": len(good),
                "failures": [r["error"] for r in mine if not r["ok"]],
            }
            if good:
                row |= _spread([r[metric] for r in good])
                row["maxrss_mb"] = max(r["maxrss_kb"] for r in good) / 1024
                if metric == "p99_ms":
                    row["p50_ms"] = _spread([r["p50_ms"] for r in good])
                    row["max_ms"] = max(r["max_ms"] for r in good)
            group.append(row)
        base = next((r.get("median") for r in group if r["client"] == BASELINE), None)
        for row in group:
            if base and row.get("median"):
                row["ratio"] = row["median"] / base if metric == "rate" else base / row["median"]
        rows += group
    return rows


def render_rates(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| client | codec | records/s (median) | min..max | max RSS MB | vs blocking |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for row in rows:
        label = CLIENTS[row["client"]]
        if "median" not in row:
            lines.append(f"| {label} | {row['codec']} | FAILED: {row['failures'][0]} | | | |")
            continue
        failed = row["runs"] - row["ok"]
        note = f" ({failed} of {row['runs']} runs failed)" if failed else ""
        ratio = f"{row['ratio']:.2f}x" if "ratio" in row else "-"
        lines.append(
            f"| {label} | {row['codec']} | {row['median']:,.0f}{note} | "
            f"{row['min']:,.0f}..{row['max']:,.0f} | {row['maxrss_mb']:.0f} | {ratio} |"
        )
    return "\n".join(lines)


def render_latency(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| client | p50 ms (median) | p99 ms (median) | p99 min..max | max ms | max RSS MB "
        "| p99 vs blocking |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in rows:
        label = CLIENTS[row["client"]]
        if "median" not in row:
            lines.append(f"| {label} | FAILED: {row['failures'][0]} | | | | | |")
            continue
        failed = row["runs"] - row["ok"]
        note = f" ({failed} of {row['runs']} runs failed)" if failed else ""
        ratio = f"{row['ratio']:.2f}x" if "ratio" in row else "-"
        lines.append(
            f"| {label} | {row['p50_ms']['median']:.1f} | {row['median']:.1f}{note} | "
            f"{row['min']:.1f}..{row['max']:.1f} | {row['max_ms']:.1f} | "
            f"{row['maxrss_mb']:.0f} | {ratio} |"
        )
    return "\n".join(lines)


def targets(report: dict[str, Any]) -> list[dict[str, Any]]:
    """Per workload and codec: the fastest adapter (with the fast CRC) against each peer."""
    found = []
    for workload in ("consume", "produce"):
        if workload not in report:
            continue
        rows = report[workload]["summary"]
        for codec in report[workload]["codecs"]:
            med = {r["client"]: r.get("median") for r in rows if r["codec"] == codec}
            ours = {c: med[c] for c in ADAPTERS if med.get(c)}
            if not ours:
                continue
            best = max(ours, key=lambda c: ours[c])
            item: dict[str, Any] = {"workload": workload, "codec": codec, "best": best}
            item["rate"] = ours[best]
            for peer in PEERS:
                if med.get(peer):
                    item[peer] = ours[best] / med[peer]
            found.append(item)
    return found


def render_targets(items: list[dict[str, Any]]) -> str:
    def ratio(item: dict[str, Any], peer: str) -> str:
        return f"{item[peer]:.2f}x" if peer in item else "-"

    lines = [
        "| workload | codec | fastest adapter | vs aiokafka (aim >= 1) | "
        "vs kafka-python (aim >= 5) | vs confluent-kafka |",
        "| --- | --- | --- | ---: | ---: | ---: |",
    ]
    for item in items:
        lines.append(
            f"| {item['workload']} | {item['codec']} | {CLIENTS[item['best']]} | "
            f"{ratio(item, 'aiokafka')} | {ratio(item, 'kafka-python')} | "
            f"{ratio(item, 'confluent-kafka')} |"
        )
    return "\n".join(lines)


def render_text(report: dict[str, Any]) -> str:
    env, parts = report["environment"], []
    params = report["params"]
    parts.append(
        f"Measured {env['date']} with `{report['command']}`; Apache Kafka "
        f"{env['kafka_version']} (one node, loopback), Python {env['python']}, "
        f"{env['cpu_count']} CPU cores; {params['rounds']} interleaved rounds. "
        "Ratios are to kafka-sansio blocking (above 1 = better)."
    )
    if "consume" in report:
        parts += [
            "",
            f"### Consume: {params['records']:,} records of {VALUE_SIZE} bytes, "
            f"{PARTITIONS} partitions, assigned from the beginning",
            "",
            render_rates(report["consume"]["summary"]),
        ]
    if "produce" in report:
        parts += [
            "",
            f"### Produce: {params['records']:,} records of {VALUE_SIZE} bytes, acks=all, "
            f"to {PARTITIONS} partitions (every acknowledgement counted)",
            "",
            render_rates(report["produce"]["summary"]),
        ]
    if "latency" in report:
        parts += [
            "",
            f"### End-to-end latency: {params['latency_rate']:,.0f} records/s for "
            f"{params['latency_seconds']:g} s after {params['latency_warmup']:g} s of warm-up, "
            "producer and consumer in one process",
            "",
            render_latency(report["latency"]["summary"]),
        ]
    if report.get("targets"):
        parts += ["", "### The fastest adapter against each peer (median rates)", ""]
        parts.append(render_targets(report["targets"]))
    memory = report.get("memory")
    if memory:
        parts += ["", "### Peak RSS of kafka-sansio blocking by topic size (codec none)", ""]
        parts += ["| records in topic | max RSS MB | records/s |", "| ---: | ---: | ---: |"]
        for item in memory:
            rate = f"{item['rate']:,.0f}" if item.get("ok") else "failed"
            parts.append(f"| {item['records']:,} | {item['maxrss_kb'] / 1024:.0f} | {rate} |")
    parts += ["", "Settings per client:", ""]
    for workload in WORKLOADS:
        if workload in report:
            parts.append(f"- {workload}:")
            parts += [f"  - {CLIENTS[c]}: {_describe(workload, c)}"
                      for c in report[workload]["clients"]]  # fmt: skip
    parts += ["", "Package versions: " + ", ".join(f"{k} {v}" for k, v in env["packages"].items())]
    return "\n".join(parts)


def write_markdown(path: Path, report: dict[str, Any]) -> None:
    block = render_text(report)
    begin, end = "<!-- results:begin -->", "<!-- results:end -->"
    text = path.read_text() if path.exists() else f"# Client benchmarks\n\n{begin}\n{end}\n"
    if begin not in text:
        text += f"\n{begin}\n{end}\n"
    head, rest = text.split(begin, 1)
    tail = rest.split(end, 1)[1]
    path.write_text(f"{head}{begin}\n{block}\n{end}{tail}")


def write_chart(path: Path, report: dict[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [w for w in ("consume", "produce") if w in report]
    if not panels:
        return
    env = report["environment"]
    fig, axes = plt.subplots(1, len(panels), figsize=(7 * len(panels), 5), squeeze=False)
    for ax, workload in zip(axes[0], panels, strict=True):
        clients, codecs = report[workload]["clients"], report[workload]["codecs"]
        width = 0.8 / len(clients)
        for i, client in enumerate(clients):
            rows = {r["codec"]: r for r in report[workload]["summary"] if r["client"] == client}
            xs = [j + (i - (len(clients) - 1) / 2) * width for j in range(len(codecs))]
            med = [rows[c].get("median", 0) / 1000 for c in codecs]
            low = [m - rows[c].get("min", 0) / 1000 for m, c in zip(med, codecs, strict=True)]
            high = [rows[c].get("max", 0) / 1000 - m for m, c in zip(med, codecs, strict=True)]
            ax.bar(xs, med, width, yerr=[low, high], capsize=2, label=CLIENTS[client])
            for x, codec in zip(xs, codecs, strict=True):
                if "median" not in rows[codec]:
                    ax.text(x, 0, " failed", rotation=90, ha="center", va="bottom", fontsize=7)
        ax.set_xticks(range(len(codecs)), [f"compression: {c}" for c in codecs])
        ax.set_ylabel("thousand records/s (median, min..max)")
        ax.set_title(f"{workload.capitalize()} {report['params']['records']:,} x {VALUE_SIZE} B")
        ax.grid(axis="y", alpha=0.3)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=5, fontsize=8)
    fig.suptitle(
        f"kafka-sansio and peers, Apache Kafka {env['kafka_version']}, "
        f"{env['cpu_count']} CPU cores ({env['date']})"
    )
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _csv(text: str) -> list[str]:
    return [item for item in text.split(",") if item]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bootstrap", help="use this cluster instead of starting a broker")
    parser.add_argument("--records", type=int, help="consume and produce N (1,000,000)")
    parser.add_argument("--rounds", type=int, help="3")
    parser.add_argument("--workloads", type=_csv, default=list(WORKLOADS))
    parser.add_argument("--codecs", type=_csv, help="consume codecs (none,lz4,zstd)")
    parser.add_argument("--produce-codecs", type=_csv, help="none,lz4")
    parser.add_argument("--latency-rate", type=float, help="records/s (2000)")
    parser.add_argument("--latency-seconds", type=float, help="measured seconds (10)")
    parser.add_argument("--latency-warmup", type=float, help=f"seconds left out ({WARMUP:g})")
    parser.add_argument("--clients", type=_csv, default=list(CLIENTS), help=", ".join(CLIENTS))
    parser.add_argument(
        "--quick",
        action="store_true",
        help="defaults for a try-out: 20k records, 1 round, codec none, latency 500/s for 2 s",
    )
    parser.add_argument(
        "--memory-records",
        type=lambda text: [int(n) for n in text.split(",")],
        default=[],
        help="e.g. 5000000: also run kafka-sansio blocking once on topics this large "
        "(codec none) to show peak RSS against topic size",
    )
    parser.add_argument("--out", help="where the results go (default docs/; --quick: nowhere)")
    parser.add_argument(
        "--profile",
        metavar="DIR",
        help="run kafka-sansio's clients under cProfile, one .prof file per run in DIR, and "
        "print their top entries (their figures are then not comparable; nothing is written "
        "to --out)",
    )
    args = parser.parse_args()
    # name: (full run default, --quick default); an option given explicitly wins
    defaults: dict[str, tuple[Any, Any]] = {
        "records": (1_000_000, 20_000),
        "rounds": (3, 1),
        "codecs": (["none", "lz4", "zstd"], ["none"]),
        "produce_codecs": (["none", "lz4"], ["none"]),
        "latency_rate": (2000.0, 500.0),
        "latency_seconds": (10.0, 2.0),
        "latency_warmup": (WARMUP, 0.5),
    }
    for name, (full, quick) in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, quick if args.quick else full)
    clients = args.clients
    unknown = [c for c in clients if c not in CLIENTS] + [
        w for w in args.workloads if w not in WORKLOADS
    ]
    if unknown:
        parser.error(f"unknown {unknown}; clients: {', '.join(CLIENTS)}; workloads: {WORKLOADS}")
    # the pure-CRC variants change nothing in a latency run at 2,000 records/s
    per_workload = {
        "consume": (clients, args.codecs),
        "produce": (clients, args.produce_codecs),
        "latency": ([c for c in clients if not c.endswith(PURE)], ["none"]),
    }
    workloads = [w for w in WORKLOADS if w in args.workloads and per_workload[w][0]]
    out = Path(args.out) if args.out else (None if args.quick else ROOT / "docs")
    profiles = Path(args.profile).resolve() if args.profile else None
    if profiles is not None:
        profiles.mkdir(parents=True, exist_ok=True)
        out = None
    n = args.records
    timeout = 120 + n / 5_000  # generous: kafka-python is the slow one
    lat_timeout = 30.0
    command = "python benchmarks/bench_clients.py " + shlex.join(sys.argv[1:])

    def say(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # so the broker is downed
    runs: dict[str, list[dict[str, Any]]] = {w: [] for w in workloads}
    memory: list[dict[str, Any]] = []
    with Broker(args.bootstrap) as broker:
        bootstrap = broker.bootstrap
        assert bootstrap is not None
        say(f"broker {bootstrap}, Kafka {broker.kafka_version}")
        tag = uuid.uuid4().hex[:6]
        kept: list[str] = []  # topics deleted at the end (for an external cluster)
        consume_topics = {}
        if "consume" in workloads:
            for codec in args.codecs:
                topic = f"bench-{codec}-{n}-{tag}"
                job = {"kind": "prepare", "bootstrap": bootstrap, "topic": topic}
                made = _checked(job | {"records": n, "codec": codec}, timeout)
                say(f"prepared {topic} in {made['produce_seconds']:.1f}s")
                consume_topics[codec] = topic
                kept.append(topic)
                # one unrecorded read, so that no client's run is the one warming the broker
                job = {"kind": "consume", "client": BASELINE, "bootstrap": bootstrap}
                spawn(job | {"topic": topic, "records": n, "timeout": timeout}, timeout + 60)
        for round_no in range(1, args.rounds + 1):
            # fresh topics for this round's produce and latency runs, deleted after it
            fresh: dict[tuple[str, str, str], str] = {}
            for workload in ("produce", "latency"):
                if workload in workloads:
                    wclients, wcodecs = per_workload[workload]
                    for codec in wcodecs:
                        for client in wclients:
                            name = f"bench-{workload[:3]}-{client}-{codec}-r{round_no}-{tag}"
                            fresh[workload, client, codec] = name
            if fresh:
                _checked(
                    {"kind": "create", "bootstrap": bootstrap, "topics": [*fresh.values()]}, 180
                )
            for workload in workloads:
                wclients, wcodecs = per_workload[workload]
                turn = (round_no - 1) % len(wclients)  # each round starts with another client
                for codec in wcodecs:
                    for client in wclients[turn:] + wclients[:turn]:
                        job: dict[str, Any] = {"kind": workload, "client": client}
                        job["bootstrap"] = bootstrap
                        if workload == "consume":
                            job |= {"topic": consume_topics[codec], "records": n}
                            job["timeout"] = timeout
                            limit = timeout + 60
                        elif workload == "produce":
                            job |= {"topic": fresh[workload, client, codec], "records": n}
                            job |= {"codec": codec, "timeout": timeout}
                            limit = timeout + 60
                        else:
                            job["topic"] = fresh[workload, client, codec]
                            job |= {"rate": args.latency_rate, "seconds": args.latency_seconds}
                            job |= {"warmup": args.latency_warmup, "timeout": lat_timeout}
                            limit = args.latency_seconds + args.latency_warmup + lat_timeout + 90
                        if profiles is not None and _base(client) in ADAPTERS:
                            name = f"{workload}-{client}-{codec}-r{round_no}.prof"
                            job["profile"] = str(profiles / name)
                        res = spawn(job, limit)
                        res |= {"round": round_no, "codec": codec, "client": client}
                        res["workload"] = workload
                        runs[workload].append(res)
                        _judge(res, workload, n, bootstrap, job["topic"])
                        rss = res["maxrss_kb"] / 1024
                        say(
                            f"round {round_no} {workload:7} {codec:5} {client:17} "
                            f"{_shown(res)}  max RSS {rss:.0f} MB"
                        )
            if fresh:
                spawn({"kind": "delete", "bootstrap": bootstrap, "topics": [*fresh.values()]}, 180)
        if args.memory_records and "consume" in workloads and BASELINE in clients:
            mine = [r for r in runs["consume"] if r["client"] == BASELINE and r["codec"] == "none"]
            rates = [r["rate"] for r in mine if r["ok"]]
            if mine:
                memory.append(
                    {
                        "records": n,
                        "maxrss_kb": max(r["maxrss_kb"] for r in mine),
                        "ok": bool(rates),
                        "rate": statistics.median(rates) if rates else 0.0,
                        "from": "the main runs (largest of the rounds)",
                    }
                )
        for size in args.memory_records:
            topic = f"bench-none-{size}-{tag}"
            big_timeout = 120 + size / 5_000
            job = {"kind": "prepare", "bootstrap": bootstrap, "topic": topic}
            _checked(job | {"records": size, "codec": "none"}, big_timeout)
            kept.append(topic)
            job = {"kind": "consume", "client": BASELINE, "bootstrap": bootstrap, "topic": topic}
            res = spawn(job | {"records": size, "timeout": big_timeout}, big_timeout + 60)
            res |= {"records": size, "from": "a run of its own"}
            res["ok"] = "error" not in res and res["count"] == size
            res["rate"] = size / res["seconds"] if res["ok"] else 0.0
            say(f"memory: {size} records -> max RSS {res['maxrss_kb'] / 1024:.0f} MB")
            memory.append(res)
        if args.bootstrap and kept:
            spawn({"kind": "delete", "bootstrap": bootstrap, "topics": kept}, 180)
        kafka_version = broker.kafka_version

    report: dict[str, Any] = {
        "command": command,
        "params": {
            "records": n,
            "rounds": args.rounds,
            "value_size": VALUE_SIZE,
            "partitions": PARTITIONS,
            "latency_rate": args.latency_rate,
            "latency_seconds": args.latency_seconds,
            "latency_warmup": args.latency_warmup,
        },
        "environment": {
            "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "cpu_count": os.cpu_count(),
            "kafka_version": kafka_version,
            "python": platform.python_version(),
            "implementation": platform.python_implementation(),
            "platform": platform.platform(),
            "packages": _versions(),
        },
    }
    for workload in workloads:
        wclients, wcodecs = per_workload[workload]
        metric = "p99_ms" if workload == "latency" else "rate"
        report[workload] = {
            "clients": wclients,
            "codecs": wcodecs,
            "settings": {c: _describe(workload, c) for c in wclients},
            "summary": summarize(runs[workload], wclients, wcodecs, metric),
            "runs": runs[workload],
        }
    report["memory"] = memory
    report["targets"] = targets(report)
    print(render_text(report))
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "benchmarks.json").write_text(json.dumps(report, indent=2) + "\n")
        write_markdown(out / "benchmarks.md", report)
        write_chart(out / "benchmarks.png", report)
        say(f"wrote {out / 'benchmarks.json'}, benchmarks.md, benchmarks.png")
    if profiles is not None:
        _print_profiles(profiles)
    every = [r for w in workloads for r in runs[w]] + memory
    return 0 if all(r["ok"] for r in every) else 1


def _print_profiles(directory: Path, top: int = 15) -> None:
    import pstats

    for path in sorted(directory.glob("*.prof")):
        print(f"\n=== {path.name}: top {top} by own time")
        pstats.Stats(str(path)).sort_stats("tottime").print_stats(top)


def _judge(res: dict[str, Any], workload: str, n: int, bootstrap: str, topic: str) -> None:
    """Mark a run ok or not: every record consumed, acknowledged and stored exactly once."""
    if "error" not in res:
        if workload == "consume" and res["count"] != n:
            res["error"] = f"received {res['count']} of {n} records"
        elif workload == "produce":
            if res["count"] != n or res.get("failed"):
                res["error"] = f"{res['count']} of {n} records acknowledged, {res['failed']} failed"
            else:
                found = spawn(
                    {"kind": "watermarks", "bootstrap": bootstrap, "topics": [topic]}, 120
                )
                res["stored"] = found.get("stored", {}).get(topic)
                if res["stored"] != n:
                    res["error"] = f"topic holds {res['stored']} records, {n} were acknowledged"
        elif workload == "latency":
            if res["count"] != res["sent"]:
                res["error"] = f"received {res['count']} of {res['sent']} records"
            elif not res["samples"]:
                res["error"] = "no record after the warm-up"
    res["ok"] = "error" not in res
    if res["ok"] and workload != "latency":
        res["rate"] = n / res["seconds"]


def _shown(res: dict[str, Any]) -> str:
    if not res["ok"]:
        return f"FAILED {res['error']}"
    if res["workload"] == "latency":
        return f"p50 {res['p50_ms']:6.1f} ms  p99 {res['p99_ms']:6.1f} ms"
    return f"{res['rate']:>10,.0f} records/s"


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        sys.exit(child_main(sys.argv[2:]))
    sys.exit(main())
