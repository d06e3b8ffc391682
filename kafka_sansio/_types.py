"""Small value types shared by the client, consumer and events."""

from __future__ import annotations

import enum
from typing import NamedTuple

__all__ = ["IsolationLevel", "OffsetAndTimestamp", "OffsetResetPolicy", "TopicPartition"]


class TopicPartition(NamedTuple):
    """A partition of a topic; hashable, ordered, cheap."""

    topic: str
    partition: int

    def __str__(self) -> str:
        return f"{self.topic}-{self.partition}"


class OffsetAndTimestamp(NamedTuple):
    """An answer of ``offsets_for_times`` / ``beginning_offsets`` / ``end_offsets``.

    ``leader_epoch`` is ``None`` when the broker did not say.
    """

    offset: int
    timestamp: int
    leader_epoch: int | None = None


class OffsetResetPolicy(enum.Enum):
    """What to do when a partition has no valid position (``auto.offset.reset``)."""

    EARLIEST = "earliest"
    LATEST = "latest"
    NONE = "none"


class IsolationLevel(enum.IntEnum):
    """Which records a fetch may return (the wire values of Fetch and ListOffsets)."""

    READ_UNCOMMITTED = 0
    READ_COMMITTED = 1
