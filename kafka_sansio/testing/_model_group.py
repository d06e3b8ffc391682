"""The model broker's group coordinator APIs (FindCoordinator, JoinGroup, SyncGroup, Heartbeat, LeaveGroup, OffsetCommit, OffsetFetch).

FindCoordinator also answers for transactional ids (key type 1) with
:func:`._model_txn.coordinator_of`; TxnOffsetCommit lives in :mod:`._model_txn`
and keeps its pending offsets on the group (``ModelGroup.txn_offsets``).

Each handler is called as ``handler(cluster, ctx, request, version, now)``
exactly like the handlers in :mod:`._model` and returns the response message
(or None for no answer).  State that belongs to this part of the broker lives
in ``cluster.extensions`` under this module's name.

The classic group protocol as Kafka's GroupCoordinator runs it: groups move
Empty -> PreparingRebalance -> CompletingRebalance -> Stable; a JoinGroup is
held until every member has rejoined (or the rebalance timeout passes, and
the members that did not rejoin are dropped); a follower's SyncGroup is held
until the leader sends the assignments; new dynamic members first get
MEMBER_ID_REQUIRED (JoinGroup v4+); static members (group.instance.id) that
come back with a new member id take over the old one's place, fencing it,
without a rebalance when nothing else changed.  Members whose session runs
out (no heartbeat, join or sync within their session timeout) are removed.

Held responses.  The model answers requests on a connection in order, and a
held JoinGroup or SyncGroup answer is parked as a *delayed* response whose
release time is the phase's deadline; its content is kept up to date as the
group changes, so that whatever the deadline finds is what the coordinator
would have answered then.  When the phase completes early (everyone rejoined,
the leader synced), the held answers are released at once.  Time-driven
changes of the group state (a session running out, a rebalance deadline
passing) are applied when the group is next looked at (any request for it,
or :func:`advance`), with the time they happened, so answers stay the same
as if a timer had fired.

The coordinator of a group is a broker chosen from the group id; stopping
that broker, or :func:`move_coordinator`, moves it (the group and its
offsets survive, as they live in ``__consumer_offsets``; held answers on
the old coordinator fail with NOT_COORDINATOR).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .._messages.find_coordinator import (
    Coordinator,
    FindCoordinatorRequest,
    FindCoordinatorResponse,
)
from .._messages.heartbeat import HeartbeatRequest, HeartbeatResponse
from .._messages.join_group import (
    JoinGroupRequest,
    JoinGroupResponse,
    JoinGroupResponseMember,
)
from .._messages.leave_group import LeaveGroupRequest, LeaveGroupResponse, MemberResponse
from .._messages.offset_commit import (
    OffsetCommitRequest,
    OffsetCommitResponse,
    OffsetCommitResponsePartition,
    OffsetCommitResponseTopic,
)
from .._messages.offset_fetch import (
    OffsetFetchRequest,
    OffsetFetchResponse,
    OffsetFetchResponseGroup,
    OffsetFetchResponsePartition,
    OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic,
    OffsetFetchResponseTopics,
)
from .._messages.sync_group import SyncGroupRequest, SyncGroupResponse
from .._wire import Message

if TYPE_CHECKING:
    from ._model import ModelCluster

__all__ = [
    "HANDLERS",
    "VERSIONS",
    "ModelGroup",
    "ModelMember",
    "advance",
    "committed",
    "coordinator_of",
    "group",
    "move_coordinator",
    "remove_member",
]

OFFSET_COMMIT, OFFSET_FETCH, FIND_COORDINATOR = 8, 9, 10
JOIN_GROUP, HEARTBEAT, LEAVE_GROUP, SYNC_GROUP = 11, 12, 13, 14

NONE = 0
UNKNOWN_TOPIC_OR_PARTITION = 3
OFFSET_METADATA_TOO_LARGE = 12
COORDINATOR_NOT_AVAILABLE = 15
NOT_COORDINATOR = 16
ILLEGAL_GENERATION = 22
INCONSISTENT_GROUP_PROTOCOL = 23
INVALID_GROUP_ID = 24
UNKNOWN_MEMBER_ID = 25
INVALID_SESSION_TIMEOUT = 26
REBALANCE_IN_PROGRESS = 27
MEMBER_ID_REQUIRED = 79
FENCED_INSTANCE_ID = 82
UNSTABLE_OFFSET_COMMIT = 88

_KEY = __name__.rsplit(".", 1)[-1]

EMPTY = "Empty"
PREPARING = "PreparingRebalance"
COMPLETING = "CompletingRebalance"
STABLE = "Stable"


@dataclass(slots=True)
class ModelMember:
    """One member of a model group."""

    member_id: str
    instance_id: str | None
    session_timeout: float
    rebalance_timeout: float
    protocols: list[tuple[str, bytes]]
    expires_at: float
    assignment: bytes = b""
    #: The held JoinGroup / SyncGroup answer, if any, and the request version.
    join: JoinGroupResponse | None = None
    join_version: int = 0
    sync: SyncGroupResponse | None = None
    sync_until: float = 0.0

    def metadata(self, protocol: str) -> bytes:
        for name, data in self.protocols:
            if name == protocol:
                return data
        return b""


@dataclass(slots=True)
class ModelGroup:
    """A consumer group and its committed offsets."""

    group_id: str
    state: str = EMPTY
    generation: int = 0
    protocol_type: str | None = None
    protocol_name: str | None = None
    leader: str | None = None
    members: dict[str, ModelMember] = field(default_factory=dict)
    #: Member ids handed out with MEMBER_ID_REQUIRED, not joined yet (expiry time).
    pending: dict[str, float] = field(default_factory=dict)
    join_deadline: float = 0.0
    #: (topic, partition) -> (offset, leader epoch, metadata)
    offsets: dict[tuple[str, int], tuple[int, int, str | None]] = field(default_factory=dict)
    #: producer id -> offsets committed by its ongoing transaction (TxnOffsetCommit),
    #: moved to ``offsets`` when it commits (see :mod:`._model_txn`).
    txn_offsets: dict[int, dict[tuple[str, int], tuple[int, int, str | None]]] = field(
        default_factory=dict
    )
    #: Every (generation, member id -> assignment) the group went through.
    history: list[tuple[int, dict[str, bytes]]] = field(default_factory=list)


@dataclass(slots=True)
class _State:
    groups: dict[str, ModelGroup] = field(default_factory=dict)
    coordinator: dict[str, int] = field(default_factory=dict)
    member_counter: int = 0
    #: Held answers to send once the group is consistent again.
    to_release: list[Message] = field(default_factory=list)
    min_session_timeout: float = 6.0
    max_session_timeout: float = 1800.0


def _state(cluster: ModelCluster) -> _State:
    return cluster.extension(_KEY, _State)


# ------------------------------------------------------------------ public helpers for tests


def group(cluster: ModelCluster, group_id: str, now: float | None = None) -> ModelGroup | None:
    """The group as the coordinator sees it (advanced to ``now`` if given)."""
    g = _state(cluster).groups.get(group_id)
    if g is not None and now is not None:
        _advance(cluster, g, now)
        _flush(cluster, now)
    return g


def advance(cluster: ModelCluster, now: float) -> None:
    """Apply every session expiry and rebalance deadline up to ``now``."""
    for g in list(_state(cluster).groups.values()):
        _advance(cluster, g, now)
    _flush(cluster, now)


def committed(cluster: ModelCluster, group_id: str) -> dict[tuple[str, int], int]:
    """``{(topic, partition): offset}`` committed by the group."""
    g = _state(cluster).groups.get(group_id)
    return {} if g is None else {k: v[0] for k, v in g.offsets.items()}


def remove_member(cluster: ModelCluster, group_id: str, member_id: str, now: float) -> None:
    """The coordinator drops a member (as when its session ran out unseen)."""
    g = _state(cluster).groups[group_id]
    _advance(cluster, g, now)
    if member_id in g.members:
        _remove(cluster, g, member_id, now)
    _flush(cluster, now)


def set_session_timeout_bounds(cluster: ModelCluster, low: float, high: float) -> None:
    """group.min/max.session.timeout.ms of the model (seconds)."""
    s = _state(cluster)
    s.min_session_timeout, s.max_session_timeout = low, high


def coordinator_of(cluster: ModelCluster, group_id: str) -> int:
    """The broker coordinating ``group_id`` (-1 if none is running)."""
    forced = _state(cluster).coordinator.get(group_id)
    if forced is not None and cluster.brokers[forced].alive:
        return forced
    nodes = sorted(cluster.brokers)
    start = zlib.crc32(group_id.encode()) % len(nodes)
    for i in range(len(nodes)):
        node = nodes[(start + i) % len(nodes)]
        if cluster.brokers[node].alive:
            return node
    return -1


def move_coordinator(cluster: ModelCluster, group_id: str, node: int, now: float) -> None:
    """Make ``node`` the group's coordinator; held answers fail with NOT_COORDINATOR."""
    state = _state(cluster)
    state.coordinator[group_id] = node
    g = state.groups.get(group_id)
    if g is None:
        return
    _advance(cluster, g, now)
    for m in g.members.values():
        if m.join is not None:
            _error_join(m.join, NOT_COORDINATOR)
            _release(cluster, m.join, now)
            m.join = None
        if m.sync is not None:
            m.sync.error_code = NOT_COORDINATOR
            _release(cluster, m.sync, now)
            m.sync = None
        # The new coordinator starts every session afresh, as after a load.
        m.expires_at = now + m.session_timeout
    _flush(cluster, now)


