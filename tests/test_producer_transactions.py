"""Property tests: transactions of the producer core against a faulty model cluster.

Hypothesis writes scripts of transactions (records, then commit or abort)
mixed with faults: coordinator errors on AddPartitionsToTxn, EndTxn and
InitProducerId, retriable Produce errors, dropped connections, held answers,
time passing.  Whatever the script:

* every transaction call gets exactly one outcome, and every send exactly
  one delivery report;
* a read_committed reader of the log (commit markers applied, aborted
  transactions left out) sees exactly the records of the transactions whose
  commit succeeded, each once, in send order per partition;
* a commit that fails leaves the transaction to be aborted, and nothing of it
  becomes visible.
"""

from __future__ import annotations

import random
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kafka_sansio import (
    ControlRecordType,
    KafkaSansioError,
    TransactionResult,
    TransactionState,
)
from kafka_sansio._client import ClientConfig
from kafka_sansio._producer import ProducerConfig, ProducerCore
from kafka_sansio._producer_events import Delivered
from kafka_sansio.errors import InvalidProducerEpochError, ProducerFencedError
from kafka_sansio.records import ControlRecord
from kafka_sansio.testing import ModelCluster, Pump
from kafka_sansio.testing._model_txn import time_out

PRODUCE, FIND_COORDINATOR, INIT_PRODUCER_ID, ADD_PARTITIONS, END_TXN = 0, 10, 22, 24, 26
PARTITIONS = 3

fault = st.one_of(
    st.tuples(st.just("error"), st.sampled_from([ADD_PARTITIONS, END_TXN]), st.sampled_from([51, 16, 15, 14])),
    st.tuples(st.just("error"), st.just(PRODUCE), st.sampled_from([6, 7, 19])),
    st.tuples(st.just("error"), st.just(FIND_COORDINATOR), st.just(15)),
    st.tuples(st.just("error"), st.just(INIT_PRODUCER_ID), st.sampled_from([51, 15])),
    st.tuples(st.just("drop"), st.integers(1, 2), st.just(0)),
    st.tuples(st.just("hold"), st.sampled_from([PRODUCE, END_TXN, ADD_PARTITIONS]), st.floats(0.1, 8.0)),
    st.tuples(st.just("wait"), st.floats(0.0, 3.0), st.just(0)),
)  # fmt: skip
transaction = st.tuples(
    st.integers(0, 30),  # records
    st.booleans(),  # commit (else abort)
    st.lists(fault, max_size=3),
)


def committed_view(cluster: ModelCluster) -> dict[int, list[bytes]]:
    """What a read_committed consumer reads: markers applied, aborted data left out."""
    view: dict[int, list[bytes]] = {}
    for p in range(PARTITIONS):
        out: list[bytes] = []
        open_data: dict[int, list[bytes]] = {}
        for batch in cluster.log("t", p):
            if batch.is_control:
                marker = ControlRecord.from_record(batch.records[0])
                data = open_data.pop(batch.producer_id, [])
                if marker.type == ControlRecordType.COMMIT:
                    out += data
                continue
            values = [r.value or b"" for r in batch.records]
            if batch.is_transactional:
                open_data.setdefault(batch.producer_id, []).extend(values)
            else:
                out += values
        view[p] = out
    return view


