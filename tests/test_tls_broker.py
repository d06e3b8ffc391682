"""TLS through ``BlockingDriver`` against a broker's SSL listener (``kafka_tls``).

The broker's certificate comes from a CA made for the session (``tests/_tls.py``). Records
that confluent-kafka wrote over TLS are read back by a ``ConsumerCore`` over TLS, record by
record; a ``ClientCore`` gets the metadata the SSL listener advertises; a multi-megabyte
produce request and the fetch response carrying it back cross TLS intact; a CA that did not
sign the broker's certificate, or a name it is not valid for, ends in a ``TlsError`` in the
driver's ``errors`` with nothing consumed; failures a reconnect may cure (refused, cut off
mid-handshake) only reach the core.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import random
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from _cluster import KafkaCluster
from _consumer_helpers import produce, produced_view, record_view
from _tls import make_ca, make_server_cert
from confluent_kafka import Producer
from kafka_sansio.transports._blocking import BlockingDriver
from kafka_sansio.transports._errors import TlsError

from kafka_sansio import (
    ClientConfig,
    ClientCore,
    Command,
    ConsumerConfig,
    ConsumerCore,
    OffsetResetPolicy,
    OpenConnection,
    SendData,
    TopicPartition,
)
from kafka_sansio._client import parse_bootstrap
from kafka_sansio._connection import RequestFailed, Response
from kafka_sansio._messages.produce import (
    PartitionProduceData,
    ProduceRequest,
    ProduceResponse,
    TopicProduceData,
)
from kafka_sansio.records import Record, encode_batch

# OpenSSL's verification codes (X509_V_ERR_*) for the two negative cases.
SELF_SIGNED_IN_CHAIN = 19
UNABLE_TO_GET_ISSUER_LOCALLY = 20
HOSTNAME_MISMATCH = 62


class Counting:
    """A core wrapper that counts what the driver told it (bytes, connections made/lost)."""

    def __init__(self, core: Any) -> None:
        self.core = core
        self.received = 0
        self.made = 0
        self.lost = 0

    def commands(self) -> list[Command]:
        result: list[Command] = self.core.commands()
        return result

    def connection_made(self, node_id: int, now: float) -> None:
        self.made += 1
        self.core.connection_made(node_id, now)

    def data_received(self, node_id: int, data: bytes, now: float) -> None:
        self.received += len(data)
        self.core.data_received(node_id, data, now)

    def connection_lost(self, node_id: int, now: float) -> None:
        self.lost += 1
        self.core.connection_lost(node_id, now)

    def get_timer(self) -> float | None:
        timer: float | None = self.core.get_timer()
        return timer

    def handle_timer(self, now: float) -> None:
        self.core.handle_timer(now)


@pytest.fixture
def drivers() -> Iterator[list[BlockingDriver]]:
    made: list[BlockingDriver] = []
    yield made
    for driver in made:
        driver.close()


def _consumer(
    bootstrap: str,
    drivers: list[BlockingDriver],
    context: ssl.SSLContext | None,
    server_hostname: str | None = None,
    **config: Any,
) -> tuple[ConsumerCore, Counting, BlockingDriver]:
    client = ClientConfig(bootstrap_servers=parse_bootstrap(bootstrap))
    core = ConsumerCore(
        ConsumerConfig(client=client, auto_offset_reset=OffsetResetPolicy.EARLIEST, **config),
        random=random.Random(3).random,
    )
    counting = Counting(core)
    driver = BlockingDriver(counting, ssl_context=context, server_hostname=server_hostname)
    drivers.append(driver)
    return core, counting, driver


def _collect(core: ConsumerCore, got: dict[TopicPartition, list[Record]]) -> Callable[[], int]:
    def poll() -> int:
        batch = core.poll(time.monotonic())
        for tp, records in batch.by_partition.items():
            got.setdefault(tp, []).extend(records)
        return len(batch)

    return poll


def _consume(
    core: ConsumerCore, driver: BlockingDriver, counts: dict[TopicPartition, int], timeout: float
) -> dict[TopicPartition, list[Record]]:
    got: dict[TopicPartition, list[Record]] = {}
    poll = _collect(core, got)

    def done() -> bool:
        poll()
        return all(len(got.get(tp, [])) >= n for tp, n in counts.items())

    assert driver.run_until(done, timeout), {tp: len(got.get(tp, [])) for tp in counts}
    return got


def _tls_port(cluster: KafkaCluster) -> int:
    assert cluster.tls_bootstrap is not None
    return int(cluster.tls_bootstrap.split(",")[0].rsplit(":", 1)[1])


# ----------------------------------------------------------------------------- the fixture


def test_fixture_interface(kafka_tls: KafkaCluster) -> None:
    """What other adapters rely on: a TLS bootstrap, a PEM CA file and a valid name."""
    assert kafka_tls.tls_bootstrap is not None and kafka_tls.tls_cafile is not None
    assert kafka_tls.tls_bootstrap != kafka_tls.bootstrap
    assert Path(kafka_tls.tls_cafile).read_text().startswith("-----BEGIN CERTIFICATE-----")
    assert kafka_tls.tls_server_hostname == "localhost"
    # The standard library alone verifies the listener with the fixture's three values.
    context = ssl.create_default_context(cafile=kafka_tls.tls_cafile)
    with (
        socket.create_connection(("127.0.0.1", _tls_port(kafka_tls)), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname=kafka_tls.tls_server_hostname) as sock,
    ):
        assert sock.version() in ("TLSv1.2", "TLSv1.3")
        assert sock.getpeercert()["subject"] == ((("commonName", "localhost"),),)


# ----------------------------------------------------------------------------- positive


@pytest.mark.parametrize(
    ("host", "server_hostname"),
    [("127.0.0.1", None), ("localhost", None), ("127.0.0.1", "localhost")],
    ids=["ip-default", "name-default", "ip-named-localhost"],
)
def test_client_metadata_over_tls(
    kafka_tls: KafkaCluster,
    drivers: list[BlockingDriver],
    host: str,
    server_hostname: str | None,
) -> None:
    """Metadata fetched over TLS names the SSL listener; the certificate is checked against
    the bootstrap host by default (a DNS name or an IP address) or the name given."""
    topic = kafka_tls.create_topic(partitions=2, prefix="tls-md")
    port = _tls_port(kafka_tls)
    core = ClientCore(ClientConfig(bootstrap_servers=((host, port),)), random.Random(1).random)
    counting = Counting(core)
    driver = BlockingDriver(
        counting, ssl_context=kafka_tls.ssl_context(), server_hostname=server_hostname
    )
    drivers.append(driver)
    core.set_topics([topic], time.monotonic())
    wanted = {TopicPartition(topic, 0), TopicPartition(topic, 1)}
    assert driver.run_until(lambda: wanted <= set(core.metadata.partitions), 30)
    assert driver.errors == []
    assert counting.made >= 1
    brokers = core.metadata.brokers
    assert [(b.host, b.port) for b in brokers.values()] == [("127.0.0.1", port)]
    assert {core.metadata.partitions[tp].leader for tp in wanted} == set(brokers)
    assert core.metadata.cluster_id == kafka_tls.cluster_id


def test_consume_over_tls_what_was_produced_over_tls(
    kafka_tls: KafkaCluster, drivers: list[BlockingDriver]
) -> None:
    """confluent-kafka writes over TLS (lz4); ConsumerCore reads every record back over TLS."""
    partitions, per_partition = 3, 1500
    topic = kafka_tls.create_topic(partitions=partitions, prefix="tls-consume")
    producer = Producer(
        {**kafka_tls.client_config(tls=True), "compression.type": "lz4", "linger.ms": 10}
    )
    items = (
        (p, f"k{p}-{i}".encode(), (f"value {p}/{i} " * (1 + i % 9)).encode(),
         [("i", str(i).encode())] if i % 4 == 0 else [], 1_700_000_000_000 + i)
        for i in range(per_partition)
        for p in range(partitions)
    )  # fmt: skip
    acked = produce(producer, topic, items)
    assert len(acked) == partitions * per_partition

    assert kafka_tls.tls_bootstrap is not None
    core, counting, driver = _consumer(kafka_tls.tls_bootstrap, drivers, kafka_tls.ssl_context())
    tps = [TopicPartition(topic, p) for p in range(partitions)]
    core.assign(tps, time.monotonic())
    got = _consume(core, driver, {tp: per_partition for tp in tps}, timeout=60)
    driver.run_until(lambda: False, 0.3)  # nothing beyond what was produced may arrive
    _collect(core, got)()

    for tp in tps:
        expected = [produced_view(a) for a in acked if a.partition == tp.partition]
        assert [record_view(r) for r in got[tp]] == expected
        assert core.position(tp) == per_partition
    assert driver.errors == []
    assert counting.made >= 2  # bootstrap connection and the broker's own


def test_large_produce_and_fetch_cross_tls_intact(
    kafka_tls: KafkaCluster, drivers: list[BlockingDriver]
) -> None:
    """A ~6 MB produce request goes out and a ~6 MB fetch response comes back over TLS:
    many partial socket writes and reads, and many TLS records, reassembled exactly."""
    size, count = 1_000_000, 6
    topic = kafka_tls.create_topic(
        prefix="tls-large", config={"max.message.bytes": str(size * count + 1_000_000)}
    )
    tp = TopicPartition(topic, 0)
    values = [os.urandom(size) for _ in range(count)]  # incompressible, nothing to guess
    batch = encode_batch(
        [(i, 1_700_000_000_000 + i, 0, f"k{i}".encode(), v, ()) for i, v in enumerate(values)]
    )
    assert len(batch) > size * count

    assert kafka_tls.tls_bootstrap is not None
    context = kafka_tls.ssl_context()
    client = ClientCore(
        ClientConfig(bootstrap_servers=parse_bootstrap(kafka_tls.tls_bootstrap)),
        random.Random(2).random,
    )
    writer = BlockingDriver(client, ssl_context=context)
    drivers.append(writer)
    client.set_topics([topic], time.monotonic())
    assert writer.run_until(lambda: tp in client.metadata.partitions, 30)
    leader = client.metadata.partitions[tp].leader
    results: list[Response | RequestFailed] = []
    request = ProduceRequest(
        acks=-1,
        timeout_ms=30_000,
        topic_data=[
            TopicProduceData(
                name=topic, partition_data=[PartitionProduceData(index=0, records=batch)]
            )
        ],
    )
    client.send(leader, request, time.monotonic(), lambda result, now: results.append(result))
    assert writer.run_until(lambda: results, 60)
    (result,) = results
    assert isinstance(result, Response), result
    assert isinstance(result.response, ProduceResponse)
    (part,) = result.response.responses[0].partition_responses
    assert (part.error_code, part.base_offset) == (0, 0)

    core, counting, reader = _consumer(
        kafka_tls.tls_bootstrap, drivers, context, fetch_max_bytes=size * count * 2
    )
    core.assign([tp], time.monotonic())
    got = _consume(core, reader, {tp: count}, timeout=60)
    assert counting.received > size * count  # the whole batch came through TLS
    assert [r.offset for r in got[tp]] == list(range(count))
    assert [hashlib.sha256(r.value or b"").hexdigest() for r in got[tp]] == [
        hashlib.sha256(v).hexdigest() for v in values
    ]
    assert [r.key for r in got[tp]] == [f"k{i}".encode() for i in range(count)]
    assert writer.errors == [] and reader.errors == []


# ----------------------------------------------------------------------------- negative


def _assert_refused(
    core: ConsumerCore,
    counting: Counting,
    driver: BlockingDriver,
    tp: TopicPartition,
    code: int | tuple[int, ...],
    mention: str,
) -> None:
    """Two handshakes fail (the core keeps retrying), each kept as a TlsError; the core
    never had a connection, so nothing was consumed and no metadata arrived."""
    got: dict[TopicPartition, list[Record]] = {}
    poll = _collect(core, got)
    assert driver.run_until(lambda: poll() or len(driver.errors) >= 2, 30), driver.errors
    assert got == {}
    assert counting.made == 0 and counting.received == 0
    assert counting.lost >= 2
    assert core.client.metadata.version == 0
    assert core.position(tp) is None
    codes = code if isinstance(code, tuple) else (code,)
    for error in driver.errors:
        assert isinstance(error, TlsError)
        cause = error.__cause__
        assert isinstance(cause, ssl.SSLCertVerificationError)
        assert cause.verify_code in codes, cause
        assert cause.verify_message in str(error)
        assert mention in str(error)


def test_wrong_ca_is_a_tls_error_and_nothing_is_consumed(
    kafka_tls: KafkaCluster, drivers: list[BlockingDriver], tmp_path: Path
) -> None:
    topic = kafka_tls.create_topic(prefix="tls-wrong-ca")
    producer = Producer(kafka_tls.client_config())
    produce(producer, topic, [(0, b"k", b"secret", [], None)])
    other = make_ca(tmp_path, "unrelated-ca")
    context = ssl.create_default_context(cafile=str(other.cert))
    assert kafka_tls.tls_bootstrap is not None
    core, counting, driver = _consumer(kafka_tls.tls_bootstrap, drivers, context)
    tp = TopicPartition(topic, 0)
    core.assign([tp], time.monotonic())
    _assert_refused(
        core, counting, driver, tp, (SELF_SIGNED_IN_CHAIN, UNABLE_TO_GET_ISSUER_LOCALLY),
        kafka_tls.tls_bootstrap.split(",")[0],
    )  # fmt: skip


def test_hostname_mismatch_is_a_tls_error(
    kafka_tls: KafkaCluster, drivers: list[BlockingDriver]
) -> None:
    topic = kafka_tls.create_topic(prefix="tls-wrong-name")
    assert kafka_tls.tls_bootstrap is not None
    core, counting, driver = _consumer(
        kafka_tls.tls_bootstrap, drivers, kafka_tls.ssl_context(), server_hostname="wrong.example"
    )
    tp = TopicPartition(topic, 0)
    core.assign([tp], time.monotonic())
    _assert_refused(core, counting, driver, tp, HOSTNAME_MISMATCH, "wrong.example")


def test_tls_to_the_plaintext_listener_is_only_a_lost_connection(
    kafka_tls: KafkaCluster, drivers: list[BlockingDriver]
) -> None:
    """The plaintext listener drops a ClientHello (it reads it as an absurd frame size): the
    peer went away mid-handshake, which a reconnect may cure, so no TlsError is kept."""
    core, counting, driver = _consumer(kafka_tls.bootstrap, drivers, kafka_tls.ssl_context())
    core.assign([TopicPartition("absent", 0)], time.monotonic())
    assert driver.run_until(lambda: counting.lost >= 2, 30)
    assert driver.errors == []
    assert counting.made == 0


def test_refused_connection_is_curable(drivers: list[BlockingDriver], tmp_path: Path) -> None:
    """Nothing listens: the core hears of each lost attempt and retries; no TlsError."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    ca = make_ca(tmp_path, "ca")
    context = ssl.create_default_context(cafile=str(ca.cert))
    core, counting, driver = _consumer(f"127.0.0.1:{port}", drivers, context)
    core.assign([TopicPartition("absent", 0)], time.monotonic())
    assert driver.run_until(lambda: counting.lost >= 3, 30)
    assert driver.errors == []
    assert counting.made == 0


