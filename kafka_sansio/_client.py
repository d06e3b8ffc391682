"""The multi-broker client core shared by the consumer, producer and admin.

:class:`ClientCore` owns one :class:`BrokerConnection` per broker, the
cluster metadata cache and the routing of requests to nodes.  It is driven
like every core in this package::

    core.connection_made(node_id, now)     # the socket the core asked for is up
    core.data_received(node_id, data, now) # bytes from that socket
    core.connection_lost(node_id, now)     # it closed or failed to open
    core.handle_timer(now)                 # when now >= core.get_timer()
    for command in core.commands(): ...    # OpenConnection / SendData / CloseConnection

and after every call the driver executes :meth:`commands` in order.  Owners
(the consumer's fetch engine, a producer, an admin client) send requests with
:meth:`send` or :meth:`send_any` and get each outcome through the handler they
passed: ``handler(result, now)`` with a :class:`Response` or
:class:`RequestFailed`.

Bootstrap servers get negative node ids (-1, -2, ...) until the first
metadata answer names the real brokers; their connections are then closed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol
from uuid import UUID

from ._backoff import Backoff
from ._connection import (
    BrokerConnection,
    ConnectionClosed,
    ConnectionConfig,
    ConnectionLostError,
    ConnectionState,
    RequestFailed,
    RequestTimedOutError,
    Response,
)
from ._errors import KafkaSansioError, LocalProtocolError, RemoteProtocolError
from ._framing import DEFAULT_MAX_FRAME_SIZE
from ._messages.metadata import MetadataRequest, MetadataRequestTopic, MetadataResponse
from ._sasl import SaslMechanism
from ._types import TopicPartition
from ._wire import Message

__all__ = [
    "BrokerMetadata",
    "ClientConfig",
    "ClientCore",
    "ClientOwner",
    "CloseConnection",
    "ClusterMetadata",
    "Command",
    "DrivenCore",
    "Handler",
    "OpenConnection",
    "PartitionMetadata",
    "SendData",
    "parse_bootstrap",
]

#: Connection errors that reconnecting may cure; others are reported to the owner.
_TRANSIENT = (ConnectionLostError, RequestTimedOutError, RemoteProtocolError)

#: Error codes in a Metadata answer that mean "ask again a little later".
_RETRY_METADATA = frozenset({3, 5, 6, 9, 74, 75, 100})


# ------------------------------------------------------------------ commands


@dataclass(frozen=True, slots=True)
class OpenConnection:
    """Open a TCP (or TLS) connection to this node, then call ``connection_made``."""

    node_id: int
    host: str
    port: int


@dataclass(frozen=True, slots=True)
class SendData:
    """Write these bytes to this node's socket, in order."""

    node_id: int
    data: bytes


@dataclass(frozen=True, slots=True)
class CloseConnection:
    """Close this node's socket (do not call ``connection_lost`` for it)."""

    node_id: int


Command = OpenConnection | SendData | CloseConnection
Handler = Callable[[Response | RequestFailed, float], None]


class DrivenCore(Protocol):
    """What every core (client, consumer, producer, admin) offers the code that drives it.

    A transport, or the test pump, needs nothing else: it executes
    :meth:`commands` after every call and fires :meth:`handle_timer` at
    :meth:`get_timer`.
    """

    def commands(self) -> list[Command]: ...
    def connection_made(self, node_id: int, now: float) -> None: ...
    def data_received(self, node_id: int, data: bytes, now: float) -> None: ...
    def connection_lost(self, node_id: int, now: float) -> None: ...
    def get_timer(self) -> float | None: ...
    def handle_timer(self, now: float) -> None: ...


class ClientOwner:
    """The driver side of a core that owns a :class:`ClientCore` (consumer, producer, admin).

    Socket events go to the client; then the owner reacts to what they
    changed in ``_update(now)`` (send what is due, hand out answers).
    ``get_timer`` and ``handle_timer`` stay with each owner: they add their
    own deadlines to the client's.
    """

    client: ClientCore

    def _update(self, now: float) -> None:
        raise NotImplementedError

    def commands(self) -> list[Command]:
        """What the driver must do now (open, send, close), in order."""
        return self.client.commands()

    def connection_made(self, node_id: int, now: float) -> None:
        self.client.connection_made(node_id, now)
        self._update(now)

    def data_received(self, node_id: int, data: bytes, now: float) -> None:
        self.client.data_received(node_id, data, now)
        self._update(now)

    def connection_lost(self, node_id: int, now: float) -> None:
        self.client.connection_lost(node_id, now)
        self._update(now)


