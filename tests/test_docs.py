"""Documentation generated from code must match the code."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_partition_state_table_is_current() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "draw_states.py"), "--check"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr


def test_readme_example_runs() -> None:
    import re

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    match = re.search(r"## Using the core\n\n```python\n(.*?)```", readme, re.S)
    assert match, "README lost its example"
    result = subprocess.run(
        [sys.executable, "-c", match.group(1)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "Record(offset=0" in result.stdout and "OffsetReset(" in result.stdout


def test_readme_clients_example_runs_against_the_embedded_broker() -> None:
    import re

    from kafka_sansio.transports._mock_broker import MockBroker

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    match = re.search(r"## Using the clients\n\n```python\n(.*?)```", readme, re.S)
    assert match, "README lost its clients example"
    with MockBroker(brokers=1, topics={"events": 1}) as bootstrap:
        code = match.group(1).replace("localhost:9092", bootstrap)
        result = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
        )
    assert result.returncode == 0, result.stderr
    assert "RecordMetadata(topic='events', partition=0, offset=0" in result.stdout
    assert "0 b'user-1' b'hello'" in result.stdout
