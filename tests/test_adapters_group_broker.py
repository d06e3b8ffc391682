"""Consumer groups on the three adapters against the real broker.

Members run in their own threads (one per adapter, plus a late joiner) and
share a 12-partition topic while a producer keeps writing.  One member
leaves cleanly, one crashes (its connections dropped without LeaveGroup),
one joins.  Every record must be processed, and a record may be processed
twice only if the crashed member processed it first (its uncommitted
window); the duplicates are counted and printed.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections import Counter
from typing import Any

import pytest
import trio
from _adapters import SyncShim
from confluent_kafka import Consumer as CKConsumer
from confluent_kafka import Producer
from kafka_sansio.transports import asyncio as kaio
from kafka_sansio.transports import blocking
from kafka_sansio.transports import trio as ktrio

from kafka_sansio import TopicPartition
from kafka_sansio.errors import InvalidTopicExceptionError

pytestmark = pytest.mark.timeout(240)

PARTITIONS = 12
GROUP_OPTIONS = {
    "auto_offset_reset": "earliest",
    "session_timeout": 6.0,
    "heartbeat_interval": 0.5,
    "enable_auto_commit": False,
}


class Member:
    """One group member in its own thread; ``processed`` gets (member, partition, offset)."""

    def __init__(
        self,
        name: str,
        adapter: str,
        bootstrap: str,
        topic: str,
        group: str,
        processed: list[tuple[str, int, int]],
        **options: Any,
    ) -> None:
        self.name = name
        self.adapter = adapter
        self.bootstrap = bootstrap
        self.topic = topic
        self.group = group
        self.processed = processed
        self.options = {**GROUP_OPTIONS, **options}
        self.assignment: set[TopicPartition] = set()
        self.stop = threading.Event()  # leave cleanly
        self.crash = threading.Event()  # drop the connections, no LeaveGroup
        self.error: BaseException | None = None
        self.crashed_with = 0
        self.thread = threading.Thread(target=self._body, name=name, daemon=True)

    async def _loop(self, consumer: Any) -> None:
        consumer.subscribe([self.topic])
        while not self.stop.is_set():
            records = await consumer.poll(timeout=0.2)
            for tp, record in records:
                self.processed.append((self.name, tp.partition, record.offset))
            if records and self.crash.is_set():
                # Crash between processing and committing: these records come again.
                self.crashed_with = len(records)
                _drop_connections(consumer)
                return
            if records:
                await consumer.commit()
            self.assignment = set(consumer.assignment())

    def _body(self) -> None:
        try:
            if self.adapter == "blocking":
                consumer = blocking.Consumer(self.bootstrap, group_id=self.group, **self.options)
                asyncio.run(self._loop(SyncShim(consumer)))
                if not self.crash.is_set():
                    consumer.close()
            elif self.adapter == "asyncio":

                async def main() -> None:
                    c = kaio.Consumer(self.bootstrap, group_id=self.group, **self.options)
                    await c.__aenter__()
                    await self._loop(c)
                    await c.close()  # after a crash: only the driver is closed

                asyncio.run(main())
            else:

                async def main_trio() -> None:
                    async with ktrio.Consumer(
                        self.bootstrap, group_id=self.group, **self.options
                    ) as c:
                        await self._loop(c)

                trio.run(main_trio)
        except BaseException as exc:
            self.error = exc


def _drop_connections(consumer: Any) -> None:
    """What a crash looks like to the broker: sockets closed, no LeaveGroup."""
    inner = getattr(consumer, "_consumer", consumer)
    state = inner._state
    state.closed = True
    state.top.shutdown()
    driver = getattr(inner, "_driver", None) or inner._runner.driver
    driver.flush()


def _settled(members: list[Member], timeout: float = 60.0) -> dict[str, set[TopicPartition]]:
    """Wait until the live members own every partition exactly once, each some."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        owned = {m.name: set(m.assignment) for m in members}
        everything = [tp for parts in owned.values() for tp in parts]
        complete = len(everything) == PARTITIONS and len(set(everything)) == PARTITIONS
        if complete and all(owned.values()):
            return owned
        for m in members:
            assert m.error is None, f"{m.name}: {m.error!r}"
        time.sleep(0.1)
    raise AssertionError(f"the group did not settle: { {m.name: m.assignment for m in members} }")


