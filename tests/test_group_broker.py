"""Consumer groups against the real broker: three members over twelve partitions,
leave / crash / join, and mixed groups with confluent-kafka members."""

from __future__ import annotations

import re
import time
from collections import Counter
from typing import Any

import pytest
from _socket_pump import SocketPump

from kafka_sansio._assignors import CooperativeStickyAssignor, RangeAssignor
from kafka_sansio._client import ClientConfig, parse_bootstrap
from kafka_sansio._consumer import ConsumerConfig
from kafka_sansio._group import GroupConfig, MemberState
from kafka_sansio._group_consumer import GroupConsumerCore
from kafka_sansio._group_events import CommitResult, GroupError
from kafka_sansio._types import OffsetResetPolicy, TopicPartition

pytestmark = pytest.mark.broker

confluent_kafka = pytest.importorskip("confluent_kafka")


class _Member:
    def __init__(
        self, name: str, bootstrap: str, group: str, assignor: Any, instance: str | None = None
    ) -> None:
        config = ConsumerConfig(
            client=ClientConfig(bootstrap_servers=parse_bootstrap(bootstrap)),
            auto_offset_reset=OffsetResetPolicy.EARLIEST,
            fetch_max_wait=0.1,
        )
        gconfig = GroupConfig(
            group,
            session_timeout=6.0,
            heartbeat_interval=0.5,
            max_poll_interval=20.0,
            auto_commit_interval=1.0,
            group_instance_id=instance,
        )
        self.name = name
        self.core = GroupConsumerCore(config, gconfig, random=lambda: 0.5, assignors=[assignor])
        self.pump = SocketPump(self.core)
        self.records: list[tuple[TopicPartition, int]] = []
        self.errors: list[Any] = []
        self.alive = True

    def step(self) -> None:
        if not self.alive:
            return
        self.pump.step(0.01)
        for e in self.core.events():
            if isinstance(e, GroupError) or (
                isinstance(e, CommitResult) and e.error and not e.auto
            ):
                self.errors.append(e)
        if self.core.awaiting_listener():
            self.core.rebalance_listener_done(time.monotonic())
        polled = self.core.poll(time.monotonic())
        for tp, recs in polled.by_partition.items():
            assert tp in self.core.assignment(), f"{self.name} fetched {tp} it does not own"
            self.records += [(tp, r.offset) for r in recs]
        self.pump.step(0)

    def crash(self) -> None:
        self.alive = False
        self.pump.close()


