"""Legacy message sets (magic 0 and 1) and mixed-magic fetch payloads."""

from __future__ import annotations

import struct
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kafka_sansio._errors import CorruptRecordError, RemoteProtocolError
from kafka_sansio._legacy_records import _fix_old_kafka_lz4, xxh32
from kafka_sansio.records import (
    CODEC_GZIP,
    CODEC_LZ4,
    CODEC_NONE,
    CODEC_SNAPPY,
    Record,
    TimestampType,
    decode_batch,
    decode_records,
    encode_batch,
    encode_legacy_message_set,
)

NO_TS = TimestampType.NO_TIMESTAMP_TYPE
CREATE = TimestampType.CREATE_TIME
APPEND = TimestampType.LOG_APPEND_TIME
LEGACY_CODECS = [CODEC_NONE, CODEC_GZIP, CODEC_SNAPPY, CODEC_LZ4]


def test_hand_vector_magic0() -> None:
    body = bytes.fromhex("00 00 ffffffff 00000002") + b"hi"  # magic, attrs, null key, "hi"
    message = struct.pack(">qiI", 7, 4 + len(body), zlib.crc32(body)) + body
    batch = decode_batch(message)
    assert batch.magic == 0 and batch.base_offset == 7 and batch.next_offset == 8
    assert batch.records == (Record(7, -1, NO_TS, None, b"hi", ()),)
    assert batch.timestamp_type == NO_TS
    assert not batch.is_control and not batch.is_transactional
    assert encode_legacy_message_set([(None, b"hi", -1)], magic=0, base_offset=7) == message


def test_hand_vector_magic1() -> None:
    body = bytes.fromhex("01 00") + struct.pack(">q", 1_600_000_000_123)
    body += struct.pack(">i", 1) + b"k" + struct.pack(">i", -1)
    message = struct.pack(">qiI", 0, 4 + len(body), zlib.crc32(body)) + body
    batch = decode_batch(message)
    assert batch.records == (Record(0, 1_600_000_000_123, CREATE, b"k", None, ()),)
    assert batch.timestamp_type == CREATE
    assert encode_legacy_message_set([(b"k", None, 1_600_000_000_123)]) == message


@pytest.mark.parametrize("magic", [0, 1])
@pytest.mark.parametrize("codec", LEGACY_CODECS)
@given(
    items=st.lists(
        st.tuples(
            st.none() | st.binary(max_size=20),
            st.none() | st.binary(max_size=200),
            st.integers(0, 2**62),
        ),
        min_size=1,
        max_size=10,
    ),
    base=st.integers(0, 2**40),
)
@settings(max_examples=25, deadline=None)
def test_round_trip(
    magic: int, codec: int, items: list[tuple[bytes | None, bytes | None, int]], base: int
) -> None:
    data = encode_legacy_message_set(items, magic=magic, base_offset=base, compression=codec)
    result = decode_records(data)
    ts_type = NO_TS if magic == 0 else CREATE
    expected = [
        Record(base + i, ts if magic else -1, ts_type, k, v, ())
        for i, (k, v, ts) in enumerate(items)
    ]
    assert result.records() == expected
    assert result.next_offset == base + len(items)
    assert all(b.magic == magic for b in result.batches)
    if codec != CODEC_NONE:
        (batch,) = result.batches
        assert batch.compression == codec and batch.records_count == len(items)
        assert batch.last_offset == base + len(items) - 1


def test_magic1_wrapper_log_append_time() -> None:
    items = [(b"a", b"1", 10), (b"b", b"2", 20)]
    data = encode_legacy_message_set(items, compression="gzip", log_append_time=555, base_offset=40)
    batch = decode_batch(data)
    assert batch.timestamp_type == APPEND
    assert [(r.offset, r.timestamp, r.timestamp_type) for r in batch.records] == [
        (40, 555, APPEND),
        (41, 555, APPEND),
    ]


def test_magic1_relative_offsets_follow_the_wrapper_offset() -> None:
    data = bytearray(encode_legacy_message_set([(None, b"x", 1)] * 3, compression="gzip"))
    data[0:8] = struct.pack(">q", 1000)  # the broker's offset for the last inner message
    assert [r.offset for r in decode_batch(bytes(data)).records] == [998, 999, 1000]


