"""Record batches against a real Apache Kafka broker, in both directions.

1. Peers produce, we decode: confluent-kafka (librdkafka), kafka-python and
   aiokafka each produce a set of awkward records (null keys, tombstones,
   empty keys and values, duplicate and empty header keys, a null header
   value where the client allows it, explicit out-of-order timestamps) with
   every codec; we fetch the partition's raw bytes with Fetch requests and
   decode them with :func:`kafka_sansio.records.decode_records`.  Every field
   must come back exactly, and every batch must carry the codec the peer was
   asked to use.  The same for multi-block batches (192 KiB of records), a
   12,000-record batch, responses the broker cuts inside a batch, fetch
   offsets inside a compressed batch, batches recompressed by the broker's
   Java codecs, and batches rewritten by the log cleaner (an emptied batch,
   offset gaps, a delete horizon).
2. We produce, peers read: batches from :func:`encode_batch` and
   :class:`BatchBuilder` go to the broker in Produce requests; confluent-kafka's
   consumer (with ``check.crcs``) reads them back field by field, and for one
   codec kafka-python and aiokafka do too.  Also: a LogAppendTime topic (the
   broker stamps our batch), idempotent sequences the broker checks, and every
   Produce and Fetch version both sides speak.

The broker validates every produced batch (CRC, record counts, offsets,
compression; it decompresses ours to do so), so part 2 is also a check that
the broker accepts our bytes.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import pytest
from kafka_wire import KafkaWire

from kafka_sansio import protocol
from kafka_sansio._messages.fetch import FetchPartition, FetchRequest, FetchTopic
from kafka_sansio._messages.init_producer_id import InitProducerIdRequest
from kafka_sansio._messages.list_offsets import (
    ListOffsetsPartition,
    ListOffsetsRequest,
    ListOffsetsTopic,
)
from kafka_sansio._messages.metadata import MetadataRequest, MetadataRequestTopic
from kafka_sansio._messages.produce import (
    PartitionProduceData,
    ProduceRequest,
    TopicProduceData,
)
from kafka_sansio.errors import OutOfOrderSequenceNumberError
from kafka_sansio.records import (
    CODEC_GZIP,
    CODEC_LZ4,
    CODEC_NONE,
    CODEC_SNAPPY,
    CODEC_ZSTD,
    BatchBuilder,
    Record,
    RecordBatch,
    TimestampType,
    decode_records,
    encode_batch,
    iter_batches,
)

FETCH, PRODUCE, LIST_OFFSETS, METADATA, INIT_PRODUCER_ID = 1, 0, 2, 3, 22
CODECS = {
    "none": CODEC_NONE,
    "gzip": CODEC_GZIP,
    "snappy": CODEC_SNAPPY,
    "lz4": CODEC_LZ4,
    "zstd": CODEC_ZSTD,
}
BASE_TS = 1_700_000_000_123
CREATE = TimestampType.CREATE_TIME
APPEND = TimestampType.LOG_APPEND_TIME

Headers = tuple[tuple[str, bytes | None], ...]


@dataclass(frozen=True)
class Sent:
    """One record as a producer hands it over."""

    key: bytes | None
    value: bytes | None
    headers: Headers
    timestamp: int


def sample(
    *, null_header_value: bool = True, key_or_value: bool = False, tag: str = ""
) -> list[Sent]:
    """Records covering the shapes a decoder can get wrong.

    *null_header_value*: include a header whose value is null.
    *key_or_value*: leave out the record with neither key nor value (for
    producers that refuse one).

    Timestamps are distinct and deliberately not monotonic (a negative
    timestamp delta inside the batch).  The compressible values make every
    codec actually shrink the batch, so no peer falls back to sending it
    uncompressed.
    """
    filler = (b"kafka-sansio " * 40) + tag.encode()
    records = [
        Sent(b"k0", b"v0" + filler, (("h", b"1"), ("h", b"2"), ("other", b"")), BASE_TS),
        Sent(b"k1", None, (("", b"empty header key"),), BASE_TS + 7),  # a tombstone
        Sent(None, b"no key " + filler, (("h", b"x"),), BASE_TS + 1),
        Sent(
            b"", b"", (("dup", b"a"), ("dup", b"a"), ("kl\u00fc\u00dfel", b"\x00\xff")), BASE_TS - 5
        ),
        Sent(b"k4", filler * 3, (), BASE_TS + 86_400_000),
    ]
    if not key_or_value:
        # nothing but a header
        records.append(Sent(None, None, (("only", b"header"),), BASE_TS + 2))
    if null_header_value:
        records.append(
            Sent(b"k6", b"nullable header", (("n", None), ("n", b""), ("n", None)), BASE_TS + 3)
        )
    return records


def big_sample(seed: str) -> list[Sent]:
    """Four 48 KiB records: one batch well past every codec's block size.

    Random 64-byte pieces, each written twice, so the data compresses about
    two to one but not to nothing (lz4 blocks are 64 KiB, xerial snappy
    blocks 32 KiB of input, and zstd and gzip see real matches).
    """
    rnd = random.Random(seed)
    out = []
    for i in range(4):
        value = b"".join(rnd.randbytes(64) * 2 for _ in range(48 * 1024 // 128))
        out.append(Sent(b"big-%d" % i, value, (("i", b"%d" % i),), BASE_TS + 10 * i))
    return out


# --- the broker side: raw Fetch and Produce over KafkaWire ------------------------------------


@pytest.fixture(scope="module")
def wire(kafka: Any) -> Iterator[KafkaWire]:
    with KafkaWire(kafka.host, kafka.port) as w:
        yield w


@pytest.fixture(scope="module")
def broker_ranges(wire: KafkaWire) -> dict[int, tuple[int, int]]:
    """The broker's ``{api_key: (min, max)}``."""
    return wire.api_versions()


