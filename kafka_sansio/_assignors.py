"""Partition assignors and the classic consumer protocol's wire formats.

A consumer group's leader receives every member's :class:`Subscription`
(the bytes each member put in its JoinGroup metadata) and returns one
:class:`Assignment` per member (the bytes of SyncGroup).  The formats are the
Java client's ``ConsumerProtocol`` (an int16 version, then the generated
``ConsumerProtocolSubscription`` / ``ConsumerProtocolAssignment`` body), so
members of this library, the Java client and librdkafka can share a group.

Assignors (the names are the protocol names every client uses):

* :class:`RangeAssignor` (``range``): per topic, consecutive ranges of
  partitions to members in member order; the Java result exactly.
* :class:`RoundRobinAssignor` (``roundrobin``): every partition of every
  topic in turn to the next member that subscribes to its topic; the Java
  result exactly.
* :class:`StickyAssignor` (``sticky``, eager): balanced, and keeps as many
  previously owned partitions in place as balance allows.  The previous
  assignment travels in the user data, in the Java StickyAssignor's layout.
* :class:`CooperativeStickyAssignor` (``cooperative-sticky``, KIP-429): the
  sticky result, minus every partition that changes owner; the old owner
  revokes it and the next rebalance hands it over.  A partition that stays
  with its member is never revoked.

Members are ordered as Java orders them: static members (with a group
instance id) by instance id first, then dynamic members by member id.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal, Protocol

from ._errors import RemoteProtocolError
from ._messages.consumer_protocol import (
    ConsumerProtocolAssignment,
    ConsumerProtocolAssignmentTopicPartition,
    ConsumerProtocolSubscription,
    ConsumerProtocolSubscriptionTopicPartition,
)
from ._types import TopicPartition

__all__ = [
    "Assignment",
    "Assignor",
    "CooperativeStickyAssignor",
    "RangeAssignor",
    "RebalanceProtocol",
    "RoundRobinAssignor",
    "StickyAssignor",
    "Subscription",
    "decode_assignment",
    "decode_subscription",
    "encode_assignment",
    "encode_subscription",
]

RebalanceProtocol = Literal["eager", "cooperative"]

#: Newest ConsumerProtocol versions this library writes (and reads fully).
SUBSCRIPTION_VERSION = 3
ASSIGNMENT_VERSION = 3


# ------------------------------------------------------------------ wire formats


@dataclass(frozen=True, slots=True)
class Subscription:
    """One member's JoinGroup metadata.

    ``owned_partitions`` (version 1+) and ``generation_id`` (version 2+,
    -1 unknown) let cooperative assignors see the current ownership.
    ``group_instance_id`` is not on the wire here: the coordinator tells the
    leader, and the group code fills it in before calling an assignor.
    """

    topics: tuple[str, ...]
    user_data: bytes | None = None
    owned_partitions: tuple[TopicPartition, ...] = ()
    generation_id: int = -1
    rack_id: str | None = None
    group_instance_id: str | None = None


@dataclass(frozen=True, slots=True)
class Assignment:
    """The partitions one member gets, and assignor-specific user data."""

    partitions: tuple[TopicPartition, ...] = ()
    user_data: bytes | None = None


def _group_partitions(tps: Iterable[TopicPartition]) -> dict[str, list[int]]:
    by_topic: dict[str, list[int]] = {}
    for tp in sorted(set(tps)):
        by_topic.setdefault(tp.topic, []).append(tp.partition)
    return by_topic


def _read_version(data: bytes, what: str, highest: int) -> int:
    if len(data) < 2:
        raise RemoteProtocolError(f"{what} is shorter than its version field")
    (version,) = struct.unpack_from(">h", data)
    if version < 0:
        raise RemoteProtocolError(f"{what} has a negative version {version}")
    # Newer versions only add fields at the end: read what this library knows.
    return min(int(version), highest)


def encode_subscription(sub: Subscription, version: int = SUBSCRIPTION_VERSION) -> bytes:
    """The JoinGroup protocol metadata of ``sub`` (int16 version, then the body)."""
    body = ConsumerProtocolSubscription(
        topics=sorted(set(sub.topics)),
        user_data=sub.user_data,
        owned_partitions=[
            ConsumerProtocolSubscriptionTopicPartition(topic=t, partitions=ps)
            for t, ps in _group_partitions(sub.owned_partitions).items()
        ],
        generation_id=sub.generation_id,
        rack_id=sub.rack_id,
    )
    out = bytearray(struct.pack(">h", version))
    body.encode_into(out, version)
    return bytes(out)


def decode_subscription(data: bytes | memoryview) -> Subscription:
    """Parse JoinGroup protocol metadata; raises :class:`RemoteProtocolError` if malformed."""
    raw = bytes(data)
    version = _read_version(
        raw, "a consumer subscription", ConsumerProtocolSubscription.MAX_VERSION
    )
    body, _end = ConsumerProtocolSubscription.decode_at(raw, 2, version)
    owned = tuple(TopicPartition(t.topic, p) for t in body.owned_partitions for p in t.partitions)
    return Subscription(
        topics=tuple(body.topics),
        user_data=None if body.user_data is None else bytes(body.user_data),
        owned_partitions=owned,
        generation_id=body.generation_id,
        rack_id=body.rack_id,
    )


def encode_assignment(assignment: Assignment, version: int = ASSIGNMENT_VERSION) -> bytes:
    """The SyncGroup bytes of ``assignment``."""
    body = ConsumerProtocolAssignment(
        assigned_partitions=[
            ConsumerProtocolAssignmentTopicPartition(topic=t, partitions=ps)
            for t, ps in _group_partitions(assignment.partitions).items()
        ],
        user_data=assignment.user_data,
    )
    out = bytearray(struct.pack(">h", version))
    body.encode_into(out, version)
    return bytes(out)


def decode_assignment(data: bytes | memoryview) -> Assignment:
    """Parse a SyncGroup assignment; empty bytes mean no partitions (as Java reads them)."""
    raw = bytes(data)
    if not raw:
        return Assignment()
    version = _read_version(raw, "a consumer assignment", ConsumerProtocolAssignment.MAX_VERSION)
    body, _end = ConsumerProtocolAssignment.decode_at(raw, 2, version)
    return Assignment(
        tuple(TopicPartition(t.topic, p) for t in body.assigned_partitions for p in t.partitions),
        None if body.user_data is None else bytes(body.user_data),
    )


# ------------------------------------------------------------------ the assignor interface


class Assignor(Protocol):
    """What the group leader calls.  ``name`` is the protocol name sent in JoinGroup."""

    name: str
    #: Rebalance protocols the assignor supports, preferred first.
    protocols: tuple[RebalanceProtocol, ...]

    def subscription_user_data(
        self, topics: frozenset[str], owned: frozenset[TopicPartition], generation: int
    ) -> bytes | None:
        """User data for this member's next JoinGroup (None: none)."""
        ...

    def assign(
        self, partitions_per_topic: Mapping[str, int], subscriptions: Mapping[str, Subscription]
    ) -> dict[str, Assignment]:
        """One assignment per member id; topics missing from ``partitions_per_topic`` are skipped."""
        ...


