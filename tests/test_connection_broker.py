"""BrokerConnection against the real Apache Kafka broker, pumped over a blocking socket."""

from __future__ import annotations

import secrets
import socket
import time
from collections.abc import Callable

import pytest

from kafka_sansio._connection import (
    BrokerConnection,
    ConnectionClosed,
    ConnectionConfig,
    ConnectionState,
    Event,
    Ready,
    Response,
)
from kafka_sansio._messages.metadata import MetadataRequest, MetadataRequestTopic, MetadataResponse
from kafka_sansio._sasl import (
    PlainMechanism,
    SaslAuthenticationError,
    SaslMechanism,
    ScramMechanism,
)


def run(
    address: str,
    sasl: Callable[[], SaslMechanism] | None,
    requests: list[object],
    timeout: float = 20.0,
) -> list[Event]:
    """Connect, handshake, send ``requests``, and collect events until all are answered."""
    host, port = address.split(",")[0].rsplit(":", 1)
    conn = BrokerConnection(ConnectionConfig(), random=lambda: 0.5, sasl=sasl)
    events: list[Event] = []
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        now = time.monotonic()
        conn.connect(now)
        conn.connection_made(now)
        for i, request in enumerate(requests):
            conn.send(request, now, context=i)  # type: ignore[arg-type]
        deadline = now + timeout
        while time.monotonic() < deadline:
            out = conn.data_to_send()
            if out:
                sock.sendall(out)
            events += conn.events()
            answered = sum(isinstance(e, Response) for e in events)
            if answered == len(requests) or any(isinstance(e, ConnectionClosed) for e in events):
                break
            data = sock.recv(65536)
            if not data:
                conn.connection_lost(time.monotonic())
            else:
                conn.data_received(data, time.monotonic())
        events += conn.events()
    return events


def metadata_for(topic: str) -> MetadataRequest:
    return MetadataRequest(
        topics=[MetadataRequestTopic(name=topic)], allow_auto_topic_creation=False
    )


def test_handshake_and_metadata(kafka, topic: str) -> None:  # type: ignore[no-untyped-def]
    events = run(kafka.bootstrap, None, [metadata_for(topic)])
    ready, response = events
    assert isinstance(ready, Ready)
    assert ready.versions[3] >= 12  # Kafka 4.x speaks Metadata v12+
    assert isinstance(response, Response)
    body = response.response
    assert isinstance(body, MetadataResponse)
    [t] = body.topics
    assert (t.name, t.error_code, len(t.partitions)) == (topic, 0, 1)
    assert [b.port for b in body.brokers] == [kafka.port]


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_sasl_mechanisms(kafka_sasl, mechanism: str) -> None:  # type: ignore[no-untyped-def]
    user, password = next(iter(kafka_sasl.users.items()))

    def factory() -> SaslMechanism:
        if mechanism == "PLAIN":
            return PlainMechanism(user, password)
        return ScramMechanism(mechanism, user, password, secrets.token_urlsafe(18))

    events = run(kafka_sasl.sasl_bootstrap, factory, [MetadataRequest(topics=None)])
    assert isinstance(events[0], Ready)
    assert isinstance(events[1], Response)
    assert isinstance(events[1].response, MetadataResponse)


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-512"])
def test_sasl_wrong_password_is_refused(kafka_sasl, mechanism: str) -> None:  # type: ignore[no-untyped-def]
    user = next(iter(kafka_sasl.users))

    def factory() -> SaslMechanism:
        if mechanism == "PLAIN":
            return PlainMechanism(user, "wrong")
        return ScramMechanism(mechanism, user, "wrong", secrets.token_urlsafe(18))

    events = run(kafka_sasl.sasl_bootstrap, factory, [MetadataRequest(topics=None)])
    closed = [e for e in events if isinstance(e, ConnectionClosed)]
    assert closed and isinstance(closed[0].error, SaslAuthenticationError)
    assert not any(isinstance(e, Response) for e in events)


def test_sasl_listener_refuses_unauthenticated_clients(kafka_sasl) -> None:  # type: ignore[no-untyped-def]
    """Without SASL the broker drops the connection; the connection reports it."""
    events = run(kafka_sasl.sasl_bootstrap, None, [MetadataRequest(topics=None)], timeout=10)
    assert not any(isinstance(e, Response) for e in events)
    assert any(isinstance(e, ConnectionClosed) for e in events)


def test_state_after_handshake(kafka) -> None:  # type: ignore[no-untyped-def]
    host, port = kafka.bootstrap.split(",")[0].rsplit(":", 1)
    conn = BrokerConnection(ConnectionConfig(), random=lambda: 0.5)
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        conn.connect(0.0)
        conn.connection_made(0.0)
        sock.sendall(conn.data_to_send())
        while conn.state is ConnectionState.NEGOTIATING:
            conn.data_received(sock.recv(65536), 0.0)
    assert conn.state is ConnectionState.READY
    assert conn.broker_versions[1][1] >= 12  # Fetch
