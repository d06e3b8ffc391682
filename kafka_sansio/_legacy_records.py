"""Legacy message sets (magic 0 and 1): decoding, and a small encoder for tests.

Each message::

    offset int64, messageSize int32, crc uint32 (CRC-32 of magic..end),
    magic int8, attributes int8, [timestamp int64 if magic 1],
    key (int32 length, -1 null), value (int32 length, -1 null)

Attributes bits 0-2 name a codec; a compressed message is a *wrapper* whose
value is a compressed inner message set.  Inside a magic 1 wrapper the inner
offsets are relative (0..n-1) and the wrapper's own offset is the absolute
offset of the last inner message; inside a magic 0 wrapper they are
absolute.  A magic 1 wrapper with the LogAppendTime bit (3) imposes its own
timestamp on every inner message.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterable

from ._compression import CODEC_NONE, DEFAULT_DECOMPRESS_LIMIT, codec_id_for, compress, decompress
from ._errors import CorruptRecordError, LocalProtocolError
from ._records import Record, RecordBatch, TimestampType

__all__ = ["decode_legacy_message", "encode_legacy_message_set"]

_OFFSET_SIZE = struct.Struct(">qi")
_CRC_MAGIC_ATTR = struct.Struct(">IBB")
_INT32 = struct.Struct(">i")
_INT64 = struct.Struct(">q")
_TIMESTAMP_TYPE_MASK = 0x08
_CODEC_LZ4 = 3
#: Smallest messageSize: crc, magic, attributes, two null lengths (+ 8 for a timestamp in v1).
MIN_MESSAGE_SIZE = (14, 22)

_Parsed = tuple[int, int, int, int, int, "bytes | None", "bytes | None"]


def _parse_message(buf: bytes, pos: int, end: int, check_crc: bool) -> _Parsed:
    """Parse the message in ``buf[pos:end]``: (offset, crc, magic, attributes, timestamp, key, value)."""
    if end - pos < 12 + MIN_MESSAGE_SIZE[0]:
        raise CorruptRecordError("legacy message shorter than its header")
    offset, size = _OFFSET_SIZE.unpack_from(buf, pos)
    crc, magic, attributes = _CRC_MAGIC_ATTR.unpack_from(buf, pos + 12)
    if magic > 1:
        raise CorruptRecordError(f"legacy message with magic {magic}")
    if size != end - pos - 12 or size < MIN_MESSAGE_SIZE[magic]:
        raise CorruptRecordError("legacy message size does not match its data")
    if check_crc:
        actual = zlib.crc32(memoryview(buf)[pos + 16 : end])
        if actual != crc:
            raise CorruptRecordError(
                f"CRC-32 mismatch in message at offset {offset}: "
                f"stored {crc:#010x}, computed {actual:#010x}"
            )
    p = pos + 18
    timestamp = -1
    if magic == 1:
        (timestamp,) = _INT64.unpack_from(buf, p)
        p += 8
    fields: list[bytes | None] = []
    for _ in range(2):
        if p + 4 > end:
            raise CorruptRecordError("legacy message field overruns the message")
        (n,) = _INT32.unpack_from(buf, p)
        p += 4
        if n == -1:
            fields.append(None)
        elif 0 <= n <= end - p:
            fields.append(buf[p : p + n])
            p += n
        else:
            raise CorruptRecordError(f"invalid legacy message field length {n}")
    if p != end:
        raise CorruptRecordError("bytes left over inside a legacy message")
    return offset, crc, magic, attributes, timestamp, fields[0], fields[1]


# -- LZ4 as Kafka 0.8-0.9 wrote it for magic 0 -------------------------------------
#
# Old Kafka computed the LZ4 frame's header checksum over the 4 magic bytes as
# well as the frame descriptor.  Such a frame is rejected by a conforming LZ4
# decoder, so for magic 0 the checksum byte is recomputed before decoding.

_LZ4_MAGIC = b"\x04\x22\x4d\x18"
_P1, _P2, _P3, _P4, _P5 = 2654435761, 2246822519, 3266489917, 668265263, 374761393
_M32 = 0xFFFFFFFF


def _rotl(x: int, r: int) -> int:
    return ((x << r) | (x >> (32 - r))) & _M32


def xxh32(data: bytes, seed: int = 0) -> int:
    """XXH32 of *data* (short inputs only matter here: LZ4 frame descriptors)."""
    n = len(data)
    i = 0
    if n >= 16:
        v = [(seed + _P1 + _P2) & _M32, (seed + _P2) & _M32, seed & _M32, (seed - _P1) & _M32]
        while i <= n - 16:
            for j in range(4):
                (lane,) = struct.unpack_from("<I", data, i + 4 * j)
                v[j] = (_rotl((v[j] + lane * _P2) & _M32, 13) * _P1) & _M32
            i += 16
        h = (_rotl(v[0], 1) + _rotl(v[1], 7) + _rotl(v[2], 12) + _rotl(v[3], 18)) & _M32
    else:
        h = (seed + _P5) & _M32
    h = (h + n) & _M32
    while i + 4 <= n:
        (word,) = struct.unpack_from("<I", data, i)
        h = (_rotl((h + word * _P3) & _M32, 17) * _P4) & _M32
        i += 4
    while i < n:
        h = (_rotl((h + data[i] * _P5) & _M32, 11) * _P1) & _M32
        i += 1
    h ^= h >> 15
    h = (h * _P2) & _M32
    h ^= h >> 13
    h = (h * _P3) & _M32
    h ^= h >> 16
    return h


def _fix_old_kafka_lz4(data: bytes) -> bytes:
    """Return *data* with a correct LZ4 header checksum if it carries old Kafka's one."""
    if len(data) < 7 or not data.startswith(_LZ4_MAGIC):
        return data
    flg = data[4]
    hc_pos = 6 + (8 if flg & 0x08 else 0) + (4 if flg & 0x01 else 0)
    if len(data) <= hc_pos:
        return data
    stored = data[hc_pos]
    right = (xxh32(data[4:hc_pos]) >> 8) & 0xFF
    broken = (xxh32(data[0:hc_pos]) >> 8) & 0xFF
    if stored == right or stored != broken:
        return data
    return data[:hc_pos] + bytes((right,)) + data[hc_pos + 1 :]