@pytest.fixture(scope="module")
def versions(broker_ranges: dict[int, tuple[int, int]]) -> dict[int, int]:
    """The version used for each API: the highest both sides speak."""
    broker = broker_ranges
    return {
        key: protocol.choose_version(key, broker)
        for key in (FETCH, PRODUCE, LIST_OFFSETS, METADATA, INIT_PRODUCER_ID)
    }


def new_topic(
    kafka: Any,
    wire: KafkaWire,
    versions: dict[int, int],
    prefix: str,
    config: dict[str, str] | None = None,
) -> str:
    """A fresh single-partition topic whose leader already takes requests.

    The broker answers Metadata with a leader a moment before its log is
    ready, and a raw Produce in that gap gets NOT_LEADER_OR_FOLLOWER (the
    peers retry; our one-shot requests do not), so wait for ListOffsets.
    """
    name: str = kafka.create_topic(partitions=1, replication_factor=1, config=config, prefix=prefix)
    request = ListOffsetsRequest(
        replica_id=-1,
        topics=[ListOffsetsTopic(name=name, partitions=[ListOffsetsPartition(timestamp=-1)])],
    )
    deadline = time.monotonic() + 30
    while True:
        answer = wire.request(request, versions[LIST_OFFSETS])
        part = answer.topics[0].partitions[0]
        if part.error_code == 0:
            assert part.offset == 0, part
            return name
        assert time.monotonic() < deadline, f"topic {name} not ready: {part}"
        time.sleep(0.05)


def topic_id(wire: KafkaWire, versions: dict[int, int], name: str) -> UUID:
    version = versions[METADATA]
    assert version >= 10, "topic ids come with Metadata v10"
    response = wire.request(MetadataRequest(topics=[MetadataRequestTopic(name=name)]), version)
    (entry,) = response.topics
    assert entry.error_code == 0, entry
    assert entry.topic_id != UUID(int=0), entry
    result: UUID = entry.topic_id
    return result


def fetch_once(
    wire: KafkaWire,
    versions: dict[int, int],
    topic: str,
    offset: int,
    partition_max_bytes: int = 1 << 20,
) -> bytes:
    """One Fetch of partition 0 of *topic* at *offset*: the raw ``records`` bytes."""
    version = versions[FETCH]
    tid = topic_id(wire, versions, topic) if version >= 13 else UUID(int=0)
    request = FetchRequest(
        max_wait_ms=200,
        min_bytes=1,
        max_bytes=8 << 20,
        topics=[
            FetchTopic(
                topic=topic,
                topic_id=tid,
                partitions=[
                    FetchPartition(
                        partition=0,
                        fetch_offset=offset,
                        partition_max_bytes=partition_max_bytes,
                    )
                ],
            )
        ],
    )
    response = wire.request(request, version)
    assert response.error_code == 0, response
    (part,) = response.responses[0].partitions
    assert part.error_code == 0, part
    return bytes(part.records or b"")


def fetch_batches(
    wire: KafkaWire,
    versions: dict[int, int],
    topic: str,
    count: int,
    *,
    start: int = 0,
    partition_max_bytes: int = 1 << 20,
    timeout: float = 30.0,
    cuts: list[int] | None = None,
) -> list[RecordBatch]:
    """Fetch partition 0 of *topic* from offset *start* until *count* records arrived.

    Each response's raw ``records`` bytes go through ``decode_records`` with
    the fetch offset as start offset (and ``iter_batches``, which must agree);
    the next fetch starts at its
    ``next_offset``.  A small *partition_max_bytes* makes the broker cut
    batches, which must then come again whole; *cuts* (if given) collects
    each response's ``truncated_bytes``.
    """
    offset = start
    seen = 0
    batches: list[RecordBatch] = []
    deadline = time.monotonic() + timeout
    while seen < count:
        assert time.monotonic() < deadline, f"only {seen} of {count} records in {timeout}s"
        raw = fetch_once(wire, versions, topic, offset, partition_max_bytes)
        decoded = decode_records(raw, start_offset=offset)
        assert decoded.error is None
        lazy = iter_batches(raw, offset)
        assert tuple(lazy) == decoded.batches  # the lazy path agrees
        assert (lazy.next_offset, lazy.truncated_bytes) == (
            decoded.next_offset,
            decoded.truncated_bytes,
        )
        if cuts is not None:
            cuts.append(decoded.truncated_bytes)
        for batch in decoded.batches:
            assert not batch.is_control
            batches.append(batch)
            seen += len(batch.records)
        if decoded.next_offset is not None:
            assert decoded.next_offset > offset
            offset = decoded.next_offset
    assert seen == count, f"fetched {seen} records, expected {count}"
    return batches