def test_three_adapters_share_a_group_through_leave_crash_and_join(kafka: Any) -> None:
    topic = kafka.create_topic(partitions=PARTITIONS, prefix="group")
    group = f"g-{uuid.uuid4().hex[:8]}"
    processed: list[tuple[str, int, int]] = []
    producing = threading.Event()
    producing.set()
    written: Counter[int] = Counter()

    def produce() -> None:
        producer = Producer({**kafka.client_config(), "linger.ms": 5})
        i = 0
        while producing.is_set():
            for _ in range(24):
                producer.produce(topic, f"{i}".encode(), partition=i % PARTITIONS)
                i += 1
            producer.poll(0)
            time.sleep(0.02)
        assert producer.flush(30) == 0
        for p in range(PARTITIONS):
            written[p] = len(range(p, i, PARTITIONS))

    writer = threading.Thread(target=produce, daemon=True)
    writer.start()
    members = [
        Member("blocking", "blocking", kafka.bootstrap, topic, group, processed),
        Member("asyncio", "asyncio", kafka.bootstrap, topic, group, processed),
        Member("trio", "trio", kafka.bootstrap, topic, group, processed),
    ]
    for m in members:
        m.thread.start()
    owned = _settled(members)
    assert all(len(parts) == 4 for parts in owned.values()), owned

    leaver = members[1]
    leaver.stop.set()
    leaver.thread.join(60)
    assert leaver.error is None
    _settled([members[0], members[2]])

    crasher = members[2]
    crasher.crash.set()
    crasher.thread.join(60)
    assert crasher.error is None
    _settled([members[0]])  # after the session timeout the survivor owns everything

    joiner = Member("late-blocking", "blocking", kafka.bootstrap, topic, group, processed)
    joiner.thread.start()
    _settled([members[0], joiner])

    producing.clear()
    writer.join(60)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        seen = {(p, o) for _, p, o in processed}
        if len(seen) == sum(written.values()):
            break
        time.sleep(0.2)
    for m in (members[0], joiner):
        m.stop.set()
        m.thread.join(60)
        assert m.error is None, f"{m.name}: {m.error!r}"

    seen_by: dict[tuple[int, int], list[str]] = {}
    for name, p, o in processed:
        seen_by.setdefault((p, o), []).append(name)
    expected = {(p, o) for p, n in written.items() for o in range(n)}
    assert set(seen_by) == expected, "records were lost (or invented)"
    duplicates = {k: v for k, v in seen_by.items() if len(v) > 1}
    for key, names in duplicates.items():
        assert names[0] == "trio" and len(names) == 2, (key, names)
    # The crashed member's last, uncommitted batch is processed again by the survivor.
    assert len(duplicates) == crasher.crashed_with > 0
    print(
        f"\n{len(expected)} records, {len(duplicates)} processed twice (all first by the crashed member)"
    )


@pytest.mark.parametrize("strategy", ["range", "cooperative-sticky"])
def test_a_mixed_group_with_confluent_kafka(kafka: Any, strategy: str) -> None:
    topic = kafka.create_topic(partitions=PARTITIONS, prefix="mixed")
    group = f"mixed-{uuid.uuid4().hex[:8]}"
    ours = blocking.Consumer(
        kafka.bootstrap, group_id=group, partition_assignment_strategy=strategy, **GROUP_OPTIONS
    )
    theirs = CKConsumer(
        {
            **kafka.client_config(),
            "group.id": group,
            "partition.assignment.strategy": strategy,
            "session.timeout.ms": 6000,
            "heartbeat.interval.ms": 500,
        }
    )
    try:
        ours.subscribe([topic])
        theirs.subscribe([topic])
        deadline = time.monotonic() + 60
        mine: set[TopicPartition] = set()
        other: set[int] = set()
        while time.monotonic() < deadline:
            ours.poll(0.1)
            theirs.poll(0.1)
            mine = ours.assignment()
            other = {tp.partition for tp in theirs.assignment()}
            if mine and other and len(mine) + len(other) == PARTITIONS:
                break
        assert mine and other, (mine, other)
        assert {tp.partition for tp in mine}.isdisjoint(other)
        assert {tp.partition for tp in mine} | other == set(range(PARTITIONS))
    finally:
        theirs.close()
        ours.close()


def test_a_subscribed_topic_the_broker_refuses_is_raised_and_the_others_consumed(
    kafka: Any,
) -> None:
    """An invalid name beside a real topic: poll raises INVALID_TOPIC_EXCEPTION, as Java's does.

    The member stays in the group and consumes the real topic's records.
    """
    topic = kafka.create_topic(partitions=2, prefix="beside-invalid")
    producer = Producer(kafka.client_config())
    for i in range(20):
        producer.produce(topic, b"%d" % i, partition=i % 2)
    assert producer.flush(30) == 0
    consumer = blocking.Consumer(kafka.bootstrap, group_id=f"g-{uuid.uuid4().hex[:8]}", **GROUP_OPTIONS)
    try:
        consumer.subscribe([topic, "not a valid name!"])
        got: list[bytes] = []
        raised = 0
        deadline = time.monotonic() + 60
        while (len(got) < 20 or not raised) and time.monotonic() < deadline:
            try:
                got += [r.value for _, r in consumer.poll(0.2)]
            except InvalidTopicExceptionError:
                raised += 1
        assert raised >= 1
        assert sorted(got, key=int) == [b"%d" % i for i in range(20)]
        assert {tp.topic for tp in consumer.assignment()} == {topic}
    finally:
        consumer.close()