def _inner_messages(data: bytes, check_crc: bool) -> list[_Parsed]:
    out: list[_Parsed] = []
    pos, n = 0, len(data)
    while pos < n:
        if n - pos < 12:
            raise CorruptRecordError("truncated message inside a compressed wrapper")
        _, size = _OFFSET_SIZE.unpack_from(data, pos)
        end = pos + 12 + size
        if size < MIN_MESSAGE_SIZE[0] or end > n:
            raise CorruptRecordError("truncated message inside a compressed wrapper")
        msg = _parse_message(data, pos, end, check_crc)
        if msg[3] & 0x07:
            raise CorruptRecordError("compressed message nested inside a compressed wrapper")
        out.append(msg)
        pos = end
    return out


def decode_legacy_message(
    buf: bytes,
    pos: int,
    end: int,
    *,
    check_crc: bool = True,
    decompress_limit: int = DEFAULT_DECOMPRESS_LIMIT,
    start_offset: int | None = None,
) -> RecordBatch:
    """Decode the top-level message in ``buf[pos:end]`` as a :class:`RecordBatch`.

    A plain message gives a batch of one record; a compressed wrapper gives a
    batch of its inner records with absolute offsets.  Records below
    *start_offset* are dropped.  Bad input raises :class:`CorruptRecordError`.
    """
    offset, crc, magic, attributes, timestamp, key, value = _parse_message(buf, pos, end, check_crc)
    codec = attributes & 0x07
    if magic == 0:
        outer_type = TimestampType.NO_TIMESTAMP_TYPE
    elif attributes & _TIMESTAMP_TYPE_MASK:
        outer_type = TimestampType.LOG_APPEND_TIME
    else:
        outer_type = TimestampType.CREATE_TIME
    if codec == CODEC_NONE:
        records = [Record(offset, timestamp, outer_type, key, value, ())]
    else:
        if value is None:
            raise CorruptRecordError("compressed legacy wrapper without a value")
        if codec == _CODEC_LZ4 and magic == 0:
            value = _fix_old_kafka_lz4(value)
        inner = _inner_messages(decompress(codec, value, decompress_limit), check_crc)
        if not inner:
            raise CorruptRecordError("compressed legacy wrapper with no messages")
        records = []
        shift = offset - inner[-1][0] if magic == 1 else 0
        for i_off, _, i_magic, _, i_ts, i_key, i_value in inner:
            if outer_type == TimestampType.LOG_APPEND_TIME:
                ts, ts_type = timestamp, TimestampType.LOG_APPEND_TIME
            elif i_magic == 0:
                ts, ts_type = -1, TimestampType.NO_TIMESTAMP_TYPE
            else:
                ts, ts_type = i_ts, TimestampType.CREATE_TIME
            records.append(Record(i_off + shift, ts, ts_type, i_key, i_value, ()))
    first, last = records[0], records[-1]
    max_ts = max(r.timestamp for r in records)
    count = len(records)
    if start_offset is not None and first.offset < start_offset:
        records = [r for r in records if r.offset >= start_offset]
    return RecordBatch(
        first.offset,
        end - pos - 12,
        -1,
        magic,
        crc,
        attributes,
        last.offset - first.offset,
        first.timestamp,
        max_ts,
        -1,
        -1,
        -1,
        count,
        tuple(records),
    )


