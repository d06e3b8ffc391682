"""One broker connection as a pure state machine.

:class:`BrokerConnection` owns everything that happens on one TCP connection
to one broker: framing, correlation ids, the ordered queue of requests in
flight (bounded), the ApiVersions handshake and version negotiation, SASL,
request and connection-setup timeouts, and reconnect backoff.  It never
touches a socket: whoever drives it (a client core, or a transport directly)
follows this loop::

    conn.connect(now)                 # state CONNECTING: open the socket now
    conn.connection_made(now)         # socket is up: handshake requests queued
    conn.send(request, now)           # queue a request (sent once READY)
    sock.sendall(conn.data_to_send()) # after every call: drain outgoing bytes
    conn.data_received(data, now)     # bytes from the socket
    for event in conn.events(): ...   # Ready, Response, RequestFailed, ...
    conn.handle_timer(now)            # when now >= conn.get_timer()
    conn.connection_lost(now)         # socket closed or failed

When the connection decides the socket must go (a timeout, a protocol error,
failed authentication) it fails the affected requests, emits
:class:`ConnectionClosed` and enters ``DISCONNECTED``: the driver then closes
the socket.  Requests that were queued but never written survive a lost
connection and go out after the next handshake; requests in flight fail,
exactly those.
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from . import protocol
from ._backoff import Backoff
from ._errors import KafkaSansioError, LocalProtocolError, RemoteProtocolError
from ._framing import DEFAULT_MAX_FRAME_SIZE, FrameBuffer, frame
from ._messages.api_versions import ApiVersionsRequest, ApiVersionsResponse
from ._messages.sasl_authenticate import SaslAuthenticateRequest, SaslAuthenticateResponse
from ._messages.sasl_handshake import SaslHandshakeRequest, SaslHandshakeResponse
from ._sasl import SaslAuthenticationError, SaslMechanism
from ._wire import Message

__all__ = [
    "BrokerConnection",
    "ConnectionClosed",
    "ConnectionConfig",
    "ConnectionLostError",
    "ConnectionState",
    "Ready",
    "RequestFailed",
    "RequestTimedOutError",
    "Response",
]

_API_VERSIONS = 18
_UNSUPPORTED_VERSION = 35
_CORRELATION_MASK = 0x7FFFFFFF


class ConnectionLostError(KafkaSansioError):
    """The connection went away while the request was in flight."""


class RequestTimedOutError(KafkaSansioError):
    """No response arrived within the request timeout."""


class ConnectionState(enum.Enum):
    """Where a :class:`BrokerConnection` stands."""

    DISCONNECTED = "disconnected"  #: no socket; reconnect allowed after ``reconnect_at``
    CONNECTING = "connecting"  #: the driver is opening the socket
    NEGOTIATING = "negotiating"  #: ApiVersions in flight
    AUTHENTICATING = "authenticating"  #: SASL handshake and exchange
    READY = "ready"  #: user requests flow
    CLOSED = "closed"  #: closed for good by :meth:`BrokerConnection.close`


@dataclass(frozen=True, slots=True)
class ConnectionConfig:
    """Settings of one connection (seconds for durations; Java client defaults)."""

    client_id: str = "kafka-sansio"
    client_software_name: str = "kafka-sansio"
    client_software_version: str = "0.1.0"
    max_in_flight: int = 5
    request_timeout: float = 30.0
    connect_timeout: float = 10.0
    max_frame_size: int = DEFAULT_MAX_FRAME_SIZE
    reconnect_backoff: Backoff = field(default_factory=lambda: Backoff(0.05, 1.0))
    include_unstable_versions: bool = False

    def __post_init__(self) -> None:
        if self.max_in_flight < 1:
            raise ValueError("max_in_flight must be at least 1")
        if self.request_timeout <= 0 or self.connect_timeout <= 0:
            raise ValueError("timeouts must be positive")


# ------------------------------------------------------------------ events


@dataclass(frozen=True, slots=True)
class Ready:
    """The handshake is done: ``versions`` maps API key to the version to use."""

    versions: dict[int, int]
    broker_versions: dict[int, tuple[int, int]]


@dataclass(frozen=True, slots=True)
class Response:
    """The answer to a request; ``context`` is what the caller passed to :meth:`send`.

    ``response`` is ``None`` for a request sent with ``expect_response=False``
    (Produce with acks=0), reported as soon as its bytes are queued.
    """

    correlation_id: int
    request: Message
    version: int
    response: Message | None
    context: object


@dataclass(frozen=True, slots=True)
class RequestFailed:
    """A request that will get no answer on this connection.

    ``written`` says whether its bytes may have reached the broker (it was in
    flight), which matters for requests that are not idempotent.
    """

    correlation_id: int
    request: Message
    context: object
    error: KafkaSansioError
    written: bool


@dataclass(frozen=True, slots=True)
class ConnectionClosed:
    """The connection dropped or gave up; close the socket if it is still open.

    ``error`` is ``None`` for an orderly close asked for by the caller.
    """

    error: KafkaSansioError | None


Event = Ready | Response | RequestFailed | ConnectionClosed


@dataclass(slots=True)
class _Request:
    request: Message
    version: int | None
    context: object
    expect_response: bool
    internal: bool = False
    correlation_id: int = -1
    deadline: float = 0.0
    #: Seconds to wait for the answer once written (None: the configured request timeout).
    timeout: float | None = None


class BrokerConnection:
    """The protocol state of one connection to one broker (see the module docstring).

    ``sasl`` is a factory returning a fresh :class:`SaslMechanism` for every
    connection attempt (SCRAM needs a new nonce each time), or ``None`` for no
    authentication.  ``random`` returns floats in ``[0, 1)`` for backoff jitter.
    """

    def __init__(
        self,
        config: ConnectionConfig,
        random: Callable[[], float],
        sasl: Callable[[], SaslMechanism] | None = None,
    ) -> None:
        self.config = config
        self._random = random
        self._sasl_factory = sasl
        self._sasl: SaslMechanism | None = None
        self.state = ConnectionState.DISCONNECTED
        #: Earliest time :meth:`connect` may be called again.
        self.reconnect_at = 0.0
        self._failures = 0
        self._connect_deadline: float | None = None
        self._frames = FrameBuffer(config.max_frame_size)
        self._out = bytearray()
        self._next_correlation = 0
        self._queue: deque[_Request] = deque()
        self._in_flight: deque[_Request] = deque()
        self._events: list[Event] = []
        self._api_versions_version = ApiVersionsRequest.MAX_STABLE_VERSION
        #: Negotiated version per API key, once READY.
        self.versions: dict[int, int] = {}
        #: The broker's advertised ranges, once READY.
        self.broker_versions: dict[int, tuple[int, int]] = {}

    # ------------------------------------------------------------ queries

    @property
    def in_flight(self) -> int:
        """Requests written and not yet answered (internal handshake ones included)."""
        return len(self._in_flight)

    @property
    def queued(self) -> int:
        """User requests accepted but not yet written."""
        return len(self._queue)

    def can_send_now(self) -> bool:
        """True if a request given to :meth:`send` now would be written at once."""
        return self.state is ConnectionState.READY and (
            len(self._in_flight) + len(self._queue) < self.config.max_in_flight
        )

    def get_timer(self) -> float | None:
        """The next absolute deadline (request or connect timeout), or ``None``."""
        deadlines = [r.deadline for r in self._in_flight]
        if self._connect_deadline is not None:
            deadlines.append(self._connect_deadline)
        return min(deadlines) if deadlines else None

    # ------------------------------------------------------------ inputs

    def connect(self, now: float) -> None:
        """Start a connection attempt: the driver must now open the socket.

        Allowed from ``DISCONNECTED`` once ``now >= reconnect_at``.  Call
        :meth:`connection_made` when the socket is up, or
        :meth:`connection_lost` if opening it failed.
        """
        if self.state is not ConnectionState.DISCONNECTED:
            raise LocalProtocolError(f"cannot connect while {self.state.value}")
        if now < self.reconnect_at:
            raise LocalProtocolError("reconnect backoff has not elapsed")
        self.state = ConnectionState.CONNECTING
        self._connect_deadline = now + self.config.connect_timeout

    def connection_made(self, now: float) -> None:
        """The socket is open: queues the ApiVersions handshake.  Drain :meth:`data_to_send`."""
        if self.state is not ConnectionState.CONNECTING:
            raise LocalProtocolError(f"connection_made while {self.state.value}")
        self.state = ConnectionState.NEGOTIATING
        self._frames = FrameBuffer(self.config.max_frame_size)
        self._api_versions_version = ApiVersionsRequest.MAX_STABLE_VERSION
        self._send_api_versions(now)

    def send(
        self,
        request: Message,
        now: float,
        *,
        version: int | None = None,
        context: object = None,
        expect_response: bool = True,
        timeout: float | None = None,
    ) -> None:
        """Queue ``request``; it is written once the connection is READY and in-flight room exists.

        ``version`` defaults to the negotiated one; ``timeout`` (seconds after
        it is written) replaces the configured request timeout for a request
        the broker may hold on purpose (JoinGroup).  The outcome arrives as a
        :class:`Response` or :class:`RequestFailed` event carrying ``context``.
        Drain :meth:`data_to_send` afterwards.
        """
        if self.state is ConnectionState.CLOSED:
            raise LocalProtocolError("the connection is closed")
        if not request.IS_REQUEST:
            raise LocalProtocolError(f"{request.NAME} is not a request")
        self._queue.append(_Request(request, version, context, expect_response, timeout=timeout))
        self._flush_queue(now)

    def data_received(self, data: bytes, now: float) -> None:
        """Feed bytes read from the socket; completed requests become events.

        A malformed or unmatched response is a protocol error: the connection
        fails its requests in flight, emits :class:`ConnectionClosed` with a
        :class:`RemoteProtocolError` and becomes ``DISCONNECTED``.
        """
        if not self._open():
            return  # bytes racing a close we already decided on
        try:
            self._frames.feed(data)
            while self._open():
                payload = self._frames.next_frame()
                if payload is None:
                    break
                self._receive_frame(payload, now)
        except RemoteProtocolError as exc:
            self._drop(now, exc)
        except SaslAuthenticationError as exc:
            self._drop(now, exc)
        self._flush_queue(now)

    def connection_lost(self, now: float) -> None:
        """The socket closed or could not be opened: in-flight requests fail."""
        if self.state in (ConnectionState.DISCONNECTED, ConnectionState.CLOSED):
            return
        self._drop(now, ConnectionLostError("connection to the broker was lost"))

    def handle_timer(self, now: float) -> None:
        """Expire timed-out requests or a connect attempt that took too long.

        A timed-out request closes the connection (responses are ordered, so
        nothing behind it can arrive first); the other in-flight requests fail
        with :class:`ConnectionLostError`.
        """
        if self._connect_deadline is not None and now >= self._connect_deadline:
            self._drop(now, RequestTimedOutError("connection setup timed out"))
            return
        for req in self._in_flight:
            if now >= req.deadline:
                self._drop(now, RequestTimedOutError("request timed out"), timed_out=req)
                return

    def close(self) -> None:
        """Close for good: queued and in-flight requests fail; no reconnect."""
        if self.state is ConnectionState.CLOSED:
            return
        error = ConnectionLostError("connection closed by the client")
        self._fail_all(self._in_flight, error, written=True)
        self._fail_all(self._queue, error, written=False)
        self.state = ConnectionState.CLOSED
        self._connect_deadline = None
        self._out.clear()
        self._events.append(ConnectionClosed(None))

    # ------------------------------------------------------------ outputs

    def data_to_send(self) -> bytes:
        """Bytes to write to the socket, in order; clears the outgoing buffer."""
        out = bytes(self._out)
        self._out.clear()
        return out

    def events(self) -> list[Event]:
        """Events since the last call, oldest first."""
        events, self._events = self._events, []
        return events

    # ------------------------------------------------------------ internals

    def _open(self) -> bool:
        return self.state in (
            ConnectionState.NEGOTIATING,
            ConnectionState.AUTHENTICATING,
            ConnectionState.READY,
        )

    def _write(self, req: _Request, version: int, now: float) -> None:
        req.correlation_id = self._next_correlation
        self._next_correlation = (self._next_correlation + 1) & _CORRELATION_MASK
        req.version = version
        payload = protocol.encode_request(
            req.request, version, req.correlation_id, self.config.client_id
        )
        self._out += frame(payload)
        if req.expect_response:
            wait = self.config.request_timeout if req.timeout is None else req.timeout
            req.deadline = now + wait
            self._in_flight.append(req)
        else:
            self._events.append(
                Response(req.correlation_id, req.request, version, None, req.context)
            )

    def _flush_queue(self, now: float) -> None:
        while (
            self.state is ConnectionState.READY
            and self._queue
            and len(self._in_flight) < self.config.max_in_flight
        ):
            req = self._queue.popleft()
            version = req.version
            if version is None:
                version = self.versions.get(req.request.API_KEY)
                if version is None:
                    self._events.append(
                        RequestFailed(
                            -1,
                            req.request,
                            req.context,
                            LocalProtocolError(
                                f"the broker does not support {req.request.NAME} "
                                f"at any version this client implements"
                            ),
                            False,
                        )
                    )
                    continue
            try:
                self._write(req, version, now)
            except LocalProtocolError as exc:
                self._events.append(RequestFailed(-1, req.request, req.context, exc, False))

    def _send_api_versions(self, now: float) -> None:
        request = ApiVersionsRequest(
            client_software_name=self.config.client_software_name,
            client_software_version=self.config.client_software_version,
        )
        self._write(
            _Request(request, None, None, True, internal=True), self._api_versions_version, now
        )

    def _receive_frame(self, payload: bytes, now: float) -> None:
        correlation_id = protocol.peek_correlation_id(payload)
        if not self._in_flight:
            raise RemoteProtocolError(f"unsolicited response with correlation id {correlation_id}")
        req = self._in_flight[0]
        if correlation_id != req.correlation_id:
            raise RemoteProtocolError(
                f"response correlation id {correlation_id} does not match the oldest "
                f"request in flight ({req.correlation_id})"
            )
        self._in_flight.popleft()
        api_key = req.request.API_KEY
        assert req.version is not None
        if api_key == _API_VERSIONS and req.internal:
            self._on_api_versions(payload, req.version, now)
            return
        _, response = protocol.decode_response(
            api_key, req.version, payload, self.config.max_frame_size
        )
        if req.internal:
            self._on_sasl(response, now)
        else:
            self._events.append(
                Response(req.correlation_id, req.request, req.version, response, req.context)
            )

    def _on_api_versions(self, payload: bytes, version: int, now: float) -> None:
        try:
            _, response = protocol.decode_response(_API_VERSIONS, version, payload)
        except RemoteProtocolError:
            if version == 0:
                raise
            # A broker that does not know our version answers in v0 (KIP-511).
            _, response = protocol.decode_response(_API_VERSIONS, 0, payload)
        assert isinstance(response, ApiVersionsResponse)
        if response.error_code == _UNSUPPORTED_VERSION and version > 0:
            theirs = {k.api_key: k.max_version for k in response.api_keys}
            retry = min(theirs.get(_API_VERSIONS, 0), version - 1)
            self._api_versions_version = retry
            self._send_api_versions(now)
            return
        if response.error_code != 0:
            raise RemoteProtocolError(f"ApiVersions failed with error code {response.error_code}")
        self.broker_versions = {
            k.api_key: (k.min_version, k.max_version) for k in response.api_keys
        }
        self.versions = protocol.negotiate_versions(
            self.broker_versions, include_unstable=self.config.include_unstable_versions
        )
        if self._sasl_factory is None:
            self._become_ready()
            return
        self.state = ConnectionState.AUTHENTICATING
        self._sasl = self._sasl_factory()
        handshake = SaslHandshakeRequest(mechanism=self._sasl.name)
        self._write(_Request(handshake, None, None, True, internal=True), 1, now)

    def _on_sasl(self, response: Message, now: float) -> None:
        sasl = self._sasl
        assert sasl is not None
        if isinstance(response, SaslHandshakeResponse):
            if response.error_code != 0:
                raise SaslAuthenticationError(
                    f"the broker does not accept SASL mechanism {sasl.name} "
                    f"(error {response.error_code}; it offers {', '.join(response.mechanisms)})"
                )
            self._send_sasl_bytes(sasl.first_message(), now)
            return
        assert isinstance(response, SaslAuthenticateResponse)
        if response.error_code != 0:
            raise SaslAuthenticationError(
                f"SASL {sasl.name} authentication failed: "
                f"{response.error_message or f'error {response.error_code}'}"
            )
        reply = sasl.receive(response.auth_bytes)
        if reply is not None:
            self._send_sasl_bytes(reply, now)
        elif sasl.complete:
            self._become_ready()

    def _send_sasl_bytes(self, data: bytes, now: float) -> None:
        version = min(self.versions.get(SaslAuthenticateRequest.API_KEY, 0), 2)
        request = SaslAuthenticateRequest(auth_bytes=data)
        self._write(_Request(request, None, None, True, internal=True), version, now)

    def _become_ready(self) -> None:
        self.state = ConnectionState.READY
        self._failures = 0
        self._connect_deadline = None
        self._events.append(Ready(dict(self.versions), dict(self.broker_versions)))

    def _fail_all(self, requests: deque[_Request], error: KafkaSansioError, written: bool) -> None:
        while requests:
            req = requests.popleft()
            if not req.internal:
                self._events.append(
                    RequestFailed(req.correlation_id, req.request, req.context, error, written)
                )

    def _drop(self, now: float, error: KafkaSansioError, timed_out: _Request | None = None) -> None:
        """Tear the connection down after ``error``; queued requests survive."""
        if timed_out is not None:
            self._in_flight.remove(timed_out)
            if not timed_out.internal:
                self._events.append(
                    RequestFailed(
                        timed_out.correlation_id, timed_out.request, timed_out.context, error, True
                    )
                )
            error = ConnectionLostError(f"connection closed after a request timed out: {error}")
        self._fail_all(self._in_flight, error, written=True)
        if isinstance(error, SaslAuthenticationError):
            # Credentials will not get better by retrying fast; fail what waits too.
            self._fail_all(self._queue, error, written=False)
        self.state = ConnectionState.DISCONNECTED
        self._connect_deadline = None
        self._sasl = None
        self._out.clear()
        self.reconnect_at = now + self.config.reconnect_backoff.delay(
            self._failures, self._random()
        )
        self._failures += 1
        self._events.append(ConnectionClosed(error))