def test_magic0_inner_offsets_are_absolute() -> None:
    data = encode_legacy_message_set(
        [(None, b"x", -1)] * 3, magic=0, compression="gzip", base_offset=5
    )
    assert [r.offset for r in decode_batch(data).records] == [5, 6, 7]


def test_xxh32_vectors() -> None:
    assert xxh32(b"") == 0x02CC5D05
    assert xxh32(b"a") == 0x550D7456
    assert xxh32(b"abc") == 0x32D153FF
    assert xxh32(b"Nobody inspects the spammish repetition") == 0xE2293B2F


def test_old_kafka_lz4_framing_for_magic0() -> None:
    frame = pytest.importorskip("lz4.frame")
    inner = encode_legacy_message_set([(None, b"old", -1), (b"k", b"kafka", -1)], magic=0)
    good = frame.compress(inner, store_size=False)
    assert _fix_old_kafka_lz4(good) == good
    # Rebuild the frame with the header checksum computed over the magic bytes, as 0.8 did.
    broken_hc = (xxh32(good[0:6]) >> 8) & 0xFF
    broken = good[:6] + bytes((broken_hc,)) + good[7:]
    with pytest.raises(RuntimeError):
        frame.decompress(broken)
    body = bytes.fromhex("00 03 ffffffff") + struct.pack(">i", len(broken)) + broken
    message = struct.pack(">qiI", 1, 4 + len(body), zlib.crc32(body)) + body
    assert [(r.offset, r.key, r.value) for r in decode_batch(message).records] == [
        (0, None, b"old"),
        (1, b"k", b"kafka"),
    ]


def test_mixed_magic_payload_and_start_offset() -> None:
    parts = [
        encode_legacy_message_set([(None, b"m0", -1)], magic=0, base_offset=0),
        encode_legacy_message_set(
            [(b"a", b"m1", 5), (b"b", b"m1", 6)], base_offset=1, compression="snappy"
        ),
        encode_batch(
            [Record(3 + i, 100, CREATE, None, b"v2", ()) for i in range(3)], base_offset=3
        ),
    ]
    data = b"".join(parts)
    result = decode_records(data)
    assert [b.magic for b in result.batches] == [0, 1, 2]
    assert [r.offset for r in result.records()] == [0, 1, 2, 3, 4, 5]
    assert result.next_offset == 6
    assert [r.offset for r in decode_records(data, 2).records()] == [2, 3, 4, 5]
    for cut in range(len(data) + 1):
        partial = decode_records(data[:cut])
        assert partial.records() == result.records()[: len(partial.records())]


def test_every_truncation_point_of_a_wrapper() -> None:
    data = encode_legacy_message_set([(b"k", b"v" * 50, 1)] * 4, compression="gzip")
    for cut in range(len(data)):
        result = decode_records(data[:cut])
        assert result.batches == () and result.truncated_bytes == cut


@pytest.mark.parametrize("magic", [0, 1])
def test_flipped_bytes(magic: int) -> None:
    data = encode_legacy_message_set([(b"key", b"value", 3)], magic=magic, compression="gzip")
    for i in range(16, len(data)):  # everything covered by the CRC-32, and the CRC itself
        bad = bytearray(data)
        bad[i] ^= 0x21
        with pytest.raises(CorruptRecordError):
            decode_records(bytes(bad))


@given(st.data())
@settings(max_examples=300, deadline=None)
def test_mutations_without_crc(data: st.DataObject) -> None:
    codec = data.draw(st.sampled_from(LEGACY_CODECS))
    magic = data.draw(st.sampled_from([0, 1]))
    payload = bytearray(
        encode_legacy_message_set([(b"k", b"value" * 3, 9)] * 3, magic=magic, compression=codec)
    )
    for _ in range(data.draw(st.integers(1, 3))):
        payload[data.draw(st.integers(0, len(payload) - 1))] = data.draw(st.integers(0, 255))
    try:
        result = decode_records(bytes(payload), check_crc=False)
    except RemoteProtocolError:
        return
    assert all(len(b.records) <= max(b.records_count, 1) for b in result.batches)


