"""Side by side: kafka-sansio against kafka-python, aiokafka and confluent-kafka on a real broker.

Consume part: every client reads the same N records (100-byte values, small keys) from a
4-partition topic, assigned from the beginning, once per compression codec.  Each run is a
fresh process (``--child``) that reports records/s from its first poll call to the N-th
record; the parent takes the child's peak RSS from ``os.wait4``.  Rounds are interleaved
(round 1 runs every client, then round 2, ...); the summary is the median with min..max.

    python benchmarks/bench_clients.py [--bootstrap HOST:PORT] [--records 1000000]
        [--rounds 3] [--codecs none,lz4,zstd] [--clients ...] [--quick]
        [--memory-records 3000000] [--out docs]

Without ``--bootstrap`` a single-node Apache Kafka broker is started with
``scripts/kafka-cluster`` and stopped at the end.  Results go to ``OUT/benchmarks.json``,
``OUT/benchmarks.md`` (between the result markers; the prose around them is kept) and
``OUT/benchmarks.png``.  The parent process stays small on purpose: a child's peak RSS as
the kernel reports it includes what it inherited at fork time.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shlex
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PARTITIONS = 4
VALUE_SIZE = 100
BATCH = 10_000  # records asked for per poll call, for every client
FETCH_MAX_BYTES = 52_428_800
PARTITION_FETCH_BYTES = 4_194_304  # the peers' max_partition_fetch_bytes, raised for throughput

# name -> (label, one-line description of the settings used)
CLIENTS: dict[str, tuple[str, str]] = {
    "sansio": (
        "kafka-sansio blocking",
        "ConsumerCore defaults (max_partition_fetch_bytes 1 MiB, two answers buffered per "
        f"partition, CRC checked with the `crc32c` extension), poll(max_records={BATCH}), "
        "BlockingDriver",
    ),
    "sansio-purecrc": (
        "kafka-sansio blocking, pure-Python CRC",
        "as above with `use_pure_crc32c()`: what the `fast` extra buys",
    ),
    "kafka-python": (
        "kafka-python",
        f"KafkaConsumer(fetch_max_bytes={FETCH_MAX_BYTES}, "
        f"max_partition_fetch_bytes={PARTITION_FETCH_BYTES}, max_poll_records={BATCH}, "
        "check_crcs=True), poll(timeout_ms=1000)",
    ),
    "aiokafka": (
        "aiokafka",
        f"AIOKafkaConsumer(fetch_max_bytes={FETCH_MAX_BYTES}, "
        f"max_partition_fetch_bytes={PARTITION_FETCH_BYTES}, check_crcs=True), "
        f"getmany(timeout_ms=1000, max_records={BATCH})",
    ),
    "confluent-kafka": (
        "confluent-kafka (C ceiling)",
        f"Consumer(check.crcs=true, fetch.max.bytes={FETCH_MAX_BYTES}, "
        f"max.partition.fetch.bytes={PARTITION_FETCH_BYTES}, fetch.queue.backoff.ms=10), "
        f"consume(num_messages<={BATCH})",
    ),
}
BASELINE = "sansio"


# ---------------------------------------------------------------------------- child side
# Each runner consumes `records` records of `topic` and returns (count, value bytes, seconds
# from the first poll call to the last record).  It touches every value, as a user would.


def _deadline(timeout: float) -> Callable[[], bool]:
    end = time.monotonic() + timeout
    return lambda: time.monotonic() > end


def run_sansio(bootstrap: str, topic: str, records: int, timeout: float) -> tuple[int, int, float]:
    import random

    from kafka_sansio.transports._blocking import BlockingDriver

    from kafka_sansio import (
        ClientConfig,
        ConsumerConfig,
        ConsumerCore,
        OffsetResetPolicy,
        TopicPartition,
        parse_bootstrap,
    )

    config = ConsumerConfig(
        client=ClientConfig(bootstrap_servers=parse_bootstrap(bootstrap)),
        auto_offset_reset=OffsetResetPolicy.EARLIEST,
    )
    core = ConsumerCore(config, random.random)
    driver = BlockingDriver(core)
    expired = _deadline(timeout)
    tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
    core.assign(tps, time.monotonic())
    core.seek_to_beginning(tps, time.monotonic())
    count = nbytes = 0
    start = time.perf_counter()
    while count < records and not expired():
        batch = core.poll(time.monotonic(), BATCH)
        if batch:
            driver.flush()  # send the fetch that handing records out made possible
            for _tp, record in batch:
                count += 1
                nbytes += len(record.value or b"")
        else:
            driver.run_once(0.5)
    elapsed = time.perf_counter() - start
    core.close()
    driver.run_once(0)
    driver.close()
    return count, nbytes, elapsed


def run_sansio_purecrc(
    bootstrap: str, topic: str, records: int, timeout: float
) -> tuple[int, int, float]:
    from kafka_sansio.records import use_pure_crc32c

    use_pure_crc32c(True)
    return run_sansio(bootstrap, topic, records, timeout)


def run_kafka_python(
    bootstrap: str, topic: str, records: int, timeout: float
) -> tuple[int, int, float]:
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_bytes=FETCH_MAX_BYTES,
        max_partition_fetch_bytes=PARTITION_FETCH_BYTES,
        max_poll_records=BATCH,
        check_crcs=True,
    )
    tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
    consumer.assign(tps)
    consumer.seek_to_beginning(*tps)
    expired = _deadline(timeout)
    count = nbytes = 0
    start = time.perf_counter()
    while count < records and not expired():
        for batch in consumer.poll(timeout_ms=1000).values():
            for record in batch:
                count += 1
                nbytes += len(record.value or b"")
    elapsed = time.perf_counter() - start
    consumer.close()
    return count, nbytes, elapsed


def run_aiokafka(
    bootstrap: str, topic: str, records: int, timeout: float
) -> tuple[int, int, float]:
    import asyncio

    from aiokafka import AIOKafkaConsumer, TopicPartition

    async def main() -> tuple[int, int, float]:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_bytes=FETCH_MAX_BYTES,
            max_partition_fetch_bytes=PARTITION_FETCH_BYTES,
            check_crcs=True,
        )
        await consumer.start()
        try:
            tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            expired = _deadline(timeout)
            count = nbytes = 0
            start = time.perf_counter()
            while count < records and not expired():
                got = await consumer.getmany(timeout_ms=1000, max_records=BATCH)
                for batch in got.values():
                    for record in batch:
                        count += 1
                        nbytes += len(record.value or b"")
            return count, nbytes, time.perf_counter() - start
        finally:
            await consumer.stop()

    return asyncio.run(main())


def run_confluent(
    bootstrap: str, topic: str, records: int, timeout: float
) -> tuple[int, int, float]:
    from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, TopicPartition

    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"bench-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
            "check.crcs": True,
            "fetch.max.bytes": FETCH_MAX_BYTES,
            "max.partition.fetch.bytes": PARTITION_FETCH_BYTES,
            # The default (1000 ms) pauses a partition's fetching for a second whenever the
            # local queue passes queued.min.messages: it halves the rate of a fast reader.
            "fetch.queue.backoff.ms": 10,
        }
    )
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(PARTITIONS)])
    expired = _deadline(timeout)
    count = nbytes = 0
    start = time.perf_counter()
    while count < records and not expired():
        for msg in consumer.consume(num_messages=min(BATCH, records - count), timeout=1.0):
            if msg.error():
                raise KafkaException(msg.error())
            count += 1
            nbytes += len(msg.value() or b"")
    elapsed = time.perf_counter() - start
    consumer.close()
    return count, nbytes, elapsed


RUNNERS: dict[str, Callable[[str, str, int, float], tuple[int, int, float]]] = {
    "sansio": run_sansio,
    "sansio-purecrc": run_sansio_purecrc,
    "kafka-python": run_kafka_python,
    "aiokafka": run_aiokafka,
    "confluent-kafka": run_confluent,
}


def _value(i: int) -> bytes:
    """A 100-byte JSON-ish value: a counter and a hex digest, about 2:1 compressible."""
    digest = hashlib.blake2b(i.to_bytes(8, "little"), digest_size=40).hexdigest().encode()
    return (b'{"n":%010d,"pad":"' % i + digest)[: VALUE_SIZE - 2] + b'"}'


def prepare(bootstrap: str, topic: str, records: int, codec: str) -> dict[str, Any]:
    """Create ``topic`` and fill it with ``records`` records compressed with ``codec``."""
    from confluent_kafka import Consumer, Producer, TopicPartition
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.create_topics([NewTopic(topic, PARTITIONS, 1)]).values():
        future.result(timeout=60)
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "compression.type": codec,
            "linger.ms": 100,
            "batch.size": 900_000,
            "batch.num.messages": 100_000,
            "queue.buffering.max.messages": 1_000_000,
            "queue.buffering.max.kbytes": 1_048_576,
            "acks": 1,
        }
    )
    start = time.perf_counter()
    for i in range(records):
        while True:
            try:
                producer.produce(topic, _value(i), b"k%d" % (i % 1000), partition=i % PARTITIONS)
                break
            except BufferError:
                producer.poll(0.05)
    if producer.flush(120):
        raise RuntimeError("produce did not finish")
    seconds = time.perf_counter() - start
    probe = Consumer({"bootstrap.servers": bootstrap, "group.id": "bench-probe"})
    stored = sum(
        probe.get_watermark_offsets(TopicPartition(topic, p), timeout=30)[1]
        for p in range(PARTITIONS)
    )
    probe.close()
    if stored != records:
        raise RuntimeError(f"topic {topic} holds {stored} records, expected {records}")
    return {"topic": topic, "codec": codec, "records": records, "produce_seconds": seconds}


def delete_topics(bootstrap: str, topics: list[str]) -> dict[str, Any]:
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.delete_topics(topics).values():
        future.result(timeout=60)
    return {"deleted": topics}


def _peak_rss_kb() -> int:
    """This process's own high-water RSS (VmHWM), which fork inheritance does not inflate."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def child_main(argv: list[str]) -> int:
    job = json.loads(argv[0])
    kind = job.pop("kind")
    if kind == "prepare":
        result = prepare(**job)
    elif kind == "delete":
        result = delete_topics(**job)
    else:
        count, nbytes, seconds = RUNNERS[kind](**job)  # type: ignore[call-arg]
        result = {"count": count, "value_bytes": nbytes, "seconds": seconds}
        result["vmhwm_kb"] = _peak_rss_kb()
    print(json.dumps(result), flush=True)
    return 0


