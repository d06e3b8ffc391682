"""The broker model against Apache Kafka, request by request.

Each scenario sends the same requests (built with the codec, sent through
``BrokerConnection``) to the real broker and to the model and returns what it
observed, normalised so that things that legitimately differ (topic ids, the
cluster id, ports, session ids, append times) do not count.  Both sides must
observe the same.  Record bytes are compared exactly: the model stores batches
the way Kafka does.
"""

from __future__ import annotations

import hashlib
import socket
import time
import uuid
from collections.abc import Callable
from typing import Any
from uuid import UUID

import pytest
from test_model import Link

from kafka_sansio import protocol
from kafka_sansio._connection import (
    BrokerConnection,
    ConnectionClosed,
    ConnectionConfig,
    Ready,
    Response,
)
from kafka_sansio._framing import FrameBuffer, frame
from kafka_sansio._messages.api_versions import ApiVersionsRequest, ApiVersionsResponse
from kafka_sansio._messages.create_topics import (
    CreatableReplicaAssignment,
    CreatableTopic,
    CreateTopicsRequest,
)
from kafka_sansio._messages.delete_topics import DeleteTopicsRequest, DeleteTopicState
from kafka_sansio._messages.fetch import FetchPartition, FetchRequest, FetchTopic, ForgottenTopic
from kafka_sansio._messages.list_offsets import (
    ListOffsetsPartition,
    ListOffsetsRequest,
    ListOffsetsTopic,
)
from kafka_sansio._messages.metadata import MetadataRequest, MetadataRequestTopic
from kafka_sansio._messages.offset_for_leader_epoch import (
    OffsetForLeaderEpochRequest,
    OffsetForLeaderPartition,
    OffsetForLeaderTopic,
)
from kafka_sansio._messages.produce import PartitionProduceData, ProduceRequest, TopicProduceData
from kafka_sansio._wire import Message
from kafka_sansio.records import BatchBuilder, decode_records
from kafka_sansio.testing._model import ADVERTISED_VERSIONS, ModelCluster

_ZERO = UUID(int=0)


