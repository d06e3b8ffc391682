"""What the three adapters share: every user-facing operation, written once.

An operation is a generator.  It calls into a core (synchronously, never
while suspended), and when it has to wait it yields the absolute deadline it
is willing to wait until (``None``: no limit).  The adapter that runs it
pumps I/O until *something* happened or the deadline passed, then resumes
it; the operation looks again and decides.  So::

    blocking:  for each yield -> driver.run_once(...)   (select on the sockets)
    asyncio:   for each yield -> await progress          (protocol callbacks feed the core)
    trio:      for each yield -> await progress          (reader tasks feed the core)

The logic (poll, position, offsets lookups, delivery, admin calls) lives
here and nowhere else; the adapters differ only in how they wait.  Because
an operation takes records or results out of the core only in the step
after its last wait, cancelling a waiting adapter call (asyncio/trio) leaves
the core as it was: records not handed out stay buffered.
"""

from __future__ import annotations

import logging
import random
import ssl
from collections import Counter
from collections.abc import Callable, Generator, Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import count, repeat
from operator import rshift
from typing import Any, NamedTuple, Protocol, TypeVar

from kafka_sansio import (
    AdminCore,
    AdminResult,
    BufferFullError,
    ClientConfig,
    ClientError,
    ConsumerConfig,
    ConsumerCore,
    Delivered,
    Event,
    FetchError,
    IsolationLevel,
    KafkaSansioError,
    LocalProtocolError,
    LogTruncation,
    NoOffsetForPartition,
    OffsetAndTimestamp,
    OffsetOutOfRange,
    OffsetResetPolicy,
    OffsetsResult,
    ProducerConfig,
    ProducerCore,
    ProducerFailed,
    Records,
    TopicPartition,
    TransactionResult,
    parse_bootstrap,
)
from kafka_sansio._assignors import (
    Assignor,
    CooperativeStickyAssignor,
    RangeAssignor,
    RoundRobinAssignor,
    StickyAssignor,
)
from kafka_sansio._group import GroupConfig
from kafka_sansio._group_consumer import GroupConsumerCore
from kafka_sansio._group_events import (
    CommitResult,
    CommittedResult,
    GroupError,
    OffsetAndMetadata,
    PartitionsAssigned,
    PartitionsLost,
    PartitionsRevoked,
)
from kafka_sansio._sasl import (
    OAuthBearerMechanism,
    PlainMechanism,
    SaslMechanism,
    ScramMechanism,
)
from kafka_sansio.errors import OffsetOutOfRangeError
from kafka_sansio.records import Record

from ._errors import ClosedError, OperationTimeoutError, PartitionEventError

__all__ = [
    "ConsumerRecord",
    "ConsumerState",
    "Driver",
    "Op",
    "Security",
    "client_config",
    "consumer_config",
]

log = logging.getLogger("kafka_sansio")

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class ListenerCall:
    """Yielded by an operation that needs user code run: the adapter calls
    ``function(*args)`` (and awaits the result if it is awaitable), then
    resumes the operation, or throws the function's exception into it."""

    function: Callable[..., Any]
    args: tuple[Any, ...]


#: An operation: yields deadlines to wait until (or listener calls), returns its result.
Op = Generator["float | ListenerCall | None", None, T]


class Driver(Protocol):
    """What an operation needs from the adapter that runs it."""

    @property
    def errors(self) -> list[KafkaSansioError]:
        """Transport failures that reconnecting cannot cure (e.g. TlsError), oldest first."""

    def now(self) -> float: ...
    def flush(self) -> None: ...


# ------------------------------------------------------------------ settings


@dataclass(frozen=True, slots=True)
class Security:
    """What a driver needs for TLS: the context (None: plaintext) and the name to verify.

    Built by :func:`client_config` from the ``ssl`` option: an
    :class:`ssl.SSLContext`, True for the system's default context (server
    verification on), or a CA file path.  SASL goes into the core's config.
    """

    ssl_context: ssl.SSLContext | None = None
    server_hostname: str | None = None


def _ssl_context(ssl_option: ssl.SSLContext | bool | str | None) -> ssl.SSLContext | None:
    if ssl_option is None or ssl_option is False:
        return None
    if ssl_option is True:
        return ssl.create_default_context()
    if isinstance(ssl_option, str):
        return ssl.create_default_context(cafile=ssl_option)
    return ssl_option


def _sasl_factory(
    mechanism: str | None,
    username: str | None,
    password: str | None,
    oauth_token: Callable[[], str] | None,
) -> Callable[[], SaslMechanism] | None:
    if mechanism is None:
        return None
    name = mechanism.upper()
    rng = random.SystemRandom()
    if name == "OAUTHBEARER":
        if oauth_token is None:
            raise ValueError("sasl_mechanism OAUTHBEARER needs sasl_oauth_token (a callable)")
        token = oauth_token
        return lambda: OAuthBearerMechanism(token())
    if username is None or password is None:
        raise ValueError(f"sasl_mechanism {mechanism} needs sasl_username and sasl_password")
    user, secret = username, password
    if name == "PLAIN":
        return lambda: PlainMechanism(user, secret)
    if name in ("SCRAM-SHA-256", "SCRAM-SHA-512"):
        return lambda: ScramMechanism(name, user, secret, f"{rng.getrandbits(128):032x}")
    raise ValueError(f"unknown sasl_mechanism {mechanism!r}")


