"""Stateful property test of the consumer core against the model broker (fake clock).

Hypothesis interleaves produce, poll, seek, seek_to_beginning, seek_to_end,
pause, resume, unassign/assign, retention moving the log start, leader moves,
injected retriable errors, dropped connections and the passing of time.
After every step it checks:

- each partition hands out exactly the log's records, in offset order, from
  its position: no duplicate and no gap except those an explicit seek or a
  reported reset explains, and every record's content is what was appended;
- with ``auto_offset_reset="none"`` nothing moves a position but the user;
- a paused partition hands out nothing;
- requests in flight per broker never exceed the configured bound;
- whenever ``poll`` hands out records of a partition and the broker has more,
  a fetch to its leader is already in flight (or enough is buffered);
- and at the end, once everything is resumed, every partition catches up.
"""

from __future__ import annotations

import random

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from kafka_sansio._client import ClientConfig
from kafka_sansio._consumer import ConsumerConfig, ConsumerCore
from kafka_sansio._events import (
    NoOffsetForPartition,
    OffsetOutOfRange,
    OffsetReset,
    ResetReason,
)
from kafka_sansio._subscription import FetchState
from kafka_sansio._types import OffsetResetPolicy, TopicPartition
from kafka_sansio.testing._model import ModelCluster
from kafka_sansio.testing._pump import Pump

TOPIC = "prop"
PARTITIONS = 3
BROKERS = 2
MAX_IN_FLIGHT = 3
ALL = [TopicPartition(TOPIC, p) for p in range(PARTITIONS)]


