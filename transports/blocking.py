"""Blocking (threaded) clients: the core driven by :class:`BlockingDriver` on ``selectors``.

Use a client from one thread.  ``wakeup()`` and ``close()`` may be called
from any other thread: ``wakeup`` makes a waiting ``poll`` return early
(empty), ``close`` ends it and closes the client.  I/O happens while a call
waits (``poll``, ``flush``, ...) and, once no call has been made for 0.1 s,
in the client's background thread (``background=True``, the default), which
hands over to the next call: heartbeats, fetches and lingering batches go on
while the application works between calls.  Listeners and delivery
callbacks run inside calls, in the application's thread.
"""

from __future__ import annotations

import logging
import random
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, TypeVar, cast

from kafka_sansio import (
    AdminConfig,
    AdminCore,
    BufferFullError,
    ClusterDescription,
    ConsumerCore,
    DrivenCore,
    Event,
    KafkaSansioError,
    NewTopic,
    OffsetAndTimestamp,
    ProducerCore,
    Records,
    TopicCreated,
    TopicDescription,
    TopicListing,
    TopicPartition,
)
from kafka_sansio._group_consumer import GroupConsumerCore
from kafka_sansio._group_events import CommitResult, OffsetAndMetadata

from ._blocking import BlockingDriver
from ._errors import ClosedError, TransportError
from ._ops import (
    CELL_BITS,
    AdminState,
    ConsumerGroupMetadata,
    ConsumerRecord,
    ConsumerState,
    DeliveryCallback,
    ListenerCall,
    Op,
    ProducerState,
    RecordMetadata,
    Security,
    client_config,
    consumer_config,
    group_config,
    producer_config,
)
from ._ops import RecordFuture as _RecordFuture

__all__ = [
    "Admin",
    "BlockingDriver",
    "Consumer",
    "ConsumerGroupMetadata",
    "ConsumerRecord",
    "Producer",
    "RecordFuture",
    "RecordMetadata",
]

T = TypeVar("T")
_new_object = object.__new__
log = logging.getLogger("kafka_sansio")


#: Seconds without a call before the background thread moves data itself.
IDLE_PUMP_AFTER = 0.1
#: How long a call waits at a time for the background thread to let go.
_TAKE_OVER_WAIT = 0.05