# ------------------------------------------------------------------ held answers


def _hold(cluster: ModelCluster, ctx: Any, api_key: int, seconds: float) -> None:
    """Hold the answer the handler is about to return for ``seconds``."""
    from ._model import _DelayRule

    # First in line, so it is this request's answer that waits.
    cluster._delay_rules.insert(0, _DelayRule(api_key, max(0.0, seconds), 1, ctx.node))


def _release(cluster: ModelCluster, response: Message, now: float) -> None:
    """Send a held answer once the current change of the group is complete."""
    _state(cluster).to_release.append(response)


def _flush(cluster: ModelCluster, now: float) -> None:
    """Send the answers released by the last change (no-op for connections gone).

    Sending lets the connection read its next request, which may change the
    group again: that is why it waits until the group is consistent.
    """
    state = _state(cluster)
    while state.to_release:
        response = state.to_release.pop(0)
        for conn in list(cluster._connections):
            cur = conn._current
            if cur is not None and cur.response is response:
                cur.release_at = now
                conn._pump(now)
                break


def _flushing(handler: Any) -> Any:
    def run(cluster: ModelCluster, ctx: Any, request: Any, version: int, now: float) -> Any:
        response = handler(cluster, ctx, request, version, now)
        _flush(cluster, now)
        return response

    return run


