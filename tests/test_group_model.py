"""Consumer groups against the model broker's coordinator, under a fake clock."""

from __future__ import annotations

from dataclasses import replace

import pytest
from _group_pump import GroupPump, Member, owners
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kafka_sansio._assignors import CooperativeStickyAssignor, RangeAssignor, RoundRobinAssignor
from kafka_sansio._consumer import ConsumerConfig
from kafka_sansio._events import ClientError
from kafka_sansio._group import GroupConfig, MemberState
from kafka_sansio._group_events import (
    CommitFailedError,
    CommitResult,
    CommittedResult,
    GroupError,
    OffsetAndMetadata,
    PartitionsAssigned,
    PartitionsLost,
    PartitionsRevoked,
)
from kafka_sansio._types import OffsetResetPolicy, TopicPartition
from kafka_sansio.errors import FencedInstanceIdError, TopicAuthorizationFailedError
from kafka_sansio.testing import ModelCluster
from kafka_sansio.testing import _model_group as model_group

TP = TopicPartition
CONFIG = ConsumerConfig(auto_offset_reset=OffsetResetPolicy.EARLIEST)
GROUP = GroupConfig("g", session_timeout=10.0, heartbeat_interval=1.0, max_poll_interval=25.0)
ALL12 = {TP("t", p) for p in range(12)}


def _cluster(partitions: int = 12) -> ModelCluster:
    cluster = ModelCluster(brokers=3)
    cluster.create_topic("t", partitions=partitions)
    return cluster


def _settled(gp: GroupPump, expected: set[TopicPartition] = ALL12) -> bool:
    o = owners(gp.members)
    return (
        set(o) == expected
        and all(len(v) == 1 for v in o.values())
        and all(
            m.core.state is MemberState.STABLE and not m.core.awaiting_listener()
            for m in gp.members.values()
        )
    )


def _join(gp: GroupPump, names: str, assignors: list | None = None, **kw: object) -> None:
    for name in names:
        group = replace(GROUP, **kw) if kw else GROUP  # type: ignore[arg-type]
        gp.add(name, group, CONFIG, assignors).core.subscribe(["t"], gp.now)


def _produce(cluster: ModelCluster, count: int, now: float) -> None:
    for i in range(count):
        cluster.append("t", i % 12, [(b"k", b"%d" % i)], now=now)


def _check_no_problems(gp: GroupPump) -> None:
    for m in list(gp.members.values()) + gp.crashed:
        assert m.problems == []


@pytest.mark.parametrize(
    "assignors",
    [[RangeAssignor()], [RoundRobinAssignor()], [CooperativeStickyAssignor()]],
    ids=["range", "roundrobin", "cooperative-sticky"],
)
def test_three_members_leave_crash_join(assignors: list) -> None:
    cluster = _cluster()
    gp = GroupPump(cluster)
    _join(gp, "abc", assignors)
    gp.until(lambda: _settled(gp), 60)
    assert sorted(len(m.owned()) for m in gp.members.values()) == [4, 4, 4]
    _produce(cluster, 120, gp.now)
    gp.advance(2)
    # One leaves cleanly: the others take over well before a session timeout.
    left_at = gp.now
    member_id = gp.members["a"].core.membership.member_id
    gp.members["a"].core.close(gp.now)
    gp.until(lambda: member_id not in model_group.group(cluster, "g").members, 5)  # type: ignore[union-attr]
    gone = gp.members.pop("a")
    gp.until(lambda: _settled(gp), 60)
    assert gp.now - left_at < GROUP.session_timeout
    assert sorted(len(m.owned()) for m in gp.members.values()) == [6, 6]
    # One crashes: its partitions move after its session runs out.
    gp.crash("b")
    gp.until(lambda: _settled(gp), 60)
    assert set(gp.members["c"].owned()) == ALL12
    # One joins.
    _join(gp, "d", assignors)
    gp.until(lambda: _settled(gp) and bool(gp.members["d"].owned()), 60)
    assert sorted(len(m.owned()) for m in gp.members.values()) == [6, 6]
    _produce(cluster, 120, gp.now)
    gp.advance(8)  # past an auto-commit
    _check_no_problems(gp)
    # At least once: every record was handed to some member.
    consumed = {(tp, o) for m in [gone, *gp.crashed, *gp.members.values()] for tp, o in m.consumed}
    produced = {(TP("t", p), o) for p in range(12) for o in range(20)}
    assert produced <= consumed
    # The survivors committed everything they hold.
    committed = model_group.committed(cluster, "g")
    for m in gp.members.values():
        for tp in m.owned():
            assert committed[(tp.topic, tp.partition)] == 20


