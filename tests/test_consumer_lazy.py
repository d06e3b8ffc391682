"""The consumer buffers fetched batches as bytes and decodes each when ``poll`` reaches it.

So the buffer is bounded by the fetch sizes in bytes (not by decoded record
objects), and a batch that fails its checksum is found when its turn comes:
the records before it are handed out, then a FetchError names its offset.
"""

from __future__ import annotations

import dataclasses
import random

from kafka_sansio import (
    ClientConfig,
    ConsumerConfig,
    ConsumerCore,
    CorruptRecordError,
    FetchError,
    FetchState,
    OffsetResetPolicy,
    TopicPartition,
)
from kafka_sansio.testing import ModelCluster, Pump

TP = TopicPartition("t", 0)


def _setup(batches: int = 3, per_batch: int = 5) -> tuple[ModelCluster, ConsumerCore, Pump]:
    cluster = ModelCluster(brokers=1)
    cluster.create_topic("t", partitions=1)
    for b in range(batches):
        records = [(None, f"v{b * per_batch + i}".encode(), ()) for i in range(per_batch)]
        cluster.append("t", 0, records, compression="gzip" if b % 2 else "none")
    broker = cluster.brokers[1]
    core = ConsumerCore(
        ConsumerConfig(
            client=ClientConfig(bootstrap_servers=((broker.host, broker.port),)),
            auto_offset_reset=OffsetResetPolicy.EARLIEST,
        ),
        random.Random(7).random,
    )
    return cluster, core, Pump(core, cluster)


def test_fetched_batches_stay_bytes_until_poll_reaches_them() -> None:
    _, core, pump = _setup()
    core.assign([TP], pump.now)
    pump.until(lambda: core.buffered() == 15)
    state = core._partitions[TP]
    chunk = state.chunks[0]
    assert chunk.records == () and len(chunk.pending) == 3
    assert all(callable(batch.records) for batch in chunk.pending)

    first = core.poll(pump.now, max_records=7).by_partition[TP]
    assert [r.offset for r in first] == list(range(7))
    # Two batches decoded (the second only in part), the third still bytes.
    assert len(chunk.pending) == 1 and callable(chunk.pending[0].records)
    assert core.position(TP) == 7 and core.buffered() == 8
    rest = core.poll(pump.now).by_partition[TP]
    assert [r.value for r in rest] == [f"v{i}".encode() for i in range(7, 15)]
    assert core.position(TP) == 15


def test_a_corrupt_batch_is_found_at_poll_after_the_good_records() -> None:
    cluster, core, pump = _setup()
    log = cluster.partition("t", 0).log
    bad = log.batches[1]
    data = bytearray(bad.data)
    data[-1] ^= 0xFF  # breaks the CRC-32C of the second batch
    log.batches[1] = dataclasses.replace(bad, data=bytes(data))

    core.assign([TP], pump.now)
    pump.until(lambda: core.buffered() == 15)
    assert not [e for e in core.events() if isinstance(e, FetchError)]  # nothing checked yet
    records = core.poll(pump.now).by_partition[TP]
    assert [r.offset for r in records] == [0, 1, 2, 3, 4]
    errors = [e for e in core.events() if isinstance(e, FetchError)]
    assert len(errors) == 1 and errors[0].offset == 5
    assert isinstance(errors[0].error, CorruptRecordError)
    assert core.fetch_state(TP) is FetchState.AWAITING_SEEK
    assert core.position(TP) == 5 and core.buffered() == 0
    assert not core.poll(pump.now)

    core.seek(TP, 10, pump.now)  # past the bad batch
    got: list[int] = []
    pump.until(lambda: got.extend(r.offset for _, r in core.poll(pump.now)) or len(got) >= 5)
    assert got == [10, 11, 12, 13, 14]


def test_errors_are_reported_in_offset_order() -> None:
    """A bad checksum in batch 2 and a malformed header in batch 3 of one answer:
    the records of batch 1, then one FetchError at batch 2, nothing about batch 3."""
    cluster, core, pump = _setup(batches=4)
    log = cluster.partition("t", 0).log
    crc_bad = bytearray(log.batches[1].data)
    crc_bad[-1] ^= 0xFF
    log.batches[1] = dataclasses.replace(log.batches[1], data=bytes(crc_bad))
    header_bad = bytearray(log.batches[2].data)
    header_bad[8:12] = (0x7FFFFFFF).to_bytes(4, "big")  # a length over any limit
    log.batches[2] = dataclasses.replace(log.batches[2], data=bytes(header_bad))

    core.assign([TP], pump.now)
    pump.until(lambda: core.buffered() == 10)  # batches 1 and 2, by their headers
    records = core.poll(pump.now).by_partition[TP]
    assert [r.offset for r in records] == [0, 1, 2, 3, 4]
    errors = [e for e in core.events() if isinstance(e, FetchError)]
    assert [(e.offset, type(e.error)) for e in errors] == [(5, CorruptRecordError)]
    assert core.fetch_state(TP) is FetchState.AWAITING_SEEK
    assert not core.poll(pump.now) and not [e for e in core.events() if isinstance(e, FetchError)]