def produce_answer(wire: KafkaWire, versions: dict[int, int], topic: str, data: bytes) -> Any:
    """Send one batch with acks=-1; return the partition's answer."""
    request = ProduceRequest(
        acks=-1,
        timeout_ms=15_000,
        topic_data=[
            TopicProduceData(
                name=topic, partition_data=[PartitionProduceData(index=0, records=data)]
            )
        ],
    )
    response = wire.request(request, versions[PRODUCE])
    (entry,) = response.responses
    assert entry.name == topic
    (part,) = entry.partition_responses
    assert part.index == 0
    return part


def produce(wire: KafkaWire, versions: dict[int, int], topic: str, data: bytes) -> tuple[int, int]:
    """Send one batch that must be accepted; return (base offset, log append time)."""
    part = produce_answer(wire, versions, topic, data)
    assert part.error_code == 0, part
    assert part.record_errors == [], part
    return part.base_offset, part.log_append_time_ms


def expect(sent: list[Sent], base_offset: int = 0) -> list[Record]:
    return [
        Record(base_offset + i, s.timestamp, CREATE, s.key, s.value, s.headers)
        for i, s in enumerate(sent)
    ]


def check_decoded(batches: list[RecordBatch], sent: list[Sent], codec: str) -> None:
    """Every record exactly as sent, every batch compressed with *codec*."""
    got = [r for b in batches for r in b.records]
    assert got == expect(sent)
    for batch in batches:
        assert batch.magic == 2
        assert batch.compression == CODECS[codec], (batch.base_offset, batch.attributes)
        assert batch.timestamp_type == CREATE
        assert batch.records_count == len(batch.records)
        assert batch.max_timestamp == max(r.timestamp for r in batch.records)
    # The records were sent back to back with a linger, so the peer batched them.
    assert len(batches) < len(sent), [len(b.records) for b in batches]


# --- part 1: peers produce, we decode ---------------------------------------------------------


def produce_confluent(
    kafka: Any, topic: str, codec: str, sent: list[Sent], linger_ms: int = 5_000
) -> list[int]:
    from confluent_kafka import Producer

    # A long linger keeps everything produced before flush() in one batch even on
    # a slow machine; flush() itself sends at once.
    producer = Producer(
        {
            "bootstrap.servers": kafka.bootstrap,
            "compression.type": codec,
            "linger.ms": linger_ms,
            "acks": "all",
        }
    )
    offsets: list[int] = []
    errors: list[Any] = []

    def delivered(err: Any, msg: Any) -> None:
        if err is not None:
            errors.append(err)
        else:
            offsets.append(msg.offset())

    for s in sent:
        producer.produce(
            topic,
            value=s.value,
            key=s.key,
            partition=0,
            timestamp=s.timestamp,
            headers=list(s.headers),
            on_delivery=delivered,
        )
    assert producer.flush(30) == 0
    assert errors == []
    return offsets


def produce_kafka_python(kafka: Any, topic: str, codec: str, sent: list[Sent]) -> list[int]:
    from kafka import KafkaProducer

    producer = KafkaProducer(
        bootstrap_servers=kafka.bootstrap,
        compression_type=None if codec == "none" else codec,
        linger_ms=200,
        batch_size=1 << 20,
        acks="all",
    )
    try:
        futures = [
            producer.send(
                topic,
                value=s.value,
                key=s.key,
                headers=list(s.headers),
                partition=0,
                timestamp_ms=s.timestamp,
            )
            for s in sent
        ]
        producer.flush(30)
        return [f.get(timeout=30).offset for f in futures]
    finally:
        producer.close(timeout=10)


def produce_aiokafka(kafka: Any, topic: str, codec: str, sent: list[Sent]) -> list[int]:
    from aiokafka import AIOKafkaProducer

    async def run() -> list[int]:
        producer = AIOKafkaProducer(
            bootstrap_servers=kafka.bootstrap,
            compression_type=None if codec == "none" else codec,
            linger_ms=200,
            max_batch_size=1 << 20,
            acks="all",
        )
        await producer.start()
        try:
            futures = [
                await producer.send(
                    topic,
                    value=s.value,
                    key=s.key,
                    partition=0,
                    timestamp_ms=s.timestamp,
                    headers=list(s.headers),
                )
                for s in sent
            ]
            metadata = await asyncio.wait_for(asyncio.gather(*futures), 30)
            return [m.offset for m in metadata]
        finally:
            await producer.stop()

    return asyncio.run(run())


