"""The in-memory broker model, driven by the real client connection over its wire protocol.

Every exchange goes through ``BrokerConnection`` (client side) and
``ModelConnection`` (server side) with a fake clock; the helper :class:`Link`
pumps bytes between them.
"""

from __future__ import annotations

import struct
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kafka_sansio import protocol
from kafka_sansio._connection import (
    BrokerConnection,
    ConnectionClosed,
    ConnectionConfig,
    ConnectionState,
    Ready,
    RequestFailed,
    Response,
)
from kafka_sansio._framing import FrameBuffer, frame
from kafka_sansio._messages.api_versions import ApiVersionsRequest, ApiVersionsResponse
from kafka_sansio._messages.create_topics import (
    CreatableTopic,
    CreatableTopicConfig,
    CreateTopicsRequest,
    CreateTopicsResponse,
)
from kafka_sansio._messages.delete_topics import (
    DeleteTopicsRequest,
    DeleteTopicsResponse,
    DeleteTopicState,
)
from kafka_sansio._messages.describe_groups import DescribeGroupsRequest
from kafka_sansio._messages.fetch import (
    FetchPartition,
    FetchRequest,
    FetchResponse,
    FetchTopic,
    ForgottenTopic,
    PartitionData,
)
from kafka_sansio._messages.find_coordinator import FindCoordinatorRequest
from kafka_sansio._messages.list_offsets import (
    ListOffsetsPartition,
    ListOffsetsPartitionResponse,
    ListOffsetsRequest,
    ListOffsetsResponse,
    ListOffsetsTopic,
)
from kafka_sansio._messages.metadata import MetadataRequest, MetadataRequestTopic, MetadataResponse
from kafka_sansio._messages.offset_for_leader_epoch import (
    EpochEndOffset,
    OffsetForLeaderEpochRequest,
    OffsetForLeaderEpochResponse,
    OffsetForLeaderPartition,
    OffsetForLeaderTopic,
)
from kafka_sansio._messages.produce import (
    PartitionProduceData,
    PartitionProduceResponse,
    ProduceRequest,
    ProduceResponse,
    TopicProduceData,
)
from kafka_sansio._wire import Message
from kafka_sansio.records import BatchBuilder, ControlRecordType, decode_records
from kafka_sansio.testing._model import (
    ADVERTISED_VERSIONS,
    ModelCluster,
    ModelConnection,
    ModelConnectionRefused,
    ModelError,
)

MB = 1 << 20


class Link:
    """A client BrokerConnection wired to a ModelConnection, pumped by hand."""

    def __init__(self, cluster: ModelCluster, node: int = 1, now: float = 0.0) -> None:
        self.cluster = cluster
        self.node = node
        self.client = BrokerConnection(ConnectionConfig(request_timeout=60.0), random=lambda: 0.5)
        self.client.connect(now)
        self.server: ModelConnection = cluster.accept(node, now)
        self.client.connection_made(now)
        self.events: list[Any] = []
        self.lost = False
        self.pump(now)
        ready = [e for e in self.events if isinstance(e, Ready)]
        assert ready, self.events
        self.events.clear()

    def pump(self, now: float) -> None:
        for _ in range(100):
            moved = False
            out = self.client.data_to_send()
            if out and not self.server.closed:
                self.server.receive(out, now)
                moved = True
            back = self.server.data_to_send()
            if back:
                self.client.data_received(back, now)
                moved = True
            if self.server.closed and not self.lost:
                self.lost = True
                self.client.connection_lost(now)
                moved = True
            self.events += self.client.events()
            if not moved:
                return
        raise AssertionError("pump did not settle")

    def send(self, request: Message, now: float = 0.0, version: int | None = None) -> object:
        token = object()
        self.client.send(request, now, version=version, context=token)
        self.pump(now)
        return token

    def result(self, token: object) -> Message | None:
        for event in self.events:
            if isinstance(event, Response) and event.context is token:
                self.events.remove(event)
                return event.response
        return None

    def call(self, request: Message, now: float = 0.0, version: int | None = None) -> Any:
        response = self.result(self.send(request, now, version))
        assert response is not None, f"no response yet; events: {self.events}"
        return response

    def advance(self, now: float) -> None:
        self.server.handle_timer(now)
        self.pump(now)


def fetch_request(
    cluster: ModelCluster,
    offsets: dict[tuple[str, int], int],
    *,
    max_bytes: int = 50 * MB,
    partition_max_bytes: int = MB,
    min_bytes: int = 0,
    max_wait_ms: int = 0,
    isolation: int = 0,
    session_id: int = 0,
    session_epoch: int = -1,
    forgotten: dict[str, list[int]] | None = None,
    epochs: dict[tuple[str, int], int] | None = None,
) -> FetchRequest:
    topics: dict[str, FetchTopic] = {}
    for (name, index), offset in offsets.items():
        topic_id = cluster.topics[name].topic_id if name in cluster.topics else None
        entry = topics.setdefault(name, FetchTopic(topic=name, topic_id=topic_id or _zero()))
        entry.partitions.append(
            FetchPartition(
                partition=index,
                fetch_offset=offset,
                partition_max_bytes=partition_max_bytes,
                current_leader_epoch=(epochs or {}).get((name, index), -1),
            )
        )
    return FetchRequest(
        max_wait_ms=max_wait_ms,
        min_bytes=min_bytes,
        max_bytes=max_bytes,
        isolation_level=isolation,
        session_id=session_id,
        session_epoch=session_epoch,
        topics=list(topics.values()),
        forgotten_topics_data=[
            ForgottenTopic(topic=n, topic_id=cluster.topics[n].topic_id, partitions=ps)
            for n, ps in (forgotten or {}).items()
        ],
    )


def _zero() -> Any:
    from uuid import UUID

    return UUID(int=0)


def only_partition(response: FetchResponse) -> PartitionData:
    assert response.error_code == 0
    [topic] = response.responses
    [part] = topic.partitions
    return part


def values(records: bytes | memoryview | None, start: int | None = None) -> list[bytes | None]:
    decoded = decode_records(bytes(records or b""), start)
    return [r.value for r in decoded.records()]


def cluster_with_data(**kwargs: Any) -> ModelCluster:
    cluster = ModelCluster(3, **kwargs)
    cluster.create_topic("t", 2, leaders=[1, 2])
    cluster.append("t", 0, [b"a", b"b", b"c"])  # offsets 0-2
    cluster.append("t", 0, [b"d"])  # 3
    cluster.append("t", 0, [b"e", b"f"])  # 4-5
    return cluster


# ----------------------------------------------------------------------------- handshake


def test_api_versions_advertises_kafka_4_ranges() -> None:
    cluster = ModelCluster(1)
    link = Link(cluster)
    assert link.client.broker_versions == ADVERTISED_VERSIONS
    assert link.client.broker_versions[1] == (4, 17)
    # The group coordinator's APIs, in Kafka 4.0's ranges.
    assert link.client.broker_versions[10] == (0, 6)
    assert link.client.broker_versions[11] == (0, 9)
    response = link.call(ApiVersionsRequest(client_software_name="x", client_software_version="1"))
    assert isinstance(response, ApiVersionsResponse)
    assert response.error_code == 0


def raw_exchange(server: ModelConnection, payload: bytes, now: float = 0.0) -> bytes | None:
    server.receive(frame(payload), now)
    frames = FrameBuffer()
    frames.feed(server.data_to_send())
    return frames.next_frame()


def test_too_new_api_versions_is_answered_in_v0_with_unsupported_version() -> None:
    cluster = ModelCluster(1)
    server = cluster.accept(1, 0.0)
    payload = bytearray(protocol.encode_request(ApiVersionsRequest(), 4, 7, "c"))
    struct.pack_into(">h", payload, 2, 9)  # a version from the future
    reply = raw_exchange(server, bytes(payload))
    assert reply is not None
    header, response = protocol.decode_response(18, 0, reply)
    assert header.correlation_id == 7
    assert isinstance(response, ApiVersionsResponse)
    assert response.error_code == 35
    assert [(k.api_key, k.max_version) for k in response.api_keys] == [(18, 4)]
    assert not server.closed


