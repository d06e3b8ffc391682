"""Consumer-side decode cost per record, by record layout.

The consumer decodes a batch into columns (``RecordDecoder.decode_ref_records``)
and builds each ``Record`` as the caller's loop reads it.  Runs of records laid
out alike (same key length, value size and varint widths, no headers) are
decoded column by column; anything else record by record.  This prints, for a
few layouts, the time per record of that path (decode, then iterate reading
every value) beside ``decode_batch`` (every ``Record`` built while decoding).
No broker, no peers: it shows what the layout does to the decoder.

    python benchmarks/bench_record_layouts.py [--records 8000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import gc
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kafka_sansio.records import BatchRef, Record, RecordDecoder, decode_batch, encode_batch

BASE_TS = 1_700_000_000_000


def layouts(n: int) -> dict[str, list[Record]]:
    rnd = random.Random(7)

    def make(key: Callable[[int], bytes | None], value: Callable[[int], bytes], **kw: object) -> list[Record]:
        headers = kw.get("headers", ())
        return [
            Record(i, BASE_TS + i // 100, 0, key(i), value(i), headers)  # type: ignore[arg-type]
            for i in range(n)
        ]

    pool = [rnd.randbytes(100) for _ in range(512)]
    return {
        "100-byte values, no key": make(lambda i: None, lambda i: pool[i % 512]),
        "100-byte values, keys k0..k999": make(lambda i: b"k%d" % (i % 1000), lambda i: pool[i % 512]),
        "50-150-byte values, 8-byte keys": make(
            lambda i: b"key%05d" % i, lambda i: pool[i % 512][: rnd.randrange(50, 150)]
        ),
        "100-byte values, one header": make(
            lambda i: b"key", lambda i: pool[i % 512], headers=(("trace", b"abc"),)
        ),
    }


def per_record(fn: Callable[[], int], rounds: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        gc.collect()
        t0 = time.perf_counter()
        n = fn()
        best = min(best, (time.perf_counter() - t0) / n)
    return best * 1e9


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=8000, help="records per batch")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    decoder = RecordDecoder()
    print(f"{'layout':34s} {'columns + read':>16s} {'decode_batch + read':>20s}")
    for name, records in layouts(args.records).items():
        batch = encode_batch(records)
        scanned = decoder.scan(batch)
        (ref,) = scanned.batches

        def columns(buf: bytes = scanned.buf, ref: BatchRef = ref) -> int:
            n = 0
            for _ in range(20):
                for record in decoder.decode_ref_records(buf, ref):
                    n += 1
                    len(record.value or b"")
            return n

        def eager(batch: bytes = batch) -> int:
            n = 0
            for _ in range(20):
                for record in decode_batch(batch).records:
                    n += 1
                    len(record.value or b"")
            return n

        a, b = per_record(columns, args.rounds), per_record(eager, args.rounds)
        print(f"{name:34s} {a:13.0f} ns {b:17.0f} ns")
    return 0


if __name__ == "__main__":
    sys.exit(main())
