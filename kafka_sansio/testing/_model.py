"""An in-memory Kafka cluster that speaks the real wire protocol, sans I/O.

:class:`ModelCluster` holds brokers, topics and partition logs and behaves
like a Kafka 4.x cluster wherever a client can tell (see ``docs/model.md`` for
what it implements and what it leaves out).  Tests shape it through a direct
API (``create_topic``, ``append``, transactions, ``truncate_start``,
``move_leader``, ``stop_broker``, fault injection) and talk to it through
:class:`ModelConnection`, the server end of one TCP connection::

    cluster = ModelCluster(brokers=3)
    cluster.create_topic("t", partitions=2)
    server = cluster.accept(1, now)          # the client's socket to node 1
    server.receive(client_bytes, now)        # requests in
    reply = server.data_to_send()            # responses out, in request order
    if server.closed: ...                    # the broker hung up
    server.handle_timer(now)                 # when now >= server.get_timer()

Requests are decoded and responses encoded with the project's codec; nothing
here builds bytes by hand.  Time only arrives as ``now`` (seconds, float).
After any direct call that adds data or moves leaders, drain
``data_to_send()`` of every connection: a fetch parked on ``min_bytes`` may
have completed.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast
from uuid import UUID

from .. import protocol
from .._errors import KafkaSansioError, RemoteProtocolError
from .._framing import DEFAULT_MAX_FRAME_SIZE, FrameBuffer, frame
from .._messages.api_versions import ApiVersion, ApiVersionsRequest, ApiVersionsResponse
from .._messages.create_topics import (
    CreatableTopicConfigs,
    CreatableTopicResult,
    CreateTopicsRequest,
    CreateTopicsResponse,
)
from .._messages.delete_topics import (
    DeletableTopicResult,
    DeleteTopicsRequest,
    DeleteTopicsResponse,
)
from .._messages.fetch import (
    AbortedTransaction,
    FetchableTopicResponse,
    FetchRequest,
    FetchResponse,
    PartitionData,
)
from .._messages.fetch import LeaderIdAndEpoch as FetchLeader
from .._messages.fetch import NodeEndpoint as FetchNodeEndpoint
from .._messages.list_offsets import (
    ListOffsetsPartitionResponse,
    ListOffsetsRequest,
    ListOffsetsResponse,
    ListOffsetsTopicResponse,
)
from .._messages.metadata import (
    MetadataRequest,
    MetadataResponse,
    MetadataResponseBroker,
    MetadataResponsePartition,
    MetadataResponseTopic,
)
from .._messages.offset_for_leader_epoch import (
    EpochEndOffset,
    OffsetForLeaderEpochRequest,
    OffsetForLeaderEpochResponse,
    OffsetForLeaderTopicResult,
)
from .._messages.produce import LeaderIdAndEpoch as ProduceLeader
from .._messages.produce import NodeEndpoint as ProduceNodeEndpoint
from .._messages.produce import (
    PartitionProduceResponse,
    ProduceRequest,
    ProduceResponse,
    TopicProduceResponse,
)
from .._wire import Message
from ..records import (
    CODEC_NONE,
    ControlRecordType,
    Record,
    RecordBatch,
    decode_records,
    encode_batch,
    make_control_record,
)
from . import _model_admin, _model_group, _model_producer, _model_txn
from ._model_log import AbortedTxn, ModelError, PartitionLog, ProducerState, StoredBatch

E = TypeVar("E")

__all__ = [
    "ADVERTISED_VERSIONS",
    "AbortedTxn",
    "BrokerInfo",
    "ModelCluster",
    "ModelConnection",
    "ModelConnectionRefused",
    "ModelError",
    "PartitionState",
    "StoredBatch",
    "Topic",
]

# Error codes the model answers with.
NONE = 0
OFFSET_OUT_OF_RANGE = 1
CORRUPT_MESSAGE = 2
UNKNOWN_TOPIC_OR_PARTITION = 3
LEADER_NOT_AVAILABLE = 5
NOT_LEADER_OR_FOLLOWER = 6
INVALID_TOPIC_EXCEPTION = 17
INVALID_REQUIRED_ACKS = 21
UNSUPPORTED_VERSION = 35
TOPIC_ALREADY_EXISTS = 36
INVALID_PARTITIONS = 37
INVALID_REPLICATION_FACTOR = 38
INVALID_REPLICA_ASSIGNMENT = 39
INVALID_REQUEST = 42
OUT_OF_ORDER_SEQUENCE_NUMBER = 45
INVALID_PRODUCER_EPOCH = 47
INVALID_FETCH_SESSION_EPOCH = 71
FETCH_SESSION_ID_NOT_FOUND = 70
FENCED_LEADER_EPOCH = 74
UNKNOWN_LEADER_EPOCH = 75
INVALID_RECORD = 87
UNKNOWN_TOPIC_ID = 100

PRODUCE, FETCH, LIST_OFFSETS, METADATA = 0, 1, 2, 3
API_VERSIONS, CREATE_TOPICS, DELETE_TOPICS, OFFSET_FOR_LEADER_EPOCH = 18, 19, 20, 23

#: What the model advertises in ApiVersions: Kafka 4.0's ranges for the APIs
#: it implements, capped at the codec's stable maximum.  Produce 0-2 are
#: listed but refused, as Kafka 4.0 does.
ADVERTISED_VERSIONS: dict[int, tuple[int, int]] = {
    PRODUCE: (0, 11),
    FETCH: (4, 17),
    LIST_OFFSETS: (1, 10),
    METADATA: (0, 12),
    API_VERSIONS: (0, 4),
    CREATE_TOPICS: (2, 7),
    DELETE_TOPICS: (1, 6),
    OFFSET_FOR_LEADER_EPOCH: (2, 4),
}
ADVERTISED_VERSIONS.update(_model_admin.VERSIONS)
ADVERTISED_VERSIONS.update(_model_producer.VERSIONS)
ADVERTISED_VERSIONS.update(_model_group.VERSIONS)
ADVERTISED_VERSIONS.update(_model_txn.VERSIONS)
_ACCEPTED_MIN = {PRODUCE: 3}
_PARTITION_LEVEL = frozenset({PRODUCE, FETCH, LIST_OFFSETS, OFFSET_FOR_LEADER_EPOCH})
_ZERO_UUID = UUID(int=0)
#: Fetch errors that only make sense for the whole request (fetch sessions).
_FETCH_TOP_LEVEL = frozenset({FETCH_SESSION_ID_NOT_FOUND, INVALID_FETCH_SESSION_EPOCH})
_SEQUENCE_WRAP = 1 << 31
#: A bound on partitions created by one request (Kafka's controller bounds the
#: records of one operation; the model keeps memory in check).
_MAX_NEW_PARTITIONS = 10_000
_LEGAL_TOPIC_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")


def _topic_name_problem(name: str) -> str | None:
    """Kafka's topic name rules: the reason a name is refused, or None."""
    if not name:
        return "Topic name is illegal, it can't be empty"
    if name in (".", ".."):
        return 'Topic name cannot be "." or ".."'
    if len(name) > 249:
        return "Topic name is illegal, it can't be longer than 249 characters"
    if not set(name) <= _LEGAL_TOPIC_CHARS:
        return f"Topic name {name!r} is illegal, it contains a character other than ASCII alphanumerics, '.', '_' and '-'"
    return None