#: Keyword arguments every client accepts, with their defaults.
CLIENT_OPTIONS: dict[str, Any] = {
    "client_id": "kafka-sansio",
    "request_timeout": 30.0,
    "connect_timeout": 10.0,
    "metadata_max_age": 300.0,
    "ssl": None,
    "ssl_server_hostname": None,
    "sasl_mechanism": None,
    "sasl_username": None,
    "sasl_password": None,
    "sasl_oauth_token": None,
}


def client_config(
    bootstrap_servers: str | Iterable[str], options: Mapping[str, Any]
) -> tuple[ClientConfig, Security]:
    """The core's ClientConfig and the adapter's Security from user keyword arguments."""
    unknown = set(options) - set(CLIENT_OPTIONS)
    if unknown:
        raise TypeError(f"unknown option(s): {', '.join(sorted(unknown))}")
    opts = {**CLIENT_OPTIONS, **options}
    config = ClientConfig(
        bootstrap_servers=parse_bootstrap(bootstrap_servers),
        client_id=opts["client_id"],
        request_timeout=opts["request_timeout"],
        connect_timeout=opts["connect_timeout"],
        metadata_max_age=opts["metadata_max_age"],
        sasl=_sasl_factory(
            opts["sasl_mechanism"],
            opts["sasl_username"],
            opts["sasl_password"],
            opts["sasl_oauth_token"],
        ),
    )
    return config, Security(_ssl_context(opts["ssl"]), opts["ssl_server_hostname"])


#: Consumer keyword arguments (besides the client's), with Java-like defaults.
CONSUMER_OPTIONS: dict[str, Any] = {
    "auto_offset_reset": "latest",
    "fetch_min_bytes": 1,
    "fetch_max_bytes": 52_428_800,
    "fetch_max_wait": 0.5,
    "max_partition_fetch_bytes": 1_048_576,
    "max_poll_records": 500,
    "isolation_level": "read_uncommitted",
    "check_crcs": True,
    "default_api_timeout": 60.0,
    "client_rack": "",
}


#: Consumer group keyword arguments (used when ``group_id`` is given), Java defaults.
GROUP_OPTIONS: dict[str, Any] = {
    "group_id": None,
    "group_instance_id": None,
    "session_timeout": 45.0,
    "heartbeat_interval": 3.0,
    "max_poll_interval": 300.0,
    "enable_auto_commit": True,
    "auto_commit_interval": 5.0,
    "partition_assignment_strategy": ("range", "cooperative-sticky"),
}

_ASSIGNORS: dict[str, Callable[[], Assignor]] = {
    "range": RangeAssignor,
    "roundrobin": RoundRobinAssignor,
    "sticky": StickyAssignor,
    "cooperative-sticky": CooperativeStickyAssignor,
}


def group_config(options: Mapping[str, Any]) -> tuple[GroupConfig, list[Assignor]] | None:
    """The group settings from user keyword arguments; None without ``group_id``."""
    opts = {**GROUP_OPTIONS, **{k: v for k, v in options.items() if k in GROUP_OPTIONS}}
    if opts["group_id"] is None:
        extra = [k for k in options if k in GROUP_OPTIONS and k != "group_id"]
        if extra:
            raise TypeError(f"{', '.join(sorted(extra))} need(s) a group_id")
        return None
    strategy = opts.pop("partition_assignment_strategy")
    names = [strategy] if isinstance(strategy, str) else list(strategy)
    try:
        assignors = [_ASSIGNORS[name]() for name in names]
    except KeyError as exc:
        raise ValueError(f"unknown partition_assignment_strategy {exc.args[0]!r}") from None
    return GroupConfig(**opts), assignors


def consumer_config(
    bootstrap_servers: str | Iterable[str], options: Mapping[str, Any]
) -> tuple[ConsumerConfig, Security]:
    """Split user keyword arguments into the consumer core's config and the security settings."""
    consumer_opts = {k: v for k, v in options.items() if k in CONSUMER_OPTIONS}
    own = set(CONSUMER_OPTIONS) | set(GROUP_OPTIONS)
    client, security = client_config(
        bootstrap_servers, {k: v for k, v in options.items() if k not in own}
    )
    opts = {**CONSUMER_OPTIONS, **consumer_opts}
    opts["auto_offset_reset"] = OffsetResetPolicy(str(opts["auto_offset_reset"]).lower())
    level = opts["isolation_level"]
    if isinstance(level, str):
        level = IsolationLevel[level.upper()]
    opts["isolation_level"] = level
    return ConsumerConfig(client=client, **opts), security


# ------------------------------------------------------------------ records


class ConsumerRecord(NamedTuple):
    """One record with its partition, as the consumer iterators yield it."""

    topic: str
    partition: int
    offset: int
    timestamp: int
    timestamp_type: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes | None], ...]


# ------------------------------------------------------------------ the consumer