def _member_order(subscriptions: Mapping[str, Subscription]) -> list[str]:
    """Java's MemberInfo order: static members by instance id, then dynamic by member id."""

    def key(member: str) -> tuple[int, str, str]:
        instance = subscriptions[member].group_instance_id
        return (0, instance, member) if instance is not None else (1, "", member)

    return sorted(subscriptions, key=key)


def _finish(
    subscriptions: Mapping[str, Subscription], assigned: Mapping[str, Iterable[TopicPartition]]
) -> dict[str, Assignment]:
    return {m: Assignment(tuple(sorted(assigned.get(m, ())))) for m in subscriptions}


class RangeAssignor:
    """``range``: per topic, consecutive partition ranges in member order."""

    name = "range"
    protocols: tuple[RebalanceProtocol, ...] = ("eager",)

    def subscription_user_data(
        self, topics: frozenset[str], owned: frozenset[TopicPartition], generation: int
    ) -> bytes | None:
        return None

    def assign(
        self, partitions_per_topic: Mapping[str, int], subscriptions: Mapping[str, Subscription]
    ) -> dict[str, Assignment]:
        order = _member_order(subscriptions)
        assigned: dict[str, list[TopicPartition]] = {m: [] for m in order}
        topics = sorted({t for s in subscriptions.values() for t in s.topics})
        for topic in topics:
            count = partitions_per_topic.get(topic)
            if count is None:
                continue
            members = [m for m in order if topic in subscriptions[m].topics]
            per, extra = divmod(count, len(members))
            for i, member in enumerate(members):
                start = per * i + min(i, extra)
                length = per + (1 if i < extra else 0)
                assigned[member] += [TopicPartition(topic, p) for p in range(start, start + length)]
        return _finish(subscriptions, assigned)


