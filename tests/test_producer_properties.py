"""Property tests: the producer core against a faulty model cluster (fake clock).

Hypothesis writes scripts of sends mixed with faults (injected Produce
errors, held answers, dropped connections, leader moves, a broker stopped
for a while, time passing).  Whatever the script, once the faults stop and
the producer flushes:

* every token ``send`` returned is reported exactly once;
* a record reported written sits at the reported offset (exactly once with
  idempotence);
* with idempotence, a record reported failed is in the log only if the
  failure says it may have been written, and no record is written twice;
  without it, a retry after a lost answer may write a record again;
* each partition holds its records in send order;
* the buffer never holds more than ``buffer_memory``.
"""

from __future__ import annotations

import random
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kafka_sansio._client import ClientConfig
from kafka_sansio._producer import ProducerConfig, ProducerCore
from kafka_sansio._producer_events import BufferFullError, Delivered, DeliveryTimeoutError
from kafka_sansio.testing import ModelCluster, Pump

PRODUCE = 0
PARTITIONS = 4
BUFFER = 30_000

#: Retriable Produce errors (leadership, replication, timeouts) and ones that fail a batch.
RETRIABLE = [6, 7, 19, 20, 56]
FINAL = [87, 10]

step = st.one_of(
    st.tuples(st.just("send"), st.integers(1, 60), st.booleans()),
    st.tuples(st.just("error"), st.sampled_from(RETRIABLE + FINAL), st.integers(1, 3)),
    st.tuples(st.just("hold"), st.floats(0.1, 40.0), st.integers(1, 4)),
    st.tuples(st.just("drop"), st.integers(1, 3), st.just(0)),
    st.tuples(st.just("move"), st.integers(0, PARTITIONS - 1), st.integers(1, 3)),
    st.tuples(st.just("stop"), st.integers(1, 3), st.floats(0.5, 20.0)),
    st.tuples(st.just("wait"), st.floats(0.0, 5.0), st.just(0)),
)


def check_run(script: list[tuple[Any, ...]], idempotent: bool, seed: int, **overrides: Any) -> None:
    cluster = ModelCluster(brokers=3)
    cluster.create_topic("t", partitions=PARTITIONS, replication_factor=3)
    info = cluster.brokers[1]
    config = ProducerConfig(
        client=ClientConfig(bootstrap_servers=((info.host, info.port),), request_timeout=5.0),
        enable_idempotence=idempotent,
        acks=-1 if idempotent else 1,
        batch_size=600,
        linger=overrides.pop("linger", 0.05),
        buffer_memory=BUFFER,
        delivery_timeout=overrides.pop("delivery_timeout", 60.0),
        **overrides,
    )
    core = ProducerCore(config, random.Random(seed).random)
    pump = Pump(core, cluster)
    sent: dict[int, bytes] = {}
    outcome: dict[int, tuple[int, int, Any]] = {}
    maybe_written: set[int] = set()
    counter = 0

    def collect() -> None:
        assert core.buffered_bytes() <= BUFFER
        for event in core.events():
            if isinstance(event, Delivered):
                for i, token in enumerate(event.tokens):
                    assert token not in outcome, "a token was reported twice"
                    offset = event.base_offset + i if event.error is None else -1
                    outcome[token] = (event.partition.partition, offset, event.error)
                    if event.maybe_written:
                        maybe_written.add(token)

    for action, a, b in script:
        if action == "send":
            for _ in range(a):
                counter += 1
                value = b"%d" % counter
                try:
                    token = core.send("t", value, pump.now, key=value if b else None)
                except BufferFullError:
                    break
                sent[token] = value
        elif action == "error":
            cluster.inject_error(PRODUCE, a, count=b)
        elif action == "hold":
            cluster.delay(PRODUCE, a, count=b)
        elif action == "drop":
            cluster.drop_connections(a)
        elif action == "move":
            if cluster.brokers[b].alive:
                cluster.move_leader("t", a, b, pump.now)
        elif action == "stop":
            if sum(x.alive for x in cluster.brokers.values()) > 1:
                cluster.stop_broker(a, pump.now)
                pump.advance(b)
                collect()
                cluster.start_broker(a, pump.now)
        else:
            pump.advance(a)
        pump.settle()
        collect()
    core.flush(pump.now)

    def done() -> bool:
        collect()
        return core.pending() == 0

    pump.until(done, 1000.0)
    collect()

    assert set(outcome) == set(sent)
    logs = {p: cluster.records("t", p) for p in range(PARTITIONS)}
    where: dict[bytes, list[tuple[int, int]]] = {}
    for p, records in logs.items():
        for r in records:
            assert r.value is not None
            where.setdefault(r.value, []).append((p, r.offset))
    for token, (partition, offset, error) in outcome.items():
        places = where.get(sent[token], [])
        if not idempotent:
            # A retry after a lost answer may write a record again (as with any
            # producer without idempotence), but a success names a real place.
            assert error is not None or (partition, offset) in places
            continue
        if error is None:
            assert places == [(partition, offset)]
        else:
            assert len(places) <= 1
            if places:
                # Only a batch whose answer never came may have been written.
                assert token in maybe_written
                if isinstance(error, DeliveryTimeoutError):
                    assert error.maybe_written
    if idempotent:
        assert all(len(v) == 1 for v in where.values()), "a record was written twice"
    for records in logs.values():
        # Without idempotence a batch written twice repeats: compare first appearances.
        numbers = list(dict.fromkeys(int(r.value or b"") for r in records))
        assert numbers == sorted(numbers), "a partition's order was broken"


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(st.lists(step, min_size=1, max_size=25), st.integers(0, 1000))
def test_idempotent_producer_under_faults(script: list[tuple[Any, ...]], seed: int) -> None:
    check_run(script, True, seed)


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(st.lists(step, min_size=1, max_size=25), st.integers(0, 1000))
def test_every_record_is_resolved_without_idempotence(
    script: list[tuple[Any, ...]], seed: int
) -> None:
    check_run(script, False, seed)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(st.lists(step, min_size=1, max_size=25), st.integers(0, 1000))
def test_idempotence_holds_when_deliveries_time_out(
    script: list[tuple[Any, ...]], seed: int
) -> None:
    # A delivery timeout shorter than the faults: batches expire in the queue
    # and after unanswered attempts, sequences go unfilled, epochs get bumped.
    check_run(script, True, seed, delivery_timeout=8.0, linger=0.0)