def _error_join(response: JoinGroupResponse, code: int) -> None:
    response.error_code = code
    response.generation_id = -1
    response.leader = ""
    response.members = []
    response.protocol_name = "" if response.protocol_name is not None else None


# ------------------------------------------------------------------ group state changes


def _advance(cluster: ModelCluster, g: ModelGroup, now: float) -> None:
    """Apply what time did, in time order: rebalance deadlines, held syncs, expired sessions."""
    for _ in range(1000):
        for m in g.members.values():
            if m.sync is not None and now >= m.sync_until:
                m.sync = None  # answered REBALANCE_IN_PROGRESS at its deadline
        for pid, expires in list(g.pending.items()):
            if now >= expires:
                del g.pending[pid]
        due: list[tuple[float, int, str]] = [
            (m.expires_at, 1, m.member_id)
            for m in g.members.values()
            if m.join is None and m.sync is None and now >= m.expires_at
        ]
        if g.state == PREPARING and now >= g.join_deadline:
            due.append((g.join_deadline, 0, ""))
        if not due:
            return
        at, kind, member_id = min(due)
        if kind == 0:
            _complete_join(cluster, g, at)
        else:
            _remove(cluster, g, member_id, at)
    raise AssertionError("group state did not settle")


def _remove(cluster: ModelCluster, g: ModelGroup, member_id: str, now: float) -> None:
    m = g.members.pop(member_id)
    if m.join is not None:
        _error_join(m.join, UNKNOWN_MEMBER_ID)
        _release(cluster, m.join, now)
    if m.sync is not None:
        m.sync.error_code = UNKNOWN_MEMBER_ID
        _release(cluster, m.sync, now)
    if g.leader == member_id:
        g.leader = None
    _prepare_rebalance(cluster, g, now)


def _prepare_rebalance(cluster: ModelCluster, g: ModelGroup, now: float) -> None:
    if g.state == COMPLETING:
        for m in g.members.values():
            if m.sync is not None:
                m.sync.error_code = REBALANCE_IN_PROGRESS
                _release(cluster, m.sync, now)
                m.sync = None
    if g.state != PREPARING:
        if not g.members and not g.pending:
            g.state = EMPTY
            g.generation += 1
            g.leader = None
            g.protocol_name = None
            return
        g.state = PREPARING
        timeout = max((m.rebalance_timeout for m in g.members.values()), default=0.0)
        g.join_deadline = now + timeout
    _try_complete_join(cluster, g, now)


