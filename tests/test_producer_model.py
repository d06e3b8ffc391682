"""Producer core against the model broker (fake clock): batching, errors, idempotence."""

from __future__ import annotations

import itertools
import random
from typing import Any

import pytest

from kafka_sansio._client import ClientConfig
from kafka_sansio._errors import LocalProtocolError
from kafka_sansio._partitioner import murmur2_partition
from kafka_sansio._producer import ProducerConfig, ProducerCore
from kafka_sansio._producer_events import (
    BufferFullError,
    Delivered,
    DeliveryTimeoutError,
    ProducerClosedError,
    ProducerFailed,
    RecordTooLargeError,
)
from kafka_sansio.errors import (
    ClusterAuthorizationFailedError,
    InvalidRecordError,
    UnknownTopicOrPartitionError,
)
from kafka_sansio.testing import ModelCluster, Pump

PRODUCE, INIT_PRODUCER_ID = 0, 22


def make(cluster: ModelCluster, **settings: Any) -> tuple[ProducerCore, Pump]:
    info = cluster.brokers[1]
    client = settings.pop("client", {})
    config = ProducerConfig(
        client=ClientConfig(bootstrap_servers=((info.host, info.port),), **client), **settings
    )
    core = ProducerCore(config, random.Random(7).random)
    return core, Pump(core, cluster)


class Reports:
    """Collects Delivered events: token -> (partition, offset or None, error)."""

    def __init__(self) -> None:
        self.outcome: dict[int, tuple[int, int, Any]] = {}
        self.events: list[Any] = []

    def take(self, core: ProducerCore) -> None:
        for event in core.events():
            self.events.append(event)
            if isinstance(event, Delivered):
                for i, token in enumerate(event.tokens):
                    assert token not in self.outcome, f"token {token} reported twice"
                    offset = event.base_offset + i if event.base_offset >= 0 else -1
                    self.outcome[token] = (event.partition.partition, offset, event.error)


def run(core: ProducerCore, pump: Pump, reports: Reports, timeout: float = 300.0) -> None:
    def done() -> bool:
        reports.take(core)
        return core.pending() == 0

    pump.until(done, timeout)
    reports.take(core)


def test_keyed_records_land_where_java_puts_them_in_order() -> None:
    cluster = ModelCluster(brokers=3)
    cluster.create_topic("t", partitions=6)
    core, pump = make(cluster)
    reports = Reports()
    sent = {}
    for i in range(2000):
        key = b"key-%d" % (i % 97)
        sent[core.send("t", b"%d" % i, pump.now, key=key)] = (key, i)
    core.flush(pump.now)
    run(core, pump, reports)
    assert set(reports.outcome) == set(sent)
    for token, (key, i) in sent.items():
        partition, offset, error = reports.outcome[token]
        assert error is None
        assert partition == murmur2_partition(key, 6)
        record = cluster.records("t", partition)[offset]
        assert (record.key, record.value) == (key, b"%d" % i)
    for p in range(6):
        values = [int(r.value) for r in cluster.records("t", p)]
        assert values == sorted(values)
    assert sum(len(cluster.records("t", p)) for p in range(6)) == 2000
    assert core.buffered_bytes() == 0


def test_linger_holds_a_batch_and_flush_releases_it() -> None:
    cluster = ModelCluster(brokers=1)
    cluster.create_topic("t", partitions=1)
    core, pump = make(cluster, linger=1.0)
    reports = Reports()
    core.send("t", b"warm-up", pump.now)
    run(core, pump, reports)  # metadata and producer id are known now
    start = pump.now
    core.send("t", b"a", pump.now)
    pump.advance(0.5)
    assert len(cluster.records("t", 0)) == 1
    pump.advance(0.6)
    assert len(cluster.records("t", 0)) == 2
    assert pump.now - start >= 1.0
    last = core.send("t", b"b", pump.now)
    assert core.flush(pump.now) == last
    pump.settle()
    assert [r.value for r in cluster.records("t", 0)] == [b"warm-up", b"a", b"b"]