def test_cooperative_never_revokes_a_partition_that_stays() -> None:
    cluster = _cluster()
    gp = GroupPump(cluster)
    _join(gp, "ab", [CooperativeStickyAssignor()])
    gp.until(lambda: _settled(gp), 60)
    before = {n: set(m.owned()) for n, m in gp.members.items()}
    _join(gp, "c", [CooperativeStickyAssignor()])
    gp.until(lambda: _settled(gp) and len(gp.members["c"].owned()) == 4, 60)
    for name in "ab":
        m = gp.members[name]
        revoked = set(m.revoked())
        kept = set(m.owned())
        assert len(kept) == 4 and kept <= before[name]
        assert revoked == before[name] - kept, "only the moving partitions are revoked"
        assert not revoked & kept
        assert not any(isinstance(e, PartitionsLost) for e in m.events)
    # The partitions that moved went to the newcomer.
    assert set(gp.members["c"].owned()) == set().union(*(gp.members[n].revoked() for n in "ab"))


def test_eager_revokes_everything_before_rejoining() -> None:
    cluster = _cluster()
    gp = GroupPump(cluster)
    _join(gp, "ab", [RangeAssignor()])
    gp.until(lambda: _settled(gp), 60)
    a_before = set(gp.members["a"].owned())
    _join(gp, "c", [RangeAssignor()])
    gp.until(lambda: _settled(gp) and bool(gp.members["c"].owned()), 60)
    revoked = [e for e in gp.members["a"].events if isinstance(e, PartitionsRevoked)]
    assert revoked and set(revoked[0].partitions) == a_before


def test_member_id_required_then_join() -> None:
    cluster = _cluster()
    gp = GroupPump(cluster)
    _join(gp, "a")
    gp.until(lambda: _settled(gp), 30)
    joins = [entry for entry in cluster.request_log if entry[1] == 11]
    assert len(joins) == 2  # the first is answered MEMBER_ID_REQUIRED
    group = model_group.group(cluster, "g")
    assert group is not None and list(group.members) == [gp.members["a"].core.membership.member_id]


def test_listener_commit_in_revoked_and_seek_in_assigned() -> None:
    cluster = _cluster()
    _produce(cluster, 240, 0.0)
    gp = GroupPump(cluster)

    def listener(m: Member, event: object) -> None:
        if isinstance(event, PartitionsAssigned):
            for tp in event.partitions:
                m.core.consumer.seek(tp, 15, gp.now)
        if isinstance(event, PartitionsRevoked):
            m.core.commit(
                gp.now, {tp: OffsetAndMetadata(17, "from-revoke") for tp in event.partitions}
            )

    group = replace(GROUP, enable_auto_commit=False)
    a = gp.add("a", group, CONFIG, [RangeAssignor()])
    a.on_listener = listener
    a.core.subscribe(["t"], gp.now)
    gp.until(lambda: _settled(gp), 30)
    gp.advance(2)
    # Fetching started where the listener sought, not at the committed/reset offset.
    firsts = {tp: min(o for t, o in a.consumed if t == tp) for tp in ALL12}
    assert set(firsts.values()) == {15}
    a.core.close(gp.now)
    gp.until(lambda: a.core.state is MemberState.UNSUBSCRIBED and a.core.pending_commits() == 0, 10)
    assert set(model_group.committed(cluster, "g").values()) == {17}
    token = a.core.committed([TP("t", 0)], gp.now)
    gp.until(lambda: any(isinstance(e, CommittedResult) for e in a.events), 10)
    result = next(e for e in a.events if isinstance(e, CommittedResult))
    assert result.token == token and result.error is None
    assert result.offsets == {TP("t", 0): OffsetAndMetadata(17, "from-revoke")}