@dataclass(frozen=True)
class Peer:
    name: str
    produce: Any
    null_header_value: bool
    key_or_value: bool


PEERS = [
    Peer("confluent", produce_confluent, True, False),
    # kafka-python's KafkaProducer.send rejects any header value that is not bytes
    # ("All headers items must be (str, bytes) tuples") and a record whose key and
    # value are both null ("Need at least one: key or value"), so its sample has neither.
    # confluent-kafka takes both.
    Peer("kafka-python", produce_kafka_python, False, True),
    # aiokafka's send() has the same "Need at least one: key or value" check; it does
    # take a null header value.
    Peer("aiokafka", produce_aiokafka, True, True),
]


@pytest.mark.parametrize("codec", list(CODECS))
@pytest.mark.parametrize("peer", PEERS, ids=[p.name for p in PEERS])
def test_peer_produces_we_decode(
    kafka: Any, wire: KafkaWire, versions: dict[int, int], peer: Peer, codec: str
) -> None:
    topic = new_topic(kafka, wire, versions, f"rb-{peer.name}")
    sent = sample(
        null_header_value=peer.null_header_value,
        key_or_value=peer.key_or_value,
        tag=f"{peer.name}/{codec}",
    )
    offsets = peer.produce(kafka, topic, codec, sent)
    assert offsets == list(range(len(sent)))
    batches = fetch_batches(wire, versions, topic, len(sent))
    check_decoded(batches, sent, codec)


@pytest.mark.parametrize("codec", [c for c in CODECS if c != "none"])
@pytest.mark.parametrize("peer", PEERS, ids=[p.name for p in PEERS])
def test_peer_big_batch_we_decode(
    kafka: Any, wire: KafkaWire, versions: dict[int, int], peer: Peer, codec: str
) -> None:
    """A compressed batch of several codec blocks (192 KiB before compression)."""
    topic = new_topic(kafka, wire, versions, f"rb-big-{peer.name}")
    sent = big_sample(f"{peer.name}/{codec}")
    assert peer.produce(kafka, topic, codec, sent) == [0, 1, 2, 3]
    batches = fetch_batches(wire, versions, topic, len(sent))
    check_decoded(batches, sent, codec)
    # Really compressed: the stored batches are well below the records' size.
    assert sum(b.batch_length for b in batches) < 0.75 * sum(len(s.value or b"") for s in sent)


def test_cut_batches_come_again_whole(
    kafka: Any, wire: KafkaWire, versions: dict[int, int]
) -> None:
    """A partition limit that ends inside a batch: the cut tail is refetched whole.

    Five lz4 batches of six records each from confluent-kafka (one flush
    each).  Fetched with a limit of about one and a half batches, every
    response but the last holds one whole batch and the start of the next,
    which ``decode_records`` must report as ``truncated_bytes`` and never
    turn into records.
    """
    # The precondition (one batch per flush) is librdkafka's to keep; on a loaded
    # machine it has been seen to split a flush in two, so the setup is retried.
    for _attempt in range(3):
        topic = new_topic(kafka, wire, versions, "rb-cut")
        sent: list[Sent] = []
        for round_ in range(5):
            chunk = sample(tag=str(round_))[:6]
            sent += chunk
            produce_confluent(kafka, topic, "lz4", chunk)
        whole = fetch_batches(wire, versions, topic, len(sent))
        if len(whole) == 5:
            break
    sizes = [12 + b.batch_length for b in whole]
    assert len(sizes) == 5, sizes
    limit = max(sizes) + min(sizes) // 2
    assert limit < 2 * min(sizes), sizes
    cuts: list[int] = []
    batches = fetch_batches(wire, versions, topic, len(sent), partition_max_bytes=limit, cuts=cuts)
    # Each of the first four responses: one whole batch, then the cut start of the next.
    assert cuts[:4] == [limit - size for size in sizes[:4]], (cuts, sizes, limit)
    assert cuts[4:] == [0], cuts
    assert batches == whole
    check_decoded(batches, sent, "lz4")
    assert [b.base_offset for b in batches] == [0, 6, 12, 18, 24]
    # Cuts at every awkward place of the second batch: inside its offset and
    # length, before and after its magic byte, inside its header, one byte short.
    for extra in (1, 8, 11, 12, 16, 17, 21, 60, 61, sizes[1] - 1):
        raw = fetch_once(wire, versions, topic, 0, partition_max_bytes=sizes[0] + extra)
        assert len(raw) == sizes[0] + extra
        decoded = decode_records(raw, start_offset=0)
        assert decoded.batches == (whole[0],), extra
        assert (decoded.truncated_bytes, decoded.next_offset) == (extra, 6)


