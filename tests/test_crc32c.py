"""CRC-32C: standard vectors, pure vs accelerated, continuation, backend switch."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kafka_sansio import _crc32c
from kafka_sansio._crc32c import crc32c_accelerated, crc32c_pure, use_pure_crc32c

# Published check values for CRC-32C (RFC 3720 appendix B.4 and the usual "123456789").
VECTORS = [
    (b"", 0x00000000),
    (b"123456789", 0xE3069283),
    (b"\x00" * 32, 0x8A9136AA),
    (b"\xff" * 32, 0x62A8AB43),
    (bytes(range(32)), 0x46DD794E),
    (bytes(range(31, -1, -1)), 0x113FDB5C),
    (b"a", 0xC1D04330),
]


@pytest.mark.parametrize(("data", "expected"), VECTORS)
def test_pure_vectors(data: bytes, expected: int) -> None:
    assert crc32c_pure(data) == expected
    assert crc32c_pure(bytearray(data)) == expected
    assert crc32c_pure(memoryview(data)) == expected


@pytest.mark.parametrize(("data", "expected"), VECTORS)
def test_active_vectors(data: bytes, expected: int) -> None:
    assert _crc32c.crc32c(data) == expected


@pytest.mark.parametrize("n", [*range(0, 40), 255, 256, 257, 4095, 4096, 4097])
def test_every_tail_length_matches_bytewise(n: int) -> None:
    data = bytes((i * 37 + 11) & 0xFF for i in range(n))
    # Reference: a plain bitwise implementation written independently of the tables.
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    assert crc32c_pure(data) == crc ^ 0xFFFFFFFF


@given(st.binary(max_size=2000), st.integers(0, 2000))
@settings(max_examples=200)
def test_continuation(data: bytes, cut: int) -> None:
    cut = min(cut, len(data))
    assert crc32c_pure(data[cut:], crc32c_pure(data[:cut])) == crc32c_pure(data)


@pytest.mark.skipif(crc32c_accelerated is None, reason="crc32c C package not installed")
@given(st.binary(max_size=5000), st.integers(0, 0xFFFFFFFF))
@settings(max_examples=300)
def test_pure_matches_accelerated(data: bytes, start: int) -> None:
    assert crc32c_accelerated is not None
    assert crc32c_pure(data) == crc32c_accelerated(data)
    assert crc32c_pure(data, start) == crc32c_accelerated(data, start)


def test_switch_to_pure_and_back() -> None:
    before = _crc32c.crc32c
    try:
        use_pure_crc32c()
        assert _crc32c.crc32c is crc32c_pure
        assert _crc32c.CRC32C_BACKEND == "pure"
        use_pure_crc32c(False)
        if crc32c_accelerated is not None:
            assert _crc32c.crc32c is crc32c_accelerated
            assert _crc32c.CRC32C_BACKEND == "c"
        else:
            assert _crc32c.crc32c is crc32c_pure
    finally:
        _crc32c.crc32c = before
        _crc32c.CRC32C_BACKEND = "c" if before is crc32c_accelerated else "pure"


def test_loading_the_accelerator_imports_nothing_impure() -> None:
    # The crc32c package's __init__ pulls in importlib.metadata and a CLI (socket,
    # threading, random...); the core loads its compiled module without it.
    code = (
        "import sys, json\n"
        "before = set(sys.modules)\n"
        "import kafka_sansio._crc32c as c\n"
        "print(json.dumps([c.CRC32C_BACKEND, sorted(set(sys.modules) - before)]))\n"
    )
    out = subprocess.run(
        [sys.executable, "-I", "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    backend, modules = json.loads(out.stdout)
    assert backend == ("c" if crc32c_accelerated is not None else "pure")
    impure = {"socket", "threading", "random", "select", "selectors", "subprocess", "time"}
    assert not impure & {m.split(".")[0] for m in modules}


@pytest.mark.parametrize("n", [511, 512, 513, 2047, 2048, 2049, 32767, 32768, 32769, 200_001])
def test_bulk_paths_match_bytewise_reference(n: int) -> None:
    # Each threshold switches the block size of the bulk path (32, 64, 128 bytes).
    data = bytes((i * 131 + (i >> 7) * 17 + 3) & 0xFF for i in range(n))
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ (0x82F63B78 if c & 1 else 0)
        table.append(c)
    crc = 0xFFFFFFFF
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    assert crc32c_pure(data) == crc ^ 0xFFFFFFFF
    half = n // 2
    assert crc32c_pure(data[half:], crc32c_pure(data[:half])) == crc ^ 0xFFFFFFFF


@pytest.mark.skipif(crc32c_accelerated is None, reason="crc32c C package not installed")
@given(st.binary(min_size=500, max_size=70_000), st.integers(0, 0xFFFFFFFF))
@settings(max_examples=60, deadline=None)
def test_bulk_pure_matches_accelerated(data: bytes, start: int) -> None:
    assert crc32c_accelerated is not None
    assert crc32c_pure(data, start) == crc32c_accelerated(data, start)
