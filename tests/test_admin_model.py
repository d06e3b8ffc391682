"""AdminCore against the in-memory broker model: answers, routing, retries, deadlines."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from kafka_sansio import ClientConfig, LocalProtocolError, TopicPartition
from kafka_sansio._admin import AdminConfig, AdminCore
from kafka_sansio._admin_types import (
    EARLIEST,
    LATEST,
    MAX_TIMESTAMP,
    AdminResult,
    ClusterDescription,
    NewTopic,
    TopicCreated,
    TopicDescription,
)
from kafka_sansio._connection import RequestTimedOutError
from kafka_sansio.errors import (
    InvalidPartitionsError,
    InvalidReplicaAssignmentError,
    InvalidReplicationFactorError,
    InvalidTopicExceptionError,
    TopicAlreadyExistsError,
    UnknownTopicOrPartitionError,
)
from kafka_sansio.testing import ModelCluster, Pump, _model

LIST_OFFSETS, METADATA, CREATE_TOPICS, DELETE_TOPICS = 2, 3, 19, 20
CREATE_PARTITIONS, DESCRIBE_CLUSTER = 37, 60
NOT_LEADER, NOT_CONTROLLER, THROTTLED, LEADER_NOT_AVAILABLE = 6, 41, 89, 5


class Harness:
    def __init__(self, brokers: int = 3, timeout: float = 30.0) -> None:
        self.cluster = ModelCluster(brokers=brokers)
        info = self.cluster.brokers[1]
        config = AdminConfig(
            client=ClientConfig(bootstrap_servers=((info.host, info.port),)),
            default_api_timeout=timeout,
        )
        self.core = AdminCore(config, random=lambda: 0.5)
        self.pump = Pump(self.core, self.cluster)
        self.results: dict[int, AdminResult[Any]] = {}

    def wait(self, token: int, limit: float = 120.0) -> AdminResult[Any]:
        def done() -> bool:
            for event in self.core.events():
                if isinstance(event, AdminResult):
                    assert event.token not in self.results, "a call answered twice"
                    self.results[event.token] = event
            return token in self.results

        self.pump.until(done, limit)
        return self.results[token]

    def calls(self, api_key: int) -> list[int]:
        """The nodes that received each request of ``api_key``, in order."""
        return [node for node, key, _ in self.cluster.request_log if key == api_key]


@pytest.fixture
def h() -> Harness:
    return Harness()


def test_create_topics_answers_each_topic(h: Harness) -> None:
    h.cluster.create_topic("exists")
    token = h.core.create_topics(
        [
            NewTopic("a", 3, 2, {"cleanup.policy": "compact"}),
            "b",
            NewTopic("exists"),
            NewTopic("bad name!"),
            NewTopic("too-many-replicas", 1, 4),
            NewTopic("placed", assignments=[[2, 3], [3, 1]]),
        ],
        h.pump.now,
    )
    result = h.wait(token)
    value = result.value
    assert list(value) == ["a", "b", "exists", "bad name!", "too-many-replicas", "placed"]
    a = value["a"]
    assert isinstance(a, TopicCreated)
    assert (a.partitions, a.replication_factor) == (3, 2)
    assert a.configs == {"cleanup.policy": "compact"}
    assert a.topic_id == h.cluster.topics["a"].topic_id
    assert isinstance(value["b"], TopicCreated) and value["b"].partitions == 1
    assert isinstance(value["exists"], TopicAlreadyExistsError)
    assert isinstance(value["bad name!"], InvalidTopicExceptionError)
    assert isinstance(value["too-many-replicas"], InvalidReplicationFactorError)
    assert [p.replicas for p in h.cluster.topics["placed"].partitions] == [[2, 3], [3, 1]]
    assert isinstance(result.error, TopicAlreadyExistsError)  # the first failure
    assert not result.ok
    assert set(h.cluster.topics) == {"exists", "a", "b", "placed"}


def test_validate_only_creates_nothing(h: Harness) -> None:
    result = h.wait(h.core.create_topics([NewTopic("v", 4, 1)], h.pump.now, validate_only=True))
    assert result.ok and result.value["v"].partitions == 4
    assert "v" not in h.cluster.topics
    h.cluster.create_topic("grow", 1)
    result = h.wait(h.core.create_partitions({"grow": 3}, h.pump.now, validate_only=True))
    assert result.ok and len(h.cluster.topics["grow"].partitions) == 1


def test_not_controller_and_throttling_are_retried_after_a_metadata_refresh(h: Harness) -> None:
    h.cluster.inject_error(CREATE_TOPICS, NOT_CONTROLLER, topic="t", count=2)
    h.cluster.inject_error(DELETE_TOPICS, THROTTLED, topic="gone")
    h.cluster.create_topic("gone")
    create = h.core.create_topics(["t"], h.pump.now)
    delete = h.core.delete_topics(["gone"], h.pump.now)
    assert h.wait(create).ok and h.wait(delete).ok
    assert "t" in h.cluster.topics and "gone" not in h.cluster.topics
    assert len(h.calls(CREATE_TOPICS)) == 3 and len(h.calls(DELETE_TOPICS)) == 2
    # Every retry after NOT_CONTROLLER waited for a fresh metadata answer.
    log = [key for _, key, _ in h.cluster.request_log if key in (METADATA, CREATE_TOPICS)]
    firsts = [i for i, key in enumerate(log) if key == CREATE_TOPICS]
    for before, after in itertools.pairwise(firsts):
        assert METADATA in log[before:after]
    # Controller calls go to the controller the metadata names.
    assert set(h.calls(CREATE_TOPICS)) == {h.cluster.controller_id}


def test_controller_moves_to_another_broker(h: Harness) -> None:
    h.wait(h.core.describe_cluster(h.pump.now))
    h.pump.until(lambda: h.core.client.metadata.controller_id == 1)
    h.cluster.controller_id = 2
    h.cluster.inject_error(CREATE_TOPICS, NOT_CONTROLLER, node=1)
    assert h.wait(h.core.create_topics(["moved"], h.pump.now)).ok
    assert h.calls(CREATE_TOPICS) == [1, 2]


def test_connection_loss_is_retried(h: Harness) -> None:
    h.cluster.delay(DESCRIBE_CLUSTER, 5.0)
    token = h.core.describe_cluster(h.pump.now)
    h.pump.advance(1.0)
    assert len(h.calls(DESCRIBE_CLUSTER)) == 1
    h.cluster.drop_connections()
    result = h.wait(token)
    assert result.ok and len(h.calls(DESCRIBE_CLUSTER)) == 2
    value = result.value
    assert isinstance(value, ClusterDescription)
    assert value.cluster_id == h.cluster.cluster_id and value.controller == 1
    assert [b.node_id for b in value.brokers] == [1, 2, 3]
    assert h.pump.now < 6.0 + 1.0  # answered as soon as the retry was, not at the deadline


def test_describe_cluster_falls_back_to_metadata(
    h: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delitem(_model.ADVERTISED_VERSIONS, DESCRIBE_CLUSTER)
    h.cluster.stop_broker(3)
    result = h.wait(h.core.describe_cluster(h.pump.now))
    assert result.ok and [b.node_id for b in result.value.brokers] == [1, 2]
    assert h.calls(DESCRIBE_CLUSTER) == []


def test_deadline_is_in_the_timer_and_ends_the_call(h: Harness) -> None:
    for node in (1, 2, 3):
        h.cluster.stop_broker(node)
    token = h.core.describe_cluster(h.pump.now, timeout=5.0)
    timer = h.core.get_timer()
    assert timer is not None and timer <= 5.0
    result = h.wait(token)
    assert isinstance(result.error, RequestTimedOutError) and result.value is None
    assert h.pump.now == pytest.approx(5.0)
    assert h.core.pending() == 0


def test_per_item_calls_time_out_item_by_item(h: Harness) -> None:
    h.cluster.inject_error(CREATE_TOPICS, THROTTLED, topic="slow", count=1000)
    result = h.wait(h.core.create_topics(["fast", "slow"], h.pump.now, timeout=3.0))
    assert isinstance(result.value["fast"], TopicCreated)
    error = result.value["slow"]
    assert isinstance(error, RequestTimedOutError) and "THROTTLING" in str(error).upper()
    assert result.error is error


def test_describe_topics_retries_a_leader_election(h: Harness) -> None:
    h.cluster.create_topic("t", 2, replication_factor=2)
    h.cluster.inject_error(METADATA, LEADER_NOT_AVAILABLE, topic="t", count=2)
    result = h.wait(h.core.describe_topics(["t", "missing"], h.pump.now))
    t = result.value["t"]
    assert isinstance(t, TopicDescription)
    assert t.topic_id == h.cluster.topics["t"].topic_id and not t.internal
    assert [(p.partition, p.leader, p.replicas, p.isr) for p in t.partitions] == [
        (0, 1, (1, 2), (1, 2)),
        (1, 2, (2, 3), (2, 3)),
    ]
    assert isinstance(result.value["missing"], UnknownTopicOrPartitionError)


def test_describe_topics_reports_a_leaderless_partition(h: Harness) -> None:
    h.cluster.create_topic("solo", 1, replication_factor=1, leaders=[2])
    h.cluster.stop_broker(2)
    result = h.wait(h.core.describe_topics(["solo"], h.pump.now))
    (p,) = result.value["solo"].partitions
    assert p.leader is None and p.offline_replicas == (2,)


def test_list_topics(h: Harness) -> None:
    for name in ("b", "a", "c"):
        h.cluster.create_topic(name)
    result = h.wait(h.core.list_topics(h.pump.now))
    assert list(result.value) == ["a", "b", "c"]
    assert result.value["a"].topic_id == h.cluster.topics["a"].topic_id


def test_create_partitions(h: Harness) -> None:
    h.cluster.create_topic("t", 2, replication_factor=2)
    h.cluster.create_topic("u", 3)
    result = h.wait(h.core.create_partitions({"t": 5, "u": 2, "nope": 3}, h.pump.now))
    assert result.value["t"] is None
    assert isinstance(result.value["u"], InvalidPartitionsError)
    assert isinstance(result.value["nope"], UnknownTopicOrPartitionError)
    parts = h.cluster.topics["t"].partitions
    assert [p.index for p in parts] == [0, 1, 2, 3, 4]
    assert all(len(p.replicas) == 2 and p.leader == p.replicas[0] for p in parts)
    described = h.wait(h.core.describe_topics(["t"], h.pump.now)).value["t"]
    assert len(described.partitions) == 5


def test_model_create_partitions_checks_assignments(h: Harness) -> None:
    from kafka_sansio._messages.create_partitions import (
        CreatePartitionsAssignment,
        CreatePartitionsRequest,
        CreatePartitionsTopic,
    )

    h.cluster.create_topic("t", 1)
    got: list[Any] = []
    request = CreatePartitionsRequest(
        topics=[
            CreatePartitionsTopic(
                name="t", count=3, assignments=[CreatePartitionsAssignment(broker_ids=[1])]
            )
        ],
        timeout_ms=1000,
    )
    h.pump.settle()
    h.core.client.send_any(request, h.pump.now, lambda r, now: got.append(r))
    h.pump.until(lambda: got)
    (res,) = got[0].response.results
    assert res.error_code == InvalidReplicaAssignmentError.code


def test_list_offsets_goes_to_each_leader_and_follows_moves(h: Harness) -> None:
    h.cluster.create_topic("t", 3)
    for p in range(3):
        h.cluster.append("t", p, [b"x"] * (p + 1), timestamp=1000 + p)
    h.cluster.append("t", 0, [b"later"], timestamp=5000)
    tps = [TopicPartition("t", p) for p in range(3)]
    result = h.wait(h.core.list_offsets(dict.fromkeys(tps, LATEST), h.pump.now))
    assert {tp: v.offset for tp, v in result.value.items()} == {
        tps[0]: 2,
        tps[1]: 2,
        tps[2]: 3,
    }
    assert sorted(h.calls(LIST_OFFSETS)) == [1, 2, 3]
    # A leader moves: the old leader says NOT_LEADER, the core refreshes and asks the new one.
    h.cluster.move_leader("t", 0, 2)
    h.cluster.inject_error(LIST_OFFSETS, NOT_LEADER, node=1)
    before = len(h.calls(LIST_OFFSETS))
    specs = {tps[0]: 4000, TopicPartition("t", 1): EARLIEST, TopicPartition("t", 2): 9999}
    result = h.wait(h.core.list_offsets(specs, h.pump.now))
    assert result.ok
    found = result.value[tps[0]]
    assert (found.offset, found.timestamp) == (1, 5000)
    assert result.value[tps[1]].offset == 0
    assert result.value[tps[2]] is None  # no record that recent
    assert h.calls(LIST_OFFSETS)[before:].count(1) == 1  # the stale leader, once
    newest = h.wait(h.core.list_offsets({tps[0]: MAX_TIMESTAMP}, h.pump.now)).value[tps[0]]
    assert (newest.offset, newest.timestamp) == (1, 5000)


def test_list_offsets_waits_for_a_topic_to_appear(h: Harness) -> None:
    tp = TopicPartition("late", 0)
    token = h.core.list_offsets({tp: LATEST}, h.pump.now)
    h.pump.advance(2.0)
    assert token not in h.results and not h.core.events()
    h.cluster.create_topic("late")
    h.cluster.append("late", 0, [b"a", b"b"])
    result = h.wait(token)
    assert result.ok and result.value[tp].offset == 2


def test_list_offsets_unknown_partition_and_unknown_topic(h: Harness) -> None:
    h.cluster.create_topic("t", 1)
    specs = {TopicPartition("t", 7): LATEST, TopicPartition("never", 0): LATEST}
    result = h.wait(h.core.list_offsets(specs, h.pump.now, timeout=4.0))
    assert isinstance(result.value[TopicPartition("t", 7)], UnknownTopicOrPartitionError)
    timed_out = result.value[TopicPartition("never", 0)]
    assert isinstance(timed_out, RequestTimedOutError)
    assert isinstance(timed_out.__cause__, UnknownTopicOrPartitionError)


def test_close_answers_every_pending_call(h: Harness) -> None:
    for node in (1, 2, 3):
        h.cluster.stop_broker(node)
    tokens = [h.core.describe_cluster(h.pump.now), h.core.delete_topics(["x"], h.pump.now)]
    h.pump.advance(1.0)
    h.core.close()
    events = h.core.events()
    assert sorted(e.token for e in events if isinstance(e, AdminResult)) == tokens
    assert all(isinstance(e.error, LocalProtocolError) for e in events)
    assert h.core.get_timer() is None
    with pytest.raises(LocalProtocolError):
        h.core.list_topics(h.pump.now)


def test_empty_calls_answer_at_once(h: Harness) -> None:
    token = h.core.delete_topics([], h.pump.now)
    (event,) = h.core.events()
    assert event == AdminResult(token, "delete_topics", {}, None)


@pytest.mark.parametrize(
    "call",
    [
        lambda core: core.create_topics(["dup", NewTopic("dup")], 0.0),
        lambda core: core.create_topics([NewTopic("x", 1, 1, assignments=[[1]])], 0.0),
        lambda core: core.create_partitions({"t": 0}, 0.0),
        lambda core: core.delete_topics([""], 0.0),
        lambda core: core.list_offsets({TopicPartition("t", -1): LATEST}, 0.0),
        lambda core: core.list_offsets({TopicPartition("t", 0): -4}, 0.0),
        lambda core: core.describe_cluster(0.0, timeout=-1),
    ],
)
def test_bad_arguments_raise_local_protocol_error(h: Harness, call: Any) -> None:
    with pytest.raises(LocalProtocolError):
        call(h.core)
    assert h.core.pending() == 0


def test_calls_stuck_on_a_stopped_broker_are_routed_afresh(h: Harness) -> None:
    h.cluster.create_topic("t", 1, replication_factor=2, leaders=[1])
    h.cluster.append("t", 0, [b"a", b"b", b"c"])
    h.wait(h.core.list_offsets({TopicPartition("t", 0): EARLIEST}, h.pump.now))
    h.core.client.set_topics(["t"], h.pump.now)  # keep t-0's leader (1) in the metadata
    assert h.core.client.metadata.leader(TopicPartition("t", 0)) == 1
    assert h.core.client.metadata.controller_id == 1
    h.cluster.stop_broker(1)  # the controller and t-0's leader; t-0 fails over to 2
    create = h.core.create_topics(["after"], h.pump.now, timeout=20.0)
    offsets = h.core.list_offsets({TopicPartition("t", 0): LATEST}, h.pump.now, timeout=20.0)
    assert h.wait(create).ok and "after" in h.cluster.topics
    result = h.wait(offsets)
    assert result.ok and result.value[TopicPartition("t", 0)].offset == 3
    assert 1 not in h.calls(CREATE_TOPICS) + h.calls(LIST_OFFSETS)[1:]


def _admin_samples() -> list[tuple[int, int]]:
    from kafka_sansio.testing import _model_admin

    return [(k, v) for k, (lo, hi) in _model_admin.VERSIONS.items() for v in range(lo, hi + 1)]


@pytest.mark.parametrize(("api_key", "version"), _admin_samples())
def test_model_admin_answers_round_trip_through_the_codec(api_key: int, version: int) -> None:
    from kafka_sansio import FrameBuffer, frame, protocol
    from kafka_sansio._messages.create_partitions import (
        CreatePartitionsAssignment,
        CreatePartitionsRequest,
        CreatePartitionsTopic,
    )
    from kafka_sansio._messages.describe_cluster import DescribeClusterRequest

    cluster = ModelCluster(brokers=3)
    cluster.create_topic("t", 1)
    cluster.create_topic("u", 1)
    request: Any = DescribeClusterRequest()
    if api_key == CREATE_PARTITIONS:
        request = CreatePartitionsRequest(
            topics=[
                CreatePartitionsTopic(name="t", count=3, assignments=None),
                CreatePartitionsTopic(
                    name="u", count=2, assignments=[CreatePartitionsAssignment(broker_ids=[2, 3])]
                ),
                CreatePartitionsTopic(name="nope", count=2, assignments=None),
            ],
            timeout_ms=1000,
        )
    server = cluster.accept(1, 0.0)
    server.receive(frame(protocol.encode_request(request, version, 5, "c")), 0.0)
    frames = FrameBuffer()
    frames.feed(server.data_to_send())
    reply = frames.next_frame()
    assert reply is not None and not server.closed
    header, response = protocol.decode_response(api_key, version, reply)
    assert header.correlation_id == 5
    assert protocol.encode_response(response, version, 5) == reply
    if api_key == CREATE_PARTITIONS:
        assert [r.error_code for r in response.results] == [0, 0, 3]
        assert [len(cluster.topics[n].partitions) for n in "tu"] == [3, 2]
        assert cluster.topics["u"].partitions[1].replicas == [2, 3]
    else:
        assert [b.broker_id for b in response.brokers] == [1, 2, 3]
