"""Consumer core behaviours against the model broker that need a scripted cluster."""

from __future__ import annotations

import random

import pytest

from kafka_sansio import (
    ClientConfig,
    ConsumerConfig,
    ConsumerCore,
    FetchError,
    IsolationLevel,
    LocalProtocolError,
    LogTruncation,
    OffsetReset,
    OffsetResetPolicy,
    OffsetsResult,
    ResetReason,
    TopicPartition,
)
from kafka_sansio.errors import InvalidTopicExceptionError, TopicAuthorizationFailedError
from kafka_sansio.testing import ModelCluster, Pump

TP = TopicPartition("t", 0)


def make(
    cluster: ModelCluster,
    policy: OffsetResetPolicy = OffsetResetPolicy.EARLIEST,
    isolation: IsolationLevel = IsolationLevel.READ_UNCOMMITTED,
) -> tuple[ConsumerCore, Pump]:
    info = cluster.brokers[1]
    config = ConsumerConfig(
        client=ClientConfig(bootstrap_servers=((info.host, info.port),)),
        auto_offset_reset=policy,
        isolation_level=isolation,
    )
    core = ConsumerCore(config, random.Random(3).random)
    return core, Pump(core, cluster)


def consume(core: ConsumerCore, pump: Pump, count: int) -> list[int]:
    offsets: list[int] = []

    def done() -> bool:
        offsets.extend(r.offset for _, r in core.poll(pump.now))
        return len(offsets) >= count

    pump.until(done)
    return offsets


@pytest.mark.parametrize("policy", [OffsetResetPolicy.EARLIEST, OffsetResetPolicy.NONE])
def test_truncation_after_unclean_election_is_detected(policy: OffsetResetPolicy) -> None:
    cluster = ModelCluster(brokers=2)
    cluster.create_topic("t", partitions=1, leaders=[1])
    for i in range(4):
        cluster.append("t", 0, [b"a%d" % i, b"b%d" % i])  # batches at 0, 2, 4, 6
    core, pump = make(cluster, policy)
    core.assign([TP], pump.now)
    if policy is OffsetResetPolicy.NONE:
        core.seek(TP, 0, pump.now)
    assert consume(core, pump, 8) == list(range(8))
    core.events()
    # Node 2 takes over holding only offsets 0..3: 4..7 are gone.
    cluster.unclean_leader_election("t", 0, node=2, new_end=4, now=pump.now)
    core.client.request_metadata(pump.now)
    events: list[object] = []
    pump.until(lambda: events.extend(core.events()) or events)
    if policy is OffsetResetPolicy.NONE:
        assert events == [LogTruncation(TP, position=8, diverging_offset=4)]
        assert core.position(TP) == 8  # stopped, not moved
    else:
        assert events == [OffsetReset(TP, 8, 4, ResetReason.TRUNCATION)]
        cluster.append("t", 0, [b"new"])
        assert consume(core, pump, 1) == [4]


def test_leader_move_without_truncation_keeps_the_position() -> None:
    cluster = ModelCluster(brokers=2)
    cluster.create_topic("t", partitions=1, leaders=[1])
    cluster.append("t", 0, [b"x"] * 5)
    core, pump = make(cluster)
    core.assign([TP], pump.now)
    assert consume(core, pump, 5) == [0, 1, 2, 3, 4]
    core.events()
    cluster.move_leader("t", 0, 2, pump.now)
    cluster.append("t", 0, [b"y"] * 2)
    assert consume(core, pump, 2) == [5, 6]
    assert [e for e in core.events() if isinstance(e, (OffsetReset, LogTruncation))] == []