@pytest.mark.parametrize(
    ("request_", "version"),
    [
        (DescribeGroupsRequest(groups=["g"]), 5),  # not implemented, not advertised
        (FetchRequest(), 3),  # removed in Kafka 4.0
        (ProduceRequest(acks=1), 2),  # listed but refused
    ],
)
def test_unimplemented_or_removed_versions_close_the_connection(
    request_: Message, version: int
) -> None:
    cluster = ModelCluster(1)
    link = Link(cluster)
    token = link.send(request_, 1.0, version=version)
    assert link.result(token) is None
    assert link.server.closed
    assert any(isinstance(e, RequestFailed) and e.context is token for e in link.events)
    assert link.client.state is ConnectionState.DISCONNECTED


def test_garbage_closes_the_connection() -> None:
    server = ModelCluster(1).accept(1, 0.0)
    server.receive(frame(b"\x00\x03\x00"), 0.0)
    assert server.closed


# ----------------------------------------------------------------------------- metadata


def test_metadata_brokers_controller_topics_and_ids() -> None:
    cluster = ModelCluster(3, cluster_id="abc", controller_id=2)
    topic = cluster.create_topic("t", 3)
    link = Link(cluster)
    response = link.call(MetadataRequest(topics=None))
    assert isinstance(response, MetadataResponse)
    assert response.cluster_id == "abc" and response.controller_id == 2
    assert [(b.node_id, b.port) for b in response.brokers] == [(1, 9092), (2, 9093), (3, 9094)]
    [t] = response.topics
    assert (t.name, t.topic_id, t.error_code) == ("t", topic.topic_id, 0)
    assert [p.leader_id for p in t.partitions] == [1, 2, 3]
    assert all(p.leader_epoch == 0 and len(p.replica_nodes) == 3 for p in t.partitions)
    assert all(p.isr_nodes == p.replica_nodes for p in t.partitions)


def test_metadata_unknown_topic_and_topic_ids() -> None:
    cluster = ModelCluster(1)
    topic = cluster.create_topic("known")
    link = Link(cluster)
    response = link.call(
        MetadataRequest(
            topics=[
                MetadataRequestTopic(name="nope"),
                MetadataRequestTopic(name=None, topic_id=topic.topic_id),
                MetadataRequestTopic(name=None, topic_id=protocol_uuid(5)),
            ],
            allow_auto_topic_creation=True,
        )
    )
    errors = [(t.name, t.error_code) for t in response.topics]
    assert errors == [("nope", 3), ("known", 0), (None, 100)]
    assert "nope" not in cluster.topics  # auto-creation is off by default
    assert link.call(MetadataRequest(topics=[])).topics == []
    assert [t.name for t in link.call(MetadataRequest(topics=[]), version=0).topics] == ["known"]


def protocol_uuid(n: int) -> Any:
    from uuid import UUID

    return UUID(int=n)


def test_metadata_auto_creation_when_enabled() -> None:
    cluster = ModelCluster(1, auto_create_topics=True, default_partitions=2)
    link = Link(cluster)
    request = MetadataRequest(topics=[MetadataRequestTopic(name="new")])
    first = link.call(request)
    assert first.topics[0].error_code == 5  # LEADER_NOT_AVAILABLE while being created
    second = link.call(request)
    assert second.topics[0].error_code == 0 and len(second.topics[0].partitions) == 2
    refused = link.call(
        MetadataRequest(topics=[MetadataRequestTopic(name="x")], allow_auto_topic_creation=False)
    )
    assert refused.topics[0].error_code == 3 and "x" not in cluster.topics


def test_stopped_broker_leaves_metadata_and_leadership_fails_over() -> None:
    cluster = ModelCluster(3)
    cluster.create_topic("t", 1, leaders=[2])
    cluster.stop_broker(2)
    with pytest.raises(ModelConnectionRefused):
        cluster.accept(2, 0.0)
    response = Link(cluster).call(MetadataRequest(topics=None))
    assert [b.node_id for b in response.brokers] == [1, 3]
    [p] = response.topics[0].partitions
    assert (p.leader_id, p.leader_epoch, p.offline_replicas) == (3, 1, [2])
    assert 2 not in p.isr_nodes
    cluster.start_broker(2)
    assert cluster.partition("t", 0).isr == [3, 1, 2]
    Link(cluster, node=2)  # accepts again


# ----------------------------------------------------------------------------- fetch basics


def test_fetch_returns_whole_batches_from_the_batch_start() -> None:
    cluster = cluster_with_data()
    link = Link(cluster)
    part = only_partition(link.call(fetch_request(cluster, {("t", 0): 1})))
    assert (part.high_watermark, part.last_stable_offset, part.log_start_offset) == (6, 6, 0)
    assert part.aborted_transactions is None  # read_uncommitted
    decoded = decode_records(bytes(part.records or b""))
    assert [b.base_offset for b in decoded.batches] == [0, 3, 4]  # the batch holding 1, whole
    assert values(part.records, 1) == [b"b", b"c", b"d", b"e", b"f"]


def test_fetch_at_the_high_watermark_is_empty_without_error() -> None:
    cluster = cluster_with_data()
    part = only_partition(Link(cluster).call(fetch_request(cluster, {("t", 0): 6})))
    assert part.error_code == 0 and bytes(part.records or b"") == b""
    assert part.high_watermark == 6


@pytest.mark.parametrize("offset", [7, 100, -1])
def test_fetch_out_of_range(offset: int) -> None:
    cluster = cluster_with_data()
    part = only_partition(Link(cluster).call(fetch_request(cluster, {("t", 0): offset})))
    assert part.error_code == 1
    assert (part.high_watermark, part.log_start_offset) == (-1, -1)  # as Kafka sends it
    assert bytes(part.records or b"") == b""


def test_fetch_out_of_range_can_fill_in_offsets() -> None:
    cluster = cluster_with_data(out_of_range_offsets=True)
    part = only_partition(Link(cluster).call(fetch_request(cluster, {("t", 0): 9})))
    assert (part.error_code, part.high_watermark, part.log_start_offset) == (1, 6, 0)


def test_truncate_start_removes_whole_batches_below_the_new_start() -> None:
    cluster = cluster_with_data()
    cluster.truncate_start("t", 0, 4)
    assert cluster.log_start_offset("t", 0) == 4
    assert [b.base_offset for b in cluster.log("t", 0)] == [4]
    link = Link(cluster)
    assert only_partition(link.call(fetch_request(cluster, {("t", 0): 3}))).error_code == 1
    part = only_partition(link.call(fetch_request(cluster, {("t", 0): 4})))
    assert part.log_start_offset == 4 and values(part.records) == [b"e", b"f"]
    # A start inside a batch keeps the batch; reads from the start get all of it.
    cluster.truncate_start("t", 0, 5)
    part = only_partition(link.call(fetch_request(cluster, {("t", 0): 5})))
    assert decode_records(bytes(part.records or b"")).batches[0].base_offset == 4
    assert [r.value for r in cluster.records("t", 0)] == [b"f"]
    with pytest.raises(ModelError):
        cluster.truncate_start("t", 0, 99)


def test_unknown_topic_and_partition() -> None:
    cluster = cluster_with_data()
    link = Link(cluster)
    by_name = link.call(fetch_request(cluster, {("nope", 0): 0}), version=12)
    assert by_name.responses[0].partitions[0].error_code == 3
    by_id = link.call(fetch_request(cluster, {("nope", 0): 0}), version=13)
    assert by_id.responses[0].partitions[0].error_code == 100
    bad_index = link.call(fetch_request(cluster, {("t", 7): 0}))
    assert bad_index.responses[0].partitions[0].error_code == 3


# ----------------------------------------------------------------------------- leaders


def test_fetch_from_a_broker_without_a_replica_names_the_leader() -> None:
    cluster = ModelCluster(3)
    cluster.create_topic("t", 1, leaders=[3], replication_factor=1)
    cluster.append("t", 0, [b"a"])
    link = Link(cluster, node=1)
    response = link.call(fetch_request(cluster, {("t", 0): 0}))
    part = only_partition(response)
    assert part.error_code == 6
    assert (part.current_leader.leader_id, part.current_leader.leader_epoch) == (3, 0)
    assert [(e.node_id, e.port) for e in response.node_endpoints] == [(3, 9094)]
    # Kafka fills the leader fields from v16 only (KIP-951).
    old = only_partition(link.call(fetch_request(cluster, {("t", 0): 0}), version=15))
    assert old.error_code == 6 and old.current_leader.leader_id == -1
    leader = Link(cluster, node=3)
    assert values(only_partition(leader.call(fetch_request(cluster, {("t", 0): 0}))).records)


