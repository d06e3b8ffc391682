"""A short, bounded run of fuzz/fuzz_records.py inside the test suite."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

from kafka_sansio._errors import DecompressionLimitError, RemoteProtocolError


def _load() -> ModuleType:
    path = Path(__file__).resolve().parent.parent / "fuzz" / "fuzz_records.py"
    spec = importlib.util.spec_from_file_location("fuzz_records", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


fuzz = _load()


def test_seeds_decode_cleanly_and_bombs_are_refused() -> None:
    bombs = fuzz.bomb_seeds()
    assert bombs
    for seed in fuzz.seeds():
        fuzz.check(seed)
        if seed in bombs:
            assert len(seed) < fuzz.LIMIT // 10
            for decoder in fuzz.DECODERS:
                with pytest.raises(DecompressionLimitError):
                    decoder.decode(seed)
            continue
        result = fuzz.DECODERS[0].decode(seed)
        assert result.batches and not result.truncated


def test_every_prefix_of_every_seed() -> None:
    for seed in fuzz.seeds():
        for cut in range(len(seed) + 1):
            fuzz.check(seed[:cut])


def test_check_rejects_foreign_exceptions(monkeypatch: pytest.MonkeyPatch) -> None:
    # The harness must not swallow anything but RemoteProtocolError / MissingCodecError.
    class Boom:
        def decode(self, data: bytes) -> None:
            raise IndexError("boom")

    monkeypatch.setattr(fuzz, "DECODERS", [Boom()])
    with pytest.raises(IndexError):
        fuzz.check(b"x")

    class Remote:
        def decode(self, data: bytes) -> None:
            raise RemoteProtocolError("fine")

    monkeypatch.setattr(fuzz, "DECODERS", [Remote()])
    fuzz.check(b"x")


def test_bounded_hypothesis_run() -> None:
    fuzz.run_hypothesis(300)
