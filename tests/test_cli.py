"""``kafka-sansio`` as a subprocess, against the real broker and against ``mock-broker``."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

CLI = [sys.executable, "-m", "kafka_sansio.transports._cli"]


def run(*args: str, stdin: str | None = None, env: dict[str, str] | None = None) -> Any:
    environ = {k: v for k, v in os.environ.items() if k != "KAFKA_SANSIO_BOOTSTRAP"}
    environ.update(env or {})
    return subprocess.run(
        [*CLI, *args], input=stdin, capture_output=True, text=True, timeout=120, env=environ
    )


def ok(*args: str, stdin: str | None = None, env: dict[str, str] | None = None) -> list[Any]:
    """Run, expect exit 0, and parse stdout as JSON lines."""
    result = run(*args, stdin=stdin, env=env)
    assert result.returncode == 0, f"{args}: {result.stderr}"
    return [json.loads(line) for line in result.stdout.splitlines()]


@pytest.fixture(scope="module")
def mock_broker() -> Iterator[str]:
    proc = subprocess.Popen(
        [*CLI, "mock-broker", "--brokers", "2", "--topic", "seeded:2", "--topic", "one"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        bootstrap = proc.stdout.readline().strip()
        assert bootstrap.count(",") == 1, bootstrap
        yield bootstrap
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            code = proc.wait(20)
        finally:
            proc.kill()
    assert code == 0


@pytest.fixture(params=["mock", "kafka"])
def bootstrap(request: pytest.FixtureRequest) -> str:
    if request.param == "mock":
        return str(request.getfixturevalue("mock_broker"))
    return str(request.getfixturevalue("kafka").bootstrap)


def test_topic_produce_consume_offsets_round_trip(bootstrap: str) -> None:
    env = {"KAFKA_SANSIO_BOOTSTRAP": bootstrap}  # the environment stands in for --bootstrap
    topic = f"cli-{uuid.uuid4().hex[:8]}"

    (created,) = ok("topics", "create", topic, "--partitions", "3", "--replication-factor",
                    "1", "--config", "retention.ms=600000", env=env)  # fmt: skip
    assert created["topic"] == topic and created["created"] and created["partitions"] == 3
    again = run("topics", "create", topic, env=env)
    assert again.returncode == 1 and "TopicAlreadyExistsError" in again.stderr
    assert ok("topics", "create", topic, "--if-not-exists", env=env)[0]["exists"]
    assert topic in run("topics", "list", env=env).stdout.split()
    (described,) = _describe_until(topic, 3, env)
    assert [p["partition"] for p in described["partitions"]] == [0, 1, 2]
    assert described["topic_id"] == created["topic_id"]

    lines = "a\nkey-b=b\n\nc\n"  # the empty line is skipped
    (summary,) = ok("produce", topic, "--partition", "0", "--key-separator", "=", stdin=lines,
                    env=env)  # fmt: skip
    assert summary == {"topic": topic, "produced": 3, "failed": 0, "offsets": {"0": [0, 2]}}
    stamp = int(time.time() * 1000) - 60_000
    jsonl = "".join(
        json.dumps(obj) + "\n"
        for obj in [
            {"value": "j0", "key": "k", "partition": 1, "timestamp": stamp},
            {"value": {"nested": 1}, "partition": 1, "timestamp": stamp + 1000},
            {"value_b64": "AP8=", "headers": {"h": "v"}, "partition": 1, "timestamp": stamp + 2000},
            {"value": None, "key": "tombstone", "partition": 2},
        ]
    )
    (summary,) = ok("produce", topic, "--json", "--compression", "gzip", stdin=jsonl, env=env)
    assert summary["produced"] == 4 and summary["offsets"] == {"1": [0, 2], "2": [0, 0]}

    records = ok("consume", topic, env=env)
    assert len(records) == 7
    by_partition = {p: [r for r in records if r["partition"] == p] for p in range(3)}
    assert [(r["offset"], r["key"], r["value"]) for r in by_partition[0]] == [
        (0, None, "a"),
        (1, "key-b", "b"),
        (2, None, "c"),
    ]
    p1 = by_partition[1]
    assert [r["timestamp"] for r in p1] == [stamp, stamp + 1000, stamp + 2000]
    assert json.loads(p1[1]["value"]) == {"nested": 1}
    assert p1[2]["value"] is None and p1[2]["value_b64"] == "AP8="
    assert p1[2]["headers"] == [["h", "v"]]
    assert by_partition[2][0]["key"] == "tombstone" and by_partition[2][0]["value"] is None

    # The consumer's output goes back in through produce --json unchanged.
    copied = ok("produce", topic, "--json", stdin="".join(json.dumps(r) + "\n" for r in p1),
                env=env)  # fmt: skip
    assert copied[0]["offsets"] == {"1": [3, 5]}

    two = ok("consume", topic, "--partition", "0", "--count", "2", env=env)
    assert [r["value"] for r in two] == ["a", "b"]
    tail = ok("consume", topic, "--partition", "0", "--from", "1", env=env)
    assert [r["offset"] for r in tail] == [1, 2]
    since = ok("consume", topic, "--partition", "1", "--from-time", str(stamp + 500), env=env)
    assert [r["offset"] for r in since] == [1, 2, 3, 4, 5]
    assert ok("consume", topic, "--from", "end", env=env) == []

    offsets = ok("offsets", topic, env=env)
    assert [(o["partition"], o["earliest"], o["latest"]) for o in offsets] == [
        (0, 0, 3),
        (1, 0, 6),
        (2, 0, 1),
    ]
    (at,) = ok("offsets", topic, "--partition", "1", "--time", str(stamp + 1), env=env)
    assert (at["offset"], at["timestamp"]) == (1, stamp + 1000)
    (latest,) = ok("offsets", topic, "--partition", "2", "--time", "latest", env=env)
    assert latest["offset"] == 1

    assert ok("topics", "alter", topic, "--partitions", "4", env=env) == [
        {"topic": topic, "partitions": 4}
    ]
    _describe_until(topic, 4, env)
    assert ok("topics", "delete", topic, env=env) == [{"topic": topic, "deleted": True}]
    gone = run("topics", "delete", topic, env=env)
    assert gone.returncode == 1 and "unknown topic" in gone.stderr
    assert ok("topics", "delete", topic, "--if-exists", env=env) == [
        {"topic": topic, "deleted": False}
    ]


def _describe_until(topic: str, partitions: int, env: dict[str, str]) -> list[Any]:
    """A real broker's metadata catches up with the controller a moment later."""
    deadline = time.monotonic() + 30
    while True:
        result = run("topics", "describe", topic, env=env)
        if result.returncode == 0:
            described = [json.loads(line) for line in result.stdout.splitlines()]
            parts = described[0]["partitions"]
            if len(parts) == partitions and all(p["leader"] is not None for p in parts):
                return described
        assert time.monotonic() < deadline, result.stderr
        time.sleep(0.2)