def test_followers_serve_consumer_fetches_from_v11() -> None:
    cluster = cluster_with_data()
    cluster.move_leader("t", 0, 3)
    link = Link(cluster, node=1)  # a follower now
    for version in (11, 17):
        part = only_partition(link.call(fetch_request(cluster, {("t", 0): 0}), version=version))
        assert part.error_code == 0 and part.high_watermark == 6
        assert values(part.records) == [b"a", b"b", b"c", b"d", b"e", b"f"]
    old = link.call(fetch_request(cluster, {("t", 0): 0}), version=10)
    assert old.responses[0].partitions[0].error_code == 6
    assert list_offsets(link, -1).error_code == 6  # ListOffsets stays leader-only


def test_fetch_leader_epoch_checks() -> None:
    cluster = cluster_with_data()
    cluster.move_leader("t", 0, 2)
    cluster.move_leader("t", 0, 1)  # epoch 2, leader 1 again
    link = Link(cluster)

    def error(epoch: int) -> int:
        request = fetch_request(cluster, {("t", 0): 0}, epochs={("t", 0): epoch})
        return only_partition(link.call(request)).error_code

    assert error(1) == 74  # FENCED_LEADER_EPOCH
    assert error(3) == 75  # UNKNOWN_LEADER_EPOCH
    assert error(2) == 0
    assert error(-1) == 0


def test_offset_for_leader_epoch_tracks_epoch_starts() -> None:
    cluster = ModelCluster(2)
    cluster.create_topic("t", 1, leaders=[1])
    cluster.append("t", 0, [b"a", b"b"])  # epoch 0: 0-1
    cluster.move_leader("t", 0, 2)
    cluster.append("t", 0, [b"c"])  # epoch 1: 2
    cluster.move_leader("t", 0, 1)
    cluster.append("t", 0, [b"d", b"e"])  # epoch 2: 3-4
    link = Link(cluster)

    def ask(epoch: int, current: int = -1) -> EpochEndOffset:
        response = link.call(
            OffsetForLeaderEpochRequest(
                replica_id=-1,
                topics=[
                    OffsetForLeaderTopic(
                        topic="t",
                        partitions=[
                            OffsetForLeaderPartition(
                                partition=0, leader_epoch=epoch, current_leader_epoch=current
                            )
                        ],
                    )
                ],
            )
        )
        assert isinstance(response, OffsetForLeaderEpochResponse)
        result: EpochEndOffset = response.topics[0].partitions[0]
        return result

    assert (ask(0).leader_epoch, ask(0).end_offset) == (0, 2)
    assert (ask(1).leader_epoch, ask(1).end_offset) == (1, 3)
    assert (ask(2).leader_epoch, ask(2).end_offset) == (2, 5)
    assert (ask(5).leader_epoch, ask(5).end_offset) == (-1, -1)
    assert ask(0, current=1).error_code == 74
    assert ask(0, current=2).error_code == 0
    follower = Link(cluster, node=2)
    response = follower.call(
        OffsetForLeaderEpochRequest(
            topics=[
                OffsetForLeaderTopic(
                    topic="t", partitions=[OffsetForLeaderPartition(partition=0, leader_epoch=0)]
                )
            ]
        )
    )
    assert response.topics[0].partitions[0].error_code == 6


# ----------------------------------------------------------------------------- sizes


def big_value(n: int, fill: bytes = b"x") -> bytes:
    return fill * n


def test_first_batch_is_returned_even_above_the_limits() -> None:
    cluster = ModelCluster(1)
    cluster.create_topic("t")
    cluster.append("t", 0, [big_value(5000)])
    cluster.append("t", 0, [big_value(10)])
    link = Link(cluster)
    part = only_partition(
        link.call(fetch_request(cluster, {("t", 0): 0}, max_bytes=100, partition_max_bytes=100))
    )
    decoded = decode_records(bytes(part.records or b""))
    assert [b.base_offset for b in decoded.batches] == [0]
    assert decoded.truncated_bytes == 0  # the limit is spent: nothing of the next batch


def test_trailing_batch_is_cut_like_a_file_slice() -> None:
    cluster = ModelCluster(1)
    cluster.create_topic("t")
    for i in range(3):
        cluster.append("t", 0, [big_value(300, bytes([65 + i]))])
    size = cluster.partition("t", 0).log.batches[0].size
    link = Link(cluster)
    part = only_partition(
        link.call(fetch_request(cluster, {("t", 0): 0}, partition_max_bytes=size + 100))
    )
    assert len(bytes(part.records or b"")) == size + 100
    decoded = decode_records(bytes(part.records or b""))
    assert [b.base_offset for b in decoded.batches] == [0]
    assert decoded.truncated_bytes == 100 and decoded.next_offset == 1


def test_whole_batches_only_when_slicing_is_off() -> None:
    cluster = ModelCluster(1, slice_fetches=False)
    cluster.create_topic("t")
    for i in range(3):
        cluster.append("t", 0, [big_value(300, bytes([65 + i]))])
    size = cluster.partition("t", 0).log.batches[0].size
    part = only_partition(
        Link(cluster).call(fetch_request(cluster, {("t", 0): 0}, partition_max_bytes=size + 100))
    )
    decoded = decode_records(bytes(part.records or b""))
    assert len(decoded.batches) == 1 and decoded.truncated_bytes == 0


def test_response_max_bytes_is_shared_across_partitions() -> None:
    cluster = ModelCluster(1, slice_fetches=False)
    cluster.create_topic("t", 2)
    for p in (0, 1):
        for _ in range(3):
            cluster.append("t", p, [big_value(200)])
    size = cluster.partition("t", 0).log.batches[0].size
    response = Link(cluster).call(
        fetch_request(cluster, {("t", 0): 0, ("t", 1): 0}, max_bytes=size * 4)
    )
    counts = [
        len(decode_records(bytes(p.records or b"")).batches)
        for p in response.responses[0].partitions
    ]
    assert counts == [3, 1]
    # The second partition gets no free first batch once the first returned data.
    response = Link(cluster).call(
        fetch_request(cluster, {("t", 0): 0, ("t", 1): 0}, max_bytes=size * 3)
    )
    counts = [
        len(decode_records(bytes(p.records or b"")).batches)
        for p in response.responses[0].partitions
    ]
    assert counts == [3, 0]


# ----------------------------------------------------------------------------- transactions


def transactional_cluster() -> ModelCluster:
    cluster = ModelCluster(1)
    cluster.create_topic("t")
    cluster.append("t", 0, [b"plain"])  # 0
    cluster.begin_transaction(7)
    cluster.append("t", 0, [b"t1", b"t2"], producer_id=7, transactional=True)  # 1-2
    cluster.append("t", 0, [b"after"])  # 3
    return cluster


def test_open_transaction_holds_the_last_stable_offset() -> None:
    cluster = transactional_cluster()
    assert cluster.last_stable_offset("t", 0) == 1 and cluster.high_watermark("t", 0) == 4
    link = Link(cluster)
    committed = only_partition(link.call(fetch_request(cluster, {("t", 0): 0}, isolation=1)))
    assert (committed.high_watermark, committed.last_stable_offset) == (4, 1)
    assert values(committed.records) == [b"plain"]
    assert committed.aborted_transactions == []
    at_lso = only_partition(link.call(fetch_request(cluster, {("t", 0): 1}, isolation=1)))
    assert at_lso.error_code == 0 and bytes(at_lso.records or b"") == b""
    uncommitted = only_partition(link.call(fetch_request(cluster, {("t", 0): 0})))
    assert values(uncommitted.records) == [b"plain", b"t1", b"t2", b"after"]


def test_aborted_transaction_is_reported_to_read_committed_fetches() -> None:
    cluster = transactional_cluster()
    cluster.abort_transaction(7)
    assert cluster.last_stable_offset("t", 0) == 5
    [marker] = [b for b in cluster.log("t", 0) if b.is_control]
    assert marker.base_offset == 4 and marker.producer_id == 7
    assert marker.control_records[0].type == ControlRecordType.ABORT
    link = Link(cluster)
    part = only_partition(link.call(fetch_request(cluster, {("t", 0): 0}, isolation=1)))
    assert [(a.producer_id, a.first_offset) for a in part.aborted_transactions or []] == [(7, 1)]
    assert len(decode_records(bytes(part.records or b"")).batches) == 4
    # Fetching past the aborted range reports nothing.
    later = only_partition(link.call(fetch_request(cluster, {("t", 0): 5}, isolation=1)))
    assert later.aborted_transactions == []