class _Runner:
    """Runs operations on a BlockingDriver and guards it against use from two threads.

    With ``background`` a daemon thread (the idle pump) steps in when no call
    has been made for :data:`IDLE_PUMP_AFTER` seconds: it drives the
    connections (heartbeats, fetches, lingering batches, answers) until the
    next call, which takes over at once.  The core is only ever touched by the
    thread holding ``_busy``: a call, or the pump between calls.
    """

    def __init__(self, core: DrivenCore, security: Security, *, background: bool = False) -> None:
        self.driver = BlockingDriver(
            core, ssl_context=security.ssl_context, server_hostname=security.server_hostname
        )
        # Reentrant: a rebalance listener runs inside poll and may call commit.
        self._busy = threading.RLock()
        self._try_busy = self._busy.acquire
        self._free = self._busy.release
        #: close() was asked for (from any thread); plain flags keep enter/leave cheap.
        self._closing = False
        self._done = False
        #: Inside the close hook (a group's revoke listener may still commit).
        self._in_close = False
        self._closed = threading.Event()
        self._close_hook: Callable[[], None] = lambda: None
        #: The driver's clock, called directly on the hot paths.
        self.now: Callable[[], float] = self.driver.clock
        #: Makes the check-and-set of ``_done`` in close_now atomic.
        self._close_lock = threading.Lock()
        #: Calls so far: the idle pump's sign that the application is active.
        self.calls = 0
        #: The idle pump holds ``_busy`` (set after taking it, cleared before letting go).
        self._pumping = False
        #: A call waits for the idle pump to let go.
        self._want = False
        self._pump: threading.Thread | None = None
        self._owner: Callable[[], object] = lambda: None
        if background:
            self._pump = threading.Thread(
                target=self._idle_pump, name="kafka-sansio-io", daemon=True
            )

    def start(self, owner: object) -> None:
        """Start the idle pump, if asked for: call once the client ``owner`` is set up.

        The pump holds ``owner`` weakly: a client dropped without ``close``
        has its connections closed once it is collected.
        """
        if self._pump is not None and not self._pump.is_alive():
            self._owner = weakref.ref(owner)
            self._pump.start()

    @property
    def errors(self) -> list[KafkaSansioError]:
        return self.driver.errors

    @property
    def closed(self) -> bool:
        return self._closing

    def flush(self) -> None:
        self.driver.flush()

    def enter(self) -> None:
        if self._closing and not self._in_close:
            raise ClosedError("the client is closed")
        if not self._try_busy(False) and not self._take_from_pump():
            raise RuntimeError("a client is not safe for use from several threads at once")
        self.calls += 1

    def _take_from_pump(self) -> bool:
        """Take ``_busy`` from the idle pump; False if another thread is inside a call.

        The pump lets go as soon as it sees ``_want`` (the wakeup ends its
        wait).  A holder that is not the pump twice in a row is another call.
        """
        if self._pump is None:
            return False
        self._want = True
        try:
            strikes = 0
            while strikes < 2:
                self.driver.wakeup()
                if self._busy.acquire(timeout=_TAKE_OVER_WAIT):
                    return True
                strikes = 0 if self._pumping else strikes + 1
            return False
        finally:
            self._want = False

    def _idle_pump(self) -> None:
        """The background thread: drive the connections while no call is made."""
        seen = -1
        while not self._closed.wait(IDLE_PUMP_AFTER):
            if self._owner() is None and self._pump_closes():
                return  # the client was dropped without close()
            if self.calls != seen or self._closing:
                seen = self.calls  # a call came during the last interval: not idle
                continue
            if not self._try_busy(False):
                continue  # inside a long call, which moves data itself
            self._pumping = True
            try:
                while not (self._want or self._closing or self.driver.closed):
                    self.driver.run_once(1.0)
            except Exception:
                # A failure here would otherwise vanish with the thread: keep it
                # for the next call, and stop pumping.
                log.exception("the background I/O thread failed")
                self.driver.errors.append(TransportError("the background I/O thread failed"))
                return
            finally:
                self._pumping = False
                self._free()

    def _pump_closes(self) -> bool:
        """Close the connections of a client nobody holds any more (True when done)."""
        if not self._try_busy(False):
            return False
        try:
            self._closing = True
            self.close_now()
        finally:
            self._free()
        return True

    def leave(self) -> None:
        self._free()
        if self._closing and not self._done:
            self.close_now()

    def call(self, method: Callable[..., T], *args: Any) -> T:
        """``method(*args)`` as one call of the client (thread guard around it)."""
        self.enter()
        try:
            return method(*args)
        finally:
            self.leave()

    def wait(self, op: Callable[..., Op[T]], *args: Any) -> T:
        """Run the operation ``op(*args)`` as one call of the client, pumping I/O as it waits."""
        self.enter()
        try:
            return self.run(op(*args))
        finally:
            self.leave()

    def run(self, op: Op[T]) -> T:
        driver = self.driver
        try:
            step = next(op)
            while True:
                if isinstance(step, ListenerCall):
                    try:
                        step.function(*step.args)
                    except Exception as exc:
                        step = op.throw(exc)
                        continue
                else:
                    wait = 1.0 if step is None else max(0.0, step - driver.clock())
                    driver.run_once(min(wait, 1.0))
                step = op.send(None)
        except StopIteration as stop:
            driver.flush()
            return stop.value  # type: ignore[no-any-return]
        finally:
            op.close()

    def close(self, on_close: Callable[[], None], timeout: float | None) -> None:
        """Close now, or (if another thread is inside a call) make it close and wait."""
        self._close_hook = on_close
        if self._done:
            return
        self._closing = True
        if self._busy.acquire(blocking=False) or self._take_from_pump():
            try:
                self.close_now()
            finally:
                self._busy.release()
        else:
            # Another thread is inside a call: it closes when it leaves.
            self.driver.wakeup()
            self._closed.wait(timeout)

    def close_now(self) -> None:
        with self._close_lock:
            if self._done:
                return
            self._done = True
        self._in_close = True
        try:
            self._close_hook()
            self.driver.flush()
            self.driver.close()
        finally:
            self._in_close = False
            self._closed.set()


