"""Events and errors of the producer core.

``ProducerCore.events()`` hands out :class:`Delivered` (one per batch: the
outcome of every record in it) and :class:`ProducerFailed` (the producer
cannot go on).  Errors raised at once by ``ProducerCore.send`` derive from
:class:`KafkaSansioError` and are defined here as well.
"""

from __future__ import annotations

from dataclasses import dataclass

from ._errors import KafkaSansioError, LocalProtocolError
from ._types import TopicPartition

__all__ = [
    "BufferFullError",
    "Delivered",
    "DeliveryTimeoutError",
    "ProducerClosedError",
    "ProducerEvent",
    "ProducerFailed",
    "RecordTooLargeError",
]


class ProducerEvent:
    """Base class of every producer event."""

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class Delivered(ProducerEvent):
    """The outcome of the records with these ``tokens`` (the values ``send`` returned).

    On success (``error is None``) record ``i`` of ``tokens`` was written at
    offset ``base_offset + i`` of ``partition``; ``timestamp_ms`` is the
    broker's append time for a LogAppendTime topic and -1 otherwise (the
    record keeps the timestamp it was sent with).  ``base_offset`` is -1 when
    the broker does not say (acks=0, or an old broker's duplicate answer).
    On failure no record of the batch is known to be written, and
    ``maybe_written`` says whether an earlier attempt went unanswered, so
    that the broker may have written them anyway.
    ``partition.partition`` is -1 for records that never got a partition
    (their topic never appeared).
    """

    partition: TopicPartition
    tokens: tuple[int, ...]
    base_offset: int
    timestamp_ms: int
    error: KafkaSansioError | None = None
    maybe_written: bool = False


@dataclass(frozen=True, slots=True)
class ProducerFailed(ProducerEvent):
    """A fatal error (e.g. cluster authorization): every pending record fails with it.

    ``send`` raises it from now on; close the producer.
    """

    error: KafkaSansioError


class ProducerClosedError(LocalProtocolError):
    """``send`` after ``close`` or ``abort``, or records failed by ``abort``."""


class RecordTooLargeError(LocalProtocolError):
    """One record is larger than ``max_request_size`` or ``buffer_memory`` allows.

    ``size`` is the record's size estimate in bytes, ``limit`` the bound.
    """

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"a record of about {size} bytes exceeds the limit of {limit} bytes")
        self.size = size
        self.limit = limit


class BufferFullError(KafkaSansioError):
    """``buffer_memory`` has no room for this record now; nothing was queued.

    ``needed`` bytes must be free (see ``ProducerCore.buffer_available``);
    they come free as batches are delivered, so a caller can wait for
    deliveries and send again.
    """

    def __init__(self, needed: int, available: int) -> None:
        super().__init__(
            f"the producer buffer has {available} bytes free, the record needs {needed}"
        )
        self.needed = needed
        self.available = available


class DeliveryTimeoutError(KafkaSansioError):
    """The records were not acknowledged within ``delivery_timeout`` (or ``max_block``).

    ``maybe_written`` is True when a request carrying them had been sent and
    got no answer: the broker may have written them.
    """

    def __init__(self, message: str, maybe_written: bool = False) -> None:
        super().__init__(message)
        self.maybe_written = maybe_written