def test_committed_transaction_has_no_aborted_entries() -> None:
    cluster = transactional_cluster()
    cluster.commit_transaction(7)
    part = only_partition(Link(cluster).call(fetch_request(cluster, {("t", 0): 0}, isolation=1)))
    assert part.aborted_transactions == [] and part.last_stable_offset == 5
    decoded = decode_records(bytes(part.records or b""))
    assert decoded.batches[-1].control_records[0].type == ControlRecordType.COMMIT
    with pytest.raises(ModelError):
        cluster.commit_transaction(7)


# ----------------------------------------------------------------------------- waiting


def test_min_bytes_parks_the_fetch_until_data_arrives() -> None:
    cluster = ModelCluster(1)
    cluster.create_topic("t")
    link = Link(cluster)
    token = link.send(fetch_request(cluster, {("t", 0): 0}, min_bytes=1, max_wait_ms=500), now=10.0)
    assert link.result(token) is None
    assert link.server.get_timer() == pytest.approx(10.5)
    link.advance(10.2)
    assert link.result(token) is None
    cluster.append("t", 0, [b"late"], now=10.3)
    link.pump(10.3)
    response = link.result(token)
    assert isinstance(response, FetchResponse)
    assert values(only_partition(response).records) == [b"late"]
    assert link.server.get_timer() is None


def test_max_wait_expires_with_an_empty_answer() -> None:
    cluster = ModelCluster(1)
    cluster.create_topic("t")
    link = Link(cluster)
    token = link.send(fetch_request(cluster, {("t", 0): 0}, min_bytes=1, max_wait_ms=250), 1.0)
    link.advance(1.249)
    assert link.result(token) is None
    link.advance(1.25)
    response = link.result(token)
    assert isinstance(response, FetchResponse)
    assert bytes(only_partition(response).records or b"") == b""


def test_a_parked_fetch_holds_back_later_requests_on_the_connection() -> None:
    cluster = ModelCluster(1)
    cluster.create_topic("t")
    link = Link(cluster)
    fetch = link.send(fetch_request(cluster, {("t", 0): 0}, min_bytes=1, max_wait_ms=1000), 0.0)
    meta = link.send(MetadataRequest(topics=None), 0.1)
    assert link.result(meta) is None
    link.advance(1.0)
    assert link.result(fetch) is not None and link.result(meta) is not None


def test_leader_change_completes_a_parked_fetch() -> None:
    cluster = ModelCluster(2)
    cluster.create_topic("t", leaders=[1])
    link = Link(cluster)
    request = fetch_request(
        cluster, {("t", 0): 0}, min_bytes=1, max_wait_ms=5000, epochs={("t", 0): 0}
    )
    token = link.send(request, 0.0)
    cluster.move_leader("t", 0, 2, now=0.5)
    link.pump(0.5)
    response = link.result(token)
    assert isinstance(response, FetchResponse)
    assert only_partition(response).error_code == 74  # the client's epoch is now stale
    # Before v11 only the leader serves fetches, so the move alone completes it.
    cluster.move_leader("t", 0, 1, now=1.0)
    token = link.send(fetch_request(cluster, {("t", 0): 0}, min_bytes=1, max_wait_ms=5000), 1.0, 10)
    assert link.result(token) is None
    cluster.move_leader("t", 0, 2, now=1.5)
    link.pump(1.5)
    response = link.result(token)
    assert isinstance(response, FetchResponse) and only_partition(response).error_code == 6


# ----------------------------------------------------------------------------- sessions


def test_fetch_session_incremental_answers_only_changes() -> None:
    cluster = ModelCluster(1)
    cluster.create_topic("a", 2)
    cluster.append("a", 0, [b"x"])
    link = Link(cluster)
    offsets = {("a", 0): 0, ("a", 1): 0}
    full = link.call(fetch_request(cluster, offsets, session_epoch=0))
    session = full.session_id
    assert session > 0
    assert len(full.responses[0].partitions) == 2
    # Nothing changed since: an incremental fetch at the new offsets is empty.
    quiet = link.call(fetch_request(cluster, {("a", 0): 1}, session_id=session, session_epoch=1))
    assert quiet.session_id == session and quiet.responses == []
    cluster.append("a", 1, [b"y"])
    changed = link.call(fetch_request(cluster, {}, session_id=session, session_epoch=2))
    [topic] = changed.responses
    assert [p.partition_index for p in topic.partitions] == [1]
    assert values(topic.partitions[0].records) == [b"y"]
    # Forget partition 1: new data there is no longer reported.
    forgot = link.call(
        fetch_request(
            cluster, {("a", 1): 1}, session_id=session, session_epoch=3, forgotten={"a": [1]}
        )
    )
    assert forgot.responses == []
    cluster.append("a", 1, [b"z"])
    assert (
        link.call(fetch_request(cluster, {}, session_id=session, session_epoch=4)).responses == []
    )


def test_fetch_session_errors_and_closing() -> None:
    cluster = ModelCluster(1)
    cluster.create_topic("a")
    link = Link(cluster)
    session = link.call(fetch_request(cluster, {("a", 0): 0}, session_epoch=0)).session_id
    stale = link.call(fetch_request(cluster, {}, session_id=session, session_epoch=5))
    assert (stale.error_code, stale.responses) == (71, [])
    missing = link.call(fetch_request(cluster, {}, session_id=session + 100, session_epoch=1))
    assert missing.error_code == 70
    closing = link.call(fetch_request(cluster, {("a", 0): 0}, session_id=session, session_epoch=-1))
    assert closing.session_id == 0 and closing.error_code == 0
    gone = link.call(fetch_request(cluster, {}, session_id=session, session_epoch=1))
    assert gone.error_code == 70


def test_fetch_session_cache_is_bounded() -> None:
    cluster = ModelCluster(1, fetch_session_cache_size=2)
    cluster.create_topic("a")
    link = Link(cluster)
    ids = [
        link.call(fetch_request(cluster, {("a", 0): 0}, session_epoch=0)).session_id
        for _ in range(3)
    ]
    assert len(set(ids)) == 3
    evicted = link.call(fetch_request(cluster, {}, session_id=ids[0], session_epoch=1))
    assert evicted.error_code == 70
    kept = link.call(fetch_request(cluster, {}, session_id=ids[2], session_epoch=1))
    assert kept.error_code == 0
    no_sessions = ModelCluster(1, fetch_session_cache_size=0)
    no_sessions.create_topic("a")
    reply = Link(no_sessions).call(fetch_request(no_sessions, {("a", 0): 0}, session_epoch=0))
    assert reply.session_id == 0


def test_restarted_broker_forgets_sessions() -> None:
    cluster = ModelCluster(1)
    cluster.create_topic("a")
    link = Link(cluster)
    session = link.call(fetch_request(cluster, {("a", 0): 0}, session_epoch=0)).session_id
    cluster.stop_broker(1)
    link.pump(0.0)
    assert link.server.closed and link.lost
    cluster.start_broker(1)
    again = Link(cluster)
    assert (
        again.call(fetch_request(cluster, {}, session_id=session, session_epoch=1)).error_code == 70
    )


# ----------------------------------------------------------------------------- list offsets


def list_offsets(
    link: Link, timestamp: int, *, isolation: int = 0, epoch: int = -1, version: int | None = None
) -> ListOffsetsPartitionResponse:
    response = link.call(
        ListOffsetsRequest(
            replica_id=-1,
            isolation_level=isolation,
            topics=[
                ListOffsetsTopic(
                    name="t",
                    partitions=[
                        ListOffsetsPartition(
                            partition_index=0, timestamp=timestamp, current_leader_epoch=epoch
                        )
                    ],
                )
            ],
        ),
        version=version,
    )
    assert isinstance(response, ListOffsetsResponse)
    result: ListOffsetsPartitionResponse = response.topics[0].partitions[0]
    return result


