"""Per-partition consumer state: the one place where a partition's fetch state changes.

Each assigned partition is in one :class:`FetchState`; every change goes
through :meth:`PartitionState.transition` and the :data:`TRANSITIONS` table,
so an impossible change is a bug caught at once, and the docs can draw the
diagram from the table.

::

    NEEDS_RESET --send_reset--> RESETTING --reset_done--> FETCHING
         ^                         |reset_failed                |
         +-------------------------+                            |
    FETCHING --leader_changed--> NEEDS_VALIDATION --send_validation--> VALIDATING
    VALIDATING --validated / truncation_reset--> FETCHING
    FETCHING --out_of_range (policy)--> NEEDS_RESET
    FETCHING --out_of_range (none) / fatal_error--> AWAITING_SEEK
    NEEDS_RESET | RESETTING | NEEDS_VALIDATION --fatal_error--> AWAITING_SEEK
    any --seek--> FETCHING;  any --seek_to_beginning/end--> NEEDS_RESET

Besides the state, a partition holds its position (the next offset to hand
to the user), the records fetched but not handed out (``chunks``), the offset
to fetch next (ahead of the position while records are buffered), and two
counters that recognise stale answers: ``generation`` changes whenever the
position is set anew (seek, seek_to_*), so an older ListOffsets or
OffsetForLeaderEpoch answer is dropped; ``fetch_generation`` also changes
when buffered records are dropped (pause too), so an older fetch answer is.
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from typing import NamedTuple

from ._errors import KafkaSansioError, LocalProtocolError
from ._events import ResetReason
from ._record_list import RecordList
from ._records import Record
from ._types import TopicPartition

__all__ = ["TRANSITIONS", "Chunk", "FetchState", "PartitionState", "PendingBatch"]


class FetchState(enum.Enum):
    NEEDS_RESET = "needs_reset"  #: no valid position; look one up with ListOffsets
    RESETTING = "resetting"  #: ListOffsets in flight
    NEEDS_VALIDATION = "needs_validation"  #: leader changed; check the position (KIP-320)
    VALIDATING = "validating"  #: OffsetForLeaderEpoch in flight
    FETCHING = "fetching"  #: has a valid position
    AWAITING_SEEK = "awaiting_seek"  #: stopped (out of range or an error) until the user seeks


_S = FetchState

#: (state, input) -> new state.  Inputs not listed for a state are errors.
TRANSITIONS: dict[tuple[FetchState, str], FetchState] = {
    **{(s, "seek"): _S.FETCHING for s in _S},
    **{(s, "seek_to_offset_spec"): _S.NEEDS_RESET for s in _S},
    (_S.NEEDS_RESET, "send_reset"): _S.RESETTING,
    (_S.RESETTING, "reset_done"): _S.FETCHING,
    (_S.RESETTING, "reset_failed"): _S.NEEDS_RESET,
    (_S.RESETTING, "fatal_error"): _S.AWAITING_SEEK,
    (_S.NEEDS_RESET, "fatal_error"): _S.AWAITING_SEEK,
    (_S.NEEDS_VALIDATION, "fatal_error"): _S.AWAITING_SEEK,
    (_S.NEEDS_RESET, "no_policy"): _S.AWAITING_SEEK,
    (_S.FETCHING, "out_of_range"): _S.NEEDS_RESET,
    (_S.FETCHING, "out_of_range_no_policy"): _S.AWAITING_SEEK,
    (_S.FETCHING, "fatal_error"): _S.AWAITING_SEEK,
    (_S.FETCHING, "leader_changed"): _S.NEEDS_VALIDATION,
    (_S.NEEDS_VALIDATION, "send_validation"): _S.VALIDATING,
    (_S.VALIDATING, "validated"): _S.FETCHING,
    (_S.VALIDATING, "truncation_reset"): _S.FETCHING,
    (_S.VALIDATING, "truncation_no_policy"): _S.AWAITING_SEEK,
    (_S.VALIDATING, "validation_failed"): _S.NEEDS_VALIDATION,
    (_S.VALIDATING, "leader_changed"): _S.NEEDS_VALIDATION,
    (_S.NEEDS_VALIDATION, "leader_changed"): _S.NEEDS_VALIDATION,
}


class PendingBatch(NamedTuple):
    """One batch of a fetch answer, decoded when ``take`` reaches it.

    ``records`` is the list itself (decoded already) or a function that
    decodes the batch; ``record_count`` is how many records it holds (for a batch
    not decoded yet, its header's count: records below the fetch offset are
    dropped when it is decoded).
    """

    base_offset: int
    epoch: int
    record_count: int
    records: Sequence[Record] | Callable[[], Sequence[Record]]


class Chunk:
    """The records of one fetch answer not yet handed out.

    Its batches wait in ``pending`` as raw bytes and are decoded one at a
    time, when the user is handed their records, so the buffer holds bytes
    (bounded by the fetch sizes) rather than record objects.
    """

    __slots__ = ("epoch", "next_epoch", "next_offset", "pending", "pos", "records")

    def __init__(
        self, pending: Iterable[PendingBatch], next_offset: int, next_epoch: int = -1
    ) -> None:
        self.pending: deque[PendingBatch] = deque(pending)
        #: The batch being handed out, from ``pos``; its leader epoch.
        self.records: Sequence[Record] = ()
        self.pos = 0
        self.epoch = -1
        #: Where the position goes once every record here is handed out (past any
        #: control or aborted records that followed the last user record).
        self.next_offset = next_offset
        #: The leader epoch of the last batch before ``next_offset`` (control and
        #: aborted batches included), which goes with that position; -1 unknown.
        self.next_epoch = next_epoch


class PartitionState:
    """Everything the consumer knows about one assigned partition."""

    __slots__ = (
        "buffered",
        "chunks",
        "decode_error",
        "fetch_generation",
        "fetch_in_flight",
        "fetch_offset",
        "generation",
        "high_watermark",
        "last_stable_offset",
        "leader_epoch",
        "log_start_offset",
        "paused",
        "position",
        "position_epoch",
        "refetch_when_drained",
        "reset_reason",
        "reset_timestamp",
        "retry_at",
        "state",
        "tp",
    )

    def __init__(self, tp: TopicPartition) -> None:
        self.tp = tp
        self.state = FetchState.NEEDS_RESET
        #: Next offset to hand out, and the leader epoch of the record before it.
        self.position: int | None = None
        self.position_epoch = -1
        #: The leader epoch from metadata that the position was last checked against.
        self.leader_epoch = -1
        #: ListOffsets timestamp of a pending reset (-2 earliest, -1 latest), None = policy.
        self.reset_timestamp: int | None = None
        self.reset_reason = ResetReason.NO_POSITION
        self.paused = False
        self.chunks: deque[Chunk] = deque()
        #: Records fetched and not handed out (batches not decoded yet count by header).
        self.buffered = 0
        #: Set by ``take`` when a buffered batch failed to decode: (its offset, the error).
        self.decode_error: tuple[int, KafkaSansioError] | None = None
        self.fetch_offset = 0
        self.fetch_in_flight = False
        self.generation = 0
        self.fetch_generation = 0
        self.high_watermark = -1
        self.last_stable_offset = -1
        self.log_start_offset = -1
        #: Earliest time of the next request about this partition (error backoff).
        self.retry_at = 0.0
        #: A fetch ahead of the position hit OFFSET_OUT_OF_RANGE: re-fetch from the
        #: position once the buffered records are handed out.
        self.refetch_when_drained = False

    def transition(self, event: str) -> None:
        try:
            self.state = TRANSITIONS[(self.state, event)]
        except KeyError:
            raise LocalProtocolError(
                f"{self.tp}: no transition for {event!r} in state {self.state.value}"
            ) from None

    # ------------------------------------------------------------ position changes

    def clear_buffer(self) -> None:
        """Drop fetched records and make in-flight fetch answers stale."""
        self.chunks.clear()
        self.buffered = 0
        self.decode_error = None
        self.fetch_generation += 1
        self.refetch_when_drained = False
        if self.position is not None:
            self.fetch_offset = self.position

    def seek(self, offset: int, leader_epoch: int = -1) -> None:
        self.transition("seek")
        self.position = offset
        self.position_epoch = leader_epoch
        self.generation += 1
        self.clear_buffer()

    def reset_to(self, offset: int, leader_epoch: int) -> None:
        """A reset lookup answered: the position is ``offset``."""
        self.transition("reset_done")
        self.position = offset
        self.position_epoch = leader_epoch
        self.reset_timestamp = None
        self.generation += 1
        self.clear_buffer()

    def seek_to(self, timestamp: int) -> None:
        """Seek by ListOffsets timestamp (-2 beginning, -1 end), resolved later."""
        self.transition("seek_to_offset_spec")
        self.reset_timestamp = timestamp
        self.generation += 1
        self.clear_buffer()

    def needs_policy_reset(self, reason: ResetReason) -> None:
        """Ask for a reset by the configured policy (NEEDS_RESET with no explicit timestamp)."""
        self.reset_timestamp = None
        self.reset_reason = reason

    # ------------------------------------------------------------ buffer

    def is_fetchable(self, now: float) -> bool:
        """May a fetch for this partition be sent now?

        At most one answer waits in the buffer while the next is in flight, so
        buffered data stays bounded by the fetch sizes.
        """
        return (
            self.state is FetchState.FETCHING
            and not self.paused
            and not self.fetch_in_flight
            and len(self.chunks) <= 1
            and not (self.refetch_when_drained and self.chunks)
            and now >= self.retry_at
        )

    def add_chunk(self, chunk: Chunk) -> None:
        """Buffer a fetch answer; the next fetch starts after it."""
        if chunk.pending:
            self.chunks.append(chunk)
            self.buffered += sum(batch.record_count for batch in chunk.pending)
        elif self.chunks:
            self.chunks[-1].next_offset = chunk.next_offset
            self.chunks[-1].next_epoch = chunk.next_epoch
        elif self.position is not None and chunk.next_offset > self.position:
            # Only control or aborted records: the position moves past them,
            # and takes their epoch (else a later validation finds truncation).
            self.position = chunk.next_offset
            if chunk.next_epoch >= 0:
                self.position_epoch = chunk.next_epoch
        self.fetch_offset = chunk.next_offset

    def take(self, limit: int) -> RecordList:
        """Hand out up to ``limit`` buffered records, advancing the position.

        Decodes the buffered batches it reaches.  A batch that fails to decode
        stops the partition there: the records before it are handed out,
        everything after is dropped and ``decode_error`` says where and why.
        """
        out: list[Sequence[Record]] = []
        taken = 0
        chunks = self.chunks
        while chunks and taken < limit:
            chunk = chunks[0]
            records = chunk.records
            if chunk.pos >= len(records):
                if not chunk.pending:
                    chunks.popleft()
                    self.position = chunk.next_offset
                    if chunk.next_epoch >= 0:
                        self.position_epoch = chunk.next_epoch
                    continue
                batch = chunk.pending.popleft()
                self.buffered -= batch.record_count
                source = batch.records
                if not callable(source):
                    records = source
                else:
                    try:
                        records = source()
                    except KafkaSansioError as exc:
                        self.decode_error = (batch.base_offset, exc)
                        chunks.clear()
                        self.buffered = 0
                        break
                self.buffered += len(records)
                chunk.records, chunk.pos, chunk.epoch = records, 0, batch.epoch
                continue
            end = min(len(records), chunk.pos + limit - taken)
            part = records[chunk.pos : end] if chunk.pos or end < len(records) else records
            chunk.pos = end
            out.append(part)
            taken += len(part)
            self.position = part[-1].offset + 1
            self.position_epoch = chunk.epoch
            self.buffered -= len(part)
            if end == len(records) and not chunk.pending:
                chunks.popleft()
                self.position = chunk.next_offset
                if chunk.next_epoch >= 0:
                    self.position_epoch = chunk.next_epoch
        if not chunks and self.refetch_when_drained:
            self.refetch_when_drained = False
            if self.position is not None:
                self.fetch_offset = self.position
        return RecordList.join(out)
