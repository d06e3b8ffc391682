"""Record-batch decode/encode throughput: kafka-sansio beside kafka-python and aiokafka.

Every contender decodes the same bytes: batches of 100 records (6-byte keys,
60-byte values), grouped into ~1 MB fetch payloads the way a broker returns
them, each batch checksum-verified the way the client's consumer does it.
Run from the repository root::

    python benchmarks/bench_records.py [--batches 10000] [--rounds 3]

Figures are the best round, in records per second; ratios are against
kafka-python with the same checksum setting.  aiokafka's pure-Python fallback
runs in a subprocess with AIOKAFKA_NO_EXTENSIONS=1.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kafka_sansio import _crc32c
from kafka_sansio.records import (
    BatchBuilder,
    Record,
    RecordDecoder,
    TimestampType,
    encode_batch,
)

PER_BATCH = 100
PER_PAYLOAD = 128  # 128 batches of ~7.5 KB: about 1 MB, a typical fetch response


def make_records(batch_no: int) -> list[Record]:
    """100 records at consecutive offsets, spread over 10 ms."""
    ts = 1_700_000_000_000 + batch_no * 10
    return [
        Record(
            batch_no * PER_BATCH + i,
            ts + i // 10,
            TimestampType.CREATE_TIME,
            b"k%05d" % ((batch_no * PER_BATCH + i) % 100_000),
            (b"%06d" % i) * 10,
            (),
        )
        for i in range(PER_BATCH)
    ]


def make_payloads(n_batches: int, compression: str = "none") -> list[bytes]:
    batches = [
        encode_batch(make_records(b), base_offset=b * PER_BATCH, compression=compression)
        for b in range(n_batches)
    ]
    return [b"".join(batches[i : i + PER_PAYLOAD]) for i in range(0, n_batches, PER_PAYLOAD)]


def best_rate(fn: Callable[[], int], rounds: int) -> float:
    best = 0.0
    for _ in range(rounds):
        gc.collect()
        t0 = time.perf_counter()
        n = fn()
        elapsed = time.perf_counter() - t0
        best = max(best, n / elapsed)
    return best


# -- contenders: decode -----------------------------------------------------------------


def ours(payloads: list[bytes], check_crc: bool) -> Callable[[], int]:
    """Batch by batch, like the peers' next_batch() loops below."""
    decoder = RecordDecoder(check_crc=check_crc)

    def run() -> int:
        n = 0
        for p in payloads:
            for batch in decoder.iter_batches(p):
                n += len(batch.records)
        return n

    return run


def ours_eager(payloads: list[bytes], check_crc: bool) -> Callable[[], int]:
    """The whole payload at once: every record of ~1 MB alive together."""
    decoder = RecordDecoder(check_crc=check_crc)

    def run() -> int:
        n = 0
        for p in payloads:
            for batch in decoder.decode(p).batches:
                n += len(batch.records)
        return n

    return run


def kafka_python(payloads: list[bytes], check_crc: bool) -> Callable[[], int]:
    from kafka.record.memory_records import MemoryRecords

    def run() -> int:
        n = 0
        for p in payloads:
            records = MemoryRecords(p)
            while True:
                batch = records.next_batch()
                if batch is None:
                    break
                if check_crc and not batch.validate_crc():
                    raise RuntimeError("crc")
                n += len(list(batch))
        return n

    return run


def aiokafka(payloads: list[bytes], check_crc: bool) -> Callable[[], int]:
    from aiokafka.record.memory_records import MemoryRecords

    def run() -> int:
        n = 0
        for p in payloads:
            records = MemoryRecords(p)
            while True:
                batch = records.next_batch()
                if batch is None:
                    break
                if check_crc and not batch.validate_crc():
                    raise RuntimeError("crc")
                n += len(list(batch))
        return n

    return run