def test_list_offsets_special_and_real_timestamps() -> None:
    cluster = ModelCluster(2)
    cluster.create_topic("t", leaders=[1])
    cluster.append("t", 0, [b"a", b"b"], timestamp=1000)  # 0-1
    cluster.append("t", 0, [b"c"], timestamp=5000)  # 2
    cluster.move_leader("t", 0, 2)
    cluster.move_leader("t", 0, 1)
    cluster.append("t", 0, [b"d"], timestamp=3000)  # 3, epoch 2
    link = Link(cluster)
    latest = list_offsets(link, -1)
    assert (latest.offset, latest.timestamp, latest.leader_epoch) == (4, -1, 2)
    earliest = list_offsets(link, -2)
    assert (earliest.offset, earliest.leader_epoch) == (0, 0)
    max_ts = list_offsets(link, -3)
    assert (max_ts.offset, max_ts.timestamp, max_ts.leader_epoch) == (2, 5000, 0)
    lookup = list_offsets(link, 2000)
    assert (lookup.offset, lookup.timestamp) == (2, 5000)
    exact = list_offsets(link, 3000)
    assert (exact.offset, exact.timestamp) == (2, 5000)  # first offset with ts >= 3000
    first = list_offsets(link, 0)
    assert (first.offset, first.timestamp) == (0, 1000)
    none = list_offsets(link, 9000)
    assert (none.error_code, none.offset, none.timestamp) == (0, -1, -1)
    cluster.truncate_start("t", 0, 2)
    earliest = list_offsets(link, -2)
    assert earliest.offset == 2
    assert list_offsets(link, 0).offset == 2


def test_list_offsets_latest_under_read_committed_is_the_lso() -> None:
    cluster = transactional_cluster()
    link = Link(cluster)
    assert list_offsets(link, -1, isolation=1).offset == 1
    assert list_offsets(link, -1, isolation=0).offset == 4


def test_list_offsets_leader_and_epoch_errors() -> None:
    cluster = ModelCluster(2)
    cluster.create_topic("t", leaders=[2])
    link = Link(cluster, node=1)
    assert list_offsets(link, -1).error_code == 6
    leader = Link(cluster, node=2)
    assert list_offsets(leader, -1, epoch=0).error_code == 0
    cluster.move_leader("t", 0, 2)
    assert list_offsets(leader, -1, epoch=0).error_code == 74
    assert list_offsets(leader, -1, epoch=4).error_code == 75


# ----------------------------------------------------------------------------- produce


def produce(
    link: Link,
    batch: bytes,
    *,
    acks: int = -1,
    topic: str = "t",
    partition: int = 0,
    version: int | None = None,
) -> PartitionProduceResponse | None:
    token = link.send(
        ProduceRequest(
            acks=acks,
            timeout_ms=1000,
            topic_data=[
                TopicProduceData(
                    name=topic,
                    partition_data=[PartitionProduceData(index=partition, records=batch)],
                )
            ],
        ),
        version=version,
    )
    if acks == 0:
        return None
    response = link.result(token)
    assert isinstance(response, ProduceResponse)
    result: PartitionProduceResponse = response.responses[0].partition_responses[0]
    return result


def batch_of(*vals: bytes, producer_id: int = -1, epoch: int = -1, seq: int = -1) -> bytes:
    builder = BatchBuilder(producer_id=producer_id, producer_epoch=epoch, base_sequence=seq)
    for v in vals:
        builder.append(None, v, timestamp=1234)
    return builder.build()


def test_produce_appends_and_answers_base_offsets() -> None:
    cluster = ModelCluster(1)
    cluster.create_topic("t")
    link = Link(cluster)
    first = produce(link, batch_of(b"a", b"b"))
    second = produce(link, batch_of(b"c"), acks=1)
    assert first is not None and second is not None
    assert (first.error_code, first.base_offset, first.log_append_time_ms) == (0, 0, -1)
    assert (second.base_offset, second.log_start_offset) == (2, 0)
    assert produce(link, batch_of(b"d"), acks=0) is None
    link.pump(0.0)
    assert [r.value for r in cluster.records("t", 0)] == [b"a", b"b", b"c", b"d"]
    assert [r.offset for r in cluster.records("t", 0)] == [0, 1, 2, 3]
    assert cluster.log("t", 0)[1].partition_leader_epoch == 0


def test_produce_with_log_append_time() -> None:
    cluster = ModelCluster(1)
    cluster.create_topic("t", configs={"message.timestamp.type": "LogAppendTime"})
    link = Link(cluster, now=42.0)
    result = produce(link, batch_of(b"a"))
    assert result is not None and result.log_append_time_ms == 42000
    [batch] = cluster.log("t", 0)  # decoding checks the rewritten CRC
    assert batch.timestamp_type == 1 and batch.max_timestamp == 42000


def test_produce_errors() -> None:
    cluster = ModelCluster(2)
    cluster.create_topic("t", leaders=[2])
    link = Link(cluster, node=1)
    result = produce(link, batch_of(b"a"))
    assert result is not None and result.error_code == 6
    assert (result.current_leader.leader_id, result.current_leader.leader_epoch) == (2, 0)
    leader = Link(cluster, node=2)
    assert produce(leader, batch_of(b"a"), topic="nope").error_code == 3  # type: ignore[union-attr]
    corrupt = bytearray(batch_of(b"a"))
    corrupt[-1] ^= 0xFF
    assert produce(leader, bytes(corrupt)).error_code == 2  # type: ignore[union-attr]
    two = batch_of(b"a") + batch_of(b"b")
    assert produce(leader, two).error_code == 87  # type: ignore[union-attr]
    assert produce(leader, batch_of(b"a"), acks=5).error_code == 21  # type: ignore[union-attr]
    assert cluster.high_watermark("t", 0) == 0


def test_idempotent_producer_sequences() -> None:
    cluster = ModelCluster(1)
    cluster.create_topic("t")
    link = Link(cluster)
    first = produce(link, batch_of(b"a", b"b", producer_id=9, epoch=0, seq=0))
    assert first is not None and first.base_offset == 0
    retry = produce(link, batch_of(b"a", b"b", producer_id=9, epoch=0, seq=0))
    assert retry is not None and (retry.error_code, retry.base_offset) == (0, 0)
    gap = produce(link, batch_of(b"c", producer_id=9, epoch=0, seq=5))
    assert gap is not None and gap.error_code == 45
    ok = produce(link, batch_of(b"c", producer_id=9, epoch=0, seq=2))
    assert ok is not None and (ok.error_code, ok.base_offset) == (0, 2)
    bumped_bad = produce(link, batch_of(b"d", producer_id=9, epoch=1, seq=3))
    assert bumped_bad is not None and bumped_bad.error_code == 45
    bumped = produce(link, batch_of(b"d", producer_id=9, epoch=1, seq=0))
    assert bumped is not None and bumped.error_code == 0
    fenced = produce(link, batch_of(b"e", producer_id=9, epoch=0, seq=3))
    assert fenced is not None and fenced.error_code == 47
    assert [r.value for r in cluster.records("t", 0)] == [b"a", b"b", b"c", b"d"]


def test_transactional_produce_opens_a_transaction() -> None:
    cluster = ModelCluster(1)
    cluster.create_topic("t")
    link = Link(cluster)
    builder = BatchBuilder(producer_id=4, producer_epoch=0, base_sequence=0, transactional=True)
    builder.append(None, b"tx", timestamp=1)
    produce(link, builder.build())
    assert cluster.last_stable_offset("t", 0) == 0
    cluster.abort_transaction(4)
    assert cluster.last_stable_offset("t", 0) == 2
    assert cluster.partition("t", 0).log.aborted[0].first_offset == 0


# ----------------------------------------------------------------------------- admin


def test_create_and_delete_topics_over_the_wire() -> None:
    cluster = ModelCluster(3)
    link = Link(cluster)
    response = link.call(
        CreateTopicsRequest(
            topics=[
                CreatableTopic(
                    name="n",
                    num_partitions=4,
                    replication_factor=2,
                    configs=[
                        CreatableTopicConfig(name="message.timestamp.type", value="LogAppendTime")
                    ],
                ),
                CreatableTopic(name="bad", num_partitions=1, replication_factor=5),
            ]
        )
    )
    assert isinstance(response, CreateTopicsResponse)
    created, bad = response.topics
    assert (created.error_code, created.num_partitions, created.replication_factor) == (0, 4, 2)
    assert created.topic_id == cluster.topics["n"].topic_id
    assert bad.error_code == 38 and "bad" not in cluster.topics
    assert cluster.topics["n"].log_append_time
    again = link.call(
        CreateTopicsRequest(
            topics=[CreatableTopic(name="n", num_partitions=1, replication_factor=1)]
        )
    )
    assert again.topics[0].error_code == 36
    deleted = link.call(
        DeleteTopicsRequest(topics=[DeleteTopicState(name="n"), DeleteTopicState(name="zz")])
    )
    assert isinstance(deleted, DeleteTopicsResponse)
    assert [(r.name, r.error_code) for r in deleted.responses] == [("n", 0), ("zz", 3)]
    assert "n" not in cluster.topics
    old = link.call(DeleteTopicsRequest(topic_names=["nope"]), version=5)
    assert old.responses[0].error_code == 3


