"""Smoke tests of the real-broker fixtures, using confluent-kafka (librdkafka) as the client."""

from __future__ import annotations

import time
import uuid

import pytest
from _cluster import KafkaCluster, metadata_v4
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient


def _roundtrip(config: dict[str, str], topic: str) -> None:
    """Produce one record with key, value and headers, read it back by assign + offset 0."""
    key = b"key-" + uuid.uuid4().hex.encode()
    value = b"value \x00\xff " + uuid.uuid4().hex.encode()
    headers = [("h1", b"one"), ("h2", b""), ("h1", b"again")]
    delivered = []

    producer = Producer({**config, "acks": "all", "enable.idempotence": True})
    producer.produce(
        topic,
        key=key,
        value=value,
        headers=headers,
        timestamp=1_700_000_000_123,
        on_delivery=lambda err, msg: delivered.append((err, msg)),
    )
    assert producer.flush(30) == 0
    assert len(delivered) == 1
    err, report = delivered[0]
    assert err is None, err
    assert report.topic() == topic
    assert report.partition() == 0
    assert report.offset() == 0

    consumer = Consumer(
        {**config, "group.id": f"smoke-{uuid.uuid4().hex[:8]}", "enable.auto.commit": False}
    )
    try:
        consumer.assign([TopicPartition(topic, 0, 0)])
        msg = None
        for _ in range(60):
            msg = consumer.poll(1.0)
            if msg is not None:
                break
        assert msg is not None, "no record came back within 60 s"
        assert msg.error() is None, msg.error()
        assert msg.topic() == topic
        assert msg.partition() == 0
        assert msg.offset() == 0
        assert msg.key() == key
        assert msg.value() == value
        assert msg.headers() == headers
        assert msg.timestamp() == (1, 1_700_000_000_123)  # (CREATE_TIME, ms)
        # Nothing else is in the partition.
        assert consumer.poll(0.5) is None
    finally:
        consumer.close()


def test_session_broker_answers(kafka: KafkaCluster) -> None:
    assert kafka.port == int(kafka.bootstrap.split(",")[0].rsplit(":", 1)[1])
    brokers, _ = metadata_v4(kafka.host, kafka.port, [])
    assert sorted(brokers) == sorted(n["id"] for n in kafka.nodes)
    md = AdminClient({"bootstrap.servers": kafka.bootstrap}).list_topics(timeout=10)
    assert len(md.brokers) == len(kafka.nodes)


def test_create_topic_has_leaders(kafka: KafkaCluster) -> None:
    name = kafka.create_topic(partitions=3, prefix="smoke")
    assert name.startswith("smoke-")
    md = kafka.admin().list_topics(topic=name, timeout=10).topics[name]
    assert md.error is None
    assert sorted(md.partitions) == [0, 1, 2]
    assert all(p.leader >= 0 for p in md.partitions.values())
    kafka.delete_topic(name)


def test_produce_consume_roundtrip(kafka: KafkaCluster, topic: str) -> None:
    _roundtrip(kafka.client_config(), topic)


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"])
def test_sasl_roundtrip(kafka_sasl: KafkaCluster, mechanism: str) -> None:
    assert mechanism in kafka_sasl.mechanisms
    assert kafka_sasl.users == {"alice": "alice-secret"}
    topic = kafka_sasl.create_topic(prefix="sasl")
    _roundtrip(kafka_sasl.client_config(mechanism), topic)


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-512", "PLAIN"])
def test_sasl_wrong_password_is_refused(kafka_sasl: KafkaCluster, mechanism: str) -> None:
    config = {**kafka_sasl.client_config(mechanism), "sasl.password": "not-the-password"}
    errors: list[KafkaError] = []
    producer = Producer({**config, "error_cb": errors.append, "log_level": 0})
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not errors:
        producer.poll(0.2)  # serves error_cb
    assert errors, "no error reported for a wrong password within 30 s"
    assert errors[0].code() == KafkaError._AUTHENTICATION, errors
    assert "credentials" in errors[0].str() or "uthentication" in errors[0].str(), errors
    # And the broker really did refuse: no metadata is obtainable over that connection.
    with pytest.raises(KafkaException):
        producer.list_topics(timeout=2)