class ConsumerMachine(RuleBasedStateMachine):
    @initialize(
        policy=st.sampled_from(list(OffsetResetPolicy)),
        seed=st.integers(0, 2**16),
        max_partition_bytes=st.sampled_from([200, 2_000, 1_048_576]),
    )
    def setup(self, policy: OffsetResetPolicy, seed: int, max_partition_bytes: int) -> None:
        self.cluster = ModelCluster(brokers=BROKERS)
        self.cluster.create_topic(TOPIC, partitions=PARTITIONS)
        info = self.cluster.brokers[1]
        config = ConsumerConfig(
            client=ClientConfig(
                bootstrap_servers=((info.host, info.port),), max_in_flight=MAX_IN_FLIGHT
            ),
            auto_offset_reset=policy,
            max_partition_fetch_bytes=max_partition_bytes,
            fetch_max_wait=0.1,
        )
        self.policy = policy
        self.core = ConsumerCore(config, random=random.Random(seed).random)
        self.pump = Pump(self.core, self.cluster, now=100.0)
        #: Every value ever appended, by (partition, offset): survives retention.
        self.appended: dict[tuple[int, int], bytes | None] = {}
        self.counter = 0
        #: Next offset each partition must hand out; None until the consumer says.
        self.expected: dict[TopicPartition, int | None] = {tp: None for tp in ALL}
        self.assigned = set(ALL)
        self.paused: set[TopicPartition] = set()
        self.core.assign(ALL, self.pump.now)
        self.pump.settle()
        self.absorb_events()

    # ------------------------------------------------------------ bookkeeping

    def absorb_events(self) -> None:
        for event in self.core.events():
            if isinstance(event, OffsetReset):
                assert self.policy is not OffsetResetPolicy.NONE, "policy none reset by itself"
                tp = event.partition
                if event.reason is not ResetReason.NO_POSITION and self.expected[tp] is not None:
                    assert event.from_offset == self.expected[tp], event
                self.expected[tp] = event.to_offset
            elif isinstance(event, (OffsetOutOfRange, NoOffsetForPartition)):
                assert self.policy is OffsetResetPolicy.NONE
            else:
                raise AssertionError(f"unexpected event {event}")

    def learn_positions(self) -> None:
        for tp in self.assigned:
            if self.expected[tp] is None:
                self.expected[tp] = self.core.position(tp)

    def append(self, partition: int, count: int) -> None:
        values = []
        for _ in range(count):
            self.counter += 1
            values.append(b"v%d" % self.counter)
        base = self.cluster.append(TOPIC, partition, values)
        for i, value in enumerate(values):
            self.appended[(partition, base + i)] = value

    # ------------------------------------------------------------ rules

    @rule(partition=st.integers(0, PARTITIONS - 1), count=st.integers(1, 30))
    def produce(self, partition: int, count: int) -> None:
        self.append(partition, count)
        self.pump.settle()

    @rule(max_records=st.integers(1, 200))
    def poll(self, max_records: int) -> None:
        self.absorb_events()
        self.learn_positions()
        batch = self.core.poll(self.pump.now, max_records)
        assert len(batch) <= max_records
        for tp, records in batch.by_partition.items():
            assert tp in self.assigned and tp not in self.paused, f"{tp} should deliver nothing"
            for record in records:
                expected = self.expected[tp]
                assert expected is not None, f"{tp} delivered before its position was known"
                assert record.offset == expected, f"{tp}: got {record.offset}, expected {expected}"
                assert record.value == self.appended[(tp.partition, record.offset)]
                self.expected[tp] = record.offset + 1
            self.check_pipelined(tp)
        self.pump.settle()
        self.absorb_events()

    def check_pipelined(self, tp: TopicPartition) -> None:
        state = self.core._partitions[tp]
        if state.state is not FetchState.FETCHING or state.paused:
            return
        if self.cluster.high_watermark(TOPIC, tp.partition) <= state.fetch_offset:
            return  # the broker has nothing more yet
        leader = self.core.client.metadata.leader(tp)
        if leader is None or not self.core.client.node_ready(leader):
            return
        if state.retry_at > self.pump.now or state.refetch_when_drained:
            return
        assert leader in self.core._fetching_nodes or len(state.chunks) >= 2, (
            f"{tp}: records handed out, broker has more, and no fetch is in flight"
        )

    @rule(partition=st.integers(0, PARTITIONS - 1), offset=st.integers(0, 120))
    def seek(self, partition: int, offset: int) -> None:
        tp = ALL[partition]
        if tp not in self.assigned:
            return
        self.absorb_events()
        self.core.seek(tp, offset, self.pump.now)
        self.expected[tp] = offset
        self.pump.settle()
        self.absorb_events()

    @rule(partition=st.integers(0, PARTITIONS - 1), end=st.booleans())
    def seek_to(self, partition: int, end: bool) -> None:
        tp = ALL[partition]
        if tp not in self.assigned:
            return
        self.absorb_events()
        if end:
            self.core.seek_to_end([tp], self.pump.now)
        else:
            self.core.seek_to_beginning([tp], self.pump.now)
        self.expected[tp] = None
        self.pump.settle()
        self.absorb_events()

    @rule(partition=st.integers(0, PARTITIONS - 1))
    def pause(self, partition: int) -> None:
        tp = ALL[partition]
        if tp in self.assigned:
            self.core.pause([tp], self.pump.now)
            self.paused.add(tp)

    @rule(partition=st.integers(0, PARTITIONS - 1))
    def resume(self, partition: int) -> None:
        tp = ALL[partition]
        if tp in self.assigned:
            self.core.resume([tp], self.pump.now)
            self.paused.discard(tp)

    @rule(keep=st.sets(st.integers(0, PARTITIONS - 1)))
    def reassign(self, keep: set[int]) -> None:
        self.absorb_events()
        new = {ALL[p] for p in keep}
        self.core.assign(sorted(new), self.pump.now)
        for tp in ALL:
            if tp not in new or tp not in self.assigned:
                self.expected[tp] = None  # a new assignment starts from the reset policy
        self.paused &= new
        self.assigned = new
        self.pump.settle()
        self.absorb_events()

    @rule(partition=st.integers(0, PARTITIONS - 1), by=st.integers(1, 40))
    def retention(self, partition: int, by: int) -> None:
        start = self.cluster.log_start_offset(TOPIC, partition)
        end = self.cluster.high_watermark(TOPIC, partition)
        self.cluster.truncate_start(TOPIC, partition, min(end, start + by))
        self.pump.settle()

    @rule(partition=st.integers(0, PARTITIONS - 1), node=st.integers(1, BROKERS))
    def move_leader(self, partition: int, node: int) -> None:
        self.cluster.move_leader(TOPIC, partition, node, self.pump.now)
        self.pump.settle()

    @rule(
        api=st.sampled_from([1, 2, 3]),
        code=st.sampled_from([6, 5, 3, 74]),
        count=st.integers(1, 3),
    )
    def inject_error(self, api: int, code: int, count: int) -> None:
        self.cluster.inject_error(api, code, count=count)

    @rule(node=st.one_of(st.none(), st.integers(1, BROKERS)))
    def drop_connections(self, node: int | None) -> None:
        self.cluster.drop_connections(node)
        self.pump.settle()

    @rule(seconds=st.sampled_from([0.01, 0.1, 0.5, 2.0]))
    def advance(self, seconds: float) -> None:
        self.pump.advance(seconds)
        self.absorb_events()

    # ------------------------------------------------------------ invariants

    @invariant()
    def in_flight_is_bounded(self) -> None:
        if not hasattr(self, "core"):
            return
        for node in self.core.client._nodes.values():
            assert node.conn.in_flight <= MAX_IN_FLIGHT

    @precondition(lambda self: hasattr(self, "core"))
    @invariant()
    def paused_partitions_buffer_nothing(self) -> None:
        for tp in self.paused:
            assert self.core._partitions[tp].buffered == 0

    def teardown(self) -> None:
        """Liveness: with everything resumed and sought into range, every partition catches up."""
        if not hasattr(self, "core"):
            return
        self.absorb_events()
        self.core.resume(self.assigned, self.pump.now)
        self.paused.clear()

        def caught_up() -> bool:
            # A user answers OffsetOutOfRange / NoOffsetForPartition with a seek.
            for tp in self.assigned:
                if self.core.fetch_state(tp) is FetchState.AWAITING_SEEK:
                    start = self.cluster.log_start_offset(TOPIC, tp.partition)
                    self.core.seek(tp, start, self.pump.now)
                    self.expected[tp] = start
            self.poll(500)
            while self.core.buffered():
                self.poll(500)
            return all(
                self.expected[tp] is not None
                and self.expected[tp] >= self.cluster.high_watermark(TOPIC, tp.partition)
                for tp in self.assigned
            )

        self.pump.until(caught_up, timeout=30)


ConsumerMachine.TestCase.settings = settings(
    max_examples=150,
    stateful_step_count=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestConsumerMachine = ConsumerMachine.TestCase
