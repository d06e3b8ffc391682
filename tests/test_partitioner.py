"""The partitioner: Kafka's murmur2 test vectors, sticky choices, and librdkafka agreement.

The vectors are the ones Kafka's own ``UtilsTest.testMurmur2`` checks.  The
broker test produces keys with confluent-kafka configured with
``partitioner: murmur2_random`` (librdkafka's Java-compatible partitioner)
and checks that every key landed where :func:`murmur2_partition` says.
"""

from __future__ import annotations

import random
import time
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kafka_sansio._partitioner import (
    murmur2,
    murmur2_partition,
    next_sticky_partition,
    to_positive,
)

JAVA_VECTORS = [
    (b"21", -973932308),
    (b"foobar", -790332482),
    (b"a-little-bit-long-string", -985981536),
    (b"a-little-bit-longer-string", -1486304829),
    (b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971),
    (b"abc", 479470107),
]


@pytest.mark.parametrize(("key", "expected"), JAVA_VECTORS)
def test_murmur2_matches_kafka_utils(key: bytes, expected: int) -> None:
    assert murmur2(key) == expected


@given(st.binary(max_size=200))
def test_murmur2_is_a_signed_32_bit_int_and_partitions_are_in_range(key: bytes) -> None:
    h = murmur2(key)
    assert -(2**31) <= h < 2**31
    assert to_positive(h) == h & 0x7FFFFFFF
    for n in (1, 6, 7, 1000):
        assert 0 <= murmur2_partition(key, n) < n


def test_to_positive_is_not_abs() -> None:
    # Kafka clears the sign bit; abs() would give a different partition.
    assert to_positive(-1) == 0x7FFFFFFF
    assert to_positive(-(2**31)) == 0


def test_sticky_partition_avoids_the_previous_and_prefers_available() -> None:
    rng = random.Random(1)
    picks = {next_sticky_partition(6, [1, 3, 5], 3, rng.random) for _ in range(200)}
    assert picks == {1, 5}
    picks = {next_sticky_partition(4, [], 0, rng.random) for _ in range(200)}
    assert picks == {1, 2, 3}
    assert next_sticky_partition(1, [0], 0, rng.random) == 0
    assert next_sticky_partition(3, [2], -1, lambda: 0.999999) == 2


def test_partitions_agree_with_librdkafka_murmur2_random(kafka: Any) -> None:
    from confluent_kafka import Consumer, Producer
    from confluent_kafka import TopicPartition as CTopicPartition

    partitions = 7
    topic = kafka.create_topic(partitions=partitions, prefix="murmur")
    keys = [b"key-%d" % i for i in range(500)] + [bytes([i]) * (i % 13 + 1) for i in range(256)]
    keys += [b"", b"\x00\xff\x80", "ключ-ü".encode()]
    producer = Producer(
        {"bootstrap.servers": kafka.bootstrap, "partitioner": "murmur2_random", "linger.ms": 5}
    )
    for key in keys:
        producer.produce(topic, value=key, key=key)
    assert producer.flush(30) == 0
    consumer = Consumer({"bootstrap.servers": kafka.bootstrap, "group.id": f"check-{topic}"})
    consumer.assign([CTopicPartition(topic, p, 0) for p in range(partitions)])
    landed: dict[bytes, int] = {}
    deadline = time.monotonic() + 60
    try:
        while len(landed) < len(keys) and time.monotonic() < deadline:
            for msg in consumer.consume(1000, timeout=0.5):
                if not msg.error():
                    landed[msg.key() or b""] = msg.partition()
    finally:
        consumer.close()
    assert len(landed) == len(keys)
    assert all(landed[k] == murmur2_partition(k, partitions) for k in keys)
    assert len(set(landed.values())) == partitions