def event_error(event: Event) -> KafkaSansioError | None:
    """The exception a consumer raises for ``event`` when no callback takes events."""
    if isinstance(event, OffsetOutOfRange):
        where = ", ".join(f"{tp} at {offset}" for tp, offset in event.offsets.items())
        error: KafkaSansioError = OffsetOutOfRangeError(
            f"fetch positions out of range with no reset policy: {where}"
        )
    elif isinstance(event, NoOffsetForPartition):
        names = ", ".join(str(tp) for tp in event.partitions)
        error = PartitionEventError(f"no position and no reset policy for {names}: seek them")
    elif isinstance(event, LogTruncation):
        error = PartitionEventError(
            f"log of {event.partition} truncated below position {event.position} "
            f"(diverging at {event.diverging_offset}) and no reset policy"
        )
    elif isinstance(event, (FetchError, ClientError)):
        error = event.error
    else:
        return None
    error.event = event  # type: ignore[attr-defined]
    return error


class ConsumerState:
    """One consumer's adapter-side state: event routing, lookups, close.

    ``on_event`` (optional) receives every event the core reports
    (resets, out-of-range, truncation, fetch and client errors).  Without it,
    error events are raised from the next consumer call as exceptions with
    an ``event`` attribute, and informational ones (resets) are logged.
    """

    def __init__(
        self,
        core: ConsumerCore | GroupConsumerCore,
        driver: Driver,
        on_event: Callable[[Event], object] | None = None,
    ) -> None:
        #: The core the driver drives (the group core in a group, else the consumer core).
        self.top = core
        self.group = core if isinstance(core, GroupConsumerCore) else None
        #: The fetch engine: positions, seeks, lookups.
        self.core = core.consumer if isinstance(core, GroupConsumerCore) else core
        self.driver = driver
        self.on_event = on_event
        self.listener: Any = None
        self._rebalance: list[PartitionsRevoked | PartitionsLost | PartitionsAssigned] = []
        self._commits: dict[int, CommitResult] = {}
        self._commit_callbacks: dict[int, Callable[[CommitResult], object]] = {}
        self._committed: dict[int, CommittedResult] = {}
        self._results: dict[int, OffsetsResult] = {}
        self._errors: list[KafkaSansioError] = []
        self.closed = False
        #: Set by ``wakeup()``: the next wait of ``poll`` returns at once.
        self.woken = False
        self._held: list[tuple[TopicPartition, Record]] = []
        self._held_pos = 0
        self._kept: list[tuple[TopicPartition, Record]] = []

    # -------------------------------------------------------- events

    def group_metadata(self) -> ConsumerGroupMetadata:
        """The group, generation and member id now (for a transactional producer)."""
        group = self._group()
        m = group.membership
        in_group = m.in_generation()
        config = group.group_config
        return ConsumerGroupMetadata(
            config.group_id,
            m.generation if in_group else -1,
            m.member_id if in_group else "",
            config.group_instance_id,
        )

    def check(self) -> None:
        """Route the core's events; raise the oldest error the user has not seen."""
        for event in self.top.events():
            if isinstance(event, OffsetsResult):
                self._results[event.token] = event
            elif isinstance(event, (PartitionsRevoked, PartitionsLost, PartitionsAssigned)):
                self._rebalance.append(event)
            elif isinstance(event, CommitResult):
                callback = self._commit_callbacks.pop(event.token, None)
                if callback is not None:
                    callback(event)
                elif event.auto:
                    if event.error is not None:
                        log.warning("auto-commit failed: %s", event.error)
                else:
                    self._commits[event.token] = event
            elif isinstance(event, CommittedResult):
                self._committed[event.token] = event
            elif isinstance(event, GroupError):
                self._errors.append(event.error)
            elif self.on_event is not None:
                self.on_event(event)
            else:
                error = event_error(event)
                if error is not None:
                    self._errors.append(error)
                else:
                    log.info("%s", event)
        if self.driver.errors:
            self._errors.extend(self.driver.errors)
            self.driver.errors.clear()
        if self.core.client.errors:
            self._errors.extend(self.core.client.errors)
            self.core.client.errors.clear()
        if self._errors:
            raise self._errors.pop(0)

    def check_open(self) -> None:
        if self.closed:
            raise ClosedError("the consumer is closed")

    # -------------------------------------------------------- local calls

    def assign(self, partitions: Iterable[Any]) -> None:
        self.check_open()
        if self.group is not None and self.group.subscription():
            raise LocalProtocolError("the consumer is subscribed: unsubscribe before assign")
        tps = [TopicPartition(*tp) for tp in partitions]
        self.core.assign(tps, self.driver.now())
        self._drop_held(lambda tp: tp not in self.core.assignment())
        self.driver.flush()

    def seek(self, tp: Any, offset: int) -> None:
        self.check_open()
        tp = TopicPartition(*tp)
        self.core.seek(tp, offset, self.driver.now())
        self._drop_held(lambda held: held == tp)
        self.driver.flush()

    def seek_to(self, where: str, partitions: Iterable[Any]) -> None:
        """``where`` is "beginning" or "end"; no partitions means every assigned one."""
        self.check_open()
        tps = [TopicPartition(*tp) for tp in partitions] or sorted(self.core.assignment())
        if where == "beginning":
            self.core.seek_to_beginning(tps, self.driver.now())
        else:
            self.core.seek_to_end(tps, self.driver.now())
        moved = set(tps)
        self._drop_held(lambda tp: tp in moved)
        self.driver.flush()

    def pause(self, partitions: Iterable[Any]) -> None:
        self.check_open()
        self.core.pause([TopicPartition(*tp) for tp in partitions], self.driver.now())
        self.driver.flush()

    def resume(self, partitions: Iterable[Any]) -> None:
        self.check_open()
        self.core.resume([TopicPartition(*tp) for tp in partitions], self.driver.now())
        self.driver.flush()

    # -------------------------------------------------------- records held by an iterator

    def next_record(self) -> ConsumerRecord | None:
        """The next record an iterator took from the core and has not handed out yet.

        Iterators take a whole poll's worth of records and hand them out one
        at a time; whatever a caller leaves behind (``break``) stays here and
        comes first from the next ``poll`` or iterator, so nothing is lost.
        """
        held = self._held
        while self._held_pos < len(held):
            tp, record = held[self._held_pos]
            self._held_pos += 1
            if tp in self.core.paused():
                self._kept.append((tp, record))
                continue
            return ConsumerRecord(tp.topic, tp.partition, *record)
        self._normalize()
        return None

    def _normalize(self) -> None:
        """Fold the records an iterator set aside (paused partitions) back into the held list."""
        if self._held_pos or self._kept:
            self._held = self._kept + self._held[self._held_pos :]
            self._kept = []
            self._held_pos = 0

    def hold(self, records: Records) -> None:
        """Keep ``records`` for :meth:`next_record` (after what is held already)."""
        self._normalize()
        self._held.extend(records)

    def _take_held(self, max_records: int | None) -> Records:
        limit = self.core.config.max_poll_records if max_records is None else max_records
        out: dict[TopicPartition, list[Record]] = {}
        keep: list[tuple[TopicPartition, Record]] = []
        paused = self.core.paused()
        count = 0
        self._normalize()
        for tp, record in self._held:
            if count >= limit or tp in paused:
                keep.append((tp, record))
                continue
            out.setdefault(tp, []).append(record)
            count += 1
        self._held = keep
        by_partition: dict[TopicPartition, Sequence[Record]] = dict(out)
        return Records(by_partition, bool(keep) or self.core.buffered() > 0)

    def _drop_held(self, dropped: Callable[[TopicPartition], bool]) -> None:
        self._normalize()
        self._held = [(tp, r) for tp, r in self._held if not dropped(tp)]

    # -------------------------------------------------------- operations

    def poll(self, timeout: float, max_records: int | None) -> Op[Records]:
        """Records as soon as any are buffered, else empty after ``timeout`` seconds."""
        self.check_open()
        deadline = self.driver.now() + max(0.0, timeout)
        while True:
            if self.closed:
                return Records()
            self.check()
            yield from self._run_listeners()
            if self._held_pos < len(self._held) or self._kept:
                held = self._take_held(max_records)
                if held:
                    return held
            records = self.top.poll(self.driver.now(), max_records)
            if records or self.woken or self.driver.now() >= deadline:
                self.woken = False
                return records
            yield deadline

    def position(self, tp: Any, timeout: float | None) -> Op[int]:
        """The offset of the next record ``poll`` hands out for ``tp``; waits for a reset."""
        self.check_open()
        tp = TopicPartition(*tp)
        if tp not in self.core.assignment():
            raise ValueError(f"{tp} is not assigned to this consumer")
        self._normalize()
        for held_tp, record in self._held:
            if held_tp == tp:
                return int(record.offset)
        deadline = self._deadline(timeout)
        while True:
            self.check()
            position = self.core.position(tp)
            if position is not None:
                return position
            if self.driver.now() >= deadline:
                raise OperationTimeoutError(f"no position for {tp} within the timeout")
            yield deadline

    def offsets_for_times(
        self, timestamps: Mapping[Any, int], timeout: float | None
    ) -> Op[dict[TopicPartition, OffsetAndTimestamp | None]]:
        """The first offset at or after each timestamp (ms); None where there is none."""
        arg = {TopicPartition(*tp): ts for tp, ts in timestamps.items()}
        return self._lookup(self.core.offsets_for_times, arg, timeout)

    def beginning_offsets(
        self, partitions: Iterable[Any], timeout: float | None
    ) -> Op[dict[TopicPartition, int]]:
        tps = [TopicPartition(*tp) for tp in partitions]
        found = yield from self._lookup(self.core.beginning_offsets, tps, timeout)
        return {tp: answer.offset for tp, answer in found.items() if answer is not None}

    def end_offsets(
        self, partitions: Iterable[Any], timeout: float | None
    ) -> Op[dict[TopicPartition, int]]:
        tps = [TopicPartition(*tp) for tp in partitions]
        found = yield from self._lookup(self.core.end_offsets, tps, timeout)
        return {tp: answer.offset for tp, answer in found.items() if answer is not None}

    def _lookup(
        self, start: Callable[[Any, float, float], int], arg: Any, timeout: float | None
    ) -> Op[dict[TopicPartition, OffsetAndTimestamp | None]]:
        """Start one of the core's ListOffsets lookups and wait for its answer."""
        self.check_open()
        now = self.driver.now()
        wait = self.core.config.default_api_timeout if timeout is None else timeout
        token = start(arg, now, wait)
        self.driver.flush()
        try:
            while True:
                self.check()
                result = self._results.pop(token, None)
                if result is not None:
                    if result.error is not None:
                        raise result.error
                    return dict(result.offsets)
                # The core's own deadline ends the lookup with an error; this
                # one is a backstop a little later.
                yield now + wait + 1.0
        finally:
            self._results.pop(token, None)

    def _deadline(self, timeout: float | None) -> float:
        wait = self.core.config.default_api_timeout if timeout is None else timeout
        return self.driver.now() + wait

    # -------------------------------------------------------- consumer groups

    def _group(self) -> GroupConsumerCore:
        if self.group is None:
            raise LocalProtocolError("the consumer has no group_id")
        return self.group

    def subscribe(self, topics: Iterable[str] | None, pattern: Any, listener: Any) -> None:
        """Join the group for ``topics`` (or every topic matching ``pattern``)."""
        self.check_open()
        group = self._group()
        if self.core.assignment() and not group.subscription():
            raise LocalProtocolError("the consumer has assigned partitions: assign([]) first")
        self.listener = listener
        if pattern is not None:
            group.subscribe_pattern(pattern, self.driver.now())
        else:
            group.subscribe(list(topics or ()), self.driver.now())
        self.driver.flush()

    def unsubscribe(self) -> None:
        self.check_open()
        self._group().unsubscribe(self.driver.now())
        self._drop_held(lambda tp: True)
        self.driver.flush()

    def _run_listeners(self) -> Generator[ListenerCall, None, None]:
        """Call the user's rebalance listener for each pending event, then let the group go on.

        The group waits (heartbeats continue) until the listener returns; an
        exception from the listener still lets it go on, then reaches the user.
        """
        group = self.group
        while self._rebalance:
            event = self._rebalance.pop(0)
            if not isinstance(event, PartitionsAssigned):
                gone = set(event.partitions)
                self._drop_held(gone.__contains__)
            method = _listener_method(self.listener, event)
            try:
                if method is not None:
                    yield ListenerCall(method, (set(event.partitions),))
            finally:
                if group is not None:
                    group.rebalance_listener_done(self.driver.now())
                    self.driver.flush()

    def commit(self, offsets: Mapping[Any, Any] | None, timeout: float | None) -> Op[None]:
        """Commit ``offsets`` (default: every owned partition's position), retried until
        ``timeout``; raises the commit's error."""
        self.check_open()
        group = self._group()
        deadline = self._deadline(timeout)
        token = group.commit(self.driver.now(), offsets, retry_until=deadline)
        self.driver.flush()
        try:
            while True:
                self.check()
                result = self._commits.pop(token, None)
                if result is not None:
                    if result.error is not None:
                        raise result.error
                    return
                yield from self._run_listeners()
                yield deadline + 1.0
        finally:
            self._commits.pop(token, None)

    def commit_async(
        self, offsets: Mapping[Any, Any] | None, callback: Callable[[CommitResult], object] | None
    ) -> None:
        """Commit once, without waiting; ``callback(CommitResult)`` runs inside a later call."""
        self.check_open()
        token = self._group().commit(self.driver.now(), offsets)
        self._commit_callbacks[token] = callback or _log_commit
        self.driver.flush()

    def committed(
        self, partitions: Iterable[Any], timeout: float | None
    ) -> Op[dict[TopicPartition, OffsetAndMetadata | None]]:
        """The group's committed offsets for ``partitions`` (None where there is none)."""
        self.check_open()
        group = self._group()
        wait = self.core.config.default_api_timeout if timeout is None else timeout
        token = group.committed([TopicPartition(*tp) for tp in partitions], self.driver.now(), wait)
        self.driver.flush()
        deadline = self.driver.now() + wait + 1.0
        try:
            while True:
                self.check()
                result = self._committed.pop(token, None)
                if result is not None:
                    if result.error is not None:
                        raise result.error
                    return dict(result.offsets)
                yield deadline
        finally:
            self._committed.pop(token, None)

    def leave(self, timeout: float | None) -> Op[None]:
        """Leave the group cleanly (auto-commit, revoke listener, LeaveGroup) within ``timeout``."""
        group = self.group
        if group is None:
            return
        group.close(self.driver.now())
        self.driver.flush()
        deadline = self.driver.now() + (30.0 if timeout is None else timeout)
        while self.driver.now() < deadline:
            self.check()
            yield from self._run_listeners()
            if not group.pending_commits() and not group.awaiting_listener():
                break
            yield deadline
        # Give the LeaveGroup request a moment to leave the socket.
        self.driver.flush()


