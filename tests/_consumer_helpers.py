"""Helpers for driving a :class:`ConsumerCore` against a real broker in tests.

:class:`LiveConsumer` couples a core with :class:`SocketPump` and keeps
everything the core reported: the records ``poll`` handed out (per
partition, in order) and every event.  :func:`produce` writes records with
confluent-kafka and returns what the broker acknowledged, so a test can
compare what was written with what was read, record by record.
"""

from __future__ import annotations

import functools
import random
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from _socket_pump import SocketPump

from kafka_sansio._client import ClientConfig, parse_bootstrap
from kafka_sansio._consumer import ConsumerConfig, ConsumerCore
from kafka_sansio._events import Event, OffsetsResult
from kafka_sansio._records import Record
from kafka_sansio._types import OffsetAndTimestamp, OffsetResetPolicy, TopicPartition

E = TypeVar("E", bound=Event)


@dataclass(frozen=True)
class Produced:
    """One record as the broker acknowledged it."""

    partition: int
    offset: int | None  # None: delivered, offset not reported (see _BackgroundProducer)
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes | None], ...]
    timestamp: int


def produce(
    producer: Any,
    topic: str,
    items: Iterable[
        tuple[int, bytes | None, bytes | None, Sequence[tuple[str, bytes]], int | None]
    ],
    flush_every: int = 0,
) -> list[Produced]:
    """Produce ``(partition, key, value, headers, timestamp)`` items; the acknowledgements.

    Every delivery must succeed.  ``timestamp`` None lets the producer stamp it;
    the acknowledged timestamp is then what the broker stored.  With
    ``flush_every`` the producer is flushed after that many records (smaller
    batches).
    """
    acked: list[Produced] = []
    failures: list[Any] = []

    def on_delivery(headers: tuple[tuple[str, bytes], ...], err: Any, msg: Any) -> None:
        # Delivery reports do not carry the headers: the sent ones are bound in.
        if err is not None:
            failures.append(err)
            return
        _, ts = msg.timestamp()
        acked.append(Produced(msg.partition(), msg.offset(), msg.key(), msg.value(), headers, ts))

    for count, (partition, key, value, headers, timestamp) in enumerate(items, 1):
        kwargs: dict[str, Any] = {
            "partition": partition,
            "on_delivery": functools.partial(on_delivery, tuple(headers)),
        }
        if headers:
            kwargs["headers"] = list(headers)
        if timestamp is not None:
            kwargs["timestamp"] = timestamp
        while True:
            try:
                producer.produce(topic, key=key, value=value, **kwargs)
                break
            except BufferError:
                producer.poll(0.1)
        if flush_every and count % flush_every == 0:
            producer.flush(60)
        else:
            producer.poll(0)
    remaining = producer.flush(60)
    assert remaining == 0, f"{remaining} records not delivered"
    assert failures == [], failures
    acked.sort(key=lambda p: (p.partition, p.offset))
    return acked


class _BlockingPump:
    """The package's own ``BlockingDriver`` behind SocketPump's ``step``/``until``/``close``."""

    def __init__(self, core: ConsumerCore) -> None:
        from kafka_sansio.transports._blocking import BlockingDriver

        self.driver = BlockingDriver(core)

    def step(self, max_wait: float) -> None:
        self.driver.run_once(max_wait)

    def until(self, cond: Callable[[], bool], timeout: float = 30.0) -> None:
        if not self.driver.run_until(cond, timeout):
            raise TimeoutError("condition not met in time")

    def close(self) -> None:
        self.driver.close()


class LiveConsumer:
    """A ConsumerCore on real sockets, with what it delivered and reported.

    ``driver="socket"`` pumps with the tests' ``SocketPump``; ``"blocking"``
    with the package's ``BlockingDriver`` (non-blocking connects, partial writes).
    """

    def __init__(
        self,
        bootstrap: str,
        policy: OffsetResetPolicy = OffsetResetPolicy.EARLIEST,
        seed: int = 7,
        driver: str = "socket",
        **config: Any,
    ) -> None:
        client = config.pop("client", None) or ClientConfig(
            bootstrap_servers=parse_bootstrap(bootstrap)
        )
        self.core = ConsumerCore(
            ConsumerConfig(client=client, auto_offset_reset=policy, **config),
            random=random.Random(seed).random,
        )
        self.pump: SocketPump | _BlockingPump = (
            SocketPump(self.core) if driver == "socket" else _BlockingPump(self.core)
        )
        self.records: dict[TopicPartition, list[Record]] = {}
        self.events: list[Event] = []
        self.max_records: int | None = None

    # -------------------------------------------------------------- driving

    def now(self) -> float:
        return time.monotonic()

    def drain(self) -> int:
        """Collect events and poll once; how many records came."""
        self.events += self.core.events()
        batch = self.core.poll(self.now(), self.max_records)
        for tp, records in batch.by_partition.items():
            self.records.setdefault(tp, []).extend(records)
        self.events += self.core.events()
        return len(batch)

    def until(self, cond: Callable[[], bool], timeout: float = 30.0) -> None:
        def check() -> bool:
            self.drain()
            return cond()

        self.pump.until(check, timeout)

    def settle(self, seconds: float) -> None:
        """Pump and poll for ``seconds`` (to see that nothing more happens)."""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.pump.step(min(0.1, max(0.0, end - time.monotonic())))
            self.drain()

    def consume(self, counts: dict[TopicPartition, int], timeout: float = 60.0) -> None:
        """Pump until each partition has delivered at least ``counts[tp]`` records in all."""

        def done() -> bool:
            return all(len(self.records.get(tp, [])) >= n for tp, n in counts.items())

        self.until(done, timeout)

    def offsets(self, tp: TopicPartition) -> list[int]:
        return [r.offset for r in self.records.get(tp, [])]

    def of_type(self, kind: type[E]) -> list[E]:
        return [e for e in self.events if isinstance(e, kind)]

    def wait_event(self, kind: type[E], count: int = 1, timeout: float = 30.0) -> list[E]:
        """Wait until ``count`` events of ``kind`` were seen in all; return them all."""
        self.until(lambda: len(self.of_type(kind)) >= count, timeout)
        return self.of_type(kind)

    def position(self, tp: TopicPartition, timeout: float = 30.0) -> int:
        """The position once it is known (after a pending reset resolves)."""
        self.until(lambda: self.core.position(tp) is not None, timeout)
        pos = self.core.position(tp)
        assert pos is not None
        return pos

    def list_offsets(
        self, timestamps: dict[TopicPartition, int], timeout: float = 30.0
    ) -> dict[TopicPartition, OffsetAndTimestamp | None]:
        token = self.core.list_offsets(timestamps, self.now(), timeout=timeout)
        self.pump.step(0)

        def answered() -> bool:
            return any(e.token == token for e in self.of_type(OffsetsResult))

        self.until(answered, timeout + 5)
        [result] = [e for e in self.of_type(OffsetsResult) if e.token == token]
        assert result.error is None, result.error
        return result.offsets

    def close(self) -> None:
        self.core.close()
        self.pump.close()


def record_view(r: Record) -> tuple[int, bytes | None, bytes | None, tuple[Any, ...], int]:
    """The fields a produced record and a consumed one must share."""
    return (r.offset, r.key, r.value, tuple(r.headers), r.timestamp)


def produced_view(p: Produced) -> tuple[int, bytes | None, bytes | None, tuple[Any, ...], int]:
    return (p.offset, p.key, p.value, p.headers, p.timestamp)
