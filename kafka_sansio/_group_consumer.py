"""The group consumer core: a :class:`ConsumerCore` whose partitions come from a consumer group.

:class:`GroupConsumerCore` is driven like every core (``commands``,
``connection_made``, ``data_received``, ``connection_lost``, ``get_timer``,
``handle_timer``) and adds the group side of the Java consumer:
``subscribe(topics)``, ``subscribe_pattern(pattern)``, ``unsubscribe``,
``commit``, ``committed``, auto-commit, and the rebalance events of
:mod:`._group_events`.  Fetching, seeking and positions are the wrapped
core's (:attr:`GroupConsumerCore.consumer`); ``poll`` goes through this core
because polling is what keeps the member in the group (max poll interval).

Rebalance listener protocol.  When a rebalance needs the user
(:class:`PartitionsRevoked`, :class:`PartitionsLost`,
:class:`PartitionsAssigned`), the core emits the event and, with
``GroupConfig.wait_for_listener`` (the default), waits: the driver runs the
user's listener, then calls :meth:`GroupConsumerCore.rebalance_listener_done`.
Meanwhile heartbeats go on, revoked partitions keep their positions (a commit
in the listener sees them), and newly assigned partitions are not fetched: a
seek in the listener decides where they start; otherwise the committed
offset is looked up after the listener returns, and the reset policy applies
where there is none.  Eager members revoke everything before every rejoin;
cooperative members (every assignor cooperative, KIP-429) revoke only the
partitions that move, after the new assignment arrives, then rejoin.

Commits.  ``commit`` and ``committed`` return a token; the answer is a
:class:`CommitResult` / :class:`CommittedResult` event with it.  A commit
with ``retry_until`` retries retriable failures until then (what a blocking
``commit_sync`` wants); without, it is tried once (``commit_async``).
Auto-commit (``GroupConfig.enable_auto_commit``) commits the positions of the
owned partitions every ``auto_commit_interval`` as a deadline, and before
partitions are revoked, and on :meth:`close`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from ._assignors import Assignment, Assignor, CooperativeStickyAssignor, RangeAssignor
from ._client import Command
from ._connection import RequestFailed, Response
from ._consumer import TOPIC_REFUSED, ConsumerConfig, ConsumerCore
from ._errors import KafkaSansioError, LocalProtocolError
from ._events import ClientError, Event, Records
from ._group import GroupConfig, GroupMembership, MemberState
from ._group_events import (
    CommitFailedError,
    CommitResult,
    CommittedResult,
    GroupError,
    GroupJoined,
    OffsetAndMetadata,
    PartitionsAssigned,
    PartitionsLost,
    PartitionsRevoked,
    RetriableCommitFailedError,
)
from ._messages.offset_commit import (
    OffsetCommitRequest,
    OffsetCommitRequestPartition,
    OffsetCommitRequestTopic,
    OffsetCommitResponse,
)
from ._messages.offset_fetch import (
    OffsetFetchRequest,
    OffsetFetchRequestGroup,
    OffsetFetchRequestTopic,
    OffsetFetchRequestTopics,
    OffsetFetchResponse,
)
from ._types import TopicPartition
from ._wire import Message
from .errors import exception_for_code

__all__ = ["GroupConsumerCore"]

OFFSET_COMMIT, OFFSET_FETCH = 8, 9
#: Commit / fetch errors after which finding the coordinator again and retrying may work.
_COORDINATOR_ERRORS = frozenset({15, 16})
_RETRIABLE = frozenset({7, 14, 15, 16, 88})  # + REQUEST_TIMED_OUT, LOADING, UNSTABLE_OFFSET
_GENERATION_GONE = frozenset({22, 25})
_REBALANCE_IN_PROGRESS = 27
_FENCED = 82


@dataclass(slots=True)
class _Commit:
    token: int
    offsets: dict[TopicPartition, OffsetAndMetadata]
    retry_until: float | None
    auto: bool
    #: The generation the last attempt carried (-1: none).
    generation: int = -1
    in_flight: bool = False
    retry_at: float = 0.0
    failures: int = 0


@dataclass(slots=True)
class _Fetch:
    token: int
    partitions: set[TopicPartition]
    deadline: float
    #: For the group itself (positions of new partitions) rather than the user.
    internal: bool = False
    in_flight: bool = False
    retry_at: float = 0.0
    failures: int = 0
    results: dict[TopicPartition, OffsetAndMetadata | None] = field(default_factory=dict)


class GroupConsumerCore:
    """A consumer in a consumer group, without I/O (see the module docstring).

    ``assignors`` defaults to the Java consumer's ``[range, cooperative-sticky]``
    (eager until every member can go cooperative).
    """

    def __init__(
        self,
        config: ConsumerConfig,
        group: GroupConfig,
        random: Callable[[], float],
        assignors: list[Assignor] | None = None,
    ) -> None:
        self.config = config
        self.group_config = group
        self._random = random
        self.consumer = ConsumerCore(config, random)
        self.client = self.consumer.client
        self.client.add_metadata_listener(self._on_metadata)
        chosen: list[Assignor] = (
            list(assignors) if assignors else [RangeAssignor(), CooperativeStickyAssignor()]
        )
        self.membership = GroupMembership(group, self.client, chosen, self, random)
        self._events: list[Event] = []
        self._topics: frozenset[str] = frozenset()
        self._pattern: re.Pattern[str] | None = None
        self._owned: frozenset[TopicPartition] = frozenset()
        self._after_listener: Callable[[float], None] | None = None
        self._join_prepared = False
        self._commits: dict[int, _Commit] = {}
        self._fetches: dict[int, _Fetch] = {}
        self._next_token = 1
        self._next_auto_commit: float | None = None
        self._leaving = False
        self._now = 0.0

    # ------------------------------------------------------------ driver side

    def commands(self) -> list[Command]:
        return self.consumer.commands()

    def connection_made(self, node_id: int, now: float) -> None:
        self.consumer.connection_made(node_id, now)
        self._update(now)

    def data_received(self, node_id: int, data: bytes, now: float) -> None:
        self.consumer.data_received(node_id, data, now)
        self._update(now)

    def connection_lost(self, node_id: int, now: float) -> None:
        self.consumer.connection_lost(node_id, now)
        self._update(now)

    def get_timer(self) -> float | None:
        deadlines = [
            t for t in (self.consumer.get_timer(), self.membership.get_timer()) if t is not None
        ]
        if self._next_auto_commit is not None and self._owned:
            deadlines.append(self._next_auto_commit)
        # Only what _update acts on: an answer in flight is waited for, whatever the time.
        for c in self._commits.values():
            if c.in_flight:
                continue
            if c.retry_at > self._now:
                deadlines.append(c.retry_at)
            if c.retry_until is not None:
                deadlines.append(c.retry_until)
        for f in self._fetches.values():
            if f.in_flight:
                continue
            if f.deadline != float("inf"):
                deadlines.append(f.deadline)
            if f.retry_at > self._now:
                deadlines.append(f.retry_at)
        return min(deadlines) if deadlines else None

    def handle_timer(self, now: float) -> None:
        self.consumer.handle_timer(now)
        self._update(now)

    def events(self) -> list[Event]:
        """Group events, then the wrapped consumer's, oldest first."""
        events, self._events = self._events, []
        return events + self.consumer.events()

    # ------------------------------------------------------------ subscription

    def subscribe(self, topics: Iterable[str], now: float) -> None:
        """Join the group for these topics (replacing any earlier subscription)."""
        topics = frozenset(topics)
        if not topics:
            self.unsubscribe(now)
            return
        self._pattern = None
        self._set_subscription(topics, now)
        self.consumer.want_topics(topics, now)
        self._update(now)

    def subscribe_pattern(self, pattern: str | re.Pattern[str], now: float) -> None:
        """Join the group for every topic whose whole name matches ``pattern``.

        Topics created later are picked up on the next metadata refresh.
        Internal topics (names starting with ``__``) never match.
        """
        self._pattern = re.compile(pattern) if isinstance(pattern, str) else pattern
        self.consumer.want_topics(None, now)
        self._match_pattern(now)
        self._update(now)

    def subscription(self) -> frozenset[str]:
        return self._topics

    def unsubscribe(self, now: float) -> None:
        """Give up the partitions (PartitionsRevoked first) and leave the group."""
        self._pattern = None
        self._topics = frozenset()
        self._leave(now)

    def assignment(self) -> frozenset[TopicPartition]:
        """The partitions this member owns now."""
        return self._owned

    def poll(self, now: float, max_records: int | None = None) -> Records:
        """The consumer's poll, plus: the member is alive (max poll interval).

        While a rebalance listener event awaits :meth:`rebalance_listener_done`
        nothing is handed out.
        """
        self.membership.polled(now)
        if self._after_listener is not None:
            self._update(now)
            return Records({}, self.consumer.buffered() > 0)
        records = self.consumer.poll(now, max_records)
        self._update(now)
        return records

    def rebalance_listener_done(self, now: float) -> None:
        """The user's listener for the last rebalance event returned: carry on."""
        then, self._after_listener = self._after_listener, None
        if then is not None:
            then(now)
        self._update(now)

    def awaiting_listener(self) -> bool:
        return self._after_listener is not None

    @property
    def state(self) -> MemberState:
        return self.membership.state

    # ------------------------------------------------------------ offsets

    def commit(
        self,
        now: float,
        offsets: Mapping[TopicPartition, OffsetAndMetadata | int] | None = None,
        *,
        retry_until: float | None = None,
    ) -> int:
        """Commit ``offsets`` (default: the positions of every owned partition); a token.

        The answer is a :class:`CommitResult` with the token.  With
        ``retry_until`` retriable failures are retried until then.
        """
        if offsets is None:
            wanted = self._positions(self._owned)
        else:
            wanted = {
                TopicPartition(*tp): o if isinstance(o, OffsetAndMetadata) else OffsetAndMetadata(o)
                for tp, o in offsets.items()
            }
        token = self._start_commit(wanted, now, retry_until, auto=False)
        self._update(now)
        return token

    def committed(
        self, partitions: Iterable[TopicPartition], now: float, timeout: float | None = None
    ) -> int:
        """Look up the group's committed offsets; the answer is a :class:`CommittedResult`."""
        token = self._token()
        wait = self.config.default_api_timeout if timeout is None else timeout
        self._fetches[token] = _Fetch(token, {TopicPartition(*tp) for tp in partitions}, now + wait)
        self._update(now)
        return token

    def pending_commits(self) -> int:
        return len(self._commits)

    def close(self, now: float) -> None:
        """Leave cleanly: auto-commit, PartitionsRevoked, LeaveGroup.

        Then wait until :meth:`pending_commits` is 0 (or give up) and call
        :meth:`shutdown`.
        """
        self._pattern = None
        self._leave(now)

    def shutdown(self) -> None:
        """Drop every connection; the core is unusable afterwards."""
        self.consumer.close()

    # ------------------------------------------------------------ membership callbacks

    def group_topics(self) -> frozenset[str]:
        return self._topics

    def owned_partitions(self) -> frozenset[TopicPartition]:
        return self._owned

    def ready_to_join(self, now: float, generation_valid: bool) -> bool:
        if self._after_listener is None:
            if not generation_valid and self._owned:
                # The generation went away after the revocation (a failed join):
                # whatever is still owned is lost, as Java's onJoinPrepare says.
                owned = self._owned
                self._drop(owned, now)
                self._listener(PartitionsLost(owned), lambda n: None, now)
            elif not self._join_prepared:
                self._join_prepared = True
                self._prepare_join(now, generation_valid)
            self._join_prepared = True
        if self._after_listener is not None:
            return False
        # The commits made before joining must land first: once the JoinGroup is
        # held at the coordinator, a commit behind it would meet a new generation.
        return not any(c.auto for c in self._commits.values())

    def _prepare_join(self, now: float, generation_valid: bool) -> None:
        """Java's onJoinPrepare: auto-commit, then the revoke (or lost) listener."""
        owned = self._owned
        if not owned:
            return
        if not generation_valid:
            self._drop(owned, now)
            self._listener(PartitionsLost(owned), lambda n: None, now)
            return
        self._auto_commit(owned, now)
        if self.membership.rebalance_protocol == "eager":
            self._listener(PartitionsRevoked(owned), lambda n: self._drop(owned, n), now)
            return
        # Cooperative: only what the subscription no longer covers is revoked now.
        gone = frozenset(tp for tp in owned if tp.topic not in self._topics)
        if gone:
            self._listener(PartitionsRevoked(gone), lambda n: self._drop(gone, n), now)

    def assigned(self, assignment: Assignment, generation: int, protocol: str, now: float) -> None:
        self._join_prepared = False
        new = frozenset(assignment.partitions)
        revoked = self._owned - new
        added = new - self._owned
        m = self.membership
        self._events.append(
            GroupJoined(generation, m.member_id, m.leader_id == m.member_id, m.protocol, new)
        )

        def assign(now: float) -> None:
            self._owned = new
            self.consumer.hold(added)
            self.consumer.assign(new, now)
            if self._next_auto_commit is None:
                self._next_auto_commit = now + self.group_config.auto_commit_interval
            self._listener(
                PartitionsAssigned(added, generation),
                lambda n: self._start_positions(added, n),
                now,
            )

        if revoked:
            # Cooperative: the moving partitions go first, then the member rejoins
            # so that the next round can hand them over.
            self._auto_commit(revoked, now)

            def after_revoke(now: float) -> None:
                self._drop(revoked, now)
                assign(now)
                self.membership.request_rejoin("partitions were revoked", now)

            self._listener(PartitionsRevoked(revoked), after_revoke, now)
        else:
            assign(now)

    def lost(self, now: float) -> None:
        owned = self._owned
        if owned:
            self._drop(owned, now)
            self._listener(PartitionsLost(owned), lambda n: None, now)

    def fatal(self, error: KafkaSansioError, now: float) -> None:
        self._events.append(GroupError(error))
        self.lost(now)

    # ------------------------------------------------------------ internals

    def _token(self) -> int:
        token = self._next_token
        self._next_token += 1
        return token

    def _listener(self, event: Event, then: Callable[[float], None], now: float) -> None:
        self._events.append(event)
        if self.group_config.wait_for_listener:
            self._after_listener = then
        else:
            then(now)

    def _drop(self, partitions: frozenset[TopicPartition], now: float) -> None:
        self._owned = self._owned - partitions
        self.consumer.assign(self._owned, now)
        for f in self._fetches.values():
            if f.internal:
                f.partitions -= partitions

    def _set_subscription(self, topics: frozenset[str], now: float) -> None:
        if self.membership.state is MemberState.FATAL:
            raise LocalProtocolError("the group member stopped after a fatal error")
        if topics != self._topics or self.membership.state is MemberState.UNSUBSCRIBED:
            self._topics = topics
            self._leaving = False
            self.membership.subscribe(now)

    def _match_pattern(self, now: float) -> None:
        pattern = self._pattern
        if pattern is None:
            return
        meta = self.client.metadata
        names = set(meta.topic_ids) | {tp.topic for tp in meta.partitions}
        matched = frozenset(
            t for t in names if not t.startswith("__") and pattern.fullmatch(t) is not None
        )
        if matched:
            self._set_subscription(matched, now)
        elif self._topics:
            self._topics = frozenset()
            self._leave(now)

    def _on_metadata(self, now: float) -> None:
        """A metadata answer arrived: pattern matches, partition counts, refused topics.

        A subscribed topic the answer refuses for good (an invalid name, or not
        authorized) is reported as a :class:`ClientError` each time an answer
        says so, as the Java consumer raises it from ``poll``; the member
        stays in the group with the other topics.
        """
        self._match_pattern(now)
        errors = self.client.metadata.topic_errors
        for topic in sorted(self._topics):
            code = errors.get(topic)
            if code in TOPIC_REFUSED:
                self._events.append(
                    ClientError(exception_for_code(code, f"metadata for topic {topic!r}"))
                )
        self.membership.metadata_changed(now)

    def _leave(self, now: float) -> None:
        self._leaving = True
        owned = self._owned
        if owned and self.membership.in_generation():
            self._auto_commit(owned, now)

            def then(now: float) -> None:
                self._drop(owned, now)
                self.membership.leave(now)

            self._listener(PartitionsRevoked(owned), then, now)
        else:
            if owned:
                self._drop(owned, now)
            self.membership.leave(now)
        self._next_auto_commit = None
        self._update(now)

    def _positions(
        self, partitions: Iterable[TopicPartition]
    ) -> dict[TopicPartition, OffsetAndMetadata]:
        out = {}
        for tp in sorted(partitions):
            if tp not in self.consumer.assignment():
                continue
            pos = self.consumer.position(tp)
            if pos is not None:
                out[tp] = OffsetAndMetadata(pos, "", self.consumer.position_epoch(tp))
        return out

    def _auto_commit(self, partitions: Iterable[TopicPartition], now: float) -> None:
        if not self.group_config.enable_auto_commit:
            return
        offsets = self._positions(partitions)
        if offsets:
            self._start_commit(offsets, now, None, auto=True)

    def _start_commit(
        self,
        offsets: dict[TopicPartition, OffsetAndMetadata],
        now: float,
        retry_until: float | None,
        auto: bool,
    ) -> int:
        token = self._token()
        commit = _Commit(token, offsets, retry_until, auto)
        if not offsets:
            self._events.append(CommitResult(token, {}, None, auto))
            return token
        if self._topics and not self.membership.in_generation():
            error = (
                exception_for_code(_REBALANCE_IN_PROGRESS)
                if self.membership.state is not MemberState.UNSUBSCRIBED
                else CommitFailedError("the member is not part of an active group generation")
            )
            self._events.append(CommitResult(token, offsets, error, auto))
            return token
        self._commits[token] = commit
        return token

    def _start_positions(self, partitions: frozenset[TopicPartition], now: float) -> None:
        """After PartitionsAssigned: committed offsets for what the user did not seek."""
        wanted = set(partitions) & self.consumer.held()
        if not wanted:
            self.consumer.release(partitions, now)
            return
        token = self._token()
        # No deadline: as the Java consumer, the position stays unknown until it is found.
        self._fetches[token] = _Fetch(token, wanted, float("inf"), internal=True)

    # ------------------------------------------------------------ the engine

    def _update(self, now: float) -> None:
        self._now = now
        group_topics = self.membership.leader_topics()
        if group_topics and self._pattern is None:
            wanted = set(self._topics) | group_topics
            self.consumer.want_topics(wanted, now)
        self.membership.update(now)
        if self._next_auto_commit is not None and now >= self._next_auto_commit:
            self._next_auto_commit = now + self.group_config.auto_commit_interval
            if (
                self.membership.state is MemberState.STABLE
                and self._after_listener is None
                and not any(c.auto for c in self._commits.values())
            ):
                self._auto_commit(self._owned, now)
        coordinator = self.membership.coordinator
        for c in list(self._commits.values()):
            if c.retry_until is not None and now >= c.retry_until and not c.in_flight:
                self._finish_commit(c, RetriableCommitFailedError("commit timed out"))
        for f in list(self._fetches.values()):
            if now >= f.deadline and not f.in_flight:
                self._finish_fetch(f, RetriableCommitFailedError("committed() timed out"), now)
        if coordinator is None:
            if self._commits or self._fetches:
                self.membership.ensure_coordinator(now)
            return
        version = self.client.api_version(coordinator, OFFSET_COMMIT)
        if version is None:
            if self._commits or self._fetches:
                self.client.ensure_connected(coordinator, now)
            return
        for c in list(self._commits.values()):
            if not c.in_flight and now >= c.retry_at:
                self._send_commit(c, coordinator, version, now)
        fversion = self.client.api_version(coordinator, OFFSET_FETCH)
        if fversion is None:
            return
        for f in list(self._fetches.values()):
            if not f.in_flight and now >= f.retry_at:
                self._send_fetch(f, coordinator, fversion, now)

    # ------------------------------------------------------------ OffsetCommit

    def _send_commit(self, c: _Commit, node: int, version: int, now: float) -> None:
        m = self.membership
        # Still in the generation while a revoke listener runs (unsubscribe, close):
        # its commit carries the generation, as the Java consumer's does.
        in_group = m.in_generation()
        topics: dict[str, list[OffsetCommitRequestPartition]] = {}
        for tp, om in sorted(c.offsets.items()):
            topics.setdefault(tp.topic, []).append(
                OffsetCommitRequestPartition(
                    partition_index=tp.partition,
                    committed_offset=om.offset,
                    committed_leader_epoch=(
                        om.leader_epoch if om.leader_epoch is not None and version >= 6 else -1
                    ),
                    committed_metadata=om.metadata,
                )
            )
        request = OffsetCommitRequest(
            group_id=self.group_config.group_id,
            generation_id_or_member_epoch=m.generation if in_group else -1,
            member_id=m.member_id if in_group else "",
            group_instance_id=self.group_config.group_instance_id if version >= 7 else None,
            topics=[OffsetCommitRequestTopic(name=t, partitions=ps) for t, ps in topics.items()],
        )
        c.in_flight = True
        c.generation = m.generation if in_group else -1

        def handler(result: Response | RequestFailed, now: float) -> None:
            self._on_commit(c, result, now)

        self.client.send(node, request, now, handler, version=version)

    def _on_commit(self, c: _Commit, result: Response | RequestFailed, now: float) -> None:
        c.in_flight = False
        if self._commits.get(c.token) is not c:
            return
        response = result.response if isinstance(result, Response) else None
        codes: list[int] = []
        if isinstance(response, OffsetCommitResponse):
            for t in response.topics:
                codes += [p.error_code for p in t.partitions]
        else:
            codes = [-1]
        bad = [code for code in codes if code != 0]
        if not bad:
            self._finish_commit(c, None)
            return
        code = bad[0]
        if code == -1 or code in _COORDINATOR_ERRORS:
            self.membership.coordinator_lost(now)
        if code == -1 or code in _RETRIABLE:
            if c.retry_until is not None and now < c.retry_until:
                c.retry_at = now + self.client.config.retry_backoff.delay(
                    c.failures, self._random()
                )
                c.failures += 1
                return
            self._finish_commit(c, RetriableCommitFailedError(f"commit failed (error {code})"))
            return
        if code in _GENERATION_GONE:
            m = self.membership
            if m.state is MemberState.STABLE and m.generation == c.generation >= 0:
                # Still the generation the coordinator refused: it is gone.
                m.generation_lost(code, now)
            self._finish_commit(
                c, CommitFailedError("the group rebalanced without this member; commit refused")
            )
            return
        if code == _REBALANCE_IN_PROGRESS:
            self.membership.request_rejoin("a commit found the group rebalancing", now)
        error = exception_for_code(code)
        self._finish_commit(c, error)
        if code == _FENCED:
            self.membership.fenced(error, now)

    def _finish_commit(self, c: _Commit, error: KafkaSansioError | None) -> None:
        self._commits.pop(c.token, None)
        self._events.append(CommitResult(c.token, dict(c.offsets), error, c.auto))

    # ------------------------------------------------------------ OffsetFetch

    def _send_fetch(self, f: _Fetch, node: int, version: int, now: float) -> None:
        by_topic: dict[str, list[int]] = {}
        for tp in sorted(f.partitions):
            by_topic.setdefault(tp.topic, []).append(tp.partition)
        if not by_topic:
            self._finish_fetch(f, None, now)
            return
        group_id = self.group_config.group_id
        request: Message
        if version >= 8:
            request = OffsetFetchRequest(
                groups=[
                    OffsetFetchRequestGroup(
                        group_id=group_id,
                        topics=[
                            OffsetFetchRequestTopics(name=t, partition_indexes=ps)
                            for t, ps in by_topic.items()
                        ],
                    )
                ],
                require_stable=True,
            )
        else:
            request = OffsetFetchRequest(
                group_id=group_id,
                topics=[
                    OffsetFetchRequestTopic(name=t, partition_indexes=ps)
                    for t, ps in by_topic.items()
                ],
                require_stable=version >= 7,
            )
        f.in_flight = True

        def handler(result: Response | RequestFailed, now: float) -> None:
            self._on_fetch(f, result, now)

        self.client.send(node, request, now, handler, version=version)

    def _on_fetch(self, f: _Fetch, result: Response | RequestFailed, now: float) -> None:
        f.in_flight = False
        if self._fetches.get(f.token) is not f:
            return
        response = result.response if isinstance(result, Response) else None
        code = -1
        rows: list[tuple[str, int, int, int, str | None, int]] = []
        if isinstance(response, OffsetFetchResponse):
            if response.groups:
                g = response.groups[0]
                code = g.error_code
                for t in g.topics:
                    for p in t.partitions:
                        rows.append(
                            (
                                t.name,
                                p.partition_index,
                                p.committed_offset,
                                p.committed_leader_epoch,
                                p.metadata,
                                p.error_code,
                            )
                        )
            else:
                code = response.error_code
                for old in response.topics:
                    for q in old.partitions:
                        rows.append(
                            (
                                old.name,
                                q.partition_index,
                                q.committed_offset,
                                q.committed_leader_epoch,
                                q.metadata,
                                q.error_code,
                            )
                        )
        if code == 0:
            code = next((r[5] for r in rows if r[5] != 0), 0)
        if code != 0:
            if code == -1 or code in _COORDINATOR_ERRORS:
                self.membership.coordinator_lost(now)
            if code == -1 or code in _RETRIABLE:
                f.retry_at = now + self.client.config.retry_backoff.delay(
                    f.failures, self._random()
                )
                f.failures += 1
                return
            self._finish_fetch(f, exception_for_code(code), now)
            return
        for topic, part, offset, epoch, metadata, _ in rows:
            tp = TopicPartition(topic, part)
            if tp in f.partitions:
                f.results[tp] = (
                    None
                    if offset < 0
                    else OffsetAndMetadata(offset, metadata or "", None if epoch < 0 else epoch)
                )
        self._finish_fetch(f, None, now)

    def _finish_fetch(self, f: _Fetch, error: KafkaSansioError | None, now: float) -> None:
        self._fetches.pop(f.token, None)
        if not f.internal:
            self._events.append(CommittedResult(f.token, dict(f.results), error))
            return
        # Positions of newly assigned partitions: committed offset, else the reset policy.
        held = self.consumer.held()
        for tp, om in f.results.items():
            if tp in held and om is not None:
                self.consumer.seek(tp, om.offset, now, om.leader_epoch)
        if error is not None:
            # Not retriable (authorization, say): the partitions stay without a position.
            self._events.append(GroupError(error))
            return
        self.consumer.release(f.partitions, now)