def parse_bootstrap(servers: str | Iterable[str]) -> tuple[tuple[str, int], ...]:
    """``"h1:9092,h2:9093"`` (or a list of ``host:port``) to ``((host, port), ...)``.

    IPv6 literals go in brackets: ``[::1]:9092``.
    """
    items = servers.split(",") if isinstance(servers, str) else list(servers)
    result = []
    for item in items:
        item = item.strip()
        if not item:
            continue
        host, sep, port = item.rpartition(":")
        if not sep or not port.isdigit():
            raise LocalProtocolError(f"bootstrap server {item!r} is not host:port")
        host = host.strip("[]")
        result.append((host, int(port)))
    if not result:
        raise LocalProtocolError("no bootstrap servers given")
    return tuple(result)


@dataclass(frozen=True, slots=True)
class ClientConfig:
    """Settings shared by every client (seconds for durations; Java client defaults)."""

    bootstrap_servers: tuple[tuple[str, int], ...] = (("127.0.0.1", 9092),)
    client_id: str = "kafka-sansio"
    request_timeout: float = 30.0
    connect_timeout: float = 10.0
    metadata_max_age: float = 300.0
    max_in_flight: int = 5
    max_frame_size: int = DEFAULT_MAX_FRAME_SIZE
    retry_backoff: Backoff = field(default_factory=lambda: Backoff(0.1, 1.0))
    reconnect_backoff: Backoff = field(default_factory=lambda: Backoff(0.05, 1.0))
    #: Factory of a fresh SASL mechanism per connection, or None.
    sasl: Callable[[], SaslMechanism] | None = None

    def connection_config(self) -> ConnectionConfig:
        return ConnectionConfig(
            client_id=self.client_id,
            max_in_flight=self.max_in_flight,
            request_timeout=self.request_timeout,
            connect_timeout=self.connect_timeout,
            max_frame_size=self.max_frame_size,
            reconnect_backoff=self.reconnect_backoff,
        )


# ------------------------------------------------------------------ metadata


@dataclass(frozen=True, slots=True)
class BrokerMetadata:
    node_id: int
    host: str
    port: int
    rack: str | None = None


@dataclass(frozen=True, slots=True)
class PartitionMetadata:
    """Leader (-1 if none), leader epoch, replicas and the error the broker reported."""

    leader: int
    leader_epoch: int
    replicas: tuple[int, ...] = ()
    isr: tuple[int, ...] = ()
    error_code: int = 0


@dataclass(slots=True)
class ClusterMetadata:
    """What the last Metadata answer said.  Replaced field by field on each update."""

    cluster_id: str | None = None
    controller_id: int = -1
    brokers: dict[int, BrokerMetadata] = field(default_factory=dict)
    topic_ids: dict[str, UUID] = field(default_factory=dict)
    partitions: dict[TopicPartition, PartitionMetadata] = field(default_factory=dict)
    #: Topics the broker said do not exist (UNKNOWN_TOPIC_OR_PARTITION), with that code.
    topic_errors: dict[str, int] = field(default_factory=dict)
    #: How many answers have been applied; owners compare it to notice changes.
    version: int = 0

    def partitions_of(self, topic: str) -> list[int]:
        return sorted(tp.partition for tp in self.partitions if tp.topic == topic)

    def leader(self, tp: TopicPartition) -> int | None:
        """The leader's node id, or None when unknown or leaderless."""
        meta = self.partitions.get(tp)
        if meta is None or meta.leader < 0 or meta.leader not in self.brokers:
            return None
        return meta.leader

    def topic_names(self) -> dict[UUID, str]:
        return {uuid: name for name, uuid in self.topic_ids.items()}


@dataclass(slots=True)
class _Node:
    node_id: int
    host: str
    port: int
    conn: BrokerConnection
    #: The driver was told to open a socket and has not reported it gone.
    socket_open: bool = False


