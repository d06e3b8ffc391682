"""The model's group coordinator checked against Apache Kafka, request by request.

The same sequence of raw group requests goes to a one-node model and to the
real broker; the error codes (and what the answers say about the group) must
agree.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from _socket_pump import SocketPump

from kafka_sansio._client import ClientConfig, ClientCore, parse_bootstrap
from kafka_sansio._connection import RequestFailed, Response
from kafka_sansio._messages.heartbeat import HeartbeatRequest
from kafka_sansio._messages.join_group import JoinGroupRequest, JoinGroupRequestProtocol
from kafka_sansio._messages.leave_group import LeaveGroupRequest, MemberIdentity
from kafka_sansio._messages.offset_commit import (
    OffsetCommitRequest,
    OffsetCommitRequestPartition,
    OffsetCommitRequestTopic,
)
from kafka_sansio._messages.offset_fetch import OffsetFetchRequest, OffsetFetchRequestGroup
from kafka_sansio._messages.sync_group import SyncGroupRequest, SyncGroupRequestAssignment
from kafka_sansio.testing import ModelCluster, Pump

pytestmark = pytest.mark.broker


class _Wire:
    """Send one request at a time to node 1 and return the answer."""

    def __init__(
        self,
        client: ClientCore,
        run: Callable[[Callable[[], bool]], None],
        now: Callable[[], float],
    ) -> None:
        self.client = client
        self.run = run
        self.now = now
        run(lambda: bool(client.metadata.brokers))
        self.node = min(client.metadata.brokers)

    def ask(self, request: Any) -> Any:
        box: list[Response | RequestFailed] = []
        self.client.send(self.node, request, self.now(), lambda r, n: box.append(r))
        self.run(lambda: bool(box))
        result = box[0]
        assert isinstance(result, Response), result
        return result.response


def _scenario(wire: _Wire, topic: str) -> list[Any]:
    """The conversation; returns what must match between the model and Kafka."""
    group = f"dg-{uuid.uuid4().hex[:8]}"
    out: list[Any] = []
    protocols = [
        JoinGroupRequestProtocol(name="range", metadata=b"\x00\x00\x00\x00\x00\x00\xff\xff\xff\xff")
    ]

    def join(member: str, session_ms: int = 10_000) -> Any:
        return wire.ask(
            JoinGroupRequest(
                group_id=group,
                session_timeout_ms=session_ms,
                rebalance_timeout_ms=10_000,
                member_id=member,
                protocol_type="consumer",
                protocols=protocols,
            )
        )

    # Before the group exists.
    out.append(("fetch-unknown", _fetch(wire, group, topic)))
    r = wire.ask(HeartbeatRequest(group_id=group, generation_id=1, member_id="nobody"))
    out.append(("heartbeat-unknown-group", r.error_code))
    # Bad session timeout, then the member-id handshake.
    out.append(("join-bad-session", join("", session_ms=1).error_code))
    first = join("")
    out.append(("join-empty-member", first.error_code, bool(first.member_id)))
    joined = join(first.member_id)
    out.append(
        (
            "join",
            joined.error_code,
            joined.leader == first.member_id,
            len(joined.members),
            joined.protocol_name,
        )
    )
    member, generation = first.member_id, joined.generation_id

    def sync(gen: int, mid: str, named: bool = True) -> Any:
        return wire.ask(
            SyncGroupRequest(
                group_id=group,
                generation_id=gen,
                member_id=mid,
                protocol_type="consumer" if named else None,
                protocol_name="range" if named else None,
                assignments=[SyncGroupRequestAssignment(member_id=member, assignment=b"abc")],
            )
        )

    out.append(("sync-without-protocol", sync(generation, member, named=False).error_code))
    out.append(("sync-wrong-generation", sync(generation + 1, member).error_code))
    out.append(("sync-unknown-member", sync(generation, "who").error_code))
    # The leader has not synced yet: the group is completing its rebalance.
    out.append(("commit-completing", _commit(wire, group, generation, member, topic, 4)))
    r = sync(generation, member)
    out.append(("sync", r.error_code, bytes(r.assignment), r.protocol_type, r.protocol_name))
    for label, gen, mid in [
        ("heartbeat", generation, member),
        ("heartbeat-wrong-generation", generation + 5, member),
        ("heartbeat-unknown-member", generation, "who"),
    ]:
        r = wire.ask(HeartbeatRequest(group_id=group, generation_id=gen, member_id=mid))
        out.append((label, r.error_code))
    for label, gen, mid, t in [
        ("commit", generation, member, topic),
        ("commit-wrong-generation", generation + 1, member, topic),
        ("commit-no-generation", -1, "", topic),
        ("commit-unknown-topic", generation, member, "no-such-topic-" + group),
    ]:
        out.append((label, _commit(wire, group, gen, mid, t, 5)))
    out.append(("fetch", _fetch(wire, group, topic)))
    r = wire.ask(LeaveGroupRequest(group_id=group, members=[MemberIdentity(member_id=member)]))
    out.append(("leave", r.error_code, [m.error_code for m in r.members]))
    r = wire.ask(LeaveGroupRequest(group_id=group, members=[MemberIdentity(member_id=member)]))
    out.append(("leave-again", r.error_code, [m.error_code for m in r.members]))
    out.append(("commit-empty-group", _commit(wire, group, -1, "", topic, 9)))
    out.append(("fetch-after", _fetch(wire, group, topic)))
    return out


def _commit(
    wire: _Wire, group: str, generation: int, member: str, topic: str, offset: int
) -> list[int]:
    r = wire.ask(
        OffsetCommitRequest(
            group_id=group,
            generation_id_or_member_epoch=generation,
            member_id=member,
            topics=[
                OffsetCommitRequestTopic(
                    name=topic,
                    partitions=[
                        OffsetCommitRequestPartition(
                            partition_index=0, committed_offset=offset, committed_metadata="m"
                        )
                    ],
                )
            ],
        )
    )
    return [p.error_code for t in r.topics for p in t.partitions]


def _fetch(wire: _Wire, group: str, topic: str) -> list[Any]:
    from kafka_sansio._messages.offset_fetch import OffsetFetchRequestTopics

    r = wire.ask(
        OffsetFetchRequest(
            groups=[
                OffsetFetchRequestGroup(
                    group_id=group,
                    topics=[OffsetFetchRequestTopics(name=topic, partition_indexes=[0])],
                )
            ]
        )
    )
    g = r.groups[0]
    return [g.error_code] + [
        (p.committed_offset, p.metadata, p.error_code) for t in g.topics for p in t.partitions
    ]


def _model_answers() -> list[Any]:
    cluster = ModelCluster(brokers=1)
    cluster.create_topic("t", partitions=1)
    client = ClientCore(ClientConfig(), random=lambda: 0.5)
    client.set_topics(["t"], 0.0)
    pump = Pump(client, cluster)
    wire = _Wire(client, lambda cond: pump.until(cond, 30), lambda: pump.now)
    return _scenario(wire, "t")


def test_the_model_coordinator_answers_as_kafka(kafka: Any) -> None:
    topic = kafka.create_topic(partitions=1)
    client = ClientCore(
        ClientConfig(bootstrap_servers=parse_bootstrap(kafka.bootstrap)), random=lambda: 0.5
    )
    client.set_topics([topic], time.monotonic())
    pump = SocketPump(client)
    try:
        wire = _Wire(client, lambda cond: pump.until(cond, 30), time.monotonic)
        real = _scenario(wire, topic)
    finally:
        pump.close()
    assert _model_answers() == real
