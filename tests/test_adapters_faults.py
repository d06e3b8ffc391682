"""Broker failures while the three adapters consume: nothing lost, nothing repeated.

One consumer per adapter runs in its own thread, all at once, so one fault
is seen by the three of them.  Each consumes part of the topic, pauses its
partitions (keeping what is buffered) and waits; the test then kills or
restarts a broker; the consumers resume and must deliver every record
exactly once, in order per partition.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable
from typing import Any

import pytest
import trio
from _adapters import ADAPTERS, SyncShim
from _cluster import KafkaCluster
from confluent_kafka import Producer
from kafka_sansio.transports import asyncio as kaio
from kafka_sansio.transports import blocking
from kafka_sansio.transports import trio as ktrio

from kafka_sansio import TopicPartition

pytestmark = pytest.mark.timeout(300)

PARTITIONS = 2
COUNT = 6000


def _write(cluster: KafkaCluster, name: str) -> dict[int, int]:
    producer = Producer({**cluster.client_config(), "acks": "all", "linger.ms": 5})
    for i in range(COUNT):
        producer.produce(name, f"{i:06d}".encode(), partition=i % PARTITIONS)
    assert producer.flush(60) == 0
    return {p: len(range(p, COUNT, PARTITIONS)) for p in range(PARTITIONS)}


class _Run:
    """One adapter's consumer: consume a third, pause, wait for ``go``, finish."""

    def __init__(self, adapter: str, bootstrap: str, tps: list[TopicPartition]) -> None:
        self.adapter = adapter
        self.bootstrap = bootstrap
        self.tps = tps
        self.paused = threading.Event()
        self.go = threading.Event()
        self.seen: list[tuple[int, int]] = []
        self.error: BaseException | None = None

    async def scenario(self, consumer: Any) -> None:
        consumer.assign(self.tps)
        while len(self.seen) < COUNT // 3:
            batch = await consumer.poll(timeout=1.0, max_records=97)
            self.seen += [(tp.partition, r.offset) for tp, r in batch]
        consumer.pause(*self.tps)
        self.paused.set()
        while not self.go.is_set():
            assert not await consumer.poll(timeout=0.1)
        consumer.resume(*self.tps)
        idle = 0
        while len(self.seen) < COUNT and idle < 600:
            batch = await consumer.poll(timeout=0.1, max_records=97)
            idle = 0 if batch else idle + 1
            self.seen += [(tp.partition, r.offset) for tp, r in batch]

    def thread(self) -> threading.Thread:
        options = {"auto_offset_reset": "earliest", "max_partition_fetch_bytes": 16384}

        def body() -> None:
            try:
                if self.adapter == "blocking":
                    with blocking.Consumer(self.bootstrap, **options) as consumer:
                        asyncio.run(self.scenario(SyncShim(consumer)))
                elif self.adapter == "asyncio":

                    async def main() -> None:
                        async with kaio.Consumer(self.bootstrap, **options) as consumer:
                            await self.scenario(consumer)

                    asyncio.run(main())
                else:

                    async def main_trio() -> None:
                        async with ktrio.Consumer(self.bootstrap, **options) as consumer:
                            await self.scenario(consumer)

                    trio.run(main_trio)
            except BaseException as exc:
                self.error = exc
            finally:
                self.paused.set()

        return threading.Thread(target=body, name=f"consume-{self.adapter}", daemon=True)


def _consume_through(
    cluster: KafkaCluster, name: str, ends: dict[int, int], fault: Callable[[], None]
) -> None:
    tps = [TopicPartition(name, p) for p in range(PARTITIONS)]
    runs = [_Run(adapter, cluster.bootstrap, tps) for adapter in ADAPTERS]
    threads = [run.thread() for run in runs]
    for t in threads:
        t.start()
    for run in runs:
        assert run.paused.wait(120), f"{run.adapter} did not get a third of the records"
        assert run.error is None, f"{run.adapter}: {run.error!r}"
    fault()
    for run in runs:
        run.go.set()
    for t in threads:
        t.join(240)
    for run in runs:
        assert run.error is None, f"{run.adapter}: {run.error!r}"
        for p, end in ends.items():
            offsets = [o for q, o in run.seen if q == p]
            assert offsets == list(range(end)), f"{run.adapter}, partition {p}"


def test_leader_killed_while_consuming(kafka_cluster3: KafkaCluster) -> None:
    name = kafka_cluster3.create_topic(partitions=PARTITIONS, replication_factor=3, prefix="kill")
    ends = _write(kafka_cluster3, name)
    victim = kafka_cluster3.leader_of(name, 0)

    def fault() -> None:
        kafka_cluster3.kill(victim)

    try:
        _consume_through(kafka_cluster3, name, ends, fault)
        assert kafka_cluster3.leader_of(name, 0) != victim
    finally:
        kafka_cluster3.start(victim)
        kafka_cluster3.wait_broker_count(3)


def test_single_broker_restarted_while_consuming(tmp_path: Any) -> None:
    cluster = KafkaCluster.up(tmp_path / "restart", nodes=1, owner_pid=os.getpid())
    try:
        name = cluster.create_topic(partitions=PARTITIONS, prefix="restart")
        ends = _write(cluster, name)

        def fault() -> None:
            cluster.stop(1)
            cluster.start(1)

        _consume_through(cluster, name, ends, fault)
    finally:
        cluster.down()