class RoundRobinAssignor:
    """``roundrobin``: all partitions, sorted, dealt to members in turn."""

    name = "roundrobin"
    protocols: tuple[RebalanceProtocol, ...] = ("eager",)

    def subscription_user_data(
        self, topics: frozenset[str], owned: frozenset[TopicPartition], generation: int
    ) -> bytes | None:
        return None

    def assign(
        self, partitions_per_topic: Mapping[str, int], subscriptions: Mapping[str, Subscription]
    ) -> dict[str, Assignment]:
        order = _member_order(subscriptions)
        assigned: dict[str, list[TopicPartition]] = {m: [] for m in order}
        topics = sorted({t for s in subscriptions.values() for t in s.topics})
        cursor = 0
        for topic in topics:
            for p in range(partitions_per_topic.get(topic, 0)):
                # Java's circular iterator: skip members not subscribed to the topic.
                while topic not in subscriptions[order[cursor % len(order)]].topics:
                    cursor += 1
                assigned[order[cursor % len(order)]].append(TopicPartition(topic, p))
                cursor += 1
        return _finish(subscriptions, assigned)


# ------------------------------------------------------------------ sticky


def _encode_sticky_user_data(owned: Iterable[TopicPartition], generation: int) -> bytes:
    """The Java StickyAssignor's user data (schema V1, no version prefix)."""
    out = bytearray()
    by_topic = _group_partitions(owned)
    out += struct.pack(">i", len(by_topic))
    for topic, parts in by_topic.items():
        name = topic.encode()
        out += struct.pack(">h", len(name)) + name
        out += struct.pack(">i", len(parts))
        out += b"".join(struct.pack(">i", p) for p in parts)
    out += struct.pack(">i", generation)
    return bytes(out)


def _decode_sticky_user_data(data: bytes) -> tuple[list[TopicPartition], int]:
    """Previous assignment and generation (-1 if absent, V0) from StickyAssignor user data."""
    pos = 0

    def take(fmt: str) -> int:
        nonlocal pos
        size = struct.calcsize(fmt)
        if pos + size > len(data):
            raise RemoteProtocolError("sticky assignor user data is truncated")
        (value,) = struct.unpack_from(fmt, data, pos)
        pos += size
        return int(value)

    owned: list[TopicPartition] = []
    for _ in range(max(0, take(">i"))):
        length = take(">h")
        if length < 0 or pos + length > len(data):
            raise RemoteProtocolError("sticky assignor user data has a bad topic name")
        try:
            topic = data[pos : pos + length].decode()
        except UnicodeDecodeError:
            raise RemoteProtocolError("sticky assignor user data has a bad topic name") from None
        pos += length
        for _ in range(max(0, take(">i"))):
            owned.append(TopicPartition(topic, take(">i")))
    generation = take(">i") if pos + 4 <= len(data) else -1
    return owned, generation


@dataclass(slots=True)
class _MemberData:
    owned: list[TopicPartition] = field(default_factory=list)
    generation: int = -1


def _sticky_assign(
    partitions_per_topic: Mapping[str, int],
    subscriptions: Mapping[str, Subscription],
    previous: Mapping[str, _MemberData],
) -> dict[str, list[TopicPartition]]:
    """A balanced assignment that keeps as much of ``previous`` as balance allows.

    Ownership conflicts go to the highest generation (equal claims: nobody
    keeps the partition), as in Java's AbstractStickyAssignor.  The result is
    balanced in the sense that no partition can move to an eligible member
    holding at least two fewer partitions.
    """
    order = _member_order(subscriptions)
    eligible: dict[TopicPartition, list[str]] = {}
    for topic in sorted({t for s in subscriptions.values() for t in s.topics}):
        count = partitions_per_topic.get(topic)
        if count is None:
            continue
        members = [m for m in order if topic in subscriptions[m].topics]
        for p in range(count):
            eligible[TopicPartition(topic, p)] = members
    # Who validly owns what (highest generation wins a contested partition).
    claims: dict[TopicPartition, tuple[int, str | None]] = {}
    for member in order:
        data = previous.get(member, _MemberData())
        for tp in data.owned:
            if tp not in eligible or member not in eligible[tp]:
                continue
            best = claims.get(tp)
            if best is None or data.generation > best[0]:
                claims[tp] = (data.generation, member)
            elif data.generation == best[0]:
                claims[tp] = (data.generation, None)
    assigned: dict[str, list[TopicPartition]] = {m: [] for m in order}
    unassigned: list[TopicPartition] = []
    for tp in eligible:
        owner = claims.get(tp, (0, None))[1]
        if owner is None:
            unassigned.append(tp)
        else:
            assigned[owner].append(tp)
    # Members over their fair share give back their newest-looking partitions
    # first when every member subscribes to the same topics (quota known).
    same = len({frozenset(subscriptions[m].topics) for m in order}) == 1
    if same and order:
        total = len(eligible)
        low, extra = divmod(total, len(order))
        at_max = 0
        for member in sorted(order, key=lambda m: -len(assigned[m])):
            mine = sorted(assigned[member])
            cap = low + (1 if at_max < extra else 0)
            if len(mine) > low and at_max < extra:
                at_max += 1
            keep = mine[:cap]
            unassigned += mine[cap:]
            assigned[member] = keep
    # Hand out what is free to the eligible member holding the fewest.
    for tp in sorted(unassigned):
        members = eligible[tp]
        target = min(members, key=lambda m: (len(assigned[m]), order.index(m)))
        assigned[target].append(tp)
    # Move partitions from the fullest to the emptiest eligible member until stable.
    changed = True
    while changed:
        changed = False
        for member in sorted(order, key=lambda m: (-len(assigned[m]), order.index(m))):
            for tp in sorted(assigned[member], reverse=True):
                members = eligible[tp]
                target = min(members, key=lambda m: (len(assigned[m]), order.index(m)))
                if len(assigned[target]) + 1 < len(assigned[member]):
                    assigned[member].remove(tp)
                    assigned[target].append(tp)
                    changed = True
                    break
            if changed:
                break
    return assigned


