"""The partition state machine and the fetch session, in isolation."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kafka_sansio import LocalProtocolError, TopicPartition
from kafka_sansio._fetch_session import FetchSession, FetchTarget
from kafka_sansio._subscription import TRANSITIONS, FetchState, PartitionState

INPUTS = sorted({event for _, event in TRANSITIONS})
TP = TopicPartition("t", 0)


@given(st.sampled_from(list(FetchState)), st.sampled_from(INPUTS))
def test_every_state_input_pair_transitions_or_raises(state: FetchState, event: str) -> None:
    p = PartitionState(TP)
    p.state = state
    if (state, event) in TRANSITIONS:
        p.transition(event)
        assert p.state is TRANSITIONS[(state, event)]
    else:
        with pytest.raises(LocalProtocolError):
            p.transition(event)
        assert p.state is state


def test_every_input_is_used_by_the_consumer() -> None:
    from pathlib import Path

    import kafka_sansio._consumer as consumer
    import kafka_sansio._subscription as subscription

    table_module = Path(subscription.__file__).read_text()
    start = table_module.index("TRANSITIONS: dict")
    end = table_module.index("\n}\n", start)
    source = Path(consumer.__file__).read_text() + table_module[:start] + table_module[end:]
    unused = [event for event in INPUTS if f'"{event}"' not in source]
    assert not unused, f"transitions nobody takes: {unused}"


def test_seek_makes_buffered_records_and_answers_stale() -> None:
    p = PartitionState(TP)
    p.seek(10)
    generation, fetch_generation = p.generation, p.fetch_generation
    p.paused = True
    p.clear_buffer()
    assert p.generation == generation  # a pause keeps resets in flight valid
    assert p.fetch_generation == fetch_generation + 1
    p.seek(5)
    assert p.generation == generation + 1 and p.position == 5 and p.fetch_offset == 5


def target(offset: int) -> FetchTarget:
    return FetchTarget(offset, 1000, 0)


def test_fetch_session_full_then_incremental() -> None:
    a, b, c = TopicPartition("t", 0), TopicPartition("t", 1), TopicPartition("t", 2)
    session = FetchSession()
    first = session.build({a: target(0), b: target(0)})
    assert first.full and (first.session_id, first.epoch) == (0, 0)
    session.handle_success(first, response_session_id=77)
    # a moved on, b did not, c is new.
    second = session.build({a: target(5), b: target(0), c: target(0)})
    assert not second.full and (second.session_id, second.epoch) == (77, 1)
    assert set(second.to_send) == {a, c} and second.to_forget == ()
    session.handle_success(second, response_session_id=77)
    third = session.build({c: target(3)})
    assert third.epoch == 2 and set(third.to_send) == {c} and set(third.to_forget) == {a, b}
    session.handle_failure()
    fourth = session.build({c: target(3)})
    assert fourth.full and (fourth.session_id, fourth.epoch) == (0, 0)


def test_broker_without_sessions_gets_full_sessionless_requests() -> None:
    session = FetchSession()
    first = session.build({TP: target(0)})
    session.handle_success(first, response_session_id=0)  # the broker made no session
    again = session.build({TP: target(4)})
    assert again.full and again.session_id == 0
    old = FetchSession(supported=False)
    assert old.build({TP: target(0)}).epoch == -1
