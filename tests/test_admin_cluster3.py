"""AdminCore on the three-node cluster: calls ride out a SIGKILLed partition leader."""

from __future__ import annotations

import random
import time
from typing import Any

from _socket_pump import SocketPump

from kafka_sansio import ClientConfig, TopicPartition, parse_bootstrap
from kafka_sansio._admin import AdminConfig, AdminCore
from kafka_sansio._admin_types import LATEST, AdminResult, NewTopic, TopicDescription

PARTITIONS = 3


def test_calls_made_right_after_a_leader_dies_succeed(kafka_cluster3: Any) -> None:
    from confluent_kafka import Producer

    name = kafka_cluster3.create_topic(
        partitions=PARTITIONS, replication_factor=3, prefix="admin-kill"
    )
    producer = Producer({"bootstrap.servers": kafka_cluster3.bootstrap, "acks": "all"})
    for i in range(30):
        producer.produce(name, b"%d" % i, partition=i % PARTITIONS)
    assert producer.flush(30) == 0
    tps = [TopicPartition(name, p) for p in range(PARTITIONS)]

    config = AdminConfig(
        client=ClientConfig(bootstrap_servers=parse_bootstrap(kafka_cluster3.bootstrap)),
        default_api_timeout=90.0,
    )
    core = AdminCore(config, random.random)
    pump = SocketPump(core)
    results: dict[int, AdminResult[Any]] = {}

    def wait(*tokens: int) -> list[AdminResult[Any]]:
        def done() -> bool:
            for event in core.events():
                if isinstance(event, AdminResult):
                    results[event.token] = event
            return all(t in results for t in tokens)

        pump.until(done, 120)
        return [results.pop(t) for t in tokens]

    (before,) = wait(core.list_offsets(dict.fromkeys(tps, LATEST), time.monotonic()))
    assert before.ok and [before.value[tp].offset for tp in tps] == [10, 10, 10]

    victim = kafka_cluster3.leader_of(name, 0)
    kafka_cluster3.kill(victim)
    try:
        now = time.monotonic()
        offsets, created, cluster = wait(
            core.list_offsets(dict.fromkeys(tps, LATEST), now),
            core.create_topics([NewTopic(name + "-after", 2, 2)], now),
            core.describe_cluster(now),
        )
        assert offsets.ok, offsets
        assert [offsets.value[tp].offset for tp in tps] == [10, 10, 10]
        assert created.ok, created
        assert cluster.ok and len(cluster.value.brokers) in (2, 3)
        deadline = time.monotonic() + 60
        while True:
            (described,) = wait(core.describe_topics([name], time.monotonic()))
            desc = described.value[name]
            assert isinstance(desc, TopicDescription)
            if desc.partitions[0].leader not in (None, victim):
                break
            assert time.monotonic() < deadline, desc
            time.sleep(0.2)
    finally:
        kafka_cluster3.start(victim)
        kafka_cluster3.wait_broker_count(3)
    (deleted,) = wait(core.delete_topics([name, name + "-after"], time.monotonic()))
    assert deleted.ok, deleted
    core.close()
    pump.close()
