"""Shared fixtures: real Apache Kafka brokers started with ``scripts/kafka-cluster``.

- ``kafka`` (session): one KRaft node. Set ``KAFKA_SANSIO_BOOTSTRAP=host:port`` to use an
  already running broker instead (nothing is started or stopped then).
- ``kafka_cluster3`` (session, started on first use): three nodes, topics default to RF 3,
  plus ``kill``/``stop``/``start``/``leader_of``/``wait_broker_count``.
- ``kafka_sasl`` (session, started on first use): one node with a SASL_PLAINTEXT listener
  (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512); ``sasl_bootstrap``, ``users``, ``mechanisms``.
- ``kafka_tls`` (session, started on first use): one node with an SSL listener serving a
  certificate from a CA made for the session (``openssl``); ``tls_bootstrap``, ``tls_cafile``
  (PEM), ``tls_server_hostname`` ("localhost"; 127.0.0.1 verifies too), ``ssl_context()``
  and ``client_config(tls=True)``. Its plaintext ``bootstrap`` works as usual.
- ``topic`` (function): a fresh single-partition topic on ``kafka``.

Every cluster is started with ``--owner-pid`` set to this pytest process, so a watchdog
downs it even if pytest itself is killed. A broker that fails to start makes the tests that
need it ERROR with the broker's log tail.

Tests using these fixtures get the ``broker`` marker (and ``cluster3``/``sasl``)
automatically (``tls`` for ``kafka_tls``), so ``pytest -m "not broker"`` runs the
offline suite.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from _cluster import KafkaCluster
from _tls import make_ca, make_server_cert

_MARKERS = {
    "kafka": ("broker",),
    "topic": ("broker",),
    "kafka_cluster3": ("broker", "cluster3"),
    "kafka_sasl": ("broker", "sasl"),
    "kafka_tls": ("broker", "tls"),
}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "tls: needs the broker with a TLS listener")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        wanted: list[str] = []
        for fixture, markers in _MARKERS.items():
            if fixture in names:
                wanted += [m for m in markers if m not in wanted]
        for marker in wanted:
            if item.get_closest_marker(marker) is None:
                item.add_marker(marker)


def _start(tmp: Path, *, nodes: int = 1, sasl: bool = False) -> KafkaCluster:
    return KafkaCluster.up(tmp / "cluster", nodes=nodes, sasl=sasl, owner_pid=os.getpid())


@pytest.fixture(scope="session")
def kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaCluster]:
    """A single-node Kafka broker for the whole session."""
    external = os.environ.get("KAFKA_SANSIO_BOOTSTRAP")
    if external:
        yield KafkaCluster.external(external)
        return
    cluster = _start(tmp_path_factory.mktemp("kafka"))
    try:
        yield cluster
    finally:
        cluster.down()


@pytest.fixture(scope="session")
def kafka_cluster3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaCluster]:
    """A three-node Kafka cluster (combined broker+controller nodes) for the session."""
    cluster = _start(tmp_path_factory.mktemp("kafka3"), nodes=3)
    try:
        yield cluster
    finally:
        cluster.down()


@pytest.fixture(scope="session")
def kafka_sasl(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaCluster]:
    """A single-node broker with an extra SASL_PLAINTEXT listener."""
    cluster = _start(tmp_path_factory.mktemp("kafka-sasl"), sasl=True)
    try:
        yield cluster
    finally:
        cluster.down()


@pytest.fixture(scope="session")
def kafka_tls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaCluster]:
    """A single-node broker with an extra SSL listener and the CA that verifies it."""
    tmp = tmp_path_factory.mktemp("kafka-tls")
    ca = make_ca(tmp / "certs", "session-ca")
    server = make_server_cert(ca, tmp / "certs", "broker")
    cluster = KafkaCluster.up(tmp / "cluster", tls=server, owner_pid=os.getpid())
    try:
        yield cluster
    finally:
        cluster.down()


@pytest.fixture
def topic(kafka: KafkaCluster) -> Iterator[str]:
    """A fresh single-partition topic on ``kafka`` (deleted afterwards)."""
    name = kafka.create_topic()
    yield name
    with contextlib.suppress(Exception):
        kafka.delete_topic(name, timeout=10)