class Consumer:
    """A consumer in assign mode.

    ``Consumer("host:9092", auto_offset_reset="earliest")``; options and their
    defaults are listed in ``docs/transports.md`` (Java consumer defaults,
    durations in seconds).  ``on_event`` receives every consumer event
    (resets, out-of-range, truncation, errors); without it, error events are
    raised from the next call as exceptions with an ``event`` attribute.
    """

    def __init__(
        self,
        bootstrap_servers: str | Iterable[str] = "127.0.0.1:9092",
        *,
        on_event: Callable[[Event], object] | None = None,
        background: bool = True,
        **options: Any,
    ) -> None:
        self.config, security = consumer_config(bootstrap_servers, options)
        grouped = group_config(options)
        top: ConsumerCore | GroupConsumerCore
        if grouped is None:
            top = ConsumerCore(self.config, random.random)
        else:
            top = GroupConsumerCore(self.config, grouped[0], random.random, grouped[1])
        self._core = top.consumer if isinstance(top, GroupConsumerCore) else top
        self._runner = _Runner(top, security, background=background)
        self._state = ConsumerState(top, self._runner, on_event)
        self._runner.flush()
        self._runner.start(self)

    def __enter__(self) -> Consumer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -------------------------------------------------------- local calls

    def assign(self, partitions: Iterable[TopicPartition]) -> None:
        """Consume exactly these partitions (replacing the previous assignment)."""
        self._runner.call(self._state.assign, partitions)

    def assignment(self) -> set[TopicPartition]:
        """The partitions assigned (by ``assign``, or by the group)."""
        return set(self._core.assignment())

    def seek(self, partition: TopicPartition, offset: int) -> None:
        """The next ``poll`` returns ``partition``'s records from ``offset``."""
        self._runner.call(self._state.seek, partition, offset)

    # -------------------------------------------------------- consumer groups

    def subscribe(
        self,
        topics: Iterable[str] | None = None,
        *,
        pattern: str | None = None,
        listener: Any = None,
    ) -> None:
        """Join the group (``group_id``) for ``topics``, or every topic matching ``pattern``.

        ``listener`` may define ``on_partitions_revoked(partitions)``,
        ``on_partitions_assigned(partitions)`` and ``on_partitions_lost(partitions)``;
        they run inside ``poll``, where the Java consumer calls its listener, and
        may call ``commit`` (revoked) or ``seek`` (assigned).  Their exceptions
        reach the caller of ``poll``.
        """
        self._runner.call(self._state.subscribe, topics, pattern, listener)

    def unsubscribe(self) -> None:
        """Give the partitions up and leave the group."""
        self._runner.call(self._state.unsubscribe)

    def subscription(self) -> frozenset[str]:
        group = self._state.group
        return frozenset() if group is None else group.subscription()

    def group_metadata(self) -> ConsumerGroupMetadata:
        """The group, generation and member id, for ``send_offsets_to_transaction``."""
        return self._runner.call(self._state.group_metadata)

    def commit(
        self, offsets: Mapping[TopicPartition, Any] | None = None, timeout: float | None = None
    ) -> None:
        """Commit ``offsets`` (default: the position of every owned partition) and wait.

        Raises the commit's error: ``CommitFailedError`` when the member's
        generation is gone, ``RetriableCommitFailedError`` after ``timeout``.
        """
        self._runner.wait(self._state.commit, offsets, timeout)

    def commit_async(
        self,
        offsets: Mapping[TopicPartition, Any] | None = None,
        callback: Callable[[CommitResult], object] | None = None,
    ) -> None:
        """Commit once without waiting; ``callback(CommitResult)`` runs inside a later call."""
        self._runner.call(self._state.commit_async, offsets, callback)

    def committed(
        self, partitions: Iterable[TopicPartition], timeout: float | None = None
    ) -> dict[TopicPartition, OffsetAndMetadata | None]:
        """The group's committed offsets (None where nothing is committed)."""
        return self._runner.wait(self._state.committed, partitions, timeout)

    def seek_to_beginning(self, *partitions: TopicPartition) -> None:
        """Move to the log start (of every assigned partition when none are named)."""
        self._runner.call(self._state.seek_to, "beginning", partitions)

    def seek_to_end(self, *partitions: TopicPartition) -> None:
        """Move to the log end (of every assigned partition when none are named)."""
        self._runner.call(self._state.seek_to, "end", partitions)

    def pause(self, *partitions: TopicPartition) -> None:
        """Stop fetching these partitions; records already fetched wait for ``resume``."""
        self._runner.call(self._state.pause, partitions)

    def resume(self, *partitions: TopicPartition) -> None:
        self._runner.call(self._state.resume, partitions)

    def paused(self) -> set[TopicPartition]:
        return self._core.paused()

    def highwater(self, partition: TopicPartition) -> int | None:
        """The high watermark the last fetch of ``partition`` reported."""
        return self._core.highwater(TopicPartition(*partition))

    # -------------------------------------------------------- waiting calls

    def poll(self, timeout: float = 0.0, max_records: int | None = None) -> Records:
        """Buffered records at once, else wait up to ``timeout`` seconds for some.

        Returns empty early after ``wakeup()`` or ``close()`` from another thread.
        """
        return self._runner.wait(self._state.poll, timeout, max_records)

    def position(self, partition: TopicPartition, timeout: float | None = None) -> int:
        """The offset of the next record for ``partition``, waiting for a pending reset."""
        return self._runner.wait(self._state.position, partition, timeout)

    def offsets_for_times(
        self, timestamps: Mapping[TopicPartition, int], timeout: float | None = None
    ) -> dict[TopicPartition, OffsetAndTimestamp | None]:
        """The first offset at or after each timestamp (ms); None where there is none."""
        return self._runner.wait(self._state.offsets_for_times, timestamps, timeout)

    def beginning_offsets(
        self, partitions: Iterable[TopicPartition], timeout: float | None = None
    ) -> dict[TopicPartition, int]:
        return self._runner.wait(self._state.beginning_offsets, partitions, timeout)

    def end_offsets(
        self, partitions: Iterable[TopicPartition], timeout: float | None = None
    ) -> dict[TopicPartition, int]:
        return self._runner.wait(self._state.end_offsets, partitions, timeout)

    def records(self, timeout: float | None = None) -> Iterator[ConsumerRecord]:
        """Records one by one; ends when none arrive for ``timeout`` seconds, or on close.

        Leaving the loop early loses nothing: records taken but not yet
        yielded come first from the next ``poll`` or iterator.
        """
        state = self._state
        wait = 3600.0 if timeout is None else timeout
        while not state.closed:
            record = state.next_record()
            if record is not None:
                yield record
                continue
            try:
                batch = self.poll(wait)
            except ClosedError:
                return
            if batch:
                state.hold(batch)
            elif state.closed or timeout is not None:
                return

    def __iter__(self) -> Iterator[ConsumerRecord]:
        return self.records()

    # -------------------------------------------------------- threads

    def wakeup(self) -> None:
        """Make a ``poll`` waiting in another thread return (empty) now; thread-safe."""
        self._state.woken = True
        self._runner.driver.wakeup()

    def close(self, timeout: float | None = 30.0) -> None:
        """Close the consumer; from another thread, a waiting ``poll`` returns first.

        In a group it first leaves cleanly (auto-commit, the revoke listener,
        LeaveGroup), waiting at most ``timeout``.
        """
        state = self._state

        def shut() -> None:
            if state.group is not None and not state.closed:
                self._runner.run(state.leave(timeout))
            state.closed = True
            if state.group is not None:
                state.group.shutdown()
            else:
                self._core.close()

        if state.group is None:
            state.closed = True
        state.woken = True  # a poll waiting in another thread returns now
        self._runner.close(shut, timeout)


