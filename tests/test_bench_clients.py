"""The client benchmark harness, run end to end with tiny counts against the real broker.

It checks that every workload ran for every client without a failure and that the JSON,
the Markdown block and the chart hold every figure.  It never looks at how fast anything
was: the counts are far too small for the figures to mean anything.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.timeout(300)

ROOT = Path(__file__).resolve().parent.parent
HARNESS = ROOT / "benchmarks" / "bench_clients.py"
RECORDS = 2_000
MEMORY_RECORDS = 3_000
CLIENTS = [
    "blocking",
    "blocking-purecrc",
    "asyncio",
    "asyncio-purecrc",
    "trio",
    "trio-purecrc",
    "kafka-python",
    "aiokafka",
    "confluent-kafka",
]
LATENCY_CLIENTS = [c for c in CLIENTS if not c.endswith("-purecrc")]


@pytest.fixture(scope="module")
def report(kafka: Any, tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    out = tmp_path_factory.mktemp("bench")
    cmd = [sys.executable, str(HARNESS), "--bootstrap", kafka.bootstrap, "--quick"]
    cmd += ["--records", str(RECORDS), "--codecs", "none,lz4", "--latency-rate", "200"]
    cmd += ["--latency-seconds", "1", "--latency-warmup", "0.3"]
    cmd += ["--memory-records", str(MEMORY_RECORDS), "--out", str(out)]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=280)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads((out / "benchmarks.json").read_text()), out


def _row(summary: list[dict[str, Any]], client: str, codec: str) -> dict[str, Any]:
    rows = [r for r in summary if r["client"] == client and r["codec"] == codec]
    assert len(rows) == 1, (client, codec, summary)
    return rows[0]


@pytest.mark.parametrize("workload", ["consume", "produce"])
def test_every_client_has_a_rate_and_peak_rss(
    report: tuple[dict[str, Any], Path], workload: str
) -> None:
    data = report[0][workload]
    assert data["clients"] == CLIENTS
    codecs = ["none", "lz4"] if workload == "consume" else ["none"]
    assert data["codecs"] == codecs
    for codec in codecs:
        for client in CLIENTS:
            row = _row(data["summary"], client, codec)
            assert row["runs"] == row["ok"] == 1, row["failures"]
            assert row["median"] > 0 and row["min"] <= row["median"] <= row["max"]
            assert row["maxrss_mb"] > 0
            assert row["ratio"] > 0
        assert _row(data["summary"], "blocking", codec)["ratio"] == 1.0
    for run in data["runs"]:
        assert run["ok"] and run["count"] == RECORDS and run["vmhwm_kb"] > 0
        if workload == "produce":
            # acknowledged in the child, and found on the broker by the parent
            assert run["failed"] == 0 and run["stored"] == RECORDS
        else:
            assert run["value_bytes"] == RECORDS * 100


def test_every_client_has_latency_percentiles(report: tuple[dict[str, Any], Path]) -> None:
    data = report[0]["latency"]
    assert data["clients"] == LATENCY_CLIENTS
    for client in LATENCY_CLIENTS:
        row = _row(data["summary"], client, "none")
        assert row["runs"] == row["ok"] == 1, row["failures"]
        assert 0 < row["p50_ms"]["median"] <= row["median"] <= row["max_ms"]
        assert row["maxrss_mb"] > 0
    for run in data["runs"]:
        assert run["count"] == run["sent"] == int(200 * 1.3)
        assert 0 < run["samples"] <= run["sent"]


def test_fastest_adapter_is_compared_with_each_peer(report: tuple[dict[str, Any], Path]) -> None:
    items = report[0]["targets"]
    assert [(i["workload"], i["codec"]) for i in items] == [
        ("consume", "none"),
        ("consume", "lz4"),
        ("produce", "none"),
    ]
    for item in items:
        assert item["best"] in ("blocking", "asyncio", "trio")
        rows = report[0][item["workload"]]["summary"]
        best = _row(rows, item["best"], item["codec"])["median"]
        assert item["rate"] == best
        for peer in ("kafka-python", "aiokafka", "confluent-kafka"):
            assert item[peer] == best / _row(rows, peer, item["codec"])["median"]


def test_memory_runs_and_environment(report: tuple[dict[str, Any], Path]) -> None:
    data = report[0]
    assert [m["records"] for m in data["memory"]] == [RECORDS, MEMORY_RECORDS]
    assert all(m["ok"] and m["maxrss_kb"] > 0 and m["rate"] > 0 for m in data["memory"])
    env = data["environment"]
    assert env["cpu_count"] >= 1 and env["date"] and env["kafka_version"]
    assert env["packages"]["kafka-sansio"] != "not installed"


def test_markdown_and_chart_are_written(report: tuple[dict[str, Any], Path]) -> None:
    out = report[1]
    text = (out / "benchmarks.md").read_text()
    block = text.split("<!-- results:begin -->", 1)[1].split("<!-- results:end -->", 1)[0]
    headings = ["### Consume", "### Produce", "### End-to-end latency", "### Peak RSS"]
    for heading in [*headings, "### The fastest adapter against each peer"]:
        assert heading in block
    for label in ("kafka-sansio blocking", "kafka-sansio trio, pure-Python CRC", "aiokafka"):
        assert f"| {label} |" in block
    assert "FAILED" not in block and "CPU cores" in block
    assert (out / "benchmarks.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