def _listener_method(listener: Any, event: Event) -> Callable[..., Any] | None:
    """The listener's method for a rebalance event (``on_partitions_lost`` falls back
    to ``on_partitions_revoked``, as in the Java client)."""
    if listener is None:
        return None
    names: tuple[str, ...]
    if isinstance(event, PartitionsAssigned):
        names = ("on_partitions_assigned",)
    elif isinstance(event, PartitionsLost):
        names = ("on_partitions_lost", "on_partitions_revoked")
    else:
        names = ("on_partitions_revoked",)
    for name in names:
        method = getattr(listener, name, None)
        if method is not None:
            return method  # type: ignore[no-any-return]
    return None


def _log_commit(result: CommitResult) -> None:
    if result.error is not None:
        log.warning("commit_async failed: %s", result.error)


# ------------------------------------------------------------------ the producer

#: Producer keyword arguments (besides the client's), with Java-like defaults.
PRODUCER_OPTIONS: dict[str, Any] = {
    "acks": "all",
    "linger": 0.005,
    "batch_size": 16_384,
    "buffer_memory": 33_554_432,
    "max_request_size": 1_048_576,
    "delivery_timeout": 120.0,
    "max_block": 60.0,
    "max_in_flight": 5,
    "enable_idempotence": True,
    "compression": "none",
    "partitioner": None,
    "transactional_id": None,
    "transaction_timeout": 60.0,
}


