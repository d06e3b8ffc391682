"""The consumer core's own cost, measured against the in-memory broker model.

No network and no broker process: a ``ConsumerCore`` consumes N records of
100 bytes from a 4-partition topic held by the model, through the fake-clock
pump.  The run is split into three parts by timing the calls that cross the
boundaries:

- the model broker (answering fetches) - not the consumer's cost at all;
- record decoding (``RecordDecoder.decode``), the consumer's hot path;
- everything else in the consumer: connection framing, request encoding,
  response decoding, the fetch engine, ``poll``.

The goal stated for the core: the last part costs under 20% of the
consumer's time (decoding + core).

    python benchmarks/bench_core.py [--records 400000] [--batch 500] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

from kafka_sansio import (
    ClientConfig,
    ConsumerConfig,
    ConsumerCore,
    OffsetResetPolicy,
    TopicPartition,
)
from kafka_sansio.records import RecordDecoder
from kafka_sansio.testing import ModelCluster, Pump
from kafka_sansio.testing._model import ModelConnection

PARTITIONS = 4


class Stopwatch:
    """Accumulates time spent inside wrapped callables."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.calls = 0

    def wrap(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - start
                self.calls += 1

        return timed


def build_cluster(records: int, batch: int) -> ModelCluster:
    cluster = ModelCluster(brokers=1)
    cluster.create_topic("bench", partitions=PARTITIONS)
    value = b"x" * 100
    per_partition = records // PARTITIONS
    for p in range(PARTITIONS):
        done = 0
        while done < per_partition:
            n = min(batch, per_partition - done)
            cluster.append("bench", p, [(b"key%d" % i, value) for i in range(n)], timestamp=1)
            done += n
    return cluster


def one_round(records: int, batch: int) -> dict[str, float]:
    cluster = build_cluster(records, batch)
    model = Stopwatch()
    decode = Stopwatch()
    originals = (ModelConnection.receive, ModelConnection.handle_timer, RecordDecoder.decode)
    ModelConnection.receive = model.wrap(originals[0])  # type: ignore[method-assign]
    ModelConnection.handle_timer = model.wrap(originals[1])  # type: ignore[method-assign]
    RecordDecoder.decode = decode.wrap(originals[2])  # type: ignore[method-assign]
    try:
        info = cluster.brokers[1]
        core = ConsumerCore(
            ConsumerConfig(
                client=ClientConfig(bootstrap_servers=((info.host, info.port),)),
                auto_offset_reset=OffsetResetPolicy.EARLIEST,
            ),
            random.Random(1).random,
        )
        pump = Pump(core, cluster, max_rounds=1_000_000)
        core.assign([TopicPartition("bench", p) for p in range(PARTITIONS)], pump.now)
        got = 0

        def drained() -> bool:
            # A consumer's poll loop: keep polling while records are buffered.
            nonlocal got
            while True:
                batch = core.poll(pump.now)
                got += len(batch)
                if not batch.more_buffered:
                    return got >= records

        start = time.perf_counter()
        pump.until(drained, timeout=3600)
        total = time.perf_counter() - start
    finally:
        ModelConnection.receive, ModelConnection.handle_timer, RecordDecoder.decode = originals  # type: ignore[method-assign]
    consumer = total - model.seconds
    core_only = consumer - decode.seconds
    return {
        "records": got,
        "seconds_total": total,
        "seconds_model": model.seconds,
        "seconds_decode": decode.seconds,
        "seconds_core": core_only,
        "fetch_round_trips": decode.calls,
        "records_per_s_consumer": got / consumer,
        "records_per_s_end_to_end": got / total,
        "core_share_of_consumer": core_only / consumer,
        "core_us_per_fetch_payload": core_only / max(1, decode.calls) * 1e6,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=400_000)
    parser.add_argument("--batch", type=int, default=500, help="records per batch in the log")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="print the raw figures as JSON")
    args = parser.parse_args()
    rounds = [one_round(args.records, args.batch) for _ in range(args.rounds)]
    if args.json:
        print(json.dumps(rounds, indent=2))

    def med(key: str) -> float:
        return statistics.median(r[key] for r in rounds)

    def spread(key: str) -> str:
        values = [r[key] for r in rounds]
        return f"{min(values):.3g}..{max(values):.3g}"

    print(
        f"consumer core vs the model broker: {args.records} records of 100 bytes, "
        f"{PARTITIONS} partitions, batches of {args.batch}, {args.rounds} rounds (median, range)"
    )
    print(
        f"  records/s handed out by poll (consumer time only): "
        f"{med('records_per_s_consumer'):,.0f}  ({spread('records_per_s_consumer')})"
    )
    print(
        f"  records/s end to end incl. the model broker:       "
        f"{med('records_per_s_end_to_end'):,.0f}  ({spread('records_per_s_end_to_end')})"
    )
    print(f"  fetch answers decoded:                             {med('fetch_round_trips'):.0f}")
    print(
        f"  core cost per fetch answer (excl. record decoding): "
        f"{med('core_us_per_fetch_payload'):.1f} us"
    )
    share = med("core_share_of_consumer")
    print(
        f"  core share of the consumer's time:                 {share:.1%}  "
        f"({spread('core_share_of_consumer')}; goal < 20%)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