# ------------------------------------------------------------------ producer


class RecordFuture(_RecordFuture):
    """The outcome of one ``send``: ``future.result(timeout)`` waits for it."""

    __slots__ = ()

    def result(self, timeout: float | None = None) -> RecordMetadata:
        """The record's metadata once acknowledged (pumps I/O meanwhile), or its error."""
        if self.done():
            return self.value()
        producer: Producer = self._owner
        return producer._runner.wait(producer._state.wait, self, timeout)

    get = result


class Producer:
    """A producer: ``send`` queues a record and returns a :class:`RecordFuture`.

    ``Producer("host:9092", acks="all", linger=0.005, compression="lz4")``;
    options and defaults (Java's) are listed in ``docs/transports.md``.  I/O
    happens inside calls (``send`` moves data every few dozen records and
    while it waits for buffer room, ``flush``/``result``/``poll`` while they
    wait) and, between calls, in the background thread.  Delivery callbacks
    (``on_delivery``) run inside calls.
    """

    def __init__(
        self,
        bootstrap_servers: str | Iterable[str] = "127.0.0.1:9092",
        *,
        background: bool = True,
        **options: Any,
    ) -> None:
        self.config, security = producer_config(bootstrap_servers, options)
        self._core = ProducerCore(
            self.config, random.random, wall_offset=time.time() - time.monotonic()
        )
        self._runner = _Runner(self._core, security, background=background)
        self._state = ProducerState(self._core, self._runner, RecordFuture, self)
        # Bound once for the per-record path of send().
        self._core_send = self._core.send
        self._clock = self._runner.now
        # This module's RecordFuture, bound to this producer.
        self._future_class = cast("type[RecordFuture]", self._state.future_class)
        self._try_busy = self._runner._try_busy
        self._free = self._runner._free
        self._runner.start(self)

    def __enter__(self) -> Producer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def send(
        self,
        topic: str,
        value: bytes | None,
        *,
        key: bytes | None = None,
        partition: int | None = None,
        headers: Sequence[tuple[str, bytes | None]] = (),
        timestamp_ms: int | None = None,
        on_delivery: DeliveryCallback | None = None,
    ) -> RecordFuture:
        """Queue a record; waits (pumping I/O) only while the buffer is full, up to ``max_block``."""
        runner = self._runner
        # runner.enter() inlined: this is the producer's per-record path.
        if runner._closing or not self._try_busy(False):
            runner.enter()
        try:
            state = self._state
            if state.closed:
                raise ClosedError("the producer is closed")
            try:
                token = self._core_send(
                    topic, value, self._clock(), key, partition, headers, timestamp_ms
                )
            except BufferFullError:
                args = (topic, value, key, partition, headers, timestamp_ms, on_delivery)
                future: RecordFuture = runner.run(state.send(*args))  # type: ignore[assignment]
            else:
                # ProducerState.send_now inlined: the hot path.
                cell = state.cell
                if token >> CELL_BITS != cell.key:
                    cell = state.new_cell(token)
                if on_delivery is not None:
                    state.callbacks[token] = on_delivery
                future = _new_object(self._future_class)
                future._cell = cell
                future._token = token
            runner.calls += 1
            if not runner.calls & 63:
                runner.driver.run_once(0.0)
                state.route()
        finally:
            self._free()
            if runner._closing and not runner._done:
                runner.close_now()
        return future

    # -------------------------------------------------------- transactions

    def init_transactions(self, timeout: float | None = None) -> None:
        """Get the producer id for ``transactional_id``, fencing older producers with it.

        Call once before the first transaction.  Waits up to ``timeout``
        (default ``max_block``); calling again after a timeout waits for the
        same outcome.
        """
        self._runner.wait(self._state.transaction, self._core.init_transactions, timeout)

    def begin_transaction(self) -> None:
        """Open a transaction; ``send`` is refused outside one."""
        self._runner.call(self._core.begin_transaction)

    def send_offsets_to_transaction(
        self,
        offsets: Mapping[TopicPartition, Any],
        group_metadata: ConsumerGroupMetadata,
        timeout: float | None = None,
    ) -> None:
        """Commit a consumer's ``offsets`` (next offsets to read) with the transaction.

        ``group_metadata`` is ``consumer.group_metadata()``: the group
        coordinator refuses the offsets of a member that lost its partitions.
        """
        self._runner.wait(self._state.send_offsets, offsets, group_metadata, timeout)

    def commit_transaction(self, timeout: float | None = None) -> None:
        """Send every buffered record, then commit the transaction.

        Raises the error that made the transaction fail (then only
        :meth:`abort_transaction` is left), or a fatal one such as
        ``ProducerFencedError`` (close the producer).
        """
        self._runner.wait(self._state.transaction, self._core.commit_transaction, timeout)

    def abort_transaction(self, timeout: float | None = None) -> None:
        """Abort: records not sent yet fail with ``TransactionAbortedError``."""
        self._runner.wait(self._state.transaction, self._core.abort_transaction, timeout)

    def poll(self, timeout: float = 0.0) -> None:
        """Move data and run delivery callbacks for up to ``timeout`` seconds."""
        self._runner.enter()
        try:
            deadline = self._runner.now() + timeout
            while True:
                self._runner.driver.run_once(max(0.0, deadline - self._runner.now()))
                self._state.check()
                if self._runner.now() >= deadline:
                    return
        finally:
            self._runner.leave()

    def flush(self, timeout: float | None = None) -> None:
        """Send everything buffered now; return when every record has its outcome."""
        self._runner.wait(self._state.flush, timeout)

    def close(self, timeout: float | None = 30.0) -> None:
        """Deliver what is buffered (up to ``timeout``), fail the rest, close."""
        if not self._state.closed and not self._runner.closed:
            self._runner.wait(self._state.close, timeout)
        self._runner.close(lambda: None, timeout)