def test_new_member_starts_from_the_committed_offset() -> None:
    cluster = _cluster()
    _produce(cluster, 240, 0.0)
    gp = GroupPump(cluster)
    _join(gp, "a")
    gp.until(lambda: _settled(gp), 30)
    a = gp.members["a"]
    token = a.core.commit(gp.now, {tp: 7 for tp in ALL12})
    gp.until(lambda: any(isinstance(e, CommitResult) and e.token == token for e in a.events), 10)
    gp.crash("a")  # no auto-commit of its positions on the way out
    _join(gp, "b", enable_auto_commit=False)
    gp.until(lambda: _settled(gp), 60)
    gp.advance(2)
    b = gp.members["b"]
    firsts = {tp: min(o for t, o in b.consumed if t == tp) for tp in ALL12}
    assert set(firsts.values()) == {7}


def test_static_member_restart_keeps_its_assignment_without_rebalance() -> None:
    cluster = _cluster()
    gp = GroupPump(cluster)
    for name in "ab":
        group = replace(GROUP, group_instance_id="inst-" + name)
        gp.add(name, group, CONFIG, [RangeAssignor()]).core.subscribe(["t"], gp.now)
    gp.until(lambda: _settled(gp), 30)
    generation = model_group.group(cluster, "g").generation  # type: ignore[union-attr]
    before = set(gp.members["b"].owned())
    gp.crash("b")
    gp.advance(3)  # within the session timeout
    group = replace(GROUP, group_instance_id="inst-b")
    gp.add("b2", group, CONFIG, [RangeAssignor()]).core.subscribe(["t"], gp.now)
    gp.until(lambda: _settled(gp), 30)
    assert set(gp.members["b2"].owned()) == before
    assert model_group.group(cluster, "g").generation == generation  # type: ignore[union-attr]
    # The old incarnation, were it still alive, would be fenced.
    assert not any(isinstance(e, PartitionsRevoked) for e in gp.members["a"].events)


def test_duplicate_static_member_is_fenced() -> None:
    cluster = _cluster()
    gp = GroupPump(cluster)
    group = replace(GROUP, group_instance_id="same")
    gp.add("a", group, CONFIG).core.subscribe(["t"], gp.now)
    gp.until(lambda: _settled(gp), 30)
    gp.add("b", group, CONFIG).core.subscribe(["t"], gp.now)
    gp.until(lambda: gp.members["a"].core.state is MemberState.FATAL, 30)
    errors = [e for e in gp.members["a"].events if isinstance(e, GroupError)]
    assert isinstance(errors[0].error, FencedInstanceIdError)
    assert any(isinstance(e, PartitionsLost) for e in gp.members["a"].events)
    assert gp.members["a"].owned() == frozenset()


def test_member_that_stops_polling_leaves_and_loses_its_partitions() -> None:
    cluster = _cluster()
    gp = GroupPump(cluster)
    _join(gp, "ab")
    gp.until(lambda: _settled(gp), 30)
    slow = gp.members["b"]
    slow.stalled = True
    start = gp.now
    gp.until(lambda: set(gp.members["a"].owned()) == ALL12, 60)
    # It left on its own at the max poll interval (long before anything else would notice).
    assert gp.now - start <= GROUP.max_poll_interval + 3
    assert any(isinstance(e, PartitionsLost) for e in slow.events)
    assert slow.owned() == frozenset()
    # Heartbeats did not depend on polling: until then the member stayed in the group.
    kicked = [e for e in slow.events if isinstance(e, PartitionsLost)]
    assert len(kicked) == 1
    slow.stalled = False
    gp.until(lambda: _settled(gp) and bool(slow.owned()), 60)


def test_commit_after_being_kicked_out_is_a_commit_failed_error() -> None:
    cluster = _cluster()
    gp = GroupPump(cluster)
    _join(gp, "ab", enable_auto_commit=False)
    gp.until(lambda: _settled(gp), 30)
    b = gp.members["b"]
    # The coordinator forgets b (as after a session expiry it did not see coming).
    model_group.remove_member(cluster, "g", b.core.membership.member_id, gp.now)
    token = b.core.commit(gp.now, {next(iter(b.owned())): 1})
    gp.until(lambda: any(isinstance(e, CommitResult) and e.token == token for e in b.events), 10)
    result = next(e for e in b.events if isinstance(e, CommitResult) and e.token == token)
    assert isinstance(result.error, CommitFailedError)
    gp.until(lambda: _settled(gp), 60)  # b rejoins


