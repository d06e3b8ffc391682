"""Adapters that drive the kafka_sansio core over real sockets.

Installed as ``kafka_sansio.transports``; importing ``kafka_sansio`` never
imports this package.  Pick the module for your program's concurrency:

- :mod:`kafka_sansio.transports.blocking`: plain calls that wait (``selectors``);
- :mod:`kafka_sansio.transports.asyncio`: ``async with Consumer(...)`` on asyncio;
- :mod:`kafka_sansio.transports.trio`: the same on trio (needs the ``trio`` extra).

Each offers the same clients with the same behaviour; the logic they share
lives in one place (``_ops``), the adapters only differ in how they wait.
"""

from ._errors import (
    ClosedError,
    OperationTimeoutError,
    PartitionEventError,
    TlsError,
    TransportError,
)
from ._ops import ConsumerGroupMetadata, ConsumerRecord, RecordMetadata

__all__ = [
    "ClosedError",
    "ConsumerGroupMetadata",
    "ConsumerRecord",
    "OperationTimeoutError",
    "PartitionEventError",
    "RecordMetadata",
    "TlsError",
    "TransportError",
]