# ----------------------------------------------------------------------------- no broker


class ScriptedCore:
    """A core that opens one connection and queues bytes before it is even made."""

    def __init__(self, port: int, early: bytes) -> None:
        self.queue: list[Command] = [OpenConnection(1, "localhost", port), SendData(1, early)]
        self.log: list[str] = []
        self.data = b""

    def commands(self) -> list[Command]:
        queue, self.queue = self.queue, []
        return queue

    def connection_made(self, node_id: int, now: float) -> None:
        self.log.append("made")

    def data_received(self, node_id: int, data: bytes, now: float) -> None:
        assert self.log[-1:] in (["made"], ["data"]), self.log
        self.log.append("data")
        self.data += data

    def connection_lost(self, node_id: int, now: float) -> None:
        self.log.append("lost")

    def get_timer(self) -> float | None:
        return None

    def handle_timer(self, now: float) -> None:
        pass


def test_bytes_queued_during_the_handshake_follow_it(
    drivers: list[BlockingDriver], tmp_path: Path
) -> None:
    """Against a local TLS server that greets first and echoes: bytes a core queued before
    ``connection_made`` wait for the handshake, then go out encrypted; the server's
    close_notify ends the connection after everything it sent was delivered."""
    ca = make_ca(tmp_path, "ca")
    server = make_server_cert(ca, tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(server.cert, server.key)
    early = os.urandom(300_000)
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    failures: list[BaseException] = []

    def serve() -> None:
        try:
            conn, _ = listener.accept()
            with context.wrap_socket(conn, server_side=True) as tls:
                tls.sendall(b"hello:")
                got = b""
                while len(got) < len(early):
                    chunk = tls.recv(65536)
                    if not chunk:
                        break
                    got += chunk
                tls.sendall(hashlib.sha256(got).digest())
                # close_notify; the driver closes without answering it, which unwrap,
                # waiting for the answer, reports as an EOF.
                with contextlib.suppress(ssl.SSLEOFError):
                    tls.unwrap()
        except BaseException as exc:  # reported by the test thread
            failures.append(exc)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        core = ScriptedCore(port, early)
        driver = BlockingDriver(core, ssl_context=ssl.create_default_context(cafile=ca.cert))
        drivers.append(driver)
        assert driver.run_until(lambda: "lost" in core.log, 30), (core.log, failures)
    finally:
        thread.join(10)
        listener.close()
    assert failures == []
    assert core.data == b"hello:" + hashlib.sha256(early).digest()
    assert core.log[0] == "made" and core.log[-1] == "lost"
    assert driver.errors == []
