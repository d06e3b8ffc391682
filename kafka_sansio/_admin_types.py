"""What the admin core takes and hands back: requests' arguments and result values.

Every admin call returns an int token; its outcome arrives later from
``AdminCore.events()`` as one :class:`AdminResult` with that token.  The
``value`` of a result is typed per call (see each call's docstring); calls
about several topics or partitions answer each one separately, with either
its value or the exception that item failed with, the way the Java Admin
completes one future per topic.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar
from uuid import UUID

from ._client import BrokerMetadata
from ._errors import KafkaSansioError

__all__ = [
    "EARLIEST",
    "LATEST",
    "MAX_TIMESTAMP",
    "AdminResult",
    "ClusterDescription",
    "NewTopic",
    "PartitionDescription",
    "TopicCreated",
    "TopicDescription",
    "TopicListing",
]

#: ``list_offsets`` specs besides a timestamp in milliseconds (the wire values).
EARLIEST = -2
LATEST = -1
MAX_TIMESTAMP = -3

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class NewTopic:
    """A topic to create.  -1 partitions or replication factor: the broker's default.

    ``assignments`` (partition i -> broker ids, leader first) replaces both
    counts when given.
    """

    name: str
    partitions: int = -1
    replication_factor: int = -1
    configs: Mapping[str, str] = field(default_factory=dict)
    assignments: Sequence[Sequence[int]] | None = None


@dataclass(frozen=True, slots=True)
class TopicCreated:
    """What the controller says it created (or would create, with ``validate_only``)."""

    name: str
    topic_id: UUID | None
    partitions: int
    replication_factor: int
    configs: dict[str, str | None]


@dataclass(frozen=True, slots=True)
class TopicListing:
    name: str
    topic_id: UUID | None
    internal: bool


@dataclass(frozen=True, slots=True)
class PartitionDescription:
    """One partition: ``leader`` is None while it has none."""

    partition: int
    leader: int | None
    leader_epoch: int
    replicas: tuple[int, ...]
    isr: tuple[int, ...]
    offline_replicas: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class TopicDescription:
    name: str
    topic_id: UUID | None
    internal: bool
    partitions: tuple[PartitionDescription, ...]


@dataclass(frozen=True, slots=True)
class ClusterDescription:
    """``controller`` is None when the cluster did not name one."""

    cluster_id: str | None
    controller: int | None
    brokers: tuple[BrokerMetadata, ...]


@dataclass(frozen=True, slots=True)
class AdminResult(Generic[T]):
    """The outcome of the admin call that returned ``token``.

    ``value`` holds the answer (its type depends on the call); ``error`` is
    None when everything succeeded.  Otherwise it is the reason the whole
    call failed (closed, timed out before an answer; ``value`` is then None
    or holds the per-item answers gathered so far), or, for calls about
    several items, the first per-item failure: the items themselves map to
    their exceptions inside ``value``.
    """

    token: int
    call: str
    value: T | None
    error: KafkaSansioError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None
