"""How long a consumer group stops when a member leaves: kafka-sansio against confluent-kafka.

Three members of one client share a 12-partition topic while a producer
writes to every partition.  Once the group is stable one member closes
(LeaveGroup); the figure is the time from that close to the moment every
partition it owned has delivered a record to one of the two survivors.
Eager (``range``) and cooperative (``cooperative-sticky``) assignment, for
kafka-sansio's blocking consumer and for confluent-kafka, interleaved over
several rounds; the median and the spread are printed.

    python benchmarks/bench_rebalance.py [--bootstrap HOST:PORT] [--rounds 3]

Without ``--bootstrap`` a single-node broker is started with
``scripts/kafka-cluster`` and stopped at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PARTITIONS = 12
SESSION = 10.0
HEARTBEAT = 1.0


class Member:
    """One member in a thread: polls, remembers when each partition last delivered."""

    def __init__(self, kind: str, bootstrap: str, topic: str, group: str, strategy: str) -> None:
        self.kind = kind
        self.bootstrap = bootstrap
        self.topic = topic
        self.group = group
        self.strategy = strategy
        self.assignment: set[int] = set()
        self.delivered: dict[int, float] = {}
        self.stop = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            if self.kind == "kafka-sansio":
                self._run_sansio()
            else:
                self._run_confluent()
        except BaseException as exc:
            self.error = exc

    def _run_sansio(self) -> None:
        from kafka_sansio.transports.blocking import Consumer

        with Consumer(
            self.bootstrap,
            group_id=self.group,
            auto_offset_reset="latest",
            partition_assignment_strategy=self.strategy,
            session_timeout=SESSION,
            heartbeat_interval=HEARTBEAT,
        ) as consumer:
            consumer.subscribe([self.topic])
            while not self.stop.is_set():
                records = consumer.poll(0.05)
                now = time.monotonic()
                for tp in records.by_partition:
                    self.delivered[tp.partition] = now
                self.assignment = {tp.partition for tp in consumer.assignment()}

    def _run_confluent(self) -> None:
        from confluent_kafka import Consumer

        consumer = Consumer(
            {
                "bootstrap.servers": self.bootstrap,
                "group.id": self.group,
                "auto.offset.reset": "latest",
                "partition.assignment.strategy": self.strategy,
                "session.timeout.ms": int(SESSION * 1000),
                "heartbeat.interval.ms": int(HEARTBEAT * 1000),
            }
        )
        consumer.subscribe([self.topic])
        try:
            while not self.stop.is_set():
                batch = consumer.consume(1000, timeout=0.05)
                now = time.monotonic()
                for msg in batch:
                    if msg.error() is None:
                        self.delivered[msg.partition()] = now
                self.assignment = {tp.partition for tp in consumer.assignment()}
        finally:
            consumer.close()


def _producer(bootstrap: str, topic: str, running: threading.Event) -> None:
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 2})
    while running.is_set():
        for p in range(PARTITIONS):
            producer.produce(topic, b"x", partition=p)
        producer.poll(0)
        time.sleep(0.005)
    producer.flush(10)


def one_run(bootstrap: str, kind: str, strategy: str) -> float:
    """Seconds from a member's close to every one of its partitions delivering again."""
    from kafka_sansio.transports.blocking import Admin

    from kafka_sansio import NewTopic

    topic = f"rebalance-{uuid.uuid4().hex[:8]}"
    with Admin(bootstrap) as admin:
        admin.create_topics([NewTopic(topic, PARTITIONS, 1)])
    running = threading.Event()
    running.set()
    writer = threading.Thread(target=_producer, args=(bootstrap, topic, running), daemon=True)
    writer.start()
    group = f"g-{uuid.uuid4().hex[:8]}"
    members = [Member(kind, bootstrap, topic, group, strategy) for _ in range(3)]
    try:
        for m in members:
            m.thread.start()
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            owned = [p for m in members for p in m.assignment]
            if sorted(owned) == list(range(PARTITIONS)) and all(m.assignment for m in members):
                break
            time.sleep(0.05)
        else:
            raise RuntimeError(f"{kind}/{strategy}: the group did not settle")
        time.sleep(2.0)  # steady consumption
        leaver = members[0]
        gone = set(leaver.assignment)
        t0 = time.monotonic()
        leaver.stop.set()
        leaver.thread.join(30)
        survivors = members[1:]
        while time.monotonic() < t0 + 90:
            resumed = all(any(m.delivered.get(p, 0) > t0 for m in survivors) for p in gone)
            if resumed:
                return (
                    max(
                        min(m.delivered[p] for m in survivors if m.delivered.get(p, 0) > t0)
                        for p in gone
                    )
                    - t0
                )
            time.sleep(0.01)
        raise RuntimeError(f"{kind}/{strategy}: consumption did not resume")
    finally:
        for m in members:
            m.stop.set()
        for m in members:
            m.thread.join(30)
        running.clear()
        writer.join(30)
        for m in members:
            if m.error is not None:
                raise RuntimeError(f"{kind}/{strategy}: {m.error!r}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bootstrap", help="an existing cluster (default: start one)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    tmp = None
    bootstrap = args.bootstrap
    if bootstrap is None:
        tmp = tempfile.mkdtemp(prefix="rebalance-")
        out = subprocess.run(
            [
                sys.executable,
                str(ROOT / "scripts" / "kafka-cluster"),
                "up",
                "--nodes",
                "1",
                "--dir",
                tmp,
                "--owner-pid",
                str(os.getpid()),
            ],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        bootstrap = json.loads(out.strip().splitlines()[-1])["bootstrap"]
    cases = [
        (k, s) for s in ("range", "cooperative-sticky") for k in ("kafka-sansio", "confluent-kafka")
    ]
    times: dict[tuple[str, str], list[float]] = {c: [] for c in cases}
    try:
        for r in range(args.rounds):
            order = cases[r % len(cases) :] + cases[: r % len(cases)]
            for kind, strategy in order:
                seconds = one_run(bootstrap, kind, strategy)
                times[(kind, strategy)].append(seconds)
                print(f"round {r + 1}: {kind:15} {strategy:19} {seconds:6.3f} s", file=sys.stderr)
    finally:
        if tmp is not None:
            subprocess.run(
                [sys.executable, str(ROOT / "scripts" / "kafka-cluster"), "down", "--dir", tmp],
                capture_output=True,
            )
    print(
        "\n| client | assignment | median s (min..max) from a member's close to its partitions delivering again |"
    )
    print("| --- | --- | ---: |")
    result: dict[str, Any] = {}
    for (kind, strategy), values in times.items():
        med = statistics.median(values)
        print(f"| {kind} | {strategy} | {med:.3f} ({min(values):.3f}..{max(values):.3f}) |")
        result[f"{kind}/{strategy}"] = values
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
