"""The blocking clients' background thread: data moves while the application is between calls.

Against the real broker.  Each test runs with the thread (the default) and
without it (``background=False``), and expects the difference: a group
member that is busy for longer than its session timeout keeps its
partitions only with the thread, and a lingering record reaches the broker
without another call only with it.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
from kafka_sansio.transports.blocking import Admin, Consumer, Producer

from kafka_sansio import TopicPartition

pytestmark = pytest.mark.timeout(180)

SESSION = 6.0  # the broker's group.min.session.timeout.ms


class _Listener:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def on_partitions_assigned(self, partitions: set[TopicPartition]) -> None:
        self.calls.append("assigned")

    def on_partitions_revoked(self, partitions: set[TopicPartition]) -> None:
        self.calls.append("revoked")

    def on_partitions_lost(self, partitions: set[TopicPartition]) -> None:
        self.calls.append("lost")


@pytest.mark.parametrize("background", [True, False])
def test_a_busy_group_member_keeps_its_partitions(kafka: Any, background: bool) -> None:
    topic = kafka.create_topic(partitions=2, prefix="busy")
    listener = _Listener()
    consumer = Consumer(
        kafka.bootstrap,
        group_id=f"busy-{uuid.uuid4().hex[:8]}",
        session_timeout=SESSION,
        heartbeat_interval=1.0,
        auto_offset_reset="earliest",
        background=background,
    )
    try:
        consumer.subscribe([topic], listener=listener)
        deadline = time.monotonic() + 60
        while not consumer.assignment() and time.monotonic() < deadline:
            consumer.poll(0.5)
        owned = consumer.assignment()
        assert owned == {TopicPartition(topic, 0), TopicPartition(topic, 1)}
        assert listener.calls == ["assigned"]

        time.sleep(SESSION * 2)  # the application works on something else, no calls

        # Give a member that was dropped time to find out.
        deadline = time.monotonic() + 3 * SESSION
        while "lost" not in listener.calls and time.monotonic() < deadline:
            consumer.poll(0.5)
            if background and time.monotonic() > deadline - 2 * SESSION:
                break  # kept for a whole session after the pause: enough
        if background:
            assert listener.calls == ["assigned"], listener.calls
            assert consumer.assignment() == owned
        else:
            # Without the thread no heartbeat went out: the broker dropped the member.
            assert "lost" in listener.calls, listener.calls
    finally:
        consumer.close()


@pytest.mark.parametrize("background", [True, False])
def test_a_lingering_record_goes_out_between_calls(kafka: Any, background: bool) -> None:
    topic = kafka.create_topic(partitions=1, prefix="linger")
    tp = TopicPartition(topic, 0)
    admin = Admin(kafka.bootstrap)
    producer = Producer(kafka.bootstrap, linger=0.05, background=background)
    try:
        producer.send(topic, b"warm-up", partition=0).result(30)  # metadata and producer id
        future = producer.send(topic, b"alone", partition=0)
        time.sleep(2.0)  # no call into the producer meanwhile
        end = admin.list_offsets({tp: -1})[tp].offset
        if background:
            assert end == 2
            assert future.result(30).offset == 1
        else:
            assert end == 1  # still in the producer's batch
            producer.flush(30)
            assert admin.list_offsets({tp: -1})[tp].offset == 2
    finally:
        producer.close()
        admin.close()