def _joined(g: ModelGroup) -> list[ModelMember]:
    return [m for m in g.members.values() if m.join is not None]


def _select_protocol(members: list[ModelMember]) -> str | None:
    if not members:
        return None
    common = set.intersection(*({name for name, _ in m.protocols} for m in members))
    if not common:
        return None
    votes: dict[str, int] = {}
    for m in members:
        first = next(name for name, _ in m.protocols if name in common)
        votes[first] = votes.get(first, 0) + 1
    order = [name for name, _ in members[0].protocols if name in common]
    return max(order, key=lambda name: (votes.get(name, 0), -order.index(name)))


def _completion_time(g: ModelGroup, now: float) -> float:
    """When the join phase ends if nothing else happens: when the last member that has
    not rejoined (or pending new member) times out, at the latest the rebalance deadline."""
    waits = [m.expires_at for m in g.members.values() if m.join is None]
    waits += list(g.pending.values())
    return min(g.join_deadline, max([now, *waits]))


def _retime_joins(cluster: ModelCluster, g: ModelGroup, now: float) -> None:
    """Move the release time of the held JoinGroup answers to the phase's end."""
    if g.state != PREPARING:
        return
    at = _completion_time(g, now)
    held = {id(m.join) for m in g.members.values() if m.join is not None}
    for conn in cluster._connections:
        cur = conn._current
        if cur is not None and id(cur.response) in held:
            cur.release_at = at


def _render_joins(g: ModelGroup) -> None:
    """Fill the held JoinGroup answers with what completing the phase now would give."""
    joined = _joined(g)
    if not joined:
        return
    leader = g.leader if g.leader in {m.member_id for m in joined} else joined[0].member_id
    protocol = _select_protocol(joined) or ""
    for m in joined:
        r = m.join
        assert r is not None
        r.error_code = NONE
        r.generation_id = g.generation + 1
        r.protocol_type = g.protocol_type if m.join_version >= 7 else None
        r.protocol_name = protocol
        r.leader = leader
        r.member_id = m.member_id
        r.members = (
            [
                JoinGroupResponseMember(
                    member_id=o.member_id,
                    group_instance_id=o.instance_id if m.join_version >= 5 else None,
                    metadata=o.metadata(protocol),
                )
                for o in joined
            ]
            if m.member_id == leader
            else []
        )


def _try_complete_join(cluster: ModelCluster, g: ModelGroup, now: float) -> None:
    _render_joins(g)
    if g.state == PREPARING and not g.pending and all(m.join for m in g.members.values()):
        _complete_join(cluster, g, now)
    else:
        _retime_joins(cluster, g, now)


def _complete_join(cluster: ModelCluster, g: ModelGroup, now: float) -> None:
    _render_joins(g)
    for m in [m for m in g.members.values() if m.join is None]:
        del g.members[m.member_id]
    g.pending.clear()
    g.generation += 1
    if not g.members:
        g.state, g.leader, g.protocol_name = EMPTY, None, None
        return
    joined = list(g.members.values())
    g.leader = g.leader if g.leader in g.members else joined[0].member_id
    g.protocol_name = _select_protocol(joined)
    g.state = COMPLETING
    for m in joined:
        assert m.join is not None
        _release(cluster, m.join, now)
        m.join = None
        m.assignment = b""
        m.expires_at = now + m.session_timeout


# ------------------------------------------------------------------ handlers


def _find_coordinator(
    cluster: ModelCluster, ctx: Any, request: FindCoordinatorRequest, version: int, now: float
) -> Message:
    from ._model_txn import coordinator_of as txn_coordinator_of

    forced = ctx.forced()

    def answer(key: str) -> tuple[int, int, str, int]:
        if forced:
            return forced, -1, "", -1
        if request.key_type not in (0, 1):
            return 35, -1, "", -1  # only group and transaction coordinators here
        node = (coordinator_of if request.key_type == 0 else txn_coordinator_of)(cluster, key)
        if node < 0:
            return COORDINATOR_NOT_AVAILABLE, -1, "", -1
        b = cluster.brokers[node]
        return NONE, node, b.host, b.port

    if version < 4:
        code, node, host, port = answer(request.key)
        return FindCoordinatorResponse(error_code=code, node_id=node, host=host, port=port)
    coordinators = []
    for key in request.coordinator_keys:
        code, node, host, port = answer(key)
        coordinators.append(
            Coordinator(key=key, node_id=node, host=host, port=port, error_code=code)
        )
    return FindCoordinatorResponse(coordinators=coordinators)


