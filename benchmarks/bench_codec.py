"""Codec benchmark: kafka_sansio against kafka-python 3 and kio, in one process.

Run from the repository root::

    .venv/bin/python benchmarks/bench_codec.py [--repeat 7] [--topics 100] [--partitions 12]

Workload: a MetadataResponse v12 with 100 topics x 12 partitions (replicas
all in sync; ``--replicas`` sets the replication factor, default 1), about 35 KB.  Prints medians over
``--repeat`` rounds that interleave the contenders (each sample is the best of
three timeit runs), ratios as medians of per-round ratios, then the import time
of ``kafka_sansio``, of ``kafka_sansio.protocol`` and of one message module
(``python -X importtime`` in fresh interpreters).
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import subprocess
import sys
import timeit
import uuid
from collections.abc import Callable
from pathlib import Path

from kafka_sansio import protocol

ROOT = Path(__file__).resolve().parent.parent
VERSION = 12


def build_response(topics: int, partitions: int, replicas: int) -> protocol.Message:
    cls = protocol.response_class(3)
    broker = protocol.message("MetadataResponseBroker")
    topic = protocol.message("MetadataResponseTopic")
    partition = protocol.message("MetadataResponsePartition")
    return cls(
        throttle_time_ms=0,
        brokers=[
            broker(node_id=i, host=f"broker-{i}.example", port=9092, rack=f"rack-{i}")
            for i in range(3)
        ],
        cluster_id="c1uSt3r-1d-abcdefghijk",
        controller_id=1,
        topics=[
            topic(
                error_code=0,
                name=f"topic-{t:04d}-events",
                topic_id=uuid.UUID(int=(t + 1) * 7919),
                is_internal=False,
                partitions=[
                    partition(
                        error_code=0,
                        partition_index=p,
                        leader_id=p % 3,
                        leader_epoch=5,
                        replica_nodes=[(p + r) % 3 for r in range(replicas)],
                        isr_nodes=[(p + r) % 3 for r in range(replicas)],
                        offline_replicas=[],
                    )
                    for p in range(partitions)
                ],
                topic_authorized_operations=-(2**31),
            )
            for t in range(topics)
        ],
    )


def import_time(statement: str, module: str) -> float:
    """Cumulative milliseconds spent importing *module* while running *statement*.

    Runs a fresh interpreter with ``-X importtime``; takes the median of 5 runs.
    """
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    # warm the bytecode caches first: measure imports, not compilation
    subprocess.run([sys.executable, "-c", statement], cwd=ROOT, check=True, env=env)
    samples = []
    for _ in range(5):
        proc = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", statement],
            capture_output=True,
            text=True,
            cwd=ROOT,
            check=True,
            env=env,
        )
        for line in proc.stderr.splitlines():
            parts = line.split("|")
            if len(parts) == 3 and parts[2].strip() == module:
                samples.append(int(parts[1]) / 1000.0)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--topics", type=int, default=100)
    parser.add_argument("--partitions", type=int, default=12)
    parser.add_argument("--replicas", type=int, default=1)
    args = parser.parse_args()

    cls = protocol.response_class(3)
    msg = build_response(args.topics, args.partitions, args.replicas)
    data = msg.encode(VERSION)
    assert cls.decode(data, VERSION) == msg
    print(
        f"MetadataResponse v{VERSION}: {args.topics} topics x {args.partitions} partitions, {len(data)} bytes",
        flush=True,
    )
    contenders: dict[str, Callable[[], object]] = {
        "kafka_sansio decode": lambda: cls.decode(data, VERSION),
        "kafka_sansio encode": lambda: msg.encode(VERSION),
    }

    try:
        from kafka.protocol.metadata import MetadataResponse as KPMetadataResponse

        kp = KPMetadataResponse.decode(data, version=VERSION)
        assert len(kp.topics) == args.topics
        contenders["kafka-python decode"] = lambda: KPMetadataResponse.decode(data, version=VERSION)
        try:
            kp.encode(version=VERSION)
        except Exception as exc:  # kafka-python 3 cannot re-encode a decoded response
            print(f"kafka-python encode skipped: {type(exc).__name__}")
        else:
            contenders["kafka-python encode"] = lambda: kp.encode(version=VERSION)
    except ImportError as exc:  # pragma: no cover - optional comparison
        print(f"kafka-python not available: {exc}")

    try:
        from kio.schema.metadata.v12.response import MetadataResponse as KioMetadataResponse
        from kio.serial import entity_reader, entity_writer

        read = entity_reader(KioMetadataResponse)
        write = entity_writer(KioMetadataResponse)
        kio_msg = read(data, 0)
        if isinstance(kio_msg, tuple):
            kio_msg = kio_msg[0]

        def kio_encode() -> bytes:
            buf = io.BytesIO()
            write(buf, kio_msg)
            return buf.getvalue()

        assert kio_encode() == data, "kio re-encoding differs"
        contenders["kio decode"] = lambda: read(data, 0)
        contenders["kio encode"] = kio_encode
    except ImportError as exc:  # pragma: no cover - optional comparison
        print(f"kio not available: {exc}")

    # Rounds interleave the contenders so that load changes on a shared machine
    # hit all of them alike; ratios are medians of per-round ratios.
    timers = {name: timeit.Timer(fn) for name, fn in contenders.items()}
    loops = {name: max(1, timer.autorange()[0] // 5) for name, timer in timers.items()}
    samples: dict[str, list[float]] = {name: [] for name in timers}
    for _ in range(args.repeat):
        for name, timer in timers.items():
            samples[name].append(min(timer.repeat(repeat=3, number=loops[name])) / loops[name])
    for name, values in samples.items():
        print(f"  {name:22s} {statistics.median(values) * 1e3:8.3f} ms (median of {len(values)})")
    for other in ("kafka-python", "kio"):
        for op in ("decode", "encode"):
            theirs = samples.get(f"{other} {op}")
            if theirs:
                ours = samples[f"kafka_sansio {op}"]
                ratio = statistics.median(t / o for t, o in zip(theirs, ours, strict=True))
                print(f"  {op}: kafka_sansio is {ratio:5.2f}x faster than {other}")

    pkg = import_time("import kafka_sansio", "kafka_sansio")
    proto = import_time("import kafka_sansio.protocol", "kafka_sansio.protocol")
    one = import_time(
        "import kafka_sansio.protocol; import kafka_sansio._messages.metadata",
        "kafka_sansio._messages.metadata",
    )
    print("import times (python -X importtime, cumulative, median of 5 fresh interpreters):")
    print(f"  import kafka_sansio            {pkg:6.1f} ms")
    print(f"  import kafka_sansio.protocol   {proto:6.1f} ms (includes kafka_sansio)")
    print(f"  one message module (metadata)  {one:6.1f} ms (first use, after protocol)")


if __name__ == "__main__":
    main()