def run(script: list[tuple[int, bool, list[tuple[Any, ...]]]], seed: int) -> None:
    cluster = ModelCluster(brokers=2)
    cluster.create_topic("t", partitions=PARTITIONS, replication_factor=2)
    info = cluster.brokers[1]
    config = ProducerConfig(
        client=ClientConfig(bootstrap_servers=((info.host, info.port),), request_timeout=5.0),
        transactional_id="txn",
        batch_size=400,
        linger=0.02,
    )
    rng = random.Random(seed)
    core = ProducerCore(config, rng.random)
    pump = Pump(core, cluster)
    results: dict[int, TransactionResult] = {}
    delivered: dict[int, Any] = {}

    def collect() -> None:
        for event in core.events():
            if isinstance(event, TransactionResult):
                assert event.token not in results, "a transaction call got two outcomes"
                results[event.token] = event
            elif isinstance(event, Delivered):
                for token in event.tokens:
                    assert token not in delivered, "a record was reported twice"
                    delivered[token] = event.error

    def outcome(token: int) -> TransactionResult:
        def done() -> bool:
            collect()
            return token in results

        pump.until(done, 600.0)
        return results[token]

    assert outcome(core.init_transactions(pump.now)).error is None
    expected: dict[int, list[bytes]] = {p: [] for p in range(PARTITIONS)}
    sent = 0
    counter = 0
    for records, commit, faults in script:
        core.begin_transaction()
        values: dict[int, list[bytes]] = {p: [] for p in range(PARTITIONS)}
        for kind, a, b in faults:
            if kind == "error":
                cluster.inject_error(a, b, count=1)
            elif kind == "drop":
                cluster.drop_connections(a)
            elif kind == "hold":
                cluster.delay(a, b, count=1)
        failed = False
        for _ in range(records):
            counter += 1
            p = rng.randrange(PARTITIONS)
            value = b"%d" % counter
            try:
                core.send("t", value, pump.now, partition=p)
            except KafkaSansioError:
                # Something of the transaction failed: it can only be aborted.
                assert core._txn is not None
                assert core._txn.state is TransactionState.ABORTABLE_ERROR
                failed = True
                break
            sent += 1
            values[p].append(value)
            if rng.random() < 0.2:
                pump.advance(rng.random())
        for kind, a, _ in faults:
            if kind == "wait":
                pump.advance(a)
        pump.settle()
        collect()
        if commit and not failed:
            result = outcome(core.commit_transaction(pump.now))
            if result.error is None:
                for p in range(PARTITIONS):
                    expected[p] += values[p]
                continue
            # A failed commit leaves only the abort.
            assert core._txn is not None and core._txn.state is TransactionState.ABORTABLE_ERROR
        assert outcome(core.abort_transaction(pump.now)).error is None

    def quiet() -> bool:
        collect()
        return core.pending() == 0

    pump.until(quiet, 600.0)
    assert len(delivered) == sent, "a record got no delivery report"
    assert committed_view(cluster) == expected


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(st.lists(transaction, min_size=1, max_size=6), st.integers(0, 1000))
def test_read_committed_sees_exactly_the_committed_transactions(
    script: list[tuple[int, bool, list[tuple[Any, ...]]]], seed: int
) -> None:
    run(script, seed)


def _txn_core(
    cluster: ModelCluster, name: str, seed: int = 3, **settings: Any
) -> tuple[ProducerCore, Pump]:
    """A transactional producer core on ``cluster`` (its first broker), and its pump."""
    info = cluster.brokers[1]
    config = ProducerConfig(
        client=ClientConfig(bootstrap_servers=((info.host, info.port),)),
        transactional_id=name,
        **settings,
    )
    core = ProducerCore(config, random.Random(seed).random)
    return core, Pump(core, cluster)


def _wait(core: ProducerCore, pump: Pump, token: int, seen: dict[int, Any]) -> TransactionResult:
    def done() -> bool:
        seen.update((e.token, e) for e in core.events() if isinstance(e, TransactionResult))
        return token in seen

    pump.until(done, 600.0)
    result: TransactionResult = seen[token]
    return result


def _initialized(
    name: str, **settings: Any
) -> tuple[ModelCluster, ProducerCore, Pump, dict[int, Any]]:
    """A one-broker cluster with topic "t" and a producer whose init_transactions succeeded."""
    cluster = ModelCluster(brokers=1)
    cluster.create_topic("t", partitions=PARTITIONS)
    core, pump = _txn_core(cluster, name, **settings)
    seen: dict[int, Any] = {}
    assert _wait(core, pump, core.init_transactions(pump.now), seen).error is None
    return cluster, core, pump, seen


