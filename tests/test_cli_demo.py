"""``kafka-sansio demo`` as a user runs it: on the embedded model and on the real broker."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

EXPECTED = [
    line
    for adapter in ("blocking", "asyncio", "trio")
    for line in (
        f"[{adapter}] 1. Admin created 'demo-{adapter}-",
        "Producer wrote 30 records",
        f"[{adapter}] 2. Consumer read all 30 records from the beginning, in order per partition",
        f"[{adapter}] 3. seek(",
        "OffsetReset 1000000 -> 0 (out_of_range), and read partition 0 again: 10 records",
        f"[{adapter}] 4. with auto_offset_reset='none' nothing moves by itself: "
        "PartitionEventError (NoOffsetForPartition)",
        "OffsetOutOfRangeError {TopicPartition(topic='demo-",
        "beginning/end offsets 0..10",
    )
] + ["done."]


def run_demo(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kafka_sansio.transports._cli", "demo", *args],
        capture_output=True,
        text=True,
        timeout=180,
    )


def check(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 0, result.stderr
    for line in EXPECTED:
        assert line in result.stdout, f"{line!r} missing from:\n{result.stdout}"


def test_demo_on_the_embedded_model() -> None:
    result = run_demo()
    check(result)
    assert "embedded in-memory Kafka model" in result.stdout


def test_demo_on_the_real_broker(kafka: Any) -> None:
    result = run_demo("--bootstrap", kafka.bootstrap)
    check(result)
    assert kafka.bootstrap in result.stdout


def test_demo_reports_an_unreachable_cluster() -> None:
    result = run_demo("--bootstrap", "127.0.0.1:1", "--timeout", "2")
    assert result.returncode == 1
    assert "demo failed: RequestTimedOutError" in result.stderr
