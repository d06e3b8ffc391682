"""``RecordDecoder.scan`` + ``decode_ref`` agree with ``decode`` (the consumer buffers by scan).

On good payloads (every codec, cut anywhere, any start offset) the records,
the next offset and the truncated tail are the same; on corrupted payloads
both raise a RemoteProtocolError or both succeed with the same records.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from kafka_sansio import RemoteProtocolError
from kafka_sansio.records import Record, RecordDecoder, codec_available, encode_batch

CODECS = [c for c in ("none", "gzip", "snappy", "lz4", "zstd") if codec_available(c)]


def _payload() -> bytes:
    parts, offset = [], 0
    for i, codec in enumerate(CODECS * 2):
        records = [
            Record(offset + j, 1000 + j, 0, b"k%d" % j, b"v%d" % (offset + j), (("h", b"x"),))
            for j in range(5)
        ]
        parts.append(
            encode_batch(records, base_offset=offset, compression=codec, partition_leader_epoch=i)
        )
        offset += 5
    return b"".join(parts)


PAYLOAD = _payload()


def _lazy(decoder: RecordDecoder, data: bytes, start: int | None) -> tuple[object, ...]:
    scanned = decoder.scan(data, start)
    records = [
        r for ref in scanned.batches for r in decoder.decode_ref(scanned.buf, ref, start).records
    ]
    return records, scanned.next_offset, scanned.truncated_bytes


def _eager(decoder: RecordDecoder, data: bytes, start: int | None) -> tuple[object, ...]:
    decoded = decoder.decode(data, start)
    records = [r for b in decoded.batches for r in b.records]
    return records, decoded.next_offset, decoded.truncated_bytes


@given(cut=st.integers(0, len(PAYLOAD)), start=st.none() | st.integers(0, 60))
@settings(max_examples=200, deadline=None)
def test_scan_then_decode_equals_decode(cut: int, start: int | None) -> None:
    decoder = RecordDecoder()
    data = PAYLOAD[:cut]
    assert _lazy(decoder, data, start) == _eager(decoder, data, start)


def _lazy_until_error(decoder: RecordDecoder, data: bytes) -> tuple[list[Record], bool]:
    """What a consumer hands out before the first problem, decoding batch by batch."""
    try:
        scanned = decoder.scan(data, 0)
    except RemoteProtocolError:
        return [], True
    records: list[Record] = []
    for ref in scanned.batches:
        try:
            records += decoder.decode_ref(scanned.buf, ref, 0).records
        except RemoteProtocolError:
            return records, True
    return records, scanned.error is not None


def _eager_until_error(decoder: RecordDecoder, data: bytes) -> tuple[list[Record], bool]:
    try:
        decoded = decoder.decode(data, 0)
    except RemoteProtocolError:
        return [], True
    return [r for b in decoded.batches for r in b.records], decoded.error is not None


@given(data=st.data())
@settings(max_examples=300, deadline=None)
def test_corruption_stops_both_at_the_same_record(data: st.DataObject) -> None:
    """The good records before the first bad byte, then an error: the same either way."""
    buf = bytearray(PAYLOAD)
    for _ in range(data.draw(st.integers(1, 4))):
        buf[data.draw(st.integers(0, len(buf) - 1))] = data.draw(st.integers(0, 255))
    decoder = RecordDecoder(raise_errors=False)
    assert _lazy_until_error(decoder, bytes(buf)) == _eager_until_error(decoder, bytes(buf))
