"""One partition's log inside the broker model: batches, offsets, epochs, transactions.

Everything here is plain data manipulation with no notion of brokers or
connections; :mod:`kafka_sansio.testing._model` builds the cluster and the wire
side on top of it.  Batches are stored exactly as a broker stores them: the
encoded v2 bytes with the base offset and partition leader epoch rewritten to
the log's values.
"""

from __future__ import annotations

import struct
from bisect import bisect_left
from collections import deque
from dataclasses import dataclass, field

from .._errors import KafkaSansioError
from ..records import Record, RecordBatch, crc32c, decode_batch

__all__ = [
    "AbortedTxn",
    "ModelError",
    "PartitionLog",
    "ProducerState",
    "StoredBatch",
]

_Q = struct.Struct(">q")
_I = struct.Struct(">i")
_H = struct.Struct(">h")

# Byte positions inside a v2 batch header.
_POS_LEADER_EPOCH = 12
_POS_MAGIC = 16
_POS_CRC = 17
_POS_ATTRIBUTES = 21
_POS_MAX_TIMESTAMP = 35
_TIMESTAMP_TYPE_BIT = 0x08


class ModelError(KafkaSansioError):
    """The broker model was asked to do something impossible (a test bug)."""


@dataclass(frozen=True, slots=True)
class StoredBatch:
    """One batch in a log: its bytes and the header facts the broker indexes."""

    base_offset: int
    last_offset: int
    max_timestamp: int
    leader_epoch: int
    producer_id: int
    is_transactional: bool
    is_control: bool
    data: bytes

    @property
    def size(self) -> int:
        return len(self.data)

    def decode(self) -> RecordBatch:
        """The batch decoded with the project's record decoder."""
        return decode_batch(self.data)


@dataclass(frozen=True, slots=True)
class AbortedTxn:
    """An aborted transaction as the fetch response reports it (plus its marker offset)."""

    producer_id: int
    first_offset: int
    last_offset: int


@dataclass(slots=True)
class ProducerState:
    """Idempotence bookkeeping of one producer id on one partition."""

    epoch: int
    last_sequence: int = -1
    #: (first sequence, last sequence, base offset, max timestamp) of the last five batches.
    recent: deque[tuple[int, int, int, int]] = field(default_factory=lambda: deque(maxlen=5))


def patch_batch(
    data: bytes, *, base_offset: int, leader_epoch: int, log_append_time: int | None
) -> bytes:
    """Rewrite the fields a broker owns: base offset, leader epoch, and LogAppendTime."""
    buf = bytearray(data)
    _Q.pack_into(buf, 0, base_offset)
    _I.pack_into(buf, _POS_LEADER_EPOCH, leader_epoch)
    if log_append_time is not None:
        (attributes,) = _H.unpack_from(buf, _POS_ATTRIBUTES)
        _H.pack_into(buf, _POS_ATTRIBUTES, attributes | _TIMESTAMP_TYPE_BIT)
        _Q.pack_into(buf, _POS_MAX_TIMESTAMP, log_append_time)
        struct.pack_into(">I", buf, _POS_CRC, crc32c(bytes(buf[_POS_ATTRIBUTES:])))
    return bytes(buf)


