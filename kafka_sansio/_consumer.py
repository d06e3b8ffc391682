"""The consumer core: positions, offset resets, and the fetch engine (assign mode).

:class:`ConsumerCore` wraps a :class:`ClientCore` and is driven the same way
(``commands``, ``connection_made``, ``data_received``, ``connection_lost``,
``get_timer``, ``handle_timer``).  The user side mirrors the Java consumer:
``assign``, ``seek``, ``seek_to_beginning``, ``seek_to_end``, ``position``,
``pause``, ``resume``, ``list_offsets`` (behind ``offsets_for_times``,
``beginning_offsets`` and ``end_offsets``), and ``poll``, which hands out
buffered records at once and never waits: a driver that wants to wait pumps
I/O until ``poll`` has something or its timeout passes.

Fetch pipelining: a partition may have one fetch answer buffered while the
next is in flight, so when ``poll`` hands records out the following fetch is
usually already on its way; ``poll`` itself sends the fetches that handing
out records made possible before it returns.  Everything else (out-of-range
positions, resets, truncation, lookups, errors) arrives through
:meth:`ConsumerCore.events`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ._client import ClientConfig, ClientCore, ClientOwner
from ._compression import DEFAULT_DECOMPRESS_LIMIT
from ._connection import RequestFailed, RequestTimedOutError, Response
from ._errors import KafkaSansioError, LocalProtocolError, RemoteProtocolError
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
from ._fetch_session import NO_TOPIC_ID, FetchSession, FetchTarget, SessionRequest
from ._messages.fetch import (
    AbortedTransaction,
    FetchPartition,
    FetchRequest,
    FetchResponse,
    FetchTopic,
    ForgottenTopic,
)
from ._messages.list_offsets import (
    ListOffsetsPartition,
    ListOffsetsRequest,
    ListOffsetsResponse,
    ListOffsetsTopic,
)
from ._messages.offset_for_leader_epoch import (
    OffsetForLeaderEpochRequest,
    OffsetForLeaderEpochResponse,
    OffsetForLeaderPartition,
    OffsetForLeaderTopic,
)
from ._record_list import RecordList
from ._records import ControlRecord, Record
from ._subscription import TRANSITIONS, Chunk, FetchState, PartitionState, PendingBatch
from ._types import IsolationLevel, OffsetAndTimestamp, OffsetResetPolicy, TopicPartition
from .errors import exception_for_code
from .records import BatchRef, RecordDecoder

if TYPE_CHECKING:
    from uuid import UUID

__all__ = ["ConsumerConfig", "ConsumerCore"]

_FETCH = 1
_OFFSET_FOR_LEADER_EPOCH = 23
#: ListOffsets timestamps with a special meaning.
EARLIEST = -2
LATEST = -1

#: Partition errors that a metadata refresh and a retry cure.
_REFRESH_AND_RETRY = frozenset({3, 5, 6, 9, 56, 74, 75, 78, 100, 103})
_SESSION_ERRORS = frozenset({70, 71})
#: Metadata refusing a topic for good: INVALID_TOPIC_EXCEPTION, TOPIC_AUTHORIZATION_FAILED.
TOPIC_REFUSED = frozenset({17, 29})


@dataclass(frozen=True, slots=True)
class ConsumerConfig:
    """Consumer settings (seconds for durations; defaults follow the Java consumer)."""

    client: ClientConfig = field(default_factory=ClientConfig)
    auto_offset_reset: OffsetResetPolicy = OffsetResetPolicy.LATEST
    fetch_min_bytes: int = 1
    fetch_max_bytes: int = 52_428_800
    fetch_max_wait: float = 0.5
    max_partition_fetch_bytes: int = 1_048_576
    max_poll_records: int = 500
    isolation_level: IsolationLevel = IsolationLevel.READ_UNCOMMITTED
    check_crcs: bool = True
    decompress_limit: int = DEFAULT_DECOMPRESS_LIMIT
    default_api_timeout: float = 60.0
    client_rack: str = ""

    def __post_init__(self) -> None:
        if self.max_poll_records < 1:
            raise ValueError("max_poll_records must be at least 1")
        if self.fetch_max_bytes < 1 or self.max_partition_fetch_bytes < 1:
            raise ValueError("fetch sizes must be positive")


@dataclass(slots=True)
class _Lookup:
    """A user's list_offsets call in progress."""

    token: int
    remaining: dict[TopicPartition, int]
    deadline: float
    results: dict[TopicPartition, OffsetAndTimestamp | None] = field(default_factory=dict)
    in_flight: set[TopicPartition] = field(default_factory=set)
    retry_at: float = 0.0
    failures: int = 0


