"""The blocking clients and other threads: wakeup and close are safe from anywhere.

Runs against the embedded broker model served on loopback (MockBroker), so
it needs no Java.  Nothing here measures time: a call that should return
"early" is checked by joining its thread with a bound far below the poll's
own timeout.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
from kafka_sansio.transports import ClosedError
from kafka_sansio.transports._mock_broker import MockBroker
from kafka_sansio.transports.blocking import Consumer, Producer

from kafka_sansio import TopicPartition

pytestmark = pytest.mark.timeout(120)

LONG = 600.0  # a poll timeout no test waits for


@pytest.fixture
def broker() -> Any:
    with MockBroker(brokers=1, topics={"t": 2}) as bootstrap:
        yield bootstrap


def _in_thread(target: Any) -> tuple[threading.Thread, list[Any]]:
    out: list[Any] = []

    def body() -> None:
        try:
            out.append(target())
        except BaseException as exc:
            out.append(exc)

    thread = threading.Thread(target=body, daemon=True)
    thread.start()
    return thread, out


def test_wakeup_from_another_thread_ends_a_waiting_poll(broker: str) -> None:
    with Consumer(broker, auto_offset_reset="earliest") as consumer:
        consumer.assign([TopicPartition("t", 0)])
        thread, out = _in_thread(lambda: consumer.poll(LONG))
        thread.join(0.5)
        assert thread.is_alive(), "poll returned before anything woke it"
        consumer.wakeup()
        thread.join(30)
        assert not thread.is_alive() and len(out) == 1
        assert not out[0] and not isinstance(out[0], BaseException)
        # The consumer is usable afterwards.
        with Producer(broker) as producer:
            producer.send("t", b"after", partition=0).result(30)
        records = consumer.poll(30)
        assert [r.value for _, r in records] == [b"after"]


def test_close_from_another_thread_ends_iteration_cleanly(broker: str) -> None:
    consumer = Consumer(broker, auto_offset_reset="earliest")
    consumer.assign([TopicPartition("t", 1)])
    with Producer(broker) as producer:
        for i in range(5):
            producer.send("t", f"{i}".encode(), partition=1)
        producer.flush(30)

    def iterate() -> list[bytes]:
        return [record.value for record in consumer]

    thread, out = _in_thread(iterate)
    consumer_closed = threading.Event()

    def close_when_read() -> None:
        consumer.close()
        consumer_closed.set()

    # Let the iterator read the five records and wait for more, then close it.
    thread.join(1.0)
    assert thread.is_alive()
    closer = threading.Thread(target=close_when_read)
    closer.start()
    closer.join(30)
    thread.join(30)
    assert consumer_closed.is_set() and not thread.is_alive()
    assert out == [[b"0", b"1", b"2", b"3", b"4"]]
    with pytest.raises(ClosedError):
        consumer.poll(0)


def test_two_threads_in_one_consumer_is_an_error(broker: str) -> None:
    with Consumer(broker) as consumer:
        consumer.assign([TopicPartition("t", 0)])
        thread, _ = _in_thread(lambda: consumer.poll(LONG))
        thread.join(0.5)
        assert thread.is_alive()
        with pytest.raises(RuntimeError, match="several threads"):
            consumer.poll(0)
        consumer.wakeup()
        thread.join(30)
        assert not thread.is_alive()


def test_calls_take_over_from_the_background_thread(broker: str) -> None:
    """While the application is idle the background thread drives the client; the next
    call takes over, records fetched meanwhile come out, and close ends the thread."""
    with Producer(broker) as producer:
        consumer = Consumer(broker, auto_offset_reset="earliest")
        pump = consumer._runner._pump
        assert pump is not None and pump.is_alive()
        consumer.assign([TopicPartition("t", 0)])
        for i in range(3):
            producer.send("t", b"%d" % i, partition=0)
        producer.flush(30)
        # Idle until the background thread holds the client (it waits 0.1 s first).
        for _ in range(200):
            if consumer._runner._pumping:
                break
            threading.Event().wait(0.05)
        assert consumer._runner._pumping, "the background thread never stepped in"
        got: list[bytes] = []
        for _ in range(100):
            got += [r.value for _, r in consumer.poll(0.2)]
            if len(got) == 3:
                break
        assert got == [b"0", b"1", b"2"]
        # Close from another thread while the background thread may be driving.
        threading.Event().wait(0.5)
        closer, out = _in_thread(lambda: consumer.close())
        closer.join(30)
        assert not closer.is_alive() and out == [None]
        pump.join(30)
        assert not pump.is_alive()


def test_a_delivery_callback_sees_its_whole_batch_done(broker: str) -> None:
    """Every future of a batch is resolved before the batch's first callback runs."""
    seen: list[tuple[int, bool]] = []
    futures: list[Any] = []

    def callback(index: int) -> Any:
        return lambda _meta, _error: seen.append((index, all(f.done() for f in futures)))

    with Producer(broker, linger=30.0) as producer:
        for i in range(5):
            futures.append(producer.send("t", b"%d" % i, partition=1, on_delivery=callback(i)))
        producer.flush(30)
    assert seen == [(i, True) for i in range(5)]
    assert [f.result().offset for f in futures] == sorted(f.result().offset for f in futures)


def test_close_takes_over_from_the_background_thread(broker: str) -> None:
    producer = Producer(broker)
    producer.send("t", b"x", partition=0).result(30)
    runner = producer._runner
    for _ in range(200):
        if runner._pumping:
            break
        threading.Event().wait(0.05)
    assert runner._pumping, "the background thread never stepped in"
    producer.close(timeout=30)
    assert runner._done and runner.driver.closed
    assert runner._pump is not None
    runner._pump.join(30)
    assert not runner._pump.is_alive()