class ModelConnectionRefused(KafkaSansioError):
    """``accept`` on a broker that is stopped or does not exist: the connect fails."""


# ----------------------------------------------------------------------------- state


@dataclass(slots=True)
class BrokerInfo:
    """One broker of the model: its address and whether it is running."""

    node_id: int
    host: str
    port: int
    rack: str | None = None
    alive: bool = True


@dataclass(slots=True)
class PartitionState:
    """Leadership and log of one partition."""

    topic: str
    index: int
    leader: int
    replicas: list[int]
    isr: list[int]
    leader_epoch: int
    log: PartitionLog


@dataclass(slots=True)
class Topic:
    """A topic: name, id, partitions and the configs the model honours."""

    name: str
    topic_id: UUID
    partitions: list[PartitionState]
    configs: dict[str, str] = field(default_factory=dict)

    @property
    def log_append_time(self) -> bool:
        return self.configs.get("message.timestamp.type") == "LogAppendTime"


@dataclass(slots=True)
class _ErrorRule:
    api_key: int
    error_code: int
    count: int
    node: int | None
    topic: str | None
    partition: int | None


@dataclass(slots=True)
class _DelayRule:
    api_key: int
    seconds: float
    count: int
    node: int | None


@dataclass(slots=True)
class _Txn:
    producer_epoch: int
    partitions: dict[tuple[str, int], None] = field(default_factory=dict)


@dataclass(slots=True)
class _SessionPart:
    """A partition in a fetch session, with the values last sent for it."""

    topic: str
    topic_id: UUID
    partition: int
    fetch_offset: int
    current_leader_epoch: int
    max_bytes: int
    forced_error: int = 0
    sent: tuple[int, int, int] | None = None  # (high watermark, LSO, log start)


@dataclass(slots=True)
class _FetchSession:
    session_id: int
    epoch: int
    parts: OrderedDict[tuple[str | UUID, int], _SessionPart]


@dataclass(slots=True)
class _FetchOp:
    """A fetch being answered (perhaps parked until min_bytes or max_wait)."""

    version: int
    node: int
    parts: list[_SessionPart]
    isolation: int
    max_bytes: int
    min_bytes: int
    deadline: float
    session: _FetchSession | None
    incremental: bool


class _Context:
    """Per-request view of the injected errors: consumed once per request."""

    def __init__(self, cluster: ModelCluster, api_key: int, node: int) -> None:
        self.cluster = cluster
        self.api_key = api_key
        self.node = node
        #: The rules this request matched (objects, not indices: another request
        #: may prune the list before this one finishes).
        self.used: list[_ErrorRule] = []

    def forced(
        self,
        topic: str | None = None,
        partition: int | None = None,
        *,
        codes: frozenset[int] | None = None,
    ) -> int:
        """The injected error for this topic/partition (0 if none); *codes* limits the search."""
        for rule in self.cluster._error_rules:
            if rule.api_key != self.api_key or rule.count <= 0:
                continue
            top = self.api_key == FETCH and rule.error_code in _FETCH_TOP_LEVEL
            if (codes is not None) != top:
                continue
            if codes is not None and rule.error_code not in codes:
                continue
            if rule.node is not None and rule.node != self.node:
                continue
            if rule.topic is not None and rule.topic != topic:
                continue
            if rule.partition is not None and rule.partition != partition:
                continue
            if not any(used is rule for used in self.used):
                self.used.append(rule)
            return rule.error_code
        return NONE

    def finish(self) -> None:
        for rule in self.used:
            rule.count -= 1
        self.cluster._error_rules = [r for r in self.cluster._error_rules if r.count > 0]


# ----------------------------------------------------------------------------- cluster


