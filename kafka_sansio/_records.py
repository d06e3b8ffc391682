"""Record batch v2 (magic 2): the types, the decoder and the encoder.

Layout of one batch (big-endian; offsets in bytes)::

    0  baseOffset int64        27 baseTimestamp int64
    8  batchLength int32       35 maxTimestamp int64
    12 partitionLeaderEpoch    43 producerId int64
    16 magic int8 (= 2)        51 producerEpoch int16
    17 crc uint32              53 baseSequence int32
    21 attributes int16        57 records count int32
    23 lastOffsetDelta int32   61 records...

The CRC-32C covers bytes 21 to the end.  Each record is a zigzag varint
length followed by: attributes int8, timestampDelta varlong, offsetDelta
varint, key and value (varint length, -1 for null, then bytes), and a varint
count of headers, each a varint-length UTF-8 key and a varint-length value.

The record loop in :func:`decode_columns_v2` is the consumer's hot path: it
inlines one- and two-byte varints with a precomputed zigzag table, slices keys
and values straight out of a ``bytes`` buffer, and decodes runs of records laid
out alike column by column.  It returns columns; :class:`Record` tuples are
built from them where they are handed out.  Anything malformed raises
:class:`CorruptRecordError`.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import dataclass
from enum import IntEnum
from itertools import chain, repeat
from operator import add
from typing import Any, NamedTuple

from . import _crc32c
from ._compression import CODEC_NONE, DEFAULT_DECOMPRESS_LIMIT, codec_id_for, compress, decompress
from ._errors import CorruptRecordError, LocalProtocolError

__all__ = [
    "TimestampType",
    "ControlRecordType",
    "Header",
    "Record",
    "ControlRecord",
    "RecordBatch",
    "decode_batch_v2",
    "decode_batch_columns_v2",
    "decode_columns_v2",
    "encode_batch",
    "encode_new_batch",
    "make_control_record",
    "BatchBuilder",
    "HEADER_SIZE_V2",
]

# Attribute bits of a v2 batch.
COMPRESSION_MASK = 0x07
TIMESTAMP_TYPE_MASK = 0x08
TRANSACTIONAL_MASK = 0x10
CONTROL_MASK = 0x20
DELETE_HORIZON_MASK = 0x40

#: Size of the v2 batch header (baseOffset .. records count).
HEADER_SIZE_V2 = 61
#: Offset of the attributes field: where the CRC-32C starts.
CRC_START = 21
#: batchLength counts the bytes after itself: the smallest valid v2 batch has 49.
MIN_BATCH_LENGTH_V2 = HEADER_SIZE_V2 - 12

_HEADER = struct.Struct(">qiibIhiqqqhii")
#: What ``_HEADER`` unpacks: RecordBatch's fields before ``records``, in order.
_BatchHeader = tuple[int, int, int, int, int, int, int, int, int, int, int, int, int]
_HEADER_PREFIX = struct.Struct(">qiibI")  # baseOffset .. crc
_HEADER_TAIL = struct.Struct(">hiqqqhii")  # attributes .. records count (CRC-covered)
_INT16 = struct.Struct(">h")
_CONTROL_VALUE = struct.Struct(">hi")

_EMPTY_HEADERS: tuple[Header, ...] = ()


class TimestampType(IntEnum):
    """How a record's timestamp was assigned."""

    NO_TIMESTAMP_TYPE = -1  #: magic 0 messages carry no timestamp
    CREATE_TIME = 0  #: set by the producer
    LOG_APPEND_TIME = 1  #: set by the broker when it appended the batch


class ControlRecordType(IntEnum):
    """The marker a control record carries (the ``type`` in its key)."""

    ABORT = 0
    COMMIT = 1


#: A record header: (key, value), value None when the header value is null.
Header = tuple[str, "bytes | None"]


class Record(NamedTuple):
    """One record as a consumer sees it.

    A tuple subclass (so it is cheap to build and immutable).  ``key`` and
    ``value`` are ``bytes`` or ``None`` (null); ``headers`` is a tuple of
    ``(str, bytes | None)`` pairs in wire order, duplicates kept; timestamps
    are integer milliseconds since the epoch (-1 when absent).
    """

    offset: int
    timestamp: int
    timestamp_type: int
    key: bytes | None
    value: bytes | None
    headers: tuple[Header, ...] = ()


