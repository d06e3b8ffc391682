"""Test-side driver for ``scripts/kafka-cluster`` (a real Apache Kafka cluster on loopback).

``scripts/`` is not a package, so the tool always runs as a subprocess of the current
interpreter. The objects here are what the ``kafka``, ``kafka_cluster3``, ``kafka_sasl`` and
``kafka_tls`` fixtures in ``conftest.py`` hand to tests.
"""

from __future__ import annotations

import json
import socket
import ssl
import struct
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from _tls import ServerCert

REPO_ROOT = Path(__file__).resolve().parent.parent
TOOL = REPO_ROOT / "scripts" / "kafka-cluster"

# Maven may have to download the jars on first use; a warm start takes seconds.
UP_TIMEOUT = 1800.0


class ClusterError(RuntimeError):
    """The tool failed; the message carries its stderr (with the broker log tail)."""


def run_tool(
    *args: str, timeout: float = 300.0, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``scripts/kafka-cluster ARGS`` and return the completed process (no check)."""
    return subprocess.run(
        [sys.executable, str(TOOL), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=False,
    )


def run_tool_ok(*args: str, timeout: float = 300.0) -> str:
    proc = run_tool(*args, timeout=timeout)
    if proc.returncode != 0:
        raise ClusterError(
            f"kafka-cluster {' '.join(args)} failed (exit {proc.returncode}):\n{proc.stderr}"
        )
    return proc.stdout


def _last_json_line(text: str) -> dict[str, Any]:
    lines = [line for line in text.splitlines() if line.startswith("{")]
    if not lines:
        raise ClusterError(f"kafka-cluster printed no JSON:\n{text}")
    result: dict[str, Any] = json.loads(lines[-1])
    return result


# --- A tiny raw Metadata v4 client, to ask every node for itself what it knows ---------------


def metadata_v4(
    host: str, port: int, topics: list[str] | None, timeout: float = 2.0
) -> tuple[list[int], dict[str, tuple[int, dict[int, tuple[int, int]]]]]:
    """Send Metadata v4 to one broker.

    Returns (broker ids, {topic: (error_code, {partition: (error_code, leader_id)})}).
    ``topics=None`` asks for every topic. Raises OSError when the node does not answer.
    """
    client = b"kafka-sansio-tests"
    if topics is None:
        body = struct.pack(">i", -1)
    else:
        body = struct.pack(">i", len(topics))
        for name in topics:
            raw = name.encode()
            body += struct.pack(">h", len(raw)) + raw
    body += b"\x00"  # allow_auto_topic_creation = false
    payload = struct.pack(">hhih", 3, 4, 7, len(client)) + client + body
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.settimeout(timeout)
        sock.sendall(struct.pack(">i", len(payload)) + payload)
        size = struct.unpack(">i", _recv_exact(sock, 4))[0]
        data = _recv_exact(sock, size)
    reader = _Reader(data)
    if reader.i32() != 7:
        raise OSError("correlation id mismatch")
    reader.i32()  # throttle_time_ms
    brokers = []
    for _ in range(reader.i32()):
        brokers.append(reader.i32())
        reader.string()  # host
        reader.i32()  # port
        reader.string()  # rack
    reader.string()  # cluster_id
    reader.i32()  # controller_id
    result: dict[str, tuple[int, dict[int, tuple[int, int]]]] = {}
    for _ in range(reader.i32()):
        t_err = reader.i16()
        name = reader.string() or ""
        reader.i8()  # is_internal
        parts: dict[int, tuple[int, int]] = {}
        for _ in range(reader.i32()):
            p_err = reader.i16()
            index = reader.i32()
            leader = reader.i32()
            for _ in range(2):  # replica_nodes, isr_nodes
                for _ in range(reader.i32()):
                    reader.i32()
            parts[index] = (p_err, leader)
        result[name] = (t_err, parts)
    return brokers, result


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise OSError("connection closed")
        buf += chunk
    return bytes(buf)


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def _take(self, fmt: str) -> int:
        (value,) = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += struct.calcsize(fmt)
        return int(value)

    def i8(self) -> int:
        return self._take(">b")

    def i16(self) -> int:
        return self._take(">h")

    def i32(self) -> int:
        return self._take(">i")

    def string(self) -> str | None:
        n = self.i16()
        if n < 0:
            return None
        raw = self.data[self.pos : self.pos + n]
        self.pos += n
        return raw.decode()


# --- The fixture object -------------------------------------------------------------------------


class KafkaCluster:
    """A running broker or cluster, as seen by tests.

    Attributes: ``bootstrap`` ("127.0.0.1:port,..."), ``host`` and ``port`` (first node),
    ``nodes`` (dicts from the tool's JSON), ``kafka_version``, ``cluster_id``, ``dir``; for
    SASL clusters also ``sasl_bootstrap``, ``users`` (name -> password) and ``mechanisms``.

    For TLS clusters: ``tls_bootstrap`` (the SSL listeners, "127.0.0.1:port,..."),
    ``tls_cafile`` (path of the PEM CA certificate that verifies them) and
    ``tls_server_hostname`` (a name the broker certificate is valid for; the advertised
    address 127.0.0.1 is valid too, so the default of checking the connected host works).
    """

    def __init__(
        self, info: dict[str, Any], *, managed: bool = True, default_rf: int | None = None
    ) -> None:
        self.info = info
        self.managed = managed
        self.dir: str | None = info.get("dir")
        self.bootstrap: str = info["bootstrap"]
        self.cluster_id: str | None = info.get("cluster_id")
        self.kafka_version: str = info.get("kafka_version") or "unknown"
        self.nodes: list[dict[str, Any]] = list(info["nodes"])
        self.host: str = self.nodes[0]["host"]
        self.port: int = int(self.nodes[0]["port"])
        self.default_rf = default_rf if default_rf is not None else min(len(self.nodes), 3)
        sasl = info.get("sasl") or None
        self.sasl_bootstrap: str | None = sasl["bootstrap"] if sasl else None
        self.users: dict[str, str] = dict(sasl["users"]) if sasl else {}
        self.mechanisms: list[str] = list(sasl["mechanisms"]) if sasl else []
        tls = info.get("tls") or None
        self.tls_bootstrap: str | None = tls["bootstrap"] if tls else None
        self.tls_cafile: str | None = None
        self.tls_server_hostname: str | None = None
        self._admin: Any = None

    def __repr__(self) -> str:
        return f"<KafkaCluster {self.bootstrap} kafka={self.kafka_version}>"

    # -- starting and stopping (tool-managed clusters) --

    @classmethod
    def up(
        cls,
        cluster_dir: Path | str,
        *,
        nodes: int = 1,
        sasl: bool = False,
        tls: ServerCert | None = None,
        owner_pid: int | None = None,
        timeout: float | None = None,
    ) -> KafkaCluster:
        """Start a cluster; with ``tls`` every node also gets an SSL listener serving that
        certificate (``tls_bootstrap``, ``tls_cafile`` and ``tls_server_hostname`` set)."""
        args = ["up", "--nodes", str(nodes), "--dir", str(cluster_dir)]
        if sasl:
            args.append("--sasl")
        if tls is not None:
            args += ["--tls-keystore", str(tls.keystore), "--tls-password", tls.password]
        if owner_pid is not None:
            args += ["--owner-pid", str(owner_pid)]
        if timeout is not None:
            args += ["--timeout", str(timeout)]
        info = _last_json_line(run_tool_ok(*args, timeout=UP_TIMEOUT))
        cluster = cls(info)
        if tls is not None:
            cluster.tls_cafile = str(tls.ca.cert)
            cluster.tls_server_hostname = (tls.dns_names or tls.ip_addresses)[0]
        return cluster

    @classmethod
    def external(cls, bootstrap: str) -> KafkaCluster:
        """Wrap an already running broker (nothing is started or stopped)."""
        first = bootstrap.split(",")[0].strip()
        host, _, port = first.rpartition(":")
        probe = cls(
            {"bootstrap": bootstrap, "nodes": [{"id": None, "host": host, "port": int(port)}]},
            managed=False,
        )
        md = probe.admin().list_topics(timeout=30)
        nodes = [
            {"id": b.id, "host": b.host, "port": b.port, "controller_port": None, "sasl_port": None}
            for b in sorted(md.brokers.values(), key=lambda b: b.id)
        ]
        info = {"bootstrap": bootstrap, "cluster_id": md.cluster_id, "nodes": nodes}
        cluster = cls(info, managed=False)
        cluster._admin = probe._admin
        return cluster

    def down(self) -> None:
        if self.managed and self.dir is not None:
            run_tool_ok("down", "--dir", self.dir, timeout=120)

    def _require_managed(self) -> str:
        if not self.managed or self.dir is None:
            raise RuntimeError("this broker is not managed by scripts/kafka-cluster")
        return self.dir

    def kill(self, node_id: int) -> None:
        """SIGKILL one node (it stays down until :meth:`start`)."""
        run_tool_ok("kill", str(node_id), "--dir", self._require_managed())

    def stop(self, node_id: int) -> None:
        """SIGTERM one node and wait for its exit."""
        run_tool_ok("stop", str(node_id), "--dir", self._require_managed())

    def start(self, node_id: int) -> dict[str, Any]:
        """Restart a stopped/killed node on its old ports and data; wait until it answers."""
        out = run_tool_ok("start", str(node_id), "--dir", self._require_managed())
        node = _last_json_line(out)
        self.nodes = [node if n["id"] == node_id else n for n in self.nodes]
        return node

    def status(self) -> dict[str, Any]:
        return _last_json_line(run_tool_ok("status", "--dir", self._require_managed()))

    # -- client-side helpers --

    def admin(self) -> Any:
        if self._admin is None:
            from confluent_kafka.admin import AdminClient

            self._admin = AdminClient({"bootstrap.servers": self.bootstrap})
        return self._admin

    def ssl_context(self) -> ssl.SSLContext:
        """A client context that verifies this cluster's SSL listeners (default checks on)."""
        if self.tls_cafile is None:
            raise RuntimeError("this cluster has no TLS listener")
        return ssl.create_default_context(cafile=self.tls_cafile)

    def client_config(
        self, mechanism: str | None = None, user: str = "alice", *, tls: bool = False
    ) -> dict[str, str]:
        """confluent-kafka settings to reach the cluster (over SASL when ``mechanism`` given,
        over TLS with the cluster's CA when ``tls``)."""
        if tls:
            if mechanism is not None:
                raise RuntimeError("the SASL listener is not TLS")
            if self.tls_bootstrap is None or self.tls_cafile is None:
                raise RuntimeError("this cluster has no TLS listener")
            return {
                "bootstrap.servers": self.tls_bootstrap,
                "security.protocol": "SSL",
                "ssl.ca.location": self.tls_cafile,
            }
        if mechanism is None:
            return {"bootstrap.servers": self.bootstrap}
        if self.sasl_bootstrap is None:
            raise RuntimeError("this cluster has no SASL listener")
        return {
            "bootstrap.servers": self.sasl_bootstrap,
            "security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanism": mechanism,
            "sasl.username": user,
            "sasl.password": self.users[user],
        }

    def _answering_nodes(self) -> list[tuple[str, int]]:
        return [(n["host"], int(n["port"])) for n in self.nodes]

    def create_topic(
        self,
        partitions: int = 1,
        replication_factor: int | None = None,
        config: dict[str, str] | None = None,
        prefix: str = "t",
        timeout: float = 60.0,
    ) -> str:
        """Create a uniquely named topic; return once every answering node has a leader for
        every partition in its metadata."""
        from confluent_kafka.admin import NewTopic

        name = f"{prefix}-{uuid.uuid4().hex[:10]}"
        rf = replication_factor if replication_factor is not None else self.default_rf
        futures = self.admin().create_topics(
            [NewTopic(name, num_partitions=partitions, replication_factor=rf, config=config or {})],
            operation_timeout=timeout,
            request_timeout=timeout,
        )
        futures[name].result(timeout=timeout)
        self.wait_topic(name, partitions, timeout=timeout)
        self.wait_leaders_serving(name, partitions, timeout=timeout)
        return name

    def wait_leaders_serving(self, name: str, partitions: int, timeout: float = 60.0) -> None:
        """Wait until every partition's leader answers ListOffsets without an error.

        Metadata names a leader slightly before that leader accepts requests for
        the partition; a test that sends one raw request right after creating a
        topic would otherwise see NOT_LEADER_OR_FOLLOWER now and then.
        """
        from confluent_kafka import KafkaException
        from confluent_kafka import TopicPartition as CTopicPartition
        from confluent_kafka.admin import OffsetSpec

        deadline = time.monotonic() + timeout
        wanted = {CTopicPartition(name, p): OffsetSpec.latest() for p in range(partitions)}
        while True:
            try:
                futures = self.admin().list_offsets(wanted, request_timeout=10)
                for future in futures.values():
                    future.result(timeout=10)
                return
            except KafkaException as exc:
                if time.monotonic() >= deadline:
                    raise TimeoutError(f"topic {name}: leaders not serving: {exc}") from exc
                time.sleep(0.05)

    def wait_topic(self, name: str, partitions: int, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        last: object = None
        while True:
            ready = 0
            answering = 0
            for host, port in self._answering_nodes():
                try:
                    _, topics = metadata_v4(host, port, [name])
                except (OSError, struct.error) as exc:
                    last = exc
                    continue
                answering += 1
                err, parts = topics.get(name, (-1, {}))
                last = (host, port, err, parts)
                if (
                    err == 0
                    and len(parts) == partitions
                    and all(p_err == 0 and leader >= 0 for p_err, leader in parts.values())
                ):
                    ready += 1
            if answering and ready == answering:
                return
            if time.monotonic() >= deadline:
                raise TimeoutError(f"topic {name} has no leader everywhere; last answer: {last}")
            time.sleep(0.05)

    def delete_topic(self, name: str, timeout: float = 60.0) -> None:
        futures = self.admin().delete_topics([name], operation_timeout=timeout)
        futures[name].result(timeout=timeout)

    def leader_of(self, topic: str, partition: int = 0) -> int:
        md = self.admin().list_topics(topic=topic, timeout=10)
        meta = md.topics[topic]
        if meta.error is not None:
            raise RuntimeError(f"metadata error for {topic}: {meta.error}")
        return int(meta.partitions[partition].leader)

    def broker_ids(self) -> set[int]:
        return set(self.admin().list_topics(timeout=10).brokers)

    def wait_broker_count(self, n: int, timeout: float = 60.0) -> None:
        """Wait until the cluster metadata lists exactly ``n`` live brokers."""
        deadline = time.monotonic() + timeout
        seen: set[int] = set()
        while True:
            try:
                seen = self.broker_ids()
            except Exception:  # a KafkaException while brokers come and go
                seen = set()
            if len(seen) == n:
                return
            if time.monotonic() >= deadline:
                raise TimeoutError(f"expected {n} brokers, metadata lists {sorted(seen)}")
            time.sleep(0.1)