def test_coordinator_moves_without_losing_partitions() -> None:
    cluster = _cluster()
    gp = GroupPump(cluster)
    _join(gp, "abc")
    gp.until(lambda: _settled(gp), 30)
    old = model_group.coordinator_of(cluster, "g")
    new = next(n for n in cluster.brokers if n != old)
    model_group.move_coordinator(cluster, "g", new, gp.now)
    gp.advance(5)
    assert _settled(gp)
    for m in gp.members.values():
        assert m.core.membership.coordinator == new
        assert not any(isinstance(e, (PartitionsLost, PartitionsRevoked)) for e in m.events)


def test_coordinator_broker_stops() -> None:
    cluster = _cluster()
    gp = GroupPump(cluster)
    _join(gp, "ab", [CooperativeStickyAssignor()])
    gp.until(lambda: _settled(gp), 30)
    old = model_group.coordinator_of(cluster, "g")
    cluster.stop_broker(old, gp.now)
    gp.advance(15)
    gp.until(lambda: _settled(gp), 60)
    assert all(m.core.membership.coordinator != old for m in gp.members.values())


def test_pattern_subscription_picks_up_new_topics() -> None:
    cluster = _cluster(2)
    gp = GroupPump(cluster)
    a = gp.add("a", GROUP, CONFIG)
    a.core.subscribe_pattern(r"t.*", gp.now)
    gp.until(lambda: _settled(gp, {TP("t", 0), TP("t", 1)}), 30)
    cluster.create_topic("t2", partitions=1)
    cluster.create_topic("other", partitions=1)
    gp.until(lambda: TP("t2", 0) in a.owned(), 400)  # the next metadata refresh
    assert not any(tp.topic == "other" for tp in a.owned())


def test_unsubscribe_revokes_and_leaves() -> None:
    cluster = _cluster()
    gp = GroupPump(cluster)
    _join(gp, "ab")
    gp.until(lambda: _settled(gp), 30)
    gp.members["a"].core.unsubscribe(gp.now)
    gp.until(lambda: set(gp.members["b"].owned()) == ALL12, 10)
    assert gp.members["a"].owned() == frozenset()
    assert any(isinstance(e, PartitionsRevoked) for e in gp.members["a"].events)


# ------------------------------------------------------------------ properties

_ops = st.lists(
    st.one_of(
        st.tuples(st.just("join"), st.integers(0, 5)),
        st.tuples(st.just("leave"), st.integers(0, 5)),
        st.tuples(st.just("crash"), st.integers(0, 5)),
        st.tuples(st.just("move"), st.integers(1, 3)),
        st.tuples(st.just("delay"), st.sampled_from([11, 12, 14, 8, 9])),
        st.tuples(
            st.just("error"),
            st.sampled_from([(12, 27), (12, 22), (14, 27), (11, 16), (8, 16), (12, 25)]),
        ),
        st.tuples(st.just("produce"), st.integers(1, 30)),
        st.tuples(st.just("wait"), st.floats(0.1, 12)),
    ),
    min_size=1,
    max_size=16,
)


def _prune(gp: GroupPump) -> bool:
    """Forget members that finished leaving; always True."""
    for name, m in list(gp.members.items()):
        if m.core.state is MemberState.UNSUBSCRIBED and m.core.pending_commits() == 0:
            del gp.members[name]
    return True


