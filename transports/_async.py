"""The asyncio and trio clients, written once.

:class:`AsyncConsumer` holds everything both flavours share; each flavour
(``kafka_sansio.transports.asyncio`` and ``kafka_sansio.transports.trio``)
only says how its driver is opened and closed.  Operations come from
:mod:`._ops` and run through :func:`run`.
"""

from __future__ import annotations

import inspect
import random
import time
from collections.abc import AsyncIterator, Callable, Generator, Iterable, Mapping, Sequence
from typing import Any, Protocol, TypeVar, cast

from kafka_sansio import (
    AdminConfig,
    AdminCore,
    BufferFullError,
    ClusterDescription,
    ConsumerCore,
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

from ._errors import ClosedError
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
    RecordFuture,
    RecordMetadata,
    Security,
    client_config,
    consumer_config,
    group_config,
    producer_config,
)

_new_object = object.__new__

__all__ = [
    "AsyncAdmin",
    "AsyncClient",
    "AsyncConsumer",
    "AsyncDriver",
    "AsyncProducer",
    "AsyncRecordFuture",
    "run",
]

T = TypeVar("T")


class AsyncDriver(Protocol):
    errors: list[KafkaSansioError]
    closed: bool
    #: Called after every input the driver fed to the core (routes producer deliveries).
    on_progress: Callable[[], None] | None
    #: A flush is already scheduled by :meth:`flush_soon` (read on the send path).
    flush_scheduled: bool

    def now(self) -> float: ...
    def flush(self) -> None: ...
    async def wait_until(self, deadline: float | None) -> None: ...
    async def checkpoint_if_cancelled(self) -> None: ...
    async def checkpoint(self) -> None: ...
    async def yield_now(self) -> None: ...
    async def wait_closed(self, timeout: float) -> None: ...
    def flush_soon(self) -> None: ...
    def close(self) -> None: ...


async def run(op: Op[T], driver: AsyncDriver) -> T:
    """Run an operation, waiting on ``driver`` whenever it yields a deadline.

    If the caller is cancelled while waiting, the operation is closed where
    it stood: it had not taken anything out of the core yet.
    """
    await driver.checkpoint_if_cancelled()
    try:
        step = next(op)
        while True:
            driver.flush()
            if isinstance(step, ListenerCall):
                try:
                    result = step.function(*step.args)
                    if inspect.isawaitable(result):
                        await result
                except Exception as exc:
                    step = op.throw(exc)
                    continue
            else:
                await driver.wait_until(step)
            step = op.send(None)
    except StopIteration as stop:
        driver.flush()
        await driver.checkpoint()
        return stop.value  # type: ignore[no-any-return]
    finally:
        driver.flush()
        op.close()


class AsyncClient:
    """What the async clients share: the driver's lifecycle (flavour hooks) and ``async with``."""

    _driver: AsyncDriver | None = None
    _core: Any

    async def _open_driver(self, security: Security) -> AsyncDriver:
        raise NotImplementedError

    async def _close_driver(self) -> None:
        raise NotImplementedError

    async def _start(self, security: Security) -> AsyncDriver:
        self._driver = await self._open_driver(security)
        return self._driver

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        raise NotImplementedError