class ControlRecord(NamedTuple):
    """A transaction marker: the single record of a control batch, parsed.

    ``type`` is a :class:`ControlRecordType` (or the raw int for a type this
    library does not know); ``coordinator_epoch`` is -1 when the value is
    missing.
    """

    offset: int
    timestamp: int
    type: int
    version: int
    coordinator_epoch: int

    @classmethod
    def from_record(cls, record: Record) -> ControlRecord:
        """Parse the key (version, type) and value (version, coordinator epoch) of *record*."""
        key, value = record.key, record.value
        if key is None or len(key) < 4:
            raise CorruptRecordError("control record key is shorter than 4 bytes")
        version, raw_type = struct.unpack_from(">hh", key)
        mtype: int = raw_type
        if raw_type in (0, 1):
            mtype = ControlRecordType(raw_type)
        epoch = -1
        if value is not None and len(value) >= 6:
            _, epoch = _CONTROL_VALUE.unpack_from(value)
        return cls(record.offset, record.timestamp, mtype, version, epoch)


def make_control_record(
    marker: ControlRecordType | int,
    *,
    offset: int = 0,
    timestamp: int = -1,
    coordinator_epoch: int = 0,
) -> Record:
    """Build the record a transaction coordinator writes as a commit/abort marker.

    Encode it with ``encode_batch([record], is_control=True, transactional=True, ...)``.
    """
    key = struct.pack(">hh", 0, int(marker))
    value = _CONTROL_VALUE.pack(0, coordinator_epoch)
    return Record(offset, timestamp, TimestampType.CREATE_TIME, key, value, ())


@dataclass(frozen=True, slots=True)
class RecordBatch:
    """A decoded batch: every header field, and its records.

    For legacy message sets (magic 0 and 1) each top-level message becomes one
    batch; fields the old format lacks are -1 (``partition_leader_epoch``,
    ``producer_*``, ``base_sequence``) and ``crc`` is the message's CRC-32.
    ``records`` holds only the records at or after the ``start_offset`` the
    decoder was given; ``records_count`` is what the header announced.
    """

    base_offset: int
    batch_length: int
    partition_leader_epoch: int
    magic: int
    crc: int
    attributes: int
    last_offset_delta: int
    base_timestamp: int
    max_timestamp: int
    producer_id: int
    producer_epoch: int
    base_sequence: int
    records_count: int
    records: tuple[Record, ...]

    @property
    def compression(self) -> int:
        """Codec id (0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd)."""
        return self.attributes & COMPRESSION_MASK

    @property
    def timestamp_type(self) -> TimestampType:
        """CREATE_TIME or LOG_APPEND_TIME (NO_TIMESTAMP_TYPE for magic 0)."""
        if self.magic == 0:
            return TimestampType.NO_TIMESTAMP_TYPE
        return timestamp_type_of(self.attributes)

    @property
    def is_transactional(self) -> bool:
        return bool(self.attributes & TRANSACTIONAL_MASK) and self.magic >= 2

    @property
    def is_control(self) -> bool:
        """True for a batch holding transaction markers rather than user records."""
        return bool(self.attributes & CONTROL_MASK) and self.magic >= 2

    @property
    def has_delete_horizon(self) -> bool:
        """True when baseTimestamp is the delete horizon set by log compaction (KIP-534)."""
        return bool(self.attributes & DELETE_HORIZON_MASK) and self.magic >= 2

    @property
    def last_offset(self) -> int:
        return self.base_offset + self.last_offset_delta

    @property
    def next_offset(self) -> int:
        """The offset a consumer fetches next after this batch (even an empty one)."""
        return self.base_offset + self.last_offset_delta + 1

    @property
    def control_records(self) -> tuple[ControlRecord, ...]:
        """The parsed markers of a control batch; empty for ordinary batches."""
        if not self.is_control:
            return ()
        return tuple(ControlRecord.from_record(r) for r in self.records)


# -- varints -------------------------------------------------------------------

# Zigzag value of every varint that fits in one or two bytes, indexed by the
# 14 payload bits: one lookup replaces the shift/xor of the zigzag decode.
_ZZ: list[int] = [(v >> 1) ^ -(v & 1) for v in range(1 << 14)]


def _read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    """Decode a zigzag varint/varlong at *pos*; return (value, position after it)."""
    result = 0
    shift = 0
    while True:
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            if result >> 64:
                raise CorruptRecordError("varint does not fit in 64 bits")
            return (result >> 1) ^ -(result & 1), pos
        shift += 7
        if shift > 63:
            raise CorruptRecordError("varint longer than 10 bytes")


def _zigzag_bytes(n: int) -> bytes:
    v = (n << 1) ^ (n >> 63)
    if not 0 <= v < 1 << 64:
        raise LocalProtocolError(f"{n} does not fit in a 64-bit varint")
    out = bytearray()
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