# ----------------------------------------------------------------------------- faults


def test_injected_partition_errors_are_consumed_per_request() -> None:
    cluster = cluster_with_data()
    cluster.inject_error(1, 6, count=2, topic="t", partition=0)
    link = Link(cluster)
    for _ in range(2):
        assert only_partition(link.call(fetch_request(cluster, {("t", 0): 0}))).error_code == 6
    assert only_partition(link.call(fetch_request(cluster, {("t", 0): 0}))).error_code == 0


def test_injected_errors_by_node_and_level() -> None:
    cluster = cluster_with_data()
    cluster.inject_error(2, 7, node=2)  # another broker: does not match here
    cluster.inject_error(3, 5)
    link = Link(cluster)
    meta = link.call(MetadataRequest(topics=[MetadataRequestTopic(name="t")]))
    assert meta.topics[0].error_code == 5 and meta.topics[0].partitions == []
    assert (
        link.call(MetadataRequest(topics=[MetadataRequestTopic(name="t")])).topics[0].error_code
        == 0
    )
    assert list_offsets(link, -1).error_code == 0
    other = Link(cluster, node=2)
    assert list_offsets(other, -1).error_code == 7


def test_injected_api_versions_error_fails_the_handshake() -> None:
    cluster = ModelCluster(1)
    cluster.inject_error(18, 33)
    client = BrokerConnection(ConnectionConfig(), random=lambda: 0.5)
    client.connect(0.0)
    server = cluster.accept(1, 0.0)
    client.connection_made(0.0)
    server.receive(client.data_to_send(), 0.0)
    client.data_received(server.data_to_send(), 0.0)
    [closed] = client.events()
    assert isinstance(closed, ConnectionClosed) and "33" in str(closed.error)


def test_delayed_response_keeps_request_order() -> None:
    cluster = cluster_with_data()
    cluster.delay(3, 2.0)
    link = Link(cluster)
    meta = link.send(MetadataRequest(topics=None), 5.0)
    fetch = link.send(fetch_request(cluster, {("t", 0): 0}), 5.1)
    assert link.result(meta) is None and link.result(fetch) is None
    assert link.server.get_timer() == pytest.approx(7.0)
    link.advance(6.9)
    assert link.result(meta) is None
    link.advance(7.0)
    assert isinstance(link.result(meta), MetadataResponse)
    assert isinstance(link.result(fetch), FetchResponse)
    # count=1: the next Metadata is immediate.
    assert link.result(link.send(MetadataRequest(topics=None), 8.0)) is not None


def test_dropped_connections_fail_requests_in_flight() -> None:
    cluster = cluster_with_data()
    link = Link(cluster)
    other = Link(cluster, node=2)
    token = link.send(fetch_request(cluster, {("t", 0): 6}, min_bytes=1, max_wait_ms=1000), 1.0)
    cluster.drop_connections(node=1)
    link.pump(1.0)
    other.pump(1.0)
    assert link.server.closed and not other.server.closed
    assert any(isinstance(e, RequestFailed) and e.context is token for e in link.events)
    assert link.client.state is ConnectionState.DISCONNECTED
    assert Link(cluster).call(MetadataRequest(topics=[])) is not None


# ----------------------------------------------------------------------------- sweep


def sample_request(api_key: int, version: int, cluster: ModelCluster) -> Message:
    if api_key == 0:
        return ProduceRequest(
            acks=-1,
            topic_data=[
                TopicProduceData(
                    name="t", partition_data=[PartitionProduceData(index=1, records=batch_of(b"v"))]
                ),
                TopicProduceData(
                    name="t", partition_data=[PartitionProduceData(index=0, records=batch_of(b"v"))]
                ),
                TopicProduceData(
                    name="s", partition_data=[PartitionProduceData(index=0, records=batch_of(b"v"))]
                ),
            ],
        )
    if api_key == 1:
        offsets = {("t", 0): 0, ("t", 1): 0, ("nope", 0): 0, ("u", 0): 99, ("s", 0): 0}
        request = fetch_request(cluster, offsets, isolation=1)
        if version >= 7:
            request.session_epoch = 0
        return request
    if api_key == 2:
        return ListOffsetsRequest(
            replica_id=-1,
            topics=[
                ListOffsetsTopic(
                    name="t",
                    partitions=[
                        ListOffsetsPartition(partition_index=i, timestamp=ts)
                        for i, ts in ((0, -1), (0, -3), (1, 0), (0, 10**15))
                    ],
                )
            ],
        )
    if api_key == 3:
        topics = [MetadataRequestTopic(name="t"), MetadataRequestTopic(name="nope")]
        return MetadataRequest(topics=topics, allow_auto_topic_creation=version < 4)
    if api_key == 18:
        return ApiVersionsRequest(client_software_name="sweep", client_software_version="1")
    if api_key == 19:
        return CreateTopicsRequest(
            topics=[
                CreatableTopic(name=f"new{version}", num_partitions=1, replication_factor=1),
                CreatableTopic(name="t", num_partitions=1, replication_factor=1),
            ]
        )
    if api_key == 20:
        if version >= 6:
            return DeleteTopicsRequest(topics=[DeleteTopicState(name="gone")])
        return DeleteTopicsRequest(topic_names=["gone"])
    if api_key == 23:
        return OffsetForLeaderEpochRequest(
            topics=[
                OffsetForLeaderTopic(
                    topic="t",
                    partitions=[
                        OffsetForLeaderPartition(partition=0, leader_epoch=0),
                        OffsetForLeaderPartition(partition=1, leader_epoch=0),
                    ],
                )
            ]
        )
    group_sample = _group_and_admin_sample(api_key, version)
    if group_sample is not None:
        return group_sample
    raise AssertionError(api_key)


def _group_and_admin_sample(api_key: int, version: int) -> Message | None:
    """Requests for the model's group, producer and admin parts (their own modules)."""
    from kafka_sansio._messages.create_partitions import (
        CreatePartitionsRequest,
        CreatePartitionsTopic,
    )
    from kafka_sansio._messages.describe_cluster import DescribeClusterRequest
    from kafka_sansio._messages.heartbeat import HeartbeatRequest
    from kafka_sansio._messages.init_producer_id import InitProducerIdRequest
    from kafka_sansio._messages.join_group import JoinGroupRequest, JoinGroupRequestProtocol
    from kafka_sansio._messages.leave_group import LeaveGroupRequest, MemberIdentity
    from kafka_sansio._messages.offset_commit import (
        OffsetCommitRequest,
        OffsetCommitRequestPartition,
        OffsetCommitRequestTopic,
    )
    from kafka_sansio._messages.offset_fetch import (
        OffsetFetchRequest,
        OffsetFetchRequestGroup,
        OffsetFetchRequestTopic,
        OffsetFetchRequestTopics,
    )
    from kafka_sansio._messages.sync_group import SyncGroupRequest

    if api_key == 8:
        partition = OffsetCommitRequestPartition(partition_index=0, committed_offset=1)
        return OffsetCommitRequest(
            group_id="g",
            generation_id_or_member_epoch=-1,
            member_id="",
            topics=[OffsetCommitRequestTopic(name="t", partitions=[partition])],
        )
    if api_key == 9:
        if version >= 8:
            topics = [OffsetFetchRequestTopics(name="t", partition_indexes=[0, 1])]
            return OffsetFetchRequest(groups=[OffsetFetchRequestGroup(group_id="g", topics=topics)])
        return OffsetFetchRequest(
            group_id="g", topics=[OffsetFetchRequestTopic(name="t", partition_indexes=[0, 1])]
        )
    if api_key == 10:
        if version >= 4:
            return FindCoordinatorRequest(coordinator_keys=["g"])
        return FindCoordinatorRequest(key="g")
    if api_key == 11:
        return JoinGroupRequest(
            group_id="g",
            session_timeout_ms=10_000,
            rebalance_timeout_ms=10_000,
            member_id="",
            protocol_type="consumer",
            protocols=[JoinGroupRequestProtocol(name="range", metadata=b"")],
        )
    if api_key == 12:
        return HeartbeatRequest(group_id="g", generation_id=1, member_id="m")
    if api_key == 13:
        if version >= 3:
            return LeaveGroupRequest(group_id="g", members=[MemberIdentity(member_id="m")])
        return LeaveGroupRequest(group_id="g", member_id="m")
    if api_key == 14:
        return SyncGroupRequest(
            group_id="g",
            generation_id=1,
            member_id="m",
            protocol_type="consumer",
            protocol_name="range",
            assignments=[],
        )
    if api_key == 22:
        return InitProducerIdRequest(transactional_id=None, transaction_timeout_ms=60_000)
    if api_key in (24, 25, 26, 28):
        return _txn_sample(api_key)
    if api_key == 37:
        return CreatePartitionsRequest(
            topics=[CreatePartitionsTopic(name="t", count=3, assignments=None)], timeout_ms=1000
        )
    if api_key == 60:
        return DescribeClusterRequest()
    return None


