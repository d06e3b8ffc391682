"""The asyncio and trio clients, written once.

:class:`AsyncConsumer` holds everything both flavours share; each flavour
(``kafka_sansio.transports.asyncio`` and ``kafka_sansio.transports.trio``)
only says how its driver is opened and closed.  Operations come from
:mod:`._ops` and run through :func:`run`.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from typing import Any, Protocol, TypeVar

from kafka_sansio import (
    ConsumerCore,
    Event,
    KafkaSansioError,
    OffsetAndTimestamp,
    Records,
    TopicPartition,
)

from ._errors import ClosedError
from ._ops import ConsumerRecord, ConsumerState, Op, Security, consumer_config

__all__ = ["AsyncConsumer", "AsyncDriver", "run"]

T = TypeVar("T")


class AsyncDriver(Protocol):
    errors: list[KafkaSansioError]

    def now(self) -> float: ...
    def flush(self) -> None: ...
    async def wait_until(self, deadline: float | None) -> None: ...
    async def checkpoint_if_cancelled(self) -> None: ...
    async def checkpoint(self) -> None: ...
    def close(self) -> None: ...


async def run(op: Op[T], driver: AsyncDriver) -> T:
    """Run an operation, waiting on ``driver`` whenever it yields a deadline.

    If the caller is cancelled while waiting, the operation is closed where
    it stood: it had not taken anything out of the core yet.
    """
    await driver.checkpoint_if_cancelled()
    try:
        deadline = next(op)
        while True:
            driver.flush()
            await driver.wait_until(deadline)
            deadline = op.send(None)
    except StopIteration as stop:
        driver.flush()
        await driver.checkpoint()
        return stop.value  # type: ignore[no-any-return]
    finally:
        driver.flush()
        op.close()


class AsyncConsumer:
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
        self._core = ConsumerCore(self.config, random.random)
        self._on_event = on_event
        self._driver: AsyncDriver | None = None
        self._state: ConsumerState | None = None

    # -------------------------------------------------------- lifecycle (flavour hooks)

    async def _open_driver(self, security: Security) -> AsyncDriver:
        raise NotImplementedError

    async def _close_driver(self) -> None:
        raise NotImplementedError

    async def __aenter__(self: Any) -> Any:
        self._driver = await self._open_driver(self._security)
        self._state = ConsumerState(self._core, self._driver, self._on_event)
        self._driver.flush()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the connections; a ``poll`` waiting in another task returns empty."""
        if self._state is None or self._state.closed:
            return
        self._state.closed = True
        self._core.close()
        assert self._driver is not None
        self._driver.close()
        await self._close_driver()

    @property
    def _st(self) -> ConsumerState:
        if self._state is None:
            raise ClosedError("use the consumer inside 'async with'")
        self._state.check_open()
        return self._state

    def _now(self) -> float:
        assert self._driver is not None
        return self._driver.now()

    def _flush(self) -> None:
        assert self._driver is not None
        self._driver.flush()

    # -------------------------------------------------------- local calls

    def assign(self, partitions: Iterable[TopicPartition]) -> None:
        """Consume exactly these partitions (replacing the previous assignment)."""
        self._st.assign(partitions)

    def assignment(self) -> set[TopicPartition]:
        return self._core.assignment()

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
        return self._core.paused()

    def highwater(self, partition: TopicPartition) -> int | None:
        """The high watermark the last fetch of ``partition`` reported."""
        return self._core.highwater(TopicPartition(*partition))

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
        arg = {TopicPartition(*tp): ts for tp, ts in timestamps.items()}
        return await run(state.lookup("offsets_for_times", arg, timeout), self._driver)

    async def beginning_offsets(
        self, partitions: Iterable[TopicPartition], timeout: float | None = None
    ) -> dict[TopicPartition, int]:
        state = self._st
        assert self._driver is not None
        result = await run(
            state.lookup("beginning_offsets", [TopicPartition(*tp) for tp in partitions], timeout),
            self._driver,
        )
        return {tp: found.offset for tp, found in result.items() if found is not None}

    async def end_offsets(
        self, partitions: Iterable[TopicPartition], timeout: float | None = None
    ) -> dict[TopicPartition, int]:
        state = self._st
        assert self._driver is not None
        result = await run(
            state.lookup("end_offsets", [TopicPartition(*tp) for tp in partitions], timeout),
            self._driver,
        )
        return {tp: found.offset for tp, found in result.items() if found is not None}

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
