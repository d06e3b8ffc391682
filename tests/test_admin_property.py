"""Property: whatever faults hit the model, every admin call ends once, with the right answer."""

from __future__ import annotations

import heapq
import itertools
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kafka_sansio import ClientConfig, TopicPartition
from kafka_sansio._admin import AdminConfig, AdminCore
from kafka_sansio._admin_types import LATEST, AdminResult, ClusterDescription, TopicCreated
from kafka_sansio.errors import (
    InvalidPartitionsError,
    TopicAlreadyExistsError,
    UnknownTopicOrPartitionError,
)
from kafka_sansio.testing import ModelCluster, Pump

LIST_OFFSETS, METADATA, CREATE_TOPICS, DELETE_TOPICS = 2, 3, 19, 20
CREATE_PARTITIONS, DESCRIBE_CLUSTER = 37, 60
APIS = [LIST_OFFSETS, METADATA, CREATE_TOPICS, DELETE_TOPICS, CREATE_PARTITIONS, DESCRIBE_CLUSTER]
#: Retriable answers, by API (per topic or partition where the API has them).
RETRIABLE = {
    CREATE_TOPICS: [41, 89],
    DELETE_TOPICS: [41, 89],
    CREATE_PARTITIONS: [41, 89],
    LIST_OFFSETS: [6, 5, 74, 75, 3],
    METADATA: [5],
    DESCRIBE_CLUSTER: [15],  # COORDINATOR_NOT_AVAILABLE: retriable
}

fault = st.one_of(
    st.tuples(
        st.just("error"),
        st.sampled_from(sorted(RETRIABLE)).flatmap(
            lambda api: st.tuples(st.just(api), st.sampled_from(RETRIABLE[api]))
        ),
        st.integers(1, 3),
    ),
    st.tuples(st.just("drop"), st.sampled_from([None, 1, 2, 3]), st.just(0)),
    st.tuples(st.just("delay"), st.sampled_from(APIS), st.integers(1, 3)),
    st.tuples(st.just("move"), st.integers(0, 2), st.integers(1, 3)),
)
#: A broker stops, and starts again this many seconds later.
bounce = st.tuples(st.just("bounce"), st.integers(1, 3), st.floats(0.1, 10))


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(fault, max_size=6),
    st.lists(st.tuples(st.floats(0.01, 5), st.one_of(fault, bounce)), max_size=6),
)
def test_every_call_ends_once_with_the_fault_free_answer(
    initial: list[Any], timed: list[Any]
) -> None:
    """``initial`` faults are armed before the calls start, ``timed`` ones while they run."""
    cluster = ModelCluster(brokers=3)
    cluster.create_topic("old")
    cluster.create_topic("grow", 2, replication_factor=1)
    cluster.create_topic("data", 3, replication_factor=3)
    for p in range(3):
        cluster.append("data", p, [b"x"] * (p + 2))
    info = cluster.brokers[1]
    config = AdminConfig(
        client=ClientConfig(bootstrap_servers=((info.host, info.port),), request_timeout=5.0),
        default_api_timeout=120.0,
    )
    core = AdminCore(config, random=lambda: 0.5)
    pump = Pump(core, cluster)
    tps = [TopicPartition("data", p) for p in range(3)]

    def apply(kind: str, a: Any, b: Any) -> None:
        if kind == "error":
            api, code = a
            cluster.inject_error(api, code, count=b)
        elif kind == "drop":
            cluster.drop_connections(a)
        elif kind == "delay":
            cluster.delay(a, float(b))
        elif kind == "move":
            if cluster.brokers[b].alive:
                cluster.move_leader("data", a, b)
        elif kind == "bounce":
            if cluster.brokers[a].alive and sum(x.alive for x in cluster.brokers.values()) > 1:
                cluster.stop_broker(a)
                heapq.heappush(schedule, (pump.now + b, next(order), ("start", a, 0)))
        else:
            cluster.start_broker(a)

    for kind, a, b in initial:
        apply(kind, a, b)
    tokens = {
        core.create_topics(["new"], pump.now): "create",
        core.delete_topics(["old"], pump.now): "delete",
        core.create_partitions({"grow": 4}, pump.now): "grow",
        core.list_offsets(dict.fromkeys(tps, LATEST), pump.now): "offsets",
        core.describe_cluster(pump.now): "cluster",
    }
    results: dict[str, AdminResult[Any]] = {}

    def collect() -> bool:
        for event in core.events():
            if isinstance(event, AdminResult):
                name = tokens[event.token]
                assert name not in results, f"{name} answered twice"
                results[name] = event
        return len(results) == len(tokens)

    order = itertools.count()
    schedule = [(at, next(order), f) for at, f in timed]
    heapq.heapify(schedule)
    while schedule:
        at, _, (kind, a, b) = heapq.heappop(schedule)
        if at > pump.now:
            pump.advance(at - pump.now)
        collect()
        apply(kind, a, b)
    pump.until(collect, 200.0)

    created = results["create"].value["new"]
    # A create whose answer was lost is retried and finds its own topic: Java does the same.
    assert isinstance(created, (TopicCreated, TopicAlreadyExistsError))
    assert "new" in cluster.topics
    assert isinstance(results["delete"].value["old"], (type(None), UnknownTopicOrPartitionError))
    assert "old" not in cluster.topics
    assert isinstance(results["grow"].value["grow"], (type(None), InvalidPartitionsError))
    assert len(cluster.topics["grow"].partitions) == 4
    offsets = results["offsets"]
    assert offsets.ok, offsets
    assert {tp: o.offset for tp, o in offsets.value.items()} == {
        tps[0]: 2,
        tps[1]: 3,
        tps[2]: 4,
    }
    cluster_answer = results["cluster"]
    assert cluster_answer.ok and isinstance(cluster_answer.value, ClusterDescription)
    assert core.pending() == 0
