"""Events the consumer core hands to its driver.

Every event is a frozen, slotted dataclass deriving from :class:`Event`, so a
driver can dispatch on ``type(event)``.  Records come from
``ConsumerCore.poll``; everything else from ``ConsumerCore.events()``.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from itertools import chain, repeat

from ._errors import KafkaSansioError
from ._records import Record
from ._types import OffsetAndTimestamp, TopicPartition

__all__ = [
    "ClientError",
    "Event",
    "FetchError",
    "LogTruncation",
    "NoOffsetForPartition",
    "OffsetOutOfRange",
    "OffsetReset",
    "OffsetsResult",
    "Records",
    "ResetReason",
]


class Event:
    """Base class of every consumer event."""

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class Records(Event):
    """Records handed out by ``poll``: per partition, in offset order.

    ``more_buffered`` is true when records are still buffered after these
    (the next ``poll`` returns at once).  The core's per-partition sequences
    are :class:`RecordList` objects: read-only, each :class:`Record` built as it
    is read (iterating this event builds them one by one).
    """

    by_partition: dict[TopicPartition, Sequence[Record]] = field(default_factory=dict)
    more_buffered: bool = False

    def __len__(self) -> int:
        return sum(len(records) for records in self.by_partition.values())

    def __bool__(self) -> bool:
        return bool(self.by_partition)

    def __iter__(self) -> Iterator[tuple[TopicPartition, Record]]:
        # C-level iteration: zip hands back the same pair tuple when the caller
        # has unpacked the last one, so no tuple is built per record.
        return chain.from_iterable(
            zip(repeat(tp), records) for tp, records in self.by_partition.items()
        )


class ResetReason(enum.Enum):
    """Why the consumer moved a position by itself."""

    NO_POSITION = "no_position"  #: the partition had no position yet
    OUT_OF_RANGE = "out_of_range"  #: the position fell outside the log
    TRUNCATION = "truncation"  #: the log was truncated below the position (KIP-320)


@dataclass(frozen=True, slots=True)
class OffsetReset(Event):
    """The reset policy moved ``partition`` from ``from_offset`` (None: no position) to ``to_offset``."""

    partition: TopicPartition
    from_offset: int | None
    to_offset: int
    reason: ResetReason


@dataclass(frozen=True, slots=True)
class OffsetOutOfRange(Event):
    """Positions outside the log, with no reset policy (``auto_offset_reset="none"``).

    These partitions stop fetching until the user seeks them.
    """

    offsets: dict[TopicPartition, int]


@dataclass(frozen=True, slots=True)
class NoOffsetForPartition(Event):
    """Partitions without a position and no reset policy: seek them to start fetching."""

    partitions: tuple[TopicPartition, ...]


@dataclass(frozen=True, slots=True)
class LogTruncation(Event):
    """The log was truncated below the position (no reset policy; fetching stopped).

    ``diverging_offset`` is the end offset of the last epoch both sides share:
    records from there to ``position`` were lost on the broker.
    """

    partition: TopicPartition
    position: int
    diverging_offset: int


@dataclass(frozen=True, slots=True)
class OffsetsResult(Event):
    """The answer to ``list_offsets`` (and so ``offsets_for_times``, beginning and end offsets).

    ``offsets`` maps each partition to its answer, or None where no record
    matches the timestamp.  ``error`` is set when the lookup failed as a whole
    (e.g. timed out); ``offsets`` then holds what was found.
    """

    token: int
    offsets: dict[TopicPartition, OffsetAndTimestamp | None]
    error: KafkaSansioError | None = None


@dataclass(frozen=True, slots=True)
class FetchError(Event):
    """Fetching ``partition`` failed in a way retrying does not cure.

    The partition stops fetching until the user seeks it (e.g. past a corrupt
    batch), as the Java consumer raises the error from ``poll``.
    """

    partition: TopicPartition
    offset: int
    error: KafkaSansioError


@dataclass(frozen=True, slots=True)
class ClientError(Event):
    """An error not tied to a partition, e.g. failed authentication."""

    error: KafkaSansioError
