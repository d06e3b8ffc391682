"""The model broker must behave like Apache Kafka wherever the consumer can tell.

Each scenario runs against the in-memory model (fake clock) and the real
broker; both must pass the scenario's own assertions and report exactly the
same trace of events and delivered offsets.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from _scenarios import SCENARIOS, BrokerHarness, ModelHarness


@pytest.fixture
def broker_harness(kafka: Any) -> Iterator[BrokerHarness]:
    harness = BrokerHarness(kafka)
    yield harness
    harness.close()


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_model_matches_broker(name: str, broker_harness: BrokerHarness) -> None:
    scenario = SCENARIOS[name]
    on_model = scenario(ModelHarness())
    on_broker = scenario(broker_harness)
    assert on_model == on_broker
    assert on_model, "a scenario must observe something"