def producer_config(
    bootstrap_servers: str | Iterable[str], options: Mapping[str, Any]
) -> tuple[ProducerConfig, Security]:
    """Split user keyword arguments into the producer core's config and the security settings."""
    own = {k: v for k, v in options.items() if k in PRODUCER_OPTIONS}
    client, security = client_config(
        bootstrap_servers, {k: v for k, v in options.items() if k not in PRODUCER_OPTIONS}
    )
    opts = {**PRODUCER_OPTIONS, **own}
    acks = opts["acks"]
    opts["acks"] = -1 if acks in ("all", -1, "-1") else int(acks)
    if opts["acks"] != -1 and "enable_idempotence" not in own:
        opts["enable_idempotence"] = False
    return ProducerConfig(client=client, **opts), security


class ConsumerGroupMetadata(NamedTuple):
    """A group consumer's identity for ``send_offsets_to_transaction`` (``group_metadata()``).

    The group coordinator refuses the transaction's offsets when the member
    is no longer in this generation (its partitions went to another member).
    """

    group_id: str
    generation_id: int = -1
    member_id: str = ""
    group_instance_id: str | None = None


class RecordMetadata(NamedTuple):
    """Where a record was written.  ``timestamp`` is -1 unless the topic uses LogAppendTime."""

    topic: str
    partition: int
    offset: int
    timestamp: int


