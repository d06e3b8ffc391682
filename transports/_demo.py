"""``kafka-sansio demo``: the clients end to end, on each of the three adapters.

By default the demo starts the embedded broker: the project's in-memory
Kafka model served on loopback ports (no Java needed); ``--bootstrap`` points
it at a real cluster instead.  For each adapter (blocking, asyncio, trio) it
creates a topic with the Admin, writes records with the Producer, reads them
back with a Consumer, seeks past the end to show the automatic reset, and
shows what a consumer without a reset policy reports instead.

The blocking steps and the async steps are written out separately, as a
user of each would write them; the asyncio and trio runs share the async
steps, since their clients have the same methods.
"""

from __future__ import annotations

import asyncio
import sys
import uuid
from collections.abc import Callable
from typing import Any, TextIO

from kafka_sansio import (
    Event,
    KafkaSansioError,
    NewTopic,
    OffsetReset,
    TopicPartition,
)
from kafka_sansio.errors import OffsetOutOfRangeError
from kafka_sansio.records import codec_available

from ._errors import PartitionEventError

PARTITIONS = 3
PER_PARTITION = 10
TOTAL = PARTITIONS * PER_PARTITION
ADAPTERS = ("blocking", "asyncio", "trio")


class DemoFailed(Exception):
    """Something the demo expected did not happen."""


def _codec(adapter: str) -> str:
    wanted = {"blocking": "gzip", "asyncio": "zstd", "trio": "lz4"}[adapter]
    return wanted if codec_available(wanted) else "gzip"


def _record(i: int) -> tuple[int, bytes, bytes, list[tuple[str, bytes]]]:
    partition = i % PARTITIONS
    key = f"key-{i}".encode()
    value = f'{{"n": {i}, "partition": {partition}}}'.encode()
    return partition, key, value, [("source", b"demo"), ("source", b"duplicate keys are kept")]


class _Report:
    """Collects what a run saw and prints it; raises DemoFailed when it is not what it should be."""

    def __init__(self, adapter: str, out: TextIO) -> None:
        self.adapter = adapter
        self.out = out
        self.events: list[Event] = []

    def say(self, text: str) -> None:
        print(f"[{self.adapter}] {text}", file=self.out, flush=True)

    def expect(self, condition: bool, what: str) -> None:
        if not condition:
            raise DemoFailed(f"{self.adapter}: {what}")

    def wrote(self, topic: str, codec: str, offsets: list[tuple[int, int]]) -> None:
        self.expect(len(offsets) == TOTAL, "not every record was acknowledged")
        last = max(o for p, o in offsets if p == 0)
        self.say(
            f"1. Admin created {topic!r} ({PARTITIONS} partitions); Producer wrote {TOTAL} "
            f"records ({codec}), partition 0 offsets 0..{last}"
        )

    def consumed(self, records: list[Any]) -> None:
        self.expect(len(records) == TOTAL, f"consumed {len(records)} of {TOTAL} records")
        for p in range(PARTITIONS):
            offsets = [r.offset for r in records if r.partition == p]
            self.expect(offsets == list(range(PER_PARTITION)), f"partition {p} out of order")
        first = records[0]
        self.say(
            f"2. Consumer read all {TOTAL} records from the beginning, in order per partition; "
            f"first: key={first.key!r} value={first.value!r} headers={list(first.headers)}"
        )

    def reset(self, again: list[Any]) -> None:
        resets = [e for e in self.events if isinstance(e, OffsetReset)]
        self.expect(bool(resets), "no OffsetReset event after seeking past the end")
        e = resets[-1]
        self.say(
            f"3. seek({e.partition}, 1000000) is past the end; the consumer reset itself: "
            f"OffsetReset {e.from_offset} -> {e.to_offset} ({e.reason.value}), "
            f"and read partition 0 again: {len(again)} records"
        )
        self.expect(len(again) == PER_PARTITION, "partition 0 was not read again")

    def strict(self, no_offset: Exception, out_of_range: Exception, span: tuple[int, int]) -> None:
        self.say(
            "4. with auto_offset_reset='none' nothing moves by itself: "
            f"{type(no_offset).__name__} ({type(no_offset.event).__name__})"  # type: ignore[attr-defined]
        )
        self.say(
            f"   after seek(..., 1000000): {type(out_of_range).__name__} "
            f"{out_of_range.event.offsets}; beginning/end offsets {span[0]}..{span[1]}"  # type: ignore[attr-defined]
        )
        self.expect(span == (0, PER_PARTITION), f"offsets {span}")


# ------------------------------------------------------------------ blocking