class ModelCluster:
    """An in-memory Kafka 4.x cluster (see the module docstring).

    *brokers*: how many (node ids 1..N, ports ``port_base + node - 1``).
    *slice_fetches*: cut the last batch of a size-limited fetch at exactly
    the byte limit, as Kafka's file slices do (True, the real behaviour); with
    False only whole batches are returned.  *out_of_range_offsets*: fill in
    the high watermark and log start in OFFSET_OUT_OF_RANGE fetch answers
    (Kafka sends -1 there; off by default).  *auto_create_topics*: Metadata
    creates unknown topics when the request allows it (off, as is usual).
    *fetch_session_cache_size*: sessions per broker (least recently used
    evicted); 0 turns sessions off.
    """

    def __init__(
        self,
        brokers: int = 3,
        *,
        cluster_id: str = "kafka-sansio-model",
        host: str = "127.0.0.1",
        port_base: int = 9092,
        controller_id: int = 1,
        racks: Sequence[str | None] | None = None,
        auto_create_topics: bool = False,
        default_partitions: int = 1,
        slice_fetches: bool = True,
        out_of_range_offsets: bool = False,
        fetch_session_cache_size: int = 1000,
        max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
    ) -> None:
        if brokers < 1:
            raise ModelError("a cluster needs at least one broker")
        self.cluster_id = cluster_id
        self.controller_id = controller_id
        self.brokers: dict[int, BrokerInfo] = {
            n: BrokerInfo(n, host, port_base + n - 1, racks[n - 1] if racks else None)
            for n in range(1, brokers + 1)
        }
        self.auto_create_topics = auto_create_topics
        self.default_partitions = default_partitions
        self.slice_fetches = slice_fetches
        self.out_of_range_offsets = out_of_range_offsets
        self.fetch_session_cache_size = fetch_session_cache_size
        self.max_frame_size = max_frame_size
        self.topics: dict[str, Topic] = {}
        #: (node, api key, version) of every request handled, in order.
        self.request_log: list[tuple[int, int, int]] = []
        self._now = 0.0
        self._topic_counter = 0
        self._session_counter = 0
        self._sessions: dict[int, OrderedDict[int, _FetchSession]] = {
            n: OrderedDict() for n in self.brokers
        }
        self._connections: list[ModelConnection] = []
        self._error_rules: list[_ErrorRule] = []
        self._delay_rules: list[_DelayRule] = []
        self._txns: dict[int, _Txn] = {}
        #: State of the broker parts kept in their own modules, by module name.
        self.extensions: dict[str, Any] = {}

    def extension(self, key: str, factory: Callable[[], E]) -> E:
        """The state a broker part keeps under ``key`` (made by ``factory`` on first use)."""
        state = self.extensions.get(key)
        if state is None:
            state = self.extensions[key] = factory()
        return cast(E, state)

    # ------------------------------------------------------------ topics

    def _tick(self, now: float | None) -> float:
        if now is not None and now > self._now:
            self._now = now
        return self._now

    def topic(self, name: str) -> Topic:
        try:
            return self.topics[name]
        except KeyError:
            raise ModelError(f"no topic {name!r}") from None

    def topic_by_id(self, topic_id: UUID) -> Topic | None:
        for topic in self.topics.values():
            if topic.topic_id == topic_id:
                return topic
        return None

    def partition(self, topic: str, partition: int) -> PartitionState:
        parts = self.topic(topic).partitions
        if not 0 <= partition < len(parts):
            raise ModelError(f"{topic!r} has no partition {partition}")
        return parts[partition]

    def create_topic(
        self,
        name: str,
        partitions: int = 1,
        *,
        leaders: Sequence[int] | None = None,
        replication_factor: int | None = None,
        configs: dict[str, str] | None = None,
        assignments: Sequence[Sequence[int]] | None = None,
    ) -> Topic:
        """Create a topic; leaders default to round robin over the brokers.

        *leaders* names each partition's leader; *assignments* gives whole
        replica lists (leader first).  The topic id is derived from the cluster
        id, the name and a counter, so it is deterministic and a re-created
        topic gets a new one.  Returns the :class:`Topic`.
        """
        if name in self.topics:
            raise ModelError(f"topic {name!r} already exists")
        nodes = sorted(self.brokers)
        chosen = [n for r in (assignments or []) for n in r] + list(leaders or [])
        if any(n not in self.brokers for n in chosen):
            raise ModelError(f"unknown broker in {chosen}")
        if assignments is not None:
            partitions = len(assignments)
            replication_factor = len(assignments[0]) if assignments else 1
        rf = replication_factor if replication_factor is not None else min(3, len(nodes))
        if not 1 <= rf <= len(nodes):
            raise ModelError(f"replication factor {rf} with {len(nodes)} brokers")
        topic_id = self._next_topic_id(name)
        states = []
        for i in range(partitions):
            if assignments is not None:
                replicas = list(assignments[i])
            else:
                first = leaders[i] if leaders is not None else nodes[i % len(nodes)]
                start = nodes.index(first)
                replicas = [nodes[(start + j) % len(nodes)] for j in range(rf)]
            alive = [r for r in replicas if self.brokers[r].alive]
            leader = alive[0] if alive else -1
            states.append(PartitionState(name, i, leader, replicas, alive, 0, PartitionLog(0)))
        topic = Topic(name, topic_id, states, dict(configs or {}))
        self.topics[name] = topic
        return topic

    def _next_topic_id(self, name: str) -> UUID:
        self._topic_counter += 1
        digest = hashlib.sha256(f"{self.cluster_id}/{name}/{self._topic_counter}".encode())
        return UUID(bytes=digest.digest()[:16])

    def delete_topic(self, name: str, now: float | None = None) -> None:
        """Delete a topic and its data; parked fetches on it complete with errors."""
        self.topic(name)
        del self.topics[name]
        self._wake(self._tick(now))

    # ------------------------------------------------------------ data

    def append(
        self,
        topic: str,
        partition: int,
        records: Iterable[Any],
        *,
        compression: int | str = CODEC_NONE,
        timestamp: int | None = None,
        producer_id: int = -1,
        producer_epoch: int = -1,
        transactional: bool = False,
        now: float | None = None,
    ) -> int:
        """Append one batch of *records* and return its base offset.

        Each record is a value (``bytes`` or None), a ``(key, value)`` pair or
        a ``(key, value, headers)`` triple.  Timestamps default to ``now``
        (the latest time the model has seen) in milliseconds.  With a
        *producer_id* the batch carries the next sequence number of that
        producer on the partition; *transactional* needs an open
        :meth:`begin_transaction` for that producer.
        """
        now_f = self._tick(now)
        ts = int(now_f * 1000) if timestamp is None else timestamp
        recs = []
        for i, item in enumerate(records):
            if isinstance(item, tuple):
                key, value = item[0], item[1]
                headers = tuple(item[2]) if len(item) > 2 else ()
            else:
                key, value, headers = None, item, ()
            recs.append(Record(i, ts, 0, key, value, headers))
        if not recs:
            raise ModelError("append needs at least one record")
        part = self.partition(topic, partition)
        base_sequence = -1
        if producer_id >= 0:
            state = part.log.producers.get(producer_id)
            if state is not None and state.epoch == producer_epoch:
                base_sequence = (state.last_sequence + 1) % _SEQUENCE_WRAP
            else:
                base_sequence = 0
        if transactional:
            txn = self._txns.get(producer_id)
            if txn is None:
                raise ModelError(f"producer {producer_id} has no open transaction")
            producer_epoch = txn.producer_epoch
        data = encode_batch(
            recs,
            compression=compression,
            producer_id=producer_id,
            producer_epoch=producer_epoch,
            base_sequence=base_sequence,
            transactional=transactional,
        )
        stored = self._append_batch(self.topic(topic), part, data, now_f)
        self._wake(now_f)
        return stored.base_offset

    def _append_batch(
        self, topic: Topic, part: PartitionState, data: bytes, now: float
    ) -> StoredBatch:
        append_time = int(now * 1000) if topic.log_append_time else None
        stored = part.log.append(data, leader_epoch=part.leader_epoch, log_append_time=append_time)
        batch = stored.decode()
        if batch.producer_id >= 0 and not batch.is_control:
            self._record_sequence(part.log, batch, stored.base_offset)
        if batch.is_transactional and not batch.is_control:
            txn = self._txns.setdefault(batch.producer_id, _Txn(batch.producer_epoch))
            txn.partitions.setdefault((topic.name, part.index), None)
            part.log.open_txns.setdefault(batch.producer_id, stored.base_offset)
        return stored

    @staticmethod
    def _record_sequence(log: PartitionLog, batch: RecordBatch, base_offset: int) -> None:
        if batch.base_sequence < 0:
            return
        state = log.producers.get(batch.producer_id)
        if state is None or state.epoch != batch.producer_epoch:
            state = log.producers[batch.producer_id] = ProducerState(batch.producer_epoch)
        last = (batch.base_sequence + batch.last_offset_delta) % _SEQUENCE_WRAP
        state.last_sequence = last
        state.recent.append((batch.base_sequence, last, base_offset, batch.max_timestamp))

    def begin_transaction(self, producer_id: int, producer_epoch: int = 0) -> None:
        """Open a transaction for *producer_id*; transactional appends join it."""
        if producer_id in self._txns:
            raise ModelError(f"producer {producer_id} already has an open transaction")
        self._txns[producer_id] = _Txn(producer_epoch)

    def commit_transaction(
        self, producer_id: int, *, coordinator_epoch: int = 0, now: float | None = None
    ) -> None:
        """Write COMMIT markers on every partition of the transaction; the LSO moves."""
        self._end_transaction(producer_id, ControlRecordType.COMMIT, coordinator_epoch, now)

    def abort_transaction(
        self, producer_id: int, *, coordinator_epoch: int = 0, now: float | None = None
    ) -> None:
        """Write ABORT markers and record the aborted transaction on each partition."""
        self._end_transaction(producer_id, ControlRecordType.ABORT, coordinator_epoch, now)

    def _end_transaction(
        self, producer_id: int, marker: ControlRecordType, epoch: int, now: float | None
    ) -> None:
        now_f = self._tick(now)
        txn = self._txns.pop(producer_id, None)
        if txn is None:
            raise ModelError(f"producer {producer_id} has no open transaction")
        for topic_name, index in txn.partitions:
            topic = self.topics.get(topic_name)
            if topic is None or index >= len(topic.partitions):
                continue
            part = topic.partitions[index]
            record = make_control_record(
                marker, timestamp=int(now_f * 1000), coordinator_epoch=epoch
            )
            data = encode_batch(
                [record],
                producer_id=producer_id,
                producer_epoch=txn.producer_epoch,
                transactional=True,
                is_control=True,
            )
            stored = part.log.append(data, leader_epoch=part.leader_epoch)
            first = part.log.open_txns.pop(producer_id, None)
            if marker is ControlRecordType.ABORT and first is not None:
                part.log.aborted.append(AbortedTxn(producer_id, first, stored.base_offset))
        self._wake(now_f)

    def truncate_start(
        self, topic: str, partition: int, new_start: int, now: float | None = None
    ) -> None:
        """Retention: move the log start to *new_start*; whole batches below it go."""
        self.partition(topic, partition).log.truncate_start(new_start)
        self._wake(self._tick(now))

    def unclean_leader_election(
        self, topic: str, partition: int, node: int, new_end: int, now: float | None = None
    ) -> int:
        """*node* becomes leader holding the log only up to *new_end* (a batch boundary).

        Records from *new_end* on are lost, as in an unclean leader election;
        a consumer positioned beyond it must notice (KIP-320).  Returns the
        new leader epoch.
        """
        part = self.partition(topic, partition)
        part.log.truncate_end(new_end)
        return self.move_leader(topic, partition, node, now)

    def log(self, topic: str, partition: int) -> list[RecordBatch]:
        """The partition's batches, decoded (control batches included)."""
        return [b.decode() for b in self.partition(topic, partition).log.batches]

    def records(self, topic: str, partition: int) -> list[Record]:
        """User records at or above the log start (no control markers)."""
        return [r for r, b in self.partition(topic, partition).log.records() if not b.is_control]

    def high_watermark(self, topic: str, partition: int) -> int:
        return self.partition(topic, partition).log.high_watermark

    def log_start_offset(self, topic: str, partition: int) -> int:
        return self.partition(topic, partition).log.log_start_offset

    def last_stable_offset(self, topic: str, partition: int) -> int:
        return self.partition(topic, partition).log.last_stable_offset

    # ------------------------------------------------------------ leadership, brokers

    def move_leader(self, topic: str, partition: int, node: int, now: float | None = None) -> int:
        """Make *node* the leader (added to the replicas if needed); returns the new epoch."""
        part = self.partition(topic, partition)
        if node not in self.brokers or not self.brokers[node].alive:
            raise ModelError(f"broker {node} is not running")
        if node not in part.replicas:
            part.replicas.append(node)
        if node not in part.isr:
            part.isr.append(node)
        self._set_leader(part, node)
        self._wake(self._tick(now))
        return part.leader_epoch

    @staticmethod
    def _set_leader(part: PartitionState, node: int) -> None:
        part.leader = node
        part.leader_epoch += 1
        part.log.new_epoch(part.leader_epoch)

    def stop_broker(self, node: int, now: float | None = None) -> None:
        """Stop a broker: its connections close, its sessions vanish, leaders fail over."""
        broker = self.brokers[node]
        broker.alive = False
        for conn in list(self._connections):
            if conn.node_id == node:
                conn._server_close()
        self._sessions[node].clear()
        for topic in self.topics.values():
            for part in topic.partitions:
                if node in part.isr:
                    part.isr.remove(node)
                if part.leader == node:
                    alive = [r for r in part.isr if self.brokers[r].alive]
                    self._set_leader(part, alive[0] if alive else -1)
        self._wake(self._tick(now))

    def start_broker(self, node: int, now: float | None = None) -> None:
        """Restart a broker: it rejoins the ISRs and leads partitions that had no leader."""
        self.brokers[node].alive = True
        for topic in self.topics.values():
            for part in topic.partitions:
                if node in part.replicas and node not in part.isr:
                    part.isr.append(node)
                if part.leader == -1 and node in part.replicas:
                    self._set_leader(part, node)
        self._wake(self._tick(now))

    # ------------------------------------------------------------ faults

    def inject_error(
        self,
        api_key: int,
        error_code: int,
        *,
        count: int = 1,
        node: int | None = None,
        topic: str | None = None,
        partition: int | None = None,
    ) -> None:
        """The next *count* matching requests get *error_code*.

        Partition level for Produce, Fetch, ListOffsets and
        OffsetForLeaderEpoch (every matching partition of the request, which
        is then not processed); topic level for Metadata, CreateTopics and
        DeleteTopics; top level for ApiVersions.
        """
        self._error_rules.append(_ErrorRule(api_key, error_code, count, node, topic, partition))

    def delay(
        self, api_key: int, seconds: float, *, count: int = 1, node: int | None = None
    ) -> None:
        """Hold the responses to the next *count* requests of *api_key* for *seconds*."""
        self._delay_rules.append(_DelayRule(api_key, seconds, count, node))

    def _take_delay(self, api_key: int, node: int) -> float:
        for rule in self._delay_rules:
            if rule.api_key == api_key and rule.node in (None, node) and rule.count > 0:
                rule.count -= 1
                seconds = rule.seconds
                self._delay_rules = [r for r in self._delay_rules if r.count > 0]
                return seconds
        return 0.0

    def drop_connections(self, node: int | None = None) -> None:
        """The broker(s) close every connection (responses not yet written are lost)."""
        for conn in list(self._connections):
            if node is None or conn.node_id == node:
                conn._server_close()

    # ------------------------------------------------------------ wire

    def accept(self, node_id: int, now: float) -> ModelConnection:
        """A client connects to *node_id*; raises :class:`ModelConnectionRefused` if it is down."""
        self._tick(now)
        broker = self.brokers.get(node_id)
        if broker is None or not broker.alive:
            raise ModelConnectionRefused(f"broker {node_id} refused the connection")
        conn = ModelConnection(self, node_id)
        self._connections.append(conn)
        return conn

    def _wake(self, now: float) -> None:
        for conn in list(self._connections):
            conn._pump(now)

    def _forget(self, conn: ModelConnection) -> None:
        if conn in self._connections:
            self._connections.remove(conn)

    def _handle(self, conn: ModelConnection, payload: bytes, now: float) -> _Pending | None:
        """Decode and answer one request; None when there is nothing to send back."""
        now = self._tick(now)
        try:
            header, request = protocol.decode_request(payload, self.max_frame_size)
        except protocol.UnsupportedRequestVersionError as exc:
            if exc.api_key == API_VERSIONS:
                refusal = ApiVersionsResponse(
                    error_code=UNSUPPORTED_VERSION,
                    api_keys=[ApiVersion(api_key=API_VERSIONS, min_version=0, max_version=4)],
                )
                return _Pending(exc.correlation_id, API_VERSIONS, 0, refusal, None, now)
            raise
        api_key, version = header.request_api_key, header.request_api_version
        advertised = ADVERTISED_VERSIONS.get(api_key)
        lowest = _ACCEPTED_MIN.get(api_key, advertised[0] if advertised else 0)
        if advertised is None or not lowest <= version <= advertised[1]:
            raise RemoteProtocolError(f"unsupported request: api key {api_key} v{version}")
        self.request_log.append((conn.node_id, api_key, version))
        ctx = _Context(self, api_key, conn.node_id)
        handler = _HANDLERS[api_key]
        result = handler(self, ctx, request, version, now)
        ctx.finish()
        if result is None:
            return None
        release = now + self._take_delay(api_key, conn.node_id)
        if isinstance(result, _FetchOp):
            return _Pending(header.correlation_id, api_key, version, None, result, release)
        return _Pending(header.correlation_id, api_key, version, result, None, release)

    # ------------------------------------------------------------ helpers for handlers

    def _check_replica(
        self, part: PartitionState, node: int, current_epoch: int, *, follower_ok: bool = False
    ) -> int:
        """Kafka's order: replica?, then the client's epoch, then leadership.

        *follower_ok*: consumer fetches from v11 on may read from any replica
        (KIP-392), so only brokers that hold no replica refuse them.
        """
        if node not in part.replicas:
            return NOT_LEADER_OR_FOLLOWER
        if current_epoch >= 0:
            if current_epoch < part.leader_epoch:
                return FENCED_LEADER_EPOCH
            if current_epoch > part.leader_epoch:
                return UNKNOWN_LEADER_EPOCH
        if part.leader != node and not follower_ok:
            return NOT_LEADER_OR_FOLLOWER
        return NONE

    def _lookup(self, topic: str, index: int) -> PartitionState | None:
        t = self.topics.get(topic)
        if t is None or not 0 <= index < len(t.partitions):
            return None
        return t.partitions[index]

    # ------------------------------------------------------------ ApiVersions

    def _api_versions(
        self, ctx: _Context, request: ApiVersionsRequest, version: int, now: float
    ) -> Message:
        return ApiVersionsResponse(
            error_code=ctx.forced(),
            api_keys=[
                ApiVersion(api_key=k, min_version=lo, max_version=hi)
                for k, (lo, hi) in sorted(ADVERTISED_VERSIONS.items())
            ],
        )

    # ------------------------------------------------------------ Metadata

    def _metadata(
        self, ctx: _Context, request: MetadataRequest, version: int, now: float
    ) -> Message:
        brokers = [
            MetadataResponseBroker(node_id=b.node_id, host=b.host, port=b.port, rack=b.rack)
            for b in self.brokers.values()
            if b.alive
        ]
        wanted: list[tuple[str | None, UUID]]
        if request.topics is None or (version == 0 and not request.topics):
            wanted = [(name, _ZERO_UUID) for name in self.topics]
        else:
            wanted = [(t.name, t.topic_id) for t in request.topics]
        if version < 12 and any(n is None or i != _ZERO_UUID for n, i in wanted):
            # Kafka refuses topic ids below v12 and answers every topic with INVALID_REQUEST.
            return MetadataResponse(
                topics=[
                    MetadataResponseTopic(error_code=INVALID_REQUEST, name=n or "")
                    for n, _ in wanted
                ]
            )
        allow_create = request.allow_auto_topic_creation if version >= 4 else True
        topics = []
        for name, topic_id in wanted:
            topic = self.topics.get(name) if name is not None else self.topic_by_id(topic_id)
            if topic is None:
                if name is None:
                    entry = MetadataResponseTopic(
                        error_code=UNKNOWN_TOPIC_ID, name=None, topic_id=topic_id
                    )
                elif self.auto_create_topics and allow_create and _topic_name_problem(name):
                    entry = MetadataResponseTopic(error_code=INVALID_TOPIC_EXCEPTION, name=name)
                elif self.auto_create_topics and allow_create:
                    created = self.create_topic(name, self.default_partitions)
                    entry = MetadataResponseTopic(
                        error_code=LEADER_NOT_AVAILABLE, name=name, topic_id=created.topic_id
                    )
                else:
                    entry = MetadataResponseTopic(error_code=UNKNOWN_TOPIC_OR_PARTITION, name=name)
            else:
                entry = MetadataResponseTopic(
                    name=topic.name,
                    topic_id=topic.topic_id,
                    partitions=[self._metadata_partition(p) for p in topic.partitions],
                )
            forced = ctx.forced(entry.name)
            if forced:
                entry.error_code = forced
                entry.partitions = []
            topics.append(entry)
        return MetadataResponse(
            brokers=brokers,
            cluster_id=self.cluster_id,
            controller_id=self.controller_id,
            topics=topics,
        )

    def _metadata_partition(self, part: PartitionState) -> MetadataResponsePartition:
        return MetadataResponsePartition(
            error_code=LEADER_NOT_AVAILABLE if part.leader < 0 else NONE,
            partition_index=part.index,
            leader_id=part.leader,
            leader_epoch=part.leader_epoch,
            replica_nodes=list(part.replicas),
            isr_nodes=list(part.isr),
            offline_replicas=[r for r in part.replicas if not self.brokers[r].alive],
        )

    # ------------------------------------------------------------ ListOffsets

    def _list_offsets(
        self, ctx: _Context, request: ListOffsetsRequest, version: int, now: float
    ) -> Message:
        isolation = request.isolation_level if version >= 2 else 0
        topics = []
        for t in request.topics:
            parts = []
            for p in t.partitions:
                resp = ListOffsetsPartitionResponse(partition_index=p.partition_index)
                parts.append(resp)
                error = ctx.forced(t.name, p.partition_index)
                part = self._lookup(t.name, p.partition_index)
                if not error and part is None:
                    error = UNKNOWN_TOPIC_OR_PARTITION
                if not error and part is not None:
                    error = self._check_replica(part, ctx.node, p.current_leader_epoch)
                    if error == NOT_LEADER_OR_FOLLOWER and request.replica_id == -2:
                        error = NONE if ctx.node in part.replicas else error
                if error or part is None:
                    resp.error_code = error
                    continue
                log = part.log
                bound = log.last_stable_offset if isolation == 1 else log.high_watermark
                found: tuple[int, int, int] | None
                ts = p.timestamp
                if ts == -1:
                    found = (bound, -1, part.leader_epoch)
                elif ts in (-2, -4):
                    start = log.log_start_offset
                    found = (start, -1, log.epoch_for_offset(start))
                elif ts == -3:
                    found = log.max_timestamp_offset(bound)
                elif ts >= 0:
                    found = log.offset_for_timestamp(ts, bound)
                else:
                    found = None
                if found is not None:
                    resp.offset, resp.timestamp, epoch = found
                    if version >= 4:
                        resp.leader_epoch = epoch
            topics.append(ListOffsetsTopicResponse(name=t.name, partitions=parts))
        return ListOffsetsResponse(topics=topics)

    # ------------------------------------------------------------ OffsetForLeaderEpoch

    def _offset_for_leader_epoch(
        self, ctx: _Context, request: OffsetForLeaderEpochRequest, version: int, now: float
    ) -> Message:
        topics = []
        for t in request.topics:
            parts = []
            for p in t.partitions:
                resp = EpochEndOffset(partition=p.partition)
                parts.append(resp)
                error = ctx.forced(t.topic, p.partition)
                part = self._lookup(t.topic, p.partition)
                if not error and part is None:
                    error = UNKNOWN_TOPIC_OR_PARTITION
                if not error and part is not None:
                    error = self._check_replica(part, ctx.node, p.current_leader_epoch)
                if error or part is None:
                    resp.error_code = error
                    continue
                resp.leader_epoch, resp.end_offset = part.log.end_offset_for_epoch(p.leader_epoch)
            topics.append(OffsetForLeaderTopicResult(topic=t.topic, partitions=parts))
        return OffsetForLeaderEpochResponse(topics=topics)

    # ------------------------------------------------------------ Produce

    def _produce(
        self, ctx: _Context, request: ProduceRequest, version: int, now: float
    ) -> Message | None:
        endpoints: dict[int, ProduceNodeEndpoint] = {}
        topics = []
        for t in request.topic_data:
            parts = []
            for pd in t.partition_data:
                resp = PartitionProduceResponse(
                    index=pd.index, base_offset=-1, log_append_time_ms=-1, log_start_offset=-1
                )
                parts.append(resp)
                error = ctx.forced(t.name, pd.index)
                if not error and request.acks not in (-1, 0, 1):
                    error = INVALID_REQUIRED_ACKS
                part = self._lookup(t.name, pd.index)
                if not error and part is None:
                    error = UNKNOWN_TOPIC_OR_PARTITION
                if not error and part is not None and part.leader != ctx.node:
                    error = NOT_LEADER_OR_FOLLOWER
                    if part.leader >= 0 and version >= 10:
                        resp.current_leader = ProduceLeader(
                            leader_id=part.leader, leader_epoch=part.leader_epoch
                        )
                        b = self.brokers[part.leader]
                        endpoints[b.node_id] = ProduceNodeEndpoint(
                            node_id=b.node_id, host=b.host, port=b.port, rack=b.rack
                        )
                if error or part is None:
                    resp.error_code = error
                    continue
                self._produce_partition(
                    self.topics[t.name],
                    part,
                    pd.records,
                    resp,
                    now,
                    request.transactional_id,
                    version,
                )
            topics.append(TopicProduceResponse(name=t.name, partition_responses=parts))
        self._wake(now)
        if request.acks == 0:
            return None
        return ProduceResponse(responses=topics, node_endpoints=list(endpoints.values()))

    def _produce_partition(
        self,
        topic: Topic,
        part: PartitionState,
        records: bytes | memoryview | None,
        resp: PartitionProduceResponse,
        now: float,
        transactional_id: str | None = None,
        version: int = 0,
    ) -> None:
        try:
            decoded = decode_records(bytes(records or b""))
        except KafkaSansioError:
            resp.error_code = CORRUPT_MESSAGE
            return
        if len(decoded.batches) != 1 or decoded.truncated or decoded.batches[0].magic != 2:
            resp.error_code = INVALID_RECORD
            return
        batch = decoded.batches[0]
        log = part.log
        if transactional_id is not None and batch.is_transactional:
            # The coordinator must know the partition is in the transaction (KIP-890).
            error, message = _model_txn.verify_produce(
                self, transactional_id, batch, topic.name, part.index, version
            )
            if error:
                resp.error_code, resp.error_message = error, message
                return
        if batch.producer_id >= 0 and batch.base_sequence >= 0:
            state = log.producers.get(batch.producer_id)
            last = (batch.base_sequence + batch.last_offset_delta) % _SEQUENCE_WRAP
            if state is not None and state.epoch == batch.producer_epoch:
                for first_seq, last_seq, offset, max_ts in state.recent:
                    if (first_seq, last_seq) == (batch.base_sequence, last):
                        # A retry: acknowledged again with the original offset, and
                        # Kafka reports the original batch's timestamp as append time.
                        resp.base_offset, resp.log_append_time_ms = offset, max_ts
                        resp.log_start_offset = log.log_start_offset
                        return
            if state is not None:
                if batch.producer_epoch < state.epoch:
                    resp.error_code = INVALID_PRODUCER_EPOCH
                    resp.log_start_offset = log.log_start_offset  # as Kafka fills it
                    return
                expected = (
                    0
                    if batch.producer_epoch > state.epoch
                    else (state.last_sequence + 1) % _SEQUENCE_WRAP
                )
                if batch.base_sequence != expected:
                    resp.error_code = OUT_OF_ORDER_SEQUENCE_NUMBER
                    resp.log_start_offset = log.log_start_offset  # as Kafka fills it
                    return
        raw = bytes(records or b"")
        stored = self._append_batch(topic, part, raw, now)
        resp.base_offset = stored.base_offset
        resp.log_start_offset = log.log_start_offset
        if topic.log_append_time:
            resp.log_append_time_ms = stored.max_timestamp

    # ------------------------------------------------------------ CreateTopics, DeleteTopics

    def _create_topics(
        self, ctx: _Context, request: CreateTopicsRequest, version: int, now: float
    ) -> Message:
        results = []
        names = [t.name for t in request.topics]
        answered: set[str] = set()
        for t in request.topics:
            if t.name in answered:
                continue  # Kafka answers a duplicated name once
            answered.add(t.name)
            res = CreatableTopicResult(name=t.name, error_message=None)
            results.append(res)
            error = ctx.forced(t.name)
            message: str | None = None
            if not error and names.count(t.name) > 1:
                error, message = INVALID_REQUEST, f"Duplicate topic name: {t.name}"
            if not error:
                error, message, plan = self._plan_topic(t)
            if error:
                res.error_code, res.error_message = error, message
                continue
            num, rf, assignments = plan
            configs = {c.name: c.value for c in t.configs if c.value is not None}
            res.num_partitions, res.replication_factor = num, rf
            res.configs = [
                CreatableTopicConfigs(name=k, value=v, config_source=1) for k, v in configs.items()
            ]
            if request.validate_only:
                res.topic_id = self._next_topic_id(t.name)  # Kafka names one even so
                continue
            topic = self.create_topic(t.name, num, configs=configs, assignments=assignments)
            res.topic_id = topic.topic_id
        return CreateTopicsResponse(topics=results)

    def _plan_topic(self, t: Any) -> tuple[int, str | None, tuple[int, int, list[list[int]]]]:
        """Kafka's CreateTopics checks; returns (error, message, (partitions, rf, replicas))."""
        nothing: tuple[int, int, list[list[int]]] = (0, 0, [])
        if t.name in self.topics:
            return TOPIC_ALREADY_EXISTS, f"Topic '{t.name}' already exists.", nothing
        bad_name = _topic_name_problem(t.name)
        if bad_name:
            return INVALID_TOPIC_EXCEPTION, bad_name, nothing
        alive = [n for n, b in sorted(self.brokers.items()) if b.alive]
        if t.assignments:
            if t.num_partitions != -1 or t.replication_factor != -1:
                message = (
                    "Both numPartitions or replicationFactor and replicasAssignments were set."
                )
                return INVALID_REQUEST, message, nothing
            by_index = {a.partition_index: list(a.broker_ids) for a in t.assignments}
            if sorted(by_index) != list(range(len(t.assignments))):
                return INVALID_REPLICA_ASSIGNMENT, "Partitions must be numbered 0 to N-1.", nothing
            replicas = [by_index[i] for i in range(len(by_index))]
            sizes = {len(r) for r in replicas}
            valid = all(
                r and len(set(r)) == len(r) and all(b in self.brokers for b in r) for r in replicas
            )
            if not valid or len(sizes) != 1:
                return INVALID_REPLICA_ASSIGNMENT, "Invalid replica assignment.", nothing
            return NONE, None, (len(replicas), sizes.pop(), replicas)
        num = t.num_partitions if t.num_partitions != -1 else self.default_partitions
        rf = t.replication_factor if t.replication_factor != -1 else min(3, len(alive))
        if num <= 0:
            return INVALID_PARTITIONS, "Number of partitions was set to an invalid value.", nothing
        if num > _MAX_NEW_PARTITIONS:
            return INVALID_PARTITIONS, f"The model creates at most {_MAX_NEW_PARTITIONS}.", nothing
        if not 1 <= rf <= len(alive):
            message = f"Unable to replicate the partition {rf} time(s): not enough brokers."
            return INVALID_REPLICATION_FACTOR, message, nothing
        replicas = [[alive[(i + j) % len(alive)] for j in range(rf)] for i in range(num)]
        return NONE, None, (num, rf, replicas)

    def _delete_topics(
        self, ctx: _Context, request: DeleteTopicsRequest, version: int, now: float
    ) -> Message:
        wanted: list[tuple[str | None, UUID]]
        if version >= 6:
            wanted = [(t.name, t.topic_id) for t in request.topics]
        else:
            wanted = [(name, _ZERO_UUID) for name in request.topic_names]
        results = []
        for name, topic_id in wanted:
            topic = self.topics.get(name) if name is not None else self.topic_by_id(topic_id)
            res = DeletableTopicResult(name=name, topic_id=topic_id)
            error = ctx.forced(name)
            if not error and topic is None:
                error = UNKNOWN_TOPIC_OR_PARTITION if name is not None else UNKNOWN_TOPIC_ID
            if error or topic is None:
                res.error_code = error
            else:
                res.name, res.topic_id = topic.name, topic.topic_id
                del self.topics[topic.name]
            results.append(res)
        self._wake(now)
        return DeleteTopicsResponse(responses=results)

    # ------------------------------------------------------------ Fetch

    def _fetch(
        self, ctx: _Context, request: FetchRequest, version: int, now: float
    ) -> Message | _FetchOp:
        use_ids = version >= 13
        session: _FetchSession | None = None
        incremental = False
        cache = self._sessions[ctx.node]
        top_level = ctx.forced(codes=_FETCH_TOP_LEVEL)
        if top_level:
            if top_level == FETCH_SESSION_ID_NOT_FOUND:
                cache.pop(request.session_id, None)  # as if the session had been evicted
            return FetchResponse(error_code=top_level)
        requested: list[_SessionPart] = []
        for t in request.topics:
            name = t.topic
            if use_ids:
                found = self.topic_by_id(t.topic_id)
                name = found.name if found is not None else ""
            for p in t.partitions:
                requested.append(
                    _SessionPart(
                        topic=name,
                        topic_id=t.topic_id,
                        partition=p.partition,
                        fetch_offset=p.fetch_offset,
                        current_leader_epoch=p.current_leader_epoch if version >= 9 else -1,
                        max_bytes=p.partition_max_bytes,
                        forced_error=ctx.forced(name, p.partition),
                    )
                )

        def key(part: _SessionPart) -> tuple[str | UUID, int]:
            return (part.topic_id if use_ids else part.topic, part.partition)

        if version >= 7:
            sid, epoch = request.session_id, request.session_epoch
            if epoch in (0, -1):
                if sid:
                    cache.pop(sid, None)
                if epoch == 0 and self.fetch_session_cache_size > 0:
                    while len(cache) >= self.fetch_session_cache_size:
                        cache.popitem(last=False)
                    self._session_counter += 1
                    session = _FetchSession(
                        self._session_counter, 1, OrderedDict((key(p), p) for p in requested)
                    )
                    cache[session.session_id] = session
            else:
                found_session = cache.get(sid)
                if found_session is None:
                    return FetchResponse(error_code=FETCH_SESSION_ID_NOT_FOUND)
                if found_session.epoch != epoch:
                    return FetchResponse(error_code=INVALID_FETCH_SESSION_EPOCH)
                session = found_session
                incremental = True
                cache.move_to_end(sid)
                session.epoch = epoch + 1 if epoch < 0x7FFFFFFF else 1
                for sp in requested:
                    old = session.parts.get(key(sp))
                    if old is not None:
                        sp.sent = old.sent
                    session.parts[key(sp)] = sp
                for forgotten in request.forgotten_topics_data:
                    for index in forgotten.partitions:
                        fkey: tuple[str | UUID, int] = (
                            (forgotten.topic_id, index) if use_ids else (forgotten.topic, index)
                        )
                        session.parts.pop(fkey, None)
                fresh = {id(sp) for sp in requested}
                for sp in session.parts.values():
                    if id(sp) not in fresh:
                        sp.forced_error = ctx.forced(sp.topic, sp.partition)
        parts = list(session.parts.values()) if incremental and session else requested
        op = _FetchOp(
            version=version,
            node=ctx.node,
            parts=parts,
            isolation=request.isolation_level,
            max_bytes=request.max_bytes,
            min_bytes=request.min_bytes,
            deadline=now + max(request.max_wait_ms, 0) / 1000.0,
            session=session,
            incremental=incremental,
        )
        if request.max_wait_ms <= 0 or not parts:
            response = self._fetch_complete(op, now, force=True)
            assert response is not None
            return response
        return op

    def _fetch_complete(self, op: _FetchOp, now: float, *, force: bool) -> FetchResponse | None:
        """Read every partition; None while the fetch should keep waiting."""
        limit = op.max_bytes
        min_one = True
        read_bytes = 0
        errors = False
        results: list[tuple[_SessionPart, PartitionData]] = []
        for part in op.parts:
            data = self._fetch_partition(op, part, min(part.max_bytes, limit), min_one)
            size = len(data.records or b"")
            if size:
                min_one = False
            limit = max(0, limit - size)
            read_bytes += size
            errors = errors or data.error_code != NONE
            results.append((part, data))
        if not force and not errors and read_bytes < op.min_bytes and now < op.deadline:
            return None
        endpoints: dict[int, FetchNodeEndpoint] = {}
        topics: list[FetchableTopicResponse] = []
        for part, data in results:
            sent = (data.high_watermark, data.last_stable_offset, data.log_start_offset)
            if op.incremental and op.session is not None:
                must = bool(data.records) or data.error_code != NONE or part.sent != sent
                part.sent = sent
                if data.records:
                    # Kafka rotates partitions that returned data to the back of the
                    # session, so the next fetch serves the others first.
                    for k, v in list(op.session.parts.items()):
                        if v is part:
                            op.session.parts.move_to_end(k)
                if not must:
                    continue
            elif op.session is not None:
                part.sent = sent
            leader = data.current_leader
            if leader.leader_id >= 0 and op.version >= 16:
                b = self.brokers[leader.leader_id]
                endpoints[b.node_id] = FetchNodeEndpoint(
                    node_id=b.node_id, host=b.host, port=b.port, rack=b.rack
                )
            if topics and (
                topics[-1].topic_id == part.topic_id
                if op.version >= 13
                else topics[-1].topic == part.topic
            ):
                topics[-1].partitions.append(data)
            else:
                topics.append(
                    FetchableTopicResponse(
                        topic=part.topic if op.version < 13 else "",
                        topic_id=part.topic_id,
                        partitions=[data],
                    )
                )
        return FetchResponse(
            session_id=op.session.session_id if op.session is not None else 0,
            responses=topics,
            node_endpoints=list(endpoints.values()),
        )

    def _fetch_error(
        self, op: _FetchOp, part: _SessionPart, error: int, state: PartitionState | None
    ) -> PartitionData:
        data = PartitionData(
            partition_index=part.partition,
            error_code=error,
            high_watermark=-1,
            last_stable_offset=-1,
            log_start_offset=-1,
            aborted_transactions=None,
            records=b"",
        )
        redirect = error in (NOT_LEADER_OR_FOLLOWER, FENCED_LEADER_EPOCH)
        if state is not None and redirect and state.leader >= 0 and op.version >= 16:
            data.current_leader = FetchLeader(
                leader_id=state.leader, leader_epoch=state.leader_epoch
            )
        if state is not None and error == OFFSET_OUT_OF_RANGE and self.out_of_range_offsets:
            log = state.log
            data.high_watermark = log.high_watermark
            data.last_stable_offset = log.last_stable_offset
            data.log_start_offset = log.log_start_offset
        return data

    def _fetch_partition(
        self, op: _FetchOp, part: _SessionPart, max_bytes: int, min_one: bool
    ) -> PartitionData:
        topic = self.topics.get(part.topic) if part.topic else None
        if part.forced_error:
            known = topic is not None and 0 <= part.partition < len(topic.partitions)
            state = topic.partitions[part.partition] if topic is not None and known else None
            return self._fetch_error(op, part, part.forced_error, state)
        if topic is None or (op.version >= 13 and topic.topic_id != part.topic_id):
            return self._fetch_error(
                op, part, UNKNOWN_TOPIC_ID if op.version >= 13 else UNKNOWN_TOPIC_OR_PARTITION, None
            )
        if not 0 <= part.partition < len(topic.partitions):
            return self._fetch_error(op, part, UNKNOWN_TOPIC_OR_PARTITION, None)
        state = topic.partitions[part.partition]
        error = self._check_replica(
            state, op.node, part.current_leader_epoch, follower_ok=op.version >= 11
        )
        if error:
            return self._fetch_error(op, part, error, state)
        log = state.log
        offset = part.fetch_offset
        if offset < log.log_start_offset or offset > log.log_end_offset:
            return self._fetch_error(op, part, OFFSET_OUT_OF_RANGE, state)
        upper = log.last_stable_offset if op.isolation == 1 else log.high_watermark
        if offset >= upper:
            records, bound = b"", upper
        else:
            records, bound = log.read(
                offset, max_bytes, upper, min_one=min_one, slice_cut=self.slice_fetches
            )
        aborted = None
        if op.isolation == 1:
            aborted = [
                AbortedTransaction(producer_id=a.producer_id, first_offset=a.first_offset)
                for a in (log.aborted_between(offset, bound) if records else [])
            ]
        return PartitionData(
            partition_index=part.partition,
            high_watermark=log.high_watermark,
            last_stable_offset=log.last_stable_offset,
            log_start_offset=log.log_start_offset,
            aborted_transactions=aborted,
            records=records,
        )