def test_close_aborts_an_open_transaction() -> None:
    """As in the Java producer: closing mid-transaction aborts it (markers written, LSO moves)."""
    cluster = ModelCluster(brokers=1)
    cluster.create_topic("t", partitions=PARTITIONS)
    core, pump = _txn_core(cluster, "closing", seed=1)
    results: list[TransactionResult] = []

    def collect() -> list[Any]:
        events = core.events()
        results.extend(e for e in events if isinstance(e, TransactionResult))
        return events

    token = core.init_transactions(pump.now)
    pump.until(lambda: (collect(), any(r.token == token for r in results))[1])
    core.begin_transaction()
    for i in range(10):
        core.send("t", b"%d" % i, pump.now, partition=i % PARTITIONS)
    core.flush(pump.now)
    pump.until(lambda: (collect(), core.pending() == 0)[1])
    assert sum(len(cluster.records("t", p)) for p in range(PARTITIONS)) == 10
    assert any(cluster.last_stable_offset("t", p) == 0 for p in range(PARTITIONS))
    core.close(pump.now)
    pump.until(lambda: (collect(), core.closed)[1])
    assert [r.operation for r in results] == ["init", "abort"]
    assert all(r.error is None for r in results)
    for p in range(PARTITIONS):
        assert cluster.last_stable_offset("t", p) == cluster.high_watermark("t", p)
    assert committed_view(cluster) == {p: [] for p in range(PARTITIONS)}


def test_a_call_repeated_while_under_way_waits_for_the_same_outcome() -> None:
    """init/commit/abort called again before their outcome return the same token."""
    cluster = ModelCluster(brokers=1)
    cluster.create_topic("t", partitions=PARTITIONS)
    core, pump = _txn_core(cluster, "again", seed=2)
    results: dict[int, TransactionResult] = {}

    def finished(token: int) -> bool:
        results.update((e.token, e) for e in core.events() if isinstance(e, TransactionResult))
        return token in results

    cluster.delay(INIT_PRODUCER_ID, 5.0)
    first = core.init_transactions(pump.now)
    assert core.init_transactions(pump.now) == first
    pump.until(lambda: finished(first))
    assert results[first].error is None
    core.begin_transaction()
    core.send("t", b"v", pump.now, partition=0)
    cluster.delay(END_TXN, 5.0)
    commit = core.commit_transaction(pump.now)
    pump.advance(1.0)
    assert not finished(commit)
    assert core.commit_transaction(pump.now) == commit
    pump.until(lambda: finished(commit))
    assert results[commit].error is None and len(results) == 2
    assert committed_view(cluster) == {0: [b"v"], 1: [], 2: []}


def test_records_lost_to_a_missing_topic_fail_the_commit() -> None:
    cluster, core, pump, seen = _initialized("missing", max_block=5.0)
    core.begin_transaction()
    core.send("t", b"kept", pump.now, partition=0)
    core.send("nowhere", b"lost", pump.now)
    result = _wait(core, pump, core.commit_transaction(pump.now), seen)
    assert result.error is not None
    assert core._txn is not None and core._txn.state is TransactionState.ABORTABLE_ERROR
    assert _wait(core, pump, core.abort_transaction(pump.now), seen).error is None
    assert committed_view(cluster) == {p: [] for p in range(PARTITIONS)}


def test_an_abort_while_partitions_are_being_added_still_ends_the_transaction() -> None:
    cluster, core, pump, seen = _initialized("adding")
    core.begin_transaction()
    cluster.delay(ADD_PARTITIONS, 2.0)
    core.send("t", b"x", pump.now, partition=1)
    pump.advance(0.5)  # AddPartitionsToTxn is out, its answer held
    assert _wait(core, pump, core.abort_transaction(pump.now), seen).error is None
    # The coordinator had the partition, so EndTxn(abort) must have gone out: a
    # new producer with the id then finds nothing open and gets the next epoch
    # (an open transaction would be aborted first, at one more epoch).
    epoch = core.producer_epoch
    other, other_pump = _txn_core(cluster, "adding")
    other_seen: dict[int, Any] = {}
    token = other.init_transactions(other_pump.now)
    assert _wait(other, other_pump, token, other_seen).error is None
    assert other.producer_epoch == epoch + 1