def _encode_message(
    offset: int, magic: int, attributes: int, timestamp: int, key: bytes | None, value: bytes | None
) -> bytes:
    parts = [struct.pack(">BB", magic, attributes)]
    if magic == 1:
        parts.append(_INT64.pack(timestamp))
    for field in (key, value):
        if field is None:
            parts.append(_INT32.pack(-1))
        else:
            parts.append(_INT32.pack(len(field)))
            parts.append(bytes(field))
    body = b"".join(parts)
    crc = zlib.crc32(body)
    return _OFFSET_SIZE.pack(offset, len(body) + 4) + struct.pack(">I", crc) + body


def encode_legacy_message_set(
    records: Iterable[tuple[bytes | None, bytes | None, int]],
    *,
    magic: int = 1,
    base_offset: int = 0,
    compression: int | str = CODEC_NONE,
    log_append_time: int | None = None,
) -> bytes:
    """Encode ``(key, value, timestamp)`` triples as a magic 0 or 1 message set.

    Uncompressed: one message per record, offsets from *base_offset*.
    Compressed: one wrapper holding them (relative inner offsets for magic 1,
    absolute for magic 0).  *log_append_time* marks a magic 1 wrapper
    LogAppendTime with that timestamp.  Meant for tests and tools: producers
    write v2 batches.
    """
    if magic not in (0, 1):
        raise LocalProtocolError("legacy message sets have magic 0 or 1")
    codec = codec_id_for(compression)
    items = list(records)
    if codec == CODEC_NONE:
        return b"".join(
            _encode_message(base_offset + i, magic, 0, ts, k, v)
            for i, (k, v, ts) in enumerate(items)
        )
    if not items:
        raise LocalProtocolError("a compressed wrapper needs at least one message")
    inner = b"".join(
        _encode_message(i if magic == 1 else base_offset + i, magic, 0, ts, k, v)
        for i, (k, v, ts) in enumerate(items)
    )
    attributes = codec
    wrapper_ts = max(ts for _, _, ts in items)
    if log_append_time is not None and magic == 1:
        attributes |= _TIMESTAMP_TYPE_MASK
        wrapper_ts = log_append_time
    return _encode_message(
        base_offset + len(items) - 1, magic, attributes, wrapper_ts, None, compress(codec, inner)
    )