# ------------------------------------------------------------------ admin


class Admin:
    """An admin client; every call waits for the answer (or its timeout) and raises the
    first error, whose ``result`` attribute holds the per-item answers."""

    def __init__(
        self, bootstrap_servers: str | Iterable[str] = "127.0.0.1:9092", **options: Any
    ) -> None:
        timeout = options.pop("default_api_timeout", 60.0)
        client, security = client_config(bootstrap_servers, options)
        self.config = AdminConfig(client=client, default_api_timeout=timeout)
        self._core = AdminCore(self.config, random.random)
        self._runner = _Runner(self._core, security)
        self._state = AdminState(self._core, self._runner)

    def __enter__(self) -> Admin:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def create_topics(
        self,
        topics: Iterable[NewTopic | str],
        timeout: float | None = None,
        *,
        validate_only: bool = False,
    ) -> dict[str, TopicCreated]:
        created: dict[str, TopicCreated] = self._runner.wait(
            self._state.create_topics, topics, timeout, validate_only
        )
        return created

    def delete_topics(self, topics: Iterable[str], timeout: float | None = None) -> None:
        self._runner.wait(self._state.delete_topics, topics, timeout)

    def create_partitions(
        self, new_totals: Mapping[str, int], timeout: float | None = None
    ) -> None:
        self._runner.wait(self._state.create_partitions, new_totals, timeout)

    def list_offsets(
        self, specs: Mapping[TopicPartition, int], timeout: float | None = None
    ) -> dict[TopicPartition, OffsetAndTimestamp | None]:
        found: dict[TopicPartition, OffsetAndTimestamp | None] = self._runner.wait(
            self._state.list_offsets, specs, timeout
        )
        return found

    def describe_cluster(self, timeout: float | None = None) -> ClusterDescription:
        cluster: ClusterDescription = self._runner.wait(self._state.describe_cluster, timeout)
        return cluster

    def describe_topics(
        self, topics: Iterable[str], timeout: float | None = None
    ) -> dict[str, TopicDescription]:
        described: dict[str, TopicDescription] = self._runner.wait(
            self._state.describe_topics, topics, timeout
        )
        return described

    def list_topics(
        self, timeout: float | None = None, *, include_internal: bool = False
    ) -> dict[str, TopicListing]:
        listed: dict[str, TopicListing] = self._runner.wait(
            self._state.list_topics, timeout, include_internal
        )
        return listed

    def close(self) -> None:
        self._state.closed = True
        self._runner.close(self._core.close, 30.0)