# ---------------------------------------------------------------------------- parent side


def spawn(job: dict[str, Any], timeout: float) -> dict[str, Any]:
    """Run ``job`` in a fresh interpreter; its JSON answer plus the peak RSS from ``wait4``."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        cmd = [sys.executable, str(Path(__file__).resolve()), "--child", json.dumps(job)]
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, cwd=ROOT)
        deadline = time.monotonic() + timeout
        pid = status = 0
        while pid == 0:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid == 0:
                if time.monotonic() > deadline:
                    proc.kill()
                    pid, status, usage = os.wait4(proc.pid, 0)
                    status = -1
                    break
                time.sleep(0.05)
        proc.returncode = 0  # reaped here; keep Popen from waiting again
        out.seek(0)
        err.seek(0)
        text, errors = out.read().decode(), err.read().decode()
    result: dict[str, Any] = {"maxrss_kb": usage.ru_maxrss}
    if status == -1:
        result["error"] = f"timed out after {timeout:.0f}s"
    elif status != 0:
        tail = errors.strip().splitlines()[-1:] or [f"exit status {status}"]
        result["error"] = tail[0][:300]
    else:
        result.update(json.loads(text.strip().splitlines()[-1]))
    return result


class Broker:
    """A throwaway single-node broker from ``scripts/kafka-cluster`` (or a given bootstrap)."""

    def __init__(self, bootstrap: str | None) -> None:
        self.bootstrap = bootstrap
        self.dir: str | None = None
        self.kafka_version = "unknown (external cluster)"

    def __enter__(self) -> Broker:
        if self.bootstrap is None:
            self.dir = tempfile.mkdtemp(prefix="bench-clients-kc-")
            tool = [sys.executable, str(ROOT / "scripts" / "kafka-cluster")]
            up = [*tool, "up", "--nodes", "1", "--dir", self.dir, "--owner-pid", str(os.getpid())]
            line = subprocess.run(up, check=True, capture_output=True, text=True).stdout
            info = json.loads(line.strip().splitlines()[-1])
            self.bootstrap = info["bootstrap"]
            self.kafka_version = info["kafka_version"]
        return self

    def __exit__(self, *exc: object) -> None:
        if self.dir is not None:
            tool = [sys.executable, str(ROOT / "scripts" / "kafka-cluster")]
            subprocess.run([*tool, "down", "--dir", self.dir], check=False, capture_output=True)


def _versions() -> dict[str, str]:
    names = ["kafka-sansio", "kafka-python", "aiokafka", "confluent-kafka", "crc32c"]
    names += ["lz4", "zstandard", "cramjam"]
    found = {}
    for name in names:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def summarize(
    runs: list[dict[str, Any]], clients: list[str], codecs: list[str]
) -> list[dict[str, Any]]:
    rows = []
    for codec in codecs:
        base = None
        for client in clients:
            mine = [r for r in runs if r["client"] == client and r["codec"] == codec]
            rates = [r["rate"] for r in mine if r.get("ok")]
            row: dict[str, Any] = {
                "client": client,
                "codec": codec,
                "runs": len(mine),
                "ok": len(rates),
                "failures": [r.get("error") for r in mine if not r.get("ok")],
            }
            if rates:
                row["median"] = statistics.median(rates)
                row["min"], row["max"] = min(rates), max(rates)
                row["maxrss_mb"] = max(r["maxrss_kb"] for r in mine if r.get("ok")) / 1024
            if client == BASELINE:
                base = row.get("median")
            rows.append(row)
        for row in rows[-len(clients) :]:
            if base and "median" in row:
                row["ratio"] = row["median"] / base
    return rows


def render_table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| client | codec | records/s (median) | min..max | max RSS MB | vs kafka-sansio |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for row in rows:
        label = CLIENTS[row["client"]][0]
        if "median" not in row:
            lines.append(f"| {label} | {row['codec']} | FAILED: {row['failures'][0]} | | | |")
            continue
        failed = row["runs"] - row["ok"]
        note = f" ({failed} of {row['runs']} runs failed)" if failed else ""
        ratio = f"{row['ratio']:.2f}x" if "ratio" in row else "-"
        lines.append(
            f"| {label} | {row['codec']} | {row['median']:,.0f}{note} | "
            f"{row['min']:,.0f}..{row['max']:,.0f} | {row['maxrss_mb']:.0f} | {ratio} |"
        )
    return "\n".join(lines)


def write_markdown(path: Path, report: dict[str, Any]) -> None:
    env = report["environment"]
    parts = [
        f"Measured {env['date']} with `{report['command']}`: {report['records']:,} records of "
        f"{VALUE_SIZE} bytes, {PARTITIONS} partitions, {report['rounds']} interleaved rounds; "
        f"Apache Kafka {env['kafka_version']} (one node, loopback), Python "
        f"{env['python']}, {env['cpu_count']} CPUs.",
        "",
        render_table(report["summary"]),
        "",
        "Settings per client:",
        "",
    ]
    parts += [f"- {CLIENTS[c][0]}: {CLIENTS[c][1]}" for c in report["clients"]]
    parts += ["", "Package versions: " + ", ".join(f"{k} {v}" for k, v in env["packages"].items())]
    memory = report.get("memory")
    if memory:
        parts += ["", "Peak RSS of kafka-sansio blocking by topic size (codec none):", ""]
        parts += ["| records in topic | max RSS MB | records/s |", "| ---: | ---: | ---: |"]
        for item in memory:
            rate = f"{item['rate']:,.0f}" if item.get("ok") else "failed"
            parts.append(f"| {item['records']:,} | {item['maxrss_kb'] / 1024:.0f} | {rate} |")
    block = "\n".join(parts)
    begin, end = "<!-- results:begin -->", "<!-- results:end -->"
    text = path.read_text() if path.exists() else f"# Client benchmarks\n\n{begin}\n{end}\n"
    if begin not in text:
        text += f"\n{begin}\n{end}\n"
    head, rest = text.split(begin, 1)
    tail = rest.split(end, 1)[1]
    path.write_text(f"{head}{begin}\n{block}\n{end}{tail}")


def write_chart(path: Path, report: dict[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    clients, codecs = report["clients"], report["codecs"]
    width = 0.8 / len(clients)
    fig, ax = plt.subplots(figsize=(9, 4.8))
    for i, client in enumerate(clients):
        rows = {r["codec"]: r for r in report["summary"] if r["client"] == client}
        xs = [j + (i - (len(clients) - 1) / 2) * width for j in range(len(codecs))]
        med = [rows[c].get("median", 0) / 1000 for c in codecs]
        low = [m - rows[c].get("min", 0) / 1000 for m, c in zip(med, codecs, strict=True)]
        high = [rows[c].get("max", 0) / 1000 - m for m, c in zip(med, codecs, strict=True)]
        ax.bar(xs, med, width, yerr=[low, high], capsize=3, label=CLIENTS[client][0])
    ax.set_xticks(range(len(codecs)), [f"compression: {c}" for c in codecs])
    ax.set_ylabel("thousand records/s (median, min..max)")
    env = report["environment"]
    ax.set_title(
        f"Consume {report['records']:,} x {VALUE_SIZE} B records, {PARTITIONS} partitions "
        f"(Kafka {env['kafka_version']}, {env['cpu_count']} CPUs)"
    )
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bootstrap", help="use this cluster instead of starting a broker")
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--codecs", default="none,lz4,zstd")
    parser.add_argument("--clients", default=",".join(CLIENTS), help=", ".join(CLIENTS))
    parser.add_argument("--quick", action="store_true", help="100k records, 1 round, codec none")
    parser.add_argument(
        "--memory-records",
        type=lambda text: [int(n) for n in text.split(",")],
        default=[],
        help="e.g. 3000000,5000000: also run kafka-sansio blocking once on topics this large "
        "(codec none) to show peak RSS against topic size",
    )
    parser.add_argument("--out", help="where the results go (default docs/; --quick: nowhere)")
    args = parser.parse_args()
    if args.quick:
        args.records, args.rounds, args.codecs = 100_000, 1, "none"
    clients = args.clients.split(",")
    codecs = args.codecs.split(",")
    unknown = [c for c in clients if c not in CLIENTS]
    if unknown:
        parser.error(f"unknown clients {unknown}; known: {', '.join(CLIENTS)}")
    out = Path(args.out) if args.out else (None if args.quick else ROOT / "docs")
    timeout = 120 + args.records / 5_000  # generous: kafka-python is the slow one
    command = "python benchmarks/bench_clients.py " + shlex.join(sys.argv[1:])

    def say(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # so the broker is downed
    with Broker(args.bootstrap) as broker:
        assert broker.bootstrap is not None
        say(f"broker {broker.bootstrap}, Kafka {broker.kafka_version}")
        tag = uuid.uuid4().hex[:6]
        topics = {}
        for codec in codecs:
            topic = f"bench-{codec}-{args.records}-{tag}"
            job = {"kind": "prepare", "bootstrap": broker.bootstrap, "topic": topic}
            made = spawn(job | {"records": args.records, "codec": codec}, timeout)
            if "error" in made:
                raise SystemExit(f"could not prepare {topic}: {made['error']}")
            say(f"prepared {topic} in {made['produce_seconds']:.1f}s")
            topics[codec] = topic
        runs = []
        for round_no in range(1, args.rounds + 1):
            for codec in codecs:
                for client in clients:
                    job = {"kind": client, "bootstrap": broker.bootstrap, "topic": topics[codec]}
                    job |= {"records": args.records, "timeout": timeout}
                    res = spawn(job, timeout + 60)
                    res |= {"round": round_no, "codec": codec, "client": client}
                    if "error" not in res and res["count"] != args.records:
                        res["error"] = f"received {res['count']} of {args.records} records"
                    res["ok"] = "error" not in res
                    if res["ok"]:
                        res["rate"] = args.records / res["seconds"]
                        shown = f"{res['rate']:>10,.0f} records/s"
                    else:
                        shown = f"FAILED {res['error']}"
                    rss = res["maxrss_kb"] / 1024
                    say(f"round {round_no} {codec:5} {client:16} {shown}  max RSS {rss:.0f} MB")
                    runs.append(res)
        memory = []
        if args.memory_records and "sansio" in clients and "none" in codecs:
            mine = [r for r in runs if r["client"] == "sansio" and r["codec"] == "none"]
            rates = [r["rate"] for r in mine if r["ok"]]
            memory.append(
                {
                    "records": args.records,
                    "maxrss_kb": max(r["maxrss_kb"] for r in mine),
                    "ok": bool(rates),
                    "rate": statistics.median(rates) if rates else 0.0,
                    "from": "the main runs (largest of the rounds)",
                }
            )
        for size in args.memory_records:
            topic = f"bench-none-{size}-{tag}"
            big_timeout = 120 + size / 5_000
            job = {"kind": "prepare", "bootstrap": broker.bootstrap, "topic": topic}
            made = spawn(job | {"records": size, "codec": "none"}, big_timeout)
            if "error" in made:
                raise SystemExit(f"could not prepare {topic}: {made['error']}")
            topics[f"memory-{size}"] = topic
            job = {"kind": "sansio", "bootstrap": broker.bootstrap, "topic": topic}
            res = spawn(job | {"records": size, "timeout": big_timeout}, big_timeout + 60)
            res |= {"records": size, "from": "a run of its own"}
            res["ok"] = "error" not in res and res["count"] == size
            res["rate"] = size / res["seconds"] if res["ok"] else 0.0
            say(f"memory: {size} records -> max RSS {res['maxrss_kb'] / 1024:.0f} MB")
            memory.append(res)
        if args.bootstrap:
            job = {"kind": "delete", "bootstrap": broker.bootstrap}
            spawn(job | {"topics": list(topics.values())}, 120)
        kafka_version = broker.kafka_version

    summary = summarize(runs, clients, codecs)
    report = {
        "command": command,
        "records": args.records,
        "rounds": args.rounds,
        "codecs": codecs,
        "clients": clients,
        "value_size": VALUE_SIZE,
        "partitions": PARTITIONS,
        "environment": {
            "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "cpu_count": os.cpu_count(),
            "kafka_version": kafka_version,
            "python": platform.python_version(),
            "implementation": platform.python_implementation(),
            "platform": platform.platform(),
            "packages": _versions(),
        },
        "summary": summary,
        "runs": runs,
        "memory": memory,
    }
    print(render_table(summary))
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "benchmarks.json").write_text(json.dumps(report, indent=2) + "\n")
        write_markdown(out / "benchmarks.md", report)
        write_chart(out / "benchmarks.png", report)
        say(f"wrote {out / 'benchmarks.json'}, benchmarks.md, benchmarks.png")
    return 0 if all(r["ok"] for r in runs) else 1


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        sys.exit(child_main(sys.argv[2:]))
    sys.exit(main())
