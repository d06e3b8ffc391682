"""The model's transaction coordinator, driven by raw requests, and compared with Kafka.

The model-only tests talk to :class:`ModelCluster` through a client
``BrokerConnection`` (``Link``); the last test sends one request sequence to
the real broker and to the model and compares what each answered.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from test_model import Link
from test_model_broker import BrokerSide, ModelSide, fetch

from kafka_sansio._messages.add_offsets_to_txn import AddOffsetsToTxnRequest
from kafka_sansio._messages.add_partitions_to_txn import (
    AddPartitionsToTxnRequest,
    AddPartitionsToTxnTopic,
)
from kafka_sansio._messages.end_txn import EndTxnRequest
from kafka_sansio._messages.find_coordinator import FindCoordinatorRequest
from kafka_sansio._messages.init_producer_id import InitProducerIdRequest
from kafka_sansio._messages.offset_fetch import (
    OffsetFetchRequest,
    OffsetFetchRequestGroup,
    OffsetFetchRequestTopics,
)
from kafka_sansio._messages.produce import PartitionProduceData, ProduceRequest, TopicProduceData
from kafka_sansio._messages.txn_offset_commit import (
    TxnOffsetCommitRequest,
    TxnOffsetCommitRequestPartition,
    TxnOffsetCommitRequestTopic,
)
from kafka_sansio.records import Record, decode_records, encode_batch
from kafka_sansio.testing import _model_group, _model_txn
from kafka_sansio.testing._model import ModelCluster

TXN = "txn-a"

# ----------------------------------------------------------------------------- requests


def init(txn: str = TXN, *, timeout_ms: int = 60_000, pid: int = -1, epoch: int = -1) -> Any:
    return InitProducerIdRequest(
        transactional_id=txn,
        transaction_timeout_ms=timeout_ms,
        producer_id=pid,
        producer_epoch=epoch,
    )


def add_partitions(pid: int, epoch: int, parts: list[tuple[str, int]], txn: str = TXN) -> Any:
    topics: dict[str, list[int]] = {}
    for name, index in parts:
        topics.setdefault(name, []).append(index)
    return AddPartitionsToTxnRequest(
        v3_and_below_transactional_id=txn,
        v3_and_below_producer_id=pid,
        v3_and_below_producer_epoch=epoch,
        v3_and_below_topics=[
            AddPartitionsToTxnTopic(name=n, partitions=ps) for n, ps in topics.items()
        ],
    )


def end(pid: int, epoch: int, commit: bool, txn: str = TXN) -> Any:
    return EndTxnRequest(
        transactional_id=txn, producer_id=pid, producer_epoch=epoch, committed=commit
    )


def produce(
    topic: str, partition: int, pid: int, epoch: int, seq: int, values: list[bytes], txn: str = TXN
) -> Any:
    records = [Record(i, 1_000, i, None, v, ()) for i, v in enumerate(values)]
    data = encode_batch(
        records, producer_id=pid, producer_epoch=epoch, base_sequence=seq, transactional=True
    )
    return ProduceRequest(
        transactional_id=txn,
        acks=-1,
        timeout_ms=5_000,
        topic_data=[
            TopicProduceData(
                name=topic, partition_data=[PartitionProduceData(index=partition, records=data)]
            )
        ],
    )


def txn_commit(pid: int, epoch: int, group: str, topic: str, offset: int, **member: Any) -> Any:
    partition = TxnOffsetCommitRequestPartition(
        partition_index=0, committed_offset=offset, committed_metadata="m"
    )
    return TxnOffsetCommitRequest(
        transactional_id=TXN,
        group_id=group,
        producer_id=pid,
        producer_epoch=epoch,
        topics=[TxnOffsetCommitRequestTopic(name=topic, partitions=[partition])],
        **member,
    )


def offset_fetch(group: str, topic: str, stable: bool) -> Any:
    topics = [OffsetFetchRequestTopics(name=topic, partition_indexes=[0])]
    return OffsetFetchRequest(
        groups=[OffsetFetchRequestGroup(group_id=group, topics=topics)], require_stable=stable
    )


def apt_codes(response: Any) -> dict[tuple[str, int], int]:
    return {
        (t.name, p.partition_index): p.partition_error_code
        for t in response.results_by_topic_v3_and_below
        for p in t.results_by_partition
    }


def produce_code(response: Any) -> int:
    return int(response.responses[0].partition_responses[0].error_code)


def fetched(response: Any) -> tuple[int, int, list[bytes | None]]:
    """(high watermark, last stable offset, user values) of the first partition."""
    p = response.responses[0].partitions[0]
    values = [
        r.value
        for b in decode_records(bytes(p.records or b"")).batches
        if not b.is_control
        for r in b.records
    ]
    return p.high_watermark, p.last_stable_offset, values


# ----------------------------------------------------------------------------- model only


@pytest.fixture
def cluster() -> ModelCluster:
    cluster = ModelCluster(brokers=1)
    cluster.create_topic("t", partitions=2, replication_factor=1)
    return cluster


def test_find_coordinator_for_a_transactional_id(cluster: ModelCluster) -> None:
    link = Link(cluster)
    old = link.call(FindCoordinatorRequest(key=TXN, key_type=1), version=3)
    assert (old.error_code, old.node_id) == (0, 1)
    new = link.call(FindCoordinatorRequest(coordinator_keys=[TXN, "b"], key_type=1), version=4)
    assert [(c.key, c.error_code, c.node_id) for c in new.coordinators] == [
        (TXN, 0, 1),
        ("b", 0, 1),
    ]


def test_init_keeps_the_producer_id_and_bumps_the_epoch(cluster: ModelCluster) -> None:
    link = Link(cluster)
    first = link.call(init(), version=5)
    second = link.call(init(), version=5)
    assert (first.error_code, second.error_code) == (0, 0)
    assert second.producer_id == first.producer_id
    assert (first.producer_epoch, second.producer_epoch) == (0, 1)
    other = link.call(init("txn-b"), version=5)
    assert other.producer_id != first.producer_id
    # KIP-360: naming the current epoch bumps it; a stale one is fenced.
    pid = first.producer_id
    bumped = link.call(init(pid=pid, epoch=1), version=4)
    assert (bumped.error_code, bumped.producer_epoch) == (0, 2)
    assert link.call(init(pid=pid, epoch=0), version=3).error_code == 47
    assert link.call(init(pid=pid, epoch=0), version=4).error_code == 90
    assert link.call(init(pid=pid + 7, epoch=2), version=5).error_code == 90
    assert link.call(init(timeout_ms=900_001), version=5).error_code == 50
    assert link.call(init(""), version=5).error_code == 42
    # The idempotent path still hands out a fresh id every time.
    idem = [link.call(init(None), version=5) for _ in range(2)]  # type: ignore[arg-type]
    assert idem[0].producer_id != idem[1].producer_id and idem[0].producer_epoch == 0


def test_add_partitions_unknown_topic_fails_the_whole_request(cluster: ModelCluster) -> None:
    link = Link(cluster)
    r = link.call(init(), version=5)
    parts = [("t", 0), ("nope", 0), ("t", 9), ("t", 1)]
    codes = apt_codes(link.call(add_partitions(r.producer_id, 0, parts), version=3))
    assert codes == {("t", 0): 55, ("nope", 0): 3, ("t", 9): 3, ("t", 1): 55}
    txn = _model_txn.transaction(cluster, TXN)
    assert txn is not None and txn.state == "Empty" and not txn.partitions
    wrong = link.call(add_partitions(r.producer_id + 1, 0, [("t", 0)]), version=3)
    assert apt_codes(wrong) == {("t", 0): 49}
    for version, code in [(1, 47), (2, 90), (3, 90)]:
        stale = link.call(add_partitions(r.producer_id, 5, [("t", 0)]), version=version)
        assert apt_codes(stale) == {("t", 0): code}


def test_commit_makes_the_records_visible_to_read_committed(cluster: ModelCluster) -> None:
    link = Link(cluster)
    r = link.call(init(), version=5)
    pid, epoch = r.producer_id, r.producer_epoch
    assert link.call(end(pid, epoch, True), version=4).error_code == 48  # nothing ongoing
    assert apt_codes(link.call(add_partitions(pid, epoch, [("t", 0)]), version=3)) == {("t", 0): 0}
    assert produce_code(link.call(produce("t", 0, pid, epoch, 0, [b"a", b"b"]), version=11)) == 0
    assert cluster.last_stable_offset("t", 0) == 0
    hw, lso, values = fetched(link.call(_fetch(cluster, isolation=1), version=12))
    assert (hw, lso, values) == (2, 0, [])
    assert link.call(end(pid, epoch, True), version=4).error_code == 0
    hw, lso, values = fetched(link.call(_fetch(cluster, isolation=1), version=12))
    assert (hw, lso, values) == (3, 3, [b"a", b"b"])
    assert cluster.log("t", 0)[-1].is_control
    # A repeated commit is answered OK; an abort of the committed transaction is not.
    assert link.call(end(pid, epoch, True), version=4).error_code == 0
    assert link.call(end(pid, epoch, False), version=4).error_code == 48


def test_abort_hides_the_records_from_read_committed(cluster: ModelCluster) -> None:
    link = Link(cluster)
    r = link.call(init(), version=5)
    pid, epoch = r.producer_id, r.producer_epoch
    link.call(add_partitions(pid, epoch, [("t", 0), ("t", 1)]), version=3)
    assert produce_code(link.call(produce("t", 0, pid, epoch, 0, [b"x"]), version=11)) == 0
    assert link.call(end(pid, epoch, False), version=4).error_code == 0
    hw, lso, values = fetched(link.call(_fetch(cluster, isolation=1), version=12))
    assert (hw, lso) == (2, 2)
    assert values == [b"x"]  # returned, but listed as aborted:
    assert cluster.partition("t", 0).log.aborted[0].producer_id == pid
    # Both added partitions got a marker, even the one nothing was written to.
    assert [b.is_control for b in cluster.log("t", 1)] == [True]
    assert link.call(end(pid, epoch, False), version=4).error_code == 0
    assert link.call(end(pid, epoch, True), version=4).error_code == 48


def test_produce_to_a_partition_not_added_is_refused(cluster: ModelCluster) -> None:
    link = Link(cluster)
    r = link.call(init(), version=5)
    pid, epoch = r.producer_id, r.producer_epoch
    for version, code in [(3, 48), (10, 48), (11, 120)]:
        response = link.call(produce("t", 1, pid, epoch, 0, [b"x"]), version=version)
        assert produce_code(response) == code
    link.call(add_partitions(pid, epoch, [("t", 0)]), version=3)
    assert produce_code(link.call(produce("t", 1, pid, epoch, 0, [b"x"]), version=9)) == 48
    assert produce_code(link.call(produce("t", 0, pid + 1, 0, 0, [b"x"]), version=11)) == 49
    assert produce_code(link.call(produce("t", 0, pid, epoch, 0, [b"x"], "zz"), version=11)) == 49
    assert cluster.high_watermark("t", 1) == 0 and cluster.high_watermark("t", 0) == 0


def test_a_new_producer_fences_the_old_one(cluster: ModelCluster) -> None:
    link = Link(cluster)
    r = link.call(init(), version=5)
    pid, old = r.producer_id, r.producer_epoch
    link.call(add_partitions(pid, old, [("t", 0)]), version=3)
    assert produce_code(link.call(produce("t", 0, pid, old, 0, [b"x"]), version=11)) == 0
    # The ongoing transaction is aborted with a bumped epoch; the caller retries.
    assert link.call(init(), version=5).error_code == 51
    assert cluster.last_stable_offset("t", 0) == 2
    assert cluster.log("t", 0)[-1].producer_epoch == old + 1
    retried = link.call(init(), version=5)
    assert (retried.error_code, retried.producer_id, retried.producer_epoch) == (0, pid, old + 2)
    assert link.call(end(pid, old, True), version=1).error_code == 47
    assert link.call(end(pid, old, True), version=2).error_code == 90
    assert apt_codes(link.call(add_partitions(pid, old, [("t", 0)]), version=3)) == {("t", 0): 90}
    assert produce_code(link.call(produce("t", 0, pid, old, 1, [b"y"]), version=11)) == 47
    offsets = AddOffsetsToTxnRequest(transactional_id=TXN, producer_id=pid, producer_epoch=old)
    assert link.call(offsets, version=1).error_code == 47
    assert link.call(offsets, version=3).error_code == 90


def test_txn_offsets_become_committed_only_when_the_transaction_commits(
    cluster: ModelCluster,
) -> None:
    link = Link(cluster)
    r = link.call(init(), version=5)
    pid, epoch = r.producer_id, r.producer_epoch
    # Without AddOffsetsToTxn the group coordinator refuses the offsets.
    assert _toc_code(link.call(txn_commit(pid, epoch, "g", "t", 5), version=3)) == 48
    assert _toc_code(link.call(txn_commit(pid, epoch, "g", "t", 5), version=4)) == 120
    add = AddOffsetsToTxnRequest(
        transactional_id=TXN, producer_id=pid, producer_epoch=epoch, group_id="g"
    )
    assert link.call(add, version=3).error_code == 0
    assert _toc_code(link.call(txn_commit(pid, epoch - 1, "g", "t", 5), version=3)) == 47
    assert _toc_code(link.call(txn_commit(pid, epoch, "g", "t", 5), version=3)) == 0
    assert _model_group.committed(cluster, "g") == {}
    assert _of(link.call(offset_fetch("g", "t", False), version=8)) == (0, -1)
    assert _of(link.call(offset_fetch("g", "t", True), version=8)) == (88, -1)
    assert link.call(end(pid, epoch, True), version=4).error_code == 0
    assert _model_group.committed(cluster, "g") == {("t", 0): 5}
    assert _of(link.call(offset_fetch("g", "t", True), version=8)) == (0, 5)
    # An aborted transaction's offsets are dropped.
    link.call(add, version=3)
    assert _toc_code(link.call(txn_commit(pid, epoch, "g", "t", 9), version=3)) == 0
    assert link.call(end(pid, epoch, False), version=4).error_code == 0
    assert _of(link.call(offset_fetch("g", "t", True), version=8)) == (0, 5)


def test_txn_offset_commit_checks_the_member_like_offset_commit(cluster: ModelCluster) -> None:
    from kafka_sansio._messages.join_group import JoinGroupRequest, JoinGroupRequestProtocol

    link = Link(cluster)
    r = link.call(init(), version=5)
    pid, epoch = r.producer_id, r.producer_epoch
    for group in ("g", "empty"):
        link.call(
            AddOffsetsToTxnRequest(
                transactional_id=TXN, producer_id=pid, producer_epoch=epoch, group_id=group
            ),
            version=3,
        )
    # A group nobody joined accepts a commit without generation.
    anonymous = txn_commit(pid, epoch, "empty", "t", 1, generation_id=-1, member_id="m")
    assert _toc_code(link.call(anonymous, version=3)) == 0
    join = JoinGroupRequest(
        group_id="g",
        session_timeout_ms=30_000,
        rebalance_timeout_ms=30_000,
        member_id="",
        protocol_type="consumer",
        protocols=[JoinGroupRequestProtocol(name="range", metadata=b"")],
    )
    joined = link.call(join, version=3)  # v3: no MEMBER_ID_REQUIRED round
    assert joined.error_code == 0
    gen, member = joined.generation_id, joined.member_id
    cases = [
        ({"generation_id": gen, "member_id": member}, 0),
        ({"generation_id": gen + 1, "member_id": member}, 22),
        ({"generation_id": gen, "member_id": "stranger"}, 25),
        ({"generation_id": -1, "member_id": ""}, 0),
    ]
    for fields, code in cases:
        assert (
            _toc_code(link.call(txn_commit(pid, epoch, "g", "t", 3, **fields), version=3)) == code
        )


def test_unknown_transactional_ids_and_injected_errors(cluster: ModelCluster) -> None:
    link = Link(cluster)
    assert link.call(end(1, 0, True, "never"), version=4).error_code == 49
    assert apt_codes(link.call(add_partitions(1, 0, [("t", 0)], "never"), version=3)) == {
        ("t", 0): 49
    }
    cluster.inject_error(26, 15)
    assert link.call(end(1, 0, True, "never"), version=4).error_code == 15
    assert link.call(end(1, 0, True, "never"), version=4).error_code == 49


def test_a_broker_that_is_not_the_coordinator_says_so() -> None:
    cluster = ModelCluster(brokers=3)
    coordinator = _model_txn.coordinator_of(cluster, TXN)
    other = next(n for n in cluster.brokers if n != coordinator)
    link = Link(cluster, node=other)
    assert link.call(end(1, 0, True), version=4).error_code == 16
    found = link.call(FindCoordinatorRequest(key=TXN, key_type=1), version=3)
    assert found.node_id == coordinator


def _fetch(cluster: ModelCluster, isolation: int) -> Any:
    from test_model import fetch_request

    return fetch_request(cluster, {("t", 0): 0}, isolation=isolation)


def _toc_code(response: Any) -> int:
    return int(response.topics[0].partitions[0].error_code)


def _of(response: Any) -> tuple[int, int]:
    p = response.groups[0].topics[0].partitions[0]
    return p.error_code, p.committed_offset


# ----------------------------------------------------------------------------- against Kafka


def _until(side: Any, request: Any, version: int, ok: Callable[[Any], bool]) -> Any:
    """Send until *ok* holds (the broker writes markers after answering; the model at once)."""
    deadline = time.monotonic() + 30
    while True:
        response = side.call(request, version)
        if ok(response) or time.monotonic() > deadline:
            return response
        time.sleep(0.1)


def scenario(side: Any) -> list[Any]:
    """One producer's life: coordinator, init, add, produce, commit, fencing, errors."""
    topic = side.new_topic(2)
    txn = f"txn-{uuid.uuid4().hex[:8]}"
    group = f"g-{txn}"
    seen: list[Any] = []
    found = _until(
        side, FindCoordinatorRequest(key=txn, key_type=1), 3, lambda r: r.error_code != 15
    )
    seen.append(("find v3", found.error_code))
    found = _until(
        side,
        FindCoordinatorRequest(coordinator_keys=[txn], key_type=1),
        4,
        lambda r: r.coordinators[0].error_code != 15,
    )
    seen.append(("find v4", found.coordinators[0].error_code))
    first = _until(side, init(txn), 5, lambda r: r.error_code not in (14, 15, 51))
    second = side.call(init(txn), 5)
    pid, epoch = first.producer_id, second.producer_epoch
    seen.append(("init", first.error_code, second.error_code, second.producer_id == pid, epoch))
    for version in (3, 4):
        stale = side.call(init(txn, pid=pid, epoch=0), version)
        seen.append(("init stale", version, stale.error_code))
    seen.append(("init timeout", side.call(init(txn, timeout_ms=900_001), 5).error_code))
    seen.append(("end without txn", side.call(end(pid, epoch, True, txn), 4).error_code))
    parts = [(topic, 0), ("nope-" + txn, 0), (topic, 1)]
    seen.append(
        (
            "add unknown",
            sorted(apt_codes(side.call(add_partitions(pid, epoch, parts, txn), 3)).values()),
        )
    )
    for version in (9, 11):
        r = side.call(produce(topic, 1, pid, epoch, 0, [b"x"], txn), version)
        seen.append(("produce not added", version, produce_code(r)))
    added = side.call(add_partitions(pid, epoch, [(topic, 0)], txn), 3)
    seen.append(("add", list(apt_codes(added).values())))
    r = side.call(produce(topic, 0, pid, epoch, 0, [b"a", b"b"], txn), 11)
    seen.append(("produce", produce_code(r)))
    # The group's coordinator must be up first (a fresh broker creates the offsets
    # topic on the first lookup); not part of the comparison.
    _until(side, FindCoordinatorRequest(key=group, key_type=0), 3, lambda r: r.error_code == 0)
    add_offsets = AddOffsetsToTxnRequest(
        transactional_id=txn, producer_id=pid, producer_epoch=epoch, group_id=group
    )
    seen.append(("add offsets", side.call(add_offsets, 3).error_code))
    r = side.call(_txn_commit(txn, pid, epoch, group, topic, 2), 3)
    seen.append(("txn offset commit", _toc_code(r)))
    seen.append(("unstable", _of(side.call(offset_fetch(group, topic, True), 8))))
    seen.append(("commit", side.call(end(pid, epoch, True, txn), 4).error_code))
    stable = _until(side, offset_fetch(group, topic, True), 8, lambda r: _of(r)[0] != 88)
    seen.append(("committed offset", _of(stable)))
    again = _until(side, end(pid, epoch, True, txn), 4, lambda r: r.error_code != 51)
    seen.append(("commit again", again.error_code))
    opposite = _until(side, end(pid, epoch, False, txn), 4, lambda r: r.error_code != 51)
    seen.append(("abort after commit", opposite.error_code))
    view = fetched(fetch(side, {(topic, 0): 0}, 12, isolation_level=1))
    seen.append(("read committed", view))
    # A second producer fences the first, whose transaction is aborted.
    side.call(add_partitions(pid, epoch, [(topic, 0)], txn), 3)
    r = side.call(produce(topic, 0, pid, epoch, 2, [b"gone"], txn), 11)
    seen.append(("produce 2", produce_code(r)))
    fencing = side.call(init(txn), 5)
    seen.append(("init while ongoing", fencing.error_code))
    newer = _until(side, init(txn), 5, lambda r: r.error_code != 51)
    seen.append(("init retried", newer.error_code, newer.producer_id == pid, newer.producer_epoch))
    for version in (1, 2):
        seen.append(("old end", version, side.call(end(pid, epoch, True, txn), version).error_code))
    r = side.call(produce(topic, 0, pid, epoch, 3, [b"late"], txn), 11)
    seen.append(("old produce", produce_code(r)))
    r = side.call(add_partitions(pid, epoch, [(topic, 0)], txn), 3)
    seen.append(("old add", list(apt_codes(r).values())))
    view = fetched(fetch(side, {(topic, 0): 0}, 12, isolation_level=1))
    seen.append(("read committed after abort", view[0], view[1]))
    return seen


def _txn_commit(txn: str, pid: int, epoch: int, group: str, topic: str, offset: int) -> Any:
    request = txn_commit(pid, epoch, group, topic, offset)
    request.transactional_id = txn
    return request


@pytest.fixture
def broker_side(kafka: Any) -> Any:
    side = BrokerSide(kafka)
    yield side
    side.close()


def test_the_model_coordinator_answers_like_kafka(broker_side: BrokerSide) -> None:
    on_model = scenario(ModelSide())
    on_broker = scenario(broker_side)
    for i, (m, b) in enumerate(zip(on_model, on_broker, strict=True)):
        assert m == b, f"observation {i} differs:\nmodel:  {m}\nbroker: {b}"