def test_batches_respect_batch_size_and_one_request_carries_one_batch_per_partition() -> None:
    cluster = ModelCluster(brokers=1)
    cluster.create_topic("t", partitions=1)
    core, pump = make(cluster, batch_size=1000, linger=10.0)
    reports = Reports()
    for i in range(100):
        core.send("t", b"x" * 50, pump.now, key=b"%d" % i)
    core.flush(pump.now)
    run(core, pump, reports)
    sizes = [len(b.records) for b in cluster.log("t", 0)]
    assert sum(sizes) == 100
    assert len(sizes) >= 7 and max(sizes) <= 1000 // 50
    deliveries = [e for e in reports.events if isinstance(e, Delivered)]
    assert len(deliveries) == len(sizes)


def test_headers_timestamps_and_compression_survive() -> None:
    cluster = ModelCluster(brokers=1)
    cluster.create_topic("t", partitions=1)
    for codec in ["none", "gzip", "snappy", "lz4", "zstd"]:
        core, pump = make(cluster, compression=codec)
        reports = Reports()
        token = core.send(
            "t",
            codec.encode(),
            pump.now,
            key=b"k",
            headers=[("h1", b"v1"), ("h2", None)],
            timestamp_ms=1_700_000_000_123,
        )
        run(core, pump, reports)
        _, offset, error = reports.outcome[token]
        assert error is None
        record = cluster.records("t", 0)[offset]
        assert record.value == codec.encode()
        assert record.headers == (("h1", b"v1"), ("h2", None))
        assert record.timestamp == 1_700_000_000_123
        assert (
            cluster.log("t", 0)[-1].compression
            == {"none": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}[codec]
        )


def test_log_append_time_is_reported() -> None:
    cluster = ModelCluster(brokers=1)
    cluster.create_topic("t", partitions=1, configs={"message.timestamp.type": "LogAppendTime"})
    core, pump = make(cluster)
    reports = Reports()
    core.send("t", b"v", pump.now)
    run(core, pump, reports)
    (event,) = [e for e in reports.events if isinstance(e, Delivered)]
    assert event.timestamp_ms == cluster.records("t", 0)[0].timestamp >= 0


def test_wall_offset_gives_record_timestamps() -> None:
    cluster = ModelCluster(brokers=1)
    cluster.create_topic("t", partitions=1)
    core, pump = make(cluster)
    core.wall_offset = 1_000_000.0
    reports = Reports()
    core.send("t", b"v", pump.now)
    run(core, pump, reports)
    assert cluster.records("t", 0)[0].timestamp == 1_000_000_000


@pytest.mark.parametrize("acks", [0, 1, -1])
def test_acks_without_idempotence(acks: int) -> None:
    cluster = ModelCluster(brokers=1)
    cluster.create_topic("t", partitions=2)
    core, pump = make(cluster, acks=acks, enable_idempotence=False)
    reports = Reports()
    tokens = [core.send("t", b"%d" % i, pump.now, key=b"%d" % i) for i in range(300)]
    core.flush(pump.now)
    run(core, pump, reports)
    assert sorted(reports.outcome) == tokens
    assert all(error is None for _, _, error in reports.outcome.values())
    assert sum(len(cluster.records("t", p)) for p in range(2)) == 300
    assert all(b.producer_id == -1 for p in range(2) for b in cluster.log("t", p))
    if acks == 0:
        assert all(offset == -1 for _, offset, _ in reports.outcome.values())
    assert INIT_PRODUCER_ID not in {api for _, api, _ in cluster.request_log}