@given(st.sampled_from(["range", "cooperative-sticky"]), _ops)
@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
def test_random_membership_changes_settle_with_one_owner_each(protocol: str, ops: list) -> None:
    cluster = _cluster()
    gp = GroupPump(cluster)
    make = (
        (lambda: [RangeAssignor()])
        if protocol == "range"
        else (lambda: [CooperativeStickyAssignor()])
    )
    counter = 0

    def join() -> None:
        nonlocal counter
        counter += 1
        gp.add(f"m{counter}", GROUP, CONFIG, make()).core.subscribe(["t"], gp.now)

    join()
    join()
    committed_seen: dict[tuple[str, int], int] = {}
    leaving: set[str] = set()
    for op, arg in ops:
        names = sorted(n for n in gp.members if n not in leaving)
        if op == "join" and len(gp.members) < 5:
            join()
        elif op == "leave" and len(names) > 1:
            leaving.add(names[arg % len(names)])
            gp.members[names[arg % len(names)]].core.close(gp.now)
        elif op == "crash" and len(names) > 1:
            gp.crash(names[arg % len(names)])
        elif op == "move":
            model_group.move_coordinator(cluster, "g", arg, gp.now)
        elif op == "delay":
            cluster.delay(arg, 2.0)
        elif op == "error":
            cluster.inject_error(arg[0], arg[1])
        elif op == "produce":
            _produce(cluster, arg, gp.now)
        gp.advance(arg if op == "wait" else 0.5)
        _prune(gp)
        _check_no_problems(gp)
        # Sessions (10 s) outlast every injected delay: no two live members
        # ever hold the same partition, even in the middle of a rebalance.
        shared = {tp: names for tp, names in owners(gp.members).items() if len(names) > 1}
        assert not shared, shared
        for key, offset in model_group.committed(cluster, "g").items():
            assert offset >= committed_seen.get(key, 0), "a committed offset went backwards"
            committed_seen[key] = offset
    gp.until(lambda: _prune(gp) and _settled(gp), 200)
    _check_no_problems(gp)


def test_runs_are_deterministic() -> None:
    def run() -> list[tuple[str, str]]:
        cluster = _cluster()
        gp = GroupPump(cluster)
        _join(gp, "abc", [CooperativeStickyAssignor()])
        gp.until(lambda: _settled(gp), 60)
        _produce(cluster, 60, gp.now)
        gp.crash("b")
        cluster.inject_error(12, 27)
        gp.advance(20)
        _join(gp, "d", [CooperativeStickyAssignor()])
        gp.advance(20)
        return [(n, repr(e)) for n, m in sorted(gp.members.items()) for e in m.events] + [
            ("log", repr(cluster.request_log))
        ]

    assert run() == run()


# ------------------------------------------------------------------ error codes

JOIN, HEARTBEAT_KEY, SYNC, COMMIT = 11, 12, 14, 8


@pytest.mark.parametrize(
    ("api", "code"),
    [
        (JOIN, 14),  # COORDINATOR_LOAD_IN_PROGRESS: retry
        (JOIN, 15),  # COORDINATOR_NOT_AVAILABLE: find the coordinator again
        (JOIN, 16),  # NOT_COORDINATOR
        (JOIN, 22),  # ILLEGAL_GENERATION: reset the generation, rejoin
        (JOIN, 25),  # UNKNOWN_MEMBER_ID: reset the member id, rejoin
        (JOIN, 27),  # REBALANCE_IN_PROGRESS: rejoin
        (SYNC, 15),
        (SYNC, 16),
        (SYNC, 22),
        (SYNC, 25),
        (SYNC, 27),
        (HEARTBEAT_KEY, 15),
        (HEARTBEAT_KEY, 16),
        (HEARTBEAT_KEY, 22),
        (HEARTBEAT_KEY, 25),
        (HEARTBEAT_KEY, 27),
    ],
)
def test_recoverable_group_errors_end_in_a_stable_group(api: int, code: int) -> None:
    cluster = _cluster()
    gp = GroupPump(cluster)
    _join(gp, "ab")
    if api == HEARTBEAT_KEY:
        gp.until(lambda: _settled(gp), 30)
    cluster.inject_error(api, code, count=2)
    gp.advance(3)
    gp.until(lambda: _settled(gp), 60)
    for m in gp.members.values():
        assert not any(isinstance(e, GroupError) for e in m.events)
    lost = any(isinstance(e, PartitionsLost) for m in gp.members.values() for e in m.events)
    # Only a generation the coordinator disowned loses partitions.
    assert lost == (api == HEARTBEAT_KEY and code in (22, 25))


