"""Blocking (threaded) clients: the core driven by :class:`BlockingDriver` on ``selectors``.

Use a client from one thread.  ``wakeup()`` and ``close()`` may be called
from any other thread: ``wakeup`` makes a waiting ``poll`` return early
(empty), ``close`` ends it and closes the client.  No background thread is
needed: I/O happens while a call waits (``poll``, ``position``, ...), which
is when the Java consumer does it too.  Between calls nothing is read, so
call ``poll`` regularly.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, TypeVar

from kafka_sansio import (
    ConsumerCore,
    DrivenCore,
    Event,
    KafkaSansioError,
    OffsetAndTimestamp,
    Records,
    TopicPartition,
)

from ._blocking import BlockingDriver
from ._errors import ClosedError
from ._ops import ConsumerRecord, ConsumerState, Op, Security, consumer_config

__all__ = ["BlockingDriver", "Consumer", "ConsumerRecord"]

T = TypeVar("T")


class _Runner:
    """Runs operations on a BlockingDriver and guards it against use from two threads."""

    def __init__(self, core: DrivenCore, security: Security) -> None:
        self.driver = BlockingDriver(
            core, ssl_context=security.ssl_context, server_hostname=security.server_hostname
        )
        self._busy = threading.Lock()
        self._closing = threading.Event()
        self._closed = threading.Event()
        self._close_hook: Callable[[], None] = lambda: None

    @property
    def errors(self) -> list[KafkaSansioError]:
        return self.driver.errors

    def now(self) -> float:
        return self.driver.clock()

    def flush(self) -> None:
        self.driver.flush()

    def enter(self) -> None:
        if self._closed.is_set() or self._closing.is_set():
            raise ClosedError("the client is closed")
        if not self._busy.acquire(blocking=False):
            raise RuntimeError("a client is not safe for use from several threads at once")

    def leave(self) -> None:
        self._busy.release()
        if self._closing.is_set() and not self._closed.is_set():
            self.close_now()

    def run(self, op: Op[T]) -> T:
        driver = self.driver
        try:
            deadline = next(op)
            while True:
                wait = 1.0 if deadline is None else max(0.0, deadline - driver.clock())
                driver.run_once(min(wait, 1.0))
                deadline = op.send(None)
        except StopIteration as stop:
            driver.flush()
            return stop.value  # type: ignore[no-any-return]
        finally:
            op.close()

    def close(self, on_close: Callable[[], None], timeout: float | None) -> None:
        """Close now, or (if another thread is inside a call) make it close and wait."""
        self._close_hook = on_close
        if self._closed.is_set():
            return
        self._closing.set()
        if self._busy.acquire(blocking=False):
            try:
                self.close_now()
            finally:
                self._busy.release()
        else:
            self.driver.wakeup()
            self._closed.wait(timeout)

    def close_now(self) -> None:
        if self._closed.is_set():
            return
        try:
            self._close_hook()
            self.driver.flush()
            self.driver.close()
        finally:
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
        **options: Any,
    ) -> None:
        self.config, security = consumer_config(bootstrap_servers, options)
        self._core = ConsumerCore(self.config, random.random)
        self._runner = _Runner(self._core, security)
        self._state = ConsumerState(self._core, self._runner, on_event)
        self._runner.flush()

    def __enter__(self) -> Consumer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _call(self, method: Callable[..., T], *args: Any) -> T:
        self._runner.enter()
        try:
            return method(*args)
        finally:
            self._runner.leave()

    def _wait(self, op: Callable[..., Op[T]], *args: Any) -> T:
        self._runner.enter()
        try:
            return self._runner.run(op(*args))
        finally:
            self._runner.leave()

    # -------------------------------------------------------- local calls

    def assign(self, partitions: Iterable[TopicPartition]) -> None:
        """Consume exactly these partitions (replacing the previous assignment)."""
        self._call(self._state.assign, partitions)

    def assignment(self) -> set[TopicPartition]:
        return self._core.assignment()

    def seek(self, partition: TopicPartition, offset: int) -> None:
        """The next ``poll`` returns ``partition``'s records from ``offset``."""
        self._call(self._state.seek, partition, offset)

    def seek_to_beginning(self, *partitions: TopicPartition) -> None:
        """Move to the log start (of every assigned partition when none are named)."""
        self._call(self._state.seek_to, "beginning", partitions)

    def seek_to_end(self, *partitions: TopicPartition) -> None:
        """Move to the log end (of every assigned partition when none are named)."""
        self._call(self._state.seek_to, "end", partitions)

    def pause(self, *partitions: TopicPartition) -> None:
        """Stop fetching these partitions; records already fetched wait for ``resume``."""
        self._call(self._state.pause, partitions)

    def resume(self, *partitions: TopicPartition) -> None:
        self._call(self._state.resume, partitions)

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
        return self._wait(self._state.poll, timeout, max_records)

    def position(self, partition: TopicPartition, timeout: float | None = None) -> int:
        """The offset of the next record for ``partition``, waiting for a pending reset."""
        return self._wait(self._state.position, partition, timeout)

    def offsets_for_times(
        self, timestamps: Mapping[TopicPartition, int], timeout: float | None = None
    ) -> dict[TopicPartition, OffsetAndTimestamp | None]:
        """The first offset at or after each timestamp (ms); None where there is none."""
        arg = {TopicPartition(*tp): ts for tp, ts in timestamps.items()}
        return self._wait(self._state.lookup, "offsets_for_times", arg, timeout)

    def beginning_offsets(
        self, partitions: Iterable[TopicPartition], timeout: float | None = None
    ) -> dict[TopicPartition, int]:
        tps = [TopicPartition(*tp) for tp in partitions]
        found = self._wait(self._state.lookup, "beginning_offsets", tps, timeout)
        return {tp: answer.offset for tp, answer in found.items() if answer is not None}

    def end_offsets(
        self, partitions: Iterable[TopicPartition], timeout: float | None = None
    ) -> dict[TopicPartition, int]:
        tps = [TopicPartition(*tp) for tp in partitions]
        found = self._wait(self._state.lookup, "end_offsets", tps, timeout)
        return {tp: answer.offset for tp, answer in found.items() if answer is not None}

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
        """Close the consumer; from another thread, a waiting ``poll`` returns first."""
        self._state.closed = True
        self._runner.close(self._core.close, timeout)