# Encoded zigzag varint of every n in [0, 8192): lengths and small deltas.
_VZ_SMALL: list[bytes] = [_zigzag_bytes(n) for n in range(8192)]
_VZ_MINUS_ONE = _zigzag_bytes(-1)
# A record's first three fields when its timestamp delta is 0, by offset delta:
# attributes (always 0), the timestamp delta, the offset delta.
_HEAD_TS0: list[bytes] = [b"\x00" + _VZ_SMALL[0] + _VZ_SMALL[n] for n in range(8192)]


def _vz(n: int) -> bytes:
    if 0 <= n < 8192:
        return _VZ_SMALL[n]
    return _zigzag_bytes(n)


# -- decoding --------------------------------------------------------------------


def _read_headers(buf: bytes, pos: int, end: int) -> tuple[tuple[Header, ...], int]:
    count, pos = _read_varint(buf, pos)
    if count < 0 or count > end - pos:
        raise CorruptRecordError(f"invalid header count {count}")
    headers: list[Header] = []
    for _ in range(count):
        n, pos = _read_varint(buf, pos)
        if n < 0 or pos + n > end:
            raise CorruptRecordError("invalid header key length")
        hkey = buf[pos : pos + n].decode("utf-8", "surrogateescape")
        pos += n
        n, pos = _read_varint(buf, pos)
        if n >= 0:
            if pos + n > end:
                raise CorruptRecordError("header value overruns its record")
            hval: bytes | None = buf[pos : pos + n]
            pos += n
        elif n == -1:
            hval = None
        else:
            raise CorruptRecordError("invalid header value length")
        headers.append((hkey, hval))
    return tuple(headers), pos


#: A batch's records as columns: offsets, timestamps, keys, values, headers.
Columns = tuple[
    list[int], list[int], list["bytes | None"], list["bytes | None"], list[tuple[Header, ...]]
]

# Tables for the same-layout runs of decode_columns_v2.
_BYTE = [bytes((b,)) for b in range(256)]
# bytes.translate tables: a byte that ends a varint maps to 0 (_ENDS), one that
# continues it maps to 0 (_GOES_ON); everything else to 1.
_ENDS = bytes(0 if b < 0x80 else 1 for b in range(256))
_GOES_ON = bytes(1 if b < 0x80 else 0 for b in range(256))
# The offset delta bytes of consecutive records: one-byte varints (deltas 0-63)
# and the two bytes of two-byte ones (deltas 0-8191), by delta.
_OFF1 = bytes(2 * d for d in range(64))
_OFF2_FIRST = bytes(((2 * d) & 0x7F) | 0x80 for d in range(8192))
_OFF2_SECOND = bytes((2 * d) >> 7 for d in range(8192))
# The second byte of a two-byte varint, shifted into place, less the first
# byte's continuation bit: first + _SHIFT7[second] indexes _ZZ.
_SHIFT7 = [(b << 7) - 0x80 for b in range(256)]
#: The longest run checked at once (longer runs are taken in several steps).
_RUN_STEP = 512
#: Records parsed one by one after a failed run check before the next check.
_RUN_RETRY = 16


def _leading(col: bytes, byte: bytes) -> int:
    """How many bytes at the start of *col* equal *byte* (one byte)."""
    return len(col) - len(col.lstrip(byte))