def _run(members: list[Any], cond: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met in time")
        for m in members:
            m.step()


def _one_owner_each(members: list[_Member], partitions: set[TopicPartition]) -> bool:
    live = [m for m in members if m.alive]
    owned = [tp for m in live for tp in m.core.assignment()]
    return (
        sorted(owned) == sorted(partitions)
        and all(m.core.state is MemberState.STABLE for m in live)
        and not any(m.core.awaiting_listener() for m in live)
    )


def _producer(kafka: Any) -> Any:
    return confluent_kafka.Producer({"bootstrap.servers": kafka.bootstrap, "linger.ms": 5})


def _produce(producer: Any, topic: str, start: int, count: int) -> None:
    for i in range(start, start + count):
        producer.produce(topic, value=b"%d" % i, partition=i % 12)
    producer.flush(10)


@pytest.mark.parametrize(
    "assignor", [RangeAssignor(), CooperativeStickyAssignor()], ids=["eager", "cooperative"]
)
def test_three_members_leave_crash_join(kafka: Any, assignor: Any) -> None:
    topic = kafka.create_topic(partitions=12)
    group = f"g-{topic}"
    everything = {TopicPartition(topic, p) for p in range(12)}
    producer = _producer(kafka)
    members = [_Member(n, kafka.bootstrap, group, assignor) for n in "abc"]
    for m in members:
        m.core.subscribe([topic], time.monotonic())
    _run(members, lambda: _one_owner_each(members, everything), 60)
    produced = 0
    _produce(producer, topic, produced, 120)
    produced += 120

    def consumed() -> set[tuple[TopicPartition, int]]:
        return {r for m in members for r in m.records}

    _run(members, lambda: len(consumed()) >= produced, 30)
    # One leaves cleanly; records produced meanwhile are consumed by the others.
    start = time.monotonic()
    leaver = members[0]
    leaver.core.close(time.monotonic())
    _run(
        members,
        lambda: leaver.core.state is MemberState.UNSUBSCRIBED and not leaver.core.pending_commits(),
        10,
    )
    leaver.alive = False
    leaver.pump.close()
    _produce(producer, topic, produced, 120)
    produced += 120
    _run(members, lambda: _one_owner_each(members, everything), 60)
    _run(members, lambda: len(consumed()) >= produced, 30)
    resumed = time.monotonic() - start
    # One crashes (sockets dropped, nothing said): its partitions move after the session.
    members[1].crash()
    _produce(producer, topic, produced, 120)
    produced += 120
    _run(members, lambda: _one_owner_each(members, everything), 60)
    # One joins.
    newcomer = _Member("d", kafka.bootstrap, group, assignor)
    newcomer.core.subscribe([topic], time.monotonic())
    members.append(newcomer)
    _run(
        members,
        lambda: _one_owner_each(members, everything) and bool(newcomer.core.assignment()),
        60,
    )
    _produce(producer, topic, produced, 120)
    produced += 120
    _run(members, lambda: len(consumed()) >= produced, 30)
    every = Counter(r for m in members for r in m.records)
    expected = {(TopicPartition(topic, p), o) for p in range(12) for o in range(produced // 12)}
    assert set(every) == expected  # nothing lost
    duplicates = sum(c - 1 for c in every.values())
    # Duplicates only come from the uncommitted window of the crashed member.
    assert duplicates <= 120 + 12 * 5
    for m in members:
        assert m.errors == []
    print(f"\n{assignor.name}: resumed {resumed:.2f}s after a member left; duplicates {duplicates}")
    for m in members:
        if m.alive:
            m.core.close(time.monotonic())
    _run(
        members,
        lambda: all(not m.alive or m.core.state is MemberState.UNSUBSCRIBED for m in members),
        10,
    )
    for m in members:
        m.pump.close()


@pytest.mark.parametrize("strategy", ["range", "cooperative-sticky"])
def test_mixed_group_with_confluent_kafka(kafka: Any, strategy: str) -> None:
    topic = kafka.create_topic(partitions=12)
    group = f"mixed-{topic}"
    everything = {TopicPartition(topic, p) for p in range(12)}
    assignor = RangeAssignor() if strategy == "range" else CooperativeStickyAssignor()
    ours = [_Member(n, kafka.bootstrap, group, assignor) for n in "ab"]
    for m in ours:
        m.core.subscribe([topic], time.monotonic())
    theirs: set[TopicPartition] = set()

    def on_assign(consumer: Any, partitions: list[Any]) -> None:
        theirs.update(TopicPartition(p.topic, p.partition) for p in partitions)

    def on_revoke(consumer: Any, partitions: list[Any]) -> None:
        theirs.difference_update(TopicPartition(p.topic, p.partition) for p in partitions)

    other = confluent_kafka.Consumer(
        {
            "bootstrap.servers": kafka.bootstrap,
            "group.id": group,
            "partition.assignment.strategy": strategy,
            "session.timeout.ms": 6000,
            "heartbeat.interval.ms": 500,
            "auto.offset.reset": "earliest",
        }
    )
    other.subscribe([topic], on_assign=on_assign, on_revoke=on_revoke)

    class _Theirs:
        alive = True

        def step(self) -> None:
            other.poll(0.01)

    loop = [*ours, _Theirs()]

    def valid() -> bool:
        owned = [tp for m in ours for tp in m.core.assignment()] + sorted(theirs)
        return (
            sorted(owned) == sorted(everything)
            and bool(theirs)
            and all(m.core.assignment() for m in ours)
            and all(m.core.state is MemberState.STABLE for m in ours)
        )

    try:
        _run(loop, valid, 60)
        assert len(theirs) == 4
    finally:
        other.close()
        for m in ours:
            m.core.close(time.monotonic())
        _run(ours, lambda: all(m.core.state is MemberState.UNSUBSCRIBED for m in ours), 10)
        for m in ours:
            m.pump.close()


@pytest.mark.parametrize("strategy", ["range", "cooperative-sticky"])
def test_confluent_kafka_leave_figure(kafka: Any, strategy: str) -> None:
    """The same leave measured with three confluent-kafka members, for comparison."""
    topic = kafka.create_topic(partitions=12)
    group = f"ck-{topic}"
    producer = _producer(kafka)
    seen: set[tuple[int, int]] = set()
    owned: dict[int, set[int]] = {}

    def consumer(i: int) -> Any:
        owned[i] = set()

        def on_assign(c: Any, parts: list[Any]) -> None:
            owned[i].update(p.partition for p in parts)

        def on_revoke(c: Any, parts: list[Any]) -> None:
            owned[i].difference_update(p.partition for p in parts)

        c = confluent_kafka.Consumer(
            {
                "bootstrap.servers": kafka.bootstrap,
                "group.id": group,
                "partition.assignment.strategy": strategy,
                "session.timeout.ms": 6000,
                "heartbeat.interval.ms": 500,
                "auto.offset.reset": "earliest",
                "fetch.wait.max.ms": 100,
            }
        )
        c.subscribe([topic], on_assign=on_assign, on_revoke=on_revoke, on_lost=on_revoke)
        return c

    consumers = {i: consumer(i) for i in range(3)}

    def pump(until: Any, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not until():
            assert time.monotonic() < deadline, "condition not met in time"
            for c in consumers.values():
                msg = c.poll(0.01)
                if msg is not None and msg.error() is None:
                    seen.add((msg.partition(), msg.offset()))

    def balanced() -> bool:
        parts = sorted(p for s in owned.values() for p in s)
        return parts == list(range(12)) and all(owned[i] for i in consumers)

    try:
        pump(balanced, 60)
        _produce(producer, topic, 0, 120)
        pump(lambda: len(seen) >= 120, 30)
        start = time.monotonic()
        consumers.pop(0).close()
        del owned[0]
        _produce(producer, topic, 120, 120)
        pump(lambda: len(seen) >= 240 and balanced(), 60)
        print(
            f"\nconfluent-kafka {strategy}: resumed {time.monotonic() - start:.2f}s after a member left"
        )
    finally:
        for c in consumers.values():
            c.close()


def test_static_member_restart_keeps_its_partitions(kafka: Any) -> None:
    topic = kafka.create_topic(partitions=12)
    group = f"static-{topic}"
    everything = {TopicPartition(topic, p) for p in range(12)}
    members = [_Member(n, kafka.bootstrap, group, RangeAssignor(), "inst-" + n) for n in "ab"]
    for m in members:
        m.core.subscribe([topic], time.monotonic())
    _run(members, lambda: _one_owner_each(members, everything), 60)
    before = members[1].core.assignment()
    generation = members[0].core.membership.generation
    members[1].crash()
    again = _Member("b2", kafka.bootstrap, group, RangeAssignor(), "inst-b")
    again.core.subscribe([topic], time.monotonic())
    members.append(again)
    _run(members, lambda: _one_owner_each(members, everything), 30)
    assert again.core.assignment() == before
    # No rebalance, even a few heartbeats later: the generation did not change.
    later = time.monotonic() + 2
    _run(members, lambda: time.monotonic() > later, 5)
    assert members[0].core.membership.generation == generation
    assert again.core.membership.generation == generation
    for m in members:
        if m.alive:
            m.crash()


def test_pattern_subscription_picks_up_a_new_topic(kafka: Any) -> None:
    first = kafka.create_topic(partitions=2, prefix="pat")
    config = ConsumerConfig(
        client=ClientConfig(
            bootstrap_servers=parse_bootstrap(kafka.bootstrap), metadata_max_age=1.0
        ),
        auto_offset_reset=OffsetResetPolicy.EARLIEST,
        fetch_max_wait=0.1,
    )
    gconfig = GroupConfig(f"pattern-{first}", session_timeout=6.0, heartbeat_interval=0.5)
    member = _Member("p", kafka.bootstrap, gconfig.group_id, RangeAssignor())
    member.core = GroupConsumerCore(config, gconfig, random=lambda: 0.5)
    member.pump = SocketPump(member.core)
    member.core.subscribe_pattern(re.escape(first) + "(-second)?", time.monotonic())
    one = {TopicPartition(first, 0), TopicPartition(first, 1)}
    _run([member], lambda: member.core.assignment() == one, 30)
    second = f"{first}-second"
    kafka.admin().create_topics([confluent_kafka.admin.NewTopic(second, 1, 1)])[second].result(30)
    _run([member], lambda: TopicPartition(second, 0) in member.core.assignment(), 30)
    assert member.core.subscription() == {first, second}
    member.crash()