class AsyncConsumer(AsyncClient):
    """A consumer in assign mode for an async framework (see the flavour modules).

    Use it as ``async with Consumer("host:9092", auto_offset_reset="earliest") as c``.
    Methods that only change local state (``assign``, ``seek``, ``pause``, ...)
    are plain calls; those that wait for the cluster are coroutines.
    ``on_event`` receives every consumer event (resets, out-of-range, ...);
    without it, error events are raised from the next awaited call.
    """

    def __init__(
        self,
        bootstrap_servers: str | Iterable[str] = "127.0.0.1:9092",
        *,
        on_event: Callable[[Event], object] | None = None,
        **options: Any,
    ) -> None:
        self.config, self._security = consumer_config(bootstrap_servers, options)
        grouped = group_config(options)
        self._top: ConsumerCore | GroupConsumerCore
        if grouped is None:
            self._top = ConsumerCore(self.config, random.random)
        else:
            self._top = GroupConsumerCore(self.config, grouped[0], random.random, grouped[1])
        # The driver drives the outermost core; ``_fetcher`` is the fetch engine.
        self._core = self._top
        self._fetcher: ConsumerCore = (
            self._top.consumer if isinstance(self._top, GroupConsumerCore) else self._top
        )
        self._on_event = on_event
        self._state: ConsumerState | None = None

    async def __aenter__(self: Any) -> Any:
        driver = await self._start(self._security)
        self._state = ConsumerState(self._top, driver, self._on_event)
        driver.flush()
        return self

    async def close(self, timeout: float | None = 30.0) -> None:
        """Close the connections; a ``poll`` waiting in another task returns empty.

        In a group it first leaves cleanly (auto-commit, the revoke listener,
        LeaveGroup), waiting at most ``timeout``.
        """
        state = self._state
        if state is None or self._driver is None or self._driver.closed:
            return
        try:
            if state.group is not None and not state.closed:
                state.woken = True
                await run(state.leave(timeout), self._driver)
        finally:
            if not state.closed:
                state.closed = True
                if state.group is not None:
                    state.group.shutdown()
                else:
                    self._fetcher.close()
            self._driver.close()
            await self._close_driver()

    @property
    def _st(self) -> ConsumerState:
        if self._state is None:
            raise ClosedError("use the consumer inside 'async with'")
        self._state.check_open()
        return self._state

    # -------------------------------------------------------- local calls

    def assign(self, partitions: Iterable[TopicPartition]) -> None:
        """Consume exactly these partitions (replacing the previous assignment)."""
        self._st.assign(partitions)

    def assignment(self) -> set[TopicPartition]:
        """The partitions assigned (by ``assign``, or by the group)."""
        return set(self._fetcher.assignment())

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
        ``on_partitions_assigned(partitions)`` and ``on_partitions_lost(partitions)``,
        plain or ``async``; they run inside ``poll``, where the Java consumer calls
        its listener, and may ``await consumer.commit()`` or ``seek``.  Their
        exceptions reach the caller of ``poll``.
        """
        self._st.subscribe(topics, pattern, listener)

    def unsubscribe(self) -> None:
        """Give the partitions up and leave the group."""
        self._st.unsubscribe()

    def subscription(self) -> frozenset[str]:
        group = self._st.group
        return frozenset() if group is None else group.subscription()

    def group_metadata(self) -> ConsumerGroupMetadata:
        """The group, generation and member id, for ``send_offsets_to_transaction``."""
        return self._st.group_metadata()

    async def commit(
        self, offsets: Mapping[TopicPartition, Any] | None = None, timeout: float | None = None
    ) -> None:
        """Commit ``offsets`` (default: the position of every owned partition) and wait."""
        state = self._st
        assert self._driver is not None
        await run(state.commit(offsets, timeout), self._driver)

    def commit_async(
        self,
        offsets: Mapping[TopicPartition, Any] | None = None,
        callback: Callable[[CommitResult], object] | None = None,
    ) -> None:
        """Commit once without waiting; ``callback(CommitResult)`` runs inside a later call."""
        self._st.commit_async(offsets, callback)

    async def committed(
        self, partitions: Iterable[TopicPartition], timeout: float | None = None
    ) -> dict[TopicPartition, OffsetAndMetadata | None]:
        """The group's committed offsets (None where nothing is committed)."""
        state = self._st
        assert self._driver is not None
        return await run(state.committed(partitions, timeout), self._driver)

    def seek(self, partition: TopicPartition, offset: int) -> None:
        """The next ``poll`` returns ``partition``'s records from ``offset``."""
        self._st.seek(partition, offset)

    def seek_to_beginning(self, *partitions: TopicPartition) -> None:
        """Move to the log start (of every assigned partition when none are named)."""
        self._st.seek_to("beginning", partitions)

    def seek_to_end(self, *partitions: TopicPartition) -> None:
        """Move to the log end (of every assigned partition when none are named)."""
        self._st.seek_to("end", partitions)

    def pause(self, *partitions: TopicPartition) -> None:
        """Stop fetching these partitions; records already fetched wait for ``resume``."""
        self._st.pause(partitions)

    def resume(self, *partitions: TopicPartition) -> None:
        self._st.resume(partitions)

    def paused(self) -> set[TopicPartition]:
        return self._fetcher.paused()

    def highwater(self, partition: TopicPartition) -> int | None:
        """The high watermark the last fetch of ``partition`` reported."""
        return self._fetcher.highwater(TopicPartition(*partition))

    # -------------------------------------------------------- waiting calls

    async def poll(self, timeout: float = 0.0, max_records: int | None = None) -> Records:
        """Buffered records at once, else wait up to ``timeout`` seconds for some."""
        state = self._st
        assert self._driver is not None
        return await run(state.poll(timeout, max_records), self._driver)

    async def position(self, partition: TopicPartition, timeout: float | None = None) -> int:
        """The offset of the next record for ``partition``, waiting for a pending reset."""
        state = self._st
        assert self._driver is not None
        return await run(state.position(partition, timeout), self._driver)

    async def offsets_for_times(
        self, timestamps: Mapping[TopicPartition, int], timeout: float | None = None
    ) -> dict[TopicPartition, OffsetAndTimestamp | None]:
        """The first offset at or after each timestamp (ms); None where there is none."""
        state = self._st
        assert self._driver is not None
        return await run(state.offsets_for_times(timestamps, timeout), self._driver)

    async def beginning_offsets(
        self, partitions: Iterable[TopicPartition], timeout: float | None = None
    ) -> dict[TopicPartition, int]:
        state = self._st
        assert self._driver is not None
        return await run(state.beginning_offsets(partitions, timeout), self._driver)

    async def end_offsets(
        self, partitions: Iterable[TopicPartition], timeout: float | None = None
    ) -> dict[TopicPartition, int]:
        state = self._st
        assert self._driver is not None
        return await run(state.end_offsets(partitions, timeout), self._driver)

    async def records(self, timeout: float | None = None) -> AsyncIterator[ConsumerRecord]:
        """Records one by one; ends when none arrive for ``timeout`` seconds, or on close.

        Leaving the loop early loses nothing: records taken but not yet
        yielded come first from the next ``poll`` or iterator.
        """
        state = self._st
        assert self._driver is not None
        wait = 3600.0 if timeout is None else timeout
        while not state.closed:
            record = state.next_record()
            if record is not None:
                yield record
                continue
            batch = await run(state.poll(wait, None), self._driver)
            if batch:
                state.hold(batch)
            elif state.closed or timeout is not None:
                return

    def __aiter__(self) -> AsyncIterator[ConsumerRecord]:
        return self.records()