def test_bad_input_raises_and_queues_nothing() -> None:
    cluster = ModelCluster(brokers=1)
    cluster.create_topic("t", partitions=2)
    core, pump = make(cluster, max_request_size=1000, buffer_memory=4000)
    with pytest.raises(RecordTooLargeError) as too_large:
        core.send("t", b"x" * 2000, pump.now)
    assert too_large.value.limit == 1000
    for bad in [
        lambda: core.send("t", "text", pump.now),  # type: ignore[arg-type]
        lambda: core.send("t", b"v", pump.now, key=5),  # type: ignore[arg-type]
        lambda: core.send("t", b"v", pump.now, headers=[("h",)]),  # type: ignore[list-item]
        lambda: core.send("t", b"v", pump.now, headers=[(1, b"")]),  # type: ignore[list-item]
        lambda: core.send("t", b"v", pump.now, timestamp_ms=-5),
        lambda: core.send("t", b"v", pump.now, partition=-1),
    ]:
        with pytest.raises(LocalProtocolError):
            bad()
    assert core.pending() == 0 and core.buffered_bytes() == 0
    reports = Reports()
    core.send("t", b"v", pump.now)
    run(core, pump, reports)
    with pytest.raises(LocalProtocolError, match="no partition 5"):
        core.send("t", b"v", pump.now, partition=5)
    assert core.pending() == 0


def test_full_buffer_raises_with_the_bytes_needed_then_frees_up() -> None:
    cluster = ModelCluster(brokers=1)
    cluster.create_topic("t", partitions=1)
    core, pump = make(cluster, buffer_memory=2000, linger=5.0)
    reports = Reports()
    tokens = []
    with pytest.raises(BufferFullError) as full:
        for i in range(100):
            tokens.append(core.send("t", b"x" * 100, pump.now, key=b"%d" % i))
    assert full.value.needed > full.value.available
    assert core.buffer_available() == full.value.available
    assert core.pending() == len(tokens) and core.buffered_bytes() <= 2000
    core.flush(pump.now)
    run(core, pump, reports)
    assert sorted(reports.outcome) == tokens
    assert core.buffer_available() == 2000
    core.send("t", b"x" * 100, pump.now)  # room again
    run(core, pump, reports)
    assert len(cluster.records("t", 0)) == len(tokens) + 1


def test_unknown_topic_fails_each_record_after_max_block() -> None:
    cluster = ModelCluster(brokers=1)
    core, pump = make(cluster, max_block=5.0)
    reports = Reports()
    tokens = [core.send("nope", b"%d" % i, pump.now) for i in range(3)]
    run(core, pump, reports, timeout=30)
    assert sorted(reports.outcome) == tokens
    for partition, offset, error in reports.outcome.values():
        assert isinstance(error, UnknownTopicOrPartitionError)
        assert (partition, offset) == (-1, -1)
    assert core.buffered_bytes() == 0


def test_records_wait_for_a_topic_created_later() -> None:
    cluster = ModelCluster(brokers=1)
    core, pump = make(cluster)
    reports = Reports()
    tokens = [core.send("late", b"%d" % i, pump.now, key=b"%d" % i) for i in range(50)]
    pump.advance(2.0)
    assert core.pending() == 50
    cluster.create_topic("late", partitions=3)
    run(core, pump, reports)
    assert sorted(reports.outcome) == tokens
    assert all(e is None for _, _, e in reports.outcome.values())
    for token, (partition, _, _) in reports.outcome.items():
        assert partition == murmur2_partition(b"%d" % (token - 1), 3)


def test_close_refuses_new_records_and_finishes_the_buffered_ones() -> None:
    cluster = ModelCluster(brokers=1)
    cluster.create_topic("t", partitions=1)
    core, pump = make(cluster, linger=30.0)
    reports = Reports()
    tokens = [core.send("t", b"%d" % i, pump.now) for i in range(10)]
    core.close(pump.now)
    with pytest.raises(ProducerClosedError):
        core.send("t", b"late", pump.now)
    run(core, pump, reports, timeout=5)
    assert sorted(reports.outcome) == tokens
    assert len(cluster.records("t", 0)) == 10
    assert core.closed


