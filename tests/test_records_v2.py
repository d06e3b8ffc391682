"""Record batch v2: hand-checked bytes, round trips, truncation, corruption, control batches."""

from __future__ import annotations

import struct
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kafka_sansio import _crc32c
from kafka_sansio._errors import CorruptRecordError, LocalProtocolError, RemoteProtocolError
from kafka_sansio.records import (
    CODEC_GZIP,
    CODEC_LZ4,
    CODEC_NONE,
    CODEC_SNAPPY,
    CODEC_ZSTD,
    BatchBuilder,
    ControlRecord,
    ControlRecordType,
    Record,
    RecordBatch,
    RecordBatchTooLargeError,
    RecordDecoder,
    TimestampType,
    decode_batch,
    decode_records,
    encode_batch,
    encode_legacy_message_set,
    encode_new_batch,
    iter_batches,
    make_control_record,
)

CODECS = [CODEC_NONE, CODEC_GZIP, CODEC_SNAPPY, CODEC_LZ4, CODEC_ZSTD]
INT64 = (-(2**63), 2**63 - 1)
CREATE = TimestampType.CREATE_TIME


def reference_crc32c(data: bytes) -> int:
    """Bitwise CRC-32C, independent of the library's tables and of the C package."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


# -- hand-checked vector ----------------------------------------------------------

# One record: key b"k", value b"v", one header ("h", b"x"); offset 5, time 1000.
RECORD_BYTES = bytes.fromhex("18 00 00 00 02 6b 02 76 02 02 68 02 78")
#            length=12 attr tsΔ offΔ klen=1 'k' vlen=1 'v' nh=1 hk=1 'h' hv=1 'x'


def hand_batch() -> bytes:
    tail = struct.pack(">hiqqqhii", 0, 0, 1000, 1000, -1, -1, -1, 1) + RECORD_BYTES
    crc = reference_crc32c(tail)
    return struct.pack(">qiibI", 5, 49 + len(RECORD_BYTES), -1, 2, crc) + tail


def test_hand_vector_decodes() -> None:
    batch = decode_batch(hand_batch())
    assert batch == RecordBatch(
        base_offset=5,
        batch_length=62,
        partition_leader_epoch=-1,
        magic=2,
        crc=batch.crc,
        attributes=0,
        last_offset_delta=0,
        base_timestamp=1000,
        max_timestamp=1000,
        producer_id=-1,
        producer_epoch=-1,
        base_sequence=-1,
        records_count=1,
        records=(Record(5, 1000, CREATE, b"k", b"v", (("h", b"x"),)),),
    )
    assert batch.crc == reference_crc32c(hand_batch()[21:])
    assert batch.next_offset == 6 and batch.last_offset == 5
    assert type(batch.records[0].key) is bytes


def test_hand_vector_encodes_identically() -> None:
    record = Record(5, 1000, CREATE, b"k", b"v", (("h", b"x"),))
    assert encode_batch([record], base_offset=5) == hand_batch()


def test_header_fields_and_attribute_bits() -> None:
    data = encode_batch(
        [Record(100, 7, CREATE, None, None, ())],
        base_offset=100,
        producer_id=42,
        producer_epoch=3,
        base_sequence=17,
        transactional=True,
        partition_leader_epoch=9,
        compression="gzip",
    )
    batch = decode_batch(data)
    assert (batch.producer_id, batch.producer_epoch, batch.base_sequence) == (42, 3, 17)
    assert batch.partition_leader_epoch == 9
    assert batch.is_transactional and not batch.is_control and not batch.has_delete_horizon
    assert batch.compression == CODEC_GZIP
    assert batch.attributes == 0x11
    assert batch.records == (Record(100, 7, CREATE, None, None, ()),)


def test_log_append_time_uses_max_timestamp() -> None:
    recs = [Record(i, 10 + i, CREATE, b"k", b"v", ()) for i in range(3)]
    data = encode_batch(
        recs, timestamp_type=TimestampType.LOG_APPEND_TIME, max_timestamp=99_999, compression="lz4"
    )
    batch = decode_batch(data)
    assert batch.timestamp_type == TimestampType.LOG_APPEND_TIME
    assert [(r.timestamp, r.timestamp_type) for r in batch.records] == [
        (99_999, TimestampType.LOG_APPEND_TIME)
    ] * 3


def test_control_batch() -> None:
    marker = make_control_record(
        ControlRecordType.COMMIT, offset=50, timestamp=123, coordinator_epoch=7
    )
    data = encode_batch(
        [marker], base_offset=50, is_control=True, transactional=True, producer_id=5
    )
    batch = decode_batch(data)
    assert batch.is_control and batch.is_transactional
    assert batch.control_records == (ControlRecord(50, 123, ControlRecordType.COMMIT, 0, 7),)
    assert decode_records(data).records() == []
    abort = make_control_record(ControlRecordType.ABORT, offset=1)
    assert ControlRecord.from_record(abort).type is ControlRecordType.ABORT
    with pytest.raises(CorruptRecordError):
        ControlRecord.from_record(Record(0, 0, CREATE, b"\x00", None, ()))
    ordinary = decode_batch(encode_batch([Record(0, 0, CREATE, b"k", b"v", ())]))
    assert ordinary.control_records == ()


def test_empty_batch_advances_offset() -> None:
    data = encode_batch([], base_offset=10, last_offset_delta=4, base_timestamp=0)
    result = decode_records(data)
    assert result.batches[0].records == () and result.batches[0].records_count == 0
    assert result.next_offset == 15


def test_duplicate_headers_null_values_and_odd_keys() -> None:
    headers = (("a", b"1"), ("a", None), ("\u00e9t\u00e9", b""), ("a", b"3"))
    rec = Record(0, 0, CREATE, b"", b"", headers)
    assert decode_batch(encode_batch([rec])).records == (rec,)
    # A header key that is not valid UTF-8 survives a round trip unchanged.
    raw = bytearray(encode_batch([Record(0, 0, CREATE, None, None, (("ab", b"v"),))]))
    pos = raw.index(b"ab")
    raw[pos] = 0xFF
    crc = _crc32c.crc32c(bytes(raw[21:]))
    raw[17:21] = struct.pack(">I", crc)
    rec2 = decode_batch(bytes(raw)).records[0]
    again = encode_batch([rec2])
    assert again == bytes(raw)


def test_large_fields_use_long_varints() -> None:
    big = bytes(range(256)) * 100  # 25,600 bytes: three-byte varint lengths
    recs = [
        Record(0, -(2**62), CREATE, big, None, (("k" * 9000, big),)),
        Record(70_000, 2**62, CREATE, None, big, ()),
    ]
    data = encode_batch(recs, base_timestamp=0)
    assert decode_batch(data).records == tuple(recs)


def test_inputs_other_than_bytes() -> None:
    data = encode_batch([Record(0, 0, CREATE, b"key", b"value", ())])
    for form in (bytearray(data), memoryview(data)):
        rec = decode_records(form).batches[0].records[0]
        assert type(rec.key) is bytes and rec.value == b"value"


def test_builder_size_and_content() -> None:
    builder = BatchBuilder(producer_id=1, producer_epoch=0, base_sequence=0)
    size = 0
    for i in range(20):
        size = builder.append(
            b"k%d" % i, b"v" * i, (("h", b"x"),) if i % 2 else (), timestamp=1000 + i
        )
    data = builder.build(base_offset=300)
    assert size == len(data) == builder.size and len(builder) == 20
    batch = decode_batch(data)
    assert batch.producer_id == 1 and batch.base_sequence == 0
    assert [r.offset for r in batch.records] == list(range(300, 320))
    assert batch.records[3] == Record(303, 1003, CREATE, b"k3", b"vvv", (("h", b"x"),))
    assert batch.max_timestamp == 1019 and batch.base_timestamp == 1000
    compressed = BatchBuilder(compression="zstd")
    compressed.append(b"a", b"b" * 1000, timestamp=5)
    assert decode_batch(compressed.build()).records == (
        Record(0, 5, CREATE, b"a", b"b" * 1000, ()),
    )


# -- round trips ----------------------------------------------------------------------

headers_st = st.lists(
    st.tuples(
        st.sampled_from(["a", "b", "trace-id", "\u00fc"]), st.none() | st.binary(max_size=20)
    ),
    max_size=4,
).map(tuple)


@st.composite
def records_st(draw: st.DrawFn) -> tuple[int, int, list[Record]]:
    base_offset = draw(st.integers(0, 2**62))
    base_ts = draw(st.integers(-(2**61), 2**61))
    n = draw(st.integers(0, 12))
    deltas = sorted(set(draw(st.lists(st.integers(0, 2**31 - 1), min_size=n, max_size=n))))
    recs = []
    for delta in deltas:
        ts = base_ts + draw(st.integers(-(2**61), 2**61) | st.integers(-3, 3))
        key = draw(st.none() | st.binary(max_size=30))
        value = draw(st.none() | st.binary(max_size=300))
        recs.append(Record(base_offset + delta, ts, CREATE, key, value, draw(headers_st)))
    return base_offset, base_ts, recs


@given(records_st(), st.sampled_from(CODECS))
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_round_trip(spec: tuple[int, int, list[Record]], codec: int) -> None:
    base_offset, base_ts, recs = spec
    data = encode_batch(recs, base_offset=base_offset, base_timestamp=base_ts, compression=codec)
    batch = decode_batch(data)
    assert batch.records == tuple(recs)
    assert batch.base_offset == base_offset and batch.compression == codec
    assert batch.records_count == len(recs)
    if recs:
        assert batch.last_offset == recs[-1].offset
        assert batch.max_timestamp == max(r.timestamp for r in recs)


@given(records_st())
@settings(max_examples=100, deadline=None)
def test_byte_identical_reencode(spec: tuple[int, int, list[Record]]) -> None:
    base_offset, base_ts, recs = spec
    data = encode_batch(recs, base_offset=base_offset, base_timestamp=base_ts, producer_id=3)
    b = decode_batch(data)
    again = encode_batch(
        b.records,
        base_offset=b.base_offset,
        base_timestamp=b.base_timestamp,
        max_timestamp=b.max_timestamp,
        last_offset_delta=b.last_offset_delta,
        producer_id=b.producer_id,
        producer_epoch=b.producer_epoch,
        base_sequence=b.base_sequence,
        partition_leader_epoch=b.partition_leader_epoch,
    )
    assert again == data


@pytest.fixture
def pure_crc() -> Iterator[None]:
    _crc32c.use_pure_crc32c(True)
    try:
        yield
    finally:
        _crc32c.use_pure_crc32c(False)


def test_pure_crc_path_decodes_the_same(pure_crc: None) -> None:
    recs = [Record(i, i, CREATE, b"k", b"v" * i, ()) for i in range(50)]
    data = encode_batch(recs)
    assert _crc32c.CRC32C_BACKEND == "pure"
    assert decode_batch(data).records == tuple(recs)
    bad = bytearray(data)
    bad[-1] ^= 1
    with pytest.raises(CorruptRecordError):
        decode_batch(bytes(bad))


# -- fetch payloads: truncation, trailing data, corruption --------------------------------


def payload_of(n_batches: int, codec: int = CODEC_NONE) -> tuple[bytes, list[Record]]:
    parts, recs = [], []
    off = 0
    for b in range(n_batches):
        batch_recs = [
            Record(off + i, 1000 + i, CREATE, b"k%d" % i, b"value-%d-%d" % (b, i), ())
            for i in range(3 + b)
        ]
        parts.append(encode_batch(batch_recs, base_offset=off, compression=codec))
        recs.extend(batch_recs)
        off += len(batch_recs)
    return b"".join(parts), recs


@pytest.mark.parametrize("codec", CODECS)
def test_every_truncation_point(codec: int) -> None:
    data, recs = payload_of(3, codec)
    ends = []
    pos = 0
    while pos < len(data):
        pos += 12 + struct.unpack_from(">i", data, pos + 8)[0]
        ends.append(pos)
    for cut in range(len(data) + 1):
        result = decode_records(data[:cut])
        complete = [e for e in ends if e <= cut]
        assert len(result.batches) == len(complete)
        consumed = complete[-1] if complete else 0
        assert result.truncated_bytes == cut - consumed
        got = result.records()
        assert got == recs[: len(got)]  # never a fabricated or reordered record
        if complete:
            assert result.next_offset == result.batches[-1].next_offset
        else:
            assert result.next_offset is None


def test_whole_input_equals_batch_by_batch() -> None:
    data, recs = payload_of(4)
    assert decode_records(data).records() == recs
    # Feeding growing prefixes and resuming after the complete batches gives the same records.
    got: list[Record] = []
    buffer = b""
    for i in range(len(data)):
        buffer += data[i : i + 1]
        result = decode_records(buffer)
        got.extend(result.records())
        buffer = buffer[len(buffer) - result.truncated_bytes :]
    assert got == recs and buffer == b""


@given(st.binary(min_size=1, max_size=40))
@settings(max_examples=200)
def test_trailing_garbage(garbage: bytes) -> None:
    data, recs = payload_of(2)
    try:
        result = decode_records(data + garbage)
    except RemoteProtocolError:
        return
    assert result.records() == recs  # the garbage never becomes a record
    assert result.truncated_bytes == len(garbage)


@pytest.mark.parametrize("codec", [CODEC_NONE, CODEC_GZIP])
def test_every_flipped_byte_is_detected(codec: int) -> None:
    data, _ = payload_of(1, codec)
    for i in range(len(data)):
        bad = bytearray(data)
        bad[i] ^= 0x40
        if i < 8 or 12 <= i < 16:
            # baseOffset and partitionLeaderEpoch are outside the CRC: still decodes.
            assert decode_records(bytes(bad)).batches
            continue
        if 8 <= i < 12:
            # The length field: too large, too small, or a batch that no longer ends where it should.
            try:
                result = decode_records(bytes(bad))
            except RemoteProtocolError:
                continue
            assert not result.batches and result.truncated_bytes == len(data)
            continue
        with pytest.raises(CorruptRecordError):
            decode_records(bytes(bad))


@given(st.data())
@settings(max_examples=300, deadline=None)
def test_mutations_without_crc_raise_only_remote_protocol_errors(data: st.DataObject) -> None:
    codec = data.draw(st.sampled_from(CODECS))
    payload, _ = payload_of(2, codec)
    bad = bytearray(payload)
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(bad) - 1))
        bad[i] = data.draw(st.integers(0, 255))
    try:
        result = decode_records(bytes(bad), check_crc=False)
    except RemoteProtocolError:
        return
    for batch in result.batches:
        assert len(batch.records) == batch.records_count


def test_length_field_limits() -> None:
    data, _ = payload_of(1)
    huge = bytearray(data)
    huge[8:12] = struct.pack(">i", 2**31 - 1)
    with pytest.raises(RecordBatchTooLargeError) as info:
        decode_records(bytes(huge))
    assert info.value.size == 2**31 - 1
    # Even when the payload is only 12 bytes long, it is an error rather than a truncation.
    with pytest.raises(RecordBatchTooLargeError):
        decode_records(bytes(huge[:12]))
    small = RecordDecoder(max_batch_size=100)
    with pytest.raises(RecordBatchTooLargeError):
        small.decode(data)
    for length in (-1, 0, 13, 48):
        bad = bytearray(data)
        bad[8:12] = struct.pack(">i", length)
        with pytest.raises(CorruptRecordError):
            decode_records(bytes(bad))


def test_unknown_magic() -> None:
    data, _ = payload_of(1)
    bad = bytearray(data)
    bad[16] = 3
    with pytest.raises(CorruptRecordError, match="magic"):
        decode_records(bytes(bad))


def test_decode_batch_wants_exactly_one() -> None:
    data, _ = payload_of(2)
    with pytest.raises(CorruptRecordError):
        decode_batch(data)
    with pytest.raises(CorruptRecordError):
        decode_batch(data[:30])


def test_crc_switch_per_decoder() -> None:
    data, recs = payload_of(1)
    bad = bytearray(data)
    bad[17] ^= 0xFF  # the stored CRC itself
    with pytest.raises(CorruptRecordError):
        decode_records(bytes(bad))
    assert decode_records(bytes(bad), check_crc=False).records() == recs
    assert RecordDecoder(check_crc=False).decode(bytes(bad)).records() == recs


def test_record_count_mismatch() -> None:
    recs = [Record(i, 0, CREATE, b"k", b"v", ()) for i in range(3)]
    data = bytearray(encode_batch(recs))
    for count in (2, 4, 1000, -1):
        data[57:61] = struct.pack(">i", count)
        with pytest.raises(CorruptRecordError):
            decode_records(bytes(data), check_crc=False)


# -- start offset -----------------------------------------------------------------------


@pytest.mark.parametrize("codec", [CODEC_NONE, CODEC_LZ4])
def test_start_offset_filters(codec: int) -> None:
    data, recs = payload_of(3, codec)  # offsets 0-2, 3-6, 7-11
    for start in range(0, 14):
        result = decode_records(data, start)
        assert result.records() == [r for r in recs if r.offset >= start]
        assert result.next_offset == 12
        assert all(b.last_offset >= start for b in result.batches)


def test_batches_below_start_offset_are_not_decoded() -> None:
    data, recs = payload_of(2)
    first_len = 12 + struct.unpack_from(">i", data, 8)[0]
    bad = bytearray(data)
    bad[first_len - 1] ^= 0xFF  # corrupt the last byte of the first batch
    with pytest.raises(CorruptRecordError):
        decode_records(bytes(bad))
    result = decode_records(bytes(bad), start_offset=3)
    assert result.records() == recs[3:]


def test_stop_on_error_keeps_earlier_batches() -> None:
    data, recs = payload_of(2)
    bad = bytearray(data)
    bad[-1] ^= 0xFF
    result = RecordDecoder(raise_errors=False).decode(bytes(bad))
    assert result.records() == recs[:3]
    assert isinstance(result.error, CorruptRecordError)
    assert result.next_offset == 3
    with pytest.raises(CorruptRecordError):
        RecordDecoder(raise_errors=False).decode(bytes(bad), 3)


# -- lazy iteration ---------------------------------------------------------------------


@pytest.mark.parametrize("codec", [CODEC_NONE, CODEC_ZSTD])
def test_iter_batches_matches_decode(codec: int) -> None:
    data, _ = payload_of(4, codec)
    for cut in (len(data), len(data) - 5, 70, 0):
        for start in (None, 0, 4, 11):
            eager = decode_records(data[:cut], start)
            it = iter_batches(data[:cut], start)
            assert it.next_offset is None
            assert tuple(it) == eager.batches
            assert it.truncated_bytes == eager.truncated_bytes
            assert it.next_offset == eager.next_offset


def test_iter_batches_raises_when_it_reaches_the_bad_batch() -> None:
    data, recs = payload_of(2)
    bad = bytearray(data)
    bad[-1] ^= 0xFF
    it = iter_batches(bytes(bad))
    assert next(it).records == tuple(recs[:3])
    assert it.next_offset == 3
    with pytest.raises(CorruptRecordError):
        next(it)


# -- encoder input checks ------------------------------------------------------------------


def test_encoder_rejects_bad_input_with_local_protocol_error() -> None:
    with pytest.raises(LocalProtocolError):
        encode_batch([Record(0, 0, CREATE, "text-key", b"v", ())])  # type: ignore[arg-type]
    with pytest.raises(LocalProtocolError):
        encode_batch([Record(0, 0, CREATE, b"k", 5, ())])  # type: ignore[arg-type]
    with pytest.raises(LocalProtocolError):
        encode_batch([Record(0, 0, CREATE, b"k", b"v", ())], producer_id=2**63)
    with pytest.raises(LocalProtocolError):
        encode_batch([Record(0, 0, CREATE, b"k", b"v", ())], compression="brotli")
    with pytest.raises(LocalProtocolError):
        encode_batch([Record(0, 2**63, CREATE, b"k", b"v", ())], base_timestamp=-(2**63))
    builder = BatchBuilder()
    with pytest.raises(LocalProtocolError):
        builder.append("k", b"v", timestamp=0)  # type: ignore[arg-type]
    assert len(builder) == 0


def test_encoder_accepts_other_bytes_like_values() -> None:
    rec = Record(0, 0, CREATE, bytearray(b"k"), memoryview(b"value"), (("h", bytearray(b"x")),))  # type: ignore[arg-type]
    batch = decode_batch(encode_batch([rec]))
    assert batch.records == (Record(0, 0, CREATE, b"k", b"value", (("h", b"x"),)),)


@given(
    st.lists(
        st.tuples(
            st.none() | st.binary(max_size=300), st.none() | st.binary(max_size=20_000), headers_st
        ),
        min_size=1,
        max_size=8,
    ),
    st.lists(st.integers(-(2**40), 2**40), min_size=8, max_size=8),
)
@settings(max_examples=100, deadline=None)
def test_builder_estimate_is_an_upper_bound(
    items: list[tuple[bytes | None, bytes | None, tuple[tuple[str, bytes | None], ...]]],
    stamps: list[int],
) -> None:
    builder = BatchBuilder()
    for (key, value, headers), ts in zip(items, stamps, strict=False):
        before = builder.size
        bound = BatchBuilder.estimate_record_size(key, value, headers)
        assert builder.append(key, value, headers, timestamp=ts) - before <= bound
    batch = decode_batch(builder.build())
    assert [(r.key, r.value, r.headers) for r in batch.records] == items


def test_failed_append_leaves_the_builder_unchanged() -> None:
    builder = BatchBuilder()
    with pytest.raises(LocalProtocolError):
        builder.append(b"k", "not bytes", timestamp=50)  # type: ignore[arg-type]
    builder.append(b"k", b"v", timestamp=100)
    with pytest.raises(LocalProtocolError):
        builder.append(b"k", "not bytes", timestamp=10**6)  # type: ignore[arg-type]
    batch = decode_batch(builder.build())
    assert batch.base_timestamp == 100 and batch.max_timestamp == 100
    assert batch.records == (Record(0, 100, CREATE, b"k", b"v", ()),)


@given(
    st.booleans(),
    st.booleans(),
    st.booleans(),
    st.sampled_from([TimestampType.CREATE_TIME, TimestampType.LOG_APPEND_TIME]),
    st.sampled_from(CODECS),
    st.integers(-(2**31), 2**31 - 1),
    st.integers(-(2**63), 2**63 - 1),
    st.integers(-(2**15), 2**15 - 1),
)
@settings(max_examples=80, deadline=None)
def test_every_attribute_combination(
    transactional: bool,
    control: bool,
    horizon: bool,
    ts_type: TimestampType,
    codec: int,
    leader_epoch: int,
    producer_id: int,
    producer_epoch: int,
) -> None:
    recs = [Record(7, 1000, CREATE, b"k", b"v", ()), Record(9, 1003, CREATE, None, b"w", ())]
    data = encode_batch(
        recs,
        base_offset=7,
        transactional=transactional,
        is_control=control,
        delete_horizon=horizon,
        timestamp_type=ts_type,
        compression=codec,
        partition_leader_epoch=leader_epoch,
        producer_id=producer_id,
        producer_epoch=producer_epoch,
        max_timestamp=5000,
    )
    batch = decode_batch(data)
    assert (batch.is_transactional, batch.is_control, batch.has_delete_horizon) == (
        transactional,
        control,
        horizon,
    )
    assert batch.timestamp_type == ts_type and batch.compression == codec
    assert (batch.partition_leader_epoch, batch.producer_id, batch.producer_epoch) == (
        leader_epoch,
        producer_id,
        producer_epoch,
    )
    assert batch.next_offset == 10 and batch.max_timestamp == 5000
    if ts_type == TimestampType.LOG_APPEND_TIME:
        assert [r.timestamp for r in batch.records] == [5000, 5000]
    else:
        assert list(batch.records) == recs


# -- malformed records, one branch at a time ------------------------------------------------


def raw_batch(records_area: bytes, count: int) -> bytes:
    """A v2 batch around hand-written record bytes, with a valid CRC-32C."""
    tail = struct.pack(">hiqqqhii", 0, 0, 0, 0, -1, -1, -1, count) + records_area
    return struct.pack(">qiibI", 0, 49 + len(tail) - 40, -1, 2, reference_crc32c(tail)) + tail


def record_bytes(body: bytes) -> bytes:
    return bytes([len(body) * 2]) + body  # one-byte zigzag length (len < 64)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"\x00" + b"\xff" * 11 + b"\x00\x00\x00\x00", "longer than 10 bytes"),
        (b"\x00" + b"\xff" * 9 + b"\x7f" + b"\x00\x00\x00\x00", "64 bits"),
        (b"\x00\x00\x00\x01\x01\x02\x03\x01", "header key length"),  # key length -2
        (b"\x00\x00\x00\x01\x01\x02\x02a\x06xy", "header value overruns"),
        (b"\x00\x00\x00\x01\x01\x02\x02a\x03", "header value length"),  # value length -2
        (b"\x00\x00\x00\x01\x01\x10", "header count"),  # 8 headers in no bytes
        (b"\x00\x00\x00\x03\x01\x00", "key length"),  # key length -2
        (b"\x00\x00\x00\x01\x03\x00", "value length"),  # value length -2
        (b"\x00\x00\x00\x01\x01\x00\x00", "record length"),  # a byte too many
    ],
)
def test_malformed_record_fields(body: bytes, message: str) -> None:
    data = raw_batch(record_bytes(body), 1)
    with pytest.raises(CorruptRecordError, match=message):
        decode_records(data)


def test_record_running_off_the_end_of_the_buffer() -> None:
    # key length 100 with three bytes left: the read runs off the end of the data.
    area = bytes([2 * 9]) + b"\x00\x00\x00" + b"\xc8\x01" + b"abc"
    with pytest.raises(CorruptRecordError, match="overruns"):
        decode_records(raw_batch(area, 1))


def test_decode_batch_v2_guards() -> None:
    from kafka_sansio._records import decode_batch_v2

    data = encode_batch([Record(0, 0, CREATE, b"k", b"v", ())])
    with pytest.raises(CorruptRecordError, match="shorter than its header"):
        decode_batch_v2(data, 0, 60)
    with pytest.raises(CorruptRecordError, match="batch length"):
        decode_batch_v2(data + b"x", 0, len(data) + 1)
    legacy = encode_legacy_message_set([(b"k", b"v" * 80, 1)])
    with pytest.raises(CorruptRecordError, match="magic"):
        decode_batch_v2(legacy, 0, len(legacy))


def test_builder_base_sequence_override_and_decoder_limits() -> None:
    builder = BatchBuilder(producer_id=4, producer_epoch=1, base_sequence=0)
    builder.append(b"k", b"v", timestamp=1)
    assert decode_batch(builder.build(base_sequence=42)).base_sequence == 42
    with pytest.raises(LocalProtocolError):
        RecordDecoder(max_batch_size=10)
    with pytest.raises(LocalProtocolError):
        RecordDecoder(decompress_limit=-1)


# -- the producer's encoder ----------------------------------------------------------


@given(records_st(), st.sampled_from(CODECS))
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_encode_new_batch_matches_encode_batch(
    spec: tuple[int, int, list[Record]], codec: int
) -> None:
    """Flat fields give the same bytes as encode_batch on records numbered from 0."""
    _, _, recs = spec
    fields: list[object] = []
    for r in recs:
        fields += (r.timestamp, r.key, r.value, r.headers)
    numbered = [r._replace(offset=i) for i, r in enumerate(recs)]
    data = encode_new_batch(fields, compression=codec, producer_id=7, producer_epoch=1,
                            base_sequence=3)  # fmt: skip
    expected = encode_batch(numbered, compression=codec, producer_id=7, producer_epoch=1,
                            base_sequence=3)  # fmt: skip
    if codec == CODEC_NONE or not recs:
        assert data == expected
    batch = decode_batch(data)
    assert batch.records == tuple(numbered)
    assert batch.base_sequence == 3 and batch.producer_id == 7
    if recs:
        assert batch.max_timestamp == max(r.timestamp for r in recs)


def test_encode_new_batch_refuses_bad_fields() -> None:
    with pytest.raises(LocalProtocolError, match="four items"):
        encode_new_batch([0, b"k", b"v"])
    with pytest.raises(LocalProtocolError, match="cannot encode"):
        encode_new_batch([0, "text key", b"v", ()])
    with pytest.raises(LocalProtocolError, match="cannot encode"):
        encode_new_batch([0, None, 12, ()])


def test_encode_new_batch_long_fields_and_many_records() -> None:
    """Offset deltas, lengths and timestamp deltas past the two-byte tables."""
    recs = [Record(i, 1000 + i * 3, CREATE, b"k", b"v", ()) for i in range(8300)]
    recs[5] = recs[5]._replace(value=b"x" * 10_000, key=b"y" * 9000)
    recs[8299] = recs[8299]._replace(timestamp=5, key=None)
    fields: list[object] = []
    for r in recs:
        fields += (r.timestamp, r.key, r.value, r.headers)
    data = encode_new_batch(fields)
    assert data == encode_batch(recs)
    assert decode_batch(data).records == tuple(recs)