class ConsumerCore(ClientOwner):
    """A Kafka consumer without I/O (see the module docstring).

    ``random`` returns floats in ``[0, 1)`` (backoff jitter).  Every method that
    takes ``now`` may queue commands: drain :meth:`commands` after each call.
    """

    def __init__(self, config: ConsumerConfig, random: Callable[[], float]) -> None:
        self.config = config
        self._random = random
        self.client = ClientCore(config.client, random)
        self.client.add_metadata_listener(self._on_metadata)
        self._partitions: dict[TopicPartition, PartitionState] = {}
        self._sessions: dict[int, FetchSession] = {}
        self._fetching_nodes: set[int] = set()
        #: Leaders we want to fetch from whose connection is not ready yet.
        self._waiting_nodes: set[int] = set()
        self._events: list[Event] = []
        self._decoder = RecordDecoder(
            check_crc=config.check_crcs,
            decompress_limit=config.decompress_limit,
            raise_errors=False,
        )
        self._poll_cursor = 0
        self._lookups: dict[int, _Lookup] = {}
        self._next_token = 1
        self._now = 0.0
        self._closed = False
        #: Partitions whose owner supplies the position (see :meth:`hold`), by generation.
        self._held: dict[TopicPartition, int] = {}
        #: Topics an owner needs metadata for besides the assigned ones (None: all).
        self._wanted_topics: set[str] | None = set()

    # ------------------------------------------------------------ driver side

    def get_timer(self) -> float | None:
        """The next absolute deadline, or None."""
        deadlines = []
        t = self.client.get_timer()
        if t is not None:
            deadlines.append(t)
        for p in self._partitions.values():
            if p.retry_at > self._now:
                deadlines.append(p.retry_at)
        for node_id in self._waiting_nodes:
            at = self.client.reconnect_at(node_id)
            if at is not None and at > self._now:
                deadlines.append(at)
        for lookup in self._lookups.values():
            deadlines.append(lookup.deadline)
            if lookup.retry_at > self._now:
                deadlines.append(lookup.retry_at)
        return min(deadlines) if deadlines else None

    def handle_timer(self, now: float) -> None:
        """Service every deadline that has passed."""
        self.client.handle_timer(now)
        for lookup in list(self._lookups.values()):
            if now >= lookup.deadline:
                self._finish_lookup(
                    lookup, RequestTimedOutError("list_offsets timed out before every answer came")
                )
        self._update(now)

    def events(self) -> list[Event]:
        """Events since the last call, oldest first."""
        events, self._events = self._events, []
        return events

    # ------------------------------------------------------------ user side

    def assign(self, partitions: Iterable[TopicPartition], now: float) -> None:
        """Replace the assignment.  New partitions start without a position (reset policy)."""
        self._check_open()
        wanted = {TopicPartition(*tp) for tp in partitions}
        for tp in list(self._partitions):
            if tp not in wanted:
                del self._partitions[tp]
                self._held.pop(tp, None)
        for tp in sorted(wanted):
            if tp not in self._partitions:
                self._partitions[tp] = PartitionState(tp)
        self._update_topics(now)
        self._update(now)

    def assignment(self) -> set[TopicPartition]:
        return set(self._partitions)

    def seek(
        self, tp: TopicPartition, offset: int, now: float, leader_epoch: int | None = None
    ) -> None:
        """Fetch ``tp`` from ``offset`` next; records buffered for it are dropped.

        With ``leader_epoch`` (the epoch of the record before ``offset``, as a
        committed offset carries it) the position is first validated with the
        leader (KIP-320), as the Java consumer does: an epoch the log does not
        have ends in a reset or :class:`OffsetOutOfRange`, a truncated one in a
        TRUNCATION reset or :class:`LogTruncation`.
        """
        if offset < 0:
            raise LocalProtocolError("seek offset must be >= 0")
        p = self._partition(tp)
        p.seek(offset, -1 if leader_epoch is None else leader_epoch)
        meta = self.client.metadata.partitions.get(tp)
        p.leader_epoch = meta.leader_epoch if meta is not None else -1
        if leader_epoch is not None and leader_epoch >= 0:
            p.transition("leader_changed")
        p.retry_at = 0.0
        self._update(now)

    def seek_to_beginning(self, partitions: Iterable[TopicPartition], now: float) -> None:
        """Move to the log start offset (looked up lazily); buffered records are dropped."""
        for tp in partitions:
            self._partition(tp).seek_to(EARLIEST)
        self._update(now)

    def seek_to_end(self, partitions: Iterable[TopicPartition], now: float) -> None:
        """Move to the end of the log (the LSO under read_committed); buffered records dropped."""
        for tp in partitions:
            self._partition(tp).seek_to(LATEST)
        self._update(now)

    def position(self, tp: TopicPartition) -> int | None:
        """The offset of the next record ``poll`` hands out, or None while it is being looked up."""
        p = self._partition(tp)
        if p.state in (FetchState.NEEDS_RESET, FetchState.RESETTING):
            return None
        return p.position

    def fetch_state(self, tp: TopicPartition) -> FetchState:
        return self._partition(tp).state

    def pause(self, partitions: Iterable[TopicPartition], now: float) -> None:
        """Stop fetching; records buffered for these partitions are dropped (refetched on resume)."""
        for tp in partitions:
            p = self._partition(tp)
            p.paused = True
            p.clear_buffer()
        self._update(now)

    def resume(self, partitions: Iterable[TopicPartition], now: float) -> None:
        for tp in partitions:
            self._partition(tp).paused = False
        self._update(now)

    def paused(self) -> set[TopicPartition]:
        return {tp for tp, p in self._partitions.items() if p.paused}

    def highwater(self, tp: TopicPartition) -> int | None:
        """The high watermark from the last fetch answer, or None."""
        hw = self._partition(tp).high_watermark
        return None if hw < 0 else hw

    def list_offsets(
        self, timestamps: dict[TopicPartition, int], now: float, timeout: float | None = None
    ) -> int:
        """Look up offsets by timestamp (-2 earliest, -1 latest); returns a token.

        The answer arrives as an :class:`OffsetsResult` event with that token.
        Retriable errors are retried until ``timeout`` (default: the
        configured ``default_api_timeout``).
        """
        self._check_open()
        token = self._next_token
        self._next_token += 1
        deadline = now + (self.config.default_api_timeout if timeout is None else timeout)
        lookup = _Lookup(
            token, {TopicPartition(*tp): ts for tp, ts in timestamps.items()}, deadline
        )
        self._lookups[token] = lookup
        if not lookup.remaining:
            self._finish_lookup(lookup, None)
        self._update_topics(now)
        self._update(now)
        return token

    def offsets_for_times(
        self, timestamps: dict[TopicPartition, int], now: float, timeout: float | None = None
    ) -> int:
        """The earliest offset whose timestamp is at or after each given one (ms); a token.

        Partitions with no such record get ``None`` in the :class:`OffsetsResult`.
        """
        if any(ts < 0 for ts in timestamps.values()):
            raise LocalProtocolError("timestamps must be >= 0 (milliseconds since the epoch)")
        return self.list_offsets(timestamps, now, timeout)

    def beginning_offsets(
        self, partitions: Iterable[TopicPartition], now: float, timeout: float | None = None
    ) -> int:
        """Each partition's log start offset, as an :class:`OffsetsResult`; returns its token."""
        return self.list_offsets(dict.fromkeys(partitions, EARLIEST), now, timeout)

    def end_offsets(
        self, partitions: Iterable[TopicPartition], now: float, timeout: float | None = None
    ) -> int:
        """Each partition's end offset (the LSO under read_committed); returns the token."""
        return self.list_offsets(dict.fromkeys(partitions, LATEST), now, timeout)

    def hold(self, partitions: Iterable[TopicPartition]) -> None:
        """Do not look up a reset offset for these partitions until released.

        For an owner that first asks where to start (a consumer group reads the
        committed offset).  A seek or seek_to_* in the meantime is a position
        of its own and ends the hold.  Held partitions are not fetched either,
        since they have no position.
        """
        for tp in partitions:
            tp = TopicPartition(*tp)
            # Partitions not assigned yet are held from the moment ``assign`` adds them.
            p = self._partitions.get(tp)
            self._held[tp] = 0 if p is None else p.generation

    def held(self) -> set[TopicPartition]:
        """Partitions still held: assigned, and not positioned since :meth:`hold`."""
        return {
            tp
            for tp, gen in self._held.items()
            if tp in self._partitions and self._partitions[tp].generation == gen
        }

    def release(self, partitions: Iterable[TopicPartition], now: float) -> None:
        """End the hold: partitions without a position now follow the reset policy."""
        for tp in partitions:
            self._held.pop(TopicPartition(*tp), None)
        self._update(now)

    def want_topics(self, topics: Iterable[str] | None, now: float) -> None:
        """Keep metadata for these topics too (None: every topic), besides the assigned ones."""
        self._wanted_topics = None if topics is None else set(topics)
        self._update_topics(now)
        self._update(now)

    def position_epoch(self, tp: TopicPartition) -> int | None:
        """The leader epoch of the record before the position (None if unknown)."""
        epoch = self._partition(tp).position_epoch
        return None if epoch < 0 else epoch

    def unassign(self, now: float) -> None:
        """Drop every partition (and its buffered records)."""
        self.assign((), now)

    def poll(self, now: float, max_records: int | None = None) -> Records:
        """Hand out buffered records (possibly none) and send the fetches that frees up.

        Records come in offset order per partition; partitions take turns
        across calls.  Never waits.
        """
        self._check_open()
        limit = self.config.max_poll_records if max_records is None else max_records
        out: dict[TopicPartition, Sequence[Record]] = {}
        ready = [p for p in self._partitions.values() if p.buffered]
        count = 0
        if ready:
            start = self._poll_cursor % len(ready)
            self._poll_cursor += 1
            for p in ready[start:] + ready[:start]:
                records = p.take(limit - count)
                if records:
                    out[p.tp] = records
                    count += len(records)
                if p.decode_error is not None:
                    self._decode_failed(p)
                if not p.buffered:
                    # Drained partitions go to the back of the next fetch request, so
                    # that no partition is starved by the response size limits.
                    self._partitions[p.tp] = self._partitions.pop(p.tp)
                if count >= limit:
                    break
        self._update(now)
        more = any(p.buffered for p in self._partitions.values())
        return Records(out, more)

    def buffered(self) -> int:
        """Records fetched and not yet handed out."""
        return sum(p.buffered for p in self._partitions.values())

    def close(self) -> None:
        """Drop every connection and buffered record; the core is unusable afterwards."""
        self._closed = True
        self._partitions.clear()
        self.client.close()

    # ------------------------------------------------------------ the engine

    def _update(self, now: float) -> None:
        """Send whatever the current state calls for.  Runs after every input."""
        if self._closed:
            return
        self._now = now
        self.client.maybe_update_metadata(now)
        self._send_resets(now)
        self._send_validations(now)
        self._send_lookups(now)
        self._send_fetches(now)
        for error in self.client.errors:
            self._events.append(ClientError(error))
        self.client.errors.clear()

    def _check_open(self) -> None:
        if self._closed:
            raise LocalProtocolError("the consumer is closed")

    def _partition(self, tp: TopicPartition) -> PartitionState:
        try:
            return self._partitions[TopicPartition(*tp)]
        except KeyError:
            raise LocalProtocolError(f"partition {tp} is not assigned") from None

    def _update_topics(self, now: float) -> None:
        if self._wanted_topics is None:
            self.client.set_topics(None, now)
            return
        topics = {tp.topic for tp in self._partitions} | self._wanted_topics
        for lookup in self._lookups.values():
            topics.update(tp.topic for tp in lookup.remaining)
        self.client.set_topics(topics, now)

    def _backoff(self, attempts: int = 0) -> float:
        return self.config.client.retry_backoff.delay(attempts, self._random())

    def _awaits(
        self, tp: TopicPartition, p: PartitionState, generation: int, state: FetchState
    ) -> bool:
        """Is this answer still wanted: same assignment, same position, same state?"""
        return self._partitions.get(tp) is p and p.generation == generation and p.state is state

    def _leader_epoch(self, tp: TopicPartition) -> int:
        meta = self.client.metadata.partitions.get(tp)
        return -1 if meta is None else meta.leader_epoch

    def _on_metadata(self, now: float) -> None:
        """A metadata answer arrived: positions checked against a new leader epoch (KIP-320).

        A partition whose topic the answer refuses (an invalid name, or not
        authorized) stops with a :class:`FetchError`, as the Java consumer
        raises these from ``poll``; a seek tries it again, and the next answer
        reports it again if the topic is still refused.  A topic that does not
        exist is waited for, as in Java.
        """
        topic_errors = self.client.metadata.topic_errors
        for tp, p in self._partitions.items():
            code = topic_errors.get(tp.topic)
            # (Records already buffered are handed out first: their fetch reports the error.)
            if code in TOPIC_REFUSED and not p.chunks and (p.state, "fatal_error") in TRANSITIONS:
                p.transition("fatal_error")
                offset = -1 if p.position is None else p.position
                error = exception_for_code(code, f"metadata for topic {tp.topic!r}")
                self._events.append(FetchError(tp, offset, error))
                continue
            epoch = self._leader_epoch(tp)
            if epoch < 0 or epoch <= p.leader_epoch:
                continue
            if p.state in (
                FetchState.FETCHING,
                FetchState.VALIDATING,
                FetchState.NEEDS_VALIDATION,
            ) and (p.position_epoch >= 0 and p.leader_epoch >= 0):
                p.transition("leader_changed")
                p.retry_at = 0.0
            else:
                p.leader_epoch = epoch

    # ------------------------------------------------------------ fetch

    def _send_fetches(self, now: float) -> None:
        meta = self.client.metadata
        by_node: dict[int, dict[TopicPartition, FetchTarget]] = {}
        for tp, p in self._partitions.items():
            if not p.is_fetchable(now):
                continue
            leader = meta.leader(tp)
            if leader is None:
                self.client.request_metadata(now)
                continue
            if leader in self._fetching_nodes:
                continue
            by_node.setdefault(leader, {})[tp] = FetchTarget(
                p.fetch_offset,
                self.config.max_partition_fetch_bytes,
                self._leader_epoch(tp),
                meta.topic_ids.get(tp.topic, NO_TOPIC_ID),
            )
        self._waiting_nodes.clear()
        for node_id, wanted in by_node.items():
            version = self.client.api_version(node_id, _FETCH)
            if version is None:
                self.client.ensure_connected(node_id, now)
                self._waiting_nodes.add(node_id)
                continue
            session = self._sessions.get(node_id)
            if session is None or session.supported != (version >= 7):
                session = self._sessions[node_id] = FetchSession(version >= 7)
            session.check_topic_ids(meta.topic_ids)
            sreq = session.build(wanted)
            request = self._fetch_request(sreq)
            sent = {
                tp: (self._partitions[tp], self._partitions[tp].fetch_generation, t.fetch_offset)
                for tp, t in wanted.items()
            }
            for p, _, _ in sent.values():
                p.fetch_in_flight = True
            self._fetching_nodes.add(node_id)
            # Answers name topics by the ids this request used (v13+), whatever
            # metadata says by the time they arrive.
            names = {t.topic_id: tp.topic for tp, t in wanted.items()}

            def handler(
                result: Response | RequestFailed,
                now: float,
                node_id: int = node_id,
                session: FetchSession = session,
                sreq: SessionRequest = sreq,
                sent: dict[TopicPartition, tuple[PartitionState, int, int]] = sent,
                names: dict[UUID, str] = names,
            ) -> None:
                self._on_fetch(node_id, session, sreq, sent, names, result, now)

            self.client.send(node_id, request, now, handler, version=version)

    def _fetch_request(self, sreq: SessionRequest) -> FetchRequest:
        ids = self.client.metadata.topic_ids
        topics: dict[str, list[FetchPartition]] = {}
        for tp, target in sreq.to_send.items():
            topics.setdefault(tp.topic, []).append(
                FetchPartition(
                    partition=tp.partition,
                    current_leader_epoch=target.current_leader_epoch,
                    fetch_offset=target.fetch_offset,
                    partition_max_bytes=target.max_bytes,
                )
            )
        forgotten: dict[str, list[int]] = {}
        for tp in sreq.to_forget:
            forgotten.setdefault(tp.topic, []).append(tp.partition)
        return FetchRequest(
            replica_id=-1,
            max_wait_ms=int(self.config.fetch_max_wait * 1000),
            min_bytes=self.config.fetch_min_bytes,
            max_bytes=self.config.fetch_max_bytes,
            isolation_level=int(self.config.isolation_level),
            session_id=sreq.session_id,
            session_epoch=sreq.epoch,
            topics=[
                FetchTopic(topic=name, topic_id=ids.get(name, NO_TOPIC_ID), partitions=parts)
                for name, parts in topics.items()
            ],
            forgotten_topics_data=[
                ForgottenTopic(topic=name, topic_id=ids.get(name, NO_TOPIC_ID), partitions=parts)
                for name, parts in forgotten.items()
            ],
            rack_id=self.config.client_rack,
        )

    def _on_fetch(
        self,
        node_id: int,
        session: FetchSession,
        sreq: SessionRequest,
        sent: dict[TopicPartition, tuple[PartitionState, int, int]],
        names: dict[UUID, str],
        result: Response | RequestFailed,
        now: float,
    ) -> None:
        self._fetching_nodes.discard(node_id)
        for p, _, _ in sent.values():
            p.fetch_in_flight = False
        response = result.response if isinstance(result, Response) else None
        if not isinstance(response, FetchResponse):
            session.handle_failure()
            self.client.request_metadata(now)
            return
        if response.error_code:
            session.handle_failure()
            if response.error_code not in _SESSION_ERRORS:
                retry = now + self._backoff()
                for p, _, _ in sent.values():
                    p.retry_at = retry
            return
        session.handle_success(sreq, response.session_id)
        out_of_range: dict[TopicPartition, int] = {}
        for topic in response.responses:
            name = topic.topic or names.get(topic.topic_id, "")
            for pd in topic.partitions:
                tp = TopicPartition(name, pd.partition_index)
                entry = sent.get(tp)
                if entry is None:
                    continue
                p, generation, fetch_offset = entry
                if (
                    self._partitions.get(tp) is not p
                    or p.fetch_generation != generation
                    or p.state is not FetchState.FETCHING
                    or p.fetch_offset != fetch_offset
                ):
                    continue  # stale: the user sought, paused or reassigned meanwhile
                if pd.error_code == 0:
                    p.high_watermark = pd.high_watermark
                    p.last_stable_offset = pd.last_stable_offset
                    p.log_start_offset = pd.log_start_offset
                    if pd.records:
                        self._add_records(p, fetch_offset, pd.records, pd.aborted_transactions)
                elif pd.error_code == 1:
                    if p.chunks:
                        p.refetch_when_drained = True
                    elif self.config.auto_offset_reset is OffsetResetPolicy.NONE:
                        p.transition("out_of_range_no_policy")
                        out_of_range[tp] = fetch_offset
                    else:
                        p.transition("out_of_range")
                        p.needs_policy_reset(ResetReason.OUT_OF_RANGE)
                elif pd.error_code in _REFRESH_AND_RETRY:
                    self.client.request_metadata(now)
                    p.retry_at = now + self._backoff()
                else:
                    error = exception_for_code(pd.error_code)
                    if error.retriable:
                        p.retry_at = now + self._backoff()
                    else:
                        p.transition("fatal_error")
                        self._events.append(FetchError(tp, fetch_offset, error))
        if out_of_range:
            self._events.append(OffsetOutOfRange(out_of_range))

    def _add_records(
        self,
        p: PartitionState,
        fetch_offset: int,
        data: bytes | memoryview,
        aborted: list[AbortedTransaction] | None,
    ) -> None:
        """Buffer a fetch answer's batches as raw bytes; ``poll`` decodes them.

        Only the batch headers are read here (where each batch is, its offsets,
        epoch and record count), so the buffer holds bytes bounded by the
        fetch sizes, and records become objects when they are handed out.
        Aborted transactions (read_committed) are filtered on decoded batches.
        """
        decoder = self._decoder
        try:
            scanned = decoder.scan(data, fetch_offset)
        except KafkaSansioError as exc:
            p.transition("fatal_error")
            self._events.append(FetchError(p.tp, fetch_offset, exc))
            return
        refs = scanned.batches
        pending: list[PendingBatch] = []
        if aborted and self.config.isolation_level is IsolationLevel.READ_COMMITTED and refs:
            # Decoded now, all of them: the aborted ones are known only from the
            # control batches' markers.  Data batches decode to columns, as below.
            markers: dict[int, tuple[ControlRecord, ...]] = {}
            decoded: dict[int, RecordList] = {}
            try:
                for i, ref in enumerate(refs):
                    if ref.is_control:
                        markers[i] = decoder.decode_ref(scanned.buf, ref, fetch_offset).control_records
                    else:
                        decoded[i] = decoder.decode_ref_records(scanned.buf, ref, fetch_offset)
            except KafkaSansioError as exc:
                p.transition("fatal_error")
                self._events.append(FetchError(p.tp, fetch_offset, exc))
                return
            for i in _committed(refs, aborted, markers):
                records = decoded[i]
                if records:
                    pending.append(
                        PendingBatch(
                            records.offsets[0], refs[i].partition_leader_epoch, len(records), records
                        )
                    )
        else:
            buf = scanned.buf

            def decode(ref: BatchRef) -> Callable[[], Sequence[Record]]:
                return lambda: decoder.decode_ref_records(buf, ref, fetch_offset)

            for ref in refs:
                if not ref.is_control and ref.record_count:
                    pending.append(
                        PendingBatch(
                            ref.base_offset, ref.partition_leader_epoch, ref.record_count, decode(ref)
                        )
                    )
        next_offset = scanned.next_offset
        if next_offset is None:
            if scanned.error is None and not scanned.truncated_bytes:
                return
            error: KafkaSansioError = scanned.error or RemoteProtocolError(
                f"the batch at offset {fetch_offset} is larger than max_partition_fetch_bytes "
                f"allows the broker to return"
            )
            p.transition("fatal_error")
            self._events.append(FetchError(p.tp, fetch_offset, error))
            return
        # The last batch fetched, user records or not, gives the epoch of next_offset.
        next_epoch = refs[-1].partition_leader_epoch if refs else -1
        if scanned.error is not None:
            # A malformed header after good batches: fetching stops now, and the
            # error is reported where poll reaches it, after the records before it
            # (or not at all if an earlier batch fails to decode first).
            p.transition("fatal_error")
            pending.append(PendingBatch(next_offset, next_epoch, 0, _raising(scanned.error)))
        p.add_chunk(Chunk(pending, next_offset, next_epoch))

    def _decode_failed(self, p: PartitionState) -> None:
        """A buffered batch did not decode when its turn came: stop the partition there."""
        assert p.decode_error is not None
        offset, error = p.decode_error
        p.decode_error = None
        if (p.state, "fatal_error") in TRANSITIONS:
            p.transition("fatal_error")
        self._events.append(FetchError(p.tp, offset, error))

    # ------------------------------------------------------------ resets

    def _send_resets(self, now: float) -> None:
        meta = self.client.metadata
        policy = self.config.auto_offset_reset
        by_node: dict[int, dict[TopicPartition, int]] = {}
        no_offset: list[TopicPartition] = []
        out_of_range: dict[TopicPartition, int] = {}
        for tp, p in self._partitions.items():
            if p.state is not FetchState.NEEDS_RESET or now < p.retry_at:
                continue
            if self._held.get(tp) == p.generation:
                continue
            timestamp = p.reset_timestamp
            if timestamp is None:
                if policy is OffsetResetPolicy.NONE:
                    p.transition("no_policy")
                    if p.reset_reason is ResetReason.NO_POSITION or p.position is None:
                        no_offset.append(tp)
                    else:
                        out_of_range[tp] = p.position
                    continue
                timestamp = EARLIEST if policy is OffsetResetPolicy.EARLIEST else LATEST
            leader = meta.leader(tp)
            if leader is None:
                self.client.request_metadata(now)
                continue
            by_node.setdefault(leader, {})[tp] = timestamp
        if no_offset:
            self._events.append(NoOffsetForPartition(tuple(no_offset)))
        if out_of_range:
            self._events.append(OffsetOutOfRange(out_of_range))
        for node_id, wanted in by_node.items():
            sent = {}
            for tp, ts in wanted.items():
                p = self._partitions[tp]
                p.transition("send_reset")
                sent[tp] = (p, p.generation, ts)

            def handler(
                result: Response | RequestFailed,
                now: float,
                sent: dict[TopicPartition, tuple[PartitionState, int, int]] = sent,
            ) -> None:
                self._on_reset(sent, result, now)

            self.client.send(node_id, self._list_offsets_request(wanted), now, handler)

    def _list_offsets_request(self, wanted: dict[TopicPartition, int]) -> ListOffsetsRequest:
        topics: dict[str, list[ListOffsetsPartition]] = {}
        for tp, ts in wanted.items():
            topics.setdefault(tp.topic, []).append(
                ListOffsetsPartition(
                    partition_index=tp.partition,
                    current_leader_epoch=self._leader_epoch(tp),
                    timestamp=ts,
                )
            )
        return ListOffsetsRequest(
            replica_id=-1,
            isolation_level=int(self.config.isolation_level),
            topics=[ListOffsetsTopic(name=n, partitions=ps) for n, ps in topics.items()],
        )

    def _on_reset(
        self,
        sent: dict[TopicPartition, tuple[PartitionState, int, int]],
        result: Response | RequestFailed,
        now: float,
    ) -> None:
        answers = _list_offsets_answers(result)
        for tp, (p, generation, _) in sent.items():
            if not self._awaits(tp, p, generation, FetchState.RESETTING):
                continue
            answer = answers.get(tp)
            if answer is None or answer[0] != 0:
                code = -1 if answer is None else answer[0]
                if code != -1 and code not in _REFRESH_AND_RETRY:
                    error = exception_for_code(code)
                    if not error.retriable:
                        p.transition("fatal_error")
                        self._events.append(FetchError(tp, -1, error))
                        continue
                p.transition("reset_failed")
                p.retry_at = now + self._backoff()
                self.client.request_metadata(now)
                continue
            _, offset, epoch, _ = answer
            previous = p.position
            policy_reset = p.reset_timestamp is None
            p.reset_to(offset, epoch)
            p.leader_epoch = self._leader_epoch(tp)
            if policy_reset:
                self._events.append(OffsetReset(tp, previous, offset, p.reset_reason))
            p.reset_reason = ResetReason.NO_POSITION

    # ------------------------------------------------------------ validation (KIP-320)

    def _send_validations(self, now: float) -> None:
        meta = self.client.metadata
        by_node: dict[int, list[TopicPartition]] = {}
        for tp, p in self._partitions.items():
            if p.state is not FetchState.NEEDS_VALIDATION or now < p.retry_at:
                continue
            leader = meta.leader(tp)
            if leader is None:
                self.client.request_metadata(now)
                continue
            version = self.client.api_version(leader, _OFFSET_FOR_LEADER_EPOCH)
            if version is None and self.client.node_ready(leader):
                # The broker cannot validate: trust the position, as the Java client does.
                p.transition("send_validation")
                p.transition("validated")
                p.leader_epoch = self._leader_epoch(tp)
                continue
            by_node.setdefault(leader, []).append(tp)
        for node_id, tps in by_node.items():
            sent = {}
            topics: dict[str, list[OffsetForLeaderPartition]] = {}
            for tp in tps:
                p = self._partitions[tp]
                p.transition("send_validation")
                epoch = self._leader_epoch(tp)
                sent[tp] = (p, p.generation, epoch)
                topics.setdefault(tp.topic, []).append(
                    OffsetForLeaderPartition(
                        partition=tp.partition,
                        current_leader_epoch=epoch,
                        leader_epoch=p.position_epoch,
                    )
                )
            request = OffsetForLeaderEpochRequest(
                replica_id=-1,
                topics=[OffsetForLeaderTopic(topic=t, partitions=ps) for t, ps in topics.items()],
            )

            def handler(
                result: Response | RequestFailed,
                now: float,
                sent: dict[TopicPartition, tuple[PartitionState, int, int]] = sent,
            ) -> None:
                self._on_validation(sent, result, now)

            self.client.send(node_id, request, now, handler)

    def _on_validation(
        self,
        sent: dict[TopicPartition, tuple[PartitionState, int, int]],
        result: Response | RequestFailed,
        now: float,
    ) -> None:
        answers: dict[TopicPartition, tuple[int, int, int]] = {}
        response = result.response if isinstance(result, Response) else None
        if isinstance(response, OffsetForLeaderEpochResponse):
            for topic in response.topics:
                for r in topic.partitions:
                    answers[TopicPartition(topic.topic, r.partition)] = (
                        r.error_code,
                        r.leader_epoch,
                        r.end_offset,
                    )
        for tp, (p, generation, epoch) in sent.items():
            if not self._awaits(tp, p, generation, FetchState.VALIDATING):
                continue
            answer = answers.get(tp)
            if answer is None or answer[0] != 0:
                p.transition("validation_failed")
                p.retry_at = now + self._backoff()
                self.client.request_metadata(now)
                continue
            _, their_epoch, end_offset = answer
            position = p.position
            assert position is not None
            if their_epoch < 0 or end_offset < 0:
                # The broker knows nothing of our epoch: treat as out of range.
                p.transition("validated")
                p.transition("out_of_range")
                p.needs_policy_reset(ResetReason.OUT_OF_RANGE)
                continue
            if end_offset < position:
                if self.config.auto_offset_reset is OffsetResetPolicy.NONE:
                    p.transition("truncation_no_policy")
                    self._events.append(LogTruncation(tp, position, end_offset))
                else:
                    p.transition("truncation_reset")
                    p.position = end_offset
                    p.position_epoch = their_epoch
                    p.clear_buffer()
                    self._events.append(
                        OffsetReset(tp, position, end_offset, ResetReason.TRUNCATION)
                    )
            else:
                p.transition("validated")
            p.leader_epoch = epoch

    # ------------------------------------------------------------ list_offsets lookups

    def _send_lookups(self, now: float) -> None:
        meta = self.client.metadata
        for lookup in list(self._lookups.values()):
            if now < lookup.retry_at:
                continue
            by_node: dict[int, dict[TopicPartition, int]] = {}
            for tp, ts in lookup.remaining.items():
                if tp in lookup.in_flight:
                    continue
                if tp.topic in meta.topic_errors and meta.topic_errors[tp.topic] != 3:
                    continue
                leader = meta.leader(tp)
                if leader is None:
                    self.client.request_metadata(now)
                    continue
                by_node.setdefault(leader, {})[tp] = ts
            for node_id, wanted in by_node.items():
                lookup.in_flight.update(wanted)

                def handler(
                    result: Response | RequestFailed,
                    now: float,
                    lookup: _Lookup = lookup,
                    wanted: dict[TopicPartition, int] = wanted,
                ) -> None:
                    self._on_lookup(lookup, wanted, result, now)

                self.client.send(node_id, self._list_offsets_request(wanted), now, handler)

    def _on_lookup(
        self,
        lookup: _Lookup,
        wanted: dict[TopicPartition, int],
        result: Response | RequestFailed,
        now: float,
    ) -> None:
        lookup.in_flight.difference_update(wanted)
        if self._lookups.get(lookup.token) is not lookup:
            return
        answers = _list_offsets_answers(result)
        retry = False
        for tp in wanted:
            answer = answers.get(tp)
            if answer is None or answer[0] in _REFRESH_AND_RETRY:
                retry = True
                continue
            code, offset, epoch, timestamp = answer
            del lookup.remaining[tp]
            if code != 0:
                self._finish_lookup(lookup, exception_for_code(code))
                return
            found = None
            if offset >= 0:
                found = OffsetAndTimestamp(offset, timestamp, None if epoch < 0 else epoch)
            lookup.results[tp] = found
        if retry:
            self.client.request_metadata(now)
            lookup.retry_at = now + self._backoff(lookup.failures)
            lookup.failures += 1
        if not lookup.remaining:
            self._finish_lookup(lookup, None)

    def _finish_lookup(self, lookup: _Lookup, error: KafkaSansioError | None) -> None:
        self._lookups.pop(lookup.token, None)
        self._events.append(OffsetsResult(lookup.token, dict(lookup.results), error))