def test_abort_fails_everything_pending() -> None:
    cluster = ModelCluster(brokers=1)
    cluster.create_topic("t", partitions=1)
    core, pump = make(cluster, linger=30.0)
    reports = Reports()
    tokens = [core.send("t", b"%d" % i, pump.now) for i in range(10)]
    core.abort(pump.now)
    reports.take(core)
    assert sorted(reports.outcome) == tokens
    assert all(isinstance(e, ProducerClosedError) for _, _, e in reports.outcome.values())
    assert core.pending() == 0 and core.closed
    with pytest.raises(ProducerClosedError):
        core.send("t", b"late", pump.now)


def test_retriable_errors_and_lost_answers_write_each_record_once() -> None:
    cluster = ModelCluster(brokers=3)
    cluster.create_topic("t", partitions=3, leaders=[1, 2, 3])
    core, pump = make(cluster)
    reports = Reports()
    core.send("t", b"warm-up", pump.now, partition=0)
    run(core, pump, reports)
    cluster.inject_error(PRODUCE, 6, count=2)  # NOT_LEADER_OR_FOLLOWER
    cluster.inject_error(PRODUCE, 19, count=2)  # NOT_ENOUGH_REPLICAS
    tokens = [core.send("t", b"%d" % i, pump.now, key=b"%d" % i) for i in range(200)]
    core.flush(pump.now)
    run(core, pump, reports)
    # Answers lost after the broker wrote the batches: the retries are duplicates it drops.
    cluster.delay(PRODUCE, 1.0, count=10)
    tokens += [core.send("t", b"%d" % i, pump.now, key=b"%d" % i) for i in range(200, 400)]
    core.flush(pump.now)
    pump.settle()
    cluster.drop_connections()
    run(core, pump, reports)
    assert all(e is None for _, _, e in reports.outcome.values())
    values = [r.value for p in range(3) for r in cluster.records("t", p)]
    assert len(values) == len(set(values)) == 401
    assert core.producer_epoch == 0


def test_a_failed_batch_leaves_a_gap_that_an_epoch_bump_closes() -> None:
    cluster = ModelCluster(brokers=1)
    cluster.create_topic("t", partitions=1)
    core, pump = make(cluster, batch_size=200)
    reports = Reports()
    core.send("t", b"warm-up", pump.now)
    run(core, pump, reports)
    cluster.inject_error(PRODUCE, 87, count=1)  # INVALID_RECORD: the first batch fails for good
    tokens = [core.send("t", b"%d" % i, pump.now) for i in range(40)]
    core.flush(pump.now)
    run(core, pump, reports)
    failed = [t for t in tokens if reports.outcome[t][2] is not None]
    assert failed and all(isinstance(reports.outcome[t][2], InvalidRecordError) for t in failed)
    written = [int(r.value) for r in cluster.records("t", 0)[1:]]
    assert sorted(written) == written
    assert len(written) + len(failed) == 40
    assert core.producer_epoch >= 1  # the sequences started over under a new epoch


def _after_one_record() -> tuple[ModelCluster, ProducerCore, Pump, Reports]:
    """A one-partition topic to which an idempotent producer has written b"a" (offset 0)."""
    cluster = ModelCluster(brokers=1)
    cluster.create_topic("t", partitions=1)
    core, pump = make(cluster)
    reports = Reports()
    core.send("t", b"a", pump.now)
    run(core, pump, reports)
    return cluster, core, pump, reports


def test_duplicate_sequence_answer_counts_as_written_with_no_offset() -> None:
    """An older broker's answer to a retry it already holds: delivered, offset unknown (-1)."""
    cluster, core, pump, reports = _after_one_record()
    cluster.delay(PRODUCE, 1.0, count=1)  # the first attempt is written, its answer lost
    token = core.send("t", b"b", pump.now)
    core.flush(pump.now)
    pump.settle()
    cluster.drop_connections()
    cluster.inject_error(PRODUCE, 46, count=1)  # DUPLICATE_SEQUENCE_NUMBER for the retry
    run(core, pump, reports)
    assert reports.outcome[token] == (0, -1, None)
    later = core.send("t", b"c", pump.now)
    run(core, pump, reports)
    assert reports.outcome[later] == (0, 2, None)
    assert [r.value for r in cluster.records("t", 0)] == [b"a", b"b", b"c"]
    assert core.producer_epoch == 0