def _group_check(cluster: ModelCluster, ctx: Any, group_id: str) -> int:
    forced = ctx.forced()
    if forced:
        return int(forced)
    if not group_id:
        return INVALID_GROUP_ID
    if coordinator_of(cluster, group_id) != ctx.node:
        return NOT_COORDINATOR
    return NONE


def _fenced(g: ModelGroup, member_id: str, instance_id: str | None) -> int:
    """UNKNOWN_MEMBER_ID / FENCED_INSTANCE_ID as Kafka checks a member's identity."""
    if instance_id is not None:
        owner = next((m for m in g.members.values() if m.instance_id == instance_id), None)
        if owner is not None and owner.member_id != member_id:
            return FENCED_INSTANCE_ID
    if member_id not in g.members:
        return UNKNOWN_MEMBER_ID
    return NONE


def _join_group(
    cluster: ModelCluster, ctx: Any, request: JoinGroupRequest, version: int, now: float
) -> Message:
    state = _state(cluster)

    def refuse(code: int, member_id: str = "") -> JoinGroupResponse:
        r = JoinGroupResponse(
            error_code=code,
            member_id=member_id,
            protocol_name="" if version < 7 else None,
        )
        return r

    code = _group_check(cluster, ctx, request.group_id)
    if code:
        return refuse(code)
    session = request.session_timeout_ms / 1000
    if not state.min_session_timeout <= session <= state.max_session_timeout:
        return refuse(INVALID_SESSION_TIMEOUT)
    if not request.protocol_type or not request.protocols:
        return refuse(INCONSISTENT_GROUP_PROTOCOL)
    g = state.groups.get(request.group_id)
    if g is None:
        g = state.groups[request.group_id] = ModelGroup(request.group_id)
    _advance(cluster, g, now)
    names = {p.name for p in request.protocols}
    if g.members or g.pending:
        if request.protocol_type != g.protocol_type:
            return refuse(INCONSISTENT_GROUP_PROTOCOL)
        if g.members:
            common = set.intersection(*({n for n, _ in m.protocols} for m in g.members.values()))
            if not names & common:
                return refuse(INCONSISTENT_GROUP_PROTOCOL)
    rebalance = request.rebalance_timeout_ms if version >= 1 else request.session_timeout_ms
    protocols = [(p.name, bytes(p.metadata)) for p in request.protocols]
    instance = request.group_instance_id if version >= 5 else None
    member_id = request.member_id
    if not member_id:
        state.member_counter += 1
        new_id = f"member-{state.member_counter}"
        if instance is not None:
            old = next((m for m in g.members.values() if m.instance_id == instance), None)
            if old is not None:
                return _static_rejoin(cluster, g, old, new_id, protocols, ctx, version, now)
        elif version >= 4:
            g.pending[new_id] = now + session
            g.protocol_type = request.protocol_type
            return refuse(MEMBER_ID_REQUIRED, new_id)
        member_id = new_id
        g.members[member_id] = ModelMember(
            member_id, instance, session, rebalance / 1000, protocols, now + session
        )
        g.pending.pop(member_id, None)
    elif member_id in g.pending:
        del g.pending[member_id]
        g.members[member_id] = ModelMember(
            member_id, instance, session, rebalance / 1000, protocols, now + session
        )
    else:
        code = _fenced(g, member_id, instance)
        if code:
            return refuse(code, member_id)
        m = g.members[member_id]
        unchanged = m.protocols == protocols
        m.protocols = protocols
        m.session_timeout, m.rebalance_timeout = session, rebalance / 1000
        if m.join is not None:
            # A second JoinGroup replaces the first (the old one is answered).
            _error_join(m.join, REBALANCE_IN_PROGRESS)
            _release(cluster, m.join, now)
            m.join = None
        if g.state == STABLE and unchanged and member_id != g.leader:
            # Kafka answers a follower that rejoins with nothing new at once.
            m.expires_at = now + session
            return _current_join(g, m, version)
    g.protocol_type = request.protocol_type
    m = g.members[member_id]
    response = JoinGroupResponse(member_id=member_id, protocol_name="")
    m.join, m.join_version = response, version
    _prepare_rebalance(cluster, g, now)
    if m.join is not None:
        # Still waiting: held until the phase completes or its deadline passes.
        m.expires_at = max(m.expires_at, g.join_deadline + m.session_timeout)
        _retime_joins(cluster, g, now)
        _hold(cluster, ctx, JOIN_GROUP, _completion_time(g, now) - now)
    return response