_HANDLERS: dict[int, Any] = {
    PRODUCE: ModelCluster._produce,
    FETCH: ModelCluster._fetch,
    LIST_OFFSETS: ModelCluster._list_offsets,
    METADATA: ModelCluster._metadata,
    API_VERSIONS: ModelCluster._api_versions,
    CREATE_TOPICS: ModelCluster._create_topics,
    DELETE_TOPICS: ModelCluster._delete_topics,
    OFFSET_FOR_LEADER_EPOCH: ModelCluster._offset_for_leader_epoch,
    **_model_admin.HANDLERS,
    **_model_producer.HANDLERS,
    **_model_group.HANDLERS,
    **_model_txn.HANDLERS,
}


# ----------------------------------------------------------------------------- connection


@dataclass(slots=True)
class _Pending:
    correlation_id: int
    api_key: int
    version: int
    response: Message | None
    fetch: _FetchOp | None
    release_at: float


class ModelConnection:
    """The broker's end of one client connection (made by :meth:`ModelCluster.accept`).

    Like Kafka, the broker reads the next request only after answering the
    previous one, so responses leave in request order and a parked fetch or a
    delayed response holds back everything behind it.  Feed bytes with
    :meth:`receive`, send what :meth:`data_to_send` returns, call
    :meth:`handle_timer` at :meth:`get_timer`.  When :attr:`closed` turns true
    the broker has hung up: deliver the last bytes, then tell the client the
    connection was lost.
    """

    def __init__(self, cluster: ModelCluster, node_id: int) -> None:
        self.cluster = cluster
        self.node_id = node_id
        self.closed = False
        self._frames = FrameBuffer(cluster.max_frame_size)
        self._inbox: list[bytes] = []
        self._current: _Pending | None = None
        self._out = bytearray()
        self._busy = False

    def receive(self, data: bytes, now: float) -> None:
        """Bytes from the client; complete requests are answered (drain :meth:`data_to_send`)."""
        if self.closed:
            return
        self.cluster._tick(now)
        self._frames.feed(data)
        try:
            while (payload := self._frames.next_frame()) is not None:
                self._inbox.append(payload)
        except RemoteProtocolError:
            self._server_close()
            return
        self._pump(now)

    def data_to_send(self) -> bytes:
        """Response bytes for the client, in order; clears the buffer."""
        out = bytes(self._out)
        self._out.clear()
        return out

    def get_timer(self) -> float | None:
        """When a held response is due (delay or fetch max_wait), or None."""
        cur = self._current
        if cur is None or self.closed:
            return None
        if cur.fetch is not None:
            return max(cur.fetch.deadline, cur.release_at)
        return cur.release_at

    def handle_timer(self, now: float) -> None:
        """Release what is due at *now*; drain :meth:`data_to_send` afterwards."""
        self.cluster._tick(now)
        self._pump(now)

    def close(self) -> None:
        """The client closed its socket."""
        self.closed = True
        self._current = None
        self._inbox.clear()
        self.cluster._forget(self)

    def _server_close(self) -> None:
        self.closed = True
        self._current = None
        self._inbox.clear()
        self.cluster._forget(self)

    def _pump(self, now: float) -> None:
        if self._busy or self.closed:
            return
        now = self.cluster._tick(now)  # the model's clock never runs backwards
        self._busy = True
        try:
            while not self.closed:
                cur = self._current
                if cur is not None:
                    if cur.fetch is not None:
                        done = self.cluster._fetch_complete(
                            cur.fetch, now, force=now >= cur.fetch.deadline
                        )
                        if done is None:
                            break
                        cur.response, cur.fetch = done, None
                    if now < cur.release_at:
                        break
                    assert cur.response is not None
                    self._out += frame(
                        protocol.encode_response(cur.response, cur.version, cur.correlation_id)
                    )
                    self._current = None
                    continue
                if not self._inbox:
                    break
                payload = self._inbox.pop(0)
                try:
                    self._current = self.cluster._handle(self, payload, now)
                except RemoteProtocolError:
                    self._server_close()
        finally:
            self._busy = False
