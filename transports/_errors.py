"""Exceptions the transports raise for failures below the Kafka protocol.

The core only learns that a connection was lost; the adapters keep the
reason and raise it to the user when it cannot cure itself by reconnecting
(a certificate that does not verify will not verify next time either).
"""

from __future__ import annotations

from kafka_sansio import KafkaSansioError

__all__ = [
    "ClosedError",
    "OperationTimeoutError",
    "PartitionEventError",
    "TlsError",
    "TransportError",
]


class TransportError(KafkaSansioError):
    """A socket-level failure the adapter cannot cure by reconnecting."""


class TlsError(TransportError):
    """The TLS handshake failed: the server's certificate or name did not verify, or no
    protocol version or cipher was acceptable to both sides."""


class ClosedError(KafkaSansioError):
    """The client was used after ``close()``."""


class OperationTimeoutError(KafkaSansioError, TimeoutError):
    """A call that waits for the cluster (position, offsets lookup, flush) ran out of time."""


class PartitionEventError(KafkaSansioError):
    """A partition stopped fetching and needs the user (no reset policy): seek it.

    ``event`` is the core's event (``NoOffsetForPartition`` or ``LogTruncation``).
    """
