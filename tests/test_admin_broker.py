"""AdminCore against the real Apache Kafka broker, driven over sockets."""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from _socket_pump import SocketPump

from kafka_sansio import ClientConfig, TopicPartition, parse_bootstrap
from kafka_sansio._admin import AdminConfig, AdminCore
from kafka_sansio._admin_types import (
    EARLIEST,
    LATEST,
    AdminResult,
    ClusterDescription,
    NewTopic,
    TopicCreated,
    TopicDescription,
)
from kafka_sansio._connection import RequestTimedOutError
from kafka_sansio.errors import (
    InvalidPartitionsError,
    InvalidReplicationFactorError,
    TopicAlreadyExistsError,
    UnknownTopicOrPartitionError,
)


class Admin:
    def __init__(self, bootstrap: str, timeout: float = 30.0) -> None:
        config = AdminConfig(
            client=ClientConfig(bootstrap_servers=parse_bootstrap(bootstrap)),
            default_api_timeout=timeout,
        )
        self.core = AdminCore(config, random.random)
        self.pump = SocketPump(self.core)
        self.results: dict[int, AdminResult[Any]] = {}

    def wait(self, token: int, timeout: float = 60.0) -> AdminResult[Any]:
        def done() -> bool:
            for event in self.core.events():
                if isinstance(event, AdminResult):
                    self.results[event.token] = event
            return token in self.results

        self.pump.until(done, timeout)
        return self.results.pop(token)

    def describe_until(self, name: str, check: Any, timeout: float = 30.0) -> TopicDescription:
        """Describe ``name`` until ``check(description)`` (metadata reaches brokers eventually)."""
        deadline = time.monotonic() + timeout
        while True:
            value = self.wait(self.core.describe_topics([name], time.monotonic())).value[name]
            if isinstance(value, TopicDescription) and check(value):
                return value
            assert time.monotonic() < deadline, f"{name}: {value}"
            time.sleep(0.1)


@pytest.fixture
def admin(kafka: Any) -> Iterator[Admin]:
    a = Admin(kafka.bootstrap)
    yield a
    a.core.close()
    a.pump.close()


def now() -> float:
    return time.monotonic()


def test_topic_lifecycle(admin: Admin, kafka: Any) -> None:
    name = f"admin-{uuid.uuid4().hex[:8]}"
    checked = admin.wait(
        admin.core.create_topics([NewTopic(name, 2, 1)], now(), validate_only=True)
    )
    assert checked.ok and checked.value[name].partitions == 2
    created = admin.wait(
        admin.core.create_topics(
            [NewTopic(name, 2, 1, {"retention.ms": "3600000"}), NewTopic(name + "-rf", 1, 3)],
            now(),
        )
    )
    value = created.value[name]
    assert isinstance(value, TopicCreated) and value.topic_id is not None
    assert (value.partitions, value.replication_factor) == (2, 1)
    assert value.configs["retention.ms"] == "3600000"
    assert isinstance(created.value[name + "-rf"], InvalidReplicationFactorError)
    again = admin.wait(admin.core.create_topics([name], now()))
    assert isinstance(again.value[name], TopicAlreadyExistsError)

    described = admin.describe_until(
        name, lambda d: all(p.leader is not None for p in d.partitions)
    )
    assert described.topic_id == value.topic_id and not described.internal
    assert [p.partition for p in described.partitions] == [0, 1]
    assert all(p.replicas == p.isr == (p.leader,) for p in described.partitions)

    listing = admin.wait(admin.core.list_topics(now())).value
    assert name in listing and listing[name].topic_id == value.topic_id
    assert "__consumer_offsets" not in listing or not listing["__consumer_offsets"].internal
    everything = admin.wait(admin.core.list_topics(now(), include_internal=True)).value
    assert set(listing) <= set(everything)

    grown = admin.wait(admin.core.create_partitions({name: 4}, now()))
    assert grown.ok and grown.value == {name: None}
    shrink = admin.wait(admin.core.create_partitions({name: 3}, now()))
    assert isinstance(shrink.value[name], InvalidPartitionsError)
    described = admin.describe_until(name, lambda d: len(d.partitions) == 4)

    deleted = admin.wait(admin.core.delete_topics([name, name + "-never"], now()))
    assert deleted.value[name] is None
    assert isinstance(deleted.value[name + "-never"], UnknownTopicOrPartitionError)


def test_describe_cluster(admin: Admin, kafka: Any) -> None:
    result = admin.wait(admin.core.describe_cluster(now()))
    value = result.value
    assert isinstance(value, ClusterDescription)
    assert value.cluster_id == kafka.cluster_id
    host, port = parse_bootstrap(kafka.bootstrap)[0]
    assert [(b.host, b.port) for b in value.brokers] == [(host, port)]
    assert value.controller == value.brokers[0].node_id


def test_list_offsets_after_producing(admin: Admin, kafka: Any) -> None:
    from confluent_kafka import Producer

    name = f"admin-offsets-{uuid.uuid4().hex[:8]}"
    assert admin.wait(admin.core.create_topics([NewTopic(name, 2, 1)], now())).ok
    producer = Producer({"bootstrap.servers": kafka.bootstrap, "linger.ms": 0})
    base = int(time.time() * 1000) - 100_000
    for i in range(5):
        producer.produce(name, b"v%d" % i, partition=0, timestamp=base + i * 1000)
    producer.produce(name, b"w", partition=1, timestamp=base)
    assert producer.flush(30) == 0
    tp0, tp1 = TopicPartition(name, 0), TopicPartition(name, 1)
    result = admin.wait(
        admin.core.list_offsets(
            {tp0: LATEST, tp1: EARLIEST, TopicPartition(name, 9): LATEST}, now()
        )
    )
    assert result.value[tp0].offset == 5
    assert result.value[tp1].offset == 0
    assert isinstance(result.value[TopicPartition(name, 9)], UnknownTopicOrPartitionError)
    by_time = admin.wait(admin.core.list_offsets({tp0: base + 2500, tp1: base + 1}, now())).value
    assert (by_time[tp0].offset, by_time[tp0].timestamp) == (3, base + 3000)
    assert by_time[tp1] is None
    assert admin.wait(admin.core.delete_topics([name], now())).ok


def test_unreachable_cluster_times_out() -> None:
    admin = Admin("127.0.0.1:1", timeout=1.5)
    token = admin.core.describe_cluster(now())
    result = admin.wait(token, timeout=20)
    assert isinstance(result.error, RequestTimedOutError)
    admin.core.close()
    admin.pump.close()
