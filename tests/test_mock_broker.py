"""The broker model served on loopback TCP: real clients (ours and librdkafka) talk to it."""

from __future__ import annotations

import random
import socket
import time
from typing import Any

import pytest
from kafka_sansio.transports._blocking import BlockingDriver
from kafka_sansio.transports._mock_broker import MockBroker

from kafka_sansio import (
    ClientConfig,
    ConsumerConfig,
    ConsumerCore,
    OffsetResetPolicy,
    TopicPartition,
    parse_bootstrap,
)
from kafka_sansio._admin import AdminConfig, AdminCore
from kafka_sansio._admin_types import AdminResult, NewTopic
from kafka_sansio.testing import ModelCluster

DESCRIBE_CLUSTER = 60


class Admin:
    def __init__(self, bootstrap: str) -> None:
        config = AdminConfig(client=ClientConfig(bootstrap_servers=parse_bootstrap(bootstrap)))
        self.core = AdminCore(config, random.random)
        self.driver = BlockingDriver(self.core)
        self.results: dict[int, AdminResult[Any]] = {}

    def wait(self, token: int, timeout: float = 20.0) -> AdminResult[Any]:
        def done() -> bool:
            for e in self.core.events():
                if isinstance(e, AdminResult):
                    self.results[e.token] = e
            return token in self.results

        assert self.driver.run_until(done, timeout), "no answer in time"
        return self.results.pop(token)

    def close(self) -> None:
        self.core.close()
        self.driver.flush()
        self.driver.close()


def _refused(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=2).close()
    except ConnectionRefusedError:
        return True
    return False


def test_every_broker_listens_where_the_model_says() -> None:
    with MockBroker(brokers=3, topics={"t": 3}) as bootstrap:
        servers = parse_bootstrap(bootstrap)
        assert len(set(servers)) == 3
        admin = Admin(bootstrap.split(",")[2])  # any broker is a bootstrap server
        try:
            cluster = admin.wait(admin.core.describe_cluster(time.monotonic())).value
            assert [(b.host, b.port) for b in cluster.brokers] == list(servers)
            assert admin.wait(admin.core.create_topics([NewTopic("n", 2)], time.monotonic())).ok
            described = admin.wait(admin.core.describe_topics(["t", "n"], time.monotonic()))
            assert [len(d.partitions) for d in described.value.values()] == [3, 2]
        finally:
            admin.close()
    for host, port in servers:
        assert _refused(host, port)


def test_librdkafka_produces_and_our_consumer_reads_back() -> None:
    confluent_kafka = pytest.importorskip("confluent_kafka")
    with MockBroker(brokers=2, topics={"t": 2}) as bootstrap:
        producer = confluent_kafka.Producer({"bootstrap.servers": bootstrap, "linger.ms": 0})
        for i in range(20):
            producer.produce("t", b"v%d" % i, key=b"k%d" % i, partition=i % 2)
        assert producer.flush(20) == 0
        config = ConsumerConfig(
            client=ClientConfig(bootstrap_servers=parse_bootstrap(bootstrap)),
            auto_offset_reset=OffsetResetPolicy.EARLIEST,
        )
        consumer = ConsumerCore(config, random.random)
        driver = BlockingDriver(consumer)
        tps = [TopicPartition("t", 0), TopicPartition("t", 1)]
        consumer.assign(tps, time.monotonic())
        got: list[tuple[int, bytes | None]] = []

        def read(count: int) -> Any:
            def done() -> bool:
                got.extend((tp.partition, r.value) for tp, r in consumer.poll(time.monotonic()))
                return len(got) >= count

            return done

        assert driver.run_until(read(20), 20)
        assert sorted(v for p, v in got if p == 0) == sorted(b"v%d" % i for i in range(0, 20, 2))
        assert len(got) == 20
        consumer.close()
        driver.flush()
        driver.close()


def test_changes_under_the_lock_wake_parked_fetches() -> None:
    broker = MockBroker(brokers=1, topics={"t": 1})
    with broker as bootstrap:
        config = ConsumerConfig(
            client=ClientConfig(bootstrap_servers=parse_bootstrap(bootstrap)),
            fetch_max_wait=30.0,  # a fetch parks on the broker for up to 30 s
        )
        consumer = ConsumerCore(config, random.random)
        driver = BlockingDriver(consumer)
        tp = TopicPartition("t", 0)
        consumer.assign([tp], time.monotonic())
        assert driver.run_until(lambda: consumer.position(tp) == 0, 10)
        driver.run_until(lambda: False, 0.3)  # let the fetch park
        with broker.locked() as cluster:
            cluster.append("t", 0, [b"hello"])
        got: list[Any] = []
        # Well inside the 30 s the parked fetch would otherwise wait.
        assert driver.run_until(lambda: got.extend(consumer.poll(time.monotonic())) or got, 10)
        assert got[0][1].value == b"hello"
        consumer.close()
        driver.flush()
        driver.close()


def test_model_timers_and_stopped_brokers() -> None:
    cluster = ModelCluster(brokers=2)
    broker = MockBroker(cluster)
    with broker as bootstrap:
        admin = Admin(bootstrap.split(",")[0])
        try:
            with broker.locked() as c:
                c.delay(DESCRIBE_CLUSTER, 0.2)
            assert admin.wait(admin.core.describe_cluster(time.monotonic())).ok
            with broker.locked() as c:
                c.stop_broker(1)
            host, port = parse_bootstrap(bootstrap)[0]
            assert _refused(host, port)
            # The admin already knows broker 2 and keeps working through it.
            assert admin.wait(admin.core.create_topics(["after"], time.monotonic())).ok
            assert "after" in cluster.topics
            with broker.locked() as c:
                c.start_broker(1)
            socket.create_connection((host, port), timeout=2).close()  # listening again
        finally:
            admin.close()


def test_fixed_ports() -> None:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    base = probe.getsockname()[1]
    probe.close()
    try:
        broker = MockBroker(brokers=2, port_base=base)
    except OSError:
        pytest.skip("the probed ports were taken meanwhile")
    with broker as bootstrap:
        assert bootstrap == f"127.0.0.1:{base},127.0.0.1:{base + 1}"