DeliveryCallback = Callable[[RecordMetadata | None, KafkaSansioError | None], object]


class _Outcome:
    """What the broker said about one batch; the futures of its records find it."""

    __slots__ = ("_index", "base_offset", "error", "partition", "timestamp", "tokens", "topic")

    def __init__(self, delivered: Delivered) -> None:
        self.topic, self.partition = delivered.partition
        self.base_offset = delivered.base_offset
        self.timestamp = delivered.timestamp_ms
        self.error = delivered.error
        self.tokens = delivered.tokens
        self._index: dict[int, int] | None = None

    def index(self, token: int) -> int | None:
        """Where ``token`` is in the batch (None: not in it); indexed on first use."""
        if self._index is None:
            self._index = dict(zip(self.tokens, range(len(self.tokens)), strict=True))
        return self._index.get(token)


#: Tokens per cell: a cell covers tokens ``key << CELL_BITS`` to the next cell's.
CELL_BITS = 8


class Cell:
    """The outcomes of the batches that hold any of 256 consecutive tokens.

    Futures point at the cell of their token and look their batch up in it;
    the producer forgets a cell once every token in it is resolved.  So the
    producer keeps no object per record: a future the caller drops is freed
    at once, and the garbage collector never walks thousands of futures
    waiting for their batches.
    """

    __slots__ = ("key", "left", "outcomes")

    def __init__(self, key: int) -> None:
        self.key = key
        self.outcomes: list[_Outcome] = []
        #: Tokens of this cell not resolved yet.
        self.left = 1 << CELL_BITS


class RecordFuture:
    """The outcome of one ``send``: :class:`RecordMetadata` or an exception.

    The flavours add the waiting: ``future.result(timeout)`` on the blocking
    producer, ``await future`` on asyncio and trio.  A future is its token and
    the :class:`Cell` where its batch's outcome will be; the metadata is built
    when asked for.
    """

    __slots__ = ("_cell", "_token")
    #: The producer whose adapter waits for this future (set by bind_futures).
    _owner: Any

    def __init__(self, cell: Cell, token: int) -> None:
        self._cell = cell
        self._token = token

    def _outcome(self) -> tuple[_Outcome, int] | None:
        token = self._token
        for outcome in self._cell.outcomes:
            i = outcome.index(token)
            if i is not None:
                return outcome, i
        return None

    def done(self) -> bool:
        return self._outcome() is not None

    def exception(self) -> KafkaSansioError | None:
        """The delivery error (None on success, or while not :meth:`done`)."""
        found = self._outcome()
        return None if found is None else found[0].error

    def value(self) -> RecordMetadata:
        """The metadata, or raise the delivery error; call only once :meth:`done`."""
        found = self._outcome()
        if found is None:
            raise RuntimeError("the record has not been acknowledged yet")
        outcome, i = found
        if outcome.error is not None:
            raise outcome.error
        base = outcome.base_offset
        offset = base + i if base >= 0 else -1
        return _new_tuple(
            RecordMetadata, (outcome.topic, outcome.partition, offset, outcome.timestamp)
        )


_new_tuple = tuple.__new__
_new_object = object.__new__

F = TypeVar("F", bound=RecordFuture)


def bind_futures(base: type[F], owner: Any) -> type[F]:
    """A subclass of ``base`` whose futures all belong to ``owner``.

    The send paths build these with ``object.__new__`` and two attribute
    stores (``_cell``, ``_token``) instead of calling ``__init__``: the
    producer's per-record cost.  ``_owner`` is a class attribute here.
    """
    namespace = {"__slots__": (), "_owner": owner, "__module__": base.__module__}
    namespace["__doc__"] = base.__doc__
    return type(base.__name__, (base,), namespace)


