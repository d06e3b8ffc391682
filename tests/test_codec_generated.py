"""The committed generated codec must match what the generator produces now."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
GENERATOR = ROOT / "scripts" / "generate_protocol.py"


def _protocol_dir() -> Path:
    env = os.environ.get("KAFKA_PROTOCOL_DIR")
    return Path(env) if env else ROOT.parent / "shared" / "kafka-protocol"


def _require_definitions() -> Path:
    spec = _protocol_dir() / "message"
    if not spec.is_dir():
        reason = f"Kafka message definitions not found at {spec} (set KAFKA_PROTOCOL_DIR)"
        print(reason)
        pytest.skip(reason)
    return spec


def test_regenerating_reproduces_the_committed_files(tmp_path: Path) -> None:
    spec = _require_definitions()
    out = tmp_path / "kafka_sansio"
    subprocess.run(
        [sys.executable, str(GENERATOR), "--spec-dir", str(spec), "--out-dir", str(out)],
        check=True,
        capture_output=True,
    )
    generated = sorted(p.relative_to(out) for p in out.rglob("*.py"))
    assert len(generated) > 90
    differing = [
        str(rel)
        for rel in generated
        if (ROOT / "kafka_sansio" / rel).read_bytes() != (out / rel).read_bytes()
    ]
    assert differing == [], f"stale generated files, rerun {GENERATOR.name}: {differing}"
    committed = {
        p.relative_to(ROOT / "kafka_sansio")
        for p in (ROOT / "kafka_sansio" / "_messages").glob("*.py")
    }
    assert committed == {rel for rel in generated if rel.parts[0] == "_messages"}


def test_generator_output_is_deterministic(tmp_path: Path) -> None:
    spec = _require_definitions()
    sys.path.insert(0, str(GENERATOR.parent))
    try:
        import generate_protocol
    finally:
        sys.path.remove(str(GENERATOR.parent))
    first = generate_protocol.generate(spec, tmp_path)
    second = generate_protocol.generate(spec, tmp_path)
    assert first == second
    header = generate_protocol.HEADER
    assert all(text.startswith(header) for text in first.values())
    # 88 APIs, headers, the registry, the class index and the consumer protocol data.
    assert sum(1 for rel in first if rel.startswith("_messages/")) == 88 + 4


def test_importing_the_package_loads_no_message_module() -> None:
    code = (
        "import sys, kafka_sansio, kafka_sansio.protocol, kafka_sansio.errors\n"
        "loaded = [m for m in sys.modules if m.startswith('kafka_sansio._messages.')]\n"
        "assert loaded == [], loaded\n"
        "kafka_sansio.protocol.request_class(3)\n"
        "loaded = sorted(m for m in sys.modules if m.startswith('kafka_sansio._messages.'))\n"
        "assert loaded == ['kafka_sansio._messages.metadata'], loaded\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
