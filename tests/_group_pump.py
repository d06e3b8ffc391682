"""Several group consumer cores against one model cluster, under one fake clock.

Each member has its own :class:`Pump` (its own connections); :class:`GroupPump`
moves every pump's clock together, fires whichever deadline is next, and
plays the application's part for each member: it acknowledges rebalance
listener events, polls (unless the member is stalled), and records what each
member was assigned and fetched, for the invariants.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kafka_sansio._consumer import ConsumerConfig
from kafka_sansio._group import GroupConfig
from kafka_sansio._group_consumer import GroupConsumerCore
from kafka_sansio._group_events import (
    CommitResult,
    PartitionsAssigned,
    PartitionsLost,
    PartitionsRevoked,
)
from kafka_sansio._types import TopicPartition
from kafka_sansio.testing import ModelCluster, Pump
from kafka_sansio.testing._pump import PumpStalled


@dataclass
class Member:
    name: str
    core: GroupConsumerCore
    pump: Pump
    stalled: bool = False
    #: Every event seen, in order.
    events: list[Any] = field(default_factory=list)
    #: (partition, offset) of every record handed out by poll, in order.
    consumed: list[tuple[TopicPartition, int]] = field(default_factory=list)
    #: A violation found while the member ran (fetched a partition it does not own...).
    problems: list[str] = field(default_factory=list)
    #: Called with each listener event before it is acknowledged.
    on_listener: Callable[[Member, Any], None] | None = None

    def owned(self) -> frozenset[TopicPartition]:
        return self.core.assignment()

    def revoked(self) -> list[TopicPartition]:
        out: list[TopicPartition] = []
        for e in self.events:
            if isinstance(e, PartitionsRevoked):
                out += sorted(e.partitions)
        return out

    def service(self, now: float) -> bool:
        """Play the application once; True if anything happened."""
        did = False
        for _ in range(100):
            events = self.core.events()
            self.events += events
            for e in events:
                listener = isinstance(e, (PartitionsAssigned, PartitionsRevoked, PartitionsLost))
                if listener and self.on_listener is not None:
                    self.on_listener(self, e)
            if self.core.awaiting_listener():
                self.core.rebalance_listener_done(now)
                did = True
                continue
            if not self.stalled:
                records = self.core.poll(now)
                for tp, recs in records.by_partition.items():
                    if tp not in self.core.assignment():
                        self.problems.append(f"{self.name} got records of {tp} it does not own")
                    self.consumed += [(tp, r.offset) for r in recs]
                if records.by_partition:
                    did = True
                    continue
            if events:
                did = True
                continue
            break
        return did

    def commits(self) -> list[CommitResult]:
        return [e for e in self.events if isinstance(e, CommitResult)]


class GroupPump:
    """Members of one or more groups on one :class:`ModelCluster`, one clock."""

    def __init__(self, cluster: ModelCluster, now: float = 0.0) -> None:
        self.cluster = cluster
        self.now = now
        self.members: dict[str, Member] = {}
        self.crashed: list[Member] = []

    def add(
        self,
        name: str,
        group: GroupConfig,
        config: ConsumerConfig | None = None,
        assignors: list[Any] | None = None,
        seed: float = 0.5,
    ) -> Member:
        core = GroupConsumerCore(
            config or ConsumerConfig(), group, random=lambda: seed, assignors=assignors
        )
        member = Member(name, core, Pump(core, self.cluster, now=self.now))
        self.members[name] = member
        return member

    def crash(self, name: str) -> Member:
        """The member's process dies: its sockets close, nothing more is sent."""
        member = self.members.pop(name)
        for conn in member.pump.conns.values():
            conn.close()
        member.pump.conns.clear()
        self.crashed.append(member)
        return member

    def settle(self) -> None:
        for _ in range(10_000):
            progressed = False
            for m in list(self.members.values()):
                m.pump.now = self.now
                if m.pump.settle():
                    progressed = True
                if m.service(self.now):
                    progressed = True
            if not progressed:
                return
        raise PumpStalled(f"members never went quiet at t={self.now}")

    def next_deadline(self) -> float | None:
        deadlines = [d for m in self.members.values() if (d := m.pump.next_deadline()) is not None]
        return min(deadlines) if deadlines else None

    def _fire(self, at: float) -> None:
        self.now = max(self.now, at)
        for m in list(self.members.values()):
            m.pump.now = self.now
            for server in list(m.pump.conns.values()):
                timer = server.get_timer()
                if timer is not None and timer <= self.now:
                    server.handle_timer(self.now)
            timer = m.core.get_timer()
            if timer is not None and timer <= self.now:
                m.core.handle_timer(self.now)
        self.settle()

    def advance(self, seconds: float) -> None:
        end = self.now + seconds
        self.settle()
        for _ in range(100_000):
            deadline = self.next_deadline()
            if deadline is None or deadline > end:
                break
            self._fire(deadline)
        else:
            raise PumpStalled(f"deadlines keep firing at t={self.now}")
        self.now = max(self.now, end)
        self.settle()

    def until(self, condition: Callable[[], Any], timeout: float = 120.0) -> None:
        end = self.now + timeout
        self.settle()
        for _ in range(100_000):
            if condition():
                return
            deadline = self.next_deadline()
            if deadline is None or deadline > end:
                break
            self._fire(deadline)
        if condition():
            return
        raise PumpStalled(f"condition still false at t={self.now} (limit {end})")


def owners(members: dict[str, Member]) -> dict[TopicPartition, list[str]]:
    out: dict[TopicPartition, list[str]] = {}
    for name, m in members.items():
        for tp in m.owned():
            out.setdefault(tp, []).append(name)
    return out