def _current_join(g: ModelGroup, m: ModelMember, version: int) -> JoinGroupResponse:
    return JoinGroupResponse(
        generation_id=g.generation,
        protocol_type=g.protocol_type if version >= 7 else None,
        protocol_name=g.protocol_name or "",
        leader=g.leader or "",
        member_id=m.member_id,
    )


def _static_rejoin(
    cluster: ModelCluster,
    g: ModelGroup,
    old: ModelMember,
    new_id: str,
    protocols: list[tuple[str, bytes]],
    ctx: Any,
    version: int,
    now: float,
) -> Message:
    """KIP-345: a known instance id with an empty member id replaces its old member id."""
    del g.members[old.member_id]
    if old.join is not None:
        _error_join(old.join, FENCED_INSTANCE_ID)
        _release(cluster, old.join, now)
        old.join = None
    if old.sync is not None:
        old.sync.error_code = FENCED_INSTANCE_ID
        _release(cluster, old.sync, now)
        old.sync = None
    was_leader = g.leader == old.member_id
    old.member_id = new_id
    g.members[new_id] = old
    if was_leader:
        g.leader = new_id
    old.expires_at = now + old.session_timeout
    if g.state == STABLE and old.protocols == protocols and not was_leader:
        # Same subscription: keep the assignment, no rebalance.
        return _current_join(g, old, version)
    old.protocols = protocols
    response = JoinGroupResponse(member_id=new_id, protocol_name="")
    old.join, old.join_version = response, version
    _prepare_rebalance(cluster, g, now)
    if old.join is not None:
        old.expires_at = max(old.expires_at, g.join_deadline + old.session_timeout)
        _retime_joins(cluster, g, now)
        _hold(cluster, ctx, JOIN_GROUP, _completion_time(g, now) - now)
    return response


def _sync_group(
    cluster: ModelCluster, ctx: Any, request: SyncGroupRequest, version: int, now: float
) -> Message:
    def answer(code: int, assignment: bytes = b"") -> SyncGroupResponse:
        return SyncGroupResponse(
            error_code=code,
            assignment=assignment,
            protocol_type=g.protocol_type if g is not None and version >= 5 else None,
            protocol_name=g.protocol_name if g is not None and version >= 5 else None,
        )

    g: ModelGroup | None = None
    if version >= 5 and (request.protocol_type is None or request.protocol_name is None):
        # Kafka refuses these before looking at the group at all.
        return answer(INCONSISTENT_GROUP_PROTOCOL)
    code = _group_check(cluster, ctx, request.group_id)
    if code:
        return answer(code)
    g = _state(cluster).groups.get(request.group_id)
    if g is None:
        return answer(UNKNOWN_MEMBER_ID)
    _advance(cluster, g, now)
    instance = request.group_instance_id if version >= 3 else None
    code = _fenced(g, request.member_id, instance)
    if code:
        return answer(code)
    if request.generation_id != g.generation:
        return answer(ILLEGAL_GENERATION)
    if version >= 5 and (
        (request.protocol_type is not None and request.protocol_type != g.protocol_type)
        or (request.protocol_name is not None and request.protocol_name != g.protocol_name)
    ):
        return answer(INCONSISTENT_GROUP_PROTOCOL)
    m = g.members[request.member_id]
    m.expires_at = now + m.session_timeout
    if g.state == PREPARING:
        return answer(REBALANCE_IN_PROGRESS)
    if g.state == STABLE:
        return answer(NONE, m.assignment)
    # CompletingRebalance
    if request.member_id == g.leader:
        given = {a.member_id: bytes(a.assignment) for a in request.assignments}
        for other in g.members.values():
            other.assignment = given.get(other.member_id, b"")
        g.history.append((g.generation, {o.member_id: o.assignment for o in g.members.values()}))
        g.state = STABLE
        for other in g.members.values():
            if other.sync is not None:
                other.sync.error_code = NONE
                other.sync.assignment = other.assignment
                _release(cluster, other.sync, now)
                other.sync = None
            other.expires_at = now + other.session_timeout
        return answer(NONE, m.assignment)
    response = answer(REBALANCE_IN_PROGRESS)
    m.sync = response
    m.sync_until = now + m.session_timeout
    m.expires_at = m.sync_until + m.session_timeout
    _hold(cluster, ctx, SYNC_GROUP, m.session_timeout)
    return response