class AsyncProducer(AsyncClient):
    """A producer for an async framework (see the flavour modules).

    ``fut = await producer.send("topic", b"value", key=b"k")`` queues the
    record (waiting only while the buffer is full, up to ``max_block``) and
    returns a future; ``await fut`` gives its :class:`RecordMetadata` or
    raises its delivery error.  ``await producer.flush()`` waits for every
    record; leaving ``async with`` closes, delivering what is buffered.
    """

    def __init__(
        self, bootstrap_servers: str | Iterable[str] = "127.0.0.1:9092", **options: Any
    ) -> None:
        self.config, self._security = producer_config(bootstrap_servers, options)
        self._core = ProducerCore(self.config, random.random)
        self._core_send = self._core.send
        self._state: ProducerState | None = None
        self._sends = 0

    async def __aenter__(self: Any) -> Any:
        driver = await self._start(self._security)
        self._core.wall_offset = time.time() - driver.now()
        self._state = state = ProducerState(self._core, driver, AsyncRecordFuture, self)
        driver.on_progress = state.route
        return self

    @property
    def _st(self) -> ProducerState:
        if self._state is None:
            raise ClosedError("use the producer inside 'async with'")
        return self._state

    async def send(
        self,
        topic: str,
        value: bytes | None,
        *,
        key: bytes | None = None,
        partition: int | None = None,
        headers: Sequence[tuple[str, bytes | None]] = (),
        timestamp_ms: int | None = None,
        on_delivery: DeliveryCallback | None = None,
    ) -> AsyncRecordFuture:
        """Queue a record; returns its future (await it for the metadata).

        Waits only while the buffer is full (up to ``max_block``).  Every few
        dozen records it lets the event loop run first, so that a tight send
        loop does not starve the connections; a cancellation there queues
        nothing.
        """
        state = self._state
        if state is None:
            raise ClosedError("use the producer inside 'async with'")
        driver = self._driver
        assert driver is not None
        self._sends += 1
        if not self._sends & 63:
            driver.flush()
            await driver.yield_now()
        try:
            # ProducerState.send_now inlined: this is the per-record path.
            if state.closed:
                raise ClosedError("the producer is closed")
            token = self._core_send(topic, value, driver.now(), key, partition, headers, timestamp_ms)
            cell = state.cell
            if token >> CELL_BITS != cell.key:
                cell = state.new_cell(token)
            if on_delivery is not None:
                state.callbacks[token] = on_delivery
            # An AsyncRecordFuture without __init__ (see bind_futures): the hot path.
            future: RecordFuture = _new_object(state.future_class)
            future._cell = cell
            future._token = token
        except BufferFullError:
            op = state.send(topic, value, key, partition, headers, timestamp_ms, on_delivery)
            future = await run(op, driver)
        # Commands and the linger timer are taken care of once this task yields.
        if not driver.flush_scheduled:
            driver.flush_soon()
        return cast(AsyncRecordFuture, future)

    async def send_and_wait(self, topic: str, value: bytes | None, **kwargs: Any) -> RecordMetadata:
        """Send one record and wait for its acknowledgement."""
        future = await self.send(topic, value, **kwargs)
        return await future

    async def init_transactions(self, timeout: float | None = None) -> None:
        """Get the producer id for ``transactional_id``, fencing older producers with it."""
        assert self._driver is not None
        await run(self._st.transaction(self._core.init_transactions, timeout), self._driver)

    def begin_transaction(self) -> None:
        """Open a transaction; ``send`` is refused outside one."""
        self._st.core.begin_transaction()

    async def send_offsets_to_transaction(
        self,
        offsets: Mapping[TopicPartition, Any],
        group_metadata: ConsumerGroupMetadata,
        timeout: float | None = None,
    ) -> None:
        """Commit a consumer's ``offsets`` (next offsets to read) with the transaction."""
        assert self._driver is not None
        op = self._st.send_offsets(offsets, group_metadata, timeout)
        await run(op, self._driver)

    async def commit_transaction(self, timeout: float | None = None) -> None:
        """Send every buffered record, then commit (raises what made the transaction fail)."""
        assert self._driver is not None
        await run(self._st.transaction(self._core.commit_transaction, timeout), self._driver)

    async def abort_transaction(self, timeout: float | None = None) -> None:
        """Abort: records not sent yet fail with ``TransactionAbortedError``."""
        assert self._driver is not None
        await run(self._st.transaction(self._core.abort_transaction, timeout), self._driver)

    async def flush(self, timeout: float | None = None) -> None:
        """Send everything buffered now; return when every record has its outcome."""
        assert self._driver is not None
        await run(self._st.flush(timeout), self._driver)

    async def close(self, timeout: float | None = 30.0) -> None:
        """Deliver what is buffered (up to ``timeout``), fail the rest, close."""
        state = self._state
        if state is None or state.closed:
            return
        assert self._driver is not None
        try:
            await run(state.close(timeout), self._driver)
        finally:
            self._driver.close()
            await self._close_driver()


