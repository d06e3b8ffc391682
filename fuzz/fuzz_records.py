"""Fuzz the record decoders: any input decodes, or raises RemoteProtocolError.

Run with atheris when it is installed (coverage-guided)::

    python fuzz/fuzz_records.py [atheris/libFuzzer options]

Without atheris the same check runs on hypothesis-generated mutations of
valid payloads (every codec, v2 and legacy)::

    python fuzz/fuzz_records.py --hypothesis [--examples N]

Invariants checked for each input:

* ``decode_records`` returns or raises a RemoteProtocolError subclass (a
  decompression bomb is refused with DecompressionLimitError, a missing codec
  raises MissingCodecError); nothing else;
* decoding the complete prefix (without the reported truncated tail) gives
  the same batches and no truncation: whole input and resumed input agree;
* no batch holds more records than its header announced;
* the consumer's path (``scan`` then ``decode_ref_records``: columns, with
  runs of alike records decoded column by column) gives the same records as
  ``decode``.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable

from kafka_sansio._errors import MissingCodecError, RemoteProtocolError
from kafka_sansio.records import (
    Record,
    RecordDecoder,
    TimestampType,
    encode_batch,
    encode_legacy_message_set,
)

# A small limit so that bombs are cheap to refuse while fuzzing.
LIMIT = 1 << 20
DECODERS = [
    RecordDecoder(check_crc=True, decompress_limit=LIMIT, max_batch_size=4 << 20),
    RecordDecoder(check_crc=False, decompress_limit=LIMIT, max_batch_size=4 << 20),
]


def check(data: bytes) -> None:
    """Apply the invariants to one input; raise AssertionError or the unexpected exception."""
    for decoder in DECODERS:
        try:
            result = decoder.decode(data)
        except (RemoteProtocolError, MissingCodecError):
            continue
        for batch in result.batches:
            assert len(batch.records) <= max(batch.records_count, 1), batch
        complete = data[: len(data) - result.truncated_bytes]
        again = decoder.decode(complete)
        assert again.truncated_bytes == 0
        assert again.batches == result.batches
        scanned = decoder.scan(data)
        assert len(scanned.batches) == len(result.batches)
        for ref, batch in zip(scanned.batches, result.batches, strict=True):
            assert list(decoder.decode_ref_records(scanned.buf, ref)) == list(batch.records)


def TestOneInput(data: bytes) -> None:  # the name atheris expects
    check(data)


def seeds() -> list[bytes]:
    """Valid payloads in every format and codec, to mutate."""
    create = TimestampType.CREATE_TIME
    recs = [
        Record(
            i,
            1_000 + i,
            create,
            b"k%d" % i if i % 3 else None,
            b"v" * (i * 7),
            (("h", b"x"),) * (i % 2),
        )
        for i in range(6)
    ]
    out = []
    for codec in ("none", "gzip", "snappy", "lz4", "zstd"):
        try:
            out.append(encode_batch(recs, compression=codec, base_offset=10))
        except MissingCodecError:
            continue
    items = [(b"k", b"value", 5), (None, b"v2", 6)]
    for magic in (0, 1):
        for codec in ("none", "gzip", "snappy", "lz4"):
            try:
                out.append(encode_legacy_message_set(items, magic=magic, compression=codec))
            except MissingCodecError:
                continue
    out.append(b"".join(out[:3]))
    # Runs of records laid out alike (decoded column by column), with odd ones between.
    alike = [
        Record(i, 2_000 + i // 3, create, b"key" if i % 40 else b"k", b"x" * 30, ())
        for i in range(120)
    ]
    out.append(encode_batch(alike, base_offset=0))
    return out + bomb_seeds()


def bomb_seeds() -> list[bytes]:
    """Small batches that decompress beyond LIMIT: they must be refused."""
    big = Record(0, 0, TimestampType.CREATE_TIME, None, bytes(2 * LIMIT), ())
    out = []
    for codec in ("gzip", "snappy", "lz4", "zstd"):
        try:
            out.append(encode_batch([big], compression=codec))
        except MissingCodecError:
            continue
    return out


def run_hypothesis(examples: int) -> None:
    """Run the invariants over *examples* structured mutations (no atheris needed)."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    corpus = seeds()

    @st.composite
    def mutated(draw: st.DrawFn) -> bytes:
        data = bytearray(draw(st.sampled_from(corpus)))
        for _ in range(draw(st.integers(0, 6))):
            op = draw(st.integers(0, 3))
            if not data:
                break
            i = draw(st.integers(0, len(data) - 1))
            if op == 0:
                data[i] = draw(st.integers(0, 255))
            elif op == 1:
                del data[i : i + draw(st.integers(1, 8))]
            elif op == 2:
                data[i:i] = draw(st.binary(min_size=1, max_size=8))
            else:
                data = data[:i]
        return bytes(data)

    @settings(
        max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck), database=None
    )
    @given(mutated() | st.binary(max_size=200))
    def prop(data: bytes) -> None:
        check(data)

    prop()


def main(argv: Iterable[str]) -> None:
    args = list(argv)
    if "--hypothesis" not in args:
        try:
            import atheris  # type: ignore[import-not-found]
        except ImportError:
            print("atheris is not installed; running the hypothesis fallback", file=sys.stderr)
        else:
            atheris.Setup([sys.argv[0], *args], TestOneInput)
            atheris.Fuzz()
            return
    examples = 2000
    if "--examples" in args:
        examples = int(args[args.index("--examples") + 1])
    run_hypothesis(examples)
    print(f"ok: {examples} examples")


if __name__ == "__main__":
    main(sys.argv[1:])