def _heartbeat(
    cluster: ModelCluster, ctx: Any, request: HeartbeatRequest, version: int, now: float
) -> Message:
    code = _group_check(cluster, ctx, request.group_id)
    if code:
        return HeartbeatResponse(error_code=code)
    g = _state(cluster).groups.get(request.group_id)
    if g is None:
        return HeartbeatResponse(error_code=UNKNOWN_MEMBER_ID)
    _advance(cluster, g, now)
    instance = request.group_instance_id if version >= 3 else None
    code = _fenced(g, request.member_id, instance)
    if code:
        return HeartbeatResponse(error_code=code)
    m = g.members[request.member_id]
    if request.generation_id != g.generation:
        return HeartbeatResponse(error_code=ILLEGAL_GENERATION)
    m.expires_at = now + m.session_timeout
    if g.state == PREPARING:
        _retime_joins(cluster, g, now)  # the phase waits longer for this member
        return HeartbeatResponse(error_code=REBALANCE_IN_PROGRESS)
    return HeartbeatResponse(error_code=NONE)


def _leave_group(
    cluster: ModelCluster, ctx: Any, request: LeaveGroupRequest, version: int, now: float
) -> Message:
    code = _group_check(cluster, ctx, request.group_id)
    if code:
        return LeaveGroupResponse(error_code=code)
    g = _state(cluster).groups.get(request.group_id)
    leaving: list[tuple[str, str | None]]
    if version < 3:
        leaving = [(request.member_id, None)]
    else:
        leaving = [(m.member_id, m.group_instance_id) for m in request.members]
    results = []
    top = NONE
    for member_id, instance in leaving:
        if g is None:
            code = UNKNOWN_MEMBER_ID
        else:
            _advance(cluster, g, now)
            if instance is not None and not member_id:
                owner = next((m for m in g.members.values() if m.instance_id == instance), None)
                code = UNKNOWN_MEMBER_ID if owner is None else NONE
                member_id = owner.member_id if owner is not None else ""
            else:
                code = _fenced(g, member_id, instance)
            if not code:
                g.pending.pop(member_id, None)
                _remove(cluster, g, member_id, now)
        results.append(
            MemberResponse(member_id=member_id, group_instance_id=instance, error_code=code)
        )
        if version < 3:
            top = code
    return LeaveGroupResponse(error_code=top, members=results if version >= 3 else [])


def _offset_commit(
    cluster: ModelCluster, ctx: Any, request: OffsetCommitRequest, version: int, now: float
) -> Message:
    code = _group_check(cluster, ctx, request.group_id)
    state = _state(cluster)
    g = state.groups.get(request.group_id)
    if not code and g is not None:
        _advance(cluster, g, now)
    if not code:
        generation = request.generation_id_or_member_epoch if version >= 1 else -1
        instance = request.group_instance_id if version >= 7 else None
        if g is None or (generation < 0 and g.state == EMPTY):
            if generation >= 0:
                code = UNKNOWN_MEMBER_ID if g is None else ILLEGAL_GENERATION
        elif g.state == COMPLETING:
            code = REBALANCE_IN_PROGRESS
        else:
            code = _fenced(g, request.member_id, instance)
            if not code and generation != g.generation:
                code = ILLEGAL_GENERATION
    if not code and g is None:
        g = state.groups[request.group_id] = ModelGroup(request.group_id)
    topics = []
    for t in request.topics:
        parts = []
        for p in t.partitions:
            pcode = code
            if not pcode and cluster._lookup(t.name, p.partition_index) is None:
                pcode = UNKNOWN_TOPIC_OR_PARTITION
            if not pcode and p.committed_metadata is not None and len(p.committed_metadata) > 4096:
                pcode = OFFSET_METADATA_TOO_LARGE
            if not pcode:
                pcode = ctx.forced(t.name, p.partition_index)
            if not pcode:
                assert g is not None
                epoch = p.committed_leader_epoch if version >= 6 else -1
                g.offsets[(t.name, p.partition_index)] = (
                    p.committed_offset,
                    epoch,
                    p.committed_metadata,
                )
            parts.append(
                OffsetCommitResponsePartition(partition_index=p.partition_index, error_code=pcode)
            )
        topics.append(OffsetCommitResponseTopic(name=t.name, partitions=parts))
    return OffsetCommitResponse(topics=topics)


