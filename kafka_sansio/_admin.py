"""The admin core: create, delete and describe topics, add partitions, list offsets.

:class:`AdminCore` wraps a :class:`ClientCore` and is driven like every core
(``commands``, ``connection_made``, ``data_received``, ``connection_lost``,
``get_timer``, ``handle_timer``).  Each user call takes ``now`` and an
optional timeout, queues the requests it needs and returns an int token; its
outcome comes out of :meth:`AdminCore.events` as one
:class:`~kafka_sansio._admin_types.AdminResult` carrying that token.

Routing and retries follow the Java Admin client:

- topic creation, deletion and new partitions go to the controller the last
  Metadata answer named (in KRaft mode any broker, which forwards them);
  NOT_CONTROLLER and THROTTLING_QUOTA_EXCEEDED answers, and lost connections,
  are retried after a metadata refresh and a backoff;
- describe calls go to the least loaded broker; a topic whose leader is
  still being elected (LEADER_NOT_AVAILABLE) is asked for again;
- ``list_offsets`` goes to each partition's leader; leader moves, fenced or
  unknown epochs and a topic the broker has not heard of yet are retried
  after a metadata refresh;

each until the call's deadline (``now + timeout``, default
``AdminConfig.default_api_timeout``), which :meth:`AdminCore.get_timer`
includes.  Items still unanswered at the deadline fail with
:class:`RequestTimedOutError` (the last retriable error as its cause).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from ._admin_types import (
    AdminResult,
    ClusterDescription,
    NewTopic,
    PartitionDescription,
    TopicCreated,
    TopicDescription,
    TopicListing,
)
from ._client import BrokerMetadata, ClientConfig, ClientCore, ClientOwner
from ._connection import (
    ConnectionLostError,
    RequestFailed,
    RequestTimedOutError,
    Response,
)
from ._errors import KafkaSansioError, LocalProtocolError, RemoteProtocolError
from ._events import ClientError
from ._messages.create_partitions import (
    CreatePartitionsRequest,
    CreatePartitionsResponse,
    CreatePartitionsTopic,
)
from ._messages.create_topics import (
    CreatableReplicaAssignment,
    CreatableTopic,
    CreatableTopicConfig,
    CreateTopicsRequest,
    CreateTopicsResponse,
)
from ._messages.delete_topics import DeleteTopicsRequest, DeleteTopicsResponse, DeleteTopicState
from ._messages.describe_cluster import DescribeClusterRequest, DescribeClusterResponse
from ._messages.list_offsets import (
    ListOffsetsPartition,
    ListOffsetsRequest,
    ListOffsetsResponse,
    ListOffsetsTopic,
)
from ._messages.metadata import MetadataRequest, MetadataRequestTopic, MetadataResponse
from ._types import IsolationLevel, OffsetAndTimestamp, TopicPartition
from ._wire import Message
from .errors import exception_for_code

__all__ = ["AdminConfig", "AdminCore", "AdminEvent"]

AdminEvent = AdminResult[Any] | ClientError

_NOT_CONTROLLER = 41
_THROTTLED = 89
_LEADER_NOT_AVAILABLE = 5
_UNKNOWN_TOPIC = 3
_TO_CONTROLLER = frozenset({"create_topics", "delete_topics", "create_partitions"})
_PER_ITEM = frozenset(
    {"create_topics", "delete_topics", "create_partitions", "describe_topics", "list_offsets"}
)
#: Connection-level failures worth another attempt.
_TRANSIENT = (ConnectionLostError, RequestTimedOutError, RemoteProtocolError)
#: Controller answers for one topic that a retry may cure.
_CONTROLLER_RETRY = frozenset({_NOT_CONTROLLER, _THROTTLED})
#: ListOffsets partition errors cured by a metadata refresh and a retry.
_LEADER_RETRY = frozenset({3, 5, 6, 9, 56, 74, 75, 78, 100, 103})


@dataclass(frozen=True, slots=True)
class AdminConfig:
    """Admin settings (seconds; defaults follow the Java Admin client)."""

    client: ClientConfig = field(default_factory=ClientConfig)
    #: Deadline of a call given no timeout (``default.api.timeout.ms``).
    default_api_timeout: float = 60.0


@dataclass(slots=True)
class _Call:
    """One user call in progress."""

    token: int
    kind: str
    deadline: float
    #: Items still to be answered (topic name or partition) -> what to ask for them.
    pending: dict[Any, Any]
    #: Item -> answer or exception, in the order the user listed them.
    results: dict[Any, Any] = field(default_factory=dict)
    order: list[Any] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)
    #: Requests of this call awaiting an answer: attempt number -> (node, items asked).
    sent: dict[int, tuple[int, list[Any]]] = field(default_factory=dict)
    attempts: int = 0
    retry_at: float = 0.0
    failures: int = 0
    #: Do not route before a metadata answer newer than this version arrived.
    after_metadata: int = -1
    last_error: dict[Any, KafkaSansioError] = field(default_factory=dict)
    #: Calls with one answer (not per item) keep it here.
    value: Any = None
    started_version: int = 0


class AdminCore(ClientOwner):
    """A Kafka admin client without I/O (see the module docstring).

    ``random`` returns floats in ``[0, 1)`` (backoff jitter).  Every method
    that takes ``now`` may queue commands: drain :meth:`commands` after each.
    """

    def __init__(self, config: AdminConfig | ClientConfig, random: Callable[[], float]) -> None:
        if isinstance(config, ClientConfig):
            config = AdminConfig(client=config)
        self.config = config
        self._random = random
        self.client = ClientCore(config.client, random)
        self.client.add_metadata_listener(self._update)
        self._calls: dict[int, _Call] = {}
        self._events: list[AdminEvent] = []
        self._next_token = 1
        self._now = 0.0
        self._closed = False

    # ------------------------------------------------------------ driver side

    def get_timer(self) -> float | None:
        """The next absolute deadline: the client's, a call's retry, or a call's deadline."""
        deadlines = []
        t = self.client.get_timer()
        if t is not None:
            deadlines.append(t)
        for call in self._calls.values():
            deadlines.append(call.deadline)
            if call.retry_at > self._now:
                deadlines.append(call.retry_at)
        return min(deadlines) if deadlines else None

    def handle_timer(self, now: float) -> None:
        """Service every deadline that has passed: expired calls finish, retries go out."""
        self.client.handle_timer(now)
        for call in list(self._calls.values()):
            if now >= call.deadline:
                self._expire(call)
        self._update(now)

    def events(self) -> list[AdminEvent]:
        """Results (and client errors) since the last call, oldest first."""
        events, self._events = self._events, []
        return events

    def pending(self) -> int:
        """How many calls have not produced their result yet."""
        return len(self._calls)

    # ------------------------------------------------------------ user side

    def create_topics(
        self,
        topics: Iterable[NewTopic | str],
        now: float,
        timeout: float | None = None,
        *,
        validate_only: bool = False,
    ) -> int:
        """Create topics; the result's value is ``{name: TopicCreated | exception}``.

        With ``validate_only`` the controller checks the request and says what
        it would create, creating nothing.
        """
        wanted: dict[str, NewTopic] = {}
        for t in topics:
            topic = NewTopic(t) if isinstance(t, str) else t
            _check_name(topic.name)
            if topic.name in wanted:
                raise LocalProtocolError(f"topic {topic.name!r} is listed twice")
            if topic.assignments is not None and (
                topic.partitions != -1 or topic.replication_factor != -1
            ):
                raise LocalProtocolError("give assignments or counts, not both")
            wanted[topic.name] = topic
        return self._start("create_topics", wanted, now, timeout, validate_only=validate_only)

    def delete_topics(self, topics: Iterable[str], now: float, timeout: float | None = None) -> int:
        """Delete topics; the value is ``{name: None | exception}`` (None: deleted)."""
        wanted: dict[str, None] = {}
        for name in topics:
            _check_name(name)
            wanted[name] = None
        return self._start("delete_topics", wanted, now, timeout)

    def create_partitions(
        self,
        new_totals: Mapping[str, int],
        now: float,
        timeout: float | None = None,
        *,
        validate_only: bool = False,
    ) -> int:
        """Grow topics to these partition counts; value ``{name: None | exception}``."""
        wanted: dict[str, int] = {}
        for name, total in new_totals.items():
            _check_name(name)
            if total < 1:
                raise LocalProtocolError(f"partition count {total} for {name!r} is not positive")
            wanted[name] = total
        return self._start("create_partitions", wanted, now, timeout, validate_only=validate_only)

    def list_offsets(
        self,
        specs: Mapping[TopicPartition, int],
        now: float,
        timeout: float | None = None,
        *,
        isolation_level: IsolationLevel = IsolationLevel.READ_UNCOMMITTED,
    ) -> int:
        """Offsets per partition: value ``{tp: OffsetAndTimestamp | None | exception}``.

        A spec is ``EARLIEST`` (-2), ``LATEST`` (-1), ``MAX_TIMESTAMP`` (-3)
        or a timestamp in milliseconds (the first offset at or after it;
        None when no record is that recent).  Asked of each leader.
        """
        wanted: dict[TopicPartition, int] = {}
        for tp, spec in specs.items():
            tp = TopicPartition(*tp)
            _check_name(tp.topic)
            if tp.partition < 0 or spec < -3:
                raise LocalProtocolError(f"bad list_offsets request {tp}: {spec}")
            wanted[tp] = spec
        token = self._start(
            "list_offsets", wanted, now, timeout, isolation_level=int(isolation_level), lazy=True
        )
        self._update_topics(now)
        self._update(now)
        return token

    def describe_cluster(self, now: float, timeout: float | None = None) -> int:
        """Cluster id, controller and brokers: value :class:`ClusterDescription`."""
        return self._start("describe_cluster", {}, now, timeout)

    def describe_topics(
        self, topics: Iterable[str], now: float, timeout: float | None = None
    ) -> int:
        """Partitions, leaders, replicas, ISR: value ``{name: TopicDescription | exception}``."""
        wanted: dict[str, None] = {}
        for name in topics:
            _check_name(name)
            wanted[name] = None
        return self._start("describe_topics", wanted, now, timeout)

    def list_topics(
        self, now: float, timeout: float | None = None, *, include_internal: bool = False
    ) -> int:
        """Every topic: value ``{name: TopicListing}`` sorted by name."""
        return self._start("list_topics", {}, now, timeout, include_internal=include_internal)

    def close(self) -> None:
        """Fail every unfinished call (its result is emitted) and close every connection."""
        if self._closed:
            return
        self._closed = True
        for call in list(self._calls.values()):
            error = LocalProtocolError("the admin client was closed")
            for key in list(call.pending):
                call.results[key] = error
            call.pending.clear()
            self._finish(call, error)
        self.client.close()

    # ------------------------------------------------------------ calls

    def _start(
        self,
        kind: str,
        items: dict[Any, Any],
        now: float,
        timeout: float | None,
        *,
        lazy: bool = False,
        **options: Any,
    ) -> int:
        if self._closed:
            raise LocalProtocolError("the admin client is closed")
        if timeout is not None and timeout < 0:
            raise LocalProtocolError("timeout must be >= 0")
        token = self._next_token
        self._next_token += 1
        deadline = now + (self.config.default_api_timeout if timeout is None else timeout)
        call = _Call(token, kind, deadline, dict(items), order=list(items), options=options)
        call.started_version = self.client.metadata.version
        self._calls[token] = call
        if kind in _PER_ITEM and not items:
            self._finish(call, None)
            return token
        if not lazy:
            self._update(now)
        return token

    def _update(self, now: float) -> None:
        """Send what every call in progress needs now.  Runs after every input."""
        if self._closed:
            return
        self._now = now
        self.client.maybe_update_metadata(now)
        for call in list(self._calls.values()):
            if self._calls.get(call.token) is not call or now < call.retry_at:
                continue
            self._abandon_stranded(call)
            if call.kind == "list_offsets":
                self._send_list_offsets(call, now)
            elif not call.sent:
                self._send(call, now)
        for error in self.client.errors:
            self._events.append(ClientError(error))
        self.client.errors.clear()

    def _send(self, call: _Call, now: float) -> None:
        if call.kind in _TO_CONTROLLER:
            node = self._controller(call, now)
        else:
            node = self.client.least_loaded_node(now)
        if node is None:
            # Every broker is backing off: the metadata request's timer waits for the
            # first reconnect, and its answer runs _update again.
            self.client.request_metadata(now)
            return
        request = self._request(call, now)
        keys = list(call.pending)
        attempt = self._attempt(call, node, keys)

        def handler(
            result: Response | RequestFailed, now: float, call: _Call = call, keys: list[Any] = keys
        ) -> None:
            if call.sent.pop(attempt, None) is not None and self._calls.get(call.token) is call:
                self._on_answer(call, keys, result, now)

        self.client.send(node, request, now, handler)

    def _attempt(self, call: _Call, node: int, keys: list[Any]) -> int:
        call.attempts += 1
        call.sent[call.attempts] = (node, keys)
        return call.attempts

    def _abandon_stranded(self, call: _Call) -> None:
        """Stop waiting for requests queued on a node that is down and no longer the target.

        A request waits on its connection until that connects; when the
        broker is gone from the metadata (or no longer the controller or the
        leader), the call is routed afresh instead, as the Java Admin does.
        An answer to the abandoned request, should one come, is ignored.
        """
        meta = self.client.metadata
        for attempt, (node, keys) in list(call.sent.items()):
            if self.client.node_ready(node) or not meta.brokers:
                continue
            if call.kind == "list_offsets":
                stranded = any(meta.leader(tp) != node for tp in keys)
            elif call.kind in _TO_CONTROLLER:
                stranded = node not in meta.brokers or (
                    meta.controller_id in meta.brokers and meta.controller_id != node
                )
            else:
                stranded = node not in meta.brokers
            if stranded:
                del call.sent[attempt]

    def _controller(self, call: _Call, now: float) -> int | None:
        meta = self.client.metadata
        if meta.version <= call.after_metadata or meta.version == 0:
            self.client.request_metadata(now)
            return None
        if meta.controller_id in meta.brokers:
            return meta.controller_id
        return self.client.least_loaded_node(now)

    def _request(self, call: _Call, now: float) -> Message:
        timeout_ms = max(
            1, int(min(call.deadline - now, self.config.client.request_timeout) * 1000)
        )
        if call.kind == "create_topics":
            topics = []
            for t in call.pending.values():
                assignments = [
                    CreatableReplicaAssignment(partition_index=i, broker_ids=list(brokers))
                    for i, brokers in enumerate(t.assignments or ())
                ]
                topics.append(
                    CreatableTopic(
                        name=t.name,
                        num_partitions=t.partitions,
                        replication_factor=t.replication_factor,
                        assignments=assignments,
                        configs=[
                            CreatableTopicConfig(name=k, value=v) for k, v in t.configs.items()
                        ],
                    )
                )
            return CreateTopicsRequest(
                topics=topics, timeout_ms=timeout_ms, validate_only=call.options["validate_only"]
            )
        if call.kind == "delete_topics":
            names = list(call.pending)
            return DeleteTopicsRequest(
                topics=[DeleteTopicState(name=n) for n in names],
                topic_names=names,
                timeout_ms=timeout_ms,
            )
        if call.kind == "create_partitions":
            return CreatePartitionsRequest(
                topics=[
                    CreatePartitionsTopic(name=n, count=c, assignments=None)
                    for n, c in call.pending.items()
                ],
                timeout_ms=timeout_ms,
                validate_only=call.options["validate_only"],
            )
        if call.kind == "describe_cluster" and not call.options.get("use_metadata"):
            return DescribeClusterRequest()
        if call.kind == "describe_topics":
            return MetadataRequest(
                topics=[MetadataRequestTopic(name=n) for n in call.pending],
                allow_auto_topic_creation=False,
            )
        if call.kind == "list_topics":
            return MetadataRequest(topics=None, allow_auto_topic_creation=False)
        return MetadataRequest(topics=[], allow_auto_topic_creation=False)

    def _on_answer(
        self, call: _Call, keys: list[Any], result: Response | RequestFailed, now: float
    ) -> None:
        if isinstance(result, RequestFailed):
            error = result.error
            if (
                call.kind == "describe_cluster"
                and isinstance(error, LocalProtocolError)
                and not call.options.get("use_metadata")
            ):
                # A broker without DescribeCluster: its Metadata answer says the same.
                call.options["use_metadata"] = True
                self._update(now)
                return
            if isinstance(error, _TRANSIENT):
                for key in keys:
                    call.last_error[key] = error
                call.last_error[None] = error
                self._retry(call, now)
                return
            for key in keys:
                if key in call.pending:
                    del call.pending[key]
                    call.results[key] = error
            self._finish(call, error)
            return
        response = result.response
        retry = False
        if isinstance(response, CreateTopicsResponse):
            for r in response.topics:
                created = TopicCreated(
                    r.name,
                    _topic_id(r.topic_id),
                    r.num_partitions,
                    r.replication_factor,
                    {c.name: c.value for c in r.configs or ()},
                )
                retry |= self._item(call, r.name, r.error_code, r.error_message, created)
        elif isinstance(response, DeleteTopicsResponse):
            for d in response.responses:
                name = d.name if d.name is not None else ""
                retry |= self._item(call, name, d.error_code, d.error_message, None)
        elif isinstance(response, CreatePartitionsResponse):
            for p in response.results:
                retry |= self._item(call, p.name, p.error_code, p.error_message, None)
        elif isinstance(response, DescribeClusterResponse):
            if response.error_code:
                error = exception_for_code(response.error_code, response.error_message)
                if error.retriable:
                    call.last_error[None] = error
                    retry = True
                else:
                    self._finish(call, error)
                    return
            else:
                call.value = ClusterDescription(
                    response.cluster_id,
                    response.controller_id if response.controller_id >= 0 else None,
                    tuple(
                        BrokerMetadata(b.broker_id, b.host, b.port, b.rack)
                        for b in sorted(response.brokers, key=lambda b: b.broker_id)
                    ),
                )
        elif isinstance(response, MetadataResponse):
            retry = self._on_metadata_answer(call, response)
        else:
            error = RemoteProtocolError(f"unexpected answer {type(response).__name__}")
            self._finish(call, error)
            return
        if retry:
            self._retry(call, now)
            return
        if any(key in call.pending for key in keys):
            # The broker did not answer for some item: ask again.
            self._retry(call, now)
        elif call.order or call.value is not None:
            self._finish(call, None)

    def _item(
        self,
        call: _Call,
        key: str,
        code: int,
        message: str | None,
        value: Any,
    ) -> bool:
        """Record the answer for one topic; True when it needs another attempt."""
        if key not in call.pending:
            return False
        if code in _CONTROLLER_RETRY:
            call.last_error[key] = exception_for_code(code, message)
            if code == _NOT_CONTROLLER:
                call.after_metadata = self.client.metadata.version
            return True
        del call.pending[key]
        call.results[key] = exception_for_code(code, message) if code else value
        return False

    def _on_metadata_answer(self, call: _Call, response: MetadataResponse) -> bool:
        if call.kind == "describe_cluster":
            call.value = ClusterDescription(
                response.cluster_id,
                response.controller_id if response.controller_id >= 0 else None,
                tuple(
                    BrokerMetadata(b.node_id, b.host, b.port, b.rack)
                    for b in sorted(response.brokers, key=lambda b: b.node_id)
                ),
            )
            return False
        if call.kind == "list_topics":
            listing = {}
            for t in response.topics:
                if t.name is None or t.error_code:
                    continue
                if t.is_internal and not call.options["include_internal"]:
                    continue
                listing[t.name] = TopicListing(t.name, _topic_id(t.topic_id), t.is_internal)
            call.value = dict(sorted(listing.items()))
            return False
        retry = False
        for t in response.topics:
            name = t.name
            if name is None or name not in call.pending:
                continue
            if t.error_code == _LEADER_NOT_AVAILABLE:
                call.last_error[name] = exception_for_code(t.error_code)
                retry = True
                continue
            del call.pending[name]
            if t.error_code:
                call.results[name] = exception_for_code(t.error_code)
                continue
            partitions = tuple(
                PartitionDescription(
                    p.partition_index,
                    p.leader_id if p.leader_id >= 0 else None,
                    p.leader_epoch,
                    tuple(p.replica_nodes),
                    tuple(p.isr_nodes),
                    tuple(p.offline_replicas),
                )
                for p in sorted(t.partitions, key=lambda p: p.partition_index)
            )
            call.results[name] = TopicDescription(
                name, _topic_id(t.topic_id), t.is_internal, partitions
            )
        return retry

    def _retry(self, call: _Call, now: float) -> None:
        call.retry_at = now + self.config.client.retry_backoff.delay(call.failures, self._random())
        call.failures += 1
        self.client.request_metadata(now)

    # ------------------------------------------------------------ list_offsets

    def _update_topics(self, now: float) -> None:
        topics: set[str] = set()
        for call in self._calls.values():
            if call.kind == "list_offsets":
                topics.update(tp.topic for tp in call.pending)
        self.client.set_topics(topics, now)

    def _send_list_offsets(self, call: _Call, now: float) -> None:
        meta = self.client.metadata
        if meta.version <= call.after_metadata:
            # A leader answered that it is not (any more): route after fresh metadata.
            self.client.request_metadata(now)
            return
        by_node: dict[int, dict[TopicPartition, int]] = {}
        busy = {tp for _, keys in call.sent.values() for tp in keys}
        for tp, spec in list(call.pending.items()):
            if tp in busy:
                continue
            code = meta.topic_errors.get(tp.topic)
            if code is not None and code not in _LEADER_RETRY:
                del call.pending[tp]
                call.results[tp] = exception_for_code(code)
                continue
            leader = meta.leader(tp)
            if leader is None:
                if (
                    tp.topic in meta.topic_ids
                    and tp not in meta.partitions
                    and meta.version > call.started_version
                ):
                    # The topic is known, fresh metadata came, and it has no such partition.
                    del call.pending[tp]
                    call.results[tp] = exception_for_code(
                        _UNKNOWN_TOPIC, f"{tp.topic} has no partition {tp.partition}"
                    )
                    continue
                if code is not None:
                    call.last_error[tp] = exception_for_code(code)
                self.client.request_metadata(now)
                continue
            by_node.setdefault(leader, {})[tp] = spec
        if not call.pending:
            self._finish_items(call)
            return
        for node_id, wanted in by_node.items():
            attempt = self._attempt(call, node_id, list(wanted))
            topics: dict[str, list[ListOffsetsPartition]] = {}
            for tp, spec in wanted.items():
                pm = meta.partitions.get(tp)
                topics.setdefault(tp.topic, []).append(
                    ListOffsetsPartition(
                        partition_index=tp.partition,
                        current_leader_epoch=-1 if pm is None else pm.leader_epoch,
                        timestamp=spec,
                    )
                )
            request = ListOffsetsRequest(
                replica_id=-1,
                isolation_level=call.options["isolation_level"],
                topics=[ListOffsetsTopic(name=n, partitions=ps) for n, ps in topics.items()],
                timeout_ms=int(self.config.client.request_timeout * 1000),
            )

            def handler(
                result: Response | RequestFailed,
                now: float,
                call: _Call = call,
                wanted: dict[TopicPartition, int] = wanted,
                attempt: int = attempt,
            ) -> None:
                if call.sent.pop(attempt, None) is not None and self._calls.get(call.token) is call:
                    self._on_list_offsets(call, wanted, result, now)

            self.client.send(node_id, request, now, handler)

    def _on_list_offsets(
        self,
        call: _Call,
        wanted: dict[TopicPartition, int],
        result: Response | RequestFailed,
        now: float,
    ) -> None:
        answers: dict[TopicPartition, tuple[int, int, int, int]] = {}
        response = result.response if isinstance(result, Response) else None
        if isinstance(response, ListOffsetsResponse):
            for topic in response.topics:
                for r in topic.partitions:
                    tp = TopicPartition(topic.name, r.partition_index)
                    answers[tp] = (r.error_code, r.offset, r.leader_epoch, r.timestamp)
        elif isinstance(result, RequestFailed) and not isinstance(result.error, _TRANSIENT):
            for tp in wanted:
                if tp in call.pending:
                    del call.pending[tp]
                    call.results[tp] = result.error
            self._finish_items(call)
            return
        retry = False
        for tp in wanted:
            if tp not in call.pending:
                continue
            answer = answers.get(tp)
            if answer is None or answer[0] in _LEADER_RETRY:
                if answer is not None:
                    call.last_error[tp] = exception_for_code(answer[0])
                elif isinstance(result, RequestFailed):
                    call.last_error[tp] = result.error
                retry = True
                continue
            code, offset, epoch, timestamp = answer
            del call.pending[tp]
            if code:
                call.results[tp] = exception_for_code(code)
            elif offset < 0:
                call.results[tp] = None
            else:
                call.results[tp] = OffsetAndTimestamp(
                    offset, timestamp, None if epoch < 0 else epoch
                )
        if retry:
            call.after_metadata = self.client.metadata.version
            self._retry(call, now)
        if not call.pending:
            self._finish_items(call)

    def _finish_items(self, call: _Call) -> None:
        if call.pending:
            return
        self._finish(call, None)
        self._update_topics(self._now)

    # ------------------------------------------------------------ endings

    def _expire(self, call: _Call) -> None:
        for key in list(call.pending):
            cause = call.last_error.get(key)
            error = RequestTimedOutError(
                f"{call.kind} timed out"
                + (f" (last error: {type(cause).__name__}: {cause})" if cause else "")
            )
            error.__cause__ = cause
            call.results[key] = error
        call.pending.clear()
        if call.order:
            self._finish(call, None)
        elif call.value is None:
            cause = call.last_error.get(None)
            error = RequestTimedOutError(
                f"{call.kind} timed out"
                + (f" (last error: {type(cause).__name__}: {cause})" if cause else "")
            )
            error.__cause__ = cause
            self._finish(call, error)
        else:
            self._finish(call, None)
        if call.kind == "list_offsets":
            self._update_topics(self._now)

    def _finish(self, call: _Call, error: KafkaSansioError | None) -> None:
        if self._calls.pop(call.token, None) is None:
            return
        value: Any
        if call.kind in _PER_ITEM:
            value = {key: call.results.get(key) for key in call.order}
            if error is None:
                error = next((v for v in value.values() if isinstance(v, KafkaSansioError)), None)
        else:
            value = call.value
        self._events.append(AdminResult(call.token, call.kind, value, error))


def _check_name(name: str) -> None:
    if not isinstance(name, str) or not name:
        raise LocalProtocolError(f"topic name {name!r} is not a non-empty string")


def _topic_id(topic_id: UUID | None) -> UUID | None:
    return None if topic_id is None or topic_id.int == 0 else topic_id
