"""Classic group membership: the one place where a member's group state changes.

:class:`GroupMembership` speaks FindCoordinator, JoinGroup, SyncGroup,
Heartbeat and LeaveGroup through a :class:`ClientCore` and keeps every timer
as a deadline (:meth:`get_timer`): heartbeats go out on their interval
whatever the user does, the session runs out if the coordinator stops
answering, and a member whose owner does not poll within the max poll
interval leaves the group.

::

    UNSUBSCRIBED --subscribe--> NEEDS_JOIN --owner ready, coordinator known--> JOINING
    JOINING --MEMBER_ID_REQUIRED--> JOINING (same request with the member id)
    JOINING --joined (leader)--> ASSIGNING --metadata known--> SYNCING
    JOINING --joined (follower)--> SYNCING --assignment--> STABLE
    STABLE --heartbeat says rebalance / metadata changed--> NEEDS_JOIN
    any --UNKNOWN_MEMBER_ID / ILLEGAL_GENERATION--> NEEDS_JOIN (generation lost)
    any --FENCED_INSTANCE_ID / fatal error--> FATAL
    any --unsubscribe / leave / poll timeout--> UNSUBSCRIBED (LeaveGroup sent)

The owner (:class:`~kafka_sansio._group_consumer.GroupConsumerCore`)
supplies the subscription and decides when a join may go out (after its
revoke listener ran); it gets the assignment through :meth:`_Owner.assigned`
and lost generations through :meth:`_Owner.lost`.  Error handling follows
the Java consumer's AbstractCoordinator: coordinator errors find the
coordinator again; UNKNOWN_MEMBER_ID resets the member id, ILLEGAL_GENERATION
the generation (both lose the partitions) and rejoin; REBALANCE_IN_PROGRESS
rejoins keeping both; FENCED_INSTANCE_ID and configuration errors are fatal.

Requests go to the coordinator's broker connection, so a held JoinGroup
waits ahead of anything else sent to that broker (the Java client opens a
second connection).  A JoinGroup may be held for up to the rebalance timeout
(the max poll interval): keep ``request_timeout`` above it or the join is
retried after the connection is reset.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from ._assignors import (
    Assignment,
    Assignor,
    RebalanceProtocol,
    Subscription,
    decode_assignment,
    decode_subscription,
    encode_assignment,
    encode_subscription,
)
from ._client import ClientCore
from ._connection import RequestFailed, Response
from ._coordinator import GROUP, coordinator_answer, find_coordinator_request
from ._errors import KafkaSansioError, LocalProtocolError, RemoteProtocolError
from ._messages.find_coordinator import FindCoordinatorResponse
from ._messages.heartbeat import HeartbeatRequest, HeartbeatResponse
from ._messages.join_group import JoinGroupRequest, JoinGroupRequestProtocol, JoinGroupResponse
from ._messages.leave_group import LeaveGroupRequest, MemberIdentity
from ._messages.sync_group import (
    SyncGroupRequest,
    SyncGroupRequestAssignment,
    SyncGroupResponse,
)
from ._types import TopicPartition
from ._wire import Message
from .errors import exception_for_code

__all__ = ["GroupConfig", "GroupMembership", "MemberState"]

FIND_COORDINATOR, JOIN_GROUP, HEARTBEAT, LEAVE_GROUP, SYNC_GROUP = 10, 11, 12, 13, 14

_COORDINATOR_ERRORS = frozenset({15, 16})  # COORDINATOR_NOT_AVAILABLE, NOT_COORDINATOR
_LOADING = 14  # COORDINATOR_LOAD_IN_PROGRESS
_ILLEGAL_GENERATION = 22
_UNKNOWN_MEMBER_ID = 25
_REBALANCE_IN_PROGRESS = 27
_MEMBER_ID_REQUIRED = 79
_FENCED_INSTANCE_ID = 82
_PROTOCOL_TYPE = "consumer"


@dataclass(frozen=True, slots=True)
class GroupConfig:
    """Group settings (seconds; defaults follow the Java consumer)."""

    group_id: str
    group_instance_id: str | None = None
    session_timeout: float = 45.0
    heartbeat_interval: float = 3.0
    max_poll_interval: float = 300.0
    enable_auto_commit: bool = True
    auto_commit_interval: float = 5.0
    #: Stop after each rebalance event until ``rebalance_listener_done`` is called.
    wait_for_listener: bool = True
    rack_id: str | None = None

    def __post_init__(self) -> None:
        if not self.group_id:
            raise ValueError("group_id must not be empty")
        if self.heartbeat_interval >= self.session_timeout:
            raise ValueError("heartbeat_interval must be lower than session_timeout")
        if min(self.heartbeat_interval, self.max_poll_interval, self.auto_commit_interval) <= 0:
            raise ValueError("intervals must be positive")


class MemberState(enum.Enum):
    UNSUBSCRIBED = "unsubscribed"  #: not taking part in the group
    NEEDS_JOIN = "needs_join"  #: a JoinGroup should go out when the owner is ready
    JOINING = "joining"  #: JoinGroup in flight
    ASSIGNING = "assigning"  #: the leader waits for the metadata to compute assignments
    SYNCING = "syncing"  #: SyncGroup in flight
    STABLE = "stable"  #: a member of the current generation
    FATAL = "fatal"  #: stopped by an error that rejoining cannot cure


class _Owner(Protocol):
    def group_topics(self) -> frozenset[str]:
        """The topics this member subscribes to."""
        ...

    def owned_partitions(self) -> frozenset[TopicPartition]: ...

    def ready_to_join(self, now: float, generation_valid: bool) -> bool:
        """Called before each JoinGroup: True once revocation (or loss) is handled."""
        ...

    def assigned(
        self, assignment: Assignment, generation: int, protocol: RebalanceProtocol, now: float
    ) -> None:
        """SyncGroup succeeded with ``assignment`` for ``generation``."""
        ...

    def lost(self, now: float) -> None:
        """The generation is gone; the owned partitions may belong to someone else."""
        ...

    def fatal(self, error: KafkaSansioError, now: float) -> None: ...


#: States in which the member must poll within the max poll interval.
_POLLED = frozenset(
    {MemberState.STABLE, MemberState.NEEDS_JOIN, MemberState.SYNCING, MemberState.JOINING}
)


class GroupMembership:
    """One member of a classic consumer group (see the module docstring)."""

    def __init__(
        self,
        config: GroupConfig,
        client: ClientCore,
        assignors: list[Assignor],
        owner: _Owner,
        random: Callable[[], float],
    ) -> None:
        if not assignors:
            raise LocalProtocolError("a group member needs at least one assignor")
        self.config = config
        self.client = client
        self.assignors = assignors
        self._owner = owner
        self._random = random
        self.state = MemberState.UNSUBSCRIBED
        self.member_id = ""
        self.generation = -1
        self.leader_id = ""
        self.protocol = ""
        self.coordinator: int | None = None
        self._find_in_flight = False
        self._find_failures = 0
        self._retry_at = 0.0  # earliest next FindCoordinator / JoinGroup after an error
        self._join_failures = 0
        self._request_id = 0  # answers to older requests are ignored
        self._heartbeat_at = 0.0
        self._heartbeat_in_flight = False
        self._last_heartbeat_ok = 0.0
        self._last_poll = 0.0
        self._poll_expired = False
        self._rejoin_reason = ""
        #: Leader: the members' subscriptions from the JoinGroup answer.
        self._members: dict[str, Subscription] = {}
        #: Leader: partitions per topic when the assignment was made.
        self._assigned_snapshot: dict[str, int] = {}
        #: Leader: topics it needs metadata for (the union of the members' subscriptions).
        self._group_topics: set[str] = set()
        #: Leader: the metadata version that must be exceeded before assigning.
        self._assign_after = 0
        #: Someone (a commit, a committed() lookup) needs the coordinator.
        self._want_coordinator = False
        self._now = 0.0

    # ------------------------------------------------------------ owner side

    @property
    def rebalance_protocol(self) -> RebalanceProtocol:
        """cooperative when every configured assignor supports it (as Java decides)."""
        if all("cooperative" in a.protocols for a in self.assignors):
            return "cooperative"
        return "eager"

    def subscribe(self, now: float) -> None:
        """The subscription is set or changed: (re)join."""
        if self.state is MemberState.FATAL:
            raise LocalProtocolError("the group member stopped after a fatal error")
        self._last_poll = now
        self.request_rejoin("subscription changed", now)

    def request_rejoin(self, reason: str, now: float) -> None:
        if self.state in (MemberState.FATAL,):
            return
        if self.state in (MemberState.JOINING, MemberState.NEEDS_JOIN):
            return
        self._rejoin_reason = reason
        if self.state in (MemberState.SYNCING, MemberState.ASSIGNING):
            self._request_id += 1  # the answer of the old round is not wanted
        self.state = MemberState.NEEDS_JOIN

    def polled(self, now: float) -> None:
        """The user called poll: the max poll interval starts again."""
        self._last_poll = now
        if self._poll_expired:
            self._poll_expired = False
            if self.state is MemberState.UNSUBSCRIBED:
                self.state = MemberState.NEEDS_JOIN

    def leave(self, now: float, reason: str = "the consumer is leaving the group") -> None:
        """Send LeaveGroup (dynamic members; static members just stop) and stop taking part."""
        if self.coordinator is not None and self.member_id and self.state is not MemberState.FATAL:
            self._send_leave(now, reason)
        self._request_id += 1
        self.state = MemberState.UNSUBSCRIBED
        self._reset_generation(reset_member_id=True)

    def ensure_coordinator(self, now: float) -> None:
        """Find the coordinator even when not subscribed (commits, committed offsets)."""
        self._want_coordinator = True
        if self.coordinator is None and self.state in (
            MemberState.UNSUBSCRIBED,
            MemberState.FATAL,
        ):
            self._find_coordinator(now)

    def coordinator_lost(self, now: float) -> None:
        """A request to the coordinator failed as if it moved: find it again."""
        self._coordinator_lost(now)

    def generation_lost(self, code: int, now: float) -> None:
        """A commit found the generation gone (UNKNOWN_MEMBER_ID / ILLEGAL_GENERATION)."""
        if self.state in (MemberState.UNSUBSCRIBED, MemberState.FATAL):
            return
        self._owner.lost(now)
        self._reset_generation(reset_member_id=code == _UNKNOWN_MEMBER_ID)
        self._request_id += 1
        self.state = MemberState.NEEDS_JOIN

    def fenced(self, error: KafkaSansioError, now: float) -> None:
        """Another member took this static member's place (FENCED_INSTANCE_ID)."""
        self._fatal(error, now)

    def in_generation(self) -> bool:
        """Is the member part of a completed generation (commits can carry it)?"""
        return self.generation >= 0 and bool(self.member_id)

    # ------------------------------------------------------------ timers

    def get_timer(self) -> float | None:
        """The next deadline this member acts on in :meth:`update` (None: none)."""
        if self.state in (MemberState.UNSUBSCRIBED, MemberState.FATAL):
            return None
        deadlines: list[float] = []
        if self.state in _POLLED:
            deadlines.append(self._last_poll + self.config.max_poll_interval)
        if self.coordinator is None:
            # Otherwise the lookup waits for a connection, whose events wake us.
            if not self._find_in_flight and self._retry_at > self._now:
                deadlines.append(self._retry_at)
            return min(deadlines) if deadlines else None
        if self._heartbeating():
            # A heartbeat that is due waits for the connection (its events wake us).
            if self._heartbeat_at > self._now or (
                not self._heartbeat_in_flight and self.client.node_ready(self.coordinator)
            ):
                deadlines.append(self._heartbeat_at)
            deadlines.append(self._last_heartbeat_ok + self.config.session_timeout)
        if self.state is MemberState.NEEDS_JOIN and self._retry_at > self._now:
            deadlines.append(self._retry_at)
        at = self.client.reconnect_at(self.coordinator)
        if at is not None and at > self._now:
            deadlines.append(at)
        return min(deadlines) if deadlines else None

    def update(self, now: float) -> None:
        """Send what the state calls for; run after every input."""
        self._now = now
        state = self.state
        if state in (MemberState.UNSUBSCRIBED, MemberState.FATAL):
            return
        if state in _POLLED and now >= self._last_poll + self.config.max_poll_interval:
            # As the Java consumer: a member that does not poll leaves, so the
            # group can rebalance without waiting for its session to run out.
            self.leave(now, "consumer poll timeout has expired")
            self._owner.lost(now)
            self._poll_expired = True
            return
        brokers = self.client.metadata.brokers
        if self.coordinator is not None and brokers and self.coordinator not in brokers:
            self._coordinator_lost(now)  # its broker left the cluster
        if self.coordinator is None:
            self._find_coordinator(now)
            return
        if self._heartbeating():
            # Also while a rejoin waits for the revoke listener: the member is
            # still in its generation and must not let its session run out.
            if now >= self._last_heartbeat_ok + self.config.session_timeout:
                # No heartbeat answer for a whole session: the coordinator is gone.
                self._coordinator_lost(now)
                return
            if now >= self._heartbeat_at and not self._heartbeat_in_flight:
                self._send_heartbeat(now)
        if self.state is MemberState.NEEDS_JOIN:
            if now >= self._retry_at and self._owner.ready_to_join(now, self.in_generation()):
                self._send_join(now)
        elif self.state is MemberState.ASSIGNING:
            self._try_assign(now)

    def _heartbeating(self) -> bool:
        return self.state is MemberState.STABLE or (
            self.state is MemberState.NEEDS_JOIN and self.in_generation()
        )

    # ------------------------------------------------------------ sending

    def _send(
        self,
        api_key: int,
        build: Callable[[int], Message],
        handler: Callable[[Response | RequestFailed, float], None],
        now: float,
        timeout: float | None = None,
    ) -> bool:
        """Send to the coordinator at the version its broker speaks; False if not connected."""
        node = self.coordinator
        assert node is not None
        version = self.client.api_version(node, api_key)
        if version is None:
            self.client.ensure_connected(node, now)
            return False
        self.client.send(node, build(version), now, handler, version=version, timeout=timeout)
        return True

    def _find_coordinator(self, now: float) -> None:
        if self._find_in_flight or now < self._retry_at:
            return
        node = self.client.least_loaded_node(now)
        if node is None:
            # Every broker is backing off: look again a little later.
            self._retry_at = now + self._backoff(self._find_failures)
            return
        version = self.client.api_version(node, FIND_COORDINATOR)
        if version is None:
            self.client.ensure_connected(node, now)
            return
        request = find_coordinator_request(self.config.group_id, GROUP, version)
        self._find_in_flight = True
        self.client.send(node, request, now, self._on_find, version=version)

    def _on_find(self, result: Response | RequestFailed, now: float) -> None:
        self._find_in_flight = False
        response = result.response if isinstance(result, Response) else None
        code, node = -1, -1
        if isinstance(response, FindCoordinatorResponse):
            code, node = coordinator_answer(response)
        if code == 0 and node >= 0 and node in self.client.metadata.brokers:
            self.coordinator = node
            self._find_failures = 0
            self._retry_at = 0.0
            self._last_heartbeat_ok = now
            self.client.ensure_connected(node, now)
            return
        if code == 0 and node >= 0:
            # A broker the metadata does not list yet: refresh and ask again.
            self.client.request_metadata(now)
        elif code not in (-1, 15, 16, _LOADING):
            error = exception_for_code(code)
            if not error.retriable:
                self._fatal(error, now)
                return
        self._retry_at = now + self.client.config.retry_backoff.delay(
            self._find_failures, self._random()
        )
        self._find_failures += 1

    def _coordinator_lost(self, now: float) -> None:
        """Find the coordinator again; a member of a generation stays one until told otherwise."""
        self.coordinator = None
        self._heartbeat_in_flight = False
        if self.state in (MemberState.JOINING, MemberState.SYNCING, MemberState.ASSIGNING):
            self._request_id += 1
            self.state = MemberState.NEEDS_JOIN

    def _subscription(self, assignor: Assignor) -> Subscription:
        topics = self._owner.group_topics()
        owned = self._owner.owned_partitions()
        eager = self.rebalance_protocol == "eager"
        return Subscription(
            topics=tuple(sorted(topics)),
            user_data=assignor.subscription_user_data(topics, owned, self.generation),
            # Eager members have revoked everything before they join.
            owned_partitions=() if eager else tuple(sorted(owned)),
            generation_id=self.generation,
            rack_id=self.config.rack_id,
        )

    def _send_join(self, now: float) -> None:
        protocols = [
            JoinGroupRequestProtocol(
                name=a.name, metadata=encode_subscription(self._subscription(a))
            )
            for a in self.assignors
        ]
        config = self.config
        member_id = self.member_id
        reason = self._rejoin_reason

        def build(version: int) -> Message:
            return JoinGroupRequest(
                group_id=config.group_id,
                session_timeout_ms=int(config.session_timeout * 1000),
                rebalance_timeout_ms=int(config.max_poll_interval * 1000),
                member_id=member_id,
                group_instance_id=config.group_instance_id if version >= 5 else None,
                protocol_type=_PROTOCOL_TYPE,
                protocols=protocols,
                reason=(reason or None) if version >= 8 else None,
            )

        self._request_id += 1
        rid = self._request_id
        # The coordinator holds a JoinGroup until every member has rejoined, up to the
        # rebalance timeout: as the Java consumer, wait that long plus 5 s.
        wait = max(self.client.config.request_timeout, self.config.max_poll_interval + 5.0)
        if self._send(JOIN_GROUP, build, lambda r, n: self._on_join(rid, r, n), now, wait):
            self.state = MemberState.JOINING

    def _on_join(self, rid: int, result: Response | RequestFailed, now: float) -> None:
        if rid != self._request_id or self.state is not MemberState.JOINING:
            return
        response = result.response if isinstance(result, Response) else None
        if not isinstance(response, JoinGroupResponse):
            self._coordinator_lost(now)
            return
        code = response.error_code
        if code == 0:
            self._join_failures = 0
            self.member_id = response.member_id
            self.generation = response.generation_id
            self.leader_id = response.leader
            self.protocol = response.protocol_name or ""
            if self.protocol not in {a.name for a in self.assignors}:
                self._fatal(
                    RemoteProtocolError(f"the group chose an unknown assignor {self.protocol!r}"),
                    now,
                )
                return
            if response.leader == response.member_id:
                members = {}
                try:
                    for m in response.members:
                        sub = decode_subscription(m.metadata)
                        members[m.member_id] = Subscription(
                            sub.topics,
                            sub.user_data,
                            sub.owned_partitions,
                            sub.generation_id,
                            sub.rack_id,
                            m.group_instance_id,
                        )
                except RemoteProtocolError as exc:
                    self._fatal(exc, now)
                    return
                self._members = members
                self.state = MemberState.ASSIGNING
                topics = {t for s in members.values() for t in s.topics}
                self._group_topics = topics
                self.client.request_metadata(now)
                self._assign_after = self.client.metadata.version
                self._try_assign(now)
            else:
                self._send_sync({}, now)
            return
        if code == _MEMBER_ID_REQUIRED:
            self.member_id = response.member_id
            self.state = MemberState.NEEDS_JOIN
            self._retry_at = 0.0
            return
        self.state = MemberState.NEEDS_JOIN
        if code == _UNKNOWN_MEMBER_ID:
            self._reset_generation(reset_member_id=True)
        elif code == _ILLEGAL_GENERATION:
            self._reset_generation(reset_member_id=False)
        elif code in _COORDINATOR_ERRORS:
            self._coordinator_lost(now)
        elif code in (_LOADING, _REBALANCE_IN_PROGRESS):
            self._retry_at = now + self._backoff(self._join_failures)
            self._join_failures += 1
        else:
            self._fatal(exception_for_code(code), now)

    # ------------------------------------------------------------ leader

    def leader_topics(self) -> set[str]:
        """Topics the leader must know partition counts for while it assigns or leads."""
        if self.state in (MemberState.ASSIGNING, MemberState.SYNCING, MemberState.STABLE) and (
            self.leader_id and self.leader_id == self.member_id
        ):
            return set(self._group_topics)
        return set()

    def _try_assign(self, now: float) -> None:
        meta = self.client.metadata
        if meta.version <= self._assign_after:
            return  # wait for metadata that includes every member's topics
        counts = {}
        for topic in self._group_topics:
            parts = meta.partitions_of(topic)
            if parts:
                counts[topic] = len(parts)
            elif topic not in meta.topic_errors:
                self.client.request_metadata(now)
                return
        assignor = next(a for a in self.assignors if a.name == self.protocol)
        assignments = assignor.assign(counts, self._members)
        self._assigned_snapshot = counts
        self._send_sync({m: encode_assignment(a) for m, a in assignments.items()}, now)

    def metadata_changed(self, now: float) -> None:
        """Leader: partition counts of the group's topics changed since assigning -> rebalance."""
        if self.state is not MemberState.STABLE or self.leader_id != self.member_id:
            return
        meta = self.client.metadata
        now_counts = {}
        for topic in self._group_topics:
            parts = meta.partitions_of(topic)
            if parts:
                now_counts[topic] = len(parts)
        if now_counts != self._assigned_snapshot:
            self.request_rejoin("the partitions of a subscribed topic changed", now)

    def _send_sync(self, assignments: Mapping[str, bytes], now: float) -> None:
        config = self.config
        member_id, generation, protocol = self.member_id, self.generation, self.protocol

        def build(version: int) -> Message:
            return SyncGroupRequest(
                group_id=config.group_id,
                generation_id=generation,
                member_id=member_id,
                group_instance_id=config.group_instance_id if version >= 3 else None,
                protocol_type=_PROTOCOL_TYPE if version >= 5 else None,
                protocol_name=protocol if version >= 5 else None,
                assignments=[
                    SyncGroupRequestAssignment(member_id=m, assignment=a)
                    for m, a in sorted(assignments.items())
                ],
            )

        self._request_id += 1
        rid = self._request_id
        if self._send(SYNC_GROUP, build, lambda r, n: self._on_sync(rid, r, n), now):
            self.state = MemberState.SYNCING
        else:
            self.state = MemberState.NEEDS_JOIN

    def _on_sync(self, rid: int, result: Response | RequestFailed, now: float) -> None:
        if rid != self._request_id or self.state is not MemberState.SYNCING:
            return
        response = result.response if isinstance(result, Response) else None
        if not isinstance(response, SyncGroupResponse):
            self._coordinator_lost(now)
            return
        code = response.error_code
        if code == 0:
            try:
                assignment = decode_assignment(response.assignment)
            except RemoteProtocolError as exc:
                self._fatal(exc, now)
                return
            self.state = MemberState.STABLE
            self._last_heartbeat_ok = now
            self._heartbeat_at = now + self.config.heartbeat_interval
            self._rejoin_reason = ""
            self._owner.assigned(assignment, self.generation, self.rebalance_protocol, now)
            return
        self.state = MemberState.NEEDS_JOIN
        if code == _REBALANCE_IN_PROGRESS:
            pass
        elif code == _UNKNOWN_MEMBER_ID:
            self._reset_generation(reset_member_id=True)
        elif code == _ILLEGAL_GENERATION:
            self._reset_generation(reset_member_id=False)
        elif code in _COORDINATOR_ERRORS:
            self._coordinator_lost(now)
        else:
            self._fatal(exception_for_code(code), now)

    # ------------------------------------------------------------ heartbeat and leave

    def _send_heartbeat(self, now: float) -> None:
        config = self.config
        member_id, generation = self.member_id, self.generation

        def build(version: int) -> Message:
            return HeartbeatRequest(
                group_id=config.group_id,
                generation_id=generation,
                member_id=member_id,
                group_instance_id=config.group_instance_id if version >= 3 else None,
            )

        rid = self._request_id
        if self._send(HEARTBEAT, build, lambda r, n: self._on_heartbeat(rid, r, n), now):
            self._heartbeat_in_flight = True
            self._heartbeat_at = now + config.heartbeat_interval

    def _on_heartbeat(self, rid: int, result: Response | RequestFailed, now: float) -> None:
        self._heartbeat_in_flight = False
        if rid != self._request_id or not self._heartbeating():
            return
        response = result.response if isinstance(result, Response) else None
        if not isinstance(response, HeartbeatResponse):
            self._coordinator_lost(now)
            return
        code = response.error_code
        if code == 0:
            self._last_heartbeat_ok = now
        elif code == _REBALANCE_IN_PROGRESS:
            self._last_heartbeat_ok = now
            self.request_rejoin("the group is rebalancing", now)
        elif code in (_UNKNOWN_MEMBER_ID, _ILLEGAL_GENERATION):
            self._owner.lost(now)
            self._reset_generation(reset_member_id=code == _UNKNOWN_MEMBER_ID)
            self.state = MemberState.NEEDS_JOIN
        elif code in _COORDINATOR_ERRORS:
            self._coordinator_lost(now)
        else:
            self._fatal(exception_for_code(code), now)

    def _send_leave(self, now: float, reason: str) -> None:
        config = self.config
        member_id = self.member_id
        if config.group_instance_id is not None:
            return  # static members keep their place until the session runs out (KIP-345)

        def build(version: int) -> Message:
            if version >= 3:
                return LeaveGroupRequest(
                    group_id=config.group_id,
                    members=[
                        MemberIdentity(member_id=member_id, reason=reason if version >= 5 else None)
                    ],
                )
            return LeaveGroupRequest(group_id=config.group_id, member_id=member_id)

        self._send(LEAVE_GROUP, build, lambda r, n: None, now)

    # ------------------------------------------------------------ resets

    def _reset_generation(self, reset_member_id: bool) -> None:
        self.generation = -1
        self.leader_id = ""
        self._members = {}
        if reset_member_id:
            self.member_id = ""

    def _fatal(self, error: KafkaSansioError, now: float) -> None:
        self.state = MemberState.FATAL
        self._request_id += 1
        self._owner.fatal(error, now)

    def _backoff(self, attempts: int) -> float:
        return self.client.config.retry_backoff.delay(attempts, self._random())