def test_fetch_from_inside_a_compressed_batch(
    kafka: Any, wire: KafkaWire, versions: dict[int, int]
) -> None:
    """A fetch offset inside a compressed batch: the broker sends the whole batch
    and ``decode_records(start_offset=...)`` drops the records before the offset."""
    topic = new_topic(kafka, wire, versions, "rb-inside")
    sent = sample(tag="inside")
    produce_confluent(kafka, topic, "gzip", sent)
    (whole,) = fetch_batches(wire, versions, topic, len(sent))
    for start in (1, 4, len(sent) - 1):
        (batch,) = fetch_batches(wire, versions, topic, len(sent) - start, start=start)
        assert batch.base_offset == 0
        assert batch.records_count == len(sent)
        assert batch.records == whole.records[start:]
        assert list(batch.records) == expect(sent)[start:]


def test_many_small_records(kafka: Any, wire: KafkaWire, versions: dict[int, int]) -> None:
    """Thousands of records per batch: offset deltas need two- and three-byte varints."""
    topic = new_topic(kafka, wire, versions, "rb-many")
    sent = [
        Sent(b"%d" % i, b"v" * (i % 40), (("n", b"%d" % i),) * (i % 3), BASE_TS + i * 1000)
        for i in range(12_000)
    ]
    produce_confluent(kafka, topic, "zstd", sent)
    batches = fetch_batches(wire, versions, topic, len(sent))
    check_decoded(batches, sent, "zstd")
    assert max(len(b.records) for b in batches) > 8192, [len(b.records) for b in batches]

    ours = new_topic(kafka, wire, versions, "rb-many-ours")
    builder = BatchBuilder(compression="lz4")
    for s in sent:
        builder.append(s.key, s.value, s.headers, timestamp=s.timestamp)
    assert produce(wire, versions, ours, builder.build()) == (0, -1)
    assert confluent_read(kafka, ours, len(sent)) == expect(sent)


def init_producer_id(wire: KafkaWire, versions: dict[int, int]) -> tuple[int, int]:
    """A fresh idempotent producer id and epoch from the broker."""
    answer = wire.request(
        InitProducerIdRequest(transactional_id=None, transaction_timeout_ms=60_000),
        versions[INIT_PRODUCER_ID],
    )
    assert answer.error_code == 0, answer
    assert answer.producer_id >= 0, answer
    return answer.producer_id, answer.producer_epoch


def test_compacted_batches(kafka: Any, wire: KafkaWire, versions: dict[int, int]) -> None:
    """Batches rewritten by the log cleaner: an emptied batch, offset gaps, a delete horizon.

    Offsets 0-1 come from an idempotent producer and are superseded later;
    the cleaner removes both records but keeps the batch, empty, because it
    holds that producer's last sequence.  Offsets 2-9 keep the last record
    of each key (5-9): base offset and last offset delta stay, the offsets
    in between go.  The tombstone it keeps sets the delete-horizon flag, and
    then the batch's base timestamp is the horizon (a day ahead) while each
    record keeps its own timestamp through a large negative delta.
    """
    topic = new_topic(
        kafka,
        wire,
        versions,
        "rb-compact",
        config={
            "cleanup.policy": "compact",
            "segment.ms": "100",
            "min.cleanable.dirty.ratio": "0.001",
            "min.compaction.lag.ms": "0",
        },
    )
    pid, epoch = init_producer_id(wire, versions)
    idempotent = [Sent(b"e", b"e1", (), BASE_TS - 2), Sent(b"f", b"f1", (), BASE_TS - 1)]
    sent = [
        Sent(b"a", b"a1", (), BASE_TS),
        Sent(b"b", b"b1", (("x", b"1"),), BASE_TS + 1),
        Sent(b"c", b"c1", (), BASE_TS + 2),
        Sent(b"a", b"a2", (("h", b"1"), ("h", None)), BASE_TS + 3),
        Sent(b"b", b"b2", (), BASE_TS + 4),
        Sent(b"c", None, (), BASE_TS + 5),
        Sent(b"e", b"e2", (), BASE_TS + 6),
        Sent(b"f", None, (("gone", b""),), BASE_TS + 7),
    ]
    batch_a = encode_batch(
        expect(idempotent),
        compression="lz4",
        producer_id=pid,
        producer_epoch=epoch,
        base_sequence=0,
    )
    assert produce(wire, versions, topic, batch_a) == (0, -1)
    # A producer's batch always starts at offset 0; the broker moves it to 2.
    data = encode_batch(expect(sent), compression="zstd")
    assert produce(wire, versions, topic, data) == (2, -1)
    records = expect(sent, base_offset=2)
    # Segments roll by record time: a record a minute later closes the first segment.
    later = Record(10, BASE_TS + 60_000, CREATE, b"d", b"d1", ())
    assert produce(wire, versions, topic, encode_batch([later._replace(offset=0)])) == (10, -1)
    deadline = time.monotonic() + 60
    while True:
        empty, *rest = decode_records(fetch_once(wire, versions, topic, 0)).batches
        if empty.records_count == 0:
            break
        assert time.monotonic() < deadline, "the log cleaner never compacted the segment"
        time.sleep(0.25)
    assert (empty.base_offset, empty.last_offset_delta, empty.records) == (0, 1, ())
    assert (empty.producer_id, empty.producer_epoch, empty.base_sequence) == (pid, epoch, 0)
    assert empty.next_offset == 2
    cleaned = rest[0]
    survivors = records[3:]
    assert cleaned.has_delete_horizon
    assert cleaned.compression == CODEC_ZSTD  # the cleaner keeps the codec
    assert (cleaned.base_offset, cleaned.last_offset_delta, cleaned.records_count) == (2, 7, 5)
    assert cleaned.base_timestamp > BASE_TS + 60_000  # the horizon, not a record's time
    assert cleaned.max_timestamp == BASE_TS + 7
    assert list(cleaned.records) == survivors
    # Fetching from inside the empty batch, inside the gap, and at the last survivor.
    assert fetch_batches(wire, versions, topic, 6, start=1)[1].records == tuple(survivors)
    assert fetch_batches(wire, versions, topic, 6, start=3)[0].records == tuple(survivors)
    assert fetch_batches(wire, versions, topic, 1, start=9)[0].records == (survivors[-1],)
    batches = fetch_batches(wire, versions, topic, 6)
    assert [len(b.records) for b in batches] == [0, 5, 1]
    assert [r for b in batches for r in b.records] == [*survivors, later]
    assert confluent_read(kafka, topic, 6) == [*survivors, later]