def test_close_during_a_commit_that_fails_aborts_the_transaction() -> None:
    cluster, core, pump, seen = _initialized("closing-fails")
    core.begin_transaction()
    core.send("t", b"ok", pump.now, partition=0)
    core.flush(pump.now)
    pump.until(lambda: core.pending() == 0)
    cluster.inject_error(PRODUCE, 87, count=1)  # INVALID_RECORD: the batch fails for good
    core.send("t", b"bad", pump.now, partition=2)
    token = core.commit_transaction(pump.now)
    core.close(pump.now)
    pump.until(lambda: core.closed, 600.0)
    assert _wait(core, pump, token, seen).error is not None
    for p in range(PARTITIONS):
        assert cluster.last_stable_offset("t", p) == cluster.high_watermark("t", p)
    assert committed_view(cluster) == {p: [] for p in range(PARTITIONS)}


def _refused_by_the_leader(name: str) -> tuple[ModelCluster, ProducerCore, Pump, dict[int, Any]]:
    """A producer whose open transaction the coordinator aborted with a bumped epoch.

    Its next record has failed INVALID_PRODUCER_EPOCH, leaving the transaction
    abortable.
    """
    cluster, core, pump, seen = _initialized(name)
    core.begin_transaction()
    core.send("t", b"first", pump.now, partition=0)
    core.flush(pump.now)
    pump.until(lambda: core.pending() == 0)
    return cluster, core, pump, seen


def _send_refused(core: ProducerCore, pump: Pump, value: bytes) -> None:
    token = core.send("t", value, pump.now, partition=0)
    core.flush(pump.now)
    errors: dict[int, Any] = {}

    def reported() -> bool:
        for event in core.events():
            if isinstance(event, Delivered):
                errors.update((t, event.error) for t in event.tokens)
        return token in errors

    pump.until(reported)
    assert isinstance(errors[token], InvalidProducerEpochError)
    assert core._txn is not None and core._txn.state is TransactionState.ABORTABLE_ERROR


def test_a_timed_out_transaction_is_aborted_with_the_epoch_claimed_back() -> None:
    """KIP-588: the abort sends InitProducerId naming the old epoch, not EndTxn, and goes on."""
    cluster, core, pump, seen = _refused_by_the_leader("timed-out")
    epoch = core.producer_epoch
    time_out(cluster, "timed-out", pump.now)
    _send_refused(core, pump, b"refused")
    before = len(cluster.request_log)
    assert _wait(core, pump, core.abort_transaction(pump.now), seen).error is None
    # Not EndTxn (the coordinator would refuse the old epoch): InitProducerId only.
    assert [api for _, api, _ in cluster.request_log[before:]] == [INIT_PRODUCER_ID]
    assert core.producer_epoch == epoch + 1  # the coordinator's bumped epoch, handed back
    core.begin_transaction()
    core.send("t", b"after", pump.now, partition=0)
    assert _wait(core, pump, core.commit_transaction(pump.now), seen).error is None
    assert committed_view(cluster) == {0: [b"after"], 1: [], 2: []}


def test_a_fenced_producer_refused_by_the_leader_is_fenced_at_the_abort() -> None:
    cluster, core, pump, seen = _refused_by_the_leader("fenced")
    other, other_pump = _txn_core(cluster, "fenced")
    other_seen: dict[int, Any] = {}
    assert _wait(other, other_pump, other.init_transactions(other_pump.now), other_seen).error is None
    _send_refused(core, pump, b"zombie")
    result = _wait(core, pump, core.abort_transaction(pump.now), seen)
    assert isinstance(result.error, ProducerFencedError)
    assert core._txn is not None and core._txn.state is TransactionState.FATAL
    other.begin_transaction()
    other.send("t", b"live", other_pump.now, partition=0)
    assert _wait(other, other_pump, other.commit_transaction(other_pump.now), other_seen).error is None
    assert committed_view(cluster) == {0: [b"live"], 1: [], 2: []}