def test_mock_broker_serves_its_pre_created_topics(mock_broker: str) -> None:
    described = ok("topics", "describe", "seeded", "one", "--bootstrap", mock_broker)
    assert [(d["topic"], len(d["partitions"])) for d in described] == [("seeded", 2), ("one", 1)]
    leaders = {p["leader"] for p in described[0]["partitions"]}
    assert leaders == {1, 2}
    everything = ok("topics", "describe", "--bootstrap", mock_broker)
    assert {"seeded", "one"} <= {d["topic"] for d in everything}


def test_failures_have_clear_messages_and_exit_codes(mock_broker: str) -> None:
    unreachable = run("topics", "list", "--bootstrap", "127.0.0.1:1", "--timeout", "1")
    assert unreachable.returncode == 1
    assert "no answer from 127.0.0.1:1 within 1s" in unreachable.stderr
    for args in (
        ["consume", "missing-topic"],
        ["offsets", "missing-topic"],
        ["produce", "missing-topic"],
    ):
        result = run(*args, "--bootstrap", mock_broker, stdin="x\n")
        assert result.returncode == 1, args
        assert "unknown topic 'missing-topic'" in result.stderr
    no_partition = run("consume", "seeded", "--partition", "7", "--bootstrap", mock_broker)
    assert no_partition.returncode == 1 and "has no partition 7" in no_partition.stderr
    bad_json = run("produce", "seeded", "--json", "--bootstrap", mock_broker, stdin="{oops\n")
    assert bad_json.returncode == 1 and "stdin line 1: not JSON" in bad_json.stderr
    usage = [
        ["topics", "list"],  # no bootstrap anywhere
        ["topics", "create", "x", "--config", "novalue", "--bootstrap", mock_broker],
        ["consume", "seeded", "--from", "yesterday", "--bootstrap", mock_broker],
        ["offsets", "seeded", "--time", "not-a-time", "--bootstrap", mock_broker],
        ["mock-broker", "--topic", "t:x"],
        ["frobnicate"],
    ]
    for args in usage:
        result = run(*args)
        assert result.returncode == 2, (args, result.stderr)
        assert "usage:" in result.stderr


def test_follow_waits_for_new_records(mock_broker: str) -> None:
    topic = f"follow-{uuid.uuid4().hex[:8]}"
    ok("topics", "create", topic, "--partitions", "2", "--bootstrap", mock_broker)
    checked = ok("topics", "create", "never", "--validate-only", "--bootstrap", mock_broker)
    assert checked[0]["created"] is False and checked[0]["partitions"] >= 1
    listed = ok("topics", "list", "--json", "--bootstrap", mock_broker)
    assert topic in {t["topic"] for t in listed} and "never" not in {t["topic"] for t in listed}
    follower = subprocess.Popen(
        [*CLI, "consume", topic, "--from", "end", "--follow", "--count", "3",
         "--bootstrap", mock_broker],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        # Records written before the follower has its end positions are not expected;
        # write batches until it has seen three.
        deadline = time.monotonic() + 60
        while follower.poll() is None:
            assert time.monotonic() < deadline, "the follower never saw three records"
            ok("produce", topic, "--bootstrap", mock_broker, stdin="x\n")
            time.sleep(0.3)
        out, err = follower.communicate(timeout=10)
    finally:
        follower.kill()
    assert follower.returncode == 0, err
    records = [json.loads(line) for line in out.splitlines()]
    assert len(records) == 3 and all(r["value"] == "x" for r in records)


def test_sasl_scram(kafka_sasl: Any) -> None:
    topic = kafka_sasl.create_topic(partitions=1, prefix="cli-sasl")
    user, password = next(iter(kafka_sasl.users.items()))
    env = {
        "KAFKA_SANSIO_BOOTSTRAP": kafka_sasl.sasl_bootstrap,
        "KAFKA_SANSIO_SASL_USERNAME": user,
        "KAFKA_SANSIO_SASL_PASSWORD": password,
    }
    sasl = ["--sasl-mechanism", "SCRAM-SHA-512"]
    (summary,) = ok("produce", topic, *sasl, stdin="over sasl\n", env=env)
    assert summary["produced"] == 1
    assert [r["value"] for r in ok("consume", topic, *sasl, env=env)] == ["over sasl"]
    wrong = run("topics", "list", *sasl, "--sasl-password", "wrong", "--timeout", "10", env=env)
    assert wrong.returncode == 1
    assert "Authentication" in wrong.stderr or "authentication" in wrong.stderr, wrong.stderr