@pytest.mark.parametrize(
    ("api", "code"),
    [(JOIN, 23), (JOIN, 24), (JOIN, 26), (JOIN, 30), (SYNC, 30), (HEARTBEAT_KEY, 30)],
)
def test_fatal_group_errors_stop_the_member(api: int, code: int) -> None:
    cluster = _cluster()
    gp = GroupPump(cluster)
    _join(gp, "a")
    if api == HEARTBEAT_KEY:
        gp.until(lambda: _settled(gp), 30)
    cluster.inject_error(api, code, count=1)
    a = gp.members["a"]
    gp.until(lambda: a.core.state is MemberState.FATAL, 30)
    errors = [e.error for e in a.events if isinstance(e, GroupError)]
    assert errors and getattr(errors[0], "code", None) == code
    assert a.owned() == frozenset()


@pytest.mark.parametrize(
    ("code", "expected", "retried"),
    [
        (16, None, True),  # NOT_COORDINATOR: retried (sync commit) until it works
        (14, None, True),
        (27, "RebalanceInProgressError", False),
        (22, "CommitFailedError", False),
        (25, "CommitFailedError", False),
        (12, "OffsetMetadataTooLargeError", False),
    ],
)
def test_commit_failures_are_typed(code: int, expected: str | None, retried: bool) -> None:
    cluster = _cluster()
    gp = GroupPump(cluster)
    _join(gp, "a", enable_auto_commit=False)
    gp.until(lambda: _settled(gp), 30)
    a = gp.members["a"]
    cluster.inject_error(COMMIT, code, count=1)
    token = a.core.commit(gp.now, {TP("t", 0): 3}, retry_until=gp.now + 10)
    gp.until(lambda: any(isinstance(e, CommitResult) and e.token == token for e in a.events), 20)
    result = next(e for e in a.events if isinstance(e, CommitResult) and e.token == token)
    if expected is None:
        assert result.error is None
        assert model_group.committed(cluster, "g")[("t", 0)] == 3
    else:
        assert type(result.error).__name__ == expected
    gp.until(lambda: _settled(gp), 60)  # and the member is (again) in the group


def test_async_commit_is_not_retried() -> None:
    cluster = _cluster()
    gp = GroupPump(cluster)
    _join(gp, "a", enable_auto_commit=False)
    gp.until(lambda: _settled(gp), 30)
    a = gp.members["a"]
    cluster.inject_error(COMMIT, 16, count=1)
    token = a.core.commit(gp.now, {TP("t", 0): 3})
    gp.until(lambda: any(isinstance(e, CommitResult) and e.token == token for e in a.events), 20)
    result = next(e for e in a.events if isinstance(e, CommitResult) and e.token == token)
    assert type(result.error).__name__ == "RetriableCommitFailedError"


def test_without_waiting_for_the_listener() -> None:
    cluster = _cluster()
    _produce(cluster, 24, 0.0)
    gp = GroupPump(cluster)
    for name in "ab":
        group = replace(GROUP, wait_for_listener=False)
        gp.add(name, group, CONFIG, [CooperativeStickyAssignor()]).core.subscribe(["t"], gp.now)
    gp.until(lambda: _settled(gp), 30)
    gp.advance(2)
    assert all(not m.core.awaiting_listener() for m in gp.members.values())
    consumed = {r for m in gp.members.values() for r in m.consumed}
    assert consumed == {(TP("t", p), o) for p in range(12) for o in range(2)}


def test_a_refused_subscribed_topic_is_reported_and_the_others_are_assigned() -> None:
    """As the Java consumer raises it from poll; the member stays with the topics it may read."""
    cluster = _cluster()
    cluster.create_topic("secret", partitions=2)
    cluster.inject_error(3, 29, topic="secret", count=1_000_000)  # Metadata: not authorized
    gp = GroupPump(cluster)
    member = gp.add("a", GROUP, CONFIG)
    member.core.subscribe(["t", "secret"], gp.now)
    gp.until(lambda: _settled(gp), 60)
    refused = [e for e in member.events if isinstance(e, ClientError)]
    assert refused and all(isinstance(e.error, TopicAuthorizationFailedError) for e in refused)
    assert member.owned() == ALL12
    _check_no_problems(gp)