def _offset_fetch(
    cluster: ModelCluster, ctx: Any, request: OffsetFetchRequest, version: int, now: float
) -> Message:
    stable = version >= 7 and request.require_stable

    def lookup(group_id: str, wanted: list[tuple[str, list[int]]] | None) -> tuple[int, list[Any]]:
        code = _group_check(cluster, ctx, group_id)
        g = _state(cluster).groups.get(group_id)
        if code:
            return code, []
        offsets = {} if g is None else g.offsets
        # require_stable: partitions with offsets pending in a transaction are not answered.
        unstable = {tp for p in g.txn_offsets.values() for tp in p} if g and stable else set()
        if wanted is None:
            by_topic: dict[str, list[int]] = {}
            for topic, part in sorted(offsets):
                by_topic.setdefault(topic, []).append(part)
            wanted = list(by_topic.items())
        out = []
        for topic, parts in wanted:
            rows: list[tuple[int, int, int, str | None, int]] = []
            for part in parts:
                if (topic, part) in unstable:
                    rows.append((part, -1, -1, "", UNSTABLE_OFFSET_COMMIT))
                    continue
                offset, epoch, metadata = offsets.get((topic, part), (-1, -1, ""))
                rows.append((part, offset, epoch, metadata, NONE))
            out.append((topic, rows))
        return NONE, out

    if version < 8:
        code, found = lookup(
            request.group_id,
            None
            if request.topics is None
            else [(t.name, list(t.partition_indexes)) for t in request.topics],
        )
        return OffsetFetchResponse(
            error_code=code,
            topics=[
                OffsetFetchResponseTopic(
                    name=topic,
                    partitions=[
                        OffsetFetchResponsePartition(
                            partition_index=p,
                            committed_offset=o,
                            committed_leader_epoch=e if version >= 5 else -1,
                            metadata=md,
                            error_code=pe,
                        )
                        for p, o, e, md, pe in rows
                    ],
                )
                for topic, rows in found
            ],
        )
    groups = []
    for rg in request.groups:
        code, found = lookup(
            rg.group_id,
            None if rg.topics is None else [(t.name, list(t.partition_indexes)) for t in rg.topics],
        )
        groups.append(
            OffsetFetchResponseGroup(
                group_id=rg.group_id,
                error_code=code,
                topics=[
                    OffsetFetchResponseTopics(
                        name=topic,
                        partitions=[
                            OffsetFetchResponsePartitions(
                                partition_index=p,
                                committed_offset=o,
                                committed_leader_epoch=e,
                                metadata=md,
                                error_code=pe,
                            )
                            for p, o, e, md, pe in rows
                        ],
                    )
                    for topic, rows in found
                ],
            )
        )
    return OffsetFetchResponse(groups=groups)


#: api key -> handler, merged into the model's dispatch table.
HANDLERS: dict[int, Any] = {
    OFFSET_COMMIT: _flushing(_offset_commit),
    OFFSET_FETCH: _flushing(_offset_fetch),
    FIND_COORDINATOR: _find_coordinator,
    JOIN_GROUP: _flushing(_join_group),
    HEARTBEAT: _flushing(_heartbeat),
    LEAVE_GROUP: _flushing(_leave_group),
    SYNC_GROUP: _flushing(_sync_group),
}
#: api key -> (lowest, highest) version advertised by ApiVersions (Kafka 4.0's ranges).
VERSIONS: dict[int, tuple[int, int]] = {
    OFFSET_COMMIT: (2, 9),
    OFFSET_FETCH: (1, 9),
    FIND_COORDINATOR: (0, 6),
    JOIN_GROUP: (0, 9),  # Kafka 4.4 still answers v0 and v1
    HEARTBEAT: (0, 4),
    LEAVE_GROUP: (0, 5),
    SYNC_GROUP: (0, 5),
}
