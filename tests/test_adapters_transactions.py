"""Transactions on each adapter, against the real broker, checked by confluent-kafka.

A read_committed consumer must see exactly the records of committed
transactions, and none of an aborted one; a read_uncommitted one sees them
all.  Read-process-write commits the consumed offsets with the output.  A
second producer with the same transactional id fences the first.  A producer
whose transaction the coordinator timed out aborts it and goes on (KIP-588).
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
from _adapters import ADAPTERS, run_client
from confluent_kafka import Consumer as CKConsumer
from confluent_kafka import Producer as CKProducer
from confluent_kafka import TopicPartition as CKTopicPartition
from kafka_sansio.transports.blocking import Consumer, Producer

from kafka_sansio import TopicPartition, TransactionAbortedError
from kafka_sansio.errors import InvalidProducerEpochError, ProducerFencedError

pytestmark = pytest.mark.timeout(240)


def _read(kafka: Any, topic: str, partitions: int, isolation: str) -> list[bytes]:
    """Every data record of ``topic`` (up to the end), as ``isolation`` shows them."""
    consumer = CKConsumer(
        {
            **kafka.client_config(),
            "group.id": f"check-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
            "isolation.level": isolation,
            "enable.partition.eof": True,
        }
    )
    consumer.assign([CKTopicPartition(topic, p, 0) for p in range(partitions)])
    out: list[bytes] = []
    ended: set[int] = set()
    idle = 0
    while len(ended) < partitions and idle < 30:
        batch = consumer.consume(1000, timeout=1.0)
        idle = 0 if batch else idle + 1
        for msg in batch:
            if msg.error() is not None:
                if msg.error().code() == -191:  # _PARTITION_EOF
                    ended.add(msg.partition())
                    continue
                raise AssertionError(msg.error())
            out.append(msg.value())
    consumer.close()
    assert len(ended) == partitions, "the partitions' ends were not reached"
    return out


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_read_committed_sees_committed_transactions_only(adapter: str, kafka: Any) -> None:
    topic = kafka.create_topic(partitions=2, prefix=f"txn-{adapter}")

    async def scenario(producer: Any) -> list[Any]:
        await producer.init_transactions()
        producer.begin_transaction()
        for i in range(100):
            await producer.send(topic, b"first-%d" % i, partition=i % 2)
        await producer.commit_transaction()

        producer.begin_transaction()
        aborted = [await producer.send(topic, b"aborted-%d" % i, partition=i % 2) for i in range(60)]
        await producer.flush()  # written to the log, then aborted
        late = [await producer.send(topic, b"never-%d" % i, partition=i % 2) for i in range(40)]
        await producer.abort_transaction()
        assert all(f.done() for f in aborted + late)

        producer.begin_transaction()
        for i in range(50):
            await producer.send(topic, b"second-%d" % i, partition=i % 2)
        await producer.commit_transaction()
        return late

    late = run_client(
        adapter, "Producer", kafka.bootstrap, scenario,
        transactional_id=f"txn-{adapter}-{uuid.uuid4().hex[:8]}", linger=0.5,
    )  # fmt: skip
    # Records still buffered at the abort never went out; they failed typed.
    for future in late:
        error = future.future.exception() if adapter == "blocking" else future.exception()
        assert isinstance(error, TransactionAbortedError)

    committed = [b"first-%d" % i for i in range(100)] + [b"second-%d" % i for i in range(50)]
    seen = _read(kafka, topic, 2, "read_committed")
    assert sorted(seen) == sorted(committed)
    everything = _read(kafka, topic, 2, "read_uncommitted")
    assert sorted(everything) == sorted(committed + [b"aborted-%d" % i for i in range(60)])

    # This project's consumer agrees.
    ours = Consumer(kafka.bootstrap, auto_offset_reset="earliest",
                    isolation_level="read_committed")  # fmt: skip
    tps = [TopicPartition(topic, p) for p in range(2)]
    ours.assign(tps)
    got: list[bytes] = []
    while len(got) < len(committed):
        batch = ours.poll(10)
        assert batch, f"only {len(got)} records came"
        got += [r.value for _, r in batch]
    assert not ours.poll(1.0)
    ours.close()
    assert sorted(got) == sorted(committed)


def test_read_process_write_commits_offsets_with_the_output(kafka: Any) -> None:
    source = kafka.create_topic(partitions=2, prefix="rpw-in")
    sink = kafka.create_topic(partitions=1, prefix="rpw-out")
    writer = CKProducer(kafka.client_config())
    for i in range(20):
        writer.produce(source, b"%d" % i, partition=i % 2)
    assert writer.flush(30) == 0
    group = f"rpw-{uuid.uuid4().hex[:8]}"
    consumer = Consumer(kafka.bootstrap, group_id=group, auto_offset_reset="earliest",
                        enable_auto_commit=False, isolation_level="read_committed",
                        session_timeout=6.0, heartbeat_interval=1.0)  # fmt: skip
    producer = Producer(kafka.bootstrap, transactional_id=f"rpw-{group}")
    try:
        consumer.subscribe([source])
        producer.init_transactions()
        done = 0
        while done < 20:
            batch = consumer.poll(5)
            if not batch:
                continue
            producer.begin_transaction()
            positions: dict[TopicPartition, int] = {}
            for tp, record in batch:
                producer.send(sink, b"out-" + record.value, partition=0)
                positions[tp] = record.offset + 1
            producer.send_offsets_to_transaction(positions, consumer.group_metadata())
            producer.commit_transaction()
            done += len(batch)
        committed = consumer.committed([TopicPartition(source, p) for p in range(2)])
        assert {tp.partition: om.offset for tp, om in committed.items() if om} == {0: 10, 1: 10}
    finally:
        producer.close()
        consumer.close()
    assert sorted(_read(kafka, sink, 1, "read_committed")) == sorted(
        b"out-%d" % i for i in range(20)
    )


def _wait_for_end_offset(kafka: Any, topic: str, end: int) -> None:
    """Wait until partition 0 of ``topic`` ends at ``end`` (a marker moves it too)."""
    consumer = CKConsumer({**kafka.client_config(), "group.id": f"ends-{uuid.uuid4().hex}"})
    try:
        deadline = time.monotonic() + 60
        while consumer.get_watermark_offsets(CKTopicPartition(topic, 0), timeout=10)[1] < end:
            assert time.monotonic() < deadline, f"{topic} did not reach offset {end}"
            time.sleep(0.2)
    finally:
        consumer.close()


def test_a_transaction_the_coordinator_timed_out_is_aborted_and_the_producer_goes_on(
    kafka: Any,
) -> None:
    """The coordinator aborts a transaction past its timeout and bumps the epoch.

    The next record fails INVALID_PRODUCER_EPOCH (the transaction can only be
    aborted); the abort claims the bumped epoch with InitProducerId, and the
    next transaction commits.  The cluster tool makes the broker look for timed
    out transactions every second.
    """
    topic = kafka.create_topic(partitions=1, prefix="txn-timeout")
    producer = Producer(
        kafka.bootstrap, transactional_id=f"timeout-{uuid.uuid4().hex[:8]}",
        transaction_timeout=1.0,
    )  # fmt: skip
    try:
        producer.init_transactions()
        producer.begin_transaction()
        assert producer.send(topic, b"timed-out", partition=0).get(10).offset == 0
        _wait_for_end_offset(kafka, topic, 2)  # the record, then the coordinator's abort marker
        late = producer.send(topic, b"refused", partition=0)
        with pytest.raises(InvalidProducerEpochError):
            late.get(30)
        with pytest.raises(InvalidProducerEpochError):
            producer.commit_transaction()  # abortable: only an abort is left
        producer.abort_transaction()
        producer.begin_transaction()
        assert producer.send(topic, b"after", partition=0).get(10).offset > 1
        producer.commit_transaction()
    finally:
        producer.close()
    assert _read(kafka, topic, 1, "read_committed") == [b"after"]
    assert _read(kafka, topic, 1, "read_uncommitted") == [b"timed-out", b"after"]


def test_a_second_producer_with_the_same_id_fences_the_first(kafka: Any) -> None:
    """The first's next record fails INVALID_PRODUCER_EPOCH, as after a timeout; its abort is fenced."""
    topic = kafka.create_topic(partitions=1, prefix="fence-leader")
    txn_id = f"fence-{uuid.uuid4().hex[:8]}"
    first = Producer(kafka.bootstrap, transactional_id=txn_id)
    second = Producer(kafka.bootstrap, transactional_id=txn_id)
    try:
        first.init_transactions()
        first.begin_transaction()
        first.send(topic, b"zombie-1", partition=0).get(10)
        second.init_transactions()  # aborts the first's transaction, bumps the epoch
        with pytest.raises(InvalidProducerEpochError):
            first.send(topic, b"zombie-2", partition=0).get(30)
        with pytest.raises(InvalidProducerEpochError):
            first.commit_transaction()  # abortable: only an abort is left
        with pytest.raises(ProducerFencedError):
            first.abort_transaction()  # InitProducerId with the old epoch: fenced
        with pytest.raises(ProducerFencedError):
            first.begin_transaction()
        second.begin_transaction()
        second.send(topic, b"live", partition=0)
        second.commit_transaction()
    finally:
        first.close(timeout=5)
        second.close()
    assert _read(kafka, topic, 1, "read_committed") == [b"live"]