def _resolve(
    outcome: _Outcome, cells: dict[int, Cell], callbacks: dict[int, DeliveryCallback]
) -> None:
    """Resolve the futures of one batch's records, then call their callbacks in order.

    Every future of the batch is done before the first ``on_delivery(metadata,
    None)`` (or ``(None, error)``) runs, so a callback may look at any record
    of its batch.  The work per record happens in C (``Counter``, ``map``)
    except the callback calls themselves.
    """
    tokens = outcome.tokens
    for key, n in Counter(map(rshift, tokens, repeat(CELL_BITS))).items():
        cell = cells.get(key)
        if cell is not None:
            cell.outcomes.append(outcome)
            cell.left -= n
            if cell.left <= 0:
                del cells[key]
    if not callbacks:
        return
    called = list(map(callbacks.pop, tokens, repeat(None)))
    if called.count(None) == len(called):
        return
    error = outcome.error
    if error is not None:
        metadata: Iterable[RecordMetadata | None] = repeat(None)
    else:
        base = outcome.base_offset
        offsets = count(base) if base >= 0 else repeat(-1)
        topic, partition, ts = repeat(outcome.topic), repeat(outcome.partition), repeat(outcome.timestamp)
        fields = zip(topic, partition, offsets, ts, strict=False)
        metadata = map(_new_tuple, repeat(RecordMetadata), fields)
    for callback, meta in zip(called, metadata, strict=False):  # metadata never ends
        if callback is not None:
            try:
                callback(meta, error)
            except Exception:
                log.exception("a delivery callback raised")


class ProducerState:
    """One producer's adapter-side state: futures by token, fatal errors, flush and close."""

    def __init__(
        self, core: ProducerCore, driver: Driver, future_class: type[RecordFuture], owner: Any
    ) -> None:
        self.core = core
        self.driver = driver
        #: The futures of this producer: ``future_class`` with the owner built in.
        self.future_class = bind_futures(future_class, owner)
        self._owner = owner
        #: Cells of tokens not all resolved yet, by ``token >> CELL_BITS``.
        self.cells: dict[int, Cell] = {}
        #: Delivery callbacks of records not resolved yet, by token.
        self.callbacks: dict[int, DeliveryCallback] = {}
        #: The cell of the latest token (send paths check ``cell.key`` first).
        self.cell = Cell(-1)
        self._errors: list[KafkaSansioError] = []
        #: Outcomes of transaction calls, by token.
        self._transactions: dict[int, TransactionResult] = {}
        self.closed = False

    def route(self) -> None:
        """Resolve the futures of delivered records; keep fatal errors for the next call."""
        cells, callbacks = self.cells, self.callbacks
        for event in self.core.events():
            if isinstance(event, Delivered):
                _resolve(_Outcome(event), cells, callbacks)
            elif isinstance(event, TransactionResult):
                self._transactions[event.token] = event
            elif isinstance(event, (ProducerFailed, ClientError)):
                self._errors.append(event.error)
        if self.driver.errors:
            self._errors.extend(self.driver.errors)
            self.driver.errors.clear()

    def check(self) -> None:
        self.route()
        if self._errors:
            raise self._errors.pop(0)

    def send_now(
        self,
        topic: str,
        value: bytes | None,
        key: bytes | None,
        partition: int | None,
        headers: Any,
        timestamp_ms: int | None,
        on_delivery: DeliveryCallback | None,
    ) -> RecordFuture:
        """Queue a record (raises BufferFullError when there is no room: see :meth:`send`)."""
        if self.closed:
            raise ClosedError("the producer is closed")
        token = self.core.send(
            topic, value, self.driver.now(), key, partition, headers, timestamp_ms
        )
        cell = self.cell
        if token >> CELL_BITS != cell.key:
            cell = self.new_cell(token)
        if on_delivery is not None:
            self.callbacks[token] = on_delivery
        future = _new_object(self.future_class)
        future._cell = cell
        future._token = token
        return future

    def new_cell(self, token: int) -> Cell:
        """The cell of ``token``, the first of a new cell: it becomes :attr:`cell`."""
        key = token >> CELL_BITS
        cell = self.cells.get(key)
        if cell is None:
            cell = self.cells[key] = Cell(key)
            # Tokens before the first one sent (they start at 1) never come.
            cell.left -= token - (key << CELL_BITS)
        self.cell = cell
        return cell

    def send(self, *args: Any) -> Op[RecordFuture]:
        """:meth:`send_now`, waiting up to ``max_block`` for buffer room."""
        deadline = self.driver.now() + self.core.config.max_block
        while True:
            self.check()
            try:
                return self.send_now(*args)
            except BufferFullError:
                if self.driver.now() >= deadline:
                    raise
            yield deadline

    def wait(self, future: RecordFuture, timeout: float | None) -> Op[RecordMetadata]:
        """Until ``future`` is resolved (``OperationTimeoutError`` after ``timeout``)."""
        deadline = None if timeout is None else self.driver.now() + timeout
        while True:
            self.route()
            if future.done():
                return future.value()
            if deadline is not None and self.driver.now() >= deadline:
                raise OperationTimeoutError("the record was not acknowledged within the timeout")
            if self._errors:
                raise self._errors.pop(0)
            yield deadline

    def flush(self, timeout: float | None) -> Op[None]:
        """Send everything buffered now and wait until every record has its outcome."""
        self.core.flush(self.driver.now())
        deadline = None if timeout is None else self.driver.now() + timeout
        while True:
            self.check()
            if self.core.pending() == 0:
                return
            if deadline is not None and self.driver.now() >= deadline:
                raise OperationTimeoutError(
                    f"{self.core.pending()} records still unacknowledged after the timeout"
                )
            yield deadline

    def close(self, timeout: float | None) -> Op[None]:
        """Deliver what is buffered (up to ``timeout``), then fail the rest and close.

        An open transaction is aborted first (its EndTxn is awaited too).
        """
        if self.closed:
            return
        self.closed = True
        self.core.close(self.driver.now())
        deadline = None if timeout is None else self.driver.now() + timeout
        try:
            while not self.core.closed and (deadline is None or self.driver.now() < deadline):
                self.route()
                yield deadline
        finally:
            if not self.core.closed:
                self.core.abort(self.driver.now())
            self.route()

    def transaction(self, start: Callable[[float], int], timeout: float | None) -> Op[None]:
        """Start a transaction call of the core (``start(now)`` returns its token:
        ``core.init_transactions``, ``commit_transaction``, ``abort_transaction``)
        and wait for its outcome; raise its error.

        ``timeout`` defaults to ``max_block``.  After an
        ``OperationTimeoutError`` the call goes on in the core; calling the
        same method again waits for the same outcome.
        """
        self.check()
        now = self.driver.now()
        token = start(now)
        limit = self.core.config.max_block if timeout is None else timeout
        deadline = now + limit
        while True:
            self.route()
            result = self._transactions.pop(token, None)
            if result is not None:
                if result.error is not None:
                    raise result.error
                return
            if self._errors:
                raise self._errors.pop(0)
            if self.driver.now() >= deadline:
                raise OperationTimeoutError(f"{getattr(start, '__name__', 'the call')} did not finish within {limit} s")
            yield deadline

    def send_offsets(
        self, offsets: Mapping[Any, Any], metadata: ConsumerGroupMetadata, timeout: float | None
    ) -> Op[None]:
        """:meth:`transaction` for ``send_offsets_to_transaction`` with a consumer's metadata."""

        def send_offsets_to_transaction(now: float) -> int:
            return self.core.send_offsets_to_transaction(
                offsets,
                metadata.group_id,
                now,
                generation_id=metadata.generation_id,
                member_id=metadata.member_id,
                group_instance_id=metadata.group_instance_id,
            )

        return self.transaction(send_offsets_to_transaction, timeout)