def test_out_of_order_sequence_with_nothing_before_it_bumps_the_epoch() -> None:
    cluster, core, pump, reports = _after_one_record()
    cluster.inject_error(PRODUCE, 45, count=1)
    token = core.send("t", b"b", pump.now)
    run(core, pump, reports)
    assert reports.outcome[token][2] is None
    assert core.producer_epoch == 1
    assert [r.value for r in cluster.records("t", 0)] == [b"a", b"b"]


def test_cluster_authorization_failure_is_fatal() -> None:
    cluster = ModelCluster(brokers=1)
    cluster.create_topic("t", partitions=1)
    cluster.inject_error(INIT_PRODUCER_ID, 31)
    core, pump = make(cluster)
    reports = Reports()
    tokens = [core.send("t", b"%d" % i, pump.now) for i in range(5)]
    run(core, pump, reports)
    assert sorted(reports.outcome) == tokens
    assert any(isinstance(e, ProducerFailed) for e in reports.events)
    assert all(
        isinstance(e, ClusterAuthorizationFailedError) for _, _, e in reports.outcome.values()
    )
    with pytest.raises(ClusterAuthorizationFailedError):
        core.send("t", b"x", pump.now)


def test_delivery_timeout_when_no_broker_answers() -> None:
    cluster = ModelCluster(brokers=1)
    cluster.create_topic("t", partitions=1)
    core, pump = make(cluster, delivery_timeout=10.0)
    reports = Reports()
    core.send("t", b"a", pump.now)
    run(core, pump, reports)
    cluster.stop_broker(1, pump.now)
    tokens = [core.send("t", b"%d" % i, pump.now) for i in range(5)]
    run(core, pump, reports, timeout=60)
    assert all(isinstance(reports.outcome[t][2], DeliveryTimeoutError) for t in tokens)
    assert core.buffered_bytes() == 0


def test_keyless_records_stick_to_a_partition_per_batch() -> None:
    cluster = ModelCluster(brokers=1)
    cluster.create_topic("t", partitions=4)
    core, pump = make(cluster, batch_size=1000, linger=60.0)
    reports = Reports()
    core.send("t", b"warm-up", pump.now, partition=0)
    run(core, pump, reports)
    tokens = [core.send("t", b"x" * 80, pump.now) for _ in range(60)]
    core.flush(pump.now)
    run(core, pump, reports)
    partitions = [reports.outcome[t][0] for t in tokens]
    switches = sum(1 for a, b in itertools.pairwise(partitions) if a != b)
    assert 3 <= switches <= 10  # about one switch per batch worth of bytes
    assert len(set(partitions)) >= 2


def test_explicit_partition_and_custom_partitioner() -> None:
    cluster = ModelCluster(brokers=1)
    cluster.create_topic("t", partitions=3)
    core, pump = make(cluster, partitioner=lambda topic, key, n, available: n - 1)
    reports = Reports()
    a = core.send("t", b"a", pump.now, key=b"k")
    b = core.send("t", b"b", pump.now, partition=0)
    run(core, pump, reports)
    assert reports.outcome[a][0] == 2 and reports.outcome[b][0] == 0
    bad, _ = make(cluster, partitioner=lambda topic, key, n, available: n)
    bad.send("t", b"warm-up", pump.now, partition=0)
    Pump(bad, cluster).until(lambda: bad.partitions_for("t") == 3)
    with pytest.raises(LocalProtocolError, match="partitioner"):
        bad.send("t", b"x", pump.now)


