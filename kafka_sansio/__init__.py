"""kafka_sansio: a sans-IO Apache Kafka protocol core.

The package is a pure state machine: bytes and ``now`` go in; bytes to send,
connections to open or close, the next deadline and events come out.  It never
touches a socket, a clock, a thread or a random source.  Adapters that drive it
over real sockets live in ``kafka_sansio.transports`` and are never imported
from here.

Layers, each usable on its own:

- :mod:`kafka_sansio.protocol`: every Kafka API at every version (generated),
  headers, framing and version negotiation; :mod:`kafka_sansio.errors`: one
  exception class per broker error code.
- :mod:`kafka_sansio.records`: record batches (v2 and legacy), CRC-32C and
  the compression codecs.
- :class:`BrokerConnection`: one broker connection (handshake, SASL,
  in-flight queue, timeouts); :class:`ClientCore`: many brokers, metadata and
  routing; :class:`ConsumerCore`: positions, resets and the fetch engine.
- :mod:`kafka_sansio.testing`: the in-memory broker model and a fake-clock pump.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:
    from . import errors, protocol, records
    from ._admin import AdminConfig, AdminCore
    from ._admin_types import (
        AdminResult,
        ClusterDescription,
        NewTopic,
        PartitionDescription,
        TopicCreated,
        TopicDescription,
        TopicListing,
    )
    from ._assignors import (
        Assignment,
        Assignor,
        CooperativeStickyAssignor,
        RangeAssignor,
        RoundRobinAssignor,
        StickyAssignor,
        Subscription,
    )
    from ._backoff import Backoff
    from ._client import (
        BrokerMetadata,
        ClientConfig,
        ClientCore,
        CloseConnection,
        ClusterMetadata,
        Command,
        DrivenCore,
        OpenConnection,
        PartitionMetadata,
        SendData,
        parse_bootstrap,
    )
    from ._connection import (
        BrokerConnection,
        ConnectionClosed,
        ConnectionConfig,
        ConnectionLostError,
        ConnectionState,
        Ready,
        RequestFailed,
        RequestTimedOutError,
        Response,
    )
    from ._consumer import ConsumerConfig, ConsumerCore
    from ._events import (
        ClientError,
        Event,
        FetchError,
        LogTruncation,
        NoOffsetForPartition,
        OffsetOutOfRange,
        OffsetReset,
        OffsetsResult,
        Records,
        ResetReason,
    )
    from ._framing import DEFAULT_MAX_FRAME_SIZE, FrameBuffer, frame
    from ._group import GroupConfig, MemberState
    from ._group_consumer import GroupConsumerCore
    from ._group_events import (
        CommitFailedError,
        CommitResult,
        CommittedResult,
        GroupError,
        GroupJoined,
        OffsetAndMetadata,
        PartitionsAssigned,
        PartitionsLost,
        PartitionsRevoked,
        RetriableCommitFailedError,
    )
    from ._partitioner import Partitioner, murmur2
    from ._producer import ProducerConfig, ProducerCore
    from ._producer_events import (
        BufferFullError,
        Delivered,
        DeliveryTimeoutError,
        ProducerClosedError,
        ProducerEvent,
        ProducerFailed,
        RecordTooLargeError,
    )
    from ._record_list import RecordList
    from ._records import ControlRecord, ControlRecordType, Record, RecordBatch, TimestampType
    from ._sasl import (
        OAuthBearerMechanism,
        PlainMechanism,
        SaslAuthenticationError,
        SaslMechanism,
        ScramMechanism,
    )
    from ._subscription import FetchState
    from ._transactions import TransactionAbortedError, TransactionResult, TransactionState
    from ._types import IsolationLevel, OffsetAndTimestamp, OffsetResetPolicy, TopicPartition

__version__ = "0.1.0"

#: Public names loaded on first use, so that ``import kafka_sansio`` stays cheap
#: (the generated message modules load only when a layer needs them).
_LAZY = {
    "GroupConfig": "._group",
    "MemberState": "._group",
    "GroupConsumerCore": "._group_consumer",
    "Assignment": "._assignors",
    "Assignor": "._assignors",
    "CooperativeStickyAssignor": "._assignors",
    "RangeAssignor": "._assignors",
    "RoundRobinAssignor": "._assignors",
    "StickyAssignor": "._assignors",
    "Subscription": "._assignors",
    "CommitFailedError": "._group_events",
    "CommitResult": "._group_events",
    "CommittedResult": "._group_events",
    "GroupError": "._group_events",
    "GroupJoined": "._group_events",
    "OffsetAndMetadata": "._group_events",
    "PartitionsAssigned": "._group_events",
    "PartitionsLost": "._group_events",
    "PartitionsRevoked": "._group_events",
    "RetriableCommitFailedError": "._group_events",
    "AdminConfig": "._admin",
    "AdminCore": "._admin",
    "AdminResult": "._admin_types",
    "ClusterDescription": "._admin_types",
    "NewTopic": "._admin_types",
    "PartitionDescription": "._admin_types",
    "TopicCreated": "._admin_types",
    "TopicDescription": "._admin_types",
    "TopicListing": "._admin_types",
    "ProducerConfig": "._producer",
    "ProducerCore": "._producer",
    "BufferFullError": "._producer_events",
    "Delivered": "._producer_events",
    "DeliveryTimeoutError": "._producer_events",
    "ProducerClosedError": "._producer_events",
    "ProducerEvent": "._producer_events",
    "ProducerFailed": "._producer_events",
    "RecordTooLargeError": "._producer_events",
    "TransactionAbortedError": "._transactions",
    "TransactionResult": "._transactions",
    "TransactionState": "._transactions",
    "Partitioner": "._partitioner",
    "murmur2": "._partitioner",
    "Backoff": "._backoff",
    "BrokerConnection": "._connection",
    "BrokerMetadata": "._client",
    "ClientConfig": "._client",
    "ClientCore": "._client",
    "ClientError": "._events",
    "CloseConnection": "._client",
    "ClusterMetadata": "._client",
    "Command": "._client",
    "DrivenCore": "._client",
    "ConnectionClosed": "._connection",
    "ConnectionConfig": "._connection",
    "ConnectionLostError": "._connection",
    "ConnectionState": "._connection",
    "ConsumerConfig": "._consumer",
    "ConsumerCore": "._consumer",
    "ControlRecord": "._records",
    "ControlRecordType": "._records",
    "DEFAULT_MAX_FRAME_SIZE": "._framing",
    "errors": ".errors",
    "Event": "._events",
    "FetchError": "._events",
    "FetchState": "._subscription",
    "frame": "._framing",
    "FrameBuffer": "._framing",
    "IsolationLevel": "._types",
    "LogTruncation": "._events",
    "NoOffsetForPartition": "._events",
    "OAuthBearerMechanism": "._sasl",
    "OffsetAndTimestamp": "._types",
    "OffsetOutOfRange": "._events",
    "OffsetReset": "._events",
    "OffsetResetPolicy": "._types",
    "OffsetsResult": "._events",
    "OpenConnection": "._client",
    "parse_bootstrap": "._client",
    "PartitionMetadata": "._client",
    "PlainMechanism": "._sasl",
    "protocol": ".protocol",
    "Ready": "._connection",
    "Record": "._records",
    "RecordBatch": "._records",
    "RecordList": "._record_list",
    "records": ".records",
    "Records": "._events",
    "RequestFailed": "._connection",
    "RequestTimedOutError": "._connection",
    "ResetReason": "._events",
    "Response": "._connection",
    "SaslAuthenticationError": "._sasl",
    "SaslMechanism": "._sasl",
    "ScramMechanism": "._sasl",
    "SendData": "._client",
    "TimestampType": "._records",
    "TopicPartition": "._types",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'kafka_sansio' has no attribute {name!r}")
    if module == f".{name}":
        value: Any = importlib.import_module(module, __name__)
    else:
        value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


__all__ = [
    "GroupConfig",
    "MemberState",
    "GroupConsumerCore",
    "Assignment",
    "Assignor",
    "CooperativeStickyAssignor",
    "RangeAssignor",
    "RoundRobinAssignor",
    "StickyAssignor",
    "Subscription",
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
    "AdminConfig",
    "AdminCore",
    "AdminResult",
    "ClusterDescription",
    "NewTopic",
    "PartitionDescription",
    "TopicCreated",
    "TopicDescription",
    "TopicListing",
    "ProducerConfig",
    "ProducerCore",
    "BufferFullError",
    "Delivered",
    "DeliveryTimeoutError",
    "ProducerClosedError",
    "ProducerEvent",
    "ProducerFailed",
    "RecordTooLargeError",
    "TransactionAbortedError",
    "TransactionResult",
    "TransactionState",
    "Partitioner",
    "murmur2",
    "DEFAULT_MAX_FRAME_SIZE",
    "Backoff",
    "BrokerConnection",
    "BrokerMetadata",
    "ClientConfig",
    "ClientCore",
    "ClientError",
    "CloseConnection",
    "ClusterMetadata",
    "Command",
    "ConnectionClosed",
    "DrivenCore",
    "ConnectionConfig",
    "ConnectionLostError",
    "ConnectionState",
    "ConsumerConfig",
    "ConsumerCore",
    "ControlRecord",
    "ControlRecordType",
    "CorruptRecordError",
    "DecompressionLimitError",
    "Event",
    "FetchError",
    "FetchState",
    "FrameBuffer",
    "FrameTooLargeError",
    "IsolationLevel",
    "KafkaSansioError",
    "LocalProtocolError",
    "LogTruncation",
    "MissingCodecError",
    "NoOffsetForPartition",
    "OAuthBearerMechanism",
    "OffsetAndTimestamp",
    "OffsetOutOfRange",
    "OffsetReset",
    "OffsetResetPolicy",
    "OffsetsResult",
    "OpenConnection",
    "PartitionMetadata",
    "PlainMechanism",
    "ProtocolError",
    "Ready",
    "Record",
    "RecordBatch",
    "RecordList",
    "Records",
    "RemoteProtocolError",
    "RequestFailed",
    "RequestTimedOutError",
    "ResetReason",
    "Response",
    "SaslAuthenticationError",
    "SaslMechanism",
    "ScramMechanism",
    "SendData",
    "TimestampType",
    "TopicPartition",
    "__version__",
    "errors",
    "frame",
    "parse_bootstrap",
    "protocol",
    "records",
]
