"""scripts/kafka-cluster, exercised as a subprocess: a three-node lifecycle and error paths."""

from __future__ import annotations

import json
import os
import shutil
import socket
import ssl
import struct
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from _cluster import KafkaCluster, metadata_v4, run_tool
from confluent_kafka import Consumer, Producer, TopicPartition


def _processes_mentioning(text: str) -> list[int]:
    """Live (non-zombie) processes whose command line contains ``text``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if text in cmdline and state not in ("Z", "X"):
            found.append(int(entry.name))
    return found


def _pid_running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def _wait_until(predicate, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.1)


def _produce_consume_acks_all(cluster: KafkaCluster, topic: str, count: int = 5) -> None:
    values = [f"v{i}-{uuid.uuid4().hex[:6]}".encode() for i in range(count)]
    errors: list[object] = []
    producer = Producer(
        {"bootstrap.servers": cluster.bootstrap, "acks": "all", "message.timeout.ms": 60000}
    )
    for i, value in enumerate(values):
        producer.produce(
            topic, key=str(i).encode(), value=value, on_delivery=lambda e, m: errors.append(e)
        )
    assert producer.flush(90) == 0
    assert errors == [None] * count
    consumer = Consumer(
        {
            "bootstrap.servers": cluster.bootstrap,
            "group.id": f"tool-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
        }
    )
    got: list[bytes] = []
    try:
        consumer.assign([TopicPartition(topic, 0, 0)])
        deadline = time.monotonic() + 60
        while len(got) < count and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is not None:
                assert msg.error() is None, msg.error()
                got.append(msg.value())
    finally:
        consumer.close()
    assert got[:count] == values


# --- error paths that need no running cluster ------------------------------------------------


def _env_with_path(path: Path, cache: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = str(path)
    env["KAFKA_SANSIO_CACHE"] = str(cache)
    return env


def test_no_java_on_path_fails_before_any_download(tmp_path: Path) -> None:
    empty_bin = tmp_path / "bin"
    empty_bin.mkdir()
    cache = tmp_path / "cache"
    proc = run_tool(
        "up", "--dir", str(tmp_path / "c"), env=_env_with_path(empty_bin, cache), timeout=60
    )
    assert proc.returncode != 0
    assert "no `java` on PATH" in proc.stderr
    assert "Java 17+" in proc.stderr
    assert proc.stdout == ""
    assert not cache.exists(), "the tool tried to fetch jars although java is missing"


def test_missing_maven_with_empty_cache_is_reported(tmp_path: Path) -> None:
    java = shutil.which("java")
    assert java is not None
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "java").symlink_to(Path(java).resolve())
    proc = run_tool(
        "up",
        "--dir",
        str(tmp_path / "c"),
        env=_env_with_path(bin_dir, tmp_path / "cache"),
        timeout=120,
    )
    assert proc.returncode != 0
    assert "`mvn` (Apache Maven) is not on PATH" in proc.stderr
    assert not list((tmp_path / "cache").rglob("*.jar"))


def test_failing_maven_shows_its_output(tmp_path: Path) -> None:
    java = shutil.which("java")
    assert java is not None
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "java").symlink_to(Path(java).resolve())
    fake = bin_dir / "mvn"
    fake.write_text(
        "#!/bin/sh\necho 'resolution line one'\necho 'ERROR: could not resolve' >&2\nexit 3\n"
    )
    fake.chmod(0o755)
    cache = tmp_path / "cache"
    proc = run_tool(
        "up", "--dir", str(tmp_path / "c"), env=_env_with_path(bin_dir, cache), timeout=120
    )
    assert proc.returncode != 0
    assert "Maven failed to fetch Kafka" in proc.stderr and "(exit 3)" in proc.stderr
    assert "ERROR: could not resolve" in proc.stderr
    # The failed download left neither a cache nor a half-filled staging directory.
    leftovers = [p.relative_to(cache).as_posix() for p in cache.rglob("*")]
    assert not [x for x in leftovers if x.endswith("libs") or ".download-" in x], leftovers
    assert not [x for x in leftovers if x.endswith(".jar")], leftovers


def test_owner_pid_must_exist(tmp_path: Path) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    proc = run_tool("up", "--dir", str(tmp_path / "c"), "--owner-pid", str(dead.pid), timeout=60)
    assert proc.returncode != 0
    assert f"--owner-pid {dead.pid}: no such running process" in proc.stderr


@pytest.mark.broker
def test_broker_not_up_in_time_prints_log_tail_and_leaves_no_jvm(tmp_path: Path) -> None:
    cluster_dir = tmp_path / "slow"
    proc = run_tool("up", "--dir", str(cluster_dir), "--timeout", "0.5", timeout=300)
    assert proc.returncode != 0
    assert "node 1 did not come up within 0.5s" in proc.stderr
    assert "last lines of" in proc.stderr and "kafka.log" in proc.stderr
    assert proc.stdout == ""
    assert _processes_mentioning(str(cluster_dir)) == []
    state = json.loads((cluster_dir / "cluster.json").read_text())
    assert state["running"] is False
    assert all(n["pid"] is None for n in state["nodes"])


def test_up_refuses_to_wipe_a_foreign_directory(tmp_path: Path) -> None:
    precious = tmp_path / "precious.txt"
    precious.write_text("keep me")
    proc = run_tool("up", "--dir", str(tmp_path), timeout=120)
    assert proc.returncode != 0
    assert "refusing to wipe" in proc.stderr
    assert precious.read_text() == "keep me"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--tls-keystore", "KEYSTORE"], "--tls-keystore needs --tls-password"),
        (["--tls-password", "pw"], "--tls-password needs --tls-keystore"),
        (["--tls-keystore", "MISSING", "--tls-password", "pw"], "--tls-keystore: cannot read"),
    ],
    ids=["no-password", "no-keystore", "missing-file"],
)
def test_tls_options_are_checked_before_anything_starts(
    tmp_path: Path, options: list[str], message: str
) -> None:
    keystore = tmp_path / "keystore.p12"
    keystore.write_bytes(b"not read")
    paths = {"KEYSTORE": str(keystore), "MISSING": str(tmp_path / "absent.p12")}
    cluster_dir = tmp_path / "c"
    proc = run_tool("up", "--dir", str(cluster_dir), *[paths.get(o, o) for o in options])
    assert proc.returncode == 1
    assert message in proc.stderr
    assert proc.stdout == ""
    assert not cluster_dir.exists()


def test_tls_listener_is_reported_and_survives_a_restart(kafka_tls: KafkaCluster) -> None:
    """``up --tls-keystore`` (the kafka_tls fixture) reports the SSL listener in ``status``,
    keeps its own copy of the keystore, and ``start`` brings the listener back."""
    assert kafka_tls.dir is not None and kafka_tls.tls_cafile is not None
    status = kafka_tls.status()
    assert status["tls"] == {"bootstrap": kafka_tls.tls_bootstrap}
    (node,) = status["nodes"]
    assert kafka_tls.tls_bootstrap == f"127.0.0.1:{node['tls_port']}"
    assert node["tls_port"] not in (node["port"], node["controller_port"])
    state = json.loads((Path(kafka_tls.dir) / "cluster.json").read_text())
    assert Path(state["tls"]["keystore"]).parent == Path(kafka_tls.dir)
    assert "password" not in status["tls"]

    def answers_over_tls() -> bool:
        context = ssl.create_default_context(cafile=kafka_tls.tls_cafile)
        try:
            with (
                socket.create_connection(("127.0.0.1", node["tls_port"]), timeout=5) as raw,
                context.wrap_socket(raw, server_hostname="localhost") as sock,
            ):
                # ApiVersions v0 with correlation id 5: the answer echoes it, error code 0.
                client = b"t"
                payload = struct.pack(">hhih", 18, 0, 5, len(client)) + client
                sock.sendall(struct.pack(">i", len(payload)) + payload)
                head = b""
                while len(head) < 10 and (chunk := sock.recv(10 - len(head))):
                    head += chunk
        except OSError:
            return False
        return len(head) == 10 and struct.unpack(">iih", head)[1:] == (5, 0)

    assert answers_over_tls()
    kafka_tls.stop(node["id"])
    assert not answers_over_tls()
    kafka_tls.start(node["id"])
    assert answers_over_tls()
    brokers, _ = metadata_v4("127.0.0.1", node["port"], [])  # plaintext is still there
    assert brokers == [node["id"]]


# --- the owner-pid watchdog ----------------------------------------------------------------------


@pytest.mark.broker
def test_watchdog_downs_cluster_when_owner_dies(tmp_path: Path) -> None:
    owner = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    cluster_dir = tmp_path / "watched"
    try:
        cluster = KafkaCluster.up(cluster_dir, owner_pid=owner.pid)
        pids = [n["pid"] for n in cluster.nodes]
        assert all(_pid_running(pid) for pid in pids)
        watchdogs = _processes_mentioning("_watchdog")
        assert any(str(cluster_dir) in _cmd(pid) for pid in watchdogs)
        brokers, _ = metadata_v4(cluster.host, cluster.port, [])
        assert brokers == [1]
    finally:
        owner.kill()
        owner.wait()
    _wait_until(
        lambda: (
            not any(_pid_running(pid) for pid in pids)
            and not _processes_mentioning(str(cluster_dir))
        ),
        60,
        "the watchdog to down the cluster",
    )
    assert not cluster_dir.exists()


def _cmd(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


# --- the shared three-node cluster (the kafka_cluster3 fixture, itself started with
# `kafka-cluster up --nodes 3`); every test leaves it with three live brokers ----------------


def _restore(cluster: KafkaCluster) -> None:
    """Restart any node a failed test left down, so later tests see three brokers."""
    for node in cluster.status()["nodes"]:
        if not node["alive"]:
            cluster.start(node["id"])
    cluster.wait_broker_count(3, timeout=60)


@pytest.fixture
def cluster3(kafka_cluster3: KafkaCluster) -> Iterator[KafkaCluster]:
    try:
        yield kafka_cluster3
    finally:
        _restore(kafka_cluster3)


def test_up_three_nodes(cluster3: KafkaCluster) -> None:
    assert len(cluster3.nodes) == 3
    assert [n["id"] for n in cluster3.nodes] == [1, 2, 3]
    assert cluster3.bootstrap == ",".join(f"127.0.0.1:{n['port']}" for n in cluster3.nodes)
    assert cluster3.kafka_version.startswith("4.")
    assert cluster3.cluster_id
    for node in cluster3.nodes:
        assert _pid_running(node["pid"])
        assert Path(node["log"]).is_file()
        brokers, _ = metadata_v4("127.0.0.1", node["port"], [])
        assert sorted(brokers) == [1, 2, 3]
    status = cluster3.status()
    assert status["running"] is True
    assert [n["alive"] for n in status["nodes"]] == [True, True, True]
    cluster3.wait_broker_count(3, timeout=30)


def test_kill_then_start_node(cluster3: KafkaCluster) -> None:
    topic = cluster3.create_topic(prefix="rf3")
    md = cluster3.admin().list_topics(topic=topic, timeout=10).topics[topic]
    assert sorted(md.partitions[0].replicas) == [1, 2, 3]

    old_pid = next(n["pid"] for n in cluster3.nodes if n["id"] == 2)
    cluster3.kill(2)
    assert not _pid_running(old_pid)
    cluster3.wait_broker_count(2, timeout=60)
    status = cluster3.status()
    assert [n["alive"] for n in status["nodes"]] == [True, False, True]
    # min.insync.replicas=2: acks=all still succeeds with two of three replicas.
    _produce_consume_acks_all(cluster3, topic)

    node = cluster3.start(2)
    assert node["id"] == 2 and node["pid"] != old_pid and _pid_running(node["pid"])
    cluster3.wait_broker_count(3, timeout=60)
    topic2 = cluster3.create_topic(prefix="rf3b")
    md = cluster3.admin().list_topics(topic=topic2, timeout=10).topics[topic2]
    assert sorted(md.partitions[0].replicas) == [1, 2, 3]
    _produce_consume_acks_all(cluster3, topic2)


def test_leader_moves_when_its_node_is_killed(cluster3: KafkaCluster) -> None:
    topic = cluster3.create_topic(prefix="failover")
    leader = cluster3.leader_of(topic, 0)
    assert leader in (1, 2, 3)
    cluster3.kill(leader)
    cluster3.wait_broker_count(2, timeout=60)
    _wait_until(
        lambda: cluster3.leader_of(topic, 0) not in (leader, -1), 60, "a new partition leader"
    )
    _produce_consume_acks_all(cluster3, topic)
    cluster3.start(leader)
    cluster3.wait_broker_count(3, timeout=60)


def test_start_on_a_taken_port_is_a_clear_error(cluster3: KafkaCluster) -> None:
    node = next(n for n in cluster3.nodes if n["id"] == 3)
    cluster3.stop(3)
    assert not _pid_running(node["pid"])
    squatter = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        # SO_REUSEADDR: the stopped broker's closed connections may sit in TIME_WAIT.
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind(("127.0.0.1", node["port"]))
        squatter.listen(1)
        proc = run_tool("start", "3", "--dir", str(cluster3.dir), timeout=60)
        assert proc.returncode != 0
        assert "cannot start node 3" in proc.stderr
        assert f"port {node['port']}" in proc.stderr and "already in use" in proc.stderr
        assert proc.stdout == ""
    finally:
        squatter.close()
    cluster3.start(3)
    cluster3.wait_broker_count(3, timeout=60)


# --- `down` on a cluster of its own ----------------------------------------------------------


@pytest.mark.broker
@pytest.mark.cluster3
def test_down_leaves_no_process(tmp_path: Path) -> None:
    cluster_dir = tmp_path / "downed"
    cluster = KafkaCluster.up(cluster_dir, nodes=3, owner_pid=os.getpid())
    try:
        pids = [n["pid"] for n in cluster.status()["nodes"]]
        assert len(pids) == 3 and all(_pid_running(pid) for pid in pids)
        assert _processes_mentioning(str(cluster_dir))
        proc = run_tool("down", "--dir", str(cluster_dir), timeout=120)
        assert proc.returncode == 0, proc.stderr
        assert [pid for pid in pids if _pid_running(pid)] == []
        # Neither the JVMs nor the watchdog mention the directory any more.
        _wait_until(lambda: not _processes_mentioning(str(cluster_dir)), 10, "the watchdog to exit")
        assert not cluster_dir.exists()
        again = run_tool("down", "--dir", str(cluster_dir), timeout=60)
        assert again.returncode == 0, again.stderr
        status = run_tool("status", "--dir", str(cluster_dir), timeout=60)
        assert json.loads(status.stdout)["running"] is False
    finally:
        cluster.down()
