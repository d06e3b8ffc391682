"""kafka_sansio: a sans-IO Apache Kafka protocol core.

The package is a pure state machine: bytes and ``now`` go in; bytes to send,
connections to open or close, the next deadline and events come out.  It never
touches a socket, a clock, a thread or a random source.  Adapters that drive it
over real sockets live in ``kafka_sansio.transports`` and are never imported
from here.
"""

from __future__ import annotations

from ._errors import (
    CorruptRecordError,
    DecompressionLimitError,
    FrameTooLargeError,
    KafkaSansioError,
    LocalProtocolError,
    MissingCodecError,
    ProtocolError,
    RemoteProtocolError,
)

__version__ = "0.1.0"

__all__ = [
    "CorruptRecordError",
    "DecompressionLimitError",
    "FrameTooLargeError",
    "KafkaSansioError",
    "LocalProtocolError",
    "MissingCodecError",
    "ProtocolError",
    "RemoteProtocolError",
    "__version__",
]