class BrokerSide:
    """One BrokerConnection on a real socket to the first node of ``kafka``."""

    name = "broker"

    def __init__(self, kafka: Any, address: tuple[str, int] | None = None) -> None:
        self.kafka = kafka
        self.sock = socket.create_connection(address or (kafka.host, kafka.port), timeout=30)
        self.conn = BrokerConnection(ConnectionConfig(request_timeout=60.0), random=lambda: 0.5)
        now = time.monotonic()
        self.conn.connect(now)
        self.conn.connection_made(now)
        self.events: list[Any] = []
        self._loop(lambda: any(isinstance(e, Ready) for e in self.events))
        self.names: dict[UUID, str] = {}

    def _loop(self, done: Callable[[], bool], timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            out = self.conn.data_to_send()
            if out:
                self.sock.sendall(out)
            self.events += self.conn.events()
            if done():
                return
            if any(isinstance(e, ConnectionClosed) for e in self.events):
                raise AssertionError(f"connection closed: {self.events}")
            if time.monotonic() > deadline:
                raise AssertionError("the broker did not answer in time")
            data = self.sock.recv(1 << 20)
            if not data:
                self.conn.connection_lost(time.monotonic())
            else:
                self.conn.data_received(data, time.monotonic())

    def call(self, request: Message, version: int | None = None) -> Any:
        token = object()
        self.conn.send(request, time.monotonic(), version=version, context=token)
        found: list[Message | None] = []

        def answered() -> bool:
            for e in self.events:
                if isinstance(e, Response) and e.context is token:
                    found.append(e.response)
                    return True
            return False

        self._loop(answered)
        return found[0]

    def new_topic(self, partitions: int = 1, configs: dict[str, str] | None = None) -> str:
        name: str = self.kafka.create_topic(
            partitions=partitions, replication_factor=1, config=configs, prefix="m"
        )
        meta = self.call(MetadataRequest(topics=[MetadataRequestTopic(name=name)]))
        self.names[meta.topics[0].topic_id] = name
        # Wait until this connection's broker serves every partition as leader.
        deadline = time.monotonic() + 30
        while True:
            response = self.call(
                ListOffsetsRequest(
                    replica_id=-1,
                    topics=[
                        ListOffsetsTopic(
                            name=name,
                            partitions=[
                                ListOffsetsPartition(partition_index=i, timestamp=-1)
                                for i in range(partitions)
                            ],
                        )
                    ],
                )
            )
            if all(p.error_code == 0 for p in response.topics[0].partitions):
                return name
            if time.monotonic() > deadline:
                raise AssertionError(f"topic {name} never became ready: {response}")
            time.sleep(0.05)

    def topic_id(self, name: str) -> UUID:
        return next(i for i, n in self.names.items() if n == name)

    def raw(self, payload: bytes) -> bytes | None:
        """One request on a fresh socket: the reply payload, or None if the broker hung up."""
        with socket.create_connection((self.kafka.host, self.kafka.port), timeout=30) as sock:
            sock.sendall(frame(payload))
            frames = FrameBuffer()
            while (reply := frames.next_frame()) is None:
                data = sock.recv(1 << 16)
                if not data:
                    return None
                frames.feed(data)
            return reply

    def truncate(self, topic: str, partition: int, offset: int) -> None:
        from confluent_kafka import TopicPartition

        futures = self.kafka.admin().delete_records([TopicPartition(topic, partition, offset)])
        for future in futures.values():
            future.result(timeout=30)

    def _producer(self, pid: int) -> Any:
        from confluent_kafka import Producer

        producer = Producer(
            {
                "bootstrap.servers": self.kafka.bootstrap,
                "transactional.id": f"model-{uuid.uuid4().hex[:8]}-{pid}",
                "linger.ms": 0,
            }
        )
        producer.init_transactions(30)
        producer.begin_transaction()
        return producer

    def _send(self, producer: Any, topic: str, values: list[bytes]) -> None:
        for v in values:  # one batch per record, as the model side writes them
            producer.produce(topic, value=v, partition=0, timestamp=NOW_MS)
            producer.flush(30)

    def transaction(self, topic: str, values: list[bytes], commit: bool, pid: int) -> None:
        producer = self._producer(pid)
        self._send(producer, topic, values)
        if commit:
            producer.commit_transaction(30)
        else:
            producer.abort_transaction(30)
        self._wait_stable(topic)

    def open_transaction(self, topic: str, values: list[bytes], pid: int) -> None:
        self._open = self._producer(pid)  # kept open (and alive) until the side closes
        self._send(self._open, topic, values)

    def _wait_stable(self, topic: str) -> None:
        # The coordinator writes markers after EndTxn returns: wait for LSO == HWM.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            p = fetch(self, {(topic, 0): 0}, isolation_level=1).responses[0].partitions[0]
            if p.last_stable_offset == p.high_watermark:
                return
            time.sleep(0.05)
        raise AssertionError("transaction markers never arrived")

    def close(self) -> None:
        self.sock.close()


class ModelSide:
    name = "model"

    def __init__(self) -> None:
        self.cluster = ModelCluster(1)
        self.link = Link(self.cluster)
        self.clock = 0.0

    def call(self, request: Message, version: int | None = None) -> Any:
        token = self.link.send(request, self.clock, version)
        for _ in range(120):
            response = self.link.result(token)
            if response is not None:
                return response
            self.clock += 0.5  # a parked fetch: let fake time pass
            self.link.advance(self.clock)
        raise AssertionError("the model never answered")

    def truncate(self, topic: str, partition: int, offset: int) -> None:
        self.cluster.truncate_start(topic, partition, offset)

    def raw(self, payload: bytes) -> bytes | None:
        server = self.cluster.accept(1, self.clock)
        server.receive(frame(payload), self.clock)
        frames = FrameBuffer()
        frames.feed(server.data_to_send())
        return frames.next_frame()

    def transaction(self, topic: str, values: list[bytes], commit: bool, pid: int) -> None:
        self.cluster.begin_transaction(pid)
        for v in values:
            self.cluster.append(topic, 0, [v], producer_id=pid, transactional=True)
        if commit:
            self.cluster.commit_transaction(pid)
        else:
            self.cluster.abort_transaction(pid)

    def open_transaction(self, topic: str, values: list[bytes], pid: int) -> None:
        self.cluster.begin_transaction(pid)
        for v in values:
            self.cluster.append(topic, 0, [v], producer_id=pid, transactional=True)

    def new_topic(self, partitions: int = 1, configs: dict[str, str] | None = None) -> str:
        name = f"m-{uuid.uuid4().hex[:10]}"
        self.cluster.create_topic(name, partitions, configs=configs)
        return name

    def topic_id(self, name: str) -> UUID:
        return self.cluster.topics[name].topic_id

    def close(self) -> None:
        pass


Side = BrokerSide | ModelSide


# ----------------------------------------------------------------------------- helpers


def batch(values: list[bytes], ts: int, **kwargs: Any) -> bytes:
    builder = BatchBuilder(**kwargs)
    for i, v in enumerate(values):
        builder.append(None, v, timestamp=ts + i)
    return builder.build()


def produce(
    side: Side, topic: str, partition: int, data: bytes, acks: int = -1, exact: bool = True
) -> Any:
    """(error, base offset, log start, append time); *exact=False* for a wall-clock append time."""
    response = side.call(
        ProduceRequest(
            acks=acks,
            timeout_ms=10_000,
            topic_data=[
                TopicProduceData(
                    name=topic, partition_data=[PartitionProduceData(index=partition, records=data)]
                )
            ],
        )
    )
    p = response.responses[0].partition_responses[0]
    append_time = p.log_append_time_ms if exact else p.log_append_time_ms != -1
    return (p.error_code, p.base_offset, p.log_start_offset, append_time)


def fetch(
    side: Side,
    wanted: dict[tuple[str, int], int],
    version: int | None = None,
    **kwargs: Any,
) -> Any:
    topics: dict[str, FetchTopic] = {}
    limit = kwargs.pop("partition_max_bytes", 1 << 20)
    for (name, index), offset in wanted.items():
        entry = topics.setdefault(
            name, FetchTopic(topic=name, topic_id=side.topic_id(name) if name else _ZERO)
        )
        entry.partitions.append(
            FetchPartition(
                partition=index,
                fetch_offset=offset,
                partition_max_bytes=limit,
            )
        )
    forgotten = kwargs.pop("forgotten", {})
    request = FetchRequest(
        max_wait_ms=kwargs.pop("max_wait_ms", 0),
        max_bytes=kwargs.pop("max_bytes", 50 << 20),
        topics=list(topics.values()),
        forgotten_topics_data=[
            ForgottenTopic(topic=n, topic_id=side.topic_id(n), partitions=ps)
            for n, ps in forgotten.items()
        ],
        **kwargs,
    )
    return side.call(request, version)


def summary(records: bytes | memoryview | None) -> tuple[Any, ...]:
    raw = bytes(records or b"")
    decoded = decode_records(raw)
    return (
        len(raw),
        hashlib.sha256(raw).hexdigest()[:16],
        decoded.truncated_bytes,
        [
            (b.base_offset, b.last_offset_delta, [r.value for r in b.records])
            for b in decoded.batches
        ],
    )


def fetch_view(response: Any, names: Callable[[UUID], str]) -> Any:
    topics = []
    for t in response.responses:
        parts = []
        for p in t.partitions:
            aborted = (
                None
                if p.aborted_transactions is None
                else [a.first_offset for a in p.aborted_transactions]
            )
            parts.append(
                (
                    p.partition_index,
                    p.error_code,
                    p.high_watermark,
                    p.last_stable_offset,
                    p.log_start_offset,
                    aborted,
                    summary(p.records),
                    (p.current_leader.leader_id, p.current_leader.leader_epoch),
                )
            )
        known = t.topic or names(t.topic_id)  # the name or id must be one the side knows
        topics.append((bool(known), parts))
    return (response.error_code, response.session_id != 0, topics)


# ----------------------------------------------------------------------------- scenarios

NOW_MS = int(time.time() * 1000)


def scenario_fetch_positions(side: Side) -> list[Any]:
    """Offsets inside batches, at the end, beyond both ends; names (v12) and ids (v13+)."""
    topic = side.new_topic()
    seen: list[Any] = []
    for values in ([b"a", b"b"], [b"c"], [b"d", b"e", b"f"]):
        seen.append(produce(side, topic, 0, batch(values, NOW_MS)))
    for version in (4, 11, 12, 13, 17):
        for offset in (0, 1, 2, 3, 5, 6, 7, -1):
            response = fetch(side, {(topic, 0): offset}, version)
            seen.append((version, offset, fetch_view(response, lambda _: topic)))
    return seen


def scenario_size_limits(side: Side) -> list[Any]:
    """KIP-74 first batch, slices cut mid-batch, response max_bytes over partitions."""
    topic = side.new_topic(partitions=2)
    for p in (0, 1):
        for i in range(4):
            produce(side, topic, p, batch([bytes([65 + i]) * 300], NOW_MS))
    seen: list[Any] = []
    for limit in (1, 100, 360, 400, 1000, 2000):
        response = fetch(side, {(topic, 0): 0}, partition_max_bytes=limit)
        seen.append(("partition", limit, fetch_view(response, lambda _: topic)))
        response = fetch(side, {(topic, 0): 1, (topic, 1): 0}, max_bytes=limit)
        seen.append(("response", limit, fetch_view(response, lambda _: topic)))
        # Partition 0 has a single batch left: partition 1 gets what remains, and a first
        # batch that does not fit in it comes back as no records, not as a cut batch.
        response = fetch(side, {(topic, 0): 3, (topic, 1): 0}, max_bytes=limit)
        seen.append(("remainder", limit, fetch_view(response, lambda _: topic)))
    return seen


def scenario_list_offsets(side: Side) -> list[Any]:
    topic = side.new_topic()
    produce(side, topic, 0, batch([b"a", b"b"], NOW_MS - 5000))
    produce(side, topic, 0, batch([b"c"], NOW_MS + 5000))
    produce(side, topic, 0, batch([b"d"], NOW_MS))
    seen: list[Any] = []
    for version in (1, 4, 7, 10):
        for ts in (-1, -2, -3, NOW_MS - 10_000, NOW_MS - 4999, NOW_MS, NOW_MS + 99_999):
            if ts == -3 and version < 7:
                continue
            response = side.call(
                ListOffsetsRequest(
                    replica_id=-1,
                    topics=[
                        ListOffsetsTopic(
                            name=topic,
                            partitions=[ListOffsetsPartition(partition_index=0, timestamp=ts)],
                        )
                    ],
                ),
                version,
            )
            p = response.topics[0].partitions[0]
            seen.append((version, ts, p.error_code, p.offset, p.timestamp, p.leader_epoch))
    return seen


def scenario_produce_rules(side: Side) -> list[Any]:
    topic = side.new_topic()
    seen = [
        produce(side, topic, 0, batch([b"a"], NOW_MS)),
        produce(side, topic, 0, batch([b"a"], NOW_MS) + batch([b"b"], NOW_MS)),
        produce(side, topic, 0, batch([b"a"], NOW_MS), acks=2),
        produce(side, topic, 3, batch([b"a"], NOW_MS)),
    ]
    corrupt = bytearray(batch([b"x"], NOW_MS))
    corrupt[-1] ^= 1
    seen.append(produce(side, topic, 0, bytes(corrupt)))
    # Idempotence: a retry is acknowledged with its first offset; gaps and old epochs fail.
    pid = 4242
    idem = {"producer_id": pid, "producer_epoch": 0}
    seen.append(produce(side, topic, 0, batch([b"i", b"j"], NOW_MS, base_sequence=0, **idem)))
    seen.append(produce(side, topic, 0, batch([b"i", b"j"], NOW_MS, base_sequence=0, **idem)))
    seen.append(produce(side, topic, 0, batch([b"k"], NOW_MS, base_sequence=5, **idem)))
    seen.append(produce(side, topic, 0, batch([b"k"], NOW_MS, base_sequence=2, **idem)))
    seen.append(
        produce(
            side,
            topic,
            0,
            batch([b"l"], NOW_MS, base_sequence=0, producer_id=pid, producer_epoch=1),
        )
    )
    seen.append(
        produce(
            side,
            topic,
            0,
            batch([b"m"], NOW_MS, base_sequence=1, producer_id=pid, producer_epoch=0),
        )
    )
    seen.append(fetch_view(fetch(side, {(topic, 0): 0}), lambda _: topic))
    appended = side.new_topic(configs={"message.timestamp.type": "LogAppendTime"})
    seen.append(produce(side, appended, 0, batch([b"t"], NOW_MS), exact=False))
    return seen


def scenario_metadata(side: Side) -> list[Any]:
    topic = side.new_topic(partitions=2)
    seen: list[Any] = []
    for version in (0, 1, 4, 9, 12):
        response = side.call(
            MetadataRequest(
                topics=[
                    MetadataRequestTopic(name=topic),
                    MetadataRequestTopic(name=f"missing-{uuid.uuid4().hex[:6]}"),
                ],
                allow_auto_topic_creation=version < 4,
            ),
            version,
        )
        for t in response.topics:
            seen.append(
                (
                    version,
                    t.name == topic,
                    t.error_code,
                    t.is_internal,
                    [(p.partition_index, p.error_code, p.leader_epoch) for p in t.partitions],
                )
            )
    return seen


def scenario_fetch_sessions(side: Side) -> list[Any]:
    topic = side.new_topic(partitions=2)
    produce(side, topic, 0, batch([b"a"], NOW_MS))
    names = lambda _: topic  # noqa: E731
    seen: list[Any] = []
    full = fetch(side, {(topic, 0): 0, (topic, 1): 0}, session_id=0, session_epoch=0)
    sid = full.session_id
    seen.append(fetch_view(full, names))
    seen.append(fetch_view(fetch(side, {(topic, 0): 1}, session_id=sid, session_epoch=1), names))
    produce(side, topic, 1, batch([b"b"], NOW_MS))
    seen.append(fetch_view(fetch(side, {}, session_id=sid, session_epoch=2), names))
    seen.append(
        fetch_view(
            fetch(side, {(topic, 1): 1}, session_id=sid, session_epoch=3, forgotten={topic: [1]}),
            names,
        )
    )
    produce(side, topic, 1, batch([b"c"], NOW_MS))
    seen.append(fetch_view(fetch(side, {}, session_id=sid, session_epoch=4), names))
    seen.append(fetch_view(fetch(side, {}, session_id=sid, session_epoch=9), names))
    seen.append(fetch_view(fetch(side, {}, session_id=sid, session_epoch=5), names))
    closing = fetch(side, {(topic, 0): 0}, session_id=sid, session_epoch=-1)
    seen.append(fetch_view(closing, names))
    seen.append(fetch_view(fetch(side, {}, session_id=sid, session_epoch=1), names))
    return seen


def scenario_offset_for_leader_epoch(side: Side) -> list[Any]:
    topic = side.new_topic()
    produce(side, topic, 0, batch([b"a", b"b"], NOW_MS))
    seen: list[Any] = []
    for version in (2, 3, 4):
        for epoch, current in ((0, -1), (0, 0), (1, -1), (0, 1), (-1, -1)):
            response = side.call(
                OffsetForLeaderEpochRequest(
                    replica_id=-1,
                    topics=[
                        OffsetForLeaderTopic(
                            topic=topic,
                            partitions=[
                                OffsetForLeaderPartition(
                                    partition=0, leader_epoch=epoch, current_leader_epoch=current
                                )
                            ],
                        )
                    ],
                ),
                version,
            )
            p = response.topics[0].partitions[0]
            seen.append((version, epoch, current, p.error_code, p.leader_epoch, p.end_offset))
    return seen


def scenario_api_versions(side: Side) -> list[Any]:
    response = side.call(ApiVersionsRequest(client_software_name="m", client_software_version="1"))
    ours = protocol.client_versions()
    # The model's transaction coordinator speaks transaction version 1 only (the client
    # form of AddPartitionsToTxn, EndTxn and TxnOffsetCommit up to v4): compared up to there.
    txn_v1 = {24: 3, 26: 4, 28: 4}
    seen = []
    for key in sorted(ADVERTISED_VERSIONS):
        entry = next((k for k in response.api_keys if k.api_key == key), None)
        assert entry is not None
        top = min(entry.max_version, ours[key][1], txn_v1.get(key, ours[key][1]))
        seen.append((key, entry.min_version, top))
    return seen


def scenario_truncated_log(side: Side) -> list[Any]:
    """After DeleteRecords / retention: out of range below, whole batch at the new start."""
    topic = side.new_topic()
    for values in ([b"a", b"b"], [b"c", b"d", b"e"], [b"f"]):
        produce(side, topic, 0, batch(values, NOW_MS))
    side.truncate(topic, 0, 3)
    seen: list[Any] = []
    for offset in (0, 2, 3, 4, 5, 6, 7):
        seen.append((offset, fetch_view(fetch(side, {(topic, 0): offset}), lambda _: topic)))
    for ts in (-2, -1, NOW_MS):
        response = side.call(
            ListOffsetsRequest(
                replica_id=-1,
                topics=[
                    ListOffsetsTopic(
                        name=topic,
                        partitions=[ListOffsetsPartition(partition_index=0, timestamp=ts)],
                    )
                ],
            )
        )
        p = response.topics[0].partitions[0]
        seen.append((ts, p.error_code, p.offset, p.leader_epoch))
    return seen


def txn_view(response: Any) -> Any:
    p = response.responses[0].partitions[0]
    decoded = decode_records(bytes(p.records or b""))
    batches = [
        (
            b.base_offset,
            b.last_offset_delta,
            b.is_transactional,
            b.is_control,
            [int(c.type) for c in b.control_records]
            if b.is_control
            else [r.value for r in b.records],
        )
        for b in decoded.batches
    ]
    aborted = (
        None if p.aborted_transactions is None else [a.first_offset for a in p.aborted_transactions]
    )
    return (p.error_code, p.high_watermark, p.last_stable_offset, aborted, batches)


def scenario_transactions(side: Side) -> list[Any]:
    """read_committed: the LSO, aborted transactions, control batches, ListOffsets latest."""
    topic = side.new_topic()
    produce(side, topic, 0, batch([b"plain"], NOW_MS))
    side.transaction(topic, [b"t1", b"t2"], commit=False, pid=1)
    produce(side, topic, 0, batch([b"mid"], NOW_MS))
    side.transaction(topic, [b"t3"], commit=True, pid=2)
    side.open_transaction(topic, [b"open"], pid=3)
    produce(side, topic, 0, batch([b"tail"], NOW_MS))
    seen: list[Any] = []
    for isolation in (0, 1):
        for offset in (0, 1, 3, 4, 5, 7, 8):
            response = fetch(side, {(topic, 0): offset}, isolation_level=isolation)
            seen.append((isolation, offset, txn_view(response)))
        response = side.call(
            ListOffsetsRequest(
                replica_id=-1,
                isolation_level=isolation,
                topics=[
                    ListOffsetsTopic(
                        name=topic,
                        partitions=[ListOffsetsPartition(partition_index=0, timestamp=-1)],
                    )
                ],
            )
        )
        seen.append((isolation, response.topics[0].partitions[0].offset))
    return seen


def scenario_waiting_fetch(side: Side) -> list[Any]:
    """min_bytes with nothing to read: an empty answer once max_wait passes."""
    topic = side.new_topic()
    response = fetch(side, {(topic, 0): 0}, min_bytes=1, max_wait_ms=300)
    return [fetch_view(response, lambda _: topic)]


def scenario_leader_epochs(side: Side) -> list[Any]:
    topic = side.new_topic()
    produce(side, topic, 0, batch([b"a"], NOW_MS))
    seen: list[Any] = []
    for epoch in (-1, 0, 1):
        for version in (9, 12, 17):
            request = FetchRequest(
                max_bytes=1 << 20,
                topics=[
                    FetchTopic(
                        topic=topic,
                        topic_id=side.topic_id(topic),
                        partitions=[
                            FetchPartition(
                                partition=0,
                                fetch_offset=0,
                                current_leader_epoch=epoch,
                                partition_max_bytes=1 << 20,
                            )
                        ],
                    )
                ],
            )
            seen.append((epoch, version, fetch_view(side.call(request, version), lambda _: topic)))
        response = side.call(
            ListOffsetsRequest(
                replica_id=-1,
                topics=[
                    ListOffsetsTopic(
                        name=topic,
                        partitions=[
                            ListOffsetsPartition(
                                partition_index=0, timestamp=-1, current_leader_epoch=epoch
                            )
                        ],
                    )
                ],
            )
        )
        p = response.topics[0].partitions[0]
        seen.append((epoch, p.error_code, p.offset))
    return seen


def scenario_admin(side: Side) -> list[Any]:
    """CreateTopics and DeleteTopics: successes and Kafka's validation errors."""
    base = f"adm-{uuid.uuid4().hex[:8]}"
    topics = [
        CreatableTopic(name=base, num_partitions=2, replication_factor=1),
        CreatableTopic(name=base + "-zero", num_partitions=0, replication_factor=1),
        CreatableTopic(name=base + "-rf", num_partitions=1, replication_factor=4),
        CreatableTopic(name=base + "-bad name", num_partitions=1, replication_factor=1),
        CreatableTopic(name="", num_partitions=1, replication_factor=1),
        CreatableTopic(name=base + "-dflt", num_partitions=-1, replication_factor=-1),
        CreatableTopic(
            name=base + "-both",
            num_partitions=1,
            replication_factor=1,
            assignments=[CreatableReplicaAssignment(partition_index=0, broker_ids=[1])],
        ),
        CreatableTopic(
            name=base + "-ghost",
            assignments=[CreatableReplicaAssignment(partition_index=0, broker_ids=[99])],
        ),
    ]
    seen: list[Any] = []
    for validate_only in (True, False):
        response = side.call(
            CreateTopicsRequest(topics=topics, timeout_ms=30_000, validate_only=validate_only)
        )
        for t in response.topics:
            seen.append(
                (
                    validate_only,
                    t.error_code,
                    t.num_partitions,
                    t.replication_factor,
                    t.topic_id != _ZERO,
                )
            )
    again = side.call(CreateTopicsRequest(topics=topics[:1], timeout_ms=30_000))
    seen.append([t.error_code for t in again.topics])
    dup = side.call(CreateTopicsRequest(topics=[topics[0], topics[0]], timeout_ms=30_000))
    seen.append([t.error_code for t in dup.topics])
    deleted = side.call(
        DeleteTopicsRequest(
            topics=[DeleteTopicState(name=base), DeleteTopicState(name=base + "-nope")],
            timeout_ms=30_000,
        )
    )
    # Kafka's answer order is not stable here (its controller groups them by outcome).
    seen.append(sorted((r.name == base, r.error_code) for r in deleted.responses))
    by_id = side.call(
        DeleteTopicsRequest(topics=[DeleteTopicState(topic_id=UUID(int=77))], timeout_ms=30_000)
    )
    seen.append([r.error_code for r in by_id.responses])
    return seen


def scenario_refusals(side: Side) -> list[Any]:
    """A too-new ApiVersions is answered in v0; a removed Fetch version is refused."""
    payload = bytearray(protocol.encode_request(ApiVersionsRequest(), 4, 3, "raw"))
    payload[2:4] = (99).to_bytes(2, "big")
    reply = side.raw(bytes(payload))
    assert reply is not None
    _, response = protocol.decode_response(18, 0, reply)
    assert isinstance(response, ApiVersionsResponse)
    seen: list[Any] = [
        (response.error_code, [(k.api_key, k.min_version) for k in response.api_keys])
    ]
    old_fetch = protocol.encode_request(FetchRequest(), 3, 4, "raw")
    seen.append(side.raw(old_fetch) is None)
    return seen


def scenario_compression_and_append_time(side: Side) -> list[Any]:
    """Compressed batches are stored as the producer sent them; LogAppendTime rewrites."""
    topic = side.new_topic()
    seen: list[Any] = []
    for codec in ("gzip", "snappy", "lz4", "zstd"):
        values = [codec.encode() * 50, b"second", b"third"]
        seen.append(produce(side, topic, 0, batch(values, NOW_MS, compression=codec)))
    seen.append(fetch_view(fetch(side, {(topic, 0): 0}), lambda _: topic))
    seen.append(fetch_view(fetch(side, {(topic, 0): 4}), lambda _: topic))
    appended = side.new_topic(configs={"message.timestamp.type": "LogAppendTime"})
    produce(side, appended, 0, batch([b"x", b"y"], NOW_MS), exact=False)
    p = fetch(side, {(appended, 0): 0}).responses[0].partitions[0]
    [stored] = decode_records(bytes(p.records or b"")).batches
    seen.append((stored.timestamp_type, stored.max_timestamp != NOW_MS + 1, stored.base_timestamp))
    return seen


def scenario_session_rotation(side: Side) -> list[Any]:
    """Incremental sessions serve partitions that returned data last."""
    topic = side.new_topic(partitions=2)
    for p in (0, 1):
        for i in range(4):
            produce(side, topic, p, batch([bytes([65 + i]) * 100], NOW_MS))
    size = 100 + 70  # one batch is a little over 100 bytes
    names = lambda _: topic  # noqa: E731
    seen: list[Any] = []
    full = fetch(side, {(topic, 0): 0, (topic, 1): 0}, session_epoch=0, max_bytes=size)
    sid = full.session_id
    seen.append(fetch_view(full, names))
    offsets = {(topic, 0): 1}
    for epoch in range(1, 5):
        response = fetch(side, offsets, session_id=sid, session_epoch=epoch, max_bytes=size)
        seen.append(fetch_view(response, names))
        offsets = {}
        for t in response.responses:
            for part in t.partitions:
                got = decode_records(bytes(part.records or b""))
                if got.next_offset is not None:
                    offsets[(topic, part.partition_index)] = got.next_offset
    return seen


SCENARIOS: dict[str, Callable[[Any], list[Any]]] = {
    name[len("scenario_") :]: fn for name, fn in globals().items() if name.startswith("scenario_")
}


@pytest.fixture
def broker_side(kafka: Any) -> Any:
    side = BrokerSide(kafka)
    yield side
    side.close()


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_model_answers_like_kafka(name: str, broker_side: BrokerSide) -> None:
    scenario = SCENARIOS[name]
    on_model = scenario(ModelSide())
    on_broker = scenario(broker_side)
    assert on_model, "a scenario must observe something"
    for i, (m, b) in enumerate(zip(on_model, on_broker, strict=True)):
        assert m == b, f"observation {i} differs:\nmodel:  {m}\nbroker: {b}"


def follower_view(side: Side, topic: str, leader: int, follower_port: int) -> list[Any]:
    """What a client sees when it asks a follower: the redirect fields, per version."""
    del follower_port
    seen: list[Any] = []

    def leader_fields(current: Any, endpoints: list[Any]) -> Any:
        return (
            current.leader_id == leader if current.leader_id != -1 else None,
            current.leader_epoch,
            [e.node_id == leader for e in endpoints],
        )

    for version in (4, 10, 11, 12, 15, 16, 17):
        response = fetch(side, {(topic, 0): 0}, version)
        p = response.responses[0].partitions[0]
        endpoints = response.node_endpoints if version >= 16 else []
        seen.append(
            (
                "fetch",
                version,
                p.error_code,
                p.high_watermark,
                leader_fields(p.current_leader, endpoints),
            )
        )
    for version in (9, 10, 11):
        response = side.call(
            ProduceRequest(
                acks=-1,
                timeout_ms=10_000,
                topic_data=[
                    TopicProduceData(
                        name=topic,
                        partition_data=[
                            PartitionProduceData(index=0, records=batch([b"x"], NOW_MS))
                        ],
                    )
                ],
            ),
            version,
        )
        p = response.responses[0].partition_responses[0]
        endpoints = response.node_endpoints if version >= 10 else []
        seen.append(
            (
                "produce",
                version,
                p.error_code,
                p.base_offset,
                leader_fields(p.current_leader, endpoints),
            )
        )
    response = side.call(
        ListOffsetsRequest(
            replica_id=-1,
            topics=[
                ListOffsetsTopic(
                    name=topic, partitions=[ListOffsetsPartition(partition_index=0, timestamp=-1)]
                )
            ],
        )
    )
    seen.append(("list_offsets", response.topics[0].partitions[0].error_code))
    meta = side.call(MetadataRequest(topics=[MetadataRequestTopic(name=topic)]))
    [p] = meta.topics[0].partitions
    seen.append(
        ("metadata", p.leader_id == leader, p.leader_epoch, len(p.replica_nodes), len(p.isr_nodes))
    )
    return seen


@pytest.mark.parametrize("replicas", [3, 1])
def test_a_follower_or_stranger_answers_like_kafka(kafka_cluster3: Any, replicas: int) -> None:
    """rf=3: the broker asked is a follower; rf=1: it holds no replica at all."""
    name: str = kafka_cluster3.create_topic(partitions=1, replication_factor=replicas, prefix="f")
    leader = kafka_cluster3.leader_of(name)
    follower = next(n for n in kafka_cluster3.nodes if n["id"] != leader)
    broker = BrokerSide(kafka_cluster3, (follower["host"], int(follower["port"])))
    try:
        meta = broker.call(MetadataRequest(topics=[MetadataRequestTopic(name=name)]))
        broker.names[meta.topics[0].topic_id] = name
        on_broker = follower_view(broker, name, leader, int(follower["port"]))
    finally:
        broker.close()
    cluster = ModelCluster(3)
    cluster.create_topic("f", 1, leaders=[2], replication_factor=replicas)
    model = ModelSide.__new__(ModelSide)
    model.cluster, model.clock = cluster, 0.0
    model.link = Link(cluster, node=3)
    on_model = follower_view(model, "f", 2, cluster.brokers[3].port)
    for i, (m, b) in enumerate(zip(on_model, on_broker, strict=True)):
        assert m == b, f"observation {i} differs:\nmodel:  {m}\nbroker: {b}"
