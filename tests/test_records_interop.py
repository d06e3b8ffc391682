"""Golden vectors from independent encoders: kafka-python and aiokafka (Cython and pure).

Batches built by their builders must decode here to the same records, and
batches built here must decode there, for every codec each of them supports.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

import pytest

from kafka_sansio.records import (
    CODEC_GZIP,
    CODEC_LZ4,
    CODEC_NONE,
    CODEC_SNAPPY,
    CODEC_ZSTD,
    ControlRecordType,
    Record,
    TimestampType,
    decode_batch,
    decode_records,
    encode_batch,
    encode_legacy_message_set,
    make_control_record,
)

CREATE = TimestampType.CREATE_TIME


@dataclass
class Impl:
    name: str
    builder: Any
    batch: Any
    legacy_builder: Any
    legacy_batch: Any
    codecs: set[int]


def _impls() -> list[Any]:
    out: list[Any] = []
    try:
        import kafka.codec as kcodec
        from kafka.record import default_records as kd
        from kafka.record import legacy_records as kl

        codecs = {CODEC_NONE, CODEC_GZIP}
        codecs |= {CODEC_SNAPPY} if kcodec.has_snappy() else set()
        codecs |= {CODEC_LZ4} if kcodec.has_lz4() else set()
        codecs |= {CODEC_ZSTD} if kcodec.has_zstd() else set()
        impl = Impl(
            "kafka-python",
            kd.DefaultRecordBatchBuilder,
            kd.DefaultRecordBatch,
            kl.LegacyRecordBatchBuilder,
            kl.LegacyRecordBatch,
            codecs,
        )
        out.append(pytest.param(impl, id=impl.name))
    except ImportError:  # pragma: no cover
        pass
    try:
        import aiokafka.codec as acodec
        from aiokafka.record import default_records as ad
        from aiokafka.record import legacy_records as al

        codecs = {CODEC_NONE, CODEC_GZIP}
        codecs |= {CODEC_SNAPPY} if acodec.has_snappy() else set()
        codecs |= {CODEC_LZ4} if acodec.has_lz4() else set()
        codecs |= {CODEC_ZSTD} if acodec.has_zstd() else set()
        impl = Impl(
            "aiokafka-pure",
            ad._DefaultRecordBatchBuilderPy,
            ad._DefaultRecordBatchPy,
            al._LegacyRecordBatchBuilderPy,
            al._LegacyRecordBatchPy,
            codecs,
        )
        out.append(pytest.param(impl, id=impl.name))
        try:
            from aiokafka.record import _crecords as ac

            impl = Impl(
                "aiokafka-cython",
                ac.DefaultRecordBatchBuilder,
                ac.DefaultRecordBatch,
                ac.LegacyRecordBatchBuilder,
                ac.LegacyRecordBatch,
                codecs,
            )
            out.append(pytest.param(impl, id=impl.name))
        except ImportError:  # pragma: no cover
            pass
    except ImportError:  # pragma: no cover
        pass
    return out


IMPLS = _impls()
ALL_CODECS = [CODEC_NONE, CODEC_GZIP, CODEC_SNAPPY, CODEC_LZ4, CODEC_ZSTD]

SAMPLE = [
    Record(0, 1_700_000_000_000, CREATE, b"key-0", b"value-0", ()),
    Record(1, 1_700_000_000_001, CREATE, None, b"v" * 3000, (("h", b"1"), ("h", None))),
    Record(2, 1_699_999_999_000, CREATE, b"", None, (("trace", b"x" * 200),)),
    Record(3, 1_700_000_000_500, CREATE, b"k" * 70, b"", ()),
] + [Record(i, 1_700_000_000_000 + i, CREATE, b"%d" % i, b"y" * i, ()) for i in range(4, 140)]


def _need(impl: Impl, codec: int) -> None:
    if codec not in impl.codecs:
        pytest.skip(f"{impl.name} lacks codec {codec}")


@pytest.mark.parametrize("codec", ALL_CODECS)
@pytest.mark.parametrize("impl", IMPLS)
def test_they_encode_we_decode(impl: Impl, codec: int) -> None:
    _need(impl, codec)
    builder = impl.builder(2, codec, 0, 77, 2, 1000, 10**7)
    for r in SAMPLE:
        builder.append(r.offset, r.timestamp, r.key, r.value, list(r.headers))
    data = bytes(builder.build())
    # Brokers assign the base offset; patch it in (it is outside the CRC).
    data = struct.pack(">q", 500) + data[8:]
    batch = decode_batch(data)
    assert batch.compression == codec
    assert (batch.producer_id, batch.producer_epoch, batch.base_sequence) == (77, 2, 1000)
    assert batch.records == tuple(r._replace(offset=r.offset + 500) for r in SAMPLE)
    assert batch.max_timestamp == max(r.timestamp for r in SAMPLE)


@pytest.mark.parametrize("codec", ALL_CODECS)
@pytest.mark.parametrize("impl", IMPLS)
def test_we_encode_they_decode(impl: Impl, codec: int) -> None:
    _need(impl, codec)
    data = encode_batch(
        SAMPLE,
        compression=codec,
        producer_id=9,
        producer_epoch=1,
        base_sequence=5,
        transactional=True,
    )
    theirs = impl.batch(data)
    assert theirs.validate_crc()
    assert theirs.compression_type == codec and theirs.is_transactional
    assert theirs.producer_id == 9 and theirs.base_sequence == 5
    got = [(r.offset, r.timestamp, r.key, r.value, [tuple(h) for h in r.headers]) for r in theirs]
    assert got == [(r.offset, r.timestamp, r.key, r.value, list(r.headers)) for r in SAMPLE]


@pytest.mark.parametrize("impl", IMPLS)
def test_they_decode_our_control_batch(impl: Impl) -> None:
    marker = make_control_record(
        ControlRecordType.ABORT, offset=3, timestamp=9, coordinator_epoch=4
    )
    data = encode_batch([marker], base_offset=3, is_control=True, transactional=True, producer_id=1)
    theirs = impl.batch(data)
    assert theirs.is_control_batch and theirs.validate_crc()
    (rec,) = list(theirs)
    assert rec.offset == 3
    if hasattr(rec, "type"):  # kafka-python exposes the parsed marker
        assert rec.type == 0 and rec.abort


LEGACY_ITEMS = [
    (b"k1", b"v1", 1_500_000_000_000),
    (None, b"v2" * 100, 1_500_000_000_001),
    (b"k3", None, 5),
]


def _legacy_cases(writer_side: bool) -> list[Any]:
    """(impl, magic, codec) combinations that exist.

    Magic 0 with LZ4 used old Kafka's broken frame checksum: only kafka-python
    writes it (with xxhash), and the peers cannot read the correct framing we
    write, so those pairs are left out rather than skipped.
    """
    cases = []
    for param in IMPLS:
        impl = param.values[0]
        for magic in (0, 1):
            for codec in (CODEC_NONE, CODEC_GZIP, CODEC_SNAPPY, CODEC_LZ4):
                if codec not in impl.codecs:
                    continue
                if magic == 0 and codec == CODEC_LZ4 and (
                    not writer_side or impl.name != "kafka-python"
                ):
                    continue
                cases.append(pytest.param(impl, magic, codec, id=f"{impl.name}-{magic}-{codec}"))
    return cases


@pytest.mark.parametrize(("impl", "magic", "codec"), _legacy_cases(writer_side=True))
def test_they_encode_legacy_we_decode(impl: Impl, magic: int, codec: int) -> None:
    builder = impl.legacy_builder(magic, codec, 10**7)
    for i, (k, v, ts) in enumerate(LEGACY_ITEMS):
        builder.append(i, ts, k, v)
    data = bytes(builder.build())
    n = len(LEGACY_ITEMS)
    if codec != CODEC_NONE:
        # A producer's wrapper has offset 0; the broker sets it to the last inner offset.
        data = struct.pack(">q", 100 + n - 1) + data[8:]
        base = 100 if magic == 1 else 0  # magic 0 inner offsets are absolute (as written)
    else:
        base = 0
    result = decode_records(data)
    ts_type = TimestampType.NO_TIMESTAMP_TYPE if magic == 0 else CREATE
    expected = [
        Record(base + i, ts if magic else -1, ts_type, k, v, ())
        for i, (k, v, ts) in enumerate(LEGACY_ITEMS)
    ]
    assert result.records() == expected
    assert not result.truncated


@pytest.mark.parametrize(("impl", "magic", "codec"), _legacy_cases(writer_side=False))
def test_we_encode_legacy_they_decode(impl: Impl, magic: int, codec: int) -> None:
    data = encode_legacy_message_set(LEGACY_ITEMS, magic=magic, compression=codec, base_offset=20)
    pos = 0
    got = []
    while pos < len(data):
        (size,) = struct.unpack_from(">i", data, pos + 8)
        theirs = impl.legacy_batch(data[pos : pos + 12 + size], magic)
        assert theirs.validate_crc()
        got.extend((r.offset, r.key, r.value) for r in theirs)
        pos += 12 + size
    assert got == [(20 + i, k, v) for i, (k, v, _) in enumerate(LEGACY_ITEMS)]
