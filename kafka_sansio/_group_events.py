"""Events and errors of consumer groups (rebalances, commits, committed offsets).

Like every consumer event these are frozen, slotted dataclasses deriving from
:class:`~kafka_sansio._events.Event`.  The three rebalance events are where
the Java consumer calls its ``ConsumerRebalanceListener``:

* :class:`PartitionsRevoked`: before the member gives the partitions up (eager:
  everything, before rejoining; cooperative: only those that move, after the
  new assignment arrived).  Positions are still readable and committable.
* :class:`PartitionsLost`: the member's generation is gone (session expired,
  fenced by the coordinator, poll interval exceeded): the partitions may
  already belong to someone else, so committing them is pointless.
* :class:`PartitionsAssigned`: the new partitions (eager: the whole
  assignment), before any of them is fetched; a seek here decides where
  fetching starts, else the committed offset, else the reset policy.

When :attr:`GroupConfig.wait_for_listener` is on (the default), the core
stops after emitting one of these until the driver calls
``rebalance_listener_done(now)``: that is the moment the user's listener has
returned.
"""

from __future__ import annotations

from dataclasses import dataclass

from ._errors import KafkaSansioError
from ._events import Event
from ._types import TopicPartition

__all__ = [
    "CommitFailedError",
    "CommitResult",
    "CommittedResult",
    "GroupError",
    "GroupJoined",
    "OffsetAndMetadata",
    "PartitionsAssigned",
    "PartitionsLost",
    "PartitionsRevoked",
    "RetriableCommitFailedError",
]


class CommitFailedError(KafkaSansioError):
    """The commit cannot succeed: the member's generation is gone (it was kicked out
    or the group rebalanced without it).  The partitions are or will be lost."""


class RetriableCommitFailedError(CommitFailedError):
    """The commit failed for a reason that may pass (coordinator moving, timeout)."""


@dataclass(frozen=True, slots=True)
class OffsetAndMetadata:
    """A committed position: the next offset to read, its leader epoch, and user metadata."""

    offset: int
    metadata: str = ""
    leader_epoch: int | None = None


@dataclass(frozen=True, slots=True)
class PartitionsRevoked(Event):
    """The member is about to give these partitions up (commit here)."""

    partitions: frozenset[TopicPartition]


@dataclass(frozen=True, slots=True)
class PartitionsLost(Event):
    """These partitions were lost without a clean handover (do not commit)."""

    partitions: frozenset[TopicPartition]


@dataclass(frozen=True, slots=True)
class PartitionsAssigned(Event):
    """Newly assigned partitions, not fetched yet (seek here to choose where to start)."""

    partitions: frozenset[TopicPartition]
    generation: int


@dataclass(frozen=True, slots=True)
class GroupJoined(Event):
    """The member completed a rebalance: its generation, member id, and whether it led."""

    generation: int
    member_id: str
    leader: bool
    protocol: str
    assignment: frozenset[TopicPartition]


@dataclass(frozen=True, slots=True)
class CommitResult(Event):
    """The outcome of ``commit`` (token from the call; ``auto`` for auto-commits).

    ``error`` is None on success, else :class:`CommitFailedError`,
    :class:`RetriableCommitFailedError`, a broker error such as
    ``RebalanceInProgressError`` or ``FencedInstanceIdError``, or a
    partition-level error (``UnknownTopicOrPartitionError``,
    ``OffsetMetadataTooLargeError``).
    """

    token: int
    offsets: dict[TopicPartition, OffsetAndMetadata]
    error: KafkaSansioError | None = None
    auto: bool = False


@dataclass(frozen=True, slots=True)
class CommittedResult(Event):
    """The answer of ``committed``: None for partitions with no committed offset."""

    token: int
    offsets: dict[TopicPartition, OffsetAndMetadata | None]
    error: KafkaSansioError | None = None


@dataclass(frozen=True, slots=True)
class GroupError(Event):
    """A fatal group error (fenced static member, bad configuration, authorization):
    the member has stopped taking part in the group."""

    error: KafkaSansioError