def decode_columns_v2(
    buf: bytes, pos: int, end: int, count: int, base_offset: int, base_timestamp: int
) -> Columns:
    """Decode *count* records from ``buf[pos:end]``, which they must fill exactly.

    Returns them as columns (offsets, timestamps, keys, values, headers), in
    record order; *buf* must be ``bytes`` (keys and values are slices of it).
    Timestamps are ``base_timestamp + delta``, offsets ``base_offset + delta``.
    Anything malformed raises :class:`CorruptRecordError`.

    Records are parsed one at a time; after each one, a check looks for a run
    of following records laid out exactly like it (same length, key and value
    lengths, varint widths, no headers, offsets one apart).  Such a run is
    decoded column by column with strided slices and C-level maps instead of
    record by record: producers that send values of one size (and keys of one
    length, or none) get most of their records decoded that way.  Every byte
    a run relies on is checked, so a run decodes to exactly what the
    one-at-a-time loop gives, and anything it cannot vouch for goes through
    that loop.
    """
    if count < 0 or count * 7 > end - pos:
        raise CorruptRecordError(f"record count {count} does not fit in {end - pos} bytes")
    offsets: list[int] = []
    timestamps: list[int] = []
    keys: list[bytes | None] = []
    values: list[bytes | None] = []
    headers_col: list[tuple[Header, ...]] = []
    zz = _ZZ
    empty = _EMPTY_HEADERS
    read_varint = _read_varint
    ts_table: list[int] | None = None  # base_timestamp + one-byte delta, by byte
    i = 0
    next_check = 0
    try:
        while i < count:
            start = pos
            # length
            b = buf[pos]
            if b < 0x80:
                rec_end = pos + 1 + zz[b]
                pos += 2  # length byte and the attributes byte
            else:
                b2 = buf[pos + 1]
                if b2 < 0x80:
                    rec_end = pos + 2 + zz[(b & 0x7F) | (b2 << 7)]
                    pos += 3
                else:
                    n, pos = read_varint(buf, pos)
                    rec_end = pos + n
                    pos += 1
            # timestampDelta
            ts_at = pos
            b = buf[pos]
            if b < 0x80:
                ts = base_timestamp + zz[b]
                pos += 1
            else:
                n, pos = read_varint(buf, pos)
                ts = base_timestamp + n
            # offsetDelta
            off_at = pos
            b = buf[pos]
            if b < 0x80:
                delta = zz[b]
                pos += 1
            else:
                b2 = buf[pos + 1]
                if b2 < 0x80:
                    delta = zz[(b & 0x7F) | (b2 << 7)]
                    pos += 2
                else:
                    delta, pos = read_varint(buf, pos)
            # key: an even single byte is a length 0-63
            key_at = pos
            b = buf[pos]
            if b < 0x80 and not b & 1:
                pos += 1
                n = pos + (b >> 1)
                key: bytes | None = buf[pos:n]
                pos = n
            else:
                n, pos = read_varint(buf, pos)
                if n >= 0:
                    key = buf[pos : pos + n]
                    pos += n
                elif n == -1:
                    key = None
                else:
                    raise CorruptRecordError(f"invalid key length {n}")
            # value: single-byte even lengths inline, then two-byte ones
            value_at = pos
            b = buf[pos]
            if b < 0x80 and not b & 1:
                pos += 1
                n = pos + (b >> 1)
                value: bytes | None = buf[pos:n]
                pos = n
            else:
                if b < 0x80:
                    n = zz[b]
                    pos += 1
                else:
                    b2 = buf[pos + 1]
                    if b2 < 0x80:
                        n = zz[(b & 0x7F) | (b2 << 7)]
                        pos += 2
                    else:
                        n, pos = read_varint(buf, pos)
                if n >= 0:
                    value = buf[pos : pos + n]
                    pos += n
                elif n == -1:
                    value = None
                else:
                    raise CorruptRecordError(f"invalid value length {n}")
            # headers
            if buf[pos]:
                headers, pos = _read_headers(buf, pos, rec_end)
            else:
                headers = empty
                pos += 1
            if pos != rec_end:
                raise CorruptRecordError("record length does not match its fields")
            offsets.append(base_offset + delta)
            timestamps.append(ts)
            keys.append(key)
            values.append(value)
            headers_col.append(headers)
            i += 1
            if i < next_check or headers:
                continue

            # -- a run of records laid out like this one? -------------------
            size = pos - start
            ts_width = off_at - ts_at
            off_width = key_at - off_at
            first = delta + 1  # the offset delta the next record must have
            if off_width == 1:
                most = 64 - first
            elif off_width == 2:
                most = 8192 - first
            else:
                most = 0
            m = min(count - i, (end - pos) // size, most, _RUN_STEP)
            # The cheap test first: the next record's length.
            if m < 2 or ts_width > 2 or buf[pos : pos + ts_at - 1 - start] != buf[start : ts_at - 1]:
                next_check = i + _RUN_RETRY
                continue
            # Column k of the run is buf[pos + k : stop : size]; every column
            # that must repeat this record's bytes is checked, and the run ends
            # at the first record where any of them differs.
            key_len = 0 if key is None else len(key)
            value_len = 0 if value is None else len(value)
            stop = pos + m * size
            fixed = chain(
                range(ts_at - 1 - start),  # the record's length
                range(key_at - start, value_at - start - key_len),  # the key's length
                range(value_at - start, size - 1 - value_len),  # the value's length
            )
            for k in fixed:
                m = min(m, _leading(buf[pos + k : stop : size], _BYTE[buf[start + k]]))
            col = buf[pos + size - 1 : stop : size]  # no headers
            m = min(m, _leading(col, b"\x00"))
            ts_col = buf[pos + ts_at - start : stop : size]
            if ts_width == 1:
                m = min(m, _leading(ts_col.translate(_ENDS), b"\x00"))
                ts_col2 = b""
            else:
                ts_col2 = buf[pos + ts_at - start + 1 : stop : size]
                m = min(m, _leading(ts_col.translate(_GOES_ON), b"\x00"))
                m = min(m, _leading(ts_col2.translate(_ENDS), b"\x00"))
            if m < 2:
                next_check = i + _RUN_RETRY
                continue
            stop = pos + m * size
            k = pos + off_at - start
            if off_width == 1:
                in_order = buf[k:stop:size] == _OFF1[first : first + m]
            else:
                in_order = (
                    buf[k:stop:size] == _OFF2_FIRST[first : first + m]
                    and buf[k + 1 : stop : size] == _OFF2_SECOND[first : first + m]
                )
            if not in_order:
                next_check = i + _RUN_RETRY
                continue
            # The run checks out: its columns, without a per-record Python step.
            offsets += range(base_offset + first, base_offset + first + m)
            if ts_width == 1:
                if ts_table is None:
                    ts_table = [base_timestamp + z for z in zz[:128]]
                timestamps += map(ts_table.__getitem__, ts_col[:m])
            else:
                zigzag = map(add, ts_col[:m], map(_SHIFT7.__getitem__, ts_col2[:m]))
                timestamps += map(add, repeat(base_timestamp), map(zz.__getitem__, zigzag))
            if key is None:
                keys += repeat(None, m)
            else:
                k = pos + value_at - start - key_len
                keys += [buf[p : p + key_len] for p in range(k, stop, size)]
            if value is None:
                values += repeat(None, m)
            else:
                k = pos + size - 1 - value_len
                values += [buf[p : p + value_len] for p in range(k, stop, size)]
            headers_col += repeat(empty, m)
            i += m
            pos = stop
            next_check = i
    except IndexError:
        raise CorruptRecordError("record overruns its batch") from None
    if pos != end:
        raise CorruptRecordError(f"{end - pos} bytes left over after {count} records")
    return offsets, timestamps, keys, values, headers_col


def decode_batch_columns_v2(
    buf: bytes,
    pos: int,
    end: int,
    *,
    check_crc: bool = True,
    decompress_limit: int = DEFAULT_DECOMPRESS_LIMIT,
    start_offset: int | None = None,
) -> tuple[_BatchHeader, Columns]:
    """Decode the complete v2 batch occupying ``buf[pos:end]`` (*buf* is ``bytes``).

    Returns its header fields (RecordBatch's fields before ``records``, in
    order) and its records as columns (see :func:`decode_columns_v2`); in a
    LOG_APPEND_TIME batch every timestamp is the batch's max timestamp.
    Verifies the CRC-32C unless *check_crc* is false, decompresses (bounded by
    *decompress_limit*) and drops records below *start_offset*.  Raises
    :class:`CorruptRecordError` (or another RemoteProtocolError) for bad input,
    :class:`MissingCodecError` when the codec is not installed.
    """
    if end - pos < HEADER_SIZE_V2:
        raise CorruptRecordError("record batch shorter than its header")
    header: _BatchHeader = _HEADER.unpack_from(buf, pos)
    base_offset, batch_length, _, magic, crc, attributes = header[:6]
    base_timestamp, max_timestamp = header[7:9]
    count = header[12]
    if magic != 2:
        raise CorruptRecordError(f"expected magic 2, got {magic}")
    if batch_length != end - pos - 12:
        raise CorruptRecordError("batch length does not match the data given")
    if check_crc:
        actual = _crc32c.crc32c(memoryview(buf)[pos + CRC_START : end])
        if actual != crc:
            raise CorruptRecordError(
                f"CRC-32C mismatch in batch at offset {base_offset}: "
                f"stored {crc:#010x}, computed {actual:#010x}"
            )
    codec = attributes & COMPRESSION_MASK
    if codec == CODEC_NONE:
        columns = decode_columns_v2(
            buf, pos + HEADER_SIZE_V2, end, count, base_offset, base_timestamp
        )
    else:
        data = decompress(codec, buf[pos + HEADER_SIZE_V2 : end], decompress_limit)
        columns = decode_columns_v2(data, 0, len(data), count, base_offset, base_timestamp)
    offsets = columns[0]
    if attributes & TIMESTAMP_TYPE_MASK:
        columns = (offsets, [max_timestamp] * len(offsets), *columns[2:])
    if start_offset is not None and offsets and offsets[0] < start_offset:
        keep = [i for i, offset in enumerate(offsets) if offset >= start_offset]
        o, t, k, v, h = columns
        columns = (
            [o[i] for i in keep],
            [t[i] for i in keep],
            [k[i] for i in keep],
            [v[i] for i in keep],
            [h[i] for i in keep],
        )
    return header, columns


def timestamp_type_of(attributes: int) -> TimestampType:
    """The timestamp type a v2 batch's attributes give its records."""
    if attributes & TIMESTAMP_TYPE_MASK:
        return TimestampType.LOG_APPEND_TIME
    return TimestampType.CREATE_TIME


def decode_batch_v2(
    buf: bytes,
    pos: int,
    end: int,
    *,
    check_crc: bool = True,
    decompress_limit: int = DEFAULT_DECOMPRESS_LIMIT,
    start_offset: int | None = None,
) -> RecordBatch:
    """Decode the complete v2 batch occupying ``buf[pos:end]`` (*buf* is ``bytes``).

    :func:`decode_batch_columns_v2`, as a :class:`RecordBatch` of
    :class:`Record` tuples.
    """
    header, (offsets, timestamps, keys, values, headers) = decode_batch_columns_v2(
        buf,
        pos,
        end,
        check_crc=check_crc,
        decompress_limit=decompress_limit,
        start_offset=start_offset,
    )
    ts_type = timestamp_type_of(header[5])
    records = map(
        tuple.__new__,
        repeat(Record),
        zip(offsets, timestamps, repeat(ts_type), keys, values, headers),
    )
    # The header fields are RecordBatch's fields, in order.
    return RecordBatch(*header, tuple(records))


# -- encoding --------------------------------------------------------------------


def _encode_headers(headers: Iterable[Header]) -> bytes:
    parts: list[bytes] = []
    n = 0
    for hkey, hval in headers:
        kb = hkey.encode("utf-8", "surrogateescape")
        parts.append(_vz(len(kb)))
        parts.append(kb)
        if hval is None:
            parts.append(_VZ_MINUS_ONE)
        else:
            parts.append(_vz(len(hval)))
            parts.append(bytes(hval))
        n += 1
    return _vz(n) + b"".join(parts)


def _encode_record(off_delta: int, ts_delta: int, key: Any, value: Any, headers: Any) -> bytes:
    """One record, length prefix included."""
    kpart = _VZ_MINUS_ONE if key is None else _vz(len(key)) + key
    vpart = _VZ_MINUS_ONE if value is None else _vz(len(value)) + value
    body = b"".join(
        (
            b"\x00",
            _vz(ts_delta),
            _vz(off_delta),
            kpart,
            vpart,
            _encode_headers(headers) if headers else b"\x00",
        )
    )
    return _vz(len(body)) + body


def _finish_batch(
    body: bytes,
    count: int,
    *,
    base_offset: int,
    last_offset_delta: int,
    base_timestamp: int,
    max_timestamp: int,
    compression: int,
    timestamp_type: int,
    transactional: bool,
    is_control: bool,
    delete_horizon: bool,
    producer_id: int,
    producer_epoch: int,
    base_sequence: int,
    partition_leader_epoch: int,
) -> bytes:
    attributes = compression & COMPRESSION_MASK
    if timestamp_type == TimestampType.LOG_APPEND_TIME:
        attributes |= TIMESTAMP_TYPE_MASK
    if transactional:
        attributes |= TRANSACTIONAL_MASK
    if is_control:
        attributes |= CONTROL_MASK
    if delete_horizon:
        attributes |= DELETE_HORIZON_MASK
    if compression != CODEC_NONE:
        body = compress(compression, body)
    try:
        tail = _HEADER_TAIL.pack(
            attributes,
            last_offset_delta,
            base_timestamp,
            max_timestamp,
            producer_id,
            producer_epoch,
            base_sequence,
            count,
        )
        crc = _crc32c.crc32c(body, _crc32c.crc32c(tail))
        prefix = _HEADER_PREFIX.pack(
            base_offset, HEADER_SIZE_V2 - 12 + len(body), partition_leader_epoch, 2, crc
        )
    except struct.error as exc:
        raise LocalProtocolError(f"batch header field out of range: {exc}") from None
    return prefix + tail + body


def encode_batch(
    records: Iterable[Record | tuple[Any, ...]],
    *,
    base_offset: int = 0,
    compression: int | str = CODEC_NONE,
    producer_id: int = -1,
    producer_epoch: int = -1,
    base_sequence: int = -1,
    transactional: bool = False,
    is_control: bool = False,
    partition_leader_epoch: int = -1,
    timestamp_type: int = TimestampType.CREATE_TIME,
    base_timestamp: int | None = None,
    max_timestamp: int | None = None,
    last_offset_delta: int | None = None,
    delete_horizon: bool = False,
) -> bytes:
    """Encode *records* as one v2 batch and return its bytes.

    Each record is a :class:`Record` (or a tuple laid out like one:
    ``(offset, timestamp, timestamp_type, key, value, headers)``); its offset
    delta is ``record.offset - base_offset`` and its timestamp delta
    ``record.timestamp - base_timestamp``.  *base_timestamp* defaults to the
    first record's timestamp, *max_timestamp* to the largest one and
    *last_offset_delta* to the last record's delta, so re-encoding a decoded
    uncompressed CREATE_TIME batch with its header fields gives the same
    bytes.  *compression* is a codec id or name.  For producing new records
    without offsets, :class:`BatchBuilder` is handier.
    """
    codec = codec_id_for(compression)
    recs = records if isinstance(records, (list, tuple)) else list(records)
    if base_timestamp is None:
        base_timestamp = recs[0][1] if recs else -1
    parts: list[bytes] = []
    put = parts.extend
    vz_small = _VZ_SMALL
    head0 = _HEAD_TS0
    minus_one = _VZ_MINUS_ONE
    max_ts = -(2**63)
    off_delta = -1
    try:
        for rec in recs:
            off, ts, _tt, key, value, headers = rec
            off_delta = off - base_offset
            ts_delta = ts - base_timestamp
            if ts > max_ts:
                max_ts = ts
            # attributes, timestamp delta, offset delta: one lookup in the common case
            if ts_delta == 0 and 0 <= off_delta < 8192:
                head = head0[off_delta]
            else:
                head = b"".join(
                    (
                        b"\x00",
                        vz_small[ts_delta] if 0 <= ts_delta < 8192 else _zigzag_bytes(ts_delta),
                        vz_small[off_delta] if 0 <= off_delta < 8192 else _zigzag_bytes(off_delta),
                    )
                )
            if key is None:
                klen_b = minus_one
                key = b""
            else:
                n = len(key)
                klen_b = vz_small[n] if n < 8192 else _zigzag_bytes(n)
            if value is None:
                vlen_b = minus_one
                value = b""
            else:
                n = len(value)
                vlen_b = vz_small[n] if n < 8192 else _zigzag_bytes(n)
            hdr = _encode_headers(headers) if headers else b"\x00"
            # The record's length, summed rather than measured on a copy.
            n = len(head) + len(klen_b) + len(key) + len(vlen_b) + len(value) + len(hdr)
            put(
                (
                    vz_small[n] if n < 8192 else _zigzag_bytes(n),
                    head,
                    klen_b,
                    key,
                    vlen_b,
                    value,
                    hdr,
                )
            )
        payload = b"".join(parts)  # a key or value that is not bytes fails here
    except (TypeError, ValueError, AttributeError) as exc:
        raise LocalProtocolError(f"cannot encode record: {exc}") from None
    if max_timestamp is None:
        max_timestamp = max_ts if recs else base_timestamp
    if last_offset_delta is None:
        last_offset_delta = off_delta if recs else 0
    return _finish_batch(
        payload,
        len(recs),
        base_offset=base_offset,
        last_offset_delta=last_offset_delta,
        base_timestamp=base_timestamp,
        max_timestamp=max_timestamp,
        compression=codec,
        timestamp_type=timestamp_type,
        transactional=transactional,
        is_control=is_control,
        delete_horizon=delete_horizon,
        producer_id=producer_id,
        producer_epoch=producer_epoch,
        base_sequence=base_sequence,
        partition_leader_epoch=partition_leader_epoch,
    )


# Attributes and the timestamp delta of a new record, by delta: its first two fields.
_TS_HEAD: list[bytes] = [b"\x00" + _VZ_SMALL[n] for n in range(8192)]


def encode_new_batch(
    fields: list[Any],
    *,
    compression: int = CODEC_NONE,
    producer_id: int = -1,
    producer_epoch: int = -1,
    base_sequence: int = -1,
    transactional: bool = False,
) -> bytes:
    """Encode a producer's new records as one v2 batch (offset deltas 0, 1, ...).

    *fields* is flat: ``timestamp, key, value, headers`` for each record in
    turn (``headers`` a sequence of pairs, empty for none), so a producer
    can append a record without building an object for it.  The base
    timestamp is the first record's.  Raises :class:`LocalProtocolError`
    for a key, value or header that cannot be encoded.
    """
    count = len(fields) // 4
    if count * 4 != len(fields):
        raise LocalProtocolError("fields must hold four items per record")
    base_ts = fields[0] if count else -1
    parts: list[bytes] = []
    put = parts.append
    join = b"".join
    vz_small = _VZ_SMALL
    ts_head = _TS_HEAD
    minus_one = _VZ_MINUS_ONE
    it = iter(fields)
    off = 0
    try:
        for ts, key, value, headers in zip(it, it, it, it, strict=False):
            d = ts - base_ts
            if d >= 0 and not headers:
                try:
                    # Common case: a value, no headers, lengths and deltas under
                    # 8192 (a larger one is an IndexError, a null value a TypeError).
                    body = join(
                        (
                            ts_head[d],
                            vz_small[off],
                            minus_one if key is None else vz_small[len(key)],
                            key or b"",
                            vz_small[len(value)],
                            value,
                            b"\x00",
                        )
                    )
                    n = len(body)
                    put(vz_small[n] if n < 8192 else _zigzag_bytes(n))
                    put(body)
                    off += 1
                    continue
                except (IndexError, TypeError):
                    pass
            put(_encode_record(off, d, key, value, headers))
            off += 1
        payload = join(parts)
    except (TypeError, ValueError, AttributeError) as exc:
        raise LocalProtocolError(f"cannot encode record: {exc}") from None
    max_ts = max(fields[0::4]) if count else -1
    return _finish_batch(
        payload,
        count,
        base_offset=0,
        last_offset_delta=count - 1 if count else 0,
        base_timestamp=base_ts,
        max_timestamp=max_ts,
        compression=compression,
        timestamp_type=TimestampType.CREATE_TIME,
        transactional=transactional,
        is_control=False,
        delete_horizon=False,
        producer_id=producer_id,
        producer_epoch=producer_epoch,
        base_sequence=base_sequence,
        partition_leader_epoch=-1,
    )


class BatchBuilder:
    """Accumulate new records for one v2 batch, then :meth:`build` it.

    For a producer: records get consecutive offset deltas from 0 and timestamp
    deltas from the first record's timestamp.  :meth:`append` returns the
    (uncompressed) size the batch would have, so a caller can stop at its
    ``batch.size``; :attr:`size` is the same figure at any time.
    """

    __slots__ = ("_base_ts", "_count", "_max_ts", "_opts", "_parts", "_size")

    def __init__(
        self,
        *,
        compression: int | str = CODEC_NONE,
        producer_id: int = -1,
        producer_epoch: int = -1,
        base_sequence: int = -1,
        transactional: bool = False,
        partition_leader_epoch: int = -1,
    ) -> None:
        self._opts: dict[str, Any] = {
            "compression": codec_id_for(compression),
            "producer_id": producer_id,
            "producer_epoch": producer_epoch,
            "base_sequence": base_sequence,
            "transactional": transactional,
            "partition_leader_epoch": partition_leader_epoch,
        }
        self._parts: list[bytes] = []
        self._count = 0
        self._base_ts = -1
        self._max_ts = -1
        self._size = HEADER_SIZE_V2

    def __len__(self) -> int:
        return self._count

    @property
    def size(self) -> int:
        """Bytes of the batch built now, before compression."""
        return self._size

    def append(
        self,
        key: bytes | None,
        value: bytes | None,
        headers: Iterable[Header] = (),
        *,
        timestamp: int,
    ) -> int:
        """Add one record (timestamp in ms); return the batch size so far.

        The record's offset delta is the number of records appended before it.
        """
        first = self._count == 0
        base_ts = timestamp if first else self._base_ts
        try:
            rec = _encode_record(self._count, timestamp - base_ts, key, value, tuple(headers))
        except (TypeError, ValueError, AttributeError) as exc:
            raise LocalProtocolError(f"cannot encode record: {exc}") from None
        if first:
            self._base_ts = self._max_ts = timestamp
        elif timestamp > self._max_ts:
            self._max_ts = timestamp
        self._parts.append(rec)
        self._count += 1
        self._size += len(rec)
        return self._size

    @staticmethod
    def estimate_record_size(
        key: bytes | None, value: bytes | None, headers: Iterable[Header] = ()
    ) -> int:
        """An upper bound of the bytes :meth:`append` would add for this record.

        Counts every varint at its largest size, so a caller can check
        ``builder.size + estimate_record_size(...) <= batch_size`` first.
        """
        size = 5 + 1 + 10 + 5 + 5 + 5 + 5  # length, attributes, deltas, key/value/header counts
        size += len(key) if key is not None else 0
        size += len(value) if value is not None else 0
        for hkey, hval in headers:
            size += 10 + len(hkey.encode("utf-8", "surrogateescape"))
            size += len(hval) if hval is not None else 0
        return size

    def build(self, *, base_offset: int = 0, base_sequence: int | None = None) -> bytes:
        """Return the encoded batch; the builder can be reused for more appends afterwards."""
        opts = dict(self._opts)
        if base_sequence is not None:
            opts["base_sequence"] = base_sequence
        return _finish_batch(
            b"".join(self._parts),
            self._count,
            base_offset=base_offset,
            last_offset_delta=max(self._count - 1, 0),
            base_timestamp=self._base_ts,
            max_timestamp=self._max_ts,
            timestamp_type=TimestampType.CREATE_TIME,
            is_control=False,
            delete_horizon=False,
            **opts,
        )
