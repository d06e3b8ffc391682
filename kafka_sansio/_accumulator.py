"""The producer's record accumulator: batches per partition, in send order.

Each partition has a :class:`PartitionQueue`: batches waiting to be sent
(the last one may still be open for appends) and batches in flight, in the
order their records were sent.  A batch keeps its records as one flat list
of fields (timestamp, key, value, headers for each record in turn: no
object per record, so the garbage collector has nothing to trace) and is
encoded only when it first goes out (again after an epoch bump changes its
producer epoch or sequence).  The producer core owns every decision; these
classes only hold state.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from ._records import encode_new_batch
from ._types import TopicPartition

__all__ = ["Batch", "PartitionQueue", "TopicInfo"]

#: Bytes of a v2 batch header.
BATCH_OVERHEAD = 61
#: Upper bound of one record's framing: length, attributes, deltas, key/value/header counts.
RECORD_OVERHEAD = 21


class Batch:
    """Records for one partition that travel (and succeed or fail) together."""

    __slots__ = (
        "attempts",
        "closed",
        "created",
        "deadline",
        "done",
        "encoded",
        "encoded_for",
        "fields",
        "maybe_written",
        "order",
        "retry_at",
        "sent_alone",
        "sequence",
        "size",
        "tokens",
        "tp",
    )

    def __init__(self, tp: TopicPartition, order: int, now: float, deadline: float) -> None:
        self.tp = tp
        #: Creation order within the partition (equals sequence order).
        self.order = order
        #: timestamp, key, value, headers of each record in turn (see encode_new_batch).
        self.fields: list[Any] = []
        self.tokens: list[int] = []
        #: Estimated bytes (batch header included); counts against buffer_memory.
        self.size = BATCH_OVERHEAD
        self.created = now
        self.deadline = deadline
        #: No more appends: full, flushed, or sent at least once.
        self.closed = False
        #: Resolved (delivered or failed); late answers are ignored.
        self.done = False
        #: First sequence number (-1 until it first goes out with idempotence).
        self.sequence = -1
        self.attempts = 0
        self.retry_at = 0.0
        #: A request carrying it got no definite answer: the broker may have written it.
        self.maybe_written = False
        #: Nothing else of the partition was in flight when it was last sent.
        self.sent_alone = False
        self.encoded: bytes | None = None
        self.encoded_for: tuple[int, int, int] = (-1, -1, -1)

    def encode(
        self,
        compression: int,
        producer_id: int,
        epoch: int,
        sequence: int,
        transactional: bool = False,
    ) -> bytes:
        """The batch's bytes for this producer id, epoch and sequence (cached)."""
        key = (producer_id, epoch, sequence)
        if self.encoded is None or self.encoded_for != key:
            self.encoded = encode_new_batch(
                self.fields,
                compression=compression,
                producer_id=producer_id,
                producer_epoch=epoch,
                base_sequence=sequence,
                transactional=transactional,
            )
            self.encoded_for = key
        return self.encoded


class PartitionQueue:
    """One partition's batches: ``queue`` (to send, oldest first) and ``in_flight``."""

    __slots__ = ("acked_for", "batches_created", "in_flight", "next_sequence", "queue", "tp")

    def __init__(self, tp: TopicPartition) -> None:
        self.tp = tp
        self.queue: deque[Batch] = deque()
        self.in_flight: list[Batch] = []
        #: The sequence the next new batch gets (idempotence).
        self.next_sequence = 0
        self.batches_created = 0
        #: (producer id, epoch) of the last acknowledged batch.  Until one is
        #: acknowledged under the current pair, the broker may have no state for
        #: us and would take any sequence, so only one batch may be in flight.
        self.acked_for = (-1, -1)

    def requeue(self, batch: Batch) -> None:
        """Put a batch that went out back in line, ahead of every younger batch."""
        batch.closed = True
        q = self.queue
        i = 0
        while i < len(q) and q[i].order < batch.order:
            i += 1
        q.insert(i, batch)


class TopicInfo:
    """What send() needs about a topic whose metadata is known."""

    __slots__ = ("available", "count", "queues", "sticky", "sticky_bytes")

    def __init__(self, count: int, available: list[int], queues: list[PartitionQueue]) -> None:
        self.count = count
        self.available = available
        self.queues = queues
        #: The partition keyless records go to now (-1: pick one) and bytes sent there.
        self.sticky = -1
        self.sticky_bytes = 0