def _txn_sample(api_key: int) -> Message:
    """Requests for the model's transaction coordinator (an unknown transactional id)."""
    from kafka_sansio._messages.add_offsets_to_txn import AddOffsetsToTxnRequest
    from kafka_sansio._messages.add_partitions_to_txn import (
        AddPartitionsToTxnRequest,
        AddPartitionsToTxnTopic,
    )
    from kafka_sansio._messages.end_txn import EndTxnRequest
    from kafka_sansio._messages.txn_offset_commit import (
        TxnOffsetCommitRequest,
        TxnOffsetCommitRequestPartition,
        TxnOffsetCommitRequestTopic,
    )

    if api_key == 24:
        return AddPartitionsToTxnRequest(
            v3_and_below_transactional_id="x",
            v3_and_below_topics=[AddPartitionsToTxnTopic(name="t", partitions=[0, 1])],
        )
    if api_key == 25:
        return AddOffsetsToTxnRequest(transactional_id="x", group_id="g")
    if api_key == 26:
        return EndTxnRequest(transactional_id="x", committed=True)
    partition = TxnOffsetCommitRequestPartition(partition_index=0, committed_offset=1)
    return TxnOffsetCommitRequest(
        transactional_id="x",
        group_id="g",
        topics=[TxnOffsetCommitRequestTopic(name="t", partitions=[partition])],
    )


SWEEP = [
    (key, version)
    for key, (lo, hi) in sorted(ADVERTISED_VERSIONS.items())
    for version in range(max(lo, 3 if key == 0 else lo), hi + 1)
]


@pytest.mark.parametrize(("api_key", "version"), SWEEP)
def test_every_advertised_version_round_trips_through_the_codec(api_key: int, version: int) -> None:
    cluster = cluster_with_data()
    cluster.begin_transaction(3)
    cluster.append("t", 0, [b"tx"], producer_id=3, transactional=True)
    cluster.abort_transaction(3)
    cluster.create_topic("gone")
    cluster.create_topic("u", leaders=[1])
    cluster.create_topic("s", leaders=[2], replication_factor=1)  # node 1 holds no replica
    server = cluster.accept(1, 0.0)
    payload = protocol.encode_request(sample_request(api_key, version, cluster), version, 11, "c")
    reply = raw_exchange(server, payload)
    assert reply is not None, "no response"
    header, response = protocol.decode_response(api_key, version, reply)
    assert header.correlation_id == 11
    assert api_key == response.API_KEY
    assert not server.closed
    # What came back equals what the model meant to send, field for field.
    again = protocol.decode_response(api_key, version, reply)[1]
    assert protocol.encode_response(again, version, 11) == reply


def test_sweep_covers_the_advertised_table() -> None:
    assert len(SWEEP) == sum(
        hi - (3 if key == 0 else lo) + 1 for key, (lo, hi) in ADVERTISED_VERSIONS.items()
    )


# ----------------------------------------------------------------------------- properties


@settings(max_examples=40, deadline=None)
@given(
    batches=st.lists(st.integers(1, 5), min_size=1, max_size=8),
    limit=st.integers(1, 400),
    start=st.integers(0, 10),
    slice_fetches=st.booleans(),
)
def test_a_consumer_loop_reads_every_record_once(
    batches: list[int], limit: int, start: int, slice_fetches: bool
) -> None:
    """Fetching from any start with any size limit yields the log exactly, in order."""
    cluster = ModelCluster(1, slice_fetches=slice_fetches)
    cluster.create_topic("t")
    n = 0
    for size in batches:
        cluster.append("t", 0, [str(n + i).encode() for i in range(size)])
        n += size
    start = min(start, n)
    link = Link(cluster)
    offset, seen = start, []
    for _ in range(4 * n + 4):
        if offset >= n:
            break
        part = only_partition(
            link.call(fetch_request(cluster, {("t", 0): offset}, partition_max_bytes=limit))
        )
        assert part.error_code == 0
        decoded = decode_records(bytes(part.records or b""), offset)
        assert decoded.batches, "KIP-74: the first batch always comes back whole"
        seen += [r.value for r in decoded.records()]
        assert decoded.next_offset is not None
        offset = decoded.next_offset
    assert seen == [str(i).encode() for i in range(start, n)]


def read_committed_values(link: Link, cluster: ModelCluster, limit: int) -> list[bytes | None]:
    """A read_committed consumer loop that drops aborted data the way Kafka's client does."""
    offset = 0
    out: list[bytes | None] = []
    for _ in range(1000):
        part = only_partition(
            link.call(
                fetch_request(cluster, {("t", 0): offset}, partition_max_bytes=limit, isolation=1)
            )
        )
        assert part.error_code == 0
        if offset >= part.last_stable_offset:
            return out
        pending = sorted((a.first_offset, a.producer_id) for a in part.aborted_transactions or [])
        aborting: set[int] = set()
        decoded = decode_records(bytes(part.records or b""), offset)
        assert decoded.batches
        for batch in decoded.batches:
            while pending and pending[0][0] <= batch.last_offset:
                aborting.add(pending.pop(0)[1])
            if batch.is_control:
                if batch.control_records[0].type == ControlRecordType.ABORT:
                    aborting.discard(batch.producer_id)
                continue
            if batch.is_transactional and batch.producer_id in aborting:
                continue
            out += [r.value for r in batch.records]
        assert decoded.next_offset is not None
        offset = decoded.next_offset
    raise AssertionError("consumer loop did not finish")


_TXN_OPS = st.one_of(
    st.tuples(st.just("plain"), st.integers(1, 3)),
    st.tuples(st.just("tx"), st.integers(1, 2), st.integers(1, 3)),
    st.tuples(st.just("end"), st.integers(1, 2), st.booleans()),
)


@settings(max_examples=40, deadline=None)
@given(ops=st.lists(_TXN_OPS, max_size=14), finish=st.booleans(), limit=st.integers(1, 300))
def test_read_committed_sees_exactly_the_committed_records(
    ops: list[tuple[Any, ...]], finish: bool, limit: int
) -> None:
    cluster = ModelCluster(1)
    cluster.create_topic("t")
    open_txns: dict[int, list[bytes]] = {}
    expected: list[tuple[int, bytes]] = []  # (offset, value) of committed data
    counter = 0

    def values_for(n: int) -> list[bytes]:
        nonlocal counter
        counter += n
        return [str(counter - n + i).encode() for i in range(n)]

    def end(pid: int, commit: bool) -> None:
        offsets_values = open_txns.pop(pid)
        if commit:
            cluster.commit_transaction(pid)
            expected.extend(zip(offsets_pending[pid], offsets_values, strict=True))
        else:
            cluster.abort_transaction(pid)
        offsets_pending.pop(pid)

    offsets_pending: dict[int, list[int]] = {}
    for op in ops:
        if op[0] == "plain":
            vals = values_for(op[1])
            base = cluster.append("t", 0, vals)
            expected.extend((base + i, v) for i, v in enumerate(vals))
        elif op[0] == "tx":
            pid = op[1]
            if pid not in open_txns:
                cluster.begin_transaction(pid)
                open_txns[pid], offsets_pending[pid] = [], []
            vals = values_for(op[2])
            base = cluster.append("t", 0, vals, producer_id=pid, transactional=True)
            open_txns[pid] += vals
            offsets_pending[pid] += [base + i for i in range(len(vals))]
        elif op[1] in open_txns:
            end(op[1], op[2])
    lso = cluster.last_stable_offset("t", 0)
    first_open = min((o[0] for o in offsets_pending.values() if o), default=None)
    assert lso == (first_open if first_open is not None else cluster.high_watermark("t", 0))
    if finish:
        for pid in list(open_txns):
            end(pid, True)
    link = Link(cluster)
    got = read_committed_values(link, cluster, limit)
    lso = cluster.last_stable_offset("t", 0)
    assert got == [v for o, v in sorted(expected) if o < lso]
    assert list_offsets(link, -1, isolation=1).offset == lso


