"""Record batches: decode fetch payloads, encode produce payloads.

The consumer side::

    from kafka_sansio.records import decode_records

    result = decode_records(partition.records, start_offset=fetch_offset)
    for batch in result.batches:        # RecordBatch, header fields + records
        if batch.is_control:
            ...                         # batch.control_records: commit/abort markers
        for record in batch.records:    # Record(offset, timestamp, timestamp_type, key, value, headers)
            ...
    if result.next_offset is not None:
        fetch_offset = result.next_offset
    # result.truncated_bytes > 0: the broker cut the last batch at its size limit;
    # the complete batches before it are all there, fetch again from next_offset.

:func:`iter_batches` does the same one batch at a time (fewer live records:
faster for a consumer that hands records out batch by batch).

The producer side: :func:`encode_batch`, :class:`BatchBuilder`, or
:func:`encode_new_batch` for new records kept as flat fields (what the
producer core does: no object per record while it waits).

:class:`RecordDecoder` holds the settings (CRC check, limits) for repeated
use; the module functions use a default one.  Everything here is pure: no
I/O, no clock.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple, TypeVar

from ._compression import (
    CODEC_GZIP,
    CODEC_LZ4,
    CODEC_NONE,
    CODEC_SNAPPY,
    CODEC_ZSTD,
    DEFAULT_DECOMPRESS_LIMIT,
    Codec,
    codec_available,
    get_codec,
    register_codec,
)
from ._crc32c import crc32c, crc32c_pure, use_pure_crc32c
from ._errors import (
    CorruptRecordError,
    FrameTooLargeError,
    LocalProtocolError,
    RemoteProtocolError,
)
from ._legacy_records import MIN_MESSAGE_SIZE, decode_legacy_message, encode_legacy_message_set
from ._record_list import RecordList
from ._records import (
    MIN_BATCH_LENGTH_V2,
    BatchBuilder,
    ControlRecord,
    ControlRecordType,
    Header,
    Record,
    RecordBatch,
    TimestampType,
    decode_batch_columns_v2,
    decode_batch_v2,
    encode_batch,
    encode_new_batch,
    make_control_record,
    timestamp_type_of,
)

_T = TypeVar("_T")

__all__ = [
    "CODEC_NONE",
    "CODEC_GZIP",
    "CODEC_SNAPPY",
    "CODEC_LZ4",
    "CODEC_ZSTD",
    "DEFAULT_DECOMPRESS_LIMIT",
    "DEFAULT_MAX_BATCH_SIZE",
    "BatchBuilder",
    "BatchIterator",
    "BatchRef",
    "Codec",
    "ControlRecord",
    "ControlRecordType",
    "DecodedRecords",
    "Header",
    "Record",
    "RecordBatch",
    "RecordBatchTooLargeError",
    "RecordDecoder",
    "RecordList",
    "ScannedRecords",
    "TimestampType",
    "codec_available",
    "crc32c",
    "crc32c_pure",
    "decode_batch",
    "decode_records",
    "encode_batch",
    "encode_new_batch",
    "iter_batches",
    "encode_legacy_message_set",
    "get_codec",
    "make_control_record",
    "register_codec",
    "use_pure_crc32c",
]

#: Default ceiling on one batch's length field (64 MiB); larger is an error.
DEFAULT_MAX_BATCH_SIZE = 64 * 1024 * 1024

_OFFSET_LENGTH = struct.Struct(">qi")
_LAST_OFFSET_DELTA = struct.Struct(">i")
#: v2 header fields a scan reads: leader epoch, magic, (crc skipped), attributes,
#: last offset delta; then producer id and record count further on.
_V2_HEAD = struct.Struct(">ib4xhi")
_V2_PRODUCER = struct.Struct(">q")
_V2_COUNT = struct.Struct(">i")
_ATTR_TRANSACTIONAL = 0x10
_ATTR_CONTROL = 0x20


def _batch_head(buf: bytes, pos: int, n: int, max_size: int) -> tuple[int, int, int] | None:
    """``(base_offset, magic, end)`` of the batch at ``pos``; None if it is not all in ``buf``.

    Checks the length field (before anything of that size is allocated) and
    the magic byte, raising as :meth:`RecordDecoder.decode` documents.  Needs
    ``n - pos >= 12``.
    """
    base_offset, length = _OFFSET_LENGTH.unpack_from(buf, pos)
    if length > max_size:
        raise RecordBatchTooLargeError(length, max_size)
    if length < MIN_MESSAGE_SIZE[0]:
        raise CorruptRecordError(f"record batch length {length} is too small")
    magic = buf[pos + 16] if n - pos > 16 else -1
    if magic > 2:
        raise CorruptRecordError(f"unknown record batch magic {magic}")
    end = pos + 12 + length
    if end > n:
        return None
    if magic == 2 and length < MIN_BATCH_LENGTH_V2:
        raise CorruptRecordError(f"v2 batch length {length} is too small")
    return base_offset, magic, end


class BatchRef(NamedTuple):
    """Where one complete batch lies in a fetch payload, from its header alone.

    :meth:`RecordDecoder.scan` makes these without checking CRCs or
    decompressing anything; :meth:`RecordDecoder.decode_ref` decodes one
    later.  For legacy messages (magic 0/1) ``record_count`` is 1 and the
    producer fields are -1.
    """

    pos: int
    end: int
    base_offset: int
    last_offset: int
    partition_leader_epoch: int
    magic: int
    attributes: int
    producer_id: int
    record_count: int

    @property
    def is_control(self) -> bool:
        return self.magic == 2 and bool(self.attributes & _ATTR_CONTROL)

    @property
    def is_transactional(self) -> bool:
        return self.magic == 2 and bool(self.attributes & _ATTR_TRANSACTIONAL)


@dataclass(frozen=True, slots=True)
class ScannedRecords:
    """The result of :meth:`RecordDecoder.scan`: the payload and its complete batches.

    ``batches`` leaves out those entirely below the start offset;
    ``next_offset`` and ``truncated_bytes`` are what :meth:`RecordDecoder.decode`
    would report; ``error`` is a malformed header met after good batches
    (a bad first header is raised).
    """

    buf: bytes
    batches: list[BatchRef]
    truncated_bytes: int
    next_offset: int | None
    error: RemoteProtocolError | None = None


class RecordBatchTooLargeError(FrameTooLargeError):
    """A batch's length field exceeds the decoder's ``max_batch_size``.

    Not a truncation: the payload is refused before anything is allocated.
    """


@dataclass(frozen=True, slots=True)
class DecodedRecords:
    """The result of decoding a fetch payload.

    ``batches`` are the complete batches, in order (batches entirely below
    the start offset are left out).  ``truncated_bytes`` counts the bytes of an
    incomplete batch at the end (the broker cuts responses at its size
    limit): those records are not lost, they come again when fetching from
    :attr:`next_offset`.
    """

    batches: tuple[RecordBatch, ...]
    truncated_bytes: int
    next_offset: int | None
    """Offset after the last good complete batch seen (skipped ones included), or None."""
    error: RemoteProtocolError | None = None
    """With ``raise_errors=False``: the error that stopped decoding after the batches returned."""

    @property
    def truncated(self) -> bool:
        return self.truncated_bytes > 0

    def records(self) -> list[Record]:
        """All user records of the non-control batches, in offset order."""
        out: list[Record] = []
        for batch in self.batches:
            if not batch.is_control:
                out.extend(batch.records)
        return out


class RecordDecoder:
    """Decoding settings, for repeated use.

    *check_crc*: verify each batch's checksum (CRC-32C for v2, CRC-32 for
    legacy messages).  *max_batch_size*: a larger length field raises
    :class:`RecordBatchTooLargeError`.  *decompress_limit*: ceiling on one
    batch's decompressed size (:class:`DecompressionLimitError` beyond it).
    *raise_errors*: when false, a bad batch that follows good ones stops
    decoding and is reported in :attr:`DecodedRecords.error` with the good
    batches (as Java's consumer delivers the records before a corrupt batch);
    a bad first batch is still raised.  The object holds no state between calls.
    """

    __slots__ = ("check_crc", "decompress_limit", "max_batch_size", "raise_errors")

    def __init__(
        self,
        *,
        check_crc: bool = True,
        max_batch_size: int = DEFAULT_MAX_BATCH_SIZE,
        decompress_limit: int = DEFAULT_DECOMPRESS_LIMIT,
        raise_errors: bool = True,
    ) -> None:
        if max_batch_size < MIN_BATCH_LENGTH_V2 or decompress_limit < 0:
            raise LocalProtocolError("limits too small")
        self.check_crc = check_crc
        self.max_batch_size = max_batch_size
        self.decompress_limit = decompress_limit
        self.raise_errors = raise_errors

    def decode(
        self, data: bytes | bytearray | memoryview, start_offset: int | None = None
    ) -> DecodedRecords:
        """Decode a fetch partition's ``records`` bytes: batches back to back.

        Batches may mix magic 0, 1 and 2.  Records below *start_offset* are
        dropped, and whole batches below it are skipped without being decoded
        or checksummed.  An incomplete trailing batch is reported in
        ``truncated_bytes``, never raised.  Raises RemoteProtocolError
        subclasses for malformed or oversized batches and
        :class:`MissingCodecError` for a codec that is not installed.
        """
        it = BatchIterator(data, start_offset, self)
        batches: list[RecordBatch] = []
        try:
            batches.extend(it)
        except RemoteProtocolError as exc:
            if self.raise_errors or not batches:
                raise
            return DecodedRecords(tuple(batches), 0, it.next_offset, exc)
        return DecodedRecords(tuple(batches), it.truncated_bytes, it.next_offset)

    def iter_batches(
        self, data: bytes | bytearray | memoryview, start_offset: int | None = None
    ) -> BatchIterator:
        """Like :meth:`decode`, but decode one batch per ``next()``.

        A consumer that handles each batch before asking for the next keeps
        its working set small.  Once the iterator is exhausted,
        ``truncated_bytes`` and ``next_offset`` hold what :meth:`decode`
        would report.  Errors are raised from ``next()`` when the bad batch
        is reached (batches before it have been returned already).
        """
        return BatchIterator(data, start_offset, self)

    def decode_batch(self, data: bytes | bytearray | memoryview) -> RecordBatch:
        """Decode exactly one complete batch (or legacy message); anything else is an error."""
        buf = data if type(data) is bytes else bytes(data)
        result = self.decode(buf)
        if len(result.batches) != 1 or result.truncated_bytes:
            raise CorruptRecordError("expected exactly one complete record batch")
        return result.batches[0]

    def scan(
        self, data: bytes | bytearray | memoryview, start_offset: int | None = None
    ) -> ScannedRecords:
        """Find the complete batches of a fetch payload from their headers alone.

        Lengths and magic are checked as :meth:`decode` checks them (same
        errors); CRCs, compression and records are left for
        :meth:`decode_ref`, so a consumer can buffer the raw bytes and
        decode each batch only when it hands its records out.
        """
        buf = data if type(data) is bytes else bytes(data)
        n = len(buf)
        pos = 0
        refs: list[BatchRef] = []
        next_offset: int | None = None
        max_size = self.max_batch_size
        try:
            while n - pos >= 12:
                head = _batch_head(buf, pos, n, max_size)
                if head is None:
                    break
                base_offset, magic, end = head
                if magic == 2:
                    epoch, _, attributes, delta = _V2_HEAD.unpack_from(buf, pos + 12)
                    last = base_offset + delta
                    if start_offset is None or last >= start_offset:
                        (producer_id,) = _V2_PRODUCER.unpack_from(buf, pos + 43)
                        (count,) = _V2_COUNT.unpack_from(buf, pos + 57)
                        refs.append(
                            BatchRef(
                                pos,
                                end,
                                base_offset,
                                last,
                                epoch,
                                2,
                                attributes,
                                producer_id,
                                count,
                            )
                        )
                else:
                    last = base_offset
                    if start_offset is None or last >= start_offset:
                        refs.append(BatchRef(pos, end, base_offset, last, -1, magic, 0, -1, 1))
                pos = end
                next_offset = last + 1
        except RemoteProtocolError as exc:
            if self.raise_errors or not refs:
                raise
            return ScannedRecords(buf, refs, 0, next_offset, exc)
        return ScannedRecords(buf, refs, n - pos, next_offset)

    def decode_ref_records(
        self, buf: bytes, ref: BatchRef, start_offset: int | None = None
    ) -> RecordList:
        """The records of the batch at ``ref``, as a :class:`RecordList` (columns).

        What a consumer hands out: the same records as
        ``decode_ref(...).records``, with no ``Record`` tuple built until they
        are read.
        """
        if ref.magic != 2:
            return RecordList.from_records(self.decode_ref(buf, ref, start_offset).records)
        header, columns = self._decode(decode_batch_columns_v2, buf, ref, start_offset)
        return RecordList.from_columns(columns, timestamp_type_of(header[5]))

    def decode_ref(self, buf: bytes, ref: BatchRef, start_offset: int | None = None) -> RecordBatch:
        """Decode the batch :meth:`scan` found at ``ref`` (CRC, decompression, records)."""
        decode = decode_batch_v2 if ref.magic == 2 else decode_legacy_message
        return self._decode(decode, buf, ref, start_offset)

    def _decode(
        self, decode: Callable[..., _T], buf: bytes, ref: BatchRef, start_offset: int | None
    ) -> _T:
        return decode(
            buf,
            ref.pos,
            ref.end,
            check_crc=self.check_crc,
            decompress_limit=self.decompress_limit,
            start_offset=start_offset,
        )


class BatchIterator:
    """Iterator over the complete batches of a fetch payload, decoded one per ``next()``.

    Made by :meth:`RecordDecoder.iter_batches`.  ``next_offset`` is the
    offset after the last complete batch passed so far (None before any);
    ``truncated_bytes`` is the size of the incomplete tail once exhausted.
    """

    __slots__ = (
        "_buf",
        "_check_crc",
        "_limit",
        "_max_size",
        "_pos",
        "_start",
        "next_offset",
        "truncated_bytes",
    )

    def __init__(
        self,
        data: bytes | bytearray | memoryview,
        start_offset: int | None,
        decoder: RecordDecoder,
    ) -> None:
        self._buf = data if type(data) is bytes else bytes(data)
        self._pos = 0
        self._start = start_offset
        self._check_crc = decoder.check_crc
        self._limit = decoder.decompress_limit
        self._max_size = decoder.max_batch_size
        self.next_offset: int | None = None
        self.truncated_bytes = 0

    def __iter__(self) -> BatchIterator:
        return self

    def __next__(self) -> RecordBatch:
        buf = self._buf
        n = len(buf)
        pos = self._pos
        start_offset = self._start
        while n - pos >= 12:
            head = _batch_head(buf, pos, n, self._max_size)
            if head is None:
                break
            base_offset, magic, end = head
            if magic == 2:
                (delta,) = _LAST_OFFSET_DELTA.unpack_from(buf, pos + 23)
                last = base_offset + delta
                decode = decode_batch_v2
            else:
                # A legacy message's own offset is its last (wrapper) offset.
                last = base_offset
                decode = decode_legacy_message
            if start_offset is None or last >= start_offset:
                batch = decode(
                    buf,
                    pos,
                    end,
                    check_crc=self._check_crc,
                    decompress_limit=self._limit,
                    start_offset=start_offset,
                )
                self._pos = end
                self.next_offset = last + 1
                return batch
            # skipped: entirely below the start offset
            pos = self._pos = end
            self.next_offset = last + 1
        self.truncated_bytes = n - pos
        raise StopIteration


_DEFAULT = RecordDecoder()
_NO_CRC = RecordDecoder(check_crc=False)


def decode_records(
    data: bytes | bytearray | memoryview,
    start_offset: int | None = None,
    *,
    check_crc: bool = True,
) -> DecodedRecords:
    """Decode a fetch payload with the default limits; see :meth:`RecordDecoder.decode`."""
    return (_DEFAULT if check_crc else _NO_CRC).decode(data, start_offset)


def iter_batches(
    data: bytes | bytearray | memoryview,
    start_offset: int | None = None,
    *,
    check_crc: bool = True,
) -> BatchIterator:
    """Decode a fetch payload lazily; see :meth:`RecordDecoder.iter_batches`."""
    return (_DEFAULT if check_crc else _NO_CRC).iter_batches(data, start_offset)


def decode_batch(data: bytes | bytearray | memoryview, *, check_crc: bool = True) -> RecordBatch:
    """Decode one complete batch with the default limits; see :meth:`RecordDecoder.decode_batch`."""
    return (_DEFAULT if check_crc else _NO_CRC).decode_batch(data)