# --- part 2: we produce, peers read -----------------------------------------------------------


def our_batches(codec: str) -> tuple[list[bytes], list[Sent]]:
    """Two batches: one from encode_batch, one from BatchBuilder (offsets follow on)."""
    first = sample(tag=f"ours/{codec}/1")
    second = sample(tag=f"ours/{codec}/2")[::-1]
    a = encode_batch(
        [Record(i, s.timestamp, CREATE, s.key, s.value, s.headers) for i, s in enumerate(first)],
        compression=codec,
    )
    builder = BatchBuilder(compression=codec)
    for s in second:
        builder.append(s.key, s.value, s.headers, timestamp=s.timestamp)
    return [a, builder.build()], first + second


def confluent_read(kafka: Any, topic: str, count: int) -> list[Record]:
    """Read partition 0 from the beginning with confluent-kafka (CRCs checked)."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
    from confluent_kafka import (
        TIMESTAMP_CREATE_TIME as C_CREATE,
    )
    from confluent_kafka import (
        TIMESTAMP_LOG_APPEND_TIME as C_APPEND,
    )

    kinds = {C_CREATE: CREATE, C_APPEND: APPEND}
    consumer = Consumer(
        {
            "bootstrap.servers": kafka.bootstrap,
            "group.id": f"rb-{topic}",
            "enable.auto.commit": False,
            "check.crcs": True,
        }
    )
    out: list[Record] = []
    try:
        consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
        deadline = time.monotonic() + 30
        while len(out) < count:
            assert time.monotonic() < deadline, f"confluent read {len(out)} of {count}"
            for msg in consumer.consume(min(1000, count - len(out)), 0.5):
                assert msg.error() is None, msg.error()
                kind, ts = msg.timestamp()
                out.append(
                    Record(
                        msg.offset(),
                        ts,
                        kinds[kind],
                        msg.key(),
                        msg.value(),
                        tuple(msg.headers() or ()),
                    )
                )
    finally:
        consumer.close()
    return out


def kafka_python_read(kafka: Any, topic: str, count: int) -> list[Record]:
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(
        bootstrap_servers=kafka.bootstrap,
        enable_auto_commit=False,
        group_id=None,
        check_crcs=True,
    )
    out: list[Record] = []
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        consumer.seek_to_beginning(tp)
        deadline = time.monotonic() + 30
        while len(out) < count:
            assert time.monotonic() < deadline, f"kafka-python read {len(out)} of {count}"
            for records in consumer.poll(timeout_ms=500).values():
                out += [
                    Record(
                        m.offset, m.timestamp, m.timestamp_type, m.key, m.value, tuple(m.headers)
                    )
                    for m in records
                ]
    finally:
        consumer.close()
    return out


def aiokafka_read(kafka: Any, topic: str, count: int) -> list[Record]:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    async def run() -> list[Record]:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=kafka.bootstrap, enable_auto_commit=False, check_crcs=True
        )
        await consumer.start()
        out: list[Record] = []
        try:
            tp = TopicPartition(topic, 0)
            consumer.assign([tp])
            await consumer.seek_to_beginning(tp)
            deadline = time.monotonic() + 30
            while len(out) < count:
                assert time.monotonic() < deadline, f"aiokafka read {len(out)} of {count}"
                for records in (await consumer.getmany(timeout_ms=500)).values():
                    out += [
                        Record(
                            m.offset,
                            m.timestamp,
                            m.timestamp_type,
                            m.key,
                            m.value,
                            tuple(m.headers),
                        )
                        for m in records
                    ]
        finally:
            await consumer.stop()
        return out

    return asyncio.run(run())


@pytest.mark.parametrize("codec", list(CODECS))
def test_we_produce_peers_read(
    kafka: Any, wire: KafkaWire, versions: dict[int, int], codec: str
) -> None:
    topic = new_topic(kafka, wire, versions, "rb-ours")
    batches, sent = our_batches(codec)
    base = 0
    for data in batches:
        base_offset, append_time = produce(wire, versions, topic, data)
        assert base_offset == base
        assert append_time == -1  # CreateTime topic
        base += decode_records(data).batches[0].records_count
    wanted = expect(sent)
    assert confluent_read(kafka, topic, len(sent)) == wanted
    # The broker keeps our batches as they are: the codec survives the round trip.
    stored = fetch_batches(wire, versions, topic, len(sent))
    assert [b.compression for b in stored] == [CODECS[codec]] * 2
    assert [r for b in stored for r in b.records] == wanted


@pytest.mark.parametrize("codec", [c for c in CODECS if c != "none"])
def test_java_compressed_batches_decode(
    kafka: Any, wire: KafkaWire, versions: dict[int, int], codec: str
) -> None:
    """Batches compressed by Kafka's own Java codecs.

    A topic whose ``compression.type`` names a codec makes the broker
    recompress what it receives, so our uncompressed batches come back
    written by the Java libraries (xerial snappy, Kafka's LZ4 block stream,
    zstd-jni, java.util.zip): the small sample, four 48 KiB records, and
    70 KiB of random bytes that no codec can shrink (stored blocks).
    """
    topic = new_topic(kafka, wire, versions, "rb-java", config={"compression.type": codec})
    noise = random.Random(codec).randbytes(70 * 1024)
    groups = [
        sample(tag=f"java/{codec}"),
        big_sample(f"java/{codec}"),
        [Sent(b"noise", noise, (("n", None),), BASE_TS + 99)],
    ]
    sent: list[Sent] = []
    for group in groups:
        data = encode_batch(
            [Record(i, s.timestamp, CREATE, s.key, s.value, s.headers) for i, s in enumerate(group)]
        )
        assert produce(wire, versions, topic, data)[0] == len(sent)
        sent += group
    batches = fetch_batches(wire, versions, topic, len(sent))
    assert [len(b.records) for b in batches] == [len(g) for g in groups]
    assert all(b.compression == CODECS[codec] for b in batches)
    assert [r for b in batches for r in b.records] == expect(sent)


@pytest.mark.parametrize("codec", [c for c in CODECS if c != "none"])
def test_we_produce_big_batch_confluent_reads(
    kafka: Any, wire: KafkaWire, versions: dict[int, int], codec: str
) -> None:
    """Our multi-block compressed batches (192 KiB of records) pass the broker and librdkafka."""
    topic = new_topic(kafka, wire, versions, "rb-ours-big")
    sent = big_sample(f"ours/{codec}")
    data = encode_batch(
        [Record(i, s.timestamp, CREATE, s.key, s.value, s.headers) for i, s in enumerate(sent)],
        compression=codec,
    )
    assert len(data) < 0.75 * sum(len(s.value or b"") for s in sent)
    assert produce(wire, versions, topic, data) == (0, -1)
    assert confluent_read(kafka, topic, len(sent)) == expect(sent)


@pytest.mark.parametrize(
    "reader", [kafka_python_read, aiokafka_read], ids=["kafka-python", "aiokafka"]
)
def test_we_produce_other_peers_read(
    kafka: Any, wire: KafkaWire, versions: dict[int, int], reader: Any
) -> None:
    topic = new_topic(kafka, wire, versions, "rb-ours")
    batches, sent = our_batches("zstd")
    for data in batches:
        produce(wire, versions, topic, data)
    assert reader(kafka, topic, len(sent)) == expect(sent)


@pytest.mark.parametrize("codec", ["none", "gzip"])
def test_log_append_time_rewrite(
    kafka: Any, wire: KafkaWire, versions: dict[int, int], codec: str
) -> None:
    """On a LogAppendTime topic the broker stamps our batch; both sides see its time.

    The broker sets the batch's timestamp type and max timestamp (and its
    CRC); every record then reads as the append time, whatever its own delta
    says.
    """
    topic = new_topic(
        kafka, wire, versions, "rb-lat", config={"message.timestamp.type": "LogAppendTime"}
    )
    batches, sent = our_batches(codec)
    stamps = []
    for data in batches:
        _, append_time = produce(wire, versions, topic, data)
        assert append_time > BASE_TS + 86_400_000  # the broker's clock, not ours
        stamps.append(append_time)
    per_record = [stamps[0]] * (len(sent) // 2) + [stamps[1]] * (len(sent) // 2)
    wanted = [
        Record(i, ts, APPEND, s.key, s.value, s.headers)
        for i, (s, ts) in enumerate(zip(sent, per_record, strict=True))
    ]
    stored = fetch_batches(wire, versions, topic, len(sent))
    assert [b.timestamp_type for b in stored] == [APPEND, APPEND]
    assert [b.compression for b in stored] == [CODECS[codec]] * 2
    assert [b.max_timestamp for b in stored] == stamps
    assert [r for b in stored for r in b.records] == wanted
    assert confluent_read(kafka, topic, len(sent)) == wanted


def test_idempotent_batches(kafka: Any, wire: KafkaWire, versions: dict[int, int]) -> None:
    """Producer id, epoch and sequences in our batches are the ones the broker checks.

    The broker accepts sequences 0 and 3, answers a resent batch as a
    duplicate (its first offset again, nothing appended) and refuses a gap.
    """
    pid, epoch = init_producer_id(wire, versions)
    topic = new_topic(kafka, wire, versions, "rb-idem")
    sent = sample(tag="idempotent")
    first, second = sent[:3], sent[3:]
    builder = BatchBuilder(
        compression="zstd", producer_id=pid, producer_epoch=epoch, base_sequence=0
    )
    for s in first:
        builder.append(s.key, s.value, s.headers, timestamp=s.timestamp)
    batch_a = builder.build()
    batch_b = encode_batch(
        [Record(i, s.timestamp, CREATE, s.key, s.value, s.headers) for i, s in enumerate(second)],
        compression="snappy",
        producer_id=pid,
        producer_epoch=epoch,
        base_sequence=len(first),
    )
    assert produce(wire, versions, topic, batch_a)[0] == 0
    assert produce(wire, versions, topic, batch_b)[0] == len(first)
    assert produce(wire, versions, topic, batch_a)[0] == 0  # a duplicate: not appended again
    gap = BatchBuilder(producer_id=pid, producer_epoch=epoch, base_sequence=len(sent) + 5)
    gap.append(b"late", b"late", timestamp=BASE_TS)
    refused = produce_answer(wire, versions, topic, gap.build())
    assert refused.error_code == OutOfOrderSequenceNumberError.code
    stored = fetch_batches(wire, versions, topic, len(sent))
    assert [(b.producer_id, b.producer_epoch, b.base_sequence) for b in stored] == [
        (pid, epoch, 0),
        (pid, epoch, len(first)),
    ]
    assert [b.compression for b in stored] == [CODEC_ZSTD, CODEC_SNAPPY]
    assert [r for b in stored for r in b.records] == expect(sent)
    assert confluent_read(kafka, topic, len(sent)) == expect(sent)


def common(broker: dict[int, tuple[int, int]], api_key: int) -> list[int]:
    """Every version of *api_key* that both the broker and this library speak."""
    ours = protocol.client_versions()[api_key]
    theirs = broker[api_key]
    return list(range(max(ours[0], theirs[0]), min(ours[1], theirs[1]) + 1))


def test_every_produce_and_fetch_version(
    kafka: Any,
    wire: KafkaWire,
    versions: dict[int, int],
    broker_ranges: dict[int, tuple[int, int]],
) -> None:
    """The same batch bytes at every Produce and Fetch version both sides support."""
    topic = new_topic(kafka, wire, versions, "rb-versions")
    # Kafka 4 still lists Produce v0-v2 in ApiVersions (KIP-896 keeps them for old
    # librdkafka clients) but closes the connection when one is used; v3 is the first
    # with record batches anyway.
    produce_versions = [v for v in common(broker_ranges, PRODUCE) if v >= 3]
    fetch_versions = common(broker_ranges, FETCH)
    assert len(produce_versions) > 1 and len(fetch_versions) > 1
    sent: list[Sent] = []
    for version in produce_versions:
        group = sample(tag=f"produce v{version}")
        data = encode_batch(expect(group), compression="lz4")
        base, _ = produce(wire, {**versions, PRODUCE: version}, topic, data)
        assert base == len(sent), version
        sent += group
    wanted = expect(sent)
    for version in fetch_versions:
        batches = fetch_batches(wire, {**versions, FETCH: version}, topic, len(sent))
        assert [r for b in batches for r in b.records] == wanted, version
    assert confluent_read(kafka, topic, len(sent)) == wanted