class StickyAssignor:
    """``sticky`` (eager): balanced, moving as few partitions as possible."""

    name = "sticky"
    protocols: tuple[RebalanceProtocol, ...] = ("eager",)

    def subscription_user_data(
        self, topics: frozenset[str], owned: frozenset[TopicPartition], generation: int
    ) -> bytes | None:
        # Eager members revoke everything before joining, so the previous
        # assignment travels in the user data (the Java layout).
        return _encode_sticky_user_data(owned, generation)

    def assign(
        self, partitions_per_topic: Mapping[str, int], subscriptions: Mapping[str, Subscription]
    ) -> dict[str, Assignment]:
        previous = {}
        for member, sub in subscriptions.items():
            if sub.user_data:
                try:
                    owned, generation = _decode_sticky_user_data(sub.user_data)
                except RemoteProtocolError:
                    owned, generation = [], -1
                previous[member] = _MemberData(owned, generation)
            else:
                previous[member] = _MemberData(list(sub.owned_partitions), sub.generation_id)
        return _finish(subscriptions, _sticky_assign(partitions_per_topic, subscriptions, previous))


class CooperativeStickyAssignor:
    """``cooperative-sticky`` (KIP-429): sticky, and a moving partition is revoked first."""

    name = "cooperative-sticky"
    protocols: tuple[RebalanceProtocol, ...] = ("cooperative", "eager")

    def subscription_user_data(
        self, topics: frozenset[str], owned: frozenset[TopicPartition], generation: int
    ) -> bytes | None:
        # The Java assignor's user data: the generation as an int32.
        return struct.pack(">i", generation)

    def assign(
        self, partitions_per_topic: Mapping[str, int], subscriptions: Mapping[str, Subscription]
    ) -> dict[str, Assignment]:
        previous = {}
        for member, sub in subscriptions.items():
            generation = sub.generation_id
            if generation < 0 and sub.user_data and len(sub.user_data) >= 4:
                (generation,) = struct.unpack_from(">i", sub.user_data)
            previous[member] = _MemberData(list(sub.owned_partitions), generation)
        assigned = _sticky_assign(partitions_per_topic, subscriptions, previous)
        # A partition some other member still owns is held back this round:
        # its owner revokes it and rejoins, and the next round hands it over.
        claimants: dict[TopicPartition, set[str]] = {}
        for member, sub in subscriptions.items():
            for tp in sub.owned_partitions:
                claimants.setdefault(tp, set()).add(member)
        for member in assigned:
            assigned[member] = [
                tp for tp in assigned[member] if claimants.get(tp, set()) <= {member}
            ]
        return _finish(subscriptions, assigned)


#: Assignors by protocol name.
ASSIGNORS: dict[
    str, type[RangeAssignor | RoundRobinAssignor | StickyAssignor | CooperativeStickyAssignor]
] = {
    "range": RangeAssignor,
    "roundrobin": RoundRobinAssignor,
    "sticky": StickyAssignor,
    "cooperative-sticky": CooperativeStickyAssignor,
}