def crc_rate(fn: Callable[[bytes], int], rounds: int, size: int) -> float:
    """MB/s of *fn* over *size* random bytes."""
    data = os.urandom(size)
    reps = max(1, (16 if fn is _crc32c.crc32c_pure else 4000) * (1 << 20) // size // 4)

    def run() -> int:
        for _ in range(reps):
            fn(data)
        return reps * size

    return best_rate(run, rounds) / 1e6


# -- contenders: encode -----------------------------------------------------------------


def encode_ours(n_batches: int) -> Callable[[], int]:
    inputs = [make_records(b) for b in range(n_batches)]

    def run() -> int:
        for recs in inputs:
            encode_batch(recs, base_offset=recs[0].offset)
        return n_batches * PER_BATCH

    return run


def encode_ours_builder(n_batches: int) -> Callable[[], int]:
    inputs = [make_records(b) for b in range(n_batches)]

    def run() -> int:
        for recs in inputs:
            builder = BatchBuilder()
            for r in recs:
                builder.append(r.key, r.value, timestamp=r.timestamp)
            builder.build()
        return n_batches * PER_BATCH

    return run


def encode_theirs(builder_cls: Any, n_batches: int) -> Callable[[], int]:
    inputs = [make_records(b) for b in range(n_batches)]

    def run() -> int:
        for recs in inputs:
            builder = builder_cls(2, 0, 0, -1, -1, -1, 1 << 20)
            for i, r in enumerate(recs):
                builder.append(i, r.timestamp, r.key, r.value, [])
            builder.build()
        return n_batches * PER_BATCH

    return run


# -- driver -------------------------------------------------------------------------------


def worker_aiokafka_pure(n_batches: int, rounds: int) -> dict[str, Any]:
    """Runs in a subprocess with AIOKAFKA_NO_EXTENSIONS=1."""
    payloads = make_payloads(n_batches)
    from aiokafka.record.default_records import DefaultRecordBatch

    assert DefaultRecordBatch.__module__.endswith("default_records"), DefaultRecordBatch
    out = {
        "sha": hashlib.sha256(b"".join(payloads)).hexdigest(),
        "class": f"{DefaultRecordBatch.__module__}.{DefaultRecordBatch.__name__}",
        "crc": best_rate(aiokafka(payloads, True), rounds),
        "nocrc": best_rate(aiokafka(payloads, False), rounds),
    }
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batches", type=int, default=10_000, help="batches of 100 records")
    ap.add_argument("--slow-batches", type=int, default=1_500, help="batches for slow contenders")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker == "aiokafka-pure":
        print(json.dumps(worker_aiokafka_pure(args.slow_batches, args.rounds)))
        return

    payloads = make_payloads(args.batches)
    slow = make_payloads(args.slow_batches)
    total = sum(map(len, payloads))
    print(
        f"payload: {args.batches} batches x {PER_BATCH} records (6-byte keys, 60-byte values), "
        f"{len(payloads)} fetch payloads, {total / 1e6:.1f} MB; "
        f"slow contenders: {args.slow_batches} batches; best of {args.rounds} rounds"
    )
    print(f"python {sys.version.split()[0]}, crc32c accelerator: {_crc32c.CRC32C_BACKEND}")
    print("contenders of a section run interleaved, round by round, so load spikes hit all alike")

    env = dict(os.environ, AIOKAFKA_NO_EXTENSIONS="1")
    cmd = [sys.executable, __file__, "--worker", "aiokafka-pure"]
    cmd += ["--slow-batches", str(args.slow_batches), "--rounds", str(args.rounds)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    pure = json.loads(proc.stdout.strip().splitlines()[-1])
    assert pure["sha"] == hashlib.sha256(b"".join(slow)).hexdigest(), "different payloads"

    def with_pure_crc(fn: Callable[[], int]) -> Callable[[], int]:
        def run() -> int:
            _crc32c.use_pure_crc32c(True)
            try:
                return fn()
            finally:
                _crc32c.use_pure_crc32c(False)

        return run

    def section(title: str, contenders: list[tuple[str, Callable[[], int] | float]]) -> None:
        """The first contender is the baseline of the ratios; floats are measured elsewhere."""
        best = {name: fn if isinstance(fn, float) else 0.0 for name, fn in contenders}
        for _ in range(args.rounds):
            for name, fn in contenders:
                if isinstance(fn, float):
                    continue
                gc.collect()
                t0 = time.perf_counter()
                n = fn()
                best[name] = max(best[name], n / (time.perf_counter() - t0))
        print(f"\n{title}:")
        base = best[contenders[0][0]]
        for i, (name, _) in enumerate(contenders):
            ratio = f"  x{best[name] / base:5.2f} vs kafka-python" if i else ""
            print(f"  {name:<48} {best[name] / 1e6:7.3f} M records/s{ratio}")

    section(
        "decode, checksum verified",
        [
            ("kafka-python (crc32c C package)", kafka_python(slow, True)),
            ("kafka-sansio, crc32c C package", ours(payloads, True)),
            ("kafka-sansio, crc32c C package, decode() eager", ours_eager(payloads, True)),
            ("kafka-sansio, pure-Python CRC-32C", with_pure_crc(ours(slow, True))),
            ("aiokafka, Cython extension", aiokafka(payloads, True)),
            ("aiokafka, pure-Python fallback (subprocess)", float(pure["crc"])),
        ],
    )
    section(
        "decode, checksum not verified",
        [
            ("kafka-python", kafka_python(slow, False)),
            ("kafka-sansio", ours(payloads, False)),
            ("aiokafka, Cython extension", aiokafka(payloads, False)),
            ("aiokafka, pure-Python fallback (subprocess)", float(pure["nocrc"])),
        ],
    )
    lz4_slow = make_payloads(args.slow_batches, "lz4")
    section(
        "decode, lz4-compressed batches, checksum verified",
        [
            ("kafka-python", kafka_python(lz4_slow, True)),
            ("kafka-sansio", ours(lz4_slow, True)),
            ("aiokafka, Cython extension", aiokafka(lz4_slow, True)),
        ],
    )

    print("\nCRC-32C:")
    for size in (1 << 20, 8 << 10):
        pure_mb = crc_rate(_crc32c.crc32c_pure, args.rounds, size)
        line = f"  {f'pure Python, {size >> 10} KiB':<48} {pure_mb:9.1f} MB/s"
        if _crc32c.crc32c_accelerated is not None:
            c_mb = crc_rate(_crc32c.crc32c_accelerated, args.rounds, size)
            line += f"   crc32c C package {c_mb:9.1f} MB/s (x{c_mb / pure_mb:.0f})"
        print(line)

    from aiokafka.record._crecords import DefaultRecordBatchBuilder as AKBuilder
    from kafka.record.default_records import DefaultRecordBatchBuilder as KPBuilder

    section(
        "encode (uncompressed, 100-record batches)",
        [
            ("kafka-python DefaultRecordBatchBuilder", encode_theirs(KPBuilder, args.slow_batches)),
            ("kafka-sansio encode_batch", encode_ours(args.slow_batches)),
            ("kafka-sansio BatchBuilder.append", encode_ours_builder(args.slow_batches)),
            (
                "aiokafka DefaultRecordBatchBuilder (Cython)",
                encode_theirs(AKBuilder, args.slow_batches),
            ),
        ],
    )


if __name__ == "__main__":
    main()
