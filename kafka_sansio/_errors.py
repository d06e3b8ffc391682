"""Exceptions raised by the core.

Everything the core raises derives from :class:`KafkaSansioError`.  The split
follows h11: :class:`RemoteProtocolError` means the peer sent bytes that are
not valid Kafka (the connection cannot be trusted any more);
:class:`LocalProtocolError` means the caller used the API in a way that cannot
work.  Error codes that a broker returns inside a valid response are *not*
raised from the receive path; they arrive as fields of events (see
``kafka_sansio.errors`` for one exception class per code, for callers who want
to raise them).
"""

from __future__ import annotations

__all__ = [
    "KafkaSansioError",
    "ProtocolError",
    "RemoteProtocolError",
    "LocalProtocolError",
    "FrameTooLargeError",
    "CorruptRecordError",
    "DecompressionLimitError",
    "MissingCodecError",
]


class KafkaSansioError(Exception):
    """Base class of every exception raised by kafka_sansio."""


class ProtocolError(KafkaSansioError):
    """Bytes or calls that violate the Kafka protocol."""


class RemoteProtocolError(ProtocolError):
    """The peer sent something that is not valid Kafka (malformed, truncated, oversized)."""


class LocalProtocolError(ProtocolError):
    """The caller asked for something the protocol cannot express."""


class FrameTooLargeError(RemoteProtocolError):
    """A length prefix announced more bytes than the configured limit allows.

    Raised before any buffer of that size is allocated.
    """

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"frame of {size} bytes exceeds the limit of {limit} bytes")
        self.size = size
        self.limit = limit


class CorruptRecordError(RemoteProtocolError):
    """A record batch failed its checksum or its framing is inconsistent."""


class DecompressionLimitError(RemoteProtocolError):
    """Decompressing a batch would exceed the configured size limit (a bomb, or a too-small limit)."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"decompressed data exceeds the limit of {limit} bytes")
        self.limit = limit


class MissingCodecError(KafkaSansioError):
    """A batch uses a compression codec whose optional package is not installed."""

    def __init__(self, codec: str, extra: str = "compression") -> None:
        super().__init__(
            f"records compressed with {codec} need an optional package: "
            f"install kafka-sansio[{extra}]"
        )
        self.codec = codec
        self.extra = extra
