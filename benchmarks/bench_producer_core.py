"""The producer core's own cost, measured against the in-memory broker model.

No network and no broker process: a ``ProducerCore`` sends N records of 100
bytes (keyless, or keyed with ``--keyed``) to a 6-partition topic held by
the model, through the fake-clock pump, then flushes until every record is
reported.  The time is split by timing the calls that cross the boundaries:

- the model broker (decoding Produce requests, checking sequences, storing
  batches, answering) - not the producer's cost at all;
- batch encoding (``encode_new_batch``, CRC and compression included);
- ``send`` itself (validation, partitioning, appending to a batch);
- everything else in the core: the sender, request encoding, response
  decoding, delivery reports.

Figures are printed, never asserted::

    python benchmarks/bench_producer_core.py [--records 1000000] [--keyed]
        [--compression none] [--rounds 3] [--json]
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import statistics
import time
from collections.abc import Callable
from typing import Any

import kafka_sansio._accumulator as accumulator
from kafka_sansio._client import ClientConfig
from kafka_sansio._producer import ProducerConfig, ProducerCore
from kafka_sansio._producer_events import BufferFullError, Delivered
from kafka_sansio.testing import ModelCluster, Pump
from kafka_sansio.testing._model import ModelConnection

PARTITIONS = 6


class Stopwatch:
    """Accumulates time spent inside wrapped callables."""

    def __init__(self) -> None:
        self.seconds = 0.0

    def wrap(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - start

        return timed


def run(records: int, keyed: bool, compression: str) -> dict[str, float]:
    cluster = ModelCluster(brokers=1)
    cluster.create_topic("bench", partitions=PARTITIONS)
    info = cluster.brokers[1]
    config = ProducerConfig(
        client=ClientConfig(bootstrap_servers=((info.host, info.port),)),
        compression=compression,
    )
    core = ProducerCore(config, random.Random(1).random)
    pump = Pump(core, cluster)
    model = Stopwatch()
    encode = Stopwatch()
    sending = Stopwatch()
    originals = (
        ModelConnection.receive,
        ModelConnection.data_to_send,
        accumulator.encode_new_batch,
    )
    ModelConnection.receive = model.wrap(ModelConnection.receive)  # type: ignore[method-assign]
    ModelConnection.data_to_send = model.wrap(ModelConnection.data_to_send)  # type: ignore[method-assign]
    accumulator.encode_new_batch = encode.wrap(accumulator.encode_new_batch)
    value = bytes(random.Random(2).randrange(256) for _ in range(100))
    keys = [b"key-%d" % i for i in range(1000)]
    delivered = 0

    def collect() -> None:
        nonlocal delivered
        for event in core.events():
            if isinstance(event, Delivered):
                assert event.error is None, event.error
                delivered += len(event.tokens)

    send = sending.wrap(core.send)
    gc.collect()
    start = time.perf_counter()
    try:
        for i in range(records):
            key = keys[i % 1000] if keyed else None
            while True:
                try:
                    send("bench", value, pump.now, key=key)
                    break
                except BufferFullError:
                    pump.settle()
                    collect()
            if i % 2000 == 1999:
                pump.settle()
                collect()
        core.flush(pump.now)
        pump.until(lambda: (collect(), core.pending() == 0)[1], 600)
        collect()
        total = time.perf_counter() - start
    finally:
        ModelConnection.receive, ModelConnection.data_to_send, accumulator.encode_new_batch = originals  # type: ignore[assignment]
    assert delivered == records
    core_total = total - model.seconds
    return {
        "total_s": total,
        "model_s": model.seconds,
        "encode_s": encode.seconds,
        "send_s": sending.seconds,
        "core_records_per_s": records / core_total,
        "end_to_end_records_per_s": records / total,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--keyed", action="store_true")
    parser.add_argument("--compression", default="none")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    results = [run(args.records, args.keyed, args.compression) for _ in range(args.rounds)]
    if args.json:
        print(json.dumps(results))
        return
    best = max(results, key=lambda r: r["core_records_per_s"])
    median = statistics.median(r["core_records_per_s"] for r in results)
    kind = "keyed" if args.keyed else "keyless"
    print(f"{args.records} records of 100 bytes, {kind}, compression={args.compression}")
    for i, r in enumerate(results, 1):
        print(
            f"  round {i}: total {r['total_s']:.2f} s, model {r['model_s']:.2f} s, "
            f"send() {r['send_s']:.2f} s (with the sends and encoding it triggers; "
            f"encoding {r['encode_s']:.2f} s), "
            f"core {r['core_records_per_s']:,.0f} records/s"
        )
    print(
        f"producer core (model time excluded): median {median:,.0f} records/s, "
        f"best {best['core_records_per_s']:,.0f} records/s"
    )


if __name__ == "__main__":
    main()
