"""The producer core: accumulate records in batches, send them, report deliveries.

:class:`ProducerCore` wraps a :class:`ClientCore` and is driven the same way
(``commands``, ``connection_made``, ``data_received``, ``connection_lost``,
``get_timer``, ``handle_timer``).  The user side::

    token = core.send("topic", b"value", now, key=b"k")  # queued, never waits
    for command in core.commands(): ...                   # then execute commands
    for event in core.events():                           # Delivered / ProducerFailed
        ...
    core.flush(now)        # buffered batches go now; returns the last token to wait for
    core.close(now)        # no new records; pump until pending() == 0 (then it closes)
    core.abort(now)        # fail everything pending at once

``send`` returns an increasing int token; the outcome of each record comes
later in a :class:`Delivered` event (one per batch) naming its token.  Bad
input raises at once (:class:`RecordTooLargeError`,
:class:`ProducerClosedError`, :class:`LocalProtocolError`), and so does a
full buffer (:class:`BufferFullError`, nothing queued: wait for deliveries,
then send again).

Batches: one open batch per partition takes records until ``batch_size``
bytes; it may go out once full, once ``linger`` has passed since its first
record, or on ``flush``/``close``.  One Produce request per broker carries at
most one batch per partition, up to ``max_request_size``; at most
``max_in_flight`` requests are outstanding per broker.

Idempotence (on by default): the core gets a producer id with InitProducerId
before the first Produce, numbers each partition's batches with sequences,
and resends a batch with the same id, epoch and sequence after any failure,
so the broker drops duplicates.  A batch that goes out again waits until
nothing else of its partition is in flight, so retries keep the partition's
order; so does a partition's first batch under a producer id and epoch (a
broker without state for the producer takes any sequence).  An
OUT_OF_ORDER_SEQUENCE_NUMBER for a batch that
went out alone (a real gap: an earlier batch failed for good),
UNKNOWN_PRODUCER_ID or a failed batch that used a sequence bumps the epoch
(KIP-360): new batches wait, retries whose outcome is unknown finish, then
the producer takes the next epoch itself (a new id once epochs run out) and
every partition starts again at sequence 0.  Without idempotence a
partition has at most one request in flight, which keeps its order too.

Transactions: with a ``transactional_id`` the producer id comes from the
transaction coordinator, ``send`` needs an open transaction, and batches
wait until their partition is in it; :mod:`._transactions` holds that state
machine (``init_transactions``, ``begin_transaction``,
``send_offsets_to_transaction``, ``commit_transaction``, ``abort_transaction``;
outcomes as :class:`TransactionResult` events).

Timeouts: ``delivery_timeout`` bounds a batch from its creation to its
outcome (a batch in flight waits for its answer, itself bounded by the
client's ``request_timeout``); records whose topic has no metadata yet wait
at most ``max_block``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ._accumulator import BATCH_OVERHEAD, RECORD_OVERHEAD, Batch, PartitionQueue, TopicInfo
from ._client import ClientConfig, ClientCore, ClientOwner
from ._compression import codec_id_for
from ._connection import RequestFailed, Response
from ._errors import KafkaSansioError, LocalProtocolError
from ._events import ClientError
from ._group_events import OffsetAndMetadata
from ._messages.init_producer_id import InitProducerIdRequest, InitProducerIdResponse
from ._messages.produce import (
    PartitionProduceData,
    PartitionProduceResponse,
    ProduceRequest,
    ProduceResponse,
    TopicProduceData,
)
from ._partitioner import Partitioner, murmur2, next_sticky_partition
from ._producer_events import (
    BufferFullError,
    Delivered,
    DeliveryTimeoutError,
    ProducerClosedError,
    ProducerEvent,
    ProducerFailed,
    RecordTooLargeError,
)
from ._transactions import TransactionAbortedError, Transactions, TransactionState
from ._types import TopicPartition
from .errors import UnknownTopicOrPartitionError, exception_for_code

__all__ = ["ProducerConfig", "ProducerCore"]

_INIT_PRODUCER_ID = 22
_MAX_EPOCH = 32767
_SEQUENCE_WRAP = 1 << 31

# Produce error codes that need particular handling.
_UNKNOWN_TOPIC_OR_PARTITION = 3
_DUPLICATE_SEQUENCE_NUMBER = 46
_OUT_OF_ORDER_SEQUENCE_NUMBER = 45
_INVALID_PRODUCER_EPOCH = 47
_UNKNOWN_PRODUCER_ID = 59
_PRODUCER_FENCED = 90
_CLUSTER_AUTHORIZATION_FAILED = 31
_TRANSACTIONAL_ID_AUTHORIZATION_FAILED = 53
#: Errors after which the partition's leader may have moved: refresh metadata.
_REFRESH = frozenset({3, 5, 6, 9, 13, 14, 15, 74, 75, 100, 103})
#: Metadata topic errors that no waiting cures (TOPIC_AUTHORIZATION_FAILED,
#: INVALID_TOPIC_EXCEPTION): records for the topic fail at once.
_TOPIC_FATAL = frozenset({29, 17})
#: InitProducerId errors that end the producer.
_FATAL_INIT = frozenset({_CLUSTER_AUTHORIZATION_FAILED, _TRANSACTIONAL_ID_AUTHORIZATION_FAILED})

_OPEN, _CLOSING, _CLOSED = 0, 1, 2
#: Keys whose hash is remembered before the cache starts over.
_HASH_CACHE = 100_000


@dataclass(frozen=True, slots=True)
class ProducerConfig:
    """Producer settings (seconds for durations; defaults follow the Java producer 4.x).

    ``acks``: 0, 1 or -1 (all in-sync replicas).  ``compression``: "none",
    "gzip", "snappy", "lz4", "zstd" (or a codec id).  ``partitioner``
    replaces the keyed/keyless rules (see :mod:`._partitioner`).  The request
    timeout, retry backoff and connection settings live in ``client``.
    """

    client: ClientConfig = field(default_factory=ClientConfig)
    acks: int = -1
    linger: float = 0.005
    batch_size: int = 16_384
    buffer_memory: int = 33_554_432
    max_request_size: int = 1_048_576
    delivery_timeout: float = 120.0
    max_block: float = 60.0
    max_in_flight: int = 5
    enable_idempotence: bool = True
    compression: str | int = "none"
    partitioner: Partitioner | None = None
    transaction_timeout: float = 60.0
    #: Turns transactions on (see :mod:`._transactions`); needs idempotence.
    transactional_id: str | None = None

    def __post_init__(self) -> None:
        if self.acks not in (-1, 0, 1):
            raise ValueError("acks must be -1 (all), 0 or 1")
        if self.enable_idempotence and self.acks != -1:
            raise ValueError("idempotence needs acks=-1 (all); set enable_idempotence=False")
        if self.enable_idempotence and not 1 <= self.max_in_flight <= 5:
            raise ValueError("idempotence needs 1 <= max_in_flight <= 5")
        if self.transactional_id is not None and not self.enable_idempotence:
            raise ValueError("transactions need idempotence (acks=-1, enable_idempotence=True)")
        if self.transactional_id == "":
            raise ValueError("transactional_id must not be empty")
        if self.max_in_flight < 1:
            raise ValueError("max_in_flight must be at least 1")
        if self.batch_size < 1 or self.buffer_memory < 1 or self.max_request_size < 1:
            raise ValueError("batch_size, buffer_memory and max_request_size must be positive")
        if self.linger < 0 or self.delivery_timeout <= 0 or self.max_block < 0:
            raise ValueError("linger and max_block must be >= 0, delivery_timeout > 0")
        try:
            codec_id_for(self.compression)
        except LocalProtocolError as exc:
            raise ValueError(str(exc)) from None


class _Waiting:
    """Records whose topic has no metadata yet, in send order."""

    __slots__ = ("deadline", "flushed", "records")

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        #: flush() or close() came while they waited: their batches go at once.
        self.flushed = False
        # (token, key, value, headers, timestamp, partition or None, bytes reserved)
        self.records: list[tuple[int, bytes | None, bytes | None, Any, int, int | None, int]] = []


def _as_bytes(data: object, what: str) -> bytes:
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data)
    raise LocalProtocolError(f"the record {what} must be bytes or None, not {type(data).__name__}")


def _check_headers(headers: Any) -> tuple[tuple[tuple[str, bytes | None], ...], int]:
    """Headers as a tuple of ``(str, bytes | None)`` pairs, and their size estimate."""
    out = []
    size = 5
    try:
        items = list(headers)
    except TypeError:
        raise LocalProtocolError("headers must be an iterable of (key, value) pairs") from None
    for item in items:
        if not isinstance(item, tuple) or len(item) != 2:
            raise LocalProtocolError("each header must be a (str, bytes | None) pair")
        hkey, hval = item
        if not isinstance(hkey, str):
            raise LocalProtocolError("a header key must be a str")
        if hval is not None:
            hval = _as_bytes(hval, "header value")
        size += 10 + len(hkey.encode("utf-8", "surrogateescape")) + (len(hval) if hval else 0)
        out.append((hkey, hval))
    return tuple(out), size


class ProducerCore(ClientOwner):
    """A Kafka producer without I/O (see the module docstring).

    ``random`` returns floats in ``[0, 1)`` (backoff jitter, sticky
    partitions).  ``wall_offset`` is added to ``now`` to get the wall-clock
    time (seconds since the epoch) for record timestamps: a driver whose
    ``now`` is a monotonic clock passes ``time.time() - time.monotonic()``.
    Every method that takes ``now`` may queue commands: drain
    :meth:`commands` after each call.
    """

    def __init__(
        self, config: ProducerConfig, random: Callable[[], float], *, wall_offset: float = 0.0
    ) -> None:
        self.config = config
        self.wall_offset = wall_offset
        self._random = random
        self.client = ClientCore(config.client, random)
        self.client.add_metadata_listener(self._on_metadata)
        self._codec = codec_id_for(config.compression)
        self._batch_size = config.batch_size
        self._buffer_memory = config.buffer_memory
        self._partitioner = config.partitioner
        #: key -> murmur2 hash (positive), bounded: keys repeat in most workloads.
        self._hashes: dict[bytes, int] = {}
        self._idempotent = config.enable_idempotence
        self._per_partition_in_flight = config.max_in_flight if self._idempotent else 1
        self._max_record = min(config.max_request_size, config.buffer_memory) - BATCH_OVERHEAD
        self._events: list[ProducerEvent | ClientError] = []
        self._topics: dict[str, TopicInfo] = {}
        self._wanted_topics: set[str] = set()
        self._queues: dict[TopicPartition, PartitionQueue] = {}
        #: Queues that hold batches to send.
        self._active: dict[PartitionQueue, None] = {}
        self._waiting: dict[str, _Waiting] = {}
        self._waiting_nodes: set[int] = set()
        self._next_token = 1
        #: Records reported (Delivered) so far; pending() is the rest of the tokens.
        self._reported = 0
        self._buffered = 0
        self._in_flight_batches = 0
        self._state = _OPEN
        self._fatal: KafkaSansioError | None = None
        self._now = 0.0
        self._updating = False
        self._update_again = False
        # Idempotence.
        self.producer_id = -1
        self.producer_epoch = -1
        self._pid_in_flight = False
        self._pid_retry_at = 0.0
        self._pid_failures = 0
        self._bump_needed = False
        self._txn = (
            None
            if config.transactional_id is None
            else Transactions(self, config.transactional_id, config.transaction_timeout)
        )

    # ------------------------------------------------------------ driver side

    def get_timer(self) -> float | None:
        """The next absolute deadline (linger, retry backoff, timeouts), or None."""
        deadlines: list[float] = []
        t = self.client.get_timer()
        if t is not None:
            deadlines.append(t)
        if self._state == _CLOSED:
            return min(deadlines) if deadlines else None
        linger = self.config.linger
        for pq in self._active:
            head = pq.queue[0]
            deadlines.append(head.deadline)
            if head.retry_at > self._now:
                deadlines.append(head.retry_at)
            elif not head.closed and head.created + linger > self._now:
                deadlines.append(head.created + linger)
        for waiting in self._waiting.values():
            deadlines.append(waiting.deadline)
        for node_id in self._waiting_nodes:
            at = self.client.reconnect_at(node_id)
            if at is not None and at > self._now:
                deadlines.append(at)
        if self._pid_retry_at > self._now:
            deadlines.append(self._pid_retry_at)
        if self._txn is not None and self._txn._retry_at > self._now:
            deadlines.append(self._txn._retry_at)
        return min(deadlines) if deadlines else None

    def handle_timer(self, now: float) -> None:
        """Service every deadline that has passed."""
        self.client.handle_timer(now)
        self._update(now)

    def events(self) -> list[ProducerEvent | ClientError]:
        """Events since the last call, oldest first.

        :class:`Delivered` and :class:`ProducerFailed`, plus
        :class:`~kafka_sansio.ClientError` for connection-level failures such
        as a refused authentication.
        """
        events, self._events = self._events, []
        return events

    # ------------------------------------------------------------ user side

    def send(
        self,
        topic: str,
        value: bytes | None,
        now: float,
        key: bytes | None = None,
        partition: int | None = None,
        headers: Sequence[tuple[str, bytes | None]] = (),
        timestamp_ms: int | None = None,
    ) -> int:
        """Queue one record; return its token (an int, increasing).

        ``key``, ``partition``, ``headers`` and ``timestamp_ms`` may be given by
        position too (in that order), which saves adapters a keyword call.

        The record's outcome arrives as a :class:`Delivered` event naming the
        token.  Raises at once, queueing nothing: :class:`ProducerClosedError`
        after :meth:`close`/:meth:`abort`, the fatal error after a
        :class:`ProducerFailed`, :class:`RecordTooLargeError`,
        :class:`BufferFullError` (retry once :meth:`buffer_available` allows),
        :class:`LocalProtocolError` for a value, key, header, partition or
        timestamp of the wrong kind.  Drain :meth:`commands` afterwards.
        """
        if self._state != _OPEN or self._txn is not None:
            self._check_send()
        if type(value) is bytes:
            size = RECORD_OVERHEAD + len(value)
        elif value is None:
            size = RECORD_OVERHEAD
        else:
            value = _as_bytes(value, "value")
            size = RECORD_OVERHEAD + len(value)
        if key is not None:
            if type(key) is not bytes:
                key = _as_bytes(key, "key")
            size += len(key)
        if headers:
            headers, hsize = _check_headers(headers)
            size += hsize
        else:
            headers = ()
        if size > self._max_record:
            raise RecordTooLargeError(size + BATCH_OVERHEAD, self._max_record + BATCH_OVERHEAD)
        buffered = self._buffered
        if buffered + size + BATCH_OVERHEAD > self._buffer_memory:
            raise BufferFullError(size + BATCH_OVERHEAD, self._buffer_memory - buffered)
        if timestamp_ms is None:
            ts = int((now + self.wall_offset) * 1000)
        elif type(timestamp_ms) is not int or timestamp_ms < 0:
            raise LocalProtocolError("timestamp_ms must be an int >= 0 (ms since the epoch)")
        else:
            ts = timestamp_ms
        info = self._topics.get(topic)
        if partition is not None:
            if type(partition) is not int or partition < 0:
                raise LocalProtocolError("partition must be an int >= 0")
            if info is not None and partition >= info.count:
                raise LocalProtocolError(f"topic {topic!r} has no partition {partition}")
        token = self._next_token
        self._next_token = token + 1
        if info is None or (self._waiting and topic in self._waiting):
            self._wait_for_metadata(topic, token, key, value, headers, ts, partition, size, now)
            return token
        if partition is None:
            if self._partitioner is not None:
                partition = self._custom_partition(topic, key, info)
            elif key is not None:
                h = self._hashes.get(key)
                if h is None:
                    if len(self._hashes) >= _HASH_CACHE:
                        self._hashes.clear()
                    h = self._hashes[key] = murmur2(key) & 0x7FFFFFFF
                partition = h % info.count
            else:
                partition = info.sticky
                if partition < 0:
                    partition = info.sticky = next_sticky_partition(
                        info.count, info.available, -1, self._random
                    )
                    info.sticky_bytes = 0
                info.sticky_bytes += size
                if info.sticky_bytes >= self._batch_size:
                    info.sticky = next_sticky_partition(
                        info.count, info.available, partition, self._random
                    )
                    info.sticky_bytes = 0
        pq = info.queues[partition]
        q = pq.queue
        if q:
            # The common case inline: the open batch takes the record.
            batch = q[-1]
            filled = batch.size + size
            if filled <= self._batch_size and not batch.closed:
                # Flat fields: no object per record outlives this call.
                batch.fields += (ts, key, value, headers)
                batch.tokens.append(token)
                batch.size = filled
                self._buffered = buffered + size
                if filled >= self._batch_size:
                    batch.closed = True
                    self._update(now)
                return token
        self._append(pq, token, key, value, headers, ts, size, now)
        return token

    def flush(self, now: float) -> int:
        """Let every buffered batch go now (linger is ignored for them).

        Returns the last token issued so far: the driver pumps I/O until
        every token up to it is reported (simply until :meth:`pending` is 0
        when nobody sends meanwhile).  Records whose topic has no metadata
        yet go as soon as it arrives.
        """
        for pq in self._active:
            for batch in pq.queue:
                batch.closed = True
        for waiting in self._waiting.values():
            waiting.flushed = True
        self._update(now)
        return self._next_token - 1

    # ------------------------------------------------------------ transactions

    def init_transactions(self, now: float) -> int:
        """Get the producer id and epoch for ``transactional_id`` (fencing older producers).

        Returns a token; a :class:`TransactionResult` with it reports the
        outcome.  Call once, before the first :meth:`begin_transaction`.
        """
        token = self._transactions().init()
        self._update(now)
        return token

    def begin_transaction(self) -> None:
        """Open a transaction: :meth:`send` is refused outside one.  Local only."""
        self._transactions().begin()

    def send_offsets_to_transaction(
        self,
        offsets: Mapping[TopicPartition, OffsetAndMetadata | int],
        group_id: str,
        now: float,
        *,
        generation_id: int = -1,
        member_id: str = "",
        group_instance_id: str | None = None,
    ) -> int:
        """Commit consumed ``offsets`` of ``group_id`` with the transaction (read-process-write).

        ``offsets`` are the next offsets to read.  Pass the consumer's
        generation and member id so the group coordinator can refuse a
        member that lost its partitions.  Returns a token for the
        :class:`TransactionResult`.
        """
        token = self._transactions().send_offsets(
            offsets, group_id, generation_id, member_id, group_instance_id
        )
        self._update(now)
        return token

    def commit_transaction(self, now: float) -> int:
        """Send every buffered record, then commit; returns a token for the outcome.

        A transaction in which anything failed cannot commit: the outcome
        carries the error, and only :meth:`abort_transaction` is left.
        """
        token = self._transactions().commit()
        self.flush(now)
        return token

    def abort_transaction(self, now: float) -> int:
        """Fail the records not sent yet, then abort; returns a token for the outcome."""
        token = self._transactions().abort()
        self._update(now)
        return token

    def _transactions(self) -> Transactions:
        if self._txn is None:
            raise LocalProtocolError("transactions need a transactional_id")
        if self._state != _OPEN:
            self._refuse()
        return self._txn

    def pending(self) -> int:
        """Records sent and not yet reported in a :class:`Delivered` event."""
        return self._next_token - 1 - self._reported

    def buffer_available(self) -> int:
        """Bytes of ``buffer_memory`` free now (a record needs its size plus 61)."""
        return self.config.buffer_memory - self._buffered

    def buffered_bytes(self) -> int:
        """Bytes held by records not yet resolved (estimate)."""
        return self._buffered

    def partitions_for(self, topic: str) -> int | None:
        """The partition count of ``topic`` if its metadata is known."""
        info = self._topics.get(topic)
        return None if info is None else info.count

    @property
    def closed(self) -> bool:
        """True once the producer has shut its connections (after close or abort)."""
        return self._state == _CLOSED

    def close(self, now: float) -> None:
        """Stop taking records; buffered ones go out now.

        The driver pumps until :meth:`pending` is 0 (or its own timeout, then
        :meth:`abort`); the core then closes its connections by itself.
        """
        if self._state == _OPEN:
            self._state = _CLOSING
            if self._txn is not None and self._txn.state in (
                TransactionState.IN_TRANSACTION,
                TransactionState.ABORTABLE_ERROR,
            ):
                self._txn.abort()  # as the Java producer does: an open transaction is aborted
        self.flush(now)
        self._maybe_finish_close()

    def abort(self, now: float, error: KafkaSansioError | None = None) -> None:
        """Fail every pending record (with ``error`` or :class:`ProducerClosedError`) and close.

        Records in flight may still be written by the broker; their reports
        say so only through the error.  The core is unusable afterwards.
        """
        if self._state == _CLOSED:
            return
        self._state = _CLOSED
        self._fail_everything(error or ProducerClosedError("the producer was aborted"))
        self.client.close()

    # ------------------------------------------------------------ accumulate

    def _check_send(self) -> None:
        """send's checks beyond the common case: closed, failed, or outside a transaction."""
        if self._state != _OPEN:
            self._refuse()
        if self._txn is not None:
            self._txn.check_send()

    def _refuse(self) -> None:
        if self._fatal is not None:
            raise self._fatal
        raise ProducerClosedError("the producer is closed")

    def _custom_partition(self, topic: str, key: bytes | None, info: TopicInfo) -> int:
        assert self.config.partitioner is not None
        partition = self.config.partitioner(topic, key, info.count, info.available)
        if type(partition) is not int or not 0 <= partition < info.count:
            raise LocalProtocolError(
                f"the partitioner returned {partition!r} for a topic of {info.count} partitions"
            )
        return partition

    def _append(
        self,
        pq: PartitionQueue,
        token: int,
        key: bytes | None,
        value: bytes | None,
        headers: Any,
        ts: int,
        size: int,
        now: float,
    ) -> None:
        q = pq.queue
        batch = q[-1] if q else None
        new_batch = False
        full = False
        if batch is None or batch.closed or batch.size + size > self.config.batch_size:
            if batch is not None and not batch.closed:
                batch.closed = True
                full = True
            batch = Batch(pq.tp, pq.batches_created, now, now + self.config.delivery_timeout)
            pq.batches_created += 1
            q.append(batch)
            self._active[pq] = None
            self._buffered += BATCH_OVERHEAD
            new_batch = True
            if self._txn is not None:
                self._txn.add_partition(pq.tp)
        batch.fields += (ts, key, value, headers)
        batch.tokens.append(token)
        batch.size += size
        self._buffered += size
        if batch.size >= self.config.batch_size:
            batch.closed = True
            full = True
        if full or (new_batch and self.config.linger == 0):
            self._update(now)

    def _wait_for_metadata(
        self,
        topic: str,
        token: int,
        key: bytes | None,
        value: bytes | None,
        headers: Any,
        ts: int,
        partition: int | None,
        size: int,
        now: float,
    ) -> None:
        # A waiting record holds room for a batch of its own, so that placing
        # it later can never take the buffer past its bound.
        reserved = size + BATCH_OVERHEAD
        self._buffered += reserved
        waiting = self._waiting.get(topic)
        if waiting is not None:
            waiting.records.append((token, key, value, headers, ts, partition, reserved))
            return
        waiting = self._waiting[topic] = _Waiting(now + self.config.max_block)
        waiting.records.append((token, key, value, headers, ts, partition, reserved))
        if topic not in self._wanted_topics:
            self._wanted_topics.add(topic)
            self.client.set_topics(self._wanted_topics, now)
        self._update(now)

    def _on_metadata(self, now: float) -> None:
        """A metadata answer arrived: refresh partition counts and leaders."""
        meta = self.client.metadata
        counts: dict[str, list[int]] = {}
        available: dict[str, list[int]] = {}
        for tp, pmeta in meta.partitions.items():
            if tp.topic in self._wanted_topics:
                counts.setdefault(tp.topic, []).append(tp.partition)
                if pmeta.leader >= 0:
                    available.setdefault(tp.topic, []).append(tp.partition)
        for topic, parts in counts.items():
            count = max(parts) + 1
            info = self._topics.get(topic)
            if info is None:
                info = self._topics[topic] = TopicInfo(count, [], [])
            info.count = count
            info.available = sorted(available.get(topic, ()))
            while len(info.queues) < count:
                tp = TopicPartition(topic, len(info.queues))
                pq = self._queues.get(tp)
                if pq is None:
                    pq = self._queues[tp] = PartitionQueue(tp)
                info.queues.append(pq)
            if info.sticky not in info.available:
                info.sticky = -1

    def _place_waiting(self, now: float) -> None:
        """Records whose topic metadata arrived go to their partitions, in send order."""
        for topic in [t for t in self._waiting if t in self._topics]:
            waiting = self._waiting.pop(topic)
            info = self._topics[topic]
            failed: list[int] = []
            for token, key, value, headers, ts, partition, reserved in waiting.records:
                self._buffered -= reserved
                size = reserved - BATCH_OVERHEAD
                if partition is None:
                    try:
                        if self.config.partitioner is not None:
                            partition = self._custom_partition(topic, key, info)
                        elif key is not None:
                            partition = (murmur2(key) & 0x7FFFFFFF) % info.count
                        else:
                            if info.sticky < 0:
                                info.sticky = next_sticky_partition(
                                    info.count, info.available, -1, self._random
                                )
                            partition = info.sticky
                    except LocalProtocolError:
                        partition = -1
                if not 0 <= partition < info.count:
                    failed.append(token)
                    continue
                self._append(info.queues[partition], token, key, value, headers, ts, size, now)
            if waiting.flushed:
                for pq in info.queues:
                    for batch in pq.queue:
                        batch.closed = True
            if failed:
                error = LocalProtocolError(f"no such partition (or partitioner failure) in {topic!r}")
                self._report(TopicPartition(topic, -1), failed, -1, -1, error)
                if self._txn is not None:
                    self._txn.batch_failed(error)

    # ------------------------------------------------------------ the engine

    def _update(self, now: float) -> None:
        """Send whatever the current state calls for.  Runs after every input."""
        if self._state == _CLOSED:
            return
        if self._updating:
            self._update_again = True  # called from within: the running pass goes round again
            return
        self._updating = True
        try:
            self._update_again = True
            while self._update_again and self._state != _CLOSED:
                self._update_again = False
                self._update_once(now)
        finally:
            self._updating = False
        self._maybe_finish_close()

    def _update_once(self, now: float) -> None:
        if now > self._now:
            self._now = now
        self._waiting_nodes.clear()
        self.client.maybe_update_metadata(now)
        if self._waiting:
            self._place_waiting(now)
            self._expire_waiting(now)
        self._expire_batches(now)
        if self._txn is not None:
            if self._state == _CLOSING and self._txn.state in (
                TransactionState.IN_TRANSACTION,
                TransactionState.ABORTABLE_ERROR,
            ):
                self._txn.abort()  # closing: a transaction that cannot commit is aborted
            self._txn.update(now)
        elif self._idempotent:
            self._maybe_init_producer_id(now)
        self._drain(now)
        if self.client.errors:
            for error in self.client.errors:
                self._events.append(ClientError(error))
            self.client.errors.clear()

    def _maybe_finish_close(self) -> None:
        if self._state == _CLOSING and self.pending() == 0 and not self._txn_ending():
            self._state = _CLOSED
            self.client.close()

    def _backoff(self, attempts: int) -> float:
        return self.config.client.retry_backoff.delay(attempts, self._random())

    def _expire_waiting(self, now: float) -> None:
        errors = self.client.metadata.topic_errors
        for topic in [
            t
            for t, w in self._waiting.items()
            if now >= w.deadline or errors.get(t) in _TOPIC_FATAL
        ]:
            waiting = self._waiting.pop(topic)
            for record in waiting.records:
                self._buffered -= record[6]
            error: KafkaSansioError
            code = errors.get(topic)
            if code in _TOPIC_FATAL:
                error = exception_for_code(code, f"topic {topic!r}")
            elif code == _UNKNOWN_TOPIC_OR_PARTITION:
                error = UnknownTopicOrPartitionError(
                    f"topic {topic!r} does not exist (not in metadata after {self.config.max_block} s)"
                )
            else:
                error = DeliveryTimeoutError(
                    f"topic {topic!r} not in metadata after {self.config.max_block} s"
                )
            self._report(TopicPartition(topic, -1), [r[0] for r in waiting.records], -1, -1, error)
            if self._txn is not None:
                self._txn.batch_failed(error)  # lost records: the transaction cannot commit

    def _expire_batches(self, now: float) -> None:
        for pq in list(self._active):
            q = pq.queue
            while q and now >= q[0].deadline:
                batch = q.popleft()
                self._fail(
                    batch,
                    DeliveryTimeoutError(
                        f"{len(batch.tokens)} records for {pq.tp} not acknowledged within "
                        f"delivery_timeout ({self.config.delivery_timeout} s)",
                        maybe_written=batch.maybe_written,
                    ),
                )
                if batch.sequence >= 0 and not batch.maybe_written:
                    # Its sequence was used and will never be filled.
                    self._bump_needed = True
            if not q:
                self._active.pop(pq, None)

    def _sendable(self, pq: PartitionQueue, now: float) -> bool:
        batch = pq.queue[0]
        if not batch.closed and now < batch.created + self.config.linger:
            return False
        if now < batch.retry_at or len(pq.in_flight) >= self._per_partition_in_flight:
            return False
        if batch.sequence >= 0 and pq.in_flight:
            return False  # a retry goes out alone, so it cannot overtake anything
        if self._txn is not None and not self._txn.sendable(pq.tp):
            return False
        if self._idempotent:
            if self.producer_id < 0 or self._pid_in_flight:
                return False
            if pq.in_flight and pq.acked_for != (self.producer_id, self.producer_epoch):
                return False  # the broker may hold no state for us yet: one at a time
            if self._bump_needed and not (batch.maybe_written and batch.sequence >= 0):
                return False
        return True

    def _drain(self, now: float) -> None:
        if not self._active:
            return
        meta = self.client.metadata
        by_node: dict[int, list[PartitionQueue]] = {}
        for pq in self._active:
            if not self._sendable(pq, now):
                continue
            leader = meta.leader(pq.tp)
            if leader is None:
                self.client.request_metadata(now)
                continue
            by_node.setdefault(leader, []).append(pq)
        for node_id, pqs in by_node.items():
            if not self.client.node_ready(node_id):
                self.client.ensure_connected(node_id, now)
                self._waiting_nodes.add(node_id)
                continue
            while pqs and self.client.in_flight(node_id) < self.config.max_in_flight:
                pqs = self._send_request(node_id, pqs, now)

    def _send_request(
        self, node_id: int, pqs: list[PartitionQueue], now: float
    ) -> list[PartitionQueue]:
        """Send one Produce request to ``node_id``; return the queues that have more to send."""
        limit = self.config.max_request_size
        total = 0
        sent: list[tuple[PartitionQueue, Batch]] = []
        topics: dict[str, list[PartitionProduceData]] = {}
        rest: list[PartitionQueue] = []
        for pq in pqs:
            batch = pq.queue[0]
            if sent and total + batch.size > limit:
                rest.append(pq)
                continue
            pq.queue.popleft()
            batch.closed = True
            if self._idempotent:
                if batch.sequence < 0:
                    batch.sequence = pq.next_sequence
                    pq.next_sequence = (pq.next_sequence + len(batch.tokens)) % _SEQUENCE_WRAP
                data = batch.encode(
                    self._codec,
                    self.producer_id,
                    self.producer_epoch,
                    batch.sequence,
                    self._txn is not None,
                )
            else:
                data = batch.encode(self._codec, -1, -1, -1)
            batch.sent_alone = not pq.in_flight
            pq.in_flight.append(batch)
            self._in_flight_batches += 1
            total += len(data)
            topics.setdefault(pq.tp.topic, []).append(
                PartitionProduceData(index=pq.tp.partition, records=data)
            )
            sent.append((pq, batch))
            if not pq.queue:
                self._active.pop(pq, None)
            elif self._sendable(pq, now):
                rest.append(pq)
        request = ProduceRequest(
            transactional_id=self.config.transactional_id,
            acks=self.config.acks,
            timeout_ms=int(self.config.client.request_timeout * 1000),
            topic_data=[TopicProduceData(name=t, partition_data=ps) for t, ps in topics.items()],
        )

        def handler(
            result: Response | RequestFailed,
            now: float,
            sent: list[tuple[PartitionQueue, Batch]] = sent,
        ) -> None:
            self._on_produce(sent, result, now)

        self.client.send(node_id, request, now, handler, expect_response=self.config.acks != 0)
        return rest

    # ------------------------------------------------------------ answers

    def _on_produce(
        self,
        sent: list[tuple[PartitionQueue, Batch]],
        result: Response | RequestFailed,
        now: float,
    ) -> None:
        # An answer inside an update pass (acks=0 answers as soon as the bytes
        # are queued) frees room: that pass must look again.
        self._update_again = True
        for pq, batch in sent:
            if batch in pq.in_flight:
                pq.in_flight.remove(batch)
                self._in_flight_batches -= 1
        live = [(pq, b) for pq, b in sent if not b.done]
        if isinstance(result, RequestFailed) or (
            result.response is not None and not isinstance(result.response, ProduceResponse)
        ):
            written = result.written if isinstance(result, RequestFailed) else True
            for pq, batch in live:
                batch.maybe_written = batch.maybe_written or written
                self._retry(pq, batch, now)
            self.client.request_metadata(now)
            return
        response = result.response
        if response is None:  # acks=0: nothing comes back
            for _, batch in live:
                self._succeed(batch, -1, -1)
            return
        assert isinstance(response, ProduceResponse)
        answers: dict[TopicPartition, PartitionProduceResponse] = {}
        for topic in response.responses:
            for r in topic.partition_responses:
                answers[TopicPartition(topic.name, r.index)] = r
        for pq, batch in live:
            answer = answers.get(pq.tp)
            if answer is None:
                self._retry(pq, batch, now)
                continue
            code = answer.error_code
            if code == 0 or code == _DUPLICATE_SEQUENCE_NUMBER:
                if batch.sequence >= 0:
                    pq.acked_for = batch.encoded_for[:2]
                self._succeed(batch, answer.base_offset, answer.log_append_time_ms)
            else:
                self._on_partition_error(pq, batch, code, answer.error_message, now)

    def _on_partition_error(
        self, pq: PartitionQueue, batch: Batch, code: int, message: str | None, now: float
    ) -> None:
        if code == _OUT_OF_ORDER_SEQUENCE_NUMBER:
            # The broker holds nothing at this sequence: no attempt was written.
            batch.maybe_written = False
        if code in _REFRESH:
            self.client.request_metadata(now)
        if self._txn is not None and code in (
            _OUT_OF_ORDER_SEQUENCE_NUMBER,
            _UNKNOWN_PRODUCER_ID,
            _INVALID_PRODUCER_EPOCH,
        ):
            if code == _OUT_OF_ORDER_SEQUENCE_NUMBER and not batch.sent_alone:
                self._retry(pq, batch, now)  # an earlier batch in flight failed first: not a gap
                return
            error = exception_for_code(code, message)
            self._fail(batch, error)
            self._txn.bump_after_abort = True  # the abort is followed by a new epoch
            if code == _INVALID_PRODUCER_EPOCH:
                # The leader has seen a newer epoch: the coordinator bumped it and ended
                # the transaction, timing it out or fencing us.  The abort then claims
                # the epoch back with InitProducerId alone (KIP-588); a producer that
                # was fenced is told PRODUCER_FENCED there.
                self._txn.ended_by_coordinator = True
            return
        if self._idempotent and code in (
            _OUT_OF_ORDER_SEQUENCE_NUMBER,
            _UNKNOWN_PRODUCER_ID,
            _INVALID_PRODUCER_EPOCH,
        ):
            if code != _OUT_OF_ORDER_SEQUENCE_NUMBER or batch.sent_alone:
                # A real gap, or the broker forgot us: start a new epoch.
                self._bump_needed = True
            self._retry(pq, batch, now)
            return
        error = exception_for_code(code, message)
        if code in (_PRODUCER_FENCED, _CLUSTER_AUTHORIZATION_FAILED, _TRANSACTIONAL_ID_AUTHORIZATION_FAILED):
            self._fail(batch, error)
            self._fail_fatally(error)
            return
        if error.retriable:
            self._retry(pq, batch, now)
            return
        self._fail(batch, error)
        if self._idempotent and batch.sequence >= 0:
            self._bump_needed = True  # its sequence will never be filled

    def _retry(self, pq: PartitionQueue, batch: Batch, now: float) -> None:
        if self._txn is not None and self._txn.state in (
            TransactionState.ABORTING,
            TransactionState.ABORTABLE_ERROR,
        ):
            # The transaction is over for these records: no second attempt.
            self._fail(batch, TransactionAbortedError("the transaction was aborted"))
            return
        batch.retry_at = now + self._backoff(batch.attempts)
        batch.attempts += 1
        pq.requeue(batch)
        self._active[pq] = None

    def _succeed(self, batch: Batch, base_offset: int, timestamp_ms: int) -> None:
        self._finish(batch)
        self._report(batch.tp, batch.tokens, base_offset, timestamp_ms, None)

    def _fail(self, batch: Batch, error: KafkaSansioError) -> None:
        self._finish(batch)
        self._report(batch.tp, batch.tokens, -1, -1, error, batch.maybe_written)
        if self._txn is not None:
            if batch.sequence >= 0:
                # Its sequence number stays unfilled: the producer needs a new
                # epoch once the transaction is aborted (KIP-360).
                self._txn.bump_after_abort = True
            if not isinstance(error, TransactionAbortedError):
                self._txn.batch_failed(error)

    def _abort_unsent(self, error: KafkaSansioError) -> None:
        """Fail every record not sent yet (queued batches, records waiting for metadata)."""
        for topic, waiting in list(self._waiting.items()):
            for record in waiting.records:
                self._buffered -= record[6]
            self._report(TopicPartition(topic, -1), [r[0] for r in waiting.records], -1, -1, error)
        self._waiting.clear()
        for pq in list(self._active):
            while pq.queue:
                self._fail(pq.queue.popleft(), error)
            self._active.pop(pq, None)

    def _txn_ending(self) -> bool:
        """A transaction is being committed or aborted (close waits for its EndTxn)."""
        txn = self._txn
        return txn is not None and txn.state in (
            TransactionState.COMMITTING,
            TransactionState.ABORTING,
            TransactionState.INITIALIZING,
        )

    def _finish(self, batch: Batch) -> None:
        batch.done = True
        self._buffered -= batch.size
        batch.fields = []

    def _report(
        self,
        tp: TopicPartition,
        tokens: list[int],
        base_offset: int,
        timestamp_ms: int,
        error: KafkaSansioError | None,
        maybe_written: bool = False,
    ) -> None:
        self._reported += len(tokens)
        self._events.append(
            Delivered(tp, tuple(tokens), base_offset, timestamp_ms, error, maybe_written)
        )

    def _fail_everything(self, error: KafkaSansioError) -> None:
        """Fail every pending record: those in flight, then those not sent yet."""
        for pq in self._queues.values():
            for batch in list(pq.in_flight):
                if not batch.done:
                    self._fail(batch, error)
        self._abort_unsent(error)

    def _fail_fatally(self, error: KafkaSansioError) -> None:
        if self._fatal is not None:
            return
        self._fatal = error
        if self._txn is not None:
            self._txn._fatal(error)  # its pending call gets the error too
        self._events.append(ProducerFailed(error))
        self._state = _CLOSED
        self._fail_everything(error)
        self.client.close()

    # ------------------------------------------------------------ producer id (KIP-360)

    def _maybe_init_producer_id(self, now: float) -> None:
        if self._pid_in_flight or now < self._pid_retry_at:
            return
        if self.producer_id >= 0:
            if not self._bump_needed or self._in_flight_batches:
                return
            for pq in self._active:
                if any(b.maybe_written and b.sequence >= 0 for b in pq.queue):
                    return  # let retries whose outcome is unknown settle first
            if self.producer_epoch < _MAX_EPOCH:
                # An idempotent producer bumps its epoch itself (KIP-360): the
                # broker takes a higher epoch starting at sequence 0.
                self._reset_sequences(self.producer_id, self.producer_epoch + 1)
                return
            self.producer_id, self.producer_epoch = -1, -1  # epochs exhausted: a new id
        elif not self._active and not self._waiting:
            return  # nothing to send yet
        node_id = self.client.least_loaded_node(now)
        if node_id is None:
            return
        if not self.client.node_ready(node_id):
            self.client.ensure_connected(node_id, now)
            self._waiting_nodes.add(node_id)
            return
        if self.client.api_version(node_id, _INIT_PRODUCER_ID) is None:
            # The broker cannot give producer ids: produce without idempotence.
            self._idempotent = False
            self._per_partition_in_flight = 1
            return
        request = InitProducerIdRequest(
            transactional_id=None,
            transaction_timeout_ms=int(self.config.transaction_timeout * 1000),
            producer_id=-1,
            producer_epoch=-1,
        )
        self._pid_in_flight = True
        self.client.send(node_id, request, now, self._on_init_producer_id)

    def _reset_sequences(self, producer_id: int, epoch: int) -> None:
        """A new producer id or epoch: every partition starts again at sequence 0."""
        self.producer_id, self.producer_epoch = producer_id, epoch
        self._bump_needed = False
        for pq in self._queues.values():
            pq.next_sequence = 0
            for batch in pq.queue:
                batch.sequence = -1
                batch.maybe_written = False

    def _on_init_producer_id(self, result: Response | RequestFailed, now: float) -> None:
        self._pid_in_flight = False
        self._update_again = True
        response = result.response if isinstance(result, Response) else None
        if not isinstance(response, InitProducerIdResponse) or response.error_code:
            code = response.error_code if isinstance(response, InitProducerIdResponse) else -1
            if code in _FATAL_INIT:
                self._fail_fatally(exception_for_code(code))
                return
            self._pid_retry_at = now + self._backoff(self._pid_failures)
            self._pid_failures += 1
            return
        self._pid_failures = 0
        self._reset_sequences(response.producer_id, response.producer_epoch)