# ------------------------------------------------------------------ the admin


class AdminState:
    """One admin client's adapter-side state: results by token."""

    def __init__(self, core: AdminCore, driver: Driver) -> None:
        self.core = core
        self.driver = driver
        self._results: dict[int, AdminResult[Any]] = {}
        self._errors: list[KafkaSansioError] = []
        self.closed = False

    def create_topics(
        self, topics: Iterable[Any], timeout: float | None, validate_only: bool
    ) -> Op[Any]:
        wanted = list(topics)
        return self.call(
            lambda now: self.core.create_topics(wanted, now, timeout, validate_only=validate_only)
        )

    def delete_topics(self, topics: Iterable[str], timeout: float | None) -> Op[Any]:
        names = list(topics)
        return self.call(lambda now: self.core.delete_topics(names, now, timeout))

    def create_partitions(self, new_totals: Mapping[str, int], timeout: float | None) -> Op[Any]:
        totals = dict(new_totals)
        return self.call(lambda now: self.core.create_partitions(totals, now, timeout))

    def list_offsets(self, specs: Mapping[Any, int], timeout: float | None) -> Op[Any]:
        wanted = {TopicPartition(*tp): spec for tp, spec in specs.items()}
        return self.call(lambda now: self.core.list_offsets(wanted, now, timeout))

    def describe_cluster(self, timeout: float | None) -> Op[Any]:
        return self.call(lambda now: self.core.describe_cluster(now, timeout))

    def describe_topics(self, topics: Iterable[str], timeout: float | None) -> Op[Any]:
        names = list(topics)
        return self.call(lambda now: self.core.describe_topics(names, now, timeout))

    def list_topics(self, timeout: float | None, include_internal: bool) -> Op[Any]:
        return self.call(
            lambda now: self.core.list_topics(now, timeout, include_internal=include_internal)
        )

    def call(self, start: Callable[[float], int]) -> Op[Any]:
        """Start a core call (``start(now)`` returns its token) and wait for its result.

        The core ends every call by its deadline, so this wait is bounded.
        Raises the call's error (with the :class:`AdminResult` as ``result``).
        """
        if self.closed:
            raise ClosedError("the admin client is closed")
        token = start(self.driver.now())
        self.driver.flush()
        try:
            while True:
                for event in self.core.events():
                    if isinstance(event, AdminResult):
                        self._results[event.token] = event
                    elif isinstance(event, ClientError):
                        self._errors.append(event.error)
                self._errors.extend(self.driver.errors)
                self.driver.errors.clear()
                result = self._results.pop(token, None)
                if result is not None:
                    if result.error is not None:
                        result.error.result = result  # type: ignore[attr-defined]
                        raise result.error
                    return result.value
                if self._errors:
                    raise self._errors.pop(0)
                yield None
        finally:
            self._results.pop(token, None)