class PartitionLog:
    """The log of one partition (acks=all is modelled as immediate replication).

    ``high_watermark`` equals the log end offset; the last stable offset is the
    first offset of the oldest open transaction, or the high watermark.
    ``epochs`` is the leader epoch cache: ``(epoch, start offset)`` pairs.
    """

    def __init__(self, leader_epoch: int = 0) -> None:
        self.batches: list[StoredBatch] = []
        self._last_offsets: list[int] = []  # parallel to batches, for bisection
        self.log_start_offset = 0
        self.log_end_offset = 0
        self.epochs: list[tuple[int, int]] = [(leader_epoch, 0)]
        #: producer id -> first offset of its open transaction here
        self.open_txns: dict[int, int] = {}
        self.aborted: list[AbortedTxn] = []
        self.producers: dict[int, ProducerState] = {}

    # -------------------------------------------------------------- offsets

    @property
    def high_watermark(self) -> int:
        return self.log_end_offset

    @property
    def last_stable_offset(self) -> int:
        return min(self.open_txns.values(), default=self.log_end_offset)

    def new_epoch(self, epoch: int) -> None:
        """Record that *epoch* starts at the log end (a leader change)."""
        start = self.log_end_offset
        self.epochs = [(e, s) for e, s in self.epochs if s < start and e < epoch]
        self.epochs.append((epoch, start))

    def epoch_for_offset(self, offset: int) -> int:
        found = -1
        for epoch, start in self.epochs:
            if start <= offset:
                found = epoch
        return found

    def end_offset_for_epoch(self, requested: int) -> tuple[int, int]:
        """Kafka's leader-epoch lookup: ``(epoch, end offset)`` for OffsetForLeaderEpoch."""
        if requested < 0 or not self.epochs:
            return -1, -1
        latest = self.epochs[-1][0]
        if requested == latest:
            return requested, self.log_end_offset
        higher = [(e, s) for e, s in self.epochs if e > requested]
        if not higher:
            return -1, -1
        floor = [(e, s) for e, s in self.epochs if e <= requested]
        if not floor:
            return requested, higher[0][1]
        return floor[-1][0], higher[0][1]

    # -------------------------------------------------------------- writing

    def append(
        self, data: bytes, *, leader_epoch: int, log_append_time: int | None = None
    ) -> StoredBatch:
        """Append one encoded v2 batch at the log end; returns the stored batch."""
        if len(data) < 61 or data[_POS_MAGIC] != 2:
            raise ModelError("the model stores record batches v2 only")
        base = self.log_end_offset
        stored_bytes = patch_batch(
            data, base_offset=base, leader_epoch=leader_epoch, log_append_time=log_append_time
        )
        batch = decode_batch(stored_bytes)
        stored = StoredBatch(
            base_offset=base,
            last_offset=batch.last_offset,
            max_timestamp=batch.max_timestamp,
            leader_epoch=leader_epoch,
            producer_id=batch.producer_id,
            is_transactional=batch.is_transactional,
            is_control=batch.is_control,
            data=stored_bytes,
        )
        self.batches.append(stored)
        self._last_offsets.append(stored.last_offset)
        self.log_end_offset = stored.last_offset + 1
        return stored

    def truncate_end(self, new_end: int) -> None:
        """Drop the tail from *new_end* on (a batch boundary), as a replica that diverged does."""
        if new_end >= self.log_end_offset:
            return
        if new_end < self.log_start_offset or (
            new_end not in {b.base_offset for b in self.batches}
        ):
            raise ModelError(f"{new_end} is not a batch boundary inside the log")
        self.batches = [b for b in self.batches if b.base_offset < new_end]
        self._last_offsets = [b.last_offset for b in self.batches]
        self.log_end_offset = new_end
        self.epochs = [(e, s) for e, s in self.epochs if s < new_end] or self.epochs[:1]
        self.open_txns = {p: o for p, o in self.open_txns.items() if o < new_end}
        self.aborted = [a for a in self.aborted if a.first_offset < new_end]

    def truncate_start(self, new_start: int) -> None:
        """Move the log start forward; batches wholly below it are deleted."""
        if new_start <= self.log_start_offset:
            return
        if new_start > self.log_end_offset:
            raise ModelError(
                f"new log start {new_start} is beyond the log end {self.log_end_offset}"
            )
        self.log_start_offset = new_start
        self.batches = [b for b in self.batches if b.last_offset >= new_start]
        self._last_offsets = [b.last_offset for b in self.batches]
        self.aborted = [a for a in self.aborted if a.last_offset >= new_start]
        kept = [(e, s) for e, s in self.epochs if s > new_start]
        below = [(e, s) for e, s in self.epochs if s <= new_start]
        if below:
            kept.insert(0, (below[-1][0], new_start))
        self.epochs = kept

    # -------------------------------------------------------------- reading

    def batch_index(self, offset: int) -> int:
        """Index of the first batch whose last offset is at or above *offset*."""
        return bisect_left(self._last_offsets, offset)

    def read(
        self, offset: int, max_bytes: int, upper: int, *, min_one: bool, slice_cut: bool
    ) -> tuple[bytes, int]:
        """Read from the batch holding *offset*, below offset *upper*, within *max_bytes*.

        Returns ``(records bytes, upper bound offset)``: the bound is the base
        offset of the first batch not (even partly) returned, as Kafka uses it
        to collect aborted transactions.  With *min_one* the first batch is
        returned whole even above the limit (KIP-74).  With *slice_cut* the
        data is cut at exactly *max_bytes* like a file slice, so the last
        batch may be incomplete (never the first: a first batch that does not
        fit gives no records, as Kafka answers); otherwise only whole batches
        are returned.
        """
        start = self.batch_index(offset)
        available: list[StoredBatch] = []
        for i in range(start, len(self.batches)):
            batch = self.batches[i]
            if batch.base_offset >= upper:
                break
            available.append(batch)
        if not available:
            return b"", upper if start >= len(self.batches) else self.batches[start].base_offset
        limit = max(max_bytes, available[0].size) if min_one else max_bytes
        if limit <= 0:
            return b"", available[0].base_offset
        taken: list[bytes] = []
        used = 0
        next_index = start
        for batch in available:
            if used + batch.size <= limit:
                taken.append(batch.data)
                used += batch.size
                next_index += 1
                continue
            # Kafka replaces an incomplete *first* batch with no records at all
            # (fetch v3+, ReplicaManager's firstEntryIncomplete rule); only a
            # trailing batch after complete ones is cut.
            if slice_cut and taken and used < limit:
                taken.append(batch.data[: limit - used])
                used = limit
                next_index += 1
            break
        bound = (
            self.batches[next_index].base_offset
            if next_index < len(self.batches)
            else self.log_end_offset
        )
        return b"".join(taken), bound

    def aborted_between(self, fetch_offset: int, upper: int) -> list[AbortedTxn]:
        """Aborted transactions overlapping ``[fetch_offset, upper)``."""
        return [a for a in self.aborted if a.last_offset >= fetch_offset and a.first_offset < upper]

    def records(self, start: int = 0) -> list[tuple[Record, StoredBatch]]:
        """Every record (control markers included) at or above *start*, with its batch."""
        out: list[tuple[Record, StoredBatch]] = []
        for stored in self.batches:
            if stored.last_offset < start:
                continue
            for record in stored.decode().records:
                if record.offset >= max(start, self.log_start_offset):
                    out.append((record, stored))
        return out

    def offset_for_timestamp(self, timestamp: int, bound: int) -> tuple[int, int, int] | None:
        """First ``(offset, timestamp, epoch)`` with a timestamp >= *timestamp* below *bound*."""
        for stored in self.batches:
            if stored.max_timestamp < timestamp:
                continue
            batch = stored.decode()
            for record in batch.records:
                if record.offset < self.log_start_offset:
                    continue
                ts = batch.max_timestamp if batch.timestamp_type == 1 else record.timestamp
                if ts >= timestamp:
                    if record.offset >= bound:
                        return None
                    return record.offset, ts, stored.leader_epoch
        return None

    def max_timestamp_offset(self, bound: int) -> tuple[int, int, int] | None:
        """``(offset, timestamp, epoch)`` of the first record with the largest timestamp."""
        best: tuple[int, int, int] | None = None
        for stored in self.batches:
            batch = stored.decode()
            for record in batch.records:
                if record.offset < self.log_start_offset:
                    continue
                ts = batch.max_timestamp if batch.timestamp_type == 1 else record.timestamp
                if best is None or ts > best[1]:
                    best = (record.offset, ts, stored.leader_epoch)
        if best is None or best[0] >= bound:
            return None
        return best