class ClientCore:
    """Connections, metadata and routing for one client (see the module docstring)."""

    def __init__(self, config: ClientConfig, random: Callable[[], float]) -> None:
        self.config = config
        self._random = random
        self._conn_config = config.connection_config()
        self._nodes: dict[int, _Node] = {}
        for i, (host, port) in enumerate(config.bootstrap_servers):
            self._add_node(-1 - i, host, port)
        self._commands: list[Command] = []
        self.metadata = ClusterMetadata()
        #: Topics whose metadata owners need; None means every topic.
        self._topics: set[str] | None = set()
        self._metadata_requested = True
        self._metadata_in_flight = False
        self._metadata_failures = 0
        self._metadata_next = 0.0  # earliest time of the next metadata request
        self._last_metadata = float("-inf")
        self._metadata_listeners: list[Callable[[float], None]] = []
        self._bootstrap_cursor = 0
        #: Fatal errors the owner should surface (e.g. authentication failures).
        self.errors: list[KafkaSansioError] = []
        self.closed = False

    # ------------------------------------------------------------ driver side

    def commands(self) -> list[Command]:
        """Commands for the driver since the last call, in order; execute them all."""
        for node in self._nodes.values():
            data = node.conn.data_to_send()
            if data:
                self._commands.append(SendData(node.node_id, data))
        commands, self._commands = self._commands, []
        return commands

    def connection_made(self, node_id: int, now: float) -> None:
        """The socket for ``node_id`` is open; the handshake starts."""
        node = self._nodes.get(node_id)
        if node is None or node.conn.state is not ConnectionState.CONNECTING:
            self._commands.append(CloseConnection(node_id))
            return
        node.conn.connection_made(now)
        self._dispatch(node, now)

    def data_received(self, node_id: int, data: bytes, now: float) -> None:
        """Bytes arrived on ``node_id``'s socket."""
        node = self._nodes.get(node_id)
        if node is None:
            return
        node.conn.data_received(data, now)
        self._dispatch(node, now)

    def connection_lost(self, node_id: int, now: float) -> None:
        """``node_id``'s socket closed, failed, or could not be opened."""
        node = self._nodes.get(node_id)
        if node is None:
            return
        node.socket_open = False
        node.conn.connection_lost(now)
        self._dispatch(node, now)

    def get_timer(self) -> float | None:
        """The next absolute deadline of any connection, reconnect or metadata refresh."""
        deadlines: list[float] = []
        for node in self._nodes.values():
            t = node.conn.get_timer()
            if t is not None:
                deadlines.append(t)
            if node.conn.state is ConnectionState.DISCONNECTED and node.conn.queued:
                deadlines.append(node.conn.reconnect_at)
        if not self._metadata_in_flight and not self.closed:
            deadlines.append(self._metadata_deadline())
        return min(deadlines) if deadlines else None

    def handle_timer(self, now: float) -> None:
        """Expire timeouts, reconnect nodes with waiting requests, refresh metadata."""
        for node in list(self._nodes.values()):
            node.conn.handle_timer(now)
            self._dispatch(node, now)
            if (
                node.conn.state is ConnectionState.DISCONNECTED
                and node.conn.queued
                and now >= node.conn.reconnect_at
            ):
                self._connect(node, now)
        self.maybe_update_metadata(now)

    # ------------------------------------------------------------ owner side

    def add_metadata_listener(self, listener: Callable[[float], None]) -> None:
        """Call ``listener(now)`` after every applied metadata answer."""
        self._metadata_listeners.append(listener)

    def set_topics(self, topics: Iterable[str] | None, now: float) -> None:
        """The topics whose metadata is needed (None: all); refreshes if new ones appear."""
        wanted = None if topics is None else set(topics)
        if wanted != self._topics:
            grows = wanted is None or self._topics is None or not wanted <= self._topics
            self._topics = wanted
            if grows:
                self.request_metadata(now)

    def request_metadata(self, now: float) -> None:
        """Ask for a metadata refresh as soon as backoff allows."""
        self._metadata_requested = True
        self.maybe_update_metadata(now)

    def node_ready(self, node_id: int) -> bool:
        node = self._nodes.get(node_id)
        return node is not None and node.conn.state is ConnectionState.READY

    def api_version(self, node_id: int, api_key: int) -> int | None:
        """The negotiated version of ``api_key`` on a READY node, else None."""
        node = self._nodes.get(node_id)
        if node is None or node.conn.state is not ConnectionState.READY:
            return None
        return node.conn.versions.get(api_key)

    def in_flight(self, node_id: int) -> int:
        node = self._nodes.get(node_id)
        return 0 if node is None else node.conn.in_flight + node.conn.queued

    def send(
        self,
        node_id: int,
        request: Message,
        now: float,
        handler: Handler,
        *,
        version: int | None = None,
        expect_response: bool = True,
        timeout: float | None = None,
    ) -> None:
        """Send ``request`` to a broker; ``handler(result, now)`` gets the outcome.

        Connects first if needed (respecting reconnect backoff).  An unknown
        node fails at once through the handler.  ``timeout`` replaces the
        request timeout for this request (see :meth:`BrokerConnection.send`).
        """
        node = self._nodes.get(node_id)
        if node is None or self.closed:
            broker = self.metadata.brokers.get(node_id)
            if broker is None or self.closed:
                reason = "the client is closed" if self.closed else f"unknown node {node_id}"
                handler(RequestFailed(-1, request, handler, LocalProtocolError(reason), False), now)
                return
            node = self._add_node(node_id, broker.host, broker.port)
        node.conn.send(
            request,
            now,
            version=version,
            context=handler,
            expect_response=expect_response,
            timeout=timeout,
        )
        if node.conn.state is ConnectionState.DISCONNECTED and now >= node.conn.reconnect_at:
            self._connect(node, now)
        self._dispatch(node, now)

    def ensure_connected(self, node_id: int, now: float) -> None:
        """Start connecting to a known broker if it is disconnected and backoff allows."""
        node = self._nodes.get(node_id)
        if node is None:
            broker = self.metadata.brokers.get(node_id)
            if broker is None:
                return
            node = self._add_node(node_id, broker.host, broker.port)
        if node.conn.state is ConnectionState.DISCONNECTED and now >= node.conn.reconnect_at:
            self._connect(node, now)

    def reconnect_at(self, node_id: int) -> float | None:
        """When a disconnected node may be tried again (None if not disconnected)."""
        node = self._nodes.get(node_id)
        if node is None or node.conn.state is not ConnectionState.DISCONNECTED:
            return None
        return node.conn.reconnect_at

    def least_loaded_node(self, now: float) -> int | None:
        """A node to send a cluster-wide request to: a ready one with the fewest requests.

        Falls back to a node that is connecting, then to one whose reconnect
        backoff has passed; None if every node is backing off.
        """
        candidates = self._candidate_nodes()
        best: tuple[int, int] | None = None
        for node in candidates:
            if node.conn.state is ConnectionState.READY:
                load = node.conn.in_flight + node.conn.queued
                if best is None or load < best[0]:
                    best = (load, node.node_id)
        if best is not None:
            return best[1]
        for node in candidates:
            if node.conn.state in (
                ConnectionState.CONNECTING,
                ConnectionState.NEGOTIATING,
                ConnectionState.AUTHENTICATING,
            ):
                return node.node_id
        ready = [n for n in candidates if n.conn.reconnect_at <= now]
        if not ready:
            return None
        self._bootstrap_cursor += 1
        return ready[self._bootstrap_cursor % len(ready)].node_id

    def send_any(self, request: Message, now: float, handler: Handler) -> bool:
        """Send to :meth:`least_loaded_node`; False (nothing sent) if none is usable now."""
        node_id = None if self.closed else self.least_loaded_node(now)
        if node_id is None:
            return False
        self.send(node_id, request, now, handler)
        return True

    def close(self) -> None:
        """Close every connection; pending requests fail through their handlers.

        Bytes already queued for a socket are handed to the driver first
        (``SendData`` before ``CloseConnection``).  Afterwards nothing is sent
        any more: :meth:`send` fails at once.
        """
        self.closed = True
        for node in self._nodes.values():
            # Bytes already written for a request (an acks=0 produce, a LeaveGroup)
            # still go out before the socket closes.
            data = node.conn.data_to_send()
            if data and node.socket_open:
                self._commands.append(SendData(node.node_id, data))
            node.conn.close()
            if node.socket_open:
                self._commands.append(CloseConnection(node.node_id))
                node.socket_open = False
            self._dispatch(node, 0.0)

    # ------------------------------------------------------------ metadata

    def _metadata_deadline(self) -> float:
        """When the next metadata request can go out (never earlier than a usable node)."""
        if self._metadata_requested:
            due = self._metadata_next
        else:
            due = self._last_metadata + self.config.metadata_max_age
        candidates = self._candidate_nodes()
        if candidates and all(n.conn.state is ConnectionState.DISCONNECTED for n in candidates):
            due = max(due, min(n.conn.reconnect_at for n in candidates))
        return due

    def maybe_update_metadata(self, now: float) -> None:
        """Send a Metadata request if one is due and none is in flight."""
        if self._metadata_in_flight or self.closed:
            return
        due = self._metadata_requested or now >= self._last_metadata + self.config.metadata_max_age
        if not due or now < self._metadata_next:
            return
        topics = None
        if self._topics is not None:
            topics = [MetadataRequestTopic(name=t) for t in sorted(self._topics)]
        request = MetadataRequest(topics=topics, allow_auto_topic_creation=False)
        if self.send_any(request, now, self._on_metadata):
            self._metadata_in_flight = True
            self._metadata_requested = False

    def _on_metadata(self, result: Response | RequestFailed, now: float) -> None:
        self._metadata_in_flight = False
        if isinstance(result, RequestFailed) or not isinstance(result.response, MetadataResponse):
            self._metadata_retry_later(now)
            return
        response = result.response
        meta = self.metadata
        if response.brokers:
            meta.brokers = {
                b.node_id: BrokerMetadata(b.node_id, b.host, b.port, b.rack)
                for b in response.brokers
            }
        meta.cluster_id = response.cluster_id
        meta.controller_id = response.controller_id
        retry = False
        for topic in response.topics:
            name = topic.name
            if name is None:
                continue
            if topic.error_code:
                meta.topic_errors[name] = topic.error_code
                retry = retry or topic.error_code in _RETRY_METADATA
                if topic.error_code == 3:
                    meta.topic_ids.pop(name, None)
                    for tp in [tp for tp in meta.partitions if tp.topic == name]:
                        del meta.partitions[tp]
                continue
            meta.topic_errors.pop(name, None)
            meta.topic_ids[name] = topic.topic_id
            seen = set()
            for p in topic.partitions:
                tp = TopicPartition(name, p.partition_index)
                seen.add(tp)
                meta.partitions[tp] = PartitionMetadata(
                    p.leader_id,
                    p.leader_epoch,
                    tuple(p.replica_nodes),
                    tuple(p.isr_nodes),
                    p.error_code,
                )
                retry = retry or p.leader_id < 0 or p.error_code in _RETRY_METADATA
            for tp in [tp for tp in meta.partitions if tp.topic == name and tp not in seen]:
                del meta.partitions[tp]
        if self._topics is not None:
            for tp in [tp for tp in meta.partitions if tp.topic not in self._topics]:
                del meta.partitions[tp]
        meta.version += 1
        self._last_metadata = now
        self._metadata_failures = 0
        # As the Java client's refresh backoff: an owner that keeps asking (a
        # partition the answer does not list yet) waits between requests
        # instead of sending the next one the moment this one is answered.
        self._metadata_next = now + self.config.retry_backoff.initial
        if retry:
            self._metadata_retry_later(now)
        self._forget_bootstrap_nodes(now)
        for listener in self._metadata_listeners:
            listener(now)

    def _metadata_retry_later(self, now: float) -> None:
        self._metadata_requested = True
        self._metadata_next = now + self.config.retry_backoff.delay(
            self._metadata_failures, self._random()
        )
        self._metadata_failures += 1

    def _forget_bootstrap_nodes(self, now: float) -> None:
        if not self.metadata.brokers:
            return
        for node_id in [n for n in self._nodes if n < 0]:
            node = self._nodes[node_id]
            if node.conn.in_flight or node.conn.queued:
                continue
            node.conn.close()
            if node.socket_open:
                self._commands.append(CloseConnection(node_id))
            node.conn.events()
            del self._nodes[node_id]
        # Brokers that moved address get a fresh connection.
        for node_id, broker in self.metadata.brokers.items():
            moved = self._nodes.get(node_id)
            if moved is not None and (moved.host, moved.port) != (broker.host, broker.port):
                moved.conn.connection_lost(now)
                if moved.socket_open:
                    self._commands.append(CloseConnection(node_id))
                    moved.socket_open = False
                moved.host, moved.port = broker.host, broker.port
                self._dispatch(moved, now)

    # ------------------------------------------------------------ internals

    def _candidate_nodes(self) -> list[_Node]:
        if self.metadata.brokers:
            for node_id, broker in self.metadata.brokers.items():
                if node_id not in self._nodes:
                    self._add_node(node_id, broker.host, broker.port)
            return [self._nodes[n] for n in sorted(self.metadata.brokers)]
        return [node for node_id, node in sorted(self._nodes.items()) if node_id < 0]

    def _add_node(self, node_id: int, host: str, port: int) -> _Node:
        node = _Node(
            node_id,
            host,
            port,
            BrokerConnection(self._conn_config, self._random, sasl=self.config.sasl),
        )
        self._nodes[node_id] = node
        return node

    def _connect(self, node: _Node, now: float) -> None:
        node.conn.connect(now)
        node.socket_open = True
        self._commands.append(OpenConnection(node.node_id, node.host, node.port))

    def _dispatch(self, node: _Node, now: float) -> None:
        for event in node.conn.events():
            if isinstance(event, (Response, RequestFailed)):
                handler = event.context
                assert callable(handler)
                handler(event, now)
            elif isinstance(event, ConnectionClosed):
                if node.socket_open:
                    self._commands.append(CloseConnection(node.node_id))
                    node.socket_open = False
                if event.error is not None and not isinstance(event.error, _TRANSIENT):
                    self.errors.append(event.error)
                # Whatever the cause, cluster membership may have changed.
                if node.node_id >= 0 and event.error is not None:
                    self._metadata_requested = True