class AsyncRecordFuture(RecordFuture):
    """``await future`` gives the record's metadata or raises its delivery error."""

    __slots__ = ()

    def __await__(self) -> Generator[Any, None, RecordMetadata]:
        return self._wait().__await__()

    async def _wait(self) -> RecordMetadata:
        if self.done():
            return self.value()
        producer: AsyncProducer = self._owner
        assert producer._driver is not None
        return await run(producer._st.wait(self, None), producer._driver)


class AsyncAdmin(AsyncClient):
    """An admin client for an async framework (see the flavour modules).

    Every call waits for the cluster's answer (or its timeout, default
    ``default_api_timeout``) and raises the first error; the exception's
    ``result`` attribute holds the per-item answers.
    """

    def __init__(
        self, bootstrap_servers: str | Iterable[str] = "127.0.0.1:9092", **options: Any
    ) -> None:
        timeout = options.pop("default_api_timeout", 60.0)
        client, self._security = client_config(bootstrap_servers, options)
        self.config = AdminConfig(client=client, default_api_timeout=timeout)
        self._core = AdminCore(self.config, random.random)
        self._state: AdminState | None = None

    async def __aenter__(self: Any) -> Any:
        driver = await self._start(self._security)
        self._state = AdminState(self._core, driver)
        return self

    async def _run(self, op: Op[Any]) -> Any:
        if self._state is None:
            raise ClosedError("use the admin client inside 'async with'")
        assert self._driver is not None
        return await run(op, self._driver)

    @property
    def _admin(self) -> AdminState:
        if self._state is None:
            raise ClosedError("use the admin client inside 'async with'")
        return self._state

    async def create_topics(
        self,
        topics: Iterable[NewTopic | str],
        timeout: float | None = None,
        *,
        validate_only: bool = False,
    ) -> dict[str, TopicCreated]:
        created: dict[str, TopicCreated] = await self._run(
            self._admin.create_topics(topics, timeout, validate_only)
        )
        return created

    async def delete_topics(self, topics: Iterable[str], timeout: float | None = None) -> None:
        await self._run(self._admin.delete_topics(topics, timeout))

    async def create_partitions(
        self, new_totals: Mapping[str, int], timeout: float | None = None
    ) -> None:
        await self._run(self._admin.create_partitions(new_totals, timeout))

    async def list_offsets(
        self, specs: Mapping[TopicPartition, int], timeout: float | None = None
    ) -> dict[TopicPartition, OffsetAndTimestamp | None]:
        found: dict[TopicPartition, OffsetAndTimestamp | None] = await self._run(
            self._admin.list_offsets(specs, timeout)
        )
        return found

    async def describe_cluster(self, timeout: float | None = None) -> ClusterDescription:
        cluster: ClusterDescription = await self._run(self._admin.describe_cluster(timeout))
        return cluster

    async def describe_topics(
        self, topics: Iterable[str], timeout: float | None = None
    ) -> dict[str, TopicDescription]:
        described: dict[str, TopicDescription] = await self._run(
            self._admin.describe_topics(topics, timeout)
        )
        return described

    async def list_topics(
        self, timeout: float | None = None, *, include_internal: bool = False
    ) -> dict[str, TopicListing]:
        listed: dict[str, TopicListing] = await self._run(
            self._admin.list_topics(timeout, include_internal)
        )
        return listed

    async def close(self) -> None:
        state = self._state
        if state is None or state.closed:
            return
        state.closed = True
        self._core.close()
        assert self._driver is not None
        self._driver.close()
        await self._close_driver()
