"""Assignors and the consumer protocol's wire formats."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kafka_sansio._assignors import (
    Assignment,
    CooperativeStickyAssignor,
    RangeAssignor,
    RoundRobinAssignor,
    StickyAssignor,
    Subscription,
    decode_assignment,
    decode_subscription,
    encode_assignment,
    encode_subscription,
)
from kafka_sansio._errors import RemoteProtocolError
from kafka_sansio._types import TopicPartition as TP

# ------------------------------------------------------------------ wire


def test_subscription_v0_bytes_are_the_java_layout() -> None:
    data = encode_subscription(Subscription(("a",)), version=0)
    # int16 version, [string] topics, nullable bytes user data
    assert data == b"\x00\x00" + b"\x00\x00\x00\x01" + b"\x00\x01a" + b"\xff\xff\xff\xff"


def test_subscription_v3_round_trip() -> None:
    sub = Subscription(
        ("b", "a"), b"ud", (TP("a", 2), TP("a", 0), TP("b", 1)), generation_id=7, rack_id="r1"
    )
    back = decode_subscription(encode_subscription(sub))
    assert back.topics == ("a", "b")
    assert back.user_data == b"ud"
    assert back.owned_partitions == (TP("a", 0), TP("a", 2), TP("b", 1))
    assert back.generation_id == 7
    assert back.rack_id == "r1"


def test_subscription_from_a_newer_version_reads_the_known_fields() -> None:
    data = bytearray(encode_subscription(Subscription(("t",), generation_id=4)))
    data[0:2] = struct.pack(">h", 9)
    data += b"\x01\x02\x03"  # a field this library does not know yet
    back = decode_subscription(bytes(data))
    assert back.topics == ("t",)
    assert back.generation_id == 4


def test_assignment_round_trip_and_empty_bytes() -> None:
    a = Assignment((TP("x", 1), TP("x", 0)), b"\x00\x01")
    back = decode_assignment(encode_assignment(a))
    assert back.partitions == (TP("x", 0), TP("x", 1))
    assert back.user_data == b"\x00\x01"
    assert decode_assignment(b"") == Assignment()


@pytest.mark.parametrize("data", [b"\x00", b"\xff\xff\x00", b"\x00\x00\x00\x00\x00\x05"])
def test_malformed_subscription_raises_a_protocol_error(data: bytes) -> None:
    with pytest.raises(RemoteProtocolError):
        decode_subscription(data)


# ------------------------------------------------------------------ Java's documented results


def _parts(result: dict[str, Assignment]) -> dict[str, list[TP]]:
    return {m: list(a.partitions) for m, a in result.items()}


def test_range_matches_java() -> None:
    subs = {"c0": Subscription(("t0", "t1")), "c1": Subscription(("t0", "t1"))}
    result = _parts(RangeAssignor().assign({"t0": 3, "t1": 3}, subs))
    assert result == {
        "c0": [TP("t0", 0), TP("t0", 1), TP("t1", 0), TP("t1", 1)],
        "c1": [TP("t0", 2), TP("t1", 2)],
    }


def test_roundrobin_matches_java() -> None:
    subs = {"C0": Subscription(("t0", "t1")), "C1": Subscription(("t0", "t1"))}
    result = _parts(RoundRobinAssignor().assign({"t0": 3, "t1": 3}, subs))
    assert result == {
        "C0": [TP("t0", 0), TP("t0", 2), TP("t1", 1)],
        "C1": [TP("t0", 1), TP("t1", 0), TP("t1", 2)],
    }


def test_roundrobin_with_different_subscriptions_matches_java() -> None:
    # The Java javadoc's example: C0 [t0], C1 [t0, t1], C2 [t0, t1, t2].
    subs = {
        "C0": Subscription(("t0",)),
        "C1": Subscription(("t0", "t1")),
        "C2": Subscription(("t0", "t1", "t2")),
    }
    result = _parts(RoundRobinAssignor().assign({"t0": 1, "t1": 2, "t2": 3}, subs))
    assert result == {
        "C0": [TP("t0", 0)],
        "C1": [TP("t1", 0)],
        "C2": [TP("t1", 1), TP("t2", 0), TP("t2", 1), TP("t2", 2)],
    }


def test_static_members_sort_before_dynamic_ones() -> None:
    subs = {
        "a-dynamic": Subscription(("t",)),
        "z-static": Subscription(("t",), group_instance_id="i1"),
    }
    result = _parts(RangeAssignor().assign({"t": 3}, subs))
    assert result["z-static"] == [TP("t", 0), TP("t", 1)]


def test_sticky_user_data_is_the_java_layout() -> None:
    data = StickyAssignor().subscription_user_data(frozenset({"t"}), frozenset({TP("t", 1)}), 5)
    assert data == (
        b"\x00\x00\x00\x01" + b"\x00\x01t" + b"\x00\x00\x00\x01" + b"\x00\x00\x00\x01"
        b"\x00\x00\x00\x05"
    )


def test_cooperative_user_data_is_the_generation() -> None:
    data = CooperativeStickyAssignor().subscription_user_data(frozenset(), frozenset(), 3)
    assert data == b"\x00\x00\x00\x03"


# ------------------------------------------------------------------ properties

topics_st = st.dictionaries(
    st.sampled_from(["a", "b", "c"]), st.integers(min_value=0, max_value=12), min_size=1
)


@st.composite
def groups(draw: st.DrawFn, same: bool = False) -> tuple[dict[str, int], dict[str, Subscription]]:
    topics = draw(topics_st)
    names = draw(st.lists(st.sampled_from(list("mnopqrs")), min_size=1, max_size=6, unique=True))
    subs = {}
    for name in names:
        if same:
            chosen = tuple(sorted(topics))
        else:
            chosen = tuple(draw(st.lists(st.sampled_from(sorted(topics)), min_size=1, unique=True)))
        subs["member-" + name] = Subscription(chosen)
    return topics, subs


def _check_valid(topics: dict[str, int], subs: dict[str, Subscription], result: dict) -> None:
    assert set(result) == set(subs)
    seen: list[TP] = []
    for member, assignment in result.items():
        for tp in assignment.partitions:
            assert tp.topic in subs[member].topics
            seen.append(tp)
    assert len(seen) == len(set(seen)), "a partition went to two members"


ALL = [RangeAssignor(), RoundRobinAssignor(), StickyAssignor(), CooperativeStickyAssignor()]


@given(groups())
@settings(max_examples=150, deadline=None)
def test_every_subscribed_partition_has_exactly_one_owner(group) -> None:  # type: ignore[no-untyped-def]
    topics, subs = group
    for assignor in ALL:
        result = assignor.assign(topics, subs)
        _check_valid(topics, subs, result)
        everything = {
            TP(t, p)
            for t, n in topics.items()
            if any(t in s.topics for s in subs.values())
            for p in range(n)
        }
        assert {tp for a in result.values() for tp in a.partitions} == everything


@given(groups(same=True))
@settings(max_examples=100, deadline=None)
def test_balanced_when_subscriptions_match(group) -> None:  # type: ignore[no-untyped-def]
    topics, subs = group
    for assignor in (RoundRobinAssignor(), StickyAssignor(), CooperativeStickyAssignor()):
        sizes = [len(a.partitions) for a in assignor.assign(topics, subs).values()]
        assert max(sizes) - min(sizes) <= 1


def _resubscribe(
    subs: dict[str, Subscription], result: dict[str, Assignment], generation: int, eager: bool
) -> dict[str, Subscription]:
    out = {}
    for member, sub in subs.items():
        owned = result[member].partitions if member in result else ()
        if eager:
            ud = StickyAssignor().subscription_user_data(frozenset(), frozenset(owned), generation)
            out[member] = Subscription(sub.topics, ud)
        else:
            out[member] = Subscription(sub.topics, None, owned, generation)
    return out


@given(groups(same=True), st.data())
@settings(max_examples=100, deadline=None)
def test_sticky_keeps_what_balance_allows(group, data) -> None:  # type: ignore[no-untyped-def]
    topics, subs = group
    assignor = StickyAssignor()
    first = assignor.assign(topics, subs)
    # One member leaves or one joins.
    changed = dict(subs)
    if len(subs) > 1 and data.draw(st.booleans()):
        del changed[data.draw(st.sampled_from(sorted(subs)))]
    else:
        changed["member-new"] = Subscription(tuple(sorted(topics)))
    again = _resubscribe(changed, first, 1, eager=True)
    second = assignor.assign(topics, again)
    _check_valid(topics, changed, second)
    total = sum(topics.values())
    floor = total // len(changed)
    for member in changed:
        if member in first:
            kept = set(first[member].partitions) & set(second[member].partitions)
            assert len(kept) >= min(len(first[member].partitions), floor)


@given(groups(), st.data())
@settings(max_examples=100, deadline=None)
def test_cooperative_never_revokes_a_partition_that_stays(group, data) -> None:  # type: ignore[no-untyped-def]
    topics, subs = group
    assignor = CooperativeStickyAssignor()
    owned = _parts(assignor.assign(topics, subs))
    changed = dict(subs)
    if len(subs) > 1 and data.draw(st.booleans()):
        del changed[data.draw(st.sampled_from(sorted(subs)))]
    else:
        changed["member-new"] = Subscription(tuple(sorted(topics)))
    # Round 1: members report what they own.
    round1 = assignor.assign(topics, _resubscribe(changed, _wrap(owned), 1, eager=False))
    _check_valid(topics, changed, round1)
    revoked = {m: set(owned.get(m, ())) - set(round1[m].partitions) for m in changed if m in owned}
    for member, assignment in round1.items():
        for tp in assignment.partitions:
            others = [o for o in changed if o != member and tp in owned.get(o, ())]
            assert not others, f"{tp} handed to {member} while {others} still own it"
    # Round 2 (after the revocations): the revoked partitions move elsewhere.
    round2 = assignor.assign(topics, _resubscribe(changed, round1, 2, eager=False))
    _check_valid(topics, changed, round2)
    for member, gone in revoked.items():
        assert not gone & set(round2[member].partitions), "revoked, then given back"
        # What the member kept in round 1 it keeps in round 2.
        assert set(round1[member].partitions) <= set(round2[member].partitions)
    assigned = {tp for a in round2.values() for tp in a.partitions}
    assert assigned == {
        TP(t, p)
        for t, n in topics.items()
        if any(t in s.topics for s in changed.values())
        for p in range(n)
    }


def _wrap(parts: dict[str, list[TP]]) -> dict[str, Assignment]:
    return {m: Assignment(tuple(p)) for m, p in parts.items()}