def test_acks_zero_sends_every_batch_without_waiting_for_a_timer() -> None:
    # acks=0 answers as soon as the bytes are queued, inside the sending pass:
    # the next batch of the partition must go out in the same pass, not when
    # some later timer happens to fire.
    cluster = ModelCluster(brokers=1)
    cluster.create_topic("t", partitions=2)
    core, pump = make(cluster, acks=0, enable_idempotence=False, batch_size=500)
    reports = Reports()
    # Sent before any metadata: placed in one go, many batches per partition.
    tokens = [core.send("t", b"x" * 40, pump.now, key=b"%d" % i) for i in range(200)]
    core.flush(pump.now)
    pump.settle()
    reports.take(core)
    assert pump.now == 0.0
    assert core.pending() == 0
    assert sorted(reports.outcome) == tokens
    assert sum(len(cluster.records("t", p)) for p in range(2)) == 200


@pytest.mark.parametrize("version", range(6))
def test_model_init_producer_id_at_every_version(version: int) -> None:
    from kafka_sansio import protocol
    from kafka_sansio._framing import FrameBuffer, frame
    from kafka_sansio._messages.init_producer_id import (
        InitProducerIdRequest,
        InitProducerIdResponse,
    )

    cluster = ModelCluster(brokers=1)
    server = cluster.accept(1, 0.0)
    answers = []
    for txn_id in [None, None, "txn", "txn"]:
        request = InitProducerIdRequest(transactional_id=txn_id, transaction_timeout_ms=60_000)
        server.receive(frame(protocol.encode_request(request, version, 5, "c")), 0.0)
        frames = FrameBuffer()
        frames.feed(server.data_to_send())
        reply = frames.next_frame()
        assert reply is not None
        header, response = protocol.decode_response(22, version, reply)
        assert header.correlation_id == 5 and isinstance(response, InitProducerIdResponse)
        assert protocol.encode_response(response, version, 5) == reply
        answers.append((response.error_code, response.producer_id, response.producer_epoch))
    # Idempotent producers get a new id each time; a transactional id keeps its id
    # and moves to the next epoch.
    (e1, p1, ep1), (e2, p2, ep2), (e3, p3, ep3), (e4, p4, ep4) = answers
    assert e1 == e2 == e3 == e4 == 0
    assert p1 != p2 and ep1 == ep2 == 0
    assert p3 == p4 and (ep3, ep4) == (0, 1)
    if version >= 3:
        stale = InitProducerIdRequest(
            transactional_id="txn", producer_id=p3, producer_epoch=0, transaction_timeout_ms=1
        )
        server.receive(frame(protocol.encode_request(stale, version, 6, "c")), 0.0)
        frames = FrameBuffer()
        frames.feed(server.data_to_send())
        reply = frames.next_frame()
        assert reply is not None
        # Kafka answers PRODUCER_FENCED from v4 on, INVALID_PRODUCER_EPOCH before.
        fenced = 47 if version < 4 else 90
        assert protocol.decode_response(22, version, reply)[1].error_code == fenced


def test_topic_authorization_failure_fails_the_records_at_once() -> None:
    from kafka_sansio.errors import TopicAuthorizationFailedError

    cluster = ModelCluster(brokers=1)
    cluster.create_topic("secret", partitions=1)
    cluster.create_topic("open", partitions=1)
    cluster.inject_error(3, 29, topic="secret", count=100)  # METADATA
    core, pump = make(cluster)
    reports = Reports()
    denied = [core.send("secret", b"%d" % i, pump.now) for i in range(3)]
    allowed = core.send("open", b"fine", pump.now)
    run(core, pump, reports, timeout=5.0)  # well within max_block
    assert all(isinstance(reports.outcome[t][2], TopicAuthorizationFailedError) for t in denied)
    assert reports.outcome[allowed][2] is None
    assert cluster.records("secret", 0) == []
