"""A short, bounded run of each codec fuzz harness (see fuzz/fuzz_codec.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "fuzz"))
import fuzz_codec

from kafka_sansio import RemoteProtocolError


@pytest.mark.parametrize("family", sorted(fuzz_codec.HARNESSES))
def test_fuzz_harness_bounded_run(family: str) -> None:
    fuzz_codec.run_hypothesis(family, examples=150)


@pytest.mark.parametrize("family", sorted(fuzz_codec.HARNESSES))
def test_harness_accepts_degenerate_inputs(family: str) -> None:
    harness = fuzz_codec.HARNESSES[family]
    for data in (b"", b"\x00", b"\xff" * 3, b"\x00" * 64, b"\xff" * 64, bytes(range(256))):
        harness(data)


def test_harness_lets_other_exceptions_through(monkeypatch: pytest.MonkeyPatch) -> None:
    """The invariant check must not swallow anything but RemoteProtocolError."""

    def broken(*args: object, **kwargs: object) -> None:
        raise IndexError("simulated decoder bug")

    monkeypatch.setattr(fuzz_codec.protocol, "decode_request", broken)
    with pytest.raises(IndexError):
        fuzz_codec.check_request(b"\x00\x03\x00\x00")

    def remote(*args: object, **kwargs: object) -> None:
        raise RemoteProtocolError("fine")

    monkeypatch.setattr(fuzz_codec.protocol, "decode_request", remote)
    fuzz_codec.check_request(b"\x00")