def _list_offsets_answers(
    result: Response | RequestFailed,
) -> dict[TopicPartition, tuple[int, int, int, int]]:
    """``{tp: (error_code, offset, leader_epoch, timestamp)}`` from a ListOffsets result."""
    answers: dict[TopicPartition, tuple[int, int, int, int]] = {}
    response = result.response if isinstance(result, Response) else None
    if isinstance(response, ListOffsetsResponse):
        for topic in response.topics:
            for r in topic.partitions:
                answers[TopicPartition(topic.name, r.partition_index)] = (
                    r.error_code,
                    r.offset,
                    r.leader_epoch,
                    r.timestamp,
                )
    return answers


def _raising(error: KafkaSansioError) -> Callable[[], Sequence[Record]]:
    """A buffered "batch" that fails with ``error`` when ``poll`` reaches it."""

    def fail() -> Sequence[Record]:
        raise error

    return fail


def _committed(
    refs: Sequence[BatchRef],
    aborted: list[AbortedTransaction],
    markers: dict[int, tuple[ControlRecord, ...]],
) -> list[int]:
    """Which of ``refs`` hold committed records (read_committed), as the Java consumer reads.

    ``aborted`` lists (producer id, first offset) of transactions aborted in
    the fetched range; a transactional batch of such a producer at or after
    that first offset is skipped until the producer's ABORT marker.
    ``markers`` holds the decoded markers of the control batches, by index.
    Returns the indexes of the data batches to keep, in order.
    """
    pending = sorted((a.first_offset, a.producer_id) for a in aborted)
    active: set[int] = set()
    kept = []
    i = 0
    for n, ref in enumerate(refs):
        while i < len(pending) and pending[i][0] <= ref.last_offset:
            active.add(pending[i][1])
            i += 1
        if ref.is_control:
            if ref.producer_id in active:
                for marker in markers[n]:
                    if marker.type == 0:  # ABORT
                        active.discard(ref.producer_id)
            continue
        if ref.is_transactional and ref.producer_id in active:
            continue
        kept.append(n)
    return kept