def test_injected_session_errors_are_top_level() -> None:
    cluster = cluster_with_data()
    link = Link(cluster)
    session = link.call(fetch_request(cluster, {("t", 0): 0}, session_epoch=0)).session_id
    cluster.inject_error(1, 70)
    evicted = link.call(fetch_request(cluster, {}, session_id=session, session_epoch=1))
    assert (evicted.error_code, evicted.responses) == (70, [])
    # The session really is gone, as after an eviction.
    again = link.call(fetch_request(cluster, {}, session_id=session, session_epoch=1))
    assert again.error_code == 70
    fresh = link.call(fetch_request(cluster, {("t", 0): 0}, session_epoch=0))
    cluster.inject_error(1, 71)
    stale = link.call(fetch_request(cluster, {}, session_id=fresh.session_id, session_epoch=1))
    assert stale.error_code == 71
    ok = link.call(fetch_request(cluster, {}, session_id=fresh.session_id, session_epoch=1))
    assert ok.error_code == 0


def test_injected_not_leader_names_the_real_leader() -> None:
    cluster = cluster_with_data()
    cluster.inject_error(1, 6, topic="t")
    part = only_partition(Link(cluster).call(fetch_request(cluster, {("t", 0): 0})))
    assert part.error_code == 6 and part.current_leader.leader_id == 1


def test_list_offsets_earliest_local_and_latest_tiered() -> None:
    cluster = cluster_with_data()
    cluster.truncate_start("t", 0, 3)
    link = Link(cluster)
    assert list_offsets(link, -4).offset == 3
    tiered = list_offsets(link, -5)
    assert (tiered.error_code, tiered.offset) == (0, -1)


def test_deleting_a_topic_completes_a_parked_fetch() -> None:
    cluster = ModelCluster(1)
    cluster.create_topic("t")
    link = Link(cluster)
    token = link.send(fetch_request(cluster, {("t", 0): 0}, min_bytes=1, max_wait_ms=9000), 0.0)
    cluster.delete_topic("t", now=1.0)
    link.pump(1.0)
    response = link.result(token)
    assert isinstance(response, FetchResponse)
    assert response.responses[0].partitions[0].error_code == 100  # UNKNOWN_TOPIC_ID (v13+)


def test_client_close_and_oversized_frames() -> None:
    cluster = ModelCluster(1, max_frame_size=1000)
    server = cluster.accept(1, 0.0)
    server.receive((5000).to_bytes(4, "big"), 0.0)
    assert server.closed
    other = cluster.accept(1, 0.0)
    other.close()
    other.receive(frame(protocol.encode_request(ApiVersionsRequest(), 3, 1, "c")), 0.0)
    assert other.data_to_send() == b"" and other.get_timer() is None


def test_incremental_fetch_rotates_partitions_that_returned_data() -> None:
    cluster = ModelCluster(1, slice_fetches=False)
    cluster.create_topic("a", 2)
    for p in (0, 1):
        for _ in range(4):
            cluster.append("a", p, [big_value(100)])
    size = cluster.partition("a", 0).log.batches[0].size
    link = Link(cluster)
    offsets = {("a", 0): 0, ("a", 1): 0}
    full = link.call(fetch_request(cluster, offsets, session_epoch=0, max_bytes=size))
    sid = full.session_id
    assert [len(bytes(p.records or b"")) for p in full.responses[0].partitions] == [size, 0]
    # The new session keeps request order: partition 0 is served first again...
    first = link.call(
        fetch_request(cluster, {("a", 0): 1}, session_id=sid, session_epoch=1, max_bytes=size)
    )
    assert [p.partition_index for p in first.responses[0].partitions] == [0]
    # ...and having returned data, it moves behind partition 1 in the session.
    second = link.call(
        fetch_request(cluster, {("a", 0): 2}, session_id=sid, session_epoch=2, max_bytes=size)
    )
    served = [
        (p.partition_index, len(bytes(p.records or b""))) for p in second.responses[0].partitions
    ]
    assert served == [(1, size)]  # partition 0 got nothing and did not change


def _retarget(obj: Any, rnd: Any, topic_id: Any) -> None:
    """Point some topic names, ids and partition indexes of a drawn request at real ones."""
    for name in getattr(obj, "__slots__", ()):
        value = getattr(obj, name, None)
        if isinstance(value, list):
            for item in value:
                if hasattr(item, "__slots__"):
                    _retarget(item, rnd, topic_id)
            if name == "partitions" and value and isinstance(value[0], int):
                value[:] = [rnd.choice([0, 1, v]) for v in value]
        elif hasattr(value, "__slots__"):
            _retarget(value, rnd, topic_id)
        elif name in ("topic", "name") and isinstance(value, str) and rnd.random() < 0.7:
            setattr(obj, name, "t")
        elif name == "topic_id" and rnd.random() < 0.7:
            setattr(obj, name, topic_id)
        elif name in ("partition", "partition_index", "index") and rnd.random() < 0.7:
            setattr(obj, name, rnd.choice([0, 1]))


@st.composite
def _model_requests(draw: Any) -> tuple[Message, int]:
    from kafka_sansio.testing import strategies as ks

    api_key = draw(st.sampled_from(sorted(ADVERTISED_VERSIONS)))
    lo, hi = ADVERTISED_VERSIONS[api_key]
    version = draw(st.integers(max(lo, 3) if api_key == 0 else lo, hi))
    request = draw(ks.message(protocol.request_class(api_key), version))
    return request, version


@settings(max_examples=150, deadline=None)
@given(drawn=_model_requests(), rnd=st.randoms(use_true_random=False))
def test_any_valid_request_is_answered_or_refused_never_crashes(
    drawn: tuple[Message, int], rnd: Any
) -> None:
    request, version = drawn
    cluster = cluster_with_data()
    _retarget(request, rnd, cluster.topics["t"].topic_id)
    server = cluster.accept(1, 0.0)
    try:
        payload = protocol.encode_request(request, version, 5, "fuzz")
    except Exception:  # retargeting made it unencodable at this version: nothing to test
        return
    server.receive(frame(payload), 0.0)
    server.handle_timer(10.0**7)  # flush any parked fetch
    frames = FrameBuffer()
    frames.feed(server.data_to_send())
    reply = frames.next_frame()
    if reply is None:
        # No answer: acks=0, or the broker refused the request and hung up.
        assert server.closed or (request.API_KEY == 0 and request.acks == 0)  # type: ignore[attr-defined]
        return
    header, response = protocol.decode_response(request.API_KEY, version, reply)
    assert header.correlation_id == 5 and frames.next_frame() is None
    assert response.API_KEY == request.API_KEY


def test_error_constants_match_the_protocol_table() -> None:
    from kafka_sansio import errors
    from kafka_sansio.testing import _model

    names = {e.name: code for code, e in errors.ERROR_CODES.items()}
    checked = 0
    for name, value in vars(_model).items():
        if name in names and isinstance(value, int):
            assert value == names[name], name
            checked += 1
    assert checked >= 20


def test_a_first_batch_that_does_not_fit_the_remainder_comes_back_empty() -> None:
    cluster = ModelCluster(1)
    cluster.create_topic("t", 2)
    cluster.append("t", 0, [big_value(300)])
    for _ in range(2):
        cluster.append("t", 1, [big_value(300)])
    size = cluster.partition("t", 0).log.batches[0].size
    link = Link(cluster)
    # Partition 0 takes one batch; partition 1 has 100 bytes left: no records, not a cut.
    response = link.call(fetch_request(cluster, {("t", 0): 0, ("t", 1): 0}, max_bytes=size + 100))
    sizes = [len(bytes(p.records or b"")) for p in response.responses[0].partitions]
    assert sizes == [size, 0]
    # With room for one batch and a bit, the trailing batch is cut as a file slice would.
    response = link.call(
        fetch_request(cluster, {("t", 0): 0, ("t", 1): 0}, max_bytes=2 * size + 100)
    )
    sizes = [len(bytes(p.records or b"")) for p in response.responses[0].partitions]
    assert sizes == [size, size + 100]
