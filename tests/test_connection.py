"""BrokerConnection driven step by step with a fake clock and a scripted broker side."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kafka_sansio import FrameTooLargeError, LocalProtocolError, RemoteProtocolError, protocol
from kafka_sansio._connection import (
    BrokerConnection,
    ConnectionClosed,
    ConnectionConfig,
    ConnectionLostError,
    ConnectionState,
    Ready,
    RequestFailed,
    RequestTimedOutError,
    Response,
)
from kafka_sansio._framing import FrameBuffer, frame
from kafka_sansio._messages.api_versions import ApiVersion, ApiVersionsResponse
from kafka_sansio._messages.metadata import MetadataRequest, MetadataResponse
from kafka_sansio._messages.sasl_authenticate import SaslAuthenticateResponse
from kafka_sansio._messages.sasl_handshake import SaslHandshakeResponse
from kafka_sansio._sasl import PlainMechanism, SaslAuthenticationError

BROKER_RANGES = {key: rng for key, rng in protocol.client_versions().items()}


def api_versions_response(ranges: dict[int, tuple[int, int]] | None = None) -> ApiVersionsResponse:
    ranges = BROKER_RANGES if ranges is None else ranges
    return ApiVersionsResponse(
        api_keys=[
            ApiVersion(api_key=k, min_version=lo, max_version=hi) for k, (lo, hi) in ranges.items()
        ]
    )


class FakeBroker:
    """Decodes what the connection wrote and lets a test answer it."""

    def __init__(self) -> None:
        self.frames = FrameBuffer()
        self.pending: list[tuple[int, int, int, object]] = []

    def take(self, conn: BrokerConnection) -> list[tuple[int, int, int, object]]:
        self.frames.feed(conn.data_to_send())
        got = []
        while (payload := self.frames.next_frame()) is not None:
            header, request = protocol.decode_request(payload)
            got.append(
                (header.request_api_key, header.request_api_version, header.correlation_id, request)
            )
        self.pending += got
        return got

    def answer(self, response: object, version: int | None = None) -> bytes:
        api_key, req_version, correlation_id, _ = self.pending.pop(0)
        assert isinstance(response, protocol.Message)
        assert api_key == response.API_KEY
        return frame(
            protocol.encode_response(
                response, req_version if version is None else version, correlation_id
            )
        )


def ready_connection(now: float = 0.0, **config: object) -> tuple[BrokerConnection, FakeBroker]:
    conn = BrokerConnection(ConnectionConfig(**config), random=lambda: 0.5)  # type: ignore[arg-type]
    broker = FakeBroker()
    conn.connect(now)
    conn.connection_made(now)
    [(api_key, version, _, _)] = broker.take(conn)
    assert (api_key, version) == (18, 4)
    conn.data_received(broker.answer(api_versions_response()), now)
    [event] = conn.events()
    assert isinstance(event, Ready)
    assert conn.state is ConnectionState.READY
    return conn, broker


def test_handshake_negotiates_versions() -> None:
    conn, _ = ready_connection()
    assert conn.versions[3] == protocol.client_versions()[3][1]
    assert conn.get_timer() is None


def test_api_versions_falls_back_when_the_broker_is_older() -> None:
    conn = BrokerConnection(ConnectionConfig(), random=lambda: 0.5)
    broker = FakeBroker()
    conn.connect(0.0)
    conn.connection_made(0.0)
    broker.take(conn)
    # An old broker answers an unknown ApiVersions version in v0 with error 35.
    refusal = ApiVersionsResponse(
        error_code=35, api_keys=[ApiVersion(api_key=18, min_version=0, max_version=2)]
    )
    conn.data_received(broker.answer(refusal, version=0), 0.0)
    [(api_key, version, _, _)] = broker.take(conn)
    assert (api_key, version) == (18, 2)
    conn.data_received(broker.answer(api_versions_response({18: (0, 2), 3: (0, 9)})), 0.0)
    [ready] = conn.events()
    assert isinstance(ready, Ready)
    assert ready.versions == {18: 2, 3: 9}


def test_in_flight_is_bounded_and_queue_drains_in_order() -> None:
    conn, broker = ready_connection(max_in_flight=2)
    for i in range(5):
        conn.send(MetadataRequest(topics=[]), 1.0, context=i)
    assert len(broker.take(conn)) == 2
    assert conn.in_flight == 2 and conn.queued == 3
    done = []
    while broker.pending:
        conn.data_received(broker.answer(MetadataResponse()), 2.0)
        done += [e.context for e in conn.events() if isinstance(e, Response)]
        broker.take(conn)
        assert conn.in_flight <= 2
    assert done == [0, 1, 2, 3, 4]


def test_mismatched_correlation_id_is_a_protocol_error() -> None:
    conn, broker = ready_connection()
    conn.send(MetadataRequest(topics=[]), 1.0, context="a")
    broker.take(conn)
    _, version, correlation_id, _ = broker.pending.pop()
    bogus = frame(protocol.encode_response(MetadataResponse(), version, correlation_id + 7))
    conn.data_received(bogus, 1.0)
    failed, closed = conn.events()
    assert isinstance(failed, RequestFailed) and failed.context == "a" and failed.written
    assert isinstance(closed, ConnectionClosed)
    assert isinstance(closed.error, RemoteProtocolError)
    assert conn.state is ConnectionState.DISCONNECTED


def test_oversized_frame_closes_the_connection() -> None:
    conn, _ = ready_connection(max_frame_size=1000)
    conn.data_received((5000).to_bytes(4, "big"), 1.0)
    [closed] = conn.events()
    assert isinstance(closed, ConnectionClosed)
    assert isinstance(closed.error, FrameTooLargeError)


def test_connection_lost_fails_exactly_the_requests_in_flight() -> None:
    conn, broker = ready_connection(max_in_flight=2)
    for i in range(4):
        conn.send(MetadataRequest(topics=[]), 1.0, context=i)
    broker.take(conn)
    conn.connection_lost(1.5)
    events = conn.events()
    assert [e.context for e in events if isinstance(e, RequestFailed)] == [0, 1]
    assert all(
        isinstance(e.error, ConnectionLostError) for e in events if isinstance(e, RequestFailed)
    )
    assert isinstance(events[-1], ConnectionClosed)
    assert conn.queued == 2
    # Backoff with jitter 0.5 -> exactly the initial 50 ms.
    assert conn.reconnect_at == pytest.approx(1.55)
    with pytest.raises(LocalProtocolError, match="backoff"):
        conn.connect(1.5)
    # Reconnect: the queued requests go out after the new handshake.
    conn.connect(1.6)
    conn.connection_made(1.6)
    broker = FakeBroker()
    broker.take(conn)
    conn.data_received(broker.answer(api_versions_response()), 1.7)
    assert isinstance(conn.events()[0], Ready)
    assert len(broker.take(conn)) == 2
    for _ in range(2):
        conn.data_received(broker.answer(MetadataResponse()), 1.8)
    assert [e.context for e in conn.events() if isinstance(e, Response)] == [2, 3]


def test_request_timeout_closes_the_connection() -> None:
    conn, broker = ready_connection(request_timeout=5.0)
    conn.send(MetadataRequest(topics=[]), 10.0, context="first")
    conn.send(MetadataRequest(topics=[]), 11.0, context="second")
    broker.take(conn)
    assert conn.get_timer() == 15.0
    conn.handle_timer(14.9)
    assert conn.events() == []
    conn.handle_timer(15.0)
    first, second, closed = conn.events()
    assert isinstance(first, RequestFailed) and isinstance(first.error, RequestTimedOutError)
    assert isinstance(second, RequestFailed) and isinstance(second.error, ConnectionLostError)
    assert isinstance(closed, ConnectionClosed)
    assert conn.get_timer() is None


def test_a_request_may_wait_longer_than_the_request_timeout() -> None:
    """JoinGroup-style: the broker holds the answer on purpose, the client waits longer."""
    conn, broker = ready_connection(request_timeout=5.0)
    conn.send(MetadataRequest(topics=[]), 10.0, context="held", timeout=65.0)
    broker.take(conn)
    assert conn.get_timer() == 75.0
    conn.handle_timer(15.0)
    conn.handle_timer(74.9)
    assert conn.events() == []
    conn.handle_timer(75.0)
    failed, closed = conn.events()
    assert isinstance(failed, RequestFailed) and isinstance(failed.error, RequestTimedOutError)
    assert isinstance(closed, ConnectionClosed)


def test_connect_timeout() -> None:
    conn = BrokerConnection(ConnectionConfig(connect_timeout=3.0), random=lambda: 0.0)
    conn.connect(100.0)
    assert conn.get_timer() == 103.0
    conn.handle_timer(103.0)
    [closed] = conn.events()
    assert isinstance(closed, ConnectionClosed) and isinstance(closed.error, RequestTimedOutError)
    # jitter 0.0 -> 80% of the initial backoff.
    assert conn.reconnect_at == pytest.approx(103.04)


def test_acks_zero_requests_complete_when_written() -> None:
    conn, broker = ready_connection()
    conn.send(MetadataRequest(topics=[]), 1.0, context="x", expect_response=False)
    [event] = conn.events()
    assert isinstance(event, Response) and event.response is None
    assert conn.in_flight == 0
    assert len(broker.take(conn)) == 1


def sasl_connection(mechanism: PlainMechanism) -> tuple[BrokerConnection, FakeBroker]:
    conn = BrokerConnection(ConnectionConfig(), random=lambda: 0.5, sasl=lambda: mechanism)
    broker = FakeBroker()
    conn.connect(0.0)
    conn.connection_made(0.0)
    broker.take(conn)
    conn.data_received(broker.answer(api_versions_response()), 0.0)
    assert conn.state is ConnectionState.AUTHENTICATING
    [(api_key, version, _, handshake)] = broker.take(conn)
    assert (api_key, version, handshake.mechanism) == (17, 1, "PLAIN")  # type: ignore[attr-defined]
    conn.data_received(broker.answer(SaslHandshakeResponse(mechanisms=["PLAIN"])), 0.0)
    [(api_key, _, _, auth)] = broker.take(conn)
    assert api_key == 36
    assert auth.auth_bytes == b"\0alice\0secret"  # type: ignore[attr-defined]
    return conn, broker


def test_sasl_plain_success() -> None:
    conn, broker = sasl_connection(PlainMechanism("alice", "secret"))
    conn.send(MetadataRequest(topics=[]), 0.0, context="waits for auth")
    assert broker.take(conn) == []
    conn.data_received(broker.answer(SaslAuthenticateResponse()), 0.0)
    [ready] = conn.events()
    assert isinstance(ready, Ready)
    assert len(broker.take(conn)) == 1


def test_sasl_failure_fails_waiting_requests_with_the_reason() -> None:
    conn, broker = sasl_connection(PlainMechanism("alice", "secret"))
    conn.send(MetadataRequest(topics=[]), 0.0, context="waits")
    failure = SaslAuthenticateResponse(error_code=58, error_message="Invalid credentials")
    conn.data_received(broker.answer(failure), 0.0)
    failed, closed = conn.events()
    assert isinstance(failed, RequestFailed) and isinstance(failed.error, SaslAuthenticationError)
    assert isinstance(closed, ConnectionClosed)
    assert "Invalid credentials" in str(closed.error)


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 40), st.integers(1, 6))
def test_responses_split_anywhere_give_the_same_events(chunk: int, count: int) -> None:
    conn, broker = ready_connection(max_in_flight=count)
    for i in range(count):
        conn.send(MetadataRequest(topics=[]), 1.0, context=i)
    broker.take(conn)
    wire = b"".join(
        broker.answer(MetadataResponse(cluster_id=f"c{i}", controller_id=i)) for i in range(count)
    )
    events = []
    for i in range(0, len(wire), chunk):
        conn.data_received(wire[i : i + chunk], 2.0)
        events += conn.events()
    assert [(e.context, e.response.controller_id) for e in events] == [  # type: ignore[union-attr]
        (i, i) for i in range(count)
    ]
