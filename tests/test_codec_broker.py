"""The generated codec against a real Apache Kafka broker.

ApiVersions at every version the broker supports; then every side-effect-free
API the broker advertises, at every version both sides support, with
assertions on the content; then CreateTopics / CreatePartitions / DeleteTopics
at every common version, checking that they took effect.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from kafka_wire import KafkaWire

from kafka_sansio import protocol

M = protocol.api_module


def common_versions(broker: dict[int, tuple[int, int]], api_key: int) -> list[int]:
    """Every version of *api_key* that both the broker and this codec support."""
    if api_key not in broker:
        return []
    cls = protocol.request_class(api_key)
    lo = max(broker[api_key][0], cls.MIN_VERSION)
    hi = min(broker[api_key][1], cls.MAX_STABLE_VERSION)
    return list(range(lo, hi + 1))


@pytest.fixture(scope="module")
def wire(kafka: Any) -> Iterator[KafkaWire]:
    with KafkaWire(kafka.host, kafka.port) as conn:
        yield conn


@pytest.fixture(scope="module")
def broker_versions(wire: KafkaWire) -> dict[int, tuple[int, int]]:
    return wire.api_versions()


@pytest.fixture(scope="module")
def topic3(kafka: Any) -> str:
    name: str = kafka.create_topic(partitions=3, prefix="codec")
    return name


def retry(fn: Callable[[], Any], ok: Callable[[Any], bool], timeout: float = 30.0) -> Any:
    """Call *fn* until *ok* accepts its result (coordinators load lazily)."""
    deadline = time.monotonic() + timeout
    while True:
        result = fn()
        if ok(result) or time.monotonic() > deadline:
            return result
        time.sleep(0.2)


def ensure_coordinator(wire: KafkaWire, broker: dict, key: str, key_type: int) -> None:
    """FindCoordinator until it answers: creates the internal topic on first use."""
    fc = M(10)
    version = common_versions(broker, 10)[-1]
    request = fc.FindCoordinatorRequest(coordinator_keys=[key], key_type=key_type)
    if version <= 3:
        request = fc.FindCoordinatorRequest(key=key, key_type=key_type)
    response = retry(
        lambda: wire.request(request, version),
        lambda r: (r.coordinators[0].error_code if version >= 4 else r.error_code) == 0,
        timeout=60,
    )
    assert (response.coordinators[0].error_code if version >= 4 else response.error_code) == 0


# ----------------------------------------------------------------------------- ApiVersions


def test_api_versions_at_every_version(wire: KafkaWire, broker_versions: dict) -> None:
    cls = protocol.request_class(18)
    versions = common_versions(broker_versions, 18)
    assert versions and versions[0] == 0
    for version in versions:
        request = cls()
        if version >= 3:
            request = cls(client_software_name="kafka-sansio", client_software_version="0.1.0")
        response = wire.request(request, version)
        assert response.error_code == 0, (version, response.error_code)
        advertised = {k.api_key: (k.min_version, k.max_version) for k in response.api_keys}
        assert advertised == broker_versions
        if version >= 1:
            assert response.throttle_time_ms >= 0
        if version >= 3:
            # KRaft brokers finalise metadata.version; the feature list is a tagged field
            names = {f.name for f in response.finalized_features}
            assert "metadata.version" in names, names


def test_negotiation_against_the_broker(broker_versions: dict) -> None:
    chosen = protocol.negotiate_versions(broker_versions, required=[0, 1, 3, 18])
    for key, version in chosen.items():
        assert broker_versions[key][0] <= version <= broker_versions[key][1]
        assert version <= protocol.request_class(key).MAX_STABLE_VERSION
    assert chosen[3] == min(broker_versions[3][1], 12)


# ----------------------------------------------------------------------------- read-only APIs


def test_metadata(wire: KafkaWire, broker_versions: dict, topic3: str, kafka: Any) -> None:
    md = M(3)
    versions = common_versions(broker_versions, 3)
    assert versions
    for version in versions:
        request = md.MetadataRequest(topics=[md.MetadataRequestTopic(name=topic3)])
        response = wire.request(request, version)
        assert len(response.brokers) == 1
        assert response.brokers[0].port == kafka.port
        (topic,) = response.topics
        assert topic.name == topic3 and topic.error_code == 0
        assert sorted(p.partition_index for p in topic.partitions) == [0, 1, 2]
        assert all(p.error_code == 0 and p.leader_id >= 0 for p in topic.partitions)
        if version >= 2 and kafka.cluster_id:
            assert response.cluster_id == kafka.cluster_id
        if version >= 10:
            assert topic.topic_id.int != 0
        # all topics (null list) from v1
        if version >= 1:
            everything = wire.request(md.MetadataRequest(topics=None), version)
            assert topic3 in {t.name for t in everything.topics}


def test_describe_cluster(wire: KafkaWire, broker_versions: dict, kafka: Any) -> None:
    versions = common_versions(broker_versions, 60)
    if not versions:
        pytest.skip("broker does not advertise DescribeCluster")
    for version in versions:
        response = wire.request(protocol.request_class(60)(), version)
        assert response.error_code == 0
        assert [b.port for b in response.brokers] == [kafka.port]
        if kafka.cluster_id:
            assert response.cluster_id == kafka.cluster_id


def test_list_offsets(wire: KafkaWire, broker_versions: dict, topic3: str) -> None:
    lo = M(2)
    for version in common_versions(broker_versions, 2):
        for timestamp in (-1, -2):  # latest, earliest
            partition = lo.ListOffsetsPartition(partition_index=1, timestamp=timestamp)
            request = lo.ListOffsetsRequest(
                replica_id=-1, topics=[lo.ListOffsetsTopic(name=topic3, partitions=[partition])]
            )
            response = wire.request(request, version)
            (topic,) = response.topics
            (part,) = topic.partitions
            assert (topic.name, part.partition_index, part.error_code) == (topic3, 1, 0)
            if version >= 1:
                assert part.offset == 0
            else:
                assert part.old_style_offsets == [0]


def test_describe_configs(wire: KafkaWire, broker_versions: dict, topic3: str) -> None:
    dc = M(32)
    for version in common_versions(broker_versions, 32):
        resource = dc.DescribeConfigsResource(
            resource_type=2, resource_name=topic3, configuration_keys=None
        )
        response = wire.request(dc.DescribeConfigsRequest(resources=[resource]), version)
        (result,) = response.results
        assert result.error_code == 0 and result.resource_name == topic3
        configs = {c.name: c.value for c in result.configs}
        assert configs["cleanup.policy"] == "delete"
        keyed = dc.DescribeConfigsResource(
            resource_type=2, resource_name=topic3, configuration_keys=["retention.ms"]
        )
        response = wire.request(dc.DescribeConfigsRequest(resources=[keyed]), version)
        assert [c.name for c in response.results[0].configs] == ["retention.ms"]


def test_list_and_describe_groups(wire: KafkaWire, broker_versions: dict) -> None:
    for version in common_versions(broker_versions, 16):
        response = wire.request(protocol.request_class(16)(), version)
        assert response.error_code == 0
    dg = M(15)
    ensure_coordinator(wire, broker_versions, "codec-no-such-group", 0)
    for version in common_versions(broker_versions, 15):
        request = dg.DescribeGroupsRequest(groups=["codec-no-such-group"])
        # 14/15/16: the group coordinator is still loading (offsets topic being created)
        response = retry(
            lambda r=request, v=version: wire.request(r, v),
            lambda r: r.groups[0].error_code not in (14, 15, 16),
        )
        (group,) = response.groups
        assert group.group_id == "codec-no-such-group"
        # GROUP_ID_NOT_FOUND (69) from v6, an empty "Dead" group before
        assert group.error_code in (0, 69)
        if group.error_code == 0:
            assert group.group_state == "Dead" and group.members == []


def test_find_coordinator_and_offset_fetch(
    wire: KafkaWire, broker_versions: dict, topic3: str
) -> None:
    fc = M(10)
    for version in common_versions(broker_versions, 10):
        if version <= 3:
            request = fc.FindCoordinatorRequest(key="codec-group", key_type=0)
        else:
            request = fc.FindCoordinatorRequest(coordinator_keys=["codec-group"], key_type=0)

        def errors(r: Any, v: int = version) -> list[int]:
            return [c.error_code for c in r.coordinators] if v >= 4 else [r.error_code]

        response = retry(
            lambda r=request, v=version: wire.request(r, v), lambda r: errors(r) == [0]
        )
        assert errors(response) == [0]
        port = response.coordinators[0].port if version >= 4 else response.port
        assert port > 0
    of = M(9)
    for version in common_versions(broker_versions, 9):
        if version <= 7:
            request = of.OffsetFetchRequest(
                group_id="codec-group",
                topics=[of.OffsetFetchRequestTopic(name=topic3, partition_indexes=[0, 2])],
            )
        else:
            group = of.OffsetFetchRequestGroup(
                group_id="codec-group",
                topics=[of.OffsetFetchRequestTopics(name=topic3, partition_indexes=[0, 2])],
            )
            request = of.OffsetFetchRequest(groups=[group])
        response = retry(
            lambda r=request, v=version: wire.request(r, v),
            lambda r: (r.groups[0].error_code if r.groups else r.error_code) == 0,
        )
        topics = response.groups[0].topics if version >= 8 else response.topics
        (topic,) = topics
        assert topic.name == topic3
        assert [
            (p.partition_index, p.committed_offset, p.error_code) for p in topic.partitions
        ] == [
            (0, -1, 0),
            (2, -1, 0),
        ]


def test_describe_log_dirs(wire: KafkaWire, broker_versions: dict, topic3: str) -> None:
    dl = M(35)
    for version in common_versions(broker_versions, 35):
        response = wire.request(dl.DescribeLogDirsRequest(topics=None), version)
        assert response.results
        result = response.results[0]
        assert result.error_code == 0 and result.log_dir
        names = {t.name for r in response.results for t in r.topics}
        assert topic3 in names
        wanted = dl.DescribableLogDirTopic(topic=topic3, partitions=[0])
        response = wire.request(dl.DescribeLogDirsRequest(topics=[wanted]), version)
        found = [
            (t.name, [p.partition_index for p in t.partitions])
            for r in response.results
            for t in r.topics
        ]
        assert found == [(topic3, [0])]


def test_describe_acls_without_authorizer(wire: KafkaWire, broker_versions: dict) -> None:
    for version in common_versions(broker_versions, 29):
        request = protocol.request_class(29)(
            resource_type_filter=1,  # ANY
            resource_name_filter=None,
            pattern_type_filter=1 if version >= 1 else 3,
            principal_filter=None,
            host_filter=None,
            operation=1,
            permission_type=1,
        )
        response = wire.request(request, version)
        assert response.error_code in (0, 54)  # 54: SECURITY_DISABLED (no authorizer)
        assert response.resources == []


def test_describe_client_quotas(wire: KafkaWire, broker_versions: dict) -> None:
    for version in common_versions(broker_versions, 48):
        response = wire.request(protocol.request_class(48)(components=[], strict=False), version)
        assert response.error_code == 0 and response.entries == []


def test_describe_producers(wire: KafkaWire, broker_versions: dict, topic3: str) -> None:
    dp = M(61)
    for version in common_versions(broker_versions, 61):
        request = dp.DescribeProducersRequest(
            topics=[dp.TopicRequest(name=topic3, partition_indexes=[0, 1])]
        )
        response = wire.request(request, version)
        (topic,) = response.topics
        assert [
            (p.partition_index, p.error_code, p.active_producers) for p in topic.partitions
        ] == [
            (0, 0, []),
            (1, 0, []),
        ]


def test_transactions_apis(wire: KafkaWire, broker_versions: dict) -> None:
    for version in common_versions(broker_versions, 66):
        response = retry(
            lambda v=version: wire.request(protocol.request_class(66)(), v),
            lambda r: r.error_code == 0,
        )
        assert response.error_code == 0
        assert all(t.transactional_id for t in response.transaction_states)
    ensure_coordinator(wire, broker_versions, "codec-no-such-txn", 1)
    for version in common_versions(broker_versions, 65):
        request = protocol.request_class(65)(transactional_ids=["codec-no-such-txn"])
        response = retry(
            lambda r=request, v=version: wire.request(r, v),
            lambda r: r.transaction_states[0].error_code not in (14, 15, 16),
        )
        (state,) = response.transaction_states
        assert state.transactional_id == "codec-no-such-txn"
        assert state.error_code == 105  # TRANSACTIONAL_ID_NOT_FOUND


def test_describe_user_scram_credentials(wire: KafkaWire, broker_versions: dict) -> None:
    for version in common_versions(broker_versions, 50):
        response = wire.request(protocol.request_class(50)(users=None), version)
        assert response.error_code == 0 and response.results == []


def test_list_partition_reassignments(wire: KafkaWire, broker_versions: dict) -> None:
    for version in common_versions(broker_versions, 46):
        response = wire.request(protocol.request_class(46)(topics=None, timeout_ms=10000), version)
        assert response.error_code == 0 and response.topics == []


def test_describe_topic_partitions(wire: KafkaWire, broker_versions: dict, topic3: str) -> None:
    dt = M(75)
    for version in common_versions(broker_versions, 75):
        request = dt.DescribeTopicPartitionsRequest(
            topics=[dt.TopicRequest(name=topic3)], response_partition_limit=2
        )
        response = wire.request(request, version)
        (topic,) = response.topics
        assert topic.error_code == 0 and topic.name == topic3
        assert [p.partition_index for p in topic.partitions] == [0, 1]
        assert response.next_cursor is not None
        assert (response.next_cursor.topic_name, response.next_cursor.partition_index) == (
            topic3,
            2,
        )


def test_consumer_group_describe_unknown_group(wire: KafkaWire, broker_versions: dict) -> None:
    ensure_coordinator(wire, broker_versions, "codec-no-such-group", 0)
    for version in common_versions(broker_versions, 69):
        request = protocol.request_class(69)(group_ids=["codec-no-such-group"])
        response = retry(
            lambda r=request, v=version: wire.request(r, v),
            lambda r: r.groups[0].error_code not in (14, 15, 16),
        )
        (group,) = response.groups
        assert group.group_id == "codec-no-such-group"
        assert group.error_code == 69  # GROUP_ID_NOT_FOUND


# ----------------------------------------------------------------------------- topic admin


def _partition_count(wire: KafkaWire, name: str) -> int | None:
    md = M(3)
    response = wire.request(md.MetadataRequest(topics=[md.MetadataRequestTopic(name=name)]), 9)
    (topic,) = response.topics
    if topic.error_code == 3:  # UNKNOWN_TOPIC_OR_PARTITION
        return None
    assert topic.error_code == 0
    return len(topic.partitions)


def test_create_grow_delete_topics_at_every_version(wire: KafkaWire, broker_versions: dict) -> None:
    ct, cp, dt = M(19), M(37), M(20)
    create_versions = common_versions(broker_versions, 19)
    partition_versions = common_versions(broker_versions, 37)
    delete_versions = common_versions(broker_versions, 20)
    assert create_versions and partition_versions and delete_versions
    rounds = max(len(create_versions), len(partition_versions), len(delete_versions))
    for i in range(rounds):
        cv = create_versions[min(i, len(create_versions) - 1)]
        pv = partition_versions[min(i, len(partition_versions) - 1)]
        dv = delete_versions[min(i, len(delete_versions) - 1)]
        name = f"codec-admin-{i}-{time.monotonic_ns() % 10**9}"

        topic = ct.CreatableTopic(name=name, num_partitions=1, replication_factor=1)
        response = wire.request(ct.CreateTopicsRequest(topics=[topic], timeout_ms=30000), cv)
        (created,) = response.topics
        assert (created.name, created.error_code) == (name, 0), created
        if cv >= 5:
            assert created.num_partitions == 1 and created.replication_factor == 1
            assert {c.name for c in created.configs} >= {"cleanup.policy"}
        if cv >= 7:
            assert created.topic_id.int != 0
        retry(lambda n=name: _partition_count(wire, n), lambda c: c == 1)

        grow = cp.CreatePartitionsTopic(name=name, count=2, assignments=None)
        response = wire.request(cp.CreatePartitionsRequest(topics=[grow], timeout_ms=30000), pv)
        (result,) = response.results
        assert (result.name, result.error_code) == (name, 0), result
        assert retry(lambda n=name: _partition_count(wire, n), lambda c: c == 2) == 2

        if dv <= 5:
            request = dt.DeleteTopicsRequest(topic_names=[name], timeout_ms=30000)
        else:
            request = dt.DeleteTopicsRequest(
                topics=[dt.DeleteTopicState(name=name)], timeout_ms=30000
            )
        response = wire.request(request, dv)
        (deleted,) = response.responses
        assert (deleted.name, deleted.error_code) == (name, 0), deleted
        assert retry(lambda n=name: _partition_count(wire, n), lambda c: c is None) is None


def test_create_topics_validate_only_and_errors(
    wire: KafkaWire, broker_versions: dict, topic3: str
) -> None:
    ct = M(19)
    version = common_versions(broker_versions, 19)[-1]
    name = f"codec-validate-{time.monotonic_ns() % 10**9}"
    topic = ct.CreatableTopic(name=name, num_partitions=2, replication_factor=1)
    response = wire.request(
        ct.CreateTopicsRequest(topics=[topic], timeout_ms=30000, validate_only=True), version
    )
    assert response.topics[0].error_code == 0
    assert _partition_count(wire, name) is None  # validate_only created nothing
    existing = ct.CreatableTopic(name=topic3, num_partitions=1, replication_factor=1)
    response = wire.request(ct.CreateTopicsRequest(topics=[existing], timeout_ms=30000), version)
    assert response.topics[0].error_code == 36  # TOPIC_ALREADY_EXISTS
    assert response.topics[0].error_message


def test_describe_quorum(wire: KafkaWire, broker_versions: dict) -> None:
    dq = M(55)
    for version in common_versions(broker_versions, 55):
        partition = dq.DescribeQuorumRequestPartitionData(partition_index=0)
        topic = dq.DescribeQuorumRequestTopicData(
            topic_name="__cluster_metadata", partitions=[partition]
        )
        response = wire.request(dq.DescribeQuorumRequest(topics=[topic]), version)
        assert response.error_code == 0
        (result,) = response.topics
        (part,) = result.partitions
        assert part.error_code == 0 and part.leader_id >= 0
        assert [v.replica_id for v in part.current_voters] == [part.leader_id]
        assert part.high_watermark > 0
        if version >= 2:
            assert [n.node_id for n in response.nodes] == [part.leader_id]
            assert response.nodes[0].listeners


def test_offset_for_leader_epoch(wire: KafkaWire, broker_versions: dict, topic3: str) -> None:
    oe = M(23)
    for version in common_versions(broker_versions, 23):
        partition = oe.OffsetForLeaderPartition(
            partition=2, current_leader_epoch=-1, leader_epoch=0
        )
        topic = oe.OffsetForLeaderTopic(topic=topic3, partitions=[partition])
        request = oe.OffsetForLeaderEpochRequest(replica_id=-1, topics=[topic])
        response = wire.request(request, version)
        (result,) = response.topics
        (epoch,) = result.partitions
        assert (result.topic, epoch.partition, epoch.error_code) == (topic3, 2, 0)
        assert epoch.end_offset == 0


def test_list_client_metrics_resources(wire: KafkaWire, broker_versions: dict) -> None:
    for version in common_versions(broker_versions, 74):
        response = wire.request(protocol.request_class(74)(), version)
        assert response.error_code == 0
        assert isinstance(response.client_metrics_resources, list)


def test_describe_delegation_token_without_sasl(wire: KafkaWire, broker_versions: dict) -> None:
    for version in common_versions(broker_versions, 41):
        response = wire.request(protocol.request_class(41)(owners=None), version)
        # DELEGATION_TOKEN_AUTH_DISABLED (61) or DELEGATION_TOKEN_REQUEST_NOT_ALLOWED (64)
        assert response.error_code in (61, 64)
        assert response.tokens == []