def test_nested_compression_is_rejected() -> None:
    inner = encode_legacy_message_set([(None, b"x", 1)], compression="gzip")
    body = bytes.fromhex("01 01") + struct.pack(">q", 1) + struct.pack(">i", -1)
    compressed = zlib.compress(inner, wbits=31)
    body += struct.pack(">i", len(compressed)) + compressed
    message = struct.pack(">qiI", 0, 4 + len(body), zlib.crc32(body)) + body
    with pytest.raises(CorruptRecordError, match="nested"):
        decode_records(message)


def test_wrapper_without_value_or_messages() -> None:
    for value in (None, b""):
        body = bytes.fromhex("01 01") + struct.pack(">q", 1) + struct.pack(">i", -1)
        if value is None:
            body += struct.pack(">i", -1)
        else:
            c = zlib.compress(value, wbits=31)
            body += struct.pack(">i", len(c)) + c
        message = struct.pack(">qiI", 0, 4 + len(body), zlib.crc32(body)) + body
        with pytest.raises(CorruptRecordError):
            decode_records(message)


@given(st.binary(min_size=1, max_size=40))
@settings(max_examples=200)
def test_trailing_garbage_after_legacy_messages(garbage: bytes) -> None:
    data = encode_legacy_message_set([(b"k", b"v", 1), (None, b"w", 2)], magic=1)
    data += encode_legacy_message_set([(b"k", b"z", 3)] * 2, base_offset=2, compression="gzip")
    expected = decode_records(data).records()
    try:
        result = decode_records(data + garbage)
    except RemoteProtocolError:
        return
    assert result.records() == expected
    assert result.truncated_bytes == len(garbage)


def _message(offset: int, body: bytes) -> bytes:
    return struct.pack(">qiI", offset, 4 + len(body), zlib.crc32(body)) + body


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (bytes.fromhex("00 00 00000005") + b"abcde", "overruns"),  # no room for the value length
        (bytes.fromhex("00 00 ffffffff 0000000a") + b"abc", "field length"),
        (bytes.fromhex("00 00 ffffffff fffffffe"), "field length"),
        (bytes.fromhex("00 00 ffffffff ffffffff 00"), "left over"),
        (bytes.fromhex("01 00") + bytes(8) + bytes.fromhex("ffffffff"), "size"),  # v1 too short
    ],
)
def test_malformed_legacy_messages(body: bytes, message: str) -> None:
    with pytest.raises(CorruptRecordError, match=message):
        decode_records(_message(0, body))


def test_malformed_inner_message_set() -> None:
    inner = encode_legacy_message_set([(None, b"x", 1)] * 2)
    for bad_inner in (inner + b"\x00" * 5, inner[:-3]):
        compressed = zlib.compress(bad_inner, wbits=31)
        body = bytes.fromhex("01 01") + struct.pack(">q", 1) + struct.pack(">i", -1)
        body += struct.pack(">i", len(compressed)) + compressed
        with pytest.raises(CorruptRecordError, match="truncated message"):
            decode_records(_message(1, body))


def test_direct_decoder_guards_and_encoder_errors() -> None:
    from kafka_sansio._errors import LocalProtocolError
    from kafka_sansio._legacy_records import decode_legacy_message

    data = encode_legacy_message_set([(b"k", b"v", 1)])
    with pytest.raises(CorruptRecordError, match="shorter"):
        decode_legacy_message(data, 0, 20)
    with pytest.raises(CorruptRecordError, match="size"):
        decode_legacy_message(data + b"x", 0, len(data) + 1)
    with pytest.raises(LocalProtocolError):
        encode_legacy_message_set([(b"k", b"v", 1)], magic=2)
    with pytest.raises(LocalProtocolError):
        encode_legacy_message_set([], compression="gzip")
    assert _fix_old_kafka_lz4(b"\x04\x22\x4d\x18\x60") == b"\x04\x22\x4d\x18\x60"