def _blocking(bootstrap: str, report: _Report, timeout: float) -> None:
    from .blocking import Admin, Consumer, Producer

    topic = f"demo-blocking-{uuid.uuid4().hex[:8]}"
    codec = _codec("blocking")
    with Admin(bootstrap, default_api_timeout=timeout) as admin:
        admin.create_topics([NewTopic(topic, PARTITIONS, -1)])
    with Producer(bootstrap, compression=codec, max_block=timeout) as producer:
        futures = []
        for i in range(TOTAL):
            partition, key, value, headers = _record(i)
            futures.append(
                producer.send(topic, value, key=key, partition=partition, headers=headers)
            )
        producer.flush(timeout)
        report.wrote(topic, codec, [(f.result().partition, f.result().offset) for f in futures])

    tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
    with Consumer(bootstrap, auto_offset_reset="earliest", on_event=report.events.append) as c:
        c.assign(tps)
        records = _take(c.records(timeout=timeout), TOTAL)
        report.consumed(records)
        c.seek(tps[0], 1_000_000)
        report.reset(_take(c.records(timeout=timeout), PER_PARTITION))

    with Consumer(bootstrap, auto_offset_reset="none", default_api_timeout=timeout) as strict:
        strict.assign([tps[1]])
        no_offset = _raised(lambda: strict.poll(timeout), PartitionEventError)
        strict.seek(tps[1], 1_000_000)
        out_of_range = _raised(lambda: strict.poll(timeout), OffsetOutOfRangeError)
        start = strict.beginning_offsets([tps[1]])[tps[1]]
        end = strict.end_offsets([tps[1]])[tps[1]]
        report.strict(no_offset, out_of_range, (start, end))
    with Admin(bootstrap, default_api_timeout=timeout) as admin:
        admin.delete_topics([topic])


def _take(records: Any, count: int) -> list[Any]:
    out = []
    for record in records:
        out.append(record)
        if len(out) == count:
            break
    return out


def _raised(call: Callable[[], object], kind: type[Exception]) -> Exception:
    for _ in range(3):
        try:
            call()
        except kind as exc:
            return exc
    raise DemoFailed(f"{kind.__name__} was not raised")


# ------------------------------------------------------------------ asyncio and trio


async def _async(flavour: Any, bootstrap: str, report: _Report, timeout: float) -> None:
    topic = f"demo-{report.adapter}-{uuid.uuid4().hex[:8]}"
    codec = _codec(report.adapter)
    async with flavour.Admin(bootstrap, default_api_timeout=timeout) as admin:
        await admin.create_topics([NewTopic(topic, PARTITIONS, -1)])
    async with flavour.Producer(bootstrap, compression=codec, max_block=timeout) as producer:
        futures = []
        for i in range(TOTAL):
            partition, key, value, headers = _record(i)
            futures.append(
                await producer.send(topic, value, key=key, partition=partition, headers=headers)
            )
        await producer.flush(timeout)
        report.wrote(topic, codec, [((await f).partition, (await f).offset) for f in futures])

    tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
    async with flavour.Consumer(
        bootstrap, auto_offset_reset="earliest", on_event=report.events.append
    ) as c:
        c.assign(tps)
        report.consumed(await _atake(c.records(timeout=timeout), TOTAL))
        c.seek(tps[0], 1_000_000)
        report.reset(await _atake(c.records(timeout=timeout), PER_PARTITION))

    async with flavour.Consumer(
        bootstrap, auto_offset_reset="none", default_api_timeout=timeout
    ) as strict:
        strict.assign([tps[1]])
        no_offset = await _araised(lambda: strict.poll(timeout), PartitionEventError)
        strict.seek(tps[1], 1_000_000)
        out_of_range = await _araised(lambda: strict.poll(timeout), OffsetOutOfRangeError)
        start = (await strict.beginning_offsets([tps[1]]))[tps[1]]
        end = (await strict.end_offsets([tps[1]]))[tps[1]]
        report.strict(no_offset, out_of_range, (start, end))
    async with flavour.Admin(bootstrap, default_api_timeout=timeout) as admin:
        await admin.delete_topics([topic])


async def _atake(records: Any, count: int) -> list[Any]:
    out = []
    async for record in records:
        out.append(record)
        if len(out) == count:
            break
    return out


async def _araised(call: Callable[[], Any], kind: type[Exception]) -> Exception:
    for _ in range(3):
        try:
            await call()
        except kind as exc:
            return exc
    raise DemoFailed(f"{kind.__name__} was not raised")


# ------------------------------------------------------------------ entry point


def run(
    bootstrap: str | None = None,
    out: TextIO = sys.stdout,
    timeout: float = 60.0,
    adapters: tuple[str, ...] = ADAPTERS,
) -> int:
    """Run the demo; 0 when everything behaved as expected, 1 otherwise."""
    embedded = None
    if bootstrap is None:
        from ._mock_broker import MockBroker

        embedded = MockBroker(brokers=3)
        embedded.start()
        bootstrap = embedded.bootstrap
        label = f"the embedded in-memory Kafka model (3 brokers on {bootstrap}, no Java)"
    else:
        label = f"the Kafka cluster at {bootstrap}"
    print(f"kafka-sansio demo on {label}", file=out, flush=True)
    try:
        for adapter in adapters:
            report = _Report(adapter, out)
            if adapter == "blocking":
                _blocking(bootstrap, report, timeout)
            elif adapter == "asyncio":
                from . import asyncio as flavour

                asyncio.run(_async(flavour, bootstrap, report, timeout))
            else:
                import trio

                from . import trio as trio_flavour

                trio.run(_async, trio_flavour, bootstrap, report, timeout)
    except (DemoFailed, KafkaSansioError) as exc:
        print(f"demo failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    finally:
        if embedded is not None:
            embedded.close()
    print("done.", file=out, flush=True)
    return 0