def test_read_committed_skips_aborted_records_and_markers() -> None:
    cluster = ModelCluster(brokers=1)
    cluster.create_topic("t", partitions=1)
    cluster.append("t", 0, [b"plain-0"])
    cluster.begin_transaction(7)
    cluster.append(
        "t", 0, [b"aborted-1", b"aborted-2"], producer_id=7, producer_epoch=0, transactional=True
    )
    cluster.abort_transaction(7)
    cluster.begin_transaction(8)
    cluster.append("t", 0, [b"committed-4"], producer_id=8, producer_epoch=0, transactional=True)
    cluster.commit_transaction(8)
    end = cluster.high_watermark("t", 0)
    committed, pump = make(cluster, isolation=IsolationLevel.READ_COMMITTED)
    committed.assign([TP], pump.now)
    values: list[bytes | None] = []
    pump.until(
        lambda: (
            values.extend(r.value for _, r in committed.poll(pump.now))
            or committed.position(TP) == end
        )
    )
    assert values == [b"plain-0", b"committed-4"]
    uncommitted, pump2 = make(cluster)
    uncommitted.assign([TP], pump2.now)
    everything: list[bytes | None] = []
    pump2.until(
        lambda: (
            everything.extend(r.value for _, r in uncommitted.poll(pump2.now))
            or len(everything) >= 4
        )
    )
    assert everything == [b"plain-0", b"aborted-1", b"aborted-2", b"committed-4"]


def test_offset_lookups() -> None:
    cluster = ModelCluster(brokers=1)
    cluster.create_topic("t", partitions=2)
    cluster.append("t", 0, [b"a", b"b"], timestamp=1_000)
    cluster.append("t", 0, [b"c"], timestamp=2_000)
    cluster.truncate_start("t", 0, 2)
    core, pump = make(cluster)
    t1 = TopicPartition("t", 1)
    results: dict[int, OffsetsResult] = {}

    def answer(token: int) -> OffsetsResult:
        def arrived() -> bool:
            for event in core.events():
                if isinstance(event, OffsetsResult):
                    results[event.token] = event
            return token in results

        pump.until(arrived)
        return results[token]

    begin = answer(core.beginning_offsets([TP, t1], pump.now))
    end = answer(core.end_offsets([TP, t1], pump.now))
    times = answer(core.offsets_for_times({TP: 1_500, t1: 0}, pump.now))
    late = answer(core.offsets_for_times({TP: 5_000}, pump.now))
    assert {tp: o.offset for tp, o in begin.offsets.items()} == {TP: 2, t1: 0}
    assert {tp: o.offset for tp, o in end.offsets.items()} == {TP: 3, t1: 0}
    assert times.offsets[TP] == (2, 2_000, 0) and times.offsets[t1] is None
    assert late.offsets == {TP: None}
    with pytest.raises(LocalProtocolError):
        core.offsets_for_times({TP: -1}, pump.now)
    core.assign([TP], pump.now)
    core.unassign(pump.now)
    assert core.assignment() == set()


@pytest.mark.parametrize(
    ("code", "error"),
    [(29, TopicAuthorizationFailedError), (17, InvalidTopicExceptionError)],
)
def test_a_topic_the_metadata_refuses_stops_its_partitions_until_a_seek(
    code: int, error: type[Exception]
) -> None:
    """As the Java consumer raises these from poll: an error per partition, no silent wait."""
    cluster = ModelCluster(brokers=1)
    cluster.create_topic("t", partitions=2)
    cluster.append("t", 0, [b"a", b"b"])
    core, pump = make(cluster)
    tps = [TP, TopicPartition("t", 1)]
    cluster.inject_error(3, code, topic="t")  # Metadata (api 3) refuses the topic once
    core.assign(tps, pump.now)
    events: list[object] = []
    pump.until(lambda: events.extend(core.events()) or len(events) >= 2)
    assert [(e.partition, e.offset, type(e.error)) for e in events] == [  # type: ignore[attr-defined]
        (tp, -1, error) for tp in tps
    ]
    assert all(isinstance(e, FetchError) for e in events)
    pump.settle()
    assert core.events() == []  # stopped: nothing more until a seek
    assert core.poll(pump.now).by_partition == {}
    # The topic is readable again: a seek fetches.
    core.seek(TP, 0, pump.now)
    core.client.request_metadata(pump.now)
    assert consume(core, pump, 2) == [0, 1]
    assert core.events() == []
